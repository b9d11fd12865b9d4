//! [`PgStore`]-specific behaviour: migrations under concurrency, table prefixes, exact
//! redemption with both strategies across several pools (like several server replicas),
//! batches, and rows that break the record's rules.
//!
//! Needs a server: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test
//! --features postgres --test postgres`. Every test works in a schema of its own, dropped
//! afterwards. Without `DATABASE_URL` the tests fail, saying how to set it.

mod support;

use std::sync::Arc;

use onboarding_token::sqlx::{self, Row};
use onboarding_token::store::postgres::RedeemStrategy;
use onboarding_token::store::{RevokeTarget, TokenQuery, TokenStore};
use onboarding_token::*;
use support::fixture::{Fixture, device, limited, t0};
use support::postgres::{create_schema, fresh_store, fresh_store_with, pool_in};
use support::races;

const STRATEGIES: [RedeemStrategy; 2] = [
    RedeemStrategy::ConditionalUpdate,
    RedeemStrategy::LockedTransaction,
];

/// Which store error a corrupt row must produce.
type ExpectedError = fn(&StoreError) -> bool;

/// `count` stores on separate pools in one fresh schema, like `count` server replicas.
async fn replicas(
    strategy: RedeemStrategy,
    count: usize,
) -> (support::postgres::TestStore, Vec<Arc<PgStore>>) {
    let first = fresh_store_with(strategy).await;
    let mut stores = vec![Arc::new(first.store.clone())];
    for _ in 1..count {
        let pool = pool_in(&first.guard.schema, 4).await;
        stores.push(Arc::new(PgStore::new(pool).with_redeem_strategy(strategy)));
    }
    (first, stores)
}

#[test]
fn postgres_without_database_url_fails_loudly() {
    // Run one of this binary's own tests without DATABASE_URL: it must fail, saying why.
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "postgres_migrate_is_idempotent_and_recorded",
            "--test-threads=1",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run the test binary");
    assert!(
        !output.status.success(),
        "the postgres tests must not pass without a server"
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("DATABASE_URL is not set")
            && text.contains("DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"),
        "the failure says how to set DATABASE_URL:\n{text}"
    );
}

async fn applied_versions(store: &PgStore) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {}schema_migrations ORDER BY version",
        store.table_prefix()
    )))
    .fetch_all(store.pool())
    .await
    .expect("read the migrations table")
}

#[tokio::test]
async fn postgres_migrate_is_idempotent_and_recorded() {
    let store = fresh_store().await; // migrated once
    store.store.migrate().await.expect("a second run");
    store.store.migrate().await.expect("a third run");
    assert_eq!(applied_versions(&store.store).await, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_migrations_from_several_replicas() {
    let schema = create_schema().await;
    let guard = support::postgres::SchemaGuard {
        schema: schema.clone(),
    };
    let mut handles = Vec::new();
    for _ in 0..8 {
        let pool = pool_in(&schema, 2).await;
        handles.push(tokio::spawn(async move {
            let store = PgStore::new(pool)
                .with_table_prefix("fleet_")
                .expect("prefix");
            store.migrate().await.map(|()| store)
        }));
    }
    let mut stores = Vec::new();
    for handle in handles {
        stores.push(
            handle
                .await
                .expect("task")
                .expect("every concurrent migrate succeeds"),
        );
    }
    assert_eq!(applied_versions(&stores[0]).await, vec![1], "applied once");
    let fx = Fixture::new();
    let token = fx.limited(UsageLimit::Once);
    stores[3].insert(token.clone()).await.expect("usable");
    assert_eq!(stores[5].get(token.id()).await.expect("get"), Some(token));
    for store in &stores {
        store.pool().close().await;
    }
    drop(guard);
}

#[tokio::test]
async fn postgres_connect_opens_a_pool_and_migrates() {
    let schema = create_schema().await;
    let guard = support::postgres::SchemaGuard {
        schema: schema.clone(),
    };
    let url = support::postgres::database_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let store = PgStore::connect(&url).await.expect("connect and migrate");
    assert_eq!(applied_versions(&store).await, vec![1]);
    let in_schema: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'onboarding%'",
    )
    .bind(&schema)
    .fetch_one(store.pool())
    .await
    .expect("count tables");
    assert_eq!(
        in_schema, 3,
        "tokens, redemptions, schema_migrations in the URL's schema"
    );
    store.pool().close().await;
    drop(guard);
}

#[tokio::test]
async fn postgres_refuses_a_schema_newer_than_the_library() {
    let store = fresh_store().await;
    sqlx::query("INSERT INTO onboarding_schema_migrations VALUES (99, 'from the future', 0)")
        .execute(store.store.pool())
        .await
        .expect("insert a future version");
    let err = store
        .store
        .migrate()
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
    let source = std::error::Error::source(&err)
        .expect("the cause is kept")
        .to_string();
    assert!(source.contains("version 99"), "{source}");
}

#[tokio::test]
async fn postgres_unmigrated_store_fails_with_a_backend_error_keeping_the_source() {
    let base = fresh_store().await;
    let store = base
        .store
        .clone()
        .with_table_prefix("never_migrated_")
        .expect("prefix");
    let fx = Fixture::new();
    let err = store
        .insert(fx.limited(UsageLimit::Once))
        .await
        .expect_err("no table");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "postgres",
                message: "inserting a token",
                ..
            }
        ),
        "{err:?}"
    );
    let source = std::error::Error::source(&err)
        .expect("driver error kept")
        .to_string();
    assert!(source.contains("never_migrated_tokens"), "{source}");
}

