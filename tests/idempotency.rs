//! Idempotency records against moto: every outcome of `begin`, concurrent begins, takeover of a
//! stale lock with the old owner fenced out, expired records taken over before TTL deletes them,
//! payload mismatch, a zero-time deadline, checkpoints that survive a takeover, and the unit of
//! every time field.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::testing::TestStack;
use threadstorm::clock::{EpochMillis, EpochSeconds};
use threadstorm::pipeline::idempotency::{
    Begin, Fenced, IdempotencyKey, IdempotencyStore, OwnerToken, PayloadHash, Status,
};
use threadstorm::resources::Resource;
use threadstorm_tests::aws_calls::{Calls, counted_dynamodb, expected};
use tokio::sync::Barrier;

/// 2027-01-15T08:00:00.250Z: a millisecond part, so rounding errors show.
const NOW: EpochMillis = EpochMillis::new(1_800_000_000_250);
const SECOND: Duration = Duration::from_secs(1);
const LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

struct Setup {
    t: TestStack,
    store: IdempotencyStore,
    calls: Calls,
}

impl Setup {
    async fn new() -> Setup {
        let t = TestStack::new().await;
        let (client, calls) = counted_dynamodb(&t.sdk);
        let store = IdempotencyStore::new(client, t.name(Resource::IdempotencyTable), LIFETIME);
        Setup { t, store, calls }
    }

