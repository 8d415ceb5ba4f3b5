//! Quota reservations against moto: case Q1 under real concurrency, the rolling 24-hour window with
//! exact release times, whole-storm deferral that consumes nothing, the hourly request governor,
//! release, redelivery, and the DynamoDB requests each operation costs.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use local_stack::testing::TestStack;
use threadstorm::clock::EpochMillis;
use threadstorm::pipeline::quota::{
    Counts, DAY, Governors, HOUR, Limit, QuotaError, QuotaStore, Release, ReservationId, Reserve,
};
use threadstorm::resources::Resource;
use threadstorm::threads::UserId;
use threadstorm_tests::aws_calls::{Calls, counted_dynamodb, expected};
use tokio::sync::Barrier;

const T0: EpochMillis = EpochMillis::new(1_800_000_000_000);
const MINUTE: Duration = Duration::from_secs(60);

fn account(n: u64) -> UserId {
    UserId::parse(&format!("178414{n:011}")).unwrap()
}

fn rid(raw: &str) -> ReservationId {
    ReservationId::parse(raw).unwrap()
}

fn posts(n: u32) -> Counts {
    Counts {
        posts: n,
        replies: 0,
        requests: 0,
    }
}

fn replies(n: u32) -> Counts {
    Counts {
        posts: 0,
        replies: n,
        requests: 0,
    }
}

fn storm(parts: u32, requests: u32) -> Counts {
    Counts::storm(NonZeroU32::new(parts).unwrap(), requests)
}

struct Setup {
    t: TestStack,
    calls: Calls,
    client: aws_sdk_dynamodb::Client,
}

impl Setup {
    async fn new() -> Setup {
        let t = TestStack::new().await;
        let (client, calls) = counted_dynamodb(&t.sdk);
        Setup { t, calls, client }
    }

    fn store(&self, governors: Governors) -> QuotaStore {
        QuotaStore::new(
            self.client.clone(),
            self.t.name(Resource::RateLimitsTable),
            governors,
        )
    }
}

async fn reserve(
    store: &QuotaStore,
    who: &UserId,
    id: &str,
    demand: Counts,
    now: EpochMillis,
) -> Reserve {
    store.reserve(who, &rid(id), demand, now).await.unwrap()
}

/// Races `racers` reservations of `each` at the same instant, as separate functions would, and
/// returns their answers.
async fn race(
    s: &Setup,
    who: &UserId,
    racers: usize,
    each: Counts,
    now: EpochMillis,
) -> Vec<Reserve> {
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let store = s.store(Governors::SEED);
            let (who, barrier) = (who.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .reserve(&who, &rid(&format!("racer-{i}")), each, now)
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().unwrap());
    }
    answers
}

