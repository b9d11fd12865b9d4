//! When a token may be redeemed: its window ([`Validity`], [`Expiry`]), the clock
//! [`Leeway`], and the [`Status`] a token has at an instant.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::error::{Rejection, SpecError};

/// When a token stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// At this instant (exclusive: the token is expired from this instant on).
    At(DateTime<Utc>),
    /// Never; only revocation or exhaustion stops the token.
    Never,
}

impl Expiry {
    /// The expiry instant, if any.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::At(t) => Some(*t),
            Self::Never => None,
        }
    }
}

/// The window in which a token can be redeemed: `[not_before, expiry)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Validity {
    /// When the deployment window opens; `None` means at issue.
    pub not_before: Option<DateTime<Utc>>,
    /// When the token expires.
    pub expiry: Expiry,
}

impl Validity {
    /// The lifetime used when an issuer says nothing: 7 days after the window opens (after
    /// issue when there is no not-before).
    pub const DEFAULT_TTL: TimeDelta = TimeDelta::days(7);

    /// Valid from issue at `now` for [`DEFAULT_TTL`](Validity::DEFAULT_TTL).
    ///
    /// Saturates at the end of representable time.
    pub fn default_from(now: DateTime<Utc>) -> Self {
        Self {
            not_before: None,
            expiry: Expiry::At(
                now.checked_add_signed(Self::DEFAULT_TTL)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
        }
    }
}

/// A token's state at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The window has not opened yet.
    Pending,
    /// Redeemable.
    Active,
    /// Every allowed use has been taken.
    Exhausted,
    /// The window has closed.
    Expired,
    /// An administrator revoked it.
    Revoked,
}

impl Status {
    /// Every status, in display order.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Active,
        Status::Exhausted,
        Status::Expired,
        Status::Revoked,
    ];

    /// The lowercase name (`"active"`, ...), as used in serde, URLs and the CLI.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Exhausted => "exhausted",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name was not recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown status; expected pending, active, exhausted, expired or revoked")]
pub struct InvalidStatus;

impl std::str::FromStr for Status {
    type Err = InvalidStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(InvalidStatus)
    }
}

/// Tolerance for clock skew between the server and whoever set the window.
///
/// Applied symmetrically: with leeway `L` a token is redeemable in
/// `[not_before - L, expires_at + L)`. The default is zero.
///
/// ```
/// use onboarding_token::Leeway;
/// use chrono::TimeDelta;
/// assert_eq!(Leeway::default(), Leeway::ZERO);
/// assert!(Leeway::new(TimeDelta::seconds(-1)).is_none());
/// assert_eq!(Leeway::new(TimeDelta::seconds(30)).unwrap().as_delta(), TimeDelta::seconds(30));
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Leeway(#[serde(with = "leeway_secs")] TimeDelta);

mod leeway_secs {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_milliseconds())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
        let ms = i64::deserialize(d)?;
        match TimeDelta::try_milliseconds(ms) {
            Some(t) if t >= TimeDelta::zero() && t <= super::Leeway::MAX.0 => Ok(t),
            _ => Err(serde::de::Error::custom("leeway out of range")),
        }
    }
}

impl Leeway {
    /// No tolerance.
    pub const ZERO: Leeway = Leeway(TimeDelta::zero());
    /// The largest leeway accepted: one day.
    pub const MAX: Leeway = Leeway(TimeDelta::days(1));

    /// A leeway; `None` when negative or above [`Leeway::MAX`].
    pub fn new(delta: TimeDelta) -> Option<Self> {
        (delta >= TimeDelta::zero() && delta <= Self::MAX.0).then_some(Self(delta))
    }

    /// The tolerance as a duration.
    pub fn as_delta(&self) -> TimeDelta {
        self.0
    }
}

impl Validity {
    /// Why the window is closed at `now` with `leeway`, if it is: [`Rejection::NotYetValid`]
    /// or [`Rejection::Expired`].
    pub(crate) fn problem_at(&self, now: DateTime<Utc>, leeway: Leeway) -> Option<Rejection> {
        if let Some(not_before) = self.not_before {
            // A bound that would leave the representable range is unbounded on that side.
            let opens = not_before.checked_sub_signed(leeway.0);
            if opens.is_some_and(|opens| now < opens) {
                return Some(Rejection::NotYetValid { not_before, now });
            }
        }
        if let Expiry::At(expires_at) = self.expiry {
            let closes = expires_at.checked_add_signed(leeway.0);
            if closes.is_some_and(|closes| now >= closes) {
                return Some(Rejection::Expired { expires_at, now });
            }
        }
        None
    }

    /// Checks that the window is not empty.
    pub(crate) fn check(&self) -> Result<(), SpecError> {
        if let (Some(not_before), Expiry::At(expires_at)) = (self.not_before, self.expiry) {
            if not_before >= expires_at {
                return Err(SpecError::EmptyWindow {
                    not_before,
                    expires_at,
                });
            }
        }
        Ok(())
    }
}

/// `t` rounded down to whole microseconds, the precision every store keeps.
pub(crate) fn floor_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
