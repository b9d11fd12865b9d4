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
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use tokio::sync::Mutex;

use crate::enrollment::{Enrollment, Redemption};
use crate::error::{RedeemError, Rejection, StoreError};
use crate::name::DeviceId;
use crate::rules::{self, Decision, RedeemRequest};
use crate::store::sql::{
    self, Dialect, Migration, Param, Statements, TOKEN_COLUMN_COUNT, TablePrefix,
};
use crate::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};
use crate::token::{Revocation, Token, TokenId};

pub use crate::store::sql::InvalidTablePrefix;

const DIALECT: Dialect = Dialect::Sqlite;
const BACKEND: &str = "sqlite";

/// The schema migrations, oldest first.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "tokens and redemptions",
    sql: include_str!("migrations/sqlite/0001_tokens_and_redemptions.sql"),
}];

/// Tokens per multi-row `INSERT` in a batch: 2000 rows of 15 values stay under SQLite's
/// limit of 32766 bound parameters.
const ROWS_PER_INSERT: usize = 2000;

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
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    prefix: TablePrefix,
    sql: Arc<Statements>,
    /// Writers of this store (and its clones) take turns here before asking SQLite for its
    /// write lock: SQLite admits one writer anyway, and its busy handler waits by sleeping,
    /// which under contention costs far more than an async queue.
    writer: Arc<Mutex<()>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table_prefix", &self.prefix.as_str())
            .finish_non_exhaustive()
    }
}

fn err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    sql::backend_error(DIALECT, what)
}

impl SqliteStore {
    /// The table prefix used unless [`with_table_prefix`](SqliteStore::with_table_prefix)
    /// says otherwise.
    pub const DEFAULT_TABLE_PREFIX: &'static str = sql::DEFAULT_PREFIX;

    /// A store on the application's pool, with the default table prefix.
    ///
    /// Does no I/O; call [`migrate`](SqliteStore::migrate) before first use.
    pub fn new(pool: SqlitePool) -> Self {
        let prefix = TablePrefix::default_prefix();
        let sql = Arc::new(Statements::new(DIALECT, &prefix));
        Self {
            pool,
            prefix,
            sql,
            writer: Arc::new(Mutex::new(())),
        }
    }

