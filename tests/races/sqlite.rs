//! Races on SQLite: a file shared by two pools.

use super::*;
use support::sqlite::pool_on;

/// Two stores on one file: `SqliteStore::open`'s pool of 8 connections, and a second
/// pool of 8 as another process would open it (they share no in-process lock).
async fn two_pools() -> (tempfile::TempDir, Vec<Arc<Service<SqliteStore>>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let second = SqliteStore::new(pool_on(&path, 8).await);
    (dir, services(vec![first, second]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_sqlite_file_exact_counts() {
    let (_dir, services) = two_pools().await;
    all_exact_counts(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_sqlite_file_one_pool_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db"))
        .await
        .unwrap();
    all_exact_counts(&services(vec![store])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_sqlite_file_revocation_race() {
    let (_dir, services) = two_pools().await;
    revocation_race(&services, 6).await;
}
