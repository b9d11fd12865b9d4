//! `UnverifiedToken::parse`, `Keyring::verify` and `payload::parse_grouped` on arbitrary
//! bytes, as text and as token payloads (see `check_parse_verify`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding_token_fuzz::check_parse_verify(data));
