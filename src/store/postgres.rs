//! [`PgStore`]: a store in PostgreSQL through sqlx (feature `postgres`), for deployments
//! where several MDM server processes share one set of tokens.
//!
//! # Schema
//!
//! Two tables, named with a prefix (default `onboarding_`) so they sit beside the host
//! application's own, in the connection's current schema (`search_path`):
//! `<prefix>tokens` and `<prefix>redemptions`, plus `<prefix>schema_migrations` recording
//! the applied versions. [`migrate`](PgStore::migrate) creates and upgrades them under an
//! advisory lock, so every replica may run it at start-up. Times are stored as unix
//! microseconds (UTC), so records round-trip exactly.
//!
//! # Atomicity
//!
//! Redemption is exact across every connection and process. By default
//! ([`RedeemStrategy::ConditionalUpdate`]) a redemption that consumes a use is **one
//! statement**: an `UPDATE ... SET uses = uses + 1 WHERE <the rules> RETURNING ...` that also
//! inserts the redemption record. The row lock the `UPDATE` takes serialises concurrent
//! redeemers of one token, and PostgreSQL re-checks the `WHERE` clause against the newest
//! row version after waiting, so a `K`-use token admits exactly `K` devices. When that
//! statement changes nothing (a rejection or a replay), the store reads the record and lets
//! [`rules::decide`] say why, so every answer still comes from the core's rules; the
//! model-based tests check that the SQL condition and the rules agree.
//!
//! Should the updated row fail to decode (a record written by something other than this
//! library), the store gives the use back in one statement and reports the error, so a
//! store error still means nothing was consumed.
//!
//! [`RedeemStrategy::LockedTransaction`] instead runs the rules in Rust inside a short
//! transaction holding the token's row lock (`SELECT ... FOR UPDATE`): four round trips
//! instead of one. Measured on one machine (`benches/stores.rs`), the conditional update
//! took about a quarter less time per redemption for one client and gave about 1.5 to 1.8
//! times the throughput for 16 clients on different tokens; on one hot token the row lock
//! and the commit bound both, and the conditional update was never the slower.
//!
//! # Durability and latency
//!
//! A redemption is answered only after its commit, and with PostgreSQL's default
//! `synchronous_commit = on` a commit waits until its WAL is on the server's disk. That
//! wait is a large part of a redemption's time: about half on the benchmark machine. It
//! is also what makes a single-use token stay used after the database server crashes.
//! Without it, the last redemptions before a crash could be lost, and their tokens
//! redeemed again.
//!
//! The store does not change the setting: it belongs to the server's configuration (for
//! the server, a database, a role or a session). An operator who accepts that loss can
//! set it on the connections of the pool the store is given:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use onboarding_token::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
//! use onboarding_token::PgStore;
//!
//! let options: PgConnectOptions = "postgres://mdm@db/mdm".parse()?;
//! // Commits return before the WAL reaches the disk: faster, and a crash can lose the
//! // last fraction of a second of redemptions.
//! let options = options.options([("synchronous_commit", "off")]);
//! let store = PgStore::new(PgPoolOptions::new().connect_with(options).await?);
//! # let _ = store;
//! # Ok(()) }
//! ```
//!
//! `benches/stores.rs` measures both settings (`redeem/postgres_conditional` and
//! `redeem/postgres_conditional_async_commit`) against a `SELECT 1` on the same server.
//! `BENCHMARKS.md` has the figures.

use std::sync::Arc;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};

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

const DIALECT: Dialect = Dialect::Postgres;
const BACKEND: &str = "postgres";

/// The schema migrations, oldest first.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "tokens and redemptions",
    sql: include_str!("migrations/postgres/0001_tokens_and_redemptions.sql"),
}];

/// Tokens per multi-row `INSERT` in a batch: 4000 rows of 15 values stay under
/// PostgreSQL's limit of 65535 bound parameters.
const ROWS_PER_INSERT: usize = 4000;

/// How often a redemption is retried after a conflict it can resolve by retrying: the same
/// device redeeming twice at once, or a serialization failure or deadlock under a stricter
/// isolation level configured by the host.
const ATTEMPTS: usize = 5;

