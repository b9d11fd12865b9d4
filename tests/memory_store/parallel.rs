//! Exactness under parallel redemptions, revocations and inserts.

use super::*;

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
