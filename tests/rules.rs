//! The pure redemption rules: `rules::decide`, `rules::redeem_in_place` and `status_at`.

mod support;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use onboarding_token::rules::{Decision, RedeemRequest, decide, redeem_in_place, status_at};
use onboarding_token::*;
use proptest::prelude::*;
// Starts in March 2026.
use support::fixture::{dev, keyring, t0_2026 as t0};

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn micro() -> TimeDelta {
    TimeDelta::microseconds(1)
}

fn ring() -> Keyring {
    keyring([1, 1, 1, 1], [3; 32])
}

/// A record with the given state, built as a storage backend would load it.
#[derive(Clone)]
struct R {
    limit: UsageLimit,
    uses: u64,
    not_before: Option<DateTime<Utc>>,
    expiry: Expiry,
    revoked_at: Option<DateTime<Utc>>,
}

impl Default for R {
    fn default() -> Self {
        Self {
            limit: UsageLimit::Once,
            uses: 0,
            not_before: None,
            expiry: Expiry::At(t0() + TimeDelta::days(7)),
            revoked_at: None,
        }
    }
}

impl R {
    fn build(self) -> Token {
        Token::from_parts(TokenParts {
            id: TokenId::from_bytes([0x42; 16]),
            key_id: ring().active_key_id(),
            organization: OrgId::new("acme").unwrap(),
            group: GroupId::new("emea/berlin").unwrap(),
            policies: vec![PolicyId::new("wifi").unwrap()],
            usage_limit: self.limit,
            uses: self.uses,
            validity: Validity {
                not_before: self.not_before,
                expiry: self.expiry,
            },
            created_at: t0() - TimeDelta::days(1),
            description: String::new(),
            metadata: Metadata::from_pairs([("site", "b")]).unwrap(),
            batch: None,
            revocation: self
                .revoked_at
                .map(|at| Revocation::new(at, "leaked").unwrap()),
        })
        .unwrap()
    }
}

fn verified(token: &Token) -> VerifiedToken {
    let ring = ring();
    let s = ring.sign_with(token.key_id(), &token.id()).unwrap();
    ring.verify_str(s.expose_secret()).unwrap()
}

fn at<'a>(token: &Token, device: &'a DeviceId, now: DateTime<Utc>) -> RedeemRequest<'a> {
    RedeemRequest {
        token: verified(token),
        device,
        now,
        leeway: Leeway::ZERO,
    }
}

fn with_leeway<'a>(
    token: &Token,
    device: &'a DeviceId,
    now: DateTime<Utc>,
    leeway: i64,
) -> RedeemRequest<'a> {
    RedeemRequest {
        leeway: Leeway::new(secs(leeway)).unwrap(),
        ..at(token, device, now)
    }
}

#[test]
fn a_fresh_token_is_consumed_once() {
    let token = R::default().build();
    let d = dev("d1");
    assert_eq!(
        decide(&token, &at(&token, &d, t0()), None),
        Ok(Decision::Consume { uses_after: 1 })
    );
    assert_eq!(token.status_at(t0()), Status::Active);
}

#[test]
fn revoked_beats_every_other_rejection_and_replay() {
    let revoked_at = t0() - secs(10);
    let d = dev("d1");
    for r in [
        R::default(),
        R {
            uses: 1,
            ..R::default()
        },
        R {
            expiry: Expiry::At(t0() - secs(1)),
            ..R::default()
        },
        R {
            not_before: Some(t0() + secs(60)),
            ..R::default()
        },
    ] {
        let token = R {
            revoked_at: Some(revoked_at),
            ..r
        }
        .build();
        for prior in [None, Some(t0() - secs(100))] {
            assert_eq!(
                decide(&token, &at(&token, &d, t0()), prior),
                Err(Rejection::Revoked { revoked_at })
            );
        }
        assert_eq!(token.status_at(t0()), Status::Revoked);
    }
}

#[test]
fn expired_beats_exhausted_and_replay() {
    let expires_at = t0() - secs(1);
    let token = R {
        uses: 1,
        expiry: Expiry::At(expires_at),
        ..R::default()
    }
    .build();
    let d = dev("d1");
    for prior in [None, Some(t0() - secs(100))] {
        assert_eq!(
            decide(&token, &at(&token, &d, t0()), prior),
            Err(Rejection::Expired {
                expires_at,
                now: t0()
            })
        );
    }
    assert_eq!(token.status_at(t0()), Status::Expired);
}

