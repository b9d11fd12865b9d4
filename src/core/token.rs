//! The token record and its parts: ids, usage limit, validity window, metadata, status,
//! and the specification a token is issued from.
//!
//! Each part lives in a file of its own under `core/`; this module gathers them under the
//! path users know.

pub use super::error::SpecError;
pub use super::id::{BatchId, InvalidId, TokenId};
pub use super::limit::UsageLimit;
pub use super::metadata::Metadata;
pub use super::record::{MAX_DESCRIPTION, MAX_POLICIES, Token, TokenParts};
pub use super::revocation::Revocation;
pub use super::spec::{ExpirySpec, TokenSpec};
pub use super::validity::{Expiry, InvalidStatus, Status, Validity};
