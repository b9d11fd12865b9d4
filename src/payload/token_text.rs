//! [`TokenText`]: a well-formed token string taken from input, not yet verified.

use std::fmt;

use zeroize::Zeroize;

use crate::core::codec::{DecodeError, TOKEN_LEN, TokenString, UnverifiedToken};

/// A well-formed token string found in scanned or typed input. **Not verified**: only
/// [`Keyring::verify`](crate::Keyring::verify) (through
/// [`Onboarding::redeem`](crate::Onboarding::redeem)) tells whether it is genuine.
///
/// A credential like [`TokenString`]: `Debug` shows only the untrusted ids, the bytes are
/// zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText {
    bytes: [u8; TOKEN_LEN],
    parsed: UnverifiedToken,
}

impl TokenText {
    /// Parses an exact token string (no whitespace, no grouping; see
    /// [`parse_grouped`](super::parse_grouped) and [`extract_token`](super::extract_token)
    /// for the lenient forms).
    pub fn parse(input: &str) -> Result<Self, DecodeError> {
        let parsed = UnverifiedToken::parse(input)?;
        let mut bytes = [0u8; TOKEN_LEN];
        bytes.copy_from_slice(input.as_bytes());
        Ok(Self { bytes, parsed })
    }

    /// The token string. It is a credential: do not log it.
    pub fn expose_secret(&self) -> &str {
        // Only ever filled from a parsed (ASCII) token string.
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }

    /// The parsed, unverified token (its claimed key id and token id).
    pub fn untrusted(&self) -> &UnverifiedToken {
        &self.parsed
    }
}

impl From<&TokenString> for TokenText {
    fn from(token: &TokenString) -> Self {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes.copy_from_slice(token.expose_secret().as_bytes());
        let parsed = UnverifiedToken::parse(token.expose_secret())
            .expect("a TokenString is always well-formed");
        Self { bytes, parsed }
    }
}

impl Drop for TokenText {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenText")
            .field("untrusted_key_id", &self.parsed.untrusted_key_id())
            .field("untrusted_token_id", &self.parsed.untrusted_token_id())
            .field("secret", &"[redacted]")
            .finish()
    }
}
