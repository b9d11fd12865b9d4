//! The compact string form of a token: parse, then verify, then trust.
//!
//! Grammar (also in the README, for secret scanners):
//!
//! ```text
//! obt1_[A-Za-z0-9_-]{48}
//! ```
//!
//! `obt` is the prefix, `1` the version; the 48 base64url characters (no padding) carry
//! 36 bytes: the 4-byte [`KeyId`], the 16-byte [`TokenId`] and the first 16 bytes (128 bits)
//! of HMAC-SHA256 over `"obt1" || key id || token id`. 53 characters in all.
//!
//! [`UnverifiedToken`] only offers `untrusted_*` getters; only
//! [`Keyring::verify`](crate::Keyring::verify) produces a [`VerifiedToken`].

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::Zeroize;

use super::id::{KeyId, TokenId};

/// The prefix every token string starts with, version included.
pub const PREFIX: &str = "obt1_";
/// Bytes of the HMAC-SHA256 tag kept in a token (128 bits).
pub const TAG_LEN: usize = 16;
const PAYLOAD_LEN: usize = KeyId::LEN + TokenId::LEN + TAG_LEN;
/// The exact length of a token string in characters.
pub const TOKEN_LEN: usize = PREFIX.len() + PAYLOAD_LEN / 3 * 4;
/// A regular expression matching token strings, for secret scanners.
pub const TOKEN_REGEX: &str = "obt1_[A-Za-z0-9_-]{48}";

/// A token string could not be parsed. Messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Nothing was given.
    #[error("token is empty")]
    Empty,
    /// The input does not start with `obt`.
    #[error("token does not start with the `obt` prefix")]
    BadPrefix,
    /// The input has the prefix but a version this crate does not know.
    #[error("token has an unsupported version")]
    UnsupportedVersion,
    /// The input has the wrong length.
    #[error("token has {len} characters; expected {TOKEN_LEN}")]
    BadLength {
        /// The length that was given, in bytes.
        len: usize,
    },
    /// The body is not base64url.
    #[error("token contains characters outside base64url")]
    BadEncoding,
}

/// A token string parsed but not yet verified: nothing in it can be trusted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnverifiedToken {
    /// Key id, token id and tag, as decoded (kept together: the first two are what the
    /// tag signs, so verification reads them in place).
    payload: [u8; PAYLOAD_LEN],
}

/// Decodes a token's 48 base64url characters into its 36 bytes, or `None` when a character
/// is outside the alphabet. `base64ct` decodes in constant time, so the secret tag does not
/// leak through timing or the cache.
fn decode_body(body: &[u8]) -> Option<[u8; PAYLOAD_LEN]> {
    let mut out = [0u8; PAYLOAD_LEN];
    match Base64UrlUnpadded::decode(body, &mut out) {
        Ok(decoded) if decoded.len() == PAYLOAD_LEN => Some(out),
        _ => None,
    }
}

/// `N` bytes of `bytes` from `at` (constant bounds: nothing can fail).
fn chunk<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

impl UnverifiedToken {
    /// Parses the compact string form. Does no allocation and no store access.
    ///
    /// ```
    /// use onboarding_token::{DecodeError, UnverifiedToken};
    /// assert_eq!(UnverifiedToken::parse("").unwrap_err(), DecodeError::Empty);
    /// assert_eq!(UnverifiedToken::parse("ghp_abc").unwrap_err(), DecodeError::BadPrefix);
    /// ```
    pub fn parse(input: &str) -> Result<Self, DecodeError> {
        let bytes = input.as_bytes();
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        if bytes.len() != TOKEN_LEN || !bytes.starts_with(PREFIX.as_bytes()) {
            return Err(classify_bad_start(bytes));
        }
        let payload = decode_body(&bytes[PREFIX.len()..]).ok_or(DecodeError::BadEncoding)?;
        Ok(Self { payload })
    }

    /// The key id the token claims to be signed with. Not trustworthy until verified.
    pub fn untrusted_key_id(&self) -> KeyId {
        KeyId::from_bytes(chunk(&self.payload, 0))
    }

    /// The token id the token claims. Not trustworthy until verified.
    pub fn untrusted_token_id(&self) -> TokenId {
        TokenId::from_bytes(chunk(&self.payload, KeyId::LEN))
    }

    /// The bytes the tag signs after the label: the key id, then the token id.
    pub(crate) fn signed_bytes(&self) -> &[u8; KeyId::LEN + TokenId::LEN] {
        self.payload
            .first_chunk()
            .unwrap_or_else(|| unreachable!("the payload is longer"))
    }

    /// The tag the token carries.
    pub(crate) fn tag(&self) -> &[u8; TAG_LEN] {
        self.payload
            .last_chunk()
            .unwrap_or_else(|| unreachable!("the payload is longer"))
    }
}

