//! Identifiers as Threads shapes them: numeric-string ids of 17 digits (containers and media in
//! distinct ranges, so one can never be mistaken for the other), `TH` tokens, `AQ` codes and
//! 11-character shortcodes.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Container ids count up from here (case P2's first container is `17890000000000001`).
pub const FIRST_CONTAINER_ID: u64 = 17_890_000_000_000_001;
/// Media ids count up from here; media and container ids never overlap.
pub const FIRST_MEDIA_ID: u64 = 17_920_000_000_000_001;

const SHORTCODE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An access token: `TH` and opaque characters, like Meta's.
pub fn token() -> String {
    format!("THQVJ{}", random_text(140))
}

/// An authorization code, `AQB…` like Meta's.
pub fn code() -> String {
    format!("AQB{}", random_text(120))
}

/// The shortcode in a permalink, derived from the media id so it is stable.
pub fn shortcode(media_id: u64) -> String {
    let mut n = media_id ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut out = String::with_capacity(11);
    for _ in 0..11 {
        out.push(char::from(SHORTCODE_ALPHABET[(n % 64) as usize]));
        n /= 64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_seventeen_digits_and_distinct_ranges() {
        assert_eq!(FIRST_CONTAINER_ID.to_string().len(), 17);
        assert_eq!(FIRST_MEDIA_ID.to_string().len(), 17);
        const { assert!(FIRST_CONTAINER_ID + 1_000_000_000 < FIRST_MEDIA_ID) };
        assert!(token().starts_with("TH"));
        assert_eq!(shortcode(FIRST_MEDIA_ID).len(), 11);
        assert_ne!(shortcode(FIRST_MEDIA_ID), shortcode(FIRST_MEDIA_ID + 1));
    }
}
