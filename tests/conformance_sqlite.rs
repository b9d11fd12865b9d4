//! The conformance suite against [`SqliteStore`]: one test per behaviour, named
//! `sqlite_file::<case>` (a new database file in a temporary directory, opened with
//! `SqliteStore::open`: WAL and a pool of 8 connections) and `sqlite_memory::<case>`
//! (`SqliteStore::in_memory`). Run with
//! `cargo test --features sqlite,testing --test conformance_sqlite`.

mod support;

onboarding_token::conformance_tests!(sqlite_file, support::sqlite::file_store());

onboarding_token::conformance_tests!(sqlite_memory, support::sqlite::memory_store());
