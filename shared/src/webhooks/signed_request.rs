//! Meta's `signed_request` on the deauthorize and data-deletion callbacks:
//! `base64url(HMAC-SHA256(app secret, encoded payload))` `.` `base64url(payload JSON)`.
//!
//! The signature is checked over the payload segment exactly as received (padding included),
//! in constant time, under the current and previous app secret, before the payload is decoded.
//!
//! Decisions: base64url with or without `=` padding is accepted; standard base64's `+` and `/`
//! are refused (Meta uses the URL alphabet, and a `+` in a form would already have been turned
//! into a space). `algorithm` is compared ASCII-case-insensitively to `HMAC-SHA256`, as Meta's own
//! SDKs do; only HMAC-SHA256 is ever computed, so the comparison only decides what to refuse.
//! `issued_at` is required (Meta's payload always carries it; one without it is refused like a
//! forged one), `expires` optional. A verified request must also be fresh
//! ([`check_fresh`]): issued at most the configured age ago (default [`DEFAULT_MAX_AGE_SECONDS`];
//! Meta documents no limit, so a generous day) and at most [`FUTURE_SKEW_SECONDS`] ahead of our
//! clock, so a captured callback cannot be replayed later. `expires` is not checked: Meta does not
//! say what it bounds. A form over [`MAX_FORM_BYTES`] is refused.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value};

use super::{MacCheck, StatusCode, check_mac};
use crate::config::Secret;

/// The form field Meta posts.
pub const FIELD: &str = "signed_request";

/// The only algorithm accepted.
pub const ALGORITHM: &str = "HMAC-SHA256";

/// The largest callback form (or `signed_request`) read; Meta's are a few hundred bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// How old a `signed_request` may be unless `SIGNED_REQUEST_MAX_AGE_SECONDS` says otherwise.
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 24 * 3600;

/// The ages `SIGNED_REQUEST_MAX_AGE_SECONDS` may set: a minute (Meta's clock and ours differ a
/// little) to a week.
pub const MAX_AGE_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;

/// How far ahead of ThreadStorm's clock `issued_at` may be (Meta's clock and ours differ a little).
pub const FUTURE_SKEW_SECONDS: i64 = 5 * 60;

/// Length of a data-deletion confirmation code.
pub const CONFIRMATION_CODE_LEN: usize = 24;

/// Which half of the `signed_request` was at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Signature,
    Payload,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Segment::Signature => "signature",
            Segment::Payload => "payload",
        })
    }
}

/// Why a `signed_request` was refused. No variant carries the request, its payload or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("the callback body has {0} bytes, over the limit of {MAX_FORM_BYTES}")]
    TooLarge(usize),
    #[error("the form has no signed_request field")]
    MissingField,
    #[error("the form has more than one signed_request field")]
    RepeatedField,
    #[error("signed_request is not two non-empty parts joined by one dot")]
    NotTwoParts,
    #[error("the {0} of signed_request is not base64url")]
    BadBase64(Segment),
    #[error("the signature of signed_request has {0} bytes, not 32")]
    WrongSignatureLength(usize),
    #[error("signed_request is not signed by any configured app secret")]
    Mismatch,
    #[error("the payload of signed_request is not a JSON object")]
    PayloadNotJson,
    #[error("signed_request names an algorithm other than HMAC-SHA256")]
    UnsupportedAlgorithm,
    #[error("the payload of signed_request has no {0}")]
    MissingClaim(&'static str),
    #[error("the payload of signed_request has an unusable {0}")]
    BadClaim(&'static str),
    #[error("signed_request was issued {age} s ago, longer ago than the {max_age} s accepted")]
    Stale { age: i64, max_age: u64 },
    #[error("signed_request was issued {ahead} s in the future")]
    IssuedInFuture { ahead: i64 },
    #[error("no Threads app secret is configured, so no callback can be verified")]
    NoSecret,
}

impl SignedRequestError {
    /// A stable machine-readable code for the problem+json answer.
    pub fn code(&self) -> &'static str {
        if matches!(
            self,
            SignedRequestError::Stale { .. } | SignedRequestError::IssuedInFuture { .. }
        ) {
            return "stale_signed_request";
        }
        match self.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNAUTHORIZED => "invalid_signature",
            _ => "malformed_signed_request",
        }
    }

    /// The answer at the edge: [`Self::status`], [`Self::code`] and the reason.
    pub fn problem(&self) -> crate::edge::Problem {
        super::problem(self.status(), self.code(), self)
    }

    /// The HTTP status the callback route answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            SignedRequestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            SignedRequestError::WrongSignatureLength(_)
            | SignedRequestError::Mismatch
            | SignedRequestError::UnsupportedAlgorithm => StatusCode::UNAUTHORIZED,
            SignedRequestError::NoSecret => StatusCode::INTERNAL_SERVER_ERROR,
            SignedRequestError::MissingField
            | SignedRequestError::RepeatedField
            | SignedRequestError::NotTwoParts
            | SignedRequestError::BadBase64(_)
            | SignedRequestError::PayloadNotJson
            | SignedRequestError::MissingClaim(_)
            | SignedRequestError::BadClaim(_)
            | SignedRequestError::Stale { .. }
            | SignedRequestError::IssuedInFuture { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

/// A verified callback: who deauthorized ThreadStorm or asked for their data to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped user id, kept as a string whether sent as a string or a number.
    pub user_id: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds, when Meta sent one.
    pub expires: Option<i64>,
    /// As sent (equal to [`ALGORITHM`] but for letter case).
    pub algorithm: String,
}

