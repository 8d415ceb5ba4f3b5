//! Meta's side of webhooks and app callbacks: the Threads webhook envelope, serialised the way
//! Meta does (`/` as `\/`, every non-ASCII character as `\uXXXX`) and signed over those exact
//! bytes, delivered with Meta's retries and duplicates; and the `signed_request` sent to the
//! deauthorize and data-deletion callbacks.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// JSON text as Meta writes it: compact, `/` escaped as `\/`, non-ASCII as `\uXXXX`
/// (lowercase hex, surrogate pairs above U+FFFF). Object keys come out in the order of the
/// `Value`'s map.
pub fn meta_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&meta_quote(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&meta_quote(key));
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal in Meta's escaping.
pub fn meta_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// The `X-Hub-Signature-256` header value for `body`: `sha256=` and the lowercase hex
/// HMAC-SHA256 of the raw bytes under the app secret.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac(app_secret, body)))
}

fn hmac(secret: &str, data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this constructor cannot fail.
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Meta's `signed_request`: `base64url(HMAC-SHA256(app_secret, encoded_payload))` `.`
/// `encoded_payload`, where `encoded_payload` is the base64url of the payload's JSON.
/// `padded` keeps the `=` padding that some senders leave on.
pub fn signed_request(app_secret: &str, payload: &Value, padded: bool) -> String {
    let encode = |bytes: &[u8]| {
        if padded {
            URL_SAFE.encode(bytes)
        } else {
            URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    let encoded_payload = encode(meta_json(payload).as_bytes());
    let sig = encode(&hmac(app_secret, encoded_payload.as_bytes()));
    format!("{sig}.{encoded_payload}")
}

/// The payload Meta signs for a deauthorize or data-deletion callback.
pub fn callback_payload(user_id: &str, issued_at: i64) -> Value {
    serde_json::json!({
        "algorithm": "HMAC-SHA256",
        "expires": issued_at + 3600,
        "issued_at": issued_at,
        "user_id": user_id,
    })
}

/// Checks a `signed_request` as a receiver should (signature over the payload segment as
/// received, padding optional, algorithm HMAC-SHA256) and returns its payload.
pub fn verify_signed_request(app_secret: &str, signed_request: &str) -> Option<Value> {
    let (sig, payload) = signed_request.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig.trim_end_matches('=')).ok()?;
    if sig != hmac(app_secret, payload.as_bytes()) {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let value: Value = serde_json::from_slice(&json).ok()?;
    (value.get("algorithm")?.as_str()? == "HMAC-SHA256").then_some(value)
}

/// One change in a delivery: `{"value": {...}, "field": "replies"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub value: Value,
}

/// How `values` is shaped: Meta documents an object, and has been seen sending an array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValuesShape {
    #[default]
    Object,
    Array,
}

/// A Threads webhook body, keys in Meta's order. `values` is an object only for a single
/// change asked for as `Object`; several changes always go as an array.
pub fn envelope(
    app_id: &str,
    target_id: &str,
    time: i64,
    changes: &[Change],
    shape: ValuesShape,
) -> String {
    let change = |c: &Change| {
        format!(
            "{{\"value\":{},\"field\":{}}}",
            meta_json(&c.value),
            meta_quote(&c.field)
        )
    };
    let values = match (shape, changes) {
        (ValuesShape::Object, [single]) => change(single),
        _ => format!(
            "[{}]",
            changes.iter().map(change).collect::<Vec<_>>().join(",")
        ),
    };
    format!(
        "{{\"app_id\":{},\"topic\":\"moderate\",\"target_id\":{},\"time\":{time},\"subscription_id\":{},\"has_uid_field\":false,\"values\":{values}}}",
        meta_quote(app_id),
        meta_quote(target_id),
        meta_quote(&format!("{app_id}{target_id}")),
    )
}

/// Meta gives up after 36 hours; the emulator after this many attempts per delivery.
pub const MAX_ATTEMPTS: u32 = 100;

/// One webhook delivery, as Meta would make it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub app_secret: String,
    /// The exact bytes sent and signed.
    pub body: String,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Pause before the second retry, doubled after each; the first retry is immediate.
    pub retry_delay: Duration,
    /// Deliver the same body a second time after the first succeeds or gives up.
    pub duplicate: bool,
    /// Send this header value instead of the true signature (to test a receiver's refusal).
    pub signature_override: Option<String>,
    pub timeout: Duration,
}

