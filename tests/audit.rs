//! The audit writer against moto's AuditTable: records land under the user's partition in time
//! order, are never overwritten, lose their secrets before they are written, and honour the audit
//! switch for everything but security records.

use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::testing::TestStack;
use serde_json::json;
use threadstorm::audit::{
    Audit, AuditError, AuditRecord, AuditSink, Category, DynamoAuditSink, Outcome, Recorded,
};
use threadstorm::config::LogSwitches;
use threadstorm::resources::Resource;
use time::OffsetDateTime;

const PLANTED: &str = "THplantedToken-0123456789";

fn switches(audit: bool) -> LogSwitches {
    LogSwitches {
        audit,
        rate_limit: true,
        access: true,
        deletion: true,
    }
}

async fn items(t: &TestStack, pk: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    t.aws
        .dynamodb
        .query()
        .table_name(t.name(Resource::AuditTable))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

#[tokio::test]
async fn records_are_stored_with_every_field_under_the_users_partition_in_time_order() {
    let t = TestStack::new().await;
    let audit = Audit::dynamodb(
        t.aws.dynamodb.clone(),
        t.name(Resource::AuditTable),
        &switches(true),
    );
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    for (i, action) in ["oauth.start", "oauth.callback", "session.issue"]
        .iter()
        .enumerate()
    {
        let written = audit
            .record(
                AuditRecord::new(Category::Authentication, *action, Outcome::Success)
                    .user("u-1")
                    .description("connected a Threads account")
                    .ip_address("203.0.113.9")
                    .user_agent("Mozilla/5.0")
                    .request_id(format!("req-{i}"))
                    .metadata(json!({"account_id": "1784", "step": i}))
                    .at(at + time::Duration::seconds(i as i64)),
            )
            .await
            .unwrap();
        assert!(matches!(written, Recorded::Written { .. }));
    }
    audit
        .record(AuditRecord::new(
            Category::System,
            "startup",
            Outcome::Success,
        ))
        .await
        .unwrap();

    let stored = items(&t, "user#u-1").await;
    let actions: Vec<&str> = stored
        .iter()
        .map(|i| i["action"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(actions, ["oauth.start", "oauth.callback", "session.issue"]);
    let first = &stored[0];
    for (field, value) in [
        ("category", "authentication"),
        ("outcome", "success"),
        ("user_id", "u-1"),
        ("ip_address", "203.0.113.9"),
        ("user_agent", "Mozilla/5.0"),
        ("request_id", "req-0"),
        ("description", "connected a Threads account"),
        ("timestamp", "2027-01-15T08:00:00Z"),
    ] {
        assert_eq!(first[field].as_s().unwrap(), value, "{field}");
    }
    assert_eq!(first["timestamp_ms"].as_n().unwrap(), "1800000000000");
    assert!(first["sk"].as_s().unwrap().starts_with("1800000000000#"));
    assert_eq!(items(&t, "system").await.len(), 1);
}

#[tokio::test]
async fn a_record_is_never_overwritten() {
    let t = TestStack::new().await;
    let sink = DynamoAuditSink::new(t.aws.dynamodb.clone(), t.name(Resource::AuditTable));
    let original = AuditRecord::new(Category::Security, "token.revoke", Outcome::Success)
        .user("u-2")
        .description("original");
    sink.append(&original).await.unwrap();

    // Same key (same id and timestamp), different content: refused, the original stays.
    let forged = original
        .clone()
        .description("rewritten")
        .metadata(json!({"x": 1}));
    let err = sink.append(&forged).await.unwrap_err();
    assert!(matches!(err, AuditError::Exists { .. }), "{err}");
    let stored = items(&t, "user#u-2").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["description"].as_s().unwrap(), "original");
}

#[tokio::test]
async fn secrets_are_redacted_before_they_reach_the_table() {
    let t = TestStack::new().await;
    let audit = Audit::dynamodb(
        t.aws.dynamodb.clone(),
        t.name(Resource::AuditTable),
        &switches(true),
    );
    audit
        .record(
            AuditRecord::new(Category::Authentication, "oauth.callback", Outcome::Failure)
                .user("u-3")
                .description(format!("exchange failed for https://graph.threads.net/oauth/access_token?code={PLANTED}&client_id=1"))
                .metadata(json!({
                    "access_token": PLANTED,
                    "request": {"headers": {"Authorization": format!("Bearer {PLANTED}"), "Cookie": format!("__Host-threadstorm_session={PLANTED}")}},
                    "redirect": format!("https://app.example/cb?state=s1&code={PLANTED}"),
                    "attempts": [{"client_secret": PLANTED, "status": 400}],
                })),
        )
        .await
        .unwrap();
    let stored = items(&t, "user#u-3").await;
    let text = format!("{stored:?}");
    assert!(!text.contains(PLANTED), "{text}");
    let metadata: serde_json::Value =
        serde_json::from_str(stored[0]["metadata"].as_s().unwrap()).unwrap();
    assert_eq!(metadata["attempts"][0]["status"], 400);
    assert!(metadata["redirect"].as_str().unwrap().contains("state=s1"));
    assert!(
        stored[0]["description"]
            .as_s()
            .unwrap()
            .contains("client_id=1")
    );
}

#[tokio::test]
async fn the_audit_switch_skips_ordinary_records_but_never_security_ones() {
    let t = TestStack::new().await;
    let audit = Audit::dynamodb(
        t.aws.dynamodb.clone(),
        t.name(Resource::AuditTable),
        &switches(false),
    );
    for category in [
        Category::Authentication,
        Category::Authorization,
        Category::DataAccess,
        Category::System,
    ] {
        let result = audit
            .record(AuditRecord::new(category, "x", Outcome::Success).user("u-4"))
            .await
            .unwrap();
        assert_eq!(result, Recorded::Skipped);
    }
    audit
        .record(AuditRecord::new(Category::Security, "state.replayed", Outcome::Denied).user("u-4"))
        .await
        .unwrap();
    let stored = items(&t, "user#u-4").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["category"].as_s().unwrap(), "security");
    assert_eq!(stored[0]["outcome"].as_s().unwrap(), "denied");
}
