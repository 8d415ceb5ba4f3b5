//! The authorization window and the code exchange, over HTTP.

mod common;

use std::time::Duration;

use common::{BIG_USER, Harness, REDIRECT, USER};
use threads_emulator::EmulatorConfig;

const SCOPE: &str = "threads_basic,threads_content_publish";

fn window_query<'a>(redirect: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut q = vec![
        ("client_id", "1234567890"),
        ("redirect_uri", redirect),
        ("scope", SCOPE),
        ("response_type", "code"),
        ("state", "st-123"),
    ];
    q.extend_from_slice(extra);
    q
}

/// Runs the window and returns the code from the redirect.
async fn code_for(h: &Harness, extra: &[(&str, &str)]) -> String {
    let a = h
        .get("/oauth/authorize", &window_query(REDIRECT, extra))
        .await;
    assert_eq!(a.status, 302, "{}", a.body);
    let location = a.location.expect("redirect");
    let query = location
        .strip_prefix(&format!("{REDIRECT}?"))
        .and_then(|q| q.strip_suffix("#_"))
        .unwrap_or_else(|| panic!("unexpected redirect {location}"));
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}

fn exchange_form(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", "1234567890"),
        ("client_secret", "test_app_secret"),
        ("code", code),
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
    ]
}

#[tokio::test]
async fn window_redirects_with_code_state_and_hash_underscore() {
    let h = Harness::new().await;
    let a = h
        .get("/oauth/authorize", &window_query(REDIRECT, &[]))
        .await;
    assert_eq!(a.status, 302);
    let location = a.location.unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=AQB")),
        "{location}"
    );
    assert!(location.ends_with("&state=st-123#_"), "{location}");
    assert_eq!(h.emu.calls().authorize, 1);
}

