//! The webhooks function end to end: its routes against moto (accounts, users, inbox,
//! idempotency, rate limits, audit, Secrets Manager) with requests shaped exactly as API Gateway
//! hands them to lambda_http, and bodies, signatures and signed_requests made by the Threads
//! emulator the way Meta makes them. Cases W1 and W2 and their kin.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::{Body, Request, Response};
use local_stack::StackOptions;
use local_stack::testing::{LOCAL_BASE_URL, TestStack};
use proptest::prelude::*;
use serde_json::{Value, json};
use threads_emulator::EmulatorConfig;
use threads_emulator::webhook::{
    Change, ValuesShape, callback_payload, envelope, signature, signed_request,
};
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::clock::ManualClock;
use threadstorm::config::Config;
use threadstorm::posts::{Part, PartContent, Status, Storm, StormId, StormKind};
use threadstorm::resources::{Resource, WEBHOOKS};
use threadstorm::runtime::Deps;
use threadstorm::threads::UserId;
use threadstorm::users::Users;
use threadstorm::webhooks::routes::{Webhooks, pseudonym};
use threadstorm_tests::support::gateway::event;

const VERIFY_TOKEN: &str = "vt-test-123";
const NOW: i64 = 1_800_000_000;
const OWNER: &str = "17841400000000001";
const OTHER: &str = "17841400000000002";

struct World {
    t: TestStack,
    hooks: Webhooks,
    app_id: String,
    app_secret: String,
}

async fn world() -> World {
    let emu = EmulatorConfig::default();
    let mut options = StackOptions::local(LOCAL_BASE_URL);
    options
        .secret_values
        .insert("ThreadsAppSecret".into(), emu.app_secret.clone());
    options
        .secret_values
        .insert("WebhookVerifyTokenSecret".into(), VERIFY_TOKEN.into());
    let t = TestStack::with_options(options).await;
    let mut env = t.env(&WEBHOOKS);
    env.insert("THREADS_APP_ID".into(), emu.app_id.clone());
    let config = Config::from_lookup(&WEBHOOKS, |k| env.get(k).cloned()).expect("config");
    let deps = Deps {
        function: &WEBHOOKS,
        config,
        aws: t.aws.clone(),
    };
    let mut hooks = Webhooks::from_deps(&deps).await.expect("webhooks start");
    hooks.clock = Arc::new(ManualClock::at_unix(NOW));
    World {
        t,
        hooks,
        app_id: emu.app_id,
        app_secret: emu.app_secret,
    }
}

fn signed_post(body: &str, sig: &str) -> Request {
    event(
        "POST",
        "/webhooks/threads",
        &[],
        &[
            ("Content-Type", "application/json"),
            ("X-Hub-Signature-256", sig),
        ],
        Some(body),
        false,
    )
}

fn form_post(path: &str, signed: &str) -> Request {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_request", signed)
        .finish();
    event(
        "POST",
        path,
        &[],
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&form),
        false,
    )
}

