//! The properties every fuzz target checks, shared by the cargo-fuzz targets under `fuzz/`
//! (which include this file by path) and their proptest mirrors in `tests/fuzz_mirror.rs`,
//! so `cargo test` exercises the same entry points with the same assertions.
//!
//! Each `check_*` function takes arbitrary input, calls public parsers and builders, and
//! panics only when a property fails: an input may be rejected, but only with a typed
//! error whose message does not repeat a token, and whatever is accepted must round-trip.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use onboarding_token::android::{
    AdminExtras, AndroidProvisioning, EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, EapMethod,
    Phase2Auth, Wifi, WifiSecurity,
};
use onboarding_token::bulk::{self, BulkSpec};
use onboarding_token::chrono::{DateTime, TimeZone, Utc};
use onboarding_token::codec::{PREFIX, TOKEN_LEN};
use onboarding_token::payload::{
    self, EnrollmentUrl, ExtractError, MAX_INPUT_LEN, PayloadFormat, TokenText, extract_token,
};
use onboarding_token::store::PageCursor;
use onboarding_token::*;

/// The fixed instant the checks treat as "now".
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

/// A keyring with an active key and a verify-only key, fixed so runs are reproducible.
pub fn keyring() -> Keyring {
    Keyring::new(SigningKey::from_bytes(
        KeyId::from_bytes(*b"actv"),
        &[0x5a; 32],
    ))
    .with_verify_only(SigningKey::from_bytes(
        KeyId::from_bytes(*b"old1"),
        &[0xa5; 32],
    ))
    .expect("distinct key ids")
}

/// A genuine token signed by [`keyring`]'s active key, its id taken from `seed`.
pub fn token_from(seed: &[u8]) -> TokenString {
    let mut id = [0u8; 16];
    for (i, b) in seed.iter().take(16).enumerate() {
        id[i] = *b;
    }
    keyring().sign(&TokenId::from_bytes(id))
}

/// No error message contains a token string (or the start of one).
#[track_caller]
fn assert_no_token_in(message: &str) {
    assert!(!message.is_empty(), "an error with an empty message");
    assert!(
        !message.contains(PREFIX),
        "an error message repeats token text: {message:?}"
    );
}

mod android_payload;
mod bulk_csv;
mod extract;
mod grammars;
mod keyring_text;
mod parse_verify;
mod serde_records;

pub use android_payload::{AndroidInput, WifiInput, check_android, read_properties};
pub use bulk_csv::check_bulk_csv;
pub use extract::check_extract;
pub use grammars::check_grammars;
pub use keyring_text::check_keyring_text;
pub use parse_verify::check_parse_verify;
pub use serde_records::check_serde;
