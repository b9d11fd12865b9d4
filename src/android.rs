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

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};
use serde::ser::{Serialize, SerializeMap, Serializer};
use zeroize::Zeroizing;

use crate::codec::TokenString;
use crate::payload::{SecretText, UrlError, validate_http_url};

/// `DevicePolicyManager.EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME`.
pub const EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME";
/// `DevicePolicyManager.EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM`.
pub const EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM";
/// `DevicePolicyManager.EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION`.
pub const EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION";
/// `DevicePolicyManager.EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE`.
pub const EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE: &str =
    "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_SSID`.
pub const EXTRA_PROVISIONING_WIFI_SSID: &str = "android.app.extra.PROVISIONING_WIFI_SSID";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_SECURITY_TYPE`.
pub const EXTRA_PROVISIONING_WIFI_SECURITY_TYPE: &str =
    "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_PASSWORD`.
pub const EXTRA_PROVISIONING_WIFI_PASSWORD: &str = "android.app.extra.PROVISIONING_WIFI_PASSWORD";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_HIDDEN`.
pub const EXTRA_PROVISIONING_WIFI_HIDDEN: &str = "android.app.extra.PROVISIONING_WIFI_HIDDEN";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_EAP_METHOD`.
pub const EXTRA_PROVISIONING_WIFI_EAP_METHOD: &str =
    "android.app.extra.PROVISIONING_WIFI_EAP_METHOD";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_PHASE2_AUTH`.
pub const EXTRA_PROVISIONING_WIFI_PHASE2_AUTH: &str =
    "android.app.extra.PROVISIONING_WIFI_PHASE2_AUTH";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_IDENTITY`.
pub const EXTRA_PROVISIONING_WIFI_IDENTITY: &str = "android.app.extra.PROVISIONING_WIFI_IDENTITY";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_ANONYMOUS_IDENTITY`.
pub const EXTRA_PROVISIONING_WIFI_ANONYMOUS_IDENTITY: &str =
    "android.app.extra.PROVISIONING_WIFI_ANONYMOUS_IDENTITY";
/// `DevicePolicyManager.EXTRA_PROVISIONING_WIFI_DOMAIN`.
pub const EXTRA_PROVISIONING_WIFI_DOMAIN: &str = "android.app.extra.PROVISIONING_WIFI_DOMAIN";
/// `DevicePolicyManager.EXTRA_PROVISIONING_LOCALE`.
pub const EXTRA_PROVISIONING_LOCALE: &str = "android.app.extra.PROVISIONING_LOCALE";
/// `DevicePolicyManager.EXTRA_PROVISIONING_TIME_ZONE`.
pub const EXTRA_PROVISIONING_TIME_ZONE: &str = "android.app.extra.PROVISIONING_TIME_ZONE";
/// `DevicePolicyManager.EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED`.
pub const EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED: &str =
    "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED";
/// `DevicePolicyManager.EXTRA_PROVISIONING_SKIP_ENCRYPTION`.
pub const EXTRA_PROVISIONING_SKIP_ENCRYPTION: &str =
    "android.app.extra.PROVISIONING_SKIP_ENCRYPTION";
/// `DevicePolicyManager.EXTRA_PROVISIONING_ALLOW_OFFLINE` (Android 13+).
pub const EXTRA_PROVISIONING_ALLOW_OFFLINE: &str = "android.app.extra.PROVISIONING_ALLOW_OFFLINE";
/// `DevicePolicyManager.EXTRA_PROVISIONING_USE_MOBILE_DATA` (Android 13+).
pub const EXTRA_PROVISIONING_USE_MOBILE_DATA: &str =
    "android.app.extra.PROVISIONING_USE_MOBILE_DATA";
/// `DevicePolicyManager.MIME_TYPE_PROVISIONING_NFC`: the NDEF record type for
/// [`AndroidProvisioning::nfc_properties`].
pub const MIME_TYPE_PROVISIONING_NFC: &str = "application/com.android.managedprovisioning";
/// The admin-extras key Google's Android Device Policy reads the enrollment token from; the
/// default token key of [`AdminExtras`].
pub const CLOUDDPC_ENROLLMENT_TOKEN: &str =
    "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN";

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

fn check_key(key: &str, what: &'static str) -> Result<(), AndroidError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(AndroidError::BadKey { what });
    }
    Ok(())
}

/// The device admin (DPC) receiver, as `package/class` (for example
/// `com.example.dpc/.AdminReceiver`), the form `ComponentName.unflattenFromString` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentName(String);

impl ComponentName {
    /// Validates `package/class`: Java package segments, and a class name that may start
    /// with `.` (relative to the package) and may contain `$`.
    pub fn new(name: &str) -> Result<Self, AndroidError> {
        let (package, class) = name.split_once('/').ok_or(AndroidError::BadComponent)?;
        let java_ident = |s: &str, extra: &[char]| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || extra.contains(&c))
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
        };
        let package_ok = package.split('.').all(|seg| java_ident(seg, &[]));
        let class_body = class.strip_prefix('.').unwrap_or(class);
        let class_ok = class_body.split('.').all(|seg| java_ident(seg, &['$']));
        if !package_ok || !class_ok || name.len() > MAX_KEY_LEN {
            return Err(AndroidError::BadComponent);
        }
        Ok(Self(name.to_owned()))
    }

    /// The `package/class` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The package name.
    pub fn package(&self) -> &str {
        self.0.split_once('/').map_or("", |(p, _)| p)
    }
}

/// The SHA-256 checksum of the DPC's signing certificate, as Android wants it: URL-safe
/// base64 of the 32-byte digest. Kept in the padded form (44 characters, one `=`), which
/// Android accepts like the unpadded one.
///
/// ```
/// use onboarding_token::android::{AndroidError, SignatureChecksum};
/// let c = SignatureChecksum::new("gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w")?;
/// assert_eq!(c.as_str(), "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w=");
/// // The colon-separated hex `apksigner`/`keytool` print converts to the same value.
/// let hex = "80:90:F6:63:0B:4E:89:62:47:91:23:24:90:87:CB:46:58:FE:AA:E3:6A:1B:57:DB:EA:FD:74:D1:09:B3:33:DC";
/// assert_eq!(SignatureChecksum::from_sha256_hex(hex)?, c);
/// assert_eq!(
///     SignatureChecksum::new("gJD2YwtOiWJHkSMkkIfLRlj+quNqG1fb6v100QmzM9w=").unwrap_err(),
///     AndroidError::StandardBase64Checksum
/// );
/// # Ok::<(), AndroidError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureChecksum(String);

