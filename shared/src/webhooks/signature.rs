//! `X-Hub-Signature-256: sha256=<hex>` — HMAC-SHA256 of the raw body under the Threads app secret.
//!
//! Verified over the exact bytes received (after API Gateway's base64, if any) and before any
//! parsing: Meta signs JSON with `\/` and `\uXXXX` escapes, so re-serialised JSON never matches
//! (case W1). The comparison is constant time (`hmac`'s `verify_slice`).
//!
//! Decisions: the hex digest may be upper or lower case and the `sha256` label any case — Meta
//! sends lowercase, and either spelling names the same 32 bytes, so accepting both widens nothing.
//! Surrounding spaces/tabs (HTTP optional white space) are ignored; anything else that is not
//! exactly `sha256=` + 64 hex digits is refused, as is a header sent twice.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use lambda_http::http::HeaderMap;

use super::{MAX_BODY_BYTES, MacCheck, StatusCode, check_mac, hmac_sha256};
use crate::config::Secret;

/// The header's name (HTTP header names are case-insensitive; this is the lowercase form).
pub const HEADER: &str = "x-hub-signature-256";

/// Hex digits in a SHA-256 digest.
const HEX_LEN: usize = 64;

/// Why a delivery's signature was refused. No variant carries the header, the body or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is sent more than once")]
    Repeated,
    #[error("the X-Hub-Signature-256 header is empty")]
    Empty,
    #[error("the X-Hub-Signature-256 header has a byte that is not visible ASCII")]
    NotVisibleAscii,
    #[error("the X-Hub-Signature-256 header has no `sha256=` prefix")]
    NoPrefix,
    #[error("the X-Hub-Signature-256 header carries a SHA-1 signature; only sha256 is accepted")]
    LegacySha1,
    #[error("the X-Hub-Signature-256 header names an algorithm other than sha256")]
    WrongAlgorithm,
    #[error("the X-Hub-Signature-256 digest has {0} characters, not 64")]
    WrongLength(usize),
    #[error("the X-Hub-Signature-256 digest has a non-hex character at position {0}")]
    NotHex(usize),
    #[error("the signature does not match the body under any configured app secret")]
    Mismatch,
    #[error("the body has {0} bytes, over the limit of {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("the body is marked base64-encoded but is not valid base64")]
    BodyNotBase64,
    #[error("no Threads app secret is configured, so no delivery can be verified")]
    NoSecret,
}

impl SignatureError {
    /// A stable machine-readable code for the problem+json answer.
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::BAD_REQUEST => "malformed_body",
            _ => "invalid_signature",
        }
    }

    /// The answer at the edge: [`Self::status`], [`Self::code`] and the reason.
    pub fn problem(&self) -> crate::edge::Problem {
        super::problem(self.status(), self.code(), self)
    }

    /// The HTTP status the webhook route answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            SignatureError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            SignatureError::BodyNotBase64 => StatusCode::BAD_REQUEST,
            // ThreadStorm's fault: a 5xx makes Meta retry, so the delivery survives the fix.
            SignatureError::NoSecret => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Standard base64 as API Gateway writes it; padding optional on decode.
const API_GATEWAY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bytes Meta sent: `body` itself, or its base64 decoding when API Gateway set
/// `isBase64Encoded`. (`lambda_http` already decodes into `Body::Binary`; this is for raw
/// API Gateway events.) Over [`MAX_BODY_BYTES`] is refused before decoding.
pub fn raw_body(body: impl AsRef<[u8]>, is_base64: bool) -> Result<Vec<u8>, SignatureError> {
    let body = body.as_ref();
    if !is_base64 {
        if body.len() > MAX_BODY_BYTES {
            return Err(SignatureError::TooLarge(body.len()));
        }
        return Ok(body.to_vec());
    }
    // Four base64 characters carry three bytes; refuse what could only decode to too much.
    if body.len() / 4 * 3 > MAX_BODY_BYTES + 3 {
        return Err(SignatureError::TooLarge(body.len() / 4 * 3));
    }
    let decoded = API_GATEWAY_BASE64
        .decode(body)
        .map_err(|_| SignatureError::BodyNotBase64)?;
    if decoded.len() > MAX_BODY_BYTES {
        return Err(SignatureError::TooLarge(decoded.len()));
    }
    Ok(decoded)
}

