//! Listing: filters and paging.

use std::sync::Arc;

use crate::core::rules::Leeway;
use crate::core::token::{ExpirySpec, Status, Token, TokenId};
use crate::store::{PageCursor, RevokeTarget, TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, device, enrolled, group, ids, leeway, list_ids, must_insert, must_list, must_revoke,
    ordered, org, policy, random_batch, redeem, revocation, secs, spec, t0,
};

/// Listing filters: organization, group (with subgroups; not string prefixes; `_` is not a
/// wildcard), policy, status at the query's `now` and leeway, batch, and combinations.
pub async fn list_filters<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    let b1 = random_batch();
    let b2 = random_batch();
    let wifi = policy("wifi");
    let vpn = policy("vpn");

    let emea = fx.issue(
        spec("acme", "emea").with_policies([wifi.clone()]),
        now,
        Some(b1),
    );
    let berlin = fx.issue(
        spec("acme", "emea/berlin").with_policies([wifi.clone(), vpn.clone()]),
        now + secs(1),
        Some(b1),
    );
    let emeax = fx.issue(
        spec("acme", "emeax").with_policies([vpn.clone()]),
        now + secs(2),
        None,
    );
    let lab = fx.issue(spec("acme", "lab_1/room"), now + secs(3), None);
    let lab_lookalike = fx.issue(spec("acme", "labX1/room"), now + secs(4), None);
    let pending = fx.issue(
        spec("acme", "apac").with_not_before(now + secs(3600)),
        now + secs(5),
        None,
    );
    let expired = fx.issue(
        spec("acme", "apac").with_expiry(ExpirySpec::At(now - secs(86_400))),
        now - secs(2 * 86_400),
        None,
    );
    let exhausted = fx.issue(spec("acme", "apac"), now + secs(6), None);
    let revoked = fx.issue(spec("acme", "apac"), now + secs(7), None);
    let globex = fx.issue(
        spec("globex", "emea").with_policies([wifi.clone()]),
        now + secs(8),
        Some(b2),
    );
    let all = [
        &emea,
        &berlin,
        &emeax,
        &lab,
        &lab_lookalike,
        &pending,
        &expired,
        &exhausted,
        &revoked,
        &globex,
    ];
    for token in all {
        must_insert(&*store, token).await;
    }
    enrolled(
        redeem(
            &*store,
            &fx,
            &exhausted,
            &device(1),
            now + secs(10),
            Leeway::ZERO,
        )
        .await,
        "using up the single-use token",
    );
    assert_eq!(
        must_revoke(
            &*store,
            &RevokeTarget::Token(revoked.id()),
            &revocation(now + secs(10), "test")
        )
        .await,
        1
    );

    let q = || TokenQuery::new(now + secs(20));
    let cases: Vec<(&str, TokenQuery, Vec<&Token>)> = vec![
        ("no filter", q(), all.to_vec()),
        (
            "organization acme",
            q().with_organization(org("acme")),
            all.iter()
                .copied()
                .filter(|t| t.organization().as_str() == "acme")
                .collect(),
        ),
        (
            "organization globex",
            q().with_organization(org("globex")),
            vec![&globex],
        ),
        (
            "unknown organization",
            q().with_organization(org("initech")),
            vec![],
        ),
        (
            "group emea with subgroups, not emeax",
            q().with_group(group("emea")),
            vec![&emea, &berlin, &globex],
        ),
        (
            "organization and group",
            q().with_organization(org("acme")).with_group(group("emea")),
            vec![&emea, &berlin],
        ),
        (
            "leaf group",
            q().with_group(group("emea/berlin")),
            vec![&berlin],
        ),
        (
            "group with an underscore is literal",
            q().with_group(group("lab_1")),
            vec![&lab],
        ),
        (
            "group that only a prefix of names matches",
            q().with_group(group("eme")),
            vec![],
        ),
        (
            "policy wifi",
            q().with_policy(wifi.clone()),
            vec![&emea, &berlin, &globex],
        ),
        (
            "policy vpn",
            q().with_policy(vpn.clone()),
            vec![&berlin, &emeax],
        ),
        ("unknown policy", q().with_policy(policy("none")), vec![]),
        (
            "status pending",
            q().with_status(Status::Pending),
            vec![&pending],
        ),
        (
            "status expired",
            q().with_status(Status::Expired),
            vec![&expired],
        ),
        (
            "status exhausted",
            q().with_status(Status::Exhausted),
            vec![&exhausted],
        ),
        (
            "status revoked",
            q().with_status(Status::Revoked),
            vec![&revoked],
        ),
        (
            "status active",
            q().with_status(Status::Active),
            vec![&emea, &berlin, &emeax, &lab, &lab_lookalike, &globex],
        ),
        ("batch 1", q().with_batch(b1), vec![&emea, &berlin]),
        ("batch 2", q().with_batch(b2), vec![&globex]),
        ("unknown batch", q().with_batch(random_batch()), vec![]),
        (
            "organization, policy, status and batch",
            q().with_organization(org("acme"))
                .with_policy(wifi.clone())
                .with_status(Status::Active)
                .with_batch(b1),
            vec![&emea, &berlin],
        ),
        (
            "status at a later now: the pending token is active",
            TokenQuery::new(now + secs(3600)).with_status(Status::Pending),
            vec![],
        ),
        (
            "status with leeway: 30 s before not-before counts as active",
            TokenQuery::new(now + secs(3600 - 30))
                .with_leeway(leeway(30))
                .with_group(group("apac"))
                .with_status(Status::Active),
            vec![&pending],
        ),
        (
            "status without leeway: 30 s before not-before is pending",
            TokenQuery::new(now + secs(3600 - 30))
                .with_group(group("apac"))
                .with_status(Status::Pending),
            vec![&pending],
        ),
    ];
    for (what, query, expected) in cases {
        assert_eq!(
            list_ids(&*store, &query).await,
            ordered(&expected),
            "list filter `{what}` returned the wrong tokens (or order)"
        );
    }

    // Listed records are the current records.
    let listed = must_list(&*store, &q().with_organization(org("globex"))).await;
    assert_eq!(
        listed,
        vec![globex.clone()],
        "listed records equal the stored records"
    );
    let listed = must_list(&*store, &q().with_status(Status::Exhausted)).await;
    assert_eq!(
        listed[0].uses(),
        1,
        "a listed record shows its current use count"
    );
}

