//! Serde: records round-trip through JSON without secrets, in the documented shape;
//! invalid ones are refused.

use super::*;

async fn sample_tokens() -> (Vec<Token>, Vec<Enrollment>, Vec<TokenString>) {
    let clock = ManualClock::new(t0());
    let service =
        Onboarding::new(Keyring::new(key(7)), MemoryStore::new()).with_clock(clock.clone());
    let org = OrgId::new("acme").unwrap();
    let specs = [
        TokenSpec::new(org.clone(), GroupId::new("g").unwrap()),
        TokenSpec::new(org.clone(), GroupId::new("emea/berlin").unwrap())
            .with_policies([
                PolicyId::new("wifi").unwrap(),
                PolicyId::new("vpn").unwrap(),
            ])
            .with_usage_limit(UsageLimit::limited(5).unwrap())
            .with_description("Berlin laptops \u{1f4bb} \"quoted\"")
            .with_metadata(Metadata::from_pairs([("site", "mitte"), ("cc", "4711")]).unwrap())
            .with_not_before(t0() + TimeDelta::hours(1))
            .with_expiry(ExpirySpec::After(TimeDelta::days(2))),
        TokenSpec::new(org, GroupId::new("kiosk").unwrap())
            .with_usage_limit(UsageLimit::Unlimited)
            .with_expiry(ExpirySpec::Never),
    ];
    let mut tokens = Vec::new();
    let mut secrets = Vec::new();
    for s in specs.clone() {
        let i = service.issue(s).await.unwrap();
        tokens.push(i.token);
        secrets.push(i.secret);
    }
    for i in service.issue_batch(specs.to_vec()).await.unwrap().tokens {
        tokens.push(i.token);
        secrets.push(i.secret);
    }
    clock.advance(TimeDelta::hours(2));
    let mut enrollments = Vec::new();
    for (n, s) in secrets.iter().enumerate() {
        let d = DeviceId::new(format!("dev-{n}")).unwrap();
        enrollments.push(service.redeem(s.expose_secret(), &d).await.unwrap());
        enrollments.push(service.redeem(s.expose_secret(), &d).await.unwrap());
    }
    service
        .revoke(&RevokeTarget::Token(tokens[0].id()), "lost \"badge\"")
        .await
        .unwrap();
    let mut stored = Vec::new();
    for t in &tokens {
        stored.push(service.get(t.id()).await.unwrap().unwrap());
    }
    tokens.extend(stored);
    (tokens, enrollments, secrets)
}

#[tokio::test]
async fn tokens_and_enrollments_round_trip_through_json_without_secrets() {
    let (tokens, enrollments, secrets) = sample_tokens().await;
    let k = key(7);
    for t in &tokens {
        let text = serde_json::to_string(t).unwrap();
        let back: Token = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, t);
        assert_eq!(back.status_at(t0()), t.status_at(t0()));
        assert_no_key(&text, &k);
        for s in &secrets {
            assert_no_token(&text, s);
        }
    }
    for e in &enrollments {
        let text = serde_json::to_string(e).unwrap();
        let back: Enrollment = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, e);
        for s in &secrets {
            assert_no_token(&text, s);
        }
    }
    assert!(enrollments.iter().any(|e| e.replay));
    assert!(tokens.iter().any(|t| t.revocation().is_some()));
}

#[tokio::test]
async fn token_json_has_the_documented_shape() {
    let (tokens, _, _) = sample_tokens().await;
    let v = serde_json::to_value(&tokens[1]).unwrap();
    assert_eq!(v["id"], json!(tokens[1].id().to_string()));
    assert_eq!(v["key_id"], json!(key(7).id().to_string()));
    assert_eq!(v["organization"], json!("acme"));
    assert_eq!(v["group"], json!("emea/berlin"));
    assert_eq!(v["policies"], json!(["wifi", "vpn"]));
    assert_eq!(v["usage_limit"], json!({"limited": 5}));
    assert_eq!(v["metadata"], json!({"cc": "4711", "site": "mitte"}));
    assert_eq!(v["uses"], json!(0));
    assert_eq!(v["batch"], Value::Null);
    let never = serde_json::to_value(&tokens[2]).unwrap();
    assert_eq!(never["validity"]["expiry"], json!("never"));
    assert_eq!(never["usage_limit"], json!("unlimited"));
}

