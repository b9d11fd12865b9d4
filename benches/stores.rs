//! The SQL stores: redemption latency and throughput, and 100,000-token batch inserts.
//!
//! Group `redeem` (one client, one redemption at a time, a fresh device each time on an
//! unlimited token): `sqlite_memory`, `sqlite_file`, and with `DATABASE_URL` set,
//! `postgres_conditional` and `postgres_locked` (the two [`RedeemStrategy`]s), and
//! `postgres_conditional_async_commit` (the first on connections with `synchronous_commit =
//! off`: the redemption without the commit's wait for the disk).
//! Group `redeem_16_clients`: 16 concurrent clients, each redemption a fresh device, on one
//! hot token (`*_hot`) or each on its own token (`*_spread`), reported per redemption.
//! Group `redeem` also has `memory`, `postgres_select_1` (one `SELECT 1` round trip on the
//! same pool: the floor of any statement) and `postgres_insert_1` (a one-row `INSERT`
//! committed on its own: the floor of any durable write, which waits for the WAL flush).
//! Group `issue`: one `insert` at a time: `memory`, `sqlite_memory`, `sqlite_file`,
//! `postgres_conditional`.
//! Group `batch_100k`: `insert_batch` of 100,000 tokens, `memory`, `sqlite_file` and
//! `postgres`.
//! Group `list_100k`: one filtered page (group subtree and status, 50 tokens) over 100,000
//! tokens: `memory`, `sqlite_file`, `postgres`.
//!
//! Run: `cargo bench --features sqlite,postgres --bench stores -- --warm-up-time 1
//! --measurement-time 5` (PostgreSQL benches are skipped, with a note, without
//! `DATABASE_URL`). Each PostgreSQL bench works in a schema of its own, dropped at the end.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use onboarding_token::rules::{Leeway, RedeemRequest};
use onboarding_token::store::TokenStore;
use onboarding_token::*;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

struct Fx {
    keyring: Keyring,
    device: AtomicUsize,
}

impl Fx {
    fn new() -> Self {
        Self {
            keyring: Keyring::new(SigningKey::from_bytes(
                KeyId::from_bytes(*b"bnch"),
                &[9; 32],
            )),
            device: AtomicUsize::new(0),
        }
    }

    fn token(&self, limit: UsageLimit) -> Token {
        let mut rng = SystemRng::default();
        TokenSpec::new(
            OrgId::new("acme").unwrap(),
            GroupId::new("emea/berlin").unwrap(),
        )
        .with_policies([
            PolicyId::new("wifi").unwrap(),
            PolicyId::new("vpn").unwrap(),
        ])
        .with_usage_limit(limit)
        .with_expiry(ExpirySpec::Never)
        .into_token(
            TokenId::generate(&mut rng),
            self.keyring.active_key_id(),
            chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
            None,
        )
        .expect("a valid spec")
    }

    fn verified(&self, token: &Token) -> VerifiedToken {
        self.keyring
            .verify_str(self.keyring.sign(&token.id()).expose_secret())
            .expect("verifies")
    }

    fn next_device(&self) -> DeviceId {
        let n = self.device.fetch_add(1, Ordering::Relaxed);
        DeviceId::new(format!("SN-{n:09}")).expect("device id")
    }
}

/// `iters` sequential redemptions of one unlimited token, each by a new device.
async fn redeem_sequential<S: TokenStore>(
    store: &S,
    fx: &Fx,
    token: &Token,
    iters: u64,
) -> Duration {
    let verified = fx.verified(token);
    let devices: Vec<DeviceId> = (0..iters).map(|_| fx.next_device()).collect();
    let start = Instant::now();
    for device in &devices {
        let request = RedeemRequest {
            token: verified,
            device,
            now: chrono::Utc::now(),
            leeway: Leeway::ZERO,
        };
        black_box(store.redeem(&request).await.expect("redeem"));
    }
    start.elapsed()
}

/// `iters` redemptions by 16 concurrent clients (`tokens` has 1 token, or 16).
async fn redeem_concurrent<S: TokenStore + 'static>(
    store: Arc<S>,
    fx: Arc<Fx>,
    tokens: &[Token],
    iters: u64,
) -> Duration {
    const CLIENTS: u64 = 16;
    let per_client = iters.div_ceil(CLIENTS);
    let start = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let token = tokens[c as usize % tokens.len()].clone();
            let (store, fx) = (Arc::clone(&store), Arc::clone(&fx));
            tokio::spawn(async move {
                let verified = fx.verified(&token);
                for _ in 0..per_client {
                    let device = fx.next_device();
                    let request = RedeemRequest {
                        token: verified,
                        device: &device,
                        now: chrono::Utc::now(),
                        leeway: Leeway::ZERO,
                    };
                    black_box(store.redeem(&request).await.expect("redeem"));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("client");
    }
    // Normalise to `iters` redemptions.
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_client * CLIENTS) as f64)
}

