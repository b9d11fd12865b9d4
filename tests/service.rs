//! The `Onboarding` service end to end over a `MemoryStore`, on a `ManualClock`.

mod support;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::error::Error as _;

use chrono::{DateTime, TimeDelta, Utc};
use onboarding_token::rules::RedeemRequest;
use onboarding_token::token::{MAX_DESCRIPTION, MAX_POLICIES};
use onboarding_token::*;
use proptest::prelude::*;
// Starts in March 2026.
use support::fixture::{dev, group, limited, org, policy, spec, t0_2026 as t0, uniform_key as key};

type Service<R = SystemRng> = Onboarding<MemoryStore, ManualClock, R>;

fn setup() -> (Service, ManualClock) {
    let clock = ManualClock::new(t0());
    let service =
        Onboarding::new(Keyring::new(key(1)), MemoryStore::new()).with_clock(clock.clone());
    (service, clock)
}

/// Always draws zeros: every id it produces collides.
struct ZeroRng;

impl rand_core::TryRng for ZeroRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ZeroRng {}

fn zero_rng_service() -> Service<ZeroRng> {
    let (service, _) = setup();
    service.with_rng(ZeroRng)
}

fn rejection(err: &RedeemError) -> &Rejection {
    err.rejection().expect("a rejection, not a store failure")
}

#[tokio::test]
async fn issue_redeem_replay_exhausted_flow() {
    let (service, clock) = setup();
    let issued = service
        .issue(
            spec("acme", "emea/berlin")
                .with_policies([policy("wifi"), policy("vpn")])
                .with_usage_limit(limited(2))
                .with_metadata(Metadata::from_pairs([("site", "mitte")]).unwrap()),
        )
        .await
        .unwrap();
    let text = issued.secret.expose_secret();
    assert_eq!(issued.secret.token_id(), issued.token.id());
    assert_eq!(issued.token.uses(), 0);
    assert_eq!(issued.token.created_at(), t0());

    let e1 = service.redeem(text, &dev("SN-1")).await.unwrap();
    assert_eq!(e1.token_id, issued.token.id());
    assert_eq!(*e1.organization(), org("acme"));
    assert_eq!(*e1.group(), group("emea/berlin"));
    assert_eq!(e1.policies(), &[policy("wifi"), policy("vpn")]);
    assert_eq!(e1.metadata.get("site"), Some("mitte"));
    assert_eq!((e1.uses, e1.remaining(), e1.replay), (1, Some(1), false));
    assert_eq!(e1.redeemed_at, t0());

    clock.advance(TimeDelta::minutes(5));
    let e2 = service.redeem(text, &dev("SN-2")).await.unwrap();
    assert_eq!((e2.uses, e2.remaining(), e2.replay), (2, Some(0), false));
    assert_eq!(e2.redeemed_at, t0() + TimeDelta::minutes(5));

    // SN-1 retries: the original enrollment, flagged as a replay; nothing consumed.
    clock.advance(TimeDelta::minutes(5));
    let again = service.redeem(text, &dev("SN-1")).await.unwrap();
    assert!(again.replay);
    assert_eq!(again.redeemed_at, t0());
    assert_eq!(again.uses, 2);
    assert_eq!(again.metadata, e1.metadata);
    assert_eq!(again.group(), e1.group());

    let err = service.redeem(text, &dev("SN-3")).await.unwrap_err();
    assert_eq!(rejection(&err), &Rejection::Exhausted { limit: 2 });
    assert_eq!(err.device_facing(), DeviceRejection::Exhausted);

    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    assert_eq!(record.uses(), 2);
    assert_eq!(service.status(&record), Status::Exhausted);
    let redemptions = service.redemptions(issued.token.id()).await.unwrap();
    assert_eq!(
        redemptions,
        [
            Redemption {
                device: dev("SN-1"),
                redeemed_at: t0()
            },
            Redemption {
                device: dev("SN-2"),
                redeemed_at: t0() + TimeDelta::minutes(5)
            },
        ]
    );
}

#[tokio::test]
async fn single_use_is_the_default() {
    let (service, _) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    assert_eq!(issued.token.usage_limit(), UsageLimit::Once);
    service
        .redeem(issued.secret.expose_secret(), &dev("a"))
        .await
        .unwrap();
    let err = service
        .redeem(issued.secret.expose_secret(), &dev("b"))
        .await
        .unwrap_err();
    assert_eq!(rejection(&err), &Rejection::Exhausted { limit: 1 });
}

#[tokio::test]
async fn revoke_by_id_rejects_the_next_redemption_and_keeps_the_reason() {
    let (service, clock) = setup();
    let issued = service
        .issue(spec("acme", "g").with_usage_limit(UsageLimit::Unlimited))
        .await
        .unwrap();
    let text = issued.secret.expose_secret();
    service.redeem(text, &dev("a")).await.unwrap();

    clock.advance(TimeDelta::hours(1));
    let revoked_at = t0() + TimeDelta::hours(1);
    let n = service
        .revoke(&RevokeTarget::Token(issued.token.id()), "posted on a forum")
        .await
        .unwrap();
    assert_eq!(n, 1);

    for device in ["a", "b"] {
        let err = service.redeem(text, &dev(device)).await.unwrap_err();
        assert_eq!(rejection(&err), &Rejection::Revoked { revoked_at });
        assert_eq!(err.device_facing(), DeviceRejection::Revoked);
    }
    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    let revocation = record.revocation().unwrap();
    assert_eq!(revocation.reason(), "posted on a forum");
    assert_eq!(revocation.revoked_at(), revoked_at);
    assert_eq!(service.status(&record), Status::Revoked);
    assert_eq!(record.uses(), 1);
}

