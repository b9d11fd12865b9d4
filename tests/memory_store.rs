//! `MemoryStore`: exactness under parallel redemptions, the store contract, and a
//! model-based test against a plain model of the rules.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, TimeDelta, Utc};
use onboarding_token::rules::RedeemRequest;
use onboarding_token::*;
use proptest::prelude::*;
// Starts in March 2026; every spec is acme's.
use support::fixture::{acme_spec as spec, dev, keyring, t0_2026 as t0, verified_by};

fn ring() -> Keyring {
    keyring([5, 5, 5, 5], [5; 32])
}

type Service = Onboarding<MemoryStore, ManualClock>;

fn service() -> Arc<Service> {
    Arc::new(Onboarding::new(ring(), MemoryStore::new()).with_clock(ManualClock::new(t0())))
}

/// A record built without the service, for store-level tests.
fn record(id: u8, limit: UsageLimit, group: &str) -> Token {
    spec(group)
        .with_usage_limit(limit)
        .with_expiry(ExpirySpec::Never)
        .into_token(
            TokenId::from_bytes([id; 16]),
            ring().active_key_id(),
            t0(),
            None,
        )
        .unwrap()
}

fn verified(id: TokenId) -> VerifiedToken {
    verified_by(&ring(), id)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    consumed: usize,
    replays: usize,
    exhausted: usize,
}

/// `devices.len()` tasks on a multi-threaded runtime, released together by a barrier, each
/// redeeming one token with a limit of `limit` from its device.
async fn race(limit: UsageLimit, devices: Vec<DeviceId>) -> (Tally, Token, Vec<Redemption>) {
    let service = service();
    let issued = service
        .issue(spec("g").with_usage_limit(limit))
        .await
        .unwrap();
    let text: Arc<str> = issued.secret.expose_secret().into();
    let barrier = Arc::new(tokio::sync::Barrier::new(devices.len()));
    let mut handles = Vec::new();
    for device in devices {
        let (service, text, barrier) = (
            Arc::clone(&service),
            Arc::clone(&text),
            Arc::clone(&barrier),
        );
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            service.redeem(&text, &device).await
        }));
    }
    let mut tally = Tally::default();
    for h in handles {
        match h.await.unwrap() {
            Ok(e) if e.replay => tally.replays += 1,
            Ok(e) => {
                assert!(limit.max_uses().is_none_or(|m| e.uses <= u64::from(m)));
                tally.consumed += 1
            }
            Err(err) => {
                assert!(
                    matches!(err.rejection(), Some(Rejection::Exhausted { .. })),
                    "{err:?}"
                );
                tally.exhausted += 1
            }
        }
    }
    let token = service.get(issued.token.id()).await.unwrap().unwrap();
    let redemptions = service.redemptions(issued.token.id()).await.unwrap();
    (tally, token, redemptions)
}

fn distinct(n: usize) -> Vec<DeviceId> {
    (0..n).map(|i| dev(&format!("SN-{i:04}"))).collect()
}

