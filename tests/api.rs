//! The api function against moto: requests shaped as API Gateway hands them over, real sessions,
//! users and roles, storms stored in the PostsTable and sent to the intake FIFO queue.
//!
//! Every route of the route table refuses an anonymous caller; a user's resources are invisible to
//! other users (404) and reachable by an administrator only with an explicit, audited override;
//! `Idempotency-Key` replays; bad input of every kind is a 4xx that stores nothing.

use std::collections::BTreeMap;

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
use threadstorm_tests::support::world::{self as pipeline, World as Pipeline};

const ACCOUNT_A: &str = "17841400000000101";
const ACCOUNT_B: &str = "17841400000000202";

struct World {
    stack: Stack,
    api: Api,
}

/// Where the api function runs: a bare local stack, or a whole pipeline publishing to the
/// Threads emulator (which the api then reads insights from).
enum Stack {
    Bare(Box<TestStack>),
    Pipeline(Box<Pipeline>),
}

/// A user who logged in: their id and a bearer token.
struct Person {
    id: UserId,
    token: String,
}

async fn api_on(t: &TestStack, env: BTreeMap<String, String>) -> Api {
    let config = Config::from_lookup(&API, |k| env.get(k).cloned()).expect("config");
    let deps = Deps {
        function: &API,
        config,
        aws: t.aws.clone(),
    };
    Api::from_deps(&deps).await.expect("api starts")
}

async fn world() -> World {
    let t = TestStack::new().await;
    let api = api_on(&t, t.env(&API)).await;
    World {
        stack: Stack::Bare(Box::new(t)),
        api,
    }
}

/// The api beside a pipeline whose poster publishes to the emulator, and which the api asks
/// for insights.
async fn world_with_threads() -> World {
    let pipeline = Pipeline::new().await;
    let mut env = pipeline.stack.env(&API);
    env.insert("THREADS_GRAPH_URL".into(), pipeline.emu.base_url());
    env.insert("THREADS_AUTH_URL".into(), pipeline.emu.authorize_url());
    let api = api_on(&pipeline.stack, env).await;
    World {
        stack: Stack::Pipeline(Box::new(pipeline)),
        api,
    }
}

impl World {
    fn t(&self) -> &TestStack {
        match &self.stack {
            Stack::Bare(t) => t,
            Stack::Pipeline(p) => &p.stack,
        }
    }

    fn pipeline(&self) -> &Pipeline {
        match &self.stack {
            Stack::Pipeline(p) => p,
            Stack::Bare(_) => panic!("this world has no pipeline"),
        }
    }

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
                self.t().aws.dynamodb.clone(),
                self.t().name(Resource::AccountsTable),
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

