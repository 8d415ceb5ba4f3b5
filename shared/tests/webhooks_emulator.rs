//! ThreadStorm's webhook verification and parsing against the Threads emulator's sender: real
//! signed deliveries (Meta's escaping, both `values` shapes, batches, duplicates, retries), the
//! subscription handshake and `signed_request` callbacks, received by a small HTTP server that
//! runs `threadstorm::webhooks` on the raw bytes, as the webhooks function will.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use threads_emulator::webhook::{
    self, Change as SentChange, Delivery as Sending, DeliveryReport, ValuesShape, callback_payload,
    deliver_signed_request, verify_subscription,
};
use threads_emulator::{Emulator, EmulatorConfig};
use threadstorm::config::Secret;
use threadstorm::webhooks::delivery::{self, Change, Delivery};
use threadstorm::webhooks::handshake::{self, HubQuery};
use threadstorm::webhooks::signature;
use threadstorm::webhooks::signed_request::{self, SignedRequest};

const APP_ID: &str = "1234567890";
const APP_SECRET: &str = "test_app_secret";
const VERIFY_TOKEN: &str = "vt-test-123";
const TARGET: &str = "17841405793187218";

/// What the receiver saw.
#[derive(Default)]
struct Log {
    /// Every request's answer, in order.
    statuses: Vec<u16>,
    deliveries: Vec<Delivery>,
    /// Changes processed once each, by dedup key.
    seen: HashSet<String>,
    processed: Vec<Change>,
    callbacks: Vec<SignedRequest>,
}

#[derive(Clone)]
struct Receiver {
    secrets: Arc<Vec<Secret>>,
    verify_token: Secret,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    fn record(&self, status: StatusCode) {
        self.log.lock().unwrap().statuses.push(status.as_u16());
    }

    fn secrets(&self) -> Vec<&Secret> {
        self.secrets.iter().collect()
    }
}

async fn handshake_route(State(rx): State<Receiver>, RawQuery(query): RawQuery) -> Response {
    let query = HubQuery::from_query_string(query.as_deref().unwrap_or_default());
    match handshake::answer(&query, &[&rx.verify_token]) {
        Ok(challenge) => {
            rx.record(StatusCode::OK);
            (
                [(header::CONTENT_TYPE, handshake::CONTENT_TYPE)],
                challenge.into_string(),
            )
                .into_response()
        }
        Err(err) => {
            rx.record(err.status());
            err.status().into_response()
        }
    }
}

/// The route's whole job: raw bytes → signature → parse → dedup.
fn receive(rx: &Receiver, headers: &HeaderMap, raw: &[u8]) -> StatusCode {
    if let Err(err) = signature::verify_headers(headers, raw, &rx.secrets()) {
        return err.status();
    }
    let parsed = match delivery::parse(raw, APP_ID) {
        Ok(parsed) => parsed,
        Err(err) => return err.status(),
    };
    let mut log = rx.log.lock().unwrap();
    for change in &parsed.changes {
        if let Some(key) = change.dedup_key()
            && log.seen.insert(key.to_string())
        {
            log.processed.push(change.clone());
        }
    }
    log.deliveries.push(parsed);
    StatusCode::OK
}

async fn webhook_route(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = receive(&rx, &headers, &body);
    rx.record(status);
    status
}

/// As API Gateway hands a body it treated as binary: base64 text with `isBase64Encoded: true`.
async fn base64_webhook_route(
    State(rx): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let event_body = base64::engine::general_purpose::STANDARD.encode(&body);
    let status = match signature::raw_body(&event_body, true) {
        Ok(raw) => receive(&rx, &headers, &raw),
        Err(err) => err.status(),
    };
    rx.record(status);
    status
}

async fn deletion_route(State(rx): State<Receiver>, body: Bytes) -> Response {
    match signed_request::verify_form(&body, &rx.secrets()) {
        Ok(request) => {
            rx.record(StatusCode::OK);
            rx.log.lock().unwrap().callbacks.push(request);
            axum::Json(json!({
                "url": "https://threadstorm.example/deletion-status",
                "confirmation_code": signed_request::confirmation_code(),
            }))
            .into_response()
        }
        Err(err) => {
            rx.record(err.status());
            err.status().into_response()
        }
    }
}

