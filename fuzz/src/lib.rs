//! Shared code of the fuzz targets: the property checks (the very file the proptest mirrors
//! in `tests/fuzz_mirror.rs` use) and the structured input of the Android target.

#[path = "../../tests/fuzz_checks/mod.rs"]
mod checks;

pub use checks::*;

use arbitrary::{Result, Unstructured};

/// An [`AndroidInput`] drawn from the fuzzer's bytes.
pub fn android_input(u: &mut Unstructured<'_>) -> Result<AndroidInput> {
    let wifi = if u.arbitrary()? {
        Some(WifiInput {
            ssid: u.arbitrary()?,
            security: u.arbitrary()?,
            password: u.arbitrary()?,
            hidden: u.arbitrary()?,
            eap: u.arbitrary()?,
            domain: u.arbitrary()?,
        })
    } else {
        None
    };
    Ok(AndroidInput {
        component: u.arbitrary()?,
        checksum: u.arbitrary()?,
        download: u.arbitrary()?,
        token_key: u.arbitrary()?,
        extras: u.arbitrary()?,
        wifi,
        locale: u.arbitrary()?,
        time_zone: u.arbitrary()?,
        flags: u.arbitrary()?,
        token_seed: u.arbitrary()?,
    })
}
