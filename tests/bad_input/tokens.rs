//! Token strings: parse, verify, the typed form, extraction, redemption.

use super::*;

#[test]
fn token_parse_empty_whitespace_huge_prefix_version() {
    let genuine = Keyring::new(key(1)).sign(&TokenId::from_bytes([7; 16]));
    let body = &genuine.expose_secret()[PREFIX.len()..];
    let cases: Vec<(String, DecodeError)> = vec![
        (String::new(), DecodeError::Empty),
        (" ".into(), DecodeError::BadPrefix),
        ("\t\n ".into(), DecodeError::BadPrefix),
        (" ".repeat(TOKEN_LEN), DecodeError::BadPrefix),
        (
            format!(" {}", genuine.expose_secret()),
            DecodeError::BadPrefix,
        ),
        (
            format!("{}\n", genuine.expose_secret()),
            DecodeError::BadLength { len: TOKEN_LEN + 1 },
        ),
        ("a".repeat(MB), DecodeError::BadPrefix),
        (
            format!("{PREFIX}{}", "A".repeat(MB)),
            DecodeError::BadLength { len: MB + 5 },
        ),
        (format!("ghp_{body}"), DecodeError::BadPrefix),
        (format!("OBT1_{body}"), DecodeError::BadPrefix),
        (format!("obk1_{body}"), DecodeError::BadPrefix),
        (format!("obt_{body}"), DecodeError::BadPrefix),
        (format!("obt2_{body}"), DecodeError::UnsupportedVersion),
        (format!("obt0_{body}"), DecodeError::UnsupportedVersion),
        (
            format!("obt1x_{}", &body[1..]),
            DecodeError::UnsupportedVersion,
        ),
        (
            format!("obtv2_{}", &body[1..]),
            DecodeError::UnsupportedVersion,
        ),
        (format!("{PREFIX}{}+", &body[1..]), DecodeError::BadEncoding),
        (format!("{PREFIX}{}=", &body[1..]), DecodeError::BadEncoding),
        (format!("{PREFIX}{}é", &body[2..]), DecodeError::BadEncoding),
    ];
    for (input, expected) in cases {
        let err = UnverifiedToken::parse(&input).unwrap_err();
        assert_eq!(err, expected, "{:?}", &input[..input.len().min(60)]);
        assert_clear(&err, genuine.expose_secret());
        assert_clear(&err, &input);
        let rejection = Keyring::new(key(1)).verify_str(&input).unwrap_err();
        assert_eq!(rejection, Rejection::Malformed(expected));
        assert_eq!(rejection.device_facing(), DeviceRejection::InvalidToken);
    }
}

#[test]
fn token_from_an_unknown_key_names_the_key_not_the_token() {
    let ring = Keyring::new(key(1));
    let stranger = key(9);
    let token = Keyring::new(stranger.clone()).sign(&TokenId::from_bytes([3; 16]));
    let err = ring.verify_str(token.expose_secret()).unwrap_err();
    assert_eq!(err, Rejection::UnknownKey(stranger.id()));
    assert!(err.to_string().contains(&stranger.id().to_string()));
    assert_clear(&err, token.expose_secret());
    assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
    // A retired key is unknown too.
    let mut rotated = Keyring::new(key(1));
    let old = rotated.sign(&TokenId::from_bytes([4; 16]));
    rotated.rotate(key(2)).unwrap();
    rotated.retire(key(1).id()).unwrap();
    assert_eq!(
        rotated.verify_str(old.expose_secret()).unwrap_err(),
        Rejection::UnknownKey(key(1).id())
    );
}

/// Every way of changing one character of a valid token, of cutting it short and of
/// lengthening it.
fn mutations(token: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = token.chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        for c in replacement_chars() {
            if c == chars[i] {
                continue;
            }
            let mut m = chars.clone();
            m[i] = c;
            out.push((
                format!("substitute {i} with {c:?}"),
                m.into_iter().collect(),
            ));
        }
    }
    for i in 0..chars.len() {
        out.push((format!("truncate to {i}"), chars[..i].iter().collect()));
        // Dropping one character anywhere.
        let mut m = chars.clone();
        m.remove(i);
        out.push((format!("remove {i}"), m.into_iter().collect()));
    }
    for i in 0..=chars.len() {
        for c in replacement_chars() {
            let mut m = chars.clone();
            m.insert(i, c);
            out.push((format!("insert {c:?} at {i}"), m.into_iter().collect()));
        }
    }
    out.push(("doubled".into(), format!("{token}{token}")));
    out
}

