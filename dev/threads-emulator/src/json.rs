//! JSON written as text, in the key order Meta uses. `serde_json::Value` sorts keys and turns
//! large integers into floats on the way through some clients' parsers; writing the text here
//! keeps `user_id` digits exact and the shapes byte-for-byte as in the reference.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An object whose keys come out in insertion order.
#[derive(Debug, Default)]
pub struct Obj {
    parts: Vec<String>,
}

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    /// Adds a key whose value is already JSON text.
    pub fn raw(&mut self, key: &str, json: impl Into<String>) -> &mut Obj {
        self.parts.push(format!("{}:{}", quote(key), json.into()));
        self
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Obj {
        self.raw(key, quote(value))
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Obj {
        self.raw(key, value.to_string())
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Obj {
        self.raw(key, value.to_string())
    }

    pub fn text(&self) -> String {
        format!("{{{}}}", self.parts.join(","))
    }
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    to_text(&s)
}

/// Serialises a value that cannot fail to serialise (no maps with non-string keys here).
pub fn to_text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// A JSON array of already-serialised elements.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

/// A response carrying JSON text, with the content type Graph sends.
#[derive(Debug)]
pub struct JsonText(pub StatusCode, pub String);

impl JsonText {
    pub fn ok(body: impl Into<String>) -> JsonText {
        JsonText(StatusCode::OK, body.into())
    }
}

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_insertion_order_and_raw_numbers_stay_exact() {
        let mut obj = Obj::new();
        obj.str("access_token", "THabc")
            .raw("user_id", "90071992547409931");
        assert_eq!(
            obj.text(),
            r#"{"access_token":"THabc","user_id":90071992547409931}"#
        );
    }
}
