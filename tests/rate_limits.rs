//! Per-caller request limits at the HTTP edge, over real HTTP: the api, oauth and webhooks
//! functions behind a local front that hands each request over as API Gateway would (the
//! connection's address is the source IP), against moto, with small limits set through the
//! template's parameters. The request after the limit in a minute is a 429 with `Retry-After`
//! that runs no handler and changes nothing; it is counted in `rate_limit_violations` and the
//! first one per caller and minute is audited; another user or address is not affected.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use local_stack::StackOptions;
use local_stack::testing::{LOCAL_BASE_URL, TestStack};
use reqwest::StatusCode;
use serde_json::{Value, json};
use threads_emulator::EmulatorConfig;
use threads_emulator::webhook::{callback_payload, signed_request};
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::api::Api;
use threadstorm::clock::ManualClock;
use threadstorm::config::Config;
use threadstorm::metrics::{Metric, tap};
use threadstorm::oauth::routes::OAuth;
use threadstorm::rate_limit::window;
use threadstorm::resources::{API, FunctionSpec, OAUTH, Resource, WEBHOOKS};
use threadstorm::runtime::Deps;
use threadstorm::store::{Item, s};
use threadstorm::threads::UserId as ThreadsUserId;
use threadstorm::webhooks::routes::Webhooks;
use threadstorm_tests::support::gateway::{Front, front};

/// 20 s into a minute: a refusal now waits 40 s.
const NOW: i64 = 1_800_000_020;
const ALICE: &str = "17841400000000001";
const BOB: &str = "17841400000000002";
const VERIFY_TOKEN: &str = "vt-test-123";
/// Where the front sees the tests' clients come from.
const HERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Tables the functions' handlers write; a refused request must leave each as it was.
const HANDLER_TABLES: [Resource; 6] = [
    Resource::UsersTable,
    Resource::AccountsTable,
    Resource::SessionsTable,
    Resource::PostsTable,
    Resource::IdempotencyTable,
    Resource::InboxTable,
];

async fn stack(limits: &[(&str, &str)]) -> (TestStack, EmulatorConfig) {
    let emu = EmulatorConfig::default();
    let mut options = StackOptions::local(LOCAL_BASE_URL);
    for (parameter, value) in limits {
        options
            .parameters
            .insert((*parameter).to_owned(), (*value).to_owned());
    }
    options
        .secret_values
        .insert("ThreadsAppSecret".into(), emu.app_secret.clone());
    options
        .secret_values
        .insert("WebhookVerifyTokenSecret".into(), VERIFY_TOKEN.into());
    (TestStack::with_options(options).await, emu)
}

/// `function`'s dependencies in `t`, its configuration read from the template's environment.
fn deps(t: &TestStack, function: &'static FunctionSpec, emu: &EmulatorConfig) -> Deps {
    let mut env = t.env(function);
    env.insert("THREADS_APP_ID".into(), emu.app_id.clone());
    let config = Config::from_lookup(function, |k| env.get(k).cloned()).expect("config");
    Deps {
        function,
        config,
        aws: t.aws.clone(),
    }
}

/// A client whose connections come from `address`.
fn client(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(address))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn scan(t: &TestStack, table: Resource) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = t
            .aws
            .dynamodb
            .scan()
            .table_name(t.name(table))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

/// Every item of the handlers' tables, in an order that does not depend on the scan.
async fn snapshot(t: &TestStack) -> BTreeMap<Resource, Vec<String>> {
    let mut tables = BTreeMap::new();
    for table in HANDLER_TABLES {
        let mut items: Vec<String> = scan(t, table)
            .await
            .iter()
            .map(|item| format!("{:?}", item.iter().collect::<BTreeMap<_, _>>()))
            .collect();
        items.sort();
        tables.insert(table, items);
    }
    tables
}

fn attr(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The audit records of `action`.
async fn audited(t: &TestStack, action: &str) -> Vec<Item> {
    scan(t, Resource::AuditTable)
        .await
        .into_iter()
        .filter(|i| attr(i, "action") == action)
        .collect()
}

/// The count `pk`'s counter holds for the minute of `now`.
async fn counted(t: &TestStack, pk: &str, now: i64) -> i64 {
    let item = t
        .aws
        .dynamodb
        .get_item()
        .table_name(t.name(Resource::RateLimitsTable))
        .key("pk", s(pk))
        .key("sk", s(format!("minute#{}", window(now))))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    item.get("count")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Checks a refusal: 429, `Retry-After` to the end of the minute, a problem+json body.
async fn assert_refused(res: reqwest::Response, retry_after: &str) {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], retry_after);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
}

