//! Token lifetimes, exchange, refresh, revocation and debug_token, on the emulator clock.

mod common;

use std::time::Duration;

use common::{Harness, USER};
use threads_emulator::EmulatorConfig;

const DAY: u64 = 86_400;

async fn exchange(h: &Harness, short: &str) -> common::Answer {
    h.get(
        "/access_token",
        &[
            ("grant_type", "th_exchange_token"),
            ("client_secret", "test_app_secret"),
            ("access_token", short),
        ],
    )
    .await
}

async fn refresh(h: &Harness, long: &str) -> common::Answer {
    h.get(
        "/refresh_access_token",
        &[("grant_type", "th_refresh_token"), ("access_token", long)],
    )
    .await
}

async fn me(h: &Harness, token: &str) -> common::Answer {
    h.get("/v1.0/me", &[("access_token", token)]).await
}

#[tokio::test]
async fn a_short_lived_token_becomes_a_sixty_day_token() {
    let h = Harness::new().await;
    let short = h.emu.issue_short_lived_token(USER);
    let a = exchange(&h, &short).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let json = a.json();
    assert!(json["access_token"].as_str().unwrap().starts_with("TH"));
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["expires_in"], 5_184_000);
    assert!(a.body.starts_with(r#"{"access_token":"TH"#));
    assert!(
        a.body
            .ends_with(r#","token_type":"bearer","expires_in":5184000}"#)
    );
    // The wrong secret and a long-lived input are refused.
    let a = h
        .get(
            "/access_token",
            &[
                ("grant_type", "th_exchange_token"),
                ("client_secret", "nope"),
                ("access_token", &short),
            ],
        )
        .await;
    assert_eq!(
        a.json()["error"]["message"],
        "Error validating client secret."
    );
    assert_eq!(exchange(&h, &h.token).await.code(), Some(100));
    assert_eq!(h.emu.calls().token_exchange, 3);
}

#[tokio::test]
async fn a_short_lived_token_dies_after_an_hour() {
    let h = Harness::new().await;
    let short = h.emu.issue_short_lived_token(USER);
    assert_eq!(me(&h, &short).await.status, 200);
    h.emu.clock().advance(Duration::from_secs(3_600));
    let a = me(&h, &short).await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(463)));
    assert_eq!(exchange(&h, &short).await.code(), Some(190));
}

#[tokio::test]
async fn refresh_is_refused_before_24_hours_and_allowed_after() {
    let h = Harness::new().await;
    h.emu.clock().advance(Duration::from_secs(DAY - 60));
    let early = refresh(&h, &h.token).await;
    assert_eq!(early.status, 400);
    assert_eq!(early.code(), Some(100));
    h.emu.clock().advance(Duration::from_secs(120));
    let a = refresh(&h, &h.token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["expires_in"], 5_184_000);
    let fresh = a.json()["access_token"].as_str().unwrap().to_string();
    assert_ne!(fresh, h.token);
    // Meta keeps the old token working until its own expiry.
    assert_eq!(me(&h, &h.token).await.status, 200);
    // The new token lives 60 days from the refresh, past the old one's end.
    h.emu.clock().advance(Duration::from_secs(59 * DAY));
    assert_eq!(me(&h, &h.token).await.code(), Some(190));
    assert_eq!(me(&h, &fresh).await.status, 200);
    assert_eq!(h.emu.calls().refresh, 2);
}

#[tokio::test]
async fn an_expired_token_cannot_be_refreshed() {
    let h = Harness::new().await;
    h.emu.clock().advance(Duration::from_secs(60 * DAY));
    let a = refresh(&h, &h.token).await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(463)));
    assert_eq!(a.json()["error"]["type"], "OAuthException");
}

#[tokio::test]
async fn refresh_can_be_set_to_invalidate_the_old_token() {
    let h = Harness::with(EmulatorConfig {
        refresh_revokes_old_token: true,
        ..EmulatorConfig::default()
    })
    .await;
    h.emu.clock().advance(Duration::from_secs(DAY));
    assert_eq!(refresh(&h, &h.token).await.status, 200);
    let a = me(&h, &h.token).await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(460)));
}

#[tokio::test]
async fn a_revoked_or_unknown_token_gets_190() {
    let h = Harness::new().await;
    h.emu.revoke_token(&h.token);
    let a = me(&h, &h.token).await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(460)));
    let a = me(&h, "THnot-a-token").await;
    assert_eq!(a.code(), Some(190));
    // Revocation over HTTP too.
    let other = h.emu.issue_long_lived_token(USER);
    let r = h
        .post_json(
            "/_emulator/tokens/revoke",
            &serde_json::json!({"access_token": other}),
        )
        .await;
    assert_eq!(r.json()["revoked"], true);
    assert_eq!(me(&h, &other).await.code(), Some(190));
}

#[tokio::test]
async fn tokens_work_as_bearer_headers_and_their_absence_is_code_104() {
    let h = Harness::new().await;
    let a = h
        .http
        .get(h.url("/v1.0/me?fields=id,username"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    assert_eq!(
        a.text().await.unwrap(),
        format!(r#"{{"id":"{USER}","username":"storm_tester"}}"#)
    );
    assert_eq!(h.get("/v1.0/me", &[]).await.code(), Some(104));
}

#[tokio::test]
async fn debug_token_reports_validity_scopes_and_times() {
    let h = Harness::new().await;
    h.emu.clock().set(1_700_000_000);
    let token = h.emu.issue_token_with_scopes(USER, &["threads_basic"]);
    let a = h
        .get(
            "/debug_token",
            &[
                ("input_token", &token),
                ("access_token", "1234567890|test_app_secret"),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let issued: i64 = a.json()["data"]["issued_at"].as_i64().unwrap();
    assert!((1_700_000_000..1_700_000_005).contains(&issued));
    let data = &a.json()["data"];
    assert_eq!(data["type"], "USER");
    assert_eq!(data["is_valid"], true);
    assert_eq!(data["scopes"], serde_json::json!(["threads_basic"]));
    assert_eq!(data["user_id"], USER);
    assert_eq!(data["expires_at"].as_i64().unwrap() - issued, 5_184_000);
    h.emu.revoke_token(&token);
    let a = h
        .get(
            "/debug_token",
            &[("input_token", &token), ("access_token", &h.token)],
        )
        .await;
    assert_eq!(a.json()["data"]["is_valid"], false);
    assert_eq!(a.json()["data"]["error"]["subcode"], 460);
}
