//! Meta's subscription check: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` →
//! 200 `text/plain` with the challenge verbatim when the token is ThreadStorm's (case W2).
//!
//! Decisions: the token is compared in constant time (SHA-256 of both sides, so not even its
//! length leaks), against the current and, during a rotation, the previous verify token. A mode
//! other than `subscribe` (or none) and a missing or wrong token are 403, as Meta's docs say;
//! the challenge is checked only after the token, and must be 1–64 ASCII letters or digits (Meta
//! sends an integer) so that nothing a browser could run is ever reflected; a parameter given
//! twice is 400 rather than a guess at which one counts.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::StatusCode;
use crate::config::Secret;

/// The content type of the echoed challenge.
pub const CONTENT_TYPE: &str = "text/plain";

/// The longest challenge echoed. Meta's are 9–10 digit integers.
pub const MAX_CHALLENGE_LEN: usize = 64;

const MODE: &str = "hub.mode";
const VERIFY_TOKEN: &str = "hub.verify_token";
const CHALLENGE: &str = "hub.challenge";

/// Why the handshake was refused. The challenge is never echoed on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("hub.mode is missing or not `subscribe`")]
    NotSubscribe,
    #[error("hub.verify_token is missing")]
    MissingToken,
    #[error("hub.verify_token is not ThreadStorm's verify token")]
    WrongToken,
    #[error("hub.challenge is missing")]
    MissingChallenge,
    #[error("hub.challenge must be 1 to {MAX_CHALLENGE_LEN} ASCII letters or digits")]
    BadChallenge,
    #[error("{0} is given more than once")]
    Repeated(&'static str),
    #[error("no webhook verify token is configured")]
    NoToken,
}

impl HandshakeError {
    /// A stable machine-readable code for the problem+json answer.
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::FORBIDDEN => "verification_refused",
            _ => "invalid_verification_request",
        }
    }

    /// The answer at the edge: [`Self::status`], [`Self::code`] and the reason.
    pub fn problem(&self) -> crate::edge::Problem {
        super::problem(self.status(), self.code(), self)
    }

    /// The HTTP status the route answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::NotSubscribe
            | HandshakeError::MissingToken
            | HandshakeError::WrongToken => StatusCode::FORBIDDEN,
            HandshakeError::MissingChallenge
            | HandshakeError::BadChallenge
            | HandshakeError::Repeated(_) => StatusCode::BAD_REQUEST,
            HandshakeError::NoToken => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The `hub.*` parameters of a verification request, already percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubQuery {
    pub mode: Option<String>,
    pub verify_token: Option<String>,
    pub challenge: Option<String>,
    repeated: Option<&'static str>,
}

impl HubQuery {
    /// From decoded (name, value) pairs, e.g. `lambda_http`'s `query_string_parameters().iter()`.
    /// Other parameters are ignored.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut query = HubQuery::default();
        for (name, value) in pairs {
            let (slot, name) = match name.as_ref() {
                MODE => (&mut query.mode, MODE),
                VERIFY_TOKEN => (&mut query.verify_token, VERIFY_TOKEN),
                CHALLENGE => (&mut query.challenge, CHALLENGE),
                _ => continue,
            };
            if slot.is_some() {
                query.repeated.get_or_insert(name);
            }
            *slot = Some(value.as_ref().to_owned());
        }
        query
    }

    /// From a raw query string (`hub.mode=subscribe&…`, without the `?`), percent-decoding once.
    pub fn from_query_string(raw: &str) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(raw.as_bytes()))
    }
}

/// The challenge to echo: the exact bytes of the 200 body, served as [`CONTENT_TYPE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge(String);

impl Challenge {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Answers a verification request: the challenge to echo, or why not. `verify_tokens` holds the
/// current token and, during a rotation, the previous one; empty tokens are never matched.
pub fn answer(query: &HubQuery, verify_tokens: &[&Secret]) -> Result<Challenge, HandshakeError> {
    if verify_tokens.iter().all(|t| t.expose().is_empty()) {
        return Err(HandshakeError::NoToken);
    }
    if let Some(name) = query.repeated {
        return Err(HandshakeError::Repeated(name));
    }
    if query.mode.as_deref() != Some("subscribe") {
        return Err(HandshakeError::NotSubscribe);
    }
    let given = query
        .verify_token
        .as_deref()
        .ok_or(HandshakeError::MissingToken)?;
    if !token_matches(given, verify_tokens) {
        return Err(HandshakeError::WrongToken);
    }
    let challenge = query
        .challenge
        .as_deref()
        .ok_or(HandshakeError::MissingChallenge)?;
    if challenge.is_empty()
        || challenge.len() > MAX_CHALLENGE_LEN
        || !challenge.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(HandshakeError::BadChallenge);
    }
    Ok(Challenge(challenge.to_owned()))
}

