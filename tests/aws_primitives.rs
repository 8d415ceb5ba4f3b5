//! The AWS behaviour the pipeline stands on, proven against moto over real HTTP: conditional writes
//! that lose cleanly, counters that stop at their limit, expired items taken over before TTL
//! deletes them, FIFO ordering, group blocking, deduplication and redrive, and KMS encryption
//! context.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use local_stack::testing::TestStack;
use threadstorm::resources::Resource;
use threadstorm::store::{Condition, Conditional, Counted, Item, increment_below, n, put_if, s};

fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn not_exists() -> Condition {
    Condition::new("attribute_not_exists(#id)").name("#id", "id")
}

#[tokio::test]
async fn losing_conditional_put_is_its_own_outcome_and_returns_the_winner() {
    let t = TestStack::new().await;
    let table = t.name(Resource::IdempotencyTable);
    let db = &t.aws.dynamodb;

    let first = item(&[("id", s("k1")), ("owner", s("first"))]);
    assert_eq!(
        put_if(db, &table, first, not_exists()).await.unwrap(),
        Conditional::Written
    );

    let second = item(&[("id", s("k1")), ("owner", s("second"))]);
    let outcome = put_if(db, &table, second, not_exists()).await.unwrap();
    let Conditional::Lost {
        existing: Some(existing),
    } = outcome
    else {
        panic!("expected a lost condition carrying the existing item, got {outcome:?}");
    };
    assert_eq!(existing.get("owner"), Some(&s("first")));

    // The loser changed nothing.
    let stored = db
        .get_item()
        .table_name(&table)
        .key("id", s("k1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.item().and_then(|i| i.get("owner")),
        Some(&s("first"))
    );
}

#[tokio::test]
async fn a_store_failure_is_an_error_not_a_lost_condition() {
    let t = TestStack::new().await;
    let outcome = put_if(
        &t.aws.dynamodb,
        "no-such-table",
        item(&[("id", s("k"))]),
        not_exists(),
    )
    .await;
    let err = outcome.expect_err("a missing table is an error");
    assert_eq!(err.operation, "PutItem");
    assert!(err.to_string().contains("no-such-table"), "{err}");
}

#[tokio::test]
async fn counter_increment_stops_exactly_at_its_limit() {
    let t = TestStack::new().await;
    let table = t.name(Resource::RateLimitsTable);
    let db = &t.aws.dynamodb;
    let key = || item(&[("pk", s("acct#1")), ("sk", s("posts#2026-12-03T13"))]);

    for expected in 1..=5 {
        let outcome = increment_below(db, &table, key(), "count", 1, 5, &[])
            .await
            .unwrap();
        assert_eq!(outcome, Counted::Incremented(expected));
    }
    assert_eq!(
        increment_below(db, &table, key(), "count", 1, 5, &[])
            .await
            .unwrap(),
        Counted::AtLimit
    );
    // A reservation of several that does not fit whole consumes nothing.
    let other = || item(&[("pk", s("acct#2")), ("sk", s("replies"))]);
    assert_eq!(
        increment_below(db, &table, other(), "count", 3, 4, &[])
            .await
            .unwrap(),
        Counted::Incremented(3)
    );
    assert_eq!(
        increment_below(db, &table, other(), "count", 2, 4, &[])
            .await
            .unwrap(),
        Counted::AtLimit
    );
    assert_eq!(
        increment_below(db, &table, other(), "count", 1, 4, &[])
            .await
            .unwrap(),
        Counted::Incremented(4)
    );

    let stored = db
        .get_item()
        .table_name(&table)
        .set_key(Some(key()))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.item().and_then(|i| i.get("count")), Some(&n(5)));
}

