//! Every failure of a Threads call, parsed and classified by what the caller must do next.
//!
//! Threads' HTTP status is unreliable (code 10 and some code 100s come back as 500), so the
//! class comes from the error code and subcode; the status only decides when no code is known.
//! Each error carries a reason a person can act on, built from everything the response said.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// The Threads call that failed: some codes mean different things on different calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    CodeExchange,
    LongLivedExchange,
    Refresh,
    DebugToken,
    Me,
    CreateContainer,
    Publish,
    ContainerStatus,
    PublishingLimit,
    ListThreads,
    ListReplies,
    Insights,
    UserInsights,
    Delete,
}

impl Call {
    /// The endpoint's name, as Threads' documentation calls it.
    pub fn name(self) -> &'static str {
        match self {
            Call::CodeExchange => "oauth/access_token",
            Call::LongLivedExchange => "access_token",
            Call::Refresh => "refresh_access_token",
            Call::DebugToken => "debug_token",
            Call::Me => "me",
            Call::CreateContainer => "threads (create container)",
            Call::Publish => "threads_publish",
            Call::ContainerStatus => "container status",
            Call::PublishingLimit => "threads_publishing_limit",
            Call::ListThreads => "threads (list)",
            Call::ListReplies => "replies (list)",
            Call::Insights => "insights",
            Call::UserInsights => "threads_insights",
            Call::Delete => "delete",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of Threads' two error bodies the error came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"message","type","code","error_subcode",...}}`
    Graph,
    /// `{"error_type","code","error_message"}` from the OAuth endpoints (and the window's
    /// `{"error_message","error_code"}`).
    OAuth,
}

/// What Threads said about a failed call, whatever shape it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub shape: ErrorShape,
    pub http_status: u16,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    /// `type` (Graph) or `error_type` (OAuth), e.g. `OAuthException`, `THApiException`.
    pub kind: Option<String>,
    pub message: Option<String>,
    pub is_transient: bool,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
    pub fbtrace_id: Option<String>,
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl ApiError {
    /// Reads either error shape from a response body; `None` when the body is neither.
    pub fn parse(http_status: u16, body: &[u8]) -> Option<ApiError> {
        let value: Value = serde_json::from_slice(body).ok()?;
        if let Some(err) = value.get("error").filter(|e| e.is_object()) {
            return Some(ApiError {
                shape: ErrorShape::Graph,
                http_status,
                code: int(err.get("code")),
                subcode: int(err.get("error_subcode")),
                kind: text(err.get("type")),
                message: text(err.get("message")),
                is_transient: matches!(err.get("is_transient"), Some(Value::Bool(true))),
                user_title: text(err.get("error_user_title")),
                user_msg: text(err.get("error_user_msg")),
                fbtrace_id: text(err.get("fbtrace_id")),
            });
        }
        // A container status also has `error_message` (its failure reason), so the OAuth shape
        // needs `error_type` or a code beside the message.
        let has = |k: &str| value.get(k).is_some();
        if has("error_type") || (has("error_message") && (has("code") || has("error_code"))) {
            return Some(ApiError {
                shape: ErrorShape::OAuth,
                http_status,
                code: int(value.get("code")).or_else(|| int(value.get("error_code"))),
                subcode: int(value.get("error_subcode")),
                kind: text(value.get("error_type")),
                message: text(value.get("error_message")),
                is_transient: matches!(value.get("is_transient"), Some(Value::Bool(true))),
                user_title: None,
                user_msg: None,
                fbtrace_id: text(value.get("fbtrace_id")),
            });
        }
        None
    }

    /// Everything Threads said, in one line: `"message" (title: user message) [code 24/4279009,
    /// OAuthException, HTTP 400, fbtrace X]`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        match &self.message {
            Some(m) => out.push_str(&format!("Threads said {m:?}")),
            None => out.push_str("Threads gave no message"),
        }
        match (&self.user_title, &self.user_msg) {
            (Some(t), Some(m)) => out.push_str(&format!(" ({t}: {m})")),
            (Some(x), None) | (None, Some(x)) => out.push_str(&format!(" ({x})")),
            (None, None) => {}
        }
        let mut facts = Vec::new();
        match (self.code, self.subcode) {
            (Some(c), Some(s)) => facts.push(format!("code {c}/{s}")),
            (Some(c), None) => facts.push(format!("code {c}")),
            (None, Some(s)) => facts.push(format!("subcode {s}")),
            (None, None) => facts.push("no code".to_owned()),
        }
        if let Some(k) = &self.kind {
            facts.push(k.clone());
        }
        if self.is_transient {
            facts.push("is_transient".to_owned());
        }
        facts.push(format!("HTTP {}", self.http_status));
        if let Some(t) = &self.fbtrace_id {
            facts.push(format!("fbtrace {t}"));
        }
        out.push_str(&format!(" [{}]", facts.join(", ")));
        out
    }

    fn is(&self, code: i64) -> bool {
        self.code == Some(code)
    }

    fn mentions(&self, needle: &str) -> bool {
        [&self.message, &self.user_msg, &self.user_title]
            .into_iter()
            .flatten()
            .any(|m| m.contains(needle))
    }

    /// The parameter a code-100 message names: `Param text must be…`, `(#100) Param reply_to_id…`,
    /// `The parameter creation_id is required`.
    fn param(&self) -> Option<String> {
        let message = self.message.as_deref()?;
        for marker in ["Param ", "param ", "parameter ", "Parameter "] {
            if let Some(at) = message.find(marker) {
                let name: String = message[at + marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "is" && name != "must" {
                    return Some(name);
                }
            }
        }
        None
    }
}