    /// `POST /v1/posts` of `body` under `Idempotency-Key: key`.
    async fn post_keyed(
        &self,
        who: &Person,
        key: &str,
        body: &str,
    ) -> (u16, Value, Response<Body>) {
        self.call(
            Some(who),
            "POST",
            "/v1/posts",
            &[],
            &[("Idempotency-Key", key)],
            Some(body),
        )
        .await
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
            .t()
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(self.t().name(Resource::IntakeQueue))
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

    /// Every record of the audit table.
    async fn audit_items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.t()
            .aws
            .dynamodb
            .scan()
            .table_name(self.t().name(Resource::AuditTable))
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.audit_items()
            .await
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
    // ... and is refused alike for an id that does not exist: the answer reveals nothing.
    for method in ["GET", "DELETE"] {
        let (status, problem, _) = w
            .call(
                Some(&bob),
                method,
                "/v1/posts/storm_0123456789abcdef0123456789abcdef",
                &[("override", "true")],
                &[],
                None,
            )
            .await;
        assert_eq!(status, 403, "{method}: {problem}");
    }
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

    // A refused request changed nothing, so its key is not spent: the corrected body runs.
    let too_long = json!({"account_id": ACCOUNT_A, "text": "x".repeat(501)}).to_string();
    let (status, problem, _) = w.post_keyed(&alice, "order-43", &too_long).await;
    assert_eq!(status, 422, "{problem}");
    let corrected = json!({"account_id": ACCOUNT_A, "text": "short enough"}).to_string();
    let (status, created, res) = w.post_keyed(&alice, "order-43", &corrected).await;
    assert_eq!(status, 202, "{created}");
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(w.stored(&alice).await, 2);
    let (status, again, _) = w.post_keyed(&alice, "order-43", &corrected).await;
    assert_eq!((status, &again), (202, &created), "then it is kept");
    assert_eq!(w.stored(&alice).await, 2);

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
    assert_eq!(w.stored(&alice).await, 2);
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
async fn a_repeated_query_parameter_is_400_whichever_value_comes_first() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    for query in [
        [("account", ACCOUNT_A), ("account", ACCOUNT_B)],
        [("account", ACCOUNT_B), ("account", ACCOUNT_A)],
        [("limit", "5"), ("limit", "5")],
    ] {
        let (status, problem, _) = w
            .call(Some(&alice), "GET", "/v1/posts", &query, &[], None)
            .await;
        assert_eq!(status, 400, "{query:?}: {problem}");
        assert_eq!(problem["code"], "repeated_parameter");
        assert_eq!(problem["field"], query[0].0);
    }
    let body = json!({"account_id": ACCOUNT_A, "text": "once"}).to_string();
    let (status, problem, _) = w
        .call(
            Some(&alice),
            "POST",
            "/v1/posts",
            &[("override", "false"), ("override", "true")],
            &[],
            Some(&body),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(w.stored(&alice).await, 0, "nothing was stored");
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
        ("/v1/posts", format!("{} trailing", json!({"account_id": ACCOUNT_A, "text": "x"})), 400, "malformed_body"),
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
    // A value of the wrong type is named by its place in the body, without parser positions.
    for (path, body, field) in [
        (
            "/v1/posts",
            json!({"account_id": ACCOUNT_A, "text": 5}),
            "text",
        ),
        (
            "/v1/storms",
            json!({"account_id": ACCOUNT_A, "parts": [{"text": "a"}, {"text": ["b"]}]}),
            "parts[1].text",
        ),
    ] {
        let (status, problem, _) = w
            .call(
                Some(&alice),
                "POST",
                path,
                &[],
                &[],
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], "malformed_body");
        assert_eq!(problem["field"], field, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
        assert!(!detail.contains("line 1"), "{detail}");
    }
    // A post's fields are its own names, a split text's problem is `text`, a broken body names
    // no field, and no answer names a Rust type.
    let long_text = "word ".repeat(11_000);
    for (path, body, code, field) in [
        ("/v1/posts", "{".to_owned(), "malformed_body", Value::Null),
        ("/v1/posts", "{not json".to_owned(), "malformed_body", Value::Null),
        ("/v1/posts", "[1,2".to_owned(), "malformed_body", Value::Null),
        ("/v1/storms", json!([ACCOUNT_A, [{"text": "x"}]]).to_string(), "malformed_body", Value::Null),
        ("/v1/storms", json!("text").to_string(), "malformed_body", Value::Null),
        // Which of two values would count is refused, for a post's flattened fields as anywhere.
        ("/v1/posts", format!(r#"{{"account_id":"{ACCOUNT_A}","account_id":"90071992547409931","text":"x"}}"#), "malformed_body", Value::Null),
        ("/v1/storms", format!(r#"{{"account_id":"{ACCOUNT_A}","parts":[{{"text":"a","text":"b"}}]}}"#), "malformed_body", json!("parts[0]")),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "text": null}).to_string(), "missing_field", json!("text")),
        ("/v1/posts", json!({"account_id": ACCOUNT_A, "media_type": "IMAGE", "image_url": "https://a.example/i.jpg", "video_url": "https://a.example/v.mp4"}).to_string(), "unexpected_field", json!("video_url")),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "auto_split": true, "text": long_text}).to_string(), "too_many_parts", json!("text")),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "parts": [null]}).to_string(), "malformed_body", json!("parts[0]")),
        ("/v1/storms", json!({"account_id": ACCOUNT_A, "parts": [{"text": "a"}], "publish_at": {"t": 1}}).to_string(), "malformed_body", json!("publish_at")),
    ] {
        let (status, problem, _) = w
            .call(Some(&alice), "POST", path, &[], &[], Some(&body))
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        for internal in ["ContentInput", "When", "struct", "enum", "line 1"] {
            assert!(!detail.contains(internal), "{detail}");
        }
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
    // A body declared as something other than JSON is 415 and stores nothing; JSON's own
    // types and parameters pass on to the body's checks (here: a missing account).
    let post = json!({"account_id": ACCOUNT_A, "text": "declared"}).to_string();
    let no_account = json!({"text": "declared"}).to_string();
    let auth = format!("Bearer {}", alice.token);
    for (declared, body, want) in [
        ("text/plain", &post, 415),
        ("application/x-www-form-urlencoded", &post, 415),
        ("multipart/form-data; boundary=x", &post, 415),
        ("application/json; charset=utf-8", &no_account, 400),
        ("Application/JSON", &no_account, 400),
        ("application/merge-patch+json", &no_account, 400),
    ] {
        let res = w
            .api
            .handle(event(
                "POST",
                "/v1/posts",
                &[],
                &[("Content-Type", declared), ("Authorization", &auth)],
                Some(body),
                false,
            ))
            .await;
        assert_eq!(res.status(), want, "{declared}");
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
    }
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
    let (status, other_account) = w.get(&alice, "/v1/posts", &[("account", ACCOUNT_B)]).await;
    assert_eq!(status, 404, "another user's account: {other_account}");
    let (status, own) = w.get(&alice, "/v1/posts", &[("account", ACCOUNT_A)]).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["items"].as_array().unwrap().len(), ids.len());

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
            "/v1/posts/a/b", "/", "/v1/posts:batch", "/v1/analytics", "/v1/audit",
            "/v1/admin/users/x/role", "/v1/admin/users/%2F/role", "/v1/admin/pause",
            "/v1/admin/resume", "/v1/admin/accounts/abc/revoke", "/v1/admin/secrets/x/rotate",
            "/v1/admin/secrets/session-key/rotate", "/v1/admin/audit/verify",
            "/v1/inbox", "/v1/inbox/x",
        ]),
        prop_oneof![
            Just(String::new()),
            "\\PC{0,80}",
            Just(json!({"account_id": ACCOUNT_A, "text": "x"}).to_string()),
            Just(json!({"account_id": ACCOUNT_A, "parts": [{"text": 1}]}).to_string()),
            Just(json!({"account_id": ACCOUNT_A, "text": "t", "auto_split": true, "numbering": true}).to_string()),
            Just(json!({"account_id": [1], "children": [{"media_type": "TEXT", "url": ""}]}).to_string()),
            Just(json!({"account_id": ACCOUNT_A, "parts": [{"media_type": "CAROUSEL", "children": [{"media_type": "VIDEO", "url": "u"}]}]}).to_string()),
            Just(json!({"posts": [{"account_id": ACCOUNT_A, "text": "x"}, 7, null, {"text": []}]}).to_string()),
            Just(json!({"posts": []}).to_string()),
            Just(json!({"role": "super_admin"}).to_string()),
            Just(json!({"role": 5}).to_string()),
            Just(json!({"reason": "x", "until": "soon"}).to_string()),
            Just(json!({"until": -1}).to_string()),
            Just(json!({"until": 1e300}).to_string()),
        ],
        "\\PC{0,12}",
        prop::option::of("[ -~]{0,10}"),
    )
}

