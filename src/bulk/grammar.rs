//! The small value grammars the CSV specification shares with a CLI or a server:
//! durations, expiries, times, usage limits, metadata and policy lists.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::core::name::InvalidName;
use crate::core::policy::PolicyId;
use crate::core::token::{ExpirySpec, Metadata, SpecError, UsageLimit};

/// A duration could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was given.
    #[error("duration is empty")]
    Empty,
    /// Not a sequence of number-unit pairs (`7d`, `1d12h`).
    #[error("duration must be numbers with units w, d, h, m or s, such as 90m, 36h, 7d or 1d12h")]
    Syntax,
    /// A unit came twice or out of order (`12h1d`).
    #[error("duration units must each appear once, largest first (1d12h, not 12h1d)")]
    UnitOrder,
    /// The duration is zero.
    #[error("duration must be positive")]
    Zero,
    /// The duration is too large.
    #[error("duration is too large")]
    Overflow,
}

/// Parses a duration: one or more `<number><unit>` pairs, units `w` (weeks), `d`, `h`,
/// `m` (minutes), `s`, each at most once and largest first. Case-insensitive, no spaces.
///
/// ```
/// use chrono::TimeDelta;
/// use onboarding_token::bulk::{parse_duration, DurationError};
/// assert_eq!(parse_duration("90m"), Ok(TimeDelta::minutes(90)));
/// assert_eq!(parse_duration("36h"), Ok(TimeDelta::hours(36)));
/// assert_eq!(parse_duration("7d"), Ok(TimeDelta::days(7)));
/// assert_eq!(parse_duration("2w"), Ok(TimeDelta::weeks(2)));
/// assert_eq!(parse_duration("1d12h"), Ok(TimeDelta::hours(36)));
/// assert_eq!(parse_duration("0d"), Err(DurationError::Zero));
/// assert_eq!(parse_duration("7"), Err(DurationError::Syntax));
/// ```
pub fn parse_duration(input: &str) -> Result<TimeDelta, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    const UNITS: [(char, i64); 5] = [
        ('w', 7 * 86_400),
        ('d', 86_400),
        ('h', 3_600),
        ('m', 60),
        ('s', 1),
    ];
    let mut total: i64 = 0;
    let mut last_unit = None::<usize>;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 18 {
            return Err(if digits > 18 {
                DurationError::Overflow
            } else {
                DurationError::Syntax
            });
        }
        let number: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        let unit = rest[digits..]
            .chars()
            .next()
            .map(|c| c.to_ascii_lowercase())
            .ok_or(DurationError::Syntax)?;
        let index = UNITS
            .iter()
            .position(|&(u, _)| u == unit)
            .ok_or(DurationError::Syntax)?;
        if last_unit.is_some_and(|last| index <= last) {
            return Err(DurationError::UnitOrder);
        }
        last_unit = Some(index);
        total = number
            .checked_mul(UNITS[index].1)
            .and_then(|s| total.checked_add(s))
            .ok_or(DurationError::Overflow)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err(DurationError::Zero);
    }
    TimeDelta::try_seconds(total).ok_or(DurationError::Overflow)
}

/// An expiry could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiryError {
    /// Neither an RFC 3339 time, nor `never`, nor a valid duration.
    #[error("expected an RFC 3339 time, a duration such as 7d, 36h or 90m, or `never`: {0}")]
    Invalid(#[source] DurationError),
}

/// Parses an expiry: `never`, an RFC 3339 time, or a duration after the window opens
/// ([`parse_duration`]).
///
/// ```
/// use onboarding_token::bulk::parse_expiry;
/// use onboarding_token::ExpirySpec;
/// assert_eq!(parse_expiry("never"), Ok(ExpirySpec::Never));
/// assert_eq!(parse_expiry("7d"), Ok(ExpirySpec::After(chrono::TimeDelta::days(7))));
/// assert!(matches!(parse_expiry("2030-01-01T00:00:00Z"), Ok(ExpirySpec::At(_))));
/// assert!(parse_expiry("soon").is_err());
/// ```
pub fn parse_expiry(input: &str) -> Result<ExpirySpec, ExpiryError> {
    if input.eq_ignore_ascii_case("never") {
        return Ok(ExpirySpec::Never);
    }
    if let Ok(at) = parse_time(input) {
        return Ok(ExpirySpec::At(at));
    }
    parse_duration(input)
        .map(ExpirySpec::After)
        .map_err(ExpiryError::Invalid)
}

/// A time was not RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 time such as 2030-01-31T09:00:00Z or 2030-01-31T09:00:00+01:00")]
pub struct TimeError;

/// Parses an RFC 3339 time (with `Z` or an offset) into UTC.
pub fn parse_time(input: &str) -> Result<DateTime<Utc>, TimeError> {
    DateTime::parse_from_rfc3339(input)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| TimeError)
}

/// A usage limit was not a positive number, `once` or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number from 1 to 4294967295, `once` or `unlimited`")]
pub struct LimitError;

/// Parses a usage limit: a number of devices (1 or more), `once` or `unlimited`.
///
/// ```
/// use onboarding_token::bulk::parse_usage_limit;
/// use onboarding_token::UsageLimit;
/// assert_eq!(parse_usage_limit("25"), Ok(UsageLimit::limited(25).unwrap()));
/// assert_eq!(parse_usage_limit("unlimited"), Ok(UsageLimit::Unlimited));
/// assert!(parse_usage_limit("0").is_err());
/// ```
pub fn parse_usage_limit(input: &str) -> Result<UsageLimit, LimitError> {
    if input.eq_ignore_ascii_case("unlimited") {
        return Ok(UsageLimit::Unlimited);
    }
    if input.eq_ignore_ascii_case("once") {
        return Ok(UsageLimit::Once);
    }
    if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LimitError);
    }
    input
        .parse::<u32>()
        .ok()
        .and_then(UsageLimit::limited)
        .ok_or(LimitError)
}

/// Metadata text was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A pair has no `=`.
    #[error("metadata pairs must be key=value, separated by `;`")]
    MissingEquals,
    /// A key is empty.
    #[error("metadata keys must not be empty")]
    EmptyKey,
    /// A key came twice.
    #[error("metadata key `{0}` is given twice")]
    DuplicateKey(String),
    /// The metadata breaks a record rule (too large).
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Parses `key=value;key=value` (pieces trimmed, empty pieces skipped; a value may hold
/// `=` but not `;`).
///
/// ```
/// use onboarding_token::bulk::parse_metadata;
/// let meta = parse_metadata("site=berlin; cost_centre=4711;")?;
/// assert_eq!(meta.get("cost_centre"), Some("4711"));
/// # Ok::<(), onboarding_token::bulk::MetadataError>(())
/// ```
pub fn parse_metadata(input: &str) -> Result<Metadata, MetadataError> {
    let mut map = BTreeMap::new();
    for piece in input.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').ok_or(MetadataError::MissingEquals)?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(MetadataError::EmptyKey);
        }
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(MetadataError::DuplicateKey(key.chars().take(64).collect()));
        }
    }
    Ok(Metadata::from_map(map)?)
}

/// Parses policy ids separated by `;` (pieces trimmed, empty pieces skipped).
pub fn parse_policies(input: &str) -> Result<Vec<PolicyId>, InvalidName> {
    input
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PolicyId::new)
        .collect()
}
