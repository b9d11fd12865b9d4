//! The redemption decision, in one pure place.
//!
//! Every store, in memory or SQL, calls [`decide`] (or, where one SQL statement expresses
//! the same rules, is checked against it by the model-based tests), so there is one source of
//! truth for what a redemption does.

use chrono::{DateTime, Utc};

use super::codec::VerifiedToken;
pub use super::decision::Decision;
use super::enrollment::Enrollment;
use super::error::Rejection;
use super::name::DeviceId;
use super::record::Token;
pub use super::validity::Leeway;
use super::validity::Status;

/// A token's status at `now`.
///
/// Precedence: revoked, then expired, then pending, then exhausted, then active.
pub fn status_at(token: &Token, now: DateTime<Utc>, leeway: Leeway) -> Status {
    token.status_at_with(now, leeway)
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
            revoked_at: revocation.revoked_at(),
        });
    }
    if let Some(problem) = token.validity().problem_at(request.now, request.leeway) {
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
