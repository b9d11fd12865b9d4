//! The storage trait every backend implements, and the queries it answers.
//!
//! # Contract
//!
//! Every [`TokenStore`] must honour these rules; the conformance suite (feature `testing`)
//! checks them:
//!
//! 1. **Insert** fails with [`StoreError::Duplicate`] when the id exists and writes nothing.
//!    [`insert_batch`](TokenStore::insert_batch) is all-or-nothing: on any error no token of
//!    the batch is stored.
//! 2. **Redeem** is one indivisible step: the rule check ([`decide`](crate::rules::decide)) and the
//!    use-count update happen atomically with respect to every other redemption and
//!    revocation, on every connection and process sharing the store. With `K` uses left and
//!    `N` concurrent redeemers from distinct devices, exactly `min(K, N)` succeed. A device that
//!    already redeemed gets a replay (nothing consumed). A record whose key id differs from
//!    the request's is treated as not found.
//! 3. **Revoke** takes effect for the very next redemption once it returns; an already
//!    revoked token keeps its first revocation. Revoking by group includes its subgroups.
//! 4. **Get, list and redemptions** never consume a use.
//! 5. **Timestamps** round-trip with at least millisecond precision (the service truncates
//!    to microseconds, which every shipped backend keeps exactly).
//!
//! Backends supply atomicity (a lock, a row lock, a conditional update); the rules live in
//! [`rules`](crate::rules).
//!
//! The trait's methods return `impl Future + Send`, so a store is used generically (no
//! boxing) and from multi-threaded runtimes such as tokio under axum.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::enrollment::{Enrollment, Redemption};
use crate::core::error::{RedeemError, StoreError};
use crate::core::name::OrgId;
use crate::core::policy::{GroupId, PolicyId};
use crate::core::rules::{Leeway, RedeemRequest};
use crate::core::token::{BatchId, Revocation, Status, Token, TokenId};

pub mod any;
pub mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "postgres")]
pub use sql::postgres;
#[cfg(feature = "sqlite")]
pub use sql::sqlite;

/// Where a token lives: insert, look up, list, redeem atomically, revoke.
///
/// See the [module docs](self) for the contract every implementation honours.
pub trait TokenStore: Send + Sync {
    /// Stores a new token. Fails with [`StoreError::Duplicate`] if the id exists.
    fn insert(&self, token: Token) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores many tokens, all or nothing.
    fn insert_batch(
        &self,
        tokens: Vec<Token>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The token with this id, if any. Consumes nothing.
    fn get(&self, id: TokenId) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send;

    /// One page of tokens matching `query`, ordered by creation time then id.
    fn list(
        &self,
        query: &TokenQuery,
    ) -> impl Future<Output = Result<TokenPage, StoreError>> + Send;

    /// Checks the rules and records the redemption, as one indivisible step.
    fn redeem(
        &self,
        request: &RedeemRequest<'_>,
    ) -> impl Future<Output = Result<Enrollment, RedeemError>> + Send;

    /// Revokes the matching tokens; returns how many were newly revoked.
    ///
    /// Revoking a single token that does not exist fails with [`StoreError::NotFound`].
    fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The devices that redeemed this token, oldest first.
    fn redemptions(
        &self,
        id: TokenId,
    ) -> impl Future<Output = Result<Vec<Redemption>, StoreError>> + Send;
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        impl<T: TokenStore + ?Sized> TokenStore for $ty {
            fn insert(&self, token: Token) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).insert(token)
            }
            fn insert_batch(&self, tokens: Vec<Token>) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).insert_batch(tokens)
            }
            fn get(&self, id: TokenId) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send {
                (**self).get(id)
            }
            fn list(&self, query: &TokenQuery) -> impl Future<Output = Result<TokenPage, StoreError>> + Send {
                (**self).list(query)
            }
            fn redeem(&self, request: &RedeemRequest<'_>) -> impl Future<Output = Result<Enrollment, RedeemError>> + Send {
                (**self).redeem(request)
            }
            fn revoke(&self, target: &RevokeTarget, revocation: &Revocation) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).revoke(target, revocation)
            }
            fn redemptions(&self, id: TokenId) -> impl Future<Output = Result<Vec<Redemption>, StoreError>> + Send {
                (**self).redemptions(id)
            }
        }
    )*};
}

forward_store!(Arc<T>, &T, Box<T>);

/// Which tokens a revocation applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevokeTarget {
    /// One token.
    Token(TokenId),
    /// Every token of a group, and of its subgroups, in an organization.
    Group {
        /// The organization.
        organization: OrgId,
        /// The group (subgroups included).
        group: GroupId,
    },
    /// Every token of a bulk batch.
    Batch(BatchId),
}

impl RevokeTarget {
    /// Whether `token` is covered by this target.
    pub fn matches(&self, token: &Token) -> bool {
        match self {
            RevokeTarget::Token(id) => token.id() == *id,
            RevokeTarget::Group {
                organization,
                group,
            } => token.organization() == organization && token.group().is_within(group),
            RevokeTarget::Batch(batch) => token.batch() == Some(*batch),
        }
    }
}

/// Where a page of a listing starts: after the token created at `created_at` with `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageCursor {
    /// The last listed token's creation time.
    pub created_at: DateTime<Utc>,
    /// The last listed token's id.
    pub id: TokenId,
}

