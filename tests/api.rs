//! The api function against moto: requests shaped as API Gateway hands them over, real sessions,
//! users and roles, storms stored in the PostsTable and sent to the intake FIFO queue.
//!
//! Every route of the route table refuses an anonymous caller; a user's resources are invisible to
//! other users (404) and reachable by an administrator only with an explicit, audited override;
//! `Idempotency-Key` replays; bad input of every kind is a 4xx that stores nothing.

use lambda_http::{Body, Response};
use local_stack::testing::TestStack;
use proptest::prelude::*;
use serde_json::{Value, json};
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::api::Api;
use threadstorm::api::routes::ROUTES;
use threadstorm::config::Config;
use threadstorm::resources::{API, Resource};
use threadstorm::runtime::Deps;
use threadstorm::threads::UserId as ThreadsUserId;
use threadstorm::users::{Role, UserId};
use threadstorm_tests::support::gateway::event;

const ACCOUNT_A: &str = "17841400000000101";
const ACCOUNT_B: &str = "17841400000000202";

struct World {
    t: TestStack,
    api: Api,
}

/// A signed-in user: their id and a bearer token.
struct Person {
    id: UserId,
    token: String,
}

async fn world() -> World {
    let t = TestStack::new().await;
    let env = t.env(&API);
    let config = Config::from_lookup(&API, |k| env.get(k).cloned()).expect("config");
    let deps = Deps {
        function: &API,
        config,
        aws: t.aws.clone(),
    };
    let api = Api::from_deps(&deps).expect("api starts");
    World { t, api }
}

impl World {
    /// A user who logged in with Threads user `threads_id`, with `role`, owning `account`.
    async fn person(&self, threads_id: &str, role: Role, account: Option<&str>) -> Person {
        let login = self
            .api
            .users
            .upsert_on_login(&ThreadsUserId::parse(threads_id).unwrap())
            .await
            .unwrap();
        let id = login.user.user_id;
        assert!(self.api.users.set_role(&id, role).await.unwrap());
        if let Some(account) = account {
            let store = AccountStore::new(
                self.t.aws.dynamodb.clone(),
                self.t.name(Resource::AccountsTable),
            );
            store
                .connect(&Account {
                    account_id: ThreadsUserId::parse(account).unwrap(),
                    owner_user_id: id.to_string(),
                    username: format!("user{account}"),
                    status: AccountStatus::Connected,
                    sealed_token: Some("sealed".into()),
                    token_issued_at: 1_800_000_000,
                    token_expires_at: 1_805_000_000,
                    connected_at: 1_800_000_000,
                })
                .await
                .unwrap();
        }
        let issued = self.api.sessions.issue(&id).await.unwrap();
        Person {
            id,
            token: issued.token.expose().to_owned(),
        }
    }

    async fn call(
        &self,
        who: Option<&Person>,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Value, Response<Body>) {
        let auth = who.map(|p| format!("Bearer {}", p.token));
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        headers.extend_from_slice(extra);
        let res = self
            .api
            .handle(event(method, path, query, &headers, body, false))
            .await;
        let status = res.status().as_u16();
        let json = match res.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, json, res)
    }

    async fn post(&self, who: &Person, path: &str, body: Value) -> (u16, Value) {
        let (status, json, _) = self
            .call(Some(who), "POST", path, &[], &[], Some(&body.to_string()))
            .await;
        (status, json)
    }

    async fn get(&self, who: &Person, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let (status, json, _) = self.call(Some(who), "GET", path, query, &[], None).await;
        (status, json)
    }

    /// Messages waiting on the intake queue.
    async fn queued(&self) -> usize {
        let out = self
            .t
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(self.t.name(Resource::IntakeQueue))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        out.attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    async fn stored(&self, who: &Person) -> usize {
        let (_, page) = self.get(who, "/v1/posts", &[("limit", "100")]).await;
        page["items"].as_array().map_or(0, Vec::len)
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        let scan = self
            .t
            .aws
            .dynamodb
            .scan()
            .table_name(self.t.name(Resource::AuditTable))
            .send()
            .await
            .unwrap();
        scan.items()
            .iter()
            .filter_map(|i| {
                let category = i.get("category")?.as_s().ok()?.clone();
                let action = i.get("action")?.as_s().ok()?.clone();
                Some((category, action))
            })
            .collect()
    }
}