impl SignatureChecksum {
    /// Validates URL-safe base64 (padded or not) of exactly 32 bytes.
    pub fn new(checksum: &str) -> Result<Self, AndroidError> {
        let mut digest = [0u8; 32];
        let decoded = if checksum.ends_with('=') {
            Base64Url::decode(checksum, &mut digest).map(<[u8]>::len)
        } else {
            Base64UrlUnpadded::decode(checksum, &mut digest).map(<[u8]>::len)
        };
        match decoded {
            Ok(32) => Ok(Self::from_sha256(digest)),
            _ if checksum.contains(['+', '/']) => Err(AndroidError::StandardBase64Checksum),
            _ => Err(AndroidError::BadChecksum),
        }
    }

    /// The checksum of a raw SHA-256 digest.
    pub fn from_sha256(digest: [u8; 32]) -> Self {
        Self(Base64Url::encode_string(&digest))
    }

    /// The checksum from the hex SHA-256 fingerprint `apksigner verify --print-certs` or
    /// `keytool -printcert` show (colons and spaces allowed, any case).
    pub fn from_sha256_hex(hex: &str) -> Result<Self, AndroidError> {
        let digits: Vec<u8> = hex.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
        if digits.len() != 64 {
            return Err(AndroidError::BadChecksum);
        }
        let mut digest = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hi = char::from(pair[0]).to_digit(16);
            let lo = char::from(pair[1]).to_digit(16);
            match (hi, lo) {
                // Both digits are below 16.
                (Some(h), Some(l)) => digest[i] = (h * 16 + l) as u8,
                _ => return Err(AndroidError::BadChecksum),
            }
        }
        Ok(Self::from_sha256(digest))
    }

    /// The padded URL-safe base64 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the device downloads the DPC APK from: an `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadLocation(String);

