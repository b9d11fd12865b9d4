//! Fresh, isolated SQL stores for the SQLite and PostgreSQL tests, cleaned up on drop.
#![allow(dead_code)]

use onboarding_token::rules::RedeemRequest;
use onboarding_token::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};
use onboarding_token::{
    Enrollment, RedeemError, Redemption, Revocation, StoreError, Token, TokenId,
};

/// A store and something that must live exactly as long as it (a temporary directory, a
/// schema to drop). Fields drop in order: the store (and its pool) first.
pub struct Guarded<S, G> {
    pub store: S,
    pub guard: G,
}

impl<S: TokenStore, G: Send + Sync> TokenStore for Guarded<S, G> {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.store.insert(token).await
    }
    async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.store.insert_batch(tokens).await
    }
    async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.store.get(id).await
    }
    async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        self.store.list(query).await
    }
    async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        self.store.redeem(request).await
    }
    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        self.store.revoke(target, revocation).await
    }
    async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        self.store.redemptions(id).await
    }
}

/// 16 random hex digits.
pub fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(feature = "sqlite")]
pub mod sqlite {
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
}

#[cfg(feature = "postgres")]
pub mod postgres {
    use super::{Guarded, random_suffix};
    use onboarding_token::PgStore;
    use onboarding_token::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
    use onboarding_token::sqlx::{self, Connection};
    use onboarding_token::store::postgres::RedeemStrategy;
    use std::str::FromStr;
    use std::sync::Once;

    /// `DATABASE_URL`, or a panic saying how to set it: the PostgreSQL tests never pass
    /// silently without a server.
    pub fn database_url() -> String {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "DATABASE_URL is not set: the postgres tests need a PostgreSQL server, e.g. \
                 DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --all-features"
            ),
        }
    }

    /// Drops the schema when the store is dropped.
    pub struct SchemaGuard {
        pub schema: String,
    }

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            let schema = self.schema.clone();
            // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for clean-up");
                runtime.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&database_url()).await {
                        // A connection the test left inside a transaction (its rollback waits
                        // for the runtime this drop is blocking) would hold locks on the
                        // schema's tables: end such sessions first.
                        let _ = sqlx::query(
                            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                             JOIN pg_class c ON c.oid = l.relation \
                             JOIN pg_namespace n ON n.oid = c.relnamespace \
                             WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                        )
                        .bind(&schema)
                        .execute(&mut conn)
                        .await;
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                        )))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }

    pub type TestStore = Guarded<PgStore, SchemaGuard>;

    /// Seconds since the Unix epoch.
    fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Drops test schemas left over (by killed runs) for more than an hour, once per binary.
    async fn sweep_stale_schemas(url: &str) {
        static ONCE: Once = Once::new();
        let mut first = false;
        ONCE.call_once(|| first = true);
        if !first {
            return;
        }
        let Ok(mut conn) = sqlx::PgConnection::connect(url).await else {
            return;
        };
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'obt\\_test\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let cutoff = unix_now().saturating_sub(3600);
        for name in names {
            let created = name
                .strip_prefix("obt_test_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<u64>().ok());
            if created.is_some_and(|t| t < cutoff) {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(&mut conn)
                .await;
            }
        }
        let _ = conn.close().await;
    }

    /// Creates a new schema `obt_test_<unix seconds>_<random>`; returns its name.
    pub async fn create_schema() -> String {
        let url = database_url();
        sweep_stale_schemas(&url).await;
        let schema = format!("obt_test_{}_{}", unix_now(), random_suffix());
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL ({url}): {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create a test schema");
        let _ = conn.close().await;
        schema
    }

    /// A pool of up to `connections` whose connections work in `schema`.
    pub async fn pool_in(schema: &str, connections: u32) -> PgPool {
        let url = database_url();
        let options = PgConnectOptions::from_str(&url)
            .expect("DATABASE_URL is a PostgreSQL URL")
            .options([("search_path", schema)]);
        PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL ({url}): {e}"))
    }

    /// A migrated store in a schema of its own (dropped with the store).
    pub async fn fresh_store() -> TestStore {
        fresh_store_with(RedeemStrategy::default()).await
    }

    /// [`fresh_store`] redeeming with [`RedeemStrategy::LockedTransaction`].
    pub async fn fresh_locked_store() -> TestStore {
        fresh_store_with(RedeemStrategy::LockedTransaction).await
    }

    /// [`fresh_store`] with a redemption strategy.
    pub async fn fresh_store_with(strategy: RedeemStrategy) -> TestStore {
        let schema = create_schema().await;
        let store = PgStore::new(pool_in(&schema, 4).await).with_redeem_strategy(strategy);
        store.migrate().await.expect("migrations apply");
        Guarded {
            store,
            guard: SchemaGuard { schema },
        }
    }
}

/// Building tokens and redemption requests the way the service does, with fixed keys.
pub mod fixture {
    use chrono::{DateTime, TimeZone, Utc};
    use onboarding_token::rules::{Leeway, RedeemRequest};
    use onboarding_token::*;

    pub struct Fixture {
        pub keyring: Keyring,
    }

    /// 2030-01-01T00:00:00Z: every test passes `now` explicitly.
    pub fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid date")
    }

    pub fn device(i: usize) -> DeviceId {
        DeviceId::new(format!("SN-{i:05}")).expect("a valid device id")
    }

    impl Fixture {
        pub fn new() -> Self {
            Self {
                keyring: Keyring::new(SigningKey::from_bytes(
                    KeyId::from_bytes(*b"test"),
                    &[7; 32],
                )),
            }
        }

        /// A record for `spec` issued at `now`.
        pub fn token(&self, spec: TokenSpec, now: DateTime<Utc>) -> Token {
            let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
            spec.into_token(
                TokenId::generate(&mut rng),
                self.keyring.active_key_id(),
                now,
                None,
            )
            .expect("a valid spec")
        }

        /// A token of `acme`/`fleet` with `limit`, valid from `t0()` for 7 days.
        pub fn limited(&self, limit: UsageLimit) -> Token {
            let spec = TokenSpec::new(
                OrgId::new("acme").expect("org"),
                GroupId::new("fleet").expect("group"),
            )
            .with_usage_limit(limit);
            self.token(spec, t0())
        }

        pub fn verified(&self, token: &Token) -> VerifiedToken {
            self.keyring
                .verify_str(self.keyring.sign(&token.id()).expose_secret())
                .expect("the fixture's own signature verifies")
        }

        pub fn request<'a>(
            &self,
            token: &Token,
            device: &'a DeviceId,
            now: DateTime<Utc>,
        ) -> RedeemRequest<'a> {
            RedeemRequest {
                token: self.verified(token),
                device,
                now,
                leeway: Leeway::ZERO,
            }
        }
    }
}

