//! [`SqliteStore`]: the embedded durable store, on bundled SQLite through sqlx
//! (feature `sqlite`).
//!
//! Nothing to install: SQLite is compiled in. Use it for a single MDM server process (any
//! number of connections and tasks in it), for the CLI, and for examples. For several server
//! processes sharing tokens, use the PostgreSQL store.
//!
//! # Schema
//!
//! Two tables, named with a prefix (default `onboarding_`) so they sit beside the host
//! application's own: `<prefix>tokens` and `<prefix>redemptions`, plus
//! `<prefix>schema_migrations` recording the applied versions.
//! [`migrate`](SqliteStore::migrate) creates and upgrades them. Times are stored as unix
//! microseconds (UTC), so records round-trip exactly.
//!
//! # Atomicity
//!
//! A redemption runs in one `BEGIN IMMEDIATE` transaction: it takes SQLite's write lock up
//! front (so two redeemers never deadlock upgrading a read lock), reads the token and the
//! device's earlier redemption, applies [`rules::redeem_in_place`], writes the new use count
//! and the redemption record, and commits. SQLite admits one writer at a time, so this is
//! exact across every connection and process using the file. Within a process, writers of
//! one store (and its clones) queue on an async mutex before asking SQLite for the lock, so
//! they never spin in SQLite's sleeping busy handler; across processes, keep a
//! `busy_timeout` on the pool's connections (sqlx's default is 5 s; [`SqliteStore::open`]
//! sets it) so writers wait for each other instead of failing. Reads (get, list,
//! redemptions) do not queue and, in WAL mode, do not block writers.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection};

use super::common::{Read, SqlStore, sql_token_store};
use super::dialect::Dialect;
use super::errors;
use super::prefix::DEFAULT_PREFIX;
use super::rows;
use crate::core::enrollment::Enrollment;
use crate::core::error::{RedeemError, StoreError};
use crate::core::rules::{self, Decision, RedeemRequest};

pub use super::prefix::InvalidTablePrefix;

/// A durable [`TokenStore`] in a SQLite database (feature `sqlite`).
///
/// Construct it from the application's pool with [`new`](SqliteStore::new) and call
/// [`migrate`](SqliteStore::migrate) once at start-up, or let
/// [`open`](SqliteStore::open) / [`in_memory`](SqliteStore::in_memory) do both. Cloning is
/// cheap (the pool is shared).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use onboarding_token::{Keyring, Onboarding, SigningKey, SqliteStore};
///
/// let dir = std::env::temp_dir().join(format!("obt-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("tokens.db")).await?; // creates and migrates
///
/// // Or, with the application's own pool and tables beside its own:
/// let store = SqliteStore::new(store.pool().clone()).with_table_prefix("mdm_")?;
/// store.migrate().await?;
///
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), store);
/// # let _ = service;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// [`TokenStore`]: crate::store::TokenStore
#[derive(Clone)]
pub struct SqliteStore {
    inner: SqlStore<Sqlite>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table_prefix", &self.inner.table_prefix())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The table prefix used unless [`with_table_prefix`](SqliteStore::with_table_prefix)
    /// says otherwise.
    pub const DEFAULT_TABLE_PREFIX: &'static str = DEFAULT_PREFIX;

    /// A store on the application's pool, with the default table prefix.
    ///
    /// Does no I/O; call [`migrate`](SqliteStore::migrate) before first use.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            inner: SqlStore::new(pool),
        }
    }

    /// Names the tables `<prefix>tokens`, `<prefix>redemptions` and
    /// `<prefix>schema_migrations`. The prefix is at most 32 characters of `a-z 0-9 _`
    /// (it may be empty).
    pub fn with_table_prefix(self, prefix: &str) -> Result<Self, InvalidTablePrefix> {
        Ok(Self {
            inner: self.inner.with_table_prefix(prefix)?,
        })
    }

    /// Opens (creating if missing) a database file in WAL mode (`synchronous = NORMAL`) with
    /// a 5 s busy timeout, a 32 MiB page cache per connection and a pool of up to 8
    /// connections, and applies the migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // 32 MiB of page cache per connection (SQLite's default is 2 MiB), taken only as
            // used: large batches and listings then stay off the file.
            .pragma("cache_size", "-32768")
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options);
        let inner = SqlStore::connect_and_migrate(pool, "opening the database file").await?;
        Ok(Self { inner })
    }

    /// A private in-memory database (gone when the store and its clones are dropped), with
    /// the migrations applied. Handy for tests and demos.
    ///
    /// The pool holds exactly one connection that never expires, since every SQLite
    /// connection to `:memory:` would otherwise see its own empty database.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(err("configuring an in-memory database"))?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options);
        let inner = SqlStore::connect_and_migrate(pool, "opening an in-memory database").await?;
        Ok(Self { inner })
    }

    /// Creates or upgrades the tables: applies, in order, each embedded migration not yet
    /// recorded in `<prefix>schema_migrations`. Idempotent; several processes may run it at
    /// once (it runs in one `BEGIN IMMEDIATE` transaction, so they take turns).
    ///
    /// Fails without changing anything if the database was migrated by a newer version of
    /// this library.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        self.inner.pool()
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        self.inner.table_prefix()
    }

    /// One `BEGIN IMMEDIATE` transaction, entered on this store's writer turn: read, decide,
    /// write, commit; a decision that consumes nothing rolls back.
    async fn redeem_atomically(
        &self,
        request: &RedeemRequest<'_>,
    ) -> Result<Enrollment, RedeemError> {
        let _turn = self.inner.write_turn().await;
        let mut tx = self
            .inner
            .begin_write()
            .await
            .map_err(err("starting a redemption"))?;
        match self.redeem_in(&mut tx, request).await {
            Ok((Some(_), enrollment)) => {
                tx.commit().await.map_err(err("committing a redemption"))?;
                Ok(enrollment)
            }
            Ok((None, enrollment)) => {
                tx.rollback().await.map_err(err("ending a redemption"))?;
                Ok(enrollment)
            }
            Err(e) => {
                tx.rollback().await.map_err(err("ending a redemption"))?;
                Err(e)
            }
        }
    }

    async fn redeem_in(
        &self,
        conn: &mut SqliteConnection,
        request: &RedeemRequest<'_>,
    ) -> Result<(Option<Decision>, Enrollment), RedeemError> {
        let (mut token, prior) = self
            .inner
            .read_to_redeem(&mut *conn, Read::Locked, request)
            .await
            .map_err(|e| e.into_redeem(DIALECT))?;
        let (decision, enrollment) = rules::redeem_in_place(&mut token, request, prior)?;
        let Decision::Consume { uses_after } = decision else {
            return Ok((None, enrollment));
        };
        let uses = rows::uses_column(DIALECT, uses_after)?;
        let sql = self.inner.sql();
        sqlx::query(sql.set_uses.clone())
            .bind(request.token.token_id().as_bytes().to_vec())
            .bind(uses)
            .execute(&mut *conn)
            .await
            .map_err(err("updating the use count"))?;
        SqlStore::recording(&sql.record_redemption, request, uses)
            .execute(&mut *conn)
            .await
            .map_err(err("recording the redemption"))?;
        Ok((Some(decision), enrollment))
    }
}

const DIALECT: Dialect = Dialect::Sqlite;

fn err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    errors::backend_error(DIALECT, what)
}

sql_token_store!(SqliteStore);
