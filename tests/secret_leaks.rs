//! Secrets never reach the logs or the audit log: fake secrets of every kind — a session token, a
//! Threads access token, the app secret, a signed_request, an internal API key — are sent through
//! every route of the api (as the bearer, in bodies, headers and query strings), the webhooks and
//! the OAuth routes; then every audit record in the AuditTable and every log line the functions
//! write at their most verbose level is searched for them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use lambda_http::{Body, Request};
use local_stack::StackOptions;
use local_stack::testing::{LOCAL_BASE_URL, TestStack};
use serde_json::json;
use threads_emulator::EmulatorConfig;
use threads_emulator::webhook::signed_request;
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::api::Api;
use threadstorm::api::routes::ROUTES;
use threadstorm::config::Config;
use threadstorm::config::LogLevel;
use threadstorm::oauth::routes::OAuth;
use threadstorm::resources::{API, FunctionSpec, OAUTH, Resource, WEBHOOKS};
use threadstorm::runtime::{Deps, log_filter};
use threadstorm::threads::UserId as ThreadsUserId;
use threadstorm::users::Role;
use threadstorm::webhooks::routes::Webhooks;
use threadstorm_tests::support::gateway::event;

const ACCOUNT: &str = "17841400000000777";
/// A Threads long-lived token as Meta issues them (`THAA…`), never a real one.
const THREADS_TOKEN: &str = "THAAfakeLongLivedAccessTokenZ9y8x7w6v5u4t3s2r1q0p";
const INTERNAL_KEY: &str = "tsk_fakeInternalApiKey0123456789abcdefABCDEF";
const VERIFY_TOKEN: &str = "vt-fake-verify-token-4242";

/// Log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(t: &TestStack, spec: &'static FunctionSpec, app_id: &str) -> Config {
    let mut env = t.env(spec);
    env.insert("THREADS_APP_ID".into(), app_id.to_owned());
    env.insert("LOG_LEVEL".into(), "TRACE".into());
    Config::from_lookup(spec, |k| env.get(k).cloned()).expect("config")
}

fn deps(t: &TestStack, spec: &'static FunctionSpec, app_id: &str) -> Deps {
    Deps {
        function: spec,
        config: config(t, spec, app_id),
        aws: t.aws.clone(),
    }
}

