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

use std::collections::{BTreeSet, HashMap};
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use crate::codec::VerifiedToken;
use crate::enrollment::{Enrollment, Redemption};
use crate::error::{RedeemError, Rejection, StoreError};
use crate::keys::{KeyId, Keyring, SigningKey};
use crate::name::{DeviceId, OrgId};
use crate::policy::{GroupId, PolicyId};
use crate::rules::{self, Decision, Leeway, RedeemRequest};
#[cfg(doc)]
use crate::store::memory::MemoryStore;
use crate::store::{PageCursor, RevokeTarget, TokenQuery, TokenStore};
use crate::token::{
    BatchId, Expiry, ExpirySpec, Metadata, Revocation, Status, Token, TokenId, TokenSpec,
    UsageLimit,
};

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

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// The suite's keyring (fixed keys: an active one and a verify-only one) and helpers to
/// build records and verified requests the way the service does.
struct Fixture {
    keyring: Keyring,
    active: KeyId,
    other: KeyId,
}

impl Fixture {
    fn new() -> Self {
        let active = SigningKey::from_bytes(KeyId::from_bytes(*b"sui1"), &[0x11; 32]);
        let other = SigningKey::from_bytes(KeyId::from_bytes(*b"sui2"), &[0x22; 32]);
        let (active_id, other_id) = (active.id(), other.id());
        let keyring = Keyring::new(active)
            .with_verify_only(other)
            .expect("the suite's two keys have distinct ids");
        Self {
            keyring,
            active: active_id,
            other: other_id,
        }
    }

    /// A record with a random id, issued under the active key.
    fn issue(&self, spec: TokenSpec, now: DateTime<Utc>, batch: Option<BatchId>) -> Token {
        self.issue_with(random_id(), self.active, spec, now, batch)
    }

    fn issue_with(
        &self,
        id: TokenId,
        key: KeyId,
        spec: TokenSpec,
        now: DateTime<Utc>,
        batch: Option<BatchId>,
    ) -> Token {
        spec.into_token(id, key, now, batch)
            .unwrap_or_else(|e| panic!("conformance suite bug: invalid token spec: {e}"))
    }

    /// The token as a device presents it: signed with `key`, verified by the keyring.
    fn verified_with(&self, key: KeyId, id: TokenId) -> VerifiedToken {
        let text = self
            .keyring
            .sign_with(key, &id)
            .expect("the suite signs only with its own keys");
        self.keyring
            .verify_str(text.expose_secret())
            .expect("a fresh signature verifies")
    }

    fn verified(&self, token: &Token) -> VerifiedToken {
        self.verified_with(token.key_id(), token.id())
    }
}

fn random_id() -> TokenId {
    TokenId::generate(&mut rand_core::UnwrapErr(getrandom::SysRng))
}

fn random_batch() -> BatchId {
    BatchId::generate(&mut rand_core::UnwrapErr(getrandom::SysRng))
}

/// 2030-01-01T00:00:00Z, the suite's epoch.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("2030-01-01 is a valid instant")
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

const MICRO: TimeDelta = TimeDelta::microseconds(1);

fn org(s: &str) -> OrgId {
    OrgId::new(s).expect("suite organization ids are valid")
}

fn group(s: &str) -> GroupId {
    GroupId::new(s).expect("suite group ids are valid")
}

fn policy(s: &str) -> PolicyId {
    PolicyId::new(s).expect("suite policy ids are valid")
}

fn device(name: impl std::fmt::Display) -> DeviceId {
    DeviceId::new(format!("device-{name}")).expect("suite device ids are valid")
}

fn limited(n: u32) -> UsageLimit {
    UsageLimit::limited(n).expect("suite limits are positive")
}

fn leeway(seconds: i64) -> Leeway {
    Leeway::new(secs(seconds)).expect("suite leeways are in range")
}

fn revocation(at: DateTime<Utc>, reason: &str) -> Revocation {
    Revocation::new(at, reason).expect("suite reasons are short")
}

/// A spec for `organization`/`group_id`, single use, expiring a day after issue.
fn spec(organization: &str, group_id: &str) -> TokenSpec {
    TokenSpec::new(org(organization), group(group_id)).with_expiry(ExpirySpec::After(secs(86_400)))
}

fn ids(tokens: &[Token]) -> Vec<TokenId> {
    tokens.iter().map(Token::id).collect()
}

/// The ids in listing order (created_at, then id).
fn ordered(tokens: &[&Token]) -> Vec<TokenId> {
    let mut sorted: Vec<&Token> = tokens.to_vec();
    sorted.sort_by_key(|t| PageCursor::after(t));
    sorted.iter().map(|t| t.id()).collect()
}

async fn must_insert<S: TokenStore + ?Sized>(store: &S, token: &Token) {
    if let Err(e) = store.insert(token.clone()).await {
        panic!("inserting token {} failed: {e}", token.id());
    }
}

async fn must_insert_batch<S: TokenStore + ?Sized>(store: &S, tokens: &[Token]) {
    if let Err(e) = store.insert_batch(tokens.to_vec()).await {
        panic!("inserting a batch of {} tokens failed: {e}", tokens.len());
    }
}

async fn must_get<S: TokenStore + ?Sized>(store: &S, id: TokenId) -> Token {
    match store.get(id).await {
        Ok(Some(token)) => token,
        Ok(None) => panic!("token {id} should be stored, but get returned None"),
        Err(e) => panic!("get({id}) failed: {e}"),
    }
}

async fn must_be_absent<S: TokenStore + ?Sized>(store: &S, id: TokenId, why: &str) {
    match store.get(id).await {
        Ok(None) => {}
        Ok(Some(_)) => panic!("token {id} must not be stored: {why}"),
        Err(e) => panic!("get({id}) failed: {e}"),
    }
}

async fn must_redemptions<S: TokenStore + ?Sized>(store: &S, id: TokenId) -> Vec<Redemption> {
    store
        .redemptions(id)
        .await
        .unwrap_or_else(|e| panic!("redemptions({id}) failed: {e}"))
}

async fn must_revoke<S: TokenStore + ?Sized>(
    store: &S,
    target: &RevokeTarget,
    revocation: &Revocation,
) -> u64 {
    store
        .revoke(target, revocation)
        .await
        .unwrap_or_else(|e| panic!("revoke({target:?}) failed: {e}"))
}

/// Every token matching `query`, following the cursors page by page.
async fn must_list<S: TokenStore + ?Sized>(store: &S, query: &TokenQuery) -> Vec<Token> {
    let mut query = query.clone();
    let mut all = Vec::new();
    loop {
        let page = store
            .list(&query)
            .await
            .unwrap_or_else(|e| panic!("list({query:?}) failed: {e}"));
        assert!(
            page.tokens.len() <= query.page_size(),
            "list returned {} tokens for a page size of {}",
            page.tokens.len(),
            query.page_size()
        );
        let empty = page.tokens.is_empty();
        all.extend(page.tokens);
        match page.next {
            Some(next) => {
                assert!(
                    !empty && query.after != Some(next),
                    "list returned an empty page or the same cursor again ({next}): paging would never end"
                );
                query.after = Some(next);
            }
            None => return all,
        }
    }
}

async fn list_ids<S: TokenStore + ?Sized>(store: &S, query: &TokenQuery) -> Vec<TokenId> {
    ids(&must_list(store, query).await)
}

async fn redeem<S: TokenStore + ?Sized>(
    store: &S,
    fx: &Fixture,
    token: &Token,
    device: &DeviceId,
    now: DateTime<Utc>,
    leeway: Leeway,
) -> Result<Enrollment, RedeemError> {
    let request = RedeemRequest {
        token: fx.verified(token),
        device,
        now,
        leeway,
    };
    store.redeem(&request).await
}

#[track_caller]
fn enrolled(result: Result<Enrollment, RedeemError>, what: &str) -> Enrollment {
    match result {
        Ok(enrollment) => enrollment,
        Err(e) => panic!("{what}: expected an enrollment, got error: {e}"),
    }
}

#[track_caller]
fn rejected(result: Result<Enrollment, RedeemError>, what: &str) -> Rejection {
    match result {
        Err(RedeemError::Rejected(rejection)) => rejection,
        Err(e) => panic!("{what}: expected a rejection, but the store failed: {e}"),
        Ok(e) => panic!("{what}: expected a rejection, got an enrollment: {e:?}"),
    }
}

#[track_caller]
fn assert_enrollment_matches(e: &Enrollment, token: &Token, what: &str) {
    assert_eq!(e.token_id, token.id(), "{what}: enrollment token id");
    assert_eq!(
        e.organization(),
        token.organization(),
        "{what}: organization"
    );
    assert_eq!(e.group(), token.group(), "{what}: group");
    assert_eq!(e.policies(), token.policies(), "{what}: policies");
    assert_eq!(&e.metadata, token.metadata(), "{what}: metadata");
    assert_eq!(e.limit, token.usage_limit(), "{what}: usage limit");
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/// A stored record comes back field for field; an unknown id gives `None`.
pub async fn insert_and_get<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        TokenSpec::new(org("acme"), group("emea/berlin"))
            .with_policies([policy("wifi-corp"), policy("vpn")])
            .with_usage_limit(limited(25))
            .with_not_before(now + secs(3600))
            .with_expiry(ExpirySpec::At(now + secs(30 * 86_400)))
            .with_description("Berlin laptops, Q3 refresh")
            .with_metadata(
                Metadata::from_pairs([("site", "berlin"), ("cost_centre", "4711")])
                    .expect("small metadata"),
            ),
        now,
        Some(random_batch()),
    );
    must_insert(&*store, &token).await;
    assert_eq!(
        must_get(&*store, token.id()).await,
        token,
        "get must return exactly the inserted record"
    );

    let other = fx.issue(
        spec("globex", "sales")
            .with_usage_limit(UsageLimit::Unlimited)
            .with_expiry(ExpirySpec::Never),
        now + secs(1),
        None,
    );
    must_insert(&*store, &other).await;
    assert_eq!(must_get(&*store, other.id()).await, other, "second record");
    assert_eq!(
        must_get(&*store, token.id()).await,
        token,
        "inserting another token must not change the first"
    );
    must_be_absent(&*store, random_id(), "it was never inserted").await;
}

/// Inserting an existing id fails with `Duplicate(id)` and leaves the stored record as it was.
pub async fn insert_duplicate_rejected<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let original = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(3)),
        now,
        None,
    );
    must_insert(&*store, &original).await;

    let imposter = fx.issue_with(
        original.id(),
        fx.active,
        spec("globex", "other").with_usage_limit(UsageLimit::Unlimited),
        now + secs(60),
        None,
    );
    match store.insert(imposter.clone()).await {
        Err(StoreError::Duplicate(id)) => {
            assert_eq!(id, original.id(), "duplicate error names the id")
        }
        other => panic!("inserting an existing id must fail with Duplicate, got {other:?}"),
    }
    assert_eq!(
        must_get(&*store, original.id()).await,
        original,
        "a rejected duplicate must not overwrite the stored record"
    );

    // A duplicate insert after a redemption does not reset the use count or the records.
    enrolled(
        redeem(&*store, &fx, &original, &device(1), now, Leeway::ZERO).await,
        "first redemption",
    );
    match store.insert(original.clone()).await {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, original.id()),
        other => panic!("re-inserting a redeemed token must fail with Duplicate, got {other:?}"),
    }
    assert_eq!(
        must_get(&*store, original.id()).await.uses(),
        1,
        "a rejected duplicate must not reset the use count"
    );
    assert_eq!(
        must_redemptions(&*store, original.id()).await.len(),
        1,
        "a rejected duplicate must not clear the redemption records"
    );
}