impl DownloadLocation {
    /// Validates an `https://` URL with a host.
    pub fn new(url: &str) -> Result<Self, AndroidError> {
        validate_http_url(url, true).map_err(AndroidError::BadDownloadLocation)?;
        Ok(Self(url.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The admin extras bundle: the token under its key, plus extras of your own, all strings.
///
/// Also renders the flat Knox Mobile Enrollment JSON ([`kme_json`](AdminExtras::kme_json)).
///
/// ```
/// use onboarding_token::android::AdminExtras;
/// # use onboarding_token::{Keyring, SigningKey, TokenId};
/// # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
/// let extras = AdminExtras::new().with_extra("tenant", "acme")?;
/// let kme: serde_json::Value = serde_json::from_str(extras.kme_json(&token).expose_secret())?;
/// assert_eq!(kme["com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"], token.expose_secret());
/// assert_eq!(kme["tenant"], "acme");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminExtras {
    token_key: String,
    extras: BTreeMap<String, String>,
}

impl Default for AdminExtras {
    fn default() -> Self {
        Self::new()
    }
}

impl AdminExtras {
    /// The token under [`CLOUDDPC_ENROLLMENT_TOKEN`], no other extras.
    pub fn new() -> Self {
        Self {
            token_key: CLOUDDPC_ENROLLMENT_TOKEN.to_owned(),
            extras: BTreeMap::new(),
        }
    }

    /// Puts the token under `key` instead (your own DPC's extra name).
    pub fn with_token_key(mut self, key: &str) -> Result<Self, AndroidError> {
        check_key(key, "token key")?;
        if self.extras.contains_key(key) {
            return Err(AndroidError::ExtraIsTokenKey);
        }
        self.token_key = key.to_owned();
        Ok(self)
    }

    /// Adds (or replaces) an extra string.
    pub fn with_extra(mut self, key: &str, value: &str) -> Result<Self, AndroidError> {
        check_key(key, "admin extra key")?;
        if key == self.token_key {
            return Err(AndroidError::ExtraIsTokenKey);
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(AndroidError::ValueTooLong);
        }
        if !self.extras.contains_key(key) && self.extras.len() >= MAX_EXTRAS {
            return Err(AndroidError::TooManyExtras);
        }
        self.extras.insert(key.to_owned(), value.to_owned());
        Ok(self)
    }

    /// The key the token goes under.
    pub fn token_key(&self) -> &str {
        &self.token_key
    }

    /// The extras other than the token, in key order.
    pub fn extras(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extras.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The flat Samsung Knox Mobile Enrollment JSON: the token key and the extras at the top
    /// level, for KME's "custom JSON" field (ASCII-only JSON).
    pub fn kme_json(&self, token: &TokenString) -> SecretText {
        to_ascii_json(&ExtrasView {
            extras: self,
            token: token.expose_secret(),
        })
    }

    /// The bundle as `java.util.Properties` text (the token first, then the extras).
    fn to_properties(&self, token: &str) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        push_property(&mut out, &self.token_key, token);
        for (k, v) in &self.extras {
            push_property(&mut out, k, v);
        }
        out
    }
}

struct ExtrasView<'a> {
    extras: &'a AdminExtras,
    token: &'a str,
}

impl Serialize for ExtrasView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.extras.extras.len() + 1))?;
        map.serialize_entry(&self.extras.token_key, self.token)?;
        for (k, v) in &self.extras.extras {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// How a Wi-Fi network is secured, as `EXTRA_PROVISIONING_WIFI_SECURITY_TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WifiSecurity {
    /// An open network (`NONE`).
    None,
    /// WPA/WPA2/WPA3 personal (`WPA`).
    #[default]
    Wpa,
    /// WEP (`WEP`).
    Wep,
    /// 802.1X enterprise (`EAP`, Android 10+).
    Eap,
}

impl WifiSecurity {
    /// Android's name: `NONE`, `WPA`, `WEP` or `EAP`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Wpa => "WPA",
            Self::Wep => "WEP",
            Self::Eap => "EAP",
        }
    }
}

impl std::str::FromStr for WifiSecurity {
    type Err = AndroidError;
    /// Parses `NONE`, `WPA`, `WEP` or `EAP`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::None, Self::Wpa, Self::Wep, Self::Eap]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or(AndroidError::UnknownWifiSecurity)
    }
}

