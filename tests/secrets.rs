//! Secrets stay secret: no key bytes or token strings in `Debug`, `Display`, errors or
//! serde output. Also: serde round trips of the domain types, and invalid records refused.

mod support;

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::TimeDelta;
use onboarding_token::store::InvalidCursor;
use onboarding_token::token::InvalidStatus;
use onboarding_token::*;
use serde_json::{Value, json};
// Starts in March 2026.
use support::fixture::t0_2026 as t0;
use support::secrets::{encodings, hex};

/// Varied bytes, so that no window of their encodings is a common string.
fn secret_bytes(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed).rotate_left(3))
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(KeyId::from_bytes([seed, 1, 2, 3]), &secret_bytes(seed))
}

/// The first 12-character window of any encoding of `bytes` that occurs in `text`.
fn leaked_bytes(text: &str, bytes: &[u8]) -> Option<String> {
    for enc in encodings(bytes) {
        let chars: Vec<char> = enc.chars().collect();
        for w in chars.windows(12) {
            let w: String = w.iter().collect();
            if text.contains(&w) {
                return Some(w);
            }
        }
    }
    None
}

/// The first 12-character window of the token string that occurs in `text`.
fn leaked_token(text: &str, token: &str) -> Option<String> {
    let chars: Vec<char> = token.chars().collect();
    chars
        .windows(12)
        .map(|w| w.iter().collect::<String>())
        .find(|w| text.contains(w.as_str()))
}

#[track_caller]
fn assert_no_key(text: &str, key: &SigningKey) {
    if let Some(w) = leaked_bytes(text, key.expose_secret()) {
        panic!("key material {w:?} in {text:?}");
    }
}

#[track_caller]
fn assert_no_token(text: &str, token: &TokenString) {
    if let Some(w) = leaked_token(text, token.expose_secret()) {
        panic!("token string part {w:?} in {text:?}");
    }
}

#[test]
fn the_leak_detectors_detect_leaks() {
    let k = key(1);
    let export = Keyring::new(k.clone()).export_secret_text();
    assert!(leaked_bytes(&export, k.expose_secret()).is_some());
    assert!(leaked_bytes(&hex(k.expose_secret()), k.expose_secret()).is_some());
    assert!(leaked_bytes(&format!("{:?}", k.expose_secret()), k.expose_secret()).is_some());
    assert!(leaked_bytes("nothing here", k.expose_secret()).is_none());
    let token = k.sign(&TokenId::from_bytes([1; 16]));
    let shown = format!("prefix {} suffix", &token.expose_secret()[20..40]);
    assert!(leaked_token(&shown, token.expose_secret()).is_some());
}

#[test]
fn signing_keys_and_keyrings_never_show_secret_bytes() {
    let (a, b, c) = (key(1), key(2), key(3));
    let ring = Keyring::new(a.clone())
        .with_verify_only(b.clone())
        .unwrap()
        .with_verify_only(c.clone())
        .unwrap();
    for text in [
        format!("{a:?}"),
        format!("{a:#?}"),
        format!("{ring:?}"),
        format!("{ring:#?}"),
    ] {
        for k in [&a, &b, &c] {
            assert_no_key(&text, k);
        }
    }
    // Debug does name the key ids, which are public.
    let shown = format!("{ring:?}");
    for k in [&a, &b, &c] {
        assert!(shown.contains(&k.id().to_string()), "{shown}");
    }
    assert!(format!("{a:?}").contains("redacted"));
}

#[tokio::test]
async fn issued_tokens_and_the_service_never_show_secrets() {
    let k = key(4);
    let service = Onboarding::new(Keyring::new(k.clone()), MemoryStore::new())
        .with_clock(ManualClock::new(t0()));
    let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap());
    let issued = service.issue(spec.clone()).await.unwrap();
    let batch = service.issue_many(spec, 3).await.unwrap();
    let secret = &issued.secret;

    let parsed = UnverifiedToken::parse(secret.expose_secret()).unwrap();
    let verified = service.verify(secret.expose_secret()).unwrap();
    let enrollment = service
        .redeem(secret.expose_secret(), &DeviceId::new("d").unwrap())
        .await
        .unwrap();
    let record = service.get(issued.token.id()).await.unwrap().unwrap();
    let texts = [
        format!("{secret:?}"),
        format!("{secret:#?}"),
        format!("{issued:?}"),
        format!("{issued:#?}"),
        format!("{batch:?}"),
        format!("{service:?}"),
        format!("{parsed:?}"),
        format!("{verified:?}"),
        format!("{enrollment:?}"),
        format!("{record:?}"),
        format!("{:?}", service.store()),
    ];
    for text in &texts {
        assert_no_key(text, &k);
        assert_no_token(text, secret);
        for i in &batch.tokens {
            assert_no_token(text, &i.secret);
        }
    }
    // The ids are public and shown.
    assert!(texts[0].contains(&issued.token.id().to_string()));
    assert!(texts[0].contains("redacted"));

    // The tag inside the string is secret too: the parsed token does not show it.
    let payload = Base64UrlUnpadded::decode_vec(&secret.expose_secret()[5..]).unwrap();
    let tag = &payload[20..];
    assert!(leaked_bytes(&format!("{parsed:?}"), tag).is_none());
}

