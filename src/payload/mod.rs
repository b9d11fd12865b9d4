//! What goes into a QR code, a link or a person's hands, and how a device gets the token
//! back out of whatever it scanned or was typed.
//!
//! # Forms
//!
//! | form | made by | example |
//! |---|---|---|
//! | bare token | [`TokenString::expose_secret`](crate::TokenString::expose_secret) | `obt1_AbCd…` (53 characters) |
//! | typed text | [`grouped`], [`grouped_lines`] | `obt1_ AbCd EfGh …` |
//! | enrollment link | [`EnrollmentUrl::render`] | `https://mdm.example.com/enroll?token=obt1_…` |
//! | Android QR JSON | [`AndroidProvisioning::qr_json`](crate::android::AndroidProvisioning::qr_json) | `{"android.app.extra.PROVISIONING_…": …}` |
//! | Samsung Knox (KME) JSON | [`AdminExtras::kme_json`](crate::android::AdminExtras::kme_json) | `{"com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN": "obt1_…"}` |
//! | Android NFC properties | [`AndroidProvisioning::nfc_properties`](crate::android::AndroidProvisioning::nfc_properties) | `android.app.extra.PROVISIONING_…=…` |
//!
//! [`PayloadConfig`] holds the settings of every form and renders any [`PayloadFormat`], so a
//! CLI or a server can offer all of them behind one `--format` switch.
//!
//! Every rendered form carries the token and is a credential: it comes back as
//! [`SecretText`], whose `Debug` is redacted and whose bytes are zeroized on drop.
//!
//! # The typed form
//!
//! [`grouped`] writes the prefix `obt1_`, then the 48 body characters in 12 groups of
//! [`GROUP_LEN`] (4), each group preceded by one space:
//!
//! ```text
//! obt1_ AbCd EfGh IjKl MnOp QrSt UvWx Yz01 2345 6789 -_Ab CdEf GhIj
//! ```
//!
//! `-` and `_` are themselves token characters, so the separator is whitespace, never a
//! hyphen. Reading it back ([`parse_grouped`], [`extract_token`]):
//!
//! - all whitespace (spaces, tabs, line breaks, also non-breaking and other Unicode spaces)
//!   is dropped, wherever it is; zero-width characters are dropped too;
//! - the prefix is matched without regard to case (`OBT1_`, `Obt1_`: keyboards capitalise);
//! - if the body is then not 48 characters, hyphens are taken as separators only when they
//!   form a regular pattern: every group between them has the same length `g` (a divisor
//!   of 48 from 2 to 24), as in `obt1_AbCd-EfGh-…-GhIj`. A person's line breaks or spaces
//!   may stand in for some of those hyphens. Any other length is a malformed token.
//!
//! # Device side
//!
//! [`extract_token`] takes whatever a scanner or a person produced (a bare token, a link, the
//! Android or Knox JSON, the NFC properties, the typed form, a sentence around a token) and
//! returns the one token in it as a [`TokenText`], or a typed [`ExtractError`]. It never
//! verifies the signature: hand the result to
//! [`Onboarding::redeem`](crate::Onboarding::redeem), which does.
//!
//! ```
//! use onboarding_token::payload::{extract_token, grouped, EnrollmentUrl};
//! use onboarding_token::{Keyring, SigningKey, TokenId};
//!
//! let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! let keyring = Keyring::new(SigningKey::generate(&mut rng));
//! let token = keyring.sign(&TokenId::generate(&mut rng));
//!
//! let link = EnrollmentUrl::new("https://mdm.example.com/enroll?site=berlin")?.render(&token);
//! let typed = grouped(&token);
//! for input in [link.expose_secret(), typed.expose_secret(), token.expose_secret()] {
//!     assert_eq!(extract_token(input)?.expose_secret(), token.expose_secret());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod android;
mod config;
mod extract;
#[cfg(feature = "qr")]
pub mod qr;
mod secret;
mod token_text;
mod typed;
mod url;

pub use config::{PayloadConfig, PayloadError, PayloadFormat, UnknownFormat};
pub use extract::{ExtractError, extract_token};
pub use secret::SecretText;
pub use token_text::TokenText;
pub use typed::{GROUP_LEN, GROUPS_PER_LINE, MAX_INPUT_LEN, grouped, grouped_lines, parse_grouped};
pub use url::{EnrollmentUrl, UrlError};
