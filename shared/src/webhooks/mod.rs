//! Meta's calls into ThreadStorm: signed webhook deliveries, the subscription handshake, and the
//! `signed_request` of the deauthorize and data-deletion callbacks — verified and parsed as pure
//! functions over the exact bytes received, so the route only moves bytes and maps errors.
//!
//! Order at the route: [`crate::edge::body`] (limit [`MAX_BODY_BYTES`]) → [`signature::verify`]
//! → [`delivery::parse`]; nothing is parsed before its signature holds. Every error has a
//! `status()` and a `problem()` for the edge: 400 malformed, 401 bad or missing signature, 403
//! wrong app or verify token, 413 too large, and 500 only when ThreadStorm itself has no usable
//! secret or app id configured (Meta then retries, so nothing is lost while it is fixed).

pub mod delivery;
pub mod handshake;
pub mod reconcile;
pub mod routes;
pub mod signature;
pub mod signed_request;

pub use lambda_http::http::StatusCode;

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::edge::Problem;

/// The largest webhook body accepted (2 MiB), above the edge's general limit on purpose: Meta
/// batches up to 1,000 changes, and a reply (about 450 bytes of fields plus up to 500 bytes of
/// text, which Meta's `\uXXXX` escaping can triple) is at most about 2 KB on the wire. Nothing
/// bigger is hashed or parsed.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// The problem+json answer for a refusal: its status, a stable code and what was wrong. A 5xx
/// (ThreadStorm's own configuration) says only that a retry will be answered.
fn problem(status: StatusCode, code: &'static str, refusal: &dyn fmt::Display) -> Problem {
    if status.is_server_error() {
        Problem::new(
            status.as_u16(),
            "not_configured",
            "ThreadStorm cannot verify Meta's calls right now; retried calls will be answered",
        )
    } else {
        Problem::new(status.as_u16(), code, refusal.to_string())
    }
}

/// The outcome of checking one tag against every configured secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacCheck {
    Matches,
    NoMatch,
    /// No secret was usable (none given, or all empty): a deployment fault, not the sender's.
    NoSecret,
}

/// Checks `tag` = HMAC-SHA256(secret, message) for each usable secret (current and previous
/// during a rotation), in constant time per secret and without stopping at the first match, so
/// the timing says nothing about which secret (or whether any) matched. An empty secret is never
/// used: anyone can compute an HMAC under the empty key.
fn check_mac(secrets: &[&Secret], message: &[u8], tag: &[u8]) -> MacCheck {
    let mut usable = false;
    let mut matched = false;
    for secret in secrets {
        let key = secret.expose().as_bytes();
        if key.is_empty() {
            continue;
        }
        // HMAC accepts keys of any length; the error arm cannot happen but must not panic.
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            continue;
        };
        usable = true;
        mac.update(message);
        matched |= mac.verify_slice(tag).is_ok();
    }
    match (usable, matched) {
        (false, _) => MacCheck::NoSecret,
        (true, true) => MacCheck::Matches,
        (true, false) => MacCheck::NoMatch,
    }
}

/// HMAC-SHA256 of `message` under `secret`, for tests and tools that need to produce what Meta
/// sends. Empty for an empty secret, which no verifier here accepts.
pub(crate) fn hmac_sha256(secret: &Secret, message: &[u8]) -> Vec<u8> {
    match HmacSha256::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) if !secret.expose().is_empty() => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_verifies_under_any_configured_secret_and_no_other() {
        let current = Secret::new("current");
        let previous = Secret::new("previous");
        let other = Secret::new("other");
        let tag = hmac_sha256(&previous, b"body");
        assert_eq!(
            check_mac(&[&current, &previous], b"body", &tag),
            MacCheck::Matches
        );
        assert_eq!(
            check_mac(&[&previous, &current], b"body", &tag),
            MacCheck::Matches
        );
        assert_eq!(
            check_mac(&[&current, &other], b"body", &tag),
            MacCheck::NoMatch
        );
        assert_eq!(check_mac(&[&previous], b"bodY", &tag), MacCheck::NoMatch);
        assert_eq!(
            check_mac(&[&previous], b"body", &tag[..31]),
            MacCheck::NoMatch
        );
    }

    #[test]
    fn empty_secrets_are_never_used() {
        let empty = Secret::new("");
        let tag = {
            let mut mac = HmacSha256::new_from_slice(b"").unwrap();
            mac.update(b"body");
            mac.finalize().into_bytes().to_vec()
        };
        assert_eq!(check_mac(&[&empty], b"body", &tag), MacCheck::NoSecret);
        assert_eq!(check_mac(&[], b"body", &tag), MacCheck::NoSecret);
        assert!(hmac_sha256(&empty, b"body").is_empty());
    }

    #[test]
    fn refusals_become_problems_and_configuration_faults_say_nothing_inside() {
        use super::delivery::DeliveryError;
        use super::handshake::HandshakeError;
        use super::signature::SignatureError;
        use super::signed_request::{Segment, SignedRequestError};
        let cases: [(Problem, u16, &str); 8] = [
            (SignatureError::Mismatch.problem(), 401, "invalid_signature"),
            (
                SignatureError::TooLarge(3 << 20).problem(),
                413,
                "body_too_large",
            ),
            (
                HandshakeError::WrongToken.problem(),
                403,
                "verification_refused",
            ),
            (
                HandshakeError::BadChallenge.problem(),
                400,
                "invalid_verification_request",
            ),
            (DeliveryError::WrongApp.problem(), 403, "wrong_app"),
            (
                DeliveryError::TooManyChanges(1001).problem(),
                413,
                "too_many_changes",
            ),
            (DeliveryError::NoValues.problem(), 400, "malformed_delivery"),
            (
                SignedRequestError::BadBase64(Segment::Payload).problem(),
                400,
                "malformed_signed_request",
            ),
        ];
        for (problem, status, code) in cases {
            assert_eq!((problem.status, problem.code), (status, code), "{problem}");
            assert!(!problem.detail.is_empty());
        }
        for problem in [
            SignatureError::NoSecret.problem(),
            HandshakeError::NoToken.problem(),
            DeliveryError::NoAppId.problem(),
            SignedRequestError::NoSecret.problem(),
        ] {
            assert_eq!((problem.status, problem.code), (500, "not_configured"));
            assert!(!problem.detail.contains("secret") && !problem.detail.contains("token"));
        }
    }
}