/// A concrete path for a route pattern, with `id` for every parameter.
fn concrete(pattern: &str, id: &str) -> String {
    pattern
        .split('/')
        .map(|seg| if seg.starts_with('{') { id } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_refuses_an_anonymous_caller_and_a_forged_session() {
    let w = world().await;
    for route in ROUTES {
        let path = concrete(route.pattern, "storm_00000000000000000000000000000000");
        let (status, body, _) = w
            .call(None, route.method, &path, &[], &[], Some("{}"))
            .await;
        assert_eq!(status, 401, "{} {path}: {body}", route.method);
        assert_eq!(body["code"], "unauthorized", "{body}");
        let forged = [("Authorization", "Bearer forged.token.value")];
        let (status, _, _) = w
            .call(None, route.method, &path, &[], &forged, Some("{}"))
            .await;
        assert_eq!(status, 401, "{} {path} with a forged session", route.method);
    }
    assert_eq!(w.queued().await, 0);
}

#[tokio::test]
async fn a_post_is_accepted_readable_listed_and_invisible_to_others() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let bob = w
        .person("17841400000000002", Role::User, Some(ACCOUNT_B))
        .await;

    let (status, json, res) = w
        .call(
            Some(&alice),
            "POST",
            "/v1/posts",
            &[],
            &[],
            Some(
                &json!({"account_id": ACCOUNT_A, "text": "Hello from ThreadStorm 👋",
                        "reply_control": "everyone", "topic_tag": "rust"})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["status"], "queued");
    assert_eq!(json["kind"], "post");
    assert_eq!(json["parts"][0]["content"]["media_type"], "TEXT");
    let id = json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        res.headers().get("location").unwrap(),
        &format!("/v1/posts/{id}")
    );
    assert_eq!(w.queued().await, 1, "sent to the intake queue");

    let (status, read) = w.get(&alice, &format!("/v1/posts/{id}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(read["id"], id.as_str());
    assert!(read.get("owner_user_id").is_none(), "no internals: {read}");

    // Bob sees nothing of it: not by id, not by listing, cannot cancel it.
    for (method, path) in [
        ("GET", format!("/v1/posts/{id}")),
        ("GET", format!("/v1/storms/{id}")),
        ("DELETE", format!("/v1/posts/{id}")),
    ] {
        let (status, body, _) = w.call(Some(&bob), method, &path, &[], &[], None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    assert_eq!(w.stored(&bob).await, 0);
    // Nor may he publish to Alice's account.
    let (status, body) = w
        .post(
            &bob,
            "/v1/posts",
            json!({"account_id": ACCOUNT_A, "text": "mine now"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // A user cannot ask for an override.
    let (status, _, _) = w
        .call(
            Some(&bob),
            "GET",
            &format!("/v1/posts/{id}"),
            &[("override", "true")],
            &[],
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        w.audit_actions()
            .await
            .contains(&("authorization".into(), "deny".into())),
        "denials are audited"
    );

    let (status, page) = w.get(&alice, "/v1/posts", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], id.as_str());
}

#[tokio::test]
async fn an_admin_reaches_another_users_post_only_by_an_audited_override() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let admin = w.person("17841400000000009", Role::Admin, None).await;
    let (_, post) = w
        .post(
            &alice,
            "/v1/posts",
            json!({"account_id": ACCOUNT_A, "text": "hi"}),
        )
        .await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let (status, _) = w.get(&admin, &path, &[]).await;
    assert_eq!(status, 404, "no silent access without the override");
    let (status, read) = w.get(&admin, &path, &[("override", "true")]).await;
    assert_eq!(status, 200, "{read}");
    assert!(
        w.audit_actions()
            .await
            .contains(&("security".into(), "override".into()))
    );
    let (status, cancelled, _) = w
        .call(
            Some(&admin),
            "DELETE",
            &path,
            &[("override", "true")],
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, _) = w.get(&admin, &path, &[("override", "maybe")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let body = json!({"account_id": ACCOUNT_A, "text": "only once"}).to_string();
    let key = [("Idempotency-Key", "order-42")];
    let (first_status, first, _) = w
        .call(Some(&alice), "POST", "/v1/posts", &[], &key, Some(&body))
        .await;
    assert_eq!(first_status, 202, "{first}");
    // The same JSON with other spacing and key order is the same body.
    let same = "{ \"text\": \"only once\",\n  \"account_id\": \"17841400000000101\" }";
    let (status, again, res) = w
        .call(Some(&alice), "POST", "/v1/posts", &[], &key, Some(same))
        .await;
    assert_eq!(status, 202);
    assert_eq!(again, first, "the same answer");
    assert_eq!(res.headers().get("idempotent-replayed").unwrap(), "true");
    assert!(res.headers().get("location").is_some());
    assert_eq!(w.stored(&alice).await, 1, "stored once");
    assert_eq!(w.queued().await, 1, "enqueued once");

    let other = json!({"account_id": ACCOUNT_A, "text": "something else"}).to_string();
    let (status, problem, _) = w
        .call(Some(&alice), "POST", "/v1/posts", &[], &key, Some(&other))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert_eq!(w.stored(&alice).await, 1);

    // Keys are per user: Bob's "order-42" is his own.
    let bob = w
        .person("17841400000000002", Role::User, Some(ACCOUNT_B))
        .await;
    let bobs = json!({"account_id": ACCOUNT_B, "text": "only once"}).to_string();
    let (status, _, _) = w
        .call(Some(&bob), "POST", "/v1/posts", &[], &key, Some(&bobs))
        .await;
    assert_eq!(status, 202);

    for bad in ["", &"k".repeat(256), "has space", "naïve"] {
        let (status, problem, _) = w
            .call(
                Some(&alice),
                "POST",
                "/v1/posts",
                &[],
                &[("Idempotency-Key", bad)],
                Some(&body),
            )
            .await;
        assert_eq!(status, 400, "{bad:?}: {problem}");
    }
    assert_eq!(w.stored(&alice).await, 1);
}

#[tokio::test]
async fn a_long_text_is_auto_split_into_a_numbered_storm_within_500_bytes() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let paragraph = "Ünïcödé words with emoji 🎉 and a link https://example.com/a/very/long/path?q=1 \
                     that must never be split. ";
    let text = paragraph.repeat(12);
    let (status, storm) = w
        .post(
            &alice,
            "/v1/storms",
            json!({"account_id": ACCOUNT_A, "text": text, "auto_split": true, "numbering": true}),
        )
        .await;
    assert_eq!(status, 202, "{storm}");
    assert_eq!(storm["kind"], "storm");
    let parts = storm["parts"].as_array().unwrap();
    assert!(parts.len() > 2);
    let n = parts.len();
    for (i, part) in parts.iter().enumerate() {
        let text = part["content"]["text"].as_str().unwrap();
        assert!(text.len() <= 500, "part {i} is {} bytes", text.len());
        assert!(text.ends_with(&format!("{}/{n}", i + 1)), "{text}");
        if let Some(at) = text.find("https://") {
            assert!(
                text[at..].starts_with("https://example.com/a/very/long/path?q=1"),
                "a link was cut: {text}"
            );
        }
    }

    let in_a_month = time::OffsetDateTime::now_utc().unix_timestamp() / 60 * 60 + 30 * 86_400;
    let in_a_month_rfc3339 = time::OffsetDateTime::from_unix_timestamp(in_a_month)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, explicit) = w
        .post(
            &alice,
            "/v1/storms",
            json!({"account_id": ACCOUNT_A, "publish_at": in_a_month_rfc3339,
                   "parts": [{"text": "one"}, {"image_url": "https://example.com/a.jpg", "text": "two"}]}),
        )
        .await;
    assert_eq!(status, 202, "{explicit}");
    assert_eq!(explicit["status"], "scheduled");
    assert_eq!(explicit["parts"][1]["content"]["media_type"], "IMAGE");
    assert_eq!(explicit["publish_at"], in_a_month);
}

#[tokio::test]
async fn bad_submissions_are_4xx_naming_the_field_and_store_nothing() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let over = "a".repeat(501);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/posts", "not json".into(), 400, "malformed_body"),
        ("/v1/posts", "".into(), 400, "missing_body"),
        ("/v1/posts", json!({"text": "no account"}).to_string(), 400, "missing_field"),
        ("/v1/posts", json!({"account_id": "abc", "text": "x"}).to_string(), 400, "invalid_account_id"),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "text": "x", "colour": "red"}).to_string(), 400, "malformed_body"),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "text": "x", "publish_at": "tomorrow"}).to_string(), 400, "invalid_publish_at"),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "text": over}).to_string(), 422, "content_refused"),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "media_type": "VIDEO", "text": "x"}).to_string(), 400, "missing_field"),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "text": "x", "publish_at": 99_999_999_999i64}).to_string(), 400, "publish_at_too_far"),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "parts": []}).to_string(), 400, "no_parts"),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "text": "x"}).to_string(), 400, "auto_split_required"),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "text": "x", "parts": [{"text": "y"}], "auto_split": true}).to_string(), 400, "parts_or_text"),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "parts": [{"text": "y"}], "numbering": true}).to_string(), 400, "numbering_needs_auto_split"),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "parts": [{"text": "ok"}, {"text": over}]}).to_string(), 422, "content_refused"),
    ];
    for (path, body, want, code) in cases {
        let (status, problem, res) = w
            .call(Some(&alice), "POST", path, &[], &[], Some(&body))
            .await;
        assert_eq!(status, want, "{path} {body}: {problem}");
        assert_eq!(problem["code"], code, "{path} {body}: {problem}");
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let (status, _, _) = w
        .call(
            Some(&alice),
            "POST",
            "/v1/posts",
            &[],
            &[],
            Some(&format!("{{\"text\":\"{}\"}}", "x".repeat(300 * 1024))),
        )
        .await;
    assert_eq!(status, 413);
    let (status, _, res) = w
        .call(Some(&alice), "PATCH", "/v1/posts/storm_x", &[], &[], None)
        .await;
    assert_eq!(status, 405);
    assert_eq!(res.headers().get("allow").unwrap(), "GET, DELETE");
    assert_eq!(w.stored(&alice).await, 0);
    assert_eq!(w.queued().await, 0);
}

