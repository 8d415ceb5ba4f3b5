//! Reads a Graph request the way Meta does: parameters from the query string and the body
//! (form or JSON) alike, the token from `access_token` or an `Authorization` header. Nothing a
//! client sends can make this fail with anything but a Graph error.

use std::collections::HashMap;

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

use crate::error::GraphError;

/// Requests larger than this are refused; Threads' largest text field is 10,000 characters.
const BODY_LIMIT: usize = 1 << 20;

/// Parameters of one request: the query string first, the body's fields override.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that is present and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, GraphError> {
        self.non_empty(name)
            .ok_or_else(|| GraphError::missing_param(name))
    }

    /// A Unix timestamp (`since`, `until`), if given; anything else is code 100.
    pub fn unix_time(&self, name: &str) -> Result<Option<i64>, GraphError> {
        self.non_empty(name)
            .map(|raw| {
                raw.parse::<i64>().map_err(|_| {
                    GraphError::invalid_param(format!("Param {name} must be a unix timestamp"))
                })
            })
            .transpose()
    }

    /// Graph booleans: `true`/`false`, also `1`/`0`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "True" | "TRUE"))
    }

    /// A comma-separated list (`fields`, `metric`, `children`), trimmed, empties dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn merge_form(&mut self, text: &[u8]) {
        for (k, v) in url::form_urlencoded::parse(text) {
            self.0.insert(k.into_owned(), v.into_owned());
        }
    }

    fn merge_json(&mut self, object: serde_json::Map<String, serde_json::Value>) {
        for (k, v) in object {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            self.0.insert(k, text);
        }
    }
}

/// A Graph request: its parameters and the token it carries.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub params: Params,
    pub token: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for GraphRequest {
    type Rejection = GraphError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let mut params = Params::default();
        if let Some(query) = parts.uri.query() {
            params.merge_form(query.as_bytes());
        }
        let bytes = to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| GraphError::body_unreadable())?;
        if !bytes.is_empty() {
            if is_json(&parts.headers) {
                match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(serde_json::Value::Object(object)) => params.merge_json(object),
                    _ => return Err(GraphError::body_unreadable()),
                }
            } else {
                params.merge_form(&bytes);
            }
        }
        let token = params
            .non_empty("access_token")
            .map(str::to_string)
            .or_else(|| header_token(&parts.headers));
        Ok(GraphRequest { params, token })
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// `Authorization: Bearer <token>` (also Graph's older `OAuth <token>`).
fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth");
    (known && !token.is_empty()).then(|| token.to_string())
}