/// Whatever the path, method, query, key and body, the answer is never a 5xx.
#[test]
fn no_input_makes_the_api_fail() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut w = rt.block_on(world());
    // Hundreds of requests from one user: the handlers must answer them, not the rate limit.
    w.api.rate_limiter.per_minute = threadstorm::rate_limit::MAX_PER_MINUTE;
    // A super_admin reaches every route's handler, so every parser is exercised.
    let alice = rt.block_on(w.person("17841400000000001", Role::SuperAdmin, Some(ACCOUNT_A)));
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
                    ("from", query_value.as_str()),
                    ("user", query_value.as_str()),
                    ("category", query_value.as_str()),
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

/// What a caller who does not own the resource gets from a route, given another user's ids.
enum Foreign {
    /// The route answers with this status (404 for ids of other users' resources, 403 for
    /// publishing to another user's account).
    Status(u16),
    /// The batch answers 200 and refuses the item with this status.
    BatchItem(u16),
    /// The route shows only the caller's own things: the list at this JSON key is empty.
    OnlyOwn(&'static str),
    /// A system route: nobody owns what it touches; only its permission decides.
    System,
}

/// A request for `route` that would succeed for its owner (`account`, `post` are the owner's),
/// and what a non-owner gets when sending it with those ids.
fn probe(
    route: &threadstorm::api::routes::Route,
    account: &str,
    owner: &str,
    post: &str,
) -> (String, Vec<(&'static str, String)>, Option<String>, Foreign) {
    use threadstorm::api::routes::RouteId::*;
    let path = |id: &str| concrete(route.pattern, id);
    let none = Vec::new();
    match route.id {
        Me => (path(""), none, None, Foreign::OnlyOwn("user_id")),
        ListAccounts => (path(""), none, None, Foreign::OnlyOwn("items")),
        ListPosts => (
            path(""),
            vec![("account", account.to_owned())],
            None,
            Foreign::Status(404),
        ),
        CreatePost => (
            path(""),
            none,
            Some(json!({"account_id": account, "text": "hi"}).to_string()),
            Foreign::Status(403),
        ),
        CreateStorm => (
            path(""),
            none,
            Some(
                json!({"account_id": account, "parts": [{"text": "a"}, {"text": "b"}]}).to_string(),
            ),
            Foreign::Status(403),
        ),
        GetPost | CancelPost | GetStorm | CancelStorm => {
            (path(post), none, None, Foreign::Status(404))
        }
        BatchPosts => (
            path(""),
            none,
            Some(json!({"posts": [{"account_id": account, "text": "bulk"}]}).to_string()),
            Foreign::BatchItem(403),
        ),
        Analytics => (
            path(""),
            vec![("account", account.to_owned())],
            None,
            Foreign::Status(404),
        ),
        ListAudit => (
            path(""),
            vec![("user", owner.to_owned())],
            None,
            Foreign::Status(404),
        ),
        SetRole => (
            path(owner),
            none,
            Some(json!({"role": "pro"}).to_string()),
            Foreign::System,
        ),
        Pause | Resume => (path(""), none, Some("{}".into()), Foreign::System),
        RevokeAccount => (path(account), none, None, Foreign::System),
        RotateSecret => (path("session-key"), none, None, Foreign::System),
        VerifyAudit => (path(""), none, None, Foreign::System),
        Inbox => (
            path(""),
            vec![("account", account.to_owned())],
            None,
            Foreign::Status(404),
        ),
    }
}

/// The issue's test: every route of the table refuses a caller without its permission (403) and
/// a caller who does not own the resource, given ids taken from another user's resources.
#[tokio::test]
async fn every_route_refuses_callers_without_the_permission_or_the_resource() {
    use threadstorm::rbac::{Principal, Target, authorize};
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::Business, Some(ACCOUNT_A))
        .await;
    let (status, post) = w
        .post(
            &alice,
            "/v1/posts",
            json!({"account_id": ACCOUNT_A, "text": "alice's"}),
        )
        .await;
    assert_eq!(status, 202, "{post}");
    let post_id = post["id"].as_str().unwrap().to_owned();
    let mut people = Vec::new();
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let account = format!("1784140000000030{i}");
        let person = w
            .person(&format!("1784140000000010{i}"), role, Some(&account))
            .await;
        people.push((role, person, account));
    }

