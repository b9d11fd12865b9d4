//! [`PayloadFormat`] names every payload form; [`PayloadConfig`] holds their settings and
//! renders any of them.

use std::fmt;

use crate::core::codec::TokenString;

use super::android::extras::AdminExtras;
use super::android::provisioning::AndroidProvisioning;
use super::secret::SecretText;
use super::typed::grouped;
use super::url::EnrollmentUrl;

/// The payload forms a token can be rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PayloadFormat {
    /// The bare token string.
    #[default]
    Token,
    /// The typed form on one line ([`grouped`]).
    Grouped,
    /// An enrollment link ([`EnrollmentUrl`]).
    Url,
    /// The Android Enterprise provisioning JSON for the setup-screen QR code.
    Android,
    /// The flat Samsung Knox Mobile Enrollment JSON.
    Kme,
    /// The Android NFC provisioning properties.
    Nfc,
}

impl PayloadFormat {
    /// Every format.
    pub const ALL: [PayloadFormat; 6] = [
        Self::Token,
        Self::Grouped,
        Self::Url,
        Self::Android,
        Self::Kme,
        Self::Nfc,
    ];

    /// The lowercase name (`token`, `grouped`, `url`, `android`, `kme`, `nfc`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Grouped => "grouped",
            Self::Url => "url",
            Self::Android => "android",
            Self::Kme => "kme",
            Self::Nfc => "nfc",
        }
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload format name was not recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown payload format; expected token, grouped, url, android, kme or nfc")]
pub struct UnknownFormat;

impl std::str::FromStr for PayloadFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownFormat)
    }
}

/// A payload could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The format needs settings that were not given (an URL base, the Android settings).
    #[error("the {0} format is not configured")]
    NotConfigured(PayloadFormat),
}

/// The settings of every payload form, to render any [`PayloadFormat`] for a token.
///
/// ```
/// use onboarding_token::payload::{EnrollmentUrl, PayloadConfig, PayloadFormat};
/// # use onboarding_token::{Keyring, SigningKey, TokenId};
/// # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
/// let config = PayloadConfig::new().with_url(EnrollmentUrl::new("https://mdm.example.com/e")?);
/// let link = config.render(PayloadFormat::Url, &token)?;
/// assert!(link.expose_secret().starts_with("https://mdm.example.com/e?token=obt1_"));
/// assert!(config.render(PayloadFormat::Android, &token).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PayloadConfig {
    url: Option<EnrollmentUrl>,
    android: Option<AndroidProvisioning>,
    kme: Option<AdminExtras>,
}

impl PayloadConfig {
    /// No settings: only [`PayloadFormat::Token`], [`PayloadFormat::Grouped`] and
    /// [`PayloadFormat::Kme`] (with the default token key) render.
    pub fn new() -> Self {
        Self::default()
    }

    /// The enrollment link settings.
    pub fn with_url(mut self, url: EnrollmentUrl) -> Self {
        self.url = Some(url);
        self
    }

    /// The Android provisioning settings (used by the Android and NFC formats, and by KME
    /// unless [`with_kme`](PayloadConfig::with_kme) is given).
    pub fn with_android(mut self, android: AndroidProvisioning) -> Self {
        self.android = Some(android);
        self
    }

    /// The Knox KME token key and extras.
    pub fn with_kme(mut self, extras: AdminExtras) -> Self {
        self.kme = Some(extras);
        self
    }

    /// Renders `token` in `format`.
    pub fn render(
        &self,
        format: PayloadFormat,
        token: &TokenString,
    ) -> Result<SecretText, PayloadError> {
        let missing = || PayloadError::NotConfigured(format);
        Ok(match format {
            PayloadFormat::Token => SecretText::from(token),
            PayloadFormat::Grouped => grouped(token),
            PayloadFormat::Url => self.url.as_ref().ok_or_else(missing)?.render(token),
            PayloadFormat::Android => self.android.as_ref().ok_or_else(missing)?.qr_json(token),
            PayloadFormat::Nfc => self
                .android
                .as_ref()
                .ok_or_else(missing)?
                .nfc_properties(token),
            PayloadFormat::Kme => match (&self.kme, &self.android) {
                (Some(extras), _) => extras.kme_json(token),
                (None, Some(android)) => android.admin_extras().kme_json(token),
                (None, None) => AdminExtras::new().kme_json(token),
            },
        })
    }
}