    async fn raw(&self, key: &IdempotencyKey) -> std::collections::HashMap<String, AttributeValue> {
        self.t
            .aws
            .dynamodb
            .get_item()
            .table_name(self.t.name(Resource::IdempotencyTable))
            .key("id", AttributeValue::S(key.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item()
            .cloned()
            .unwrap_or_default()
    }

    async fn number(&self, key: &IdempotencyKey, attribute: &str) -> Option<i64> {
        self.raw(key)
            .await
            .get(attribute)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
    }

    async fn begin(
        &self,
        key: &IdempotencyKey,
        payload: &PayloadHash,
        deadline: EpochMillis,
        now: EpochMillis,
    ) -> Begin {
        self.store.begin(key, payload, deadline, now).await.unwrap()
    }

    async fn acquire(
        &self,
        key: &IdempotencyKey,
        payload: &PayloadHash,
        deadline: EpochMillis,
        now: EpochMillis,
    ) -> (OwnerToken, Option<String>) {
        match self.begin(key, payload, deadline, now).await {
            Begin::Acquired { owner, checkpoint } => (owner, checkpoint),
            other => panic!("expected to acquire {key}, got {other:?}"),
        }
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new("poster", k).unwrap()
}

fn payload(body: &str) -> PayloadHash {
    PayloadHash::of(body.as_bytes())
}

fn after(d: Duration) -> EpochMillis {
    NOW.saturating_add(d)
}

#[tokio::test]
async fn a_first_begin_acquires_and_writes_each_time_field_in_its_own_unit() {
    let s = Setup::new().await;
    let (k, p) = (key("post-1"), payload("hello"));
    let deadline = after(30 * SECOND);
    let (owner, checkpoint) = s.acquire(&k, &p, deadline, NOW).await;
    assert_eq!(checkpoint, None);
    assert_eq!(s.calls.take(), expected(&[("UpdateItem", 1)]));

    let raw = s.raw(&k).await;
    assert_eq!(raw["status"], AttributeValue::S("INPROGRESS".into()));
    assert_eq!(raw["owner"], AttributeValue::S(owner.as_str().into()));
    assert_eq!(raw["validation"], AttributeValue::S(p.as_str().into()));
    assert_eq!(
        s.number(&k, "in_progress_expiry").await,
        Some(deadline.get()),
        "milliseconds: the Lambda deadline itself"
    );
    assert_eq!(
        s.number(&k, "expires_at").await,
        Some(1_800_000_000 + 86_400),
        "seconds: now (rounded down) + the record lifetime"
    );
}

#[tokio::test]
async fn a_completed_record_replays_its_result_for_the_same_payload() {
    let s = Setup::new().await;
    let (k, p) = (key("post-2"), payload("hello"));
    let (owner, _) = s.acquire(&k, &p, after(30 * SECOND), NOW).await;
    s.calls.take();
    let result = r#"{"media_id":"17920000000000009"}"#;
    assert_eq!(
        s.store
            .complete(&k, &owner, result, after(SECOND))
            .await
            .unwrap(),
        Fenced::Applied
    );
    assert_eq!(s.calls.take(), expected(&[("UpdateItem", 1)]));

    let again = s
        .begin(&k, &p, after(90 * SECOND), after(60 * SECOND))
        .await;
    assert_eq!(
        again,
        Begin::AlreadyCompleted {
            data: result.into()
        }
    );
    // The losing begin saw the record in its own failure: one request, no second read.
    assert_eq!(s.calls.take(), expected(&[("UpdateItem", 1)]));
    // Completing twice is refused: the record is no longer in progress.
    assert_eq!(
        s.store
            .complete(&k, &owner, "{}", after(2 * SECOND))
            .await
            .unwrap(),
        Fenced::LostOwnership
    );
}

#[tokio::test]
async fn a_record_in_progress_answers_in_progress_until_its_owners_deadline() {
    let s = Setup::new().await;
    let (k, p) = (key("post-3"), payload("hello"));
    let deadline = after(30 * SECOND);
    let _ = s.acquire(&k, &p, deadline, NOW).await;
    assert_eq!(
        s.begin(&k, &p, after(40 * SECOND), after(SECOND)).await,
        Begin::InProgress { until: deadline }
    );
    // Still in progress at the deadline itself; taken over one millisecond after it.
    assert_eq!(
        s.begin(&k, &p, after(60 * SECOND), deadline).await,
        Begin::InProgress { until: deadline }
    );
    let past = deadline.saturating_add(Duration::from_millis(1));
    let _ = s.acquire(&k, &p, after(60 * SECOND), past).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_begins_one_acquires_and_the_other_sees_in_progress() {
    let s = Arc::new(Setup::new().await);
    for round in 0..10 {
        let k = key(&format!("race-{round}"));
        let p = payload("same body");
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (s, k, p, barrier) = (s.clone(), k.clone(), p.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.store.begin(&k, &p, after(30 * SECOND), NOW).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap().unwrap());
        }
        let acquired = answers
            .iter()
            .filter(|a| matches!(a, Begin::Acquired { .. }))
            .count();
        let in_progress = answers
            .iter()
            .filter(|a| {
                **a == Begin::InProgress {
                    until: after(30 * SECOND),
                }
            })
            .count();
        assert_eq!(
            (acquired, in_progress),
            (1, 1),
            "round {round}: {answers:?}"
        );
    }
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_the_old_owner_can_no_longer_write() {
    let s = Setup::new().await;
    let (k, p) = (key("post-4"), payload("hello"));
    let (old, _) = s.acquire(&k, &p, after(30 * SECOND), NOW).await;

    // The first invocation overran its deadline (frozen, slow network); a retry takes over.
    let (new, _) = s
        .acquire(&k, &p, after(90 * SECOND), after(31 * SECOND))
        .await;
    assert_ne!(old, new);

    // The old owner wakes up: every write it tries is refused and changes nothing.
    assert_eq!(
        s.store.checkpoint(&k, &old, "stale").await.unwrap(),
        Fenced::LostOwnership
    );
    assert_eq!(
        s.store
            .complete(&k, &old, r#"{"by":"old"}"#, after(32 * SECOND))
            .await
            .unwrap(),
        Fenced::LostOwnership
    );
    assert_eq!(
        s.store.release(&k, &old).await.unwrap(),
        Fenced::LostOwnership
    );
    let raw = s.raw(&k).await;
    assert_eq!(raw["status"], AttributeValue::S("INPROGRESS".into()));
    assert_eq!(raw["owner"], AttributeValue::S(new.as_str().into()));
    assert!(!raw.contains_key("checkpoint"));

    assert_eq!(
        s.store
            .complete(&k, &new, r#"{"by":"new"}"#, after(33 * SECOND))
            .await
            .unwrap(),
        Fenced::Applied
    );
    assert_eq!(
        s.begin(&k, &p, after(100 * SECOND), after(40 * SECOND))
            .await,
        Begin::AlreadyCompleted {
            data: r#"{"by":"new"}"#.into()
        }
    );
}

#[tokio::test]
async fn an_expired_completed_record_is_taken_over_although_ttl_has_not_deleted_it() {
    let s = Setup::new().await;
    let (k, p) = (key("post-5"), payload("hello"));
    let (owner, _) = s.acquire(&k, &p, after(30 * SECOND), NOW).await;
    let _ = s.store.complete(&k, &owner, "{}", NOW).await.unwrap();
    let expires_at = EpochSeconds::new(s.number(&k, "expires_at").await.unwrap());

    // At its expiry second the record still answers; one second later it is expired, though the
    // item is still there (TTL deletes lazily; moto never does).
    let at_expiry = expires_at.to_millis();
    assert!(matches!(
        s.begin(&k, &p, at_expiry.saturating_add(30 * SECOND), at_expiry)
            .await,
        Begin::AlreadyCompleted { .. }
    ));
    let later = expires_at.to_millis().saturating_add(SECOND);
    assert_eq!(
        s.store.read(&k, later).await.unwrap().map(|r| r.status),
        Some(Status::Expired)
    );
    let (_, checkpoint) = s
        .acquire(&k, &p, later.saturating_add(30 * SECOND), later)
        .await;
    assert_eq!(checkpoint, None);
    let raw = s.raw(&k).await;
    assert_eq!(raw["status"], AttributeValue::S("INPROGRESS".into()));
    assert!(!raw.contains_key("data"), "the old result is not kept");
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_a_mismatch_never_a_replay() {
    let s = Setup::new().await;
    let (k, first, other) = (key("post-6"), payload("hello"), payload("hello!"));
    let (owner, _) = s.acquire(&k, &first, after(30 * SECOND), NOW).await;
    let _ = s
        .store
        .checkpoint(&k, &owner, "17890000000000001")
        .await
        .unwrap();

    // While in progress, and after its owner's deadline (a stale lock is not handed to another
    // payload, nor is its checkpoint).
    assert_eq!(
        s.begin(&k, &other, after(60 * SECOND), after(SECOND)).await,
        Begin::PayloadMismatch
    );
    assert_eq!(
        s.begin(&k, &other, after(120 * SECOND), after(90 * SECOND))
            .await,
        Begin::PayloadMismatch
    );
    // Once completed.
    let (owner, checkpoint) = s
        .acquire(&k, &first, after(150 * SECOND), after(100 * SECOND))
        .await;
    assert_eq!(checkpoint.as_deref(), Some("17890000000000001"));
    let _ = s
        .store
        .complete(&k, &owner, "{}", after(101 * SECOND))
        .await
        .unwrap();
    assert_eq!(
        s.begin(&k, &other, after(200 * SECOND), after(102 * SECOND))
            .await,
        Begin::PayloadMismatch
    );
    // Once the record has expired the key is free for any payload.
    let expired = after(LIFETIME + 200 * SECOND);
    let _ = s
        .acquire(&k, &other, expired.saturating_add(30 * SECOND), expired)
        .await;
}

#[tokio::test]
async fn an_invocation_with_no_time_left_still_writes_an_in_progress_expiry() {
    let s = Setup::new().await;
    let (k, p) = (key("post-7"), payload("hello"));
    // Remaining time 0: the deadline is now. Or a deadline already past (0 = the epoch).
    for (k, deadline) in [(k.clone(), NOW), (key("post-7b"), EpochMillis::new(0))] {
        let _ = s.acquire(&k, &p, deadline, NOW).await;
        let written = s.number(&k, "in_progress_expiry").await;
        assert_eq!(written, Some(NOW.get() + 1), "{k}");
        // Powertools #4759 left it unset: the key stayed locked until the record expired. Here
        // a retry two milliseconds later takes over.
        let retry = NOW.saturating_add(Duration::from_millis(2));
        let _ = s
            .acquire(&k, &p, retry.saturating_add(30 * SECOND), retry)
            .await;
    }
}

#[tokio::test]
async fn a_checkpoint_survives_a_takeover_and_reaches_the_next_owner() {
    let s = Setup::new().await;
    let (k, p) = (key("post-8"), payload("hello"));
    let (first, _) = s.acquire(&k, &p, after(30 * SECOND), NOW).await;
    s.calls.take();
    // The poster stores the container id before publishing…
    assert_eq!(
        s.store
            .checkpoint(&k, &first, r#"{"container_id":"17890000000000001"}"#)
            .await
            .unwrap(),
        Fenced::Applied
    );
    assert_eq!(s.calls.take(), expected(&[("UpdateItem", 1)]));
    // …and dies. The retry takes over after the deadline and finds it.
    let (second, checkpoint) = s
        .acquire(&k, &p, after(90 * SECOND), after(31 * SECOND))
        .await;
    assert_eq!(
        checkpoint.as_deref(),
        Some(r#"{"container_id":"17890000000000001"}"#)
    );
    assert_eq!(s.calls.take(), expected(&[("UpdateItem", 1)]));
    // It dies too, without writing anything: the third owner still finds the first checkpoint.
    let (third, checkpoint) = s
        .acquire(&k, &p, after(150 * SECOND), after(91 * SECOND))
        .await;
    assert_eq!(
        checkpoint.as_deref(),
        Some(r#"{"container_id":"17890000000000001"}"#)
    );
    assert_eq!(
        s.store
            .checkpoint(&k, &second, "from a dead owner")
            .await
            .unwrap(),
        Fenced::LostOwnership
    );
    // Completion clears the checkpoint: a later run of the key after expiry starts clean.
    let _ = s
        .store
        .complete(&k, &third, "{}", after(92 * SECOND))
        .await
        .unwrap();
    assert!(!s.raw(&k).await.contains_key("checkpoint"));
}

#[tokio::test]
async fn a_released_record_can_be_begun_again_at_once_and_keeps_its_checkpoint() {
    let s = Setup::new().await;
    let (k, p) = (key("post-9"), payload("hello"));
    let (first, _) = s.acquire(&k, &p, after(30 * SECOND), NOW).await;
    let _ = s
        .store
        .checkpoint(&k, &first, "17890000000000001")
        .await
        .unwrap();
    s.calls.take();
    // A retryable failure (publish answered 5xx): give the record up well before the deadline.
    assert_eq!(s.store.release(&k, &first).await.unwrap(), Fenced::Applied);
    assert_eq!(s.calls.take(), expected(&[("UpdateItem", 1)]));
    assert_eq!(
        s.store
            .complete(&k, &first, "{}", after(SECOND))
            .await
            .unwrap(),
        Fenced::LostOwnership,
        "a released owner cannot complete"
    );
    let (_, checkpoint) = s
        .acquire(&k, &p, after(60 * SECOND), after(2 * SECOND))
        .await;
    assert_eq!(checkpoint.as_deref(), Some("17890000000000001"));
}

#[tokio::test]
async fn a_forgotten_record_is_gone_for_any_payload_and_only_its_owner_can_forget_it() {
    let s = Setup::new().await;
    let k = key("refused-1");
    let (owner, _) = s
        .acquire(&k, &payload("too long"), after(30 * SECOND), NOW)
        .await;
    let stranger = OwnerToken::generate();
    assert_eq!(
        s.store.forget(&k, &stranger).await.unwrap(),
        Fenced::LostOwnership
    );
    assert!(s.raw(&k).await.contains_key("owner"), "still held");
    s.calls.take();
    assert_eq!(s.store.forget(&k, &owner).await.unwrap(), Fenced::Applied);
    assert_eq!(s.calls.take(), expected(&[("DeleteItem", 1)]));
    assert!(s.raw(&k).await.is_empty(), "the record is deleted");
    // Another body under the same key now begins afresh (a released record would be a mismatch).
    s.acquire(&k, &payload("corrected"), after(30 * SECOND), after(SECOND))
        .await;
    assert_eq!(
        s.store.forget(&k, &owner).await.unwrap(),
        Fenced::LostOwnership,
        "the old owner cannot forget the new attempt"
    );
}

#[tokio::test]
async fn seconds_and_milliseconds_are_never_mixed() {
    let s = Setup::new().await;
    let p = payload("hello");

    // In-progress expiry in milliseconds: a begin one second later, well before the deadline,
    // must see the lock. (Written in seconds, 1_800_000_030 < now in ms: taken over at once.)
    let k = key("units-1");
    let _ = s.acquire(&k, &p, after(30 * SECOND), NOW).await;
    assert_eq!(
        s.begin(&k, &p, after(60 * SECOND), after(SECOND)).await,
        Begin::InProgress {
            until: after(30 * SECOND)
        }
    );
    let written = s.number(&k, "in_progress_expiry").await.unwrap_or(0);
    assert!(
        written > 1_000_000_000_000,
        "{written} is not epoch milliseconds"
    );

    // Record expiry in seconds, compared with now in seconds: live one second before, expired one
    // second after. (In milliseconds it would never expire; compared with now in ms, it would
    // always be expired.)
    let k = key("units-2");
    let (owner, _) = s.acquire(&k, &p, after(30 * SECOND), NOW).await;
    let _ = s.store.complete(&k, &owner, "{}", NOW).await.unwrap();
    let written = s.number(&k, "expires_at").await.unwrap_or(0);
    assert!(
        (1_000_000_000..10_000_000_000).contains(&written),
        "{written} is not epoch seconds"
    );
    let before = after(LIFETIME - SECOND);
    assert!(matches!(
        s.begin(&k, &p, before.saturating_add(30 * SECOND), before)
            .await,
        Begin::AlreadyCompleted { .. }
    ));
    let past = after(LIFETIME + SECOND);
    let _ = s
        .acquire(&k, &p, past.saturating_add(30 * SECOND), past)
        .await;
}
