//! The OAuth side of Threads: the authorization window's URL and the token responses.
//!
//! The window is opened by the user's browser, so only its URL is built here; the exchanges and
//! refresh are calls on [`super::ThreadsClient`].

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::ids::{AccessToken, UserId};
use crate::config::Secret;

/// The Threads app's own id and secret (not the Meta app's: using that pair is the most common
/// setup failure). Passed per call so a rotated secret is picked up without rebuilding the client.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

impl AppCredentials {
    /// The app access token, `{client_id}|{client_secret}` (Graph's form), for `debug_token`.
    pub fn app_token(&self) -> AccessToken {
        AccessToken::new(format!(
            "{}|{}",
            self.client_id,
            self.client_secret.expose()
        ))
    }
}

/// Permissions a user grants in the authorization window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Basic,
    ContentPublish,
    ReadReplies,
    ManageReplies,
    ManageInsights,
    Delete,
    KeywordSearch,
    LocationTagging,
    ManageMentions,
    ProfileDiscovery,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Basic => "threads_basic",
            Scope::ContentPublish => "threads_content_publish",
            Scope::ReadReplies => "threads_read_replies",
            Scope::ManageReplies => "threads_manage_replies",
            Scope::ManageInsights => "threads_manage_insights",
            Scope::Delete => "threads_delete",
            Scope::KeywordSearch => "threads_keyword_search",
            Scope::LocationTagging => "threads_location_tagging",
            Scope::ManageMentions => "threads_manage_mentions",
            Scope::ProfileDiscovery => "threads_profile_discovery",
        }
    }

    /// Reads a scope name as Threads spells it.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub const ALL: [Scope; 10] = [
        Scope::Basic,
        Scope::ContentPublish,
        Scope::ReadReplies,
        Scope::ManageReplies,
        Scope::ManageInsights,
        Scope::Delete,
        Scope::KeywordSearch,
        Scope::LocationTagging,
        Scope::ManageMentions,
        Scope::ProfileDiscovery,
    ];
}

/// What goes into the authorization window's URL. ThreadStorm always sends `state` and a PKCE
/// S256 challenge (Meta does not document PKCE; sending it is harmless).
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<Scope>,
    pub state: String,
    /// base64url(SHA-256(verifier)) without padding.
    pub code_challenge: String,
}

impl AuthorizeRequest {
    /// The window URL: `window` with client_id, redirect_uri, scope (comma-separated, always
    /// including threads_basic), response_type=code, state, code_challenge and
    /// code_challenge_method=S256. Parameters already on `window` are replaced, not repeated.
    pub fn url(&self, window: &Url) -> Url {
        let mut scopes = vec![Scope::Basic];
        for scope in &self.scopes {
            if !scopes.contains(scope) {
                scopes.push(*scope);
            }
        }
        let scope = scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut url = window.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("response_type", "code")
            .append_pair("state", &self.state)
            .append_pair("code_challenge", &self.code_challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }
}

/// The authorization code from the redirect, without the `#_` Meta may append.
pub fn clean_code(code: &str) -> &str {
    let code = code.trim();
    code.strip_suffix("#_").unwrap_or(code)
}

/// The code exchange's answer: a short-lived (1 hour) token and the user it belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct ShortLivedToken {
    pub access_token: AccessToken,
    pub user_id: UserId,
}

/// The long-lived exchange's and the refresh's answer. Its life comes from `expires_in`, never a
/// constant: the token itself is the refresh credential, there is no separate refresh token.
#[derive(Debug, Clone, Deserialize)]
pub struct LongLivedToken {
    pub access_token: AccessToken,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds from now.
    pub expires_in: u64,
}

impl LongLivedToken {
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.expires_in)
    }
}

/// `debug_token`'s `data`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenInfo {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub application: Option<String>,
    /// Unix seconds; 0 or absent when Threads does not say.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub is_valid: bool,
    #[serde(default)]
    pub issued_at: Option<i64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Why the token is not valid, when it is not.
    #[serde(default)]
    pub error: Option<TokenProblem>,
}

/// `debug_token`'s `data.error`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenProblem {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub subcode: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

