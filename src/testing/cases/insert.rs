//! Inserting and reading back: single records, duplicates, and batches (all or nothing, large).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;

use crate::core::error::StoreError;
use crate::core::rules::Leeway;
use crate::core::token::{ExpirySpec, Metadata, Token, TokenId, TokenSpec, UsageLimit};
use crate::store::{TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, device, enrolled, group, ids, limited, list_ids, must_be_absent, must_get,
    must_insert, must_insert_batch, must_list, must_redemptions, org, policy, random_batch,
    random_id, redeem, secs, spec, t0,
};

/// A stored record comes back field for field; an unknown id gives `None`.
pub async fn insert_and_get<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let token = fx.issue(
        TokenSpec::new(org("acme"), group("emea/berlin"))
            .with_policies([policy("wifi-corp"), policy("vpn")])
            .with_usage_limit(limited(25))
            .with_not_before(now + secs(3600))
            .with_expiry(ExpirySpec::At(now + secs(30 * 86_400)))
            .with_description("Berlin laptops, Q3 refresh")
            .with_metadata(
                Metadata::from_pairs([("site", "berlin"), ("cost_centre", "4711")])
                    .expect("small metadata"),
            ),
        now,
        Some(random_batch()),
    );
    must_insert(&*store, &token).await;
    assert_eq!(
        must_get(&*store, token.id()).await,
        token,
        "get must return exactly the inserted record"
    );

    let other = fx.issue(
        spec("globex", "sales")
            .with_usage_limit(UsageLimit::Unlimited)
            .with_expiry(ExpirySpec::Never),
        now + secs(1),
        None,
    );
    must_insert(&*store, &other).await;
    assert_eq!(must_get(&*store, other.id()).await, other, "second record");
    assert_eq!(
        must_get(&*store, token.id()).await,
        token,
        "inserting another token must not change the first"
    );
    must_be_absent(&*store, random_id(), "it was never inserted").await;
}

/// Inserting an existing id fails with `Duplicate(id)` and leaves the stored record as it was.
pub async fn insert_duplicate_rejected<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let original = fx.issue(
        spec("acme", "sales").with_usage_limit(limited(3)),
        now,
        None,
    );
    must_insert(&*store, &original).await;

    let imposter = fx.issue_with(
        original.id(),
        fx.active,
        spec("globex", "other").with_usage_limit(UsageLimit::Unlimited),
        now + secs(60),
        None,
    );
    match store.insert(imposter.clone()).await {
        Err(StoreError::Duplicate(id)) => {
            assert_eq!(id, original.id(), "duplicate error names the id")
        }
        other => panic!("inserting an existing id must fail with Duplicate, got {other:?}"),
    }
    assert_eq!(
        must_get(&*store, original.id()).await,
        original,
        "a rejected duplicate must not overwrite the stored record"
    );

    // A duplicate insert after a redemption does not reset the use count or the records.
    enrolled(
        redeem(&*store, &fx, &original, &device(1), now, Leeway::ZERO).await,
        "first redemption",
    );
    match store.insert(original.clone()).await {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, original.id()),
        other => panic!("re-inserting a redeemed token must fail with Duplicate, got {other:?}"),
    }
    assert_eq!(
        must_get(&*store, original.id()).await.uses(),
        1,
        "a rejected duplicate must not reset the use count"
    );
    assert_eq!(
        must_redemptions(&*store, original.id()).await.len(),
        1,
        "a rejected duplicate must not clear the redemption records"
    );
}