/// A batch containing an existing id, or the same id twice, stores nothing; a valid batch
/// stores every token.
pub async fn batch_is_all_or_nothing<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let existing = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &existing).await;

    // An id that already exists, at the end of the batch.
    let batch = random_batch();
    let b = fx.issue(spec("acme", "sales"), now, Some(batch));
    let c = fx.issue(spec("acme", "sales"), now, Some(batch));
    let clash = fx.issue_with(
        existing.id(),
        fx.active,
        spec("acme", "x"),
        now,
        Some(batch),
    );
    match store.insert_batch(vec![b.clone(), c.clone(), clash]).await {
        Err(StoreError::Duplicate(id)) => {
            assert_eq!(id, existing.id(), "duplicate error names the clashing id")
        }
        other => panic!("a batch with an existing id must fail with Duplicate, got {other:?}"),
    }
    must_be_absent(&*store, b.id(), "its batch failed").await;
    must_be_absent(&*store, c.id(), "its batch failed").await;
    assert_eq!(
        must_get(&*store, existing.id()).await,
        existing,
        "a failed batch must not overwrite the existing record"
    );

    // The same id twice inside the batch.
    let d = fx.issue(spec("acme", "sales"), now, Some(batch));
    let e = fx.issue(spec("acme", "sales"), now, Some(batch));
    let d_again = fx.issue_with(d.id(), fx.active, spec("acme", "y"), now, Some(batch));
    match store
        .insert_batch(vec![d.clone(), e.clone(), d_again])
        .await
    {
        Err(StoreError::Duplicate(id)) => {
            assert_eq!(id, d.id(), "duplicate error names the repeated id")
        }
        other => panic!("a batch repeating an id must fail with Duplicate, got {other:?}"),
    }
    must_be_absent(&*store, d.id(), "its batch failed").await;
    must_be_absent(&*store, e.id(), "its batch failed").await;
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now)).await,
        vec![existing.id()],
        "after two failed batches only the first token is stored"
    );
    assert!(
        list_ids(&*store, &TokenQuery::new(now).batch(batch))
            .await
            .is_empty(),
        "no token of the failed batches is listed"
    );

    // A valid batch stores everything.
    let good_batch = random_batch();
    let good: Vec<Token> = (0..3)
        .map(|i| fx.issue(spec("acme", "sales"), now + secs(i), Some(good_batch)))
        .collect();
    must_insert_batch(&*store, &good).await;
    for token in &good {
        assert_eq!(&must_get(&*store, token.id()).await, token, "batch member");
    }
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).batch(good_batch)).await,
        ids(&good),
        "the valid batch is listed in order"
    );
}

/// 10,000 tokens in one batch are stored and listed; a 10,001-token batch whose last token
/// clashes stores none.
pub async fn batch_large<S: TokenStore + 'static>(store: Arc<S>) {
    const N: usize = 10_000;
    let fx = Fixture::new();
    let now = t0();
    let batch = random_batch();
    let tokens: Vec<Token> = (0..N)
        .map(|i| {
            let created = now + TimeDelta::milliseconds((i % 50) as i64);
            fx.issue(
                spec("acme", "fleet").with_usage_limit(limited(2)),
                created,
                Some(batch),
            )
        })
        .collect();
    must_insert_batch(&*store, &tokens).await;

    let listed = must_list(
        &*store,
        &TokenQuery::new(now)
            .batch(batch)
            .limit(TokenQuery::MAX_LIMIT),
    )
    .await;
    assert_eq!(listed.len(), N, "every token of the batch is listed");
    let listed_ids: BTreeSet<TokenId> = listed.iter().map(Token::id).collect();
    assert_eq!(listed_ids.len(), N, "no token is listed twice");
    assert_eq!(
        listed_ids,
        tokens.iter().map(Token::id).collect::<BTreeSet<_>>(),
        "the listed ids are the inserted ids"
    );
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(
            must_get(&*store, tokens[i].id()).await,
            tokens[i],
            "token {i} of the batch"
        );
    }

    // A second large batch whose last token clashes with the first batch: nothing stored.
    let second = random_batch();
    let mut failing: Vec<Token> = (0..N)
        .map(|_| fx.issue(spec("acme", "fleet"), now, Some(second)))
        .collect();
    failing.push(fx.issue_with(
        tokens[N - 1].id(),
        fx.active,
        spec("acme", "fleet"),
        now,
        Some(second),
    ));
    match store.insert_batch(failing.clone()).await {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, tokens[N - 1].id(), "the clashing id"),
        other => panic!(
            "a large batch ending with an existing id must fail with Duplicate, got {other:?}"
        ),
    }
    assert!(
        list_ids(&*store, &TokenQuery::new(now).batch(second))
            .await
            .is_empty(),
        "no token of the failed large batch may be stored"
    );
    must_be_absent(&*store, failing[0].id(), "its batch failed").await;
    assert_eq!(
        must_get(&*store, tokens[N - 1].id()).await,
        tokens[N - 1],
        "the clashing record is unchanged"
    );
}

/// Listing filters: organization, group (with subgroups; not string prefixes; `_` is not a
/// wildcard), policy, status at the query's `now` and leeway, batch, and combinations.
pub async fn list_filters<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let b1 = random_batch();
    let b2 = random_batch();
    let wifi = policy("wifi");
    let vpn = policy("vpn");

    let emea = fx.issue(
        spec("acme", "emea").with_policies([wifi.clone()]),
        now,
        Some(b1),
    );
    let berlin = fx.issue(
        spec("acme", "emea/berlin").with_policies([wifi.clone(), vpn.clone()]),
        now + secs(1),
        Some(b1),
    );
    let emeax = fx.issue(
        spec("acme", "emeax").with_policies([vpn.clone()]),
        now + secs(2),
        None,
    );
    let lab = fx.issue(spec("acme", "lab_1/room"), now + secs(3), None);
    let lab_lookalike = fx.issue(spec("acme", "labX1/room"), now + secs(4), None);
    let pending = fx.issue(
        spec("acme", "apac").with_not_before(now + secs(3600)),
        now + secs(5),
        None,
    );
    let expired = fx.issue(
        spec("acme", "apac").with_expiry(ExpirySpec::At(now - secs(86_400))),
        now - secs(2 * 86_400),
        None,
    );
    let exhausted = fx.issue(spec("acme", "apac"), now + secs(6), None);
    let revoked = fx.issue(spec("acme", "apac"), now + secs(7), None);
    let globex = fx.issue(
        spec("globex", "emea").with_policies([wifi.clone()]),
        now + secs(8),
        Some(b2),
    );
    let all = [
        &emea,
        &berlin,
        &emeax,
        &lab,
        &lab_lookalike,
        &pending,
        &expired,
        &exhausted,
        &revoked,
        &globex,
    ];
    for token in all {
        must_insert(&*store, token).await;
    }
    enrolled(
        redeem(
            &*store,
            &fx,
            &exhausted,
            &device(1),
            now + secs(10),
            Leeway::ZERO,
        )
        .await,
        "using up the single-use token",
    );
    assert_eq!(
        must_revoke(
            &*store,
            &RevokeTarget::Token(revoked.id()),
            &revocation(now + secs(10), "test")
        )
        .await,
        1
    );

    let q = || TokenQuery::new(now + secs(20));
    let cases: Vec<(&str, TokenQuery, Vec<&Token>)> = vec![
        ("no filter", q(), all.to_vec()),
        (
            "organization acme",
            q().organization(org("acme")),
            all.iter()
                .copied()
                .filter(|t| t.organization().as_str() == "acme")
                .collect(),
        ),
        (
            "organization globex",
            q().organization(org("globex")),
            vec![&globex],
        ),
        (
            "unknown organization",
            q().organization(org("initech")),
            vec![],
        ),
        (
            "group emea with subgroups, not emeax",
            q().group(group("emea")),
            vec![&emea, &berlin, &globex],
        ),
        (
            "organization and group",
            q().organization(org("acme")).group(group("emea")),
            vec![&emea, &berlin],
        ),
        ("leaf group", q().group(group("emea/berlin")), vec![&berlin]),
        (
            "group with an underscore is literal",
            q().group(group("lab_1")),
            vec![&lab],
        ),
        (
            "group that only a prefix of names matches",
            q().group(group("eme")),
            vec![],
        ),
        (
            "policy wifi",
            q().policy(wifi.clone()),
            vec![&emea, &berlin, &globex],
        ),
        ("policy vpn", q().policy(vpn.clone()), vec![&berlin, &emeax]),
        ("unknown policy", q().policy(policy("none")), vec![]),
        (
            "status pending",
            q().status(Status::Pending),
            vec![&pending],
        ),
        (
            "status expired",
            q().status(Status::Expired),
            vec![&expired],
        ),
        (
            "status exhausted",
            q().status(Status::Exhausted),
            vec![&exhausted],
        ),
        (
            "status revoked",
            q().status(Status::Revoked),
            vec![&revoked],
        ),
        (
            "status active",
            q().status(Status::Active),
            vec![&emea, &berlin, &emeax, &lab, &lab_lookalike, &globex],
        ),
        ("batch 1", q().batch(b1), vec![&emea, &berlin]),
        ("batch 2", q().batch(b2), vec![&globex]),
        ("unknown batch", q().batch(random_batch()), vec![]),
        (
            "organization, policy, status and batch",
            q().organization(org("acme"))
                .policy(wifi.clone())
                .status(Status::Active)
                .batch(b1),
            vec![&emea, &berlin],
        ),
        (
            "status at a later now: the pending token is active",
            TokenQuery::new(now + secs(3600)).status(Status::Pending),
            vec![],
        ),
        (
            "status with leeway: 30 s before not-before counts as active",
            TokenQuery::new(now + secs(3600 - 30))
                .leeway(leeway(30))
                .group(group("apac"))
                .status(Status::Active),
            vec![&pending],
        ),
        (
            "status without leeway: 30 s before not-before is pending",
            TokenQuery::new(now + secs(3600 - 30))
                .group(group("apac"))
                .status(Status::Pending),
            vec![&pending],
        ),
    ];
    for (what, query, expected) in cases {
        assert_eq!(
            list_ids(&*store, &query).await,
            ordered(&expected),
            "list filter `{what}` returned the wrong tokens (or order)"
        );
    }

    // Listed records are the current records.
    let listed = must_list(&*store, &q().organization(org("globex"))).await;
    assert_eq!(
        listed,
        vec![globex.clone()],
        "listed records equal the stored records"
    );
    let listed = must_list(&*store, &q().status(Status::Exhausted)).await;
    assert_eq!(
        listed[0].uses(),
        1,
        "a listed record shows its current use count"
    );
}

