//! [`AdminExtras`]: the bundle that carries the token to the DPC, beside extras of your own.

use std::collections::BTreeMap;

use super::error::{AndroidError, MAX_EXTRAS, MAX_KEY_LEN, MAX_VALUE_LEN};

/// The admin-extras key Google's Android Device Policy reads the enrollment token from; the
/// default token key of [`AdminExtras`].
pub const CLOUDDPC_ENROLLMENT_TOKEN: &str =
    "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN";

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
}

fn check_key(key: &str, what: &'static str) -> Result<(), AndroidError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(AndroidError::BadKey { what });
    }
    Ok(())
}