#[tokio::test]
async fn revoking_twice_keeps_the_first_revocation() {
    let (service, clock) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    let target = RevokeTarget::Token(issued.token.id());
    assert_eq!(service.revoke(&target, "first").await.unwrap(), 1);
    clock.advance(TimeDelta::hours(2));
    assert_eq!(service.revoke(&target, "second").await.unwrap(), 0);
    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    let r = record.revocation().unwrap();
    assert_eq!((r.reason(), r.revoked_at()), ("first", t0()));
    // Bulk revocation counts only newly revoked tokens.
    let n = service
        .revoke(
            &RevokeTarget::Group {
                organization: org("acme"),
                group: group("g"),
            },
            "third",
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn revoking_an_unknown_token_is_an_error() {
    let (service, _) = setup();
    let id = TokenId::from_bytes([9; 16]);
    let err = service
        .revoke(&RevokeTarget::Token(id), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AdminError::Store(StoreError::NotFound(missing)) if *missing == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_string()), "{err}");
}

#[tokio::test]
async fn revoking_by_group_includes_subgroups_within_one_organization() {
    let (service, _) = setup();
    let mut ids = Vec::new();
    for (o, g) in [
        ("acme", "emea"),
        ("acme", "emea/berlin"),
        ("acme", "emea/berlin/mitte"),
        ("acme", "emeafoo"),
        ("acme", "apac"),
        ("globex", "emea"),
    ] {
        ids.push(service.issue(spec(o, g)).await.unwrap().token.id());
    }
    let n = service
        .revoke(
            &RevokeTarget::Group {
                organization: org("acme"),
                group: group("emea"),
            },
            "office closed",
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let mut revoked = Vec::new();
    for id in &ids {
        let t = service.get(*id).await.unwrap().unwrap();
        revoked.push(t.revocation().map(|r| r.reason().to_owned()));
    }
    let yes = Some("office closed".to_string());
    assert_eq!(
        revoked,
        [yes.clone(), yes.clone(), yes, None, None, None],
        "only acme's emea and its subgroups"
    );
}

#[tokio::test]
async fn revoking_a_batch_revokes_exactly_that_batch() {
    let (service, _) = setup();
    let batch = service.issue_many(spec("acme", "g"), 5).await.unwrap();
    let other = service.issue_many(spec("acme", "g"), 3).await.unwrap();
    let single = service.issue(spec("acme", "g")).await.unwrap();
    let n = service
        .revoke(&RevokeTarget::Batch(batch.batch), "lost box")
        .await
        .unwrap();
    assert_eq!(n, 5);
    for issued in &batch.tokens {
        let err = service
            .redeem(issued.secret.expose_secret(), &dev("d"))
            .await
            .unwrap_err();
        assert!(matches!(rejection(&err), Rejection::Revoked { .. }));
    }
    for issued in other.tokens.iter().chain([&single]) {
        service
            .redeem(issued.secret.expose_secret(), &dev("d"))
            .await
            .unwrap();
    }
    // An unknown batch matches nothing; that is not an error.
    let none = service
        .revoke(&RevokeTarget::Batch(BatchId::from_bytes([7; 16])), "x")
        .await
        .unwrap();
    assert_eq!(none, 0);
}

#[tokio::test]
async fn an_overlong_revocation_reason_is_refused_and_revokes_nothing() {
    let (service, _) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    let err = service
        .revoke(
            &RevokeTarget::Token(issued.token.id()),
            &"x".repeat(Revocation::MAX_REASON + 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AdminError::Spec(SpecError::ReasonTooLong { max: 1024 })
    ));
    assert!(err.to_string().contains("1024"), "{err}");
    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    assert!(record.revocation().is_none());
}

#[tokio::test]
async fn issue_batch_is_all_or_nothing_on_an_invalid_spec() {
    let (service, _) = setup();
    let specs = vec![
        spec("acme", "a"),
        spec("acme", "b"),
        spec("acme", "c").with_expiry(ExpirySpec::At(t0() - TimeDelta::seconds(1))),
        spec("acme", "d"),
    ];
    let err = service.issue_batch(specs).await.unwrap_err();
    assert!(
        matches!(err, AdminError::Spec(SpecError::ExpiresBeforeIssue { .. })),
        "{err:?}"
    );
    assert!(service.store().is_empty());
}

#[tokio::test]
async fn issue_batch_with_colliding_ids_stores_nothing() {
    let service = zero_rng_service();
    let err = service
        .issue_batch(vec![spec("acme", "a"), spec("acme", "b")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::Store(StoreError::Duplicate(_))),
        "{err:?}"
    );
    assert!(service.store().is_empty());

    // A single token with the colliding id goes in; then a batch colliding with it fails
    // and leaves the store as it was.
    let first = service.issue(spec("acme", "a")).await.unwrap();
    let err = service
        .issue_batch(vec![spec("acme", "b")])
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::Store(StoreError::Duplicate(id)) if id == first.token.id()));
    let err = service.issue(spec("acme", "c")).await.unwrap_err();
    assert!(matches!(err, AdminError::Store(StoreError::Duplicate(_))));
    assert_eq!(service.store().len(), 1);
    let kept = service.get(first.token.id()).await.unwrap().unwrap();
    assert_eq!(kept.group(), &group("a"));
}

#[tokio::test]
async fn empty_batches_are_refused() {
    let (service, _) = setup();
    assert!(matches!(
        service.issue_batch(Vec::new()).await.unwrap_err(),
        AdminError::Spec(SpecError::EmptyBatch)
    ));
    assert!(matches!(
        service.issue_many(spec("acme", "g"), 0).await.unwrap_err(),
        AdminError::Spec(SpecError::EmptyBatch)
    ));
    assert!(service.store().is_empty());
}

