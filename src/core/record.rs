//! The stored record of a token: [`Token`] and its parts for storage backends.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decision::Decision;
use super::error::{Rejection, SpecError};
use super::id::{BatchId, KeyId, TokenId};
use super::limit::UsageLimit;
use super::metadata::Metadata;
use super::name::{OrgId, shared_empty};
use super::policy::{Assignment, GroupId, PolicyId};
use super::revocation::Revocation;
use super::validity::{Leeway, Status, Validity};

/// The stored record of an onboarding token.
///
/// Cloning is cheap: names, policies, description and metadata are shared (`Arc`), so
/// handing a record or an enrollment back from a store does not copy strings.
///
/// Construct records with [`TokenSpec`](super::spec::TokenSpec) (issuance) or [`Token::from_parts`] (a storage
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

pub(super) fn check_policies(policies: &[PolicyId]) -> Result<(), SpecError> {
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

pub(super) fn description_arc(description: &str) -> Result<Arc<str>, SpecError> {
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
        parts.validity.check()?;
        if let Some(limit) = parts.usage_limit.max_uses() {
            if parts.uses > u64::from(limit) {
                return Err(SpecError::UsesExceedLimit {
                    uses: parts.uses,
                    limit,
                });
            }
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

    /// A fresh record issued from a checked specification (no uses, not revoked).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn issued(
        id: TokenId,
        key_id: KeyId,
        assignment: Arc<Assignment>,
        usage_limit: UsageLimit,
        validity: Validity,
        created_at: DateTime<Utc>,
        description: &str,
        metadata: Metadata,
        batch: Option<BatchId>,
    ) -> Result<Self, SpecError> {
        Ok(Self {
            id,
            key_id,
            assignment,
            usage_limit,
            uses: 0,
            validity,
            created_at,
            description: description_arc(description)?,
            metadata,
            batch,
            revocation: None,
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
        self.status_at_with(now, Leeway::ZERO)
    }

    /// The status at `now` with a clock leeway.
    ///
    /// Precedence: revoked, then expired, then pending, then exhausted, then active.
    pub fn status_at_with(&self, now: DateTime<Utc>, leeway: Leeway) -> Status {
        if self.revocation.is_some() {
            return Status::Revoked;
        }
        match self.validity.problem_at(now, leeway) {
            Some(Rejection::Expired { .. }) => Status::Expired,
            Some(_) => Status::Pending,
            None if !self.usage_limit.allows_another(self.uses) => Status::Exhausted,
            None => Status::Active,
        }
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
    pub fn apply(&mut self, decision: &Decision) {
        if let Decision::Consume { uses_after } = decision {
            self.uses = *uses_after;
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
