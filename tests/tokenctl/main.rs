//! End-to-end tests of the `tokenctl` example: every command and error path, each test
//! against its own SQLite file and key file in a temporary directory.
//!
//! The harness (building the binary, running it, checking its exit) is
//! `support::tokenctl`, shared with the hardening tests.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
#[cfg(unix)]
use support::files::{chmod, mode};
use support::qr::decode_png;
use support::tokenctl::{Env, Run};

fn is_token(text: &str) -> bool {
    text.len() == 53
        && text.starts_with("obt1_")
        && text[5..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

const COMPONENT: &str = "com.example.dpc/.AdminReceiver";
const CHECKSUM: &str = "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w";
const DOWNLOAD: &str = "https://mdm.example.com/dpc/latest.apk";
const ANDROID: [&str; 6] = [
    "--android-component",
    COMPONENT,
    "--android-checksum",
    CHECKSUM,
    "--android-download",
    DOWNLOAD,
];

mod admin;
mod bulk;
mod init;
mod issue;
mod keys;
mod postgres;
mod redeem;
mod usage;
