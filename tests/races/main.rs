//! Concurrency on every backend, through the service: 64 tasks redeeming tokens with limits
//! 1, 5 and 100, from distinct and from repeated devices, give exact counts; and a
//! revocation racing redemptions lets nothing succeed once it has committed.
//!
//! Backends: `MemoryStore`; SQLite (a file, two stores on separate multi-connection pools,
//! feature `sqlite`); PostgreSQL (two stores on separate pools in a schema of their own,
//! feature `postgres`, needs `DATABASE_URL`, e.g.
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --all-features --test
//! races`; without it those tests fail saying so).
//!
//! Order is observed, never forced: each task takes numbers from one atomic sequence when
//! it starts and when it returns, and the revoker when it starts and returns. No sleeps.

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use onboarding_token::store::RevokeTarget;
use onboarding_token::*;
use support::fixture::{acme as org, keyring, t0};
use tokio::sync::{Barrier, Notify};

const TASKS: usize = 64;

type Service<S> = Onboarding<S, ManualClock>;

/// One service per store (like one server replica per pool), all on one clock and key.
fn services<S: TokenStore>(stores: Vec<S>) -> Vec<Arc<Service<S>>> {
    let clock = ManualClock::new(t0());
    stores
        .into_iter()
        .map(|s| {
            let service = Onboarding::new(keyring(*b"race", [9; 32]), s);
            Arc::new(service.with_clock(clock.clone()))
        })
        .collect()
}

/// Which device each task enrolls.
#[derive(Debug, Clone, Copy)]
enum Devices {
    /// Every task its own device.
    Distinct,
    /// `n` devices, each used by several tasks (retries, double taps).
    Repeated(usize),
}

impl Devices {
    fn device(self, task: usize) -> DeviceId {
        let n = match self {
            Devices::Distinct => task,
            Devices::Repeated(n) => task % n,
        };
        DeviceId::new(format!("SN-{n:03}")).unwrap()
    }
}

/// 64 concurrent redemptions of one token with `limit`, spread over the services: exactly
/// `min(limit, distinct devices)` devices enroll, each consuming one use; every other task
/// of a winning device is a replay, every task of a losing device is told `Exhausted`; the
/// store's count and redemption records agree.
async fn exact_counts<S: TokenStore + 'static>(
    services: &[Arc<Service<S>>],
    limit: UsageLimit,
    devices: Devices,
) {
    let spec = TokenSpec::new(org(), GroupId::new("fleet").unwrap()).with_usage_limit(limit);
    let issued = services[0].issue(spec).await.unwrap();
    let text = Arc::new(issued.secret.expose_secret().to_owned());
    let barrier = Arc::new(Barrier::new(TASKS));
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let service = Arc::clone(&services[i % services.len()]);
            let (text, barrier) = (Arc::clone(&text), Arc::clone(&barrier));
            let device = devices.device(i);
            tokio::spawn(async move {
                barrier.wait().await;
                let result = service.redeem(&text, &device).await;
                (device, result)
            })
        })
        .collect();
    let mut by_device: BTreeMap<DeviceId, Vec<Result<Enrollment, RedeemError>>> = BTreeMap::new();
    for h in handles {
        let (device, result) = h.await.unwrap();
        by_device.entry(device).or_default().push(result);
    }
    let distinct = by_device.len();
    let expected = limit
        .max_uses()
        .map_or(distinct, |k| (k as usize).min(distinct));
    let mut winners = BTreeSet::new();
    let mut uses_seen = BTreeSet::new();
    for (device, results) in &by_device {
        let firsts: Vec<&Enrollment> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|e| !e.replay)
            .collect();
        match firsts.len() {
            1 => {
                // A winning device: one consuming redemption, the rest replays of it.
                assert!(uses_seen.insert(firsts[0].uses), "distinct use numbers");
                for r in results {
                    let e = r
                        .as_ref()
                        .unwrap_or_else(|e| panic!("{device}: {e:?} after winning"));
                    assert_eq!(e.redeemed_at, firsts[0].redeemed_at);
                    assert_eq!(e.token_id, issued.token.id());
                }
                winners.insert(device.clone());
            }
            0 => {
                // A losing device: every attempt told the token is exhausted.
                for r in results {
                    match r {
                        Err(RedeemError::Rejected(Rejection::Exhausted { .. })) => {}
                        other => panic!("{device}: expected exhausted, got {other:?}"),
                    }
                }
            }
            n => panic!("{device} consumed {n} uses"),
        }
    }
    assert_eq!(
        winners.len(),
        expected,
        "{limit:?} {devices:?}: exactly min(limit, devices) enroll"
    );
    assert_eq!(uses_seen, (1..=expected as u64).collect::<BTreeSet<_>>());
    let stored = services[0].get(issued.token.id()).await.unwrap().unwrap();
    assert_eq!(stored.uses(), expected as u64, "the stored use count");
    let records = services[0].redemptions(issued.token.id()).await.unwrap();
    assert_eq!(records.len(), expected);
    assert_eq!(
        records
            .into_iter()
            .map(|r| r.device)
            .collect::<BTreeSet<_>>(),
        winners
    );
}

async fn all_exact_counts<S: TokenStore + 'static>(services: &[Arc<Service<S>>]) {
    for limit in [1, 5, 100] {
        let limit = UsageLimit::limited(limit).unwrap();
        for devices in [
            Devices::Distinct,
            Devices::Repeated(8),
            Devices::Repeated(3),
        ] {
            exact_counts(services, limit, devices).await;
        }
    }
}