#[tokio::test]
async fn cancelling_works_until_publishing_and_listing_filters_and_pages() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let mut ids = Vec::new();
    let later = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    for i in 0..5 {
        let (status, post) = w
            .post(
                &alice,
                "/v1/posts",
                json!({"account_id": ACCOUNT_A, "text": format!("post {i}"), "publish_at": later + i}),
            )
            .await;
        assert_eq!(status, 202, "{post}");
        ids.push(post["id"].as_str().unwrap().to_owned());
    }
    let cancel = format!("/v1/posts/{}", ids[0]);
    let (status, body, _) = w
        .call(Some(&alice), "DELETE", &cancel, &[], &[], None)
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));
    let (status, body, _) = w
        .call(Some(&alice), "DELETE", &cancel, &[], &[], None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "not_cancellable");

    let (_, scheduled) = w.get(&alice, "/v1/posts", &[("status", "scheduled")]).await;
    assert_eq!(scheduled["items"].as_array().unwrap().len(), 4);
    let (_, other_account) = w.get(&alice, "/v1/posts", &[("account", ACCOUNT_B)]).await;
    assert_eq!(other_account["items"].as_array().unwrap().len(), 0);

    // Pages of two, newest first, every post once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let (status, page) = w.get(&alice, "/v1/posts", &query).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    for (name, value) in [
        ("status", "done"),
        ("account", "x"),
        ("limit", "0"),
        ("limit", "101"),
        ("cursor", "bm90IGEgY3Vyc29y"),
        ("cursor", "%%%"),
    ] {
        let (status, problem) = w.get(&alice, "/v1/posts", &[(name, value)]).await;
        assert_eq!(status, 400, "{name}={value}: {problem}");
        assert_eq!(problem["field"], name);
    }
}