/// How [`PgStore`] performs a redemption. Both are exact under concurrency; they differ in
/// round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RedeemStrategy {
    /// One conditional `UPDATE ... RETURNING` statement (with the redemption insert in the
    /// same statement) for a redemption that consumes a use; a rejection or replay then
    /// reads the record once to let the core's rules explain it. One round trip on the hot
    /// path. The default.
    #[default]
    ConditionalUpdate,
    /// `BEGIN`, `SELECT ... FOR UPDATE`, the core's rules in Rust, one write statement,
    /// `COMMIT`: four round trips.
    LockedTransaction,
}

/// A [`TokenStore`] in PostgreSQL (feature `postgres`), shared by any number of server
/// processes.
///
/// Construct it from the application's pool with [`new`](PgStore::new) and call
/// [`migrate`](PgStore::migrate) at start-up (safe from several replicas at once), or use
/// [`connect`](PgStore::connect). Cloning is cheap (the pool is shared).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use onboarding_token::{Keyring, Onboarding, PgStore, SigningKey};
///
/// let pool = sqlx::PgPool::connect("postgres://mdm@db.internal/mdm").await?;
/// let store = PgStore::new(pool).with_table_prefix("mdm_onboarding_")?;
/// store.migrate().await?;
///
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), store);
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    prefix: TablePrefix,
    sql: Arc<Statements>,
    strategy: RedeemStrategy,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("table_prefix", &self.prefix.as_str())
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

fn err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    sql::backend_error(DIALECT, what)
}

/// Whether retrying the whole redemption can succeed: a concurrent redemption by the same
/// device (unique violation on the redemption record), a serialization failure or a
/// deadlock.
fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// What one attempt at a redemption came to.
enum Attempt {
    Done(Result<Enrollment, RedeemError>),
    /// A conflict that a retry resolves.
    Retry(sqlx::Error),
}

impl PgStore {
    /// The table prefix used unless [`with_table_prefix`](PgStore::with_table_prefix) says
    /// otherwise.
    pub const DEFAULT_TABLE_PREFIX: &'static str = sql::DEFAULT_PREFIX;

    /// A store on the application's pool, with the default table prefix.
    ///
    /// Does no I/O; call [`migrate`](PgStore::migrate) before first use.
    pub fn new(pool: PgPool) -> Self {
        let prefix = TablePrefix::default_prefix();
        let sql = Arc::new(Statements::new(DIALECT, &prefix));
        Self {
            pool,
            prefix,
            sql,
            strategy: RedeemStrategy::default(),
        }
    }

    /// Connects a pool of up to 10 connections to `url` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(err("connecting"))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Names the tables `<prefix>tokens`, `<prefix>redemptions` and
    /// `<prefix>schema_migrations`. The prefix is at most 32 characters of `a-z 0-9 _`
    /// (it may be empty).
    pub fn with_table_prefix(mut self, prefix: &str) -> Result<Self, InvalidTablePrefix> {
        self.prefix = TablePrefix::new(prefix)?;
        self.sql = Arc::new(Statements::new(DIALECT, &self.prefix));
        Ok(self)
    }

    /// Chooses how redemptions run (default [`RedeemStrategy::ConditionalUpdate`]).
    pub fn with_redeem_strategy(mut self, strategy: RedeemStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// Creates or upgrades the tables: applies, in order, each embedded migration not yet
    /// recorded in `<prefix>schema_migrations`, in one transaction.
    ///
    /// Idempotent, and safe to run from several replicas at once: the transaction first
    /// takes a transaction-scoped advisory lock derived from the prefix, so concurrent runs
    /// take turns and the later ones find nothing to do. Fails without changing anything if
    /// the database was migrated by a newer version of this library.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
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

    async fn migrate_in(&self, conn: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.prefix.lock_key())
            .execute(&mut *conn)
            .await
            .map_err(err("taking the migration lock"))?;
        let table = format!("{}schema_migrations", self.prefix.as_str());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
               version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
               applied_at BIGINT NOT NULL)"
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