/// Every error this crate can produce: Display is a real message (not a Debug dump), and
/// neither Display nor Debug contains the token string or key bytes.
#[tokio::test]
async fn every_error_message_is_clear_and_secret_free() {
    let k = key(5);
    let ring = Keyring::new(k.clone());
    let token = ring.sign(&TokenId::from_bytes([0x11; 16]));
    let text = token.expose_secret();
    let id = token.token_id();
    let other_key = key(6);

    let mut errors: Vec<Box<dyn std::error::Error>> = Vec::new();
    let mut push = |e: Box<dyn std::error::Error>| errors.push(e);

    // Decoding and verification, from mutations of the real string.
    for bad in [
        String::new(),
        format!("xyz{}", &text[3..]),
        format!("obt2_{}", &text[5..]),
        format!("{text}{text}"),
        format!("{}+", &text[..52]),
    ] {
        let decode = UnverifiedToken::parse(&bad).unwrap_err();
        push(Box::new(decode));
        push(Box::new(ring.verify_str(&bad).unwrap_err()));
        push(Box::new(RedeemError::from(decode)));
    }
    let forged = Keyring::new(SigningKey::from_bytes(k.id(), &[0; 32])).sign(&id);
    let unknown = Keyring::new(other_key.clone()).sign(&id);
    for s in [&forged, &unknown] {
        let parsed = UnverifiedToken::parse(s.expose_secret()).unwrap();
        let v = ring.verify(&parsed).unwrap_err();
        push(Box::new(v));
        push(Box::new(RedeemError::from(v)));
        push(Box::new(ring.verify_str(s.expose_secret()).unwrap_err()));
    }
    for r in [
        Rejection::NotFound { id },
        Rejection::Revoked { revoked_at: t0() },
        Rejection::NotYetValid {
            not_before: t0(),
            now: t0() - TimeDelta::seconds(1),
        },
        Rejection::Expired {
            expires_at: t0(),
            now: t0(),
        },
        Rejection::Exhausted { limit: 3 },
    ] {
        push(Box::new(r.device_facing()));
        push(Box::new(RedeemError::from(r)));
    }
    push(Box::new(DeviceRejection::Unavailable));

    // Store errors.
    let backend = || StoreError::backend("test", "reading", std::io::Error::other("disk on fire"));
    push(Box::new(StoreError::Duplicate(id)));
    push(Box::new(StoreError::NotFound(id)));
    push(Box::new(StoreError::from(SpecError::EmptyBatch)));
    push(Box::new(backend()));
    push(Box::new(RedeemError::from(backend())));
    push(Box::new(AdminError::from(backend())));

    // Keyring errors.
    let mut kr = ring.clone();
    push(Box::new(kr.retire(k.id()).unwrap_err()));
    push(Box::new(kr.retire(other_key.id()).unwrap_err()));
    push(Box::new(kr.rotate(key(5)).unwrap_err()));
    push(Box::new(kr.sign_with(other_key.id(), &id).unwrap_err()));
    let export = ring.export_secret_text();
    let broken_export = export.replace("active", "boss");
    push(Box::new(
        Keyring::from_secret_text(&broken_export).unwrap_err(),
    ));
    let truncated_export = export[..export.len() - 12].to_string();
    push(Box::new(
        Keyring::from_secret_text(&truncated_export).unwrap_err(),
    ));

    // Specification errors, through the service where they arise.
    let service =
        Onboarding::new(ring.clone(), MemoryStore::new()).with_clock(ManualClock::new(t0()));
    let base = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap());
    let p = |s: &str| PolicyId::new(s).unwrap();
    for spec in [
        base.clone()
            .with_policies((0..65).map(|i| p(&format!("p{i}")))),
        base.clone().with_policies([p("a"), p("a")]),
        base.clone().with_description("x".repeat(2000)),
        base.clone()
            .with_not_before(t0() + TimeDelta::hours(2))
            .with_expiry(ExpirySpec::At(t0() + TimeDelta::hours(1))),
        base.clone().with_expiry(ExpirySpec::At(t0())),
        base.clone()
            .with_expiry(ExpirySpec::After(TimeDelta::zero())),
    ] {
        push(Box::new(service.issue(spec).await.unwrap_err()));
    }
    push(Box::new(service.issue_batch(Vec::new()).await.unwrap_err()));
    push(Box::new(
        service
            .revoke(&RevokeTarget::Token(id), &"r".repeat(2000))
            .await
            .unwrap_err(),
    ));
    push(Box::new(
        service
            .revoke(&RevokeTarget::Token(id), "r")
            .await
            .unwrap_err(),
    ));
    push(Box::new(
        Metadata::from_pairs([("k", "v".repeat(5000))]).unwrap_err(),
    ));
    push(Box::new(Metadata::from_pairs([("", "v")]).unwrap_err()));
    let record = base
        .clone()
        .into_token(id, k.id(), t0(), None)
        .unwrap()
        .into_parts();
    push(Box::new(
        Token::from_parts(TokenParts {
            uses: 2,
            ..record.clone()
        })
        .unwrap_err(),
    ));
    push(Box::new(SpecError::from(OrgId::new("").unwrap_err())));

    // Names, ids, cursors, statuses.
    push(Box::new(OrgId::new("").unwrap_err()));
    push(Box::new(OrgId::new("a".repeat(65)).unwrap_err()));
    push(Box::new(DeviceId::new("has space").unwrap_err()));
    push(Box::new(GroupId::new("a//b").unwrap_err()));
    push(Box::new("nope".parse::<TokenId>().unwrap_err()));
    push(Box::new("nope".parse::<KeyId>().unwrap_err()));
    push(Box::new("nope".parse::<BatchId>().unwrap_err()));
    let cursor: InvalidCursor = "nope".parse::<PageCursor>().unwrap_err();
    push(Box::new(cursor));
    let status: InvalidStatus = "nope".parse::<Status>().unwrap_err();
    push(Box::new(status));

    // Redeem-time errors from the real token.
    let service =
        Onboarding::new(ring.clone(), MemoryStore::new()).with_clock(ManualClock::new(t0()));
    let issued = service.issue(base.clone()).await.unwrap();
    let d = DeviceId::new("a").unwrap();
    service
        .redeem(issued.secret.expose_secret(), &d)
        .await
        .unwrap();
    let e = DeviceId::new("b").unwrap();
    push(Box::new(
        service
            .redeem(issued.secret.expose_secret(), &e)
            .await
            .unwrap_err(),
    ));
    service
        .revoke(&RevokeTarget::Token(issued.token.id()), "r")
        .await
        .unwrap();
    push(Box::new(
        service
            .redeem(issued.secret.expose_secret(), &e)
            .await
            .unwrap_err(),
    ));

    assert!(errors.len() > 60, "{} errors", errors.len());
    let mut displays = std::collections::BTreeSet::new();
    for err in &errors {
        let display = err.to_string();
        let debug = format!("{err:?}");
        assert!(!display.is_empty());
        assert_ne!(display, debug, "Display falls back to Debug");
        assert!(!display.contains('{'), "Debug-like Display: {display}");
        let first = display.chars().next().unwrap();
        assert!(
            first.is_lowercase() || first.is_ascii_digit(),
            "messages start lowercase: {display}"
        );
        for shown in [&display, &debug] {
            assert_no_key(shown, &k);
            assert_no_key(shown, &other_key);
            assert_no_token(shown, &token);
            assert_no_token(shown, &issued.secret);
            assert_no_token(shown, &forged);
            assert_no_token(shown, &unknown);
        }
        displays.insert(display);
    }
    assert!(
        displays.len() > 40,
        "messages are specific: {}",
        displays.len()
    );
}

#[test]
fn name_problems_say_what_is_wrong() {
    let e = GroupId::new("emea//berlin").unwrap_err();
    assert_eq!(e.kind(), "group id");
    assert_eq!(e.problem(), NameProblem::EmptySegment);
    assert_eq!(
        e.to_string(),
        "invalid group id: it has an empty path segment"
    );
    let e = DeviceId::new("x".repeat(257)).unwrap_err();
    assert_eq!(e.problem(), NameProblem::TooLong { max: 256 });
    let e = PolicyId::new("wi fi").unwrap_err();
    assert!(matches!(e.problem(), NameProblem::BadCharacter { .. }));
    assert!(e.to_string().contains("outside"), "{e}");
    assert_eq!(OrgId::new("").unwrap_err().problem(), NameProblem::Empty);
}

// ---- serde ------------------------------------------------------------------------------

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
