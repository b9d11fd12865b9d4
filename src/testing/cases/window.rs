//! The validity window: expiry, `not_before`, leeway, and tokens that never expire.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use crate::core::error::Rejection;
use crate::core::rules::Leeway;
use crate::core::token::{Expiry, ExpirySpec, Status, UsageLimit};
use crate::store::{TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, MICRO, device, enrolled, leeway, limited, list_ids, must_get, must_insert,
    must_redemptions, ordered, redeem, rejected, secs, spec, t0,
};

/// Redeemable until 1 µs before the expiry; `Expired` from the expiry on, for new devices
/// and replays.
pub async fn expiry<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let expires_at = now + secs(3600);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(5))
            .with_expiry(ExpirySpec::At(expires_at)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    enrolled(
        redeem(
            &*store,
            &fx,
            &token,
            &device(1),
            expires_at - MICRO,
            Leeway::ZERO,
        )
        .await,
        "1 µs before the expiry",
    );
    for (what, at, d) in [
        ("at the expiry", expires_at, device(2)),
        (
            "a day after the expiry",
            expires_at + secs(86_400),
            device(3),
        ),
        ("a replay at the expiry", expires_at, device(1)),
    ] {
        assert_eq!(
            rejected(
                redeem(&*store, &fx, &token, &d, at, Leeway::ZERO).await,
                what
            ),
            Rejection::Expired {
                expires_at,
                now: at
            },
            "{what}"
        );
    }
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.uses(), 1);
    assert_eq!(stored.status_at(expires_at - MICRO), Status::Active);
    assert_eq!(stored.status_at(expires_at), Status::Expired);
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(expires_at).with_status(Status::Expired)
        )
        .await,
        vec![token.id()],
        "listed as expired at the expiry"
    );
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(expires_at - MICRO).with_status(Status::Active)
        )
        .await,
        vec![token.id()],
        "listed as active 1 µs before"
    );
}

/// `NotYetValid` until 1 µs before `not_before`; redeemable from it on.
pub async fn not_before<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let nb = now + secs(3600);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(5))
            .with_not_before(nb),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    for (what, at) in [("at issue", now), ("1 µs before not-before", nb - MICRO)] {
        assert_eq!(
            rejected(
                redeem(&*store, &fx, &token, &device(1), at, Leeway::ZERO).await,
                what
            ),
            Rejection::NotYetValid {
                not_before: nb,
                now: at
            },
            "{what}"
        );
    }
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        0,
        "early attempts consume nothing"
    );
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![],
        "early attempts are not recorded"
    );
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), nb, Leeway::ZERO).await,
        "at not-before",
    );
    assert_eq!((e.uses, e.replay), (1, false));
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).with_status(Status::Pending)).await,
        vec![token.id()],
        "listed as pending before the window"
    );
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(nb).with_status(Status::Active)).await,
        vec![token.id()],
        "listed as active at not-before"
    );
}

