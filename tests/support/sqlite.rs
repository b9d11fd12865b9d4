//! Fresh SQLite stores: a migrated file in a temporary directory, a second pool on it, or a
//! migrated in-memory database.

use super::Guarded;
use onboarding_token::SqliteStore;
use onboarding_token::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use std::path::Path;
use std::time::Duration;

pub type FileStore = Guarded<SqliteStore, tempfile::TempDir>;

/// A migrated store in a new database file in a temporary directory (removed on drop),
/// through [`SqliteStore::open`] (WAL, busy timeout, 8 connections).
pub async fn file_store() -> FileStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("tokens.db"))
        .await
        .expect("open and migrate a SQLite file");
    Guarded { store, guard: dir }
}

/// A separate pool of `connections` on an existing database file, as another process
/// would open it.
pub async fn pool_on(path: &Path, connections: u32) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .expect("open a pool on the SQLite file")
}

/// A migrated in-memory store.
pub async fn memory_store() -> SqliteStore {
    SqliteStore::in_memory()
        .await
        .expect("open and migrate an in-memory SQLite database")
}