#[test]
fn every_mutation_of_a_token_is_rejected_by_the_strict_parser() {
    let ring = Keyring::new(key(1));
    let token = ring.sign(&TokenId::from_bytes([0x42; 16]));
    let text = token.expose_secret();
    let all = mutations(text);
    assert!(all.len() > 8000, "{} mutations", all.len());
    for (what, m) in &all {
        let err = ring
            .verify_str(m)
            .expect_err(&format!("{what} must not verify"));
        match &err {
            Rejection::Malformed(_) | Rejection::BadSignature | Rejection::UnknownKey(_) => {}
            other => panic!("{what}: unexpected {other:?}"),
        }
        assert_eq!(err.device_facing(), DeviceRejection::InvalidToken, "{what}");
        assert_clear(&err, text);
        // Cutting short is a length problem (or an incomplete prefix), never anything else.
        if let Some(n) = what.strip_prefix("truncate to ") {
            let n: usize = n.parse().unwrap();
            let expected = match n {
                0 => DecodeError::Empty,
                1..=4 => DecodeError::BadPrefix,
                n => DecodeError::BadLength { len: n },
            };
            assert_eq!(err, Rejection::Malformed(expected), "{what}");
        }
        // A changed body character keeps the shape and breaks the signature (or the key id).
        if what.starts_with("substitute") && m.starts_with(PREFIX) && m.len() == TOKEN_LEN {
            let in_alphabet = m[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if in_alphabet {
                assert!(
                    matches!(err, Rejection::BadSignature | Rejection::UnknownKey(_)),
                    "{what}: {err:?}"
                );
            }
        }
    }
}

/// What the lenient readers ignore: whitespace, invisible characters, hyphens (as
/// separators; U+2010 is a hyphen) and the prefix's case.
fn cosmetic_canon(s: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|&c| !c.is_whitespace() && !matches!(c, '\u{200b}' | '\u{feff}' | '-' | '\u{2010}'))
        .collect();
    let mut out = String::new();
    let mut rest = kept.as_str();
    while let Some(i) = rest.to_ascii_lowercase().find("obt1_") {
        out.push_str(&rest[..i]);
        out.push_str("obt1_");
        rest = &rest[i + 5..];
    }
    out.push_str(rest);
    out
}

/// The lenient readers (typed form, scanned payloads) ignore whitespace, invisible
/// characters and the prefix's case, so some mutations read back as the token itself; every
/// other mutation is refused, by the reader or by the signature.
#[test]
fn every_mutation_of_a_token_is_rejected_by_the_lenient_readers_unless_it_is_cosmetic() {
    let ring = Keyring::new(key(1));
    let token = ring.sign(&TokenId::from_bytes([0x24; 16]));
    let text = token.expose_secret();
    let canon = cosmetic_canon(text);
    let mut cosmetic = 0;
    for (what, m) in mutations(text) {
        for (reader, result) in [
            (
                "parse_grouped",
                parse_grouped(&m).map_err(|e| e.to_string()),
            ),
            (
                "extract_token",
                extract_token(&m).map_err(|e| e.to_string()),
            ),
        ] {
            match result {
                Ok(found) => {
                    if ring.verify_str(found.expose_secret()).is_err() {
                        continue;
                    }
                    // Read back as the genuine token: the change must be cosmetic. The
                    // typed-form reader takes the whole input; the extractor may find the
                    // token inside other text.
                    assert_eq!(found.expose_secret(), text, "{reader}: {what}");
                    let m_canon = cosmetic_canon(&m);
                    if reader == "parse_grouped" {
                        assert_eq!(m_canon, canon, "{reader}: {what} is not cosmetic");
                    } else {
                        assert!(m_canon.contains(&canon), "{reader}: {what} is not cosmetic");
                    }
                    cosmetic += 1;
                }
                Err(message) => {
                    assert_not_shown(&message, text);
                    assert!(!message.contains(PREFIX), "{reader}: {message}");
                }
            }
        }
    }
    // Upper-case prefixes, spaces, invisible characters and neutral neighbours do occur.
    assert!(cosmetic > 100, "{cosmetic}");
}