#[tokio::test]
async fn a_user_over_the_api_limit_gets_429_until_the_minute_ends_and_nobody_else_does() {
    let (t, emu) = stack(&[("ApiRateLimitPerMinute", "3")]).await;
    let mut api = Api::from_deps(&deps(&t, &API, &emu))
        .await
        .expect("api starts");
    assert_eq!(api.rate_limiter.per_minute, 3, "the template's parameter");
    let clock = Arc::new(ManualClock::at_unix(NOW));
    api.clock = clock.clone();

    // Alice owns an account; Bob is another user.
    let mut people = Vec::new();
    for threads_id in [ALICE, BOB] {
        let user = api
            .users
            .upsert_on_login(&ThreadsUserId::parse(threads_id).unwrap())
            .await
            .unwrap()
            .user
            .user_id;
        let token = api.sessions.issue(&user).await.unwrap().token;
        people.push((user, format!("Bearer {}", token.expose())));
    }
    AccountStore::new(t.aws.dynamodb.clone(), t.name(Resource::AccountsTable))
        .connect(&Account {
            account_id: ThreadsUserId::parse(ALICE).unwrap(),
            owner_user_id: people[0].0.to_string(),
            username: "alice".into(),
            status: AccountStatus::Connected,
            sealed_token: Some("sealed-token-bytes".into()),
            token_issued_at: NOW,
            token_expires_at: NOW + 5_000_000,
            connected_at: NOW,
        })
        .await
        .unwrap();
    let (alice, alice_auth) = &people[0];
    let (_, bob_auth) = &people[1];

    let api = Arc::new(api);
    let served = api.clone();
    let front: Front = front(move |req| {
        let api = served.clone();
        async move { api.handle(req).await }
    })
    .await;
    let http = client(HERE);
    let me = |auth: &str| {
        http.get(format!("{}/v1/me", front.url))
            .header("Authorization", auth)
            .send()
    };
    let post = |text: &str| {
        http.post(format!("{}/v1/posts", front.url))
            .header("Authorization", alice_auth.as_str())
            .json(&json!({"account_id": ALICE, "text": text}))
            .send()
    };
    let kept = tap::start();

    // Three requests in the minute are Alice's to make: one of them submits a post.
    assert_eq!(me(alice_auth).await.unwrap().status(), 200);
    let accepted = post("the third request of the minute").await.unwrap();
    assert_eq!(accepted.status(), 202, "{:?}", accepted.text().await);
    assert_eq!(me(alice_auth).await.unwrap().status(), 200);
    let alice_pk = format!("api#user#{alice}");
    assert_eq!(counted(&t, &alice_pk, NOW).await, 3);

    // The fourth is refused before its handler runs: no post, nothing else written.
    let before = snapshot(&t).await;
    assert_refused(post("one request too many").await.unwrap(), "40").await;
    assert_refused(me(alice_auth).await.unwrap(), "40").await;
    assert_eq!(
        snapshot(&t).await,
        before,
        "a refused request changes nothing"
    );
    let posts = format!("{:?}", scan(&t, Resource::PostsTable).await);
    assert!(posts.contains("the third request of the minute"));
    assert!(!posts.contains("one request too many"), "{posts}");
    assert_eq!(
        counted(&t, &alice_pk, NOW).await,
        3,
        "a refused request consumes nothing"
    );

    // Bob has his own budget.
    assert_eq!(me(bob_auth).await.unwrap().status(), 200);

    // Each refusal is counted; the first of the minute is audited, as a security event that is
    // Alice's, from her address.
    assert_eq!(kept.total("api", Metric::RateLimitViolations), 2.0);
    let records = audited(&t, "api.rate_limited").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(attr(&records[0], "category"), "security");
    assert_eq!(attr(&records[0], "outcome"), "denied");
    assert_eq!(attr(&records[0], "user_id"), alice.to_string());
    assert_eq!(attr(&records[0], "ip_address"), HERE.to_string());
    let metadata: Value = serde_json::from_str(&attr(&records[0], "metadata")).unwrap();
    assert_eq!(metadata["limit_per_minute"], 3);
    assert_eq!(metadata["retry_after"], 40);

    // After Retry-After, the next minute is Alice's again.
    clock.advance(Duration::from_secs(40));
    assert_eq!(me(alice_auth).await.unwrap().status(), 200);
    assert_eq!(counted(&t, &alice_pk, NOW + 40).await, 1);
    // An anonymous request is refused as such, and counts against nobody.
    let anonymous = http
        .get(format!("{}/v1/me", front.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_address_over_the_oauth_limit_gets_429_and_starts_no_sign_in() {
    let (t, emu) = stack(&[("OAuthRateLimitPerMinute", "2")]).await;
    let mut oauth = OAuth::from_deps(&deps(&t, &OAUTH, &emu))
        .await
        .expect("oauth starts");
    oauth.clock = Arc::new(ManualClock::at_unix(NOW));
    let oauth = Arc::new(oauth);
    let front = front(move |req| {
        let oauth = oauth.clone();
        async move { oauth.handle(req).await }
    })
    .await;
    let start = |address: Ipv4Addr, json: bool| {
        let mut req = client(address).get(format!("{}/oauth/start", front.url));
        if json {
            req = req.header("Accept", "application/json");
        }
        req.send()
    };
    let kept = tap::start();

    for _ in 0..2 {
        assert_eq!(start(HERE, false).await.unwrap().status(), 302);
    }
    let before = snapshot(&t).await;
    // A browser gets a page, an API client problem+json; both wait out the minute.
    let page = start(HERE, false).await.unwrap();
    assert_eq!(page.status(), 429);
    assert_eq!(page.headers()["retry-after"], "40");
    assert!(
        page.headers().get("set-cookie").is_none(),
        "a refused start neither sets nor clears the browser's cookie"
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Too many sign-in attempts")
    );
    assert_refused(start(HERE, true).await.unwrap(), "40").await;
    // The callback counts against the same budget.
    let callback = client(HERE)
        .get(format!("{}/oauth/callback?code=c&state=s", front.url))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_refused(callback, "40").await;
    assert_eq!(snapshot(&t).await, before, "no state, user or session");

    // Another address signs in as usual.
    assert_eq!(start(ELSEWHERE, false).await.unwrap().status(), 302);

    assert_eq!(kept.total("oauth", Metric::RateLimitViolations), 3.0);
    let records = audited(&t, "oauth.rate_limited").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(attr(&records[0], "category"), "security");
    assert_eq!(attr(&records[0], "ip_address"), HERE.to_string());
}

#[tokio::test]
async fn an_address_over_the_webhooks_limit_gets_429_and_its_callback_is_not_run() {
    let (t, emu) = stack(&[("WebhooksRateLimitPerMinute", "2")]).await;
    let mut hooks = Webhooks::from_deps(&deps(&t, &WEBHOOKS, &emu))
        .await
        .expect("webhooks start");
    hooks.clock = Arc::new(ManualClock::at_unix(NOW));
    let hooks = Arc::new(hooks);
    let served = hooks.clone();
    let front = front(move |req| {
        let hooks = served.clone();
        async move { hooks.handle(req).await }
    })
    .await;

    // A connected account whose owner will remove ThreadStorm on Threads.
    let account = ThreadsUserId::parse(ALICE).unwrap();
    let user = hooks
        .users
        .upsert_on_login(&account)
        .await
        .unwrap()
        .user
        .user_id;
    hooks
        .accounts
        .connect(&Account {
            account_id: account.clone(),
            owner_user_id: user.to_string(),
            username: "alice".into(),
            status: AccountStatus::Connected,
            sealed_token: Some("sealed-token-bytes".into()),
            token_issued_at: NOW,
            token_expires_at: NOW + 5_000_000,
            connected_at: NOW,
        })
        .await
        .unwrap();
    let signed = signed_request(&emu.app_secret, &callback_payload(ALICE, NOW), false);
    let deauthorize = |address: Ipv4Addr| {
        client(address)
            .post(format!("{}/meta/deauthorize", front.url))
            .form(&[("signed_request", signed.as_str())])
            .send()
    };
    let handshake = |address: Ipv4Addr| {
        client(address)
            .get(format!(
                "{}/webhooks/threads?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
                front.url
            ))
            .send()
    };
    let kept = tap::start();

    for _ in 0..2 {
        assert_eq!(handshake(HERE).await.unwrap().status(), 403);
    }
    // A genuine deauthorize over the limit: refused, and the account keeps its token.
    let before = snapshot(&t).await;
    assert_refused(deauthorize(HERE).await.unwrap(), "40").await;
    assert_refused(handshake(HERE).await.unwrap(), "40").await;
    assert_eq!(
        snapshot(&t).await,
        before,
        "the callback's handler did not run"
    );
    let kept_account = hooks.accounts.get(&account).await.unwrap().unwrap();
    assert_eq!(kept_account.status, AccountStatus::Connected);
    assert!(kept_account.sealed_token.is_some());

    // From another address the same callback goes through.
    assert_eq!(handshake(ELSEWHERE).await.unwrap().status(), 403);
    assert_eq!(deauthorize(ELSEWHERE).await.unwrap().status(), 200);
    let gone = hooks.accounts.get(&account).await.unwrap().unwrap();
    assert_eq!(gone.status, AccountStatus::Disconnected);

    assert_eq!(kept.total("webhooks", Metric::RateLimitViolations), 2.0);
    let records = audited(&t, "webhook.rate_limited").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(attr(&records[0], "category"), "security");
    assert_eq!(attr(&records[0], "ip_address"), HERE.to_string());
}

#[tokio::test]
async fn a_burst_of_concurrent_requests_admits_exactly_the_limit() {
    let (t, emu) = stack(&[("WebhooksRateLimitPerMinute", "5")]).await;
    let mut hooks = Webhooks::from_deps(&deps(&t, &WEBHOOKS, &emu))
        .await
        .expect("webhooks start");
    hooks.clock = Arc::new(ManualClock::at_unix(NOW));
    let hooks = Arc::new(hooks);
    let front = front(move |req| {
        let hooks = hooks.clone();
        async move { hooks.handle(req).await }
    })
    .await;
    let http = client(HERE);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = http.get(format!("{}/webhooks/threads", front.url)).send();
        burst.spawn(async move { request.await.unwrap().status() });
    }
    let statuses: Vec<StatusCode> = burst.join_all().await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused, 15, "{statuses:?}");
    assert_eq!(counted(&t, &format!("webhooks#ip#{HERE}"), NOW).await, 5);
    assert_eq!(audited(&t, "webhook.rate_limited").await.len(), 1);
}
