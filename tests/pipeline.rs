//! The pipeline end to end: intake → dedupe → gate → poster → result sink, each stage driven with
//! real batches received from its real FIFO queue in moto, publishing to the Threads emulator
//! over HTTP. The cases are those of cases/README.md (P1, P2, P3, Q2) and the invariants of
//! DESIGN.md: published once, in order, whole storms validated first, deferred never dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use threads_emulator::{Endpoint, Fault, FaultPlan};
use threadstorm::pipeline::gate::{KILL_SWITCH_PK, KILL_SWITCH_SK};
use threadstorm::pipeline::idempotency::Status as IdempotencyStatus;
use threadstorm::pipeline::quota::{Counts, Governors};
use threadstorm::pipeline::scheduler;
use threadstorm::posts::{Moved, PartContent, Status, StatusName, Storm};
use threadstorm::resources::Resource;
use threadstorm::store::{n, s};
use threadstorm_tests::support::counting::diff;
use threadstorm_tests::support::world::{ACCOUNT, Consumer, OWNER, World, now};

fn reason_code(storm: &Storm) -> Option<&str> {
    match &storm.status {
        Status::Rejected(r) | Status::Failed(r) => Some(r.code.as_str()),
        _ => None,
    }
}

/// A storm's parts as Threads has them, in publish order: (text, reply_to_id, media_id).
fn published(world: &World) -> Vec<(Option<String>, Option<String>, String)> {
    world
        .emu
        .published()
        .into_iter()
        .map(|p| (p.text, p.reply_to_id, p.media_id))
        .collect()
}

#[tokio::test]
async fn a_storm_is_published_in_order_each_part_replying_to_the_one_before() {
    let w = World::new().await;
    let t = now();
    let before = w.counter.snapshot();
    let storm = w.submit(&["one", "two", "three"], t).await;
    assert_eq!(storm.status, Status::Queued);
    w.drain(t).await;

    let stored = w.storm(&storm.id).await;
    let posts = published(&w);
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert_eq!(posts[0].0.as_deref(), Some("one"));
    assert_eq!(posts[0].1, None, "the first part is a post, not a reply");
    assert_eq!(posts[1].1.as_deref(), Some(posts[0].2.as_str()));
    assert_eq!(posts[2].1.as_deref(), Some(posts[1].2.as_str()));
    let Status::Published { media_id, .. } = &stored.status else {
        panic!("not published: {:?}", stored.status);
    };
    assert_eq!(media_id.as_str(), posts[0].2);
    for (part, post) in stored.parts.iter().zip(&posts) {
        assert_eq!(
            part.media_id.as_ref().map(|m| m.as_str()),
            Some(post.2.as_str())
        );
    }
    let calls = w.emu.calls();
    assert_eq!((calls.create, calls.publish), (3, 3), "{calls:?}");
    assert_eq!(
        calls.api_total(),
        6,
        "nothing but create and publish: {calls:?}"
    );

    let requests = diff(&before, &w.counter.snapshot());
    eprintln!("AWS requests for one 3-part storm: {requests:?}");
    assert!(
        w.depth(Consumer::ResultSink).await + w.depth(Consumer::Poster).await == 0,
        "queues drained"
    );
}

#[tokio::test]
async fn case_p1_a_storm_with_one_part_over_500_bytes_is_rejected_whole_before_any_call() {
    let w = World::new().await;
    let t = now();
    let over = format!("{}🚀", "a".repeat(497)); // 501 bytes
    assert_eq!(over.len(), 501);
    let storm = w.submit(&["part one", &over, "part three"], t).await;
    w.drain(t).await;

    let stored = w.storm(&storm.id).await;
    assert_eq!(stored.status.name(), StatusName::Rejected);
    assert_eq!(reason_code(&stored), Some("text_too_long"));
    assert_eq!(w.emu.calls().api_total(), 0, "no Threads call at all");
    assert_eq!(w.usage(t).await, Counts::default(), "no quota reserved");
}

#[tokio::test]
async fn case_p2_not_ready_twice_then_published_on_the_same_container() {
    let w = World::new().await;
    let t = now();
    w.emu
        .inject(FaultPlan::times(Endpoint::Publish, Fault::NotReady, 2));
    let storm = w.submit(&["first", "second"], t).await;
    w.drain(t).await;

    let stored = w.storm(&storm.id).await;
    assert_eq!(
        stored.status.name(),
        StatusName::Published,
        "{:?}",
        stored.status
    );
    let posts = w.emu.published();
    assert_eq!(posts.len(), 2);
    let calls = w.emu.calls();
    // Part 1: one container, three publishes (two refused); part 2: one and one.
    assert_eq!(calls.create, 2, "{calls:?}");
    assert_eq!(calls.publish, 4, "{calls:?}");
    assert_eq!(posts[0].container_id, "17890000000000001");
    assert!(posts[0].media_id.starts_with("1792"));
    assert_eq!(
        posts[1].reply_to_id.as_deref(),
        Some(posts[0].media_id.as_str())
    );
}

