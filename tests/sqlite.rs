//! [`SqliteStore`]-specific behaviour: migrations, table prefixes, persistence, exact
//! redemption under concurrency on a file shared by several pools, batches, and rows that
//! break the record's rules. Run with `cargo test --features sqlite --test sqlite`.

mod support;

use std::sync::Arc;

use onboarding_token::sqlx::{self, Row};
use onboarding_token::store::{RevokeTarget, TokenQuery, TokenStore};
use onboarding_token::*;
use proptest::prelude::*;
use support::fixture::{Fixture, device, limited, t0};
use support::races;
use support::sqlite::{file_store, memory_store, pool_on};

/// Which store error a corrupt row must produce.
type ExpectedError = fn(&StoreError) -> bool;

/// The versions recorded in `<prefix>schema_migrations`.
async fn applied_versions(store: &SqliteStore) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {}schema_migrations ORDER BY version",
        store.table_prefix()
    )))
    .fetch_all(store.pool())
    .await
    .expect("read the migrations table")
}

#[tokio::test]
async fn sqlite_migrate_is_idempotent_and_recorded() {
    let store = memory_store().await; // migrated once
    store.migrate().await.expect("a second run");
    store.migrate().await.expect("a third run");
    assert_eq!(
        applied_versions(&store).await,
        vec![1],
        "version 1, recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_migrations_from_several_pools() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tokens.db");
    // Create the file (with the default prefix's tables) first.
    SqliteStore::open(&path)
        .await
        .expect("create")
        .pool()
        .close()
        .await;
    let mut handles = Vec::new();
    for _ in 0..6 {
        let pool = pool_on(&path, 2).await;
        handles.push(tokio::spawn(async move {
            let store = SqliteStore::new(pool)
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
    assert_eq!(applied_versions(&stores[0]).await, vec![1]);
}

#[tokio::test]
async fn sqlite_refuses_a_schema_newer_than_the_library() {
    let store = memory_store().await;
    sqlx::query("INSERT INTO onboarding_schema_migrations VALUES (99, 'from the future', 0)")
        .execute(store.pool())
        .await
        .expect("insert a future version");
    let err = store
        .migrate()
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "sqlite",
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
async fn sqlite_unmigrated_store_fails_with_a_backend_error_keeping_the_source() {
    let store = memory_store()
        .await
        .with_table_prefix("never_migrated_")
        .expect("prefix");
    let fx = Fixture::new();
    let err = store
        .insert(fx.limited(UsageLimit::Once))
        .await
        .expect_err("no table");
    match &err {
        StoreError::Backend {
            backend, message, ..
        } => {
            assert_eq!(*backend, "sqlite");
            assert_eq!(*message, "inserting a token");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    let source = std::error::Error::source(&err)
        .expect("driver error kept")
        .to_string();
    assert!(source.contains("never_migrated_tokens"), "{source}");
}

#[test]
fn sqlite_table_prefix_is_validated() {
    for bad in [
        "Onboarding_",
        "a-b",
        "x; DROP TABLE y",
        "é",
        "a b",
        &"a".repeat(33),
    ] {
        let result = SqliteStore::new(lazy_pool()).with_table_prefix(bad);
        assert!(result.is_err(), "{bad:?} must be rejected");
    }
    for good in ["", "mdm_", "t0_", &"a".repeat(32)] {
        let store = SqliteStore::new(lazy_pool())
            .with_table_prefix(good)
            .expect("accepted");
        assert_eq!(store.table_prefix(), good);
    }
    assert_eq!(SqliteStore::new(lazy_pool()).table_prefix(), "onboarding_");
}

/// A pool that connects on first use (never, in the prefix tests). sqlx needs a runtime
/// context even for that: one shared runtime, entered per thread.
fn lazy_pool() -> sqlx::SqlitePool {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> =
        std::sync::LazyLock::new(|| tokio::runtime::Runtime::new().expect("a runtime"));
    let _context = RUNTIME.enter();
    sqlx::sqlite::SqlitePoolOptions::new()
        .connect_lazy("sqlite::memory:")
        .expect("a lazy pool")
}

proptest! {
    #[test]
    fn sqlite_table_prefix_accepts_exactly_its_grammar(prefix in "[a-z0-9_]{0,32}|.{0,40}") {
        let valid = prefix.len() <= 32
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let store = SqliteStore::new(lazy_pool()).with_table_prefix(&prefix);
        prop_assert_eq!(store.is_ok(), valid, "{:?}", prefix);
    }
}

#[tokio::test]
async fn sqlite_prefixes_keep_stores_apart_in_one_database() {
    let a = memory_store().await;
    let b = SqliteStore::new(a.pool().clone())
        .with_table_prefix("tenant_b_")
        .expect("prefix");
    b.migrate().await.expect("migrate b");
    let fx = Fixture::new();
    let token = fx.limited(UsageLimit::Once);
    a.insert(token.clone()).await.expect("insert into a");
    assert_eq!(a.get(token.id()).await.expect("get"), Some(token.clone()));
    assert_eq!(
        b.get(token.id()).await.expect("get"),
        None,
        "b has its own tables"
    );
    b.insert(token.clone())
        .await
        .expect("the same id is free in b");
}

#[tokio::test]
async fn sqlite_file_persists_across_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested.db");
    let fx = Fixture::new();
    let token = fx.limited(limited(3));
    {
        let store = SqliteStore::open(&path).await.expect("create");
        store.insert(token.clone()).await.expect("insert");
        store
            .redeem(&fx.request(&token, &device(1), t0()))
            .await
            .expect("redeem");
        store.pool().close().await;
    }
    let store = SqliteStore::open(&path)
        .await
        .expect("reopen (migrate is a no-op)");
    let stored = store
        .get(token.id())
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(stored.uses(), 1);
    let records = store.redemptions(token.id()).await.expect("redemptions");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].device, device(1));
    assert_eq!(records[0].redeemed_at, t0());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_concurrent_redeem_exact() {
    let store = Arc::new(file_store().await);
    for limit in [UsageLimit::Once, limited(5), limited(100)] {
        races::redeemers_exact(std::slice::from_ref(&store), limit, 64).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_concurrent_redeem_exact_across_pools() {
    // Three pools on one file: like three processes sharing the database.
    let first = file_store().await;
    let path = first.guard.path().join("tokens.db");
    let mut stores = vec![Arc::new(first.store.clone())];
    for _ in 0..2 {
        stores.push(Arc::new(SqliteStore::new(pool_on(&path, 4).await)));
    }
    for limit in [UsageLimit::Once, limited(5), limited(100)] {
        races::redeemers_exact(&stores, limit, 64).await;
    }
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory_concurrent_redeem_exact() {
    let store = Arc::new(memory_store().await);
    for limit in [UsageLimit::Once, limited(5), limited(100)] {
        races::redeemers_exact(std::slice::from_ref(&store), limit, 64).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_concurrent_same_device_is_idempotent() {
    let first = file_store().await;
    let path = first.guard.path().join("tokens.db");
    let stores = vec![
        Arc::new(first.store.clone()),
        Arc::new(SqliteStore::new(pool_on(&path, 4).await)),
    ];
    races::same_device_idempotent(&stores, 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_revocation_races_redemptions() {
    let first = file_store().await;
    let path = first.guard.path().join("tokens.db");
    let stores = vec![
        Arc::new(first.store.clone()),
        Arc::new(SqliteStore::new(pool_on(&path, 4).await)),
    ];
    races::revocation_races_redemptions(&stores, 64, 4).await;
}

#[tokio::test]
async fn sqlite_batch_of_10000_is_all_or_nothing() {
    let store = file_store().await;
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
    // An id twice inside one batch.
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
async fn usage(store: &SqliteStore, id: &[u8]) -> (i64, i64) {
    sqlx::query_as(
        "SELECT uses, (SELECT count(*) FROM onboarding_redemptions WHERE token_id = $1) \
         FROM onboarding_tokens WHERE id = $1",
    )
    .bind(id.to_vec())
    .fetch_one(store.pool())
    .await
    .expect("read the row back")
}

/// Inserts a row by hand, bypassing the store (as a buggy migration or manual edit would).
async fn insert_raw(store: &SqliteStore, id: [u8; 16], tweak: &str) {
    let fx = Fixture::new();
    let token = fx.limited(limited(3));
    store
        .insert(token.clone())
        .await
        .expect("insert a good row");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE onboarding_tokens SET id = $1, {tweak} WHERE id = $2"
    )))
    .bind(id.to_vec())
    .bind(token.id().as_bytes().to_vec())
    .execute(store.pool())
    .await
    .expect("corrupt the row");
}

#[tokio::test]
async fn sqlite_bad_rows_are_errors_not_panics() {
    let store = memory_store().await;
    let fx = Fixture::new();
    let cases: [(&str, ExpectedError); 6] = [
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
                    backend: "sqlite",
                    ..
                }
            )
        }),
        ("created_at = 9223372036854775807", |e| {
            matches!(
                e,
                StoreError::Backend {
                    backend: "sqlite",
                    ..
                }
            )
        }),
        ("not_before = expires_at + 1", |e| {
            matches!(e, StoreError::Invalid(_))
        }),
    ];
    for (i, (tweak, expected)) in cases.into_iter().enumerate() {
        let id = [i as u8 + 1; 16];
        insert_raw(&store, id, tweak).await;
        let id = TokenId::from_bytes(id);
        let err = store.get(id).await.expect_err(tweak);
        assert!(expected(&err), "{tweak}: get gave {err:?}");
        let fake = fx.token(
            TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("fleet").unwrap()),
            t0(),
        );
        // A request for the corrupt id: the store fails, it does not panic or consume.
        let mut parts = fake.into_parts();
        parts.id = id;
        let probe = Token::from_parts(parts).expect("probe");
        let before = usage(&store, id.as_bytes()).await;
        let err = store
            .redeem(&fx.request(&probe, &device(1), t0()))
            .await
            .expect_err(tweak);
        assert!(
            matches!(err, RedeemError::Store(_)),
            "{tweak}: redeem gave {err:?}"
        );
        assert_eq!(
            usage(&store, id.as_bytes()).await,
            before,
            "{tweak}: a failed redemption consumes nothing"
        );
        assert!(
            store.list(&TokenQuery::new(t0())).await.is_err(),
            "{tweak}: list fails"
        );
        sqlx::query("DELETE FROM onboarding_tokens WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .execute(store.pool())
            .await
            .expect("remove the bad row");
    }
    // An id of the wrong length, written with the CHECK constraints off.
    let mut conn = store.pool().acquire().await.expect("conn");
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&mut *conn)
        .await
        .expect("pragma");
    sqlx::query(
        "INSERT INTO onboarding_tokens (id, key_id, organization, group_path, policies, uses, \
         created_at, description) VALUES (X'0102', X'74657374', 'acme', 'fleet', '', 0, 0, '')",
    )
    .execute(&mut *conn)
    .await
    .expect("insert a short id");
    sqlx::query("PRAGMA ignore_check_constraints = OFF")
        .execute(&mut *conn)
        .await
        .expect("pragma");
    drop(conn);
    let err = store
        .list(&TokenQuery::new(t0()))
        .await
        .expect_err("short id");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "sqlite",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn sqlite_times_are_stored_as_utc_microseconds() {
    let store = memory_store().await;
    let fx = Fixture::new();
    let now = t0() + chrono::TimeDelta::microseconds(123_456);
    let token = fx.token(
        TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("fleet").unwrap()),
        now,
    );
    store.insert(token.clone()).await.expect("insert");
    let row = sqlx::query("SELECT created_at, expires_at FROM onboarding_tokens")
        .fetch_one(store.pool())
        .await
        .expect("row");
    let created: i64 = row.get(0);
    let expires: i64 = row.get(1);
    assert_eq!(created, now.timestamp_micros());
    assert_eq!(expires, (now + Validity::DEFAULT_TTL).timestamp_micros());
    assert_eq!(store.get(token.id()).await.expect("get"), Some(token));
}

#[tokio::test]
async fn sqlite_group_filter_is_not_a_prefix_or_like_match() {
    let store = memory_store().await;
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