/// The window `[not_before - L, expiry + L)` with and without a leeway `L`, for redemption
/// and listing.
pub async fn leeway_boundaries<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let nb = now + secs(3600);
    let exp = now + secs(7200);
    let l = secs(30);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(UsageLimit::Unlimited)
            .with_not_before(nb)
            .with_expiry(ExpirySpec::At(exp)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let mut n = 0;
    let mut attempt = async |at: DateTime<Utc>, lw: Leeway| {
        n += 1;
        redeem(&*store, &fx, &token, &device(n), at, lw).await
    };
    let zero = Leeway::ZERO;
    let thirty = leeway(30);

    let early = attempt(nb - MICRO, zero).await;
    assert_eq!(
        rejected(early, "no leeway, 1 µs early"),
        Rejection::NotYetValid {
            not_before: nb,
            now: nb - MICRO
        }
    );
    enrolled(attempt(nb, zero).await, "no leeway, at not-before");
    enrolled(
        attempt(exp - MICRO, zero).await,
        "no leeway, 1 µs before expiry",
    );
    let late = attempt(exp, zero).await;
    assert_eq!(
        rejected(late, "no leeway, at expiry"),
        Rejection::Expired {
            expires_at: exp,
            now: exp
        }
    );

    let early = attempt(nb - l - MICRO, thirty).await;
    assert_eq!(
        rejected(early, "30 s leeway, 30 s + 1 µs early"),
        Rejection::NotYetValid {
            not_before: nb,
            now: nb - l - MICRO
        }
    );
    enrolled(attempt(nb - l, thirty).await, "30 s leeway, 30 s early");
    enrolled(
        attempt(exp + l - MICRO, thirty).await,
        "30 s leeway, 30 s - 1 µs after expiry",
    );
    let late = attempt(exp + l, thirty).await;
    assert_eq!(
        rejected(late, "30 s leeway, 30 s after expiry"),
        Rejection::Expired {
            expires_at: exp,
            now: exp + l
        }
    );
    assert_eq!(
        must_get(&*store, token.id()).await.uses(),
        4,
        "exactly the accepted attempts consumed"
    );

    for (what, at, lw, status) in [
        ("30 s early with leeway", nb - l, thirty, Status::Active),
        ("30 s early without leeway", nb - l, zero, Status::Pending),
        (
            "just before expiry + leeway",
            exp + l - MICRO,
            thirty,
            Status::Active,
        ),
        (
            "just before expiry + leeway, no leeway",
            exp + l - MICRO,
            zero,
            Status::Expired,
        ),
        ("at expiry + leeway", exp + l, thirty, Status::Expired),
    ] {
        assert_eq!(
            list_ids(
                &*store,
                &TokenQuery::new(at).with_leeway(lw).with_status(status)
            )
            .await,
            vec![token.id()],
            "listing: {what} is {status}"
        );
    }
}

/// `Expiry::Never` with `UsageLimit::Unlimited`: hundreds of devices over centuries, still
/// active in the year 9999.
pub async fn never_expiring_and_unlimited<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "kiosk")
            .with_usage_limit(UsageLimit::Unlimited)
            .with_expiry(ExpirySpec::Never),
        now,
        None,
    );
    let once_forever = fx.issue(
        spec("acme", "kiosk").with_expiry(ExpirySpec::Never),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    must_insert(&*store, &once_forever).await;
    assert_eq!(
        must_get(&*store, token.id()).await.validity().expiry,
        Expiry::Never
    );
    let year = |y: i32| {
        Utc.with_ymd_and_hms(y, 6, 1, 12, 0, 0)
            .single()
            .expect("valid instant")
    };
    for i in 1..=300u64 {
        let at = year(2030 + (i as i32) * 3);
        let e = enrolled(
            redeem(&*store, &fx, &token, &device(i), at, Leeway::ZERO).await,
            "unlimited",
        );
        assert_eq!(
            (e.uses, e.replay, e.remaining()),
            (i, false, None),
            "device {i}"
        );
    }
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), year(9999), Leeway::ZERO).await,
        "replay",
    );
    assert!(e.replay && e.uses == 300 && e.redeemed_at == year(2033));
    assert_eq!(
        must_get(&*store, token.id()).await.status_at(year(9999)),
        Status::Active
    );
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(year(9999)).with_status(Status::Active)
        )
        .await,
        ordered(&[&token, &once_forever]),
        "never-expiring tokens are active in 9999"
    );
    assert!(
        list_ids(
            &*store,
            &TokenQuery::new(year(9999)).with_status(Status::Expired)
        )
        .await
        .is_empty(),
        "nothing expires"
    );
    enrolled(
        redeem(
            &*store,
            &fx,
            &once_forever,
            &device(1),
            year(9000),
            Leeway::ZERO,
        )
        .await,
        "once, in 9000",
    );
    assert_eq!(
        rejected(
            redeem(
                &*store,
                &fx,
                &once_forever,
                &device(2),
                year(9001),
                Leeway::ZERO
            )
            .await,
            "once, second device"
        ),
        Rejection::Exhausted { limit: 1 }
    );
}
