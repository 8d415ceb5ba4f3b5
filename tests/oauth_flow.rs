//! Connecting a Threads account end to end: the oauth function's routes against moto (state,
//! users, accounts, sessions, audit, KMS) and the Threads emulator (authorization window, code and
//! long-lived exchanges, profile), all over real HTTP. Cases O1 and O2 and their kin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{HeaderMap, header};
use lambda_http::{Body, Request, RequestExt, Response};
use local_stack::StackOptions;
use local_stack::testing::{LOCAL_BASE_URL, TestStack};
use threads_emulator::{Emulator, EmulatorConfig, Endpoint, Fault, FaultPlan};
use threadstorm::accounts::{AccountStatus, AccountStore};
use threadstorm::clock::ManualClock;
use threadstorm::config::Config;
use threadstorm::oauth::routes::OAuth;
use threadstorm::resources::{OAUTH, Resource};
use threadstorm::runtime::Deps;
use threadstorm::sessions::SessionToken;
use threadstorm::threads::UserId;

const REDIRECT: &str = "http://localhost:3000/oauth/callback";
const NOW: i64 = 1_800_000_000;

struct World {
    t: TestStack,
    emu: Emulator,
    oauth: OAuth,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
}

async fn world_with(configure: impl FnOnce(&mut EmulatorConfig)) -> World {
    let mut emu_config = EmulatorConfig {
        redirect_uris: vec![REDIRECT.to_owned()],
        ..EmulatorConfig::default()
    };
    configure(&mut emu_config);
    let mut options = StackOptions::local(LOCAL_BASE_URL);
    options
        .secret_values
        .insert("ThreadsAppSecret".into(), emu_config.app_secret.clone());
    let t = TestStack::with_options(options).await;
    let emu = Emulator::start(emu_config).await.expect("emulator starts");

    let mut env = t.env(&OAUTH);
    env.insert("THREADS_GRAPH_URL".into(), emu.base_url());
    env.insert("THREADS_AUTH_URL".into(), emu.authorize_url());
    env.insert("THREADS_APP_ID".into(), emu.config().app_id.clone());
    let config = Config::from_lookup(&OAUTH, |k| env.get(k).cloned()).expect("oauth config");
    let deps = Deps {
        function: &OAUTH,
        config,
        aws: t.aws.clone(),
    };
    let mut oauth = OAuth::from_deps(&deps).await.expect("oauth starts");
    let clock = Arc::new(ManualClock::at_unix(NOW));
    oauth.clock = clock.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    World {
        t,
        emu,
        oauth,
        clock,
        http,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

/// A request as API Gateway would hand it to the function.
fn request(method: &str, url: &str, cookies: &[String], accept_json: bool) -> Request {
    let parsed = url::Url::parse(url).unwrap();
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in parsed.query_pairs() {
        query
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(parsed.path());
    if !cookies.is_empty() {
        builder = builder.header(header::COOKIE, cookies.join("; "));
    }
    if accept_json {
        builder = builder.header(header::ACCEPT, "application/json");
    }
    builder
        .body(Body::Empty)
        .unwrap()
        .with_query_string_parameters(query)
}

fn set_cookies(res: &Response<Body>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .filter(|pair| !pair.ends_with('='))
        .collect()
}

/// The session cookie the callback set (`name=value`) and its token.
fn session_cookie(res: &Response<Body>) -> (String, String) {
    let cookie = set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with("__Host-threadstorm_session="))
        .expect("a session cookie");
    let token = cookie
        .split_once('=')
        .map(|(_, t)| t.to_owned())
        .unwrap_or_default();
    (cookie, token)
}

fn location(headers: &HeaderMap) -> String {
    headers[header::LOCATION].to_str().unwrap().to_owned()
}

fn json(res: &Response<Body>) -> serde_json::Value {
    match res.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

/// `/oauth/start` then the authorization window: the callback URL and the browser's cookies.
async fn authorize(w: &World, start_query: &str, user: Option<&str>) -> (String, Vec<String>) {
    let start = w
        .oauth
        .handle(request(
            "GET",
            &format!("{LOCAL_BASE_URL}/oauth/start{start_query}"),
            &[],
            false,
        ))
        .await;
    assert_eq!(start.status(), 302, "{:?}", start.body());
    let cookies = set_cookies(&start);
    let mut window = url::Url::parse(&location(start.headers())).unwrap();
    if let Some(user) = user {
        window.query_pairs_mut().append_pair("test_user", user);
    }
    let answer = w.http.get(window).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let callback = answer.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    (callback, cookies)
}

async fn audit_actions(t: &TestStack) -> Vec<String> {
    let scan = t
        .aws
        .dynamodb
        .scan()
        .table_name(t.name(Resource::AuditTable))
        .send()
        .await
        .unwrap();
    scan.items()
        .iter()
        .filter_map(|i| i.get("action").and_then(|a| a.as_s().ok()).cloned())
        .collect()
}

#[tokio::test]
async fn connecting_stores_a_sealed_token_and_gives_a_working_session() {
    let w = world().await;
    let (callback, cookies) = authorize(&w, "?return_to=/app", None).await;
    assert!(
        callback.starts_with(REDIRECT) && callback.ends_with("#_"),
        "{callback}"
    );

    let res = w
        .oauth
        .handle(request("GET", &callback, &cookies, false))
        .await;
    assert_eq!(res.status(), 302, "{:?}", res.body());
    assert_eq!(location(res.headers()), format!("{LOCAL_BASE_URL}/app"));
    let (_, token) = session_cookie(&res);
    let session = w
        .oauth
        .sessions
        .verify(&SessionToken::new(token))
        .await
        .expect("the session works");

    let account_id = UserId::parse(&w.emu.config().users[0].id).unwrap();
    let accounts = AccountStore::new(w.t.aws.dynamodb.clone(), w.t.name(Resource::AccountsTable));
    let account = accounts
        .get(&account_id)
        .await
        .unwrap()
        .expect("account stored");
    assert_eq!(account.status, AccountStatus::Connected);
    assert_eq!(account.owner_user_id, session.user_id.as_str());
    assert!(
        account.token_expires_at > NOW + 59 * 24 * 3600,
        "expiry from expires_in"
    );

    // Only the sealed token is stored: no table holds the token itself.
    let calls = w.emu.calls();
    assert_eq!((calls.code_exchange, calls.token_exchange), (1, 1));
    for table in [
        Resource::AccountsTable,
        Resource::UsersTable,
        Resource::SessionsTable,
        Resource::AuditTable,
    ] {
        let dump = format!(
            "{:?}",
            w.t.aws
                .dynamodb
                .scan()
                .table_name(w.t.name(table))
                .send()
                .await
                .unwrap()
                .items()
        );
        assert!(!dump.contains("\"TH"), "{table:?} holds a plain token");
    }
    assert!(audit_actions(&w.t).await.contains(&"login".to_owned()));
}

#[tokio::test]
async fn api_clients_get_the_session_as_json_usable_as_bearer() {
    let w = world().await;
    let (callback, cookies) = authorize(&w, "", None).await;
    let res = w
        .oauth
        .handle(request("GET", &callback, &cookies, true))
        .await;
    assert_eq!(res.status(), 200);
    let body = json(&res);
    assert_eq!(body["token_type"], "Bearer");
    let token = body["session_token"].as_str().unwrap();
    assert!(
        w.oauth
            .sessions
            .verify(&SessionToken::new(token))
            .await
            .is_ok()
    );

    let mut logout = request("POST", &format!("{LOCAL_BASE_URL}/oauth/logout"), &[], true);
    logout.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    assert_eq!(w.oauth.handle(logout).await.status(), 200);
    assert!(
        w.oauth
            .sessions
            .verify(&SessionToken::new(token))
            .await
            .is_err(),
        "logout revokes"
    );
}

/// Case O2: after the first callback, each of these is refused with invalid_state, makes zero
/// calls to the token endpoint and leaves an audit record.
#[tokio::test]
async fn case_o2_replayed_foreign_missing_or_late_states_are_refused_without_calling_threads() {
    let w = world().await;
    let (callback, cookies) = authorize(&w, "", None).await;
    assert_eq!(
        w.oauth
            .handle(request("GET", &callback, &cookies, true))
            .await
            .status(),
        200
    );
    let exchanges = w.emu.calls().code_exchange;
    assert_eq!(exchanges, 1);

    // The identical callback again.
    let replay = w
        .oauth
        .handle(request("GET", &callback, &cookies, true))
        .await;
    assert_eq!(replay.status(), 400);
    assert_eq!(json(&replay)["code"], "invalid_state");

    // The same (fresh) state from browser B.
    let (callback_b, _cookies_a) = authorize(&w, "", None).await;
    let foreign = w
        .oauth
        .handle(request(
            "GET",
            &callback_b,
            &["__Host-ts_oauth=browser-b".to_owned()],
            true,
        ))
        .await;
    assert_eq!(json(&foreign)["code"], "invalid_state");

    // No state at all.
    let (callback_c, cookies_c) = authorize(&w, "", None).await;
    let stateless: String = {
        let mut url = url::Url::parse(&callback_c).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "state")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    };
    assert_eq!(
        json(
            &w.oauth
                .handle(request("GET", &stateless, &cookies_c, true))
                .await
        )["code"],
        "invalid_state"
    );

    // Eleven minutes after the state was issued.
    let (callback_d, cookies_d) = authorize(&w, "", None).await;
    w.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(
        json(
            &w.oauth
                .handle(request("GET", &callback_d, &cookies_d, true))
                .await
        )["code"],
        "invalid_state"
    );

    assert_eq!(
        w.emu.calls().code_exchange,
        exchanges,
        "no refused callback reached the token endpoint"
    );
    let refused = audit_actions(&w.t)
        .await
        .iter()
        .filter(|a| *a == "oauth.invalid_state")
        .count();
    assert_eq!(refused, 4);
}

#[tokio::test]
async fn a_denied_authorization_stores_nothing() {
    let w = world().await;
    let start = w
        .oauth
        .handle(request(
            "GET",
            &format!("{LOCAL_BASE_URL}/oauth/start"),
            &[],
            false,
        ))
        .await;
    let cookies = set_cookies(&start);
    let mut window = url::Url::parse(&location(start.headers())).unwrap();
    window.query_pairs_mut().append_pair("emulator_deny", "1");
    let answer = w.http.get(window).send().await.unwrap();
    let callback = answer.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(callback.contains("error=access_denied"), "{callback}");

    let res = w
        .oauth
        .handle(request("GET", &callback, &cookies, false))
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let Body::Text(page) = res.body() else {
        panic!()
    };
    assert!(page.contains("ThreadStorm is not affiliated with Meta Platforms, Inc."));
    let users =
        w.t.aws
            .dynamodb
            .scan()
            .table_name(w.t.name(Resource::UsersTable))
            .send()
            .await
            .unwrap();
    assert_eq!(users.count(), 0);
    assert_eq!(w.emu.calls().code_exchange, 0);
}

#[tokio::test]
async fn a_failed_long_lived_exchange_stores_nothing() {
    let w = world().await;
    let (callback, cookies) = authorize(&w, "", None).await;
    // The code exchange goes through; the long-lived exchange fails.
    w.emu.inject(FaultPlan::sequence(
        Endpoint::Token,
        vec![None, Some(Fault::Transient)],
    ));
    let res = w
        .oauth
        .handle(request("GET", &callback, &cookies, true))
        .await;
    assert_eq!(res.status(), 503, "{:?}", res.body());
    for table in [Resource::UsersTable, Resource::AccountsTable] {
        let scan =
            w.t.aws
                .dynamodb
                .scan()
                .table_name(w.t.name(table))
                .send()
                .await
                .unwrap();
        assert_eq!(scan.count(), 0, "{table:?}");
    }
    let sessions =
        w.t.aws
            .dynamodb
            .scan()
            .table_name(w.t.name(Resource::SessionsTable))
            .send()
            .await
            .unwrap();
    assert_eq!(sessions.count(), 0, "no session, and the state is consumed");
}

#[tokio::test]
async fn pkce_verifier_goes_with_the_code_and_a_code_from_another_flow_is_refused() {
    let w = world_with(|c| c.enforce_pkce = true).await;
    let (callback_a, _cookies_a) = authorize(&w, "", None).await;
    let (callback_b, cookies_b) = authorize(&w, "", None).await;
    // Flow B's state with flow A's code: the verifier of B does not match A's challenge.
    let code_a = url::Url::parse(&callback_a)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut mixed = url::Url::parse(&callback_b).unwrap();
    let state_b = mixed
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    mixed
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code_a)
        .append_pair("state", &state_b);
    let res = w
        .oauth
        .handle(request("GET", mixed.as_str(), &cookies_b, true))
        .await;
    assert_eq!(json(&res)["code"], "authorization_failed");
    let accounts =
        w.t.aws
            .dynamodb
            .scan()
            .table_name(w.t.name(Resource::AccountsTable))
            .send()
            .await
            .unwrap();
    assert_eq!(accounts.count(), 0);

    // The honest flow passes with PKCE enforced.
    let (callback, cookies) = authorize(&w, "", None).await;
    assert_eq!(
        w.oauth
            .handle(request("GET", &callback, &cookies, true))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn return_to_elsewhere_is_refused_at_start() {
    let w = world().await;
    for bad in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/admin",
    ] {
        let url = format!("{LOCAL_BASE_URL}/oauth/start?return_to={}", urlencode(bad));
        let res = w.oauth.handle(request("GET", &url, &[], true)).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(json(&res)["field"], "return_to");
    }
    assert_eq!(w.emu.calls().authorize, 0);
}

/// Which of two values would count is refused outright, before any state is consumed or any
/// Threads call is made.
#[tokio::test]
async fn a_repeated_query_parameter_is_refused_and_consumes_nothing() {
    let w = world().await;
    let url = format!("{LOCAL_BASE_URL}/oauth/start?return_to=/app&return_to=/settings");
    let res = w.oauth.handle(request("GET", &url, &[], true)).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        (json(&res)["code"].as_str(), json(&res)["field"].as_str()),
        (Some("repeated_parameter"), Some("return_to"))
    );
    assert_eq!(w.emu.calls().authorize, 0);

    let (callback, cookies) = authorize(&w, "", None).await;
    let mut doubled = url::Url::parse(&callback).unwrap();
    doubled.query_pairs_mut().append_pair("state", "another");
    let res = w
        .oauth
        .handle(request("GET", doubled.as_str(), &cookies, true))
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(&res)["code"], "repeated_parameter");
    assert_eq!(w.emu.calls().code_exchange, 0, "no Threads call");

    let res = w
        .oauth
        .handle(request("GET", &callback, &cookies, true))
        .await;
    assert_eq!(res.status(), 200, "the state was not consumed");
}

