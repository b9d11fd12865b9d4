//! Device groups and policies: what an enrolled device is placed in and what it gets.

use serde::{Deserialize, Serialize};

use super::name::{Grammar, OrgId, name_type, plain_char};

name_type!(
    /// Identifies a device group, possibly as a hierarchical path such as `emea/berlin`.
    ///
    /// 1 to 255 bytes; `/`-separated segments of `A-Z a-z 0-9 - _ .`, none empty.
    /// Filtering and revoking by group include the group's descendants: revoking `emea`
    /// also revokes tokens for `emea/berlin`.
    ///
    /// ```
    /// use onboarding_token::GroupId;
    /// let berlin = GroupId::new("emea/berlin").unwrap();
    /// let emea = GroupId::new("emea").unwrap();
    /// assert!(berlin.is_within(&emea));
    /// assert_eq!(berlin.parent(), Some("emea"));
    /// assert!(GroupId::new("emea//berlin").is_err());
    /// ```
    GroupId,
    Grammar {
        kind: "group id",
        max_len: 255,
        allowed: "A-Z a-z 0-9 - _ . and / between segments",
        char_ok: plain_char,
        hierarchical: true,
    }
);

impl GroupId {
    /// The path segments, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.as_str().split('/')
    }

    /// The parent path, if this group is nested.
    pub fn parent(&self) -> Option<&str> {
        self.as_str().rsplit_once('/').map(|(parent, _)| parent)
    }

    /// Whether this group is `ancestor` itself or nested anywhere below it.
    pub fn is_within(&self, ancestor: &GroupId) -> bool {
        let (me, other) = (self.as_str(), ancestor.as_str());
        me == other
            || (me.len() > other.len()
                && me.starts_with(other)
                && me.as_bytes()[other.len()] == b'/')
    }
}

name_type!(
    /// Identifies a policy (a configuration profile, a restriction set, an app bundle).
    ///
    /// 1 to 128 bytes of `A-Z a-z 0-9 - _ .`.
    ///
    /// ```
    /// use onboarding_token::PolicyId;
    /// assert_eq!(PolicyId::new("wifi-corp").unwrap().as_str(), "wifi-corp");
    /// ```
    PolicyId,
    Grammar {
        kind: "policy id",
        max_len: 128,
        allowed: "A-Z a-z 0-9 - _ .",
        char_ok: plain_char,
        hierarchical: false,
    }
);

/// A device group as the MDM console shows it: its id (path) and a display name.
///
/// Tokens refer to groups by [`GroupId`]; this type is for the host application's catalog
/// and for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGroup {
    /// The group's id (its path).
    pub id: GroupId,
    /// A human-readable name, such as "Berlin office".
    pub name: String,
}

impl DeviceGroup {
    /// A group with a display name.
    pub fn new(id: GroupId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }
}

/// A policy as the MDM console shows it: id, display name and version.
///
/// Tokens refer to policies by [`PolicyId`]; the host application resolves the id to the
/// current version when it applies the policy after enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The policy's id.
    pub id: PolicyId,
    /// A human-readable name, such as "Corporate Wi-Fi".
    pub name: String,
    /// The policy's version, increased by the host application on every change.
    pub version: u32,
}

impl Policy {
    /// A policy at version 1.
    pub fn new(id: PolicyId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            version: 1,
        }
    }

    /// The same policy at another version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
}

/// Where a token's devices enroll and what they get: the organization, the device group and
/// the policies.
///
/// One value is shared (behind an `Arc`) by every token issued from the same
/// [`TokenSpec`](crate::TokenSpec), so a batch of 10,000 tokens keeps these names once, and
/// an [`Enrollment`](crate::Enrollment) takes it with one reference count instead of
/// copying three.
///
/// ```
/// use onboarding_token::{Assignment, GroupId, OrgId, PolicyId};
/// let assignment = Assignment::new(
///     OrgId::new("acme").unwrap(),
///     GroupId::new("emea/berlin").unwrap(),
///     [PolicyId::new("wifi-corp").unwrap()],
/// );
/// assert_eq!(assignment.group().as_str(), "emea/berlin");
/// assert_eq!(assignment.policies().len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    organization: OrgId,
    group: GroupId,
    #[serde(default)]
    policies: Box<[PolicyId]>,
}

impl Assignment {
    /// An assignment. The limits on policies (at most
    /// [`MAX_POLICIES`](crate::token::MAX_POLICIES), no duplicates) are checked when a
    /// token is built from it.
    pub fn new(
        organization: OrgId,
        group: GroupId,
        policies: impl IntoIterator<Item = PolicyId>,
    ) -> Self {
        Self {
            organization,
            group,
            policies: policies.into_iter().collect(),
        }
    }

    /// The organization devices enroll into.
    pub fn organization(&self) -> &OrgId {
        &self.organization
    }

    /// The device group enrolled devices join.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// The policies applied to enrolled devices.
    pub fn policies(&self) -> &[PolicyId] {
        &self.policies
    }

    /// Takes the assignment apart.
    pub(crate) fn into_parts(self) -> (OrgId, GroupId, Vec<PolicyId>) {
        (self.organization, self.group, self.policies.into_vec())
    }

    pub(crate) fn set_policies(&mut self, policies: impl IntoIterator<Item = PolicyId>) {
        self.policies = policies.into_iter().collect();
    }
}
