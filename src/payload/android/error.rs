//! [`AndroidError`] and the bounds it reports.

use crate::payload::url::UrlError;

/// Bound on a key (token key, extra key) in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Bound on an extra's value in bytes.
pub const MAX_VALUE_LEN: usize = 4096;
/// Bound on the number of extras.
pub const MAX_EXTRAS: usize = 64;

/// An Android provisioning setting was rejected. Messages do not repeat secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AndroidError {
    /// The component name is not `package/class` (class may start with `.`).
    #[error(
        "device admin component must be `package/class` (for example com.example.dpc/.AdminReceiver)"
    )]
    BadComponent,
    /// The checksum is not URL-safe base64 of a 32-byte SHA-256 digest.
    #[error(
        "signature checksum must be URL-safe base64 (`-` and `_`, padded or not) of a 32-byte SHA-256 digest"
    )]
    BadChecksum,
    /// The checksum uses the standard base64 alphabet.
    #[error(
        "signature checksum uses standard base64 (`+` or `/`); Android needs URL-safe base64 (`-` and `_`)"
    )]
    StandardBase64Checksum,
    /// The package download location is not a valid `https://` URL.
    #[error("package download location: {0}")]
    BadDownloadLocation(#[source] UrlError),
    /// A key is empty, too long, or holds control characters.
    #[error("{what} must be 1 to {MAX_KEY_LEN} bytes without control characters")]
    BadKey {
        /// Which key.
        what: &'static str,
    },
    /// An extra uses the token key.
    #[error("admin extra uses the token key")]
    ExtraIsTokenKey,
    /// An extra's value is too long.
    #[error("admin extra value is longer than {MAX_VALUE_LEN} bytes")]
    ValueTooLong,
    /// Too many extras.
    #[error("at most {MAX_EXTRAS} admin extras are allowed")]
    TooManyExtras,
    /// The SSID is empty or longer than 32 bytes.
    #[error("Wi-Fi SSID must be 1 to 32 bytes")]
    BadSsid,
    /// The Wi-Fi password does not fit the security type.
    #[error("Wi-Fi password does not fit the security type: {0}")]
    BadWifiPassword(&'static str),
    /// A Wi-Fi security type name was not recognised.
    #[error("unknown Wi-Fi security type; expected NONE, WPA, WEP or EAP")]
    UnknownWifiSecurity,
    /// An EAP setting on a network that is not EAP, or a bad EAP value.
    #[error("bad EAP setting: {0}")]
    BadEap(&'static str),
    /// The locale is not `ll` or `ll_CC`.
    #[error("locale must look like `en` or `en_US`")]
    BadLocale,
    /// The time zone is not a tz database name.
    #[error("time zone must be a tz database name such as Europe/Berlin")]
    BadTimeZone,
}
