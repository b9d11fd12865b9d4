//! Races of concurrent redeemers and revokers, for any store (each backend's own tests
//! run them with its own pool set-ups).

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