fn assert_redemptions_consistent(token: &Token, redemptions: &[Redemption]) {
    assert_eq!(redemptions.len() as u64, token.uses());
    let unique: BTreeSet<_> = redemptions.iter().map(|r| r.device.clone()).collect();
    assert_eq!(
        unique.len(),
        redemptions.len(),
        "a device was recorded twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_redeemers_of_one_token_get_exactly_the_limit() {
    for k in [1u32, 5, 100, 1, 5, 100, 1, 5, 100] {
        let limit = UsageLimit::limited(k).unwrap();
        let (tally, token, redemptions) = race(limit, distinct(64)).await;
        let expected = (k as usize).min(64);
        assert_eq!(
            tally,
            Tally {
                consumed: expected,
                replays: 0,
                exhausted: 64 - expected
            },
            "limit {k}"
        );
        assert_eq!(token.uses(), expected as u64);
        assert_redemptions_consistent(&token, &redemptions);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_redeemers_of_an_unlimited_token_all_succeed() {
    let (tally, token, redemptions) = race(UsageLimit::Unlimited, distinct(64)).await;
    assert_eq!(tally.consumed, 64);
    assert_eq!(token.uses(), 64);
    assert_redemptions_consistent(&token, &redemptions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_devices_in_a_race_replay_without_consuming() {
    for k in [1u32, 5, 100, 1, 5, 100, 1, 5, 100] {
        // 16 devices, each trying 4 times, interleaved.
        let devices: Vec<_> = (0..64).map(|i| dev(&format!("SN-{:02}", i % 16))).collect();
        let limit = UsageLimit::limited(k).unwrap();
        let (tally, token, redemptions) = race(limit, devices).await;
        let winners = (k as usize).min(16);
        assert_eq!(
            tally,
            Tally {
                consumed: winners,
                // Every other attempt of a winning device is a replay.
                replays: winners * 3,
                exhausted: (16 - winners) * 4
            },
            "limit {k}"
        );
        assert_eq!(token.uses(), winners as u64);
        assert_redemptions_consistent(&token, &redemptions);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_redemptions_of_distinct_tokens_all_succeed() {
    let service = service();
    let batch = service.issue_many(spec("g"), 64).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut handles = Vec::new();
    for (i, issued) in batch.tokens.iter().enumerate() {
        let (service, barrier) = (Arc::clone(&service), Arc::clone(&barrier));
        let text = issued.secret.expose_secret().to_string();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            service.redeem(&text, &dev(&format!("d{i}"))).await
        }));
    }
    for h in handles {
        let e = h.await.unwrap().unwrap();
        assert_eq!((e.uses, e.replay), (1, false));
    }
    let page = service
        .list(
            &service
                .query()
                .with_status(Status::Exhausted)
                .with_limit(100),
        )
        .await
        .unwrap();
    assert_eq!(page.tokens.len(), 64);
}

/// Plain threads on the synchronous API: redemptions racing a revocation stay consistent.
#[test]
fn redemptions_racing_a_revocation_stay_consistent() {
    let store = Arc::new(MemoryStore::new());
    let token = record(1, UsageLimit::Unlimited, "g");
    let id = token.id();
    store.insert_sync(token).unwrap();
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            let mut consumed = 0u64;
            let mut revoked = false;
            for n in 0..50 {
                let device = dev(&format!("t{t}-{n}"));
                let request = RedeemRequest {
                    token: verified(id),
                    device: &device,
                    now: t0(),
                    leeway: Leeway::ZERO,
                };
                match store.redeem_sync(&request) {
                    Ok(e) => {
                        assert!(
                            !revoked,
                            "a redemption succeeded after one saw the revocation"
                        );
                        assert!(!e.replay);
                        consumed += 1;
                    }
                    Err(err) => {
                        assert!(matches!(err.rejection(), Some(Rejection::Revoked { .. })));
                        revoked = true;
                    }
                }
            }
            consumed
        }));
    }
    barrier.wait();
    let revocation = Revocation::new(t0(), "stop").unwrap();
    assert_eq!(
        store
            .revoke_sync(&RevokeTarget::Token(id), &revocation)
            .unwrap(),
        1
    );
    // Once revoke has returned, the very next redemption is rejected.
    let late = dev("late");
    let request = RedeemRequest {
        token: verified(id),
        device: &late,
        now: t0(),
        leeway: Leeway::ZERO,
    };
    assert!(matches!(
        store.redeem_sync(&request).unwrap_err().rejection(),
        Some(Rejection::Revoked { .. })
    ));
    let consumed: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let token = store.get_sync(id).unwrap();
    assert_eq!(token.uses(), consumed);
    assert_eq!(store.redemptions_sync(id).unwrap().len() as u64, consumed);
}

