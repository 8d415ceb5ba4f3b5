//! The API Gateway REST API front: real HTTP requests in, REST proxy events (payload v1) out, the
//! function's proxy response mapped back to HTTP.
//!
//! Routes come from the functions' `Api` events. Like API Gateway, the API is served only under
//! its stage (`/live/...`); a path outside the stage is 403 `Forbidden`, a path or method with no
//! route is 403 `Missing Authentication Token`, a function error or a malformed proxy response is
//! 502 `Internal server error`, and an invocation that takes longer than 29 s is 504.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::functions::{FunctionDef, RestApiDef};
use crate::invocation::{Journal, Outcome, Trigger};
use crate::process::FunctionHandle;
use crate::serve::Peer;

/// API Gateway's payload limit for a request.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// How long a client may take to send its headers, and then its body, before the front gives up
/// on it (408), instead of holding the connection open for ever.
pub const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// API Gateway's integration timeout for REST APIs.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

// ---------------------------------------------------------------- routes

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    /// Precedence, as API Gateway applies it: a literal segment beats `{param}`, which beats
    /// `{proxy+}`.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

#[derive(Debug, Clone)]
struct Route {
    function: String,
    resource: String,
    segments: Vec<Segment>,
    /// Upper case, or `ANY`.
    method: String,
}

/// The routes of the REST API, from the functions' Api events.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

/// The route a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub function: String,
    /// The resource path as declared, e.g. `/v1/{proxy+}`.
    pub resource: String,
    /// Decoded path parameters.
    pub path_parameters: BTreeMap<String, String>,
}

impl Routes {
    pub fn new(functions: &[FunctionDef]) -> Routes {
        let routes = functions
            .iter()
            .flat_map(|f| {
                f.api_events.iter().map(|e| Route {
                    function: f.logical_id.clone(),
                    resource: e.path.clone(),
                    segments: split(&e.path)
                        .into_iter()
                        .map(
                            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                                Some(name) => match name.strip_suffix('+') {
                                    Some(greedy) => Segment::Greedy(greedy.to_owned()),
                                    None => Segment::Param(name.to_owned()),
                                },
                                None => Segment::Literal(s.to_owned()),
                            },
                        )
                        .collect(),
                    method: e.method.clone(),
                })
            })
            .collect();
        Routes { routes }
    }

    /// `(method, resource, function)` of every route.
    pub fn list(&self) -> Vec<(String, String, String)> {
        self.routes
            .iter()
            .map(|r| (r.method.clone(), r.resource.clone(), r.function.clone()))
            .collect()
    }

    /// The route for `path` (percent-encoded as received, without the stage) and `method`.
    pub fn find(&self, path: &str, method: &str) -> Option<RouteMatch> {
        let segments = split(path);
        self.routes
            .iter()
            .filter(|r| r.method == "ANY" || r.method.eq_ignore_ascii_case(method))
            .filter_map(|r| Some((r, match_segments(&r.segments, &segments)?)))
            // Most specific first; for equal paths, a route for this method before ANY.
            .min_by_key(|(r, _)| {
                let rank: Vec<u8> = r.segments.iter().map(Segment::rank).collect();
                (rank, r.method == "ANY")
            })
            .map(|(route, path_parameters)| RouteMatch {
                function: route.function.clone(),
                resource: route.resource.clone(),
                path_parameters,
            })
    }
}

/// `/a/b/` → `["a", "b"]`; `/` → `[]`. One trailing slash is ignored.
fn split(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn match_segments(route: &[Segment], path: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut parameters = BTreeMap::new();
    for (i, segment) in route.iter().enumerate() {
        match segment {
            Segment::Literal(literal) => {
                if decode(path.get(i)?) != *literal {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = path.get(i)?;
                if value.is_empty() {
                    return None;
                }
                parameters.insert(name.clone(), decode(value));
            }
            // `{proxy+}` takes one segment or more, and must be last.
            Segment::Greedy(name) => {
                if i != route.len() - 1 || path.len() <= i {
                    return None;
                }
                let rest: Vec<String> = path[i..].iter().map(|s| decode(s)).collect();
                parameters.insert(name.clone(), rest.join("/"));
                return Some(parameters);
            }
        }
    }
    (route.len() == path.len()).then_some(parameters)
}

// ---------------------------------------------------------------- request → event

/// The parts of an HTTP request the event is made of.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path after the stage, percent-encoded as received (`/v1/posts`).
    pub resource_path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
}

/// What the event says about the API and this request.
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub api_id: String,
    pub stage: String,
    pub stage_variables: Vec<(String, String)>,
    pub account_id: String,
    pub local_port: u16,
}

