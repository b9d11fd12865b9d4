//! [`PgStore`] against the pure model: random operation sequences must give exactly the
//! model's results, with both redemption strategies. This is what guards the rules the
//! default strategy expresses in SQL (its conditional `UPDATE`): any disagreement with
//! `rules::decide` fails here, shrunk to a minimal sequence.
//!
//! Needs a server: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test
//! --features postgres,testing --test model_postgres`. Set `PROPTEST_CASES` for a deeper run.

mod support;

use onboarding_token::testing;

#[test]
fn postgres_agrees_with_model() {
    testing::check_against_model(support::postgres::fresh_store, 64);
}

#[test]
fn postgres_locked_agrees_with_model() {
    testing::check_against_model(support::postgres::fresh_locked_store, 32);
}