/// The EAP method of an enterprise network (`EXTRA_PROVISIONING_WIFI_EAP_METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum EapMethod {
    Peap,
    Tls,
    Ttls,
    Pwd,
    Sim,
    Aka,
    AkaPrime,
}

impl EapMethod {
    /// Android's name (`PEAP`, `TLS`, `TTLS`, `PWD`, `SIM`, `AKA`, `AKA_PRIME`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Peap => "PEAP",
            Self::Tls => "TLS",
            Self::Ttls => "TTLS",
            Self::Pwd => "PWD",
            Self::Sim => "SIM",
            Self::Aka => "AKA",
            Self::AkaPrime => "AKA_PRIME",
        }
    }
}

/// The phase 2 authentication of an EAP network (`EXTRA_PROVISIONING_WIFI_PHASE2_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Phase2Auth {
    Pap,
    Mschap,
    Mschapv2,
    Gtc,
    Sim,
    Aka,
    AkaPrime,
}

impl Phase2Auth {
    /// Android's name (`PAP`, `MSCHAP`, `MSCHAPV2`, `GTC`, `SIM`, `AKA`, `AKA_PRIME`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pap => "PAP",
            Self::Mschap => "MSCHAP",
            Self::Mschapv2 => "MSCHAPV2",
            Self::Gtc => "GTC",
            Self::Sim => "SIM",
            Self::Aka => "AKA",
            Self::AkaPrime => "AKA_PRIME",
        }
    }
}

/// The Wi-Fi network the device joins during setup to download the DPC.
///
/// The password is a secret: `Debug` redacts it and it is zeroized on drop.
///
/// ```
/// use onboarding_token::android::{AndroidError, Wifi, WifiSecurity};
/// let wifi = Wifi::new("Corp Setup", WifiSecurity::Wpa, Some("correct horse"))?.hidden(true);
/// assert!(!format!("{wifi:?}").contains("correct horse"));
/// assert!(Wifi::new("Corp", WifiSecurity::Wpa, Some("short")).is_err());
/// assert!(Wifi::new("Cafe", WifiSecurity::None, Some("x")).is_err());
/// # Ok::<(), AndroidError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Wifi {
    ssid: String,
    security: WifiSecurity,
    password: Option<Zeroizing<String>>,
    hidden: bool,
    eap_method: Option<EapMethod>,
    phase2: Option<Phase2Auth>,
    identity: Option<String>,
    anonymous_identity: Option<String>,
    domain: Option<String>,
}

impl Wifi {
    /// A network; the password is checked against the security type: none for `NONE`;
    /// 8 to 63 printable ASCII characters or 64 hex digits for `WPA`; 5, 13, 16 or 29
    /// characters or 10, 26, 32 or 58 hex digits for `WEP`; anything for `EAP`.
    pub fn new(
        ssid: &str,
        security: WifiSecurity,
        password: Option<&str>,
    ) -> Result<Self, AndroidError> {
        if ssid.is_empty() || ssid.len() > 32 {
            return Err(AndroidError::BadSsid);
        }
        if let Some(pw) = password {
            check_wifi_password(security, pw)?;
        } else if matches!(security, WifiSecurity::Wpa | WifiSecurity::Wep) {
            return Err(AndroidError::BadWifiPassword("WPA and WEP need a password"));
        }
        Ok(Self {
            ssid: ssid.to_owned(),
            security,
            password: password.map(|p| Zeroizing::new(p.to_owned())),
            hidden: false,
            eap_method: None,
            phase2: None,
            identity: None,
            anonymous_identity: None,
            domain: None,
        })
    }

    /// An open network.
    pub fn open(ssid: &str) -> Result<Self, AndroidError> {
        Self::new(ssid, WifiSecurity::None, None)
    }

    /// A WPA network.
    pub fn wpa(ssid: &str, password: &str) -> Result<Self, AndroidError> {
        Self::new(ssid, WifiSecurity::Wpa, Some(password))
    }