/// Constant time: both sides are hashed to 32 bytes first, and every token is compared.
fn token_matches(given: &str, tokens: &[&Secret]) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let mut matched = subtle::Choice::from(0);
    for token in tokens {
        if token.expose().is_empty() {
            continue;
        }
        let expected = Sha256::digest(token.expose().as_bytes());
        matched |= given.as_slice().ct_eq(expected.as_slice());
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Case W2.
    const W2_TOKEN: &str = "vt-test-123";
    const W2_QUERY: &str =
        "hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge=1158201444";

    fn token() -> Secret {
        Secret::new(W2_TOKEN)
    }

    fn answer_raw(raw: &str) -> Result<Challenge, HandshakeError> {
        answer(&HubQuery::from_query_string(raw), &[&token()])
    }

    #[test]
    fn w2_the_right_token_gets_exactly_the_ten_challenge_bytes() {
        let challenge = answer_raw(W2_QUERY).unwrap();
        assert_eq!(challenge.as_bytes(), b"1158201444");
        assert_eq!(challenge.as_bytes().len(), 10);
        assert_eq!(CONTENT_TYPE, "text/plain");
    }

    #[test]
    fn w2_a_wrong_token_is_403_and_the_challenge_is_not_echoed() {
        for raw in [
            "hub.mode=subscribe&hub.verify_token=vt-test-124&hub.challenge=1158201444",
            "hub.mode=subscribe&hub.verify_token=vt-test-12&hub.challenge=1158201444",
            "hub.mode=subscribe&hub.verify_token=vt-test-1234&hub.challenge=1158201444",
            "hub.mode=subscribe&hub.verify_token=VT-TEST-123&hub.challenge=1158201444",
            "hub.mode=subscribe&hub.verify_token=&hub.challenge=1158201444",
        ] {
            let err = answer_raw(raw).unwrap_err();
            assert_eq!(err, HandshakeError::WrongToken, "{raw}");
            assert_eq!(err.status(), StatusCode::FORBIDDEN);
            assert!(!err.to_string().contains("1158201444"));
        }
        let err = answer_raw("hub.mode=subscribe&hub.challenge=1158201444").unwrap_err();
        assert_eq!(err, HandshakeError::MissingToken);
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn w2_unsubscribe_or_no_mode_is_403() {
        for raw in [
            "hub.mode=unsubscribe&hub.verify_token=vt-test-123&hub.challenge=1158201444",
            "hub.mode=Subscribe&hub.verify_token=vt-test-123&hub.challenge=1158201444",
            "hub.verify_token=vt-test-123&hub.challenge=1158201444",
            "",
        ] {
            let err = answer_raw(raw).unwrap_err();
            assert_eq!(err, HandshakeError::NotSubscribe, "{raw}");
            assert_eq!(err.status(), StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn a_challenge_that_could_be_markup_is_never_echoed() {
        for challenge in [
            "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "1158201444%0A",
            "115%20820",
            "-1158201444",
            "%E2%80%8B1",
            "",
        ] {
            let raw = format!(
                "hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge={challenge}"
            );
            let err = answer_raw(&raw).unwrap_err();
            assert_eq!(err, HandshakeError::BadChallenge, "{challenge}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        let long = "9".repeat(MAX_CHALLENGE_LEN + 1);
        let raw = format!("hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge={long}");
        assert_eq!(answer_raw(&raw), Err(HandshakeError::BadChallenge));
        let longest = "Az9".repeat(MAX_CHALLENGE_LEN / 3);
        let raw =
            format!("hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge={longest}");
        assert_eq!(answer_raw(&raw).unwrap().as_str(), longest);
        assert_eq!(
            answer_raw("hub.mode=subscribe&hub.verify_token=vt-test-123"),
            Err(HandshakeError::MissingChallenge)
        );
    }

    #[test]
    fn the_token_is_checked_before_the_challenge() {
        // An unauthenticated caller learns nothing about what challenges are accepted.
        let raw = "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=%3Cb%3E";
        assert_eq!(answer_raw(raw), Err(HandshakeError::WrongToken));
    }

    #[test]
    fn the_previous_token_works_during_rotation() {
        let current = Secret::new("vt-rotated-456");
        let previous = token();
        let query = HubQuery::from_query_string(W2_QUERY);
        assert!(answer(&query, &[&current, &previous]).is_ok());
        assert!(answer(&query, &[&previous, &current]).is_ok());
        assert_eq!(answer(&query, &[&current]), Err(HandshakeError::WrongToken));
    }

    #[test]
    fn no_configured_token_is_500_and_an_empty_token_never_matches() {
        let empty = Secret::new("");
        let raw = "hub.mode=subscribe&hub.verify_token=&hub.challenge=1";
        let query = HubQuery::from_query_string(raw);
        for tokens in [vec![], vec![&empty]] {
            let err = answer(&query, &tokens).unwrap_err();
            assert_eq!(err, HandshakeError::NoToken);
            assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
        assert_eq!(
            answer(&query, &[&empty, &token()]),
            Err(HandshakeError::WrongToken)
        );
    }

    #[test]
    fn repeated_parameters_are_400() {
        for (raw, name) in [
            (
                "hub.mode=subscribe&hub.verify_token=x&hub.verify_token=vt-test-123&hub.challenge=1",
                VERIFY_TOKEN,
            ),
            (
                "hub.mode=subscribe&hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge=1",
                MODE,
            ),
            (
                "hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge=1&hub.challenge=2",
                CHALLENGE,
            ),
        ] {
            let err = answer_raw(raw).unwrap_err();
            assert_eq!(err, HandshakeError::Repeated(name));
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn parameters_are_percent_decoded_once_and_others_ignored() {
        let secret = Secret::new("a b+c/d%");
        let raw = "utm=1&hub.mode=subscribe&hub.verify_token=a+b%2Bc%2Fd%25&hub.challenge=42";
        let query = HubQuery::from_query_string(raw);
        assert_eq!(answer(&query, &[&secret]).unwrap().as_str(), "42");
        // Decoded pairs (as lambda_http gives them) are not decoded again.
        let pairs = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "a b+c/d%"),
            ("hub.challenge", "42"),
        ];
        assert!(answer(&HubQuery::from_pairs(pairs), &[&secret]).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_queries_never_panic_and_only_the_token_opens(
            raw in "\\PC{0,200}",
            token in "[ -~]{1,40}",
        ) {
            let secret = Secret::new(token.clone());
            let query = HubQuery::from_query_string(&raw);
            match answer(&query, &[&secret]) {
                Ok(challenge) => {
                    prop_assert_eq!(query.verify_token.as_deref(), Some(token.as_str()));
                    prop_assert!(challenge.as_bytes().iter().all(u8::is_ascii_alphanumeric));
                }
                Err(err) => prop_assert!(err.status().is_client_error()),
            }
        }

        #[test]
        fn a_good_request_echoes_its_challenge_and_any_other_token_is_refused(
            token in "[ -~]{1,40}",
            other in "[ -~]{0,40}",
            challenge in "[A-Za-z0-9]{1,64}",
        ) {
            let secret = Secret::new(token.clone());
            let good = HubQuery::from_pairs([
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token.as_str()),
                ("hub.challenge", challenge.as_str()),
            ]);
            let echoed = answer(&good, &[&secret]).map(Challenge::into_string);
            prop_assert_eq!(echoed, Ok(challenge.clone()));
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            serializer
                .append_pair("hub.mode", "subscribe")
                .append_pair("hub.verify_token", &token)
                .append_pair("hub.challenge", &challenge);
            let raw = serializer.finish();
            prop_assert!(answer(&HubQuery::from_query_string(&raw), &[&secret]).is_ok());
            if other != token {
                let bad = HubQuery::from_pairs([
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", other.as_str()),
                    ("hub.challenge", challenge.as_str()),
                ]);
                prop_assert_eq!(answer(&bad, &[&secret]), Err(HandshakeError::WrongToken));
            }
        }
    }
}
