//! The DPC to install: its admin component, its signing certificate's checksum and where
//! to download it.

use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};

use crate::payload::url::validate_http_url;

use super::error::{AndroidError, MAX_KEY_LEN};

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