#[tokio::test]
async fn case_p2_exhausted_retries_fail_with_container_not_ready_and_no_second_container() {
    let w = World::new().await;
    let t = now();
    let attempts = w.poster.settings.publish_attempts as usize;
    w.emu.inject(FaultPlan::times(
        Endpoint::Publish,
        Fault::NotReady,
        attempts,
    ));
    let started = Instant::now();
    let storm = w.submit(&["first", "second"], t).await;
    w.drain(t).await;

    let stored = w.storm(&storm.id).await;
    assert_eq!(
        reason_code(&stored),
        Some("container_not_ready"),
        "{:?}",
        stored.status
    );
    let calls = w.emu.calls();
    assert_eq!(calls.create, 1, "never a second container: {calls:?}");
    assert_eq!(calls.publish as usize, attempts);
    assert!(w.emu.published().is_empty());
    // Backoff between the attempts: at least half of each capped exponential step.
    let base = w.poster.settings.backoff_base;
    let min: Duration = (0..attempts as u32 - 1)
        .map(|a| (base * 2u32.pow(a)).min(w.poster.settings.backoff_cap) / 2)
        .sum();
    assert!(
        started.elapsed() >= min,
        "{:?} < {min:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn case_p3_a_failed_result_send_is_completed_by_the_redelivery_without_threads_calls() {
    let mut w = World::new().await;
    let t = now();
    let storm = w.submit(&["only"], t).await;
    // Dedupe and gate run; the poster's first attempt publishes, then cannot send its result.
    w.pass(Consumer::Dedupe, t).await;
    w.pass(Consumer::Gate, t).await;
    let real = std::mem::replace(
        &mut w.poster.results_queue,
        format!("{}-missing", w.stack.name(Resource::ResultsQueue)),
    );
    let (_, answer) = w.step(Consumer::Poster, t).await.expect("poster message");
    assert_eq!(answer.unwrap().batch_item_failures.len(), 1, "redelivered");
    assert_eq!(w.emu.published().len(), 1);
    let calls_after_publish = w.emu.calls();

    w.poster.results_queue = real;
    w.drain(t).await;
    let calls = w.emu.calls();
    assert_eq!(
        calls.create, calls_after_publish.create,
        "no create on redelivery"
    );
    assert_eq!(
        calls.publish, calls_after_publish.publish,
        "no publish on redelivery"
    );
    assert_eq!(w.emu.published().len(), 1, "exactly one post on Threads");
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
}

#[tokio::test]
async fn case_p3_a_crash_between_publish_and_record_reads_the_container_and_does_not_publish_again()
{
    let w = World::new().await;
    let t = now();
    let storm = w.submit(&["root", "reply"], t).await;
    w.pass(Consumer::Dedupe, t).await;
    w.pass(Consumer::Gate, t).await;
    // Part 1 publishes, but the function dies before completing its record or releasing it; the
    // lock outlives the invocation until its deadline.
    w.ledger.crash_before_next_completion();
    let (_, answer) = w.step(Consumer::Poster, t).await.expect("poster message");
    assert_eq!(answer.unwrap().batch_item_failures.len(), 1);
    assert_eq!(w.emu.published().len(), 1);
    let record = w
        .ledger
        .record(storm.id.as_str(), 0)
        .await
        .expect("part 1 has a record");
    assert!(
        record.checkpoint.is_some(),
        "container checkpointed before publishing"
    );
    assert_ne!(
        record.status,
        IdempotencyStatus::Completed,
        "never completed"
    );

    let before = w.emu.calls();
    w.drain(t).await;
    let calls = w.emu.calls();
    assert_eq!(
        calls.publish - before.publish,
        1,
        "only part 2 is published: {calls:?}"
    );
    assert_eq!(
        calls.create - before.create,
        1,
        "only part 2's container: {calls:?}"
    );
    assert!(
        calls.status > before.status,
        "the container's status was read first"
    );
    let posts = w.emu.published();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(
        posts[1].reply_to_id.as_deref(),
        Some(posts[0].media_id.as_str())
    );
    let stored = w.storm(&storm.id).await;
    assert_eq!(stored.status.name(), StatusName::Published);
    assert_eq!(
        stored.parts[0].media_id.as_ref().map(|m| m.as_str()),
        Some(posts[0].media_id.as_str()),
        "the recovered media id"
    );
}

#[tokio::test]
async fn case_p3_code_10_that_did_publish_is_recorded_as_published_once() {
    let w = World::new().await;
    let t = now();
    w.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::FalseFailure));
    let storm = w.submit(&["said no, did yes", "and a reply"], t).await;
    w.drain(t).await;

    let posts = w.emu.published();
    assert_eq!(posts.len(), 2, "exactly one post per part: {posts:?}");
    assert_eq!(
        posts[1].reply_to_id.as_deref(),
        Some(posts[0].media_id.as_str())
    );
    let stored = w.storm(&storm.id).await;
    let Status::Published { media_id, .. } = &stored.status else {
        panic!("{:?}", stored.status)
    };
    assert_eq!(media_id.as_str(), posts[0].media_id);
    assert_eq!(
        w.emu.calls().publish,
        2,
        "no second publish of the first container"
    );
}