/// The stores under test, by bench name. PostgreSQL ones only with `DATABASE_URL`.
enum AnyStore {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

/// Runs `$body` with `$s` bound to the concrete store inside `$store`.
macro_rules! with_store {
    ($store:expr, |$s:ident| $body:expr) => {
        match $store {
            AnyStore::Memory($s) => $body,
            AnyStore::Sqlite($s) => $body,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($s) => $body,
        }
    };
}

/// Every store under test: memory, SQLite in memory and in a file, and PostgreSQL (the
/// default strategy, in `schema`) when `DATABASE_URL` is set.
fn all_stores(rt: &Runtime, dir: &std::path::Path, tag: &str) -> Vec<(&'static str, AnyStore)> {
    rt.block_on(async {
        vec![
            ("memory", AnyStore::Memory(MemoryStore::new())),
            (
                "sqlite_memory",
                AnyStore::Sqlite(SqliteStore::in_memory().await.expect("memory")),
            ),
            (
                "sqlite_file",
                AnyStore::Sqlite(
                    SqliteStore::open(dir.join(format!("{tag}.db")))
                        .await
                        .expect("file"),
                ),
            ),
        ]
    })
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use onboarding_token::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use onboarding_token::sqlx::{self, Connection};
    use onboarding_token::store::postgres::RedeemStrategy;
    use std::str::FromStr;

    pub fn url() -> Option<String> {
        let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
        if url.is_none() {
            eprintln!("note: DATABASE_URL is not set; skipping the PostgreSQL benches");
        }
        url
    }

    pub struct Schema {
        pub url: String,
        pub name: String,
    }

    impl Schema {
        pub async fn create(url: &str) -> Self {
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes).expect("random");
            let name = format!(
                "obt_bench_{}",
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                .execute(&mut conn)
                .await
                .expect("create schema");
            Self {
                url: url.to_owned(),
                name,
            }
        }

        pub async fn store(&self, strategy: RedeemStrategy) -> PgStore {
            self.store_with(strategy, &[]).await
        }

        /// A store on a pool of its own whose connections also set `settings` (run-time
        /// parameters, as `PgConnectOptions::options` takes them).
        pub async fn store_with(
            &self,
            strategy: RedeemStrategy,
            settings: &[(&str, &str)],
        ) -> PgStore {
            let options = PgConnectOptions::from_str(&self.url)
                .expect("url")
                .options([("search_path", self.name.as_str())])
                .options(settings.iter().copied());
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .connect_with(options)
                .await
                .expect("pool");
            let store = PgStore::new(pool).with_redeem_strategy(strategy);
            store.migrate().await.expect("migrate");
            store
        }

        pub async fn drop_schema(self) {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.name
            )))
            .execute(&mut conn)
            .await
            .expect("drop schema");
        }
    }
}

