//! Signing keys and the keyring that picks a key by its id (rotation).
//!
//! The key never goes into a store: whoever reads the database cannot produce a token that
//! verifies. Key bytes are zeroized on drop and never appear in `Debug` output.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::codec::{TAG_LEN, TokenString, UnverifiedToken, VerifiedToken};
use super::error::Rejection;
pub use super::error::VerifyError;
pub use super::id::KeyId;
use super::id::TokenId;

/// The domain-separation label every tag starts with (the prefix and version of the string form).
const MAC_LABEL: &[u8; 4] = b"obt1";

/// HMAC-SHA256 keyed once (the `hmac` crate's state after absorbing the key's pads), with
/// [`MAC_LABEL`] already absorbed: each tag clones it, so a tag costs no key schedule.
///
/// The state is key-equivalent and never printed. Its two SHA-256 states are wiped on drop
/// by `sha2`'s `zeroize` feature (asserted below). Not wiped, and documented in SECURITY.md:
/// the padded key block `hmac` builds once when a key is loaded, and the expected tag
/// `verify_truncated_left` computes, both on the stack.
type TagKey = Hmac<Sha256>;

// The keyed state's SHA-256 cores zeroize on drop (sha2's `zeroize` feature).
const _: fn() = || {
    fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroizes_on_drop::<Sha256>();
};

fn tag_key(secret: &[u8; SigningKey::LEN]) -> TagKey {
    let mut mac = <TagKey as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(MAC_LABEL);
    mac
}

/// An HMAC-SHA256 signing key with its id.
///
/// ```
/// use onboarding_token::SigningKey;
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let key = SigningKey::generate(&mut rng);
/// // Debug shows the id, never the secret.
/// assert!(format!("{key:?}").contains("redacted"));
/// ```
#[derive(Clone)]
pub struct SigningKey {
    id: KeyId,
    secret: Zeroizing<[u8; SigningKey::LEN]>,
    /// The HMAC state after absorbing the key and the label: each tag starts from a clone.
    mac: TagKey,
}

impl SigningKey {
    /// The length of the secret in bytes.
    pub const LEN: usize = 32;