/// A failed Threads call, by what happens next. The `reason` always says what Threads said.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThreadsError {
    /// Code 24 / subcode 4279009 on publish or status: the container is not ready (or not visible
    /// yet). Retry publishing the SAME container with [`super::backoff`]; never create another.
    #[error("container not ready: {reason}")]
    RetrySameContainer {
        reason: String,
        api: Option<Box<ApiError>>,
    },
    /// Worth retrying with backoff, bounded: `is_transient`, HTTP 5xx without a known code,
    /// timeouts, connection failures, bodies that are not JSON.
    #[error("temporary failure: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        api: Option<Box<ApiError>>,
    },
    /// Codes 4, 17, 32, 613 (and HTTP 429): defer the work until the window frees; it has not
    /// failed, so it must not burn a retry.
    #[error("rate limited: {reason}")]
    RateLimited {
        reason: String,
        retry_after: Option<Duration>,
        api: Option<Box<ApiError>>,
    },
    /// Code 190 (subcodes 460, 463, …) or a dead authorization code: the account must be
    /// connected again; retrying cannot help.
    #[error("account must be reconnected: {reason}")]
    NeedsReauth {
        reason: String,
        api: Option<Box<ApiError>>,
    },
    /// Publish may have happened (code 10 on publish, 5xx, timeout, an unreadable answer): read
    /// the container status before publishing again; PUBLISHED means done.
    #[error("publish outcome unknown, read the container status before retrying: {reason}")]
    UncertainPublish {
        reason: String,
        api: Option<Box<ApiError>>,
    },
    /// Code 100 and the link-limit string codes: the request itself is wrong; reject, no retry.
    #[error("invalid {}: {reason}", param.as_deref().unwrap_or("request"))]
    Validation {
        param: Option<String>,
        reason: String,
        api: Option<Box<ApiError>>,
    },
    /// Will not succeed as it is: media fetch failed (1/2207052), missing permission (10 off
    /// publish), activity restricted (2207051, `alert`), anything else Threads refused.
    #[error("{reason}")]
    PermanentOther {
        reason: String,
        alert: bool,
        api: Option<Box<ApiError>>,
    },
}

impl ThreadsError {
    pub fn reason(&self) -> &str {
        match self {
            ThreadsError::RetrySameContainer { reason, .. }
            | ThreadsError::Transient { reason, .. }
            | ThreadsError::RateLimited { reason, .. }
            | ThreadsError::NeedsReauth { reason, .. }
            | ThreadsError::UncertainPublish { reason, .. }
            | ThreadsError::Validation { reason, .. }
            | ThreadsError::PermanentOther { reason, .. } => reason,
        }
    }