impl PageCursor {
    /// The cursor just after `token`.
    pub fn after(token: &Token) -> Self {
        Self {
            created_at: token.created_at(),
            id: token.id(),
        }
    }
}

impl fmt::Display for PageCursor {
    /// `<unix microseconds>.<token id>`, safe in URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.timestamp_micros(), self.id)
    }
}

/// A page cursor string could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid page cursor")]
pub struct InvalidCursor;

impl std::str::FromStr for PageCursor {
    type Err = InvalidCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (micros, id) = s.split_once('.').ok_or(InvalidCursor)?;
        let micros: i64 = micros.parse().map_err(|_| InvalidCursor)?;
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?,
            id: id.parse().map_err(|_| InvalidCursor)?,
        })
    }
}

impl Serialize for PageCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PageCursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Filters and paging for [`TokenStore::list`].
///
/// Built with [`TokenQuery::new`] and the `with_*` methods, which keep every field valid
/// (the page size within `1..=`[`MAX_LIMIT`](TokenQuery::MAX_LIMIT)), so a store reads the
/// getters and trusts them.
///
/// ```
/// use onboarding_token::{OrgId, Status, TokenQuery};
/// let query = TokenQuery::new(chrono::Utc::now())
///     .with_organization(OrgId::new("acme").unwrap())
///     .with_status(Status::Active)
///     .with_limit(50);
/// assert_eq!(query.limit(), 50);
/// assert_eq!(query.with_limit(0).limit(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    organization: Option<OrgId>,
    group: Option<GroupId>,
    policy: Option<PolicyId>,
    status: Option<Status>,
    batch: Option<BatchId>,
    now: DateTime<Utc>,
    leeway: Leeway,
    after: Option<PageCursor>,
    limit: usize,
}

impl TokenQuery {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 100;
    /// The largest page size.
    pub const MAX_LIMIT: usize = 1000;

    /// All tokens, statuses computed at `now`, first page of
    /// [`DEFAULT_LIMIT`](TokenQuery::DEFAULT_LIMIT).
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            organization: None,
            group: None,
            policy: None,
            status: None,
            batch: None,
            now,
            leeway: Leeway::ZERO,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Only this organization.
    pub fn with_organization(mut self, organization: OrgId) -> Self {
        self.organization = Some(organization);
        self
    }
    /// Only this group and its subgroups.
    pub fn with_group(mut self, group: GroupId) -> Self {
        self.group = Some(group);
        self
    }
    /// Only tokens carrying this policy.
    pub fn with_policy(mut self, policy: PolicyId) -> Self {
        self.policy = Some(policy);
        self
    }
    /// Only tokens with this status at [`now`](TokenQuery::now).
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }
    /// Only this batch.
    pub fn with_batch(mut self, batch: BatchId) -> Self {
        self.batch = Some(batch);
        self
    }
    /// Statuses computed with this leeway.
    pub fn with_leeway(mut self, leeway: Leeway) -> Self {
        self.leeway = leeway;
        self
    }
    /// Start after this cursor (the `next` of the previous page).
    pub fn with_after(mut self, cursor: PageCursor) -> Self {
        self.after = Some(cursor);
        self
    }
    /// Page size, clamped to `1..=MAX_LIMIT`.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, Self::MAX_LIMIT);
        self
    }

    /// The organization filter.
    pub fn organization(&self) -> Option<&OrgId> {
        self.organization.as_ref()
    }
    /// The group filter (subgroups included).
    pub fn group(&self) -> Option<&GroupId> {
        self.group.as_ref()
    }
    /// The policy filter.
    pub fn policy(&self) -> Option<&PolicyId> {
        self.policy.as_ref()
    }
    /// The status filter.
    pub fn status(&self) -> Option<Status> {
        self.status
    }
    /// The batch filter.
    pub fn batch(&self) -> Option<BatchId> {
        self.batch
    }
    /// The instant statuses are computed at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
    /// The leeway statuses are computed with.
    pub fn leeway(&self) -> Leeway {
        self.leeway
    }
    /// Where the page starts.
    pub fn after(&self) -> Option<PageCursor> {
        self.after
    }
    /// The page size, within `1..=MAX_LIMIT`.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `token` passes the filters (ignoring paging).
    pub fn matches(&self, token: &Token) -> bool {
        self.organization
            .as_ref()
            .is_none_or(|o| token.organization() == o)
            && self
                .group
                .as_ref()
                .is_none_or(|g| token.group().is_within(g))
            && self
                .policy
                .as_ref()
                .is_none_or(|p| token.policies().contains(p))
            && self.batch.is_none_or(|b| token.batch() == Some(b))
            && self
                .status
                .is_none_or(|s| token.status_at_with(self.now, self.leeway) == s)
            && self.after.is_none_or(|c| PageCursor::after(token) > c)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPage {
    /// The tokens, ordered by creation time then id.
    pub tokens: Vec<Token>,
    /// Where the next page starts, if there may be more.
    pub next: Option<PageCursor>,
}

impl TokenPage {
    /// Builds a page from matching tokens already sorted, at most `limit + 1` of them:
    /// the extra one only signals that another page exists.
    pub fn from_sorted(mut tokens: Vec<Token>, limit: usize) -> Self {
        let next = if tokens.len() > limit {
            tokens.truncate(limit);
            tokens.last().map(PageCursor::after)
        } else {
            None
        };
        Self { tokens, next }
    }
}
