//! Races on `MemoryStore`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_memory_exact_counts() {
    all_exact_counts(&services(vec![MemoryStore::new()])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_memory_exact_counts_single_shard() {
    // Every token on one lock: the most contention.
    all_exact_counts(&services(vec![MemoryStore::with_shards(1)])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_memory_revocation_race() {
    revocation_race(&services(vec![MemoryStore::new()]), 16).await;
}
