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

fn writer(t: &TestStack) -> Audit {
    Audit::dynamodb(
        t.aws.dynamodb.clone(),
        t.name(Resource::AuditTable),
        &switches(true),
    )
}

fn sink(t: &TestStack) -> DynamoAuditSink {
    DynamoAuditSink::new(t.aws.dynamodb.clone(), t.name(Resource::AuditTable))
}

/// Writes `n` records for `user`, a second apart, and returns their sort keys in order.
async fn history(t: &TestStack, user: &str, n: usize) -> Vec<String> {
    let audit = writer(t);
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let mut keys = Vec::new();
    for i in 0..n {
        let written = audit
            .record(
                AuditRecord::new(Category::System, format!("step.{i}"), Outcome::Success)
                    .user(user)
                    .metadata(json!({"i": i}))
                    .at(at + time::Duration::seconds(i as i64)),
            )
            .await
            .unwrap();
        let Recorded::Written { sk, .. } = written else {
            panic!("written")
        };
        keys.push(sk);
    }
    keys
}

async fn set(t: &TestStack, pk: &str, sk: &str, name: &str, value: AttributeValue) {
    t.aws
        .dynamodb
        .update_item()
        .table_name(t.name(Resource::AuditTable))
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .update_expression("SET #n = :v")
        .expression_attribute_names("#n", name)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

async fn get(
    t: &TestStack,
    pk: &str,
    sk: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    t.aws
        .dynamodb
        .get_item()
        .table_name(t.name(Resource::AuditTable))
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

fn faults(report: &threadstorm::audit::chain::Report) -> Vec<(String, &'static str, Option<u64>)> {
    report
        .problems
        .iter()
        .map(|p| (p.partition.clone(), p.fault.as_str(), p.seq))
        .collect()
}

#[tokio::test]
async fn every_partition_is_a_hash_chain_that_verifies() {
    let t = TestStack::new().await;
    history(&t, "u-1", 4).await;
    history(&t, "u-2", 2).await;
    writer(&t)
        .record(AuditRecord::new(
            Category::System,
            "pause",
            Outcome::Success,
        ))
        .await
        .unwrap();
    let stored = items(&t, "user#u-1").await;
    let seqs: Vec<&str> = stored
        .iter()
        .map(|i| i["seq"].as_n().unwrap().as_str())
        .collect();
    assert_eq!(seqs, ["1", "2", "3", "4"]);
    assert_eq!(stored[1]["prev_hash"], stored[0]["hash"]);
    let report = sink(&t).verify(None).await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.partitions, report.records), (3, 7));
    assert!(sink(&t).verify(Some("user#u-1")).await.unwrap().intact());
}

#[tokio::test]
async fn a_changed_field_is_reported_with_its_partition_and_record() {
    let t = TestStack::new().await;
    let keys = history(&t, "u-1", 4).await;
    history(&t, "u-2", 2).await;
    set(
        &t,
        "user#u-1",
        &keys[2],
        "outcome",
        AttributeValue::S("denied".into()),
    )
    .await;
    let report = sink(&t).verify(None).await.unwrap();
    assert_eq!(
        faults(&report),
        [("user#u-1".to_owned(), "altered", Some(3))]
    );
    assert_eq!(report.problems[0].sk.as_deref(), Some(keys[2].as_str()));

    // Re-hashing the changed record does not help: the next record no longer follows it.
    let changed = get(&t, "user#u-1", &keys[2]).await;
    let rehashed = threadstorm::audit::chain::digest(&changed);
    set(
        &t,
        "user#u-1",
        &keys[2],
        "hash",
        AttributeValue::S(rehashed),
    )
    .await;
    let report = sink(&t).verify(Some("user#u-1")).await.unwrap();
    assert_eq!(
        faults(&report),
        [("user#u-1".to_owned(), "broken_link", Some(4))]
    );
}

#[tokio::test]
async fn a_deleted_record_is_reported_wherever_it_was() {
    let t = TestStack::new().await;
    let keys = history(&t, "u-1", 4).await;
    let delete = |sk: String| {
        let t = &t;
        async move {
            t.aws
                .dynamodb
                .delete_item()
                .table_name(t.name(Resource::AuditTable))
                .key("pk", AttributeValue::S("user#u-1".into()))
                .key("sk", AttributeValue::S(sk))
                .send()
                .await
                .unwrap();
        }
    };
    delete(keys[1].clone()).await;
    let report = sink(&t).verify(None).await.unwrap();
    assert_eq!(
        faults(&report),
        [("user#u-1".to_owned(), "missing", Some(2))]
    );
    delete(keys[3].clone()).await;
    let report = sink(&t).verify(Some("user#u-1")).await.unwrap();
    assert_eq!(
        faults(&report),
        [
            ("user#u-1".to_owned(), "missing", Some(2)),
            ("user#u-1".to_owned(), "missing", Some(4))
        ]
    );
}

#[tokio::test]
async fn reordered_records_are_reported() {
    let t = TestStack::new().await;
    let keys = history(&t, "u-1", 3).await;
    let first = get(&t, "user#u-1", &keys[0]).await;
    let second = get(&t, "user#u-1", &keys[1]).await;
    for name in ["seq", "prev_hash", "hash"] {
        set(&t, "user#u-1", &keys[0], name, second[name].clone()).await;
        set(&t, "user#u-1", &keys[1], name, first[name].clone()).await;
    }
    let report = sink(&t).verify(None).await.unwrap();
    assert!(!report.intact());
    for problem in &report.problems {
        assert_eq!(problem.partition, "user#u-1");
        assert!(problem.seq.is_some_and(|s| s <= 2), "{problem:?}");
    }
}

#[tokio::test]
async fn concurrent_writers_to_one_partition_keep_the_chain_whole() {
    let t = TestStack::new().await;
    // Separate writers, as separate Lambda instances would be, each with its own head cache.
    let writers: Vec<Audit> = (0..4).map(|_| writer(&t)).collect();
    let mut tasks = Vec::new();
    for (w, audit) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..6 {
                audit
                    .record(
                        AuditRecord::new(Category::Security, format!("w{w}.{i}"), Outcome::Success)
                            .user("busy"),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stored = items(&t, "user#busy").await;
    assert_eq!(stored.len(), 24);
    let mut seqs: Vec<u64> = stored
        .iter()
        .map(|i| i["seq"].as_n().unwrap().parse().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=24).collect::<Vec<_>>());
    let report = sink(&t).verify(None).await.unwrap();
    assert!(report.intact(), "{report:?}");
}