#[test]
fn concurrent_inserts_of_one_id_store_it_once() {
    let store = Arc::new(MemoryStore::new());
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let token = record(7, UsageLimit::Once, &format!("g{i}"));
                barrier.wait();
                if i % 2 == 0 {
                    store.insert_sync(token).is_ok()
                } else {
                    store.insert_batch_sync(vec![token]).is_ok()
                }
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&b| b)
        .count();
    assert_eq!(ok, 1);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn insert_refuses_duplicates_and_batches_are_all_or_nothing() {
    let store = MemoryStore::new();
    assert!(store.is_empty());
    store
        .insert(record(1, UsageLimit::Once, "a"))
        .await
        .unwrap();
    let err = store
        .insert(record(1, UsageLimit::Unlimited, "b"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(id) if id == TokenId::from_bytes([1; 16])));
    assert_eq!(
        store
            .get(TokenId::from_bytes([1; 16]))
            .await
            .unwrap()
            .unwrap()
            .group()
            .as_str(),
        "a",
        "the original is untouched"
    );

    // A duplicate inside the batch.
    let err = store
        .insert_batch(vec![
            record(2, UsageLimit::Once, "a"),
            record(3, UsageLimit::Once, "a"),
            record(2, UsageLimit::Once, "a"),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)));
    // A batch colliding with a stored token.
    let err = store
        .insert_batch(vec![
            record(4, UsageLimit::Once, "a"),
            record(1, UsageLimit::Once, "a"),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(id) if id == TokenId::from_bytes([1; 16])));
    assert_eq!(store.len(), 1);
    for n in [2, 3, 4] {
        assert!(
            store
                .get(TokenId::from_bytes([n; 16]))
                .await
                .unwrap()
                .is_none()
        );
    }
    store
        .insert_batch(vec![
            record(2, UsageLimit::Once, "a"),
            record(3, UsageLimit::Once, "a"),
        ])
        .await
        .unwrap();
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn unknown_tokens_are_not_found() {
    let store = MemoryStore::new();
    let id = TokenId::from_bytes([8; 16]);
    assert!(store.get(id).await.unwrap().is_none());
    assert!(matches!(
        store.redemptions(id).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    let device = dev("d");
    let request = RedeemRequest {
        token: verified(id),
        device: &device,
        now: t0(),
        leeway: Leeway::ZERO,
    };
    let err = store.redeem(&request).await.unwrap_err();
    assert_eq!(err.rejection(), Some(&Rejection::NotFound { id }));
    let revocation = Revocation::new(t0(), "r").unwrap();
    assert!(matches!(
        store.revoke(&RevokeTarget::Token(id), &revocation).await,
        Err(StoreError::NotFound(missing)) if missing == id
    ));
}

/// Past the point where the store indexes a token's devices, replays still find the
/// original redemption.
#[test]
fn many_devices_on_one_token_replay_correctly() {
    let store = MemoryStore::new();
    let token = record(1, UsageLimit::Unlimited, "g");
    let id = token.id();
    store.insert_sync(token).unwrap();
    let devices = (0..40).map(|i| dev(&format!("d{i}"))).collect::<Vec<_>>();
    for (i, device) in devices.iter().enumerate() {
        let request = RedeemRequest {
            token: verified(id),
            device,
            now: t0() + TimeDelta::seconds(i as i64),
            leeway: Leeway::ZERO,
        };
        let e = store.redeem_sync(&request).unwrap();
        assert_eq!((e.uses, e.replay), (i as u64 + 1, false));
    }
    for (i, device) in devices.iter().enumerate().rev() {
        let request = RedeemRequest {
            token: verified(id),
            device,
            now: t0() + TimeDelta::hours(1),
            leeway: Leeway::ZERO,
        };
        let e = store.redeem_sync(&request).unwrap();
        assert!(e.replay, "device {i}");
        assert_eq!(e.redeemed_at, t0() + TimeDelta::seconds(i as i64));
        assert_eq!(e.uses, 40);
    }
    let redemptions = store.redemptions_sync(id).unwrap();
    assert_eq!(redemptions.len(), 40);
    assert!(
        redemptions
            .iter()
            .zip(&devices)
            .all(|(r, d)| r.device == *d)
    );
}

async fn exercise<S: TokenStore>(store: S) {
    store
        .insert(record(1, UsageLimit::Once, "g"))
        .await
        .unwrap();
    let device = dev("d");
    let request = RedeemRequest {
        token: verified(TokenId::from_bytes([1; 16])),
        device: &device,
        now: t0(),
        leeway: Leeway::ZERO,
    };
    assert!(!store.redeem(&request).await.unwrap().replay);
    assert!(store.redeem(&request).await.unwrap().replay);
    let page = store.list(&TokenQuery::new(t0())).await.unwrap();
    assert_eq!(page.tokens.len(), 1);
    assert_eq!(page.tokens[0].uses(), 1);
}

#[tokio::test]
async fn forwarding_impls_behave_like_the_store() {
    let store = MemoryStore::new();
    exercise(&store).await;
    exercise(Arc::new(MemoryStore::new())).await;
    exercise(Box::new(MemoryStore::new())).await;
    // A service over a shared store sees the same tokens as another handle on it.
    let shared = Arc::new(MemoryStore::new());
    let service = Onboarding::new(ring(), Arc::clone(&shared));
    let issued = service.issue(spec("g")).await.unwrap();
    assert!(shared.get_sync(issued.token.id()).is_some());
}

#[test]
fn shard_counts_do_not_change_behaviour() {
    for store in [
        MemoryStore::with_shards(0),
        MemoryStore::with_shards(1),
        MemoryStore::with_shards(3),
        MemoryStore::with_capacity(1000),
        MemoryStore::default(),
    ] {
        let tokens: Vec<_> = (0..50u8)
            .map(|i| record(i, UsageLimit::Once, "g"))
            .collect();
        store.insert_batch_sync(tokens).unwrap();
        assert_eq!(store.len(), 50);
        let page = store.list_sync(&TokenQuery::new(t0()).with_limit(20));
        assert_eq!(page.tokens.len(), 20);
        let ids: Vec<_> = page.tokens.iter().map(|t| t.id().as_bytes()[0]).collect();
        assert_eq!(
            ids,
            (0..20).collect::<Vec<u8>>(),
            "ordered by id at equal times"
        );
        let n = store
            .revoke_sync(
                &RevokeTarget::Group {
                    organization: OrgId::new("acme").unwrap(),
                    group: GroupId::new("g").unwrap(),
                },
                &Revocation::new(t0(), "r").unwrap(),
            )
            .unwrap();
        assert_eq!(n, 50);
        assert!(format!("{store:?}").contains("MemoryStore"));
    }
}

// ---- Model-based test ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Redeem { token: usize, device: usize },
    Revoke { token: usize },
    RevokeGroupA,
    Advance { minutes: i64 },
    Check { token: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3, 0usize..5).prop_map(|(token, device)| Op::Redeem { token, device }),
        1 => (0usize..3).prop_map(|token| Op::Revoke { token }),
        1 => Just(Op::RevokeGroupA),
        2 => (0i64..90).prop_map(|minutes| Op::Advance { minutes }),
        1 => (0usize..3).prop_map(|token| Op::Check { token }),
    ]
}

