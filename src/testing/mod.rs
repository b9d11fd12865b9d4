//! The conformance suite every [`TokenStore`] must pass, and a model-based property test
//! (feature `testing`).
//!
//! **The suite is destructive:** it inserts, redeems and revokes tokens in the store it is
//! given. Give it a fresh, empty store that nothing else uses: a new [`MemoryStore`], a new
//! SQLite file, a new PostgreSQL schema. Never point it at production data.
//!
//! # Running it: `conformance_tests!`
//!
//! ```text
//! onboarding_token::conformance_tests!(<backend name>, <store factory>);
//! ```
//!
//! - `<backend name>` is an identifier: the macro expands to `mod <backend name> { ... }`
//!   with one `#[test]` per behaviour, so failures read `memory::redeem_to_exhaustion`,
//!   `postgres::concurrent_redeem_exact`, ...
//! - `<store factory>` is an expression that evaluates to a future (an `async` block or a
//!   call to an `async fn`) producing a **fresh, empty, isolated** store, any type that
//!   implements [`TokenStore`] + `'static`. It is evaluated once per test, inside the test's
//!   runtime (a multi-threaded tokio runtime with 4 worker threads), so it may open pools,
//!   run migrations and create a schema. Panic in it (`expect`) if set-up fails. It sees
//!   the items in scope where the macro is invoked.
//!
//! Each generated test runs one suite function through [`run_case`]. The crate invoking the
//! macro needs nothing but `onboarding-token` with the `testing` feature (no direct tokio
//! dependency).
//!
//! ```
//! // tests/conformance_memory.rs
//! use onboarding_token::MemoryStore;
//!
//! onboarding_token::conformance_tests!(memory, async { MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! A factory that needs set-up (connect, create a schema, migrate) reads best as an
//! `async fn`:
//!
//! ```
//! use onboarding_token::MemoryStore;
//!
//! async fn fresh_store() -> MemoryStore {
//!     // For a SQL backend: connect a pool (to `DATABASE_URL`, failing with a message that
//!     // says how to set it), create a schema or file of its own, run the migrations.
//!     MemoryStore::new()
//! }
//!
//! onboarding_token::conformance_tests!(fresh, fresh_store());
//! # fn main() {}
//! ```
//!
//! If something must live exactly as long as the store (a temporary directory, a schema
//! to drop afterwards), return a struct holding both that implements [`TokenStore`] by
//! forwarding (like `MyStore` below) and cleans up in `Drop`.
//!
//! # Checking your own backend
//!
//! Add `onboarding-token` with the `testing` feature to your dev-dependencies, invoke the
//! macro for your store, and add the model-based test:
//!
//! ```
//! use onboarding_token::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};
//! use onboarding_token::rules::RedeemRequest;
//! use onboarding_token::*;
//!
//! /// A (trivial) custom backend: it forwards to a MemoryStore.
//! #[derive(Default)]
//! pub struct MyStore(MemoryStore);
//!
//! impl TokenStore for MyStore {
//!     async fn insert(&self, token: Token) -> Result<(), StoreError> {
//!         self.0.insert(token).await
//!     }
//!     async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
//!         self.0.insert_batch(tokens).await
//!     }
//!     async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
//!         self.0.get(id).await
//!     }
//!     async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
//!         self.0.list(query).await
//!     }
//!     async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
//!         self.0.redeem(request).await
//!     }
//!     async fn revoke(&self, target: &RevokeTarget, revocation: &Revocation) -> Result<u64, StoreError> {
//!         self.0.revoke(target, revocation).await
//!     }
//!     async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
//!         self.0.redemptions(id).await
//!     }
//! }
//!
//! // One named test per behaviour: my_store::insert_and_get, my_store::batch_large, ...
//! onboarding_token::conformance_tests!(my_store, async { MyStore::default() });
//!
//! // Random operation sequences against the pure model.
//! #[test]
//! fn my_store_agrees_with_model() {
//!     onboarding_token::testing::check_against_model(|| async { MyStore::default() }, 64);
//! }
//! # fn main() {
//! #     onboarding_token::testing::run_case(async { MyStore::default() }, onboarding_token::testing::redeem_to_exhaustion);
//! #     onboarding_token::testing::check_against_model(|| async { MyStore::default() }, 4);
//! # }
//! ```
//!
//! You can also call a single behaviour directly, for example to skip one your backend
//! does not support yet: every case is a public `async fn(Arc<S>)` that panics with a
//! message naming the violated rule.
//!
//! ```
//! use onboarding_token::{MemoryStore, testing};
//! testing::run_case(async { MemoryStore::new() }, testing::replay_same_device_consumes_nothing);
//! ```
//!
//! # What is checked
//!
//! The [contract](crate::store#contract) on [`TokenStore`], made precise:
//!
//! | case | behaviour |
//! |---|---|
//! | [`insert_and_get`] | a stored record comes back field for field; unknown ids give `None` |
//! | [`insert_duplicate_rejected`] | an existing id fails with `Duplicate(id)` and overwrites nothing |
//! | [`batch_is_all_or_nothing`] | a batch with an existing id, or an id twice, stores nothing |
//! | [`batch_large`] | 10,000 tokens in one batch, and a failing 10,001-token batch stores none |
//! | [`list_filters`] | organization, group (with subgroups, not prefixes, `_` is literal), policy, status at `now` with leeway, batch |
//! | [`list_paging`] | order by `created_at` then id; cursors; no gaps or duplicates; page sizes clamped to `1..=1000` |
//! | [`redeem_to_exhaustion`] | `K` devices succeed with uses `1..=K`, the next gets `Exhausted { limit: K }` |
//! | [`replay_same_device_consumes_nothing`] | the same device gets its original enrollment, `replay = true`, nothing consumed |
//! | [`replay_after_exhaustion`] | a device that redeemed still gets its replay once the token is exhausted |
//! | [`revoke_by_id`] | revoking one token returns 1, blocks it, and leaves the others alone |
//! | [`revoke_by_group`] | a group and its subgroups, in one organization only; no match is `Ok(0)` |
//! | [`revoke_by_batch`] | every token of the batch; the count excludes already revoked ones |
//! | [`revocation_reason_kept`] | re-revoking (by id, group or batch) keeps the first revocation |
//! | [`revocation_reason_bound`] | a reason at the bound is stored and read back; over it, no revocation can be made |
//! | [`revoke_unknown_id_not_found`] | `StoreError::NotFound(id)` |
//! | [`revoked_blocks_next_redeem`] | once revoke returns, new devices and replays get `Revoked`, whatever `revoked_at` says |
//! | [`expiry`] | redeemable until 1 µs before the expiry, `Expired` from it on |
//! | [`not_before`] | `NotYetValid` until 1 µs before `not_before`, redeemable from it on |
//! | [`leeway_boundaries`] | the same boundaries moved by the leeway, for redemption and listing |
//! | [`concurrent_redeem_exact`] | 64 concurrent devices, limits 1, 5, 100, unlimited: exactly `min(limit, 64)` succeed |
//! | [`concurrent_replays_idempotent`] | one device 64 times at once consumes one use |
//! | [`revoke_races_redeem`] | no redemption that starts after revoke returned succeeds |
//! | [`redemption_records`] | device and time, oldest first (ties in redemption order), none for replays or rejections |
//! | [`metadata_round_trip`] | 4 KiB of awkward Unicode metadata, descriptions and reasons round-trip |
//! | [`nul_characters_round_trip`] | NUL and other control characters in text fields round-trip |
//! | [`unknown_id_not_found`] | get `None`; redeem `NotFound`; revoke and redemptions `StoreError::NotFound` |
//! | [`key_mismatch_not_found`] | a record issued under another key is `NotFound` and untouched |
//! | [`timestamps_round_trip`] | microsecond instants (2030 to 2999) come back exactly |
//! | [`get_and_list_do_not_consume`] | reads never take a use |
//! | [`never_expiring_and_unlimited`] | `Expiry::Never` and `UsageLimit::Unlimited` hold up to the year 9999 |
//!
//! Every case uses fixed instants (from 2030-01-01) and passes `now` explicitly; none sleeps.
//!
//! # The model-based test
//!
//! [`check_against_model`] generates random operation sequences (issue tokens and batches
//! with random limits and windows, redeem from several devices including retries, revoke by
//! id, group and batch, move the clock forward and sometimes back, get, list with filters
//! and paging, read redemptions, insert duplicates) and applies each sequence to a fresh
//! store and to a pure model: a `HashMap` of records redeemed through
//! [`rules::redeem_in_place`]. Every result must be equal:
//! enrollments, rejections (with their timestamps), store errors by variant and id, records
//! and listings. A failing sequence is shrunk to a minimal one and saved next to the calling
//! test file (`tests/<file>.proptest-regressions`) so it is replayed first next time.