    async fn insert_chunks(
        &self,
        conn: &mut PgConnection,
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

    async fn exists(&self, id: TokenId) -> Result<bool, StoreError> {
        Ok(sqlx::query(self.sql.exists.clone())
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(err("looking a token up"))?
            .is_some())
    }

    /// Runs `attempt` until it is done or runs out of retries.
    async fn with_retries<F, Fut>(&self, mut attempt: F) -> Result<Enrollment, RedeemError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt>,
    {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match attempt().await {
                Attempt::Done(result) => return result,
                Attempt::Retry(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => StoreError::backend(BACKEND, "redeeming (conflicts persisted)", e),
            None => StoreError::backend(BACKEND, "redeeming", NoAttempt),
        }
        .into())
    }

    /// [`RedeemStrategy::LockedTransaction`]: the rules in Rust under the row lock.
    async fn redeem_locked(&self, request: &RedeemRequest<'_>) -> Attempt {
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => return Attempt::Done(Err(err("starting a redemption")(e).into())),
        };
        let outcome = self.redeem_locked_in(&mut tx, request).await;
        let end = match &outcome {
            Ok((Some(_), _)) => tx.commit().await,
            _ => tx.rollback().await,
        };
        match (outcome, end) {
            (Ok((_, enrollment)), Ok(())) => Attempt::Done(Ok(enrollment)),
            (Ok(_), Err(e)) if is_retryable(&e) => Attempt::Retry(e),
            (Ok(_), Err(e)) => Attempt::Done(Err(err("committing a redemption")(e).into())),
            (Err(LockedError::Retry(e)), _) => Attempt::Retry(e),
            (Err(LockedError::Done(e)), _) => Attempt::Done(Err(e)),
        }
    }