#[test]
fn not_yet_valid_beats_exhausted_and_replay() {
    let not_before = t0() + secs(60);
    let token = R {
        uses: 1,
        not_before: Some(not_before),
        ..R::default()
    }
    .build();
    let d = dev("d1");
    for prior in [None, Some(t0() - secs(100))] {
        assert_eq!(
            decide(&token, &at(&token, &d, t0()), prior),
            Err(Rejection::NotYetValid {
                not_before,
                now: t0()
            })
        );
    }
    assert_eq!(token.status_at(t0()), Status::Pending);
}

#[test]
fn replay_beats_exhausted_and_consumes_nothing() {
    let first = t0() - secs(30);
    let mut token = R {
        uses: 1,
        ..R::default()
    }
    .build();
    let d = dev("d1");
    assert_eq!(token.status_at(t0()), Status::Exhausted);
    let request = at(&token, &d, t0());
    let (decision, enrollment) = redeem_in_place(&mut token, &request, Some(first))
        .expect("a replay of an exhausted token succeeds");
    assert_eq!(
        decision,
        Decision::Replay {
            first_redeemed_at: first
        }
    );
    assert!(enrollment.replay);
    assert_eq!(enrollment.redeemed_at, first);
    assert_eq!(enrollment.uses, 1);
    assert_eq!(enrollment.remaining(), Some(0));
    assert_eq!(token.uses(), 1);
}

#[test]
fn another_device_on_an_exhausted_token_is_rejected_with_the_limit() {
    let token = R {
        limit: UsageLimit::limited(3).unwrap(),
        uses: 3,
        ..R::default()
    }
    .build();
    let d = dev("d4");
    assert_eq!(
        decide(&token, &at(&token, &d, t0()), None),
        Err(Rejection::Exhausted { limit: 3 })
    );
    let once = R {
        uses: 1,
        ..R::default()
    }
    .build();
    assert_eq!(
        decide(&once, &at(&once, &d, t0()), None),
        Err(Rejection::Exhausted { limit: 1 })
    );
}

#[test]
fn key_id_mismatch_is_not_found_even_for_a_revoked_record() {
    let token = R {
        revoked_at: Some(t0()),
        ..R::default()
    }
    .build();
    let other_ring = Keyring::new(SigningKey::from_bytes(
        KeyId::from_bytes([2, 2, 2, 2]),
        &[3; 32],
    ));
    let s = other_ring.sign(&token.id());
    let verified = other_ring.verify_str(s.expose_secret()).unwrap();
    let d = dev("d1");
    let request = RedeemRequest {
        token: verified,
        device: &d,
        now: t0(),
        leeway: Leeway::ZERO,
    };
    assert_eq!(
        decide(&token, &request, None),
        Err(Rejection::NotFound { id: token.id() })
    );
}

#[test]
fn token_id_mismatch_is_not_found() {
    let token = R::default().build();
    let ring = ring();
    let other_id = TokenId::from_bytes([0x43; 16]);
    let verified = ring
        .verify_str(ring.sign(&other_id).expose_secret())
        .unwrap();
    let d = dev("d1");
    let request = RedeemRequest {
        token: verified,
        device: &d,
        now: t0(),
        leeway: Leeway::ZERO,
    };
    assert_eq!(
        decide(&token, &request, None),
        Err(Rejection::NotFound { id: other_id })
    );
}

#[test]
fn window_opens_exactly_at_not_before() {
    let nb = t0();
    let token = R {
        not_before: Some(nb),
        ..R::default()
    }
    .build();
    let d = dev("d1");
    assert!(decide(&token, &at(&token, &d, nb), None).is_ok());
    assert_eq!(
        decide(&token, &at(&token, &d, nb - micro()), None),
        Err(Rejection::NotYetValid {
            not_before: nb,
            now: nb - micro()
        })
    );
    assert_eq!(token.status_at(nb), Status::Active);
    assert_eq!(token.status_at(nb - micro()), Status::Pending);
}

