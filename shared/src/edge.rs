//! The HTTP edge shared by the api, oauth and webhooks functions: what a request says (path, query,
//! cookies, caller), and how every answer leaves (problem+json errors, security headers, CORS).
//!
//! Handlers return `Result<Response, Problem>`; a user's mistake is a 4xx `Problem`, never an `Err`
//! of the function, so nothing an input can reach becomes a 5xx.

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::config::{Config, CorsOrigins};

/// The largest request body any route accepts; routes may set lower limits.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An error answer in RFC 9457 `application/problem+json`, with a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    /// A stable machine-readable code, e.g. `invalid_state`.
    pub code: &'static str,
    /// What went wrong and what to do about it. Never internals, never secrets.
    pub detail: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    /// Seconds after which a retry can succeed, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(400, code, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", detail)
    }
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(403, code, detail)
    }
    pub fn not_found() -> Self {
        Self::new(404, "not_found", "no such route or resource")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "body_too_large",
            format!("the request body is over {limit} bytes"),
        )
    }
    /// A dependency (DynamoDB, KMS, Threads) failed; the caller may retry. The detail stays generic.
    pub fn unavailable() -> Self {
        Self::new(
            503,
            "temporarily_unavailable",
            "a service ThreadStorm depends on did not answer; try again shortly",
        )
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds the headers the problem carries besides its body (`Retry-After`) to `res`, which may
    /// be this problem's problem+json or a page made from it.
    pub fn add_headers(&self, res: &mut Response<Body>) {
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }

    fn title(&self) -> &'static str {
        StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
    }

    pub fn into_response(self) -> Response<Body> {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        let mut res = response(self.status, "application/problem+json", body.to_string());
        self.add_headers(&mut res);
        res
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

/// A response with a body and content type, no extra headers yet.
pub fn response(status: u16, content_type: &str, body: impl Into<String>) -> Response<Body> {
    let mut res = Response::new(Body::Text(body.into()));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    res
}

/// A JSON response.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    response(status, "application/json", body.to_string())
}

