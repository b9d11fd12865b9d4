//! [`MemoryStore`] against the pure model: random operation sequences must give exactly the
//! model's results. Run with `cargo test --features testing --test model_memory`; set
//! `PROPTEST_CASES` for a deeper run.

use onboarding_token::{MemoryStore, testing};

#[test]
fn memory_agrees_with_model() {
    testing::check_against_model(|| async { MemoryStore::new() }, 512);
}

#[test]
fn memory_one_shard_agrees_with_model() {
    testing::check_against_model(|| async { MemoryStore::with_shards(1) }, 128);
}
