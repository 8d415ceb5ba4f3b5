//! Requests shaped exactly as API Gateway's REST API hands them to lambda_http, and a local front
//! that serves a function over real HTTP the same way.

use std::future::Future;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// The source address of [`event`]'s requests.
pub const SOURCE_IP: &str = "203.0.113.9";

/// An API Gateway (REST) proxy event from [`SOURCE_IP`], turned into a request by lambda_http
/// itself.
pub fn event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Option<&str>,
    base64: bool,
) -> Request {
    event_from(SOURCE_IP, method, path, query, headers, body, base64)
}

/// [`event`] from `source_ip`.
pub fn event_from(
    source_ip: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Option<&str>,
    base64: bool,
) -> Request {
    let mut q = serde_json::Map::new();
    let mut mq = serde_json::Map::new();
    for (k, v) in query {
        q.insert((*k).to_owned(), json!(v));
        mq.entry((*k).to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!(v));
    }
    let mut h = serde_json::Map::new();
    let mut mh = serde_json::Map::new();
    for (k, v) in headers {
        h.insert((*k).to_owned(), json!(v));
        mh.entry((*k).to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!(v));
    }
    let raw = json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": h,
        "multiValueHeaders": mh,
        "queryStringParameters": if q.is_empty() { Value::Null } else { Value::Object(q) },
        "multiValueQueryStringParameters": if mq.is_empty() { Value::Null } else { Value::Object(mq) },
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc",
            "stage": "live",
            "requestId": "req-1",
            "identity": { "sourceIp": source_ip, "userAgent": "facebookexternalua" },
            "resourcePath": path,
            "httpMethod": method,
            "apiId": "api"
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    lambda_http::request::from_str(&raw.to_string()).expect("an API Gateway event")
}

/// A function served over HTTP on loopback as API Gateway serves it: each request becomes a REST
/// proxy event whose source IP is the connection's address, and the function's answer goes back
/// with its status, headers and body. Stops when dropped.
pub struct Front {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handle` (a function's `handle`) on a fresh loopback port.
pub async fn front<F, Fut>(handle: F) -> Front
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    // A client may connect from any loopback address (127.0.0.2 is another source).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(
        move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
              method: Method,
              uri: Uri,
              headers: HeaderMap,
              body: Bytes| {
            let handle = handle.clone();
            async move {
                let req = proxied(peer, &method, &uri, &headers, &body);
                answer(handle(req).await)
            }
        },
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Front { url, task }
}

/// The HTTP request as API Gateway's proxy event: query parameters decoded, a body that is not
/// UTF-8 base64-encoded.
fn proxied(
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Request {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(body), true),
    };
    event_from(
        &peer.ip().to_string(),
        method.as_str(),
        uri.path(),
        &query,
        &headers,
        (!body.is_empty()).then_some(body.as_str()),
        base64,
    )
}

fn answer(res: Response<Body>) -> axum::response::Response {
    let (parts, body) = res.into_parts();
    let bytes = match body {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}