/// A redirect (302) to `location`.
pub fn redirect(location: &str) -> Response<Body> {
    let mut res = response(302, "text/plain; charset=utf-8", "");
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// Adds the headers every answer carries: HSTS, no sniffing, no framing, no referrer, no caching,
/// a strict CSP (stricter still for anything that is not HTML), and CORS for configured origins.
pub fn finish(res: Response<Body>, request_headers: &HeaderMap, config: &Config) -> Response<Body> {
    let mut res = secure(res);
    if let Some(origin) = allowed_origin(request_headers, &config.cors_origins) {
        let headers = res.headers_mut();
        headers.insert("access-control-allow-origin", origin);
        headers.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

/// The security headers alone, without CORS: for answers given where no configuration is at hand.
pub fn secure(mut res: Response<Body>) -> Response<Body> {
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let csp = if is_html {
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    let headers = res.headers_mut();
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("content-security-policy", csp),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

fn allowed_origin(request_headers: &HeaderMap, allowed: &CorsOrigins) -> Option<HeaderValue> {
    let origin = request_headers.get(header::ORIGIN)?;
    match allowed {
        CorsOrigins::None => None,
        CorsOrigins::Any => Some(HeaderValue::from_static("*")),
        CorsOrigins::List(list) => {
            let text = origin.to_str().ok()?;
            list.iter().any(|o| o == text).then(|| origin.clone())
        }
    }
}

/// What the edge knows about a request and its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Whether the browser named the page the request came from (`Origin`) and it is neither this
/// service — the host the request was sent to, or the origin of `own_url` (its public URL) — nor
/// one of `cors`: a request another site's page made, carrying the user's cookie.
pub fn foreign_origin(req: &Request, own_url: Option<&str>, cors: &CorsOrigins) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
    let ours = same_host
        || own_url
            .and_then(|own| url::Url::parse(own).ok())
            .is_some_and(|own| own.origin().ascii_serialization() == origin);
    let listed = matches!(cors, CorsOrigins::List(list) if list.iter().any(|o| o == origin));
    !(ours || listed)
}

/// The answer to a cookie-carried write from another site's page.
pub fn cross_site_problem() -> Problem {
    Problem::forbidden(
        "cross_site_request",
        "this request came from another site's page with your session cookie; send it from \
         ThreadStorm, or use an Authorization: Bearer token",
    )
}

/// The route path without the API Gateway stage (`/v1/posts`, not `/live/v1/posts`).
pub fn path(req: &Request) -> &str {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path()
    } else {
        raw
    }
}

/// The first value of query parameter `name`, decoded once.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// Refuses a request that names a query parameter more than once: which of two values counts
/// would otherwise depend on who reads them (API Gateway's single-value map keeps the last, a
/// parser the first). Nothing is done for such a request. (Repeated headers cannot be told apart
/// here: the request lambda_http builds keeps only API Gateway's last value of each.)
pub fn refuse_repeated_parameters(req: &Request) -> Result<(), Problem> {
    let Some(query) = req.query_string_parameters_ref() else {
        return Ok(());
    };
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in query.iter() {
        if !seen.insert(name) {
            let name: String = name.chars().take(64).collect();
            return Err(Problem::bad_request(
                "repeated_parameter",
                format!("{name} is given more than once; give it once"),
            )
            .with_field(name));
        }
    }
    Ok(())
}

/// A path parameter (`{code}` in the route).
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// The value of cookie `name` from the `Cookie` headers, if present exactly once.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned());
    let first = found.next()?;
    // Two cookies of the same name (e.g. one planted on a parent domain) are refused outright.
    if found.next().is_some() {
        None
    } else {
        Some(first)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

/// The caller's address, agent and the API Gateway request id.
pub fn caller(req: &Request) -> Caller {
    let context = req.request_context_ref();
    let (ip_address, request_id) = match context {
        Some(RequestContext::ApiGatewayV1(c)) => {
            (c.identity.source_ip.clone(), c.request_id.clone())
        }
        _ => (None, None),
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect());
    Caller {
        ip_address,
        user_agent,
        request_id,
    }
}

/// The raw body bytes (lambda_http already decoded a base64 body), refused above `limit`.
pub fn body(req: &Request, limit: usize) -> Result<&[u8], Problem> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > limit {
        Err(Problem::too_large(limit))
    } else {
        Ok(bytes)
    }
}

/// A `Set-Cookie` value: HttpOnly, Secure, SameSite=Lax, Path=/.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> String {
    format!("{name}={value}; Max-Age={max_age_seconds}; Path=/; HttpOnly; Secure; SameSite=Lax")
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogLevel, LogSwitches};

    fn config(cors: CorsOrigins) -> Config {
        let env =
            std::collections::BTreeMap::from([("AWS_REGION".to_owned(), "us-east-1".to_owned())]);
        static BARE: crate::resources::FunctionSpec = crate::resources::FunctionSpec {
            name: "bare",
            logical_id: "Bare",
            needs: &[],
        };
        let mut config = Config::from_lookup(&BARE, |k| env.get(k).cloned()).unwrap();
        config.cors_origins = cors;
        assert_eq!(config.log_level, LogLevel::Info);
        assert_eq!(
            config.logs,
            LogSwitches {
                audit: true,
                rate_limit: true,
                access: true,
                deletion: true
            }
        );
        config
    }

    #[test]
    fn problems_are_problem_json_with_code_and_field() {
        let res = Problem::bad_request("invalid_field", "text is over 500 bytes")
            .with_field("text")
            .into_response();
        assert_eq!(res.status(), 400);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let Body::Text(text) = res.body() else {
            panic!("text body")
        };
        let body: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(body["status"], 400);
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["field"], "text");
        assert_eq!(body["title"], "Bad Request");
    }

    #[test]
    fn every_answer_gets_security_headers_and_html_a_strict_csp() {
        let config = config(CorsOrigins::None);
        let res = finish(
            response(200, "text/html; charset=utf-8", "<p>hi</p>"),
            &HeaderMap::new(),
            &config,
        );
        for name in [
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
        ] {
            assert!(res.headers().contains_key(name), "{name}");
        }
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(!res.headers().contains_key("access-control-allow-origin"));
    }

    #[test]
    fn cors_answers_only_listed_origins() {
        let config = config(CorsOrigins::List(vec!["https://app.example".into()]));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        let res = finish(json_response(200, &json!({})), &headers, &config);
        assert!(!res.headers().contains_key("access-control-allow-origin"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        let res = finish(json_response(200, &json!({})), &headers, &config);
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            "https://app.example"
        );
    }

    #[test]
    fn cookies_and_bearer_are_read_strictly() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ts_session=abc.def"),
        );
        assert_eq!(cookie(&headers, "ts_session").as_deref(), Some("abc.def"));
        assert_eq!(cookie(&headers, "missing"), None);
        headers.append(header::COOKIE, HeaderValue::from_static("ts_session=other"));
        assert_eq!(
            cookie(&headers, "ts_session"),
            None,
            "a duplicated cookie is refused"
        );

        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok.sig"),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("tok.sig"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let req = lambda_http::http::Request::builder()
            .body(Body::Text("x".repeat(11)))
            .unwrap();
        assert_eq!(body(&req, 10).unwrap_err().status, 413);
        assert_eq!(body(&req, 11).unwrap(), b"xxxxxxxxxxx");
    }
}
