//! Redemption records: device and time, in order, none for replays or rejections.

use std::sync::Arc;

use crate::core::enrollment::Redemption;
use crate::core::rules::Leeway;
use crate::core::token::UsageLimit;
use crate::store::TokenStore;
use crate::testing::fixtures::{
    Fixture, device, enrolled, limited, must_insert, must_redemptions, redeem, rejected, secs,
    spec, t0,
};

/// Redemption records: device and time, oldest first (ties in redemption order), nothing
/// for replays or rejected attempts, an empty list for an unredeemed token.
pub async fn redemption_records<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(3)),
        now,
        None,
    );
    let unused = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &token).await;
    must_insert(&*store, &unused).await;
    let at = |s: i64| now + secs(s);
    let ok = |r, what: &str| {
        enrolled(r, what);
    };
    ok(
        redeem(&*store, &fx, &token, &device(1), at(1), Leeway::ZERO).await,
        "device 1",
    );
    ok(
        redeem(&*store, &fx, &token, &device(2), at(2), Leeway::ZERO).await,
        "device 2",
    );
    ok(
        redeem(&*store, &fx, &token, &device(1), at(3), Leeway::ZERO).await,
        "device 1 replay",
    );
    ok(
        redeem(&*store, &fx, &token, &device(3), at(4), Leeway::ZERO).await,
        "device 3",
    );
    rejected(
        redeem(&*store, &fx, &token, &device(4), at(5), Leeway::ZERO).await,
        "device 4 exhausted",
    );
    ok(
        redeem(&*store, &fx, &token, &device(2), at(6), Leeway::ZERO).await,
        "device 2 replay",
    );
    let rec = |d: u32, s: i64| Redemption {
        device: device(d),
        redeemed_at: at(s),
    };
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![rec(1, 1), rec(2, 2), rec(3, 4)],
        "one record per device, with its first redemption time, oldest first"
    );
    assert_eq!(
        must_redemptions(&*store, unused.id()).await,
        vec![],
        "an unredeemed token has no records"
    );

    // Servers with skewed clocks: the later redemption carries the earlier time. Oldest
    // first means by time; equal times keep redemption order.
    let skewed = fx.issue(
        spec("acme", "sales").with_usage_limit(UsageLimit::Unlimited),
        now,
        None,
    );
    must_insert(&*store, &skewed).await;
    for (d, s) in [(10, 20), (13, 10), (12, 15), (11, 10)] {
        ok(
            redeem(&*store, &fx, &skewed, &device(d), at(s), Leeway::ZERO).await,
            "skewed clocks",
        );
    }
    assert_eq!(
        must_redemptions(&*store, skewed.id()).await,
        vec![rec(13, 10), rec(11, 10), rec(12, 15), rec(10, 20)],
        "records are ordered by redemption time, ties in redemption order (not by device)"
    );
}
