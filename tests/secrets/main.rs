//! Secrets stay secret: no key bytes or token strings in `Debug`, `Display`, errors or
//! serde output. Also: serde round trips of the domain types, and invalid records refused.

#[path = "../support/mod.rs"]
mod support;

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::TimeDelta;
use onboarding_token::store::InvalidCursor;
use onboarding_token::token::InvalidStatus;
use onboarding_token::*;
use serde_json::{Value, json};
// Starts in March 2026.
use support::fixture::{leak_test_key as key, t0_2026 as t0};
use support::secrets::{encodings, hex};

/// The first 12-character window of any encoding of `bytes` that occurs in `text`.
fn leaked_bytes(text: &str, bytes: &[u8]) -> Option<String> {
    for enc in encodings(bytes) {
        let chars: Vec<char> = enc.chars().collect();
        for w in chars.windows(12) {
            let w: String = w.iter().collect();
            if text.contains(&w) {
                return Some(w);
            }
        }
    }
    None
}

/// The first 12-character window of the token string that occurs in `text`.
fn leaked_token(text: &str, token: &str) -> Option<String> {
    let chars: Vec<char> = token.chars().collect();
    chars
        .windows(12)
        .map(|w| w.iter().collect::<String>())
        .find(|w| text.contains(w.as_str()))
}

#[track_caller]
fn assert_no_key(text: &str, key: &SigningKey) {
    if let Some(w) = leaked_bytes(text, key.expose_secret()) {
        panic!("key material {w:?} in {text:?}");
    }
}

#[track_caller]
fn assert_no_token(text: &str, token: &TokenString) {
    if let Some(w) = leaked_token(text, token.expose_secret()) {
        panic!("token string part {w:?} in {text:?}");
    }
}

mod json;
mod text;
