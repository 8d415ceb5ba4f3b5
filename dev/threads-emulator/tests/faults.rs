//! Each fault kind, injected in sequence or at a seeded rate, from the library and over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, USER};
use serde_json::json;
use threads_emulator::{EmulatorConfig, Endpoint, Fault, FaultPlan};

#[tokio::test]
async fn case_p2_not_ready_twice_then_the_same_container_publishes() {
    let h = Harness::new().await;
    h.emu
        .inject(FaultPlan::times(Endpoint::Publish, Fault::NotReady, 2));
    let container = h.create_text("part 1").await.id();
    assert_eq!(container, "17890000000000001");
    for _ in 0..2 {
        let a = h.publish(&container).await;
        assert_eq!(a.status, 400);
        assert_eq!((a.code(), a.subcode()), (Some(24), Some(4279009)));
        assert_eq!(a.json()["error"]["error_user_title"], "Media Not Found");
    }
    let media = h.publish(&container).await.id();
    let calls = h.emu.calls();
    assert_eq!((calls.create, calls.publish), (1, 3));
    assert_eq!(h.emu.published().len(), 1);
    assert_eq!(h.emu.published()[0].media_id, media);
}

#[tokio::test]
async fn code_10_on_a_publish_that_did_publish() {
    let h = Harness::new().await;
    h.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::FalseFailure));
    let container = h.create_text("false failure").await.id();
    let a = h.publish(&container).await;
    assert_eq!(a.status, 500);
    assert_eq!(a.code(), Some(10));
    assert_eq!(
        a.json()["error"]["message"],
        "Application does not have permission for this action"
    );
    // It was published: the record and the container status say so.
    let record = h.emu.published();
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].container_id, container);
    assert_eq!(h.status(&container).await.json()["status"], "PUBLISHED");
    // The media id can be recovered from the user's threads.
    let list = h
        .get_auth("/v1.0/me/threads", &[("fields", "id,text,timestamp")])
        .await
        .json();
    assert_eq!(list["data"][0]["id"], record[0].media_id.as_str());
    // A blind retry is refused and publishes nothing more.
    assert_eq!(h.publish(&container).await.code(), Some(100));
    assert_eq!(h.emu.published().len(), 1);
}

#[tokio::test]
async fn the_false_failure_waits_for_the_publish_that_goes_through() {
    let h = Harness::with(EmulatorConfig {
        readiness_delay: Duration::from_secs(10),
        ..EmulatorConfig::default()
    })
    .await;
    h.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::FalseFailure));
    let container = h.create_text("not ready yet").await.id();
    assert_eq!(h.publish(&container).await.subcode(), Some(4279009));
    h.emu.clock().advance(Duration::from_secs(10));
    let a = h.publish(&container).await;
    assert_eq!((a.status, a.code()), (500, Some(10)));
    assert_eq!(h.emu.published().len(), 1);
}

#[tokio::test]
async fn transient_throttle_and_token_faults_change_nothing() {
    let h = Harness::new().await;
    let container = h.create_text("x").await.id();
    h.emu.inject(FaultPlan::sequence(
        Endpoint::Publish,
        vec![
            Some(Fault::Transient),
            Some(Fault::Throttle),
            Some(Fault::UserThrottle),
            Some(Fault::TokenExpired),
            Some(Fault::TokenInvalidated),
        ],
    ));
    let a = h.publish(&container).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.code(), Some(2));
    assert_eq!(a.json()["error"]["is_transient"], true);
    let a = h.publish(&container).await;
    assert_eq!(
        (a.code(), a.json()["error"]["is_transient"].clone()),
        (Some(4), json!(true))
    );
    assert_eq!(h.publish(&container).await.code(), Some(17));
    let a = h.publish(&container).await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(463)));
    let a = h.publish(&container).await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(460)));
    assert!(h.emu.published().is_empty());
    assert_eq!(h.publish(&container).await.status, 200);
}