#[tokio::test]
async fn case_q2_a_failing_message_fails_itself_and_every_later_one_and_nothing_runs_after_it() {
    let w = World::new().await;
    let t = now();
    let attempts = w.poster.settings.publish_attempts as usize;
    let storms = [
        w.submit(&["m1"], t).await,
        w.submit(&["m2"], t).await,
        w.submit(&["m3"], t).await,
    ];
    while w.step(Consumer::Dedupe, t).await.is_some() {}
    while w.step(Consumer::Gate, t).await.is_some() {}
    // m1's publish goes through; every publish of m2 answers 500 (and does not publish).
    let mut steps = vec![None];
    steps.extend(std::iter::repeat_n(Some(Fault::Transient), attempts));
    w.emu.inject(FaultPlan::sequence(Endpoint::Publish, steps));

    let (records, answer) = w.step(Consumer::Poster, t).await.expect("a batch");
    assert_eq!(records.len(), 3, "one batch of three, same account");
    let ids: Vec<String> = records
        .iter()
        .map(|r| r.message_id.clone().unwrap())
        .collect();
    assert_eq!(
        serde_json::to_value(answer.unwrap()).unwrap(),
        serde_json::json!({"batchItemFailures":[{"itemIdentifier":ids[1]},{"itemIdentifier":ids[2]}]})
    );
    let posts = w.emu.published();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text.as_deref(), Some("m1"));
    assert_eq!(w.emu.calls().create, 2, "m3 was not touched");
    assert_eq!(w.storm(&storms[2].id).await.status, Status::Queued);

    // Redelivered in order, they all publish, once.
    w.drain(t).await;
    let texts: Vec<_> = w
        .emu
        .published()
        .into_iter()
        .filter_map(|p| p.text)
        .collect();
    assert_eq!(texts, ["m1", "m2", "m3"]);
}

#[tokio::test]
async fn the_same_content_within_a_day_is_rejected_naming_the_first_storm() {
    let w = World::new().await;
    let t = now();
    let first = w.submit(&["Hello   world"], t).await;
    let second = w.submit(&["hello world"], t + 60).await;
    w.drain(t + 60).await;
    assert_eq!(
        w.storm(&first.id).await.status.name(),
        StatusName::Published
    );
    let stored = w.storm(&second.id).await;
    let Status::Rejected(reason) = &stored.status else {
        panic!("{:?}", stored.status)
    };
    assert_eq!(reason.code, "duplicate");
    assert!(reason.text.contains(first.id.as_str()), "{}", reason.text);
    assert_eq!(w.emu.published().len(), 1);

    // A day later the same content is new again: the expiry is checked in the condition.
    let third = w.submit(&["hello world"], t + 60 + 86_401).await;
    w.drain(t + 60 + 86_401).await;
    assert_eq!(
        w.storm(&third.id).await.status.name(),
        StatusName::Published
    );
}

