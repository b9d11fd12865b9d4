//! [`AnyStore`]: one store type chosen at run time from a URL, for tools and servers whose
//! configuration names the database (`--db`).

use crate::core::enrollment::{Enrollment, Redemption};
use crate::core::error::{RedeemError, StoreError};
use crate::core::rules::RedeemRequest;
use crate::core::token::{Revocation, Token, TokenId};
use crate::store::memory::MemoryStore;
use crate::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};

/// A store picked at run time: in memory, SQLite or PostgreSQL (as compiled in).
///
/// Dispatch costs one `match` per call; code that knows its backend at compile time should
/// use that store type directly.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// [`MemoryStore`].
    Memory(MemoryStore),
    /// [`SqliteStore`](crate::store::sqlite::SqliteStore).
    #[cfg(feature = "sqlite")]
    Sqlite(crate::store::sqlite::SqliteStore),
    /// [`PgStore`](crate::store::postgres::PgStore).
    #[cfg(feature = "postgres")]
    Postgres(crate::store::postgres::PgStore),
}

/// A store location could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL names a backend this build does not include.
    #[error("{scheme}:// databases need the `{feature}` feature of onboarding-token")]
    NotCompiled {
        /// The URL scheme.
        scheme: &'static str,
        /// The cargo feature that enables it.
        feature: &'static str,
    },
    /// Opening, connecting or migrating failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AnyStore {
    /// Opens the store `location` names and applies migrations:
    ///
    /// - `memory:` → a new [`MemoryStore`];
    /// - `postgres://…` or `postgresql://…` → PostgreSQL (feature `postgres`);
    /// - `sqlite://PATH`, `sqlite:PATH` or a plain path → a SQLite file, created if missing
    ///   (feature `sqlite`); `sqlite::memory:` → a private in-memory SQLite database.
    pub async fn open(location: &str) -> Result<Self, OpenError> {
        if location == "memory:" {
            return Ok(AnyStore::Memory(MemoryStore::new()));
        }
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let store = crate::store::postgres::PgStore::connect(location).await?;
                return Ok(AnyStore::Postgres(store));
            }
            #[cfg(not(feature = "postgres"))]
            return Err(OpenError::NotCompiled {
                scheme: "postgres",
                feature: "postgres",
            });
        }
        let path = location
            .strip_prefix("sqlite://")
            .or_else(|| location.strip_prefix("sqlite:"))
            .unwrap_or(location);
        #[cfg(feature = "sqlite")]
        {
            let store = if path == ":memory:" {
                crate::store::sqlite::SqliteStore::in_memory().await?
            } else {
                crate::store::sqlite::SqliteStore::open(path).await?
            };
            Ok(AnyStore::Sqlite(store))
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = path;
            Err(OpenError::NotCompiled {
                scheme: "sqlite",
                feature: "sqlite",
            })
        }
    }

    /// The backend's name: `memory`, `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $call.await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl TokenStore for AnyStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert(token))
    }

    async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_batch(tokens))
    }

    async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        dispatch!(self, s => s.get(id))
    }

    async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        dispatch!(self, s => s.list(query))
    }

    async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        dispatch!(self, s => s.redeem(request))
    }

    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.revoke(target, revocation))
    }

    async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        dispatch!(self, s => s.redemptions(id))
    }
}
