//! [`AndroidProvisioning`]: the DPC, the extras bundle and the setup settings, as the
//! key/value entries Android reads.

use super::dpc::{ComponentName, DownloadLocation, SignatureChecksum};
use super::error::AndroidError;
use super::extras::AdminExtras;
use super::keys::{
    EXTRA_PROVISIONING_ALLOW_OFFLINE, EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME,
    EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION,
    EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM,
    EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED, EXTRA_PROVISIONING_LOCALE,
    EXTRA_PROVISIONING_SKIP_ENCRYPTION, EXTRA_PROVISIONING_TIME_ZONE,
    EXTRA_PROVISIONING_USE_MOBILE_DATA, Value,
};
use super::wifi::Wifi;

/// The Android Enterprise provisioning payload: the DPC to install, the admin extras
/// bundle carrying the token, and optional setup settings.
///
/// Renders the setup-screen QR JSON ([`qr_json`](AndroidProvisioning::qr_json)) and the NFC
/// properties ([`nfc_properties`](AndroidProvisioning::nfc_properties)). See the
/// [module docs](super) for an example.
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
    /// [`CLOUDDPC_ENROLLMENT_TOKEN`](super::CLOUDDPC_ENROLLMENT_TOKEN).
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
    pub(super) fn entries(&self) -> Vec<(&'static str, Value<'_>)> {
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
}