#[tokio::test]
async fn me_and_accounts_describe_the_caller_without_tokens() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::Pro, Some(ACCOUNT_A))
        .await;
    let (status, me) = w.get(&alice, "/v1/me", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(me["user_id"], alice.id.as_str());
    assert_eq!(me["role"], "pro");
    assert_eq!(
        me["permissions"],
        json!(["read", "write_own", "bulk_operations"])
    );
    let (status, accounts) = w.get(&alice, "/v1/accounts", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(accounts["items"][0]["account_id"], ACCOUNT_A);
    assert!(!accounts.to_string().contains("sealed"), "{accounts}");
}

fn arbitrary_request()
-> impl Strategy<Value = (&'static str, &'static str, String, String, Option<String>)> {
    (
        prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "PATCH"]),
        prop::sample::select(vec![
            "/v1/posts", "/v1/storms", "/v1/posts/storm_x", "/v1/storms/%00", "/v1/me",
            "/v1/accounts", "/v1/posts/storm_00000000000000000000000000000000", "/v1/",
            "/v1/posts/a/b", "/", "/v1/inbox", "/v1/inbox/x",
        ]),
        prop_oneof![
            Just(String::new()),
            "\\PC{0,80}",
            Just(json!({"account_id": ACCOUNT_A, "text": "x"}).to_string()),
            Just(json!({"account_id": ACCOUNT_A, "parts": [{"text": 1}]}).to_string()),
            Just(json!({"account_id": ACCOUNT_A, "text": "t", "auto_split": true, "numbering": true}).to_string()),
            Just(json!({"account_id": [1], "children": [{"media_type": "TEXT", "url": ""}]}).to_string()),
            Just(json!({"account_id": ACCOUNT_A, "parts": [{"media_type": "CAROUSEL", "children": [{"media_type": "VIDEO", "url": "u"}]}]}).to_string()),
        ],
        "\\PC{0,12}",
        prop::option::of("[ -~]{0,10}"),
    )
}