#[tokio::test]
async fn a_slow_answer_arrives_late_and_a_timeout_publishes_but_never_answers_in_time() {
    let h = Harness::with(EmulatorConfig {
        timeout_hang: Duration::from_secs(30),
        ..EmulatorConfig::default()
    })
    .await;
    h.emu
        .inject(FaultPlan::once(Endpoint::Status, Fault::Slow(300)));
    let container = h.create_text("slow").await.id();
    let started = Instant::now();
    assert_eq!(h.status(&container).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    h.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::Timeout));
    let outcome = h
        .http
        .post(h.url(&format!("/v1.0/{USER}/threads_publish")))
        .form(&[
            ("creation_id", container.as_str()),
            ("access_token", &h.token),
        ])
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(outcome.is_err_and(|e| e.is_timeout()));
    assert_eq!(h.emu.published().len(), 1);
    assert_eq!(h.status(&container).await.json()["status"], "PUBLISHED");
}

#[tokio::test]
async fn a_container_error_shows_in_its_status_and_blocks_publishing() {
    let h = Harness::new().await;
    h.emu.inject(FaultPlan::once(
        Endpoint::Create,
        Fault::ContainerError("FAILED_DOWNLOADING_VIDEO".into()),
    ));
    let container = h
        .create(&[
            ("media_type", "VIDEO"),
            ("video_url", "https://cdn.example/v.mp4"),
        ])
        .await
        .id();
    assert_eq!(
        h.status(&container).await.body,
        format!(
            r#"{{"id":"{container}","status":"ERROR","error_message":"FAILED_DOWNLOADING_VIDEO"}}"#
        )
    );
    assert_eq!(h.publish(&container).await.code(), Some(100));
    assert!(h.emu.published().is_empty());
    h.emu
        .inject(FaultPlan::once(Endpoint::Create, Fault::MediaFetchFailed));
    let a = h
        .create(&[
            ("media_type", "IMAGE"),
            ("image_url", "https://cdn.example/i.jpg"),
        ])
        .await;
    assert_eq!((a.code(), a.subcode()), (Some(1), Some(2207052)));
}

#[tokio::test]
async fn faults_injected_over_http_are_consumed_in_order() {
    let h = Harness::new().await;
    let plan = json!({"endpoint": "create", "sequence": ["transient", null, "throttle"]});
    let a = h.post_json("/_emulator/faults", &plan).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(h.create_text("1").await.code(), Some(2));
    assert_eq!(h.create_text("2").await.status, 200);
    assert_eq!(h.create_text("3").await.code(), Some(4));
    assert_eq!(h.create_text("4").await.status, 200);
    let pending = h.get("/_emulator/faults", &[]).await.json();
    assert_eq!(pending["pending"], json!([]));
    // `any` applies to every kind; clearing drops what is left.
    h.post_json(
        "/_emulator/faults",
        &json!([{"endpoint": "any", "sequence": ["transient", "transient"]}]),
    )
    .await;
    assert_eq!(h.get_auth("/v1.0/me", &[]).await.code(), Some(2));
    let cleared = h
        .http
        .delete(h.url("/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(h.get_auth("/v1.0/me", &[]).await.status, 200);
}

#[tokio::test]
async fn fault_rates_are_reproducible_from_the_seed() {
    let h = Harness::new().await;
    let run = || async {
        h.post_json("/_emulator/faults/seed", &json!({"seed": 7}))
            .await;
        h.post_json(
            "/_emulator/faults",
            &json!({"endpoint": "read", "rate": {"fault": "transient", "probability": 0.5}}),
        )
        .await;
        let mut outcomes = Vec::new();
        for _ in 0..30 {
            outcomes.push(h.get_auth("/v1.0/me", &[]).await.status);
        }
        h.http
            .delete(h.url("/_emulator/faults"))
            .send()
            .await
            .unwrap();
        outcomes
    };
    let first = run().await;
    let second = run().await;
    assert_eq!(first, second);
    let failures = first.iter().filter(|s| **s == 503).count();
    assert!((5..25).contains(&failures), "{failures} of 30");
}

#[tokio::test]
async fn token_endpoint_faults_use_the_exchange_error_shape() {
    let h = Harness::new().await;
    h.emu
        .inject(FaultPlan::once(Endpoint::Token, Fault::Transient));
    let a = h
        .post_form(
            "/oauth/access_token",
            &[("grant_type", "authorization_code")],
        )
        .await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["error_type"], "OAuthException");
    assert_eq!(h.emu.calls().token_total(), 1);
}