    /// Whether the SSID is hidden (not broadcast).
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// The EAP method, phase 2 authentication and identities of an `EAP` network.
    pub fn with_eap(
        mut self,
        method: EapMethod,
        phase2: Option<Phase2Auth>,
        identity: Option<&str>,
        anonymous_identity: Option<&str>,
    ) -> Result<Self, AndroidError> {
        if self.security != WifiSecurity::Eap {
            return Err(AndroidError::BadEap(
                "the network's security type is not EAP",
            ));
        }
        for value in [identity, anonymous_identity].into_iter().flatten() {
            if value.len() > MAX_VALUE_LEN || value.chars().any(char::is_control) {
                return Err(AndroidError::BadEap(
                    "identity too long or has control characters",
                ));
            }
        }
        self.eap_method = Some(method);
        self.phase2 = phase2;
        self.identity = identity.map(str::to_owned);
        self.anonymous_identity = anonymous_identity.map(str::to_owned);
        Ok(self)
    }

    /// The domain the EAP server certificate must match (`EXTRA_PROVISIONING_WIFI_DOMAIN`).
    pub fn with_domain(mut self, domain: &str) -> Result<Self, AndroidError> {
        if self.security != WifiSecurity::Eap {
            return Err(AndroidError::BadEap(
                "the network's security type is not EAP",
            ));
        }
        if domain.is_empty() || domain.len() > 253 || !domain.is_ascii() {
            return Err(AndroidError::BadEap(
                "domain must be 1 to 253 ASCII characters",
            ));
        }
        self.domain = Some(domain.to_owned());
        Ok(self)
    }

    /// The SSID.
    pub fn ssid(&self) -> &str {
        &self.ssid
    }

    /// The security type.
    pub fn security(&self) -> WifiSecurity {
        self.security
    }

    fn entries(&self) -> Vec<(&'static str, Value<'_>)> {
        let mut out = vec![
            (EXTRA_PROVISIONING_WIFI_SSID, Value::Str(&self.ssid)),
            (
                EXTRA_PROVISIONING_WIFI_SECURITY_TYPE,
                Value::Str(self.security.as_str()),
            ),
        ];
        if let Some(pw) = &self.password {
            out.push((EXTRA_PROVISIONING_WIFI_PASSWORD, Value::Str(pw)));
        }
        if self.hidden {
            out.push((EXTRA_PROVISIONING_WIFI_HIDDEN, Value::Bool(true)));
        }
        if let Some(m) = self.eap_method {
            out.push((EXTRA_PROVISIONING_WIFI_EAP_METHOD, Value::Str(m.as_str())));
        }
        if let Some(p) = self.phase2 {
            out.push((EXTRA_PROVISIONING_WIFI_PHASE2_AUTH, Value::Str(p.as_str())));
        }
        if let Some(v) = &self.identity {
            out.push((EXTRA_PROVISIONING_WIFI_IDENTITY, Value::Str(v)));
        }
        if let Some(v) = &self.anonymous_identity {
            out.push((EXTRA_PROVISIONING_WIFI_ANONYMOUS_IDENTITY, Value::Str(v)));
        }
        if let Some(v) = &self.domain {
            out.push((EXTRA_PROVISIONING_WIFI_DOMAIN, Value::Str(v)));
        }
        out
    }
}

fn check_wifi_password(security: WifiSecurity, pw: &str) -> Result<(), AndroidError> {
    let hex = !pw.is_empty() && pw.bytes().all(|b| b.is_ascii_hexdigit());
    let printable = pw.bytes().all(|b| (0x20..0x7f).contains(&b));
    let ok = match security {
        WifiSecurity::None => {
            return Err(AndroidError::BadWifiPassword(
                "an open network has no password",
            ));
        }
        WifiSecurity::Wpa => (printable && (8..=63).contains(&pw.len())) || (hex && pw.len() == 64),
        WifiSecurity::Wep => {
            (printable && [5, 13, 16, 29].contains(&pw.len()))
                || (hex && [10, 26, 32, 58].contains(&pw.len()))
        }
        WifiSecurity::Eap => pw.len() <= MAX_VALUE_LEN && !pw.chars().any(char::is_control),
    };
    if ok {
        Ok(())
    } else {
        Err(AndroidError::BadWifiPassword(match security {
            WifiSecurity::Wpa => "WPA needs 8 to 63 printable ASCII characters or 64 hex digits",
            WifiSecurity::Wep => {
                "WEP needs 5, 13, 16 or 29 characters or 10, 26, 32 or 58 hex digits"
            }
            _ => "too long or has control characters",
        }))
    }
}

impl fmt::Debug for Wifi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wifi")
            .field("ssid", &self.ssid)
            .field("security", &self.security)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("hidden", &self.hidden)
            .field("eap_method", &self.eap_method)
            .finish_non_exhaustive()
    }
}