/// Paging: order by `created_at` then id, cursors from `next`, no gaps or duplicates at any
/// page size, cursors that match no token, and page sizes clamped to `1..=1000`.
pub async fn list_paging<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    // 30 tokens over 10 instants (3 per instant, ties broken by id), inserted out of order.
    let mut tokens: Vec<Token> = (0..30)
        .map(|i| {
            let g = if i % 2 == 0 { "even" } else { "odd" };
            fx.issue(spec("acme", g), now + secs((i * 7) % 10), None)
        })
        .collect();
    tokens.reverse();
    for token in &tokens {
        must_insert(&*store, token).await;
    }
    let refs: Vec<&Token> = tokens.iter().collect();
    let expected = ordered(&refs);

    for limit in [1, 2, 7, 29, 30, 31, TokenQuery::MAX_LIMIT] {
        let query = TokenQuery::new(now).limit(limit);
        let mut pages = 0;
        let mut seen = Vec::new();
        let mut page_query = query.clone();
        loop {
            let page = store
                .list(&page_query)
                .await
                .unwrap_or_else(|e| panic!("list failed: {e}"));
            pages += 1;
            assert!(
                page.tokens.len() <= limit,
                "page larger than the limit {limit}"
            );
            seen.extend(ids(&page.tokens));
            match page.next {
                Some(next) => page_query.after = Some(next),
                None => break,
            }
            assert!(pages <= 31, "paging with limit {limit} does not end");
        }
        assert_eq!(
            seen, expected,
            "paging with limit {limit}: all tokens, in order, once each"
        );
        assert!(
            pages <= 30usize.div_ceil(limit) + 1,
            "paging with limit {limit} took {pages} pages"
        );
    }

    // A cursor taken from a token starts strictly after it.
    let sorted: Vec<Token> = {
        let mut s = tokens.clone();
        s.sort_by_key(PageCursor::after);
        s
    };
    let page = store
        .list(
            &TokenQuery::new(now)
                .after(PageCursor::after(&sorted[12]))
                .limit(5),
        )
        .await
        .expect("list after a cursor");
    assert_eq!(
        ids(&page.tokens),
        ids(&sorted[13..18]),
        "the page after token 12"
    );

    // A cursor that matches no token: same instant as token 5, largest id.
    let cursor = PageCursor {
        created_at: sorted[5].created_at(),
        id: TokenId::from_bytes([0xff; 16]),
    };
    let after: Vec<TokenId> = sorted
        .iter()
        .filter(|t| PageCursor::after(t) > cursor)
        .map(Token::id)
        .collect();
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).after(cursor).limit(4)).await,
        after,
        "a cursor between tokens"
    );
    // A cursor with the smallest id at the same instant includes that instant's tokens.
    let cursor = PageCursor {
        created_at: sorted[5].created_at(),
        id: TokenId::from_bytes([0; 16]),
    };
    let after: Vec<TokenId> = sorted
        .iter()
        .filter(|t| PageCursor::after(t) > cursor)
        .map(Token::id)
        .collect();
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).after(cursor).limit(4)).await,
        after,
        "a cursor before an instant's tokens"
    );

    // Filters and paging together.
    let odd: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.group().as_str() == "odd")
        .collect();
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).group(group("odd")).limit(4)).await,
        ordered(&odd),
        "paging through a filtered listing"
    );

    // Page sizes outside 1..=MAX_LIMIT are clamped (the fields are public).
    let mut query = TokenQuery::new(now);
    query.limit = 0;
    let page = store.list(&query).await.expect("list with limit 0");
    assert_eq!(
        ids(&page.tokens),
        expected[..1],
        "a page size of 0 is treated as 1"
    );
    assert!(page.next.is_some(), "more tokens follow a page of one");
    query.limit = usize::MAX;
    let page = store.list(&query).await.expect("list with a huge limit");
    assert_eq!(
        ids(&page.tokens),
        expected,
        "a huge page size is clamped, not an error"
    );
}

/// `K` distinct devices succeed with uses `1..=K`; the next device gets `Exhausted`.
pub async fn redeem_to_exhaustion<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "emea/berlin")
            .with_policies([policy("wifi")])
            .with_usage_limit(limited(3))
            .with_metadata(Metadata::from_pairs([("site", "berlin")]).expect("small")),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    for i in 1..=3u64 {
        let at = now + secs(i as i64);
        let e = enrolled(
            redeem(&*store, &fx, &token, &device(i), at, Leeway::ZERO).await,
            &format!("device {i} of 3"),
        );
        assert_enrollment_matches(&e, &token, &format!("device {i}"));
        assert_eq!(e.uses, i, "device {i}: uses after the redemption");
        assert!(!e.replay, "device {i}: a new device is not a replay");
        assert_eq!(
            e.redeemed_at, at,
            "device {i}: redeemed at the request's now"
        );
        assert_eq!(e.remaining(), Some(3 - i), "device {i}: uses left");
    }
    let r = rejected(
        redeem(
            &*store,
            &fx,
            &token,
            &device(4),
            now + secs(4),
            Leeway::ZERO,
        )
        .await,
        "a fourth device on a 3-use token",
    );
    assert_eq!(r, Rejection::Exhausted { limit: 3 });
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.uses(), 3, "the rejected device consumed nothing");
    assert_eq!(stored.status_at(now + secs(5)), Status::Exhausted);
    assert_eq!(must_redemptions(&*store, token.id()).await.len(), 3);

    let once = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &once).await;
    enrolled(
        redeem(&*store, &fx, &once, &device("a"), now, Leeway::ZERO).await,
        "single-use token, first device",
    );
    let r = rejected(
        redeem(&*store, &fx, &once, &device("b"), now, Leeway::ZERO).await,
        "single-use token, second device",
    );
    assert_eq!(r, Rejection::Exhausted { limit: 1 });
}

/// The same device again gets its original enrollment with `replay = true` and consumes
/// nothing.
pub async fn replay_same_device_consumes_nothing<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(2)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let d1 = device(1);
    let first = enrolled(
        redeem(&*store, &fx, &token, &d1, now + secs(1), Leeway::ZERO).await,
        "first redemption",
    );
    assert!(!first.replay);
    for retry in 2..=6 {
        let again = enrolled(
            redeem(&*store, &fx, &token, &d1, now + secs(retry), Leeway::ZERO).await,
            &format!("retry {retry} by the same device"),
        );
        assert!(again.replay, "retry {retry}: the same device is a replay");
        assert_eq!(again.uses, 1, "retry {retry}: nothing consumed");
        assert_eq!(
            again.redeemed_at,
            now + secs(1),
            "retry {retry}: the original redemption time"
        );
        assert_enrollment_matches(&again, &token, "replay");
    }
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        1,
        "replays consume nothing"
    );
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![Redemption {
            device: d1.clone(),
            redeemed_at: now + secs(1)
        }],
        "replays add no redemption record"
    );
    let second = enrolled(
        redeem(
            &*store,
            &fx,
            &token,
            &device(2),
            now + secs(7),
            Leeway::ZERO,
        )
        .await,
        "the second device still has its use",
    );
    assert_eq!((second.uses, second.replay), (2, false));
    let again = enrolled(
        redeem(&*store, &fx, &token, &d1, now + secs(8), Leeway::ZERO).await,
        "first device after the second",
    );
    assert!(again.replay);
    assert_eq!(again.uses, 2, "a replay reports the current use count");
    assert_eq!(again.redeemed_at, now + secs(1));
}

/// A device that redeemed still gets its replay after the token is exhausted; other devices
/// are rejected.
pub async fn replay_after_exhaustion<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let once = fx.issue(spec("acme", "sales"), now, None);
    let twice = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(2)),
        now,
        None,
    );
    must_insert(&*store, &once).await;
    must_insert(&*store, &twice).await;

    enrolled(
        redeem(&*store, &fx, &once, &device(1), now, Leeway::ZERO).await,
        "once: first",
    );
    let again = enrolled(
        redeem(&*store, &fx, &once, &device(1), now + secs(1), Leeway::ZERO).await,
        "once: the same device after exhaustion",
    );
    assert!(again.replay && again.uses == 1 && again.redeemed_at == now);
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &once, &device(2), now + secs(2), Leeway::ZERO).await,
            "once: other device"
        ),
        Rejection::Exhausted { limit: 1 }
    );
    assert!(
        enrolled(
            redeem(&*store, &fx, &once, &device(1), now + secs(3), Leeway::ZERO).await,
            "once: replay again"
        )
        .replay
    );

    for i in [1, 2] {
        enrolled(
            redeem(&*store, &fx, &twice, &device(i), now, Leeway::ZERO).await,
            "twice: fill",
        );
    }
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &twice, &device(3), now, Leeway::ZERO).await,
            "twice: third device"
        ),
        Rejection::Exhausted { limit: 2 }
    );
    for i in [1, 2] {
        let e = enrolled(
            redeem(
                &*store,
                &fx,
                &twice,
                &device(i),
                now + secs(5),
                Leeway::ZERO,
            )
            .await,
            "twice: replay after exhaustion",
        );
        assert!(
            e.replay && e.uses == 2,
            "device {i} replays after exhaustion"
        );
    }
    assert_eq!(must_get(&*store, twice.id()).await.uses(), 2);
    assert_eq!(must_redemptions(&*store, twice.id()).await.len(), 2);
}

/// Revoking one token returns 1, stores the revocation, blocks redemption, and leaves other
/// tokens alone; revoking it again returns 0.
pub async fn revoke_by_id<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let a = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(5)),
        now,
        None,
    );
    let b = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(5)),
        now,
        None,
    );
    must_insert(&*store, &a).await;
    must_insert(&*store, &b).await;
    let rev = revocation(now + secs(10), "leaked in a chat");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(a.id()), &rev).await,
        1,
        "newly revoked"
    );

    let stored = must_get(&*store, a.id()).await;
    assert_eq!(stored.revocation(), Some(&rev), "the revocation is stored");
    assert_eq!(stored.status_at(now + secs(20)), Status::Revoked);
    assert_eq!(
        must_get(&*store, b.id()).await.revocation(),
        None,
        "revoking one token must not revoke another"
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &a, &device(1), now + secs(20), Leeway::ZERO).await,
            "revoked token"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(10)
        }
    );
    enrolled(
        redeem(&*store, &fx, &b, &device(1), now + secs(20), Leeway::ZERO).await,
        "untouched token",
    );
    assert_eq!(
        must_revoke(
            &*store,
            &RevokeTarget::Token(a.id()),
            &revocation(now + secs(30), "again")
        )
        .await,
        0,
        "revoking a revoked token again revokes nothing new"
    );
}

