//! `/_emulator/…`: what a test or a local stack uses to steer the emulator over HTTP — the
//! clock, faults, the publish record, call counts, tokens without OAuth, insights and followers,
//! webhook and signed_request sending, reset. Not part of Threads; never counted as a Threads call.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::clock::graph_timestamp;
use crate::faults::FaultPlan;
use crate::json::{JsonText, to_text};
use crate::state::{App, MediaInsights, TokenKind, millis};
use crate::webhook::{self, Change, Delivery, ValuesShape};

pub fn router() -> Router<App> {
    Router::new()
        .route("/clock", get(clock))
        .route("/clock/advance", post(clock_advance))
        .route("/clock/set", post(clock_set))
        .route("/clock/reset", post(clock_reset))
        .route(
            "/faults",
            get(faults_list).post(faults_add).delete(faults_clear),
        )
        .route("/faults/seed", post(faults_seed))
        .route("/posts", get(posts))
        .route("/calls", get(calls))
        .route("/tokens", post(token_issue))
        .route("/tokens/revoke", post(token_revoke))
        .route("/insights", post(insights_set))
        .route("/followers", post(followers_set))
        .route("/webhooks/send", post(webhook_send))
        .route("/webhooks/verify", post(webhook_verify))
        .route("/signed_request", post(signed_request))
        .route("/reset", post(reset))
        .route("/config", get(config))
}

/// A control error: `{"error": "..."}` with 400 (or 404).
struct Refusal(StatusCode, String);

impl Refusal {
    fn bad(message: impl Into<String>) -> Refusal {
        Refusal(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        JsonText(self.0, to_text(&json!({ "error": self.1 }))).into_response()
    }
}

type Answer = Result<Response, Refusal>;

fn ok(value: &Value) -> Answer {
    Ok(JsonText::ok(to_text(value)).into_response())
}

/// The body as `T`; an empty body reads as `{}`.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Refusal> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| Refusal::bad(format!("invalid JSON body: {e}")))
}

fn clock_view(app: &App) -> Value {
    let now = app.clock().now();
    json!({
        "now": now,
        "now_ms": app.clock().now_millis(),
        "timestamp": graph_timestamp(now),
    })
}

async fn clock(State(app): State<App>) -> Answer {
    ok(&clock_view(&app))
}

#[derive(Deserialize)]
struct Advance {
    #[serde(default)]
    seconds: u64,
    #[serde(default)]
    ms: u64,
}

async fn clock_advance(State(app): State<App>, bytes: Bytes) -> Answer {
    let a = body::<Advance>(&bytes)?;
    let by = Duration::from_secs(a.seconds)
        .checked_add(Duration::from_millis(a.ms))
        .ok_or_else(|| Refusal::bad("that is further than the clock goes"))?;
    app.clock().advance(by);
    ok(&clock_view(&app))
}

#[derive(Deserialize)]
struct SetClock {
    now: Option<i64>,
    now_ms: Option<i64>,
}

async fn clock_set(State(app): State<App>, bytes: Bytes) -> Answer {
    match body::<SetClock>(&bytes)? {
        SetClock {
            now_ms: Some(ms), ..
        } => app.clock().set_millis(ms),
        SetClock { now: Some(s), .. } => app.clock().set(s),
        _ => return Err(Refusal::bad("give `now` or `now_ms`")),
    }
    ok(&clock_view(&app))
}

async fn clock_reset(State(app): State<App>) -> Answer {
    app.clock().reset();
    ok(&clock_view(&app))
}

async fn faults_list(State(app): State<App>) -> Answer {
    ok(&json!({ "pending": app.lock().faults.pending() }))
}

/// One plan or an array of plans.
#[derive(Deserialize)]
#[serde(untagged)]
enum Plans {
    One(FaultPlan),
    Many(Vec<FaultPlan>),
}

async fn faults_add(State(app): State<App>, bytes: Bytes) -> Answer {
    let plans = match body::<Plans>(&bytes)? {
        Plans::One(plan) => vec![plan],
        Plans::Many(plans) => plans,
    };
    let mut inner = app.lock();
    for plan in plans {
        inner.faults.add(plan);
    }
    ok(&json!({ "pending": inner.faults.pending() }))
}

async fn faults_clear(State(app): State<App>) -> Answer {
    app.lock().faults.clear();
    ok(&json!({ "pending": [] }))
}

#[derive(Deserialize)]
struct Seed {
    seed: u64,
}

async fn faults_seed(State(app): State<App>, bytes: Bytes) -> Answer {
    let s = body::<Seed>(&bytes)?;
    app.lock().faults.reseed(s.seed);
    ok(&json!({ "seed": s.seed }))
}

async fn posts(State(app): State<App>) -> Answer {
    ok(&json!(app.lock().published))
}