fn bench_redeem(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stores = all_stores(&rt, dir.path(), "redeem");
    #[cfg(feature = "postgres")]
    let schema = pg::url().map(|url| rt.block_on(pg::Schema::create(&url)));
    #[cfg(feature = "postgres")]
    if let Some(schema) = &schema {
        use onboarding_token::store::postgres::RedeemStrategy;
        rt.block_on(async {
            let conditional = schema.store(RedeemStrategy::ConditionalUpdate).await;
            let locked = conditional
                .clone()
                .with_redeem_strategy(RedeemStrategy::LockedTransaction);
            // The same statement on connections that do not wait for the WAL flush at
            // commit: what a redemption costs without the disk, and what an operator who
            // sets it on the pool gives up durability for (see `PgStore`'s docs).
            let no_flush_wait = schema
                .store_with(
                    RedeemStrategy::ConditionalUpdate,
                    &[("synchronous_commit", "off")],
                )
                .await;
            stores.push(("postgres_conditional", AnyStore::Postgres(conditional)));
            stores.push(("postgres_locked", AnyStore::Postgres(locked)));
            stores.push((
                "postgres_conditional_async_commit",
                AnyStore::Postgres(no_flush_wait),
            ));
        });
    }
    let fx = Arc::new(Fx::new());

    let mut group = c.benchmark_group("redeem");
    for (name, store) in &stores {
        let token = fx.token(UsageLimit::Unlimited);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    with_store!(store, |s| {
                        s.insert(token.clone()).await.ok();
                        redeem_sequential(s, &fx, &token, iters).await
                    })
                })
            })
        });
    }
    // The floor of a PostgreSQL redemption: one `SELECT 1` round trip on the same pool.
    #[cfg(feature = "postgres")]
    if let Some((_, AnyStore::Postgres(store))) = stores
        .iter()
        .find(|(_, s)| matches!(s, AnyStore::Postgres(_)))
    {
        let pool = store.pool().clone();
        // The floor of any durable write: a one-row INSERT committed on its own (the WAL
        // flush a redemption's commit waits for as well).
        rt.block_on(
            onboarding_token::sqlx::query("CREATE TABLE bench_floor (n BIGINT NOT NULL)")
                .execute(&pool),
        )
        .expect("floor table");
        group.bench_function(BenchmarkId::from_parameter("postgres_insert_1"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for n in 0..iters {
                        onboarding_token::sqlx::query("INSERT INTO bench_floor (n) VALUES ($1)")
                            .bind(n as i64)
                            .execute(&pool)
                            .await
                            .expect("insert");
                    }
                    start.elapsed()
                })
            })
        });
        group.bench_function(BenchmarkId::from_parameter("postgres_select_1"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let row: (i32,) = onboarding_token::sqlx::query_as("SELECT 1")
                            .fetch_one(&pool)
                            .await
                            .expect("select 1");
                        black_box(row);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();

    // One token at a time, built before the clock starts.
    let mut group = c.benchmark_group("issue");
    for (name, store) in &stores {
        // The insert is the same statement on every PostgreSQL pool.
        if name.ends_with("_locked") || name.ends_with("_async_commit") {
            continue;
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let tokens: Vec<Token> = (0..iters).map(|_| fx.token(UsageLimit::Once)).collect();
                rt.block_on(async {
                    with_store!(store, |s| {
                        let start = Instant::now();
                        for token in tokens {
                            s.insert(token).await.expect("insert");
                        }
                        start.elapsed()
                    })
                })
            })
        });
    }
    group.finish();

    // The memory store's concurrency is measured by `hot_path`'s `threads` group.
    let mut group = c.benchmark_group("redeem_16_clients");
    for (name, store) in &stores {
        if matches!(store, AnyStore::Memory(_)) || name.ends_with("_async_commit") {
            continue;
        }
        for (shape, count) in [("hot", 1), ("spread", 16)] {
            let tokens: Vec<Token> = (0..count)
                .map(|_| fx.token(UsageLimit::Unlimited))
                .collect();
            group.bench_function(
                BenchmarkId::from_parameter(format!("{name}_{shape}")),
                |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            match store {
                                AnyStore::Memory(_) => unreachable!("skipped above"),
                                AnyStore::Sqlite(s) => {
                                    s.insert_batch(tokens.clone()).await.ok();
                                    redeem_concurrent(
                                        Arc::new(s.clone()),
                                        Arc::clone(&fx),
                                        &tokens,
                                        iters,
                                    )
                                    .await
                                }
                                #[cfg(feature = "postgres")]
                                AnyStore::Postgres(s) => {
                                    s.insert_batch(tokens.clone()).await.ok();
                                    redeem_concurrent(
                                        Arc::new(s.clone()),
                                        Arc::clone(&fx),
                                        &tokens,
                                        iters,
                                    )
                                    .await
                                }
                            }
                        })
                    })
                },
            );
        }
    }
    group.finish();
    stores.clear();
    #[cfg(feature = "postgres")]
    if let Some(schema) = schema {
        rt.block_on(schema.drop_schema());
    }
}

