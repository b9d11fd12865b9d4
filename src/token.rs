//! The token record and its parts: ids, usage limit, validity window, metadata, status.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::keys::KeyId;
use crate::name::{InvalidName, OrgId, shared_empty};
use crate::policy::{Assignment, GroupId, PolicyId};

/// An id string could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: expected {expected} lowercase hex digits")]
pub struct InvalidId {
    kind: &'static str,
    expected: usize,
}

pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().take(16).enumerate() {
        buf[2 * i] = HEX[usize::from(b >> 4)];
        buf[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    let len = 2 * bytes.len().min(16);
    f.write_str(std::str::from_utf8(&buf[..len]).unwrap_or(""))
}

pub(crate) fn parse_hex<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N], InvalidId> {
    let err = InvalidId {
        kind,
        expected: 2 * N,
    };
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return Err(err);
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(err),
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(s[2 * i])? << 4 | nibble(s[2 * i + 1])?;
    }
    Ok(out)
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 16]);

        impl $name {
            /// The length in bytes.
            pub const LEN: usize = 16;

            /// A fresh random id (128 bits from `rng`).
            pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            /// 32 lowercase hex digits.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex($kind, s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

random_id!(
    /// A token's public handle: 128 random bits, shown as 32 lowercase hex digits.
    ///
    /// Safe to log, list and put in URLs: it cannot be redeemed without the signed string.
    ///
    /// ```
    /// use onboarding_token::TokenId;
    /// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    /// let id = TokenId::generate(&mut rng);
    /// assert_eq!(id.to_string().len(), 32);
    /// assert_eq!(id.to_string().parse::<TokenId>().unwrap(), id);
    /// ```
    TokenId,
    "token id"
);

random_id!(
    /// Groups the tokens issued together in one bulk operation, so they can be listed
    /// and revoked together.
    BatchId,
    "batch id"
);

/// How many distinct devices may enroll with a token.
///
/// Single-use is the default. There is no zero or sentinel value for "unlimited".
///
/// ```
/// use onboarding_token::UsageLimit;
/// assert_eq!(UsageLimit::default(), UsageLimit::Once);
/// assert_eq!(UsageLimit::limited(5).unwrap().max_uses(), Some(5));
/// assert!(UsageLimit::limited(0).is_none());
/// assert_eq!(UsageLimit::Unlimited.max_uses(), None);
/// ```
///
/// Two limits are equal when they allow the same number of uses: `Limited(1)` equals `Once`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageLimit {
    /// One device (the default).
    #[default]
    Once,
    /// Up to this many distinct devices.
    Limited(NonZeroU32),
    /// Any number of devices, until the token expires or is revoked.
    Unlimited,
}

impl PartialEq for UsageLimit {
    fn eq(&self, other: &Self) -> bool {
        self.max_uses() == other.max_uses()
    }
}

impl Eq for UsageLimit {}

impl std::hash::Hash for UsageLimit {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.max_uses().hash(state);
    }
}

impl UsageLimit {
    /// A limit of `n` devices; `None` for zero. `limited(1)` is [`UsageLimit::Once`].
    pub fn limited(n: u32) -> Option<Self> {
        match n {
            0 => None,
            1 => Some(Self::Once),
            n => NonZeroU32::new(n).map(Self::Limited),
        }
    }

    /// The maximum number of uses, or `None` when unlimited.
    pub fn max_uses(&self) -> Option<u32> {
        match self {
            Self::Once => Some(1),
            Self::Limited(n) => Some(n.get()),
            Self::Unlimited => None,
        }
    }

    /// Whether a token that has been used `uses` times may be used once more.
    pub fn allows_another(&self, uses: u64) -> bool {
        self.max_uses().is_none_or(|max| uses < u64::from(max))
    }
}

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

/// Opaque key/value data chosen by the admin (an org unit, a site, a cost centre), returned
/// with every redemption. At most [`Metadata::MAX_BYTES`] of keys and values in all.
///
/// ```
/// use onboarding_token::Metadata;
/// let meta = Metadata::from_pairs([("site", "berlin"), ("cost_centre", "4711")]).unwrap();
/// assert_eq!(meta.get("site"), Some("berlin"));
/// assert!(Metadata::from_pairs([("big", "x".repeat(5000))]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata(Option<Arc<BTreeMap<String, String>>>);

