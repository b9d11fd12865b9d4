//! The bad-input catalogue: every public parser, and every `tokenctl` input, given empty
//! and whitespace input, 1 MB strings, invalid UTF-8 where bytes are accepted, wrong
//! prefixes, unknown versions and keys, every single-character substitution, truncation and
//! extension of a valid token, oversized metadata, malformed durations and dates, and CSV
//! with missing or extra columns. Each gets a typed error with a clear message that does
//! not repeat the secret, and nothing is consumed or written.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use onboarding_token::android::{
    AdminExtras, AndroidError, AndroidProvisioning, ComponentName, DownloadLocation, EapMethod,
    SignatureChecksum, Wifi, WifiSecurity,
};
use onboarding_token::bulk::{
    self, BulkSpec, Column, CsvProblem, DurationError, ExpiryError, LimitError, MetadataError,
    RowProblem, TimeError,
};
use onboarding_token::codec::{PREFIX, TOKEN_LEN};
use onboarding_token::keyfile::{self, KeyFileError};
use onboarding_token::payload::{
    EnrollmentUrl, ExtractError, MAX_INPUT_LEN, UrlError, extract_token, parse_grouped,
};
use onboarding_token::store::{InvalidCursor, RevokeTarget};
use onboarding_token::token::InvalidStatus;
use onboarding_token::*;
// This catalogue starts at nine in the morning; its tokens are acme/fleet's.
use support::fixture::{acme as org, catalogue_key as key, fleet_spec as spec, t0_9am as t0};

const MB: usize = 1024 * 1024;

/// One mebibyte of `a`.
fn huge() -> String {
    "a".repeat(MB)
}

/// No 12-character window of `secret` appears in `text`.
#[track_caller]
fn assert_not_shown(text: &str, secret: &str) {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 8 {
        // Too short to tell a leak from a common word.
        return;
    }
    if chars.len() < 12 {
        assert!(!text.contains(secret), "{secret:?} shown in {text:?}");
        return;
    }
    for w in chars.windows(12) {
        let w: String = w.iter().collect();
        assert!(!text.contains(&w), "{w:?} of a secret shown in {text:?}");
    }
}

/// Display and Debug of `err` are real, secret-free messages.
#[track_caller]
fn assert_clear(err: &dyn std::error::Error, secret: &str) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.is_empty());
    assert!(
        display.len() < 600,
        "a short message: {} bytes",
        display.len()
    );
    assert!(
        !display.contains('{') || display.contains("{}"),
        "Debug-like: {display}"
    );
    assert_not_shown(&display, secret);
    assert_not_shown(&debug, secret);
}

/// Characters to substitute and insert: the whole token alphabet, its look-alikes, the
/// standard base64 characters, whitespace, invisible and non-ASCII characters.
fn replacement_chars() -> Vec<char> {
    let mut chars: Vec<char> = ('A'..='Z').chain('a'..='z').chain('0'..='9').collect();
    chars.extend([
        '-', '_', '+', '/', '=', '.', ' ', '\t', '\n', '\0', '\u{200b}', '\u{feff}', 'é', 'О',
        '０', '😀', '\u{2010}',
    ]);
    chars
}

/// Everything a store holds: each token's record and its redemptions.
type Snapshot = BTreeMap<TokenId, (Token, Vec<Redemption>)>;

async fn snapshot<S: TokenStore>(service: &Onboarding<S, ManualClock>) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut query = service.query().with_limit(TokenQuery::MAX_LIMIT);
    loop {
        let page = service.list(&query).await.unwrap();
        for t in page.tokens {
            let r = service.redemptions(t.id()).await.unwrap();
            out.insert(t.id(), (t, r));
        }
        match page.next {
            Some(next) => query = query.with_after(next),
            None => break,
        }
    }
    out
}

/// A service over a memory store with one 3-use token redeemed once, and its string.
async fn service_with_token() -> (Onboarding<MemoryStore, ManualClock>, TokenString) {
    let service = Onboarding::new(
        Keyring::new(key(1)).with_verify_only(key(2)).unwrap(),
        MemoryStore::new(),
    )
    .with_clock(ManualClock::new(t0()));
    let issued = service
        .issue(spec().with_usage_limit(UsageLimit::limited(3).unwrap()))
        .await
        .unwrap();
    service
        .redeem(
            issued.secret.expose_secret(),
            &DeviceId::new("first").unwrap(),
        )
        .await
        .unwrap();
    (service, issued.secret)
}

mod android;
mod bulk_csv;
#[cfg(all(feature = "sqlite", feature = "qr"))]
mod cli;
mod ids;
mod keyrings;
mod metadata;
mod times;
mod tokens;