fn bench_batch(c: &mut Criterion) {
    const N: usize = 100_000;
    let rt = runtime();
    let fx = Fx::new();
    let batches = |iters: u64| -> Vec<Vec<Token>> {
        (0..iters)
            .map(|_| {
                let batch = BatchId::generate(&mut SystemRng::default());
                let template = fx.token(UsageLimit::Once);
                (0..N)
                    .map(|_| {
                        let mut parts = template.clone().into_parts();
                        parts.id = TokenId::generate(&mut SystemRng::default());
                        parts.batch = Some(batch);
                        Token::from_parts(parts).expect("valid")
                    })
                    .collect()
            })
            .collect()
    };
    let mut group = c.benchmark_group("batch_100k");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("memory"), |b| {
        b.iter_custom(|iters| {
            let work: Vec<_> = batches(iters)
                .into_iter()
                .map(|batch| (MemoryStore::new(), batch))
                .collect();
            let start = Instant::now();
            for (store, batch) in &work {
                store.insert_batch_sync(batch.clone()).expect("batch");
            }
            let elapsed = start.elapsed();
            drop(work);
            elapsed
        })
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = rt
        .block_on(SqliteStore::open(dir.path().join("batch.db")))
        .expect("open");
    group.bench_function(BenchmarkId::from_parameter("sqlite_file"), |b| {
        b.iter_custom(|iters| {
            let batches = batches(iters);
            rt.block_on(async {
                let start = Instant::now();
                for batch in batches {
                    sqlite.insert_batch(batch).await.expect("batch");
                }
                start.elapsed()
            })
        })
    });
    #[cfg(feature = "postgres")]
    if let Some(url) = pg::url() {
        use onboarding_token::store::postgres::RedeemStrategy;
        let schema = rt.block_on(pg::Schema::create(&url));
        let store = rt.block_on(schema.store(RedeemStrategy::default()));
        group.bench_function(BenchmarkId::from_parameter("postgres"), |b| {
            b.iter_custom(|iters| {
                let batches = batches(iters);
                rt.block_on(async {
                    let start = Instant::now();
                    for batch in batches {
                        store.insert_batch(batch).await.expect("batch");
                    }
                    start.elapsed()
                })
            })
        });
        drop(store);
        rt.block_on(schema.drop_schema());
    }
    group.finish();
}

/// 100,000 tokens over 20 groups in two regions, a quarter revoked, some redeemed; one
/// page (50) of the active tokens in one region's subtree.
fn bench_list(c: &mut Criterion) {
    const N: usize = 100_000;
    let rt = runtime();
    let fx = Fx::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let tokens: Vec<Token> = (0..N)
        .map(|i| {
            let region = if i % 2 == 0 { "emea" } else { "amer" };
            let mut parts = fx.token(UsageLimit::Once).into_parts();
            parts.group = GroupId::new(format!("{region}/site-{}", i % 10)).expect("group");
            if i % 4 == 3 {
                parts.revocation = Some(Revocation::new(now, "lost").expect("reason"));
            }
            if i % 7 == 0 {
                parts.uses = 1;
            }
            Token::from_parts(parts).expect("valid")
        })
        .collect();
    let mut stores = all_stores(&rt, dir.path(), "list");
    stores.retain(|(name, _)| *name != "sqlite_memory");
    #[cfg(feature = "postgres")]
    let schema = pg::url().map(|url| rt.block_on(pg::Schema::create(&url)));
    #[cfg(feature = "postgres")]
    if let Some(schema) = &schema {
        let store = rt.block_on(schema.store(Default::default()));
        stores.push(("postgres", AnyStore::Postgres(store)));
    }
    let query = TokenQuery::new(now)
        .with_group(GroupId::new("emea").expect("group"))
        .with_status(Status::Active)
        .with_limit(50);
    let mut group = c.benchmark_group("list_100k");
    for (name, store) in &stores {
        rt.block_on(async {
            with_store!(store, |s| s
                .insert_batch(tokens.clone())
                .await
                .expect("fill"))
        });
        // PostgreSQL plans from table statistics, which autovacuum gathers within a minute
        // of a large insert; without them it scans and sorts (about 40 ms here).
        #[cfg(feature = "postgres")]
        if let AnyStore::Postgres(s) = store {
            let analyze = format!("ANALYZE {}tokens", s.table_prefix());
            rt.block_on(
                onboarding_token::sqlx::query(onboarding_token::sqlx::AssertSqlSafe(analyze))
                    .execute(s.pool()),
            )
            .expect("analyze");
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    with_store!(store, |s| {
                        let page = s.list(black_box(&query)).await.expect("list");
                        assert_eq!(page.tokens.len(), 50);
                        page
                    })
                })
            })
        });
    }
    group.finish();
    stores.clear();
    #[cfg(feature = "postgres")]
    if let Some(schema) = schema {
        rt.block_on(schema.drop_schema());
    }
}

criterion_group!(benches, bench_redeem, bench_batch, bench_list);
criterion_main!(benches);