    /// A fresh random key with a fresh random id.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let id = KeyId::generate(rng);
        let mut secret = Zeroizing::new([0u8; Self::LEN]);
        rng.fill_bytes(&mut secret[..]);
        Self::from_bytes(id, &secret)
    }

    /// A key from its id and secret bytes (for example loaded from a secrets manager).
    pub fn from_bytes(id: KeyId, secret: &[u8; Self::LEN]) -> Self {
        Self {
            id,
            secret: Zeroizing::new(*secret),
            mac: tag_key(secret),
        }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The secret bytes. Handle with care: whoever has them can mint tokens.
    pub fn expose_secret(&self) -> &[u8; Self::LEN] {
        &self.secret
    }

    /// Signs a token id, producing its compact string form.
    pub fn sign(&self, token_id: &TokenId) -> TokenString {
        let mut mac = self.mac.clone();
        mac.update(self.id.as_bytes());
        mac.update(token_id.as_bytes());
        let mut full = [0u8; 32];
        hmac::digest::FixedOutput::finalize_into(mac, (&mut full).into());
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        full.zeroize();
        let out = TokenString::encode(self.id, token_id, &tag);
        tag.zeroize();
        out
    }

    /// Verifies the tag of a parsed token in constant time (`Mac::verify_truncated_left`).
    ///
    /// The token names this key, so its signed bytes are this key's id then the token id:
    /// exactly what [`sign`](SigningKey::sign) signs, read in place.
    fn verify(&self, token: &UnverifiedToken) -> bool {
        debug_assert_eq!(token.untrusted_key_id(), self.id);
        let mut mac = self.mac.clone();
        mac.update(token.signed_bytes());
        mac.verify_truncated_left(token.tag()).is_ok()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// The keys a server signs and verifies with: one active key plus older verify-only keys.
///
/// New tokens are signed with the active key. [`rotate`](Keyring::rotate) makes a new key
/// active and keeps the old one for verification, so tokens already handed out keep working;
/// [`retire`](Keyring::retire) drops a key, which invalidates every token it signed.
///
/// ```
/// use onboarding_token::{Keyring, SigningKey, TokenId};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let mut keyring = Keyring::new(SigningKey::generate(&mut rng));
/// let old = keyring.active_key_id();
/// let id = TokenId::generate(&mut rng);
/// let token = keyring.sign(&id);
///
/// keyring.rotate(SigningKey::generate(&mut rng));
/// assert_eq!(keyring.verify_str(token.expose_secret()).unwrap().token_id(), id);
///
/// keyring.retire(old).unwrap();
/// assert!(keyring.verify_str(token.expose_secret()).is_err());
/// ```
#[derive(Clone)]
pub struct Keyring {
    active: SigningKey,
    verify_only: Vec<SigningKey>,
}

/// A keyring operation named a key it cannot act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// No key with this id is in the keyring.
    #[error("key {0} is not in the keyring")]
    UnknownKey(KeyId),
    /// The active key cannot be retired; rotate first.
    #[error("key {0} is the active signing key; rotate to a new key before retiring it")]
    ActiveKey(KeyId),
    /// Two keys share one id.
    #[error("key {0} is already in the keyring")]
    DuplicateKey(KeyId),
    /// The text form of a keyring has no active key.
    #[error("keyring text has no active key")]
    NoActiveKey,
    /// The text form of a keyring could not be read.
    #[error("keyring text is malformed at line {line}: {problem}")]
    Malformed {
        /// The 1-based line number.
        line: usize,
        /// What was wrong (never includes key material).
        problem: &'static str,
    },
}

impl Keyring {
    /// A keyring with one active key.
    pub fn new(active: SigningKey) -> Self {
        Self {
            active,
            verify_only: Vec::new(),
        }
    }

    /// Adds an older key that still verifies tokens but signs no new ones.
    pub fn with_verify_only(mut self, key: SigningKey) -> Result<Self, KeyringError> {
        if self.get(key.id()).is_some() {
            return Err(KeyringError::DuplicateKey(key.id()));
        }
        self.verify_only.push(key);
        Ok(self)
    }

    /// Makes `new_active` the signing key; the previous active key stays for verification.
    pub fn rotate(&mut self, new_active: SigningKey) -> Result<(), KeyringError> {
        if self.get(new_active.id()).is_some() {
            return Err(KeyringError::DuplicateKey(new_active.id()));
        }
        let old = std::mem::replace(&mut self.active, new_active);
        self.verify_only.insert(0, old);
        Ok(())
    }

    /// Removes a verify-only key. Every token it signed stops verifying.
    pub fn retire(&mut self, id: KeyId) -> Result<SigningKey, KeyringError> {
        if self.active.id() == id {
            return Err(KeyringError::ActiveKey(id));
        }
        let pos = self
            .verify_only
            .iter()
            .position(|k| k.id() == id)
            .ok_or(KeyringError::UnknownKey(id))?;
        Ok(self.verify_only.remove(pos))
    }

    /// The id of the key new tokens are signed with.
    pub fn active_key_id(&self) -> KeyId {
        self.active.id()
    }

    /// Every key id, the active one first.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        std::iter::once(&self.active)
            .chain(&self.verify_only)
            .map(SigningKey::id)
    }

    fn get(&self, id: KeyId) -> Option<&SigningKey> {
        if self.active.id() == id {
            return Some(&self.active);
        }
        self.verify_only.iter().find(|k| k.id() == id)
    }

    /// Signs a token id with the active key.
    pub fn sign(&self, token_id: &TokenId) -> TokenString {
        self.active.sign(token_id)
    }

    /// Signs a token id with a particular key, for example to show again the string form
    /// of a token issued before a rotation.
    pub fn sign_with(&self, key: KeyId, token_id: &TokenId) -> Result<TokenString, KeyringError> {
        self.get(key)
            .map(|k| k.sign(token_id))
            .ok_or(KeyringError::UnknownKey(key))
    }

    /// Verifies a parsed token against the key its id names, comparing tags in constant time.
    pub fn verify(&self, token: &UnverifiedToken) -> Result<VerifiedToken, VerifyError> {
        let key_id = token.untrusted_key_id();
        let key = self.get(key_id).ok_or(VerifyError::UnknownKey(key_id))?;
        if key.verify(token) {
            Ok(VerifiedToken::new(key_id, token.untrusted_token_id()))
        } else {
            Err(VerifyError::BadSignature)
        }
    }

    /// Parses and verifies a compact token string.
    pub fn verify_str(&self, token: &str) -> Result<VerifiedToken, Rejection> {
        let parsed = UnverifiedToken::parse(token)?;
        Ok(self.verify(&parsed)?)
    }

    /// The keyring as text, one key per line, for a key file or a secrets manager.
    ///
    /// This is the only way key material leaves the crate. The text is zeroized on drop.
    /// Format: `obk1 <key id hex> <secret base64url> active|verify`.
    pub fn export_secret_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for (key, role) in std::iter::once((&self.active, "active"))
            .chain(self.verify_only.iter().map(|k| (k, "verify")))
        {
            let secret = Zeroizing::new(Base64UrlUnpadded::encode_string(&key.secret[..]));
            out.push_str("obk1 ");
            out.push_str(&key.id.to_string());
            out.push(' ');
            out.push_str(&secret);
            out.push(' ');
            out.push_str(role);
            out.push('\n');
        }
        out
    }

    /// Reads the text written by [`export_secret_text`](Keyring::export_secret_text).
    ///
    /// Blank lines and lines starting with `#` are ignored. Exactly one key must be active.
    pub fn from_secret_text(text: &str) -> Result<Self, KeyringError> {
        let mut active = None;
        let mut verify_only = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem| KeyringError::Malformed {
                line: n + 1,
                problem,
            };
            let mut parts = line.split_ascii_whitespace();
            let (Some("obk1"), Some(id), Some(secret), Some(role), None) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Err(bad("expected `obk1 <key id> <secret> active|verify`"));
            };
            let id: KeyId = id.parse().map_err(|_| bad("key id is not 8 hex digits"))?;
            let mut bytes = Zeroizing::new([0u8; SigningKey::LEN]);
            match Base64UrlUnpadded::decode(secret, &mut bytes[..]) {
                Ok(decoded) if decoded.len() == SigningKey::LEN => {}
                _ => return Err(bad("secret is not 32 bytes of base64url")),
            }
            let key = SigningKey::from_bytes(id, &bytes);
            match role {
                "active" if active.is_none() => active = Some(key),
                "active" => return Err(bad("more than one active key")),
                "verify" => verify_only.push(key),
                _ => return Err(bad("role must be `active` or `verify`")),
            }
        }
        let active = active.ok_or(KeyringError::NoActiveKey)?;
        let mut ring = Keyring::new(active);
        for key in verify_only {
            ring = ring.with_verify_only(key)?;
        }
        Ok(ring)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active.id())
            .field(
                "verify_only",
                &self
                    .verify_only
                    .iter()
                    .map(SigningKey::id)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
