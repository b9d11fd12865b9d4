//! What an administrator asks for when issuing: [`TokenSpec`] and [`ExpirySpec`].

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::id::{BatchId, KeyId, TokenId};
use super::limit::UsageLimit;
use super::metadata::Metadata;
use super::name::OrgId;
use super::policy::{Assignment, GroupId, PolicyId};
use super::record::{MAX_DESCRIPTION, Token, check_policies};
use super::validity::{Expiry, Validity, floor_micros};

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
        validity.check()?;
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
        Token::issued(
            id,
            key_id,
            self.assignment,
            self.usage_limit,
            validity,
            now,
            &self.description,
            self.metadata,
            batch,
        )
    }
}