/// base64url; padding optional on decode.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads `signed_request` from a callback's `application/x-www-form-urlencoded` body
/// (percent-decoded once) and verifies it.
pub fn verify_form(body: &[u8], secrets: &[&Secret]) -> Result<SignedRequest, SignedRequestError> {
    if secrets.iter().all(|s| s.expose().is_empty()) {
        return Err(SignedRequestError::NoSecret);
    }
    if body.len() > MAX_FORM_BYTES {
        return Err(SignedRequestError::TooLarge(body.len()));
    }
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        if name == FIELD {
            if found.is_some() {
                return Err(SignedRequestError::RepeatedField);
            }
            found = Some(value);
        }
    }
    verify(&found.ok_or(SignedRequestError::MissingField)?, secrets)
}

/// Verifies a `signed_request` value under each of `secrets` (current and, during a rotation,
/// previous app secret) and returns its payload.
pub fn verify(
    signed_request: &str,
    secrets: &[&Secret],
) -> Result<SignedRequest, SignedRequestError> {
    if secrets.iter().all(|s| s.expose().is_empty()) {
        return Err(SignedRequestError::NoSecret);
    }
    if signed_request.len() > MAX_FORM_BYTES {
        return Err(SignedRequestError::TooLarge(signed_request.len()));
    }
    let mut parts = signed_request.split('.');
    let (Some(signature), Some(payload), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SignedRequestError::NotTwoParts);
    };
    if signature.is_empty() || payload.is_empty() {
        return Err(SignedRequestError::NotTwoParts);
    }
    let signature = BASE64URL
        .decode(signature)
        .map_err(|_| SignedRequestError::BadBase64(Segment::Signature))?;
    if signature.len() != 32 {
        return Err(SignedRequestError::WrongSignatureLength(signature.len()));
    }
    match check_mac(secrets, payload.as_bytes(), &signature) {
        MacCheck::Matches => {}
        MacCheck::NoMatch => return Err(SignedRequestError::Mismatch),
        MacCheck::NoSecret => return Err(SignedRequestError::NoSecret),
    }
    // Signed by Meta from here on.
    let json = BASE64URL
        .decode(payload)
        .map_err(|_| SignedRequestError::BadBase64(Segment::Payload))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&json).map_err(|_| SignedRequestError::PayloadNotJson)?;
    let algorithm = claims
        .get("algorithm")
        .and_then(Value::as_str)
        .filter(|a| a.eq_ignore_ascii_case(ALGORITHM))
        .ok_or(SignedRequestError::UnsupportedAlgorithm)?;
    let user_id = match claims.get("user_id") {
        None | Some(Value::Null) => return Err(SignedRequestError::MissingClaim("user_id")),
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(_) => return Err(SignedRequestError::BadClaim("user_id")),
    };
    let issued_at = match claims.get("issued_at") {
        None | Some(Value::Null) => return Err(SignedRequestError::MissingClaim("issued_at")),
        // A Unix time before 1970 is nothing Meta sends.
        Some(v) => v
            .as_i64()
            .filter(|t| *t >= 0)
            .ok_or(SignedRequestError::BadClaim("issued_at"))?,
    };
    let expires = match claims.get("expires") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or(SignedRequestError::BadClaim("expires"))?),
    };
    Ok(SignedRequest {
        user_id,
        issued_at,
        expires,
        algorithm: algorithm.to_owned(),
    })
}

