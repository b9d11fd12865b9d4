//! The conformance suite against [`PgStore`]: one test per behaviour, named
//! `postgres::<case>` (the default redemption strategy, a conditional update) and
//! `postgres_locked::<case>` (a locked transaction). Each test works in a schema of its own,
//! dropped afterwards.
//!
//! Needs a server: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test
//! --features postgres,testing --test conformance_postgres`. Without `DATABASE_URL` every
//! test fails, saying so.

mod support;

onboarding_token::conformance_tests!(postgres, support::postgres::fresh_store());

onboarding_token::conformance_tests!(postgres_locked, support::postgres::fresh_locked_store());
