//! Payload forms and the device side: the typed form, enrollment links, and
//! `extract_token` over every form, with random grouping and whitespace, and arbitrary input.

#[path = "../support/mod.rs"]
mod support;

use onboarding_token::android::{AdminExtras, AndroidProvisioning};
use onboarding_token::payload::{
    EnrollmentUrl, ExtractError, GROUP_LEN, MAX_INPUT_LEN, PayloadConfig, PayloadError,
    PayloadFormat, SecretText, TokenText, UrlError, extract_token, grouped, grouped_lines,
    parse_grouped,
};
use onboarding_token::{DecodeError, Keyring, SigningKey, TokenId, TokenString};
use proptest::prelude::*;
use support::fixture::token_from;

fn token() -> TokenString {
    token_from([9, 8, 7, 6], 3, *b"fedcba9876543210")
}

fn other_token() -> TokenString {
    token_from([1, 1, 1, 1], 4, *b"another token id")
}

fn android() -> AndroidProvisioning {
    AndroidProvisioning::new(
        "com.example.dpc/.AdminReceiver",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w=",
        "https://mdm.example.com/dpc.apk",
    )
    .unwrap()
    .with_admin_extras(
        AdminExtras::new()
            .with_extra("server_url", "https://mdm.example.com/api?x=1&y=2")
            .unwrap(),
    )
}

fn extracted(input: &str) -> Result<String, ExtractError> {
    extract_token(input).map(|t| t.expose_secret().to_owned())
}

mod config;
mod errors;
mod links;
mod properties;
mod typed_form;
