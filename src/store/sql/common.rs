//! [`SqlStore`]: the store operations both SQL backends run alike, written once over any
//! [`Backend`], and [`sql_token_store!`] wiring them into a backend's [`TokenStore`].
//!
//! Migrations, inserts, reads, listings, revocations and the redemption's reads and
//! writes are here; how a redemption is made atomic is each backend's own.
//!
//! [`TokenStore`]: crate::store::TokenStore

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, SqlStr, Transaction,
    Type,
};

use super::dialect::{Backend, Dialect};
use super::errors;
use super::migrations::pending_migrations;
use super::prefix::{InvalidTablePrefix, TablePrefix};
use super::rows::{self, Param, TOKEN_COLUMN_COUNT};
use super::statements::Statements;
use crate::core::enrollment::Redemption;
use crate::core::error::{RedeemError, Rejection, StoreError};
use crate::core::rules::RedeemRequest;
use crate::core::token::{Revocation, Token, TokenId};
use crate::store::{RevokeTarget, TokenPage, TokenQuery};

/// A token store in a SQL database: the pool, the table prefix, the statements built for
/// it, and what the store's writers take turns on. Clones share the pool, the statements
/// and the writers' turns.
pub(crate) struct SqlStore<B: Backend> {
    pool: Pool<B>,
    prefix: TablePrefix,
    sql: Arc<Statements>,
    writer: B::Writer,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            prefix: self.prefix.clone(),
            sql: Arc::clone(&self.sql),
            writer: self.writer.clone(),
        }
    }
}

/// Which read of the token to redeem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// `redeem_read`: locks the row until the transaction ends, where the dialect does.
    Locked,
    /// `redeem_peek`: no lock.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Peek,
}

/// Why the token to redeem could not be read.
pub(crate) enum ReadFailed {
    /// The driver failed; the backend decides whether a retry can help.
    Sql(sqlx::Error),
    /// No such token, or a row that does not decode.
    Redeem(RedeemError),
}

impl ReadFailed {
    /// What failed, in a driver error's [`StoreError::Backend`].
    pub(crate) const WHAT: &'static str = "reading the token to redeem";

    fn store(e: StoreError) -> Self {
        ReadFailed::Redeem(e.into())
    }

    /// As the redemption's error, without a retry.
    pub(crate) fn into_redeem(self, dialect: Dialect) -> RedeemError {
        match self {
            ReadFailed::Sql(e) => errors::backend_error(dialect, Self::WHAT)(e).into(),
            ReadFailed::Redeem(e) => e,
        }
    }
}

/// Why writing a batch failed.
enum BatchError {
    Encode(StoreError),
    Sql(sqlx::Error),
}

impl<B: Backend> SqlStore<B> {
    /// A store on `pool` with the default table prefix. Does no I/O.
    pub(crate) fn new(pool: Pool<B>) -> Self {
        let prefix = TablePrefix::default_prefix();
        let sql = Arc::new(Statements::new(B::DIALECT, &prefix));
        Self {
            pool,
            prefix,
            sql,
            writer: B::Writer::default(),
        }
    }

    /// The same store with its tables named `<prefix>…`.
    pub(crate) fn with_table_prefix(mut self, prefix: &str) -> Result<Self, InvalidTablePrefix> {
        self.prefix = TablePrefix::new(prefix)?;
        self.sql = Arc::new(Statements::new(B::DIALECT, &self.prefix));
        Ok(self)
    }

    pub(crate) fn pool(&self) -> &Pool<B> {
        &self.pool
    }

    pub(crate) fn table_prefix(&self) -> &str {
        self.prefix.as_str()
    }

    pub(crate) fn sql(&self) -> &Statements {
        &self.sql
    }

    /// Waits for this store's writer turn; see [`Backend::turn`].
    pub(crate) async fn write_turn(&self) -> B::Turn<'_> {
        B::turn(&self.writer).await
    }

    /// Wraps a driver error.
    pub(crate) fn err(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        errors::backend_error(B::DIALECT, what)
    }
}