/// Revoking a group revokes it and its subgroups, in that organization only; a group with
/// no tokens revokes nothing (`Ok(0)`).
pub async fn revoke_by_group<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let emea = fx.issue(spec("acme", "emea"), now, None);
    let berlin = fx.issue(spec("acme", "emea/berlin"), now, None);
    let mitte = fx.issue(spec("acme", "emea/berlin/mitte"), now, None);
    let emeax = fx.issue(spec("acme", "emeax"), now, None);
    let apac = fx.issue(spec("acme", "apac"), now, None);
    let other_org = fx.issue(spec("globex", "emea"), now, None);
    let lab = fx.issue(spec("acme", "lab_1/x"), now, None);
    let lab_lookalike = fx.issue(spec("acme", "labX1/x"), now, None);
    let all = [
        &emea,
        &berlin,
        &mitte,
        &emeax,
        &apac,
        &other_org,
        &lab,
        &lab_lookalike,
    ];
    for t in all {
        must_insert(&*store, t).await;
    }
    let target = |o: &str, g: &str| RevokeTarget::Group {
        organization: org(o),
        group: group(g),
    };
    let rev = revocation(now + secs(1), "office closed");
    assert_eq!(
        must_revoke(&*store, &target("acme", "emea"), &rev).await,
        3,
        "acme/emea covers emea, emea/berlin and emea/berlin/mitte only"
    );
    for t in all {
        let expect = [emea.id(), berlin.id(), mitte.id()].contains(&t.id());
        assert_eq!(
            must_get(&*store, t.id()).await.revocation().is_some(),
            expect,
            "token in {}/{}: revoked should be {expect}",
            t.organization(),
            t.group()
        );
    }
    assert_eq!(
        must_revoke(&*store, &target("acme", "emea"), &rev).await,
        0,
        "again: nothing new"
    );
    assert_eq!(
        must_revoke(&*store, &target("acme", "emea/berlin"), &rev).await,
        0,
        "subgroup already revoked"
    );
    assert_eq!(
        must_revoke(&*store, &target("acme", "lab_1"), &rev).await,
        1,
        "`_` in a group id is literal: labX1 is not covered"
    );
    assert!(
        must_get(&*store, lab_lookalike.id())
            .await
            .revocation()
            .is_none()
    );
    assert_eq!(
        must_revoke(&*store, &target("acme", "nowhere"), &rev).await,
        0,
        "a group without tokens"
    );
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &berlin,
                &device(1),
                now + secs(2),
                Leeway::ZERO
            )
            .await,
            "subgroup token"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(1)
        }
    );
    enrolled(
        redeem(
            &*store,
            &fx,
            &other_org,
            &device(1),
            now + secs(2),
            Leeway::ZERO,
        )
        .await,
        "same group name in another organization",
    );
}

/// Revoking a batch revokes all of its tokens; the count excludes tokens already revoked.
pub async fn revoke_by_batch<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let batch = random_batch();
    let other_batch = random_batch();
    let members: Vec<Token> = (0..5)
        .map(|_| fx.issue(spec("acme", "fleet"), now, Some(batch)))
        .collect();
    let others: Vec<Token> = (0..2)
        .map(|_| fx.issue(spec("acme", "fleet"), now, Some(other_batch)))
        .collect();
    let loose = fx.issue(spec("acme", "fleet"), now, None);
    must_insert_batch(&*store, &members).await;
    must_insert_batch(&*store, &others).await;
    must_insert(&*store, &loose).await;

    let first = revocation(now + secs(1), "first");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(members[0].id()), &first).await,
        1
    );
    let rev = revocation(now + secs(2), "batch recalled");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Batch(batch), &rev).await,
        4,
        "revoking a batch counts only newly revoked tokens"
    );
    assert_eq!(
        must_get(&*store, members[0].id()).await.revocation(),
        Some(&first)
    );
    for m in &members[1..] {
        assert_eq!(
            must_get(&*store, m.id()).await.revocation(),
            Some(&rev),
            "batch member revoked"
        );
    }
    for t in others.iter().chain([&loose]) {
        assert!(
            must_get(&*store, t.id()).await.revocation().is_none(),
            "a token outside the batch must stay unrevoked"
        );
    }
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Batch(batch), &rev).await,
        0,
        "again: nothing new"
    );
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Batch(random_batch()), &rev).await,
        0,
        "unknown batch"
    );
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now + secs(3)).status(Status::Revoked)
        )
        .await,
        ordered(&members.iter().collect::<Vec<_>>()),
        "exactly the batch is listed as revoked"
    );
}

/// Revoking an already revoked token, by id, group or batch, keeps the first revocation.
pub async fn revocation_reason_kept<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let batch = random_batch();
    let token = fx.issue(spec("acme", "emea"), now, Some(batch));
    must_insert(&*store, &token).await;
    let first = revocation(now + secs(1), "device lost on a train");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &first).await,
        1
    );
    let later = revocation(now + secs(2), "another reason");
    let targets = [
        RevokeTarget::Token(token.id()),
        RevokeTarget::Group {
            organization: org("acme"),
            group: group("emea"),
        },
        RevokeTarget::Batch(batch),
    ];
    for target in &targets {
        assert_eq!(
            must_revoke(&*store, target, &later).await,
            0,
            "{target:?} on a revoked token"
        );
        assert_eq!(
            must_get(&*store, token.id()).await.revocation(),
            Some(&first),
            "after {target:?} the first revocation (time and reason) is kept"
        );
    }
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &token,
                &device(1),
                now + secs(3),
                Leeway::ZERO
            )
            .await,
            "revoked"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(1)
        },
        "the rejection reports the first revocation"
    );
    let listed = must_list(&*store, &TokenQuery::new(now).status(Status::Revoked)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].revocation(),
        Some(&first),
        "listing shows the first revocation"
    );
}

/// Revoking a token id that is not stored fails with `StoreError::NotFound(id)`.
pub async fn revoke_unknown_id_not_found<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let stored = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &stored).await;
    let unknown = random_id();
    match store
        .revoke(&RevokeTarget::Token(unknown), &revocation(now, "x"))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, unknown, "the error names the id"),
        other => panic!("revoking an unknown id must fail with NotFound, got {other:?}"),
    }
    assert_eq!(
        must_get(&*store, stored.id()).await,
        stored,
        "a failed revocation touches no other token"
    );
    must_be_absent(&*store, unknown, "revoking must not create it").await;
}

/// Once revoke returns, the next redemption is rejected, new devices and replays alike, even
/// when the revocation's `revoked_at` lies after the redemption's `now`.
pub async fn revoked_blocks_next_redeem<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "sales").with_usage_limit(UsageLimit::Unlimited),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let d1 = device(1);
    enrolled(
        redeem(&*store, &fx, &token, &d1, now, Leeway::ZERO).await,
        "before revocation",
    );
    // The admin's clock is ahead of the redeeming server's: the revocation still applies.
    let rev = revocation(now + secs(3600), "compromised");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    let expected = Rejection::Revoked {
        revoked_at: now + secs(3600),
    };
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &token,
                &device(2),
                now + secs(1),
                Leeway::ZERO
            )
            .await,
            "new device after revoke"
        ),
        expected
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &d1, now + secs(2), Leeway::ZERO).await,
            "replay after revoke"
        ),
        expected,
        "a device that redeemed before the revocation gets no replay"
    );
    assert_eq!(must_get(&*store, token.id()).await.uses(), 1);
    assert_eq!(must_redemptions(&*store, token.id()).await.len(), 1);
}

/// Redeemable until 1 µs before the expiry; `Expired` from the expiry on, for new devices
/// and replays.
pub async fn expiry<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let expires_at = now + secs(3600);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(5))
            .with_expiry(ExpirySpec::At(expires_at)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    enrolled(
        redeem(
            &*store,
            &fx,
            &token,
            &device(1),
            expires_at - MICRO,
            Leeway::ZERO,
        )
        .await,
        "1 µs before the expiry",
    );
    for (what, at, d) in [
        ("at the expiry", expires_at, device(2)),
        (
            "a day after the expiry",
            expires_at + secs(86_400),
            device(3),
        ),
        ("a replay at the expiry", expires_at, device(1)),
    ] {
        assert_eq!(
            rejected(
                redeem(&*store, &fx, &token, &d, at, Leeway::ZERO).await,
                what
            ),
            Rejection::Expired {
                expires_at,
                now: at
            },
            "{what}"
        );
    }
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.uses(), 1);
    assert_eq!(stored.status_at(expires_at - MICRO), Status::Active);
    assert_eq!(stored.status_at(expires_at), Status::Expired);
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(expires_at).status(Status::Expired)
        )
        .await,
        vec![token.id()],
        "listed as expired at the expiry"
    );
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(expires_at - MICRO).status(Status::Active)
        )
        .await,
        vec![token.id()],
        "listed as active 1 µs before"
    );
}

/// `NotYetValid` until 1 µs before `not_before`; redeemable from it on.
pub async fn not_before<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let nb = now + secs(3600);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(5))
            .with_not_before(nb),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    for (what, at) in [("at issue", now), ("1 µs before not-before", nb - MICRO)] {
        assert_eq!(
            rejected(
                redeem(&*store, &fx, &token, &device(1), at, Leeway::ZERO).await,
                what
            ),
            Rejection::NotYetValid {
                not_before: nb,
                now: at
            },
            "{what}"
        );
    }
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        0,
        "early attempts consume nothing"
    );
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![],
        "early attempts are not recorded"
    );
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), nb, Leeway::ZERO).await,
        "at not-before",
    );
    assert_eq!((e.uses, e.replay), (1, false));
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).status(Status::Pending)).await,
        vec![token.id()],
        "listed as pending before the window"
    );
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(nb).status(Status::Active)).await,
        vec![token.id()],
        "listed as active at not-before"
    );
}

/// The window `[not_before - L, expiry + L)` with and without a leeway `L`, for redemption
/// and listing.
pub async fn leeway_boundaries<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let nb = now + secs(3600);
    let exp = now + secs(7200);
    let l = secs(30);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(UsageLimit::Unlimited)
            .with_not_before(nb)
            .with_expiry(ExpirySpec::At(exp)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let mut n = 0;
    let mut attempt = async |at: DateTime<Utc>, lw: Leeway| {
        n += 1;
        redeem(&*store, &fx, &token, &device(n), at, lw).await
    };
    let zero = Leeway::ZERO;
    let thirty = leeway(30);

    let early = attempt(nb - MICRO, zero).await;
    assert_eq!(
        rejected(early, "no leeway, 1 µs early"),
        Rejection::NotYetValid {
            not_before: nb,
            now: nb - MICRO
        }
    );
    enrolled(attempt(nb, zero).await, "no leeway, at not-before");
    enrolled(
        attempt(exp - MICRO, zero).await,
        "no leeway, 1 µs before expiry",
    );
    let late = attempt(exp, zero).await;
    assert_eq!(
        rejected(late, "no leeway, at expiry"),
        Rejection::Expired {
            expires_at: exp,
            now: exp
        }
    );

    let early = attempt(nb - l - MICRO, thirty).await;
    assert_eq!(
        rejected(early, "30 s leeway, 30 s + 1 µs early"),
        Rejection::NotYetValid {
            not_before: nb,
            now: nb - l - MICRO
        }
    );
    enrolled(attempt(nb - l, thirty).await, "30 s leeway, 30 s early");
    enrolled(
        attempt(exp + l - MICRO, thirty).await,
        "30 s leeway, 30 s - 1 µs after expiry",
    );
    let late = attempt(exp + l, thirty).await;
    assert_eq!(
        rejected(late, "30 s leeway, 30 s after expiry"),
        Rejection::Expired {
            expires_at: exp,
            now: exp + l
        }
    );
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        4,
        "exactly the accepted attempts consumed"
    );

    for (what, at, lw, status) in [
        ("30 s early with leeway", nb - l, thirty, Status::Active),
        ("30 s early without leeway", nb - l, zero, Status::Pending),
        (
            "just before expiry + leeway",
            exp + l - MICRO,
            thirty,
            Status::Active,
        ),
        (
            "just before expiry + leeway, no leeway",
            exp + l - MICRO,
            zero,
            Status::Expired,
        ),
        ("at expiry + leeway", exp + l, thirty, Status::Expired),
    ] {
        assert_eq!(
            list_ids(&*store, &TokenQuery::new(at).leeway(lw).status(status)).await,
            vec![token.id()],
            "listing: {what} is {status}"
        );
    }
}