    for route in ROUTES {
        let (path, query, body, foreign) = probe(route, ACCOUNT_A, alice.id.as_str(), &post_id);
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let what = format!("{} {}", route.method, route.pattern);

        // Without the permission: 403, whatever the ids.
        for (role, person, _) in &people {
            let principal = Principal {
                user_id: person.id.clone(),
                role: *role,
            };
            if authorize(&principal, route.action, Target::Own, false).allowed() {
                continue;
            }
            let (status, problem, _) = w
                .call(
                    Some(person),
                    route.method,
                    &path,
                    &query,
                    &[],
                    body.as_deref(),
                )
                .await;
            assert_eq!(status, 403, "{what} as {role}: {problem}");
            assert_eq!(problem["code"], "forbidden", "{what} as {role}");
        }

        // With the permission but not the owner: refused, or shown only their own.
        let (role, stranger, _) = people
            .iter()
            .find(|(role, person, _)| {
                let principal = Principal {
                    user_id: person.id.clone(),
                    role: *role,
                };
                authorize(&principal, route.action, Target::Own, false).allowed()
                    && !matches!(role, Role::Admin | Role::SuperAdmin)
            })
            .or_else(|| people.iter().find(|(role, _, _)| *role == Role::SuperAdmin))
            .unwrap();
        let (status, answer, _) = w
            .call(
                Some(stranger),
                route.method,
                &path,
                &query,
                &[],
                body.as_deref(),
            )
            .await;
        match foreign {
            Foreign::Status(want) => assert_eq!(status, want, "{what} as {role}: {answer}"),
            Foreign::BatchItem(want) => {
                assert_eq!(status, 200, "{what}: {answer}");
                assert_eq!(answer["results"][0]["status"], want, "{what}: {answer}");
                assert_eq!(answer["accepted"], 0);
            }
            Foreign::OnlyOwn(key) => {
                assert_eq!(status, 200, "{what}: {answer}");
                let shown = answer[key].to_string();
                assert!(
                    !shown.contains(ACCOUNT_A) && !shown.contains(alice.id.as_str()),
                    "{what} shows alice's: {answer}"
                );
            }
            Foreign::System => assert!(
                matches!(role, Role::SuperAdmin | Role::Admin),
                "{what}: only administrators pass"
            ),
        }
    }
    // Alice's post is untouched by all of that.
    let (status, read) = w.get(&alice, &format!("/v1/posts/{post_id}"), &[]).await;
    assert_eq!((status, read["status"].as_str()), (200, Some("queued")));
    let deny_records = w
        .audit_actions()
        .await
        .iter()
        .filter(|(c, a)| c == "authorization" && a == "deny")
        .count();
    assert!(
        deny_records >= ROUTES.len(),
        "denials are audited: {deny_records}"
    );
}

#[tokio::test]
async fn nobody_grants_a_role_above_their_own_and_role_changes_are_audited() {
    let w = world().await;
    let alice = w.person("17841400000000001", Role::User, None).await;
    let admin = w.person("17841400000000008", Role::Admin, None).await;
    let other_admin = w.person("17841400000000007", Role::Admin, None).await;
    let root = w.person("17841400000000009", Role::SuperAdmin, None).await;
    let business = w.person("17841400000000006", Role::Business, None).await;
    let put = |who: &'static Person, target: &UserId, role: &str| {
        let path = format!("/v1/admin/users/{target}/role");
        let body = json!({"role": role}).to_string();
        let w = &w;
        async move {
            let (status, json, _) = w.call(Some(who), "PUT", &path, &[], &[], Some(&body)).await;
            (status, json)
        }
    };
    // 'static borrows for the closure: leak the few test people.
    let admin: &'static Person = Box::leak(Box::new(admin));
    let root: &'static Person = Box::leak(Box::new(root));
    let business: &'static Person = Box::leak(Box::new(business));

    assert_eq!(
        put(business, &alice.id, "pro").await.0,
        403,
        "no manage_users"
    );
    let (status, body) = put(admin, &alice.id, "business").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["previous_role"], "user");
    for role in ["admin", "super_admin"] {
        let (status, body) = put(admin, &alice.id, role).await;
        assert_eq!(status, 403, "an admin grants {role}: {body}");
    }
    assert_eq!(
        put(admin, &other_admin.id, "user").await.0,
        403,
        "no demoting an admin"
    );
    assert_eq!(
        put(admin, &root.id, "user").await.0,
        403,
        "no demoting a super_admin"
    );
    assert_eq!(
        put(admin, &admin.id, "user").await.0,
        403,
        "not one's own role"
    );
    assert_eq!(put(root, &alice.id, "admin").await.0, 200);
    assert_eq!(put(root, &other_admin.id, "super_admin").await.0, 200);
    let (status, body) = put(root, &alice.id, "emperor").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("role")));
    let (status, _) = put(root, &UserId::parse("nobody").unwrap(), "pro").await;
    assert_eq!(status, 404);
    let (status, body, _) = w
        .call(
            Some(root),
            "PUT",
            "/v1/admin/users/a%20b/role",
            &[],
            &[],
            Some("{\"role\":\"pro\"}"),
        )
        .await;
    assert!(status == 400 || status == 404, "{status} {body}");

    let (_, me) = w.get(&alice, "/v1/me", &[]).await;
    assert_eq!(me["role"], "admin");
    let actions = w.audit_actions().await;
    assert!(actions.contains(&("system".into(), "user.role_change".into())));
    assert!(actions.contains(&("authorization".into(), "user.role_change".into())));
}