#[tokio::test]
async fn concurrent_increments_never_overshoot() {
    let t = TestStack::new().await;
    let table = t.name(Resource::RateLimitsTable);
    let key = item(&[("pk", s("acct#q1")), ("sk", s("posts"))]);
    // Stand at 249 of 250, then race three reservations.
    for _ in 0..249 {
        let _ = increment_below(&t.aws.dynamodb, &table, key.clone(), "count", 1, 250, &[])
            .await
            .unwrap();
    }
    let racers = (0..3).map(|_| {
        let db = t.aws.dynamodb.clone();
        let (table, key) = (table.clone(), key.clone());
        tokio::spawn(async move { increment_below(&db, &table, key, "count", 1, 250, &[]).await })
    });
    let mut won = 0;
    for racer in racers {
        if racer.await.unwrap().unwrap() == Counted::Incremented(250) {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn expired_item_is_taken_over_although_ttl_has_not_deleted_it() {
    let t = TestStack::new().await;
    let table = t.name(Resource::IdempotencyTable);
    let db = &t.aws.dynamodb;
    let now = 1_800_000_000_i64;
    let takeover = |at: i64| {
        Condition::new("attribute_not_exists(#id) OR #exp < :now")
            .name("#id", "id")
            .name("#exp", "expires_at")
            .value(":now", n(at))
    };

    let old = item(&[
        ("id", s("dedup#abc")),
        ("expires_at", n(now - 1)),
        ("by", s("old")),
    ]);
    assert_eq!(
        put_if(db, &table, old, takeover(now - 100)).await.unwrap(),
        Conditional::Written
    );

    // Still live at now - 2: a second writer loses.
    let early = item(&[
        ("id", s("dedup#abc")),
        ("expires_at", n(now + 100)),
        ("by", s("early")),
    ]);
    assert!(matches!(
        put_if(db, &table, early, takeover(now - 2)).await.unwrap(),
        Conditional::Lost { .. }
    ));

    // Expired at `now`, though the item is still there (TTL deletes lazily; moto never does).
    let new = item(&[
        ("id", s("dedup#abc")),
        ("expires_at", n(now + 100)),
        ("by", s("new")),
    ]);
    assert_eq!(
        put_if(db, &table, new, takeover(now)).await.unwrap(),
        Conditional::Written
    );
    let stored = db
        .get_item()
        .table_name(&table)
        .key("id", s("dedup#abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.item().and_then(|i| i.get("by")), Some(&s("new")));
}

async fn send(t: &TestStack, queue: &str, group: &str, dedup: &str, body: &str) -> Option<String> {
    t.aws
        .sqs
        .send_message()
        .queue_url(queue)
        .message_group_id(group)
        .message_deduplication_id(dedup)
        .message_body(body)
        .send()
        .await
        .unwrap()
        .message_id()
        .map(str::to_owned)
}

async fn receive(
    t: &TestStack,
    queue: &str,
    max: i32,
    visibility: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    t.aws
        .sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(max)
        .visibility_timeout(visibility)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

fn bodies(messages: &[aws_sdk_sqs::types::Message]) -> Vec<&str> {
    messages.iter().filter_map(|m| m.body()).collect()
}

#[tokio::test]
async fn fifo_keeps_order_within_a_group_and_drops_a_duplicate_deduplication_id() {
    let t = TestStack::new().await;
    let queue = t.name(Resource::IntakeQueue);
    for i in 1..=4 {
        send(&t, &queue, "acct-a", &format!("d{i}"), &format!("a{i}")).await;
    }
    // Same deduplication id within 5 minutes: accepted by the API, never delivered twice.
    send(&t, &queue, "acct-a", "d2", "a2-again").await;

    let messages = receive(&t, &queue, 10, 30).await;
    assert_eq!(bodies(&messages), ["a1", "a2", "a3", "a4"]);
}

#[tokio::test]
async fn fifo_blocks_a_group_while_a_message_is_in_flight_but_not_other_groups() {
    let t = TestStack::new().await;
    let queue = t.name(Resource::GateQueue);
    send(&t, &queue, "acct-a", "a1", "a1").await;
    send(&t, &queue, "acct-a", "a2", "a2").await;
    send(&t, &queue, "acct-b", "b1", "b1").await;

    let first = receive(&t, &queue, 1, 30).await;
    assert_eq!(bodies(&first), ["a1"]);
    // a1 is in flight: a2 must wait; b1 is another group and flows.
    let second = receive(&t, &queue, 10, 30).await;
    assert_eq!(bodies(&second), ["b1"]);
    assert!(receive(&t, &queue, 10, 30).await.is_empty());

    // Deleting a1 unblocks its group, in order.
    let handle = first[0].receipt_handle().unwrap();
    t.aws
        .sqs
        .delete_message()
        .queue_url(&queue)
        .receipt_handle(handle)
        .send()
        .await
        .unwrap();
    assert_eq!(bodies(&receive(&t, &queue, 10, 30).await), ["a2"]);
}

#[tokio::test]
async fn a_message_received_more_than_max_receive_count_lands_in_its_dead_letter_queue() {
    let t = TestStack::new().await;
    let queue = t.name(Resource::ResultsQueue);
    let dlq = t
        .stack
        .reference("ResultsDeadLetterQueue")
        .unwrap()
        .to_owned();
    send(&t, &queue, "acct-a", "poison", "poison").await;

    let attributes = t
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(attributes.attributes().unwrap().values().next().unwrap()).unwrap();
    let max = policy["maxReceiveCount"].as_i64().unwrap();
    assert!(max >= 5, "maxReceiveCount {max}");

    for attempt in 1..=max {
        let got = receive(&t, &queue, 10, 0).await;
        assert_eq!(bodies(&got), ["poison"], "receive {attempt}");
        // Visibility 0: as if the consumer failed and the message became visible again.
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        receive(&t, &queue, 10, 0).await.is_empty(),
        "redriven after {max} receives"
    );
    assert_eq!(bodies(&receive(&t, &dlq, 10, 30).await), ["poison"]);
}

#[tokio::test]
async fn kms_encryption_context_binds_ciphertext_to_its_owner() {
    let t = TestStack::new().await;
    let key = t.name(Resource::TokenKey);
    let kms = &t.aws.kms;
    let context = |user: &str| {
        [
            ("user_id", user),
            ("account_id", "178414"),
            ("purpose", "threads-token"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<std::collections::HashMap<_, _>>()
    };

    let encrypted = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"THsecret".to_vec()))
        .set_encryption_context(Some(context("u1")))
        .send()
        .await
        .unwrap();
    let blob = encrypted.ciphertext_blob().unwrap().clone();

    let decrypted = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .set_encryption_context(Some(context("u1")))
        .send()
        .await
        .unwrap();
    assert_eq!(decrypted.plaintext().unwrap().as_ref(), b"THsecret");

    for wrong in [Some(context("u2")), None] {
        let refused = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .set_encryption_context(wrong)
            .send()
            .await;
        let err = refused.expect_err("another context must not decrypt");
        assert!(
            // AWS answers InvalidCiphertextException; moto answers AccessDeniedException.
            err.as_service_error()
                .is_some_and(|e| e.is_invalid_ciphertext_exception()
                    || e.meta().code() == Some("AccessDeniedException")),
            "{}",
            aws_sdk_kms::error::DisplayErrorContext(&err)
        );
    }
}