#[tokio::test]
async fn issue_batch_keeps_spec_order_and_tags_every_token() {
    let (service, _) = setup();
    let groups = ["a", "b", "c", "d"];
    let issued = service
        .issue_batch(groups.iter().map(|g| spec("acme", g)).collect())
        .await
        .unwrap();
    assert_eq!(issued.tokens.len(), 4);
    for (i, g) in issued.tokens.iter().zip(groups) {
        assert_eq!(i.token.group().as_str(), g);
        assert_eq!(i.token.batch(), Some(issued.batch));
        assert_eq!(i.secret.token_id(), i.token.id());
        let stored = service.get(i.token.id()).await.unwrap().unwrap();
        assert_eq!(stored, i.token);
        let e = service
            .redeem(i.secret.expose_secret(), &dev("d"))
            .await
            .unwrap();
        assert_eq!(e.group().as_str(), g);
    }
}

#[tokio::test]
async fn issue_many_issues_distinct_tokens_in_one_batch() {
    let (service, _) = setup();
    let issued = service
        .issue_many(spec("acme", "g").with_usage_limit(limited(3)), 20)
        .await
        .unwrap();
    let ids: BTreeSet<_> = issued.tokens.iter().map(|i| i.token.id()).collect();
    assert_eq!(ids.len(), 20);
    let strings: BTreeSet<_> = issued
        .tokens
        .iter()
        .map(|i| i.secret.expose_secret().to_string())
        .collect();
    assert_eq!(strings.len(), 20);
    assert!(
        issued
            .tokens
            .iter()
            .all(|i| i.token.batch() == Some(issued.batch) && i.token.usage_limit() == limited(3))
    );
    assert_eq!(service.store().len(), 20);
}

/// A population for the list tests: (org, group, policies, batch?) per token.
async fn population(service: &Service) -> (Vec<Token>, BatchId) {
    let mut tokens = Vec::new();
    for (o, g, ps) in [
        ("acme", "emea", vec!["wifi"]),
        ("acme", "emea/berlin", vec!["wifi", "vpn"]),
        ("acme", "emea/paris", vec!["vpn"]),
        ("acme", "emeafoo", vec![]),
        ("acme", "apac", vec!["wifi"]),
        ("globex", "emea", vec!["wifi"]),
        ("globex", "emea/berlin", vec!["kiosk"]),
    ] {
        let s = spec(o, g).with_policies(ps.into_iter().map(policy));
        tokens.push(service.issue(s).await.unwrap().token);
    }
    let batch = service
        .issue_many(
            spec("acme", "emea/berlin").with_policies([policy("kiosk")]),
            3,
        )
        .await
        .unwrap();
    tokens.extend(batch.tokens.into_iter().map(|i| i.token));
    (tokens, batch.batch)
}

async fn list_all(service: &Service, query: TokenQuery) -> Vec<Token> {
    let page = service
        .list(&query.with_limit(TokenQuery::MAX_LIMIT))
        .await
        .unwrap();
    assert!(page.next.is_none());
    page.tokens
}

fn ids(tokens: &[Token]) -> BTreeSet<TokenId> {
    tokens.iter().map(Token::id).collect()
}

fn ids_where(tokens: &[Token], f: impl Fn(&Token) -> bool) -> BTreeSet<TokenId> {
    tokens.iter().filter(|t| f(t)).map(Token::id).collect()
}

#[tokio::test]
async fn list_without_filters_returns_everything_in_order() {
    let (service, _) = setup();
    let (all, _) = population(&service).await;
    let listed = list_all(&service, service.query()).await;
    assert_eq!(ids(&listed), ids(&all));
    assert!(
        listed
            .windows(2)
            .all(|w| (w[0].created_at(), w[0].id()) < (w[1].created_at(), w[1].id()))
    );
}