#[tokio::test]
async fn code_exchange_writes_a_user_id_above_2_pow_53_exactly() {
    let h = Harness::with(EmulatorConfig {
        default_user: Some(BIG_USER.to_string()),
        ..EmulatorConfig::default()
    })
    .await;
    let code = code_for(&h, &[]).await;
    let a = h
        .post_form("/oauth/access_token", &exchange_form(&code))
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body.starts_with(r#"{"access_token":"TH"#), "{}", a.body);
    assert!(
        a.body.ends_with(r#","user_id":90071992547409931}"#),
        "{}",
        a.body
    );
    // Every digit is kept: as a float the id would read 90071992547409932.
    // The token works for that user.
    let token = a.json()["access_token"].as_str().unwrap().to_string();
    let me = h
        .get("/v1.0/me", &[("access_token", &token), ("fields", "id")])
        .await;
    assert_eq!(me.body, r#"{"id":"90071992547409931"}"#);
}

#[tokio::test]
async fn user_id_is_a_string_when_configured_and_test_user_picks_the_account() {
    let h = Harness::with(EmulatorConfig {
        user_id_as_string: true,
        ..EmulatorConfig::default()
    })
    .await;
    let code = code_for(&h, &[("test_user", BIG_USER)]).await;
    let a = h
        .post_form("/oauth/access_token", &exchange_form(&code))
        .await;
    assert!(
        a.body.ends_with(r#","user_id":"90071992547409931"}"#),
        "{}",
        a.body
    );
    let code = code_for(&h, &[]).await;
    let a = h
        .post_form("/oauth/access_token", &exchange_form(&code))
        .await;
    assert!(
        a.body.ends_with(&format!(r#","user_id":"{USER}"}}"#)),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_code_is_single_use() {
    let h = Harness::new().await;
    let code = code_for(&h, &[]).await;
    assert_eq!(
        h.post_form("/oauth/access_token", &exchange_form(&code))
            .await
            .status,
        200
    );
    let again = h
        .post_form("/oauth/access_token", &exchange_form(&code))
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.body,
        r#"{"error_type":"OAuthException","code":400,"error_message":"Matching code was not found or was already used"}"#
    );
    assert_eq!(h.emu.calls().code_exchange, 2);
}

#[tokio::test]
async fn a_code_exchanged_by_get_works_too() {
    let h = Harness::new().await;
    let code = code_for(&h, &[]).await;
    let a = h.get("/oauth/access_token", &exchange_form(&code)).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn a_code_expires_after_one_hour() {
    let h = Harness::new().await;
    let code = code_for(&h, &[]).await;
    h.emu.clock().advance(Duration::from_secs(3_600));
    let a = h
        .post_form("/oauth/access_token", &exchange_form(&code))
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error_type"], "OAuthException");
}

#[tokio::test]
async fn exchange_needs_the_window_redirect_uri_and_the_app_secret() {
    let h = Harness::new().await;
    let code = code_for(&h, &[]).await;
    let mut form = exchange_form(&code);
    form[4].1 = "https://localhost:3000/oauth/callback/";
    let a = h.post_form("/oauth/access_token", &form).await;
    assert_eq!(a.status, 400);
    assert!(
        a.json()["error_message"]
            .as_str()
            .unwrap()
            .contains("redirect_uri")
    );
    let mut form = exchange_form(&code);
    form[1].1 = "wrong";
    let a = h.post_form("/oauth/access_token", &form).await;
    assert_eq!(a.json()["error_message"], "Error validating client secret.");
    // Neither failure used the code up.
    assert_eq!(
        h.post_form("/oauth/access_token", &exchange_form(&code))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn redirect_uris_match_exactly_and_must_be_https() {
    let h = Harness::new().await;
    let a = h
        .get(
            "/oauth/authorize",
            &window_query("https://localhost:3000/oauth/callback/", &[]),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body.starts_with(r#"{"error_message":"URL Blocked"#),
        "{}",
        a.body
    );
    assert!(a.body.ends_with(r#","error_code":1349168}"#), "{}", a.body);
    let a = h
        .get(
            "/oauth/authorize",
            &window_query("http://example.com/oauth/callback", &[]),
        )
        .await;
    assert_eq!(a.json()["error_code"], 1349187);
    // Loopback http is allowed when registered (the local-stack allowance) ...
    let local = "http://127.0.0.1:9000/oauth/callback";
    let config = EmulatorConfig {
        redirect_uris: vec![local.to_string()],
        ..EmulatorConfig::default()
    };
    let h = Harness::with(config.clone()).await;
    assert_eq!(
        h.get("/oauth/authorize", &window_query(local, &[]))
            .await
            .status,
        302
    );
    // ... and refused like any http URI without the allowance.
    let h = Harness::with(EmulatorConfig {
        allow_http_loopback_redirects: false,
        ..config
    })
    .await;
    let a = h.get("/oauth/authorize", &window_query(local, &[])).await;
    assert_eq!(a.json()["error_code"], 1349187);
}

#[tokio::test]
async fn window_checks_app_scope_and_response_type() {
    let h = Harness::new().await;
    let mut q = window_query(REDIRECT, &[]);
    q[0].1 = "999";
    let a = h.get("/oauth/authorize", &q).await;
    assert_eq!(a.json()["error_code"], 4476002);
    let mut q = window_query(REDIRECT, &[]);
    q[2].1 = "threads_content_publish";
    assert_eq!(h.get("/oauth/authorize", &q).await.status, 400);
    let mut q = window_query(REDIRECT, &[]);
    q[2].1 = "threads_basic threads_content_publish";
    assert_eq!(h.get("/oauth/authorize", &q).await.status, 302);
    let mut q = window_query(REDIRECT, &[]);
    q[3].1 = "token";
    assert_eq!(h.get("/oauth/authorize", &q).await.status, 400);
}

#[tokio::test]
async fn a_user_who_cancels_comes_back_with_access_denied() {
    let h = Harness::new().await;
    let expected = format!(
        "{REDIRECT}?error=access_denied&error_reason=user_denied&error_description=Permissions+error&state=st-123#_"
    );
    let a = h
        .get(
            "/oauth/authorize",
            &window_query(REDIRECT, &[("emulator_deny", "1")]),
        )
        .await;
    assert_eq!(a.status, 302);
    assert_eq!(a.location.as_deref(), Some(expected.as_str()));
    let a = h
        .get(
            "/oauth/authorize",
            &window_query(REDIRECT, &[("test_user", "17841400000000042")]),
        )
        .await;
    assert_eq!(a.location.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn pkce_is_recorded_and_enforced_only_when_configured() {
    let verifier = "ts-verifier-0123456789abcdefghijklmnopqrstuvwxyzABCD";
    let challenge = [
        (
            "code_challenge",
            "w6Kgixo4GdOCtcS6zQP_jZ1mZ6C_aVV0H7comjW5Sas",
        ),
        ("code_challenge_method", "S256"),
    ];
    // Meta does not check PKCE: a missing verifier passes by default.
    let h = Harness::new().await;
    let code = code_for(&h, &challenge).await;
    assert_eq!(
        h.post_form("/oauth/access_token", &exchange_form(&code))
            .await
            .status,
        200
    );

    let h = Harness::with(EmulatorConfig {
        enforce_pkce: true,
        ..EmulatorConfig::default()
    })
    .await;
    let code = code_for(&h, &challenge).await;
    assert_eq!(
        h.post_form("/oauth/access_token", &exchange_form(&code))
            .await
            .status,
        400
    );
    let mut form = exchange_form(&code);
    form.push(("code_verifier", verifier));
    assert_eq!(h.post_form("/oauth/access_token", &form).await.status, 200);
}