impl<B> SqlStore<B>
where
    B: Backend,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    B::Arguments: IntoArguments<B>,
    usize: ColumnIndex<B::Row>,
    i64: for<'r> Decode<'r, B> + Encode<'static, B> + Type<B>,
    String: for<'r> Decode<'r, B> + Encode<'static, B> + Type<B>,
    Vec<u8>: for<'r> Decode<'r, B> + Encode<'static, B> + Type<B>,
    Option<i64>: Encode<'static, B>,
    Option<String>: Encode<'static, B>,
    Option<Vec<u8>>: Encode<'static, B>,
{
    /// A store on the pool `connect` opens, with the migrations applied; `what` names the
    /// connecting step in its error.
    pub(crate) async fn connect_and_migrate(
        connect: impl Future<Output = Result<Pool<B>, sqlx::Error>>,
        what: &'static str,
    ) -> Result<Self, StoreError> {
        let pool = connect
            .await
            .map_err(errors::backend_error(B::DIALECT, what))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Opens a writing transaction, as [`Dialect::begin_write`] says.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, B>, sqlx::Error> {
        match B::DIALECT.begin_write() {
            Some(begin) => self.pool.begin_with(begin).await,
            None => self.pool.begin().await,
        }
    }

    /// Applies, in order and in one writing transaction, each embedded migration not yet
    /// recorded in `<prefix>schema_migrations`. Fails without changing anything if the
    /// database was migrated by a newer version of this library.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let err = |what| self.err(what);
        let _turn = self.write_turn().await;
        let mut tx = self
            .begin_write()
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

    async fn migrate_in(&self, conn: &mut B::Connection) -> Result<(), StoreError> {
        let err = |what| self.err(what);
        if let Some(lock) = B::DIALECT.migration_lock() {
            sqlx::query(lock)
                .bind(self.prefix.lock_key())
                .execute(&mut *conn)
                .await
                .map_err(err("taking the migration lock"))?;
        }
        let table = format!("{}schema_migrations", self.prefix.as_str());
        let integer = B::DIALECT.integer();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
               version {integer} PRIMARY KEY, description TEXT NOT NULL, \
               applied_at {integer} NOT NULL)"
        )))
        .execute(&mut *conn)
        .await
        .map_err(err("creating the migrations table"))?;
        let applied: Vec<i64> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT version FROM {table}")))
                .fetch_all(&mut *conn)
                .await
                .map_err(err("reading the applied migrations"))?;
        let pending = pending_migrations(B::DIALECT.migrations(), &applied).map_err(|e| {
            StoreError::backend(B::DIALECT.backend(), "checking the schema version", e)
        })?;
        for migration in pending {
            sqlx::raw_sql(sqlx::AssertSqlSafe(self.prefix.apply(migration.sql)))
                .execute(&mut *conn)
                .await
                .map_err(err("applying a migration"))?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (version, description, applied_at) VALUES ($1, $2, $3)"
            )))
            .bind(migration.version)
            .bind(migration.description.to_owned())
            .bind(rows::micros(Utc::now()))
            .execute(&mut *conn)
            .await
            .map_err(err("recording a migration"))?;
        }
        Ok(())
    }

    /// Stores a new token; see [`TokenStore::insert`](crate::store::TokenStore::insert).
    pub(crate) async fn insert(&self, token: Token) -> Result<(), StoreError> {
        let params = rows::token_params(&token, B::DIALECT)?;
        let _turn = self.write_turn().await;
        let result = rows::bind_params(sqlx::query(self.sql.insert.clone()), params)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if errors::is_unique_violation(&e) => Err(StoreError::Duplicate(token.id())),
            Err(e) => Err(StoreError::backend(
                B::DIALECT.backend(),
                "inserting a token",
                e,
            )),
        }
    }

    /// Stores many tokens in one writing transaction, with as few statements as the
    /// dialect's parameter limit allows.
    pub(crate) async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let err = |what| self.err(what);
        if tokens.is_empty() {
            return Ok(());
        }
        let turn = self.write_turn().await;
        let mut tx = self
            .begin_write()
            .await
            .map_err(err("starting a batch insert"))?;
        let failed = |e| StoreError::backend(B::DIALECT.backend(), "inserting a batch", e);
        match self.insert_chunks(&mut tx, &tokens).await {
            Ok(()) => tx.commit().await.map_err(err("committing a batch insert")),
            Err(BatchError::Sql(e)) if errors::is_unique_violation(&e) => {
                tx.rollback()
                    .await
                    .map_err(err("rolling back a batch insert"))?;
                drop(turn);
                match self.find_duplicate(&tokens).await? {
                    Some(id) => Err(StoreError::Duplicate(id)),
                    None => Err(failed(e)),
                }
            }
            Err(e) => {
                tx.rollback()
                    .await
                    .map_err(err("rolling back a batch insert"))?;
                Err(match e {
                    BatchError::Encode(e) => e,
                    BatchError::Sql(e) => failed(e),
                })
            }
        }
    }

    async fn insert_chunks(
        &self,
        conn: &mut B::Connection,
        tokens: &[Token],
    ) -> Result<(), BatchError> {
        let rows_per_insert = B::DIALECT.rows_per_insert();
        let mut full: Option<String> = None;
        for chunk in tokens.chunks(rows_per_insert) {
            let mut params = Vec::with_capacity(chunk.len() * TOKEN_COLUMN_COUNT);
            for token in chunk {
                params.extend(rows::token_params(token, B::DIALECT).map_err(BatchError::Encode)?);
            }
            let query = if chunk.len() == rows_per_insert {
                let text = full.get_or_insert_with(|| self.sql.insert_many(rows_per_insert));
                sqlx::query(sqlx::AssertSqlSafe(text.as_str()))
            } else {
                sqlx::query(sqlx::AssertSqlSafe(self.sql.insert_many(chunk.len())))
                    .persistent(false)
            };
            rows::bind_params(query, params)
                .execute(&mut *conn)
                .await
                .map_err(BatchError::Sql)?;
        }
        Ok(())
    }

    /// After a failed batch: the first id of `tokens` already stored, or repeated in it.
    async fn find_duplicate(&self, tokens: &[Token]) -> Result<Option<TokenId>, StoreError> {
        let err = |what| self.err(what);
        let mut seen = HashSet::with_capacity(tokens.len());
        if let Some(dup) = tokens.iter().find(|t| !seen.insert(t.id())) {
            return Ok(Some(dup.id()));
        }
        for chunk in tokens.chunks(B::DIALECT.rows_per_insert()) {
            let query = sqlx::query(sqlx::AssertSqlSafe(self.sql.existing_ids(chunk.len())))
                .persistent(false);
            let params = chunk.iter().map(|t| Param::blob(t.id().as_bytes()));
            let row = rows::bind_params(query, params)
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

    /// The token with this id, if any.
    pub(crate) async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        let row = Self::for_token(&self.sql.get, id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("reading a token"))?;
        row.map(|row| rows::token_from_row(&row, B::DIALECT))
            .transpose()
    }

    /// One page of tokens matching `query`.
    pub(crate) async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        let (text, params) = self.sql.list(query);
        let rows = rows::bind_params(sqlx::query(sqlx::AssertSqlSafe(text)), params)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("listing tokens"))?;
        let tokens = rows
            .iter()
            .map(|row| rows::token_from_row(row, B::DIALECT))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenPage::from_sorted(tokens, query.limit()))
    }

    /// Revokes the matching tokens in one statement; a single token that does not exist
    /// is [`StoreError::NotFound`].
    pub(crate) async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        let (text, params) = self.sql.revoke(target, revocation);
        let turn = self.write_turn().await;
        let result = rows::bind_params(sqlx::query(text), params)
            .execute(&self.pool)
            .await
            .map_err(self.err("revoking tokens"))?;
        let done = B::rows_affected(&result);
        drop(turn);
        if let (RevokeTarget::Token(id), 0) = (target, done) {
            if !self.exists(*id).await? {
                return Err(StoreError::NotFound(*id));
            }
        }
        Ok(done)
    }

    /// The devices that redeemed this token, oldest first.
    pub(crate) async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        let rows = Self::for_token(&self.sql.redemptions_of, id)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("reading redemptions"))?;
        if rows.is_empty() && !self.exists(id).await? {
            return Err(StoreError::NotFound(id));
        }
        rows.iter()
            .map(|row| rows::redemption_from_row(row, B::DIALECT))
            .collect()
    }

    async fn exists(&self, id: TokenId) -> Result<bool, StoreError> {
        Ok(Self::for_token(&self.sql.exists, id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("looking a token up"))?
            .is_some())
    }

    /// `statement` with `$1` the token id `id`.
    fn for_token(statement: &SqlStr, id: TokenId) -> Query<'static, B, <B as Database>::Arguments> {
        sqlx::query(statement.clone()).bind(id.as_bytes().to_vec())
    }

    /// The token to redeem and the device's earlier redemption, read on `executor`.
    pub(crate) async fn read_to_redeem<'c, E>(
        &self,
        executor: E,
        read: Read,
        request: &RedeemRequest<'_>,
    ) -> Result<(Token, Option<DateTime<Utc>>), ReadFailed>
    where
        E: Executor<'c, Database = B>,
    {
        let statement = match read {
            Read::Locked => &self.sql.redeem_read,
            Read::Peek => &self.sql.redeem_peek,
        };
        let row = Self::for_request(statement, request)
            .fetch_optional(executor)
            .await
            .map_err(ReadFailed::Sql)?;
        let Some(row) = row else {
            let id = request.token.token_id();
            return Err(ReadFailed::Redeem(Rejection::NotFound { id }.into()));
        };
        let token = rows::token_from_row(&row, B::DIALECT).map_err(ReadFailed::store)?;
        let prior: Option<i64> = row
            .try_get(TOKEN_COLUMN_COUNT)
            .map_err(errors::backend_error(
                B::DIALECT,
                "reading the prior redemption",
            ))
            .map_err(ReadFailed::store)?;
        let prior = prior
            .map(|t| rows::time(t, B::DIALECT))
            .transpose()
            .map_err(ReadFailed::store)?;
        Ok((token, prior))
    }

    /// `statement` with `$1` the request's token id and `$2` its device: the parameters of
    /// `redeem_read`, `redeem_peek`, `prior_redemption` and `give_back`.
    pub(crate) fn for_request(
        statement: &SqlStr,
        request: &RedeemRequest<'_>,
    ) -> Query<'static, B, <B as Database>::Arguments> {
        sqlx::query(statement.clone())
            .bind(request.token.token_id().as_bytes().to_vec())
            .bind(request.device.as_str().to_owned())
    }

    /// `statement` with the parameters of `record_redemption` (and `consume`): the
    /// request's token id, its device, the use number `uses` and the request's time.
    pub(crate) fn recording(
        statement: &SqlStr,
        request: &RedeemRequest<'_>,
        uses: i64,
    ) -> Query<'static, B, <B as Database>::Arguments> {
        Self::for_request(statement, request)
            .bind(uses)
            .bind(rows::micros(request.now))
    }
}

