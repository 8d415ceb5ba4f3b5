//! PKCE (RFC 7636), S256 only. Threads does not document PKCE, so ThreadStorm sends the challenge
//! (harmless) and keeps the verifier server-side with the state; it never relies on Meta checking it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A code verifier: 43–128 characters of `[A-Za-z0-9-._~]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierError {
    #[error("a PKCE verifier has 43 to 128 characters, this one has {0}")]
    Length(usize),
    #[error("a PKCE verifier uses only A-Z a-z 0-9 - . _ ~")]
    Alphabet,
}

impl Verifier {
    /// 32 random bytes, base64url without padding: 43 characters.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Verifier(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn parse(text: &str) -> Result<Self, VerifierError> {
        let length = text.chars().count();
        if !(43..=128).contains(&length) {
            return Err(VerifierError::Length(length));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(VerifierError::Alphabet);
        }
        Ok(Verifier(text.to_owned()))
    }

    /// BASE64URL-NOPAD(SHA256(ASCII(verifier))).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_o1_challenge_is_base64url_of_the_sha256() {
        let verifier =
            Verifier::parse("ts-verifier-0123456789abcdefghijklmnopqrstuvwxyzABCD").unwrap();
        assert_eq!(
            verifier.challenge(),
            "w6Kgixo4GdOCtcS6zQP_jZ1mZ6C_aVV0H7comjW5Sas"
        );
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = Verifier::generate();
        let b = Verifier::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(Verifier::parse(a.expose()).is_ok());
        assert_ne!(a, b);
        assert!(!a.challenge().contains(['=', '+', '/']));
    }

    #[test]
    fn verifiers_outside_the_rules_are_refused() {
        assert_eq!(
            Verifier::parse(&"a".repeat(42)),
            Err(VerifierError::Length(42))
        );
        assert_eq!(
            Verifier::parse(&"a".repeat(129)),
            Err(VerifierError::Length(129))
        );
        assert!(Verifier::parse(&"a".repeat(128)).is_ok());
        assert!(Verifier::parse(&"a".repeat(43)).is_ok());
        for bad in ["+", "/", "=", " ", "é", "%"] {
            let text = format!("{}{bad}", "a".repeat(43));
            assert_eq!(
                Verifier::parse(&text),
                Err(VerifierError::Alphabet),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_verifier() {
        let v = Verifier::generate();
        assert!(!format!("{v:?}").contains(v.expose()));
    }
}