    /// What Threads said, when it said it in one of its error shapes.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ThreadsError::RetrySameContainer { api, .. }
            | ThreadsError::Transient { api, .. }
            | ThreadsError::RateLimited { api, .. }
            | ThreadsError::NeedsReauth { api, .. }
            | ThreadsError::UncertainPublish { api, .. }
            | ThreadsError::Validation { api, .. }
            | ThreadsError::PermanentOther { api, .. } => api.as_deref(),
        }
    }

    /// The server's own hint of when to come back (`Retry-After`), if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ThreadsError::Transient { retry_after, .. }
            | ThreadsError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable label for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            ThreadsError::RetrySameContainer { .. } => "container_not_ready",
            ThreadsError::Transient { .. } => "transient",
            ThreadsError::RateLimited { .. } => "rate_limited",
            ThreadsError::NeedsReauth { .. } => "needs_reauth",
            ThreadsError::UncertainPublish { .. } => "uncertain_publish",
            ThreadsError::Validation { .. } => "validation",
            ThreadsError::PermanentOther { .. } => "permanent",
        }
    }

    /// A temporary failure; on publish it becomes uncertain, as the post may exist.
    pub(crate) fn transient(
        call: Call,
        reason: String,
        retry_after: Option<Duration>,
        api: Option<ApiError>,
    ) -> Self {
        let api = api.map(Box::new);
        if call == Call::Publish {
            ThreadsError::UncertainPublish { reason, api }
        } else {
            ThreadsError::Transient {
                reason,
                retry_after,
                api,
            }
        }
    }

    /// A success status whose body is not what the call returns.
    pub(crate) fn unexpected_body(call: Call, status: u16, what: String) -> Self {
        let reason = format!("{call} answered HTTP {status} with an unexpected body: {what}");
        if call == Call::Publish {
            ThreadsError::UncertainPublish { reason, api: None }
        } else {
            ThreadsError::PermanentOther {
                reason,
                alert: true,
                api: None,
            }
        }
    }
}

const RATE_LIMIT_CODES: [i64; 4] = [4, 17, 32, 613];
const SUBCODE_NOT_READY: i64 = 4279009;
const SUBCODE_MEDIA_FETCH: i64 = 2207052;
const ACTIVITY_RESTRICTED: i64 = 2207051;
/// Graph's "object does not exist, cannot be loaded or does not support this operation".
const SUBCODE_NO_SUCH_OBJECT: i64 = 33;
/// Words of a token-endpoint error that blame the app's setup, not the user's grant.
const APP_AT_FAULT: [&str; 8] = [
    "client_secret",
    "client secret",
    "client_id",
    "app secret",
    "platform app",
    "App ID",
    "redirect_uri",
    "grant_type",
];

fn reauth_reason(subcode: Option<i64>) -> &'static str {
    match subcode {
        Some(460) => "the session was invalidated (password changed or security check)",
        Some(463) => "the access token has expired",
        Some(467) => "the access token is invalid",
        Some(458) => "the user removed the app",
        Some(459) => "the user must log in to Threads to pass a checkpoint",
        Some(464) => "the user's account is not confirmed",
        Some(492) => "the session is invalid",
        _ => "the access token is invalid, expired or revoked",
    }
}