impl Metadata {
    /// The bound on the sum of key and value lengths, in bytes.
    pub const MAX_BYTES: usize = 4096;

    /// No metadata.
    pub fn new() -> Self {
        Self(None)
    }

    /// Metadata from key/value pairs; a later duplicate key replaces an earlier one.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, SpecError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_map(map)
    }

    /// Metadata from a map.
    pub fn from_map(map: BTreeMap<String, String>) -> Result<Self, SpecError> {
        let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > Self::MAX_BYTES {
            return Err(SpecError::MetadataTooLarge {
                size,
                max: Self::MAX_BYTES,
            });
        }
        if map.keys().any(String::is_empty) {
            return Err(SpecError::EmptyMetadataKey);
        }
        Ok(Self((!map.is_empty()).then(|| Arc::new(map))))
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.as_ref()?.get(key).map(String::as_str)
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The pairs as a map (empty when there is no metadata).
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Self::from_map(map).map_err(serde::de::Error::custom)
    }
}

/// When and why a token was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When the revocation took effect.
    pub revoked_at: DateTime<Utc>,
    /// Why, in the admin's words (at most [`Revocation::MAX_REASON`] bytes).
    pub reason: String,
}

impl Revocation {
    /// The bound on the reason, in bytes.
    pub const MAX_REASON: usize = 1024;

    /// A revocation at `revoked_at` for `reason`.
    pub fn new(revoked_at: DateTime<Utc>, reason: impl Into<String>) -> Result<Self, SpecError> {
        let revocation = Self {
            revoked_at,
            reason: reason.into(),
        };
        revocation.validate()?;
        Ok(revocation)
    }

    /// Checks the bound on the reason (the fields are public, so stores check again before
    /// writing a revocation built by hand).
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.reason.len() > Self::MAX_REASON {
            return Err(SpecError::ReasonTooLong {
                max: Self::MAX_REASON,
            });
        }
        Ok(())
    }
}

/// A token specification or record broke one of the record's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A name did not meet its grammar.
    #[error(transparent)]
    Name(#[from] InvalidName),
    /// Too many policies.
    #[error("a token may carry at most {max} policies")]
    TooManyPolicies {
        /// The maximum.
        max: usize,
    },
    /// One policy was listed twice.
    #[error("policy {0} is listed twice")]
    DuplicatePolicy(PolicyId),
    /// The description is too long.
    #[error("description is longer than {max} bytes")]
    DescriptionTooLong {
        /// The maximum in bytes.
        max: usize,
    },
    /// The revocation reason is too long.
    #[error("revocation reason is longer than {max} bytes")]
    ReasonTooLong {
        /// The maximum in bytes.
        max: usize,
    },
    /// Metadata over its bound.
    #[error("metadata is {size} bytes; at most {max} are allowed")]
    MetadataTooLarge {
        /// The size given.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// A metadata key was empty.
    #[error("metadata keys must not be empty")]
    EmptyMetadataKey,
    /// The window closes before it opens.
    #[error("validity window is empty: not-before {not_before} is not before expiry {expires_at}")]
    EmptyWindow {
        /// The opening.
        not_before: DateTime<Utc>,
        /// The expiry.
        expires_at: DateTime<Utc>,
    },
    /// The expiry is not after the time of issue.
    #[error("expiry {expires_at} is not after the time of issue {issued_at}")]
    ExpiresBeforeIssue {
        /// The expiry.
        expires_at: DateTime<Utc>,
        /// The time of issue.
        issued_at: DateTime<Utc>,
    },
    /// A lifetime that is zero or negative.
    #[error("token lifetime must be positive")]
    NonPositiveLifetime,
    /// The window would end beyond the representable range of time.
    #[error("the validity window ends beyond the representable range of time")]
    TimeOutOfRange,
    /// The record's use count exceeds its limit.
    #[error("record has {uses} uses but a limit of {limit}")]
    UsesExceedLimit {
        /// The uses recorded.
        uses: u64,
        /// The limit.
        limit: u32,
    },
    /// A batch request with no tokens.
    #[error("a batch must contain at least one token")]
    EmptyBatch,
}

/// The stored record of an onboarding token.
///
/// Cloning is cheap: names, policies, description and metadata are shared (`Arc`), so
/// handing a record or an enrollment back from a store does not copy strings.
///
/// Construct records with [`TokenSpec`] (issuance) or [`Token::from_parts`] (a storage
/// backend loading a row); both enforce the same rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TokenParts", into = "TokenParts")]
pub struct Token {
    id: TokenId,
    key_id: KeyId,
    /// Organization, group and policies, shared with every token of the same specification.
    assignment: Arc<Assignment>,
    usage_limit: UsageLimit,
    uses: u64,
    validity: Validity,
    created_at: DateTime<Utc>,
    description: Arc<str>,
    metadata: Metadata,
    batch: Option<BatchId>,
    revocation: Option<Arc<Revocation>>,
}

/// Every field of a [`Token`], public, for storage backends and serde.
///
/// [`Token::from_parts`] checks the record's rules; [`Token::into_parts`] takes a record apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TokenParts {
    pub id: TokenId,
    pub key_id: KeyId,
    pub organization: OrgId,
    pub group: GroupId,
    pub policies: Vec<PolicyId>,
    pub usage_limit: UsageLimit,
    pub uses: u64,
    pub validity: Validity,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub metadata: Metadata,
    pub batch: Option<BatchId>,
    pub revocation: Option<Revocation>,
}