/// 64 concurrent redeemers with distinct devices on a multi-threaded runtime: exactly
/// `min(limit, 64)` succeed, for limits 1, 5, 100 and unlimited, each with distinct use
/// counts, and the records match.
pub async fn concurrent_redeem_exact<S: TokenStore + 'static>(store: Arc<S>) {
    const TASKS: usize = 64;
    let fx = Arc::new(Fixture::new());
    let now = t0();
    for limit in [limited(1), limited(5), limited(100), UsageLimit::Unlimited] {
        for round in 0..3 {
            let token = fx.issue(spec("acme", "race").with_usage_limit(limit), now, None);
            must_insert(&*store, &token).await;
            let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
            let handles: Vec<_> = (0..TASKS)
                .map(|i| {
                    let (store, fx, barrier, token) = (
                        Arc::clone(&store),
                        Arc::clone(&fx),
                        Arc::clone(&barrier),
                        token.clone(),
                    );
                    tokio::spawn(async move {
                        let d = device(format!("r{round}-{i}"));
                        barrier.wait().await;
                        let result = redeem(&*store, &fx, &token, &d, now, Leeway::ZERO).await;
                        (d, result)
                    })
                })
                .collect();
            let mut winners = BTreeSet::new();
            let mut uses = BTreeSet::new();
            for handle in handles {
                let (d, result) = handle.await.expect("redeemer task panicked");
                match result {
                    Ok(e) => {
                        assert!(!e.replay, "limit {limit:?}: a new device is never a replay");
                        assert!(
                            uses.insert(e.uses),
                            "limit {limit:?}: two redemptions both report use {}",
                            e.uses
                        );
                        winners.insert(d);
                    }
                    Err(RedeemError::Rejected(Rejection::Exhausted { .. })) => {}
                    Err(e) => panic!("limit {limit:?}: unexpected error under concurrency: {e}"),
                }
            }
            let expected = limit.max_uses().map_or(TASKS, |m| TASKS.min(m as usize));
            assert_eq!(
                winners.len(),
                expected,
                "limit {limit:?}, round {round}: exactly min(limit, {TASKS}) concurrent devices must succeed"
            );
            assert_eq!(
                uses,
                (1..=expected as u64).collect::<BTreeSet<_>>(),
                "limit {limit:?}: the successful redemptions report uses 1..={expected}"
            );
            assert_eq!(
                must_get(&*store, token.id()).await.uses(),
                expected as u64,
                "stored use count"
            );
            let recorded: BTreeSet<DeviceId> = must_redemptions(&*store, token.id())
                .await
                .into_iter()
                .map(|r| r.device)
                .collect();
            assert_eq!(
                recorded, winners,
                "limit {limit:?}: the records name exactly the successful devices"
            );
        }
    }
}

/// The same device redeeming 64 times at once consumes one use: one consuming redemption,
/// the rest replays; several devices racing for the last uses each win or lose as a whole.
pub async fn concurrent_replays_idempotent<S: TokenStore + 'static>(store: Arc<S>) {
    const TASKS: usize = 64;
    let fx = Arc::new(Fixture::new());
    let now = t0();
    let token = fx.issue(spec("acme", "race").with_usage_limit(limited(3)), now, None);
    must_insert(&*store, &token).await;

    let spawn_all = |devices: Vec<DeviceId>| {
        let barrier = Arc::new(tokio::sync::Barrier::new(devices.len()));
        devices
            .into_iter()
            .map(|d| {
                let (store, fx, barrier, token) = (
                    Arc::clone(&store),
                    Arc::clone(&fx),
                    Arc::clone(&barrier),
                    token.clone(),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    let result = redeem(&*store, &fx, &token, &d, now, Leeway::ZERO).await;
                    (d, result)
                })
            })
            .collect::<Vec<_>>()
    };

    let d1 = device(1);
    let mut fresh = 0;
    for handle in spawn_all(vec![d1.clone(); TASKS]) {
        let (_, result) = handle.await.expect("redeemer task panicked");
        let e = enrolled(result, "the same device concurrently");
        assert_eq!(e.uses, 1, "every concurrent retry sees exactly one use");
        assert_eq!(e.redeemed_at, now);
        fresh += usize::from(!e.replay);
    }
    assert_eq!(
        fresh, 1,
        "exactly one of {TASKS} concurrent retries consumes; the rest are replays"
    );
    assert_eq!(must_get(&*store, token.id()).await.uses(), 1);
    assert_eq!(must_redemptions(&*store, token.id()).await.len(), 1);

    // Four devices, 16 tasks each, race for the 2 remaining uses.
    let contenders: Vec<DeviceId> = (2..6).map(device).collect();
    let tasks: Vec<DeviceId> = contenders.iter().cycle().take(TASKS).cloned().collect();
    let mut outcomes: HashMap<DeviceId, (usize, usize, usize)> = HashMap::new();
    for handle in spawn_all(tasks) {
        let (d, result) = handle.await.expect("redeemer task panicked");
        let entry = outcomes.entry(d).or_default();
        match result {
            Ok(e) if e.replay => entry.1 += 1,
            Ok(_) => entry.0 += 1,
            Err(RedeemError::Rejected(Rejection::Exhausted { limit: 3 })) => entry.2 += 1,
            Err(e) => panic!("unexpected error under concurrency: {e}"),
        }
    }
    let mut winners = 0;
    for (d, (consumed, replays, exhausted)) in &outcomes {
        if *consumed > 0 {
            winners += 1;
            assert_eq!(
                (*consumed, *exhausted),
                (1, 0),
                "{d}: a device that won consumes once and is never told exhausted ({replays} replays)"
            );
        } else {
            assert_eq!(*replays, 0, "{d}: a device that lost cannot get a replay");
        }
    }
    assert_eq!(winners, 2, "exactly two devices win the two remaining uses");
    assert_eq!(must_get(&*store, token.id()).await.uses(), 3);
    assert_eq!(must_redemptions(&*store, token.id()).await.len(), 3);
}

/// Redeemers run while the token is revoked: no redemption that starts after `revoke`
/// returned succeeds, and the use count equals the successful redemptions.
pub async fn revoke_races_redeem<S: TokenStore + 'static>(store: Arc<S>) {
    const TASKS: usize = 8;
    const MAX_ATTEMPTS: usize = 100_000;
    let fx = Arc::new(Fixture::new());
    let now = t0();
    let token = fx.issue(
        spec("acme", "race").with_usage_limit(UsageLimit::Unlimited),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let rev = revocation(now, "race");
    let revoked = Arc::new(AtomicBool::new(false));
    let (progress, mut watch) = tokio::sync::watch::channel(0usize);

    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, fx, token, revoked, progress) = (
                Arc::clone(&store),
                Arc::clone(&fx),
                token.clone(),
                Arc::clone(&revoked),
                progress.clone(),
            );
            tokio::spawn(async move {
                let mut succeeded = Vec::new();
                for attempt in 0..MAX_ATTEMPTS {
                    let d = device(format!("t{task}-{attempt}"));
                    let started_after_revoke = revoked.load(Ordering::SeqCst);
                    match redeem(&*store, &fx, &token, &d, now, Leeway::ZERO).await {
                        Ok(_) => {
                            assert!(
                                !started_after_revoke,
                                "a redemption that started after revoke returned succeeded"
                            );
                            succeeded.push(d);
                            progress.send_modify(|n| *n += 1);
                        }
                        Err(RedeemError::Rejected(Rejection::Revoked { revoked_at })) => {
                            assert_eq!(revoked_at, now, "the rejection reports the revocation");
                            if started_after_revoke {
                                return succeeded;
                            }
                        }
                        Err(e) => panic!("unexpected error while racing a revocation: {e}"),
                    }
                }
                panic!("the revocation did not take effect within {MAX_ATTEMPTS} attempts");
            })
        })
        .collect();
    drop(progress);

    watch
        .wait_for(|n| *n >= 2 * TASKS)
        .await
        .expect("the redeemers stopped before the revocation");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    revoked.store(true, Ordering::SeqCst);

    let mut winners = BTreeSet::new();
    for handle in handles {
        winners.extend(handle.await.expect("redeemer task panicked"));
    }
    assert!(winners.len() >= 2 * TASKS);
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        winners.len() as u64,
        "the use count equals the successful redemptions"
    );
    let recorded: BTreeSet<DeviceId> = must_redemptions(&*store, token.id())
        .await
        .into_iter()
        .map(|r| r.device)
        .collect();
    assert_eq!(
        recorded, winners,
        "the records name exactly the successful devices"
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device("late"), now, Leeway::ZERO).await,
            "after the race"
        ),
        Rejection::Revoked { revoked_at: now }
    );
}

/// Redemption records: device and time, oldest first (ties in redemption order), nothing
/// for replays or rejected attempts, an empty list for an unredeemed token.
pub async fn redemption_records<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(3)),
        now,
        None,
    );
    let unused = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &token).await;
    must_insert(&*store, &unused).await;
    let at = |s: i64| now + secs(s);
    let ok = |r, what: &str| {
        enrolled(r, what);
    };
    ok(
        redeem(&*store, &fx, &token, &device(1), at(1), Leeway::ZERO).await,
        "device 1",
    );
    ok(
        redeem(&*store, &fx, &token, &device(2), at(2), Leeway::ZERO).await,
        "device 2",
    );
    ok(
        redeem(&*store, &fx, &token, &device(1), at(3), Leeway::ZERO).await,
        "device 1 replay",
    );
    ok(
        redeem(&*store, &fx, &token, &device(3), at(4), Leeway::ZERO).await,
        "device 3",
    );
    rejected(
        redeem(&*store, &fx, &token, &device(4), at(5), Leeway::ZERO).await,
        "device 4 exhausted",
    );
    ok(
        redeem(&*store, &fx, &token, &device(2), at(6), Leeway::ZERO).await,
        "device 2 replay",
    );
    let rec = |d: u32, s: i64| Redemption {
        device: device(d),
        redeemed_at: at(s),
    };
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![rec(1, 1), rec(2, 2), rec(3, 4)],
        "one record per device, with its first redemption time, oldest first"
    );
    assert_eq!(
        must_redemptions(&*store, unused.id()).await,
        vec![],
        "an unredeemed token has no records"
    );

    // Servers with skewed clocks: the later redemption carries the earlier time. Oldest
    // first means by time; equal times keep redemption order.
    let skewed = fx.issue(
        spec("acme", "sales").with_usage_limit(UsageLimit::Unlimited),
        now,
        None,
    );
    must_insert(&*store, &skewed).await;
    for (d, s) in [(10, 20), (13, 10), (12, 15), (11, 10)] {
        ok(
            redeem(&*store, &fx, &skewed, &device(d), at(s), Leeway::ZERO).await,
            "skewed clocks",
        );
    }
    assert_eq!(
        must_redemptions(&*store, skewed.id()).await,
        vec![rec(13, 10), rec(11, 10), rec(12, 15), rec(10, 20)],
        "records are ordered by redemption time, ties in redemption order (not by device)"
    );
}

