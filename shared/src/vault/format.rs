//! The stored form of a sealed token, version 1, as standard base64 (padded) of:
//!
//! ```text
//! byte 0       format version = 1
//! byte 1       scheme: 1 = KMS envelope, 2 = local key
//! bytes 2..4   key reference length L (u16, big endian)
//! next L       key reference: the KMS-wrapped data key (scheme 1) or the local key id (scheme 2, L = 8)
//! next 12      AES-GCM nonce
//! rest         AES-256-GCM ciphertext followed by its 16-byte tag
//! ```
//!
//! Parsing checks every length before it slices and returns a [`Malformed`] reason, never panics.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The only format version this code writes and reads.
pub const VERSION: u8 = 1;
/// AES-GCM nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Local key ids are this long.
pub const LOCAL_KEY_ID_LEN: usize = 8;
/// Longest stored form accepted, in characters: a Threads token plus a wrapped key is far below.
pub const MAX_SEALED_CHARS: usize = 16 * 1024;
/// Longest KMS-wrapped data key accepted (AWS's are under 200 bytes).
const MAX_WRAPPED_KEY: usize = 1024;

/// How the data key of a sealed token is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// KMS envelope: the data key is stored wrapped by the KMS key.
    Kms,
    /// A local key, named by its id.
    Local,
}

impl Scheme {
    fn byte(self) -> u8 {
        match self {
            Scheme::Kms => 1,
            Scheme::Local => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Kms => "kms",
            Scheme::Local => "local",
        }
    }
}

/// Why a stored value is not a sealed token. Says what is wrong, never what the bytes were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_SEALED_CHARS} characters")]
    TooLong,
    #[error("not base64")]
    NotBase64,
    #[error("format version {0} is unknown (this code reads version {VERSION})")]
    UnknownVersion(u8),
    #[error("scheme {0} is unknown")]
    UnknownScheme(u8),
    #[error("truncated in the {0}")]
    Truncated(&'static str),
    #[error("the key reference has an invalid length")]
    KeyReferenceLength,
    #[error("the decrypted value is not UTF-8")]
    NotText,
}

/// A parsed sealed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub scheme: Scheme,
    pub key_ref: Vec<u8>,
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl Envelope {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(4 + self.key_ref.len() + NONCE_LEN + self.ciphertext.len());
        out.push(VERSION);
        out.push(self.scheme.byte());
        // Key references are bounded when created (wrapped keys are checked, local ids are 8).
        out.extend_from_slice(&(self.key_ref.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&self.key_ref);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    pub fn encode(&self) -> String {
        STANDARD.encode(self.to_bytes())
    }

    pub fn decode(text: &str) -> Result<Self, Malformed> {
        if text.is_empty() {
            return Err(Malformed::Empty);
        }
        if text.len() > MAX_SEALED_CHARS {
            return Err(Malformed::TooLong);
        }
        let bytes = STANDARD.decode(text).map_err(|_| Malformed::NotBase64)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Malformed> {
        let (&version, rest) = bytes.split_first().ok_or(Malformed::Empty)?;
        if version != VERSION {
            return Err(Malformed::UnknownVersion(version));
        }
        let (&scheme, rest) = rest.split_first().ok_or(Malformed::Truncated("header"))?;
        let scheme = match scheme {
            1 => Scheme::Kms,
            2 => Scheme::Local,
            other => return Err(Malformed::UnknownScheme(other)),
        };
        let (len, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(Malformed::Truncated("header"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        let valid_len = match scheme {
            Scheme::Kms => (1..=MAX_WRAPPED_KEY).contains(&len),
            Scheme::Local => len == LOCAL_KEY_ID_LEN,
        };
        if !valid_len {
            return Err(Malformed::KeyReferenceLength);
        }
        let (key_ref, rest) = rest
            .split_at_checked(len)
            .ok_or(Malformed::Truncated("key reference"))?;
        let (nonce, ciphertext) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(Malformed::Truncated("nonce"))?;
        if ciphertext.len() < TAG_LEN {
            return Err(Malformed::Truncated("ciphertext"));
        }
        Ok(Envelope {
            scheme,
            key_ref: key_ref.to_vec(),
            nonce: *nonce,
            ciphertext: ciphertext.to_vec(),
        })
    }

    pub fn wrapped_key_fits(wrapped: &[u8]) -> bool {
        (1..=MAX_WRAPPED_KEY).contains(&wrapped.len())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample(scheme: Scheme) -> Envelope {
        Envelope {
            scheme,
            key_ref: match scheme {
                Scheme::Kms => vec![7; 150],
                Scheme::Local => vec![1; LOCAL_KEY_ID_LEN],
            },
            nonce: [9; NONCE_LEN],
            ciphertext: vec![3; 40],
        }
    }

    #[test]
    fn round_trips_both_schemes() {
        for scheme in [Scheme::Kms, Scheme::Local] {
            let env = sample(scheme);
            assert_eq!(Envelope::decode(&env.encode()), Ok(env));
        }
    }

    #[test]
    fn header_layout_is_version_scheme_length() {
        let bytes = sample(Scheme::Kms).to_bytes();
        assert_eq!(&bytes[..4], &[1, 1, 0, 150]);
        assert_eq!(bytes.len(), 4 + 150 + 12 + 40);
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        for scheme in [Scheme::Kms, Scheme::Local] {
            let bytes = sample(scheme).to_bytes();
            // The shortest valid form ends TAG_LEN bytes into the ciphertext.
            let shortest = bytes.len() - 40 + TAG_LEN;
            for cut in 0..shortest {
                assert!(
                    Envelope::from_bytes(&bytes[..cut]).is_err(),
                    "{scheme:?} cut at {cut}"
                );
            }
            assert!(Envelope::from_bytes(&bytes[..shortest]).is_ok());
        }
    }

    #[test]
    fn versionless_unknown_and_garbage_inputs_are_refused() {
        let mut bytes = sample(Scheme::Kms).to_bytes();
        bytes[0] = 2;
        assert_eq!(
            Envelope::from_bytes(&bytes),
            Err(Malformed::UnknownVersion(2))
        );
        bytes[0] = 1;
        bytes[1] = 9;
        assert_eq!(
            Envelope::from_bytes(&bytes),
            Err(Malformed::UnknownScheme(9))
        );
        assert_eq!(Envelope::decode(""), Err(Malformed::Empty));
        assert_eq!(Envelope::decode("not base64!"), Err(Malformed::NotBase64));
        assert_eq!(
            Envelope::decode(&"A".repeat(MAX_SEALED_CHARS + 4)),
            Err(Malformed::TooLong)
        );
        // A bare token, as if stored before encryption existed.
        assert!(Envelope::decode("THAAexampletoken").is_err());
        // Local key ids must be exactly 8 bytes; wrapped keys at least 1.
        let mut local = sample(Scheme::Local).to_bytes();
        local[3] = 7;
        assert_eq!(
            Envelope::from_bytes(&local),
            Err(Malformed::KeyReferenceLength)
        );
        let empty_wrapped = [1, 1, 0, 0];
        assert_eq!(
            Envelope::from_bytes(&empty_wrapped),
            Err(Malformed::KeyReferenceLength)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Envelope::from_bytes(&bytes);
            let _ = Envelope::decode(&STANDARD.encode(&bytes));
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(
            scheme in 1u8..=2, len in any::<u16>(), tail in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let mut bytes = vec![VERSION, scheme];
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&tail);
            let _ = Envelope::from_bytes(&bytes);
        }

        #[test]
        fn random_text_never_panics(text in ".{0,200}") {
            let _ = Envelope::decode(&text);
        }
    }
}
