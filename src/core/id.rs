//! Random ids: [`TokenId`], [`BatchId`] and [`KeyId`], shown as lowercase hex.

use std::fmt;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

/// An id string could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: expected {expected} lowercase hex digits")]
pub struct InvalidId {
    kind: &'static str,
    expected: usize,
}

/// Writes `bytes` as lowercase hex (`base16ct`).
fn write_hex<const N: usize>(f: &mut fmt::Formatter<'_>, bytes: &[u8; N]) -> fmt::Result {
    // Ids are at most 16 bytes.
    let mut buf = [0u8; 32];
    let hex = base16ct::lower::encode_str(bytes, &mut buf).map_err(|_| fmt::Error)?;
    f.write_str(hex)
}

/// Reads exactly `2 * N` lowercase hex digits (`base16ct`).
fn parse_hex<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N], InvalidId> {
    let err = InvalidId {
        kind,
        expected: 2 * N,
    };
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(err);
    }
    base16ct::lower::decode(s, &mut out).map_err(|_| err)?;
    Ok(out)
}

/// Defines an id over `N` random bytes with hex `Display`/`FromStr` and string serde.
macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// The length in bytes.
            pub const LEN: usize = $len;

            /// A fresh random id from `rng`.
            pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut bytes = [0u8; $len];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            /// Lowercase hex, two digits a byte.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex($kind, s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

random_id!(
    /// A token's public handle: 128 random bits, shown as 32 lowercase hex digits.
    ///
    /// Safe to log, list and put in URLs: it cannot be redeemed without the signed string.
    ///
    /// ```
    /// use onboarding_token::TokenId;
    /// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    /// let id = TokenId::generate(&mut rng);
    /// assert_eq!(id.to_string().len(), 32);
    /// assert_eq!(id.to_string().parse::<TokenId>().unwrap(), id);
    /// ```
    TokenId,
    16,
    "token id"
);

random_id!(
    /// Groups the tokens issued together in one bulk operation, so they can be listed
    /// and revoked together.
    BatchId,
    16,
    "batch id"
);

random_id!(
    /// Identifies a signing key. Carried in every token string so the verifier can pick the key.
    ///
    /// Four bytes, shown as eight lowercase hex digits. Safe to log.
    ///
    /// ```
    /// use onboarding_token::KeyId;
    /// let id: KeyId = "0a1b2c3d".parse().unwrap();
    /// assert_eq!(id.to_string(), "0a1b2c3d");
    /// ```
    KeyId,
    4,
    "key id"
);
