//! Redeeming and counting uses: exhaustion, replays by the same device, and reads that
//! consume nothing.

use std::sync::Arc;

use crate::core::enrollment::Redemption;
use crate::core::error::Rejection;
use crate::core::rules::Leeway;
use crate::core::token::{Metadata, Status};
use crate::store::{TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, assert_enrollment_matches, device, enrolled, limited, list_ids, must_get, must_insert,
    must_list, must_redemptions, policy, redeem, rejected, secs, spec, t0,
};

/// `K` distinct devices succeed with uses `1..=K`; the next device gets `Exhausted`.
pub async fn redeem_to_exhaustion<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "emea/berlin")
            .with_policies([policy("wifi")])
            .with_usage_limit(limited(3))
            .with_metadata(Metadata::from_pairs([("site", "berlin")]).expect("small")),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    for i in 1..=3u64 {
        let at = now + secs(i as i64);
        let e = enrolled(
            redeem(&*store, &fx, &token, &device(i), at, Leeway::ZERO).await,
            &format!("device {i} of 3"),
        );
        assert_enrollment_matches(&e, &token, &format!("device {i}"));
        assert_eq!(e.uses, i, "device {i}: uses after the redemption");
        assert!(!e.replay, "device {i}: a new device is not a replay");
        assert_eq!(
            e.redeemed_at, at,
            "device {i}: redeemed at the request's now"
        );
        assert_eq!(e.remaining(), Some(3 - i), "device {i}: uses left");
    }
    let r = rejected(
        redeem(
            &*store,
            &fx,
            &token,
            &device(4),
            now + secs(4),
            Leeway::ZERO,
        )
        .await,
        "a fourth device on a 3-use token",
    );
    assert_eq!(r, Rejection::Exhausted { limit: 3 });
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.uses(), 3, "the rejected device consumed nothing");
    assert_eq!(stored.status_at(now + secs(5)), Status::Exhausted);
    assert_eq!(must_redemptions(&*store, token.id()).await.len(), 3);

    let once = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &once).await;
    enrolled(
        redeem(&*store, &fx, &once, &device("a"), now, Leeway::ZERO).await,
        "single-use token, first device",
    );
    let r = rejected(
        redeem(&*store, &fx, &once, &device("b"), now, Leeway::ZERO).await,
        "single-use token, second device",
    );
    assert_eq!(r, Rejection::Exhausted { limit: 1 });
}

/// The same device again gets its original enrollment with `replay = true` and consumes
/// nothing.
pub async fn replay_same_device_consumes_nothing<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(2)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let d1 = device(1);
    let first = enrolled(
        redeem(&*store, &fx, &token, &d1, now + secs(1), Leeway::ZERO).await,
        "first redemption",
    );
    assert!(!first.replay);
    for retry in 2..=6 {
        let again = enrolled(
            redeem(&*store, &fx, &token, &d1, now + secs(retry), Leeway::ZERO).await,
            &format!("retry {retry} by the same device"),
        );
        assert!(again.replay, "retry {retry}: the same device is a replay");
        assert_eq!(again.uses, 1, "retry {retry}: nothing consumed");
        assert_eq!(
            again.redeemed_at,
            now + secs(1),
            "retry {retry}: the original redemption time"
        );
        assert_enrollment_matches(&again, &token, "replay");
    }
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        1,
        "replays consume nothing"
    );
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![Redemption {
            device: d1.clone(),
            redeemed_at: now + secs(1)
        }],
        "replays add no redemption record"
    );
    let second = enrolled(
        redeem(
            &*store,
            &fx,
            &token,
            &device(2),
            now + secs(7),
            Leeway::ZERO,
        )
        .await,
        "the second device still has its use",
    );
    assert_eq!((second.uses, second.replay), (2, false));
    let again = enrolled(
        redeem(&*store, &fx, &token, &d1, now + secs(8), Leeway::ZERO).await,
        "first device after the second",
    );
    assert!(again.replay);
    assert_eq!(again.uses, 2, "a replay reports the current use count");
    assert_eq!(again.redeemed_at, now + secs(1));
}

/// A device that redeemed still gets its replay after the token is exhausted; other devices
/// are rejected.
pub async fn replay_after_exhaustion<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let once = fx.issue(spec("acme", "sales"), now, None);
    let twice = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(2)),
        now,
        None,
    );
    must_insert(&*store, &once).await;
    must_insert(&*store, &twice).await;

    enrolled(
        redeem(&*store, &fx, &once, &device(1), now, Leeway::ZERO).await,
        "once: first",
    );
    let again = enrolled(
        redeem(&*store, &fx, &once, &device(1), now + secs(1), Leeway::ZERO).await,
        "once: the same device after exhaustion",
    );
    assert!(again.replay && again.uses == 1 && again.redeemed_at == now);
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &once, &device(2), now + secs(2), Leeway::ZERO).await,
            "once: other device"
        ),
        Rejection::Exhausted { limit: 1 }
    );
    assert!(
        enrolled(
            redeem(&*store, &fx, &once, &device(1), now + secs(3), Leeway::ZERO).await,
            "once: replay again"
        )
        .replay
    );

    for i in [1, 2] {
        enrolled(
            redeem(&*store, &fx, &twice, &device(i), now, Leeway::ZERO).await,
            "twice: fill",
        );
    }
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &twice, &device(3), now, Leeway::ZERO).await,
            "twice: third device"
        ),
        Rejection::Exhausted { limit: 2 }
    );
    for i in [1, 2] {
        let e = enrolled(
            redeem(
                &*store,
                &fx,
                &twice,
                &device(i),
                now + secs(5),
                Leeway::ZERO,
            )
            .await,
            "twice: replay after exhaustion",
        );
        assert!(
            e.replay && e.uses == 2,
            "device {i} replays after exhaustion"
        );
    }
    assert_eq!(must_get(&*store, twice.id()).await.uses(), 2);
    assert_eq!(must_redemptions(&*store, twice.id()).await.len(), 2);
}

/// Get, list and redemptions never consume a use.
pub async fn get_and_list_do_not_consume<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &token).await;
    for _ in 0..20 {
        must_get(&*store, token.id()).await;
        must_list(&*store, &TokenQuery::new(now)).await;
        must_list(&*store, &TokenQuery::new(now).with_status(Status::Active)).await;
        must_redemptions(&*store, token.id()).await;
    }
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.uses(), 0, "reads consumed a use");
    assert_eq!(stored.status_at(now), Status::Active);
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "after reads",
    );
    assert_eq!((e.uses, e.replay), (1, false));
    for _ in 0..5 {
        must_get(&*store, token.id()).await;
        must_list(&*store, &TokenQuery::new(now)).await;
        must_redemptions(&*store, token.id()).await;
    }
    assert_eq!(must_get(&*store, token.id()).await.uses(), 1);
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now).with_status(Status::Exhausted)
        )
        .await,
        vec![token.id()]
    );
}
