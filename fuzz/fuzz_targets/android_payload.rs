//! The Android provisioning builders with arbitrary field strings, rendered as QR JSON, KME
//! JSON and NFC properties and read back (see `check_android`).
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(input) = onboarding_token_fuzz::android_input(&mut u) {
        onboarding_token_fuzz::check_android(&input);
    }
});
