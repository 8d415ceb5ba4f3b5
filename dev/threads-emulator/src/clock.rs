//! The emulator's clock: wall time plus an offset that tests move forward or set outright.
//! Every lifetime the emulator enforces (codes, tokens, containers, quotas) reads this clock,
//! never the system clock, so a test can cross "24 hours" or "60 days" in a millisecond.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latest instant the clock reads (about the year 30000).
const LATEST_MILLIS: i64 = 900_000_000_000_000;

/// A controllable clock. It keeps ticking with real time (so a readiness delay of two seconds
/// passes on its own in a local stack) and can be advanced or set at any moment.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock that reads real time until it is moved.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// Now, in whole unix seconds.
    pub fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Now, in unix milliseconds, kept between 1970 and about the year 30000 so that adding
    /// any configured lifetime to it cannot overflow.
    pub fn now_millis(&self) -> i64 {
        real_millis()
            .saturating_add(self.offset_ms.load(Ordering::SeqCst))
            .clamp(0, LATEST_MILLIS)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(LATEST_MILLIS);
        self.set_millis(self.now_millis().saturating_add(ms));
    }

    /// Sets the clock to `unix_seconds`; it keeps ticking from there.
    pub fn set(&self, unix_seconds: i64) {
        self.set_millis(unix_seconds.saturating_mul(1000));
    }

    /// Sets the clock to `unix_millis`; it keeps ticking from there.
    pub fn set_millis(&self, unix_millis: i64) {
        let target = unix_millis.clamp(0, LATEST_MILLIS);
        self.offset_ms
            .store(target - real_millis(), Ordering::SeqCst);
    }

    /// Back to real time.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::SeqCst);
    }
}

fn real_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4))
        .unwrap_or(0)
}

/// Graph's timestamp format, `2024-09-12T23:17:39+0000`.
pub fn graph_timestamp(unix_seconds: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+0000");
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00+0000".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_advance_moves_by_exactly_that_much() {
        let clock = Clock::new();
        clock.set(1_700_000_000);
        let before = clock.now_millis();
        clock.advance(Duration::from_secs(86_400));
        let after = clock.now_millis();
        assert!(after - before >= 86_400_000 && after - before < 86_401_000);
    }

    #[test]
    fn timestamps_are_formatted_like_graph() {
        assert_eq!(graph_timestamp(1_726_183_059), "2024-09-12T23:17:39+0000");
    }
}