    async fn redeem_locked_in(
        &self,
        conn: &mut PgConnection,
        request: &RedeemRequest<'_>,
    ) -> Result<(Option<Decision>, Enrollment), LockedError> {
        let id = request.token.token_id();
        let row = sqlx::query(self.sql.redeem_read.clone())
            .bind(id.as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
            .fetch_optional(&mut *conn)
            .await
            .map_err(LockedError::sql("reading the token to redeem"))?;
        let Some(row) = row else {
            return Err(LockedError::Done(Rejection::NotFound { id }.into()));
        };
        let (mut token, mut prior) = token_and_prior(&row)?;
        // The row is the newest version (the lock waited for any concurrent writer), but the
        // prior-redemption subquery saw the statement's snapshot, taken before the wait. A
        // redemption by this very device that committed during the wait is then missed: it
        // would show as `Exhausted` here (or, below the limit, as a unique violation on the
        // insert, which retries). Under the lock a new statement sees it: look again.
        if prior.is_none() && !token.usage_limit().allows_another(token.uses()) {
            prior = sqlx::query_scalar::<_, i64>(self.sql.prior_redemption.clone())
                .bind(id.as_bytes().to_vec())
                .bind(request.device.as_str().to_owned())
                .fetch_optional(&mut *conn)
                .await
                .map_err(LockedError::sql("reading the prior redemption"))?
                .map(|t| sql::time(t, DIALECT))
                .transpose()?;
        }
        let (decision, enrollment) = rules::redeem_in_place(&mut token, request, prior)
            .map_err(|r| LockedError::Done(r.into()))?;
        if let Decision::Consume { uses_after } = decision {
            let uses = i64::try_from(uses_after).map_err(|_| {
                LockedError::Done(
                    StoreError::backend(BACKEND, "recording the redemption", UsesOutOfRange).into(),
                )
            })?;
            sqlx::query(self.sql.consume.clone())
                .bind(id.as_bytes().to_vec())
                .bind(request.device.as_str().to_owned())
                .bind(uses)
                .bind(sql::micros(request.now))
                .execute(&mut *conn)
                .await
                .map_err(LockedError::sql("recording the redemption"))?;
            return Ok((Some(decision), enrollment));
        }
        Ok((None, enrollment))
    }

    /// [`RedeemStrategy::ConditionalUpdate`]: one statement when a use is consumed.
    async fn redeem_conditional(&self, request: &RedeemRequest<'_>) -> Attempt {
        let id = request.token.token_id();
        let (opens, closes) = sql::window_bounds(request.now, request.leeway);
        let result = sqlx::query(self.sql.redeem_conditional.clone())
            .bind(id.as_bytes().to_vec())
            .bind(request.token.key_id().as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
            .bind(opens)
            .bind(closes)
            .bind(sql::micros(request.now))
            .fetch_optional(&self.pool)
            .await;
        match result {
            Ok(Some(row)) => match sql::token_from_row(&row, DIALECT) {
                Ok(token) => {
                    let decision = Decision::Consume {
                        uses_after: token.uses(),
                    };
                    Attempt::Done(Ok(Enrollment::new(&token, &decision, request.now)))
                }
                Err(e) => Attempt::Done(Err(self.give_back(request, e).await.into())),
            },
            Ok(None) => self.explain(request).await,
            Err(e) if is_retryable(&e) => Attempt::Retry(e),
            Err(e) => Attempt::Done(Err(err("redeeming")(e).into())),
        }
    }

    /// The conditional update took a use from a record that does not decode (written by
    /// something other than this library): give the use back, so that a store error still
    /// means nothing was consumed, and report the decoding error.
    ///
    /// Every redemption of such a record fails the same way and gives its own use back, so
    /// concurrent ones cancel out too.
    async fn give_back(&self, request: &RedeemRequest<'_>, decode_error: StoreError) -> StoreError {
        let undone = sqlx::query(self.sql.give_back.clone())
            .bind(request.token.token_id().as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
            .execute(&self.pool)
            .await;
        match undone {
            Ok(_) => decode_error,
            Err(e) => StoreError::backend(
                BACKEND,
                "giving back a use taken from a record that does not decode",
                e,
            ),
        }
    }

    /// The conditional update changed nothing: read the record and let the rules say why.
    ///
    /// Everything that makes the update refuse (revocation, uses, an earlier redemption by
    /// the device, the fixed `now`) only ever stays or grows, so the answer read afterwards
    /// is one the record really had. Should the rules nevertheless allow a use, the locked
    /// transaction decides instead.
    async fn explain(&self, request: &RedeemRequest<'_>) -> Attempt {
        let id = request.token.token_id();
        let row = sqlx::query(self.sql.redeem_peek.clone())
            .bind(id.as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await;
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => return Attempt::Done(Err(Rejection::NotFound { id }.into())),
            Err(e) => return Attempt::Done(Err(err("reading the token to redeem")(e).into())),
        };
        let (token, prior) = match token_and_prior(&row) {
            Ok(v) => v,
            Err(LockedError::Done(e)) => return Attempt::Done(Err(e)),
            Err(LockedError::Retry(e)) => return Attempt::Retry(e),
        };
        match rules::decide(&token, request, prior) {
            Err(rejection) => Attempt::Done(Err(rejection.into())),
            Ok(decision @ Decision::Replay { .. }) => {
                Attempt::Done(Ok(Enrollment::new(&token, &decision, request.now)))
            }
            Ok(Decision::Consume { .. }) => self.redeem_locked(request).await,
        }
    }
}

/// A failure inside the locked transaction.
enum LockedError {
    Done(RedeemError),
    Retry(sqlx::Error),
}

impl LockedError {
    fn sql(what: &'static str) -> impl FnOnce(sqlx::Error) -> LockedError {
        move |e| {
            if is_retryable(&e) {
                LockedError::Retry(e)
            } else {
                LockedError::Done(err(what)(e).into())
            }
        }
    }
}

impl From<StoreError> for LockedError {
    fn from(e: StoreError) -> Self {
        LockedError::Done(e.into())
    }
}

/// The token and the device's earlier redemption time from a `redeem_read` row.
fn token_and_prior(
    row: &sqlx::postgres::PgRow,
) -> Result<(Token, Option<chrono::DateTime<chrono::Utc>>), LockedError> {
    let token = sql::token_from_row(row, DIALECT)?;
    let prior: Option<i64> = row
        .try_get(TOKEN_COLUMN_COUNT)
        .map_err(err("reading the prior redemption"))?;
    let prior = prior.map(|t| sql::time(t, DIALECT)).transpose()?;
    Ok((token, prior))
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

/// No attempt was made (only if the retry count were zero).
#[derive(Debug, thiserror::Error)]
#[error("no attempt was made")]
struct NoAttempt;

impl TokenStore for PgStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        let params = sql::token_params(&token, DIALECT)?;
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
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("starting a batch insert"))?;
        match self.insert_chunks(&mut tx, &tokens).await {
            Ok(()) => tx.commit().await.map_err(err("committing a batch insert")),
            Err(BatchError::Sql(e)) if sql::is_unique_violation(&e) => {
                tx.rollback()
                    .await
                    .map_err(err("rolling back a batch insert"))?;
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
        match self.strategy {
            RedeemStrategy::ConditionalUpdate => {
                self.with_retries(|| self.redeem_conditional(request)).await
            }
            RedeemStrategy::LockedTransaction => {
                self.with_retries(|| self.redeem_locked(request)).await
            }
        }
    }

    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        let (text, params) = self.sql.revoke(target, revocation);
        let done = sql::bind_params(sqlx::query(text), params)
            .execute(&self.pool)
            .await
            .map_err(err("revoking tokens"))?
            .rows_affected();
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