/// Whatever the path, method, query, key and body, the answer is never a 5xx.
#[test]
fn no_input_makes_the_api_fail() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(world());
    let alice = rt.block_on(w.person("17841400000000001", Role::User, Some(ACCOUNT_A)));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &arbitrary_request(),
            |(method, path, body, query_value, key)| {
                let mut extra = Vec::new();
                if let Some(k) = &key {
                    extra.push(("Idempotency-Key", k.as_str()));
                }
                let query = [
                    ("status", query_value.as_str()),
                    ("cursor", query_value.as_str()),
                    ("account", query_value.as_str()),
                    ("limit", query_value.as_str()),
                ];
                let (status, answer, _) =
                    rt.block_on(w.call(Some(&alice), method, path, &query, &extra, Some(&body)));
                prop_assert!(status < 500, "{method} {path}: {status} {answer}");
                Ok(())
            },
        )
        .unwrap();
}

/// `openapi.yaml` describes exactly the routes the router serves: nothing missing, nothing extra.
#[test]
fn the_openapi_document_describes_exactly_the_route_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method != "parameters" {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: std::collections::BTreeSet<_> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
        .collect();
    assert_eq!(documented, served);
    for route in ROUTES.iter().filter(|r| r.idempotent_post) {
        let op = &doc["paths"][route.pattern][route.method.to_lowercase()];
        assert!(
            serde_yaml_ng::to_string(&op["parameters"])
                .unwrap()
                .contains("IdempotencyKey"),
            "{} {} documents Idempotency-Key",
            route.method,
            route.pattern
        );
    }
}