// The module docs show a user's test file, `#[test]` included; its hidden `main` runs it.
#![allow(clippy::test_attr_in_doctest)]

use std::future::{Future, IntoFuture};
use std::sync::Arc;

#[cfg(doc)]
use crate::core::rules;
use crate::store::TokenStore;
#[cfg(doc)]
use crate::store::memory::MemoryStore;

mod cases;
mod fixtures;
mod model;

pub use cases::concurrency::{
    concurrent_redeem_exact, concurrent_replays_idempotent, revoke_races_redeem,
};
pub use cases::insert::{
    batch_is_all_or_nothing, batch_large, insert_and_get, insert_duplicate_rejected,
};
pub use cases::list::{list_filters, list_paging};
pub use cases::not_found::{key_mismatch_not_found, unknown_id_not_found};
pub use cases::redeem::{
    get_and_list_do_not_consume, redeem_to_exhaustion, replay_after_exhaustion,
    replay_same_device_consumes_nothing,
};
pub use cases::redemptions::redemption_records;
pub use cases::revoke::{
    revocation_reason_bound, revocation_reason_kept, revoke_by_batch, revoke_by_group,
    revoke_by_id, revoke_unknown_id_not_found, revoked_blocks_next_redeem,
};
pub use cases::round_trip::{
    metadata_round_trip, nul_characters_round_trip, timestamps_round_trip,
};
pub use cases::window::{expiry, leeway_boundaries, never_expiring_and_unlimited, not_before};
pub use model::check_against_model;