/// The most policies one token may carry.
pub const MAX_POLICIES: usize = 64;
/// The longest description, in bytes.
pub const MAX_DESCRIPTION: usize = 1024;

fn check_policies(policies: &[PolicyId]) -> Result<(), SpecError> {
    if policies.len() > MAX_POLICIES {
        return Err(SpecError::TooManyPolicies { max: MAX_POLICIES });
    }
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].contains(p) {
            return Err(SpecError::DuplicatePolicy(p.clone()));
        }
    }
    Ok(())
}

fn check_window(validity: &Validity) -> Result<(), SpecError> {
    if let (Some(not_before), Expiry::At(expires_at)) = (validity.not_before, validity.expiry) {
        if not_before >= expires_at {
            return Err(SpecError::EmptyWindow {
                not_before,
                expires_at,
            });
        }
    }
    Ok(())
}

/// `t` rounded down to whole microseconds, the precision every store keeps.
fn floor_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

fn description_arc(description: &str) -> Result<Arc<str>, SpecError> {
    if description.len() > MAX_DESCRIPTION {
        return Err(SpecError::DescriptionTooLong {
            max: MAX_DESCRIPTION,
        });
    }
    Ok(if description.is_empty() {
        shared_empty()
    } else {
        Arc::from(description)
    })
}

impl Token {
    /// Builds a record from its parts, checking the record's rules.
    pub fn from_parts(parts: TokenParts) -> Result<Self, SpecError> {
        check_policies(&parts.policies)?;
        check_window(&parts.validity)?;
        if let Some(limit) = parts.usage_limit.max_uses() {
            if parts.uses > u64::from(limit) {
                return Err(SpecError::UsesExceedLimit {
                    uses: parts.uses,
                    limit,
                });
            }
        }
        if let Some(r) = &parts.revocation {
            r.validate()?;
        }
        Ok(Self {
            id: parts.id,
            key_id: parts.key_id,
            assignment: Arc::new(Assignment::new(
                parts.organization,
                parts.group,
                parts.policies,
            )),
            usage_limit: parts.usage_limit,
            uses: parts.uses,
            validity: parts.validity,
            created_at: parts.created_at,
            description: description_arc(&parts.description)?,
            metadata: parts.metadata,
            batch: parts.batch,
            revocation: parts.revocation.map(Arc::new),
        })
    }