#[tokio::test]
async fn administrators_pause_resume_revoke_rotate_and_verify_each_audited() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let root = w.person("17841400000000009", Role::SuperAdmin, None).await;
    let call = |method: &'static str, path: &'static str, body: Option<Value>| {
        let w = &w;
        let root = &root;
        async move {
            let body = body.map(|b| b.to_string());
            let (status, json, _) = w
                .call(Some(root), method, path, &[], &[], body.as_deref())
                .await;
            (status, json)
        }
    };
    let switch = || async {
        w.t()
            .aws
            .dynamodb
            .get_item()
            .table_name(w.t().name(Resource::RateLimitsTable))
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("control".into()),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("kill-switch".into()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };

    let (status, body) = call(
        "POST",
        "/v1/admin/pause",
        Some(json!({"reason": "incident 42"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(switch().await["paused"].as_bool().unwrap(), &true);
    let (status, body) = call(
        "POST",
        "/v1/admin/pause",
        Some(json!({"until": "yesterday"})),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("until")));
    let (status, _) = call("POST", "/v1/admin/resume", None).await;
    assert_eq!(status, 200);
    assert_eq!(switch().await["paused"].as_bool().unwrap(), &false);

    let (status, body) = call("POST", "/v1/admin/accounts/17841400000000101/revoke", None).await;
    assert_eq!(status, 200, "{body}");
    let account = AccountStore::new(
        w.t().aws.dynamodb.clone(),
        w.t().name(Resource::AccountsTable),
    )
    .get(&ThreadsUserId::parse(ACCOUNT_A).unwrap())
    .await
    .unwrap()
    .unwrap();
    assert_eq!(account.status, AccountStatus::Disconnected);
    assert_eq!(account.sealed_token, None, "the token ciphertext is gone");
    let (status, _) = call("POST", "/v1/admin/accounts/17841400000000999/revoke", None).await;
    assert_eq!(status, 404);
    let (status, body) = call("POST", "/v1/admin/accounts/not-an-id/revoke", None).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("id")));
    // Alice can no longer publish to it.
    let (status, _) = w
        .post(
            &alice,
            "/v1/posts",
            json!({"account_id": ACCOUNT_A, "text": "x"}),
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = call("POST", "/v1/admin/secrets/threads-app/rotate", None).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("name")),
        "{body}"
    );
    // The test stack's secrets have no rotation schedule: refused, nothing started.
    let (status, body) = call(
        "POST",
        "/v1/admin/secrets/session-key/rotate",
        Some(json!({"reason": "leak"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "rotation_not_enabled");

    let (status, report) = call("GET", "/v1/admin/audit/verify", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["records"].as_u64().unwrap() >= 4);

    let actions = w.audit_actions().await;
    for (category, action) in [
        ("system", "publishing.pause"),
        ("system", "publishing.resume"),
        ("security", "account.revoke"),
        ("system", "audit.verify"),
    ] {
        assert!(
            actions.contains(&(category.into(), action.into())),
            "{category} {action}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_audit_log_shows_users_their_own_and_administrators_everyones() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let bob = w
        .person("17841400000000002", Role::User, Some(ACCOUNT_B))
        .await;
    let admin = w.person("17841400000000009", Role::Admin, None).await;
    for (who, account) in [(&alice, ACCOUNT_A), (&alice, ACCOUNT_A), (&bob, ACCOUNT_B)] {
        let (status, _) = w
            .post(
                who,
                "/v1/posts",
                json!({"account_id": account, "text": format!("from {account} {}", rand_suffix())}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let (status, mine) = w.get(&alice, "/v1/audit", &[]).await;
    assert_eq!(status, 200, "{mine}");
    let items = mine["items"].as_array().unwrap();
    assert!(items.len() >= 2);
    assert!(
        items.iter().all(|i| i["user_id"] == alice.id.as_str()),
        "{mine}"
    );
    assert!(!mine.to_string().contains(&alice.token), "no session token");
    let (status, _) = w
        .get(&alice, "/v1/audit", &[("user", bob.id.as_str())])
        .await;
    assert_eq!(status, 404, "not bob's");

    // Pages of one, then filters.
    let (_, first) = w.get(&alice, "/v1/audit", &[("limit", "1")]).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (status, second) = w
        .get(&alice, "/v1/audit", &[("limit", "1"), ("cursor", &cursor)])
        .await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    let (status, _) = w.get(&bob, "/v1/audit", &[("cursor", &cursor)]).await;
    assert_eq!(status, 400, "alice's cursor is not bob's");

    let (status, all) = w.get(&admin, "/v1/audit", &[("limit", "100")]).await;
    assert_eq!(status, 200);
    let users: std::collections::BTreeSet<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["user_id"].as_str().map(str::to_owned))
        .collect();
    assert!(users.contains(alice.id.as_str()) && users.contains(bob.id.as_str()));
    let (_, bobs) = w
        .get(
            &admin,
            "/v1/audit",
            &[("user", bob.id.as_str()), ("category", "authorization")],
        )
        .await;
    assert!(!bobs["items"].as_array().unwrap().is_empty());
    assert!(
        bobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["user_id"] == bob.id.as_str() && i["category"] == "authorization")
    );
    let (_, none) = w
        .get(
            &admin,
            "/v1/audit",
            &[("user", bob.id.as_str()), ("to", "2000-01-01T00:00:00Z")],
        )
        .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    for (name, value) in [
        ("category", "gossip"),
        ("from", "later"),
        ("limit", "0"),
        ("user", "a b"),
        ("cursor", "%%"),
    ] {
        let (status, problem) = w.get(&admin, "/v1/audit", &[(name, value)]).await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (400, Some(name)),
            "{name}={value}"
        );
    }
    let (status, problem) = w
        .get(
            &admin,
            "/v1/audit",
            &[
                ("from", "2030-01-01T00:00:00Z"),
                ("to", "2020-01-01T00:00:00Z"),
            ],
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("from")),
        "a period that ends before it starts is refused, not answered empty"
    );
    assert!(
        w.audit_actions()
            .await
            .contains(&("data_access".into(), "audit.read".into())),
        "an administrator reading others' records is recorded"
    );
}

fn rand_suffix() -> u32 {
    std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos())
}

#[tokio::test]
async fn a_batch_gives_one_result_per_post_and_analytics_counts_by_status() {
    let w = world().await;
    let pro = w
        .person("17841400000000001", Role::Business, Some(ACCOUNT_A))
        .await;
    let bob = w
        .person("17841400000000002", Role::User, Some(ACCOUNT_B))
        .await;
    let later = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    let (status, answer) = w
        .post(
            &pro,
            "/v1/posts:batch",
            json!({"posts": [
                {"account_id": ACCOUNT_A, "text": "one"},
                {"account_id": ACCOUNT_A, "text": "a".repeat(501)},
                {"account_id": ACCOUNT_B, "text": "not mine"},
                {"account_id": ACCOUNT_A, "text": "later", "publish_at": later},
                {"text": "no account"},
                "not an object",
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 422, 403, 202, 400, 400]);
    assert_eq!(
        answer["results"][4]["error"]["field"],
        "posts[4].account_id"
    );
    assert_eq!(
        (answer["accepted"].as_u64(), answer["refused"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(w.stored(&pro).await, 2);
    assert_eq!(w.stored(&bob).await, 0);

    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"account_id": ACCOUNT_A, "text": format!("{i}")}))
        .collect();
    let (status, problem) = w
        .post(&pro, "/v1/posts:batch", json!({"posts": too_many}))
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("posts")));
    assert_eq!(
        w.stored(&pro).await,
        2,
        "nothing of a refused batch is stored"
    );

    let (status, figures) = w.get(&pro, "/v1/analytics", &[]).await;
    assert_eq!(status, 200, "{figures}");
    assert_eq!(figures["totals"]["storms"], 2);
    assert_eq!(figures["accounts"][0]["account_id"], ACCOUNT_A);
    assert_eq!(figures["accounts"][0]["by_status"]["queued"], 1);
    assert_eq!(figures["accounts"][0]["by_status"]["scheduled"], 1);
    assert_eq!(figures["complete"], true);
    let (_, empty) = w
        .get(
            &pro,
            "/v1/analytics",
            &[
                ("from", "2001-01-01T00:00:00Z"),
                ("to", "2001-02-01T00:00:00Z"),
            ],
        )
        .await;
    assert_eq!(empty["totals"]["storms"], 0);
    for (name, value) in [("from", "x"), ("from", "99999999999"), ("account", "abc")] {
        let (status, problem) = w.get(&pro, "/v1/analytics", &[(name, value)]).await;
        assert_eq!(status, 400, "{name}={value}: {problem}");
    }
}

/// The emulator's second test user, a second account for the same person.
const SECOND: &str = "90071992547409931";

impl World {
    /// Each `token.decrypt` audit record: (user, account, reason, outcome).
    async fn token_openings(&self) -> Vec<(String, String, String, String)> {
        let mut out: Vec<_> = self
            .audit_items()
            .await
            .iter()
            .filter(|i| {
                i.get("action")
                    .and_then(|a| a.as_s().ok())
                    .map(String::as_str)
                    == Some("token.decrypt")
            })
            .map(|i| {
                assert_eq!(i["category"].as_s().unwrap(), "data_access");
                let metadata: Value = serde_json::from_str(i["metadata"].as_s().unwrap()).unwrap();
                (
                    i["user_id"].as_s().unwrap().clone(),
                    metadata["account_id"].as_str().unwrap().to_owned(),
                    metadata["reason"].as_str().unwrap().to_owned(),
                    i["outcome"].as_s().unwrap().clone(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// `GET /v1/analytics` over real HTTP to moto and the Threads emulator: storms published through
/// the whole pipeline, then each account's Threads insights beside ThreadStorm's counts — equal
/// to what the emulator recorded; `insights=false` asks Threads nothing; a refused token costs
/// only its own account's figures; another user's account is 404 and asks nobody; every token
/// opened is audited as data access.
#[tokio::test]
async fn analytics_shows_each_accounts_threads_insights_beside_what_was_published() {
    let w = world_with_threads().await;
    let p = w.pipeline();
    let alice = w.person("17841400000000001", Role::Business, None).await;
    let bob = w
        .person("17841400000000002", Role::Business, Some(ACCOUNT_B))
        .await;
    let first = p.hand_over(alice.id.as_str(), pipeline::ACCOUNT).await;
    let second = p.connect(alice.id.as_str(), SECOND).await;

    for (path, body) in [
        (
            "/v1/posts",
            json!({"account_id": pipeline::ACCOUNT, "text": "one"}),
        ),
        (
            "/v1/storms",
            json!({"account_id": pipeline::ACCOUNT, "parts": [{"text": "a"}, {"text": "b"}]}),
        ),
        (
            "/v1/posts",
            json!({"account_id": SECOND, "text": "elsewhere"}),
        ),
    ] {
        let (status, answer) = w.post(&alice, path, body).await;
        assert_eq!(status, 202, "{answer}");
    }
    p.drain(pipeline::now()).await;
    let published = p.emu.published();
    assert_eq!(published.len(), 4, "{published:?}");
    // Threads' counters for each post, and the totals each profile should report.
    let mut expected: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for (i, post) in published.iter().enumerate() {
        let n = i as u64 + 1;
        let counters = threads_emulator::MediaInsights {
            views: 100 * n,
            likes: 10 * n,
            replies: n,
            reposts: 2 * n,
            quotes: 3 * n,
            ..Default::default()
        };
        assert!(p.emu.set_media_insights(&post.media_id, counters.clone()));
        let sums = expected.entry(post.owner_user_id.clone()).or_default();
        for (sum, value) in sums.iter_mut().zip([
            counters.views,
            counters.likes,
            counters.replies,
            counters.reposts,
            counters.quotes,
        ]) {
            *sum += value;
        }
    }
    p.emu.set_followers_count(pipeline::ACCOUNT, 57);
    p.emu.set_followers_count(SECOND, 3);
    let figures = |answer: &Value, account: &str| -> Value {
        answer["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_id"] == account)
            .unwrap_or_else(|| panic!("no {account} in {answer}"))
            .clone()
    };
    let insights_calls = || p.emu.calls().user_insights;

    let (status, answer) = w.get(&alice, "/v1/analytics", &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(insights_calls(), 2, "one threads_insights call per account");
    for (account, followers) in [(pipeline::ACCOUNT, 57), (SECOND, 3)] {
        let entry = figures(&answer, account);
        let [views, likes, replies, reposts, quotes] = expected[account];
        assert_eq!(
            entry["insights"],
            json!({
                "views": views, "likes": likes, "replies": replies, "reposts": reposts,
                "quotes": quotes, "followers_count": followers
            }),
            "{account}: {answer}"
        );
        assert_eq!(entry["insights_error"], Value::Null);
    }
    // ThreadStorm's own records sit beside them.
    let main = figures(&answer, pipeline::ACCOUNT);
    assert_eq!(main["by_status"]["published"], 2, "{answer}");
    assert_eq!(main["posts_published"], 3);
    assert_eq!(answer["insights_complete"], true);
    assert_eq!(answer["insights_period"]["until"], answer["to"]);
    // Each token opened was audited as data access, for its owner, as reading insights.
    let alice_id = alice.id.to_string();
    let opened = |first: usize, second: usize| {
        let mut want = Vec::new();
        for (account, n) in [(pipeline::ACCOUNT, first), (SECOND, second)] {
            for _ in 0..n {
                want.push((
                    alice_id.clone(),
                    account.to_owned(),
                    "insights".to_owned(),
                    "success".to_owned(),
                ));
            }
        }
        want
    };
    let insight_openings = || async {
        w.token_openings()
            .await
            .into_iter()
            .filter(|o| o.2 == "insights")
            .collect::<Vec<_>>()
    };
    assert_eq!(insight_openings().await, opened(1, 1));

    // insights=false: ThreadStorm's records only; Threads is not asked, no token opened.
    let (status, plain) = w
        .get(&alice, "/v1/analytics", &[("insights", "false")])
        .await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(insights_calls(), 2);
    assert!(figures(&plain, pipeline::ACCOUNT).get("insights").is_none());
    assert!(plain.get("insights_complete").is_none());
    assert_eq!(insight_openings().await, opened(1, 1));
    // A bad value is a problem, not a guess, and asks nobody.
    let (status, problem, res) = w
        .call(
            Some(&alice),
            "GET",
            "/v1/analytics",
            &[("insights", "yes")],
            &[],
            None,
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("insights")));
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert_eq!(insights_calls(), 2);

    // Threads refuses the second account's token: its figures are missing with a reason to
    // act on, the first account's are there.
    p.emu.revoke_token(&second);
    let (status, answer) = w.get(&alice, "/v1/analytics", &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(insights_calls(), 4);
    let refused = figures(&answer, SECOND);
    assert_eq!(refused["insights"], Value::Null);
    assert_eq!(
        refused["insights_error"]["code"], "needs_reauth",
        "{answer}"
    );
    assert!(
        refused["insights_error"]["text"]
            .as_str()
            .unwrap()
            .contains("connect the account again")
    );
    assert_eq!(
        figures(&answer, pipeline::ACCOUNT)["insights"]["followers_count"],
        57
    );
    assert_eq!(insight_openings().await, opened(2, 2));
    // The account is flagged as the poster flags it, so the next answer does not ask Threads
    // with that token again.
    let store = AccountStore::new(
        w.t().aws.dynamodb.clone(),
        w.t().name(Resource::AccountsTable),
    );
    let flagged = store
        .get(&ThreadsUserId::parse(SECOND).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flagged.status, AccountStatus::NeedsReauth);
    let (_, again) = w.get(&alice, "/v1/analytics", &[]).await;
    assert_eq!(
        figures(&again, SECOND)["insights_error"]["code"],
        "needs_reauth"
    );
    assert_eq!(insights_calls(), 5);
    assert_eq!(insight_openings().await, opened(3, 2));

    // Another user's account is not found, and nothing is fetched or opened for it.
    let (status, _) = w
        .get(&alice, "/v1/analytics", &[("account", ACCOUNT_B)])
        .await;
    assert_eq!(status, 404);
    let (status, _) = w
        .get(&bob, "/v1/analytics", &[("account", pipeline::ACCOUNT)])
        .await;
    assert_eq!(status, 404);
    assert_eq!(insights_calls(), 5);
    assert_eq!(insight_openings().await, opened(3, 2));
    // One account asked for by name: one call.
    let (status, one) = w
        .get(&alice, "/v1/analytics", &[("account", pipeline::ACCOUNT)])
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(insights_calls(), 6);

    // No token, in any form, in the audit log.
    let audit = format!("{:?}", w.audit_items().await);
    for token in [&first, &second] {
        assert!(!audit.contains(token.as_str()));
    }
}

/// DynamoDB stops a Query at 1 MB: with items of 300 KB a page holds three. Paging must still
/// reach every item, newest first, across the caller's accounts, whatever `limit` asks for.
#[tokio::test]
async fn the_inbox_pages_through_items_larger_than_a_dynamodb_page_allows() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let second = "17841400000000303";
    w.person("17841400000000001", Role::User, Some(second))
        .await;
    let big = "x".repeat(300 * 1024);
    let mut expected = Vec::new();
    for i in 0..14u64 {
        let account = if i % 2 == 0 { ACCOUNT_A } else { second };
        let sk = format!("{:011}#{:020}", 1_800_000_000 + i, i);
        expected.push(format!("reply-{i}"));
        w.t()
            .aws
            .dynamodb
            .put_item()
            .table_name(w.t().name(Resource::InboxTable))
            .item("account_id", threadstorm::store::s(account))
            .item("sk", threadstorm::store::s(&sk))
            .item("id", threadstorm::store::s(format!("reply-{i}")))
            .item("field", threadstorm::store::s("replies"))
            .item("text", threadstorm::store::s(&big))
            .send()
            .await
            .unwrap();
    }
    expected.reverse();
    for limit in ["1", "5", "20", "100"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..40 {
            let mut query = vec![("limit", limit)];
            if let Some(c) = &cursor {
                query.push(("cursor", c));
            }
            let (status, page) = w.get(&alice, "/v1/inbox", &query).await;
            assert_eq!(status, 200, "{page}");
            for item in page["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit={limit}");
    }
}

/// A session cookie rides along on requests other sites' pages make: a write carried by the
/// cookie needs a JSON body and, when the browser names the page's origin, one of ours.
#[tokio::test]
async fn a_cookie_session_refuses_writes_another_site_could_forge() {
    let w = world().await;
    let alice = w
        .person("17841400000000001", Role::User, Some(ACCOUNT_A))
        .await;
    let cookie = format!("{}={}", threadstorm::sessions::SESSION_COOKIE, alice.token);
    let body = json!({"account_id": ACCOUNT_A, "text": "from a cookie"}).to_string();
    let send = |headers: Vec<(&'static str, String)>| {
        let headers: Vec<(&str, String)> = headers;
        let body = body.clone();
        let w = &w;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = w
                .api
                .handle(event("POST", "/v1/posts", &[], &h, Some(&body), false))
                .await;
            res.status().as_u16()
        }
    };
    // A form or a text/plain fetch from another page.
    assert_eq!(
        send(vec![
            ("Cookie", cookie.clone()),
            ("Content-Type", "text/plain".into())
        ])
        .await,
        415
    );
    assert_eq!(
        send(vec![
            ("Cookie", cookie.clone()),
            ("Content-Type", "application/json".into()),
            ("Origin", "https://evil.example".into())
        ])
        .await,
        403
    );
    assert_eq!(w.stored(&alice).await, 0, "nothing was stored");
    // Requests from the service's own origin, and API clients with a bearer token, are unaffected.
    assert_eq!(
        send(vec![
            ("Cookie", cookie.clone()),
            ("Content-Type", "application/json; charset=utf-8".into()),
            ("Host", "api.threadstorm.example".into()),
            ("Origin", "https://api.threadstorm.example".into())
        ])
        .await,
        202
    );
    assert_eq!(
        send(vec![
            ("Authorization", format!("Bearer {}", alice.token)),
            ("Content-Type", "application/json".into()),
            ("Origin", "https://evil.example".into())
        ])
        .await,
        202,
        "a bearer token is never sent by a browser on its own"
    );
    // Without a cookie a body that declares no type is read as JSON; one declared as something
    // else is refused whoever sends it.
    for (declared, want) in [(None, 202), (Some("text/plain"), 415)] {
        let mut headers = vec![("Authorization", format!("Bearer {}", alice.token))];
        headers.extend(declared.map(|d| ("Content-Type", d.to_owned())));
        assert_eq!(send(headers).await, want, "{declared:?}");
    }
}