#[test]
fn usage_limits_and_statuses_round_trip() {
    for (limit, expected) in [
        (UsageLimit::Once, json!("once")),
        (UsageLimit::limited(7).unwrap(), json!({"limited": 7})),
        (UsageLimit::Unlimited, json!("unlimited")),
    ] {
        let v = serde_json::to_value(limit).unwrap();
        assert_eq!(v, expected);
        assert_eq!(serde_json::from_value::<UsageLimit>(v).unwrap(), limit);
    }
    for bad in [
        json!({"limited": 0}),
        json!({"limited": -1}),
        json!("limited"),
        json!(0),
        json!("never"),
    ] {
        assert!(
            serde_json::from_value::<UsageLimit>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    for status in Status::ALL {
        let v = serde_json::to_value(status).unwrap();
        assert_eq!(v, json!(status.as_str()));
        assert_eq!(serde_json::from_value::<Status>(v).unwrap(), status);
    }
    assert!(serde_json::from_value::<Status>(json!("Active")).is_err());
    for r in [
        DeviceRejection::InvalidToken,
        DeviceRejection::Exhausted,
        DeviceRejection::Unavailable,
    ] {
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(serde_json::from_value::<DeviceRejection>(v).unwrap(), r);
    }
    assert_eq!(
        serde_json::to_value(DeviceRejection::InvalidToken).unwrap(),
        json!("invalid_token")
    );
}

#[test]
fn other_domain_types_round_trip() {
    fn rt<T>(value: &T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let text = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, value, "{text}");
    }
    rt(&TokenId::from_bytes([0xab; 16]));
    rt(&BatchId::from_bytes([0xcd; 16]));
    rt(&KeyId::from_bytes([1, 2, 3, 4]));
    rt(&Expiry::At(t0()));
    rt(&Expiry::Never);
    rt(&Validity::default_from(t0()));
    rt(&Revocation::new(t0(), "why").unwrap());
    rt(&Redemption {
        device: DeviceId::new("SN-1").unwrap(),
        redeemed_at: t0(),
    });
    rt(&Leeway::new(TimeDelta::milliseconds(1500)).unwrap());
    rt(&PageCursor {
        created_at: t0(),
        id: TokenId::from_bytes([1; 16]),
    });
    rt(&Metadata::from_pairs([("a", "b")]).unwrap());
    rt(&Metadata::new());
    rt(&DeviceGroup::new(
        GroupId::new("emea/berlin").unwrap(),
        "Berlin",
    ));
    rt(&Policy::new(PolicyId::new("wifi").unwrap(), "Wi-Fi").with_version(3));
    rt(&ExpirySpec::After(TimeDelta::hours(5)));
    rt(
        &TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap())
            .with_usage_limit(UsageLimit::limited(3).unwrap())
            .with_expiry(ExpirySpec::Never),
    );
    assert_eq!(
        serde_json::to_value(TokenId::from_bytes([0xab; 16])).unwrap(),
        json!("ab".repeat(16))
    );
}

#[test]
fn a_minimal_token_spec_gets_the_documented_defaults() {
    let spec: TokenSpec =
        serde_json::from_value(json!({"organization": "acme", "group": "emea/berlin"})).unwrap();
    assert_eq!(spec.usage_limit(), UsageLimit::Once);
    assert!(spec.policies().is_empty());
    let validity = spec.validate(t0()).unwrap();
    assert_eq!(validity.expiry, Expiry::At(t0() + Validity::DEFAULT_TTL));
    assert!(serde_json::from_value::<TokenSpec>(json!({"organization": "acme"})).is_err());
    assert!(
        serde_json::from_value::<TokenSpec>(json!({"organization": "a b", "group": "g"})).is_err()
    );
    assert!(serde_json::from_value::<Leeway>(json!(-1)).is_err());
    assert!(serde_json::from_value::<Leeway>(json!(86_400_001)).is_err());
}

/// A change to a serialized record.
type Edit = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn invalid_token_records_do_not_deserialize() {
    let (tokens, _, _) = sample_tokens().await;
    let good = serde_json::to_value(&tokens[1]).unwrap();
    let edits: Vec<(&str, Edit)> = vec![
        ("uses over the limit", Box::new(|v| v["uses"] = json!(6))),
        (
            "uses over once",
            Box::new(|v| {
                v["usage_limit"] = json!("once");
                v["uses"] = json!(2);
            }),
        ),
        ("negative uses", Box::new(|v| v["uses"] = json!(-1))),
        (
            "limit zero",
            Box::new(|v| v["usage_limit"] = json!({"limited": 0})),
        ),
        ("short id", Box::new(|v| v["id"] = json!("abcd"))),
        (
            "uppercase id",
            Box::new(|v| v["id"] = json!("AB".repeat(16))),
        ),
        ("non-hex id", Box::new(|v| v["id"] = json!("zz".repeat(16)))),
        ("numeric id", Box::new(|v| v["id"] = json!(12))),
        ("bad key id", Box::new(|v| v["key_id"] = json!("0102030"))),
        ("bad batch id", Box::new(|v| v["batch"] = json!("x"))),
        (
            "bad organization",
            Box::new(|v| v["organization"] = json!("acme corp")),
        ),
        ("bad group", Box::new(|v| v["group"] = json!("/emea"))),
        (
            "duplicate policy",
            Box::new(|v| v["policies"] = json!(["a", "a"])),
        ),
        (
            "too many policies",
            Box::new(|v| {
                v["policies"] = json!((0..65).map(|i| format!("p{i}")).collect::<Vec<_>>())
            }),
        ),
        (
            "empty window",
            Box::new(|v| v["validity"]["not_before"] = json!("2030-01-01T00:00:00Z")),
        ),
        (
            "metadata too large",
            Box::new(|v| v["metadata"] = json!({"k": "v".repeat(5000)})),
        ),
        (
            "description too long",
            Box::new(|v| v["description"] = json!("d".repeat(1025))),
        ),
        (
            "reason too long",
            Box::new(|v| {
                v["revocation"] =
                    json!({"revoked_at": "2026-03-01T09:00:00Z", "reason": "r".repeat(1025)})
            }),
        ),
        (
            "missing field",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("created_at");
            }),
        ),
        (
            "bad time",
            Box::new(|v| v["created_at"] = json!("yesterday")),
        ),
    ];
    assert!(serde_json::from_value::<Token>(good.clone()).is_ok());
    for (name, edit) in edits {
        let mut v = good.clone();
        edit(&mut v);
        let err = serde_json::from_value::<Token>(v).expect_err(name);
        assert!(!err.to_string().is_empty());
    }
    // The same checks apply to storage backends building records from rows.
    let parts = tokens[1].clone().into_parts();
    let err = Token::from_parts(TokenParts { uses: 6, ..parts }).unwrap_err();
    assert_eq!(err, SpecError::UsesExceedLimit { uses: 6, limit: 5 });
}
