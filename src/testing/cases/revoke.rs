//! Revoking by id, group and batch, and what a revocation blocks.

use std::sync::Arc;

use crate::core::error::{Rejection, SpecError, StoreError};
use crate::core::rules::Leeway;
use crate::core::token::{Revocation, Status, Token, UsageLimit};
use crate::store::{RevokeTarget, TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, device, enrolled, group, limited, list_ids, must_be_absent, must_get, must_insert,
    must_insert_batch, must_list, must_redemptions, must_revoke, ordered, org, random_batch,
    random_id, redeem, rejected, revocation, secs, spec, t0,
};

/// Revoking one token returns 1, stores the revocation, blocks redemption, and leaves other
/// tokens alone; revoking it again returns 0.
pub async fn revoke_by_id<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let a = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(5)),
        now,
        None,
    );
    let b = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(5)),
        now,
        None,
    );
    must_insert(&*store, &a).await;
    must_insert(&*store, &b).await;
    let rev = revocation(now + secs(10), "leaked in a chat");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(a.id()), &rev).await,
        1,
        "newly revoked"
    );

    let stored = must_get(&*store, a.id()).await;
    assert_eq!(stored.revocation(), Some(&rev), "the revocation is stored");
    assert_eq!(stored.status_at(now + secs(20)), Status::Revoked);
    assert_eq!(
        must_get(&*store, b.id()).await.revocation(),
        None,
        "revoking one token must not revoke another"
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &a, &device(1), now + secs(20), Leeway::ZERO).await,
            "revoked token"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(10)
        }
    );
    enrolled(
        redeem(&*store, &fx, &b, &device(1), now + secs(20), Leeway::ZERO).await,
        "untouched token",
    );
    assert_eq!(
        must_revoke(
            &*store,
            &RevokeTarget::Token(a.id()),
            &revocation(now + secs(30), "again")
        )
        .await,
        0,
        "revoking a revoked token again revokes nothing new"
    );
}

/// Revoking a group revokes it and its subgroups, in that organization only; a group with
/// no tokens revokes nothing (`Ok(0)`).
pub async fn revoke_by_group<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let emea = fx.issue(spec("acme", "emea"), now, None);
    let berlin = fx.issue(spec("acme", "emea/berlin"), now, None);
    let mitte = fx.issue(spec("acme", "emea/berlin/mitte"), now, None);
    let emeax = fx.issue(spec("acme", "emeax"), now, None);
    let apac = fx.issue(spec("acme", "apac"), now, None);
    let other_org = fx.issue(spec("globex", "emea"), now, None);
    let lab = fx.issue(spec("acme", "lab_1/x"), now, None);
    let lab_lookalike = fx.issue(spec("acme", "labX1/x"), now, None);
    let all = [
        &emea,
        &berlin,
        &mitte,
        &emeax,
        &apac,
        &other_org,
        &lab,
        &lab_lookalike,
    ];
    for t in all {
        must_insert(&*store, t).await;
    }
    let target = |o: &str, g: &str| RevokeTarget::Group {
        organization: org(o),
        group: group(g),
    };
    let rev = revocation(now + secs(1), "office closed");
    assert_eq!(
        must_revoke(&*store, &target("acme", "emea"), &rev).await,
        3,
        "acme/emea covers emea, emea/berlin and emea/berlin/mitte only"
    );
    for t in all {
        let expect = [emea.id(), berlin.id(), mitte.id()].contains(&t.id());
        assert_eq!(
            must_get(&*store, t.id()).await.revocation().is_some(),
            expect,
            "token in {}/{}: revoked should be {expect}",
            t.organization(),
            t.group()
        );
    }
    assert_eq!(
        must_revoke(&*store, &target("acme", "emea"), &rev).await,
        0,
        "again: nothing new"
    );
    assert_eq!(
        must_revoke(&*store, &target("acme", "emea/berlin"), &rev).await,
        0,
        "subgroup already revoked"
    );
    assert_eq!(
        must_revoke(&*store, &target("acme", "lab_1"), &rev).await,
        1,
        "`_` in a group id is literal: labX1 is not covered"
    );
    assert!(
        must_get(&*store, lab_lookalike.id())
            .await
            .revocation()
            .is_none()
    );
    assert_eq!(
        must_revoke(&*store, &target("acme", "nowhere"), &rev).await,
        0,
        "a group without tokens"
    );
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &berlin,
                &device(1),
                now + secs(2),
                Leeway::ZERO
            )
            .await,
            "subgroup token"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(1)
        }
    );
    enrolled(
        redeem(
            &*store,
            &fx,
            &other_org,
            &device(1),
            now + secs(2),
            Leeway::ZERO,
        )
        .await,
        "same group name in another organization",
    );
}