#[tokio::test]
async fn list_filters_by_organization() {
    let (service, _) = setup();
    let (all, _) = population(&service).await;
    let listed = list_all(&service, service.query().with_organization(org("globex"))).await;
    assert_eq!(
        ids(&listed),
        ids_where(&all, |t| t.organization().as_str() == "globex")
    );
    assert_eq!(listed.len(), 2);
    let none = list_all(&service, service.query().with_organization(org("initech"))).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn list_filters_by_group_including_subgroups() {
    let (service, _) = setup();
    let (all, _) = population(&service).await;
    let listed = list_all(&service, service.query().with_group(group("emea"))).await;
    let expected = ids_where(&all, |t| {
        let g = t.group().as_str();
        g == "emea" || g.starts_with("emea/")
    });
    assert_eq!(ids(&listed), expected);
    assert!(listed.iter().all(|t| t.group().as_str() != "emeafoo"));
    // Organization and group together.
    let listed = list_all(
        &service,
        service
            .query()
            .with_organization(org("acme"))
            .with_group(group("emea/berlin")),
    )
    .await;
    assert_eq!(listed.len(), 4, "one single token and the batch of three");
}

#[tokio::test]
async fn list_filters_by_policy() {
    let (service, _) = setup();
    let (all, _) = population(&service).await;
    for p in ["wifi", "vpn", "kiosk", "none"] {
        let listed = list_all(&service, service.query().with_policy(policy(p))).await;
        assert_eq!(
            ids(&listed),
            ids_where(&all, |t| t.policies().contains(&policy(p))),
            "{p}"
        );
    }
}

#[tokio::test]
async fn list_filters_by_batch() {
    let (service, _) = setup();
    let (all, batch) = population(&service).await;
    let listed = list_all(&service, service.query().with_batch(batch)).await;
    assert_eq!(ids(&listed), ids_where(&all, |t| t.batch() == Some(batch)));
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn list_filters_by_status() {
    let (service, clock) = setup();
    let never = ExpirySpec::Never;
    let active = service
        .issue(spec("acme", "g").with_expiry(never))
        .await
        .unwrap();
    let pending = service
        .issue(
            spec("acme", "g")
                .with_not_before(t0() + TimeDelta::days(1))
                .with_expiry(never),
        )
        .await
        .unwrap();
    let exhausted = service
        .issue(spec("acme", "g").with_expiry(never))
        .await
        .unwrap();
    service
        .redeem(exhausted.secret.expose_secret(), &dev("d"))
        .await
        .unwrap();
    let expired = service
        .issue(spec("acme", "g").with_expiry(ExpirySpec::After(TimeDelta::hours(1))))
        .await
        .unwrap();
    let revoked = service
        .issue(spec("acme", "g").with_expiry(never))
        .await
        .unwrap();
    service
        .revoke(&RevokeTarget::Token(revoked.token.id()), "r")
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(2));

    for (status, issued) in [
        (Status::Active, &active),
        (Status::Pending, &pending),
        (Status::Exhausted, &exhausted),
        (Status::Expired, &expired),
        (Status::Revoked, &revoked),
    ] {
        let listed = list_all(&service, service.query().with_status(status)).await;
        assert_eq!(
            listed.iter().map(Token::id).collect::<Vec<_>>(),
            [issued.token.id()],
            "{status}"
        );
    }
    // Statuses are computed at the query's `now`: two hours earlier the expired one was active.
    let earlier = TokenQuery::new(t0()).with_status(Status::Active);
    let listed = list_all(&service, earlier).await;
    assert!(ids(&listed).contains(&expired.token.id()));
}

#[tokio::test]
async fn paging_visits_every_token_once_in_order() {
    let (service, clock) = setup();
    let mut expected = Vec::new();
    for round in 0..5 {
        // Several tokens share one creation time, so the id breaks ties.
        let batch = service
            .issue_many(spec("acme", "g"), 3 + round)
            .await
            .unwrap();
        expected.extend(batch.tokens.iter().map(|i| i.token.id()));
        clock.advance(TimeDelta::seconds(1));
    }
    let total = expected.len();
    assert_eq!(total, 25);

    let mut seen = Vec::new();
    let mut query = service.query().with_limit(7);
    let mut pages = 0;
    loop {
        let page = service.list(&query).await.unwrap();
        pages += 1;
        assert!(page.tokens.len() <= 7);
        seen.extend(page.tokens.iter().cloned());
        match page.next {
            Some(cursor) => {
                assert_eq!(cursor, PageCursor::after(page.tokens.last().unwrap()));
                // Cursors survive a trip through text, as in a URL.
                let text = cursor.to_string();
                query = query.clone().with_after(text.parse().unwrap());
            }
            None => break,
        }
        assert!(pages < 10, "paging does not terminate");
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), total, "no duplicates or gaps");
    assert_eq!(ids(&seen), expected.iter().copied().collect());
    assert!(
        seen.windows(2)
            .all(|w| (w[0].created_at(), w[0].id()) < (w[1].created_at(), w[1].id()))
    );
}