async fn calls(State(app): State<App>) -> Answer {
    let counts = app.lock().calls.clone();
    let mut value = json!(counts);
    if let Some(map) = value.as_object_mut() {
        map.insert("total".into(), json!(counts.total()));
        map.insert("api_total".into(), json!(counts.api_total()));
    }
    ok(&value)
}

#[derive(Deserialize)]
struct IssueToken {
    user_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    scopes: Option<Vec<String>>,
}

async fn token_issue(State(app): State<App>, bytes: Bytes) -> Answer {
    let request = body::<IssueToken>(&bytes)?;
    let config = app.config();
    let user_id = match request.user_id {
        Some(id) => id,
        None => config
            .default_user
            .clone()
            .or_else(|| config.users.first().map(|u| u.id.clone()))
            .unwrap_or_default(),
    };
    if user_id.is_empty() || !user_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::bad("user_id must be a numeric string"));
    }
    let (kind, ttl) = match request.kind.as_deref() {
        None | Some("long" | "long_lived") => (TokenKind::LongLived, config.long_lived_ttl),
        Some("short" | "short_lived") => (TokenKind::ShortLived, config.short_lived_ttl),
        Some(other) => {
            return Err(Refusal::bad(format!(
                "kind must be `long` or `short`, not {other:?}"
            )));
        }
    };
    let token = crate::tokens::issue_direct(&app, &user_id, kind, request.scopes);
    ok(&json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": millis(ttl) / 1000,
        "user_id": user_id,
    }))
}

#[derive(Deserialize)]
struct Revoke {
    access_token: String,
}

async fn token_revoke(State(app): State<App>, bytes: Bytes) -> Answer {
    let r = body::<Revoke>(&bytes)?;
    let revoked = crate::tokens::revoke(&mut app.lock(), &r.access_token);
    ok(&json!({ "revoked": revoked }))
}

#[derive(Deserialize)]
struct SetInsights {
    media_id: String,
    #[serde(flatten)]
    insights: MediaInsights,
}

async fn insights_set(State(app): State<App>, bytes: Bytes) -> Answer {
    let request = body::<SetInsights>(&bytes)?;
    if crate::media::set_insights(&mut app.lock(), &request.media_id, request.insights) {
        ok(&json!({ "media_id": request.media_id }))
    } else {
        Err(Refusal(StatusCode::NOT_FOUND, "no such media".into()))
    }
}

#[derive(Deserialize)]
struct SetFollowers {
    user_id: String,
    followers_count: u64,
}

async fn followers_set(State(app): State<App>, bytes: Bytes) -> Answer {
    let request = body::<SetFollowers>(&bytes)?;
    crate::profile_insights::set_followers(
        &mut app.lock(),
        &request.user_id,
        request.followers_count,
    );
    ok(&json!({ "user_id": request.user_id, "followers_count": request.followers_count }))
}

#[derive(Deserialize)]
struct SendWebhook {
    url: String,
    /// The changes to deliver; or one `field` (+ optional `value`) for a single change.
    #[serde(default)]
    changes: Vec<Change>,
    field: Option<String>,
    value: Option<Value>,
    /// Fill a change's value from this published media id when no value is given.
    media_id: Option<String>,
    #[serde(default)]
    values_as: ValuesShape,
    target_id: Option<String>,
    time: Option<i64>,
    #[serde(default)]
    duplicate: bool,
    max_attempts: Option<u32>,
    retry_delay_ms: Option<u64>,
    /// Send a wrong signature on purpose.
    signature: Option<String>,
    /// The exact body to send, instead of an envelope built here.
    raw_body: Option<String>,
}

async fn webhook_send(State(app): State<App>, bytes: Bytes) -> Answer {
    let request = body::<SendWebhook>(&bytes)?;
    let config = app.config();
    let mut changes = request.changes.clone();
    if let Some(field) = &request.field {
        let value = request
            .value
            .clone()
            .unwrap_or_else(|| sample_value(&app, field, request.media_id.as_deref()));
        changes.push(Change {
            field: field.clone(),
            value,
        });
    }
    let body = match request.raw_body {
        Some(raw) => raw,
        None if changes.is_empty() => {
            return Err(Refusal::bad("give `changes`, `field` or `raw_body`"));
        }
        None => {
            let target = request.target_id.clone().unwrap_or_else(|| {
                config
                    .users
                    .first()
                    .map(|u| u.id.clone())
                    .unwrap_or_default()
            });
            let time = request.time.unwrap_or_else(|| app.clock().now());
            webhook::envelope(&config.app_id, &target, time, &changes, request.values_as)
        }
    };
    let mut delivery = Delivery::new(&request.url, &config.app_secret, body);
    delivery.max_attempts = request.max_attempts.unwrap_or(config.webhook_max_attempts);
    delivery.retry_delay = request
        .retry_delay_ms
        .map_or(config.webhook_retry_delay, Duration::from_millis);
    delivery.duplicate = request.duplicate;
    delivery.signature_override = request.signature;
    ok(&json!(webhook::deliver(&delivery).await))
}