fn text(res: &Response<Body>) -> String {
    match res.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn json_body(res: &Response<Body>) -> Value {
    serde_json::from_str(&text(res)).unwrap_or(Value::Null)
}

async fn connect(w: &World, account: &str) -> String {
    let id = UserId::parse(account).unwrap();
    let users = Users::from_config(w.t.aws.dynamodb.clone(), &w.hooks.config).unwrap();
    let user = users.upsert_on_login(&id).await.unwrap().user;
    AccountStore::new(w.t.aws.dynamodb.clone(), w.t.name(Resource::AccountsTable))
        .connect(&Account {
            account_id: id,
            owner_user_id: user.user_id.as_str().to_owned(),
            username: "owner".into(),
            status: AccountStatus::Connected,
            sealed_token: Some("sealed-token-bytes".into()),
            token_issued_at: NOW,
            token_expires_at: NOW + 5_000_000,
            connected_at: NOW,
        })
        .await
        .unwrap();
    user.user_id.as_str().to_owned()
}

/// Stores a queued storm of `texts` that `owner` wrote for `account`.
async fn store_storm(w: &World, owner: &str, account: &str, texts: &[&str]) -> StormId {
    let storm = Storm {
        id: StormId::new(),
        kind: if texts.len() == 1 {
            StormKind::Post
        } else {
            StormKind::Storm
        },
        owner_user_id: owner.to_owned(),
        account_id: UserId::parse(account).unwrap(),
        parts: texts
            .iter()
            .enumerate()
            .map(|(index, text)| Part {
                index,
                content: PartContent::text(*text),
                media_id: None,
                permalink: None,
                deleted_at: None,
            })
            .collect(),
        status: Status::Queued,
        publish_at: None,
        created_at: NOW,
        updated_at: NOW,
        version: 0,
    };
    w.hooks.posts.create(&storm, None).await.unwrap();
    storm.id
}

async fn scan(w: &World, table: Resource) -> Vec<threadstorm::store::Item> {
    w.t.aws
        .dynamodb
        .scan()
        .table_name(w.t.name(table))
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

fn attr(item: &threadstorm::store::Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

async fn audit_actions(w: &World) -> Vec<String> {
    scan(w, Resource::AuditTable)
        .await
        .iter()
        .map(|i| attr(i, "action"))
        .collect()
}

/// A delivery for `app_id` with one reply, `id`, to OWNER's post.
fn one_reply(app_id: &str, id: &str, text: &str) -> String {
    envelope(
        app_id,
        OWNER,
        NOW,
        &[reply(id, OWNER, text)],
        ValuesShape::Object,
    )
}

fn reply(id: &str, owner: &str, text: &str) -> Change {
    Change {
        field: "replies".into(),
        value: json!({
            "id": id,
            "username": "fan",
            "text": text,
            "media_type": "TEXT_POST",
            "permalink": format!("https://www.threads.net/@fan/post/{id}"),
            "replied_to": { "id": "17920000000000009" },
            "root_post": { "id": "17920000000000009", "owner_id": owner, "username": "owner" },
            "shortcode": "abc",
            "timestamp": "2024-09-12T23:17:39+0000",
        }),
    }
}

// ---- W1: signatures over the raw bytes -------------------------------------------------------

const W1_A_BODY: &str = "{\"text\":\"héllo 🚀\"}";
const W1_A_SIG: &str = "sha256=999254111d90509681052cc3a8453d0501ae7ceb1c86f907e10a16e96f8a2b40";
const W1_B_BODY: &str = r#"{"text":"h\u00e9llo \ud83d\ude80"}"#;
const W1_B_SIG: &str = "sha256=286cb6b374186c99b4f41886213582d4f0330b46b9ebf222b8939b98d2f13e8c";

#[tokio::test]
async fn w1_signatures_are_checked_over_the_raw_bytes_including_base64_bodies() {
    let w = world().await;
    assert_eq!(W1_A_BODY.len(), 22);
    assert_eq!(W1_B_BODY.len(), 34);
    // (a), (b): the signature holds; the body is then refused only as not being an envelope.
    for (body, sig) in [(W1_A_BODY, W1_A_SIG), (W1_B_BODY, W1_B_SIG)] {
        let res = w.hooks.handle(signed_post(body, sig)).await;
        assert_eq!(res.status(), 400, "{}", text(&res));
        assert_eq!(json_body(&res)["code"], "malformed_delivery");
    }
    // (c): body (b) with header (a).
    let res = w.hooks.handle(signed_post(W1_B_BODY, W1_A_SIG)).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json_body(&res)["code"], "invalid_signature");
    // (d): API Gateway's base64 of (a), header (a).
    let encoded = STANDARD.encode(W1_A_BODY.as_bytes());
    assert_eq!(encoded, "eyJ0ZXh0IjoiaMOpbGxvIPCfmoAifQ==");
    let res = w
        .hooks
        .handle(event(
            "POST",
            "/webhooks/threads",
            &[],
            &[("X-Hub-Signature-256", W1_A_SIG)],
            Some(&encoded),
            true,
        ))
        .await;
    assert_eq!(res.status(), 400, "{}", text(&res));
    assert_eq!(json_body(&res)["code"], "malformed_delivery");
    // The refusal was audited as a security event.
    assert_eq!(
        audit_actions(&w)
            .await
            .iter()
            .filter(|a| *a == "webhook.invalid_signature")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_meta_escaped_reply_lands_verbatim_in_the_owners_inbox_also_when_base64_encoded() {
    let w = world().await;
    connect(&w, OWNER).await;
    let body = envelope(
        &w.app_id,
        OWNER,
        NOW,
        &[reply(
            "17920000000000101",
            OWNER,
            "héllo 🚀 https://x.example/a",
        )],
        ValuesShape::Object,
    );
    assert!(body.contains("\\u00e9") && body.contains("\\/"), "{body}");
    let sig = signature(&w.app_secret, body.as_bytes());
    let res = w
        .hooks
        .handle(event(
            "POST",
            "/webhooks/threads",
            &[],
            &[("X-Hub-Signature-256", &sig)],
            Some(&STANDARD.encode(body.as_bytes())),
            true,
        ))
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(json_body(&res)["stored"], 1);
    let inbox = scan(&w, Resource::InboxTable).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(attr(&inbox[0], "account_id"), OWNER);
    assert_eq!(attr(&inbox[0], "text"), "héllo 🚀 https://x.example/a");
    assert_eq!(attr(&inbox[0], "field"), "replies");
    assert_eq!(attr(&inbox[0], "replied_to_id"), "17920000000000009");
    assert_eq!(attr(&inbox[0], "username"), "fan");
    assert_eq!(attr(&inbox[0], "sk"), "01726183059#17920000000000101");
}

// ---- W2: the handshake ------------------------------------------------------------------------

#[tokio::test]
async fn w2_the_handshake_echoes_exactly_the_challenge_for_the_right_token_only() {
    let w = world().await;
    let hub = |mode: &'static str, token: &'static str| {
        event(
            "GET",
            "/webhooks/threads",
            &[
                ("hub.mode", mode),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ],
            &[],
            None,
            false,
        )
    };
    let res = w.hooks.handle(hub("subscribe", VERIFY_TOKEN)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(text(&res).as_bytes(), b"1158201444");

    let res = w.hooks.handle(hub("subscribe", "vt-test-124")).await;
    assert_eq!(res.status(), 403);
    assert!(!text(&res).contains("1158201444"));
    let res = w.hooks.handle(hub("unsubscribe", VERIFY_TOKEN)).await;
    assert_eq!(res.status(), 403);
    assert!(!text(&res).contains("1158201444"));
}

#[tokio::test]
async fn the_handshake_accepts_the_previous_verify_token_during_a_rotation() {
    let w = world().await;
    threadstorm_tests::rotate_secret(
        &w.t.aws.secrets,
        &w.t.name(Resource::WebhookVerifyTokenSecret),
        "vt-rotated-456",
    )
    .await;
    for token in [VERIFY_TOKEN, "vt-rotated-456"] {
        let res = w
            .hooks
            .handle(event(
                "GET",
                "/webhooks/threads",
                &[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", token),
                    ("hub.challenge", "42"),
                ],
                &[],
                None,
                false,
            ))
            .await;
        assert_eq!(res.status(), 200, "{token}");
        assert_eq!(text(&res), "42");
    }
}

#[tokio::test]
async fn deliveries_and_callbacks_signed_with_the_previous_app_secret_verify_during_a_rotation() {
    let w = world().await;
    connect(&w, OWNER).await;
    threadstorm_tests::rotate_secret(
        &w.t.aws.secrets,
        &w.t.name(Resource::ThreadsAppSecret),
        "rotated_app_secret",
    )
    .await;
    for (i, secret) in [w.app_secret.as_str(), "rotated_app_secret"]
        .iter()
        .enumerate()
    {
        let body = one_reply(&w.app_id, &format!("1792000000000060{i}"), "x");
        let res = w
            .hooks
            .handle(signed_post(&body, &signature(secret, body.as_bytes())))
            .await;
        assert_eq!(res.status(), 200, "{secret}: {}", text(&res));
        assert_eq!(json_body(&res)["stored"], 1);
    }
    let forged = signature("neither", b"{}");
    assert_eq!(
        w.hooks.handle(signed_post("{}", &forged)).await.status(),
        401
    );
    let signed = signed_request("rotated_app_secret", &callback_payload(OWNER, NOW), false);
    let res = w
        .hooks
        .handle(form_post("/meta/deauthorize", &signed))
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
}

// ---- deliveries -------------------------------------------------------------------------------

#[tokio::test]
async fn a_duplicate_delivery_is_stored_once_in_object_and_array_shapes() {
    let w = world().await;
    connect(&w, OWNER).await;
    let single = one_reply(&w.app_id, "17920000000000201", "one");
    let batch = envelope(
        &w.app_id,
        OWNER,
        NOW,
        &[
            reply("17920000000000201", OWNER, "one"),
            reply("17920000000000202", OWNER, "two"),
            reply("17920000000000202", OWNER, "two"),
            Change {
                field: "mentions".into(),
                value: json!({"id": "17920000000000203", "username": "x", "text": "@owner hi"}),
            },
        ],
        ValuesShape::Array,
    );
    let send = |body: &str| signed_post(body, &signature(&w.app_secret, body.as_bytes()));
    let first = w.hooks.handle(send(&single)).await;
    assert_eq!(json_body(&first)["stored"], 1, "{}", text(&first));
    let again = w.hooks.handle(send(&single)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(json_body(&again)["stored"], 0);
    assert_eq!(json_body(&again)["duplicates"], 1);
    let res = w.hooks.handle(send(&batch)).await;
    let answer = json_body(&res);
    assert_eq!(answer["received"], 4);
    assert_eq!(answer["stored"], 2);
    assert_eq!(answer["duplicates"], 2);
    let inbox = scan(&w, Resource::InboxTable).await;
    assert_eq!(inbox.len(), 3);
    let mut ids: Vec<String> = inbox.iter().map(|i| attr(i, "id")).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "17920000000000201",
            "17920000000000202",
            "17920000000000203"
        ]
    );
}

#[tokio::test]
async fn a_reply_goes_to_the_inbox_of_the_root_posts_owner_and_unknown_accounts_are_dropped() {
    let w = world().await;
    connect(&w, OWNER).await;
    connect(&w, OTHER).await;
    let body = envelope(
        &w.app_id,
        OWNER,
        NOW,
        &[
            reply("17920000000000301", OTHER, "to the other account"),
            reply(
                "17920000000000302",
                "17841499999999999",
                "to nobody we know",
            ),
            Change {
                field: "delete".into(),
                value: json!({"id": "17920000000000303", "owner": {"owner_id": OWNER}, "deleted_at": "2024-09-12T23:17:39+0000"}),
            },
            Change {
                field: "publish".into(),
                value: json!({"id": "17920000000000304", "media_type": "TEXT_POST", "username": "owner"}),
            },
        ],
        ValuesShape::Array,
    );
    let res = w
        .hooks
        .handle(signed_post(
            &body,
            &signature(&w.app_secret, body.as_bytes()),
        ))
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(json_body(&res)["unknown_accounts"], 1);
    let inbox = scan(&w, Resource::InboxTable).await;
    let placed: std::collections::BTreeSet<(String, String, String)> = inbox
        .iter()
        .map(|i| (attr(i, "account_id"), attr(i, "field"), attr(i, "id")))
        .collect();
    assert_eq!(
        placed,
        [
            (OTHER.into(), "replies".into(), "17920000000000301".into()),
            (OWNER.into(), "delete".into(), "17920000000000303".into()),
            (OWNER.into(), "publish".into(), "17920000000000304".into()),
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test]
async fn a_delivery_for_another_app_is_refused_and_nothing_is_stored() {
    let w = world().await;
    connect(&w, OWNER).await;
    let body = one_reply("999", "17920000000000401", "x");
    let res = w
        .hooks
        .handle(signed_post(
            &body,
            &signature(&w.app_secret, body.as_bytes()),
        ))
        .await;
    assert_eq!(res.status(), 403);
    assert!(scan(&w, Resource::InboxTable).await.is_empty());
}

#[tokio::test]
async fn a_repeated_query_parameter_is_refused_and_nothing_is_stored() {
    let w = world().await;
    connect(&w, OWNER).await;
    let body = one_reply(&w.app_id, "17920000000000411", "x");
    let res = w
        .hooks
        .handle(event(
            "POST",
            "/webhooks/threads",
            &[("source", "a"), ("source", "b")],
            &[
                ("Content-Type", "application/json"),
                (
                    "X-Hub-Signature-256",
                    &signature(&w.app_secret, body.as_bytes()),
                ),
            ],
            Some(&body),
            false,
        ))
        .await;
    assert_eq!(res.status(), 400, "{}", text(&res));
    assert_eq!(json_body(&res)["code"], "repeated_parameter");
    assert!(scan(&w, Resource::InboxTable).await.is_empty());
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_before_anything_is_read() {
    let w = world().await;
    let big = "x".repeat(threadstorm::webhooks::MAX_BODY_BYTES + 1);
    let res = w.hooks.handle(signed_post(&big, "sha256=00")).await;
    assert_eq!(res.status(), 413);
    assert_eq!(json_body(&res)["code"], "body_too_large");
}

#[tokio::test]
async fn over_the_per_ip_limit_is_429_audited_once() {
    let mut w = world().await;
    w.hooks.rate_limiter.per_minute = 3;
    let get = || event("GET", "/webhooks/threads", &[], &[], None, false);
    for _ in 0..3 {
        assert_eq!(w.hooks.handle(get()).await.status(), 403);
    }
    for _ in 0..2 {
        let res = w.hooks.handle(get()).await;
        assert_eq!(res.status(), 429);
        assert_eq!(json_body(&res)["code"], "rate_limited");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        // NOW starts a minute: the whole of it is left.
        assert_eq!(res.headers()["retry-after"], "60");
    }
    let limited = audit_actions(&w)
        .await
        .into_iter()
        .filter(|a| a == "webhook.rate_limited")
        .count();
    assert_eq!(limited, 1);
}

// ---- app callbacks ----------------------------------------------------------------------------

#[tokio::test]
async fn deauthorize_deletes_the_token_and_disconnects_the_account() {
    let w = world().await;
    connect(&w, OWNER).await;
    let signed = signed_request(&w.app_secret, &callback_payload(OWNER, NOW), false);
    let res = w
        .hooks
        .handle(form_post("/meta/deauthorize", &signed))
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
    let account = w
        .hooks
        .accounts
        .get(&UserId::parse(OWNER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::Disconnected);
    assert_eq!(account.sealed_token, None);
    assert!(
        audit_actions(&w)
            .await
            .contains(&"account.deauthorized".to_owned())
    );
}

#[tokio::test]
async fn a_forged_signed_request_is_refused_and_changes_nothing() {
    let w = world().await;
    connect(&w, OWNER).await;
    let forged = signed_request("not-the-app-secret", &callback_payload(OWNER, NOW), false);
    for path in ["/meta/deauthorize", "/meta/data-deletion"] {
        let res = w.hooks.handle(form_post(path, &forged)).await;
        assert_eq!(res.status(), 401, "{path}: {}", text(&res));
        let res = w.hooks.handle(form_post(path, "garbage")).await;
        assert_eq!(res.status(), 400, "{path}");
    }
    let account = w
        .hooks
        .accounts
        .get(&UserId::parse(OWNER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::Connected);
    assert!(account.sealed_token.is_some());
    assert_eq!(scan(&w, Resource::UsersTable).await.len(), 2);
    let refused = audit_actions(&w)
        .await
        .into_iter()
        .filter(|a| a.ends_with("_refused"))
        .count();
    assert_eq!(refused, 4);
}

#[tokio::test]
async fn a_stale_or_future_signed_request_is_refused_like_a_forged_one() {
    let w = world().await;
    connect(&w, OWNER).await;
    let day = threadstorm::webhooks::signed_request::DEFAULT_MAX_AGE_SECONDS as i64;
    let skew = threadstorm::webhooks::signed_request::FUTURE_SKEW_SECONDS;
    for issued_at in [NOW - day - 1, NOW + skew + 1, 0] {
        let signed = signed_request(&w.app_secret, &callback_payload(OWNER, issued_at), false);
        for path in ["/meta/deauthorize", "/meta/data-deletion"] {
            let res = w.hooks.handle(form_post(path, &signed)).await;
            assert_eq!(res.status(), 400, "{path} {issued_at}: {}", text(&res));
            assert_eq!(json_body(&res)["code"], "stale_signed_request");
        }
    }
    let account = w
        .hooks
        .accounts
        .get(&UserId::parse(OWNER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::Connected);
    assert!(account.sealed_token.is_some());
    let refused = audit_actions(&w)
        .await
        .into_iter()
        .filter(|a| a.ends_with("_refused"))
        .count();
    assert_eq!(refused, 6);
    // At the edges of what is accepted, the same callback goes through.
    let signed = signed_request(&w.app_secret, &callback_payload(OWNER, NOW - day), false);
    let res = w
        .hooks
        .handle(form_post("/meta/deauthorize", &signed))
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
}

#[tokio::test]
async fn data_deletion_erases_the_users_data_and_reports_a_status_page() {
    let w = world().await;
    let user_id = connect(&w, OWNER).await;
    let other_user = connect(&w, OTHER).await;
    store_storm(
        &w,
        &user_id,
        OWNER,
        &["my words", "more of them", "and more"],
    )
    .await;
    store_storm(&w, &user_id, OWNER, &["a single post"]).await;
    let kept = store_storm(&w, &other_user, OTHER, &["someone else's post"]).await;
    let body = envelope(
        &w.app_id,
        OWNER,
        NOW,
        &[
            reply("17920000000000501", OWNER, "a"),
            reply("17920000000000502", OTHER, "b"),
        ],
        ValuesShape::Array,
    );
    let res = w
        .hooks
        .handle(signed_post(
            &body,
            &signature(&w.app_secret, body.as_bytes()),
        ))
        .await;
    assert_eq!(json_body(&res)["stored"], 2);

    let signed = signed_request(&w.app_secret, &callback_payload(OWNER, NOW), true);
    let res = w
        .hooks
        .handle(form_post("/meta/data-deletion", &signed))
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
    let answer = json_body(&res);
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 24);
    assert_eq!(
        answer["url"],
        format!("{LOCAL_BASE_URL}/meta/deletion-status/{code}")
    );

    // The account, its token, its user and guard, its inbox: gone. The other account's stay.
    assert!(
        w.hooks
            .accounts
            .get(&UserId::parse(OWNER).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let users = scan(&w, Resource::UsersTable).await;
    assert!(
        users
            .iter()
            .all(|u| attr(u, "user_id") != user_id
                && attr(u, "user_id") != format!("threads#{OWNER}"))
    );
    assert_eq!(users.len(), 2, "the other user and guard remain");
    let inbox = scan(&w, Resource::InboxTable).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(attr(&inbox[0], "account_id"), OTHER);
    // The posts' items, not just their text: only the other user's storm (item and part) stays.
    let posts = scan(&w, Resource::PostsTable).await;
    let printed = format!("{posts:?}");
    for erased in ["my words", "more of them", "and more", "a single post"] {
        assert!(!printed.contains(erased), "{erased} kept: {printed}");
    }
    assert_eq!(posts.len(), 2, "{printed}");
    assert!(
        posts.iter().all(|p| attr(p, "pk").contains(kept.as_str())),
        "{printed}"
    );
    // The audit record names only the pseudonym.
    let audit = scan(&w, Resource::AuditTable).await;
    let deleted = audit
        .iter()
        .find(|i| attr(i, "action") == "account.data_deleted")
        .expect("audited");
    let printed = format!("{deleted:?}");
    assert!(!printed.contains(OWNER), "{printed}");
    let metadata: Value = serde_json::from_str(&attr(deleted, "metadata")).unwrap();
    assert_eq!(metadata["posts_erased"], 2, "{metadata}");
    assert!(printed.contains(&pseudonym(&UserId::parse(OWNER).unwrap())));

    // The status page, as HTML and as JSON; an unknown code is 404.
    let page = w
        .hooks
        .handle(event(
            "GET",
            &format!("/meta/deletion-status/{code}"),
            &[],
            &[],
            None,
            false,
        ))
        .await;
    assert_eq!(page.status(), 200);
    assert!(text(&page).contains("completed"));
    let status = w
        .hooks
        .handle(event(
            "GET",
            &format!("/meta/deletion-status/{code}"),
            &[],
            &[("Accept", "application/json")],
            None,
            false,
        ))
        .await;
    assert_eq!(json_body(&status)["status"], "completed");
    let unknown = w
        .hooks
        .handle(event(
            "GET",
            "/meta/deletion-status/AAAAAAAAAAAAAAAAAAAAAAAA",
            &[],
            &[],
            None,
            false,
        ))
        .await;
    assert_eq!(unknown.status(), 404);
}

// ---- anything at all ---------------------------------------------------------------------------

/// method, path, headers, query, body, isBase64Encoded.
type Arbitrary = (
    String,
    String,
    Vec<(String, String)>,
    Vec<(String, String)>,
    Vec<u8>,
    bool,
);

fn arbitrary_request() -> impl Strategy<Value = Arbitrary> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]).prop_map(str::to_owned);
    let path = prop_oneof![
        prop::sample::select(vec![
            "/webhooks/threads",
            "/meta/deauthorize",
            "/meta/data-deletion",
            "/meta/deletion-status/AAAAAAAAAAAAAAAAAAAAAAAA",
            "/meta/deletion-status/",
            "/",
        ])
        .prop_map(str::to_owned),
        "/[a-z/._%-]{0,40}".prop_map(|p| p),
    ];
    let name = prop::sample::select(vec![
        "X-Hub-Signature-256",
        "Content-Type",
        "Accept",
        "Cookie",
        "hub.mode",
        "hub.verify_token",
        "hub.challenge",
        "signed_request",
    ])
    .prop_map(str::to_owned);
    let value = prop_oneof![
        "sha256=[0-9a-f]{0,70}",
        "[ -~]{0,40}",
        Just(VERIFY_TOKEN.to_owned()),
        Just("subscribe".to_owned()),
    ];
    (
        method,
        path,
        prop::collection::vec((name.clone(), value.clone()), 0..4),
        prop::collection::vec((name, value), 0..4),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "[ -~]{0,200}".prop_map(String::into_bytes),
            Just(
                br#"{"app_id":"1234567890","values":{"field":"replies","value":{"id":"1"}}}"#
                    .to_vec()
            ),
            Just(b"signed_request=abc.def".to_vec()),
        ],
        any::<bool>(),
    )
}

#[test]
fn no_request_at_all_makes_a_5xx_a_panic_or_a_stored_change() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut w = rt.block_on(world());
    // A thousand requests from one address: the limit must not be what answers them.
    w.hooks.rate_limiter.per_minute = threadstorm::rate_limit::MAX_PER_MINUTE;
    rt.block_on(connect(&w, "1"));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &arbitrary_request(),
            |(method, path, headers, query, body, base64)| {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let query: Vec<(&str, &str)> = query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let body = if base64 {
                    STANDARD.encode(&body)
                } else {
                    String::from_utf8_lossy(&body).into_owned()
                };
                let req = event(&method, &path, &query, &headers, Some(&body), base64);
                let res = rt.block_on(w.hooks.handle(req));
                prop_assert!(
                    res.status().as_u16() < 500,
                    "{method} {path}: {} {}",
                    res.status(),
                    text(&res)
                );
                Ok(())
            },
        )
        .unwrap();
    rt.block_on(async {
        assert!(scan(&w, Resource::InboxTable).await.is_empty());
        let claims = scan(&w, Resource::IdempotencyTable).await;
        assert!(claims.is_empty(), "{claims:?}");
        let account = w
            .hooks
            .accounts
            .get(&UserId::parse("1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(account.status, AccountStatus::Connected);
    });
}

/// A reply far longer than Threads allows (as only a sender with the app secret could make) is
/// stored clipped, not refused with a 5xx that Meta would retry for a day and a half.
#[tokio::test]
async fn an_overlong_reply_is_stored_clipped_and_answered_200() {
    let w = world().await;
    connect(&w, OWNER).await;
    let huge = "é".repeat(210 * 1024); // 420 KB of UTF-8, more than a DynamoDB item holds
    let body = one_reply(&w.app_id, "17920000000000777", &huge);
    assert!(
        body.len() < threadstorm::webhooks::MAX_BODY_BYTES,
        "within the body limit"
    );
    let res = w
        .hooks
        .handle(signed_post(
            &body,
            &signature(&w.app_secret, body.as_bytes()),
        ))
        .await;
    assert_eq!(res.status(), 200, "{}", json_body(&res));
    let items = scan(&w, Resource::InboxTable).await;
    let text = items
        .iter()
        .find_map(|i| i.get("text").and_then(|t| t.as_s().ok()))
        .expect("the reply is stored");
    assert_eq!(text.len(), threadstorm::webhooks::routes::MAX_FIELD_BYTES);
    assert!(
        text.chars().all(|c| c == 'é'),
        "cut at a character boundary"
    );
}
