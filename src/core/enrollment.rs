//! What a successful redemption yields: the enrollment, and the record of who redeemed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decision::Decision;
use super::id::TokenId;
use super::limit::UsageLimit;
use super::metadata::Metadata;
use super::name::{DeviceId, OrgId};
use super::policy::{Assignment, GroupId, PolicyId};
use super::record::Token;

/// One device's redemption of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// The device that redeemed.
    pub device: DeviceId,
    /// When it first redeemed (replays do not add records).
    pub redeemed_at: DateTime<Utc>,
}

/// The result of a redemption: where the device enrolls and what it gets.
///
/// The host application places the device in [`group`](Enrollment::group), applies
/// [`policies`](Enrollment::policies), and may use `metadata`. When `replay` is true, the
/// same device had already redeemed this token (for example it retried after a network
/// failure); nothing was consumed, and the enrollment is the original one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The token redeemed.
    pub token_id: TokenId,
    /// The organization, device group and policies (shared with the token's record;
    /// serialized as the fields `organization`, `group` and `policies`).
    #[serde(flatten)]
    pub assignment: Arc<Assignment>,
    /// The admin's metadata.
    pub metadata: Metadata,
    /// Uses after this redemption.
    pub uses: u64,
    /// The token's usage limit.
    pub limit: UsageLimit,
    /// Whether this was the same device again (nothing consumed).
    pub replay: bool,
    /// When the device redeemed (for a replay, its first redemption).
    pub redeemed_at: DateTime<Utc>,
}

impl Enrollment {
    /// The enrollment for `token` (already updated) after `decision` at `now`.
    pub fn new(token: &Token, decision: &Decision, now: DateTime<Utc>) -> Self {
        let (replay, redeemed_at) = match decision {
            Decision::Consume { .. } => (false, now),
            Decision::Replay { first_redeemed_at } => (true, *first_redeemed_at),
        };
        Self {
            token_id: token.id(),
            assignment: Arc::clone(token.assignment()),
            metadata: token.metadata().clone(),
            uses: token.uses(),
            limit: token.usage_limit(),
            replay,
            redeemed_at,
        }
    }

    /// The organization the device enrolls into.
    pub fn organization(&self) -> &OrgId {
        self.assignment.organization()
    }

    /// The device group to place the device in.
    pub fn group(&self) -> &GroupId {
        self.assignment.group()
    }

    /// The policies to apply.
    pub fn policies(&self) -> &[PolicyId] {
        self.assignment.policies()
    }

    /// Uses left after this redemption, or `None` when unlimited.
    pub fn remaining(&self) -> Option<u64> {
        self.limit
            .max_uses()
            .map(|max| u64::from(max).saturating_sub(self.uses))
    }
}