/// The Android Enterprise provisioning payload: the DPC to install, the admin extras
/// bundle carrying the token, and optional setup settings.
///
/// Renders the setup-screen QR JSON ([`qr_json`](AndroidProvisioning::qr_json)) and the NFC
/// properties ([`nfc_properties`](AndroidProvisioning::nfc_properties)). See the
/// [module docs](self) for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndroidProvisioning {
    component: ComponentName,
    checksum: SignatureChecksum,
    download: DownloadLocation,
    extras: AdminExtras,
    wifi: Option<Wifi>,
    locale: Option<String>,
    time_zone: Option<String>,
    leave_all_system_apps_enabled: Option<bool>,
    skip_encryption: Option<bool>,
    allow_offline: Option<bool>,
    use_mobile_data: Option<bool>,
}

impl AndroidProvisioning {
    /// The DPC's admin component (`package/class`), its signing certificate's checksum
    /// (URL-safe base64 SHA-256) and its `https://` download location; the token under
    /// [`CLOUDDPC_ENROLLMENT_TOKEN`].
    pub fn new(component: &str, checksum: &str, download: &str) -> Result<Self, AndroidError> {
        Ok(Self::from_parts(
            ComponentName::new(component)?,
            SignatureChecksum::new(checksum)?,
            DownloadLocation::new(download)?,
        ))
    }

    /// From validated parts.
    pub fn from_parts(
        component: ComponentName,
        checksum: SignatureChecksum,
        download: DownloadLocation,
    ) -> Self {
        Self {
            component,
            checksum,
            download,
            extras: AdminExtras::new(),
            wifi: None,
            locale: None,
            time_zone: None,
            leave_all_system_apps_enabled: None,
            skip_encryption: None,
            allow_offline: None,
            use_mobile_data: None,
        }
    }

    /// The admin extras bundle (token key and extras).
    pub fn with_admin_extras(mut self, extras: AdminExtras) -> Self {
        self.extras = extras;
        self
    }

    /// The Wi-Fi network to join during setup.
    pub fn with_wifi(mut self, wifi: Wifi) -> Self {
        self.wifi = Some(wifi);
        self
    }

    /// The device locale, `ll` or `ll_CC` (`en_US`; `en-US` is accepted and written with
    /// `_`).
    pub fn with_locale(mut self, locale: &str) -> Result<Self, AndroidError> {
        let normalized = locale.replace('-', "_");
        let (lang, country) = match normalized.split_once('_') {
            Some((l, c)) => (l, Some(c)),
            None => (normalized.as_str(), None),
        };
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let country_ok = country.is_none_or(|c| {
            (c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
                || (c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        });
        if !lang_ok || !country_ok {
            return Err(AndroidError::BadLocale);
        }
        self.locale = Some(normalized);
        Ok(self)
    }

    /// The device time zone, a tz database name (`Europe/Berlin`, `UTC`).
    pub fn with_time_zone(mut self, tz: &str) -> Result<Self, AndroidError> {
        let ok = !tz.is_empty()
            && tz.len() <= 64
            && tz.starts_with(|c: char| c.is_ascii_alphabetic())
            && tz
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b));
        if !ok {
            return Err(AndroidError::BadTimeZone);
        }
        self.time_zone = Some(tz.to_owned());
        Ok(self)
    }

    /// Keep every system app enabled (`EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED`).
    pub fn with_leave_all_system_apps_enabled(mut self, value: bool) -> Self {
        self.leave_all_system_apps_enabled = Some(value);
        self
    }

    /// Skip device encryption (`EXTRA_PROVISIONING_SKIP_ENCRYPTION`).
    pub fn with_skip_encryption(mut self, value: bool) -> Self {
        self.skip_encryption = Some(value);
        self
    }

    /// Allow offline provisioning (`EXTRA_PROVISIONING_ALLOW_OFFLINE`, Android 13+).
    pub fn with_allow_offline(mut self, value: bool) -> Self {
        self.allow_offline = Some(value);
        self
    }

    /// Download the DPC over mobile data (`EXTRA_PROVISIONING_USE_MOBILE_DATA`, Android 13+).
    pub fn with_use_mobile_data(mut self, value: bool) -> Self {
        self.use_mobile_data = Some(value);
        self
    }

