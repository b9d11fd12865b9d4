//! # onboarding-token
//!
//! Issue, represent, validate and redeem **onboarding tokens**: the credentials an MDM
//! (mobile device management) console hands out so devices can enroll into an organization.
//!
//! A token carries a device group, the policies to apply, a usage limit (single-use by
//! default, `N` devices, or unlimited), a validity window and the admin's metadata. Devices
//! receive its compact signed string (as a QR code, a link or typed text); the server
//! verifies the string, then redeems the token atomically and applies the group and policies.
//!
//! ## A core without I/O
//!
//! The core (`src/core/`: [`token`], [`policy`], [`codec`], [`keys`], [`error`],
//! [`enrollment`], [`rules`]) reads no clock and draws no randomness: `now` and random sources are arguments. Only [`Onboarding`] (the service) and
//! the stores touch a clock, an RNG or a database.
//!
//! | module | what |
//! |---|---|
//! | [`token`] | [`Token`] record, [`TokenId`], [`UsageLimit`], [`Validity`], [`Status`], [`TokenSpec`] |
//! | [`policy`] | [`DeviceGroup`], [`Policy`], their ids, and the [`Assignment`] a token carries |
//! | [`codec`] | string form: parse → [`UnverifiedToken`] → verify → [`VerifiedToken`] |
//! | [`keys`] | [`SigningKey`], [`KeyId`], [`Keyring`] (rotation) |
//! | [`rules`] | the redemption decision, one pure function |
//! | [`store`] | the [`TokenStore`] trait and its contract; [`MemoryStore`] |
//! | [`service`] | [`Onboarding`]: issue, redeem, list, revoke |
//! | [`payload`] | what devices and people get: links, the typed form, [`extract_token`] for the device side |
//! | [`android`] | Android Enterprise provisioning QR JSON, NFC properties, Samsung Knox (KME) JSON |
//! | [`bulk`] | CSV bulk specifications, manifests (CSV, JSON), the printable QR sheet |
//! | `qr` | QR codes: SVG, PNG, terminal (feature `qr`) |
//!
//! ## Quick start
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use onboarding_token::*;
//!
//! let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! let keyring = Keyring::new(SigningKey::generate(&mut rng));
//! let service = Onboarding::new(keyring, MemoryStore::new());
//!
//! // The admin issues a 2-device token for a group with a policy.
//! let spec = TokenSpec::new(OrgId::new("acme")?, GroupId::new("emea/berlin")?)
//!     .with_policies([PolicyId::new("wifi-corp")?])
//!     .with_usage_limit(UsageLimit::limited(2).unwrap());
//! let issued = service.issue(spec).await?;
//! let text = issued.secret.expose_secret(); // goes into the QR code
//!
//! // A device redeems it.
//! let enrollment = service.redeem(text, &DeviceId::new("SN-0001")?).await?;
//! assert_eq!(enrollment.group().as_str(), "emea/berlin");
//! assert_eq!(enrollment.remaining(), Some(1));
//!
//! // A forged token is rejected before any store access, with a uniform device message.
//! let err = service.redeem("obt1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &DeviceId::new("x")?)
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | (always) | | the core, [`keyfile`], [`AnyStore`], [`MemoryStore`], [`Onboarding`], payloads ([`payload`], [`android`]), bulk specifications and manifests ([`bulk`]) |
//! | `qr` | yes | `qr`: QR codes as SVG, PNG (1-bit, via `png`) and terminal text (via `qrcode`), and the printable bulk sheet `bulk::render_sheet` |
//! | `sqlite` | yes | `SqliteStore`: durable, embedded (bundled SQLite via sqlx, nothing to install) |
//! | `postgres` | | `PgStore`: shared by several server replicas (PostgreSQL via sqlx, no TLS) |
//! | `testing` | | `testing`: the conformance suite and model-based test for any [`TokenStore`], and the `conformance_tests!` macro (pulls in tokio and proptest; for dev-dependencies) |

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod bulk;
pub mod clock;
mod core;
pub mod keyfile;
pub mod payload;
pub mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub(crate) use self::core::name;
pub use self::core::{codec, enrollment, error, keys, policy, rules, token};

#[doc(inline)]
pub use payload::android;
#[cfg(feature = "qr")]
#[doc(inline)]
pub use payload::qr;

pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{DecodeError, TokenString, UnverifiedToken, VerifiedToken};
pub use enrollment::{Enrollment, Redemption};
pub use error::{AdminError, DeviceRejection, RedeemError, Rejection, StoreError};
pub use keys::{KeyId, Keyring, KeyringError, SigningKey, VerifyError};
pub use name::{DeviceId, InvalidName, NameProblem, OrgId};
#[cfg(feature = "qr")]
pub use payload::qr::{EcLevel, Qr, QrError};
pub use payload::{
    EnrollmentUrl, ExtractError, PayloadConfig, PayloadFormat, SecretText, TokenText, extract_token,
};
pub use policy::{Assignment, DeviceGroup, GroupId, Policy, PolicyId};
pub use rules::Leeway;
pub use service::{Issued, IssuedBatch, Onboarding, SystemRng};
pub use store::any::AnyStore;
pub use store::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use store::postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use store::sqlite::SqliteStore;
pub use store::{PageCursor, RevokeTarget, TokenPage, TokenQuery, TokenStore};
pub use token::{
    BatchId, Expiry, ExpirySpec, InvalidId, Metadata, Revocation, SpecError, Status, Token,
    TokenId, TokenParts, TokenSpec, UsageLimit, Validity,
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// Re-exported so callers use the same versions for `now` and random sources.
pub use chrono;
pub use rand_core;
/// The sqlx version the SQL stores are built on, so applications pass pools of the same
/// version.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sqlx;
