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
//! instead of one, so it is the slower of the two (BENCHMARKS.md has the figures).
//!
//! # Durability and latency
//!
//! A redemption is answered only after its commit, and with PostgreSQL's default
//! `synchronous_commit = on` a commit waits until its WAL is on the server's disk. That
//! wait is a large part of a redemption's time (BENCHMARKS.md). It is also what makes a single-use token stay used after the database server crashes.
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

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres};

use super::common::{Read, ReadFailed, SqlStore, sql_token_store};
use super::dialect::Dialect;
use super::errors;
use super::prefix::DEFAULT_PREFIX;
use super::rows;
use crate::core::enrollment::Enrollment;
use crate::core::error::{RedeemError, StoreError};
use crate::core::rules::{self, Decision, RedeemRequest};

pub use super::prefix::InvalidTablePrefix;

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
///
/// [`TokenStore`]: crate::store::TokenStore
#[derive(Clone)]
pub struct PgStore {
    inner: SqlStore<Postgres>,
    strategy: RedeemStrategy,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("table_prefix", &self.inner.table_prefix())
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

const DIALECT: Dialect = Dialect::Postgres;

fn err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    errors::backend_error(DIALECT, what)
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
    pub const DEFAULT_TABLE_PREFIX: &'static str = DEFAULT_PREFIX;

    /// A store on the application's pool, with the default table prefix.
    ///
    /// Does no I/O; call [`migrate`](PgStore::migrate) before first use.
    pub fn new(pool: PgPool) -> Self {
        Self::on(SqlStore::new(pool))
    }

    /// Connects a pool of up to 10 connections to `url` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(10).connect(url);
        Ok(Self::on(
            SqlStore::connect_and_migrate(pool, "connecting").await?,
        ))
    }

    /// The store on `inner`, with the default strategy.
    fn on(inner: SqlStore<Postgres>) -> Self {
        Self {
            inner,
            strategy: RedeemStrategy::default(),
        }
    }

    /// Names the tables `<prefix>tokens`, `<prefix>redemptions` and
    /// `<prefix>schema_migrations`. The prefix is at most 32 characters of `a-z 0-9 _`
    /// (it may be empty).
    pub fn with_table_prefix(mut self, prefix: &str) -> Result<Self, InvalidTablePrefix> {
        self.inner = self.inner.with_table_prefix(prefix)?;
        Ok(self)
    }

    /// Chooses how redemptions run (default [`RedeemStrategy::ConditionalUpdate`]).
    pub fn with_redeem_strategy(mut self, strategy: RedeemStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        self.inner.pool()
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        self.inner.table_prefix()
    }

    /// Creates or upgrades the tables: applies, in order, each embedded migration not yet
    /// recorded in `<prefix>schema_migrations`, in one transaction.
    ///
    /// Idempotent, and safe to run from several replicas at once: the transaction first
    /// takes a transaction-scoped advisory lock derived from the prefix, so concurrent runs
    /// take turns and the later ones find nothing to do. Fails without changing anything if
    /// the database was migrated by a newer version of this library.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }

    /// The configured [`RedeemStrategy`], retried on conflicts a retry resolves.
    async fn redeem_atomically(
        &self,
        request: &RedeemRequest<'_>,
    ) -> Result<Enrollment, RedeemError> {
        match self.strategy {
            RedeemStrategy::ConditionalUpdate => {
                self.with_retries(|| self.redeem_conditional(request)).await
            }
            RedeemStrategy::LockedTransaction => {
                self.with_retries(|| self.redeem_locked(request)).await
            }
        }
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
            Some(e) => StoreError::backend(DIALECT.backend(), "redeeming (conflicts persisted)", e),
            None => StoreError::backend(DIALECT.backend(), "redeeming", NoAttempt),
        }
        .into())
    }

    /// [`RedeemStrategy::LockedTransaction`]: the rules in Rust under the row lock.
    async fn redeem_locked(&self, request: &RedeemRequest<'_>) -> Attempt {
        let mut tx = match self.inner.begin_write().await {
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
        let sql = self.inner.sql();
        let (mut token, mut prior) = self
            .inner
            .read_to_redeem(&mut *conn, Read::Locked, request)
            .await?;
        // The row is the newest version (the lock waited for any concurrent writer), but the
        // prior-redemption subquery saw the statement's snapshot, taken before the wait. A
        // redemption by this very device that committed during the wait is then missed: it
        // would show as `Exhausted` here (or, below the limit, as a unique violation on the
        // insert, which retries). Under the lock a new statement sees it: look again.
        if prior.is_none() && !token.usage_limit().allows_another(token.uses()) {
            prior = sqlx::query_scalar::<_, i64>(sql.prior_redemption.clone())
                .bind(request.token.token_id().as_bytes().to_vec())
                .bind(request.device.as_str().to_owned())
                .fetch_optional(&mut *conn)
                .await
                .map_err(LockedError::sql("reading the prior redemption"))?
                .map(|t| rows::time(t, DIALECT))
                .transpose()?;
        }
        let (decision, enrollment) = rules::redeem_in_place(&mut token, request, prior)
            .map_err(|r| LockedError::Done(r.into()))?;
        let Decision::Consume { uses_after } = decision else {
            return Ok((None, enrollment));
        };
        let uses = rows::uses_column(DIALECT, uses_after)?;
        SqlStore::recording(&sql.consume, request, uses)
            .execute(&mut *conn)
            .await
            .map_err(LockedError::sql("recording the redemption"))?;
        Ok((Some(decision), enrollment))
    }

    /// [`RedeemStrategy::ConditionalUpdate`]: one statement when a use is consumed.
    async fn redeem_conditional(&self, request: &RedeemRequest<'_>) -> Attempt {
        let id = request.token.token_id();
        let (opens, closes) = rows::window_bounds(request.now, request.leeway);
        let result = sqlx::query(self.inner.sql().redeem_conditional.clone())
            .bind(id.as_bytes().to_vec())
            .bind(request.token.key_id().as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
            .bind(opens)
            .bind(closes)
            .bind(rows::micros(request.now))
            .fetch_optional(self.inner.pool())
            .await;
        match result {
            Ok(Some(row)) => match rows::token_from_row(&row, DIALECT) {
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
        let undone = SqlStore::for_request(&self.inner.sql().give_back, request)
            .execute(self.inner.pool())
            .await;
        match undone {
            Ok(_) => decode_error,
            Err(e) => StoreError::backend(
                DIALECT.backend(),
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
        let read = self
            .inner
            .read_to_redeem(self.inner.pool(), Read::Peek, request);
        let (token, prior) = match read.await {
            Ok(read) => read,
            Err(e) => return Attempt::Done(Err(e.into_redeem(DIALECT))),
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

impl From<ReadFailed> for LockedError {
    fn from(e: ReadFailed) -> Self {
        match e {
            ReadFailed::Sql(e) => LockedError::sql(ReadFailed::WHAT)(e),
            ReadFailed::Redeem(e) => LockedError::Done(e),
        }
    }
}

impl From<StoreError> for LockedError {
    fn from(e: StoreError) -> Self {
        LockedError::Done(e.into())
    }
}

/// No attempt was made (only if the retry count were zero).
#[derive(Debug, thiserror::Error)]
#[error("no attempt was made")]
struct NoAttempt;

sql_token_store!(PgStore);