fn with_body(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    event(
        method,
        path,
        &[("token", THREADS_TOKEN)],
        headers,
        Some(body),
        false,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_sent_through_any_route_reaches_a_log_line_or_an_audit_record() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        // The filter the functions run with at their most verbose level (LOG_LEVEL=TRACE).
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(
            &API,
            LogLevel::Trace,
        )))
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let emu = EmulatorConfig::default();
    let mut options = StackOptions::local(LOCAL_BASE_URL);
    options
        .secret_values
        .insert("ThreadsAppSecret".into(), emu.app_secret.clone());
    options
        .secret_values
        .insert("WebhookVerifyTokenSecret".into(), VERIFY_TOKEN.into());
    let t = TestStack::with_options(options).await;
    let api = Api::from_deps(&deps(&t, &API, &emu.app_id))
        .await
        .expect("api starts");
    let hooks = Webhooks::from_deps(&deps(&t, &WEBHOOKS, &emu.app_id))
        .await
        .expect("webhooks start");
    let oauth = OAuth::from_deps(&deps(&t, &OAUTH, &emu.app_id))
        .await
        .expect("oauth starts");

    // A super_admin owning an account, so every route's handler runs, not only its refusal.
    let login = api
        .users
        .upsert_on_login(&ThreadsUserId::parse("17841400000000001").unwrap())
        .await
        .unwrap();
    let user = login.user.user_id;
    api.users.set_role(&user, Role::SuperAdmin).await.unwrap();
    AccountStore::new(t.aws.dynamodb.clone(), t.name(Resource::AccountsTable))
        .connect(&Account {
            account_id: ThreadsUserId::parse(ACCOUNT).unwrap(),
            owner_user_id: user.to_string(),
            username: "leaky".into(),
            status: AccountStatus::Connected,
            sealed_token: Some("sealed".into()),
            token_issued_at: 1_800_000_000,
            token_expires_at: 1_805_000_000,
            connected_at: 1_800_000_000,
        })
        .await
        .unwrap();
    let session = api.sessions.issue(&user).await.unwrap().token;
    let bearer = format!("Bearer {}", session.expose());
    let forged_bearer = format!("Bearer {THREADS_TOKEN}");
    // Issued now: a fresh callback reaches the handlers, not only the freshness check.
    let issued_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = signed_request(
        &emu.app_secret,
        &json!({"algorithm": "HMAC-SHA256", "user_id": ACCOUNT, "issued_at": issued_at,
                "oauth_token": THREADS_TOKEN}),
        false,
    );
    let secrets = [
        session.expose().to_owned(),
        THREADS_TOKEN.to_owned(),
        emu.app_secret.clone(),
        signed.clone(),
        INTERNAL_KEY.to_owned(),
        VERIFY_TOKEN.to_owned(),
    ];

    let body = json!({
        "account_id": ACCOUNT,
        "text": format!("my token is {THREADS_TOKEN}"),
        "access_token": THREADS_TOKEN,
        "client_secret": emu.app_secret,
        "api_key": INTERNAL_KEY,
        "role": "pro",
        "posts": [{"account_id": ACCOUNT, "access_token": THREADS_TOKEN}],
    })
    .to_string();
    for route in ROUTES {
        let path = route
            .pattern
            .replace("{id}", THREADS_TOKEN)
            .replace("{name}", "session-key");
        for authorization in [&bearer, &forged_bearer] {
            let headers = [
                ("Authorization", authorization.as_str()),
                ("Content-Type", "application/json"),
                ("X-Api-Key", INTERNAL_KEY),
                ("Idempotency-Key", THREADS_TOKEN),
            ];
            let res = api
                .handle(with_body(route.method, &path, &headers, &body))
                .await;
            assert!(res.status().as_u16() < 500, "{} {path}", route.method);
            assert_no_secret_in_answer(&res, &secrets[1..], route.pattern);
        }
    }

    // Paths that do log: pausing publishing (with a token in its reason) and resuming.
    for (path, body) in [
        (
            "/v1/admin/pause",
            json!({"reason": format!("leaked {THREADS_TOKEN}")}),
        ),
        ("/v1/admin/resume", json!({})),
    ] {
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ];
        let res = api
            .handle(with_body("POST", path, &headers, &body.to_string()))
            .await;
        assert!(res.status().is_success(), "{path}: {:?}", res.body());
    }

    // Webhooks: a delivery with a wrong signature and a token in it, the handshake with the
    // verify token, Meta's callbacks with a signed_request that carries a token.
    let delivery =
        json!({"object": "threads", "entry": [{"access_token": THREADS_TOKEN}]}).to_string();
    let wrong_signature = format!("sha256={}", "0".repeat(64));
    for req in [
        with_body(
            "POST",
            "/webhooks/threads",
            &[("X-Hub-Signature-256", &wrong_signature)],
            &delivery,
        ),
        event(
            "GET",
            "/webhooks/threads",
            &[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", VERIFY_TOKEN),
                ("hub.challenge", "1158201444"),
            ],
            &[],
            None,
            false,
        ),
        event(
            "GET",
            "/webhooks/threads",
            &[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", THREADS_TOKEN),
                ("hub.challenge", "1"),
            ],
            &[],
            None,
            false,
        ),
    ] {
        let res = hooks.handle(req).await;
        assert!(res.status().as_u16() < 500);
    }
    for path in ["/meta/deauthorize", "/meta/data-deletion"] {
        let form = format!("signed_request={signed}");
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        let res = hooks.handle(with_body("POST", path, &headers, &form)).await;
        assert!(res.status().as_u16() < 500, "{path}");
        let tampered = format!("signed_request={signed}x");
        let res = hooks
            .handle(with_body("POST", path, &headers, &tampered))
            .await;
        assert!(res.status().as_u16() < 500, "{path}");
    }

    // OAuth: a callback with a token where the code and state go, a logout with the session.
    let res = oauth
        .handle(event(
            "GET",
            "/oauth/callback",
            &[("code", THREADS_TOKEN), ("state", THREADS_TOKEN)],
            &[("Cookie", &format!("ts_oauth_browser={THREADS_TOKEN}"))],
            None,
            false,
        ))
        .await;
    assert!(res.status().as_u16() < 500);
    let res = oauth
        .handle(event(
            "POST",
            "/oauth/logout",
            &[],
            &[("Authorization", bearer.as_str())],
            None,
            false,
        ))
        .await;
    assert!(res.status().as_u16() < 500);

    // Every audit record, and every log line.
    let mut audit = String::new();
    let mut start = None;
    loop {
        let page = t
            .aws
            .dynamodb
            .scan()
            .table_name(t.name(Resource::AuditTable))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        audit.push_str(&format!("{:?}", page.items()));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert!(
        audit.len() > 1_000,
        "the routes wrote audit records: {audit}"
    );
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("kill switch set"),
        "the functions' log lines were captured: {logs}"
    );
    for secret in &secrets {
        let at = audit.find(secret.as_str());
        assert!(
            at.is_none(),
            "a secret ({}…) is in an audit record: …{}…",
            &secret[..6],
            at.map(|i| &audit[i.saturating_sub(300)..(i + 100).min(audit.len())])
                .unwrap_or_default()
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({}…) is in a log line",
            &secret[..6]
        );
    }
}

/// Answers never echo a secret the caller did not own (the text of a post is the caller's own
/// content and is not sent back by refusals either).
fn assert_no_secret_in_answer(res: &lambda_http::Response<Body>, secrets: &[String], route: &str) {
    let text = match res.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    if res.status().is_success() {
        return;
    }
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{route}: the refusal echoes a secret: {text}"
        );
    }
}