fn awkward_metadata() -> Metadata {
    let mut pairs: Vec<(String, String)> = [
        ("emoji", "🚀📱👩‍💻🏳️‍🌈"),
        ("rtl", "مرحبا بالعالم שלום"),
        ("combining", "e\u{301}a\u{308}\u{20dd}"),
        ("cjk", "漢字かなカナ한국어"),
        ("quotes", "'\"`;-- /* */"),
        ("backslashes", "C:\\path\\to \\n \\u0000 \\\\"),
        ("sql", "'); DROP TABLE tokens; --"),
        ("json", "{\"a\":[1,2,{\"b\":null}]}"),
        ("whitespace", " \t\n\r\u{a0}\u{2028}\u{2029} padded "),
        ("edges", "\u{FFFD}\u{FEFF}\u{FFFF}\u{10FFFF}\u{E000}"),
        ("wildcards", "100% _x_ * ? [a-z]"),
        ("empty value", ""),
        ("🔑 ключ", "значение"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let used: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    // Fill to exactly Metadata::MAX_BYTES with 3-byte characters and ASCII.
    let room = Metadata::MAX_BYTES - used - "pad".len();
    let pad = "€".repeat(room / 3) + &"x".repeat(room % 3);
    pairs.push(("pad".to_string(), pad));
    let metadata = Metadata::from_pairs(pairs).expect("exactly at the metadata bound");
    assert_eq!(
        metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>(),
        Metadata::MAX_BYTES
    );
    metadata
}

/// 4 KiB of awkward Unicode metadata, a Unicode description and a Unicode revocation reason
/// round-trip exactly through insert, get, list, redeem and revoke.
pub async fn metadata_round_trip<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let metadata = awkward_metadata();
    let description = "Büro 東京 🚀 'single' \"double\" \\ back \u{2028} tab\t end".to_string();
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(2))
            .with_metadata(metadata.clone())
            .with_description(description.clone()),
        now,
        None,
    );
    let max_description = fx.issue(
        spec("acme", "sales").with_description("ü".repeat(crate::token::MAX_DESCRIPTION / 2)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    must_insert(&*store, &max_description).await;
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.metadata(), &metadata, "metadata round-trips exactly");
    assert_eq!(
        stored.description(),
        description,
        "description round-trips exactly"
    );
    assert_eq!(stored, token);
    assert_eq!(
        must_get(&*store, max_description.id()).await,
        max_description,
        "1 KiB description"
    );
    let listed = must_list(&*store, &TokenQuery::new(now)).await;
    assert!(listed.contains(&token), "listing returns the same metadata");
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "redeem",
    );
    assert_eq!(e.metadata, metadata, "the enrollment carries the metadata");
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "replay",
    );
    assert_eq!(e.metadata, metadata, "a replay carries the metadata");

    let reason = "Gerät verloren 📵 «quoted» 'x' \\ \u{202e}rtl";
    let rev = revocation(now + secs(1), reason);
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id())
            .await
            .revocation()
            .map(|r| r.reason.as_str()),
        Some(reason),
        "revocation reason round-trips exactly"
    );
    let long = "ß".repeat(Revocation::MAX_REASON / 2);
    let rev = revocation(now + secs(1), &long);
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(max_description.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, max_description.id()).await.revocation(),
        Some(&rev),
        "1 KiB reason"
    );
}

/// NUL and other control characters are valid in metadata, descriptions and reasons, so
/// they must round-trip (a store cannot reject a record the core accepts).
pub async fn nul_characters_round_trip<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let metadata = Metadata::from_pairs([
        ("nul", "before\u{0}after"),
        ("key\u{0}with nul", "v"),
        ("controls", "\u{1}\u{7}\u{1b}[31m\u{7f}\u{80}\u{9f}"),
    ])
    .expect("small metadata");
    let description = "line\u{0}after nul \u{1}";
    let token = fx.issue(
        spec("acme", "sales")
            .with_metadata(metadata.clone())
            .with_description(description),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(
        stored.metadata(),
        &metadata,
        "metadata with NUL round-trips"
    );
    assert_eq!(
        stored.description(),
        description,
        "description with NUL round-trips"
    );
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "redeem",
    );
    assert_eq!(e.metadata, metadata);
    let rev = revocation(now, "reason\u{0}with nul");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id()).await.revocation(),
        Some(&rev),
        "reason with NUL round-trips"
    );
}

/// An unknown id: `get` gives `None`, `redeem` gives `Rejection::NotFound`, `revoke` and
/// `redemptions` give `StoreError::NotFound`.
pub async fn unknown_id_not_found<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let check = async |unknown: TokenId| {
        must_be_absent(&*store, unknown, "it was never inserted").await;
        let request = RedeemRequest {
            token: fx.verified_with(fx.active, unknown),
            device: &device(1),
            now,
            leeway: Leeway::ZERO,
        };
        assert_eq!(
            rejected(store.redeem(&request).await, "redeeming an unknown id"),
            Rejection::NotFound { id: unknown }
        );
        match store
            .revoke(&RevokeTarget::Token(unknown), &revocation(now, "x"))
            .await
        {
            Err(StoreError::NotFound(id)) => assert_eq!(id, unknown),
            other => panic!("revoking an unknown id must fail with NotFound, got {other:?}"),
        }
        match store.redemptions(unknown).await {
            Err(StoreError::NotFound(id)) => assert_eq!(id, unknown),
            other => panic!("redemptions of an unknown id must fail with NotFound, got {other:?}"),
        }
    };
    check(random_id()).await;
    let stored = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &stored).await;
    check(random_id()).await;
    // Ids that differ from a stored one in a single byte, first or last.
    for i in [0, 15] {
        let mut bytes = *stored.id().as_bytes();
        bytes[i] ^= 1;
        check(TokenId::from_bytes(bytes)).await;
    }
    assert_eq!(
        must_get(&*store, stored.id()).await,
        stored,
        "the stored token is untouched"
    );
}

/// A record issued under one key, presented as signed by another key of the keyring, is
/// treated as not found and left untouched.
pub async fn key_mismatch_not_found<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let under_active = fx.issue(spec("acme", "sales"), now, None);
    let under_other = fx.issue_with(random_id(), fx.other, spec("acme", "sales"), now, None);
    must_insert(&*store, &under_active).await;
    must_insert(&*store, &under_other).await;
    for (token, wrong_key) in [(&under_active, fx.other), (&under_other, fx.active)] {
        let request = RedeemRequest {
            token: fx.verified_with(wrong_key, token.id()),
            device: &device(1),
            now,
            leeway: Leeway::ZERO,
        };
        assert_eq!(
            rejected(
                store.redeem(&request).await,
                "presented under the wrong key"
            ),
            Rejection::NotFound { id: token.id() }
        );
        assert_eq!(
            must_get(&*store, token.id()).await.uses(),
            0,
            "nothing consumed"
        );
        assert_eq!(
            must_redemptions(&*store, token.id()).await,
            vec![],
            "nothing recorded"
        );
        let e = enrolled(
            redeem(&*store, &fx, token, &device(1), now, Leeway::ZERO).await,
            "under the right key",
        );
        assert!(
            !e.replay,
            "the wrong-key attempt did not count as a first redemption"
        );
    }
}

/// Microsecond instants come back exactly: creation, window, revocation, redemption, the
/// rejections that report them, and cursors built from them.
pub async fn timestamps_round_trip<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let created = t0() + TimeDelta::microseconds(123_456);
    let nb = created + secs(1) + MICRO;
    let far = Utc
        .with_ymd_and_hms(2999, 12, 31, 23, 59, 59)
        .single()
        .expect("valid instant")
        + TimeDelta::microseconds(999_999);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(3))
            .with_not_before(nb)
            .with_expiry(ExpirySpec::At(far)),
        created,
        None,
    );
    let sibling = fx.issue(spec("acme", "sales"), created + MICRO, None);
    must_insert(&*store, &token).await;
    must_insert(&*store, &sibling).await;
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(
        stored.created_at(),
        created,
        "created_at to the microsecond"
    );
    assert_eq!(
        stored.validity().not_before,
        Some(nb),
        "not_before to the microsecond"
    );
    assert_eq!(
        stored.validity().expiry,
        Expiry::At(far),
        "expiry in 2999 to the microsecond"
    );
    assert_eq!(stored, token);

    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device(1), nb - MICRO, Leeway::ZERO).await,
            "1 µs early"
        ),
        Rejection::NotYetValid {
            not_before: nb,
            now: nb - MICRO
        }
    );
    let at = nb + TimeDelta::microseconds(654_321);
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), at, Leeway::ZERO).await,
        "redeem",
    );
    assert_eq!(e.redeemed_at, at);
    let replay = enrolled(
        redeem(&*store, &fx, &token, &device(1), at + secs(5), Leeway::ZERO).await,
        "replay",
    );
    assert_eq!(
        replay.redeemed_at, at,
        "a replay reports the stored first redemption time exactly"
    );
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![Redemption {
            device: device(1),
            redeemed_at: at
        }]
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device(2), far, Leeway::ZERO).await,
            "at the expiry"
        ),
        Rejection::Expired {
            expires_at: far,
            now: far
        }
    );

    // Cursors at microsecond resolution: the 1 µs younger sibling is the only one after.
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(created).after(PageCursor::after(&token))
        )
        .await,
        vec![sibling.id()],
        "a cursor 1 µs before another token"
    );

    let revoked_at = created + TimeDelta::microseconds(777_777);
    let rev = revocation(revoked_at, "µs");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id()).await.revocation(),
        Some(&rev),
        "revoked_at to the microsecond"
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device(3), at, Leeway::ZERO).await,
            "revoked"
        ),
        Rejection::Revoked { revoked_at }
    );
}

/// Get, list and redemptions never consume a use.
pub async fn get_and_list_do_not_consume<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &token).await;
    for _ in 0..20 {
        must_get(&*store, token.id()).await;
        must_list(&*store, &TokenQuery::new(now)).await;
        must_list(&*store, &TokenQuery::new(now).status(Status::Active)).await;
        must_redemptions(&*store, token.id()).await;
    }
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.uses(), 0, "reads consumed a use");
    assert_eq!(stored.status_at(now), Status::Active);
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "after reads",
    );
    assert_eq!((e.uses, e.replay), (1, false));
    for _ in 0..5 {
        must_get(&*store, token.id()).await;
        must_list(&*store, &TokenQuery::new(now)).await;
        must_redemptions(&*store, token.id()).await;
    }
    assert_eq!(must_get(&*store, token.id()).await.uses(), 1);
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).status(Status::Exhausted)).await,
        vec![token.id()]
    );
}