/// Implements [`TokenStore`](crate::store::TokenStore) for `$store`, a struct with an
/// `inner: SqlStore<_>` field and an inherent
/// `async fn redeem_atomically(&self, &RedeemRequest<'_>) -> Result<Enrollment, RedeemError>`:
/// every operation but redemption is [`SqlStore`]'s.
macro_rules! sql_token_store {
    ($store:ty) => {
        const _: () = {
            use std::future::Future;

            use $crate::core::enrollment::{Enrollment, Redemption};
            use $crate::core::error::{RedeemError, StoreError};
            use $crate::core::rules::RedeemRequest;
            use $crate::core::token::{Revocation, Token, TokenId};
            use $crate::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};

            impl TokenStore for $store {
                fn insert(
                    &self,
                    token: Token,
                ) -> impl Future<Output = Result<(), StoreError>> + Send {
                    self.inner.insert(token)
                }

                fn insert_batch(
                    &self,
                    tokens: Vec<Token>,
                ) -> impl Future<Output = Result<(), StoreError>> + Send {
                    self.inner.insert_batch(tokens)
                }

                fn get(
                    &self,
                    id: TokenId,
                ) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send {
                    self.inner.get(id)
                }

                fn list(
                    &self,
                    query: &TokenQuery,
                ) -> impl Future<Output = Result<TokenPage, StoreError>> + Send {
                    self.inner.list(query)
                }

                fn redeem(
                    &self,
                    request: &RedeemRequest<'_>,
                ) -> impl Future<Output = Result<Enrollment, RedeemError>> + Send {
                    self.redeem_atomically(request)
                }

                fn revoke(
                    &self,
                    target: &RevokeTarget,
                    revocation: &Revocation,
                ) -> impl Future<Output = Result<u64, StoreError>> + Send {
                    self.inner.revoke(target, revocation)
                }

                fn redemptions(
                    &self,
                    id: TokenId,
                ) -> impl Future<Output = Result<Vec<Redemption>, StoreError>> + Send {
                    self.inner.redemptions(id)
                }
            }
        };
    };
}

pub(crate) use sql_token_store;
