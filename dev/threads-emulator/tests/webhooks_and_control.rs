//! The webhook sender and signed_request generator against a real receiver, and the control
//! routes under /_emulator.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::{Harness, USER};
use serde_json::json;
use threads_emulator::webhook::{self, Change, ValuesShape};
use threads_emulator::{EmulatorConfig, Endpoint, Fault, FaultPlan};

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.seen.lock().unwrap().push((headers, body));
    let status = r.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A receiver that answers with `answers` in turn, then 200.
async fn receiver(answers: &[u16]) -> (String, Receiver) {
    let r = Receiver::default();
    r.answers.lock().unwrap().extend(answers);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

fn fast() -> EmulatorConfig {
    EmulatorConfig {
        webhook_retry_delay: Duration::from_millis(5),
        ..EmulatorConfig::default()
    }
}

#[test]
fn case_w1b_meta_json_and_signature() {
    let body = webhook::meta_json(&json!({"text": "héllo 🚀"}));
    assert_eq!(body.as_bytes(), br#"{"text":"h\u00e9llo \ud83d\ude80"}"#);
    assert_eq!(
        webhook::signature("test_app_secret", body.as_bytes()),
        "sha256=286cb6b374186c99b4f41886213582d4f0330b46b9ebf222b8939b98d2f13e8c"
    );
}

#[tokio::test]
async fn a_webhook_is_signed_over_the_bytes_sent_and_retried_until_200() {
    let h = Harness::with(fast()).await;
    let (url, r) = receiver(&[500, 503]).await;
    let change = Change {
        field: "replies".into(),
        value: json!({"id": "1", "text": "héllo 🚀 https://x.example/"}),
    };
    let report = h
        .emu
        .send_webhook(&url, &[change], ValuesShape::Object, false)
        .await;
    let statuses: Vec<_> = report.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert_eq!(report.delivered, 1);
    let seen = r.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let (headers, body) = &seen[2];
    assert!(body.is_ascii());
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.contains(r#"h\u00e9llo \ud83d\ude80 https:\/\/x.example\/"#),
        "{text}"
    );
    assert!(text.starts_with(r#"{"app_id":"1234567890","topic":"moderate","#));
    assert!(text.contains(r#""values":{"value":"#));
    assert_eq!(
        headers["x-hub-signature-256"].to_str().unwrap(),
        webhook::signature("test_app_secret", body)
    );
    // Re-serialising the parsed JSON gives other bytes, which the signature does not cover.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(body).unwrap()).unwrap();
    assert_ne!(
        webhook::signature("test_app_secret", &reserialised),
        webhook::signature("test_app_secret", body)
    );
}

#[tokio::test]
async fn delivery_gives_up_after_max_attempts_and_can_send_a_duplicate() {
    let h = Harness::with(fast()).await;
    let (url, r) = receiver(&[500, 500, 500]).await;
    let change = Change {
        field: "publish".into(),
        value: json!({"id": "9"}),
    };
    let report = h
        .emu
        .send_webhook(
            &url,
            std::slice::from_ref(&change),
            ValuesShape::Array,
            false,
        )
        .await;
    assert_eq!(report.attempts.len(), 3);
    assert_eq!(report.delivered, 0);
    r.seen.lock().unwrap().clear();
    let report = h
        .emu
        .send_webhook(&url, &[change.clone(), change], ValuesShape::Array, true)
        .await;
    assert_eq!(report.delivered, 2);
    let seen = r.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, seen[1].1);
    let body: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(body["values"].as_array().unwrap().len(), 2);
    assert_eq!(body["values"][0]["field"], "publish");
}

#[tokio::test]
async fn webhooks_and_signed_requests_can_be_sent_over_http() {
    let h = Harness::with(fast()).await;
    let (_, media) = h.post_text("storm root").await;
    let (url, r) = receiver(&[]).await;
    let a = h
        .post_json(
            "/_emulator/webhooks/send",
            &json!({"url": url, "field": "publish", "media_id": media, "values_as": "array"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["delivered"], 1);
    {
        let seen = r.seen.lock().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
        assert_eq!(body["values"][0]["value"]["id"], media.as_str());
        assert_eq!(body["values"][0]["value"]["media_type"], "TEXT_POST");
    }
    // A deliberately wrong signature, to test a receiver's refusal.
    let a = h
        .post_json(
            "/_emulator/webhooks/send",
            &json!({"url": url, "raw_body": "{\"a\":1}", "signature": "sha256=00"}),
        )
        .await;
    assert_eq!(a.json()["signature"], "sha256=00");

    let (callback, r) = receiver(&[]).await;
    let a = h
        .post_json(
            "/_emulator/signed_request",
            &json!({"user_id": "218471", "issued_at": 1_700_000_000, "padded": true, "deliver_to": callback}),
        )
        .await;
    let signed = a.json()["signed_request"].as_str().unwrap().to_string();
    let payload = webhook::verify_signed_request("test_app_secret", &signed).unwrap();
    assert_eq!(
        payload,
        json!({"algorithm": "HMAC-SHA256", "expires": 1_700_003_600, "issued_at": 1_700_000_000, "user_id": "218471"})
    );
    assert_eq!(a.json()["delivery"]["status"], 200);
    let seen = r.seen.lock().unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&seen[0].1)
        .into_owned()
        .collect();
    assert_eq!(form, [("signed_request".to_string(), signed)]);
}

async fn handshake(
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    let subscribe = q.get("hub.mode").map(String::as_str) == Some("subscribe");
    let token_ok = q.get("hub.verify_token").map(String::as_str) == Some("vt-test-123");
    match q.get("hub.challenge") {
        Some(challenge) if subscribe && token_ok => (StatusCode::OK, challenge.clone()),
        _ => (StatusCode::FORBIDDEN, String::new()),
    }
}

#[tokio::test]
async fn the_subscription_handshake_is_sent_like_meta_sends_it() {
    let h = Harness::new().await;
    let app = Router::new().route("/hook", get(handshake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ok = h
        .post_json(
            "/_emulator/webhooks/verify",
            &json!({"url": url, "verify_token": "vt-test-123", "challenge": 1158201444u64}),
        )
        .await
        .json();
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["body"], "1158201444");
    assert_eq!(ok["echoed"], true);
    let refused = webhook::verify_subscription(&url, "wrong", 1158201444).await;
    assert_eq!(refused.status, Some(403));
    assert!(!refused.echoed);
}

#[tokio::test]
async fn control_routes_drive_clock_tokens_posts_calls_and_reset() {
    let h = Harness::new().await;
    let set = h
        .post_json("/_emulator/clock/set", &json!({"now": 1_726_183_059}))
        .await
        .json();
    assert_eq!(set["timestamp"], "2024-09-12T23:17:39+0000");
    let advanced = h
        .post_json("/_emulator/clock/advance", &json!({"seconds": 86_400}))
        .await
        .json();
    assert!(advanced["now"].as_i64().unwrap() >= 1_726_183_059 + 86_400);
    assert_eq!(
        h.get("/_emulator/clock", &[]).await.json()["now"],
        advanced["now"]
    );

    let issued = h
        .post_json(
            "/_emulator/tokens",
            &json!({"user_id": "90071992547409931"}),
        )
        .await
        .json();
    let token = issued["access_token"].as_str().unwrap();
    assert!(token.starts_with("TH"));
    assert_eq!(issued["expires_in"], 5_184_000);
    let me = h.get("/v1.0/me", &[("access_token", token)]).await;
    assert_eq!(me.body, r#"{"id":"90071992547409931"}"#);

    h.post_text("recorded").await;
    let posts = h.get("/_emulator/posts", &[]).await.json();
    assert_eq!(posts[0]["text"], "recorded");
    assert_eq!(posts[0]["owner_user_id"], USER);
    let calls = h.get("/_emulator/calls", &[]).await.json();
    assert_eq!(
        (calls["create"].as_u64(), calls["publish"].as_u64()),
        (Some(1), Some(1))
    );
    // Control calls are not Threads calls.
    assert_eq!(h.emu.calls().api_total(), 3);

    h.emu
        .inject(FaultPlan::once(Endpoint::Any, Fault::Transient));
    assert_eq!(
        h.post_json("/_emulator/reset", &json!({})).await.status,
        200
    );
    assert!(h.emu.published().is_empty());
    assert_eq!(h.emu.calls().total(), 0);
    // Reset forgets tokens too, and the pending fault.
    assert_eq!(
        h.get("/v1.0/me", &[("access_token", token)]).await.code(),
        Some(190)
    );
    let fresh = h.emu.issue_long_lived_token(USER);
    assert_eq!(
        h.get("/v1.0/me", &[("access_token", &fresh)]).await.status,
        200
    );
    let config = h.get("/_emulator/config", &[]).await.json();
    assert_eq!(config["app_id"], "1234567890");
    let bad = h
        .post_json("/_emulator/clock/set", &json!({"nope": 1}))
        .await;
    assert_eq!(bad.status, 400);
    // Absurd clock moves are refused or clamped, never a crash.
    let far = h
        .post_json(
            "/_emulator/clock/advance",
            &json!({"seconds": u64::MAX, "ms": u64::MAX}),
        )
        .await;
    assert_eq!(far.status, 400);
    for now in [i64::MAX, i64::MIN] {
        assert_eq!(
            h.post_json("/_emulator/clock/set", &json!({"now": now}))
                .await
                .status,
            200
        );
        let token = h.emu.issue_long_lived_token(USER);
        let created = h
            .create_with(&token, &[("media_type", "TEXT"), ("text", "still fine")])
            .await;
        assert_eq!(created.status, 200);
        assert!(h.publish(&created.id()).await.status < 500);
        assert!(h.get("/v1.0/me", &[("access_token", &fresh)]).await.status < 500);
    }
}
