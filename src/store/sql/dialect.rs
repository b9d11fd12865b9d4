//! Where the SQL backends differ, all in one place: [`Dialect`] for SQL text, limits and
//! column encodings, [`Backend`] for how writers are ordered in the process.
//!
//! Everything else the stores do (statements, row mapping, the store operations but
//! redemption) is written once against these. Redemption itself differs in kind, not in
//! spelling, and lives in each backend's file.

use std::future::Future;

use sqlx::Database;
use sqlx::database::HasStatementCache;

use super::migrations::{self, Migration};

/// The SQL dialect differences between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

impl Dialect {
    /// The backend's name in [`StoreError::Backend`](crate::error::StoreError).
    pub(crate) fn backend(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// The schema migrations, oldest first.
    pub(crate) fn migrations(self) -> &'static [Migration] {
        match self {
            Dialect::Sqlite => migrations::SQLITE,
            Dialect::Postgres => migrations::POSTGRES,
        }
    }

    /// The column type of the integers in `<prefix>schema_migrations`.
    pub(crate) fn integer(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER",
            Dialect::Postgres => "BIGINT",
        }
    }

    /// Tokens per multi-row `INSERT` in a batch: 2000 rows of 15 values stay under SQLite's
    /// limit of 32766 bound parameters, 4000 under PostgreSQL's 65535.
    pub(crate) fn rows_per_insert(self) -> usize {
        match self {
            Dialect::Sqlite => 2000,
            Dialect::Postgres => 4000,
        }
    }

    /// The statement opening a writing transaction, `None` for the pool's plain `BEGIN`.
    ///
    /// SQLite's `BEGIN IMMEDIATE` takes the write lock up front, so two writers never
    /// deadlock upgrading a read lock.
    pub(crate) fn begin_write(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some("BEGIN IMMEDIATE"),
            Dialect::Postgres => None,
        }
    }

    /// The statement that serialises migrations, run first in the migration's transaction
    /// with the prefix's [`lock_key`](super::prefix::TablePrefix::lock_key) as `$1`; `None`
    /// where [`begin_write`](Self::begin_write) already does.
    pub(crate) fn migration_lock(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock($1)"),
        }
    }

    /// What the redemption read appends to lock the token row until the transaction ends.
    /// SQLite needs nothing: the transaction already holds the database's write lock.
    pub(crate) fn row_lock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE OF t",
        }
    }

    /// `1`-based position of `needle` in `haystack`, `0` when absent.
    pub(crate) fn position(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr({haystack}, {needle})"),
            Dialect::Postgres => format!("strpos({haystack}, {needle})"),
        }
    }

    /// Appends parameter `n` (1-based) of a statement whose parameters appear in order.
    /// SQLite gets anonymous `?`: it looks named ones (`$1`) up linearly while parsing,
    /// which makes a statement with thousands of them quadratic.
    pub(crate) fn ordered_placeholder(self, sql: &mut String, n: usize) {
        match self {
            Dialect::Sqlite => sql.push('?'),
            Dialect::Postgres => {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
        }
    }

    /// Whether free text that may contain NUL (description, revocation reason) is stored as
    /// UTF-8 `BYTEA` rather than `TEXT`: PostgreSQL's `TEXT` cannot hold NUL.
    pub(crate) fn free_text_as_bytes(self) -> bool {
        match self {
            Dialect::Sqlite => false,
            Dialect::Postgres => true,
        }
    }
}

/// A sqlx database the shared store code runs on: its [`Dialect`] and how the writers of
/// one store are ordered before they reach the database.
pub(crate) trait Backend: Database + HasStatementCache {
    /// The SQL text differences.
    const DIALECT: Dialect;

    /// What the writers of one store (and its clones) take turns on.
    type Writer: Default + Clone + Send + Sync + 'static;

    /// One writer's turn, held while it writes.
    type Turn<'w>: Send;

    /// Waits for a writer's turn.
    fn turn(writer: &Self::Writer) -> impl Future<Output = Self::Turn<'_>> + Send;

    /// How many rows a statement changed (sqlx has no trait for it).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// SQLite admits one writer at a time anyway, and its busy handler waits by sleeping, which
/// under contention costs far more than an async queue: writers queue on a mutex first.
#[cfg(feature = "sqlite")]
impl Backend for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Writer = std::sync::Arc<tokio::sync::Mutex<()>>;
    type Turn<'w> = tokio::sync::MutexGuard<'w, ()>;

    fn turn(writer: &Self::Writer) -> impl Future<Output = Self::Turn<'_>> + Send {
        writer.lock()
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

/// PostgreSQL orders writers by row locks and conditional updates: no queue in the process.
#[cfg(feature = "postgres")]
impl Backend for sqlx::Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    type Writer = ();
    type Turn<'w> = ();

    fn turn(_: &()) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}