/// A batch containing an existing id, or the same id twice, stores nothing; a valid batch
/// stores every token.
pub async fn batch_is_all_or_nothing<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let existing = fx.issue(spec("acme", "sales"), now, None);
    must_insert(&*store, &existing).await;

    // An id that already exists, at the end of the batch.
    let batch = random_batch();
    let b = fx.issue(spec("acme", "sales"), now, Some(batch));
    let c = fx.issue(spec("acme", "sales"), now, Some(batch));
    let clash = fx.issue_with(
        existing.id(),
        fx.active,
        spec("acme", "x"),
        now,
        Some(batch),
    );
    match store.insert_batch(vec![b.clone(), c.clone(), clash]).await {
        Err(StoreError::Duplicate(id)) => {
            assert_eq!(id, existing.id(), "duplicate error names the clashing id")
        }
        other => panic!("a batch with an existing id must fail with Duplicate, got {other:?}"),
    }
    must_be_absent(&*store, b.id(), "its batch failed").await;
    must_be_absent(&*store, c.id(), "its batch failed").await;
    assert_eq!(
        must_get(&*store, existing.id()).await,
        existing,
        "a failed batch must not overwrite the existing record"
    );

    // The same id twice inside the batch.
    let d = fx.issue(spec("acme", "sales"), now, Some(batch));
    let e = fx.issue(spec("acme", "sales"), now, Some(batch));
    let d_again = fx.issue_with(d.id(), fx.active, spec("acme", "y"), now, Some(batch));
    match store
        .insert_batch(vec![d.clone(), e.clone(), d_again])
        .await
    {
        Err(StoreError::Duplicate(id)) => {
            assert_eq!(id, d.id(), "duplicate error names the repeated id")
        }
        other => panic!("a batch repeating an id must fail with Duplicate, got {other:?}"),
    }
    must_be_absent(&*store, d.id(), "its batch failed").await;
    must_be_absent(&*store, e.id(), "its batch failed").await;
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now)).await,
        vec![existing.id()],
        "after two failed batches only the first token is stored"
    );
    assert!(
        list_ids(&*store, &TokenQuery::new(now).with_batch(batch))
            .await
            .is_empty(),
        "no token of the failed batches is listed"
    );

    // A valid batch stores everything.
    let good_batch = random_batch();
    let good: Vec<Token> = (0..3)
        .map(|i| fx.issue(spec("acme", "sales"), now + secs(i), Some(good_batch)))
        .collect();
    must_insert_batch(&*store, &good).await;
    for token in &good {
        assert_eq!(&must_get(&*store, token.id()).await, token, "batch member");
    }
    assert_eq!(
        list_ids(&*store, &TokenQuery::new(now).with_batch(good_batch)).await,
        ids(&good),
        "the valid batch is listed in order"
    );
}

/// 10,000 tokens in one batch are stored and listed; a 10,001-token batch whose last token
/// clashes stores none.
pub async fn batch_large<S: TokenStore + 'static>(store: Arc<S>) {
    const N: usize = 10_000;
    let fx = Fixture::new();
    let now = t0();
    let batch = random_batch();
    let tokens: Vec<Token> = (0..N)
        .map(|i| {
            let created = now + TimeDelta::milliseconds((i % 50) as i64);
            fx.issue(
                spec("acme", "fleet").with_usage_limit(limited(2)),
                created,
                Some(batch),
            )
        })
        .collect();
    must_insert_batch(&*store, &tokens).await;

    let listed = must_list(
        &*store,
        &TokenQuery::new(now)
            .with_batch(batch)
            .with_limit(TokenQuery::MAX_LIMIT),
    )
    .await;
    assert_eq!(listed.len(), N, "every token of the batch is listed");
    let listed_ids: BTreeSet<TokenId> = listed.iter().map(Token::id).collect();
    assert_eq!(listed_ids.len(), N, "no token is listed twice");
    assert_eq!(
        listed_ids,
        tokens.iter().map(Token::id).collect::<BTreeSet<_>>(),
        "the listed ids are the inserted ids"
    );
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(
            must_get(&*store, tokens[i].id()).await,
            tokens[i],
            "token {i} of the batch"
        );
    }

    // A second large batch whose last token clashes with the first batch: nothing stored.
    let second = random_batch();
    let mut failing: Vec<Token> = (0..N)
        .map(|_| fx.issue(spec("acme", "fleet"), now, Some(second)))
        .collect();
    failing.push(fx.issue_with(
        tokens[N - 1].id(),
        fx.active,
        spec("acme", "fleet"),
        now,
        Some(second),
    ));
    match store.insert_batch(failing.clone()).await {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, tokens[N - 1].id(), "the clashing id"),
        other => panic!(
            "a large batch ending with an existing id must fail with Duplicate, got {other:?}"
        ),
    }
    assert!(
        list_ids(&*store, &TokenQuery::new(now).with_batch(second))
            .await
            .is_empty(),
        "no token of the failed large batch may be stored"
    );
    must_be_absent(&*store, failing[0].id(), "its batch failed").await;
    assert_eq!(
        must_get(&*store, tokens[N - 1].id()).await,
        tokens[N - 1],
        "the clashing record is unchanged"
    );
}
