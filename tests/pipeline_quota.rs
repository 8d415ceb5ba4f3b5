//! The pipeline against Meta's rolling 24-hour quotas, with real queues, tables and the emulator
//! (whose clock follows the test's, so its own quota agrees with the window ThreadStorm keeps):
//! 300 posts for one account in a day publish 250 and defer 50 to the exact second slots free,
//! none lost; a storm that would cross the reply quota midway is deferred whole before its first
//! part.

use std::sync::Arc;

use threads_emulator::{EmulatorConfig, Endpoint, Fault, FaultPlan};
use threadstorm::pipeline::quota::{Counts, Governors};
use threadstorm::pipeline::scheduler;
use threadstorm::posts::PartContent;
use threadstorm::posts::{Status, StatusName, Storm};
use threadstorm_tests::support::world::{World, case_b1_policy, now};

const DAY: i64 = 86_400;
const GROUP: usize = 10;
const EVERY: i64 = 30 * 60;

/// Stops the emulator's clock at `at` and runs the pipeline until it settles. Threads records
/// each publication at exactly the second ThreadStorm reserved it in, so the two rolling days
/// free a slot at the same instant however long a drain takes (a ticking clock let a slow first
/// drain record its posts later than the fast drain a day on, and Threads still counted them).
async fn run_at(w: &World, at: i64) {
    w.emu.clock().freeze(at);
    w.drain(at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_posts_in_a_day_publish_250_and_defer_50_to_when_a_slot_frees() {
    let w = World::new().await;
    let t0 = now();
    // 30 groups of 10 posts, one group every half hour (15 hours).
    let mut groups: Vec<Vec<Storm>> = Vec::new();
    for g in 0..30 {
        let at = t0 + g as i64 * EVERY;
        let mut group = Vec::new();
        for i in 0..GROUP {
            group.push(w.submit(&[&format!("post {g}-{i}")], at).await);
        }
        run_at(&w, at).await;
        groups.push(group);
    }
    let last_submission = t0 + 29 * EVERY;
    assert_eq!(w.emu.published().len(), 250, "Meta's 250 in 24 hours");
    let usage = w.usage(last_submission).await;
    assert_eq!((usage.posts, usage.replies), (250, 0));
    // The hourly governor counts only the last hour, when nothing was published.
    assert_eq!(usage.requests, 0);
    // The 26th to 30th groups wait for the first moment a slot frees: when the first group's
    // posts leave the rolling window, a day after they were reserved. Nothing is reserved for a
    // storm that waits.
    let first_frees = t0 + DAY;
    for (g, group) in groups.iter().enumerate() {
        for storm in group {
            let stored = w.storm(&storm.id).await;
            if g < 25 {
                assert_eq!(stored.status.name(), StatusName::Published, "group {g}");
            } else {
                assert_eq!(
                    stored.status,
                    Status::Deferred {
                        not_before: first_frees
                    },
                    "group {g}"
                );
            }
        }
    }

    // Each half hour after that, one group's slots free and the next ten go out, in order; the
    // rest wait again for the next half hour. A second early, nothing is due.
    for k in 0..5 {
        let at = first_frees + k as i64 * EVERY;
        let early = scheduler::sweep(&w.scheduler, at - 1).await.unwrap();
        assert_eq!(early.enqueued, 0, "nothing is due a second before {at}");
        let due = scheduler::sweep(&w.scheduler, at).await.unwrap();
        assert_eq!(due.enqueued, (5 - k) * GROUP, "waiting at {at}");
        run_at(&w, at).await;
        for (g, group) in groups.iter().enumerate().skip(25) {
            for storm in group {
                let stored = w.storm(&storm.id).await;
                if g <= 25 + k {
                    assert_eq!(stored.status.name(), StatusName::Published, "group {g}");
                } else {
                    assert_eq!(
                        stored.status,
                        Status::Deferred {
                            not_before: at + EVERY
                        },
                        "group {g} after {k}"
                    );
                }
            }
        }
        assert_eq!(w.usage(at).await.posts, 250, "never above 250 in 24 hours");
    }
    // None lost, none twice, in submission order.
    let texts: Vec<String> = w
        .emu
        .published()
        .iter()
        .filter_map(|p| p.text.clone())
        .collect();
    let expected: Vec<String> = (0..30)
        .flat_map(|g| (0..GROUP).map(move |i| format!("post {g}-{i}")))
        .collect();
    assert_eq!(texts, expected);
}

#[tokio::test]
async fn a_storm_that_would_cross_the_reply_quota_midway_is_deferred_whole_before_its_first_part() {
    let four_replies = Governors::new(250, 4, 200).unwrap();
    let w = World::governed(
        EmulatorConfig::default(),
        Arc::new(case_b1_policy()),
        four_replies,
    )
    .await;
    let t = now();
    let first = w.submit(&["one", "two", "three"], t).await;
    run_at(&w, t).await;
    assert_eq!(
        w.storm(&first.id).await.status.name(),
        StatusName::Published
    );
    let calls = w.emu.calls();

    // Two replies are left; this storm needs three. Its root would fit, but the storm is one.
    let second = w
        .submit(
            &[
                "root fits",
                "reply fits",
                "reply fits too",
                "reply does not",
            ],
            t + 60,
        )
        .await;
    run_at(&w, t + 60).await;
    assert_eq!(
        w.storm(&second.id).await.status,
        Status::Deferred {
            not_before: t + DAY
        },
        "deferred until the first storm's replies leave the window"
    );
    assert_eq!(
        w.emu.calls().api_total(),
        calls.api_total(),
        "no Threads call for any of its parts"
    );
    assert_eq!(w.emu.published().len(), 3);

    scheduler::sweep(&w.scheduler, t + DAY).await.unwrap();
    run_at(&w, t + DAY).await;
    assert_eq!(
        w.storm(&second.id).await.status.name(),
        StatusName::Published
    );
    let published = w.emu.published();
    assert_eq!(published.len(), 7);
    for pair in published[3..].windows(2) {
        assert_eq!(
            pair[1].reply_to_id.as_deref(),
            Some(pair[0].media_id.as_str())
        );
    }
}

#[tokio::test]
async fn a_storm_that_fails_midway_gives_back_what_its_unattempted_parts_reserved() {
    let w = World::new().await;
    let t = now();
    // Part 2's image cannot be fetched: Threads refuses its container, the storm fails there.
    w.emu.inject(FaultPlan::sequence(
        Endpoint::Create,
        vec![None, Some(Fault::MediaFetchFailed)],
    ));
    let parts = vec![
        PartContent::text("one"),
        PartContent::image("https://images.example.org/gone.jpg", None),
        PartContent::text("three"),
        PartContent::text("four"),
    ];
    let account = w.account.clone();
    let storm = w
        .submit_parts(threadstorm_tests::support::world::OWNER, &account, parts, t)
        .await;
    run_at(&w, t).await;
    assert_eq!(w.storm(&storm.id).await.status.name(), StatusName::Failed);
    assert_eq!(w.emu.published().len(), 1);
    // Reserved: 1 post, 3 replies, 2 + 3 + 2 + 2 requests. Given back: parts 3 and 4, never tried;
    // part 2's share stays, as a refused create is not known to have published nothing.
    assert_eq!(
        w.usage(t).await,
        Counts {
            posts: 1,
            replies: 1,
            requests: 5
        }
    );
}
