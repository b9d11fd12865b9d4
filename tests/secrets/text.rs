//! Keys, tokens, the service and every error message: no secret in their `Debug` or `Display`.

use super::*;

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
