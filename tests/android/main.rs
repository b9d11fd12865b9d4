//! Android provisioning payloads: the QR JSON parsed back equals what was configured
//! (awkward characters included), key names are Android's constants, the NFC properties
//! read back with an independent `java.util.Properties` parser, and validation.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use onboarding_token::TokenString;
use onboarding_token::android::*;
use onboarding_token::payload::extract_token;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::fixture::token_from;

fn token() -> TokenString {
    token_from([5, 5, 5, 5], 9, *b"android-token-id")
}

const CHECKSUM: &str = "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w=";
const AWKWARD_KEY: &str = "k\"e\\y é 😀 =:#! <&>";
const AWKWARD: &str = "q\"uote \\back\\slash\\ new\nline\r tab\t é ü 東京 😀 =:#! <&> \u{0}\u{1f}";

fn base() -> AndroidProvisioning {
    AndroidProvisioning::new(
        "com.example.dpc/com.example.dpc.AdminReceiver$Inner",
        CHECKSUM,
        "https://mdm.example.com/dpc.apk?v=2&x=%20",
    )
    .unwrap()
}

fn json_of(android: &AndroidProvisioning, t: &TokenString) -> Value {
    let text = android.qr_json(t);
    serde_json::from_str(text.expose_secret()).unwrap()
}

mod nfc;
mod provisioning;
