//! Concurrent redeemers on a multi-threaded runtime: exact use counts, idempotent replays,
//! and revocation racing redemption.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::core::error::{RedeemError, Rejection};
use crate::core::name::DeviceId;
use crate::core::rules::Leeway;
use crate::core::token::UsageLimit;
use crate::store::{RevokeTarget, TokenStore};
use crate::testing::fixtures::{
    Fixture, device, enrolled, limited, must_get, must_insert, must_redemptions, must_revoke,
    redeem, rejected, revocation, spec, t0,
};

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
