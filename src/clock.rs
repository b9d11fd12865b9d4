//! Where the service layer reads the time. The core never reads a clock: it takes `now`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock (`chrono::Utc::now`), truncated to the microsecond: what every
/// store keeps exactly, so a time read here round-trips through any store unchanged.
///
/// ```
/// use onboarding_token::{Clock, SystemClock};
/// use chrono::{Timelike, Utc};
/// let before = Utc::now();
/// let now = SystemClock.now();
/// assert!(now >= before - chrono::TimeDelta::microseconds(1));
/// assert_eq!(now.nanosecond() % 1000, 0);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that only moves when told to: for tests, examples and simulations.
///
/// Clones share the same time.
///
/// ```
/// use onboarding_token::{Clock, ManualClock};
/// use chrono::{TimeDelta, TimeZone, Utc};
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
/// clock.advance(TimeDelta::hours(1));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start` (kept to the microsecond).
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(start.timestamp_micros())))
    }

    /// Sets the time (it may move backwards).
    pub fn set(&self, now: DateTime<Utc>) {
        self.0.store(now.timestamp_micros(), Ordering::SeqCst);
    }

    /// Moves the time by `delta` (negative moves it back).
    pub fn advance(&self, delta: TimeDelta) {
        let micros = delta.num_microseconds().unwrap_or(i64::MAX);
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_reads_the_wall_clock_to_the_microsecond() {
        let before = Utc::now();
        let now = SystemClock.now();
        let after = Utc::now();
        assert!(now <= after);
        assert!(now >= before.trunc_subsecs(6));
        assert_eq!(now.timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
        let clock = ManualClock::new(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start.trunc_subsecs(6));
        other.advance(TimeDelta::seconds(-30));
        assert_eq!(clock.now(), start.trunc_subsecs(6) - TimeDelta::seconds(30));
    }
}