/// Refuses `request` unless it was issued within `max_age_seconds` before `now` (Unix seconds)
/// and no more than [`FUTURE_SKEW_SECONDS`] after it. Both bounds are inclusive.
pub fn check_fresh(
    request: &SignedRequest,
    now: i64,
    max_age_seconds: u64,
) -> Result<(), SignedRequestError> {
    let age = i128::from(now) - i128::from(request.issued_at);
    if age < -i128::from(FUTURE_SKEW_SECONDS) {
        return Err(SignedRequestError::IssuedInFuture {
            ahead: i64::try_from(-age).unwrap_or(i64::MAX),
        });
    }
    if age > i128::from(max_age_seconds) {
        return Err(SignedRequestError::Stale {
            age: i64::try_from(age).unwrap_or(i64::MAX),
            max_age: max_age_seconds,
        });
    }
    Ok(())
}

/// A fresh data-deletion confirmation code: [`CONFIRMATION_CODE_LEN`] ASCII letters and digits
/// (about 143 bits) from the thread-local CSPRNG (ChaCha, seeded and reseeded by the OS).
pub fn confirmation_code() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(CONFIRMATION_CODE_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use proptest::prelude::*;
    use serde_json::json;
    use threads_emulator::webhook::{callback_payload, signed_request as meta_signed_request};

    const SECRET: &str = "test_app_secret";

    fn secret() -> Secret {
        Secret::new(SECRET)
    }

    fn check(sr: &str) -> Result<SignedRequest, SignedRequestError> {
        verify(sr, &[&secret()])
    }

    /// Signs an arbitrary payload segment, as received, with the test secret.
    fn signed_segment(segment: &str) -> String {
        let mac = super::super::hmac_sha256(&secret(), segment.as_bytes());
        format!("{}.{segment}", URL_SAFE_NO_PAD.encode(mac))
    }

    fn signed_claims(claims: &Value) -> String {
        signed_segment(&URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn metas_signed_request_verifies_padded_and_unpadded() {
        let payload = callback_payload("218471", 1_700_000_000);
        for padded in [true, false] {
            let sr = meta_signed_request(SECRET, &payload, padded);
            assert_eq!(sr.contains('='), padded, "{sr}");
            assert_eq!(
                check(&sr).unwrap(),
                SignedRequest {
                    user_id: "218471".into(),
                    issued_at: 1_700_000_000,
                    expires: Some(1_700_003_600),
                    algorithm: "HMAC-SHA256".into(),
                }
            );
        }
    }

    #[test]
    fn another_secret_is_401_and_the_previous_one_works_during_rotation() {
        let sr = meta_signed_request(SECRET, &callback_payload("218471", 1_700_000_000), false);
        let current = Secret::new("rotated_secret");
        let err = verify(&sr, &[&current]).unwrap_err();
        assert_eq!(err, SignedRequestError::Mismatch);
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert!(verify(&sr, &[&current, &secret()]).is_ok());
        assert!(verify(&sr, &[&secret(), &current]).is_ok());
    }

    #[test]
    fn the_signature_covers_the_payload_segment_exactly_as_received() {
        let payload = callback_payload("218471", 1_700_000_000);
        let unpadded = meta_signed_request(SECRET, &payload, false);
        let padded = meta_signed_request(SECRET, &payload, true);
        let (sig_unpadded, seg_unpadded) = unpadded.split_once('.').unwrap();
        let (_, seg_padded) = padded.split_once('.').unwrap();
        // Same JSON, but the padded segment is other bytes: the unpadded signature does not
        // cover it.
        if seg_padded != seg_unpadded {
            assert_eq!(
                check(&format!("{sig_unpadded}.{seg_padded}")),
                Err(SignedRequestError::Mismatch)
            );
        }
        // Re-encoding the JSON (here: with a space) is also other bytes.
        let spaced =
            URL_SAFE_NO_PAD.encode(serde_json::to_string_pretty(&payload).unwrap().as_bytes());
        assert_eq!(
            check(&format!("{sig_unpadded}.{spaced}")),
            Err(SignedRequestError::Mismatch)
        );
    }

    #[test]
    fn other_algorithms_are_refused_and_letter_case_is_not() {
        for algorithm in [json!("hmac-sha256"), json!("Hmac-Sha256")] {
            let sr =
                signed_claims(&json!({"algorithm": algorithm, "issued_at": 1, "user_id": "7"}));
            assert!(check(&sr).is_ok(), "{algorithm}");
        }
        for algorithm in [
            json!("HMAC-SHA1"),
            json!("none"),
            json!("HS256"),
            json!("HMAC-SHA256 "),
            json!(""),
            json!(256),
            json!(null),
        ] {
            let sr =
                signed_claims(&json!({"algorithm": algorithm, "issued_at": 1, "user_id": "7"}));
            let err = check(&sr).unwrap_err();
            assert_eq!(err, SignedRequestError::UnsupportedAlgorithm, "{algorithm}");
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        }
        let sr = signed_claims(&json!({"issued_at": 1, "user_id": "7"}));
        assert_eq!(check(&sr), Err(SignedRequestError::UnsupportedAlgorithm));
    }

    #[test]
    fn malformed_structure_is_400() {
        let good = meta_signed_request(SECRET, &callback_payload("218471", 1), false);
        let (sig, payload) = good.split_once('.').unwrap();
        for sr in [
            String::new(),
            ".".into(),
            sig.into(),
            format!("{sig}."),
            format!(".{payload}"),
            format!("{sig}.{payload}.extra"),
            format!("{sig}..{payload}"),
            format!("{sig}.{payload}."),
        ] {
            let err = check(&sr).unwrap_err();
            assert_eq!(err, SignedRequestError::NotTwoParts, "{sr}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        for sr in [
            format!("{sig}!.{payload}"),
            format!("{}.{payload}", STANDARD.encode([0xfb; 32])),
            format!("{sig}===.{payload}"),
            format!(" {sig}.{payload}"),
        ] {
            let err = check(&sr).unwrap_err();
            assert_eq!(
                err,
                SignedRequestError::BadBase64(Segment::Signature),
                "{sr}"
            );
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_401() {
        let good = meta_signed_request(SECRET, &callback_payload("218471", 1), false);
        let (_, payload) = good.split_once('.').unwrap();
        for len in [0usize, 1, 20, 31, 33, 64] {
            if len == 0 {
                continue; // an empty segment is NotTwoParts
            }
            let sr = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(vec![7u8; len]));
            let err = check(&sr).unwrap_err();
            assert_eq!(err, SignedRequestError::WrongSignatureLength(len));
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn a_signed_but_unreadable_payload_is_400() {
        assert_eq!(
            check(&signed_segment("e30*")),
            Err(SignedRequestError::BadBase64(Segment::Payload))
        );
        // `+` and `/` are standard base64, not base64url.
        let standard = STANDARD.encode(b"{\"algorithm\":\"HMAC-SHA256\",\"user_id\":\">>>???\"}");
        assert!(
            standard.contains('+') || standard.contains('/'),
            "{standard}"
        );
        assert_eq!(
            check(&signed_segment(&standard)),
            Err(SignedRequestError::BadBase64(Segment::Payload))
        );
        for not_an_object in ["not json", "[1]", "\"x\"", "{\"a\":"] {
            let err = check(&signed_segment(&URL_SAFE_NO_PAD.encode(not_an_object))).unwrap_err();
            assert_eq!(err, SignedRequestError::PayloadNotJson, "{not_an_object}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn claims_are_typed() {
        let ok = |claims: Value| check(&signed_claims(&claims));
        let base = |user: Value| json!({"algorithm": "HMAC-SHA256", "issued_at": 1_700_000_000, "user_id": user});
        assert_eq!(
            ok(base(json!(90071992547409931u64))).unwrap().user_id,
            "90071992547409931"
        );
        assert_eq!(ok(base(json!("218471"))).unwrap().expires, None);
        for (claims, expected) in [
            (
                json!({"algorithm": "HMAC-SHA256", "issued_at": 1}),
                SignedRequestError::MissingClaim("user_id"),
            ),
            (
                base(json!(null)),
                SignedRequestError::MissingClaim("user_id"),
            ),
            (base(json!("")), SignedRequestError::BadClaim("user_id")),
            (
                base(json!("12\n3")),
                SignedRequestError::BadClaim("user_id"),
            ),
            (base(json!(-5)), SignedRequestError::BadClaim("user_id")),
            (base(json!(1.5)), SignedRequestError::BadClaim("user_id")),
            (base(json!(["1"])), SignedRequestError::BadClaim("user_id")),
            (
                json!({"algorithm": "HMAC-SHA256", "user_id": "1"}),
                SignedRequestError::MissingClaim("issued_at"),
            ),
            (
                json!({"algorithm": "HMAC-SHA256", "user_id": "1", "issued_at": "soon"}),
                SignedRequestError::BadClaim("issued_at"),
            ),
            (
                json!({"algorithm": "HMAC-SHA256", "user_id": "1", "issued_at": i64::MIN}),
                SignedRequestError::BadClaim("issued_at"),
            ),
            (
                json!({"algorithm": "HMAC-SHA256", "user_id": "1", "issued_at": 1, "expires": "x"}),
                SignedRequestError::BadClaim("expires"),
            ),
        ] {
            let err = ok(claims.clone()).unwrap_err();
            assert_eq!(err, expected, "{claims}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        // Unknown claims are ignored.
        let extra =
            json!({"algorithm": "HMAC-SHA256", "issued_at": 1, "user_id": "1", "new": {"x": 1}});
        assert!(ok(extra).is_ok());
    }

    #[test]
    fn the_form_body_is_percent_decoded_once() {
        let sr = meta_signed_request(SECRET, &callback_payload("218471", 1_700_000_000), true);
        let encoded: String = url::form_urlencoded::byte_serialize(sr.as_bytes()).collect();
        assert!(encoded.contains("%3D"), "{encoded}");
        let body = format!("foo=bar&signed_request={encoded}&x=%FF");
        assert_eq!(
            verify_form(body.as_bytes(), &[&secret()]).unwrap().user_id,
            "218471"
        );
        // Unencoded is fine too: `=` and `.` and `-` and `_` need no escaping in a value.
        let raw = format!("signed_request={sr}");
        assert!(verify_form(raw.as_bytes(), &[&secret()]).is_ok());
        for (body, expected) in [
            ("".to_owned(), SignedRequestError::MissingField),
            (
                "signed_requests=1".to_owned(),
                SignedRequestError::MissingField,
            ),
            (
                format!("signed_request={sr}&signed_request={sr}"),
                SignedRequestError::RepeatedField,
            ),
            (
                "signed_request=".to_owned(),
                SignedRequestError::NotTwoParts,
            ),
            (
                "signed_request=a+b.c".to_owned(),
                SignedRequestError::BadBase64(Segment::Signature),
            ),
        ] {
            let err = verify_form(body.as_bytes(), &[&secret()]).unwrap_err();
            assert_eq!(err, expected, "{body}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        let big = format!("signed_request={sr}&pad={}", "x".repeat(MAX_FORM_BYTES));
        let err = verify_form(big.as_bytes(), &[&secret()]).unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn without_a_usable_secret_callbacks_are_500() {
        let sr = meta_signed_request("", &callback_payload("218471", 1), false);
        let empty = Secret::new("");
        for secrets in [vec![], vec![&empty]] {
            assert_eq!(verify(&sr, &secrets), Err(SignedRequestError::NoSecret));
            let body = format!("signed_request={sr}");
            let err = verify_form(body.as_bytes(), &secrets).unwrap_err();
            assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
        // A request signed with the empty key is not accepted next to a real secret.
        assert_eq!(
            verify(&sr, &[&empty, &secret()]),
            Err(SignedRequestError::Mismatch)
        );
    }

    #[test]
    fn errors_never_echo_the_request() {
        let sr = signed_claims(&json!({"algorithm": "none", "user_id": "secret-user"}));
        let message = check(&sr).unwrap_err().to_string();
        assert!(!message.contains("secret-user") && !message.contains(&sr[..10]));
    }

    #[test]
    fn confirmation_codes_are_long_alphanumeric_and_distinct() {
        let codes: std::collections::HashSet<String> =
            (0..1000).map(|_| confirmation_code()).collect();
        assert_eq!(codes.len(), 1000);
        for code in &codes {
            assert_eq!(code.len(), CONFIRMATION_CODE_LEN);
            assert!(code.len() >= 16);
            assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
        }
    }

    const CASES: u32 = 4096;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn arbitrary_strings_never_panic_and_never_verify(
            sr in prop_oneof![
                "\\PC{0,300}",
                "[A-Za-z0-9_=+/-]{0,60}\\.[A-Za-z0-9_=+/.-]{0,200}",
                "[A-Za-z0-9_-]{43}\\.[A-Za-z0-9_-]{0,200}",
            ],
        ) {
            let err = check(&sr).unwrap_err();
            prop_assert!(err.status().is_client_error(), "{err}");
        }

        #[test]
        fn arbitrary_form_bodies_never_panic_and_never_verify(
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..400),
                "(signed_request=|[a-z_]{0,10}=|&|%[0-9A-Fa-f]{2}|[A-Za-z0-9_.+-]{1,20}){0,20}"
                    .prop_map(String::into_bytes),
            ],
        ) {
            let err = verify_form(&body, &[&secret()]).unwrap_err();
            prop_assert!(err.status().is_client_error(), "{err}");
        }

        #[test]
        fn signed_requests_made_with_the_secret_verify_and_any_changed_character_is_refused(
            user in prop_oneof![
                "[0-9]{1,20}".prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                "[^\\p{Cc}]{1,30}".prop_map(Value::from),
            ],
            issued_at in 0..=i64::MAX,
            expires in proptest::option::of(any::<i64>()),
            padded in any::<bool>(),
            key in "[ -~]{1,64}",
            position in any::<prop::sample::Index>(),
            replacement in proptest::char::ranges(vec!['A'..='Z', 'a'..='z', '0'..='9', '-'..='.', '_'..='_', '='..='='].into()),
        ) {
            let mut payload = json!({"algorithm": "HMAC-SHA256", "issued_at": issued_at, "user_id": user});
            if let Some(expires) = expires {
                payload["expires"] = json!(expires);
            }
            let sr = meta_signed_request(&key, &payload, padded);
            let secret = Secret::new(key.clone());
            let verified = verify(&sr, &[&secret]).unwrap();
            let expected_user = match &user {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            prop_assert_eq!(verified.user_id, expected_user);
            prop_assert_eq!(verified.issued_at, issued_at);
            prop_assert_eq!(verified.expires, expires);
            // Through the form, percent-encoded.
            let form = format!(
                "a=1&{FIELD}={}",
                url::form_urlencoded::byte_serialize(sr.as_bytes()).collect::<String>()
            );
            prop_assert!(verify_form(form.as_bytes(), &[&secret]).is_ok());
            // Any one character changed: refused.
            let mut chars: Vec<char> = sr.chars().collect();
            let at = position.index(chars.len());
            if chars[at] != replacement {
                chars[at] = replacement;
                let tampered: String = chars.into_iter().collect();
                prop_assert!(verify(&tampered, &[&secret]).is_err(), "{} accepted", tampered);
            }
            // And another key never opens it.
            let other = Secret::new(format!("{key}x"));
            prop_assert_eq!(verify(&sr, &[&other]), Err(SignedRequestError::Mismatch));
        }
    }

    #[test]
    fn only_a_request_issued_within_the_age_and_skew_is_fresh() {
        let now = 1_800_000_000;
        let at = |issued_at: i64| SignedRequest {
            user_id: "218471".into(),
            issued_at,
            expires: None,
            algorithm: ALGORITHM.into(),
        };
        let day = DEFAULT_MAX_AGE_SECONDS;
        for fresh in [now, now - 86_400, now + FUTURE_SKEW_SECONDS, now - 1] {
            assert_eq!(check_fresh(&at(fresh), now, day), Ok(()), "{fresh}");
        }
        let stale = check_fresh(&at(now - 86_401), now, day).unwrap_err();
        assert_eq!(
            stale,
            SignedRequestError::Stale {
                age: 86_401,
                max_age: day
            }
        );
        assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
        assert_eq!(stale.code(), "stale_signed_request");
        let ahead = check_fresh(&at(now + FUTURE_SKEW_SECONDS + 1), now, day).unwrap_err();
        assert_eq!(ahead, SignedRequestError::IssuedInFuture { ahead: 301 });
        assert_eq!(ahead.status(), StatusCode::BAD_REQUEST);
        // Extremes do not overflow.
        assert!(check_fresh(&at(i64::MIN), now, day).is_err());
        assert!(check_fresh(&at(i64::MAX), now, day).is_err());
        assert!(check_fresh(&at(0), i64::MAX, u64::MAX).is_ok());
        // A shorter configured age.
        assert!(check_fresh(&at(now - 3601), now, 3600).is_err());
        assert!(check_fresh(&at(now - 3600), now, 3600).is_ok());
    }

    #[test]
    fn padding_is_optional_on_both_segments() {
        let claims = json!({"algorithm": "HMAC-SHA256", "issued_at": 1, "user_id": "1"});
        let segment = URL_SAFE.encode(claims.to_string());
        let mac = super::super::hmac_sha256(&secret(), segment.as_bytes());
        for sig in [URL_SAFE.encode(&mac), URL_SAFE_NO_PAD.encode(&mac)] {
            assert!(check(&format!("{sig}.{segment}")).is_ok());
        }
    }
}
