//! [`Revocation`]: when and why a token was revoked, valid by construction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::SpecError;

/// When and why a token was revoked.
///
/// Only [`Revocation::new`] (and deserialization, which goes through it) makes one, so every
/// revocation a store receives has a reason within [`Revocation::MAX_REASON`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RevocationFields")]
pub struct Revocation {
    revoked_at: DateTime<Utc>,
    reason: String,
}

/// The serialized form of a [`Revocation`], checked by [`Revocation::new`] on the way in.
#[derive(Deserialize)]
struct RevocationFields {
    revoked_at: DateTime<Utc>,
    reason: String,
}

impl TryFrom<RevocationFields> for Revocation {
    type Error = SpecError;
    fn try_from(fields: RevocationFields) -> Result<Self, SpecError> {
        Self::new(fields.revoked_at, fields.reason)
    }
}

impl Revocation {
    /// The bound on the reason, in bytes.
    pub const MAX_REASON: usize = 1024;

    /// A revocation at `revoked_at` for `reason`; [`SpecError::ReasonTooLong`] past
    /// [`MAX_REASON`](Revocation::MAX_REASON) bytes.
    pub fn new(revoked_at: DateTime<Utc>, reason: impl Into<String>) -> Result<Self, SpecError> {
        let reason = reason.into();
        if reason.len() > Self::MAX_REASON {
            return Err(SpecError::ReasonTooLong {
                max: Self::MAX_REASON,
            });
        }
        Ok(Self { revoked_at, reason })
    }

    /// When the revocation took effect.
    pub fn revoked_at(&self) -> DateTime<Utc> {
        self.revoked_at
    }

    /// Why, in the admin's words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
