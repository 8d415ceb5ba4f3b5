//! The three error shapes Meta answers with: the Graph envelope (`{"error":{...}}`), the
//! authorization window's `{"error_message","error_code"}` and the code exchange's
//! `{"error_type","code","error_message"}`. One constructor per error the emulator can give, so
//! the exact messages live in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;

use crate::json::{JsonText, Obj};

/// A Graph API error, serialised as Meta's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub code: u32,
    pub subcode: Option<u32>,
    pub is_transient: bool,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_subcode: Option<u32>,
    is_transient: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_user_title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_user_msg: Option<&'a str>,
    fbtrace_id: String,
}

impl GraphError {
    fn new(status: StatusCode, code: u32, kind: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            message: message.into(),
            kind,
            code,
            subcode: None,
            is_transient: false,
            user_title: None,
            user_msg: None,
        }
    }

    fn subcode(mut self, subcode: u32) -> Self {
        self.subcode = Some(subcode);
        self
    }

    fn transient(mut self) -> Self {
        self.is_transient = true;
        self
    }

    fn user(mut self, title: &str, msg: &str) -> Self {
        self.user_title = Some(title.to_string());
        self.user_msg = Some(msg.to_string());
        self
    }

    /// Code 100: an invalid or missing parameter.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 100, "OAuthException", message)
    }

    pub fn missing_param(name: &str) -> Self {
        Self::invalid_param(format!("The parameter {name} is required"))
    }

    /// The exact message Meta gives for text over 500 bytes.
    pub fn text_too_long() -> Self {
        Self::invalid_param("Param text must be at most 500 characters long.")
    }

    pub fn link_limit_exceeded(unique_links: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            100,
            "THApiException",
            "THREADS_API__LINK_LIMIT_EXCEEDED",
        )
        .user(
            "Too many links",
            &format!("A post can contain at most 5 unique links; this one has {unique_links}."),
        )
    }

    /// Code 100 / 33: an id that does not exist, is not visible, or does not take this call.
    pub fn unknown_object(method: &str, id: &str) -> Self {
        Self::invalid_param(format!(
            "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ))
        .subcode(33)
    }

    pub fn unknown_path(path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            2500,
            "OAuthException",
            format!("Unknown path components: {path}"),
        )
    }

    /// As Meta words it, e.g. asking a published media id for `status`.
    pub fn nonexisting_field(field: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            100,
            "THApiException",
            format!("Tried accessing nonexisting field ({field})"),
        )
    }

    /// Code 100 with Threads' exception type, for the Threads-specific validations.
    pub fn threads_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 100, "THApiException", message)
    }

    /// The emulator's answer to publishing a container a second time (Meta refuses it; its
    /// exact error is not documented).
    pub fn already_published(media_id: &str) -> Self {
        Self::threads_param("The media container has already been published").user(
            "Media Already Published",
            &format!("This container was already published as media {media_id}."),
        )
    }

    /// Code 24 / 4279009: publishing a container that is not ready (or not there).
    pub fn media_not_found() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            24,
            "OAuthException",
            "The requested resource does not exist",
        )
        .subcode(4279009)
        .user(
            "Media Not Found",
            "The media you are trying to publish could not be found. Please try again later.",
        )
    }

    /// Code 10 as HTTP 500: Meta's answer to a missing scope, and its false failure on a
    /// publish that went through.
    pub fn permission_denied() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            10,
            "OAuthException",
            "Application does not have permission for this action",
        )
    }

    /// The throttle the emulator answers when a rolling quota is used up (Meta documents no
    /// specific one; code 4 is Graph's generic "application request limit").
    pub fn quota_exceeded(what: &str, total: u32) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            4,
            "OAuthException",
            "Application request limit reached",
        )
        .transient()
        .user(
            "Publishing limit reached",
            &format!("This profile has used its {total} {what} for the last 24 hours."),
        )
    }

    pub fn app_throttled() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            4,
            "OAuthException",
            "Application request limit reached",
        )
        .transient()
    }

    pub fn user_throttled() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            17,
            "OAuthException",
            "User request limit reached",
        )
        .transient()
    }

    /// Code 2 as HTTP 503: a transient server failure.
    pub fn transient_failure() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            2,
            "OAuthException",
            "An unexpected error has occurred. Please retry your request later.",
        )
        .transient()
    }

    /// Code 1 / 2207052: Meta's crawler could not fetch the media URL.
    pub fn media_fetch_failed(url: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            1,
            "OAuthException",
            "An unknown error has occurred.",
        )
        .subcode(2207052)
        .user(
            "Media download has failed.",
            &format!("The media could not be fetched from this uri: {url}"),
        )
    }

    pub fn token_missing() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            104,
            "OAuthException",
            "An access token is required to request this resource.",
        )
    }

    pub fn token_unparsable() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            190,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token",
        )
    }

    pub fn token_expired(expired_at: i64) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            190,
            "OAuthException",
            format!(
                "Error validating access token: Session has expired on {}. The current time is later.",
                crate::clock::graph_timestamp(expired_at)
            ),
        )
        .subcode(463)
    }

    pub fn token_invalidated() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            190,
            "OAuthException",
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
        )
        .subcode(460)
    }

    pub fn client_secret_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            1,
            "OAuthException",
            "Error validating client secret.",
        )
    }

    pub fn body_unreadable() -> Self {
        Self::invalid_param("The request body could not be read")
    }

    /// The envelope as text; a fresh `fbtrace_id` each time, as Meta's are.
    pub fn body(&self) -> String {
        let envelope = Envelope {
            error: Body {
                message: &self.message,
                kind: self.kind,
                code: self.code,
                error_subcode: self.subcode,
                is_transient: self.is_transient,
                error_user_title: self.user_title.as_deref(),
                error_user_msg: self.user_msg.as_deref(),
                fbtrace_id: trace_id(),
            },
        };
        crate::json::to_text(&envelope)
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        JsonText(self.status, self.body()).into_response()
    }
}