#[test]
fn window_closes_exactly_at_expiry() {
    let exp = t0() + secs(3600);
    let token = R {
        expiry: Expiry::At(exp),
        ..R::default()
    }
    .build();
    let d = dev("d1");
    assert!(decide(&token, &at(&token, &d, exp - micro()), None).is_ok());
    assert_eq!(
        decide(&token, &at(&token, &d, exp), None),
        Err(Rejection::Expired {
            expires_at: exp,
            now: exp
        })
    );
    assert_eq!(token.status_at(exp - micro()), Status::Active);
    assert_eq!(token.status_at(exp), Status::Expired);
}

#[test]
fn leeway_widens_the_window_symmetrically() {
    let nb = t0();
    let exp = t0() + secs(3600);
    let token = R {
        not_before: Some(nb),
        expiry: Expiry::At(exp),
        ..R::default()
    }
    .build();
    let d = dev("d1");
    let l = 30;
    let leeway = Leeway::new(secs(l)).unwrap();
    // Opening edge: not_before - leeway is in, one microsecond earlier is out.
    assert!(decide(&token, &with_leeway(&token, &d, nb - secs(l), l), None).is_ok());
    assert!(matches!(
        decide(
            &token,
            &with_leeway(&token, &d, nb - secs(l) - micro(), l),
            None
        ),
        Err(Rejection::NotYetValid { .. })
    ));
    // Closing edge: expiry + leeway is out, one microsecond earlier is in.
    assert!(
        decide(
            &token,
            &with_leeway(&token, &d, exp + secs(l) - micro(), l),
            None
        )
        .is_ok()
    );
    assert!(matches!(
        decide(&token, &with_leeway(&token, &d, exp + secs(l), l), None),
        Err(Rejection::Expired { .. })
    ));
    // The same edges for the status.
    assert_eq!(token.status_at_with(nb - secs(l), leeway), Status::Active);
    assert_eq!(
        token.status_at_with(nb - secs(l) - micro(), leeway),
        Status::Pending
    );
    assert_eq!(
        token.status_at_with(exp + secs(l) - micro(), leeway),
        Status::Active
    );
    assert_eq!(token.status_at_with(exp + secs(l), leeway), Status::Expired);
    // Without leeway those instants are outside.
    assert_eq!(token.status_at(nb - secs(l)), Status::Pending);
    assert_eq!(token.status_at(exp + secs(l) - micro()), Status::Expired);
}

#[test]
fn leeway_bounds() {
    assert_eq!(Leeway::default(), Leeway::ZERO);
    assert!(Leeway::new(TimeDelta::zero()).is_some());
    assert!(Leeway::new(-micro()).is_none());
    assert_eq!(
        Leeway::new(TimeDelta::days(1)).unwrap(),
        Leeway::MAX,
        "one day is the maximum"
    );
    assert!(Leeway::new(TimeDelta::days(1) + micro()).is_none());
}

#[test]
fn expiry_never_lasts_forever() {
    let token = R {
        expiry: Expiry::Never,
        ..R::default()
    }
    .build();
    let far = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    let d = dev("d1");
    assert_eq!(
        decide(&token, &at(&token, &d, far), None),
        Ok(Decision::Consume { uses_after: 1 })
    );
    assert_eq!(token.status_at(far), Status::Active);
    assert_eq!(Expiry::Never.at(), None);
    assert_eq!(Expiry::At(t0()).at(), Some(t0()));
}

#[test]
fn unlimited_is_never_exhausted() {
    let token = R {
        limit: UsageLimit::Unlimited,
        uses: 10_000_000,
        ..R::default()
    }
    .build();
    let d = dev("d1");
    assert_eq!(
        decide(&token, &at(&token, &d, t0()), None),
        Ok(Decision::Consume {
            uses_after: 10_000_001
        })
    );
    assert_eq!(token.status_at(t0()), Status::Active);
    assert!(UsageLimit::Unlimited.allows_another(u64::MAX));
}