#[tokio::test]
async fn paging_with_a_filter() {
    let (service, clock) = setup();
    for i in 0..12 {
        let g = if i % 3 == 0 { "keep" } else { "skip" };
        service.issue(spec("acme", g)).await.unwrap();
        clock.advance(TimeDelta::milliseconds(10));
    }
    let mut query = service.query().with_group(group("keep")).with_limit(2);
    let mut seen = Vec::new();
    loop {
        let page = service.list(&query).await.unwrap();
        assert!(page.tokens.iter().all(|t| t.group().as_str() == "keep"));
        seen.extend(page.tokens);
        match page.next {
            Some(c) => query = query.clone().with_after(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn page_cursor_text_form_and_limits() {
    let cursor = PageCursor {
        created_at: t0(),
        id: TokenId::from_bytes([0xab; 16]),
    };
    let text = cursor.to_string();
    assert_eq!(text.parse::<PageCursor>().unwrap(), cursor);
    for bad in [
        "",
        "abc",
        "1.",
        ".abab",
        "x.abababababababababababababababab",
        "1.ABAB",
    ] {
        assert!(bad.parse::<PageCursor>().is_err(), "{bad}");
    }
    assert_eq!(TokenQuery::new(t0()).with_limit(0).limit(), 1);
    assert_eq!(
        TokenQuery::new(t0()).with_limit(1_000_000).limit(),
        TokenQuery::MAX_LIMIT
    );
    assert_eq!(TokenQuery::new(t0()).limit(), TokenQuery::DEFAULT_LIMIT);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Paging with any page size over any number of tokens yields each token exactly once,
    /// in (created at, id) order.
    #[test]
    fn paging_concatenates_to_the_full_listing(
        per_tick in proptest::collection::vec(1usize..4, 0..12),
        page_size in 1usize..9,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let (service, clock) = setup();
            let mut issued = BTreeSet::new();
            for n in per_tick {
                for i in service.issue_many(spec("acme", "g"), n).await.unwrap().tokens {
                    issued.insert(i.token.id());
                }
                clock.advance(TimeDelta::microseconds(1));
            }
            let mut query = service.query().with_limit(page_size);
            let mut seen: Vec<Token> = Vec::new();
            loop {
                let page = service.list(&query).await.unwrap();
                prop_assert!(page.tokens.len() <= page_size);
                seen.extend(page.tokens);
                match page.next {
                    Some(c) => query = query.clone().with_after(c),
                    None => break,
                }
            }
            prop_assert_eq!(seen.len(), issued.len());
            prop_assert_eq!(ids(&seen), issued);
            prop_assert!(seen.windows(2).all(|w| PageCursor::after(&w[0]) < PageCursor::after(&w[1])));
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn inspect_get_list_and_redemptions_never_consume() {
    let (service, _) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    let text = issued.secret.expose_secret();
    for _ in 0..3 {
        let (record, status) = service.inspect(text).await.unwrap();
        assert_eq!(record.id(), issued.token.id());
        assert_eq!(status, Status::Active);
        assert_eq!(record.uses(), 0);
        service.get(issued.token.id()).await.unwrap().unwrap();
        service.list(&service.query()).await.unwrap();
        service
            .list(&service.query().with_status(Status::Active))
            .await
            .unwrap();
        assert!(
            service
                .redemptions(issued.token.id())
                .await
                .unwrap()
                .is_empty()
        );
        service.verify(text).unwrap();
    }
    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    assert_eq!(record.uses(), 0);
    // The single use is still there.
    let e = service.redeem(text, &dev("d")).await.unwrap();
    assert!(!e.replay);
    let (record, status) = service.inspect(text).await.unwrap();
    assert_eq!((record.uses(), status), (1, Status::Exhausted));
}

#[tokio::test]
async fn inspect_rejects_forged_and_unknown_tokens() {
    let (service, _) = setup();
    // Signed by our key but never stored.
    let unknown = service.keyring().sign(&TokenId::from_bytes([5; 16]));
    let err = service.inspect(unknown.expose_secret()).await.unwrap_err();
    assert_eq!(
        rejection(&err),
        &Rejection::NotFound {
            id: TokenId::from_bytes([5; 16])
        }
    );
    let forged = Keyring::new(SigningKey::from_bytes(KeyId::from_bytes([1; 4]), &[0; 32]))
        .sign(&TokenId::from_bytes([5; 16]));
    let err = service.inspect(forged.expose_secret()).await.unwrap_err();
    assert_eq!(rejection(&err), &Rejection::BadSignature);
}

#[tokio::test]
async fn a_string_for_the_right_id_under_another_key_is_not_found() {
    let clock = ManualClock::new(t0());
    let mut ring = Keyring::new(key(1));
    ring.rotate(key(2)).unwrap();
    // The record says key 2; a string for the same id signed by key 1 verifies but must
    // not redeem.
    let service = Onboarding::new(ring, MemoryStore::new()).with_clock(clock);
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    assert_eq!(issued.token.key_id(), key(2).id());
    let other = service
        .keyring()
        .sign_with(key(1).id(), &issued.token.id())
        .unwrap();
    assert!(service.verify(other.expose_secret()).is_ok());
    let err = service
        .redeem(other.expose_secret(), &dev("d"))
        .await
        .unwrap_err();
    assert_eq!(
        rejection(&err),
        &Rejection::NotFound {
            id: issued.token.id()
        }
    );
    assert!(service.inspect(other.expose_secret()).await.is_err());
    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    assert_eq!(record.uses(), 0);
}

#[tokio::test]
async fn unknown_ids_in_admin_lookups() {
    let (service, _) = setup();
    let id = TokenId::from_bytes([3; 16]);
    assert_eq!(service.get(id).await.unwrap(), None);
    assert!(matches!(
        service.redemptions(id).await.unwrap_err(),
        StoreError::NotFound(missing) if missing == id
    ));
}

#[tokio::test]
async fn token_string_re_signs_to_the_same_string() {
    let (service, _) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    let again = service.token_string(&issued.token).unwrap();
    assert_eq!(again.expose_secret(), issued.secret.expose_secret());
    let stored = service.get(issued.token.id()).await.unwrap().unwrap();
    assert_eq!(
        service.token_string(&stored).unwrap().expose_secret(),
        issued.secret.expose_secret()
    );
}

#[tokio::test]
async fn a_token_outlives_key_rotation_but_not_retirement() {
    let clock = ManualClock::new(t0());
    let service =
        Onboarding::new(Keyring::new(key(1)), MemoryStore::new()).with_clock(clock.clone());
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    let text = issued.secret.expose_secret().to_string();
    let store = std::sync::Arc::new(MemoryStore::new());
    store.insert(issued.token.clone()).await.unwrap();

    let mut rotated = service.keyring().clone();
    rotated.rotate(key(2)).unwrap();
    let after_rotation =
        Onboarding::new(rotated.clone(), std::sync::Arc::clone(&store)).with_clock(clock.clone());
    assert_eq!(
        after_rotation
            .token_string(&issued.token)
            .unwrap()
            .expose_secret(),
        text
    );
    after_rotation.redeem(&text, &dev("d")).await.unwrap();

    rotated.retire(key(1).id()).unwrap();
    let after_retire = Onboarding::new(rotated, std::sync::Arc::clone(&store)).with_clock(clock);
    let err = after_retire.redeem(&text, &dev("d")).await.unwrap_err();
    assert_eq!(rejection(&err), &Rejection::UnknownKey(key(1).id()));
    assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
    assert!(after_retire.token_string(&issued.token).is_err());
}

async fn issue_err(spec: TokenSpec) -> SpecError {
    let (service, _) = setup();
    let err = service.issue(spec.clone()).await.unwrap_err();
    assert!(service.store().is_empty(), "an invalid spec stored a token");
    assert!(service.issue_batch(vec![spec]).await.is_err());
    assert!(service.store().is_empty());
    match err {
        AdminError::Spec(e) => e,
        other => panic!("expected a spec error, got {other:?}"),
    }
}

#[tokio::test]
async fn expiry_in_the_past_or_now_is_refused() {
    for at in [t0() - TimeDelta::days(1), t0()] {
        let err = issue_err(spec("acme", "g").with_expiry(ExpirySpec::At(at))).await;
        assert_eq!(
            err,
            SpecError::ExpiresBeforeIssue {
                expires_at: at,
                issued_at: t0()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("not after the time of issue"), "{msg}");
        assert!(msg.contains(&at.to_string()), "{msg}");
    }
}

#[tokio::test]
async fn a_non_positive_lifetime_is_refused() {
    for d in [TimeDelta::zero(), TimeDelta::seconds(-5)] {
        let err = issue_err(spec("acme", "g").with_expiry(ExpirySpec::After(d))).await;
        assert_eq!(err, SpecError::NonPositiveLifetime);
        assert!(err.to_string().contains("positive"));
    }
}

#[tokio::test]
async fn an_empty_window_is_refused() {
    let nb = t0() + TimeDelta::hours(2);
    for exp in [t0() + TimeDelta::hours(1), nb] {
        let err = issue_err(
            spec("acme", "g")
                .with_not_before(nb)
                .with_expiry(ExpirySpec::At(exp)),
        )
        .await;
        assert_eq!(
            err,
            SpecError::EmptyWindow {
                not_before: nb,
                expires_at: exp
            }
        );
        assert!(err.to_string().contains("window is empty"), "{err}");
    }
}

#[tokio::test]
async fn too_many_policies_are_refused() {
    let many = |n: usize| (0..n).map(|i| policy(&format!("p{i}")));
    let err = issue_err(spec("acme", "g").with_policies(many(MAX_POLICIES + 1))).await;
    assert_eq!(err, SpecError::TooManyPolicies { max: 64 });
    assert!(err.to_string().contains("64"));
    let (service, _) = setup();
    let ok = service
        .issue(spec("acme", "g").with_policies(many(MAX_POLICIES)))
        .await
        .unwrap();
    assert_eq!(ok.token.policies().len(), 64);
}

#[tokio::test]
async fn a_duplicate_policy_is_refused_by_name() {
    let err =
        issue_err(spec("acme", "g").with_policies([policy("wifi"), policy("vpn"), policy("wifi")]))
            .await;
    assert_eq!(err, SpecError::DuplicatePolicy(policy("wifi")));
    assert_eq!(err.to_string(), "policy wifi is listed twice");
}

#[tokio::test]
async fn an_overlong_description_is_refused() {
    let err = issue_err(spec("acme", "g").with_description("d".repeat(MAX_DESCRIPTION + 1))).await;
    assert_eq!(err, SpecError::DescriptionTooLong { max: 1024 });
    assert!(err.to_string().contains("1024"));
    let (service, _) = setup();
    let ok = service
        .issue(spec("acme", "g").with_description("d".repeat(MAX_DESCRIPTION)))
        .await
        .unwrap();
    assert_eq!(ok.token.description().len(), 1024);
}

#[test]
fn metadata_is_bounded_at_four_kib() {
    let exactly = Metadata::from_pairs([("k", "v".repeat(Metadata::MAX_BYTES - 1))]).unwrap();
    assert_eq!(exactly.len(), 1);
    let err = Metadata::from_pairs([("k", "v".repeat(Metadata::MAX_BYTES))]).unwrap_err();
    assert_eq!(
        err,
        SpecError::MetadataTooLarge {
            size: 4097,
            max: 4096
        }
    );
    assert!(err.to_string().contains("4097") && err.to_string().contains("4096"));
    // Keys count too, summed over all pairs.
    let pairs = |v: usize| (0..64).map(move |i| (format!("key-{i:03}"), "x".repeat(v)));
    assert!(
        Metadata::from_pairs(pairs(57)).is_ok(),
        "64 x (7 + 57) = 4096 bytes"
    );
    assert!(Metadata::from_pairs(pairs(58)).is_err());
    assert_eq!(
        Metadata::from_pairs([("", "v")]).unwrap_err(),
        SpecError::EmptyMetadataKey
    );
    // Later duplicates replace earlier ones.
    let m = Metadata::from_pairs([("a", "1"), ("a", "2")]).unwrap();
    assert_eq!((m.len(), m.get("a")), (1, Some("2")));
    assert!(Metadata::new().is_empty());
    assert!(
        Metadata::from_pairs(Vec::<(String, String)>::new())
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn metadata_comes_back_with_every_redemption() {
    let (service, _) = setup();
    let meta = Metadata::from_pairs([("site", "berlin"), ("cost_centre", "4711")]).unwrap();
    let issued = service
        .issue(
            spec("acme", "g")
                .with_metadata(meta.clone())
                .with_usage_limit(UsageLimit::Unlimited),
        )
        .await
        .unwrap();
    for d in ["a", "b", "a"] {
        let e = service
            .redeem(issued.secret.expose_secret(), &dev(d))
            .await
            .unwrap();
        assert_eq!(e.metadata, meta);
        assert_eq!(e.remaining(), None);
    }
}

#[tokio::test]
async fn default_expiry_is_seven_days_after_issue() {
    let (service, clock) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    assert_eq!(Validity::DEFAULT_TTL, TimeDelta::days(7));
    assert_eq!(
        issued.token.validity().expiry,
        Expiry::At(t0() + TimeDelta::days(7))
    );
    clock.advance(TimeDelta::days(7) - TimeDelta::microseconds(1));
    assert_eq!(service.status(&issued.token), Status::Active);
    clock.advance(TimeDelta::microseconds(1));
    assert_eq!(service.status(&issued.token), Status::Expired);
    let err = service
        .redeem(issued.secret.expose_secret(), &dev("d"))
        .await
        .unwrap_err();
    assert_eq!(
        rejection(&err),
        &Rejection::Expired {
            expires_at: t0() + TimeDelta::days(7),
            now: t0() + TimeDelta::days(7)
        }
    );
    assert_eq!(err.device_facing(), DeviceRejection::Expired);
}

#[tokio::test]
async fn a_deployment_window_opens_later() {
    let (service, clock) = setup();
    let nb = t0() + TimeDelta::days(3);
    let issued = service
        .issue(
            spec("acme", "g")
                .with_not_before(nb)
                .with_expiry(ExpirySpec::After(TimeDelta::days(1))),
        )
        .await
        .unwrap();
    assert_eq!(issued.token.validity().not_before, Some(nb));
    assert_eq!(
        issued.token.validity().expiry,
        Expiry::At(nb + TimeDelta::days(1)),
        "After counts from the opening"
    );
    let err = service
        .redeem(issued.secret.expose_secret(), &dev("d"))
        .await
        .unwrap_err();
    assert_eq!(
        rejection(&err),
        &Rejection::NotYetValid {
            not_before: nb,
            now: t0()
        }
    );
    assert_eq!(err.device_facing(), DeviceRejection::NotYetValid);
    clock.set(nb);
    service
        .redeem(issued.secret.expose_secret(), &dev("d"))
        .await
        .unwrap();

    // A default expiry with a later window counts from the opening as well.
    let later = service
        .issue(spec("acme", "g").with_not_before(nb))
        .await
        .unwrap();
    assert_eq!(
        later.token.validity().expiry,
        Expiry::At(nb + Validity::DEFAULT_TTL)
    );
}

#[tokio::test]
async fn expiry_never_survives_any_clock() {
    let (service, clock) = setup();
    let issued = service
        .issue(spec("acme", "g").with_expiry(ExpirySpec::Never))
        .await
        .unwrap();
    assert_eq!(issued.token.validity().expiry, Expiry::Never);
    clock.advance(TimeDelta::days(365 * 50));
    service
        .redeem(issued.secret.expose_secret(), &dev("d"))
        .await
        .unwrap();
}

#[tokio::test]
async fn leeway_applies_to_redemption_and_status() {
    let (service, clock) = setup();
    let service = service.with_leeway(Leeway::new(TimeDelta::seconds(30)).unwrap());
    let issued = service
        .issue(spec("acme", "g").with_expiry(ExpirySpec::After(TimeDelta::hours(1))))
        .await
        .unwrap();
    clock.set(t0() + TimeDelta::hours(1) + TimeDelta::seconds(29));
    assert_eq!(service.status(&issued.token), Status::Active);
    service
        .redeem(issued.secret.expose_secret(), &dev("d"))
        .await
        .unwrap();
    let listed = service
        .list(&service.query().with_status(Status::Exhausted))
        .await
        .unwrap();
    assert_eq!(listed.tokens.len(), 1);
    clock.set(t0() + TimeDelta::hours(1) + TimeDelta::seconds(30));
    assert_eq!(service.status(&issued.token), Status::Expired);
}

#[tokio::test]
async fn device_facing_form_is_the_same_for_every_invalid_token() {
    let (service, _) = setup();
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    let text = issued.secret.expose_secret();
    let unknown_key = Keyring::new(key(9)).sign(&issued.token.id());
    let forged =
        Keyring::new(SigningKey::from_bytes(key(1).id(), &[0xee; 32])).sign(&issued.token.id());
    let not_found = service.keyring().sign(&TokenId::from_bytes([1; 16]));
    let cases = [
        format!("{}X", text),
        "hello".to_string(),
        String::new(),
        unknown_key.expose_secret().to_string(),
        forged.expose_secret().to_string(),
        not_found.expose_secret().to_string(),
    ];
    let mut precise = std::collections::HashSet::new();
    let mut shown = BTreeSet::new();
    for s in &cases {
        let err = service.redeem(s, &dev("d")).await.unwrap_err();
        let device = err.device_facing();
        assert_eq!(device, DeviceRejection::InvalidToken);
        shown.insert((device.to_string(), device.code()));
        precise.insert(std::mem::discriminant(rejection(&err)));
    }
    assert_eq!(shown.len(), 1, "devices see one message");
    assert_eq!(
        precise.len(),
        4,
        "admins see malformed, unknown key, bad signature, not found"
    );
    // And the token was not touched.
    assert_eq!(
        service
            .get(issued.token.id())
            .await
            .unwrap()
            .unwrap()
            .uses(),
        0
    );
}

#[test]
fn device_rejection_codes_and_messages() {
    let all = [
        (DeviceRejection::InvalidToken, "invalid token"),
        (DeviceRejection::Revoked, "revoked"),
        (DeviceRejection::NotYetValid, "not yet valid"),
        (DeviceRejection::Expired, "expired"),
        (DeviceRejection::Exhausted, "exhausted"),
        (DeviceRejection::Unavailable, "unavailable"),
    ];
    let mut messages = BTreeSet::new();
    for (r, code) in all {
        assert_eq!(r.code(), code);
        messages.insert(r.to_string());
    }
    assert_eq!(messages.len(), 6);
}

/// A store whose every operation fails, as a broken database would.
#[derive(Debug)]
struct BrokenStore;

fn broken() -> StoreError {
    StoreError::backend(
        "test",
        "connecting",
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
    )
}

impl TokenStore for BrokenStore {
    async fn insert(&self, _: Token) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn insert_batch(&self, _: Vec<Token>) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn get(&self, _: TokenId) -> Result<Option<Token>, StoreError> {
        Err(broken())
    }
    async fn list(&self, _: &TokenQuery) -> Result<TokenPage, StoreError> {
        Err(broken())
    }
    async fn redeem(&self, _: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        Err(broken().into())
    }
    async fn revoke(&self, _: &RevokeTarget, _: &Revocation) -> Result<u64, StoreError> {
        Err(broken())
    }
    async fn redemptions(&self, _: TokenId) -> Result<Vec<Redemption>, StoreError> {
        Err(broken())
    }
}

#[tokio::test]
async fn store_failures_are_unavailable_to_devices_and_keep_their_source() {
    let service = Onboarding::new(Keyring::new(key(1)), BrokenStore);
    let text = service.keyring().sign(&TokenId::from_bytes([1; 16]));
    let err = service
        .redeem(text.expose_secret(), &dev("d"))
        .await
        .unwrap_err();
    assert!(err.rejection().is_none());
    assert_eq!(err.device_facing(), DeviceRejection::Unavailable);
    assert_eq!(err.to_string(), "test store failed: connecting");
    let source = err.source().expect("the driver error is kept");
    assert_eq!(source.to_string(), "refused");

    let err = service.issue(spec("acme", "g")).await.unwrap_err();
    assert!(matches!(err, AdminError::Store(StoreError::Backend { .. })));
    assert!(err.source().is_some());
    assert!(
        service
            .revoke(&RevokeTarget::Batch(BatchId::from_bytes([1; 16])), "r")
            .await
            .is_err()
    );
    // A malformed string is still rejected as such, without touching the broken store.
    let err = service.redeem("nope", &dev("d")).await.unwrap_err();
    assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
}

#[tokio::test]
async fn service_time_is_the_clock_truncated_to_microseconds() {
    let clock = ManualClock::new(t0() + TimeDelta::nanoseconds(1_234_567));
    let service = Onboarding::new(Keyring::new(key(1)), MemoryStore::new()).with_clock(clock);
    assert_eq!(service.now(), t0() + TimeDelta::microseconds(1_234));
    let issued = service.issue(spec("acme", "g")).await.unwrap();
    assert_eq!(issued.token.created_at(), service.now());
    assert_eq!(service.query().now(), service.now());
    assert_eq!(service.leeway(), Leeway::ZERO);
}

#[tokio::test]
async fn expiries_near_the_end_of_time_are_refused_or_kept_without_panicking() {
    let (service, _) = setup();
    let service = service.with_leeway(Leeway::new(TimeDelta::seconds(30)).unwrap());
    let max = DateTime::<Utc>::MAX_UTC;
    // A default or relative expiry after a window opening near the end of time overflows:
    // an error, not a panic.
    for expiry in [ExpirySpec::Default, ExpirySpec::After(TimeDelta::days(1))] {
        let err = service
            .issue(
                spec("acme", "g")
                    .with_not_before(max - TimeDelta::hours(1))
                    .with_expiry(expiry),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::Spec(_)), "{err:?}");
    }
    // An explicit expiry at the end of time is valid and redeemable with a leeway.
    let issued = service
        .issue(spec("acme", "g").with_expiry(ExpirySpec::At(max)))
        .await
        .unwrap();
    assert_eq!(service.status(&issued.token), Status::Active);
    service
        .redeem(issued.secret.expose_secret(), &dev("d"))
        .await
        .unwrap();
    let listed = service
        .list(&service.query().with_status(Status::Exhausted))
        .await
        .unwrap();
    assert_eq!(listed.tokens.len(), 1);
}

/// Tokens issued from one specification keep one assignment between them, in the store and
/// in every enrollment; a specification changed after cloning does not touch the others.
#[tokio::test]
async fn a_batch_shares_one_assignment_and_enrollments_take_it() {
    use std::sync::Arc;
    let (service, _) = setup();
    let base = spec("acme", "emea/berlin").with_policies([policy("wifi")]);
    let batch = service.issue_many(base.clone(), 3).await.unwrap();
    let first = batch.tokens[0].token.assignment();
    assert!(
        batch
            .tokens
            .iter()
            .all(|i| Arc::ptr_eq(i.token.assignment(), first))
    );
    let stored = service
        .get(batch.tokens[1].token.id())
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(stored.assignment(), first));
    let enrollment = service
        .redeem(batch.tokens[2].secret.expose_secret(), &dev("SN-1"))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&enrollment.assignment, first));
    assert_eq!(enrollment.policies(), &[policy("wifi")]);

    // Copy on write: the changed clone has its own, the original keeps its policies.
    let changed = base.clone().with_policies([policy("vpn")]);
    assert_eq!(base.policies(), &[policy("wifi")]);
    assert_eq!(changed.policies(), &[policy("vpn")]);
    assert!(!Arc::ptr_eq(changed.assignment(), base.assignment()));
}

/// The JSON of an enrollment and of a specification keeps `organization`, `group` and
/// `policies` as top-level fields, and both read back equal.
#[tokio::test]
async fn enrollment_and_spec_json_keep_flat_assignment_fields() {
    let (service, _) = setup();
    let spec = spec("acme", "emea/berlin").with_policies([policy("wifi"), policy("vpn")]);
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["organization"], "acme");
    assert_eq!(json["group"], "emea/berlin");
    assert_eq!(json["policies"], serde_json::json!(["wifi", "vpn"]));
    assert!(json.get("assignment").is_none());
    assert_eq!(serde_json::from_value::<TokenSpec>(json).unwrap(), spec);
    let minimal: TokenSpec =
        serde_json::from_str(r#"{"organization":"acme","group":"g"}"#).unwrap();
    assert!(minimal.policies().is_empty());
    assert!(serde_json::from_str::<TokenSpec>(r#"{"organization":"acme"}"#).is_err());
    assert!(serde_json::from_str::<TokenSpec>(r#"{"organization":"a b","group":"g"}"#).is_err());

    let issued = service.issue(spec).await.unwrap();
    let enrollment = service
        .redeem(issued.secret.expose_secret(), &dev("SN-1"))
        .await
        .unwrap();
    let json = serde_json::to_value(&enrollment).unwrap();
    assert_eq!(json["group"], "emea/berlin");
    assert_eq!(json["policies"], serde_json::json!(["wifi", "vpn"]));
    assert_eq!(
        serde_json::from_value::<Enrollment>(json).unwrap(),
        enrollment
    );
}
