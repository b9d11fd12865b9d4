//! Races on PostgreSQL: two pools in a schema of their own.

use super::*;
use onboarding_token::store::postgres::RedeemStrategy;
use support::postgres::{SchemaGuard, create_schema, pool_in};

/// Two stores on separate pools of 8 in a fresh schema (dropped with the guard).
async fn two_pools(strategy: RedeemStrategy) -> (SchemaGuard, Vec<Arc<Service<PgStore>>>) {
    let schema = create_schema().await;
    let guard = SchemaGuard {
        schema: schema.clone(),
    };
    let first = PgStore::new(pool_in(&schema, 8).await).with_redeem_strategy(strategy);
    first.migrate().await.unwrap();
    let second = PgStore::new(pool_in(&schema, 8).await).with_redeem_strategy(strategy);
    (guard, services(vec![first, second]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_postgres_exact_counts() {
    let (_guard, services) = two_pools(RedeemStrategy::default()).await;
    all_exact_counts(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_postgres_locked_transaction_exact_counts() {
    let (_guard, services) = two_pools(RedeemStrategy::LockedTransaction).await;
    all_exact_counts(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_postgres_revocation_race() {
    for strategy in [
        RedeemStrategy::ConditionalUpdate,
        RedeemStrategy::LockedTransaction,
    ] {
        let (_guard, services) = two_pools(strategy).await;
        revocation_race(&services, 6).await;
    }
}