impl Delivery {
    pub fn new(url: &str, app_secret: &str, body: String) -> Delivery {
        Delivery {
            url: url.to_string(),
            app_secret: app_secret.to_string(),
            body,
            max_attempts: 3,
            retry_delay: Duration::from_millis(100),
            duplicate: false,
            signature_override: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One HTTP attempt: the status answered, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// What happened to a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub attempts: Vec<Attempt>,
    /// Number of deliveries (original, duplicate) that got a 200.
    pub delivered: u32,
    pub signature: String,
    pub body: String,
}

/// Posts the body with its signature; on anything but 200 retries up to `max_attempts`
/// (first retry at once, then backing off), then sends the duplicate if asked.
pub async fn deliver(delivery: &Delivery) -> DeliveryReport {
    let signature = delivery
        .signature_override
        .clone()
        .unwrap_or_else(|| signature(&delivery.app_secret, delivery.body.as_bytes()));
    let mut report = DeliveryReport {
        attempts: Vec::new(),
        delivered: 0,
        signature: signature.clone(),
        body: delivery.body.clone(),
    };
    let client = match reqwest::Client::builder().timeout(delivery.timeout).build() {
        Ok(client) => client,
        Err(e) => {
            report.attempts.push(Attempt {
                status: None,
                error: Some(e.to_string()),
            });
            return report;
        }
    };
    let rounds = if delivery.duplicate { 2 } else { 1 };
    for _ in 0..rounds {
        let mut pause = Duration::ZERO;
        for attempt in 0..delivery.max_attempts.clamp(1, MAX_ATTEMPTS) {
            if attempt > 1 {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            } else if attempt == 1 {
                pause = delivery.retry_delay;
            }
            let sent = client
                .post(&delivery.url)
                .header("Content-Type", "application/json")
                .header(
                    "User-Agent",
                    "facebookplatform/1.0 (+http://developers.facebook.com)",
                )
                .header("X-Hub-Signature-256", &signature)
                .body(delivery.body.clone())
                .send()
                .await;
            let outcome = match sent {
                Ok(response) => Attempt {
                    status: Some(response.status().as_u16()),
                    error: None,
                },
                Err(e) => Attempt {
                    status: None,
                    error: Some(e.to_string()),
                },
            };
            let ok = outcome.status == Some(200);
            report.attempts.push(outcome);
            if ok {
                report.delivered += 1;
                break;
            }
        }
    }
    report
}

/// Posts `signed_request=…` as a form, as Meta calls the deauthorize and data-deletion URLs.
pub async fn deliver_signed_request(url: &str, signed_request: &str) -> Attempt {
    let client = reqwest::Client::new();
    match client
        .post(url)
        .form(&[("signed_request", signed_request)])
        .send()
        .await
    {
        Ok(response) => Attempt {
            status: Some(response.status().as_u16()),
            error: None,
        },
        Err(e) => Attempt {
            status: None,
            error: Some(e.to_string()),
        },
    }
}

/// What a subscription handshake got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    pub status: Option<u16>,
    pub body: String,
    pub content_type: Option<String>,
    /// True when the answer was 200 with exactly the challenge as the body.
    pub echoed: bool,
    pub error: Option<String>,
}

/// Meta's subscription check: `GET {url}?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…`;
/// a receiver must answer 200 with the raw challenge.
pub async fn verify_subscription(url: &str, verify_token: &str, challenge: u64) -> Handshake {
    let challenge = challenge.to_string();
    let sent = reqwest::Client::new()
        .get(url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", challenge.as_str()),
            ("hub.verify_token", verify_token),
        ])
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await.unwrap_or_default();
            Handshake {
                status: Some(status),
                echoed: status == 200 && body == challenge,
                body,
                content_type,
                error: None,
            }
        }
        Err(e) => Handshake {
            status: None,
            body: String::new(),
            content_type: None,
            echoed: false,
            error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_w1b_bytes_and_signature() {
        let body = meta_json(&serde_json::json!({"text": "héllo 🚀"}));
        assert_eq!(body, r#"{"text":"h\u00e9llo \ud83d\ude80"}"#);
        assert_eq!(body.len(), 34);
        assert_eq!(
            signature("test_app_secret", body.as_bytes()),
            "sha256=286cb6b374186c99b4f41886213582d4f0330b46b9ebf222b8939b98d2f13e8c"
        );
    }

    #[test]
    fn case_w1a_raw_utf8_signature() {
        let body = "{\"text\":\"héllo 🚀\"}";
        assert_eq!(body.len(), 22);
        assert_eq!(
            signature("test_app_secret", body.as_bytes()),
            "sha256=999254111d90509681052cc3a8453d0501ae7ceb1c86f907e10a16e96f8a2b40"
        );
    }

    #[test]
    fn slashes_and_controls_are_escaped_like_meta() {
        let body = meta_json(&serde_json::json!({"u": "https://x.example/a\"b\n\u{1}"}));
        assert_eq!(body, r#"{"u":"https:\/\/x.example\/a\"b\n\u0001"}"#);
    }

    #[test]
    fn signed_requests_verify_padded_or_not() {
        let payload = callback_payload("218471", 1_700_000_000);
        for padded in [true, false] {
            let sr = signed_request("test_app_secret", &payload, padded);
            assert_eq!(
                verify_signed_request("test_app_secret", &sr),
                Some(payload.clone())
            );
            assert_eq!(verify_signed_request("other_secret", &sr), None);
        }
    }

    #[test]
    fn one_change_as_object_several_as_array() {
        let reply = Change {
            field: "replies".into(),
            value: serde_json::json!({"id": "1"}),
        };
        let one = envelope(
            "1234567890",
            "42",
            1_723_000_000,
            std::slice::from_ref(&reply),
            ValuesShape::Object,
        );
        assert!(
            one.ends_with(r#""values":{"value":{"id":"1"},"field":"replies"}}"#),
            "{one}"
        );
        assert!(one.starts_with(
            r#"{"app_id":"1234567890","topic":"moderate","target_id":"42","time":1723000000,"#
        ));
        let two = envelope("1", "42", 0, &[reply.clone(), reply], ValuesShape::Object);
        assert!(two.contains(r#""values":[{"value""#));
    }

    proptest::proptest! {
        #[test]
        fn meta_json_is_ascii_and_parses_back_to_the_same_value(text in "\\PC*") {
            let value = serde_json::json!({ "text": text });
            let body = meta_json(&value);
            proptest::prop_assert!(body.is_ascii());
            let parsed: Value = serde_json::from_str(&body).unwrap();
            proptest::prop_assert_eq!(parsed, value);
        }
    }
}