/// `Expiry::Never` with `UsageLimit::Unlimited`: hundreds of devices over centuries, still
/// active in the year 9999.
pub async fn never_expiring_and_unlimited<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "kiosk")
            .with_usage_limit(UsageLimit::Unlimited)
            .with_expiry(ExpirySpec::Never),
        now,
        None,
    );
    let once_forever = fx.issue(
        spec("acme", "kiosk").with_expiry(ExpirySpec::Never),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    must_insert(&*store, &once_forever).await;
    assert_eq!(
        must_get(&*store, token.id()).await.validity().expiry,
        Expiry::Never
    );
    let year = |y: i32| {
        Utc.with_ymd_and_hms(y, 6, 1, 12, 0, 0)
            .single()
            .expect("valid instant")
    };
    for i in 1..=300u64 {
        let at = year(2030 + (i as i32) * 3);
        let e = enrolled(
            redeem(&*store, &fx, &token, &device(i), at, Leeway::ZERO).await,
            "unlimited",
        );
        assert_eq!(
            (e.uses, e.replay, e.remaining()),
            (i, false, None),
            "device {i}"
        );
    }
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), year(9999), Leeway::ZERO).await,
        "replay",
    );
    assert!(e.replay && e.uses == 300 && e.redeemed_at == year(2033));
    assert_eq!(
        must_get(&*store, token.id()).await.status_at(year(9999)),
        Status::Active
    );
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(year(9999)).status(Status::Active)).await,
        ordered(&[&token, &once_forever]),
        "never-expiring tokens are active in 9999"
    );
    assert!(
        list_ids(
            &*store,
            &TokenQuery::new(year(9999)).status(Status::Expired)
        )
        .await
        .is_empty(),
        "nothing expires"
    );
    enrolled(
        redeem(
            &*store,
            &fx,
            &once_forever,
            &device(1),
            year(9000),
            Leeway::ZERO,
        )
        .await,
        "once, in 9000",
    );
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &once_forever,
                &device(2),
                year(9001),
                Leeway::ZERO
            )
            .await,
            "once, second device"
        ),
        Rejection::Exhausted { limit: 1 }
    );
}

// ---------------------------------------------------------------------------------------
// Model-based test
// ---------------------------------------------------------------------------------------

const ORGS: [&str; 2] = ["acme", "globex"];
const GROUPS: [&str; 6] = [
    "emea",
    "emea/berlin",
    "emea/berlin/mitte",
    "emeax",
    "lab_1",
    "labX1",
];
const POLICIES: [&str; 2] = ["wifi", "vpn"];
const REASONS: [&str; 3] = ["lost", "leaked", "Gerät 📵"];
const MODEL_LEEWAY: i64 = 30;

#[derive(Debug, Clone, Copy)]
enum Limit {
    Once,
    Limited(u32),
    Unlimited,
}

/// What to issue; instants are whole seconds relative to the model clock, so window
/// boundaries are hit exactly.
#[derive(Debug, Clone)]
struct Issue {
    org: usize,
    group: usize,
    policy: Option<usize>,
    limit: Limit,
    /// Seconds from now to `not_before`.
    not_before: Option<i64>,
    /// Seconds from the window's opening to the expiry; `None` never expires.
    lifetime: Option<i64>,
}

/// A token the operation refers to: the `n`-th stored token (modulo their number), or one
/// that was never stored.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Stored(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum Clash {
    None,
    /// The batch also carries the id of a stored token.
    Stored(usize),
    /// The batch carries its first id twice.
    Internal,
}

#[derive(Debug, Clone)]
enum Target {
    Token(Pick),
    Group {
        org: usize,
        group: usize,
    },
    /// The `n`-th batch attempted (stored or not), or an unknown batch.
    Batch(Option<usize>),
}

#[derive(Debug, Clone)]
enum Op {
    Issue(Issue),
    IssueBatch(Vec<Issue>, Clash),
    /// Insert a record with a stored token's id and other content.
    InsertDuplicate(Pick),
    Redeem {
        token: Pick,
        device: u8,
        leeway: bool,
        wrong_key: bool,
    },
    /// Devices `first..first + count`, one after the other.
    RedeemMany {
        token: Pick,
        first: u8,
        count: u8,
    },
    Revoke(Target, usize),
    /// Move the clock by this many seconds (negative: back).
    Advance(i64),
    Get(Pick),
    List {
        org: Option<usize>,
        group: Option<usize>,
        policy: Option<usize>,
        status: Option<Status>,
        batch: Option<usize>,
        leeway: bool,
        page: usize,
    },
    Redemptions(Pick),
}

fn issue_strategy() -> impl Strategy<Value = Issue> {
    let limit = prop_oneof![
        Just(Limit::Once),
        (2u32..5).prop_map(Limit::Limited),
        Just(Limit::Unlimited),
    ];
    (
        0..ORGS.len(),
        0..GROUPS.len(),
        proptest::option::of(0..POLICIES.len()),
        limit,
        proptest::option::weighted(0.3, -30i64..150),
        proptest::option::weighted(0.8, 1i64..300),
    )
        .prop_map(|(org, group, policy, limit, not_before, lifetime)| Issue {
            org,
            group,
            policy,
            limit,
            not_before,
            lifetime,
        })
}

fn pick_strategy() -> impl Strategy<Value = Pick> {
    prop_oneof![9 => (0usize..64).prop_map(Pick::Stored), 1 => Just(Pick::Unknown)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let clash = prop_oneof![
        3 => Just(Clash::None),
        1 => (0usize..64).prop_map(Clash::Stored),
        1 => Just(Clash::Internal),
    ];
    let target = prop_oneof![
        3 => pick_strategy().prop_map(Target::Token),
        2 => (0..ORGS.len(), 0..GROUPS.len()).prop_map(|(org, group)| Target::Group { org, group }),
        2 => proptest::option::weighted(0.9, 0usize..16).prop_map(Target::Batch),
    ];
    let list = (
        proptest::option::weighted(0.3, 0..ORGS.len()),
        proptest::option::weighted(0.5, 0..GROUPS.len()),
        proptest::option::weighted(0.2, 0..POLICIES.len()),
        proptest::option::weighted(0.5, proptest::sample::select(Status::ALL.to_vec())),
        proptest::option::weighted(0.2, 0usize..16),
        proptest::bool::weighted(0.4),
        1usize..8,
    )
        .prop_map(
            |(org, group, policy, status, batch, leeway, page)| Op::List {
                org,
                group,
                policy,
                status,
                batch,
                leeway,
                page,
            },
        );
    prop_oneof![
        4 => issue_strategy().prop_map(Op::Issue),
        1 => (proptest::collection::vec(issue_strategy(), 1..5), clash)
            .prop_map(|(issues, clash)| Op::IssueBatch(issues, clash)),
        1 => pick_strategy().prop_map(Op::InsertDuplicate),
        10 => (pick_strategy(), 0u8..6, proptest::bool::weighted(0.4), proptest::bool::weighted(0.05))
            .prop_map(|(token, device, leeway, wrong_key)| Op::Redeem { token, device, leeway, wrong_key }),
        1 => (pick_strategy(), 0u8..32, 1u8..24)
            .prop_map(|(token, first, count)| Op::RedeemMany { token, first, count }),
        2 => (target, 0..REASONS.len()).prop_map(|(t, r)| Op::Revoke(t, r)),
        4 => prop_oneof![5 => 0i64..40, 1 => 40i64..400, 1 => -60i64..0].prop_map(Op::Advance),
        1 => pick_strategy().prop_map(Op::Get),
        2 => list,
        1 => pick_strategy().prop_map(Op::Redemptions),
    ]
}

/// A store failure, compared by variant and id.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Duplicate(TokenId),
    NotFound(TokenId),
    /// Any other error, which the model never produces: always a mismatch.
    Other(String),
}

impl From<&StoreError> for Failure {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::Duplicate(id) => Failure::Duplicate(*id),
            StoreError::NotFound(id) => Failure::NotFound(*id),
            other => {
                let mut text = other.to_string();
                let mut source = std::error::Error::source(other);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                Failure::Other(text)
            }
        }
    }
}

/// The observable result of one operation.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done,
    Count(u64),
    Enrolled(Enrollment),
    Rejected(Rejection),
    Failed(Failure),
    Found(Option<Token>),
    Listed(Vec<Token>),
    Redemptions(Vec<Redemption>),
}

fn outcome_of<T>(result: Result<T, StoreError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match result {
        Ok(v) => ok(v),
        Err(e) => Outcome::Failed(Failure::from(&e)),
    }
}

fn redeem_outcome(result: Result<Enrollment, RedeemError>) -> Outcome {
    match result {
        Ok(e) => Outcome::Enrolled(e),
        Err(RedeemError::Rejected(r)) => Outcome::Rejected(r),
        Err(RedeemError::Store(e)) => Outcome::Failed(Failure::from(&e)),
    }
}

/// The pure model: records and their redemptions in a `HashMap`, redeemed through the
/// core's rules.
#[derive(Default)]
struct Model {
    tokens: HashMap<TokenId, (Token, Vec<Redemption>)>,
}

impl Model {
    fn insert(&mut self, token: Token) -> Outcome {
        if self.tokens.contains_key(&token.id()) {
            return Outcome::Failed(Failure::Duplicate(token.id()));
        }
        self.tokens.insert(token.id(), (token, Vec::new()));
        Outcome::Done
    }

    fn insert_batch(&mut self, tokens: Vec<Token>) -> Outcome {
        let mut seen = BTreeSet::new();
        for t in &tokens {
            if !seen.insert(t.id()) || self.tokens.contains_key(&t.id()) {
                return Outcome::Failed(Failure::Duplicate(t.id()));
            }
        }
        for t in tokens {
            self.tokens.insert(t.id(), (t, Vec::new()));
        }
        Outcome::Done
    }

    fn redeem(&mut self, request: &RedeemRequest<'_>) -> Outcome {
        let id = request.token.token_id();
        let Some((token, redemptions)) = self.tokens.get_mut(&id) else {
            return Outcome::Rejected(Rejection::NotFound { id });
        };
        let prior = redemptions
            .iter()
            .find(|r| r.device == *request.device)
            .map(|r| r.redeemed_at);
        match rules::redeem_in_place(token, request, prior) {
            Ok((decision, enrollment)) => {
                if let Decision::Consume { .. } = decision {
                    redemptions.push(Redemption {
                        device: request.device.clone(),
                        redeemed_at: request.now,
                    });
                }
                Outcome::Enrolled(enrollment)
            }
            Err(r) => Outcome::Rejected(r),
        }
    }

    fn revoke(&mut self, target: &RevokeTarget, revocation: &Revocation) -> Outcome {
        let revocation = Arc::new(revocation.clone());
        if let RevokeTarget::Token(id) = target {
            return match self.tokens.get_mut(id) {
                Some((token, _)) => Outcome::Count(u64::from(token.revoke(&revocation))),
                None => Outcome::Failed(Failure::NotFound(*id)),
            };
        }
        let count = self
            .tokens
            .values_mut()
            .filter(|(t, _)| target.matches(t))
            .map(|(t, _)| u64::from(t.revoke(&revocation)))
            .sum();
        Outcome::Count(count)
    }

    fn get(&self, id: TokenId) -> Outcome {
        Outcome::Found(self.tokens.get(&id).map(|(t, _)| t.clone()))
    }