    /// The admin extras bundle.
    pub fn admin_extras(&self) -> &AdminExtras {
        &self.extras
    }

    /// The admin component.
    pub fn component(&self) -> &ComponentName {
        &self.component
    }

    /// The top-level entries, the extras bundle aside.
    fn entries(&self) -> Vec<(&'static str, Value<'_>)> {
        let mut out = vec![
            (
                EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME,
                Value::Str(self.component.as_str()),
            ),
            (
                EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION,
                Value::Str(self.download.as_str()),
            ),
            (
                EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM,
                Value::Str(self.checksum.as_str()),
            ),
        ];
        if let Some(wifi) = &self.wifi {
            out.extend(wifi.entries());
        }
        if let Some(v) = &self.locale {
            out.push((EXTRA_PROVISIONING_LOCALE, Value::Str(v)));
        }
        if let Some(v) = &self.time_zone {
            out.push((EXTRA_PROVISIONING_TIME_ZONE, Value::Str(v)));
        }
        let flags = [
            (
                EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED,
                self.leave_all_system_apps_enabled,
            ),
            (EXTRA_PROVISIONING_SKIP_ENCRYPTION, self.skip_encryption),
            (EXTRA_PROVISIONING_ALLOW_OFFLINE, self.allow_offline),
            (EXTRA_PROVISIONING_USE_MOBILE_DATA, self.use_mobile_data),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                out.push((key, Value::Bool(v)));
            }
        }
        out
    }

    /// The JSON an Android device reads from a QR code at the setup screen (tap the welcome
    /// screen six times). ASCII-only; booleans are JSON booleans; the token is in the admin
    /// extras bundle.
    pub fn qr_json(&self, token: &TokenString) -> SecretText {
        to_ascii_json(&QrView {
            android: self,
            token: token.expose_secret(),
        })
    }

    /// The NFC provisioning form: `java.util.Properties` text of the same keys, with the
    /// admin extras bundle serialized as properties text inside its value. Send it as an
    /// NDEF record of type [`MIME_TYPE_PROVISIONING_NFC`].
    pub fn nfc_properties(&self, token: &TokenString) -> SecretText {
        let mut out = Zeroizing::new(String::new());
        for (key, value) in self.entries() {
            match value {
                Value::Str(s) => push_property(&mut out, key, s),
                Value::Bool(b) => push_property(&mut out, key, if b { "true" } else { "false" }),
            }
        }
        let bundle = self.extras.to_properties(token.expose_secret());
        push_property(&mut out, EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, &bundle);
        SecretText::new(std::mem::take(&mut *out))
    }
}

enum Value<'a> {
    Str(&'a str),
    Bool(bool),
}

struct QrView<'a> {
    android: &'a AndroidProvisioning,
    token: &'a str,
}

impl Serialize for QrView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.android.entries();
        let mut map = s.serialize_map(Some(entries.len() + 1))?;
        for (key, value) in entries {
            match value {
                Value::Str(v) => map.serialize_entry(key, v)?,
                Value::Bool(v) => map.serialize_entry(key, &v)?,
            }
        }
        map.serialize_entry(
            EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE,
            &ExtrasView {
                extras: &self.android.extras,
                token: self.token,
            },
        )?;
        map.end()
    }
}

/// JSON with every non-ASCII character written as `\uXXXX` (surrogate pairs above U+FFFF).
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

fn to_ascii_json<T: Serialize>(value: &T) -> SecretText {
    let mut buf = Zeroizing::new(Vec::with_capacity(2048));
    let mut ser = serde_json::Serializer::with_formatter(&mut *buf, AsciiFormatter);
    // Serializing string maps into memory cannot fail.
    value
        .serialize(&mut ser)
        .expect("serializing string maps into a Vec cannot fail");
    let text = String::from_utf8(std::mem::take(&mut *buf))
        .expect("the ASCII formatter writes ASCII only");
    SecretText::new(text)
}

/// Appends one `key=value` line, escaped as `java.util.Properties.store` does: `\`, `=`,
/// `:`, `#`, `!`, tab, line breaks and form feeds escaped; spaces escaped in keys and at the
/// start of values; every character outside printable ASCII as `\uXXXX`.
fn push_property(out: &mut String, key: &str, value: &str) {
    escape_property(out, key, true);
    out.push('=');
    escape_property(out, value, false);
    out.push('\n');
}

