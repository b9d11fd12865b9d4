//! The small parsers: durations, expiries, times, limits, metadata, ids, names, cursors,
//! URLs, checksums (see `check_grammars`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding_token_fuzz::check_grammars(data));