#[tokio::test]
async fn every_stage_message_delivered_twice_publishes_exactly_once() {
    let w = World::new().await;
    let t = now();
    let storm = w.submit(&["twice a", "twice b"], t).await;
    for consumer in Consumer::ALL {
        let queue = w.queue_of(consumer);
        let esm = &w.stack.aws.sqs;
        let records = threadstorm_tests::support::sqs::receive(esm, &queue).await;
        assert_eq!(records.len(), 1, "{consumer:?}");
        // The same message, handled twice (a lost delete), then a resend by a new id (beyond
        // SQS's five-minute deduplication) handled a third time.
        let first = w.invoke(consumer, &records, t).await.unwrap();
        assert!(
            first.batch_item_failures.is_empty(),
            "{consumer:?}: {first:?}"
        );
        let mut again = records.clone();
        again[0]
            .attributes
            .insert("ApproximateReceiveCount".into(), "2".into());
        let second = w.invoke(consumer, &again, t).await.unwrap();
        assert!(
            second.batch_item_failures.is_empty(),
            "{consumer:?}: {second:?}"
        );
        threadstorm_tests::support::sqs::settle(esm, &queue, &records, &Ok(first)).await;
        assert!(
            threadstorm_tests::support::sqs::receive(esm, &queue)
                .await
                .is_empty(),
            "{consumer:?}: the second handling sent nothing SQS did not deduplicate"
        );
        let third = w.invoke(consumer, &records, t).await.unwrap();
        assert!(third.batch_item_failures.is_empty());
    }
    w.drain(t).await;
    assert_eq!(w.emu.published().len(), 2);
    assert_eq!(w.emu.calls().create, 2);
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
    assert_eq!(
        w.usage(t).await,
        Counts {
            posts: 1,
            replies: 1,
            requests: 4
        },
        "reserved once for the one storm, however often its messages came"
    );
}

#[tokio::test]
async fn no_capacity_defers_the_whole_storm_deletes_its_message_and_the_sweep_sends_it_again() {
    let one_post_a_day = Governors::new(1, 1000, 200).unwrap();
    let w = World::governed(
        threads_emulator::EmulatorConfig::default(),
        Arc::new(threadstorm_tests::support::world::case_b1_policy()),
        one_post_a_day,
    )
    .await;
    let t = now();
    let first = w.submit(&["today's only post"], t).await;
    w.drain(t).await;
    assert_eq!(
        w.storm(&first.id).await.status.name(),
        StatusName::Published
    );

    let storm = w.submit(&["later 1", "later 2", "later 3"], t + 10).await;
    w.drain(t + 10).await;
    // The first post leaves the rolling 24 hours exactly one day after it was reserved.
    let not_before = t + 86_400;
    let stored = w.storm(&storm.id).await;
    assert_eq!(stored.status, Status::Deferred { not_before });
    assert_eq!(
        w.emu.calls().api_total(),
        2,
        "the deferred storm made no Threads call"
    );
    assert_eq!(
        w.usage(t + 10).await,
        Counts {
            posts: 1,
            replies: 0,
            requests: 2
        },
        "nothing reserved for the deferred storm: its 1 post and 2 replies wait whole"
    );
    for consumer in Consumer::ALL {
        assert_eq!(
            w.depth(consumer).await,
            0,
            "{consumer:?}: deleted, not failed"
        );
    }

    // Not yet due: the sweep leaves it.
    let early = scheduler::sweep(&w.scheduler, not_before - 1)
        .await
        .unwrap();
    assert_eq!(early.enqueued, 0);
    let due = scheduler::sweep(&w.scheduler, not_before).await.unwrap();
    assert_eq!(due.enqueued, 1, "{due:?}");
    w.drain(not_before).await;
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
    assert_eq!(w.emu.published().len(), 4);
    assert_eq!(
        w.usage(not_before).await,
        Counts {
            posts: 1,
            replies: 2,
            requests: 6
        },
        "the first post has left the window; the storm's share is in it"
    );
}

#[tokio::test]
async fn the_kill_switch_defers_instead_of_dropping() {
    let w = World::new().await;
    let t = now();
    w.stack
        .aws
        .dynamodb
        .put_item()
        .table_name(w.stack.name(Resource::RateLimitsTable))
        .item("pk", s(KILL_SWITCH_PK))
        .item("sk", s(KILL_SWITCH_SK))
        .item(
            "paused",
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        )
        .item("until", n(t + 600))
        .send()
        .await
        .unwrap();
    let storm = w.submit(&["paused"], t).await;
    w.drain(t).await;
    assert_eq!(
        w.storm(&storm.id).await.status,
        Status::Deferred {
            not_before: t + 600
        }
    );
    assert_eq!(w.emu.calls().api_total(), 0);
    assert_eq!(
        w.usage(t).await,
        Counts::default(),
        "nothing reserved while paused"
    );

    // The pause ends by itself at `until`.
    scheduler::sweep(&w.scheduler, t + 600).await.unwrap();
    w.drain(t + 600).await;
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
}

