//! What each secret is, read from its `threadstorm:secret-kind` tag, and for the generated kinds:
//! how a new value is made (length and alphabet) and how a pending value is proved to work before
//! it becomes current.

use std::fmt;

use crate::config::Secret;
use crate::webhooks::handshake::{self, HubQuery};

/// The tag on every secret in template.yaml that says what it holds.
pub const KIND_TAG: &str = "threadstorm:secret-kind";

/// The secrets ThreadStorm keeps in Secrets Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// HMAC-SHA256 key that signs sessions.
    SessionKey,
    /// The token Meta echoes in the webhook subscription handshake.
    WebhookVerifyToken,
    /// The local AES-256-GCM token key (only used with KMS off).
    TokenEncryptionKey,
    /// Keys for internal API callers.
    InternalApiKey,
    /// The Threads app secret: Meta issues it, so it is rotated by hand (see [`super::manual`]).
    ThreadsAppSecret,
}

impl SecretKind {
    pub const ALL: [SecretKind; 5] = [
        SecretKind::SessionKey,
        SecretKind::WebhookVerifyToken,
        SecretKind::TokenEncryptionKey,
        SecretKind::InternalApiKey,
        SecretKind::ThreadsAppSecret,
    ];

    /// The tag value, as in template.yaml.
    pub fn tag(self) -> &'static str {
        match self {
            SecretKind::SessionKey => "session-key",
            SecretKind::WebhookVerifyToken => "webhook-verify-token",
            SecretKind::TokenEncryptionKey => "token-encryption-key",
            SecretKind::InternalApiKey => "internal-api-key",
            SecretKind::ThreadsAppSecret => "threads-app-secret",
        }
    }

    pub fn from_tag(tag: &str) -> Option<SecretKind> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// How a new value is generated; `None` for a secret someone else issues.
    pub fn generation(self) -> Option<Generation> {
        // Letters and digits only: each value travels in headers, query strings or config where
        // punctuation needs escaping. 62 symbols give 5.95 bits per character.
        let length = match self {
            // 64 characters ≈ 380 bits, above HMAC-SHA256's 256-bit block strength.
            SecretKind::SessionKey => 64,
            // Meta echoes it back in a query string; 40 characters ≈ 238 bits.
            SecretKind::WebhookVerifyToken => 40,
            // Hashed into an AES-256 key (see `vault::LocalKey::from_secret_text`), so it must
            // carry at least 256 bits: 64 characters ≈ 380 bits.
            SecretKind::TokenEncryptionKey => 64,
            SecretKind::InternalApiKey => 48,
            SecretKind::ThreadsAppSecret => return None,
        };
        Some(Generation { length })
    }

    /// Proves `pending` works for this kind, next to `current` (which becomes the previous value):
    /// both must be accepted by readers after the rotation. Never says what either value is.
    pub fn prove(self, pending: &Secret, current: &Secret) -> Result<(), &'static str> {
        if let Some(generation) = self.generation() {
            generation.check(pending)?;
        }
        if pending.expose() == current.expose() {
            return Err("the pending value equals the current value");
        }
        match self {
            SecretKind::SessionKey => crate::sessions::prove_signing_key(pending, Some(current))
                .map_err(|_| "a session signed with it, or with the current key, does not verify"),
            SecretKind::TokenEncryptionKey => crate::vault::prove_local_key(pending, Some(current))
                .map_err(|_| "a token sealed with it, or with the current key, does not open"),
            SecretKind::WebhookVerifyToken => {
                for token in [pending, current] {
                    let query = HubQuery::from_pairs([
                        ("hub.mode", "subscribe"),
                        ("hub.verify_token", token.expose()),
                        ("hub.challenge", "1158201444"),
                    ]);
                    handshake::answer(&query, &[pending, current])
                        .map_err(|_| "the subscription handshake does not accept it")?;
                }
                Ok(())
            }
            // Checked for shape above; callers compare it like the verify token.
            SecretKind::InternalApiKey => Ok(()),
            // Proved against Meta by `manual::verify`, not here.
            SecretKind::ThreadsAppSecret => Ok(()),
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// How a generated value looks: `length` ASCII letters and digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub length: usize,
}

impl Generation {
    /// Whether `value` has exactly this shape, e.g. what GetRandomPassword returned.
    pub fn check(self, value: &Secret) -> Result<(), &'static str> {
        let value = value.expose();
        if value.len() != self.length {
            return Err("the value does not have the length this kind needs");
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("the value has characters other than letters and digits");
        }
        // GetRandomPassword is asked to include each type; a value that lacks one was not made
        // by it (or was cut short).
        let has = |f: fn(&u8) -> bool| value.as_bytes().iter().any(f);
        if !(has(u8::is_ascii_lowercase) && has(u8::is_ascii_uppercase) && has(u8::is_ascii_digit))
        {
            return Err("the value lacks a lower-case letter, an upper-case letter or a digit");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(len: usize) -> Secret {
        let alphabet = b"aB3dE5gH7jK9mN1pQ2sT4vW6yZ8";
        Secret::new(
            (0..len)
                .map(|i| alphabet[i % alphabet.len()] as char)
                .collect::<String>(),
        )
    }

    #[test]
    fn tags_round_trip_and_only_the_app_secret_is_not_generated() {
        for kind in SecretKind::ALL {
            assert_eq!(SecretKind::from_tag(kind.tag()), Some(kind));
            assert_eq!(
                kind.generation().is_none(),
                kind == SecretKind::ThreadsAppSecret
            );
        }
        assert_eq!(SecretKind::from_tag("session_key"), None);
        assert_eq!(SecretKind::from_tag(""), None);
    }

    #[test]
    fn generated_values_must_have_the_kinds_length_and_alphabet() {
        let g = Generation { length: 40 };
        assert!(g.check(&value(40)).is_ok());
        assert!(g.check(&value(39)).is_err());
        assert!(g.check(&value(41)).is_err());
        let mut punct = value(39).expose().to_owned();
        punct.push('!');
        assert!(g.check(&Secret::new(punct)).is_err());
        assert!(g.check(&Secret::new("a".repeat(40))).is_err());
        assert!(g.check(&Secret::new("é".repeat(20))).is_err());
    }

    #[test]
    fn every_generated_kind_proves_a_fresh_value_and_refuses_the_current_one() {
        for kind in SecretKind::ALL {
            let Some(g) = kind.generation() else { continue };
            let current = value(g.length);
            let mut fresh = current.expose().to_owned();
            fresh.replace_range(0..4, "ZZ99");
            let fresh = Secret::new(fresh);
            assert_eq!(kind.prove(&fresh, &current), Ok(()), "{kind}");
            assert!(kind.prove(&current, &current).is_err(), "{kind}");
            assert!(
                kind.prove(&value(g.length - 1), &current).is_err(),
                "{kind}"
            );
        }
    }
}