fn limit() -> impl Strategy<Value = UsageLimit> {
    prop_oneof![
        Just(UsageLimit::Once),
        (2u32..5).prop_map(|n| UsageLimit::limited(n).unwrap()),
        Just(UsageLimit::Unlimited),
    ]
}

/// The plain model of one token.
#[derive(Debug)]
struct Model {
    limit: Option<u64>,
    expires: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    devices: Vec<(usize, DateTime<Utc>)>,
}

fn rejected(result: Result<Enrollment, RedeemError>) -> Rejection {
    result
        .unwrap_err()
        .rejection()
        .cloned()
        .expect("a rejection")
}

const GROUPS: [&str; 3] = ["a", "a/b", "c"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// MemoryStore agrees with a plain model of the rules over random operation sequences.
    #[test]
    fn memory_store_matches_a_plain_model(
        limits in proptest::array::uniform3(limit()),
        lifetimes in proptest::array::uniform3(proptest::option::of(30i64..300)),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let store = MemoryStore::with_shards(2);
        let mut models = Vec::new();
        for i in 0..3 {
            let expiry = match lifetimes[i] {
                Some(m) => ExpirySpec::After(TimeDelta::minutes(m)),
                None => ExpirySpec::Never,
            };
            let token = spec(GROUPS[i])
                .with_usage_limit(limits[i])
                .with_expiry(expiry)
                .into_token(TokenId::from_bytes([i as u8; 16]), ring().active_key_id(), t0(), None)
                .unwrap();
            store.insert_sync(token).unwrap();
            models.push(Model {
                limit: limits[i].max_uses().map(u64::from),
                expires: lifetimes[i].map(|m| t0() + TimeDelta::minutes(m)),
                revoked_at: None,
                devices: Vec::new(),
            });
        }
        let devices: Vec<_> = (0..5).map(|i| dev(&format!("dev{i}"))).collect();
        let mut now = t0();
        for op in ops {
            match op {
                Op::Redeem { token, device } => {
                    let id = TokenId::from_bytes([token as u8; 16]);
                    let request = RedeemRequest {
                        token: verified(id),
                        device: &devices[device],
                        now,
                        leeway: Leeway::ZERO,
                    };
                    let got = store.redeem_sync(&request);
                    let m = &mut models[token];
                    let prior = m.devices.iter().find(|(d, _)| *d == device).map(|(_, t)| *t);
                    if let Some(revoked_at) = m.revoked_at {
                        prop_assert_eq!(rejected(got), Rejection::Revoked { revoked_at });
                    } else if let Some(expires_at) = m.expires.filter(|e| now >= *e) {
                        prop_assert_eq!(rejected(got), Rejection::Expired { expires_at, now });
                    } else if let Some(first) = prior {
                        let e = got.unwrap();
                        prop_assert!(e.replay);
                        prop_assert_eq!(e.redeemed_at, first);
                        prop_assert_eq!(e.uses, m.devices.len() as u64);
                    } else if m.limit.is_some_and(|l| m.devices.len() as u64 >= l) {
                        let limit = m.limit.unwrap() as u32;
                        prop_assert_eq!(rejected(got), Rejection::Exhausted { limit });
                    } else {
                        m.devices.push((device, now));
                        let e = got.unwrap();
                        prop_assert!(!e.replay);
                        prop_assert_eq!(e.redeemed_at, now);
                        prop_assert_eq!(e.uses, m.devices.len() as u64);
                    }
                }
                Op::Revoke { token } => {
                    let revocation = Revocation::new(now, "op").unwrap();
                    let id = TokenId::from_bytes([token as u8; 16]);
                    let n = store.revoke_sync(&RevokeTarget::Token(id), &revocation).unwrap();
                    let m = &mut models[token];
                    prop_assert_eq!(n, u64::from(m.revoked_at.is_none()));
                    m.revoked_at.get_or_insert(now);
                }
                Op::RevokeGroupA => {
                    let revocation = Revocation::new(now, "group").unwrap();
                    let target = RevokeTarget::Group {
                        organization: OrgId::new("acme").unwrap(),
                        group: GroupId::new("a").unwrap(),
                    };
                    let n = store.revoke_sync(&target, &revocation).unwrap();
                    let mut expected = 0;
                    for m in &mut models[..2] {
                        if m.revoked_at.is_none() {
                            m.revoked_at = Some(now);
                            expected += 1;
                        }
                    }
                    prop_assert_eq!(n, expected);
                }
                Op::Advance { minutes } => now += TimeDelta::minutes(minutes),
                Op::Check { token } => {
                    let id = TokenId::from_bytes([token as u8; 16]);
                    let record = store.get_sync(id).unwrap();
                    let m = &models[token];
                    prop_assert_eq!(record.uses(), m.devices.len() as u64);
                    prop_assert_eq!(record.revocation().map(|r| r.revoked_at()), m.revoked_at);
                    let redemptions = store.redemptions_sync(id).unwrap();
                    let expected: Vec<_> = m.devices.iter().map(|(d, t)| (devices[*d].clone(), *t)).collect();
                    let got: Vec<_> = redemptions.into_iter().map(|r| (r.device, r.redeemed_at)).collect();
                    prop_assert_eq!(got, expected);
                    let status = record.status_at(now);
                    let model_status = if m.revoked_at.is_some() {
                        Status::Revoked
                    } else if m.expires.is_some_and(|e| now >= e) {
                        Status::Expired
                    } else if m.limit.is_some_and(|l| m.devices.len() as u64 >= l) {
                        Status::Exhausted
                    } else {
                        Status::Active
                    };
                    prop_assert_eq!(status, model_status);
                }
            }
        }
        // Listing by status agrees with the model at the end, and listing consumed nothing.
        for status in Status::ALL {
            let page = store.list_sync(&TokenQuery::new(now).with_status(status));
            for t in &page.tokens {
                prop_assert_eq!(t.status_at(now), status);
            }
        }
        let total: u64 = (0..3u8).map(|i| store.get_sync(TokenId::from_bytes([i; 16])).unwrap().uses()).sum();
        prop_assert_eq!(total, models.iter().map(|m| m.devices.len() as u64).sum::<u64>());
    }
}
