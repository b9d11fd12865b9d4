//! `payload::extract_token` on arbitrary UTF-8 and lossy bytes, and on genuine tokens in
//! arbitrary surroundings (see `check_extract`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding_token_fuzz::check_extract(data));