#[test]
fn usage_limit_constructors_and_queries() {
    assert_eq!(UsageLimit::default(), UsageLimit::Once);
    assert_eq!(UsageLimit::limited(0), None);
    assert_eq!(UsageLimit::limited(1), Some(UsageLimit::Once));
    assert_eq!(UsageLimit::limited(2).unwrap().max_uses(), Some(2));
    assert_eq!(
        UsageLimit::limited(u32::MAX).unwrap().max_uses(),
        Some(u32::MAX)
    );
    assert_eq!(UsageLimit::Once.max_uses(), Some(1));
    assert_eq!(UsageLimit::Unlimited.max_uses(), None);
    let five = UsageLimit::limited(5).unwrap();
    assert!(five.allows_another(4));
    assert!(!five.allows_another(5));
    assert!(!five.allows_another(6));
    assert!(UsageLimit::Once.allows_another(0));
    assert!(!UsageLimit::Once.allows_another(1));
}

#[test]
fn replay_of_a_revoked_or_expired_token_is_rejected() {
    let d = dev("d1");
    let first = t0() - secs(600);
    let revoked = R {
        uses: 1,
        revoked_at: Some(t0() - secs(5)),
        ..R::default()
    }
    .build();
    assert!(matches!(
        decide(&revoked, &at(&revoked, &d, t0()), Some(first)),
        Err(Rejection::Revoked { .. })
    ));
    let expired = R {
        uses: 1,
        expiry: Expiry::At(t0() - secs(5)),
        ..R::default()
    }
    .build();
    assert!(matches!(
        decide(&expired, &at(&expired, &d, t0()), Some(first)),
        Err(Rejection::Expired { .. })
    ));
}

#[test]
fn rejections_leave_the_record_untouched() {
    let d = dev("d1");
    for r in [
        R {
            uses: 1,
            ..R::default()
        },
        R {
            revoked_at: Some(t0()),
            ..R::default()
        },
        R {
            expiry: Expiry::At(t0()),
            ..R::default()
        },
    ] {
        let mut token = r.build();
        let before = token.clone();
        assert!(redeem_in_place(&mut token, &at(&before, &d, t0()), None).is_err());
        assert_eq!(token, before);
    }
}

#[test]
fn redeem_in_place_builds_the_enrollment() {
    let mut token = R {
        limit: UsageLimit::limited(3).unwrap(),
        ..R::default()
    }
    .build();
    let d = dev("SN-1");
    let request = at(&token, &d, t0());
    let (decision, e) = redeem_in_place(&mut token, &request, None).unwrap();
    assert_eq!(decision, Decision::Consume { uses_after: 1 });
    assert_eq!(token.uses(), 1);
    assert_eq!(e.token_id, token.id());
    assert_eq!(e.organization().as_str(), "acme");
    assert_eq!(e.group().as_str(), "emea/berlin");
    assert_eq!(e.policies(), &[PolicyId::new("wifi").unwrap()]);
    assert_eq!(e.metadata.get("site"), Some("b"));
    assert_eq!((e.uses, e.limit), (1, UsageLimit::limited(3).unwrap()));
    assert_eq!(e.remaining(), Some(2));
    assert!(!e.replay);
    assert_eq!(e.redeemed_at, t0());
}

#[test]
fn status_precedence_is_revoked_expired_pending_exhausted_active() {
    let past = Expiry::At(t0() - secs(1));
    let later = Some(t0() + secs(60));
    let cases = [
        (
            R {
                revoked_at: Some(t0()),
                expiry: past,
                uses: 1,
                ..R::default()
            },
            Status::Revoked,
        ),
        (
            R {
                expiry: past,
                uses: 1,
                ..R::default()
            },
            Status::Expired,
        ),
        (
            R {
                not_before: later,
                uses: 1,
                ..R::default()
            },
            Status::Pending,
        ),
        (
            R {
                uses: 1,
                ..R::default()
            },
            Status::Exhausted,
        ),
        (R::default(), Status::Active),
    ];
    for (r, expected) in cases {
        let token = r.build();
        assert_eq!(token.status_at(t0()), expected);
        assert_eq!(status_at(&token, t0(), Leeway::ZERO), expected);
    }
}

#[test]
fn status_names_round_trip() {
    for s in Status::ALL {
        assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        assert_eq!(s.to_string(), s.as_str());
    }
    assert!("Active".parse::<Status>().is_err());
    assert!("".parse::<Status>().is_err());
}