struct World {
    emu: Emulator,
    base: String,
    log: Arc<Mutex<Log>>,
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    /// The emulator's own sender: an envelope of `changes`, signed with the app secret.
    async fn send(
        &self,
        path: &str,
        changes: &[SentChange],
        shape: ValuesShape,
        duplicate: bool,
    ) -> DeliveryReport {
        self.emu
            .send_webhook(&self.url(path), changes, shape, duplicate)
            .await
    }

    /// `body` posted once to /webhooks, signed with `secret` or carrying `signature` instead.
    async fn post_once(
        &self,
        secret: &str,
        body: String,
        signature: Option<String>,
    ) -> Vec<Option<u16>> {
        let mut sending = Sending::new(&self.url("/webhooks"), secret, body);
        sending.max_attempts = 1;
        sending.signature_override = signature;
        statuses(&webhook::deliver(&sending).await)
    }

    /// One of the emulator's control routes.
    async fn control(&self, path: &str, request: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/_emulator{path}", self.emu.base_url()))
            .json(&request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn world_with(secrets: Vec<Secret>) -> World {
    let config = EmulatorConfig {
        webhook_max_attempts: 3,
        webhook_retry_delay: Duration::from_millis(10),
        ..EmulatorConfig::default()
    };
    assert_eq!(config.app_id, APP_ID);
    assert_eq!(config.app_secret, APP_SECRET);
    let emu = Emulator::start(config).await.unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let rx = Receiver {
        secrets: Arc::new(secrets),
        verify_token: Secret::new(VERIFY_TOKEN),
        log: log.clone(),
    };
    let app = Router::new()
        .route("/webhooks", get(handshake_route).post(webhook_route))
        .route("/webhooks-base64", post(base64_webhook_route))
        .route("/callbacks/deletion", post(deletion_route))
        .with_state(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    World { emu, base, log }
}

async fn world() -> World {
    world_with(vec![Secret::new(APP_SECRET)]).await
}

fn change(field: &str, value: Value) -> SentChange {
    SentChange {
        field: field.into(),
        value,
    }
}

fn reply(id: &str, text: &str) -> SentChange {
    change(
        "replies",
        json!({"id": id, "text": text, "root_post": {"owner_id": TARGET}}),
    )
}

fn statuses(report: &DeliveryReport) -> Vec<Option<u16>> {
    report.attempts.iter().map(|a| a.status).collect()
}

fn envelope(changes: &[SentChange]) -> String {
    webhook::envelope(APP_ID, TARGET, 1_723_000_000, changes, ValuesShape::Object)
}

fn dedup_keys(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| c.dedup_key().map(|k| k.to_string()))
        .collect()
}

#[tokio::test]
async fn an_object_shaped_delivery_in_metas_escaping_verifies_and_parses() {
    let w = world().await;
    let text = "héllo 🚀 \"quoted\" https://x.example/a\nnext line";
    let report = w
        .send(
            "/webhooks",
            &[reply("17920000000000999", text)],
            ValuesShape::Object,
            false,
        )
        .await;
    assert_eq!(statuses(&report), [Some(200)]);
    // The bytes on the wire are Meta's escaped form, not UTF-8.
    assert!(report.body.is_ascii());
    assert!(report.body.contains(r#"h\u00e9llo \ud83d\ude80"#));
    assert!(report.body.contains(r#"https:\/\/x.example\/a"#));
    assert!(report.body.contains(r#""values":{"value":"#));
    let log = w.log();
    assert_eq!(log.deliveries.len(), 1);
    assert_eq!(
        log.deliveries[0].target_id.as_ref().unwrap().as_str(),
        TARGET
    );
    let Change::Reply(parsed) = &log.processed[0] else {
        panic!("{:?}", log.processed)
    };
    assert_eq!(parsed.text.as_deref(), Some(text));
    assert_eq!(parsed.id.as_str(), "17920000000000999");
    assert_eq!(
        parsed
            .root_post
            .as_ref()
            .unwrap()
            .owner_id
            .as_ref()
            .unwrap()
            .as_str(),
        TARGET
    );
}

#[tokio::test]
async fn an_array_shaped_delivery_of_every_field_parses_in_order() {
    let w = world().await;
    let changes = [
        reply("17920000000000101", "première réponse"),
        change(
            "mentions",
            json!({"id": 17920000000000102u64, "text": "@storm_tester ✨"}),
        ),
        change(
            "publish",
            json!({"id": "17920000000000103", "media_type": "IMAGE"}),
        ),
        change(
            "delete",
            json!({"id": "17920000000000104", "owner": {"owner_id": TARGET}}),
        ),
        change("some_future_field", json!({"id": "17920000000000105"})),
    ];
    let report = w
        .send("/webhooks", &changes, ValuesShape::Array, false)
        .await;
    assert_eq!(statuses(&report), [Some(200)]);
    assert!(report.body.contains(r#""values":[{"value":"#));
    let log = w.log();
    let parsed = &log.deliveries[0].changes;
    assert_eq!(parsed.len(), 5);
    assert!(
        matches!(&parsed[0], Change::Reply(r) if r.text.as_deref() == Some("première réponse"))
    );
    assert!(
        matches!(&parsed[1], Change::Mention(m) if m.text.as_deref() == Some("@storm_tester ✨"))
    );
    assert!(matches!(&parsed[2], Change::Publish(p) if p.media_type.as_deref() == Some("IMAGE")));
    assert!(
        matches!(&parsed[3], Change::Delete(d) if d.owner_id.as_ref().map(|o| o.as_str()) == Some(TARGET))
    );
    assert_eq!(parsed[4], Change::Unknown("some_future_field".into()));
    assert_eq!(
        dedup_keys(&log.processed),
        [
            "replies:17920000000000101",
            "mentions:17920000000000102",
            "publish:17920000000000103",
            "delete:17920000000000104"
        ]
    );
}

#[tokio::test]
async fn the_emulators_own_values_for_each_field_parse_in_both_shapes() {
    let w = world().await;
    for shape in ["object", "array"] {
        for field in ["replies", "mentions", "publish", "delete"] {
            let report = w
                .control(
                    "/webhooks/send",
                    json!({"url": w.url("/webhooks"), "field": field, "values_as": shape, "max_attempts": 1}),
                )
                .await;
            assert_eq!(report["delivered"], 1, "{field} as {shape}: {report}");
        }
    }
    let log = w.log();
    let keys: Vec<String> = log
        .deliveries
        .iter()
        .flat_map(|d| dedup_keys(&d.changes))
        .collect();
    let expected: Vec<String> = ["replies", "mentions", "publish", "delete"]
        .iter()
        .map(|f| format!("{f}:17920000000000999"))
        .collect();
    assert_eq!(keys, [expected.clone(), expected].concat());
}

#[tokio::test]
async fn a_redelivered_body_and_repeated_changes_are_processed_once() {
    let w = world().await;
    let changes = [
        reply("17920000000000201", "once"),
        reply("17920000000000201", "once"),
        reply("17920000000000202", "twice?"),
        change("delete", json!({"id": "17920000000000201"})),
    ];
    let report = w
        .send("/webhooks", &changes, ValuesShape::Array, true)
        .await;
    assert_eq!(report.delivered, 2, "Meta's duplicate is answered 200 too");
    assert_eq!(statuses(&report), [Some(200), Some(200)]);
    let log = w.log();
    assert_eq!(log.deliveries.len(), 2);
    assert_eq!(log.deliveries[0], log.deliveries[1]);
    assert_eq!(
        dedup_keys(&log.processed),
        [
            "replies:17920000000000201",
            "replies:17920000000000202",
            "delete:17920000000000201"
        ]
    );
}

#[tokio::test]
async fn a_wrong_signature_is_401_every_time_meta_retries_and_nothing_is_processed() {
    let w = world().await;
    let body = envelope(&[reply("17920000000000301", "forged")]);
    for wrong in [
        webhook::signature("another_secret", body.as_bytes()),
        webhook::signature(APP_SECRET, b"some other body"),
        "sha1=0123456789abcdef0123456789abcdef01234567".to_owned(),
        "sha256=".to_owned(),
        "garbage".to_owned(),
    ] {
        let mut sending = Sending::new(&w.url("/webhooks"), APP_SECRET, body.clone());
        sending.max_attempts = 3;
        sending.retry_delay = Duration::from_millis(5);
        sending.signature_override = Some(wrong.clone());
        let report = webhook::deliver(&sending).await;
        assert_eq!(report.delivered, 0, "{wrong}");
        assert_eq!(statuses(&report), [Some(401); 3], "{wrong}");
    }
    // No header at all.
    let response = reqwest::Client::new()
        .post(w.url("/webhooks"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let log = w.log();
    assert_eq!(log.statuses, [401; 16]);
    assert!(log.deliveries.is_empty());
    assert!(log.processed.is_empty());
}

#[tokio::test]
async fn a_re_serialised_body_under_metas_signature_is_refused() {
    let w = world().await;
    let body = envelope(&[reply("17920000000000401", "héllo 🚀")]);
    let reserialised = serde_json::from_str::<Value>(&body).unwrap().to_string();
    assert_ne!(reserialised, body);
    let metas = webhook::signature(APP_SECRET, body.as_bytes());
    assert_eq!(
        w.post_once(APP_SECRET, reserialised, Some(metas)).await,
        [Some(401)]
    );
}

#[tokio::test]
async fn a_delivery_for_another_app_is_403_even_when_signed() {
    let w = world().await;
    let body = webhook::envelope(
        "999999",
        TARGET,
        1_723_000_000,
        &[reply("17920000000000501", "not ours")],
        ValuesShape::Object,
    );
    assert_eq!(w.post_once(APP_SECRET, body, None).await, [Some(403)]);
    assert!(w.log().processed.is_empty());
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_envelope_is_400() {
    let w = world().await;
    for body in ["not json", "[]", r#"{"app_id":"1234567890"}"#] {
        let got = w.post_once(APP_SECRET, body.to_owned(), None).await;
        assert_eq!(got, [Some(400)], "{body}");
    }
}

#[tokio::test]
async fn a_thousand_changes_are_accepted_and_a_thousand_and_one_are_413() {
    let w = world().await;
    let many: Vec<SentChange> = (0..1001u64)
        .map(|i| {
            change(
                "replies",
                json!({"id": (17_920_000_000_010_000 + i).to_string()}),
            )
        })
        .collect();
    let report = w
        .send("/webhooks", &many[..1000], ValuesShape::Array, false)
        .await;
    assert_eq!(statuses(&report), [Some(200)]);
    assert_eq!(w.log().processed.len(), 1000);
    let over = webhook::envelope(APP_ID, TARGET, 1, &many, ValuesShape::Array);
    assert_eq!(w.post_once(APP_SECRET, over, None).await, [Some(413)]);
}

#[tokio::test]
async fn during_a_secret_rotation_both_secrets_verify() {
    let w = world_with(vec![Secret::new("rotated_secret"), Secret::new(APP_SECRET)]).await;
    let old = [reply("17920000000000601", "old secret")];
    let report = w.send("/webhooks", &old, ValuesShape::Object, false).await;
    assert_eq!(statuses(&report), [Some(200)]);
    let new = envelope(&[reply("17920000000000602", "new secret")]);
    assert_eq!(w.post_once("rotated_secret", new, None).await, [Some(200)]);
    assert_eq!(w.log().processed.len(), 2);
}

#[tokio::test]
async fn a_base64_body_from_api_gateway_is_decoded_before_verifying() {
    let w = world().await;
    let changes = [reply("17920000000000701", "héllo 🚀")];
    let report = w
        .send("/webhooks-base64", &changes, ValuesShape::Array, false)
        .await;
    assert_eq!(statuses(&report), [Some(200)]);
    let log = w.log();
    assert!(matches!(&log.processed[0], Change::Reply(r) if r.text.as_deref() == Some("héllo 🚀")));
}

#[tokio::test]
async fn the_subscription_handshake_echoes_exactly_the_challenge() {
    let w = world().await;
    let ok = verify_subscription(&w.url("/webhooks"), VERIFY_TOKEN, 1_158_201_444).await;
    assert_eq!(ok.status, Some(200));
    assert!(ok.echoed);
    assert_eq!(ok.body.as_bytes(), b"1158201444");
    assert_eq!(ok.content_type.as_deref(), Some("text/plain"));

    let wrong = verify_subscription(&w.url("/webhooks"), "vt-test-124", 1_158_201_444).await;
    assert_eq!(wrong.status, Some(403));
    assert!(!wrong.echoed);
    assert!(!wrong.body.contains("1158201444"));

    let unsubscribe = reqwest::get(w.url(
        "/webhooks?hub.mode=unsubscribe&hub.verify_token=vt-test-123&hub.challenge=1158201444",
    ))
    .await
    .unwrap();
    assert_eq!(unsubscribe.status().as_u16(), 403);
    let reflective = reqwest::get(w.url(
        "/webhooks?hub.mode=subscribe&hub.verify_token=vt-test-123&hub.challenge=%3Cscript%3E",
    ))
    .await
    .unwrap();
    assert_eq!(reflective.status().as_u16(), 400);
    assert!(!reflective.text().await.unwrap().contains("script"));
}

#[tokio::test]
async fn signed_requests_from_the_emulator_verify_padded_and_unpadded() {
    let w = world().await;
    for (padded, user) in [(true, "218471"), (false, "90071992547409931")] {
        let payload = callback_payload(user, 1_700_000_000);
        let sr = webhook::signed_request(APP_SECRET, &payload, padded);
        let attempt = deliver_signed_request(&w.url("/callbacks/deletion"), &sr).await;
        assert_eq!(attempt.status, Some(200), "padded={padded}");
    }
    // Through the emulator's control route, which posts the form itself.
    let deletion = w.url("/callbacks/deletion");
    let answer = w
        .control(
            "/signed_request",
            json!({"user_id": "4242", "padded": true, "deliver_to": deletion}),
        )
        .await;
    assert_eq!(answer["delivery"]["status"], 200, "{answer}");
    let log = w.log();
    let users: Vec<&str> = log.callbacks.iter().map(|c| c.user_id.as_str()).collect();
    assert_eq!(users, ["218471", "90071992547409931", "4242"]);
    assert!(log.callbacks.iter().all(|c| c.algorithm == "HMAC-SHA256"));
    assert_eq!(log.callbacks[0].issued_at, 1_700_000_000);
    assert_eq!(log.callbacks[0].expires, Some(1_700_003_600));
}

#[tokio::test]
async fn forged_or_foreign_signed_requests_are_refused() {
    let w = world().await;
    let deletion = w.url("/callbacks/deletion");
    let other_algorithm = w
        .control(
            "/signed_request",
            json!({"algorithm": "HMAC-SHA1", "deliver_to": deletion}),
        )
        .await;
    assert_eq!(
        other_algorithm["delivery"]["status"], 401,
        "{other_algorithm}"
    );

    let foreign = webhook::signed_request("another_secret", &callback_payload("218471", 1), false);
    let attempt = deliver_signed_request(&deletion, &foreign).await;
    assert_eq!(attempt.status, Some(401));

    let genuine = webhook::signed_request(APP_SECRET, &callback_payload("218471", 1), false);
    let (signature, payload) = genuine.split_once('.').unwrap();
    for (bad, expected) in [
        (format!("{genuine}.x"), 400),
        (format!("{signature}{payload}"), 400),
        (format!("{signature}.{payload}A"), 401),
        (format!("{}.{payload}", &signature[1..]), 400),
        (format!("{signature}.e30"), 401),
    ] {
        let attempt = deliver_signed_request(&deletion, &bad).await;
        assert_eq!(attempt.status, Some(expected), "{bad}");
    }
    let response = reqwest::Client::new()
        .post(&deletion)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user_id=218471")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(w.log().callbacks.is_empty());
}
