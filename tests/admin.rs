//! Administration reaching the pipeline: the kill switch set through the API makes the gate
//! defer (never drop) until resumed, and an account revoked through the API is refused at publish
//! time — `forbidden`, audited, no Threads call — even for work submitted before the revocation.

use lambda_http::Body;
use serde_json::{Value, json};
use threadstorm::api::Api;
use threadstorm::config::Config;
use threadstorm::pipeline::gate::PAUSE_RECHECK_SECS;
use threadstorm::pipeline::results::AuditAndMetrics;
use threadstorm::pipeline::scheduler;
use threadstorm::posts::{Status, StatusName};
use threadstorm::resources::{API, Resource};
use threadstorm::runtime::Deps;
use threadstorm::store::s;
use threadstorm::threads::UserId as ThreadsUserId;
use threadstorm::users::Role;
use threadstorm_tests::support::gateway::event;
use threadstorm_tests::support::world::{Consumer, OWNER, World, now};

/// The api function over the pipeline's stack, and a super_admin's bearer token.
async fn admin_api(w: &World) -> (Api, String) {
    let env = w.stack.env(&API);
    let config = Config::from_lookup(&API, |k| env.get(k).cloned()).expect("config");
    let deps = Deps {
        function: &API,
        config,
        aws: w.stack.aws.clone(),
    };
    let api = Api::from_deps(&deps).await.expect("api starts");
    let login = api
        .users
        .upsert_on_login(&ThreadsUserId::parse("17841400000000999").unwrap())
        .await
        .unwrap();
    assert!(
        api.users
            .set_role(&login.user.user_id, Role::SuperAdmin)
            .await
            .unwrap()
    );
    let token = api.sessions.issue(&login.user.user_id).await.unwrap();
    let bearer = format!("Bearer {}", token.token.expose());
    (api, bearer)
}

async fn post(api: &Api, bearer: &str, path: &str, body: Value) -> (u16, Value) {
    let body = body.to_string();
    let res = api
        .handle(event(
            "POST",
            path,
            &[],
            &[
                ("Authorization", bearer),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
            false,
        ))
        .await;
    let status = res.status().as_u16();
    let json = match res.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

#[tokio::test]
async fn a_pause_through_the_api_defers_everything_until_resumed() {
    let w = World::new().await;
    let (api, admin) = admin_api(&w).await;
    let (status, body) = post(
        &api,
        &admin,
        "/v1/admin/pause",
        json!({"reason": "incident"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let t = now();
    let storm = w.submit(&["held back", "and its reply"], t).await;
    w.drain(t).await;
    assert_eq!(
        w.storm(&storm.id).await.status,
        Status::Deferred {
            not_before: t + PAUSE_RECHECK_SECS
        },
        "deferred, not dropped"
    );
    assert_eq!(w.emu.calls().api_total(), 0, "no Threads call while paused");

    let (status, _) = post(&api, &admin, "/v1/admin/resume", json!({})).await;
    assert_eq!(status, 200);
    scheduler::sweep(&w.scheduler, t + PAUSE_RECHECK_SECS)
        .await
        .unwrap();
    w.drain(t + PAUSE_RECHECK_SECS).await;
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
    assert_eq!(w.emu.published().len(), 2);
}

#[tokio::test]
async fn an_account_revoked_after_scheduling_is_refused_at_publish_time_and_audited() {
    let mut w = World::new().await;
    w.results.hooks = std::sync::Arc::new(AuditAndMetrics {
        audit: threadstorm::audit::Audit::dynamodb(
            w.aws.dynamodb.clone(),
            w.stack.name(Resource::AuditTable),
            &threadstorm::config::LogSwitches {
                audit: true,
                rate_limit: true,
                access: true,
                deletion: true,
            },
        ),
    });
    let (api, admin) = admin_api(&w).await;
    let t = now();
    let storm = w.submit(&["submitted before the revocation"], t).await;
    w.pass(Consumer::Dedupe, t).await;
    w.pass(Consumer::Gate, t).await;

    let path = format!("/v1/admin/accounts/{}/revoke", w.account);
    // A body it cannot take refuses the revocation (nothing is done): its only field is a reason.
    for bad in [
        json!([]),
        json!("now"),
        json!({"colour": "red"}),
        json!({"reason": "a\u{0}b"}),
    ] {
        let (status, body) = post(&api, &admin, &path, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = post(&api, &admin, &path, json!({"reason": "laptop stolen"})).await;
    assert_eq!(status, 200, "{body}");
    w.drain(t).await;

    let stored = w.storm(&storm.id).await;
    match &stored.status {
        Status::Failed(reason) => assert_eq!(reason.code, "forbidden", "{reason:?}"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    assert_eq!(w.emu.calls().api_total(), 0, "zero Threads calls");

    let records = w
        .stack
        .aws
        .dynamodb
        .scan()
        .table_name(w.stack.name(Resource::AuditTable))
        .send()
        .await
        .unwrap();
    let has = |pk: &str, action: &str, outcome: &str| {
        records.items().iter().any(|i| {
            i.get("pk") == Some(&s(pk))
                && i.get("action") == Some(&s(action))
                && i.get("outcome") == Some(&s(outcome))
        })
    };
    assert!(
        has(&format!("user#{OWNER}"), "storm.publish", "denied"),
        "the refusal is audited"
    );
    assert!(
        records
            .items()
            .iter()
            .any(|i| i.get("action") == Some(&s("account.revoke"))
                && i.get("category") == Some(&s("security"))
                && i.get("metadata")
                    .is_some_and(|m| format!("{m:?}").contains("laptop stolen"))),
        "the revocation is a security record with its reason"
    );
    assert_eq!(
        records
            .items()
            .iter()
            .filter(|i| i.get("action") == Some(&s("account.revoke")))
            .count(),
        1,
        "the refused attempts revoked nothing"
    );
    let report = api.audit_sink.verify(None).await.unwrap();
    assert!(report.intact(), "{report:?}");
}
