//! Values that must come back exactly: awkward Unicode, control characters, microsecond
//! instants.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};

use crate::core::enrollment::Redemption;
use crate::core::error::Rejection;
use crate::core::rules::Leeway;
use crate::core::token::{Expiry, ExpirySpec, Metadata, Revocation};
use crate::store::{PageCursor, RevokeTarget, TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, MICRO, device, enrolled, limited, list_ids, must_get, must_insert, must_list,
    must_redemptions, must_revoke, redeem, rejected, revocation, secs, spec, t0,
};

fn awkward_metadata() -> Metadata {
    let mut pairs: Vec<(String, String)> = [
        ("emoji", "🚀📱👩‍💻🏳️‍🌈"),
        ("rtl", "مرحبا بالعالم שלום"),
        ("combining", "e\u{301}a\u{308}\u{20dd}"),
        ("cjk", "漢字かなカナ한국어"),
        ("quotes", "'\"`;-- /* */"),
        ("backslashes", "C:\\path\\to \\n \\u0000 \\\\"),
        ("sql", "'); DROP TABLE tokens; --"),
        ("json", "{\"a\":[1,2,{\"b\":null}]}"),
        ("whitespace", " \t\n\r\u{a0}\u{2028}\u{2029} padded "),
        ("edges", "\u{FFFD}\u{FEFF}\u{FFFF}\u{10FFFF}\u{E000}"),
        ("wildcards", "100% _x_ * ? [a-z]"),
        ("empty value", ""),
        ("🔑 ключ", "значение"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let used: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    // Fill to exactly Metadata::MAX_BYTES with 3-byte characters and ASCII.
    let room = Metadata::MAX_BYTES - used - "pad".len();
    let pad = "€".repeat(room / 3) + &"x".repeat(room % 3);
    pairs.push(("pad".to_string(), pad));
    let metadata = Metadata::from_pairs(pairs).expect("exactly at the metadata bound");
    assert_eq!(
        metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>(),
        Metadata::MAX_BYTES
    );
    metadata
}

/// 4 KiB of awkward Unicode metadata, a Unicode description and a Unicode revocation reason
/// round-trip exactly through insert, get, list, redeem and revoke.
pub async fn metadata_round_trip<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let metadata = awkward_metadata();
    let description = "Büro 東京 🚀 'single' \"double\" \\ back \u{2028} tab\t end".to_string();
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(2))
            .with_metadata(metadata.clone())
            .with_description(description.clone()),
        now,
        None,
    );
    let max_description = fx.issue(
        spec("acme", "sales")
            .with_description("ü".repeat(crate::core::record::MAX_DESCRIPTION / 2)),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    must_insert(&*store, &max_description).await;
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(stored.metadata(), &metadata, "metadata round-trips exactly");
    assert_eq!(
        stored.description(),
        description,
        "description round-trips exactly"
    );
    assert_eq!(stored, token);
    assert_eq!(
        must_get(&*store, max_description.id()).await,
        max_description,
        "1 KiB description"
    );
    let listed = must_list(&*store, &TokenQuery::new(now)).await;
    assert!(listed.contains(&token), "listing returns the same metadata");
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "redeem",
    );
    assert_eq!(e.metadata, metadata, "the enrollment carries the metadata");
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "replay",
    );
    assert_eq!(e.metadata, metadata, "a replay carries the metadata");

    let reason = "Gerät verloren 📵 «quoted» 'x' \\ \u{202e}rtl";
    let rev = revocation(now + secs(1), reason);
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id())
            .await
            .revocation()
            .map(|r| r.reason()),
        Some(reason),
        "revocation reason round-trips exactly"
    );
    let long = "ß".repeat(Revocation::MAX_REASON / 2);
    let rev = revocation(now + secs(1), &long);
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(max_description.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, max_description.id()).await.revocation(),
        Some(&rev),
        "1 KiB reason"
    );
}