impl TokenInfo {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| s == scope.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "1234567890".into(),
            redirect_uri: "https://app.example/oauth/callback/".into(),
            scopes: vec![
                Scope::ContentPublish,
                Scope::ManageReplies,
                Scope::ContentPublish,
            ],
            state: "st4te+/=".into(),
            code_challenge: "w6Kgixo4GdOCtcS6zQP_jZ1mZ6C_aVV0H7comjW5Sas".into(),
        }
    }

    fn pairs(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn authorize_url_carries_every_parameter_once() {
        let window = Url::parse("https://threads.com/oauth/authorize").unwrap();
        let url = request().url(&window);
        assert_eq!(url.path(), "/oauth/authorize");
        assert_eq!(
            pairs(&url),
            [
                ("client_id", "1234567890"),
                ("redirect_uri", "https://app.example/oauth/callback/"),
                (
                    "scope",
                    "threads_basic,threads_content_publish,threads_manage_replies"
                ),
                ("response_type", "code"),
                ("state", "st4te+/="),
                (
                    "code_challenge",
                    "w6Kgixo4GdOCtcS6zQP_jZ1mZ6C_aVV0H7comjW5Sas"
                ),
                ("code_challenge_method", "S256"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        // The trailing slash of the redirect URI survives (Meta matches it exactly), encoded.
        assert!(
            url.as_str()
                .contains("redirect_uri=https%3A%2F%2Fapp.example%2Foauth%2Fcallback%2F"),
            "{url}"
        );
        assert!(url.as_str().contains("state=st4te%2B%2F%3D"), "{url}");
    }

    #[test]
    fn authorize_url_works_on_an_emulator_base_and_drops_stale_query() {
        let window =
            Url::parse("http://127.0.0.1:8123/oauth/authorize?client_id=old#frag").unwrap();
        let url = request().url(&window);
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.port(), Some(8123));
        assert_eq!(url.fragment(), None);
        assert_eq!(
            pairs(&url).iter().filter(|(k, _)| k == "client_id").count(),
            1
        );
    }

    #[test]
    fn threads_basic_is_always_requested() {
        let mut req = request();
        req.scopes.clear();
        let url = req.url(&Url::parse("https://threads.com/oauth/authorize").unwrap());
        assert!(pairs(&url).contains(&("scope".into(), "threads_basic".into())));
    }

    #[test]
    fn code_loses_the_hash_underscore() {
        assert_eq!(clean_code("AQBx123#_"), "AQBx123");
        assert_eq!(clean_code("AQBx123"), "AQBx123");
    }

    #[test]
    fn scopes_round_trip_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("threads_everything"), None);
    }

    #[test]
    fn token_responses_parse_and_hide_the_token() {
        let short: ShortLivedToken =
            serde_json::from_str(r#"{"access_token":"THshort","user_id":17841405793187218}"#)
                .unwrap();
        assert_eq!(short.user_id.as_str(), "17841405793187218");
        assert!(!format!("{short:?}").contains("THshort"));
        let long: LongLivedToken = serde_json::from_str(
            r#"{"access_token":"THlong","token_type":"bearer","expires_in":5183944}"#,
        )
        .unwrap();
        assert_eq!(long.lifetime(), Duration::from_secs(5183944));
        assert!(!format!("{long:?}").contains("THlong"));
    }

    #[test]
    fn debug_token_data_parses() {
        let info: TokenInfo = serde_json::from_str(
            r#"{"type":"USER","application":"ThreadStorm","expires_at":1730000000,"is_valid":true,"issued_at":1725000000,"scopes":["threads_basic","threads_content_publish"],"user_id":90071992547409931}"#,
        )
        .unwrap();
        assert!(
            info.is_valid
                && info.has_scope(Scope::ContentPublish)
                && !info.has_scope(Scope::Delete)
        );
        assert_eq!(info.user_id.unwrap().as_str(), "90071992547409931");
        assert_eq!(info.error, None);
        let dead: TokenInfo = serde_json::from_str(
            r#"{"error":{"code":190,"message":"Invalid OAuth access token - Cannot parse access token"},"is_valid":false,"scopes":[]}"#,
        )
        .unwrap();
        assert!(!dead.is_valid);
        assert_eq!(dead.error.unwrap().code, Some(190));
    }

    #[test]
    fn app_token_joins_id_and_secret_and_stays_hidden() {
        let app = AppCredentials {
            client_id: "123".into(),
            client_secret: Secret::new("s3cr3t"),
        };
        assert_eq!(app.app_token().expose(), "123|s3cr3t");
        assert!(!format!("{app:?} {:?}", app.app_token()).contains("s3cr3t"));
    }
}
