//! Requests shaped exactly as API Gateway's REST API hands them to lambda_http.

use lambda_http::Request;
use serde_json::{Value, json};

/// An API Gateway (REST) proxy event, turned into a request by lambda_http itself.
pub fn event(
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
            "identity": { "sourceIp": "203.0.113.9", "userAgent": "facebookexternalua" },
            "resourcePath": path,
            "httpMethod": method,
            "apiId": "api"
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    lambda_http::request::from_str(&raw.to_string()).expect("an API Gateway event")
}