#[tokio::test]
async fn an_account_that_changed_hands_is_refused_at_publish_time_without_threads_calls() {
    let mut w = World::new().await;
    w.results.hooks = std::sync::Arc::new(threadstorm::pipeline::results::AuditAndMetrics {
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
    let t = now();
    let storm = w.submit(&["scheduled by the old owner"], t).await;
    w.pass(Consumer::Dedupe, t).await;
    w.pass(Consumer::Gate, t).await;
    w.hand_over("someone-else", ACCOUNT).await;
    w.drain(t).await;
    let stored = w.storm(&storm.id).await;
    assert_eq!(
        reason_code(&stored),
        Some("forbidden"),
        "{:?}",
        stored.status
    );
    assert_eq!(w.emu.calls().api_total(), 0);

    // The refusal is an authorization record under the submitting user.
    let audit = w
        .stack
        .aws
        .dynamodb
        .query()
        .table_name(w.stack.name(Resource::AuditTable))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(format!("user#{OWNER}")))
        .send()
        .await
        .unwrap();
    let refusal = audit
        .items()
        .iter()
        .find(|i| i.get("action") == Some(&s("storm.publish")))
        .unwrap_or_else(|| {
            panic!(
                "no audit record of the refused publish: {:?}",
                audit.items()
            )
        });
    assert_eq!(refusal.get("category"), Some(&s("authorization")));
    assert_eq!(refusal.get("outcome"), Some(&s("denied")));
}

#[tokio::test]
async fn a_refused_token_flags_the_account_and_fails_the_storm_with_an_actionable_reason() {
    let w = World::new().await;
    let t = now();
    let token = w.emu.issue_long_lived_token(ACCOUNT);
    w.connect(OWNER, ACCOUNT).await;
    // Replace the stored token with one Threads then revokes.
    w.stack
        .aws
        .dynamodb
        .update_item()
        .table_name(w.stack.name(Resource::AccountsTable))
        .key("account_id", s(ACCOUNT))
        .update_expression("SET sealed_token = :t")
        .expression_attribute_values(":t", s(w.seal(&token, OWNER, ACCOUNT).await))
        .send()
        .await
        .unwrap();
    w.emu.revoke_token(&token);
    let storm = w.submit(&["no longer allowed"], t).await;
    w.drain(t).await;
    let stored = w.storm(&storm.id).await;
    let Status::Failed(reason) = &stored.status else {
        panic!("{:?}", stored.status)
    };
    assert_eq!(reason.code, "needs_reauth");
    assert!(
        reason.text.contains("Connect the account again"),
        "{}",
        reason.text
    );
    let account = w
        .stack
        .aws
        .dynamodb
        .get_item()
        .table_name(w.stack.name(Resource::AccountsTable))
        .key("account_id", s(ACCOUNT))
        .send()
        .await
        .unwrap();
    assert_eq!(
        account.item().and_then(|i| i.get("status")),
        Some(&s("needs_reauth"))
    );
    assert!(w.emu.published().is_empty());
}

#[tokio::test]
async fn a_cancelled_storm_is_never_published_and_publishing_cannot_be_cancelled() {
    let w = World::new().await;
    let t = now();
    let storm = w.submit(&["cancel me"], t).await;
    assert_eq!(
        w.posts.cancel(&storm.id, "not-the-owner", t).await.unwrap(),
        Moved::Stale {
            current: Some(Status::Queued)
        }
    );
    assert_eq!(
        w.posts.cancel(&storm.id, OWNER, t).await.unwrap(),
        Moved::Moved
    );
    w.drain(t).await;
    assert_eq!(w.storm(&storm.id).await.status, Status::Cancelled);
    assert_eq!(w.emu.calls().api_total(), 0);

    let other = w.submit(&["published first"], t).await;
    w.drain(t).await;
    assert!(matches!(
        w.posts.cancel(&other.id, OWNER, t).await.unwrap(),
        Moved::Stale {
            current: Some(Status::Published { .. })
        }
    ));
}

#[tokio::test]
async fn a_storm_stored_but_never_enqueued_is_sent_by_the_sweep_after_the_grace_period() {
    let mut w = World::new().await;
    let t = now();
    w.intake.intake_queue = format!("{}-missing", w.stack.name(Resource::IntakeQueue));
    let storm = w.submit(&["lost send"], t).await;
    assert_eq!(w.depth(Consumer::Dedupe).await, 0);
    let grace = w.scheduler.settings.grace_secs;
    assert_eq!(scheduler::sweep(&w.scheduler, t).await.unwrap().enqueued, 0);
    // Two sweeps at once: the storm is sent once.
    let (a, b) = tokio::join!(
        scheduler::sweep(&w.scheduler, t + grace),
        scheduler::sweep(&w.scheduler, t + grace)
    );
    assert_eq!(a.unwrap().enqueued + b.unwrap().enqueued, 1);
    w.drain(t + grace).await;
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
    assert_eq!(w.emu.published().len(), 1);
}

#[tokio::test]
async fn a_scheduled_storm_waits_for_its_time() {
    let w = World::new().await;
    let t = now();
    let new = threadstorm::pipeline::intake::NewStorm {
        account_id: w.account.clone(),
        parts: vec![PartContent::text("at noon")],
        publish_at: Some(t + 7_200),
    };
    let storm = threadstorm::pipeline::intake::submit(&w.intake, OWNER, new, t)
        .await
        .unwrap();
    assert_eq!(storm.status, Status::Scheduled);
    w.drain(t).await;
    assert_eq!(
        scheduler::sweep(&w.scheduler, t + 7_199)
            .await
            .unwrap()
            .enqueued,
        0
    );
    assert_eq!(
        scheduler::sweep(&w.scheduler, t + 7_200)
            .await
            .unwrap()
            .enqueued,
        1
    );
    w.drain(t + 7_200).await;
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
}

#[tokio::test]
async fn case_p1_the_500_limit_is_counted_in_utf8_bytes_before_any_threads_call() {
    let w = World::new().await;
    let t = now();
    let exactly_500 = format!("{}🚀", "a".repeat(496));
    let over_by_one = format!("{}🚀", "a".repeat(497));
    let curly = format!("{}’’’", "a".repeat(495));
    assert_eq!(
        (
            exactly_500.len(),
            over_by_one.len(),
            curly.len(),
            curly.chars().count()
        ),
        (500, 501, 504, 498)
    );
    let ok = w.submit(&[&exactly_500], t).await;
    let long = w.submit(&[&over_by_one], t).await;
    let quotes = w.submit(&[&curly], t).await;
    w.drain(t).await;
    assert_eq!(w.storm(&ok.id).await.status.name(), StatusName::Published);
    for refused in [&long, &quotes] {
        let stored = w.storm(&refused.id).await;
        assert_eq!(
            reason_code(&stored),
            Some("text_too_long"),
            "{:?}",
            stored.status
        );
        let Status::Rejected(reason) = &stored.status else {
            unreachable!()
        };
        assert!(reason.text.contains("bytes"), "{}", reason.text);
    }
    let calls = w.emu.calls();
    assert_eq!(
        (calls.create, calls.publish),
        (1, 1),
        "only the 500-byte post reached Threads"
    );
}

#[tokio::test]
async fn case_b1_prohibited_terms_after_normalisation_reject_the_whole_storm_naming_the_term() {
    let w = World::new().await;
    let t = now();
    let mut refused = Vec::new();
    for text in [
        "Try Glim\u{200D}mr today",
        "Try ＧＬＩＭＭＲ today",
        "ACE deals!",
    ] {
        // In the last part of a storm: nothing of it is published.
        refused.push((
            text,
            w.submit(&["a fine start", "still fine", text], t).await,
        ));
    }
    let fine = [
        w.submit(&["Our space program"], t).await,
        w.submit(&["Acetone is flammable"], t).await,
    ];
    w.drain(t).await;
    for (text, storm) in &refused {
        let stored = w.storm(&storm.id).await;
        let Status::Rejected(reason) = &stored.status else {
            panic!("{text}: {:?}", stored.status)
        };
        assert_eq!(reason.code, "prohibited_term", "{text}");
        let term = if text.contains("ACE") {
            "Ace"
        } else {
            "Glimmr"
        };
        assert!(reason.text.contains(term), "{text}: {}", reason.text);
    }
    for storm in &fine {
        assert_eq!(
            w.storm(&storm.id).await.status.name(),
            StatusName::Published
        );
    }
    let texts: Vec<_> = w
        .emu
        .published()
        .into_iter()
        .filter_map(|p| p.text)
        .collect();
    assert_eq!(texts, ["Our space program", "Acetone is flammable"]);
}

#[tokio::test]
async fn intake_with_the_policy_answers_422_and_stores_nothing() {
    let mut w = World::new().await;
    let t = now();
    w.intake.rules = Some(std::sync::Arc::new(
        threadstorm_tests::support::world::case_b1_policy(),
    ));
    let new = threadstorm::pipeline::intake::NewStorm {
        account_id: w.account.clone(),
        parts: vec![PartContent::text("ok"), PartContent::text("a".repeat(501))],
        publish_at: None,
    };
    let err = threadstorm::pipeline::intake::submit(&w.intake, OWNER, new, t)
        .await
        .unwrap_err();
    let problem = threadstorm::edge::Problem::from(err);
    assert_eq!((problem.status, problem.code), (422, "content_refused"));
    assert!(problem.detail.contains("Part 2"), "{}", problem.detail);
    let (listed, _) = w.posts.list_by_owner(OWNER, 10, None).await.unwrap();
    assert!(listed.is_empty(), "nothing stored");
    assert_eq!(w.depth(Consumer::Dedupe).await, 0, "nothing sent");

    // Someone else's account: 403, nothing stored.
    let new = threadstorm::pipeline::intake::NewStorm {
        account_id: w.account.clone(),
        parts: vec![PartContent::text("not mine")],
        publish_at: None,
    };
    let err = threadstorm::pipeline::intake::submit(&w.intake, "intruder", new, t)
        .await
        .unwrap_err();
    assert_eq!(threadstorm::edge::Problem::from(err).status, 403);
    assert!(
        w.posts
            .list_by_owner("intruder", 10, None)
            .await
            .unwrap()
            .0
            .is_empty()
    );
}

#[tokio::test]
async fn an_owner_lists_their_storms_newest_first() {
    let w = World::new().await;
    let t = now();
    let first = w.submit(&["older"], t).await;
    let second = w.submit(&["newer", "with a reply"], t + 1).await;
    let (listed, _) = w.posts.list_by_owner(OWNER, 10, None).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, [second.id.clone(), first.id.clone()]);
    assert_eq!(listed[0].part_count, 2);
    assert_eq!(listed[0].kind, threadstorm::posts::StormKind::Storm);
    assert_eq!(listed[1].kind, threadstorm::posts::StormKind::Post);
}