fn winners(answers: &[Reserve]) -> usize {
    answers
        .iter()
        .filter(|a| matches!(a, Reserve::Reserved(_)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn q1_two_concurrent_posts_at_249_of_250_exactly_one_is_reserved_and_the_other_deferred() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    for round in 0..8 {
        let who = account(round);
        let seeded = reserve(&store, &who, "seed", posts(249), T0).await;
        assert!(matches!(seeded, Reserve::Reserved(_)));
        s.calls.take();

        let now = T0.saturating_add(MINUTE);
        let answers = race(&s, &who, 2, posts(1), now).await;
        assert_eq!(winners(&answers), 1, "round {round}: {answers:?}");
        for answer in &answers {
            if !matches!(answer, Reserve::Reserved(_)) {
                assert_eq!(
                    *answer,
                    Reserve::Deferred {
                        not_before: T0.saturating_add(DAY),
                        limit: Limit::PostsPerDay
                    },
                    "round {round}: the loser is deferred to when the seed leaves the window"
                );
            }
        }
        assert_eq!(store.usage(&who, now).await.unwrap().posts, 250);
        let calls = s.calls.take();
        eprintln!("round {round}: {calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn q1_three_concurrent_replies_at_999_of_1000_exactly_one_is_reserved() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    for round in 0..8 {
        let who = account(round);
        let _ = reserve(&store, &who, "seed", replies(999), T0).await;
        let now = T0.saturating_add(MINUTE);
        let answers = race(&s, &who, 3, replies(1), now).await;
        assert_eq!(winners(&answers), 1, "round {round}: {answers:?}");
        let deferred = answers
            .iter()
            .filter(|a| {
                **a == Reserve::Deferred {
                    not_before: T0.saturating_add(DAY),
                    limit: Limit::RepliesPerDay,
                }
            })
            .count();
        assert_eq!(deferred, 2, "round {round}: {answers:?}");
        assert_eq!(store.usage(&who, now).await.unwrap().replies, 1000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_reservations_never_overshoot_the_limit() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    let who = account(1);
    let _ = reserve(&store, &who, "seed", posts(245), T0).await;
    let now = T0.saturating_add(MINUTE);
    let answers = race(&s, &who, 12, posts(1), now).await;
    assert_eq!(winners(&answers), 5, "{answers:?}");
    assert_eq!(store.usage(&who, now).await.unwrap().posts, 250);
}

#[tokio::test]
async fn rolling_window_300_posts_in_a_day_reserve_250_and_the_rest_wait_exactly_for_the_oldest_to_leave()
 {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    let who = account(7);
    let cadence = Duration::from_millis(288_000); // 4.8 minutes: 300 posts span exactly 24 h
    let at = |i: u32| T0.saturating_add(cadence * i);

    let mut deferred = Vec::new();
    for i in 0..300 {
        match reserve(&store, &who, &format!("p{i}"), posts(1), at(i)).await {
            Reserve::Reserved(r) => {
                assert!(i < 250, "post {i} was reserved past the limit");
                assert_eq!(r.at, at(i));
            }
            Reserve::Deferred { not_before, limit } => {
                assert!(i >= 250, "post {i} was deferred below the limit");
                // Nothing has left the window yet: each needs one slot, the oldest post's.
                assert_eq!(not_before, at(0).saturating_add(DAY), "post {i}");
                assert_eq!(limit, Limit::PostsPerDay);
                deferred.push(i);
            }
            other => panic!("post {i}: {other:?}"),
        }
    }
    assert_eq!(deferred.len(), 50);
    assert_eq!(store.usage(&who, at(299)).await.unwrap().posts, 250);

    // The sweep retries the deferred posts in order. The k-th gets the slot of the k-th post of
    // the day, exactly 24 h after it: not a millisecond earlier.
    let mut reserved_at = Vec::new();
    for (k, i) in deferred.iter().enumerate() {
        let frees = at(k as u32).saturating_add(DAY);
        let early = frees.saturating_sub(Duration::from_millis(1));
        assert_eq!(
            reserve(&store, &who, &format!("p{i}"), posts(1), early).await,
            Reserve::Deferred {
                not_before: frees,
                limit: Limit::PostsPerDay
            },
            "deferred post {i} one millisecond early"
        );
        match reserve(&store, &who, &format!("p{i}"), posts(1), frees).await {
            Reserve::Reserved(r) => reserved_at.push(r.at),
            other => panic!("deferred post {i} at {frees}: {other:?}"),
        }
    }
    let expected_times: Vec<_> = (0..50).map(|k| at(k).saturating_add(DAY)).collect();
    assert_eq!(reserved_at, expected_times);

    // At no instant does any 24-hour window hold more than 250.
    let all: Vec<EpochMillis> = (0..250).map(at).chain(reserved_at).collect();
    for &end in &all {
        let start = end.saturating_sub(DAY);
        let inside = all.iter().filter(|t| **t > start && **t <= end).count();
        assert!(inside <= 250, "{inside} posts in the 24 h ending at {end}");
    }
}

#[tokio::test]
async fn a_storm_that_does_not_fit_whole_is_deferred_whole_and_consumes_nothing() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    let who = account(3);
    for k in 0..4 {
        let at = T0.saturating_add(MINUTE * k);
        let _ = reserve(&store, &who, &format!("r{k}"), replies(1), at).await;
    }
    let _ = reserve(
        &store,
        &who,
        "bulk",
        replies(993),
        T0.saturating_add(10 * MINUTE),
    )
    .await;
    let now = T0.saturating_add(HOUR);
    let before = store.window(&who).await.unwrap();
    assert_eq!(store.usage(&who, now).await.unwrap().replies, 997);
    s.calls.take();

    // 5 parts = 1 post + 4 replies: 997 + 4 = 1001, so one reply must leave first.
    assert_eq!(
        reserve(&store, &who, "storm-5", storm(5, 10), now).await,
        Reserve::Deferred {
            not_before: T0.saturating_add(DAY),
            limit: Limit::RepliesPerDay
        }
    );
    // 8 parts = 1 post + 7 replies: four replies must leave, the fourth at T0 + 3 min.
    assert_eq!(
        reserve(&store, &who, "storm-8", storm(8, 16), now).await,
        Reserve::Deferred {
            not_before: T0.saturating_add(3 * MINUTE).saturating_add(DAY),
            limit: Limit::RepliesPerDay
        }
    );
    // Nothing was written: not the post part, not the replies that did fit.
    assert_eq!(s.calls.take(), expected(&[("GetItem", 2)]));
    assert_eq!(store.window(&who).await.unwrap(), before);
    assert_eq!(store.usage(&who, now).await.unwrap().posts, 0);

    // When the fourth reply leaves, the whole storm goes at once.
    let frees = T0.saturating_add(3 * MINUTE).saturating_add(DAY);
    assert!(matches!(
        reserve(&store, &who, "storm-8", storm(8, 16), frees).await,
        Reserve::Reserved(_)
    ));
    let usage = store.usage(&who, frees).await.unwrap();
    assert_eq!((usage.posts, usage.replies), (1, 1000));
}

#[tokio::test]
async fn the_hourly_request_governor_defers_until_the_oldest_requests_leave_the_hour() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED); // 200 requests an hour
    let who = account(4);
    for k in 0..4 {
        let at = T0.saturating_add(10 * MINUTE * k);
        let answer = reserve(&store, &who, &format!("s{k}"), storm(25, 50), at).await;
        assert!(matches!(answer, Reserve::Reserved(_)), "{k}: {answer:?}");
    }
    let now = T0.saturating_add(40 * MINUTE);
    assert_eq!(
        reserve(&store, &who, "next", storm(25, 50), now).await,
        Reserve::Deferred {
            not_before: T0.saturating_add(HOUR),
            limit: Limit::RequestsPerHour
        }
    );
    assert_eq!(
        reserve(&store, &who, "bigger", storm(25, 100), now).await,
        Reserve::Deferred {
            not_before: T0.saturating_add(10 * MINUTE).saturating_add(HOUR),
            limit: Limit::RequestsPerHour
        }
    );
    assert!(matches!(
        reserve(&store, &who, "next", storm(25, 50), T0.saturating_add(HOUR)).await,
        Reserve::Reserved(_)
    ));
}

#[tokio::test]
async fn a_storm_larger_than_a_limit_never_fits_and_costs_no_request() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    let who = account(5);
    assert_eq!(
        reserve(&store, &who, "huge", storm(1002, 2004), T0).await,
        Reserve::NeverFits {
            limit: Limit::RepliesPerDay,
            needed: 1001,
            allowed: 1000
        }
    );
    assert!(s.calls.take().is_empty());
    assert!(matches!(
        store
            .reserve(&who, &rid("none"), Counts::default(), T0)
            .await,
        Err(QuotaError::EmptyDemand)
    ));
    assert_eq!(store.usage(&who, T0).await.unwrap(), Counts::default());
}

#[tokio::test]
async fn a_redelivered_reservation_counts_once() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    let who = account(6);
    let Reserve::Reserved(first) = reserve(&store, &who, "storm-1", storm(3, 6), T0).await else {
        panic!("expected a reservation");
    };
    s.calls.take();
    let later = T0.saturating_add(MINUTE);
    let again = reserve(&store, &who, "storm-1", storm(3, 6), later).await;
    assert_eq!(again, Reserve::Reserved(first));
    assert_eq!(s.calls.take(), expected(&[("GetItem", 1)]));
    assert_eq!(store.usage(&who, later).await.unwrap(), storm(3, 6));
    assert!(matches!(
        store
            .reserve(&who, &rid("storm-1"), storm(4, 8), later)
            .await,
        Err(QuotaError::IdReused { .. })
    ));
}