fn escape_property(out: &mut String, text: &str, is_key: bool) {
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
}

/// Reads `java.util.Properties` text (as `Properties.load` does): comments, continuation
/// lines, `=`/`:`/whitespace separators, escapes. Later duplicates are kept as separate
/// pairs. On a malformed `\uXXXX` escape, returns its 1-based line.
pub(crate) fn parse_properties(text: &str) -> Result<Vec<(String, String)>, usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    let mut line_no: usize = 1;
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\u{c}');
    while i < chars.len() {
        // Skip leading whitespace and blank lines.
        while i < chars.len() && (is_ws(chars[i]) || chars[i] == '\n' || chars[i] == '\r') {
            if chars[i] == '\n' {
                line_no += 1;
            }
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start_line = line_no;
        if chars[i] == '#' || chars[i] == '!' {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            continue;
        }
        // Gather one logical line: natural lines joined where a line ends in an odd number
        // of backslashes, leading whitespace of the continuation dropped.
        let mut logical: Vec<char> = Vec::new();
        loop {
            let mut backslashes = 0;
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                backslashes = if chars[i] == '\\' { backslashes + 1 } else { 0 };
                logical.push(chars[i]);
                i += 1;
            }
            if backslashes % 2 == 1 && i < chars.len() {
                logical.pop();
                if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
                    i += 1;
                }
                i += 1;
                line_no += 1;
                while i < chars.len() && is_ws(chars[i]) {
                    i += 1;
                }
                continue;
            }
            if backslashes % 2 == 1 {
                logical.pop();
            }
            break;
        }
        // Split key and value.
        let mut k = 0;
        let mut escaped = false;
        while k < logical.len() {
            let c = logical[k];
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '=' || c == ':' || is_ws(c) {
                break;
            }
            k += 1;
        }
        let key_end = k;
        while k < logical.len() && is_ws(logical[k]) {
            k += 1;
        }
        if k < logical.len() && (logical[k] == '=' || logical[k] == ':') {
            k += 1;
        }
        while k < logical.len() && is_ws(logical[k]) {
            k += 1;
        }
        let key = unescape_property(&logical[..key_end]).ok_or(start_line)?;
        let value = unescape_property(&logical[k..]).ok_or(start_line)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn unescape_property(chars: &[char]) -> Option<String> {
    let mut out = Vec::<u16>::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            let mut units = [0u16; 2];
            out.extend_from_slice(c.encode_utf16(&mut units));
            continue;
        }
        let Some(&next) = chars.get(i) else {
            break;
        };
        i += 1;
        let unit = match next {
            'u' => {
                let hex: String = chars.get(i..i + 4)?.iter().collect();
                i += 4;
                u16::from_str_radix(&hex, 16).ok()?
            }
            't' => u16::from(b'\t'),
            'r' => u16::from(b'\r'),
            'n' => u16::from(b'\n'),
            'f' => 0x0c,
            other => {
                let mut units = [0u16; 2];
                out.extend_from_slice(other.encode_utf16(&mut units));
                continue;
            }
        };
        out.push(unit);
    }
    Some(String::from_utf16_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_and_parse_agree() {
        let mut out = String::new();
        push_property(&mut out, "a key=:#!", " lead\\ \t\n\r\u{c}é😀=");
        assert_eq!(
            out,
            "a\\ key\\=\\:\\#\\!=\\ lead\\\\ \\t\\n\\r\\f\\u00E9\\uD83D\\uDE00\\=\n"
        );
        let pairs = parse_properties(&out).unwrap();
        assert_eq!(
            pairs,
            vec![("a key=:#!".to_owned(), " lead\\ \t\n\r\u{c}é😀=".to_owned())]
        );
    }

    #[test]
    fn properties_continuations_comments_and_bad_escapes() {
        let text = "# comment\n! other\nkey : first \\\n    second\nk2 v2\n";
        let pairs = parse_properties(text).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("key".to_owned(), "first second".to_owned()),
                ("k2".to_owned(), "v2".to_owned()),
            ]
        );
        assert_eq!(parse_properties("a=1\nb=\\uZZZZ\n"), Err(2));
    }
}