    fn list(&self, query: &TokenQuery) -> Outcome {
        let mut tokens: Vec<Token> = self
            .tokens
            .values()
            .map(|(t, _)| t)
            .filter(|t| query.matches(t))
            .cloned()
            .collect();
        tokens.sort_by_key(PageCursor::after);
        Outcome::Listed(tokens)
    }

    fn redemptions(&self, id: TokenId) -> Outcome {
        match self.tokens.get(&id) {
            Some((_, redemptions)) => {
                let mut r = redemptions.clone();
                r.sort_by_key(|r| r.redeemed_at); // stable: ties keep redemption order
                Outcome::Redemptions(r)
            }
            None => Outcome::Failed(Failure::NotFound(id)),
        }
    }
}

/// Applies one operation sequence to a store and to the model side by side.
struct Harness<'s, S: ?Sized> {
    store: &'s S,
    model: Model,
    fx: Fixture,
    now: DateTime<Utc>,
    salt: [u8; 8],
    counter: u64,
    stored: Vec<TokenId>,
    batches: Vec<BatchId>,
}

impl<'s, S: TokenStore + ?Sized> Harness<'s, S> {
    fn new(store: &'s S) -> Self {
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&random_id().as_bytes()[..8]);
        Self {
            store,
            model: Model::default(),
            fx: Fixture::new(),
            now: t0() + TimeDelta::microseconds(123_456),
            salt,
            counter: 0,
            stored: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// Fresh ids: a random per-run salt and a counter, so runs never collide even on a
    /// shared store, and the sequence alone decides every outcome.
    fn next_bytes(&mut self) -> [u8; 16] {
        self.counter += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.salt);
        bytes[8..].copy_from_slice(&self.counter.to_be_bytes());
        bytes
    }

    fn unknown_id(&self) -> TokenId {
        let mut bytes = [0xff; 16];
        bytes[..8].copy_from_slice(&self.salt);
        TokenId::from_bytes(bytes)
    }

    fn pick(&self, pick: Pick) -> TokenId {
        match pick {
            Pick::Stored(n) if !self.stored.is_empty() => self.stored[n % self.stored.len()],
            _ => self.unknown_id(),
        }
    }

    fn build(&mut self, issue: &Issue, id: Option<TokenId>, batch: Option<BatchId>) -> Token {
        let now = self.now;
        let limit = match issue.limit {
            Limit::Once => UsageLimit::Once,
            Limit::Limited(n) => limited(n),
            Limit::Unlimited => UsageLimit::Unlimited,
        };
        let mut spec = TokenSpec::new(org(ORGS[issue.org]), group(GROUPS[issue.group]))
            .with_usage_limit(limit)
            .with_description(format!("model token {}", self.counter));
        if let Some(p) = issue.policy {
            spec = spec.with_policies([policy(POLICIES[p])]);
        }
        let mut opens = now;
        if let Some(offset) = issue.not_before {
            opens = now + secs(offset);
            spec = spec.with_not_before(opens);
        }
        spec = spec.with_expiry(match issue.lifetime {
            Some(l) => ExpirySpec::At(opens.max(now) + secs(l)),
            None => ExpirySpec::Never,
        });
        let id = id.unwrap_or_else(|| TokenId::from_bytes(self.next_bytes()));
        self.fx.issue_with(id, self.fx.active, spec, now, batch)
    }

    async fn list_all(&self, query: &TokenQuery) -> Outcome {
        let mut query = query.clone();
        let mut all = Vec::new();
        for _ in 0..=self.stored.len() + 1 {
            let page = match self.store.list(&query).await {
                Ok(page) => page,
                Err(e) => return Outcome::Failed(Failure::from(&e)),
            };
            if page.tokens.len() > query.page_size() {
                return Outcome::Failed(Failure::Other(format!(
                    "a page of {} tokens for a page size of {}",
                    page.tokens.len(),
                    query.page_size()
                )));
            }
            all.extend(page.tokens);
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Outcome::Listed(all),
            }
        }
        Outcome::Failed(Failure::Other("paging did not end".into()))
    }

    async fn redeem(
        &mut self,
        id: TokenId,
        device: &DeviceId,
        leeway: bool,
        wrong_key: bool,
    ) -> Result<(), String> {
        let key = if wrong_key {
            self.fx.other
        } else {
            self.fx.active
        };
        let request = RedeemRequest {
            token: self.fx.verified_with(key, id),
            device,
            now: self.now,
            leeway: if leeway {
                self::leeway(MODEL_LEEWAY)
            } else {
                Leeway::ZERO
            },
        };
        let got = redeem_outcome(self.store.redeem(&request).await);
        let want = self.model.redeem(&request);
        compare(got, want)
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Issue(issue) => {
                let token = self.build(issue, None, None);
                let got = outcome_of(self.store.insert(token.clone()).await, |()| Outcome::Done);
                let want = self.model.insert(token.clone());
                compare(got, want)?;
                self.stored.push(token.id());
            }
            Op::IssueBatch(issues, clash) => {
                let batch = BatchId::from_bytes(self.next_bytes());
                self.batches.push(batch);
                let mut tokens: Vec<Token> = issues
                    .iter()
                    .map(|i| self.build(i, None, Some(batch)))
                    .collect();
                let clash_id = match clash {
                    Clash::None => None,
                    Clash::Stored(n) if !self.stored.is_empty() => {
                        Some(self.stored[n % self.stored.len()])
                    }
                    Clash::Stored(_) => None,
                    Clash::Internal => Some(tokens[0].id()),
                };
                if let Some(id) = clash_id {
                    let copy = self.build(&issues[0], Some(id), Some(batch));
                    tokens.push(copy);
                }
                let got = outcome_of(self.store.insert_batch(tokens.clone()).await, |()| {
                    Outcome::Done
                });
                let want = self.model.insert_batch(tokens.clone());
                compare(got, want.clone())?;
                if want == Outcome::Done {
                    self.stored.extend(tokens.iter().map(Token::id));
                }
            }
            Op::InsertDuplicate(pick) => {
                let id = self.pick(*pick);
                let issue = Issue {
                    org: 1,
                    group: 0,
                    policy: None,
                    limit: Limit::Unlimited,
                    not_before: None,
                    lifetime: None,
                };
                let token = self.build(&issue, Some(id), None);
                let got = outcome_of(self.store.insert(token.clone()).await, |()| Outcome::Done);
                let want = self.model.insert(token);
                compare(got, want.clone())?;
                if want == Outcome::Done {
                    self.stored.push(id);
                }
            }
            Op::Redeem {
                token,
                device,
                leeway,
                wrong_key,
            } => {
                let id = self.pick(*token);
                self.redeem(id, &self::device(device), *leeway, *wrong_key)
                    .await?;
            }
            Op::RedeemMany {
                token,
                first,
                count,
            } => {
                let id = self.pick(*token);
                for d in u32::from(*first)..u32::from(*first) + u32::from(*count) {
                    self.redeem(id, &self::device(d), false, false)
                        .await
                        .map_err(|e| format!("device {d}: {e}"))?;
                }
            }
            Op::Revoke(target, reason) => {
                let target = match target {
                    Target::Token(pick) => RevokeTarget::Token(self.pick(*pick)),
                    Target::Group { org: o, group: g } => RevokeTarget::Group {
                        organization: org(ORGS[*o]),
                        group: group(GROUPS[*g]),
                    },
                    Target::Batch(Some(n)) if !self.batches.is_empty() => {
                        RevokeTarget::Batch(self.batches[n % self.batches.len()])
                    }
                    Target::Batch(_) => RevokeTarget::Batch(BatchId::from_bytes([0xee; 16])),
                };
                let rev = revocation(self.now, REASONS[*reason]);
                let got = outcome_of(self.store.revoke(&target, &rev).await, Outcome::Count);
                let want = self.model.revoke(&target, &rev);
                compare(got, want)?;
            }
            Op::Advance(seconds) => self.now += secs(*seconds),
            Op::Get(pick) => {
                let id = self.pick(*pick);
                let got = outcome_of(self.store.get(id).await, Outcome::Found);
                compare(got, self.model.get(id))?;
            }
            Op::List {
                org: o,
                group: g,
                policy: p,
                status,
                batch,
                leeway,
                page,
            } => {
                let mut query = TokenQuery::new(self.now).limit(*page);
                if let Some(o) = o {
                    query = query.organization(org(ORGS[*o]));
                }
                if let Some(g) = g {
                    query = query.group(group(GROUPS[*g]));
                }
                if let Some(p) = p {
                    query = query.policy(policy(POLICIES[*p]));
                }
                if let Some(s) = status {
                    query = query.status(*s);
                }
                if let (Some(n), false) = (batch, self.batches.is_empty()) {
                    query = query.batch(self.batches[n % self.batches.len()]);
                }
                if *leeway {
                    query = query.leeway(self::leeway(MODEL_LEEWAY));
                }
                let got = self.list_all(&query).await;
                compare(got, self.model.list(&query))?;
            }
            Op::Redemptions(pick) => {
                let id = self.pick(*pick);
                let got = outcome_of(self.store.redemptions(id).await, Outcome::Redemptions);
                compare(got, self.model.redemptions(id))?;
            }
        }
        Ok(())
    }

    async fn run(mut self, ops: &[Op]) -> Result<(), String> {
        for (i, op) in ops.iter().enumerate() {
            if let Err(mismatch) = self.step(op).await {
                return Err(format!(
                    "step {i} ({op:?}) at {}:\n{mismatch}",
                    self.now
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ));
            }
        }
        Ok(())
    }
}

fn compare(got: Outcome, want: Outcome) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("store: {got:?}\nmodel: {want:?}"))
    }
}

/// Checks a backend against the pure model with `cases` random operation sequences.
///
/// Each case creates a fresh store with `factory`, then applies a random sequence of up to
/// 100 operations (issue tokens and batches with random limits and windows, redeem from
/// several devices including retries and wrong keys, revoke by id, group and batch, move the
/// clock forward and sometimes back, get, list with filters and small pages, read
/// redemptions, insert duplicates) to the store and to a pure model built on
/// [`rules::redeem_in_place`]. Every result must be equal.
///
/// On a mismatch it panics with the shrunk, minimal operation sequence, the step and both
/// results, and proptest saves the case next to the calling file
/// (`<file>.proptest-regressions`, replayed first on later runs: commit it). The
/// `PROPTEST_CASES` environment variable overrides `cases`.
///
/// Call it from a plain `#[test]` (it runs its own multi-threaded tokio runtime); the store
/// ids are salted per case, but give each case a fresh store anyway.
///
/// ```
/// use onboarding_token::{MemoryStore, testing};
/// testing::check_against_model(|| async { MemoryStore::new() }, 8);
/// ```
#[track_caller]
pub fn check_against_model<S, F, Fut>(factory: F, cases: u32)
where
    S: TokenStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.source_file = Some(std::panic::Location::caller().file());
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the model test could not start a tokio runtime");
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op_strategy(), 1..100);
    let result = runner.run(&strategy, |ops| {
        runtime
            .block_on(async {
                let store = factory().await;
                Harness::new(&store).run(&ops).await
            })
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("the store disagrees with the model: {e}");
    }
}