#[tokio::test]
async fn release_gives_capacity_back_once_and_a_released_id_cannot_reserve_again() {
    let s = Setup::new().await;
    let store = s.store(Governors::SEED);
    let who = account(8);
    let _ = reserve(&store, &who, "seed", posts(249), T0).await;
    let Reserve::Reserved(storm_1) = reserve(&store, &who, "storm-1", storm(3, 6), T0).await else {
        panic!("expected a reservation");
    };
    let now = T0.saturating_add(MINUTE);
    assert!(matches!(
        reserve(&store, &who, "storm-2", storm(1, 2), now).await,
        Reserve::Deferred { .. }
    ));

    // The storm was rejected later: all of it comes back.
    assert_eq!(
        store.release(&storm_1, storm_1.counts, now).await.unwrap(),
        Release::Released {
            given_back: storm(3, 6)
        }
    );
    assert_eq!(
        store.release(&storm_1, storm_1.counts, now).await.unwrap(),
        Release::AlreadyReleased
    );
    assert_eq!(store.usage(&who, now).await.unwrap(), posts(249));
    assert!(matches!(
        store.reserve(&who, &rid("storm-1"), storm(3, 6), now).await,
        Err(QuotaError::IdReleased { .. })
    ));
    let Reserve::Reserved(storm_2) = reserve(&store, &who, "storm-2", storm(3, 6), now).await
    else {
        panic!("the released capacity is free again");
    };

    // Part 2 of 3 failed permanently: the last reply and its requests come back, never more than
    // was held.
    let unused = Counts {
        posts: 0,
        replies: 5,
        requests: 2,
    };
    assert_eq!(
        store.release(&storm_2, unused, now).await.unwrap(),
        Release::Released {
            given_back: Counts {
                posts: 0,
                replies: 2,
                requests: 2
            }
        }
    );
    let usage = store.usage(&who, now).await.unwrap();
    assert_eq!((usage.posts, usage.replies, usage.requests), (250, 0, 4));

    // A day later the reservation has left every window: nothing to give back.
    let late = now.saturating_add(DAY);
    let Reserve::Reserved(old) = reserve(&store, &who, "old", posts(1), late).await else {
        panic!("a day later there is room");
    };
    let much_later = late.saturating_add(DAY);
    assert_eq!(
        store.release(&old, old.counts, much_later).await.unwrap(),
        Release::NothingHeld
    );
}

