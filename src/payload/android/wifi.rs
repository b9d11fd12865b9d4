//! The Wi-Fi network a device joins during setup ([`Wifi`]) and its security settings.

use std::fmt;

use zeroize::Zeroizing;

use super::error::{AndroidError, MAX_VALUE_LEN};
use super::keys::{
    EXTRA_PROVISIONING_WIFI_ANONYMOUS_IDENTITY, EXTRA_PROVISIONING_WIFI_DOMAIN,
    EXTRA_PROVISIONING_WIFI_EAP_METHOD, EXTRA_PROVISIONING_WIFI_HIDDEN,
    EXTRA_PROVISIONING_WIFI_IDENTITY, EXTRA_PROVISIONING_WIFI_PASSWORD,
    EXTRA_PROVISIONING_WIFI_PHASE2_AUTH, EXTRA_PROVISIONING_WIFI_SECURITY_TYPE,
    EXTRA_PROVISIONING_WIFI_SSID, Value,
};

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

    pub(super) fn entries(&self) -> Vec<(&'static str, Value<'_>)> {
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
