//! Errors, in layers: decoding, redemption rejections, store failures, and the uniform
//! device-facing form.

use std::error::Error as StdError;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::DecodeError;
use super::id::{KeyId, TokenId};
use super::name::InvalidName;
use super::policy::PolicyId;

/// Why a token was not redeemed: precise, for logs and admins.
///
/// Show devices [`device_facing`](Rejection::device_facing) instead, which does not tell a
/// forged token from an unknown one. No message contains the token string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The string is not a token.
    #[error("malformed token: {0}")]
    Malformed(#[from] DecodeError),
    /// The key id is not in the keyring.
    #[error("token was signed with unknown key {0}")]
    UnknownKey(KeyId),
    /// The tag does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// The signature verified but the store has no such token (or it was issued under
    /// another key).
    #[error("token {id} is not in the store")]
    NotFound {
        /// The token id.
        id: TokenId,
    },
    /// An administrator revoked the token.
    #[error("token was revoked at {revoked_at}")]
    Revoked {
        /// When.
        revoked_at: DateTime<Utc>,
    },
    /// The deployment window has not opened.
    #[error("token is not valid before {not_before} (now {now})")]
    NotYetValid {
        /// When it opens.
        not_before: DateTime<Utc>,
        /// The time of the attempt.
        now: DateTime<Utc>,
    },
    /// The token has expired.
    #[error("token expired at {expires_at} (now {now})")]
    Expired {
        /// When it expired.
        expires_at: DateTime<Utc>,
        /// The time of the attempt.
        now: DateTime<Utc>,
    },
    /// Every allowed use has been taken by other devices.
    #[error("token is exhausted: all {limit} uses taken")]
    Exhausted {
        /// The usage limit.
        limit: u32,
    },
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::UnknownKey(k) => Rejection::UnknownKey(k),
            VerifyError::BadSignature => Rejection::BadSignature,
        }
    }
}

impl Rejection {
    /// The form to show a device: the same for malformed, forged, unknown-key and unknown
    /// tokens, so nobody can probe which tokens exist.
    pub fn device_facing(&self) -> DeviceRejection {
        match self {
            Rejection::Malformed(_)
            | Rejection::UnknownKey(_)
            | Rejection::BadSignature
            | Rejection::NotFound { .. } => DeviceRejection::InvalidToken,
            Rejection::Revoked { .. } => DeviceRejection::Revoked,
            Rejection::NotYetValid { .. } => DeviceRejection::NotYetValid,
            Rejection::Expired { .. } => DeviceRejection::Expired,
            Rejection::Exhausted { .. } => DeviceRejection::Exhausted,
        }
    }
}

/// What a device is told when enrollment fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceRejection {
    /// Malformed, forged, unknown: indistinguishable on purpose.
    #[error("invalid token: check that it was scanned or typed correctly")]
    InvalidToken,
    /// Revoked by an administrator.
    #[error("this enrollment token has been revoked; ask your administrator for a new one")]
    Revoked,
    /// The deployment window has not opened.
    #[error("this enrollment token is not valid yet; try again when the enrollment window opens")]
    NotYetValid,
    /// Expired.
    #[error("this enrollment token has expired; ask your administrator for a new one")]
    Expired,
    /// Used up.
    #[error("this enrollment token has already been used by as many devices as allowed")]
    Exhausted,
    /// The server could not complete the request.
    #[error("enrollment is temporarily unavailable; try again shortly")]
    Unavailable,
}

impl DeviceRejection {
    /// A short machine-readable code: `invalid token`, `revoked`, `not yet valid`,
    /// `expired`, `exhausted`, `unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceRejection::InvalidToken => "invalid token",
            DeviceRejection::Revoked => "revoked",
            DeviceRejection::NotYetValid => "not yet valid",
            DeviceRejection::Expired => "expired",
            DeviceRejection::Exhausted => "exhausted",
            DeviceRejection::Unavailable => "unavailable",
        }
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A token with this id is already stored. Nothing was written.
    #[error("token {0} already exists")]
    Duplicate(TokenId),
    /// No token with this id.
    #[error("token {0} not found")]
    NotFound(TokenId),
    /// The request or a stored row broke the record's rules. Nothing was written.
    #[error("invalid record: {0}")]
    Invalid(#[from] SpecError),
    /// The backend failed (connection, I/O, constraint). Keeps the driver error as source.
    #[error("{backend} store failed: {message}")]
    Backend {
        /// The backend's name (`"sqlite"`, `"postgres"`, ...).
        backend: &'static str,
        /// What was being done.
        message: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

impl StoreError {
    /// Wraps a backend's error, keeping it as `source()`.
    pub fn backend(
        backend: &'static str,
        message: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        StoreError::Backend {
            backend,
            message,
            source: source.into(),
        }
    }
}

/// A redemption failed: either the token was rejected, or the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// The token was rejected.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The store failed; nothing was consumed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RedeemError {
    /// The form to show a device.
    pub fn device_facing(&self) -> DeviceRejection {
        match self {
            RedeemError::Rejected(r) => r.device_facing(),
            RedeemError::Store(_) => DeviceRejection::Unavailable,
        }
    }

    /// The rejection, if the token was rejected.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            RedeemError::Rejected(r) => Some(r),
            RedeemError::Store(_) => None,
        }
    }
}

impl From<DecodeError> for RedeemError {
    fn from(e: DecodeError) -> Self {
        RedeemError::Rejected(e.into())
    }
}

impl From<VerifyError> for RedeemError {
    fn from(e: VerifyError) -> Self {
        RedeemError::Rejected(e.into())
    }
}

/// An administrative operation (issue, revoke) failed; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The request broke a rule; nothing was stored.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The store failed; nothing was stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verification of a parsed token failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No key in the keyring has this id (never issued here, or retired).
    #[error("token was signed with key {0}, which is not in the keyring")]
    UnknownKey(KeyId),
    /// The tag does not match: the token was forged or altered.
    #[error("token signature does not verify")]
    BadSignature,
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