fn trace_id() -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(22)
        .map(char::from)
        .collect();
    format!("A{tail}")
}

/// An error shown by the authorization window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError {
    pub code: u64,
    pub message: String,
}

impl WindowError {
    pub fn new(code: u64, message: impl Into<String>) -> Self {
        WindowError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_app() -> Self {
        Self::new(4476002, "Invalid platform app")
    }

    pub fn unlisted_redirect() -> Self {
        Self::new(
            1349168,
            "URL Blocked: This redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings. Make sure Client and Web OAuth Login are on and add all your app domains as Valid OAuth Redirect URIs.",
        )
    }

    pub fn insecure_redirect() -> Self {
        Self::new(
            1349187,
            "Insecure Login Blocked: You can't get an access token or log in to this app from an insecure page. Try re-loading the page as https://",
        )
    }
}

impl IntoResponse for WindowError {
    fn into_response(self) -> Response {
        let mut obj = Obj::new();
        obj.str("error_message", &self.message)
            .int("error_code", i64::try_from(self.code).unwrap_or(i64::MAX));
        JsonText(StatusCode::BAD_REQUEST, obj.text()).into_response()
    }
}

/// An error from `/oauth/access_token`, which does not use the Graph envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeError {
    pub status: StatusCode,
    pub message: String,
}

impl ExchangeError {
    pub fn new(message: impl Into<String>) -> Self {
        ExchangeError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn code_not_found() -> Self {
        Self::new("Matching code was not found or was already used")
    }
}

impl IntoResponse for ExchangeError {
    fn into_response(self) -> Response {
        let mut obj = Obj::new();
        // `code` mirrors the HTTP status here, 400 for every error Meta documents.
        obj.str("error_type", "OAuthException")
            .int("code", i64::from(self.status.as_u16()))
            .str("error_message", &self.message);
        JsonText(self.status, obj.text()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_envelope_has_meta_field_order() {
        let body = GraphError::media_not_found().body();
        let prefix = r#"{"error":{"message":"The requested resource does not exist","type":"OAuthException","code":24,"error_subcode":4279009,"is_transient":false,"error_user_title":"Media Not Found","error_user_msg":"#;
        assert!(body.starts_with(prefix), "{body}");
        assert!(body.contains(r#","fbtrace_id":"A"#));
    }
}
