//! The emulator's clock: wall time plus an offset that tests move forward or set outright.
//! Every lifetime the emulator enforces (codes, tokens, containers, quotas) reads this clock,
//! never the system clock, so a test can cross "24 hours" or "60 days" in a millisecond.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latest instant the clock reads (about the year 30000).
const LATEST_MILLIS: i64 = 900_000_000_000_000;

/// Marks a clock that ticks with real time rather than standing still.
const TICKING: i64 = i64::MIN;

/// A controllable clock. It keeps ticking with real time (so a readiness delay of two seconds
/// passes on its own in a local stack) and can be advanced or set at any moment, or frozen so
/// that every instant it records is exactly the one a test chose.
#[derive(Debug)]
pub struct Clock {
    offset_ms: AtomicI64,
    frozen_ms: AtomicI64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            offset_ms: AtomicI64::new(0),
            frozen_ms: AtomicI64::new(TICKING),
        }
    }
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
        match self.frozen_ms.load(Ordering::SeqCst) {
            TICKING => real_millis()
                .saturating_add(self.offset_ms.load(Ordering::SeqCst))
                .clamp(0, LATEST_MILLIS),
            frozen => frozen,
        }
    }

    /// Moves the clock forward by `by`; a frozen clock stays frozen at the later instant.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(LATEST_MILLIS);
        let later = self.now_millis().saturating_add(ms);
        match self.frozen_ms.load(Ordering::SeqCst) {
            TICKING => self.set_millis(later),
            _ => self.freeze_millis(later),
        }
    }

    /// Stops the clock at `unix_seconds` until it is set, advanced or reset.
    pub fn freeze(&self, unix_seconds: i64) {
        self.freeze_millis(unix_seconds.saturating_mul(1000));
    }

    fn freeze_millis(&self, unix_millis: i64) {
        self.frozen_ms
            .store(unix_millis.clamp(0, LATEST_MILLIS), Ordering::SeqCst);
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
        self.frozen_ms.store(TICKING, Ordering::SeqCst);
    }

    /// Back to real time.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::SeqCst);
        self.frozen_ms.store(TICKING, Ordering::SeqCst);
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
    fn a_frozen_clock_stands_still_until_it_is_moved_or_set() {
        let clock = Clock::new();
        clock.freeze(1_700_000_000);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now_millis(), 1_700_000_000_000);
        clock.advance(Duration::from_secs(86_400));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now_millis(), 1_700_086_400_000);
        clock.set(1_800_000_000);
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.now_millis() > 1_800_000_000_000);
    }

    #[test]
    fn timestamps_are_formatted_like_graph() {
        assert_eq!(graph_timestamp(1_726_183_059), "2024-09-12T23:17:39+0000");
    }
}
