//! [`SqliteStore`] against the pure model: random operation sequences (issue, redeem by
//! several devices, retries, revocations, clock moves, listings) must give exactly the
//! model's results, on a database file and in memory. Run with
//! `cargo test --features sqlite,testing --test model_sqlite`; set `PROPTEST_CASES` for a
//! deeper run.

mod support;

use onboarding_token::testing;

#[test]
fn sqlite_memory_agrees_with_model() {
    testing::check_against_model(support::sqlite::memory_store, 128);
}

#[test]
fn sqlite_file_agrees_with_model() {
    testing::check_against_model(support::sqlite::file_store, 32);
}