    /// Names the tables `<prefix>tokens`, `<prefix>redemptions` and
    /// `<prefix>schema_migrations`. The prefix is at most 32 characters of `a-z 0-9 _`
    /// (it may be empty).
    pub fn with_table_prefix(mut self, prefix: &str) -> Result<Self, InvalidTablePrefix> {
        self.prefix = TablePrefix::new(prefix)?;
        self.sql = Arc::new(Statements::new(DIALECT, &self.prefix));
        Ok(self)
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
            .connect_with(options)
            .await
            .map_err(err("opening the database file"))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
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
            .connect_with(options)
            .await
            .map_err(err("opening an in-memory database"))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Creates or upgrades the tables: applies, in order, each embedded migration not yet
    /// recorded in `<prefix>schema_migrations`. Idempotent; several processes may run it at
    /// once (it runs in one `BEGIN IMMEDIATE` transaction, so they take turns).
    ///
    /// Fails without changing anything if the database was migrated by a newer version of
    /// this library.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let _turn = self.writer.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err("starting the migration"))?;
        match self.migrate_in(&mut tx).await {
            Ok(()) => tx.commit().await.map_err(err("committing the migration")),
            Err(e) => {
                // Roll back now rather than when the pool next tests the connection, so the
                // lock is released at once.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn migrate_in(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        let table = format!("{}schema_migrations", self.prefix.as_str());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
               version INTEGER PRIMARY KEY, description TEXT NOT NULL, \
               applied_at INTEGER NOT NULL)"
        )))
        .execute(&mut *conn)
        .await
        .map_err(err("creating the migrations table"))?;
        let applied: Vec<i64> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT version FROM {table}")))
                .fetch_all(&mut *conn)
                .await
                .map_err(err("reading the applied migrations"))?;
        let pending = sql::pending_migrations(MIGRATIONS, &applied)
            .map_err(|e| StoreError::backend(BACKEND, "checking the schema version", e))?;
        for migration in pending {
            sqlx::raw_sql(sqlx::AssertSqlSafe(self.prefix.apply(migration.sql)))
                .execute(&mut *conn)
                .await
                .map_err(err("applying a migration"))?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (version, description, applied_at) VALUES ($1, $2, $3)"
            )))
            .bind(migration.version)
            .bind(migration.description)
            .bind(sql::micros(chrono::Utc::now()))
            .execute(&mut *conn)
            .await
            .map_err(err("recording a migration"))?;
        }
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        self.prefix.as_str()
    }

    async fn insert_chunks(
        &self,
        conn: &mut SqliteConnection,
        tokens: &[Token],
    ) -> Result<(), BatchError> {
        let mut full: Option<String> = None;
        for chunk in tokens.chunks(ROWS_PER_INSERT) {
            let mut params = Vec::with_capacity(chunk.len() * TOKEN_COLUMN_COUNT);
            for token in chunk {
                params.extend(sql::token_params(token, DIALECT).map_err(BatchError::Encode)?);
            }
            let query = if chunk.len() == ROWS_PER_INSERT {
                let text = full.get_or_insert_with(|| self.sql.insert_many(ROWS_PER_INSERT));
                sqlx::query(sqlx::AssertSqlSafe(text.as_str()))
            } else {
                sqlx::query(sqlx::AssertSqlSafe(self.sql.insert_many(chunk.len())))
                    .persistent(false)
            };
            sql::bind_params(query, params)
                .execute(&mut *conn)
                .await
                .map_err(BatchError::Sql)?;
        }
        Ok(())
    }

    /// After a failed batch: the first id of `tokens` already stored, or repeated in it.
    async fn find_duplicate(&self, tokens: &[Token]) -> Result<Option<TokenId>, StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(tokens.len());
        if let Some(dup) = tokens.iter().find(|t| !seen.insert(t.id())) {
            return Ok(Some(dup.id()));
        }
        for chunk in tokens.chunks(ROWS_PER_INSERT) {
            let query = sqlx::query(sqlx::AssertSqlSafe(self.sql.existing_ids(chunk.len())))
                .persistent(false);
            let params = chunk.iter().map(|t| Param::blob(t.id().as_bytes()));
            let row = sql::bind_params(query, params)
                .fetch_optional(&self.pool)
                .await
                .map_err(err("looking for the duplicate id"))?;
            if let Some(row) = row {
                let bytes: Vec<u8> = row
                    .try_get(0)
                    .map_err(err("looking for the duplicate id"))?;
                if let Ok(bytes) = <[u8; 16]>::try_from(bytes) {
                    return Ok(Some(TokenId::from_bytes(bytes)));
                }
            }
        }
        Ok(None)
    }

    async fn redeem_in(
        &self,
        conn: &mut SqliteConnection,
        request: &RedeemRequest<'_>,
    ) -> Result<(Option<Decision>, Enrollment), RedeemError> {
        let id = request.token.token_id();
        let row = sqlx::query(self.sql.redeem_read.clone())
            .bind(id.as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
            .fetch_optional(&mut *conn)
            .await
            .map_err(err("reading the token to redeem"))?;
        let Some(row) = row else {
            return Err(Rejection::NotFound { id }.into());
        };
        let mut token = sql::token_from_row(&row, DIALECT)?;
        let prior: Option<i64> = row
            .try_get(TOKEN_COLUMN_COUNT)
            .map_err(err("reading the prior redemption"))?;
        let prior = prior.map(|t| sql::time(t, DIALECT)).transpose()?;
        let (decision, enrollment) = rules::redeem_in_place(&mut token, request, prior)?;
        if let Decision::Consume { uses_after } = decision {
            let uses = i64::try_from(uses_after).map_err(|_| {
                StoreError::backend(BACKEND, "recording the redemption", UsesOutOfRange)
            })?;
            sqlx::query(self.sql.set_uses.clone())
                .bind(id.as_bytes().to_vec())
                .bind(uses)
                .execute(&mut *conn)
                .await
                .map_err(err("updating the use count"))?;
            sqlx::query(self.sql.record_redemption.clone())
                .bind(id.as_bytes().to_vec())
                .bind(request.device.as_str().to_owned())
                .bind(uses)
                .bind(sql::micros(request.now))
                .execute(&mut *conn)
                .await
                .map_err(err("recording the redemption"))?;
            return Ok((Some(decision), enrollment));
        }
        Ok((None, enrollment))
    }
}