/// Races of concurrent redeemers and revokers, for any store (each backend's own tests
/// run them with its own pool set-ups).
pub mod races {
    use super::fixture::{Fixture, device, t0};
    use onboarding_token::store::{RevokeTarget, TokenStore};
    use onboarding_token::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::Barrier;

    /// `tasks` concurrent devices redeem one token with `limit`, spread over `stores` (each
    /// with its own pool, like separate server processes): exactly `min(limit, tasks)`
    /// succeed, the others are told `Exhausted`, and the store's count and records agree.
    pub async fn redeemers_exact<S: TokenStore + 'static>(
        stores: &[Arc<S>],
        limit: UsageLimit,
        tasks: usize,
    ) {
        let fx = Arc::new(Fixture::new());
        let token = fx.limited(limit);
        stores[0].insert(token.clone()).await.expect("insert");
        let barrier = Arc::new(Barrier::new(tasks));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (store, fx, token, barrier) = (
                    Arc::clone(&stores[i % stores.len()]),
                    Arc::clone(&fx),
                    token.clone(),
                    Arc::clone(&barrier),
                );
                tokio::spawn(async move {
                    let device = device(i);
                    barrier.wait().await;
                    let result = store.redeem(&fx.request(&token, &device, t0())).await;
                    (i, result)
                })
            })
            .collect();
        let mut won = BTreeSet::new();
        let mut uses_seen = BTreeSet::new();
        for handle in handles {
            let (i, result) = handle.await.expect("task");
            match result {
                Ok(enrollment) => {
                    assert!(!enrollment.replay, "a first redemption is not a replay");
                    assert!(
                        uses_seen.insert(enrollment.uses),
                        "use numbers are distinct"
                    );
                    won.insert(device(i));
                }
                Err(RedeemError::Rejected(Rejection::Exhausted { .. })) => {}
                Err(other) => panic!("device {i}: unexpected {other:?}"),
            }
        }
        let expected = limit.max_uses().map_or(tasks, |k| (k as usize).min(tasks));
        assert_eq!(
            won.len(),
            expected,
            "exactly min(limit, tasks) redeemers succeed"
        );
        assert_eq!(
            uses_seen,
            (1..=expected as u64).collect::<BTreeSet<_>>(),
            "the winners saw uses 1..=K"
        );
        let stored = stores[0]
            .get(token.id())
            .await
            .expect("get")
            .expect("present");
        assert_eq!(stored.uses(), expected as u64, "the stored use count");
        let records = stores[0]
            .redemptions(token.id())
            .await
            .expect("redemptions");
        assert_eq!(
            records
                .iter()
                .map(|r| r.device.clone())
                .collect::<BTreeSet<_>>(),
            won,
            "one record per winner"
        );
        assert_eq!(records.len(), expected);
    }

    /// `tasks` concurrent redemptions by one device of a 2-use token: one consumes, every
    /// other one is a replay, and a second device can still take the other use.
    pub async fn same_device_idempotent<S: TokenStore + 'static>(stores: &[Arc<S>], tasks: usize) {
        let fx = Arc::new(Fixture::new());
        let token = fx.limited(UsageLimit::limited(2).expect("2"));
        stores[0].insert(token.clone()).await.expect("insert");
        let barrier = Arc::new(Barrier::new(tasks));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (store, fx, token, barrier) = (
                    Arc::clone(&stores[i % stores.len()]),
                    Arc::clone(&fx),
                    token.clone(),
                    Arc::clone(&barrier),
                );
                tokio::spawn(async move {
                    let device = device(0);
                    barrier.wait().await;
                    store.redeem(&fx.request(&token, &device, t0())).await
                })
            })
            .collect();
        let mut fresh = 0;
        for handle in handles {
            let enrollment = handle
                .await
                .expect("task")
                .expect("the same device always succeeds");
            assert_eq!(enrollment.uses, 1, "replays consume nothing");
            fresh += usize::from(!enrollment.replay);
        }
        assert_eq!(fresh, 1, "exactly one redemption is not a replay");
        let other = stores[0]
            .redeem(&fx.request(&token, &device(1), t0()))
            .await
            .expect("the second use is still free");
        assert_eq!(other.uses, 2);
    }

    /// Redeemers race a revocation on an unlimited token: no redemption that starts after
    /// `revoke` returned succeeds, every success is recorded, and the count matches.
    pub async fn revocation_races_redemptions<S: TokenStore + 'static>(
        stores: &[Arc<S>],
        tasks: usize,
        per_task: usize,
    ) {
        let fx = Arc::new(Fixture::new());
        let token = fx.limited(UsageLimit::Unlimited);
        stores[0].insert(token.clone()).await.expect("insert");
        let revoked = Arc::new(AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(tasks + 1));
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let (store, fx, token, barrier, revoked) = (
                    Arc::clone(&stores[t % stores.len()]),
                    Arc::clone(&fx),
                    token.clone(),
                    Arc::clone(&barrier),
                    Arc::clone(&revoked),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    let mut wins = 0u64;
                    for k in 0..per_task {
                        let device = device(t * per_task + k);
                        let started_after_revoke = revoked.load(Ordering::SeqCst);
                        match store.redeem(&fx.request(&token, &device, t0())).await {
                            Ok(e) => {
                                assert!(
                                    !started_after_revoke,
                                    "a redemption started after the revocation returned succeeded"
                                );
                                assert!(!e.replay);
                                wins += 1;
                            }
                            Err(RedeemError::Rejected(Rejection::Revoked { .. })) => {}
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                    wins
                })
            })
            .collect();
        let revoker = {
            let (store, barrier, revoked) = (
                Arc::clone(&stores[0]),
                Arc::clone(&barrier),
                Arc::clone(&revoked),
            );
            let id = token.id();
            tokio::spawn(async move {
                barrier.wait().await;
                tokio::task::yield_now().await;
                let revocation = Revocation::new(t0(), "leaked").expect("reason");
                let n = store
                    .revoke(&RevokeTarget::Token(id), &revocation)
                    .await
                    .expect("revoke");
                revoked.store(true, Ordering::SeqCst);
                n
            })
        };
        let mut wins = 0;
        for handle in handles {
            wins += handle.await.expect("task");
        }
        assert_eq!(
            revoker.await.expect("revoker"),
            1,
            "the revocation took effect once"
        );
        let stored = stores[0]
            .get(token.id())
            .await
            .expect("get")
            .expect("present");
        assert!(stored.revocation().is_some());
        assert_eq!(
            stored.uses(),
            wins,
            "every success, and only those, counted"
        );
        assert_eq!(
            stores[0]
                .redemptions(token.id())
                .await
                .expect("redemptions")
                .len() as u64,
            wins
        );
        let late = stores[0]
            .redeem(&fx.request(&token, &device(usize::MAX / 2), t0()))
            .await;
        assert!(
            matches!(late, Err(RedeemError::Rejected(Rejection::Revoked { .. }))),
            "after the race: {late:?}"
        );
    }
}