/// Classifies a non-success response (or an error body) of `call`.
///
/// `retry_after` is the response's `Retry-After` hint, passed through to the retryable classes.
pub fn classify(
    call: Call,
    http_status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ThreadsError {
    match ApiError::parse(http_status, body) {
        Some(api) => classify_api(call, api, retry_after),
        None => classify_shapeless(call, http_status, body, retry_after),
    }
}

fn classify_api(call: Call, api: ApiError, retry_after: Option<Duration>) -> ThreadsError {
    let said = api.summary();
    let boxed = |api: ApiError| Some(Box::new(api));

    // String codes in the message come first: they say more than the number beside them.
    if api.mentions("THREADS_API__LINK_LIMIT_EXCEEDED") {
        return ThreadsError::Validation {
            param: None,
            reason: format!(
                "too many links: a post may hold at most 5 unique links (URLs in the text plus a \
                 differing link_attachment); remove some. {said}"
            ),
            api: boxed(api),
        };
    }
    if api.mentions("THREADS_API__GEO_GATING_INVALID_COUNTRY_CODES") {
        return ThreadsError::Validation {
            param: Some("allowlisted_country_codes".to_owned()),
            reason: format!("the country codes are invalid or not allowed for this app. {said}"),
            api: boxed(api),
        };
    }
    if api.mentions("THREADS_API__FEATURE_NOT_AVAILABLE") {
        return ThreadsError::PermanentOther {
            reason: format!("{call}: this feature is not available to this account or app. {said}"),
            alert: false,
            api: boxed(api),
        };
    }

    if let Some(code) = api.code.filter(|c| RATE_LIMIT_CODES.contains(c)) {
        let who = match code {
            4 => "the app's call budget",
            17 | 613 => "the user's call budget",
            _ => "the page's call budget",
        };
        return ThreadsError::RateLimited {
            reason: format!("{call}: {who} is used up; defer until the window frees. {said}"),
            retry_after,
            api: boxed(api),
        };
    }
    if api.is(190) || api.is(102) {
        return ThreadsError::NeedsReauth {
            reason: format!(
                "{}; the account must be connected again. {said}",
                reauth_reason(api.subcode)
            ),
            api: boxed(api),
        };
    }
    if api.is(24) || api.subcode == Some(SUBCODE_NOT_READY) {
        return match call {
            Call::Publish | Call::ContainerStatus => ThreadsError::RetrySameContainer {
                reason: format!(
                    "container_not_ready: the container is not ready or not visible yet; retry \
                     publishing the same container with backoff. {said}"
                ),
                api: boxed(api),
            },
            _ => ThreadsError::PermanentOther {
                reason: format!(
                    "{call}: the object does not exist or is not visible to this token. {said}"
                ),
                alert: false,
                api: boxed(api),
            },
        };
    }
    if api.is(10) || api.code.is_some_and(|c| (200..300).contains(&c)) {
        return if call == Call::Publish {
            ThreadsError::UncertainPublish {
                reason: format!(
                    "threads_publish reported a permission error, which Threads also returns for \
                     posts it did publish; read the container status before publishing again. {said}"
                ),
                api: boxed(api),
            }
        } else {
            ThreadsError::PermanentOther {
                reason: format!(
                    "{call}: the app lacks a permission for this action; reconnect the account \
                     granting the needed scope. {said}"
                ),
                alert: false,
                api: boxed(api),
            }
        };
    }
    if api.is(100) && api.subcode == Some(SUBCODE_NO_SUCH_OBJECT) {
        return ThreadsError::PermanentOther {
            reason: format!(
                "{call}: the object does not exist, is not visible to this token, or does not \
                 support this call. {said}"
            ),
            alert: false,
            api: boxed(api),
        };
    }
    if api.is(100) {
        let param = api.param();
        let what = match &param {
            Some(p) => format!("parameter {p} was refused"),
            None => "a parameter was refused".to_owned(),
        };
        return ThreadsError::Validation {
            param,
            reason: format!("{call}: {what}. {said}"),
            api: boxed(api),
        };
    }
    if api.is(ACTIVITY_RESTRICTED) || api.subcode == Some(ACTIVITY_RESTRICTED) {
        return ThreadsError::PermanentOther {
            reason: format!(
                "{call}: Threads restricted this account's activity (anti-spam); stop publishing for \
                 it and review the account. {said}"
            ),
            alert: true,
            api: boxed(api),
        };
    }
    if api.subcode == Some(SUBCODE_MEDIA_FETCH) {
        return ThreadsError::PermanentOther {
            reason: format!(
                "{call}: Threads could not fetch the media; host it at a public URL Meta's crawler \
                 can reach. {said}"
            ),
            alert: false,
            api: boxed(api),
        };
    }
    if api.is_transient || api.is(2) {
        let reason =
            format!("{call}: Threads reports a temporary problem; retry with backoff. {said}");
        return ThreadsError::transient(call, reason, retry_after, Some(api));
    }
    if api.http_status == 429 {
        return ThreadsError::RateLimited {
            reason: format!("{call}: HTTP 429, too many requests; defer. {said}"),
            retry_after,
            api: boxed(api),
        };
    }
    if api.http_status >= 500 && !api.is(1) {
        let reason =
            format!("{call}: server error without a known code; retry with backoff. {said}");
        return ThreadsError::transient(call, reason, retry_after, Some(api));
    }
    let token_call = matches!(
        call,
        Call::CodeExchange | Call::LongLivedExchange | Call::Refresh
    );
    if token_call && APP_AT_FAULT.iter().any(|n| api.mentions(n)) {
        return ThreadsError::PermanentOther {
            reason: format!(
                "{call}: the app's credentials or OAuth settings were refused; check the Threads App \
                 ID and Threads App secret (not the Meta app's) and the redirect URI. {said}"
            ),
            alert: true,
            api: boxed(api),
        };
    }
    if api.shape == ErrorShape::OAuth {
        // This shape's `code` echoes the HTTP status, so only the message can tell a throttle.
        if api.mentions("limit reached") || api.mentions("rate limit") {
            return ThreadsError::RateLimited {
                reason: format!("{call}: Threads' call budget is used up; defer. {said}"),
                retry_after,
                api: boxed(api),
            };
        }
        if matches!(call, Call::CodeExchange | Call::LongLivedExchange) {
            return ThreadsError::NeedsReauth {
                reason: format!(
                    "{call}: the authorization code or short-lived token was refused (invalid, \
                     expired or already used); start the authorization again. {said}"
                ),
                api: boxed(api),
            };
        }
    }
    let permanent = if api.is(1) {
        format!(
            "{call}: Threads failed with its generic error (code 1) and did not call it temporary. {said}"
        )
    } else {
        format!("{call}: Threads refused the request. {said}")
    };
    ThreadsError::PermanentOther {
        reason: permanent,
        alert: false,
        api: boxed(api),
    }
}

/// A body in neither error shape: a proxy's HTML page, an empty body, other JSON.
fn classify_shapeless(
    call: Call,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ThreadsError {
    let snippet = snippet(body);
    let is_json = serde_json::from_slice::<Value>(body).is_ok();
    if status == 429 {
        return ThreadsError::RateLimited {
            reason: format!("{call}: HTTP 429, too many requests; defer. Body: {snippet}"),
            retry_after,
            api: None,
        };
    }
    if !is_json || status >= 500 {
        let kind = if is_json {
            "a JSON body without an error"
        } else {
            "a body that is not JSON"
        };
        let reason = format!(
            "{call}: HTTP {status} with {kind} (a proxy or gateway answered, not the API); retry with \
             backoff. Body: {snippet}"
        );
        return ThreadsError::transient(call, reason, retry_after, None);
    }
    ThreadsError::PermanentOther {
        reason: format!(
            "{call}: HTTP {status} with a JSON body in no known error shape. Body: {snippet}"
        ),
        alert: true,
        api: None,
    }
}

/// The start of a body for a reason string: one line, at most 160 characters.
fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty)".to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(160).collect();
    if one_line.chars().count() > 160 {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, subcode: Option<i64>, message: &str, transient: bool) -> String {
        let sub = subcode
            .map(|s| format!(r#""error_subcode":{s},"#))
            .unwrap_or_default();
        format!(
            r#"{{"error":{{"message":"{message}","type":"OAuthException","code":{code},{sub}"is_transient":{transient},"fbtrace_id":"AbCdEf123"}}}}"#
        )
    }

    /// The exact body from the reference (P2): container not ready.
    const NOT_READY: &str = r#"{"error":{"message":"The requested resource does not exist","type":"OAuthException","code":24,"error_subcode":4279009,"is_transient":false,"error_user_title":"Media Not Found","error_user_msg":"The requested resource does not exist.","fbtrace_id":"AZx1"}}"#;

    #[test]
    fn not_ready_on_publish_retries_the_same_container() {
        let err = classify(Call::Publish, 400, NOT_READY.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::RetrySameContainer { .. }),
            "{err:?}"
        );
        assert!(
            err.reason().contains("container_not_ready"),
            "{}",
            err.reason()
        );
        assert!(err.reason().contains("Media Not Found") && err.reason().contains("4279009"));
        let api = err.api().unwrap();
        assert_eq!(
            (api.code, api.subcode, api.fbtrace_id.as_deref()),
            (Some(24), Some(4279009), Some("AZx1"))
        );
        // Status does not matter: the same body under 500 is still "not ready".
        assert!(matches!(
            classify(Call::Publish, 500, NOT_READY.as_bytes(), None),
            ThreadsError::RetrySameContainer { .. }
        ));
        assert!(matches!(
            classify(Call::ContainerStatus, 400, NOT_READY.as_bytes(), None),
            ThreadsError::RetrySameContainer { .. }
        ));
    }

    #[test]
    fn not_found_elsewhere_is_permanent() {
        let err = classify(Call::Insights, 400, NOT_READY.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::PermanentOther { alert: false, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn media_fetch_failure_is_permanent_for_that_media() {
        let body = graph(1, Some(2207052), "An unknown error occurred", false);
        let err = classify(Call::CreateContainer, 400, body.as_bytes(), None);
        let ThreadsError::PermanentOther { alert, reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(!alert);
        assert!(
            reason.contains("could not fetch the media") && reason.contains("1/2207052"),
            "{reason}"
        );
    }

    #[test]
    fn rate_limit_codes_defer() {
        for code in [4, 17, 32, 613] {
            let body = graph(code, None, "Application request limit reached", true);
            for status in [400, 403, 500] {
                let err = classify(
                    Call::CreateContainer,
                    status,
                    body.as_bytes(),
                    Some(Duration::from_secs(60)),
                );
                let ThreadsError::RateLimited { retry_after, .. } = &err else {
                    panic!("{code}: {err:?}")
                };
                assert_eq!(*retry_after, Some(Duration::from_secs(60)));
            }
            // On publish too: a throttled publish was refused, not performed.
            assert!(matches!(
                classify(Call::Publish, 400, body.as_bytes(), None),
                ThreadsError::RateLimited { .. }
            ));
        }
    }

    #[test]
    fn code_10_on_publish_is_uncertain_and_elsewhere_permanent() {
        let body = graph(
            10,
            None,
            "Application does not have permission for this action",
            false,
        );
        let err = classify(Call::Publish, 500, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::UncertainPublish { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("read the container status"));
        let err = classify(Call::CreateContainer, 400, body.as_bytes(), None);
        let ThreadsError::PermanentOther { reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            reason.contains("permission") && reason.contains("code 10"),
            "{reason}"
        );
    }

    #[test]
    fn code_100_is_validation_naming_the_param() {
        let body = graph(
            100,
            None,
            "Param text must be at most 500 characters long.",
            false,
        );
        for status in [400, 500] {
            let err = classify(Call::CreateContainer, status, body.as_bytes(), None);
            let ThreadsError::Validation { param, reason, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(param.as_deref(), Some("text"));
            assert!(reason.contains("at most 500"), "{reason}");
        }
        let body = graph(100, None, "(#100) Param reply_to_id is invalid", false);
        let err = classify(Call::CreateContainer, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::Validation { param: Some(ref p), .. } if p == "reply_to_id"),
            "{err:?}"
        );
        let body = graph(100, None, "Invalid parameter", false);
        let err = classify(Call::CreateContainer, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::Validation { param: None, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("invalid request:"), "{err}");
    }

    #[test]
    fn code_190_needs_reauth_with_the_subcode_explained() {
        for (sub, words) in [
            (Some(460), "session was invalidated"),
            (Some(463), "expired"),
            (None, "invalid, expired or revoked"),
        ] {
            let body = graph(190, sub, "Error validating access token", false);
            let err = classify(Call::Me, 400, body.as_bytes(), None);
            let ThreadsError::NeedsReauth { reason, .. } = &err else {
                panic!("{err:?}")
            };
            assert!(reason.contains(words), "{reason}");
        }
    }

    #[test]
    fn activity_restricted_is_permanent_and_alerts() {
        for body in [
            graph(2207051, None, "Action is blocked", false),
            graph(1, Some(2207051), "Action is blocked", false),
        ] {
            let err = classify(Call::Publish, 400, body.as_bytes(), None);
            assert!(
                matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn is_transient_or_5xx_without_known_code_retries() {
        let body = graph(2, None, "Service temporarily unavailable", true);
        let err = classify(
            Call::CreateContainer,
            503,
            body.as_bytes(),
            Some(Duration::from_secs(5)),
        );
        assert!(
            matches!(
                err,
                ThreadsError::Transient {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        let body = graph(99999, None, "Something odd", true);
        assert!(matches!(
            classify(Call::Me, 400, body.as_bytes(), None),
            ThreadsError::Transient { .. }
        ));
        let body = graph(99999, None, "Something odd", false);
        assert!(matches!(
            classify(Call::Me, 502, body.as_bytes(), None),
            ThreadsError::Transient { .. }
        ));
        // Same, on publish: the post may exist.
        assert!(matches!(
            classify(Call::Publish, 502, body.as_bytes(), None),
            ThreadsError::UncertainPublish { .. }
        ));
        // And 4xx with an unknown, non-transient code is permanent, with everything Threads said.
        let err = classify(Call::Me, 400, body.as_bytes(), None);
        let ThreadsError::PermanentOther { reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            reason.contains("Something odd")
                && reason.contains("code 99999")
                && reason.contains("AbCdEf123"),
            "{reason}"
        );
    }

    #[test]
    fn link_limit_string_code_is_validation() {
        let body = graph(100, None, "THREADS_API__LINK_LIMIT_EXCEEDED", false);
        let err = classify(Call::CreateContainer, 400, body.as_bytes(), None);
        let ThreadsError::Validation { reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(reason.contains("at most 5 unique links"), "{reason}");
        let body = graph(1, None, "Error: THREADS_API__LINK_LIMIT_EXCEEDED", false);
        assert!(matches!(
            classify(Call::CreateContainer, 500, body.as_bytes(), None),
            ThreadsError::Validation { .. }
        ));
        let body = graph(
            100,
            None,
            "THREADS_API__GEO_GATING_INVALID_COUNTRY_CODES",
            false,
        );
        let err = classify(Call::CreateContainer, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::Validation { param: Some(ref p), .. } if p == "allowlisted_country_codes")
        );
        let body = graph(1, None, "THREADS_API__FEATURE_NOT_AVAILABLE", false);
        assert!(matches!(
            classify(Call::CreateContainer, 400, body.as_bytes(), None),
            ThreadsError::PermanentOther { .. }
        ));
    }

    #[test]
    fn reference_oauth_error_shape_is_parsed() {
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"Matching code was not found or was already used"}"#;
        let api = ApiError::parse(400, body.as_bytes()).unwrap();
        assert_eq!(api.shape, ErrorShape::OAuth);
        assert_eq!(api.code, Some(400));
        assert_eq!(api.kind.as_deref(), Some("OAuthException"));
        let err = classify(Call::CodeExchange, 400, body.as_bytes(), None);
        let ThreadsError::NeedsReauth { reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(reason.contains("Matching code was not found"), "{reason}");
    }

    #[test]
    fn container_error_message_is_not_an_oauth_error() {
        let status = br#"{"id":"17890000000000001","status":"ERROR","error_message":"FAILED_DOWNLOADING_VIDEO"}"#;
        assert_eq!(ApiError::parse(200, status), None);
        let window = br#"{"error_message":"Invalid platform app","error_code":4476002}"#;
        assert!(ApiError::parse(400, window).is_some());
    }

    #[test]
    fn oauth_error_about_the_app_secret_alerts() {
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"Error validating client secret."}"#;
        let err = classify(Call::LongLivedExchange, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn graph_shaped_client_secret_error_on_the_exchange_alerts() {
        let body = graph(1, None, "Error validating client secret.", false);
        let err = classify(Call::LongLivedExchange, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn oauth_shape_throttle_is_rate_limited_not_reauth() {
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"Application request limit reached"}"#;
        let err = classify(Call::CodeExchange, 400, body.as_bytes(), None);
        assert!(matches!(err, ThreadsError::RateLimited { .. }), "{err:?}");
        let body = r#"{"error_type":"OAuthException","code":503,"error_message":"An unexpected error has occurred. Please retry your request later."}"#;
        let err = classify(Call::CodeExchange, 503, body.as_bytes(), None);
        assert!(matches!(err, ThreadsError::Transient { .. }), "{err:?}");
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request"}"#;
        let err = classify(Call::CodeExchange, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
            "{err:?}"
        );
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"This authorization code has expired."}"#;
        let err = classify(Call::CodeExchange, 400, body.as_bytes(), None);
        assert!(matches!(err, ThreadsError::NeedsReauth { .. }), "{err:?}");
    }

    #[test]
    fn missing_object_is_permanent_not_validation() {
        let body = graph(
            100,
            Some(33),
            "Unsupported delete request. Object with ID '1' does not exist",
            false,
        );
        let err = classify(Call::Delete, 400, body.as_bytes(), None);
        assert!(
            matches!(err, ThreadsError::PermanentOther { alert: false, .. }),
            "{err:?}"
        );
        assert!(err.reason().contains("does not exist"));
    }

    #[test]
    fn oauth_shape_with_a_table_code_follows_the_table() {
        let body = r#"{"error_type":"OAuthException","code":190,"error_message":"Invalid OAuth access token"}"#;
        assert!(matches!(
            classify(Call::Refresh, 400, body.as_bytes(), None),
            ThreadsError::NeedsReauth { .. }
        ));
        let body = r#"{"error_message":"Invalid redirect_uri","error_code":1349168}"#;
        let api = ApiError::parse(400, body.as_bytes()).unwrap();
        assert_eq!(api.code, Some(1349168));
    }

    #[test]
    fn html_from_a_proxy_is_transient_with_the_status() {
        let body =
            b"<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>";
        let err = classify(Call::Me, 502, body, None);
        let ThreadsError::Transient { reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            reason.contains("HTTP 502")
                && reason.contains("not JSON")
                && reason.contains("Bad Gateway"),
            "{reason}"
        );
        assert!(matches!(
            classify(Call::Publish, 502, body, None),
            ThreadsError::UncertainPublish { .. }
        ));
        assert!(matches!(
            classify(Call::Me, 504, b"", None),
            ThreadsError::Transient { .. }
        ));
    }

    #[test]
    fn http_429_without_a_code_is_rate_limited() {
        let err = classify(
            Call::Me,
            429,
            b"Too Many Requests",
            Some(Duration::from_secs(30)),
        );
        assert!(
            matches!(
                err,
                ThreadsError::RateLimited {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn every_row_of_the_reference_table() {
        // (body, call, status) → class, one line per row of the table in reference/threads-api.md.
        let rows: [(String, Call, u16, &str); 10] = [
            (
                graph(1, Some(2207052), "Media download failed", false),
                Call::CreateContainer,
                400,
                "permanent",
            ),
            (
                graph(4, None, "Application request limit reached", true),
                Call::Publish,
                400,
                "rate_limited",
            ),
            (
                graph(17, None, "User request limit reached", true),
                Call::Me,
                400,
                "rate_limited",
            ),
            (
                graph(32, None, "Page request limit reached", false),
                Call::Me,
                400,
                "rate_limited",
            ),
            (
                graph(
                    613,
                    None,
                    "Calls to this api have exceeded the rate limit.",
                    false,
                ),
                Call::Me,
                400,
                "rate_limited",
            ),
            (
                graph(
                    10,
                    None,
                    "Application does not have permission for this action",
                    false,
                ),
                Call::Publish,
                500,
                "uncertain_publish",
            ),
            (
                NOT_READY.to_owned(),
                Call::Publish,
                400,
                "container_not_ready",
            ),
            (
                graph(
                    100,
                    None,
                    "Param text must be at most 500 characters long.",
                    false,
                ),
                Call::CreateContainer,
                500,
                "validation",
            ),
            (
                graph(190, Some(463), "Session has expired", false),
                Call::Publish,
                400,
                "needs_reauth",
            ),
            (
                graph(1, Some(2207051), "Activity restricted", false),
                Call::CreateContainer,
                400,
                "permanent",
            ),
        ];
        for (body, call, status, class) in rows {
            let err = classify(call, status, body.as_bytes(), None);
            assert_eq!(err.class(), class, "{body}");
            assert!(!err.reason().is_empty());
        }
    }

    #[test]
    fn summary_never_says_unknown_when_threads_said_more() {
        let body = graph(1, None, "An unknown error occurred", false);
        let err = classify(Call::Delete, 400, body.as_bytes(), None);
        assert!(
            err.reason().contains("code 1") && err.reason().contains("AbCdEf123"),
            "{}",
            err.reason()
        );
    }
}
