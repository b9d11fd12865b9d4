//! [`SecretText`]: text that carries a token, redacted in `Debug` and zeroized on drop.

use std::fmt;

use zeroize::Zeroizing;

use crate::core::codec::TokenString;

/// Text that carries a token (a payload, a link, a manifest): a credential.
///
/// `Debug` shows only the length; the bytes are zeroized on drop. Call
/// [`expose_secret`](SecretText::expose_secret) where the text must really go out (into a QR
/// code, a file, an HTTP response).
///
/// ```
/// use onboarding_token::payload::SecretText;
/// let text = SecretText::new("obt1_secret".to_owned());
/// assert_eq!(format!("{text:?}"), "SecretText { len: 11, secret: \"[redacted]\" }");
/// assert_eq!(text.expose_secret(), "obt1_secret");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Wraps text that carries a secret.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The text itself. It is a credential: do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text as a [`Zeroizing`] string, for callers that need an owned `String`.
    pub fn into_zeroizing(self) -> Zeroizing<String> {
        self.0
    }
}

impl From<&TokenString> for SecretText {
    fn from(token: &TokenString) -> Self {
        Self::new(token.expose_secret().to_owned())
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretText")
            .field("len", &self.0.len())
            .field("secret", &"[redacted]")
            .finish()
    }
}