/// NUL and other control characters are valid in metadata, descriptions and reasons, so
/// they must round-trip (a store cannot reject a record the core accepts).
pub async fn nul_characters_round_trip<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let metadata = Metadata::from_pairs([
        ("nul", "before\u{0}after"),
        ("key\u{0}with nul", "v"),
        ("controls", "\u{1}\u{7}\u{1b}[31m\u{7f}\u{80}\u{9f}"),
    ])
    .expect("small metadata");
    let description = "line\u{0}after nul \u{1}";
    let token = fx.issue(
        spec("acme", "sales")
            .with_metadata(metadata.clone())
            .with_description(description),
        now,
        None,
    );
    must_insert(&*store, &token).await;
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(
        stored.metadata(),
        &metadata,
        "metadata with NUL round-trips"
    );
    assert_eq!(
        stored.description(),
        description,
        "description with NUL round-trips"
    );
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), now, Leeway::ZERO).await,
        "redeem",
    );
    assert_eq!(e.metadata, metadata);
    let rev = revocation(now, "reason\u{0}with nul");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id()).await.revocation(),
        Some(&rev),
        "reason with NUL round-trips"
    );
}

/// Microsecond instants come back exactly: creation, window, revocation, redemption, the
/// rejections that report them, and cursors built from them.
pub async fn timestamps_round_trip<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let created = t0() + TimeDelta::microseconds(123_456);
    let nb = created + secs(1) + MICRO;
    let far = Utc
        .with_ymd_and_hms(2999, 12, 31, 23, 59, 59)
        .single()
        .expect("valid instant")
        + TimeDelta::microseconds(999_999);
    let token = fx.issue(
        spec("acme", "sales")
            .with_usage_limit(limited(3))
            .with_not_before(nb)
            .with_expiry(ExpirySpec::At(far)),
        created,
        None,
    );
    let sibling = fx.issue(spec("acme", "sales"), created + MICRO, None);
    must_insert(&*store, &token).await;
    must_insert(&*store, &sibling).await;
    let stored = must_get(&*store, token.id()).await;
    assert_eq!(
        stored.created_at(),
        created,
        "created_at to the microsecond"
    );
    assert_eq!(
        stored.validity().not_before,
        Some(nb),
        "not_before to the microsecond"
    );
    assert_eq!(
        stored.validity().expiry,
        Expiry::At(far),
        "expiry in 2999 to the microsecond"
    );
    assert_eq!(stored, token);

    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device(1), nb - MICRO, Leeway::ZERO).await,
            "1 µs early"
        ),
        Rejection::NotYetValid {
            not_before: nb,
            now: nb - MICRO
        }
    );
    let at = nb + TimeDelta::microseconds(654_321);
    let e = enrolled(
        redeem(&*store, &fx, &token, &device(1), at, Leeway::ZERO).await,
        "redeem",
    );
    assert_eq!(e.redeemed_at, at);
    let replay = enrolled(
        redeem(&*store, &fx, &token, &device(1), at + secs(5), Leeway::ZERO).await,
        "replay",
    );
    assert_eq!(
        replay.redeemed_at, at,
        "a replay reports the stored first redemption time exactly"
    );
    assert_eq!(
        must_redemptions(&*store, token.id()).await,
        vec![Redemption {
            device: device(1),
            redeemed_at: at
        }]
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device(2), far, Leeway::ZERO).await,
            "at the expiry"
        ),
        Rejection::Expired {
            expires_at: far,
            now: far
        }
    );

    // Cursors at microsecond resolution: the 1 µs younger sibling is the only one after.
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(created).with_after(PageCursor::after(&token))
        )
        .await,
        vec![sibling.id()],
        "a cursor 1 µs before another token"
    );

    let revoked_at = created + TimeDelta::microseconds(777_777);
    let rev = revocation(revoked_at, "µs");
    assert_eq!(
        must_revoke(&*store, &RevokeTarget::Token(token.id()), &rev).await,
        1
    );
    assert_eq!(
        must_get(&*store, token.id()).await.revocation(),
        Some(&rev),
        "revoked_at to the microsecond"
    );
    assert_eq!(
        rejected(
            redeem(&*store, &fx, &token, &device(3), at, Leeway::ZERO).await,
            "revoked"
        ),
        Rejection::Revoked { revoked_at }
    );
}
