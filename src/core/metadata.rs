//! [`Metadata`]: the admin's bounded key/value data carried by a token.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::SpecError;

/// Opaque key/value data chosen by the admin (an org unit, a site, a cost centre), returned
/// with every redemption. At most [`Metadata::MAX_BYTES`] of keys and values in all.
///
/// ```
/// use onboarding_token::Metadata;
/// let meta = Metadata::from_pairs([("site", "berlin"), ("cost_centre", "4711")]).unwrap();
/// assert_eq!(meta.get("site"), Some("berlin"));
/// assert!(Metadata::from_pairs([("big", "x".repeat(5000))]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata(Option<Arc<BTreeMap<String, String>>>);

impl Metadata {
    /// The bound on the sum of key and value lengths, in bytes.
    pub const MAX_BYTES: usize = 4096;

    /// No metadata.
    pub fn new() -> Self {
        Self(None)
    }

    /// Metadata from key/value pairs; a later duplicate key replaces an earlier one.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, SpecError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_map(map)
    }

    /// Metadata from a map.
    pub fn from_map(map: BTreeMap<String, String>) -> Result<Self, SpecError> {
        let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > Self::MAX_BYTES {
            return Err(SpecError::MetadataTooLarge {
                size,
                max: Self::MAX_BYTES,
            });
        }
        if map.keys().any(String::is_empty) {
            return Err(SpecError::EmptyMetadataKey);
        }
        Ok(Self((!map.is_empty()).then(|| Arc::new(map))))
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.as_ref()?.get(key).map(String::as_str)
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The pairs as a map (empty when there is no metadata).
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Self::from_map(map).map_err(serde::de::Error::custom)
    }
}
