//! Wall-clock time: a trait, so expiry rules (sessions, audit timestamps) can be tested at any
//! instant without sleeping, and epoch numbers with one type per unit, so seconds and milliseconds
//! cannot be mixed (Powertools Java #1281 compared one with the other).
//!
//! Durations inside one process (cache ages) use `std::time::Instant`, which is monotonic; this is
//! only for times that are stored or compared with stored values. Domain code takes `now` as a
//! parameter; only the edge reads a [`Clock`].

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The current UTC time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved: for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    /// A clock at the given Unix time (seconds).
    pub fn at_unix(seconds: i64) -> Self {
        Self::new(
            OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.saturating_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn seconds_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EpochMillis(i64);

impl EpochMillis {
    pub const fn new(millis: i64) -> Self {
        EpochMillis(millis)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// The instant a [`Clock`] read, to the millisecond (rounded down).
    pub fn at(instant: OffsetDateTime) -> Self {
        let millis = instant.unix_timestamp_nanos().div_euclid(1_000_000);
        EpochMillis(i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX }))
    }

    /// `lambda_runtime::Context::deadline`: epoch milliseconds as `u64`.
    pub fn from_lambda_deadline(deadline: u64) -> Self {
        EpochMillis(i64::try_from(deadline).unwrap_or(i64::MAX))
    }

    /// The whole seconds that have fully passed (rounds down).
    pub const fn floor_seconds(self) -> EpochSeconds {
        EpochSeconds(self.0.div_euclid(1000))
    }

    /// The first whole second at or after this instant (rounds up).
    pub const fn ceil_seconds(self) -> EpochSeconds {
        EpochSeconds(self.0.div_euclid(1000) + (self.0.rem_euclid(1000) != 0) as i64)
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        EpochMillis(self.0.saturating_add(millis_of(duration)))
    }

    pub fn saturating_sub(self, duration: Duration) -> Self {
        EpochMillis(self.0.saturating_sub(millis_of(duration)))
    }
}

impl fmt::Display for EpochMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Seconds since the Unix epoch: what DynamoDB TTL attributes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EpochSeconds(i64);

impl EpochSeconds {
    pub const fn new(seconds: i64) -> Self {
        EpochSeconds(seconds)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub const fn to_millis(self) -> EpochMillis {
        EpochMillis(self.0.saturating_mul(1000))
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        EpochSeconds(self.0.saturating_add(seconds_of(duration)))
    }
}

impl fmt::Display for EpochSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix(1_800_000_000);
        assert_eq!(clock.now().unix_timestamp(), 1_800_000_000);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now().unix_timestamp(), 1_800_000_090);
    }

    #[test]
    fn seconds_round_as_named() {
        assert_eq!(
            EpochMillis::new(1_999).floor_seconds(),
            EpochSeconds::new(1)
        );
        assert_eq!(EpochMillis::new(1_999).ceil_seconds(), EpochSeconds::new(2));
        assert_eq!(EpochMillis::new(2_000).ceil_seconds(), EpochSeconds::new(2));
        assert_eq!(EpochMillis::new(-1).floor_seconds(), EpochSeconds::new(-1));
        assert_eq!(EpochSeconds::new(7).to_millis(), EpochMillis::new(7_000));
    }

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let end = EpochMillis::new(i64::MAX - 1).saturating_add(Duration::from_secs(10));
        assert_eq!(end, EpochMillis::new(i64::MAX));
        assert_eq!(
            EpochMillis::from_lambda_deadline(u64::MAX),
            EpochMillis::new(i64::MAX)
        );
        assert_eq!(
            EpochSeconds::new(i64::MAX).to_millis(),
            EpochMillis::new(i64::MAX)
        );
    }

    #[test]
    fn a_clock_reading_becomes_epoch_milliseconds() {
        let clock = ManualClock::at_unix(1_800_000_000);
        clock.advance(Duration::from_millis(1_250));
        assert_eq!(
            EpochMillis::at(clock.now()),
            EpochMillis::new(1_800_000_001_250)
        );
    }

    #[test]
    fn serialised_as_bare_numbers() {
        assert_eq!(
            serde_json::to_string(&EpochMillis::new(1_700_000_000_123)).ok(),
            Some("1700000000123".to_owned())
        );
    }
}
