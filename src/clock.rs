//! Where the service layer reads the time. The core never reads a clock: it takes `now`.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SubsecRound, TimeDelta, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock, to the microsecond (what every store keeps exactly).
///
/// It reads the time as `chrono::Utc::now` does, but converts it faster: every redemption
/// reads the clock, and turning a count of seconds into a calendar date costs about as much
/// as reading the clock itself. Each thread keeps the date of the day it last saw, so only
/// the first reading of a day does the calendar arithmetic.
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

thread_local! {
    /// The day (since the Unix epoch) this thread last read, and its date.
    static TODAY: Cell<(u64, NaiveDate)> = const { Cell::new((u64::MAX, NaiveDate::MIN)) };
}

const SECS_PER_DAY: u64 = 86_400;

impl SystemClock {
    /// The time `since_epoch` after the Unix epoch, to the microsecond; `None` past
    /// chrono's range.
    fn at(since_epoch: Duration) -> Option<DateTime<Utc>> {
        let secs = since_epoch.as_secs();
        let micros = since_epoch.subsec_micros();
        let day = secs / SECS_PER_DAY;
        let date = match TODAY.with(Cell::get) {
            (cached, date) if cached == day => date,
            _ => {
                let date = DateTime::from_timestamp(i64::try_from(day * SECS_PER_DAY).ok()?, 0)?
                    .date_naive();
                TODAY.with(|today| today.set((day, date)));
                date
            }
        };
        // Truncation intended: below a day's seconds.
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            (secs % SECS_PER_DAY) as u32,
            micros * 1000,
        )?;
        Some(NaiveDateTime::new(date, time).and_utc())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(Self::at)
            // Before 1970 or past chrono's range: chrono's own conversion.
            .unwrap_or_else(|| Utc::now().trunc_subsecs(6))
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
    use proptest::prelude::*;

    proptest! {
        /// The cached conversion gives chrono's answer, truncated to the microsecond, for
        /// any instant from 1970 to chrono's end, in any order (the cache changes days).
        #[test]
        fn system_clock_converts_like_chrono(
            instants in prop::collection::vec((0u64..8_000_000_000_000, 0u32..1_000_000_000), 1..20),
        ) {
            for (secs, nanos) in instants {
                let since = Duration::new(secs, nanos);
                let expected = DateTime::from_timestamp(secs as i64, nanos).map(|t| t.trunc_subsecs(6));
                prop_assert_eq!(SystemClock::at(since), expected);
            }
        }
    }

    #[test]
    fn system_clock_handles_day_boundaries_and_the_end_of_time() {
        for secs in [
            0,
            SECS_PER_DAY - 1,
            SECS_PER_DAY,
            20_000 * SECS_PER_DAY - 1,
            20_000 * SECS_PER_DAY,
        ] {
            let since = Duration::new(secs, 999_999_999);
            let expected = DateTime::from_timestamp(secs as i64, 999_999_000).unwrap();
            assert_eq!(SystemClock::at(since), Some(expected));
        }
        let last = DateTime::<Utc>::MAX_UTC.timestamp() as u64;
        assert!(SystemClock::at(Duration::from_secs(last)).is_some());
        assert_eq!(SystemClock::at(Duration::from_secs(last + 1)), None);
        assert_eq!(SystemClock::at(Duration::MAX), None);
        let now = SystemClock.now();
        assert!((now - Utc::now()).abs() < TimeDelta::seconds(5));
    }
}