/// What each stage costs per published post, as AWS requests (counted on the functions' own
/// clients; the event source mapping's receives and deletes are not the functions') and Threads
/// calls.
async fn measure(w: &World, storms: usize, parts: usize) -> (f64, f64) {
    let t = now();
    let texts: Vec<Vec<String>> = (0..storms)
        .map(|s| {
            (0..parts)
                .map(|p| format!("cost storm {s} part {p}"))
                .collect()
        })
        .collect();
    w.counter.reset();
    let mut rows = Vec::new();
    let mut snapshot = w.counter.snapshot();
    for t_parts in &texts {
        let refs: Vec<&str> = t_parts.iter().map(String::as_str).collect();
        w.submit(&refs, t).await;
    }
    let mut record = |name: &str, w: &World, snapshot: &mut _| {
        let now = w.counter.snapshot();
        rows.push((name.to_owned(), diff(snapshot, &now)));
        *snapshot = now;
    };
    record("intake (api)", w, &mut snapshot);
    for (name, consumer) in [
        ("dedupe", Consumer::Dedupe),
        ("gate", Consumer::Gate),
        ("poster", Consumer::Poster),
        ("result-sink", Consumer::ResultSink),
    ] {
        while w.step(consumer, t).await.is_some() {}
        record(name, w, &mut snapshot);
    }
    let published = (storms * parts) as f64;
    assert_eq!(w.emu.published().len(), storms * parts);
    let mut total = 0.0;
    eprintln!("\n{storms} storm(s) of {parts} part(s): AWS requests per published post");
    for (name, counts) in &rows {
        let sum: u64 = counts.values().sum();
        total += sum as f64;
        eprintln!("  {name:<12} {:>5.2}  {counts:?}", sum as f64 / published);
    }
    let calls = w.emu.calls();
    let threads = calls.api_total() as f64 / published;
    eprintln!(
        "  total AWS {:.2} per post; Threads calls {threads:.2} per post ({calls:?})",
        total / published
    );
    (total / published, threads)
}