#[tokio::test]
async fn requests_per_operation_one_read_and_one_conditional_write_or_one_write_when_warm() {
    let s = Setup::new().await;
    let who = account(9);

    let cold = s.store(Governors::SEED);
    let Reserve::Reserved(r) = reserve(&cold, &who, "a", storm(2, 4), T0).await else {
        panic!("expected a reservation");
    };
    assert_eq!(s.calls.take(), expected(&[("GetItem", 1), ("PutItem", 1)]));
    let _ = cold.release(&r, r.counts, T0).await.unwrap();
    assert_eq!(s.calls.take(), expected(&[("GetItem", 1), ("PutItem", 1)]));

    // A warm function that wrote the account last skips the read.
    let warm = s.store(Governors::SEED).with_cache(64);
    let _ = reserve(&warm, &who, "b", storm(2, 4), T0).await;
    assert_eq!(s.calls.take(), expected(&[("GetItem", 1), ("PutItem", 1)]));
    let _ = reserve(&warm, &who, "c", storm(2, 4), T0).await;
    assert_eq!(s.calls.take(), expected(&[("PutItem", 1)]));

    // Another function wrote meanwhile: the stale write loses, its failure carries the current
    // item, and the retry needs no read.
    let _ = reserve(&cold, &who, "d", posts(247), T0).await;
    s.calls.take();
    let _ = reserve(&warm, &who, "e", posts(1), T0).await;
    assert_eq!(s.calls.take(), expected(&[("PutItem", 2)]));
    assert_eq!(cold.usage(&who, T0).await.unwrap().posts, 250);
    s.calls.take();

    // An answer that writes nothing is never taken from the cache: one fresh read confirms it.
    assert!(matches!(
        reserve(&warm, &who, "f", posts(1), T0).await,
        Reserve::Deferred { .. }
    ));
    assert_eq!(s.calls.take(), expected(&[("GetItem", 1)]));
}

#[tokio::test]
async fn a_stale_view_loses_its_write_and_decides_again_on_the_current_item() {
    let s = Setup::new().await;
    let who = account(10);
    let warm = s.store(Governors::SEED).with_cache(64);
    let other = s.store(Governors::SEED);
    let _ = reserve(&warm, &who, "a", posts(1), T0).await;
    let _ = reserve(&other, &who, "b", posts(249), T0).await;
    s.calls.take();

    // The cached view says 1 of 250; the table says 250. The write loses and the answer comes
    // from the item its failure returned: deferred, nothing written.
    let now = T0.saturating_add(MINUTE);
    assert_eq!(
        reserve(&warm, &who, "c", posts(1), now).await,
        Reserve::Deferred {
            not_before: T0.saturating_add(DAY),
            limit: Limit::PostsPerDay
        }
    );
    assert_eq!(s.calls.take(), expected(&[("PutItem", 1)]));
    assert_eq!(other.usage(&who, now).await.unwrap().posts, 250);
}
