//! `bulk::BulkSpec::parse` on arbitrary text, with and without a valid header (see
//! `check_bulk_csv`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding_token_fuzz::check_bulk_csv(data));