#[tokio::test]
async fn aws_requests_and_threads_calls_per_published_post() {
    let single = World::new().await;
    let (aws_one, threads_one) = measure(&single, 1, 1).await;
    let batch = World::new().await;
    let (aws_ten, threads_ten) = measure(&batch, 10, 1).await;
    let storms = World::new().await;
    let (aws_storms, threads_storms) = measure(&storms, 10, 3).await;
    assert_eq!(threads_one, 2.0, "create + publish");
    assert_eq!(threads_ten, 2.0);
    assert_eq!(threads_storms, 2.0);
    assert!(aws_ten < aws_one, "batches share reads and sends");
    assert!(aws_ten <= 12.0, "{aws_ten}");
    assert!(aws_storms <= 8.0, "{aws_storms}");
}

#[tokio::test]
async fn threads_rate_limit_defers_the_storm_without_burning_a_receive_and_resumes_on_its_container()
 {
    let w = World::new().await;
    let t = now();
    w.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::Throttle));
    let storm = w.submit(&["throttled", "then replied"], t).await;
    w.drain(t).await;
    let stored = w.storm(&storm.id).await;
    let wait = w.poster.settings.rate_limit_wait.as_secs() as i64;
    assert_eq!(
        stored.status,
        Status::Deferred {
            not_before: t + wait
        }
    );
    assert_eq!(w.depth(Consumer::Poster).await, 0, "deleted, not failed");
    assert!(w.emu.published().is_empty());

    scheduler::sweep(&w.scheduler, t + wait).await.unwrap();
    w.drain(t + wait).await;
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
    let calls = w.emu.calls();
    assert_eq!(calls.create, 2, "part 1's container was reused: {calls:?}");
    assert_eq!(w.emu.published().len(), 2);
}

