//! serde deserialization of `Token`, `TokenSpec`, `Enrollment` and friends from arbitrary
//! JSON (see `check_serde`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding_token_fuzz::check_serde(data));