/// Another site's page cannot sign a user out through their cookie; ThreadStorm's own page can.
#[tokio::test]
async fn a_cookie_logout_from_another_site_is_refused() {
    let w = world().await;
    let (callback, cookies) = authorize(&w, "", None).await;
    let res = w
        .oauth
        .handle(request("GET", &callback, &cookies, false))
        .await;
    let (session_cookie, token) = session_cookie(&res);
    let token = SessionToken::new(token);
    let logout = |origin: &str| {
        let mut req = request(
            "POST",
            &format!("{LOCAL_BASE_URL}/oauth/logout"),
            std::slice::from_ref(&session_cookie),
            true,
        );
        req.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        req
    };
    let res = w.oauth.handle(logout("https://evil.example")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(&res)["code"], "cross_site_request");
    assert!(
        w.oauth.sessions.verify(&token).await.is_ok(),
        "still signed in"
    );

    let res = w.oauth.handle(logout(LOCAL_BASE_URL)).await;
    assert_eq!(res.status(), 200);
    assert!(w.oauth.sessions.verify(&token).await.is_err(), "signed out");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_refused_by_the_window() {
    let w = world_with(|c| c.redirect_uris = vec!["http://localhost:3000/other".to_owned()]).await;
    let start = w
        .oauth
        .handle(request(
            "GET",
            &format!("{LOCAL_BASE_URL}/oauth/start"),
            &[],
            false,
        ))
        .await;
    let answer = w.http.get(location(start.headers())).send().await.unwrap();
    assert_ne!(
        answer.status(),
        302,
        "the window does not redirect to an unregistered URI"
    );
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error_code"], 1349168);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_clean_4xx_with_security_headers() {
    let w = world().await;
    for (method, path, status) in [
        ("GET", "/oauth/nope", 404),
        ("DELETE", "/oauth/start", 405),
        ("GET", "/oauth/logout", 405),
    ] {
        let res = w
            .oauth
            .handle(request(
                method,
                &format!("{LOCAL_BASE_URL}{path}"),
                &[],
                true,
            ))
            .await;
        assert_eq!(res.status(), status, "{method} {path}");
        assert!(res.headers().contains_key("strict-transport-security"));
    }
    let res = w
        .oauth
        .handle(request(
            "POST",
            &format!("{LOCAL_BASE_URL}/oauth/logout"),
            &[],
            true,
        ))
        .await;
    assert_eq!(res.status(), 401);
    // A forged or garbage session is the caller's mistake (401), not an outage (503).
    let forged = format!("{}.{}", "A".repeat(43), "B".repeat(43));
    for token in ["abc.def", "garbage", forged.as_str()] {
        let mut logout = request("POST", &format!("{LOCAL_BASE_URL}/oauth/logout"), &[], true);
        logout.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert_eq!(w.oauth.handle(logout).await.status(), 401, "{token}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
