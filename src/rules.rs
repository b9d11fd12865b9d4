//! The redemption decision, in one pure place.
//!
//! Every store, in memory or SQL, calls [`decide`] (or, where one SQL statement expresses
//! the same rules, is checked against it by the model-based tests), so there is one source of
//! truth for what a redemption does.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::VerifiedToken;
use crate::enrollment::Enrollment;
use crate::error::Rejection;
use crate::name::DeviceId;
use crate::token::{Expiry, Status, Token};

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

/// Why a token is outside its window at `now`, if it is.
fn window_problem(token: &Token, now: DateTime<Utc>, leeway: Leeway) -> Option<Rejection> {
    let validity = token.validity();
    if let Some(not_before) = validity.not_before {
        // A bound that would leave the representable range is unbounded on that side.
        // Zero leeway (the default) needs no calendar arithmetic.
        let opens = if leeway.0.is_zero() {
            Some(not_before)
        } else {
            not_before.checked_sub_signed(leeway.0)
        };
        if opens.is_some_and(|opens| now < opens) {
            return Some(Rejection::NotYetValid { not_before, now });
        }
    }
    if let Expiry::At(expires_at) = validity.expiry {
        let closes = if leeway.0.is_zero() {
            Some(expires_at)
        } else {
            expires_at.checked_add_signed(leeway.0)
        };
        if closes.is_some_and(|closes| now >= closes) {
            return Some(Rejection::Expired { expires_at, now });
        }
    }
    None
}

/// A token's status at `now`.
///
/// Precedence: revoked, then expired, then pending, then exhausted, then active.
pub fn status_at(token: &Token, now: DateTime<Utc>, leeway: Leeway) -> Status {
    if token.revocation().is_some() {
        return Status::Revoked;
    }
    match window_problem(token, now, leeway) {
        Some(Rejection::Expired { .. }) => Status::Expired,
        Some(_) => Status::Pending,
        None if !token.usage_limit().allows_another(token.uses()) => Status::Exhausted,
        None => Status::Active,
    }
}

/// One redemption attempt, as a store receives it.
#[derive(Debug, Clone, Copy)]
pub struct RedeemRequest<'a> {
    /// The verified token (its key id must match the record's).
    pub token: VerifiedToken,
    /// The device enrolling.
    pub device: &'a DeviceId,
    /// The time of the attempt.
    pub now: DateTime<Utc>,
    /// The clock leeway.
    pub leeway: Leeway,
}

/// What a redemption does to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A new device: take one use, leaving `uses_after`, and record the device.
    Consume {
        /// The use count after this redemption.
        uses_after: u64,
    },
    /// The same device again (a retry): hand back the original enrollment, consume nothing.
    Replay {
        /// When the device first redeemed the token.
        first_redeemed_at: DateTime<Utc>,
    },
}

/// The redemption rules.
///
/// `prior` is when `request.device` already redeemed this token, if it did. Order of checks:
/// wrong key -> not found; revoked; not yet valid; expired; replay (the same device again:
/// consumes nothing); exhausted; otherwise consume one use.
///
/// ```
/// use onboarding_token::rules::{decide, Decision, Leeway, RedeemRequest};
/// use onboarding_token::*;
/// use chrono::{TimeZone, Utc};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let keyring = Keyring::new(SigningKey::generate(&mut rng));
/// let now = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
/// let token = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("sales").unwrap())
///     .into_token(TokenId::generate(&mut rng), keyring.active_key_id(), now, None)
///     .unwrap();
/// let verified = keyring.verify_str(keyring.sign(&token.id()).expose_secret()).unwrap();
/// let device = DeviceId::new("SN-1").unwrap();
/// let request = RedeemRequest { token: verified, device: &device, now, leeway: Leeway::ZERO };
/// assert_eq!(decide(&token, &request, None), Ok(Decision::Consume { uses_after: 1 }));
/// assert_eq!(decide(&token, &request, Some(now)), Ok(Decision::Replay { first_redeemed_at: now }));
/// ```
pub fn decide(
    token: &Token,
    request: &RedeemRequest<'_>,
    prior: Option<DateTime<Utc>>,
) -> Result<Decision, Rejection> {
    if token.id() != request.token.token_id() || token.key_id() != request.token.key_id() {
        return Err(Rejection::NotFound {
            id: request.token.token_id(),
        });
    }
    if let Some(revocation) = token.revocation() {
        return Err(Rejection::Revoked {
            revoked_at: revocation.revoked_at,
        });
    }
    if let Some(problem) = window_problem(token, request.now, request.leeway) {
        return Err(problem);
    }
    if let Some(first_redeemed_at) = prior {
        return Ok(Decision::Replay { first_redeemed_at });
    }
    let limit = token.usage_limit();
    if !limit.allows_another(token.uses()) {
        return Err(Rejection::Exhausted {
            limit: limit.max_uses().unwrap_or(u32::MAX),
        });
    }
    Ok(Decision::Consume {
        uses_after: token.uses().saturating_add(1),
    })
}

/// Runs [`decide`] and applies the outcome to `token`, returning the enrollment.
///
/// This is the whole read-modify-write a store performs under its lock or transaction:
/// on `Ok`, the caller persists the new use count (for a consuming redemption) and the
/// redemption record.
pub fn redeem_in_place(
    token: &mut Token,
    request: &RedeemRequest<'_>,
    prior: Option<DateTime<Utc>>,
) -> Result<(Decision, Enrollment), Rejection> {
    let decision = decide(token, request, prior)?;
    token.apply(&decision);
    let enrollment = Enrollment::new(token, &decision, request.now);
    Ok((decision, enrollment))
}
