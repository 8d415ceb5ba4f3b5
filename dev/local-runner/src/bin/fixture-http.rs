//! Test fixture: an HTTP function built exactly like the real ones (lambda_http, REST payload),
//! answering with what lambda_http made of the event, so the tests see the request end to end.
//!
//! Paths ending in `/binary` answer a PNG-typed binary body, `/cookies` two `Set-Cookie`
//! headers, `/fail` an error (API Gateway answers 502).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::json;

fn multi(
    map: lambda_http::aws_lambda_events::query_map::QueryMap,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in map.iter() {
        out.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    out
}

async fn handle(request: Request) -> Result<Response<Body>, Error> {
    let raw_path = request.raw_http_path().to_owned();
    if raw_path.ends_with("/binary") {
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "image/png")
            .body(Body::Binary(vec![0x89, b'P', b'N', b'G', 0, 255]))?);
    }
    if raw_path.ends_with("/cookies") {
        return Ok(Response::builder()
            .status(201)
            .header("content-type", "text/plain")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(Body::Text("two cookies".into()))?);
    }
    if raw_path.ends_with("/fail") {
        return Err("asked to fail".into());
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let (stage, resource_path, source_ip) = match request.request_context() {
        RequestContext::ApiGatewayV1(ctx) => (ctx.stage, ctx.resource_path, ctx.identity.source_ip),
        _ => (None, None, None),
    };
    let body = json!({
        "method": request.method().as_str(),
        "uri_path": request.uri().path(),
        "raw_path": raw_path,
        "path_parameters": multi(request.path_parameters()),
        "query": multi(request.query_string_parameters()),
        "headers": headers,
        "body_base64": BASE64.encode(request.body().as_ref()),
        "stage": stage,
        "resource_path": resource_path,
        "source_ip": source_ip,
        "function_name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handle)).await
}
