//! Fresh PostgreSQL stores, each in a schema of its own that is dropped with the store;
//! needs `DATABASE_URL`.

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