#[tokio::test]
async fn no_mutated_token_consumes_or_writes_anything() {
    let (service, token) = service_with_token().await;
    let before = snapshot(&service).await;
    let device = DeviceId::new("attacker").unwrap();
    let text = token.expose_secret();
    let mut tried = 0;
    for (what, m) in mutations(text) {
        let err = service
            .redeem(&m, &device)
            .await
            .expect_err(&format!("{what} redeemed"));
        assert_eq!(err.device_facing(), DeviceRejection::InvalidToken, "{what}");
        assert_clear(&err, text);
        assert!(service.inspect(&m).await.is_err(), "{what}");
        tried += 1;
    }
    // Garbage of every shape, too.
    for m in [
        String::new(),
        " ".into(),
        "\u{0}".into(),
        "x".repeat(MB),
        format!("{PREFIX}{}", "A".repeat(MB)),
        format!("obt9_{}", &text[5..]),
    ] {
        let err = service.redeem(&m, &device).await.unwrap_err();
        assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
        tried += 1;
    }
    assert_eq!(
        snapshot(&service).await,
        before,
        "after {tried} bad redemptions"
    );
    let (record, _) = &before[&token.token_id()];
    assert_eq!(record.uses(), 1);
}

#[tokio::test]
async fn a_forged_or_foreign_token_with_a_real_id_consumes_nothing() {
    let (service, token) = service_with_token().await;
    let before = snapshot(&service).await;
    let id = token.token_id();
    // The right id under a key with the right key id but other bytes; under another key.
    let forged = Keyring::new(SigningKey::from_bytes(key(1).id(), &[0; 32])).sign(&id);
    let foreign = Keyring::new(key(9)).sign(&id);
    // The verify-only key is genuine, but this token was not issued under it.
    let wrong_key = Keyring::new(key(2)).sign(&id);
    let device = DeviceId::new("d").unwrap();
    for (what, s, expected) in [
        ("forged", &forged, Rejection::BadSignature),
        ("foreign", &foreign, Rejection::UnknownKey(key(9).id())),
        ("wrong key", &wrong_key, Rejection::NotFound { id }),
    ] {
        let err = service
            .redeem(s.expose_secret(), &device)
            .await
            .unwrap_err();
        assert_eq!(err.rejection(), Some(&expected), "{what}");
        assert_eq!(err.device_facing(), DeviceRejection::InvalidToken, "{what}");
        assert_clear(&err, s.expose_secret());
        assert_clear(&err, token.expose_secret());
    }
    assert_eq!(snapshot(&service).await, before);
}

#[test]
fn the_typed_form_reader_refuses_with_typed_errors() {
    let token = Keyring::new(key(1)).sign(&TokenId::from_bytes([5; 16]));
    let body = &token.expose_secret()[5..];
    let irregular = format!("obt1_{}-{}-{}", &body[..4], &body[4..10], &body[10..]);
    let cases: Vec<(String, DecodeError)> = vec![
        (String::new(), DecodeError::Empty),
        ("   \n\t".into(), DecodeError::Empty),
        ("\u{200b}\u{feff}".into(), DecodeError::Empty),
        ("x".repeat(MB), DecodeError::BadLength { len: MB }),
        (format!("ghp_ {body}"), DecodeError::BadPrefix),
        (format!("obt7_ {body}"), DecodeError::UnsupportedVersion),
        (
            format!("obt1_ {}", &body[..47]),
            DecodeError::BadLength { len: 52 },
        ),
        (
            format!("obt1_ {body} AAAA"),
            DecodeError::BadLength { len: 57 },
        ),
        (irregular, DecodeError::BadLength { len: 55 }),
        (format!("obt1_ {}+", &body[..47]), DecodeError::BadEncoding),
        (
            format!("obt1_ {}", body.replace(&body[..1], "é")),
            DecodeError::BadEncoding,
        ),
    ];
    for (input, expected) in cases {
        let err = parse_grouped(&input).unwrap_err();
        assert_eq!(err, expected, "{:?}", &input[..input.len().min(70)]);
        assert_clear(&err, token.expose_secret());
    }
}