/// Expands to a module named after a backend with one test per conformance case.
///
/// Syntax: `conformance_tests!(<backend name>, <store factory>);` where the factory is an
/// expression evaluating to a future that yields a fresh, empty store (see the
/// [module docs](crate::testing) for the details and a full example).
///
/// ```
/// use onboarding_token::MemoryStore;
/// onboarding_token::conformance_tests!(memory, async { MemoryStore::new() });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident, $factory:expr $(,)?) => {
        $crate::__conformance_tests_expand! {
            $backend, $factory,
            [
                insert_and_get,
                insert_duplicate_rejected,
                batch_is_all_or_nothing,
                batch_large,
                list_filters,
                list_paging,
                redeem_to_exhaustion,
                replay_same_device_consumes_nothing,
                replay_after_exhaustion,
                revoke_by_id,
                revoke_by_group,
                revoke_by_batch,
                revocation_reason_kept,
                revocation_reason_bound,
                revoke_unknown_id_not_found,
                revoked_blocks_next_redeem,
                expiry,
                not_before,
                leeway_boundaries,
                concurrent_redeem_exact,
                concurrent_replays_idempotent,
                revoke_races_redeem,
                redemption_records,
                metadata_round_trip,
                nul_characters_round_trip,
                unknown_id_not_found,
                key_mismatch_not_found,
                timestamps_round_trip,
                get_and_list_do_not_consume,
                never_expiring_and_unlimited,
            ]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests_expand {
    ($backend:ident, $factory:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::testing::run_case($factory, $crate::testing::$case);
                }
            )*
        }
    };
}

/// Runs one suite case on a fresh store, on a multi-threaded tokio runtime with 4 worker
/// threads (what each test generated by [`conformance_tests!`] does).
///
/// `factory` is awaited inside the runtime, so it may connect to a database. Call this from
/// a plain `#[test]`, not from inside another async runtime.
///
/// ```
/// use onboarding_token::{MemoryStore, testing};
/// testing::run_case(async { MemoryStore::new() }, testing::redeem_to_exhaustion);
/// ```
pub fn run_case<F, S, C, Fut>(factory: F, case: C)
where
    F: IntoFuture<Output = S>,
    S: TokenStore + 'static,
    C: FnOnce(Arc<S>) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("the conformance suite could not start a tokio runtime");
    runtime.block_on(async move {
        let store = factory.await;
        case(Arc::new(store)).await;
    });
}