    /// Takes the record apart.
    pub fn into_parts(self) -> TokenParts {
        let (organization, group, policies) = Arc::unwrap_or_clone(self.assignment).into_parts();
        TokenParts {
            id: self.id,
            key_id: self.key_id,
            organization,
            group,
            policies,
            usage_limit: self.usage_limit,
            uses: self.uses,
            validity: self.validity,
            created_at: self.created_at,
            description: self.description.to_string(),
            metadata: self.metadata,
            batch: self.batch,
            revocation: self.revocation.map(Arc::unwrap_or_clone),
        }
    }

    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }
    /// The key its string form is signed with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// The organization devices enroll into.
    pub fn organization(&self) -> &OrgId {
        self.assignment.organization()
    }
    /// The device group enrolled devices join.
    pub fn group(&self) -> &GroupId {
        self.assignment.group()
    }
    /// The policies applied to enrolled devices.
    pub fn policies(&self) -> &[PolicyId] {
        self.assignment.policies()
    }
    /// Organization, group and policies together, shared with the other tokens of the same
    /// specification (cheap to clone).
    pub fn assignment(&self) -> &Arc<Assignment> {
        &self.assignment
    }
    /// Replaces the assignment with an equal one (a store's shared copy).
    pub(crate) fn share_assignment(&mut self, assignment: Arc<Assignment>) {
        debug_assert_eq!(assignment, self.assignment);
        self.assignment = assignment;
    }
    /// The usage limit.
    pub fn usage_limit(&self) -> UsageLimit {
        self.usage_limit
    }
    /// How many distinct devices have redeemed it.
    pub fn uses(&self) -> u64 {
        self.uses
    }
    /// The validity window.
    pub fn validity(&self) -> &Validity {
        &self.validity
    }
    /// When it was issued.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// The admin's description (may be empty).
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The admin's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// The bulk batch it was issued in, if any.
    pub fn batch(&self) -> Option<BatchId> {
        self.batch
    }
    /// The revocation, if revoked.
    pub fn revocation(&self) -> Option<&Revocation> {
        self.revocation.as_deref()
    }

    /// The status at `now`, with no leeway. See [`status_at_with`](Token::status_at_with).
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        crate::rules::status_at(self, now, crate::rules::Leeway::ZERO)
    }

    /// The status at `now` with a clock leeway.
    pub fn status_at_with(&self, now: DateTime<Utc>, leeway: crate::rules::Leeway) -> Status {
        crate::rules::status_at(self, now, leeway)
    }

    /// Records one more use. Stores call this through [`crate::rules::decide`]'s outcome.
    pub(crate) fn set_uses(&mut self, uses: u64) {
        self.uses = uses;
    }

    /// Marks the record revoked (keeps an earlier revocation). Returns whether it changed.
    pub fn revoke(&mut self, revocation: &Arc<Revocation>) -> bool {
        if self.revocation.is_some() {
            return false;
        }
        self.revocation = Some(Arc::clone(revocation));
        true
    }

    /// Applies a redemption decision to the record (advancing the use count), as a store
    /// does inside its atomic step.
    pub fn apply(&mut self, decision: &crate::rules::Decision) {
        if let crate::rules::Decision::Consume { uses_after } = decision {
            self.set_uses(*uses_after);
        }
    }
}

impl TryFrom<TokenParts> for Token {
    type Error = SpecError;
    fn try_from(parts: TokenParts) -> Result<Self, SpecError> {
        Token::from_parts(parts)
    }
}

impl From<Token> for TokenParts {
    fn from(token: Token) -> Self {
        token.into_parts()
    }
}

/// When a token to be issued should expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpirySpec {
    /// [`Validity::DEFAULT_TTL`] after the window opens (after issue when there is no
    /// not-before).
    #[default]
    Default,
    /// This long after the window opens (after issue when there is no not-before).
    After(#[serde(with = "duration_seconds")] TimeDelta),
    /// At this instant.
    At(DateTime<Utc>),
    /// Never.
    Never,
}

mod duration_seconds {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
        let secs = i64::deserialize(d)?;
        TimeDelta::try_seconds(secs)
            .ok_or_else(|| serde::de::Error::custom("duration out of range"))
    }
}

/// What an administrator asks for when issuing a token.
///
/// ```
/// use onboarding_token::{GroupId, OrgId, PolicyId, TokenSpec, UsageLimit};
/// let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("emea/berlin").unwrap())
///     .with_policies([PolicyId::new("wifi").unwrap(), PolicyId::new("vpn").unwrap()])
///     .with_usage_limit(UsageLimit::limited(25).unwrap())
///     .with_description("Berlin laptops, Q3 refresh");
/// assert_eq!(spec.usage_limit(), UsageLimit::limited(25).unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSpec {
    /// Shared by clones of the specification and by every token built from them.
    #[serde(flatten)]
    assignment: Arc<Assignment>,
    #[serde(default)]
    usage_limit: UsageLimit,
    #[serde(default)]
    not_before: Option<DateTime<Utc>>,
    #[serde(default)]
    expiry: ExpirySpec,
    #[serde(default)]
    description: String,
    #[serde(default)]
    metadata: Metadata,
}