/// Checks `header` (the `X-Hub-Signature-256` value as bytes, `None` when absent) against `body`
/// under each of `secrets` (the current app secret and, during a rotation, the previous one).
pub fn verify(
    header: Option<&[u8]>,
    body: &[u8],
    secrets: &[&Secret],
) -> Result<(), SignatureError> {
    if secrets.iter().all(|s| s.expose().is_empty()) {
        return Err(SignatureError::NoSecret);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(SignatureError::TooLarge(body.len()));
    }
    let digest = parse_header(header.ok_or(SignatureError::Missing)?)?;
    match check_mac(secrets, body, &digest) {
        MacCheck::Matches => Ok(()),
        MacCheck::NoMatch => Err(SignatureError::Mismatch),
        MacCheck::NoSecret => Err(SignatureError::NoSecret),
    }
}

/// [`verify`] with the header taken from a request's headers; a header sent twice is refused
/// rather than guessing which one counts.
pub fn verify_headers(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&Secret],
) -> Result<(), SignatureError> {
    let mut values = headers.get_all(HEADER).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(SignatureError::Repeated);
    }
    verify(first.map(|v| v.as_bytes()), body, secrets)
}

/// The header value Meta sends for `body`: `sha256=` + lowercase hex (for tests and tools).
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut out = String::with_capacity(7 + HEX_LEN);
    out.push_str("sha256=");
    for byte in hmac_sha256(secret, body) {
        out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `sha256=<64 hex>` → the 32 digest bytes.
fn parse_header(raw: &[u8]) -> Result<[u8; 32], SignatureError> {
    let value = trim_ows(raw);
    if value.is_empty() {
        return Err(SignatureError::Empty);
    }
    if !value.iter().all(|b| b.is_ascii_graphic()) {
        return Err(SignatureError::NotVisibleAscii);
    }
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return Err(SignatureError::NoPrefix);
    };
    let (label, digest) = value.split_at(eq);
    let digest = digest.get(1..).unwrap_or_default();
    if !label.eq_ignore_ascii_case(b"sha256") {
        return Err(if label.eq_ignore_ascii_case(b"sha1") {
            SignatureError::LegacySha1
        } else if label.is_empty() {
            SignatureError::NoPrefix
        } else {
            SignatureError::WrongAlgorithm
        });
    }
    if digest.len() != HEX_LEN {
        return Err(SignatureError::WrongLength(digest.len()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in digest.chunks_exact(2).enumerate() {
        let high = hex_value(pair[0]).ok_or(SignatureError::NotHex(2 * i))?;
        let low = hex_value(pair[1]).ok_or(SignatureError::NotHex(2 * i + 1))?;
        out[i] = high << 4 | low;
    }
    Ok(out)
}

/// Strips HTTP optional white space (spaces and tabs) from both ends.
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;
    use proptest::prelude::*;

    // Case W1, exactly as in shared/cases/README.md.
    const W1_SECRET: &str = "test_app_secret";
    const W1_A_BODY: &str = "{\"text\":\"héllo 🚀\"}";
    const W1_A_HEADER: &str =
        "sha256=999254111d90509681052cc3a8453d0501ae7ceb1c86f907e10a16e96f8a2b40";
    const W1_B_BODY: &str = r#"{"text":"h\u00e9llo \ud83d\ude80"}"#;
    const W1_B_HEADER: &str =
        "sha256=286cb6b374186c99b4f41886213582d4f0330b46b9ebf222b8939b98d2f13e8c";
    const W1_D_BASE64: &str = "eyJ0ZXh0IjoiaMOpbGxvIPCfmoAifQ==";

    fn w1_secret() -> Secret {
        Secret::new(W1_SECRET)
    }

    fn check(header: &str, body: &[u8]) -> Result<(), SignatureError> {
        verify(Some(header.as_bytes()), body, &[&w1_secret()])
    }

    fn text_of(body: &[u8]) -> String {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        value["text"].as_str().unwrap().to_owned()
    }

    #[test]
    fn w1a_raw_utf8_body_with_its_signature_is_accepted() {
        assert_eq!(W1_A_BODY.len(), 22);
        assert_eq!(check(W1_A_HEADER, W1_A_BODY.as_bytes()), Ok(()));
        assert_eq!(text_of(W1_A_BODY.as_bytes()), "héllo 🚀");
    }

    #[test]
    fn w1b_escaped_body_with_its_signature_is_accepted() {
        assert_eq!(W1_B_BODY.len(), 34);
        assert_eq!(check(W1_B_HEADER, W1_B_BODY.as_bytes()), Ok(()));
        assert_eq!(text_of(W1_B_BODY.as_bytes()), "héllo 🚀");
    }

    #[test]
    fn w1c_escaped_body_with_the_utf8_signature_is_refused_401() {
        let err = check(W1_A_HEADER, W1_B_BODY.as_bytes()).unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        // And the other way round.
        assert_eq!(
            check(W1_B_HEADER, W1_A_BODY.as_bytes()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn w1d_base64_body_from_api_gateway_is_decoded_then_accepted() {
        let body = raw_body(W1_D_BASE64, true).unwrap();
        assert_eq!(body, W1_A_BODY.as_bytes());
        assert_eq!(check(W1_A_HEADER, &body), Ok(()));
        assert_eq!(text_of(&body), "héllo 🚀");
        // Verifying the base64 text itself, as a receiver that forgot the flag would, fails.
        assert_eq!(
            check(W1_A_HEADER, W1_D_BASE64.as_bytes()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn reserialised_json_does_not_verify_which_is_why_raw_bytes_are_used() {
        let value: serde_json::Value = serde_json::from_str(W1_B_BODY).unwrap();
        let reserialised = serde_json::to_vec(&value).unwrap();
        assert_eq!(reserialised, W1_A_BODY.as_bytes());
        assert_eq!(
            check(W1_B_HEADER, &reserialised),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn sign_produces_metas_lowercase_header() {
        assert_eq!(sign(&w1_secret(), W1_A_BODY.as_bytes()), W1_A_HEADER);
        assert_eq!(sign(&w1_secret(), W1_B_BODY.as_bytes()), W1_B_HEADER);
    }

    #[test]
    fn every_malformed_header_is_a_typed_401() {
        let hex = &W1_A_HEADER[7..];
        let cases: Vec<(Vec<u8>, SignatureError)> = vec![
            (b"".to_vec(), SignatureError::Empty),
            (b"   \t ".to_vec(), SignatureError::Empty),
            (hex.as_bytes().to_vec(), SignatureError::NoPrefix),
            (format!("={hex}").into_bytes(), SignatureError::NoPrefix),
            (
                b"sha1=0123456789abcdef0123456789abcdef01234567".to_vec(),
                SignatureError::LegacySha1,
            ),
            (
                format!("sha512={hex}").into_bytes(),
                SignatureError::WrongAlgorithm,
            ),
            (
                format!("sha-256={hex}").into_bytes(),
                SignatureError::WrongAlgorithm,
            ),
            (b"sha256=".to_vec(), SignatureError::WrongLength(0)),
            (
                format!("sha256={}", &hex[..63]).into_bytes(),
                SignatureError::WrongLength(63),
            ),
            (
                format!("sha256={hex}0").into_bytes(),
                SignatureError::WrongLength(65),
            ),
            (
                format!("sha256={hex}{hex}").into_bytes(),
                SignatureError::WrongLength(128),
            ),
            // Two signatures joined by a proxy are not one.
            (
                format!("sha256={hex},sha256={hex}").into_bytes(),
                SignatureError::WrongLength(136),
            ),
            (
                format!("sha256={}g", &hex[..63]).into_bytes(),
                SignatureError::NotHex(63),
            ),
            (
                format!("sha256=x{}", &hex[1..]).into_bytes(),
                SignatureError::NotHex(0),
            ),
            (
                format!("sha256={}é", &hex[..62]).into_bytes(),
                SignatureError::NotVisibleAscii,
            ),
            (
                [b"sha256=".as_slice(), &[0xff; 64]].concat(),
                SignatureError::NotVisibleAscii,
            ),
            (
                format!("sha256= {hex}").into_bytes(),
                SignatureError::NotVisibleAscii,
            ),
            (
                format!("sha256={hex}\0").into_bytes(),
                SignatureError::NotVisibleAscii,
            ),
            (
                format!("sha256={}", "0".repeat(64)).into_bytes(),
                SignatureError::Mismatch,
            ),
        ];
        for (header, expected) in cases {
            let got = verify(Some(&header), W1_A_BODY.as_bytes(), &[&w1_secret()]);
            assert_eq!(
                got,
                Err(expected.clone()),
                "{:?}",
                String::from_utf8_lossy(&header)
            );
            assert_eq!(expected.status(), StatusCode::UNAUTHORIZED);
        }
        let missing = verify(None, W1_A_BODY.as_bytes(), &[&w1_secret()]);
        assert_eq!(missing, Err(SignatureError::Missing));
        assert_eq!(SignatureError::Missing.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn uppercase_hex_and_label_and_surrounding_spaces_name_the_same_digest() {
        let upper = format!("SHA256={}", W1_A_HEADER[7..].to_ascii_uppercase());
        assert_eq!(check(&upper, W1_A_BODY.as_bytes()), Ok(()));
        assert_eq!(
            check(&format!(" \t{W1_A_HEADER} "), W1_A_BODY.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_during_rotation_and_a_stranger_is_not() {
        let current = Secret::new("new_app_secret");
        let previous = w1_secret();
        let body = W1_A_BODY.as_bytes();
        let header = Some(W1_A_HEADER.as_bytes());
        assert_eq!(verify(header, body, &[&current, &previous]), Ok(()));
        assert_eq!(
            verify(header, body, &[&current]),
            Err(SignatureError::Mismatch)
        );
        let signed_new = sign(&current, body);
        assert_eq!(
            verify(Some(signed_new.as_bytes()), body, &[&current, &previous]),
            Ok(())
        );
    }

    #[test]
    fn without_a_usable_secret_nothing_verifies_and_the_answer_is_500() {
        let empty = Secret::new("");
        for secrets in [vec![], vec![&empty]] {
            let err =
                verify(Some(W1_A_HEADER.as_bytes()), W1_A_BODY.as_bytes(), &secrets).unwrap_err();
            assert_eq!(err, SignatureError::NoSecret);
            assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
        // An empty secret next to a real one is skipped, not trusted.
        let forged = {
            use hmac::{KeyInit, Mac};
            let mut mac = super::super::HmacSha256::new_from_slice(b"").unwrap();
            mac.update(W1_A_BODY.as_bytes());
            let tag = mac.finalize().into_bytes();
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256={hex}")
        };
        assert_eq!(
            verify(
                Some(forged.as_bytes()),
                W1_A_BODY.as_bytes(),
                &[&empty, &w1_secret()]
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn oversized_bodies_are_413_before_hashing() {
        let body = vec![b'a'; MAX_BODY_BYTES + 1];
        let header = sign(&w1_secret(), &body);
        let err = check(&header, &body).unwrap_err();
        assert_eq!(err, SignatureError::TooLarge(MAX_BODY_BYTES + 1));
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let at_limit = vec![b'a'; MAX_BODY_BYTES];
        assert_eq!(check(&sign(&w1_secret(), &at_limit), &at_limit), Ok(()));
    }

    #[test]
    fn raw_body_refuses_bad_base64_with_400_and_big_bodies_with_413() {
        for bad in [
            "eyJ0ZXh0Ijoi*",
            "eyJ0ZXh0IjoiaMOpbGxvIPCfmoAifQ===",
            "a",
            "e-_x",
        ] {
            let err = raw_body(bad, true).unwrap_err();
            assert_eq!(err, SignatureError::BodyNotBase64, "{bad}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        // Padding is optional; plain bodies pass through untouched.
        assert_eq!(
            raw_body("eyJ0ZXh0IjoiaMOpbGxvIPCfmoAifQ", true).unwrap(),
            W1_A_BODY.as_bytes()
        );
        assert_eq!(raw_body(W1_B_BODY, false).unwrap(), W1_B_BODY.as_bytes());
        assert_eq!(raw_body("", true).unwrap(), b"");
        let big = "A".repeat((MAX_BODY_BYTES + 8) / 3 * 4);
        assert_eq!(
            raw_body(&big, true).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            raw_body(vec![b'x'; MAX_BODY_BYTES + 1], false).unwrap_err(),
            SignatureError::TooLarge(MAX_BODY_BYTES + 1)
        );
    }

    #[test]
    fn headers_are_found_in_any_case_and_a_repeated_header_is_refused() {
        let body = W1_A_BODY.as_bytes();
        let mut headers = HeaderMap::new();
        assert_eq!(
            verify_headers(&headers, body, &[&w1_secret()]),
            Err(SignatureError::Missing)
        );
        headers.insert("X-Hub-Signature-256", HeaderValue::from_static(W1_A_HEADER));
        assert_eq!(verify_headers(&headers, body, &[&w1_secret()]), Ok(()));
        headers.append("x-hub-signature-256", HeaderValue::from_static(W1_A_HEADER));
        assert_eq!(
            verify_headers(&headers, body, &[&w1_secret()]),
            Err(SignatureError::Repeated)
        );
        // The legacy SHA-1 header alone is not a signature ThreadStorm accepts.
        let mut legacy = HeaderMap::new();
        legacy.insert(
            "x-hub-signature",
            HeaderValue::from_static("sha1=0123456789abcdef0123456789abcdef01234567"),
        );
        assert_eq!(
            verify_headers(&legacy, body, &[&w1_secret()]),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn errors_never_echo_the_header_or_the_secret() {
        let header = format!("sha256={}zz", "ab".repeat(31));
        let err = check(&header, b"{}").unwrap_err();
        let message = err.to_string();
        assert!(!message.contains("abab"), "{message}");
        assert!(!message.contains(W1_SECRET), "{message}");
    }

    /// Thousands of inputs per property: enough to reach every branch of the header parser many
    /// times over, and still a second or two.
    const CASES: u32 = 4096;

    fn secret_strategy() -> impl Strategy<Value = Secret> {
        "[ -~]{1,64}".prop_map(Secret::new)
    }

    /// Headers that look almost right, to get past the early refusals.
    fn near_header() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..160),
            "(sha256|SHA256|sha1|sha|)=?[0-9a-fA-F]{0,70}".prop_map(String::into_bytes),
            "[ \t]{0,2}sha256=[0-9a-fA-FgG ]{62,66}[ \t]{0,2}".prop_map(String::into_bytes),
            "\\PC{0,80}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn arbitrary_headers_and_bodies_never_panic_and_never_verify(
            header in near_header(),
            body in proptest::collection::vec(any::<u8>(), 0..512),
            secret in secret_strategy(),
        ) {
            let result = verify(Some(&header), &body, &[&secret]);
            // The odds of a random header being the true HMAC are 2^-256.
            prop_assert!(result.is_err());
            let status = result.unwrap_err().status();
            prop_assert!(status == StatusCode::UNAUTHORIZED, "{status}");
        }

        #[test]
        fn signatures_made_with_the_secret_verify(
            body in proptest::collection::vec(any::<u8>(), 0..1024),
            secret in secret_strategy(),
            other in secret_strategy(),
            previous_first in any::<bool>(),
        ) {
            let header = sign(&secret, &body);
            prop_assert_eq!(verify(Some(header.as_bytes()), &body, &[&secret]), Ok(()));
            let both = if previous_first { [&other, &secret] } else { [&secret, &other] };
            prop_assert_eq!(verify(Some(header.as_bytes()), &body, &both), Ok(()));
            if other != secret {
                prop_assert_eq!(
                    verify(Some(header.as_bytes()), &body, &[&other]),
                    Err(SignatureError::Mismatch)
                );
            }
        }

        #[test]
        fn flipping_any_body_bit_is_refused(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            secret in secret_strategy(),
            index in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let header = sign(&secret, &body);
            let mut tampered = body.clone();
            tampered[index.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(
                verify(Some(header.as_bytes()), &tampered, &[&secret]),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn changing_any_digest_digit_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            secret in secret_strategy(),
            position in 0usize..64,
            delta in 1u8..16,
        ) {
            let header = sign(&secret, &body).into_bytes();
            let mut tampered = header.clone();
            let at = 7 + position;
            let value = hex_value(tampered[at]).unwrap_or_default();
            tampered[at] = HEX_DIGITS[usize::from((value + delta) % 16)];
            prop_assert_eq!(
                verify(Some(&tampered), &body, &[&secret]),
                Err(SignatureError::Mismatch)
            );
            // Truncated or extended, it is refused before any hashing.
            prop_assert!(verify(Some(&header[..header.len() - 1]), &body, &[&secret]).is_err());
        }

        #[test]
        fn raw_body_never_panics_and_round_trips_base64(
            text in "\\PC{0,200}",
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = raw_body(&text, true);
            prop_assert_eq!(raw_body(&text, false).unwrap(), text.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(raw_body(&encoded, true).unwrap(), bytes.clone());
            let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
            prop_assert_eq!(raw_body(&unpadded, true).unwrap(), bytes);
        }
    }
}