fn classify_bad_start(bytes: &[u8]) -> DecodeError {
    let prefix = PREFIX.as_bytes();
    if bytes.starts_with(prefix) {
        return DecodeError::BadLength { len: bytes.len() };
    }
    // `obt` followed by something other than `1_`: a version we do not know.
    if bytes.len() > 3 && bytes[..3] == prefix[..3] && bytes[3].is_ascii_alphanumeric() {
        let versioned = bytes[3..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .is_some_and(|p| bytes[3 + p] == b'_');
        if versioned {
            return DecodeError::UnsupportedVersion;
        }
    }
    DecodeError::BadPrefix
}

impl fmt::Debug for UnverifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("untrusted_key_id", &self.untrusted_key_id())
            .field("untrusted_token_id", &self.untrusted_token_id())
            .finish_non_exhaustive()
    }
}

/// A token whose tag verified against the keyring: its ids can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifiedToken {
    key_id: KeyId,
    token_id: TokenId,
}

impl VerifiedToken {
    pub(crate) fn new(key_id: KeyId, token_id: TokenId) -> Self {
        Self { key_id, token_id }
    }

    /// The key that signed the token.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The token's id, to look its record up in a store.
    pub fn token_id(&self) -> TokenId {
        self.token_id
    }
}

/// The secret string form of a token, as handed to devices (QR code, text, link).
///
/// It is a credential: there is no `Display`, `Debug` shows only the public ids, it is not
/// `Serialize`, and its bytes are zeroized on drop. Call
/// [`expose_secret`](TokenString::expose_secret) where the string must really go out.
///
/// ```
/// use onboarding_token::{Keyring, SigningKey, TokenId};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let keyring = Keyring::new(SigningKey::generate(&mut rng));
/// let token = keyring.sign(&TokenId::generate(&mut rng));
/// assert!(token.expose_secret().starts_with("obt1_"));
/// assert!(!format!("{token:?}").contains(token.expose_secret()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TokenString {
    bytes: [u8; TOKEN_LEN],
    key_id: KeyId,
    token_id: TokenId,
}

impl TokenString {
    pub(crate) fn encode(key_id: KeyId, token_id: &TokenId, tag: &[u8; TAG_LEN]) -> Self {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..KeyId::LEN].copy_from_slice(key_id.as_bytes());
        payload[KeyId::LEN..KeyId::LEN + TokenId::LEN].copy_from_slice(token_id.as_bytes());
        payload[KeyId::LEN + TokenId::LEN..].copy_from_slice(tag);
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        let written = Base64UrlUnpadded::encode(&payload, &mut bytes[PREFIX.len()..])
            .map(str::len)
            .unwrap_or(0);
        debug_assert_eq!(written, TOKEN_LEN - PREFIX.len());
        payload.zeroize();
        Self {
            bytes,
            key_id,
            token_id: *token_id,
        }
    }

    /// The string itself. It is a credential: do not log it.
    pub fn expose_secret(&self) -> &str {
        // Prefix and base64url output are ASCII.
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }

    /// The token's public id (safe to log).
    pub fn token_id(&self) -> TokenId {
        self.token_id
    }

    /// The id of the key that signed it (safe to log).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
}

impl Drop for TokenString {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for TokenString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenString")
            .field("token_id", &self.token_id)
            .field("key_id", &self.key_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Characters of base64url after the prefix.
    const BODY_LEN: usize = PAYLOAD_LEN / 3 * 4;

    proptest! {
        /// Whatever 36 bytes are encoded, decoding gives them back.
        #[test]
        fn decode_body_inverts_encoding(payload in prop::array::uniform32(any::<u8>()), tail in prop::array::uniform4(any::<u8>())) {
            let mut bytes = [0u8; PAYLOAD_LEN];
            bytes[..32].copy_from_slice(&payload);
            bytes[32..].copy_from_slice(&tail);
            let mut text = [0u8; BODY_LEN];
            let encoded = Base64UrlUnpadded::encode(&bytes, &mut text).unwrap().len();
            prop_assert_eq!(encoded, BODY_LEN);
            prop_assert_eq!(decode_body(&text), Some(bytes));
        }

        /// A body with one character outside base64url never decodes.
        #[test]
        fn decode_body_refuses_foreign_characters(at in 0..BODY_LEN, bad in any::<u8>()) {
            prop_assume!(!(bad.is_ascii_alphanumeric() || bad == b'-' || bad == b'_'));
            let mut text = [b'A'; BODY_LEN];
            text[at] = bad;
            prop_assert_eq!(decode_body(&text), None);
        }
    }
}