impl TokenSpec {
    /// A single-use token for `group` in `organization`, expiring after the default lifetime.
    pub fn new(organization: OrgId, group: GroupId) -> Self {
        Self {
            assignment: Arc::new(Assignment::new(organization, group, [])),
            usage_limit: UsageLimit::Once,
            not_before: None,
            expiry: ExpirySpec::Default,
            description: String::new(),
            metadata: Metadata::new(),
        }
    }

    /// The policies to apply.
    pub fn with_policies(mut self, policies: impl IntoIterator<Item = PolicyId>) -> Self {
        Arc::make_mut(&mut self.assignment).set_policies(policies);
        self
    }
    /// How many devices may use it.
    pub fn with_usage_limit(mut self, limit: UsageLimit) -> Self {
        self.usage_limit = limit;
        self
    }
    /// When the deployment window opens.
    pub fn with_not_before(mut self, not_before: DateTime<Utc>) -> Self {
        self.not_before = Some(not_before);
        self
    }
    /// When it expires.
    pub fn with_expiry(mut self, expiry: ExpirySpec) -> Self {
        self.expiry = expiry;
        self
    }
    /// A description for the admin console.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
    /// Opaque metadata returned with every redemption.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The organization.
    pub fn organization(&self) -> &OrgId {
        self.assignment.organization()
    }
    /// The group.
    pub fn group(&self) -> &GroupId {
        self.assignment.group()
    }
    /// The policies.
    pub fn policies(&self) -> &[PolicyId] {
        self.assignment.policies()
    }
    /// Organization, group and policies together.
    pub fn assignment(&self) -> &Arc<Assignment> {
        &self.assignment
    }
    /// The usage limit.
    pub fn usage_limit(&self) -> UsageLimit {
        self.usage_limit
    }

    /// Checks the specification as [`into_token`](TokenSpec::into_token) would at `now`.
    ///
    /// The window's edges are kept to the microsecond (rounded down), as every store keeps
    /// them, so a window behaves the same on every backend.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<Validity, SpecError> {
        check_policies(self.assignment.policies())?;
        if self.description.len() > MAX_DESCRIPTION {
            return Err(SpecError::DescriptionTooLong {
                max: MAX_DESCRIPTION,
            });
        }
        let not_before = self.not_before.map(floor_micros);
        let opens = not_before.unwrap_or(now);
        let expiry = match self.expiry {
            ExpirySpec::Default => Expiry::At(
                opens
                    .max(now)
                    .checked_add_signed(Validity::DEFAULT_TTL)
                    .ok_or(SpecError::TimeOutOfRange)?,
            ),
            ExpirySpec::After(d) if d <= TimeDelta::zero() => {
                return Err(SpecError::NonPositiveLifetime);
            }
            ExpirySpec::After(d) => Expiry::At(
                opens
                    .checked_add_signed(d)
                    .ok_or(SpecError::TimeOutOfRange)?,
            ),
            ExpirySpec::At(t) => Expiry::At(t),
            ExpirySpec::Never => Expiry::Never,
        };
        let expiry = match expiry {
            Expiry::At(t) => Expiry::At(floor_micros(t)),
            Expiry::Never => Expiry::Never,
        };
        if let Expiry::At(expires_at) = expiry {
            if expires_at <= now {
                return Err(SpecError::ExpiresBeforeIssue {
                    expires_at,
                    issued_at: now,
                });
            }
        }
        let validity = Validity { not_before, expiry };
        check_window(&validity)?;
        Ok(validity)
    }

    /// Builds the record, issued at `now`. Pure: the id, key id and time come from the caller.
    pub fn into_token(
        self,
        id: TokenId,
        key_id: KeyId,
        now: DateTime<Utc>,
        batch: Option<BatchId>,
    ) -> Result<Token, SpecError> {
        let validity = self.validate(now)?;
        Ok(Token {
            id,
            key_id,
            assignment: self.assignment,
            usage_limit: self.usage_limit,
            uses: 0,
            validity,
            created_at: now,
            description: description_arc(&self.description)?,
            metadata: self.metadata,
            batch,
            revocation: None,
        })
    }
}