/// Content types whose bodies API Gateway would pass as text; anything else arrives base64.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/xml"
        || essence.ends_with("+xml")
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/javascript"
}

/// The REST API proxy event (payload format 1.0) for `request`, matched to `route`.
pub fn rest_event(
    request: &HttpRequest<'_>,
    route: &RouteMatch,
    context: &ApiContext,
    request_id: &str,
    now: OffsetDateTime,
) -> Value {
    // Header names arrive lower-cased (HTTP/1 parsing); values in the order sent.
    let mut multi_headers: Map<String, Value> = Map::new();
    for name in request.headers.keys() {
        let values: Vec<Value> = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        multi_headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    // What API Gateway adds on its way to the function.
    let forwarded_for = match multi_headers.get("x-forwarded-for") {
        Some(Value::Array(values)) => {
            let prior: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            format!("{}, {}", prior.join(", "), request.source_ip)
        }
        _ => request.source_ip.clone(),
    };
    let compact: String = request_id.chars().filter(|c| *c != '-').collect();
    let trace = format!(
        "Root=1-{:08x}-{}",
        now.unix_timestamp(),
        compact.get(..24).unwrap_or(&compact)
    );
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-port", context.local_port.to_string()),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-amzn-trace-id", trace),
    ] {
        multi_headers.insert(name.to_owned(), json!([value]));
    }
    let headers: Map<String, Value> = multi_headers
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_array()?.last()?.clone())))
        .collect();

    // Decoded once (`+` is a space, `%2B` a plus); repeated keys keep every value in order.
    let mut multi_query: Map<String, Value> = Map::new();
    for (key, value) in url::form_urlencoded::parse(request.query.unwrap_or("").as_bytes()) {
        let entry = multi_query
            .entry(key.into_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(value.into_owned()));
        }
    }
    let query: Map<String, Value> = multi_query
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_array()?.last()?.clone())))
        .collect();
    let or_null = |map: Map<String, Value>| {
        if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        }
    };

    let path_parameters: Map<String, Value> = route
        .path_parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let stage_variables: Map<String, Value> = context
        .stage_variables
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();

    let content_type = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let (body, is_base64) = if request.body.is_empty() {
        (Value::Null, false)
    } else {
        match (is_text(content_type), std::str::from_utf8(request.body)) {
            (true, Ok(text)) => (Value::String(text.to_owned()), false),
            _ => (Value::String(BASE64.encode(request.body)), true),
        }
    };

    let path = decode(request.resource_path);
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    let user_agent = request
        .headers
        .get("user-agent")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let host = request
        .headers
        .get("host")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| format!("127.0.0.1:{}", context.local_port));
    let request_time = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();

    json!({
        "resource": route.resource,
        "path": path,
        "httpMethod": request.method,
        "headers": or_null(headers),
        "multiValueHeaders": or_null(multi_headers),
        "queryStringParameters": or_null(query),
        "multiValueQueryStringParameters": or_null(multi_query),
        "pathParameters": or_null(path_parameters),
        "stageVariables": or_null(stage_variables),
        "requestContext": {
            "accountId": context.account_id,
            "apiId": context.api_id,
            "resourceId": resource_id(&route.resource),
            "resourcePath": route.resource,
            "httpMethod": request.method,
            "extendedRequestId": compact.get(..16).unwrap_or(&compact),
            "requestId": request_id,
            "requestTime": request_time,
            "requestTimeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
            "path": format!("/{}{}", context.stage, if path == "/" { "" } else { path.as_str() }),
            "protocol": "HTTP/1.1",
            "stage": context.stage,
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(&host),
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "sourceIp": request.source_ip,
                "principalOrgId": null,
                "accessKey": null,
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": user_agent,
                "user": null,
            },
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// A stable six-character resource id, like API Gateway's.
fn resource_id(resource: &str) -> String {
    let hash = resource.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|i| alphabet[((hash >> (i * 8)) % alphabet.len() as u64) as usize] as char)
        .collect()
}

// ---------------------------------------------------------------- proxy response → HTTP

/// A function's proxy response, checked and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}` as API Gateway does;
/// `Err` says why API Gateway would call it malformed (it answers 502).
pub fn map_response(payload: &[u8]) -> Result<MappedResponse, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let object = value.as_object().ok_or("response is not a JSON object")?;
    let status = match object.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .filter(|n| (100..=599).contains(n))
    .ok_or("statusCode is missing or not an HTTP status")?;

    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    // multiValueHeaders win for a name given in both; names compare case-insensitively.
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(multi) = object.get("multiValueHeaders").filter(|v| !v.is_null()) {
        let multi = multi
            .as_object()
            .ok_or("multiValueHeaders is not an object")?;
        for (name, values) in multi {
            let values = values
                .as_array()
                .ok_or_else(|| format!("multiValueHeaders.{name} is not a list"))?;
            for value in values {
                let value = text(value)
                    .ok_or_else(|| format!("multiValueHeaders.{name} holds a non-string"))?;
                headers.push((name.clone(), value));
            }
        }
    }
    if let Some(single) = object.get("headers").filter(|v| !v.is_null()) {
        let single = single.as_object().ok_or("headers is not an object")?;
        for (name, value) in single {
            if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                continue;
            }
            let value = text(value).ok_or_else(|| format!("headers.{name} is not a string"))?;
            headers.push((name.clone(), value));
        }
    }

    let base64 = match object.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(_) => return Err("isBase64Encoded is not a boolean".into()),
    };
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if base64 => BASE64
            .decode(s)
            .map_err(|e| format!("body is not valid base64: {e}"))?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err("body is not a string".into()),
    };
    Ok(MappedResponse {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------- the server

/// Everything the front needs to answer a request.
pub(crate) struct Front {
    pub routes: Routes,
    pub api: RestApiDef,
    pub context: ApiContext,
    pub functions: HashMap<String, FunctionHandle>,
    pub journal: Journal,
}

pub(crate) fn router(front: Arc<Front>) -> Router {
    Router::new().fallback(handle).with_state(front)
}

fn gateway_error(
    status: StatusCode,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Response {
    let mut response = Response::new(Body::from(json!({ "message": message }).to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(error_type) {
        headers.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// The stage's resource path: `/live/v1/x` → `/v1/x`, `/live` → `/`; `None` outside the stage.
fn strip_stage<'a>(path: &'a str, stage: &str) -> Option<&'a str> {
    let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
    match rest {
        "" => Some("/"),
        _ if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

async fn handle(State(front): State<Arc<Front>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let full_path = parts.uri.path().to_owned();

    let Some(resource_path) = strip_stage(&full_path, &front.api.stage) else {
        return gateway_error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "Forbidden",
            &request_id,
        );
    };
    let Some(route) = front.routes.find(resource_path, &method) else {
        return gateway_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
            &request_id,
        );
    };
    let Some(function) = front.functions.get(&route.function) else {
        return gateway_error(
            StatusCode::BAD_GATEWAY,
            "InternalServerErrorException",
            "Internal server error",
            &request_id,
        );
    };
    let body = match tokio::time::timeout(
        CLIENT_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_REQUEST_BYTES),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return gateway_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                "Request Too Long",
                &request_id,
            );
        }
        Err(_) => {
            return gateway_error(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                "The request body did not arrive in time",
                &request_id,
            );
        }
    };
    let source_ip = parts
        .extensions
        .get::<Peer>()
        .map(|p| p.0.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let http = HttpRequest {
        method: &method,
        resource_path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        source_ip,
    };
    let event = rest_event(
        &http,
        &route,
        &front.context,
        &request_id,
        OffsetDateTime::now_utc(),
    );
    let event = serde_json::to_vec(&event).unwrap_or_default();

    let invocation = match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(event)).await {
        Ok(Ok(invocation)) => invocation,
        Ok(Err(_stopped)) => {
            return gateway_error(
                StatusCode::BAD_GATEWAY,
                "InternalServerErrorException",
                "Internal server error",
                &request_id,
            );
        }
        Err(_elapsed) => {
            eprintln!(
                "local-runner: {} API {method} {full_path} -> 504 (no answer within {} s)",
                route.function,
                INTEGRATION_TIMEOUT.as_secs()
            );
            return gateway_error(
                StatusCode::GATEWAY_TIMEOUT,
                "IntegrationTimeout",
                "Endpoint request timed out",
                &request_id,
            );
        }
    };

    let mapped = match &invocation.outcome {
        Outcome::Response(payload) => map_response(payload).map_err(|reason| {
            eprintln!(
                "local-runner: {}: malformed Lambda proxy response ({reason})",
                route.function
            );
        }),
        _ => Err(()),
    };
    let response = match mapped {
        Ok(mapped) => build_response(mapped, &request_id),
        Err(()) => gateway_error(
            StatusCode::BAD_GATEWAY,
            "InternalServerErrorException",
            "Internal server error",
            &request_id,
        ),
    };
    front.journal.record(
        &invocation,
        Trigger::Api {
            method,
            path: full_path,
            status: response.status().as_u16(),
        },
    );
    response
}

fn build_response(mapped: MappedResponse, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(mapped.body));
    *response.status_mut() = StatusCode::from_u16(mapped.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response.headers_mut();
    for (name, value) in mapped.headers {
        // Framing is API Gateway's business, not the function's.
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    if !headers.contains_key("content-type") {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::ApiEventDef;

    fn function(id: &str, routes: &[(&str, &str)]) -> FunctionDef {
        FunctionDef {
            logical_id: id.into(),
            binary: id.into(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            handler: "bootstrap".into(),
            api_events: routes
                .iter()
                .enumerate()
                .map(|(i, (method, path))| ApiEventDef {
                    name: format!("E{i}"),
                    path: (*path).into(),
                    method: (*method).into(),
                    rest_api: "Api".into(),
                })
                .collect(),
            sqs_events: vec![],
            schedules: vec![],
            unsupported_events: vec![],
        }
    }

    fn routes() -> Routes {
        Routes::new(&[
            function("Api", &[("GET", "/"), ("ANY", "/v1/{proxy+}")]),
            function(
                "Items",
                &[("GET", "/v1/items/{code}"), ("POST", "/v1/items")],
            ),
            function("Status", &[("GET", "/meta/deletion-status/{code}")]),
        ])
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let r = routes();
        assert_eq!(r.find("/v1/items/abc", "GET").unwrap().function, "Items");
        assert_eq!(r.find("/v1/items", "POST").unwrap().function, "Items");
        // Method not on the specific route: the greedy ANY route takes it.
        let greedy = r.find("/v1/items", "GET").unwrap();
        assert_eq!(greedy.function, "Api");
        assert_eq!(greedy.path_parameters["proxy"], "items");
        assert_eq!(r.find("/", "GET").unwrap().function, "Api");
    }

    #[test]
    fn greedy_takes_one_or_more_segments_decoded() {
        let r = routes();
        let m = r.find("/v1/a/b%20c/d", "DELETE").unwrap();
        assert_eq!(m.resource, "/v1/{proxy+}");
        assert_eq!(m.path_parameters["proxy"], "a/b c/d");
        assert!(r.find("/v1", "GET").is_none());
        assert!(r.find("/v1/", "GET").is_none());
    }

    #[test]
    fn missing_routes_and_methods_find_nothing() {
        let r = routes();
        assert!(r.find("/nope", "GET").is_none());
        assert!(r.find("/", "POST").is_none());
        assert!(r.find("/meta/deletion-status", "GET").is_none());
        assert_eq!(
            r.find("/meta/deletion-status/x%2Fy", "GET")
                .unwrap()
                .path_parameters["code"],
            "x/y"
        );
    }

    #[test]
    fn stage_prefix_is_required() {
        assert_eq!(strip_stage("/live/v1/x", "live"), Some("/v1/x"));
        assert_eq!(strip_stage("/live", "live"), Some("/"));
        assert_eq!(strip_stage("/live/", "live"), Some("/"));
        assert_eq!(strip_stage("/lively", "live"), None);
        assert_eq!(strip_stage("/v1/x", "live"), None);
    }

    fn context() -> ApiContext {
        ApiContext {
            api_id: "abc123defg".into(),
            stage: "live".into(),
            stage_variables: vec![],
            account_id: "123456789012".into(),
            local_port: 3000,
        }
    }

    fn event_for(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Value {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let route = routes().find(path, method).unwrap();
        let request = HttpRequest {
            method,
            resource_path: path,
            query,
            headers: &map,
            body,
            source_ip: "127.0.0.1".into(),
        };
        rest_event(
            &request,
            &route,
            &context(),
            "c0ffee00-1111-2222-3333-444455556666",
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn query_strings_are_decoded_once_with_every_value_kept() {
        let event = event_for(
            "GET",
            "/v1/items/x",
            Some("a=1&a=2&b=x+y&c=%2B%20"),
            &[],
            b"",
        );
        assert_eq!(
            event["multiValueQueryStringParameters"]["a"],
            json!(["1", "2"])
        );
        assert_eq!(event["queryStringParameters"]["a"], "2");
        assert_eq!(event["queryStringParameters"]["b"], "x y");
        assert_eq!(event["queryStringParameters"]["c"], "+ ");
        let none = event_for("GET", "/v1/items/x", None, &[], b"");
        assert_eq!(none["queryStringParameters"], Value::Null);
        assert_eq!(none["multiValueQueryStringParameters"], Value::Null);
    }

    #[test]
    fn event_has_the_rest_proxy_shape() {
        let event = event_for(
            "POST",
            "/v1/items",
            None,
            &[
                ("content-type", "application/json"),
                ("x-thing", "a"),
                ("x-thing", "b"),
                ("user-agent", "curl/8"),
            ],
            br#"{"a":1}"#,
        );
        assert_eq!(event["resource"], "/v1/items");
        assert_eq!(event["path"], "/v1/items");
        assert_eq!(event["httpMethod"], "POST");
        assert_eq!(event["headers"]["x-thing"], "b");
        assert_eq!(event["multiValueHeaders"]["x-thing"], json!(["a", "b"]));
        assert_eq!(event["pathParameters"], Value::Null);
        assert_eq!(event["stageVariables"], Value::Null);
        assert_eq!(event["body"], r#"{"a":1}"#);
        assert_eq!(event["isBase64Encoded"], false);
        let ctx = &event["requestContext"];
        assert_eq!(ctx["stage"], "live");
        assert_eq!(ctx["path"], "/live/v1/items");
        assert_eq!(ctx["resourcePath"], "/v1/items");
        assert_eq!(ctx["httpMethod"], "POST");
        assert_eq!(ctx["requestId"], "c0ffee00-1111-2222-3333-444455556666");
        assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
        assert_eq!(ctx["identity"]["userAgent"], "curl/8");
        assert_eq!(ctx["requestTime"], "01/Jan/1970:00:00:00 +0000");

        // The shapes the functions deserialize.
        let typed: aws_lambda_events::apigw::ApiGatewayProxyRequest =
            serde_json::from_value(event.clone()).unwrap();
        assert_eq!(typed.request_context.stage.as_deref(), Some("live"));
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.uri().path(), "/live/v1/items");
    }

    #[test]
    fn binary_bodies_arrive_base64() {
        let bytes = [0u8, 159, 146, 150, 255];
        let event = event_for(
            "POST",
            "/v1/items",
            None,
            &[("content-type", "image/png")],
            &bytes,
        );
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], BASE64.encode(bytes));
        let no_type = event_for("POST", "/v1/items", None, &[], b"hello");
        assert_eq!(no_type["isBase64Encoded"], true);
        let form = event_for(
            "POST",
            "/v1/items",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            b"a=b",
        );
        assert_eq!(form["body"], "a=b");
        assert_eq!(form["isBase64Encoded"], false);
    }

    #[test]
    fn responses_merge_headers_and_decode_bodies() {
        let mapped = map_response(
            br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","set-cookie":"x"},
                 "multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(mapped.status, 201);
        assert_eq!(mapped.body, b"hi");
        assert_eq!(
            mapped.headers,
            vec![
                ("Set-Cookie".into(), "a=1".into()),
                ("Set-Cookie".into(), "b=2".into()),
                ("Content-Type".into(), "text/plain".into()),
            ]
        );
    }

    #[test]
    fn malformed_responses_are_refused() {
        for bad in [
            &br#"not json"#[..],
            br#"[1]"#,
            br#"{"body":"x"}"#,
            br#"{"statusCode":"abc"}"#,
            br#"{"statusCode":200,"body":{"a":1}}"#,
            br#"{"statusCode":200,"headers":{"a":{"b":1}}}"#,
            br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
        ] {
            assert!(
                map_response(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            map_response(br#"{"statusCode":"204"}"#).unwrap().status,
            204
        );
    }
}