#[test]
fn the_payload_extractor_refuses_with_typed_errors() {
    let ring = Keyring::new(key(1));
    let a = ring.sign(&TokenId::from_bytes([1; 16]));
    let b = ring.sign(&TokenId::from_bytes([2; 16]));
    let (a_text, b_text) = (a.expose_secret(), b.expose_secret());
    let cases: Vec<(String, ExtractError)> = vec![
        (String::new(), ExtractError::Empty),
        (" \n\t ".into(), ExtractError::Empty),
        ("\u{200b}\u{feff}\u{a0}".into(), ExtractError::Empty),
        (
            "x".repeat(MB),
            ExtractError::TooLong {
                len: MB,
                max: MAX_INPUT_LEN,
            },
        ),
        (
            format!("{a_text}{}", " ".repeat(MAX_INPUT_LEN)),
            ExtractError::TooLong {
                len: MAX_INPUT_LEN + TOKEN_LEN,
                max: MAX_INPUT_LEN,
            },
        ),
        ("hello world".into(), ExtractError::NotFound),
        (
            "https://mdm.example.com/enroll?token=".into(),
            ExtractError::NotFound,
        ),
        ("{}".into(), ExtractError::NotFound),
        (
            "{\"token\": ".into(),
            ExtractError::InvalidJson { line: 1, column: 9 },
        ),
        (
            "[1, 2".into(),
            ExtractError::InvalidJson { line: 1, column: 5 },
        ),
        (
            "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE=\\uZZZZ".into(),
            ExtractError::InvalidProperties { line: 1 },
        ),
        (
            format!("{a_text} {b_text}"),
            ExtractError::Ambiguous { count: 2 },
        ),
        (
            format!("{{\"a\": \"{a_text}\", \"b\": \"{b_text}\"}}"),
            ExtractError::Ambiguous { count: 2 },
        ),
        (
            format!("{a_text} obt1_short"),
            ExtractError::Ambiguous { count: 2 },
        ),
        (
            "obt1_tooShort".into(),
            ExtractError::Malformed(DecodeError::BadLength { len: 13 }),
        ),
        (
            format!("obt2_{}", &a_text[5..]),
            ExtractError::Malformed(DecodeError::UnsupportedVersion),
        ),
    ];
    for (input, expected) in cases {
        let err = extract_token(&input).unwrap_err();
        assert_eq!(err, expected, "{:?}", &input[..input.len().min(80)]);
        assert_clear(&err, a_text);
        assert_clear(&err, b_text);
    }
    // The same token twice is one token.
    assert_eq!(
        extract_token(&format!("{a_text}\n{a_text}"))
            .unwrap()
            .expose_secret(),
        a_text
    );
}

#[test]
fn invalid_utf8_around_a_token_is_read_lossily_and_the_token_found() {
    let token = Keyring::new(key(1)).sign(&TokenId::from_bytes([9; 16]));
    let mut bytes = vec![0xff, 0xfe, b' '];
    bytes.extend_from_slice(token.expose_secret().as_bytes());
    bytes.extend_from_slice(&[b' ', 0xc3, 0x28, 0x80]);
    assert!(std::str::from_utf8(&bytes).is_err());
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(
        extract_token(&text).unwrap().expose_secret(),
        token.expose_secret()
    );
    // Invalid bytes inside the token make it malformed, never a different token.
    let mut broken = token.expose_secret().as_bytes().to_vec();
    broken[20] = 0xff;
    let text = String::from_utf8_lossy(&broken);
    assert!(matches!(
        extract_token(&text).unwrap_err(),
        ExtractError::Malformed(_) | ExtractError::Ambiguous { .. }
    ));
}
