//! `Keyring::from_secret_text` on arbitrary text and on spliced exports (see
//! `check_keyring_text`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding_token_fuzz::check_keyring_text(data));