#[derive(Deserialize)]
struct VerifyWebhook {
    url: String,
    verify_token: String,
    challenge: Option<u64>,
}

async fn webhook_verify(State(app): State<App>, bytes: Bytes) -> Answer {
    let request = body::<VerifyWebhook>(&bytes)?;
    let challenge = request
        .challenge
        .unwrap_or_else(|| 1_000_000_000 + app.clock().now().unsigned_abs() % 1_000_000_000);
    ok(&json!(
        webhook::verify_subscription(&request.url, &request.verify_token, challenge).await
    ))
}

/// A plausible value for a field, from a published media when one is named.
fn sample_value(app: &App, field: &str, media_id: Option<&str>) -> Value {
    let inner = app.lock();
    let media = media_id.and_then(|id| inner.media.get(id));
    let id = media.map_or_else(
        || media_id.unwrap_or("17920000000000999").to_string(),
        |m| m.id.clone(),
    );
    let owner = media.map_or_else(
        || {
            app.config()
                .users
                .first()
                .map(|u| u.id.clone())
                .unwrap_or_default()
        },
        |m| m.owner.clone(),
    );
    let username = app
        .config()
        .user(&owner)
        .map_or_else(|| format!("user_{owner}"), |u| u.username.clone());
    let timestamp = graph_timestamp(
        media.map_or_else(|| app.clock().now(), |m| m.published_ms.div_euclid(1000)),
    );
    let permalink = format!(
        "https://www.threads.com/@{username}/post/{}",
        media.map_or("C0dEfGhIjKl", |m| m.shortcode.as_str())
    );
    match field {
        "delete" => json!({
            "id": id,
            "owner": {"owner_id": owner},
            "deleted_at": graph_timestamp(app.clock().now()),
            "timestamp": timestamp,
            "username": username,
        }),
        "publish" => json!({
            "id": id,
            "media_type": media.map_or("TEXT_POST", |m| m.kind.read_name()),
            "permalink": permalink,
            "timestamp": timestamp,
            "username": username,
        }),
        _ => json!({
            "id": id,
            "username": "a_replier",
            "text": media.and_then(|m| m.text.clone()).unwrap_or_else(|| "Nice storm 🚀 see https://example.com/".into()),
            "media_type": "TEXT_POST",
            "permalink": permalink,
            "replied_to": {"id": media.and_then(|m| m.reply_to_id.clone()).unwrap_or_else(|| id.clone())},
            "root_post": {"id": media.map_or_else(|| id.clone(), |m| m.root_id.clone()), "owner_id": owner, "username": username},
            "shortcode": media.map_or("C0dEfGhIjKl", |m| m.shortcode.as_str()),
            "timestamp": timestamp,
        }),
    }
}

#[derive(Deserialize)]
struct SignedRequestAsk {
    user_id: Option<String>,
    issued_at: Option<i64>,
    expires: Option<i64>,
    algorithm: Option<String>,
    #[serde(default)]
    padded: bool,
    /// POST it as `signed_request=…` to this URL too.
    deliver_to: Option<String>,
}

async fn signed_request(State(app): State<App>, bytes: Bytes) -> Answer {
    let ask = body::<SignedRequestAsk>(&bytes)?;
    let config = app.config();
    let user_id = ask
        .user_id
        .or_else(|| config.users.first().map(|u| u.id.clone()))
        .unwrap_or_default();
    let issued_at = ask.issued_at.unwrap_or_else(|| app.clock().now());
    let mut payload = webhook::callback_payload(&user_id, issued_at);
    if let Some(map) = payload.as_object_mut() {
        if let Some(expires) = ask.expires {
            map.insert("expires".into(), json!(expires));
        }
        if let Some(algorithm) = ask.algorithm {
            map.insert("algorithm".into(), json!(algorithm));
        }
    }
    let signed = webhook::signed_request(&config.app_secret, &payload, ask.padded);
    let delivery = match &ask.deliver_to {
        Some(url) => Some(webhook::deliver_signed_request(url, &signed).await),
        None => None,
    };
    ok(&json!({
        "signed_request": signed,
        "payload": payload,
        "delivery": delivery,
    }))
}

async fn reset(State(app): State<App>) -> Answer {
    app.reset();
    ok(&json!({ "reset": true }))
}

/// The configuration in force, so a local stack can read the test users and app id.
async fn config(State(app): State<App>) -> Answer {
    ok(&json!(app.config()))
}
