//! The store contract: duplicates, unknown tokens, replays, forwarding impls and shard counts.

use super::*;

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