/// Why writing a batch failed.
enum BatchError {
    Encode(StoreError),
    Sql(sqlx::Error),
}

/// The use count no longer fits the column.
#[derive(Debug, thiserror::Error)]
#[error("use count out of range")]
struct UsesOutOfRange;

impl TokenStore for SqliteStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        let params = sql::token_params(&token, DIALECT)?;
        let _turn = self.writer.lock().await;
        let result = sql::bind_params(sqlx::query(self.sql.insert.clone()), params)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if sql::is_unique_violation(&e) => Err(StoreError::Duplicate(token.id())),
            Err(e) => Err(StoreError::backend(BACKEND, "inserting a token", e)),
        }
    }

    async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let turn = self.writer.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err("starting a batch insert"))?;
        match self.insert_chunks(&mut tx, &tokens).await {
            Ok(()) => tx.commit().await.map_err(err("committing a batch insert")),
            Err(BatchError::Sql(e)) if sql::is_unique_violation(&e) => {
                tx.rollback()
                    .await
                    .map_err(err("rolling back a batch insert"))?;
                drop(turn);
                match self.find_duplicate(&tokens).await? {
                    Some(id) => Err(StoreError::Duplicate(id)),
                    None => Err(StoreError::backend(BACKEND, "inserting a batch", e)),
                }
            }
            Err(e) => {
                tx.rollback()
                    .await
                    .map_err(err("rolling back a batch insert"))?;
                Err(match e {
                    BatchError::Encode(e) => e,
                    BatchError::Sql(e) => StoreError::backend(BACKEND, "inserting a batch", e),
                })
            }
        }
    }

    async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        let row = sqlx::query(self.sql.get.clone())
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a token"))?;
        row.map(|row| sql::token_from_row(&row, DIALECT))
            .transpose()
    }

    async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        let (text, params) = self.sql.list(query);
        let rows = sql::bind_params(sqlx::query(sqlx::AssertSqlSafe(text)), params)
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing tokens"))?;
        let tokens = rows
            .iter()
            .map(|row| sql::token_from_row(row, DIALECT))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenPage::from_sorted(tokens, query.page_size()))
    }

    async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        let _turn = self.writer.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
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

    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        let (text, params) = self.sql.revoke(target, revocation);
        let turn = self.writer.lock().await;
        let done = sql::bind_params(sqlx::query(text), params)
            .execute(&self.pool)
            .await
            .map_err(err("revoking tokens"))?
            .rows_affected();
        drop(turn);
        if let (RevokeTarget::Token(id), 0) = (target, done) {
            if !self.exists(*id).await? {
                return Err(StoreError::NotFound(*id));
            }
        }
        Ok(done)
    }

    async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        let rows = sqlx::query(self.sql.redemptions_of.clone())
            .bind(id.as_bytes().to_vec())
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading redemptions"))?;
        if rows.is_empty() && !self.exists(id).await? {
            return Err(StoreError::NotFound(id));
        }
        rows.iter()
            .map(|row| {
                let device: String = row.try_get(0).map_err(err("reading a redemption"))?;
                let at: i64 = row.try_get(1).map_err(err("reading a redemption"))?;
                Ok(Redemption {
                    device: DeviceId::new(device).map_err(crate::token::SpecError::from)?,
                    redeemed_at: sql::time(at, DIALECT)?,
                })
            })
            .collect()
    }
}

impl SqliteStore {
    async fn exists(&self, id: TokenId) -> Result<bool, StoreError> {
        Ok(sqlx::query(self.sql.exists.clone())
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(err("looking a token up"))?
            .is_some())
    }
}
