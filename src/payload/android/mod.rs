//! Android Enterprise provisioning payloads: the QR-code JSON read at the setup screen, the
//! NFC properties form, and the flat Samsung Knox Mobile Enrollment (KME) JSON.
//!
//! Key names are Android's `DevicePolicyManager` constants, exported here as `EXTRA_*`. The
//! token goes into `android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE` under
//! [`CLOUDDPC_ENROLLMENT_TOKEN`] (configurable), beside any extras of your own (server URL,
//! tenant), which the device hands to your device-policy controller (DPC) app.
//!
//! | form | method | value types |
//! |---|---|---|
//! | QR JSON | [`AndroidProvisioning::qr_json`] | strings; booleans as JSON booleans; the extras bundle as a JSON object |
//! | NFC properties | [`AndroidProvisioning::nfc_properties`] | `java.util.Properties` text (MIME type [`MIME_TYPE_PROVISIONING_NFC`]); booleans as `true`/`false`; the extras bundle as a properties text in one value, as Android's NFC parser expects |
//! | Knox KME JSON | [`AdminExtras::kme_json`] | flat: the token key and your extras at the top level, for KME's "custom JSON" field |
//!
//! JSON is written by `serde_json` and kept to ASCII (other characters as `\uXXXX`), so a
//! scanner's guess at the QR code's character set cannot garble an SSID or an extra.
//!
//! ```
//! use onboarding_token::android::{AdminExtras, AndroidProvisioning, Wifi, WifiSecurity};
//! # use onboarding_token::{Keyring, SigningKey, TokenId};
//! # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
//! let android = AndroidProvisioning::new(
//!     "com.example.dpc/.AdminReceiver",
//!     "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
//!     "https://mdm.example.com/dpc.apk",
//! )?
//! .with_admin_extras(AdminExtras::new().with_extra("server_url", "https://mdm.example.com")?)
//! .with_wifi(Wifi::new("Corp Setup", WifiSecurity::Wpa, Some("correct horse"))?)
//! .with_locale("de_DE")?
//! .with_time_zone("Europe/Berlin")?
//! .with_skip_encryption(false);
//!
//! let json: serde_json::Value = serde_json::from_str(android.qr_json(&token).expose_secret())?;
//! let extras = &json["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"];
//! assert_eq!(
//!     extras["com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"],
//!     token.expose_secret()
//! );
//! assert_eq!(json["android.app.extra.PROVISIONING_SKIP_ENCRYPTION"], false);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dpc;
mod error;
pub(super) mod extras;
mod json;
pub(super) mod keys;
pub(super) mod nfc;
pub(super) mod provisioning;
mod wifi;

pub use dpc::{ComponentName, DownloadLocation, SignatureChecksum};
pub use error::{AndroidError, MAX_EXTRAS, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use extras::{AdminExtras, CLOUDDPC_ENROLLMENT_TOKEN};
pub use keys::{
    EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, EXTRA_PROVISIONING_ALLOW_OFFLINE,
    EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME,
    EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION,
    EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM,
    EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED, EXTRA_PROVISIONING_LOCALE,
    EXTRA_PROVISIONING_SKIP_ENCRYPTION, EXTRA_PROVISIONING_TIME_ZONE,
    EXTRA_PROVISIONING_USE_MOBILE_DATA, EXTRA_PROVISIONING_WIFI_ANONYMOUS_IDENTITY,
    EXTRA_PROVISIONING_WIFI_DOMAIN, EXTRA_PROVISIONING_WIFI_EAP_METHOD,
    EXTRA_PROVISIONING_WIFI_HIDDEN, EXTRA_PROVISIONING_WIFI_IDENTITY,
    EXTRA_PROVISIONING_WIFI_PASSWORD, EXTRA_PROVISIONING_WIFI_PHASE2_AUTH,
    EXTRA_PROVISIONING_WIFI_SECURITY_TYPE, EXTRA_PROVISIONING_WIFI_SSID,
};
pub use nfc::MIME_TYPE_PROVISIONING_NFC;
pub use provisioning::AndroidProvisioning;
pub use wifi::{EapMethod, Phase2Auth, Wifi, WifiSecurity};