#[tokio::test]
async fn postgres_prefixes_keep_stores_apart_in_one_schema() {
    let a = fresh_store().await;
    let b = a
        .store
        .clone()
        .with_table_prefix("tenant_b_")
        .expect("prefix");
    b.migrate().await.expect("migrate b");
    let fx = Fixture::new();
    let token = fx.limited(UsageLimit::Once);
    a.insert(token.clone()).await.expect("insert into a");
    assert_eq!(
        b.get(token.id()).await.expect("get"),
        None,
        "b has its own tables"
    );
    b.insert(token.clone())
        .await
        .expect("the same id is free in b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_redeem_exact() {
    for strategy in STRATEGIES {
        let store = Arc::new(fresh_store_with(strategy).await);
        for limit in [UsageLimit::Once, limited(5), limited(100)] {
            races::redeemers_exact(std::slice::from_ref(&store), limit, 64).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_redeem_exact_across_replicas() {
    for strategy in STRATEGIES {
        let (_guard, stores) = replicas(strategy, 3).await;
        for limit in [UsageLimit::Once, limited(5), limited(100)] {
            races::redeemers_exact(&stores, limit, 64).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_same_device_is_idempotent() {
    for strategy in STRATEGIES {
        let (_guard, stores) = replicas(strategy, 2).await;
        races::same_device_idempotent(&stores, 64).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_revocation_races_redemptions() {
    for strategy in STRATEGIES {
        let (_guard, stores) = replicas(strategy, 2).await;
        races::revocation_races_redemptions(&stores, 64, 4).await;
    }
}

#[tokio::test]
async fn postgres_batch_of_10000_is_all_or_nothing() {
    let store = fresh_store().await;
    let fx = Fixture::new();
    let existing = fx.limited(UsageLimit::Once);
    store.insert(existing.clone()).await.expect("insert");
    let mut tokens: Vec<Token> = (0..9_999).map(|_| fx.limited(limited(2))).collect();
    tokens.push(existing.clone());
    let err = store
        .insert_batch(tokens.clone())
        .await
        .expect_err("the last id exists");
    assert!(
        matches!(err, StoreError::Duplicate(id) if id == existing.id()),
        "{err:?}"
    );
    for probe in [&tokens[0], &tokens[4_999], &tokens[9_998]] {
        assert_eq!(
            store.get(probe.id()).await.expect("get"),
            None,
            "nothing stored"
        );
    }
    let mut twice: Vec<Token> = (0..3).map(|_| fx.limited(UsageLimit::Once)).collect();
    twice.push(twice[1].clone());
    let err = store
        .insert_batch(twice.clone())
        .await
        .expect_err("an id twice");
    assert!(
        matches!(err, StoreError::Duplicate(id) if id == twice[1].id()),
        "{err:?}"
    );
    assert_eq!(store.get(twice[0].id()).await.expect("get"), None);

    tokens.pop();
    store
        .insert_batch(tokens.clone())
        .await
        .expect("a clean batch");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM onboarding_tokens")
        .fetch_one(store.store.pool())
        .await
        .expect("count");
    assert_eq!(count, 10_000, "9,999 new tokens and the existing one");
    assert_eq!(
        store.get(tokens[7_777].id()).await.expect("get"),
        Some(tokens[7_777].clone())
    );
}

/// The stored use count and number of redemption records of a token.
async fn usage(store: &PgStore, id: &[u8]) -> (i64, i64) {
    sqlx::query_as(
        "SELECT uses, (SELECT count(*) FROM onboarding_redemptions WHERE token_id = $1) \
         FROM onboarding_tokens WHERE id = $1",
    )
    .bind(id.to_vec())
    .fetch_one(store.pool())
    .await
    .expect("read the row back")
}

#[tokio::test]
async fn postgres_bad_rows_are_errors_not_panics() {
    let guarded = fresh_store().await;
    let store = &guarded.store;
    let fx = Fixture::new();
    // Let hand-written rows through the table's CHECK constraints.
    sqlx::raw_sql(
        "DO $$ DECLARE c record; BEGIN \
           FOR c IN SELECT conname FROM pg_constraint \
                    WHERE conrelid = 'onboarding_tokens'::regclass AND contype = 'c' LOOP \
             EXECUTE format('ALTER TABLE onboarding_tokens DROP CONSTRAINT %I', c.conname); \
           END LOOP; \
         END $$",
    )
    .execute(store.pool())
    .await
    .expect("drop the checks");
    let cases: [(&str, ExpectedError); 8] = [
        ("group_path = 'not a group'", |e| {
            matches!(e, StoreError::Invalid(_))
        }),
        ("policies = 'wifi,,vpn'", |e| {
            matches!(e, StoreError::Invalid(_))
        }),
        ("organization = ''", |e| matches!(e, StoreError::Invalid(_))),
        ("metadata = '{not json'", |e| {
            matches!(
                e,
                StoreError::Backend {
                    backend: "postgres",
                    ..
                }
            )
        }),
        ("created_at = 9223372036854775807", |e| {
            matches!(
                e,
                StoreError::Backend {
                    backend: "postgres",
                    ..
                }
            )
        }),
        ("not_before = expires_at + 1", |e| {
            matches!(e, StoreError::Invalid(_))
        }),
        ("uses = 7", |e| matches!(e, StoreError::Invalid(_))),
        ("description = '\\xff'::bytea", |e| {
            matches!(
                e,
                StoreError::Backend {
                    backend: "postgres",
                    ..
                }
            )
        }),
    ];
    for (i, (tweak, expected)) in cases.into_iter().enumerate() {
        let token = fx.limited(limited(3));
        store
            .insert(token.clone())
            .await
            .expect("insert a good row");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE onboarding_tokens SET {tweak} WHERE id = $1"
        )))
        .bind(token.id().as_bytes().to_vec())
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("case {i}: corrupt the row: {e}"));
        let err = store.get(token.id()).await.expect_err(tweak);
        assert!(expected(&err), "{tweak}: get gave {err:?}");
        let before = usage(store, token.id().as_bytes()).await;
        let err = store
            .redeem(&fx.request(&token, &device(1), t0()))
            .await
            .expect_err(tweak);
        assert!(
            matches!(err, RedeemError::Store(_)),
            "{tweak}: redeem gave {err:?}"
        );
        assert_eq!(
            usage(store, token.id().as_bytes()).await,
            before,
            "{tweak}: a failed redemption consumes nothing"
        );
        assert!(
            store.list(&TokenQuery::new(t0())).await.is_err(),
            "{tweak}: list fails"
        );
        sqlx::query("DELETE FROM onboarding_tokens WHERE id = $1")
            .bind(token.id().as_bytes().to_vec())
            .execute(store.pool())
            .await
            .expect("remove the bad row");
    }
    sqlx::query(
        "INSERT INTO onboarding_tokens (id, key_id, organization, group_path, policies, uses, \
         created_at, description) VALUES ('\\x0102', '\\x74657374', 'acme', 'fleet', '', 0, 0, '')",
    )
    .execute(store.pool())
    .await
    .expect("insert a short id");
    let err = store
        .list(&TokenQuery::new(t0()))
        .await
        .expect_err("short id");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn postgres_times_are_stored_as_utc_microseconds() {
    let store = fresh_store().await;
    let fx = Fixture::new();
    let now = t0() + chrono::TimeDelta::microseconds(123_456);
    let token = fx.token(
        TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("fleet").unwrap()),
        now,
    );
    store.insert(token.clone()).await.expect("insert");
    let row = sqlx::query("SELECT created_at, expires_at FROM onboarding_tokens")
        .fetch_one(store.store.pool())
        .await
        .expect("row");
    let created: i64 = row.get(0);
    let expires: i64 = row.get(1);
    assert_eq!(created, now.timestamp_micros());
    assert_eq!(expires, (now + Validity::DEFAULT_TTL).timestamp_micros());
    assert_eq!(store.get(token.id()).await.expect("get"), Some(token));
}

#[tokio::test]
async fn postgres_group_filter_is_not_a_prefix_or_like_match() {
    let store = fresh_store().await;
    let fx = Fixture::new();
    let mk = |group: &str| {
        fx.token(
            TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new(group).unwrap()),
            t0(),
        )
    };
    let (parent, child, sibling, underscore) = (mk("a_b"), mk("a_b/c"), mk("a_bc"), mk("axb"));
    for t in [&parent, &child, &sibling, &underscore] {
        store.insert(t.clone()).await.expect("insert");
    }
    let page = store
        .list(&TokenQuery::new(t0()).with_group(GroupId::new("a_b").unwrap()))
        .await
        .expect("list");
    let ids: std::collections::BTreeSet<_> = page.tokens.iter().map(Token::id).collect();
    assert_eq!(ids, [parent.id(), child.id()].into_iter().collect());
    let revoked = store
        .revoke(
            &RevokeTarget::Group {
                organization: OrgId::new("acme").unwrap(),
                group: GroupId::new("a_b").unwrap(),
            },
            &Revocation::new(t0(), "group").unwrap(),
        )
        .await
        .expect("revoke");
    assert_eq!(revoked, 2, "a_b and a_b/c, not a_bc or axb");
}

#[tokio::test]
async fn postgres_strategies_give_the_same_answers() {
    // Every rejection and replay path, once per strategy, from the same starting records.
    for strategy in STRATEGIES {
        let store = fresh_store_with(strategy).await;
        let fx = Fixture::new();
        let token = fx.limited(limited(1));
        store.insert(token.clone()).await.expect("insert");
        let first = store
            .redeem(&fx.request(&token, &device(1), t0()))
            .await
            .expect("first");
        assert!(!first.replay);
        let again = store
            .redeem(&fx.request(&token, &device(1), t0()))
            .await
            .expect("replay");
        assert!(
            again.replay && again.redeemed_at == t0() && again.uses == 1,
            "{strategy:?}"
        );
        let later = t0() + chrono::TimeDelta::seconds(1);
        let err = store
            .redeem(&fx.request(&token, &device(2), later))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RedeemError::Rejected(Rejection::Exhausted { limit: 1 })
            ),
            "{strategy:?}: {err:?}"
        );
        let expired_at = t0() + Validity::DEFAULT_TTL;
        let err = store
            .redeem(&fx.request(&token, &device(1), expired_at))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RedeemError::Rejected(Rejection::Expired { .. })),
            "{strategy:?}: expiry precedes replay: {err:?}"
        );
        store
            .revoke(
                &RevokeTarget::Token(token.id()),
                &Revocation::new(t0(), "x").unwrap(),
            )
            .await
            .expect("revoke");
        let err = store
            .redeem(&fx.request(&token, &device(1), t0()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RedeemError::Rejected(Rejection::Revoked { .. })),
            "{strategy:?}: {err:?}"
        );
    }
}