/// Paging: order by `created_at` then id, cursors from `next`, no gaps or duplicates at any
/// page size, cursors that match no token, and page sizes clamped to `1..=1000`.
pub async fn list_paging<S: TokenStore + 'static>(store: Arc<S>) {
    let fx = Fixture::new();
    let now = t0();
    // 30 tokens over 10 instants (3 per instant, ties broken by id), inserted out of order.
    let mut tokens: Vec<Token> = (0..30)
        .map(|i| {
            let g = if i % 2 == 0 { "even" } else { "odd" };
            fx.issue(spec("acme", g), now + secs((i * 7) % 10), None)
        })
        .collect();
    tokens.reverse();
    for token in &tokens {
        must_insert(&*store, token).await;
    }
    let refs: Vec<&Token> = tokens.iter().collect();
    let expected = ordered(&refs);

    for limit in [1, 2, 7, 29, 30, 31, TokenQuery::MAX_LIMIT] {
        let query = TokenQuery::new(now).with_limit(limit);
        let mut pages = 0;
        let mut seen = Vec::new();
        let mut page_query = query.clone();
        loop {
            let page = store
                .list(&page_query)
                .await
                .unwrap_or_else(|e| panic!("list failed: {e}"));
            pages += 1;
            assert!(
                page.tokens.len() <= limit,
                "page larger than the limit {limit}"
            );
            seen.extend(ids(&page.tokens));
            match page.next {
                Some(next) => page_query = page_query.clone().with_after(next),
                None => break,
            }
            assert!(pages <= 31, "paging with limit {limit} does not end");
        }
        assert_eq!(
            seen, expected,
            "paging with limit {limit}: all tokens, in order, once each"
        );
        assert!(
            pages <= 30usize.div_ceil(limit) + 1,
            "paging with limit {limit} took {pages} pages"
        );
    }

    // A cursor taken from a token starts strictly after it.
    let sorted: Vec<Token> = {
        let mut s = tokens.clone();
        s.sort_by_key(PageCursor::after);
        s
    };
    let page = store
        .list(
            &TokenQuery::new(now)
                .with_after(PageCursor::after(&sorted[12]))
                .with_limit(5),
        )
        .await
        .expect("list after a cursor");
    assert_eq!(
        ids(&page.tokens),
        ids(&sorted[13..18]),
        "the page after token 12"
    );

    // A cursor that matches no token: same instant as token 5, largest id.
    let cursor = PageCursor {
        created_at: sorted[5].created_at(),
        id: TokenId::from_bytes([0xff; 16]),
    };
    let after: Vec<TokenId> = sorted
        .iter()
        .filter(|t| PageCursor::after(t) > cursor)
        .map(Token::id)
        .collect();
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now).with_after(cursor).with_limit(4)
        )
        .await,
        after,
        "a cursor between tokens"
    );
    // A cursor with the smallest id at the same instant includes that instant's tokens.
    let cursor = PageCursor {
        created_at: sorted[5].created_at(),
        id: TokenId::from_bytes([0; 16]),
    };
    let after: Vec<TokenId> = sorted
        .iter()
        .filter(|t| PageCursor::after(t) > cursor)
        .map(Token::id)
        .collect();
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now).with_after(cursor).with_limit(4)
        )
        .await,
        after,
        "a cursor before an instant's tokens"
    );

    // Filters and paging together.
    let odd: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.group().as_str() == "odd")
        .collect();
    assert_eq!(
        list_ids(
            &*store,
            &TokenQuery::new(now).with_group(group("odd")).with_limit(4)
        )
        .await,
        ordered(&odd),
        "paging through a filtered listing"
    );

    // Page sizes outside 1..=MAX_LIMIT are clamped when the query is built.
    let query = TokenQuery::new(now).with_limit(0);
    let page = store.list(&query).await.expect("list with limit 0");
    assert_eq!(
        ids(&page.tokens),
        expected[..1],
        "a page size of 0 is treated as 1"
    );
    assert!(page.next.is_some(), "more tokens follow a page of one");
    let query = TokenQuery::new(now).with_limit(usize::MAX);
    let page = store.list(&query).await.expect("list with a huge limit");
    assert_eq!(
        ids(&page.tokens),
        expected,
        "a huge page size is clamped, not an error"
    );
}
