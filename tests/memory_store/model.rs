//! Model-based: `MemoryStore` agrees with a plain model of the rules over random operation
//! sequences.

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Redeem { token: usize, device: usize },
    Revoke { token: usize },
    RevokeGroupA,
    Advance { minutes: i64 },
    Check { token: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3, 0usize..5).prop_map(|(token, device)| Op::Redeem { token, device }),
        1 => (0usize..3).prop_map(|token| Op::Revoke { token }),
        1 => Just(Op::RevokeGroupA),
        2 => (0i64..90).prop_map(|minutes| Op::Advance { minutes }),
        1 => (0usize..3).prop_map(|token| Op::Check { token }),
    ]
}

fn limit() -> impl Strategy<Value = UsageLimit> {
    prop_oneof![
        Just(UsageLimit::Once),
        (2u32..5).prop_map(|n| UsageLimit::limited(n).unwrap()),
        Just(UsageLimit::Unlimited),
    ]
}

/// The plain model of one token.
#[derive(Debug)]
struct Model {
    limit: Option<u64>,
    expires: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    devices: Vec<(usize, DateTime<Utc>)>,
}

fn rejected(result: Result<Enrollment, RedeemError>) -> Rejection {
    result
        .unwrap_err()
        .rejection()
        .cloned()
        .expect("a rejection")
}

const GROUPS: [&str; 3] = ["a", "a/b", "c"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// MemoryStore agrees with a plain model of the rules over random operation sequences.
    #[test]
    fn memory_store_matches_a_plain_model(
        limits in proptest::array::uniform3(limit()),
        lifetimes in proptest::array::uniform3(proptest::option::of(30i64..300)),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let store = MemoryStore::with_shards(2);
        let mut models = Vec::new();
        for i in 0..3 {
            let expiry = match lifetimes[i] {
                Some(m) => ExpirySpec::After(TimeDelta::minutes(m)),
                None => ExpirySpec::Never,
            };
            let token = spec(GROUPS[i])
                .with_usage_limit(limits[i])
                .with_expiry(expiry)
                .into_token(TokenId::from_bytes([i as u8; 16]), ring().active_key_id(), t0(), None)
                .unwrap();
            store.insert_sync(token).unwrap();
            models.push(Model {
                limit: limits[i].max_uses().map(u64::from),
                expires: lifetimes[i].map(|m| t0() + TimeDelta::minutes(m)),
                revoked_at: None,
                devices: Vec::new(),
            });
        }
        let devices: Vec<_> = (0..5).map(|i| dev(&format!("dev{i}"))).collect();
        let mut now = t0();
        for op in ops {
            match op {
                Op::Redeem { token, device } => {
                    let id = TokenId::from_bytes([token as u8; 16]);
                    let request = RedeemRequest {
                        token: verified(id),
                        device: &devices[device],
                        now,
                        leeway: Leeway::ZERO,
                    };
                    let got = store.redeem_sync(&request);
                    let m = &mut models[token];
                    let prior = m.devices.iter().find(|(d, _)| *d == device).map(|(_, t)| *t);
                    if let Some(revoked_at) = m.revoked_at {
                        prop_assert_eq!(rejected(got), Rejection::Revoked { revoked_at });
                    } else if let Some(expires_at) = m.expires.filter(|e| now >= *e) {
                        prop_assert_eq!(rejected(got), Rejection::Expired { expires_at, now });
                    } else if let Some(first) = prior {
                        let e = got.unwrap();
                        prop_assert!(e.replay);
                        prop_assert_eq!(e.redeemed_at, first);
                        prop_assert_eq!(e.uses, m.devices.len() as u64);
                    } else if m.limit.is_some_and(|l| m.devices.len() as u64 >= l) {
                        let limit = m.limit.unwrap() as u32;
                        prop_assert_eq!(rejected(got), Rejection::Exhausted { limit });
                    } else {
                        m.devices.push((device, now));
                        let e = got.unwrap();
                        prop_assert!(!e.replay);
                        prop_assert_eq!(e.redeemed_at, now);
                        prop_assert_eq!(e.uses, m.devices.len() as u64);
                    }
                }
                Op::Revoke { token } => {
                    let revocation = Revocation::new(now, "op").unwrap();
                    let id = TokenId::from_bytes([token as u8; 16]);
                    let n = store.revoke_sync(&RevokeTarget::Token(id), &revocation).unwrap();
                    let m = &mut models[token];
                    prop_assert_eq!(n, u64::from(m.revoked_at.is_none()));
                    m.revoked_at.get_or_insert(now);
                }
                Op::RevokeGroupA => {
                    let revocation = Revocation::new(now, "group").unwrap();
                    let target = RevokeTarget::Group {
                        organization: OrgId::new("acme").unwrap(),
                        group: GroupId::new("a").unwrap(),
                    };
                    let n = store.revoke_sync(&target, &revocation).unwrap();
                    let mut expected = 0;
                    for m in &mut models[..2] {
                        if m.revoked_at.is_none() {
                            m.revoked_at = Some(now);
                            expected += 1;
                        }
                    }
                    prop_assert_eq!(n, expected);
                }
                Op::Advance { minutes } => now += TimeDelta::minutes(minutes),
                Op::Check { token } => {
                    let id = TokenId::from_bytes([token as u8; 16]);
                    let record = store.get_sync(id).unwrap();
                    let m = &models[token];
                    prop_assert_eq!(record.uses(), m.devices.len() as u64);
                    prop_assert_eq!(record.revocation().map(|r| r.revoked_at()), m.revoked_at);
                    let redemptions = store.redemptions_sync(id).unwrap();
                    let expected: Vec<_> = m.devices.iter().map(|(d, t)| (devices[*d].clone(), *t)).collect();
                    let got: Vec<_> = redemptions.into_iter().map(|r| (r.device, r.redeemed_at)).collect();
                    prop_assert_eq!(got, expected);
                    let status = record.status_at(now);
                    let model_status = if m.revoked_at.is_some() {
                        Status::Revoked
                    } else if m.expires.is_some_and(|e| now >= e) {
                        Status::Expired
                    } else if m.limit.is_some_and(|l| m.devices.len() as u64 >= l) {
                        Status::Exhausted
                    } else {
                        Status::Active
                    };
                    prop_assert_eq!(status, model_status);
                }
            }
        }
        // Listing by status agrees with the model at the end, and listing consumed nothing.
        for status in Status::ALL {
            let page = store.list_sync(&TokenQuery::new(now).with_status(status));
            for t in &page.tokens {
                prop_assert_eq!(t.status_at(now), status);
            }
        }
        let total: u64 = (0..3u8).map(|i| store.get_sync(TokenId::from_bytes([i; 16])).unwrap().uses()).sum();
        prop_assert_eq!(total, models.iter().map(|m| m.devices.len() as u64).sum::<u64>());
    }
}