/// What one task saw: the sequence numbers when it started and returned, and its result.
struct Observed<T> {
    start: u64,
    end: u64,
    result: T,
}

/// 64 redemptions from distinct devices of a 100-use token race one revocation (of the
/// token, or of its group), which starts once 1, 8, 24 or 48 redemptions have returned
/// (by round). Then:
/// - every redemption that started after the revocation returned failed as revoked (so every
///   success started before it returned);
/// - every redemption that returned before the revocation started succeeded;
/// - the use count read right after the revocation returned is the final one (uses never
///   grow once the revocation has committed), and equals the successes and the records;
/// - 8 more redemptions after it all fail as revoked, consuming nothing.
async fn revocation_race<S: TokenStore + 'static>(services: &[Arc<Service<S>>], rounds: usize) {
    let mut late_failures = 0;
    for round in 0..rounds {
        let group = GroupId::new(format!("race/{round}")).unwrap();
        let spec = TokenSpec::new(org(), group.clone())
            .with_usage_limit(UsageLimit::limited(100).unwrap());
        let issued = services[0].issue(spec).await.unwrap();
        let id = issued.token.id();
        let text = Arc::new(issued.secret.expose_secret().to_owned());
        let target = if round % 2 == 0 {
            RevokeTarget::Token(id)
        } else {
            RevokeTarget::Group {
                organization: org(),
                group,
            }
        };

        let seq = Arc::new(AtomicU64::new(0));
        let returned = Arc::new(AtomicUsize::new(0));
        let trigger = [1, 8, 24, 48][round % 4];
        let triggered = Arc::new(Notify::new());
        let barrier = Arc::new(Barrier::new(TASKS + 1));
        let redeemers: Vec<_> = (0..TASKS)
            .map(|i| {
                let service = Arc::clone(&services[i % services.len()]);
                let (text, barrier, seq) =
                    (Arc::clone(&text), Arc::clone(&barrier), Arc::clone(&seq));
                let (returned, triggered) = (Arc::clone(&returned), Arc::clone(&triggered));
                let device = DeviceId::new(format!("dev-{i:02}")).unwrap();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let start = seq.fetch_add(1, Ordering::SeqCst);
                    let result = service.redeem(&text, &device).await;
                    let end = seq.fetch_add(1, Ordering::SeqCst);
                    if returned.fetch_add(1, Ordering::SeqCst) + 1 == trigger {
                        triggered.notify_one();
                    }
                    Observed { start, end, result }
                })
            })
            .collect();
        let revoker = {
            let service = Arc::clone(&services[services.len() - 1]);
            let (barrier, seq, triggered) = (
                Arc::clone(&barrier),
                Arc::clone(&seq),
                Arc::clone(&triggered),
            );
            let target = target.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                triggered.notified().await;
                let start = seq.fetch_add(1, Ordering::SeqCst);
                let revoked = service.revoke(&target, "race").await.unwrap();
                let end = seq.fetch_add(1, Ordering::SeqCst);
                let uses_after = service.get(id).await.unwrap().unwrap().uses();
                (
                    Observed {
                        start,
                        end,
                        result: revoked,
                    },
                    uses_after,
                )
            })
        };
        let mut observed = Vec::new();
        for h in redeemers {
            observed.push(h.await.unwrap());
        }
        let (revoke, uses_after_revoke) = revoker.await.unwrap();
        assert_eq!(revoke.result, 1, "one token newly revoked");

        let mut successes = 0u64;
        for o in &observed {
            match &o.result {
                Ok(e) => {
                    assert!(!e.replay);
                    assert!(
                        o.start < revoke.end,
                        "a redemption that started after the revocation returned succeeded"
                    );
                    successes += 1;
                }
                Err(RedeemError::Rejected(Rejection::Revoked { .. })) => {
                    assert!(
                        o.end > revoke.start,
                        "a redemption that returned before the revocation started failed"
                    );
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            successes >= trigger as u64,
            "the {trigger} that returned before the revocation started succeeded"
        );
        eprintln!("round {round}: {successes} of {TASKS} redemptions beat the revocation");
        let stored = services[0].get(id).await.unwrap().unwrap();
        assert!(stored.revocation().is_some());
        assert_eq!(
            stored.uses(),
            uses_after_revoke,
            "uses grew after the revocation committed"
        );
        assert_eq!(stored.uses(), successes);
        assert_eq!(
            services[0].redemptions(id).await.unwrap().len() as u64,
            successes
        );

        // After the revocation returned, nothing succeeds, on any replica.
        for (i, service) in services.iter().cycle().take(8).enumerate() {
            let device = DeviceId::new(format!("late-{i}")).unwrap();
            let err = service.redeem(&text, &device).await.unwrap_err();
            assert!(
                matches!(err, RedeemError::Rejected(Rejection::Revoked { .. })),
                "{err:?}"
            );
            late_failures += 1;
        }
        assert_eq!(
            services[0].get(id).await.unwrap().unwrap().uses(),
            successes
        );
        // A device that enrolled before the revocation gets no replay now either.
        let (winner, _) = observed
            .iter()
            .enumerate()
            .find(|(_, o)| o.result.is_ok())
            .expect("a success");
        let device = DeviceId::new(format!("dev-{winner:02}")).unwrap();
        let err = services[0].redeem(&text, &device).await.unwrap_err();
        assert!(
            matches!(err, RedeemError::Rejected(Rejection::Revoked { .. })),
            "{err:?}"
        );
    }
    assert_eq!(late_failures, rounds * 8);
}

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