fn limit_strategy() -> impl Strategy<Value = UsageLimit> {
    prop_oneof![
        Just(UsageLimit::Once),
        (2u32..8).prop_map(|n| UsageLimit::limited(n).unwrap()),
        Just(UsageLimit::Unlimited),
    ]
}

proptest! {
    /// A simulated store: random attempts by devices from a small pool. Uses never exceed
    /// the limit, a replay never changes uses, and the devices that succeed are exactly the
    /// first `min(limit, distinct tried)` distinct devices.
    #[test]
    fn uses_never_exceed_the_limit_and_replays_never_consume(
        limit in limit_strategy(),
        pool in 1usize..7,
        attempts in proptest::collection::vec(0usize..7, 0..40),
    ) {
        let devices: Vec<DeviceId> = (0..pool).map(|i| dev(&format!("dev-{i}"))).collect();
        let mut token = R { limit, expiry: Expiry::Never, ..R::default() }.build();
        let mut prior: HashMap<DeviceId, DateTime<Utc>> = HashMap::new();
        let mut tried_order: Vec<usize> = Vec::new();
        let mut succeeded: BTreeSet<usize> = BTreeSet::new();
        for (step, &a) in attempts.iter().enumerate() {
            let i = a % pool;
            if !tried_order.contains(&i) {
                tried_order.push(i);
            }
            let now = t0() + secs(step as i64);
            let device = &devices[i];
            let before = token.uses();
            let request = at(&token, device, now);
            match redeem_in_place(&mut token, &request, prior.get(device).copied()) {
                Ok((Decision::Consume { uses_after }, e)) => {
                    prop_assert!(!prior.contains_key(device));
                    prop_assert_eq!(uses_after, before + 1);
                    prop_assert_eq!(e.uses, uses_after);
                    prop_assert!(!e.replay);
                    prior.insert(device.clone(), now);
                    succeeded.insert(i);
                }
                Ok((Decision::Replay { first_redeemed_at }, e)) => {
                    prop_assert_eq!(token.uses(), before, "a replay consumed a use");
                    prop_assert_eq!(Some(&first_redeemed_at), prior.get(device));
                    prop_assert!(e.replay);
                    prop_assert_eq!(e.redeemed_at, first_redeemed_at);
                }
                Err(Rejection::Exhausted { limit: l }) => {
                    prop_assert_eq!(Some(l), limit.max_uses());
                    prop_assert!(!prior.contains_key(device));
                    prop_assert_eq!(token.uses(), before);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
            if let Some(max) = limit.max_uses() {
                prop_assert!(token.uses() <= u64::from(max));
            }
            prop_assert_eq!(token.uses(), prior.len() as u64);
        }
        let cap = limit.max_uses().map_or(usize::MAX, |m| m as usize);
        let expected: BTreeSet<usize> = tried_order.iter().copied().take(cap).collect();
        prop_assert_eq!(succeeded.len(), cap.min(tried_order.len()));
        prop_assert_eq!(succeeded, expected);
    }

    /// `decide` agrees with `status_at` at any instant, with or without a prior redemption.
    #[test]
    fn decide_agrees_with_status(
        limit in limit_strategy(),
        used in 0u64..9,
        nb_offset in proptest::option::of(-200i64..200),
        exp_offset in proptest::option::of(1i64..400),
        revoked in any::<bool>(),
        now_offset in -300i64..700,
        leeway in 0i64..60,
        has_prior in any::<bool>(),
    ) {
        let uses = limit.max_uses().map_or(used, |m| used.min(u64::from(m)));
        let not_before = nb_offset.map(|o| t0() + secs(o));
        let expiry = match exp_offset {
            Some(o) => Expiry::At(not_before.unwrap_or(t0()) + secs(o)),
            None => Expiry::Never,
        };
        let mut token = R {
            limit,
            uses,
            not_before,
            expiry,
            revoked_at: revoked.then(t0),
        }
        .build();
        let now = t0() + secs(now_offset);
        let d = dev("d");
        let request = with_leeway(&token, &d, now, leeway);
        let prior = has_prior.then(|| t0() - secs(1000));
        let status = token.status_at_with(now, request.leeway);
        let decision = decide(&token, &request, prior);
        match (status, &decision) {
            (Status::Revoked, Err(Rejection::Revoked { .. })) => {}
            (Status::Expired, Err(Rejection::Expired { .. })) => {}
            (Status::Pending, Err(Rejection::NotYetValid { .. })) => {}
            (Status::Active | Status::Exhausted, Ok(Decision::Replay { .. })) if has_prior => {}
            (Status::Exhausted, Err(Rejection::Exhausted { .. })) if !has_prior => {}
            (Status::Active, Ok(Decision::Consume { uses_after })) if !has_prior => {
                prop_assert_eq!(*uses_after, uses + 1);
            }
            (s, d) => prop_assert!(false, "status {:?} but decision {:?}", s, d),
        }
        // The record only changes on a consuming redemption.
        let before = token.clone();
        let result = redeem_in_place(&mut token, &request, prior);
        if matches!(result, Ok((Decision::Consume { .. }, _))) {
            prop_assert_eq!(token.uses(), before.uses() + 1);
        } else {
            prop_assert_eq!(token, before);
        }
    }
}

/// Instants at the very ends of the representable range, with a leeway, never panic:
/// a window bound that would overflow by the leeway is simply unbounded on that side.
#[test]
fn extreme_instants_with_leeway_do_not_panic() {
    let min = DateTime::<Utc>::MIN_UTC;
    let max = DateTime::<Utc>::MAX_UTC;
    let token = R {
        not_before: Some(min),
        expiry: Expiry::At(max),
        ..R::default()
    }
    .build();
    let d = dev("d1");
    for now in [min, t0(), max - micro()] {
        let request = with_leeway(&token, &d, now, 30);
        assert_eq!(
            decide(&token, &request, None),
            Ok(Decision::Consume { uses_after: 1 }),
            "{now}"
        );
        assert_eq!(token.status_at_with(now, request.leeway), Status::Active);
    }
    assert_eq!(
        token.status_at_with(max, Leeway::MAX),
        Status::Active,
        "an expiry at the end of time plus leeway does not overflow"
    );
    assert_eq!(token.status_at(max), Status::Expired);
}

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let (min, max) = (
        DateTime::<Utc>::MIN_UTC.timestamp_micros(),
        DateTime::<Utc>::MAX_UTC.timestamp_micros(),
    );
    prop_oneof![
        1 => Just(DateTime::<Utc>::MIN_UTC),
        1 => Just(DateTime::<Utc>::MAX_UTC),
        4 => (min..=max).prop_map(|m| DateTime::from_timestamp_micros(m).unwrap()),
        4 => (-1_000_000i64..1_000_000).prop_map(|s| t0() + secs(s)),
    ]
}

proptest! {
    /// Over the whole representable time range and any leeway, the rules never panic and
    /// `decide` still agrees with `status_at`.
    #[test]
    fn rules_hold_over_the_whole_time_range(
        a in any_instant(),
        b in any_instant(),
        now in any_instant(),
        has_not_before in any::<bool>(),
        leeway_ms in 0i64..=86_400_000,
    ) {
        prop_assume!(a != b);
        let (nb, exp) = if a < b { (a, b) } else { (b, a) };
        let token = R {
            not_before: has_not_before.then_some(nb),
            expiry: Expiry::At(exp),
            ..R::default()
        }
        .build();
        let d = dev("d");
        let request = RedeemRequest {
            leeway: Leeway::new(TimeDelta::milliseconds(leeway_ms)).unwrap(),
            ..at(&token, &d, now)
        };
        let status = token.status_at_with(now, request.leeway);
        match (status, decide(&token, &request, None)) {
            (Status::Active, Ok(Decision::Consume { uses_after: 1 })) => {}
            (Status::Pending, Err(Rejection::NotYetValid { .. })) => {}
            (Status::Expired, Err(Rejection::Expired { .. })) => {}
            (s, d) => prop_assert!(false, "status {:?} but decision {:?}", s, d),
        }
        if request.leeway == Leeway::ZERO {
            let inside = has_not_before.then_some(nb).is_none_or(|nb| now >= nb) && now < exp;
            prop_assert_eq!(status == Status::Active, inside);
        }
    }
}
