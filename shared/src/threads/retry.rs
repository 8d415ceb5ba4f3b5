//! How long to wait before retrying a Threads call: exponential, capped, with jitter so that many
//! workers retrying the same outage do not arrive together.

use std::time::Duration;

use rand::Rng;

/// First delay (attempt 0) before jitter.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// No single wait is longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The wait before retry number `attempt` (0 for the first retry): a random value between half
/// and all of `min(BACKOFF_CAP, BACKOFF_BASE × 2^attempt)`. Never zero, never above the cap.
pub fn backoff(attempt: u32) -> Duration {
    backoff_between(attempt, BACKOFF_BASE, BACKOFF_CAP)
}

/// [`backoff`] with a chosen base and cap (tests and callers with tighter budgets).
pub fn backoff_between(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.min(31)))
        .min(cap);
    let floor = ceiling / 2;
    let spread = u64::try_from((ceiling - floor).as_micros()).unwrap_or(u64::MAX);
    floor + Duration::from_micros(rand::rng().random_range(0..=spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        for attempt in 0..64 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(attempt.min(31)))
                .min(BACKOFF_CAP);
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} not in [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
                assert!(d <= BACKOFF_CAP && d > Duration::ZERO);
            }
        }
        assert!(backoff(0) <= Duration::from_millis(500));
        assert!(backoff(3) >= Duration::from_secs(2));
        assert!(backoff(1000) >= BACKOFF_CAP / 2);
    }

    #[test]
    fn backoff_is_jittered() {
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(4)).collect();
        assert!(samples.len() > 1, "twenty identical delays: no jitter");
    }

    #[test]
    fn custom_bounds_are_honoured() {
        let d = backoff_between(10, Duration::from_millis(1), Duration::from_millis(8));
        assert!(d >= Duration::from_millis(4) && d <= Duration::from_millis(8));
    }
}
