//! The table prefix: validated once, then spliced into every statement and table name.

/// The table prefix used when none is configured.
pub(crate) const DEFAULT_PREFIX: &str = "onboarding_";

/// A table prefix was rejected by `with_table_prefix`.
///
/// A prefix is 0 to 32 bytes of `a-z 0-9 _` (so it is safe to splice into SQL and every
/// derived table and index name stays within PostgreSQL's 63-byte identifier limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid table prefix: use at most {max} characters of a-z, 0-9 and _", max = TablePrefix::MAX_LEN)]
pub struct InvalidTablePrefix(());

/// A validated table prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TablePrefix(String);

impl TablePrefix {
    pub(crate) const MAX_LEN: usize = 32;

    pub(crate) fn new(prefix: &str) -> Result<Self, InvalidTablePrefix> {
        let ok = prefix.len() <= Self::MAX_LEN
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(prefix.to_owned()))
        } else {
            Err(InvalidTablePrefix(()))
        }
    }

    pub(crate) fn default_prefix() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// `sql` with every `{prefix}` replaced by the prefix.
    pub(crate) fn apply(&self, sql: &str) -> String {
        sql.replace("{prefix}", &self.0)
    }

    /// A stable 64-bit key for this prefix's migration lock (FNV-1a).
    pub(crate) fn lock_key(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in b"onboarding_token.migrate:".iter().chain(self.0.as_bytes()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}
