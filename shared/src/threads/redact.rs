//! Makes a URL safe to log or to put in an error: credentials in the query become `<redacted>`.
//!
//! The client keeps tokens in headers and form bodies, but Threads' token exchange, refresh and
//! `debug_token` calls take credentials in the query, and `paging.next` links carry the token.

/// Whether a query parameter's value is a secret or a single-use credential (`access_token`,
/// `client_secret`, `code`, …). The audit redaction uses the same rule for parameters in text.
pub fn is_sensitive_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("token")
        || key.contains("secret")
        || key == "code"
        || key == "code_verifier"
        || key == "password"
        || key == "signed_request"
}

const REDACTED: &str = "<redacted>";

/// Returns `raw` with every sensitive query value, any user:password and the fragment replaced.
/// Input that does not parse as a URL loses everything after its path.
pub fn redact_url(raw: &str) -> String {
    // `user:pw@host` parses as a cannot-be-a-base URL with scheme `user`: treat it as unparseable.
    let Some(mut url) = url::Url::parse(raw).ok().filter(|u| !u.cannot_be_a_base()) else {
        let cut = raw.find(['?', '#']).unwrap_or(raw.len());
        let head = &raw[..cut];
        // Without a parser we cannot tell user:password@ from a path: keep only what is surely safe.
        let head = match head.find('@') {
            Some(_) => "<unparseable url>",
            None => head,
        };
        return if cut < raw.len() {
            format!("{head}?{REDACTED}")
        } else {
            head.to_owned()
        };
    };
    if !url.username().is_empty() {
        let _ = url.set_username(REDACTED);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
    }
    if url.fragment().is_some() {
        url.set_fragment(None);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_sensitive_param(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lived_exchange_url_loses_secret_and_token() {
        let raw = "https://graph.threads.net/access_token?grant_type=th_exchange_token&client_secret=s3cr3t&access_token=THshort";
        let out = redact_url(raw);
        assert!(!out.contains("s3cr3t") && !out.contains("THshort"), "{out}");
        assert!(out.contains("grant_type=th_exchange_token"), "{out}");
        assert!(out.contains("client_secret=%3Credacted%3E"), "{out}");
        assert!(out.contains("access_token=%3Credacted%3E"), "{out}");
    }

    #[test]
    fn code_input_token_and_verifier_are_redacted() {
        let raw = "http://127.0.0.1:9/oauth/access_token?code=AQBx&client_id=123&code_verifier=v&input_token=THi&fields=id";
        let out = redact_url(raw);
        for secret in ["AQBx", "=v&", "THi"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(
            out.contains("client_id=123") && out.contains("fields=id"),
            "{out}"
        );
    }

    #[test]
    fn key_match_is_case_insensitive_and_catches_variants() {
        let out = redact_url("https://h/x?Access_Token=a1&refresh_token=b2&fb_exchange_token=c3");
        for secret in ["a1", "b2", "c3"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
    }

    #[test]
    fn userinfo_and_fragment_are_removed() {
        let out = redact_url("https://user:pw@h/path?x=1#access_token=frag");
        assert!(
            !out.contains("pw") && !out.contains("user:") && !out.contains("frag"),
            "{out}"
        );
        assert!(out.contains("/path?x=1"), "{out}");
    }

    #[test]
    fn url_without_query_is_unchanged() {
        assert_eq!(
            redact_url("https://graph.threads.net/v1.0/me"),
            "https://graph.threads.net/v1.0/me"
        );
    }

    #[test]
    fn unparseable_url_keeps_only_its_head() {
        assert_eq!(
            redact_url("/v1.0/me?access_token=THx"),
            "/v1.0/me?<redacted>"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url("u:p@host/x"), "<unparseable url>");
    }
}
