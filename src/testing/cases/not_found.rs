//! Ids a store must treat as not found: never inserted, or presented under another key.

use std::sync::Arc;

use crate::core::error::{Rejection, StoreError};
use crate::core::rules::{Leeway, RedeemRequest};
use crate::core::token::TokenId;
use crate::store::{RevokeTarget, TokenStore};
use crate::testing::fixtures::{
    Fixture, device, enrolled, must_be_absent, must_get, must_insert, must_redemptions, random_id,
    redeem, rejected, revocation, spec, t0,
};

/// An unknown id: `get` gives `None`, `redeem` gives `Rejection::NotFound`, `revoke` and
/// `redemptions` give `StoreError::NotFound`.
pub async fn unknown_id_not_found<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let check = async |unknown: TokenId| {
        must_be_absent(&*store, unknown, "it was never inserted").await;
        let request = RedeemRequest {
            token: fx.verified_with(fx.active, unknown),
            device: &device(1),
            now,
            leeway: Leeway::ZERO,
        };
        assert_eq!(
            rejected(store.redeem(&request).await, "redeeming an unknown id"),
            Rejection::NotFound { id: unknown }
        );
        match store
            .revoke(&RevokeTarget::Token(unknown), &revocation(now, "x"))
            .await
        {
            Err(StoreError::NotFound(id)) => assert_eq!(id, unknown),
            other => panic!("revoking an unknown id must fail with NotFound, got {other:?}"),
        }
        match store.redemptions(unknown).await {
            Err(StoreError::NotFound(id)) => assert_eq!(id, unknown),
            other => panic!("redemptions of an unknown id must fail with NotFound, got {other:?}"),
        }
    };
    check(random_id()).await;
    let stored = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &stored).await;
    check(random_id()).await;
    // Ids that differ from a stored one in a single byte, first or last.
    for i in [0, 15] {
        let mut bytes = *stored.id().as_bytes();
        bytes[i] ^= 1;
        check(TokenId::from_bytes(bytes)).await;
    }
    assert_eq!(
        must_get(&*store, stored.id()).await,
        stored,
        "the stored token is untouched"
    );
}

/// A record issued under one key, presented as signed by another key of the keyring, is
/// treated as not found and left untouched.
pub async fn key_mismatch_not_found<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let under_active = fx.issue(spec("acme", "sales"), now, None);
    let under_other = fx.issue_with(random_id(), fx.other, spec("acme", "sales"), now, None);
    must_insert(&*store, &under_active).await;
    must_insert(&*store, &under_other).await;
    for (token, wrong_key) in [(&under_active, fx.other), (&under_other, fx.active)] {
        let request = RedeemRequest {
            token: fx.verified_with(wrong_key, token.id()),
            device: &device(1),
            now,
            leeway: Leeway::ZERO,
        };
        assert_eq!(
            rejected(
                store.redeem(&request).await,
                "presented under the wrong key"
            ),
            Rejection::NotFound { id: token.id() }
        );
        assert_eq!(
            must_get(&*store, token.id()).await.uses(),
            0,
            "nothing consumed"
        );
        assert_eq!(
            must_redemptions(&*store, token.id()).await,
            vec![],
            "nothing recorded"
        );
        let e = enrolled(
            redeem(&*store, &fx, token, &device(1), now, Leeway::ZERO).await,
            "under the right key",
        );
        assert!(
            !e.replay,
            "the wrong-key attempt did not count as a first redemption"
        );
    }
}