#[tokio::test]
async fn threads_failing_on_every_delivery_fails_the_storm_with_a_reason_instead_of_the_dlq() {
    let w = World::new().await;
    let t = now();
    w.emu
        .inject(FaultPlan::rate(Endpoint::Create, Fault::Transient, 1.0));
    let storm = w.submit(&["never gets through"], t).await;
    w.drain(t).await;
    let stored = w.storm(&storm.id).await;
    let Status::Failed(reason) = &stored.status else {
        panic!("{:?}", stored.status)
    };
    assert_eq!(reason.code, "threads_unavailable");
    assert!(
        reason.text.contains("0 of 1 parts are published"),
        "{}",
        reason.text
    );
    let deliveries = w.poster.settings.final_receive as u64;
    let attempts = w.poster.settings.transient_attempts as u64;
    assert_eq!(w.emu.calls().create, deliveries * attempts, "bounded");
    assert_eq!(
        threadstorm_tests::support::sqs::depth(
            &w.stack.aws.sqs,
            &w.stack
                .name(Resource::PosterQueue)
                .replace("-poster.fifo", "-poster-dlq.fifo")
        )
        .await,
        0,
        "nothing in the dead-letter queue"
    );
}

#[tokio::test]
async fn case_p3_a_failed_completion_hook_is_retried_without_touching_threads_or_the_status() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use threadstorm::pipeline::results::{CompletionHooks, HookError, ResultMessage};
    use threadstorm::pipeline::stage::BoxFuture;

    #[derive(Default)]
    struct FlakyAudit {
        calls: AtomicU32,
    }
    impl CompletionHooks for FlakyAudit {
        fn finished<'a>(&'a self, _: &'a ResultMessage) -> BoxFuture<'a, Result<(), HookError>> {
            Box::pin(async move {
                match self.calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(HookError("audit table did not answer".into())),
                    _ => Ok(()),
                }
            })
        }
    }

    let mut w = World::new().await;
    let hooks = std::sync::Arc::new(FlakyAudit::default());
    w.results.hooks = hooks.clone();
    let t = now();
    let storm = w.submit(&["audited"], t).await;
    w.drain(t).await;
    assert_eq!(
        hooks.calls.load(Ordering::SeqCst),
        2,
        "failed once, then done"
    );
    assert_eq!(
        w.storm(&storm.id).await.status.name(),
        StatusName::Published
    );
    let calls = w.emu.calls();
    assert_eq!((calls.create, calls.publish), (1, 1));
}

#[tokio::test]
async fn the_intake_route_answers_202_with_the_storm_or_a_problem_and_stores_nothing_bad() {
    let w = World::new().await;
    let t = now();
    let body = format!(
        r#"{{"account_id":"{ACCOUNT}","parts":[{{"media_type":"TEXT","text":"over HTTP"}},{{"media_type":"TEXT","text":"and a reply"}}]}}"#
    );
    let res = threadstorm::pipeline::intake::accept(&w.intake, OWNER, body.as_bytes(), t).await;
    assert_eq!(res.status(), 202);
    let json: serde_json::Value = match res.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(json["status"], "queued");
    assert_eq!(json["kind"], "storm");
    assert!(json.get("owner_user_id").is_none());

    for (bad, status) in [
        ("not json", 400),
        (r#"{"account_id":"17841405793187218","parts":[]}"#, 400),
        (
            r#"{"account_id":"x","parts":[{"media_type":"TEXT","text":"a"}]}"#,
            400,
        ),
        (
            r#"{"account_id":"17841405793187218","parts":[{"media_type":"GIF","text":"a"}]}"#,
            400,
        ),
        (
            r#"{"account_id":"17841400000000042","parts":[{"media_type":"TEXT","text":"a"}]}"#,
            403,
        ),
    ] {
        let res = threadstorm::pipeline::intake::accept(&w.intake, OWNER, bad.as_bytes(), t).await;
        assert_eq!(res.status(), status, "{bad}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{bad}"
        );
    }
    let (listed, _) = w.posts.list_by_owner(OWNER, 10, None).await.unwrap();
    assert_eq!(listed.len(), 1, "only the good storm was stored");
}