/// Revoking a batch revokes all of its tokens; the count excludes tokens already revoked.
pub async fn revoke_by_batch<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let batch = random_batch();
    let other_batch = random_batch();
    let members: Vec<Token> = (0..5)
        .map(|_| fx.issue(spec("acme", "fleet"), now, Some(batch)))
        .collect();
    let others: Vec<Token> = (0..2)
        .map(|_| fx.issue(spec("acme", "fleet"), now, Some(other_batch)))
        .collect();
    let loose = fx.issue(spec("acme", "fleet"), now, None);
    must_insert_batch(&*store, &members).await;
    must_insert_batch(&*store, &others).await;
    must_insert(&*store, &loose).await;

    let first = revocation(now + secs(1), "first");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(members[0].id()), &first).await,
        1
    );
    let rev = revocation(now + secs(2), "batch recalled");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Batch(batch), &rev).await,
        4,
        "revoking a batch counts only newly revoked tokens"
    );
    assert_eq!(
        must_get(&*store, members[0].id()).await.revocation(),
        Some(&first)
    );
    for m in &members[1..] {
        assert_eq!(
            must_get(&*store, m.id()).await.revocation(),
            Some(&rev),
            "batch member revoked"
        );
    }
    for t in others.iter().chain([&loose]) {
        assert!(
            must_get(&*store, t.id()).await.revocation().is_none(),
            "a token outside the batch must stay unrevoked"
        );
    }
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Batch(batch), &rev).await,
        0,
        "again: nothing new"
    );
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Batch(random_batch()), &rev).await,
        0,
        "unknown batch"
    );
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now + secs(3)).with_status(Status::Revoked)
        )
        .await,
        ordered(&members.iter().collect::<Vec<_>>()),
        "exactly the batch is listed as revoked"
    );
}

/// Revoking an already revoked token, by id, group or batch, keeps the first revocation.
pub async fn revocation_reason_kept<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let batch = random_batch();
    let token = fx.issue(spec("acme", "emea"), now, Some(batch));
    must_insert(&*store, &token).await;
    let first = revocation(now + secs(1), "device lost on a train");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &first).await,
        1
    );
    let later = revocation(now + secs(2), "another reason");
    let targets = [
        RevokeTarget::Token(token.id()),
        RevokeTarget::Group {
            organization: org("acme"),
            group: group("emea"),
        },
        RevokeTarget::Batch(batch),
    ];
    for target in &targets {
        assert_eq!(
            must_revoke(&*store, target, &later).await,
            0,
            "{target:?} on a revoked token"
        );
        assert_eq!(
            must_get(&*store, token.id()).await.revocation(),
            Some(&first),
            "after {target:?} the first revocation (time and reason) is kept"
        );
    }
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &token,
                &device(1),
                now + secs(3),
                Leeway::ZERO
            )
            .await,
            "revoked"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(1)
        },
        "the rejection reports the first revocation"
    );
    let listed = must_list(&*store, &TokenQuery::new(now).with_status(Status::Revoked)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].revocation(),
        Some(&first),
        "listing shows the first revocation"
    );
}

/// Revoking a token id that is not stored fails with `StoreError::NotFound(id)`.
pub async fn revoke_unknown_id_not_found<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let stored = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &stored).await;
    let unknown = random_id();
    match store
        .revoke(&RevokeTarget::Token(unknown), &revocation(now, "x"))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, unknown, "the error names the id"),
        other => panic!("revoking an unknown id must fail with NotFound, got {other:?}"),
    }
    assert_eq!(
        must_get(&*store, stored.id()).await,
        stored,
        "a failed revocation touches no other token"
    );
    must_be_absent(&*store, unknown, "revoking must not create it").await;
}

/// Once revoke returns, the next redemption is rejected, new devices and replays alike, even
/// when the revocation's `revoked_at` lies after the redemption's `now`.
pub async fn revoked_blocks_next_redeem<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "sales").with_usage_limit(UsageLimit::Unlimited),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let d1 = device(1);
    enrolled(
        redeem(&*store, &fx, &token, &d1, now, Leeway::ZERO).await,
        "before revocation",
    );
    // The admin's clock is ahead of the redeeming server's: the revocation still applies.
    let rev = revocation(now + secs(3600), "compromised");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    let expected = Rejection::Revoked {
        revoked_at: now + secs(3600),
    };
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &token,
                &device(2),
                now + secs(1),
                Leeway::ZERO
            )
            .await,
            "new device after revoke"
        ),
        expected
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &d1, now + secs(2), Leeway::ZERO).await,
            "replay after revoke"
        ),
        expected,
        "a device that redeemed before the revocation gets no replay"
    );
    assert_eq!(must_get(&*store, token.id()).await.uses(), 1);
    assert_eq!(must_redemptions(&*store, token.id()).await.len(), 1);
}

/// A revocation reason at the bound (in multi-byte characters) is stored and every later
/// read of the token works: get, list, a rejected redemption. A reason over the bound never
/// reaches a store: [`Revocation::new`] and deserialization refuse it.
pub async fn revocation_reason_bound<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(spec("acme", "emea"), now, None);
    must_insert(&*store, &token).await;

    let over = "ß".repeat(Revocation::MAX_REASON / 2) + "x";
    assert!(
        matches!(
            Revocation::new(now, over.clone()),
            Err(SpecError::ReasonTooLong { .. })
        ),
        "a reason over the bound is refused when the revocation is made"
    );
    let json = serde_json::json!({ "revoked_at": now, "reason": over });
    assert!(
        serde_json::from_value::<Revocation>(json).is_err(),
        "a reason over the bound is refused when a revocation is deserialized"
    );

    let at_bound = revocation(now + secs(1), &"ß".repeat(Revocation::MAX_REASON / 2));
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &at_bound).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id()).await.revocation(),
        Some(&at_bound),
        "a reason at the bound is read back whole"
    );
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now + secs(2)).with_status(Status::Revoked)
        )
        .await,
        vec![token.id()],
        "a token revoked with a reason at the bound is listed"
    );
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &token,
                &device(1),
                now + secs(2),
                Leeway::ZERO
            )
            .await,
            "redeem after a revocation at the bound"
        ),
        Rejection::Revoked {
            revoked_at: now + secs(1)
        },
    );
}
