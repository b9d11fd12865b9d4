//! The bad-input catalogue: every public parser, and every `tokenctl` input, given empty
//! and whitespace input, 1 MB strings, invalid UTF-8 where bytes are accepted, wrong
//! prefixes, unknown versions and keys, every single-character substitution, truncation and
//! extension of a valid token, oversized metadata, malformed durations and dates, and CSV
//! with missing or extra columns. Each gets a typed error with a clear message that does
//! not repeat the secret, and nothing is consumed or written.

mod support;

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use onboarding_token::android::{
    AdminExtras, AndroidError, AndroidProvisioning, ComponentName, DownloadLocation, EapMethod,
    SignatureChecksum, Wifi, WifiSecurity,
};
use onboarding_token::bulk::{
    self, BulkSpec, Column, CsvProblem, DurationError, ExpiryError, LimitError, MetadataError,
    RowProblem, TimeError,
};
use onboarding_token::codec::{PREFIX, TOKEN_LEN};
use onboarding_token::keyfile::{self, KeyFileError};
use onboarding_token::payload::{
    EnrollmentUrl, ExtractError, MAX_INPUT_LEN, UrlError, extract_token, parse_grouped,
};
use onboarding_token::store::{InvalidCursor, RevokeTarget};
use onboarding_token::token::InvalidStatus;
use onboarding_token::*;
// This catalogue starts at nine in the morning; its tokens are acme/fleet's.
use support::fixture::{acme as org, fleet_spec as spec, t0_9am as t0};

const MB: usize = 1024 * 1024;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(
        KeyId::from_bytes([seed, 0xee, 0x01, 0x02]),
        &std::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(seed)),
    )
}

/// No 12-character window of `secret` appears in `text`.
#[track_caller]
fn assert_not_shown(text: &str, secret: &str) {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 8 {
        // Too short to tell a leak from a common word.
        return;
    }
    if chars.len() < 12 {
        assert!(!text.contains(secret), "{secret:?} shown in {text:?}");
        return;
    }
    for w in chars.windows(12) {
        let w: String = w.iter().collect();
        assert!(!text.contains(&w), "{w:?} of a secret shown in {text:?}");
    }
}

/// Display and Debug of `err` are real, secret-free messages.
#[track_caller]
fn assert_clear(err: &dyn std::error::Error, secret: &str) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.is_empty());
    assert!(
        display.len() < 600,
        "a short message: {} bytes",
        display.len()
    );
    assert!(
        !display.contains('{') || display.contains("{}"),
        "Debug-like: {display}"
    );
    assert_not_shown(&display, secret);
    assert_not_shown(&debug, secret);
}

/// Characters to substitute and insert: the whole token alphabet, its look-alikes, the
/// standard base64 characters, whitespace, invisible and non-ASCII characters.
fn replacement_chars() -> Vec<char> {
    let mut chars: Vec<char> = ('A'..='Z').chain('a'..='z').chain('0'..='9').collect();
    chars.extend([
        '-', '_', '+', '/', '=', '.', ' ', '\t', '\n', '\0', '\u{200b}', '\u{feff}', 'é', 'О',
        '０', '😀', '\u{2010}',
    ]);
    chars
}

// ---------------------------------------------------------------------------------------
// The store, before and after

/// Everything a store holds: each token's record and its redemptions.
type Snapshot = BTreeMap<TokenId, (Token, Vec<Redemption>)>;

async fn snapshot<S: TokenStore>(service: &Onboarding<S, ManualClock>) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut query = service.query().with_limit(TokenQuery::MAX_LIMIT);
    loop {
        let page = service.list(&query).await.unwrap();
        for t in page.tokens {
            let r = service.redemptions(t.id()).await.unwrap();
            out.insert(t.id(), (t, r));
        }
        match page.next {
            Some(next) => query = query.with_after(next),
            None => break,
        }
    }
    out
}

/// A service over a memory store with one 3-use token redeemed once, and its string.
async fn service_with_token() -> (Onboarding<MemoryStore, ManualClock>, TokenString) {
    let service = Onboarding::new(
        Keyring::new(key(1)).with_verify_only(key(2)).unwrap(),
        MemoryStore::new(),
    )
    .with_clock(ManualClock::new(t0()));
    let issued = service
        .issue(spec().with_usage_limit(UsageLimit::limited(3).unwrap()))
        .await
        .unwrap();
    service
        .redeem(
            issued.secret.expose_secret(),
            &DeviceId::new("first").unwrap(),
        )
        .await
        .unwrap();
    (service, issued.secret)
}

// ---------------------------------------------------------------------------------------
// Token strings: parse, verify, the typed form, extraction, redemption

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

// ---------------------------------------------------------------------------------------
// Keyrings and key files

#[test]
fn keyring_text_refuses_with_typed_errors_and_no_key_material() {
    let good = Keyring::new(key(1)).with_verify_only(key(2)).unwrap();
    let export = good.export_secret_text();
    let first = export.lines().next().unwrap().to_owned();
    let secret = first.split(' ').nth(2).unwrap().to_owned();
    let id = key(1).id().to_string();
    let malformed = |line: usize| move |e: &KeyringError| matches!(e, KeyringError::Malformed { line: l, .. } if *l == line);
    type Check = Box<dyn Fn(&KeyringError) -> bool>;
    let cases: Vec<(String, Check)> = vec![
        (String::new(), Box::new(|e| *e == KeyringError::NoActiveKey)),
        (
            "  \n\t\n".into(),
            Box::new(|e| *e == KeyringError::NoActiveKey),
        ),
        (
            "# only a comment\n".into(),
            Box::new(|e| *e == KeyringError::NoActiveKey),
        ),
        ("x".repeat(MB), Box::new(malformed(1))),
        (format!("obk2 {id} {secret} active"), Box::new(malformed(1))),
        (format!("OBK1 {id} {secret} active"), Box::new(malformed(1))),
        (format!("obk1 {id} {secret}"), Box::new(malformed(1))),
        (
            format!("obk1 {id} {secret} active extra"),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {} {secret} active", id.to_uppercase()),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id}0 {secret} active"),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id} {} active", &secret[1..]),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id} {secret}AAAA active"),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id} {}+ active", &secret[1..]),
            Box::new(malformed(1)),
        ),
        (format!("obk1 {id} {secret} boss"), Box::new(malformed(1))),
        (format!("\n\n{first}\n{first}\n"), Box::new(malformed(4))),
        (
            format!("{first}\n{}", first.replace("active", "verify")),
            Box::new(move |e| *e == KeyringError::DuplicateKey(key(1).id())),
        ),
        (
            first.replace("active", "verify"),
            Box::new(|e| *e == KeyringError::NoActiveKey),
        ),
    ];
    for (text, check) in cases {
        let err = Keyring::from_secret_text(&text).unwrap_err();
        assert!(check(&err), "{err:?} for {:?}", &text[..text.len().min(80)]);
        assert_clear(&err, &secret);
        for line in export.lines() {
            assert_clear(&err, line.split(' ').nth(2).unwrap());
        }
    }
}

#[cfg(unix)]
#[test]
fn key_files_refuse_bad_files_with_typed_errors_naming_the_path_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::new(key(1));
    let export = ring.export_secret_text();
    let secret = export.split(' ').nth(2).unwrap().to_owned();
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };

    let missing = dir.path().join("missing.key");
    assert!(matches!(
        keyfile::load(&missing),
        Err(KeyFileError::Missing { .. })
    ));

    for mode in [0o644, 0o640, 0o604, 0o660, 0o606, 0o777] {
        let path = write("open.key", export.as_bytes(), mode);
        let err = keyfile::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::TooOpen { mode: m, .. } if m == mode),
            "{mode:o}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert_clear(&err, &secret);
    }

    let mut huge = export.as_bytes().to_vec();
    huge.resize(keyfile::MAX_KEY_FILE as usize + 1, b'#');
    let path = write("huge.key", &huge, 0o600);
    assert!(matches!(
        keyfile::load(&path),
        Err(KeyFileError::TooLarge { .. })
    ));
    let path = write("mb.key", &vec![b'x'; MB], 0o600);
    assert!(matches!(
        keyfile::load(&path),
        Err(KeyFileError::TooLarge { .. })
    ));

    let mut not_utf8 = export.as_bytes().to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0x00]);
    let path = write("binary.key", &not_utf8, 0o600);
    let err = keyfile::load(&path).unwrap_err();
    assert!(matches!(err, KeyFileError::NotText { .. }), "{err:?}");
    assert_clear(&err, &secret);

    for (name, bytes) in [
        ("empty.key", Vec::new()),
        ("blank.key", b"\n  \n".to_vec()),
        ("garbage.key", b"hello world\n".to_vec()),
        ("badrole.key", export.replace("active", "boss").into_bytes()),
        (
            "truncated.key",
            export.as_bytes()[..export.len() - 10].to_vec(),
        ),
    ] {
        let path = write(name, &bytes, 0o600);
        let err = keyfile::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Invalid { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert_clear(&err, &secret);
    }

    // A directory is not a key file.
    let sub = dir.path().join("sub.key");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(keyfile::load(&sub), Err(KeyFileError::Io { .. })));

    // The good file still loads, and refusing never changed it.
    let path = write("good.key", export.as_bytes(), 0o600);
    assert_eq!(
        keyfile::load(&path).unwrap().active_key_id(),
        ring.active_key_id()
    );
    assert_eq!(std::fs::read(&path).unwrap(), export.as_bytes());
}

// ---------------------------------------------------------------------------------------
// Ids, names, cursors, statuses

fn huge() -> String {
    "a".repeat(MB)
}

#[test]
fn hex_ids_refuse_everything_but_their_one_form() {
    let good = "0123456789abcdef0123456789abcdef";
    assert!(good.parse::<TokenId>().is_ok());
    let bad = [
        String::new(),
        " ".into(),
        " ".repeat(32),
        huge(),
        good.to_uppercase(),
        good[..31].to_owned(),
        format!("{good}0"),
        format!(" {}", &good[1..]),
        good.replace('0', "g"),
        "é".repeat(16),
        format!("0x{}", &good[2..]),
        "-".repeat(32),
    ];
    for s in &bad {
        let e = s.parse::<TokenId>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid token id: expected 32 lowercase hex digits"
        );
        let e = s.parse::<BatchId>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid batch id: expected 32 lowercase hex digits"
        );
        assert_clear(&e, "");
    }
    assert!("0a1b2c3d".parse::<KeyId>().is_ok());
    for s in [
        "",
        " ",
        "0a1b2c3",
        "0a1b2c3d0",
        "0A1B2C3D",
        "éééé",
        "0a1b 2c3",
    ] {
        let e = s.parse::<KeyId>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid key id: expected 8 lowercase hex digits"
        );
    }
    assert!(huge().parse::<KeyId>().is_err());
}

#[test]
fn page_cursors_and_statuses_refuse_with_typed_errors() {
    let id = "0123456789abcdef0123456789abcdef";
    for s in [
        String::new(),
        " ".into(),
        ".".into(),
        format!(".{id}"),
        "12.".into(),
        format!("x.{id}"),
        format!("1.5.{id}"),
        format!("{}.{id}", i64::MAX),
        format!("{}.{id}", i64::MIN),
        format!("99999999999999999999.{id}"),
        format!("12.{}", id.to_uppercase()),
        format!("12 .{id}"),
        huge(),
    ] {
        let e: InvalidCursor = s.parse::<PageCursor>().unwrap_err();
        assert_eq!(e.to_string(), "invalid page cursor");
    }
    for s in [
        "", " ", "Active", "ACTIVE", " active", "active ", "activ", "used",
    ] {
        let e: InvalidStatus = s.parse::<Status>().unwrap_err();
        assert!(e.to_string().contains("expected pending, active"), "{e}");
    }
    assert!(huge().parse::<Status>().is_err());
}

#[test]
fn names_refuse_with_the_problem_named() {
    type Parse = fn(&str) -> Result<(), InvalidName>;
    let parsers: [(&str, usize, Parse); 4] = [
        ("organization id", 64, |s| OrgId::new(s).map(drop)),
        ("group id", 255, |s| GroupId::new(s).map(drop)),
        ("policy id", 128, |s| PolicyId::new(s).map(drop)),
        ("device id", 256, |s| DeviceId::new(s).map(drop)),
    ];
    for (kind, max, parse) in parsers {
        let check = |s: &str, problem: NameProblem| {
            let e = parse(s).unwrap_err();
            assert_eq!(e.kind(), kind);
            assert_eq!(e.problem(), problem, "{kind} {:?}", &s[..s.len().min(20)]);
            assert!(e.to_string().starts_with(&format!("invalid {kind}: ")));
            assert!(e.to_string().len() < 120);
        };
        check("", NameProblem::Empty);
        check(&"a".repeat(max + 1), NameProblem::TooLong { max });
        check(&huge(), NameProblem::TooLong { max });
        for s in [" ", "a b", "a\u{0}", "\t", "é", "a\n"] {
            assert!(matches!(
                parse(s).unwrap_err().problem(),
                NameProblem::BadCharacter { .. }
            ));
        }
        assert!(parse(&"a".repeat(max)).is_ok());
    }
    for s in ["/a", "a/", "a//b", "/"] {
        assert_eq!(
            GroupId::new(s).unwrap_err().problem(),
            NameProblem::EmptySegment,
            "{s}"
        );
    }
    for s in ["a/b", "a:b", "a,b"] {
        assert!(OrgId::new(s).is_err(), "{s}");
        assert!(PolicyId::new(s).is_err(), "{s}");
    }
    // Device ids take visible ASCII, so a pasted token is a valid device id: it is a
    // name, not a secret, and nothing in the crate treats it as a token.
    assert!(DeviceId::new("R58N123ABC:/x").is_ok());
}

// ---------------------------------------------------------------------------------------
// Metadata, specs and their serde forms

#[test]
fn metadata_over_4_kib_is_refused_at_every_door() {
    let exactly = Metadata::from_pairs([("k", "v".repeat(Metadata::MAX_BYTES - 1))]);
    assert!(exactly.is_ok());
    let over = Metadata::from_pairs([("k", "v".repeat(Metadata::MAX_BYTES))]).unwrap_err();
    assert_eq!(
        over,
        SpecError::MetadataTooLarge {
            size: 4097,
            max: 4096
        }
    );
    assert_eq!(
        over.to_string(),
        "metadata is 4097 bytes; at most 4096 are allowed"
    );
    // Many small pairs add up.
    let many = Metadata::from_pairs((0..600).map(|i| (format!("key{i:04}"), "1"))).unwrap_err();
    assert!(matches!(many, SpecError::MetadataTooLarge { .. }));
    let big = Metadata::from_pairs([("k", "v".repeat(MB))]).unwrap_err();
    assert!(big.to_string().len() < 100);
    assert_eq!(
        Metadata::from_pairs([("", "v")]).unwrap_err(),
        SpecError::EmptyMetadataKey
    );
    // parse_metadata and serde enforce the same bound.
    let text = format!("k={}", "v".repeat(Metadata::MAX_BYTES));
    assert!(matches!(
        bulk::parse_metadata(&text).unwrap_err(),
        MetadataError::Spec(SpecError::MetadataTooLarge { .. })
    ));
    let json = serde_json::json!({"k": "v".repeat(Metadata::MAX_BYTES)});
    let err = serde_json::from_value::<Metadata>(json).unwrap_err();
    assert!(err.to_string().contains("at most 4096"), "{err}");
    let spec_json = serde_json::json!({
        "organization": "acme", "group": "g", "metadata": {"k": "v".repeat(MB)}
    });
    assert!(serde_json::from_value::<TokenSpec>(spec_json).is_err());
}

#[test]
fn metadata_text_refuses_with_typed_errors() {
    let cases: Vec<(String, MetadataError)> = vec![
        ("k".into(), MetadataError::MissingEquals),
        ("a=1;b".into(), MetadataError::MissingEquals),
        ("=v".into(), MetadataError::EmptyKey),
        (" = v".into(), MetadataError::EmptyKey),
        ("k=1;k=2".into(), MetadataError::DuplicateKey("k".into())),
        (
            format!("{0}=1;{0}=2", "k".repeat(MB)),
            MetadataError::DuplicateKey("k".repeat(64)),
        ),
    ];
    for (input, expected) in cases {
        let err = bulk::parse_metadata(&input).unwrap_err();
        assert_eq!(err, expected);
        assert!(err.to_string().len() < 200);
    }
    for ok in ["", " ", ";;", "a=b=c", " a = b ;"] {
        assert!(bulk::parse_metadata(ok).is_ok(), "{ok:?}");
    }
}

#[test]
fn token_spec_and_token_json_refuse_with_errors() {
    let bad_specs = [
        "".to_owned(),
        " ".into(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        r#"{"organization": "acme"}"#.into(),
        r#"{"organization": "", "group": "g"}"#.into(),
        r#"{"organization": "acme", "group": "a//b"}"#.into(),
        r#"{"organization": "acme", "group": "g", "usage_limit": {"limited": 0}}"#.into(),
        r#"{"organization": "acme", "group": "g", "usage_limit": "twice"}"#.into(),
        r#"{"organization": "acme", "group": "g", "policies": ["a b"]}"#.into(),
        r#"{"organization": "acme", "group": "g", "expiry": {"after": 9223372036854775807}}"#
            .into(),
        r#"{"organization": "acme", "group": "g", "expiry": {"at": "tomorrow"}}"#.into(),
        r#"{"organization": "acme", "group": "g", "not_before": "2030-02-30T00:00:00Z"}"#.into(),
        format!(
            r#"{{"organization": "acme", "group": "{}"}}"#,
            "g".repeat(MB)
        ),
    ];
    for text in &bad_specs {
        let err = serde_json::from_str::<TokenSpec>(text).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(err.to_string().len() < 300, "{err}");
    }
    // Invalid UTF-8 bytes.
    assert!(
        serde_json::from_slice::<TokenSpec>(b"{\"organization\": \"a\xff\", \"group\": \"g\"}")
            .is_err()
    );
    assert!(serde_json::from_slice::<Token>(b"\xff\xfe").is_err());
    for text in ["", "null", "{}", "[]", "\"obt1_x\""] {
        assert!(serde_json::from_str::<Token>(text).is_err(), "{text}");
    }
    // Specs that deserialize but break a rule are refused when issued.
    let negative: TokenSpec =
        serde_json::from_str(r#"{"organization": "acme", "group": "g", "expiry": {"after": -60}}"#)
            .unwrap();
    assert_eq!(negative.validate(t0()), Err(SpecError::NonPositiveLifetime));
}

// ---------------------------------------------------------------------------------------
// Durations, times, expiries, limits

#[test]
fn durations_refuse_with_typed_errors() {
    use DurationError::*;
    let cases: Vec<(String, DurationError)> = vec![
        (String::new(), Empty),
        (" ".into(), Syntax),
        ("7".into(), Syntax),
        ("d".into(), Syntax),
        ("7x".into(), Syntax),
        ("-7d".into(), Syntax),
        ("+7d".into(), Syntax),
        ("7d ".into(), Syntax),
        (" 7d".into(), Syntax),
        ("1.5h".into(), Syntax),
        ("７d".into(), Syntax),
        ("7dd".into(), Syntax),
        ("7 d".into(), Syntax),
        ("7é".into(), Syntax),
        ("12h1d".into(), UnitOrder),
        ("1d1d".into(), UnitOrder),
        ("1m1h".into(), UnitOrder),
        ("0d".into(), Zero),
        ("0d0h0m".into(), Zero),
        ("0000s".into(), Zero),
        ("9999999999999999999d".into(), Overflow),
        ("999999999999999999w".into(), Overflow),
        ("9223372036854776s".into(), Overflow),
        (format!("{}d", "1".repeat(MB)), Overflow),
        ("1".repeat(MB), Overflow),
    ];
    for (input, expected) in cases {
        let err = bulk::parse_duration(&input).unwrap_err();
        assert_eq!(err, expected, "{:?}", &input[..input.len().min(30)]);
        assert!(err.to_string().len() < 200);
    }
    assert_eq!(bulk::parse_duration("1W2D"), Ok(TimeDelta::days(9)));
}

#[test]
fn times_and_expiries_refuse_with_typed_errors() {
    for input in [
        String::new(),
        " ".into(),
        "2030-01-01".into(),
        "2030-01-01T00:00:00".into(),
        "2030-13-01T00:00:00Z".into(),
        "2030-02-30T00:00:00Z".into(),
        "2030-01-01T25:00:00Z".into(),
        "2030-01-01T00:00:00+25:00".into(),
        "30-01-01T00:00:00Z".into(),
        "yesterday".into(),
        "1767225600".into(),
        " 2030-01-01T00:00:00Z".into(),
        huge(),
    ] {
        assert_eq!(
            bulk::parse_time(&input),
            Err(TimeError),
            "{:?}",
            &input[..input.len().min(30)]
        );
    }
    assert!(bulk::parse_time("2030-01-01t00:00:00z").is_ok());
    for (input, expected) in [
        ("", DurationError::Empty),
        ("soon", DurationError::Syntax),
        ("never ", DurationError::Syntax),
        ("0d", DurationError::Zero),
        ("-1d", DurationError::Syntax),
        ("2030-01-01", DurationError::Syntax),
    ] {
        assert_eq!(
            bulk::parse_expiry(input),
            Err(ExpiryError::Invalid(expected)),
            "{input:?}"
        );
    }
    assert_eq!(bulk::parse_expiry("NEVER"), Ok(ExpirySpec::Never));
}

#[test]
fn usage_limits_refuse_with_a_typed_error() {
    for input in [
        String::new(),
        " ".into(),
        "0".into(),
        "00".into(),
        "-1".into(),
        "+5".into(),
        " 5".into(),
        "5 ".into(),
        "1.5".into(),
        "4294967296".into(),
        "five".into(),
        "unlimited!".into(),
        "５".into(),
        huge(),
    ] {
        assert_eq!(bulk::parse_usage_limit(&input), Err(LimitError));
    }
    assert_eq!(
        bulk::parse_usage_limit("4294967295").unwrap().max_uses(),
        Some(u32::MAX)
    );
    assert_eq!(bulk::parse_usage_limit("ONCE"), Ok(UsageLimit::Once));
}

// ---------------------------------------------------------------------------------------
// Bulk CSV

fn parse_csv(text: &str) -> Result<BulkSpec, bulk::BulkSpecError> {
    BulkSpec::parse(text, &org(), t0())
}

#[track_caller]
fn one_error(text: &str) -> bulk::RowError {
    let err = parse_csv(text).unwrap_err();
    assert_eq!(err.errors().len(), 1, "{err}");
    err.errors()[0].clone()
}

#[test]
fn bulk_csv_refuses_missing_extra_and_bad_columns() {
    let e = one_error("");
    assert_eq!((e.line, e.problem), (1, RowProblem::NoHeader));
    assert_eq!(one_error(" \n\n  \n").problem, RowProblem::NoHeader);
    assert_eq!(one_error(",,,\n").problem, RowProblem::NoHeader);
    assert_eq!(one_error("group,count\n").problem, RowProblem::NoRows);
    assert_eq!(
        one_error("group,count\n# only a comment\n").problem,
        RowProblem::NoRows
    );

    // Missing required columns: both named.
    let err = parse_csv("policies,limit\nwifi,3\n").unwrap_err();
    let missing: Vec<Option<Column>> = err.errors().iter().map(|e| e.column).collect();
    assert_eq!(missing, vec![Some(Column::Group), Some(Column::Count)]);
    assert!(
        err.errors()
            .iter()
            .all(|e| e.problem == RowProblem::MissingColumn)
    );
    assert!(
        err.to_string().contains("required column is missing"),
        "{err}"
    );

    // An unknown extra column, named (at most 64 characters of it).
    let e = one_error("group,count,colour\ng,1,red\n");
    assert_eq!(
        e.problem,
        RowProblem::UnknownColumn {
            name: "colour".into()
        }
    );
    let long = "x".repeat(MB);
    let e = one_error(&format!("group,count,{long}\ng,1,red\n"));
    assert_eq!(
        e.problem,
        RowProblem::UnknownColumn {
            name: "x".repeat(64)
        }
    );
    assert!(e.to_string().len() < 300);
    let e = one_error("group,count,Count\ng,1,2\n");
    assert_eq!(
        (e.column, e.problem),
        (Some(Column::Count), RowProblem::DuplicateColumn)
    );

    // However wide the header, at most MAX_ERRORS problems, the missing columns among them
    // (found by fuzzing: a header of 110 unknown names gave 112 errors).
    let wide = format!("{}\nx\n", "colour,".repeat(300));
    let err = parse_csv(&wide).unwrap_err();
    assert_eq!(err.errors().len(), bulk::MAX_ERRORS);
    let tail: Vec<(Option<Column>, RowProblem)> = err.errors()[bulk::MAX_ERRORS - 2..]
        .iter()
        .map(|e| (e.column, e.problem.clone()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (Some(Column::Group), RowProblem::MissingColumn),
            (Some(Column::Count), RowProblem::MissingColumn),
        ]
    );
    let huge_header = format!("group,count{}\ng,1\n", ",dup".repeat(MB / 4));
    assert_eq!(
        parse_csv(&huge_header).unwrap_err().errors().len(),
        bulk::MAX_ERRORS
    );

    // Rows with missing or extra fields.
    let err = parse_csv("group,count\ng\ng,1,extra\ng,1\n").unwrap_err();
    let problems: Vec<(usize, RowProblem)> = err
        .errors()
        .iter()
        .map(|e| (e.line, e.problem.clone()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (
                2,
                RowProblem::FieldCount {
                    expected: 2,
                    found: 1
                }
            ),
            (
                3,
                RowProblem::FieldCount {
                    expected: 2,
                    found: 3
                }
            ),
        ]
    );
}

#[test]
fn bulk_csv_refuses_bad_values_naming_line_and_column() {
    let header = "group,count,limit,not_before,expires,policies,metadata,description\n";
    let rows = [
        (",1,,,,,,", Column::Group, RowProblem::Required),
        (
            "a//b,1,,,,,,",
            Column::Group,
            RowProblem::Name(GroupId::new("a//b").unwrap_err()),
        ),
        ("g,,,,,,,", Column::Count, RowProblem::Required),
        ("g,many,,,,,,", Column::Count, RowProblem::Count),
        ("g,0,,,,,,", Column::Count, RowProblem::Count),
        ("g,10001,,,,,,", Column::Count, RowProblem::Count),
        ("g,+5,,,,,,", Column::Count, RowProblem::Count),
        ("g,1,0,,,,,", Column::Limit, RowProblem::Limit(LimitError)),
        (
            "g,1,,yesterday,,,,",
            Column::NotBefore,
            RowProblem::Time(TimeError),
        ),
        (
            "g,1,,,soon,,,",
            Column::Expires,
            RowProblem::Expiry(ExpiryError::Invalid(DurationError::Syntax)),
        ),
        (
            "g,1,,,12h1d,,,",
            Column::Expires,
            RowProblem::Expiry(ExpiryError::Invalid(DurationError::UnitOrder)),
        ),
        (
            "g,1,,,2029-01-01T00:00:00Z,,,",
            Column::Expires,
            RowProblem::Spec(SpecError::ExpiresBeforeIssue {
                expires_at: Utc.with_ymd_and_hms(2029, 1, 1, 0, 0, 0).unwrap(),
                issued_at: t0(),
            }),
        ),
        (
            "g,1,,2031-01-01T00:00:00Z,2030-06-01T00:00:00Z,,,",
            Column::NotBefore,
            RowProblem::Spec(SpecError::EmptyWindow {
                not_before: Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap(),
                expires_at: Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap(),
            }),
        ),
        (
            "g,1,,,,a;a,,",
            Column::Policies,
            RowProblem::Spec(SpecError::DuplicatePolicy(PolicyId::new("a").unwrap())),
        ),
        (
            "g,1,,,,a b,,",
            Column::Policies,
            RowProblem::Name(PolicyId::new("a b").unwrap_err()),
        ),
        (
            "g,1,,,,,k,",
            Column::Metadata,
            RowProblem::Metadata(MetadataError::MissingEquals),
        ),
    ];
    for (row, column, problem) in rows {
        let e = one_error(&format!("{header}{row}\n"));
        assert_eq!(e.line, 2, "{row}");
        assert_eq!(e.column, Some(column), "{row}");
        assert_eq!(e.problem, problem, "{row}");
        assert!(e.to_string().starts_with("line 2, column `"), "{e}");
    }
    // Oversized metadata and description.
    let e = one_error(&format!("{header}g,1,,,,,k={},\n", "v".repeat(5000)));
    assert_eq!(e.column, Some(Column::Metadata));
    assert!(matches!(
        e.problem,
        RowProblem::Metadata(MetadataError::Spec(SpecError::MetadataTooLarge { .. }))
    ));
    let e = one_error(&format!("{header}g,1,,,,,,{}\n", "d".repeat(2000)));
    assert_eq!(e.column, Some(Column::Description));
    // Every problem of a row is reported, not just the first.
    let err = parse_csv(&format!("{header},0,0,x,y,a b,k,\n")).unwrap_err();
    assert_eq!(err.errors().len(), 7, "{err}");
}

#[test]
fn bulk_csv_refuses_bad_syntax_sizes_and_invalid_utf8() {
    assert_eq!(
        one_error("group,count\n\"g,1\n").problem,
        RowProblem::Csv(CsvProblem::UnterminatedQuote)
    );
    assert_eq!(
        one_error("group,count\n\"g\"x,1\n").problem,
        RowProblem::Csv(CsvProblem::AfterQuote)
    );
    let big = format!(
        "group,count\n{}",
        "g,1\n".repeat(bulk::MAX_SPEC_BYTES / 4 + 1)
    );
    assert!(matches!(
        one_error(&big).problem,
        RowProblem::TooLarge { .. }
    ));
    let many = format!("group,count\n{}", "g,10000\n".repeat(11));
    let e = one_error(&many);
    assert_eq!(
        (e.line, e.problem),
        (
            12,
            RowProblem::TooManyTokens {
                max: bulk::MAX_TOKENS
            }
        )
    );
    let bad_rows = format!("group,count\n{}", "g,0\n".repeat(500));
    assert_eq!(
        parse_csv(&bad_rows).unwrap_err().errors().len(),
        bulk::MAX_ERRORS
    );
    // Invalid UTF-8, read lossily: a group with U+FFFD is a bad name, not a panic.
    let bytes = b"group,count\ng\xff\xfe,1\n";
    let text = String::from_utf8_lossy(bytes);
    let e = one_error(&text);
    assert_eq!(e.column, Some(Column::Group));
    assert!(matches!(e.problem, RowProblem::Name(_)));
    // A byte-order mark is skipped, but not a second one.
    assert!(parse_csv("\u{feff}group,count\ng,1\n").is_ok());
    assert!(parse_csv("\u{feff}\u{feff}group,count\ng,1\n").is_err());
}

#[tokio::test]
async fn a_batch_with_one_bad_spec_writes_nothing() {
    let (service, _) = service_with_token().await;
    let before = snapshot(&service).await;
    let good = spec();
    let bad = [
        spec().with_expiry(ExpirySpec::At(t0() - TimeDelta::days(1))),
        spec().with_description("d".repeat(MB)),
        spec().with_policies((0..65).map(|i| PolicyId::new(format!("p{i}")).unwrap())),
        spec()
            .with_not_before(t0() + TimeDelta::days(2))
            .with_expiry(ExpirySpec::At(t0() + TimeDelta::days(1))),
        spec().with_expiry(ExpirySpec::After(TimeDelta::zero())),
    ];
    for b in bad {
        let err = service
            .issue_batch(vec![good.clone(), good.clone(), b.clone()])
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::Spec(_)), "{err:?}");
        assert!(err.to_string().len() < 300);
        assert!(service.issue(b).await.is_err());
    }
    assert!(matches!(
        service.issue_batch(Vec::new()).await.unwrap_err(),
        AdminError::Spec(SpecError::EmptyBatch)
    ));
    // Revocations with bad input write nothing either.
    let id = *before.keys().next().unwrap();
    assert!(
        service
            .revoke(&RevokeTarget::Token(id), &"r".repeat(MB))
            .await
            .is_err()
    );
    let unknown = TokenId::from_bytes([0; 16]);
    assert!(matches!(
        service
            .revoke(&RevokeTarget::Token(unknown), "r")
            .await
            .unwrap_err(),
        AdminError::Store(StoreError::NotFound(_))
    ));
    assert_eq!(snapshot(&service).await, before);
}

// ---------------------------------------------------------------------------------------
// Enrollment URLs and the Android builders

#[test]
fn enrollment_urls_refuse_with_typed_errors_and_hide_credentials() {
    let cases: Vec<(String, UrlError)> = vec![
        (String::new(), UrlError::NotHttp),
        (" ".into(), UrlError::NotHttp),
        ("ftp://x".into(), UrlError::NotHttp),
        ("mdm.example.com".into(), UrlError::NotHttp),
        ("https://".into(), UrlError::MissingHost),
        ("https:///path".into(), UrlError::MissingHost),
        (
            "https://user:hunter2hunter2@mdm.example.com".into(),
            UrlError::Credentials,
        ),
        ("https://mdm example.com".into(), UrlError::BadCharacter),
        (" https://mdm.example.com".into(), UrlError::NotHttp),
        ("https://mdm.example.com/\n".into(), UrlError::BadCharacter),
        ("https://mdm.exämple.com".into(), UrlError::BadCharacter),
        ("https://ééééééé".into(), UrlError::BadCharacter),
        ("ééééééééé".into(), UrlError::NotHttp),
        ("httpséé".into(), UrlError::NotHttp),
        (
            "https://mdm.example.com:99999999".into(),
            UrlError::BadCharacter,
        ),
        ("https://mdm.example.com:".into(), UrlError::BadCharacter),
        ("https://[::1".into(), UrlError::BadCharacter),
        (
            "https://mdm.example.com/<script>".into(),
            UrlError::BadCharacter,
        ),
        (
            format!("https://{}", "a".repeat(MB)),
            UrlError::TooLong {
                max: EnrollmentUrl::MAX_LEN,
            },
        ),
        (
            "https://mdm.example.com/e?token=x".into(),
            UrlError::ParamAlreadyPresent,
        ),
        (
            "https://mdm.example.com/e?%74oken=x".into(),
            UrlError::ParamAlreadyPresent,
        ),
    ];
    for (input, expected) in cases {
        let err = EnrollmentUrl::new(&input).unwrap_err();
        assert_eq!(err, expected, "{:?}", &input[..input.len().min(50)]);
        assert_clear(&err, "hunter2hunter2");
        assert_clear(&err, &input);
    }
    let url = EnrollmentUrl::new("https://mdm.example.com/e").unwrap();
    for name in ["", "a b", "é", &"p".repeat(65), "a=b", "a&b"] {
        assert_eq!(
            url.clone().with_param(name).unwrap_err(),
            UrlError::BadParamName
        );
    }
}

#[test]
fn android_builders_refuse_with_typed_errors_and_hide_the_wifi_password() {
    use AndroidError::*;
    for c in [
        "",
        "noslash",
        "a/",
        "/b",
        "1a/b",
        "a..b/C",
        "a/b c",
        "é/b",
        &format!("a/{}", "b".repeat(300)),
    ] {
        assert_eq!(ComponentName::new(c).unwrap_err(), BadComponent, "{c:?}");
    }
    for c in [
        "",
        " ",
        "abc",
        &"A".repeat(42),
        &"A".repeat(44),
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w===",
    ] {
        assert_eq!(SignatureChecksum::new(c).unwrap_err(), BadChecksum, "{c:?}");
    }
    assert_eq!(
        SignatureChecksum::new("gJD2YwtOiWJHkSMkkIfLRlj+quNqG1fb6v100QmzM9w=").unwrap_err(),
        StandardBase64Checksum
    );
    for h in ["", "zz", &"0".repeat(63), &"0".repeat(65), &"g".repeat(64)] {
        assert_eq!(
            SignatureChecksum::from_sha256_hex(h).unwrap_err(),
            BadChecksum
        );
    }
    for d in [
        "",
        "http://mdm.example.com/dpc.apk",
        "ftp://x",
        "https://",
        "https://a b/c",
    ] {
        assert!(
            matches!(
                DownloadLocation::new(d).unwrap_err(),
                BadDownloadLocation(_)
            ),
            "{d:?}"
        );
    }
    let extras = AdminExtras::new();
    for k in ["", "a\nb", "\u{0}", &"k".repeat(257)] {
        assert!(matches!(
            extras.clone().with_extra(k, "v").unwrap_err(),
            BadKey { .. }
        ));
        assert!(matches!(
            extras.clone().with_token_key(k).unwrap_err(),
            BadKey { .. }
        ));
    }
    assert_eq!(
        extras
            .clone()
            .with_extra("k", &"v".repeat(4097))
            .unwrap_err(),
        ValueTooLong
    );
    assert_eq!(
        extras
            .clone()
            .with_extra(onboarding_token::android::CLOUDDPC_ENROLLMENT_TOKEN, "v")
            .unwrap_err(),
        ExtraIsTokenKey
    );
    let mut full = AdminExtras::new();
    for i in 0..64 {
        full = full.with_extra(&format!("k{i}"), "v").unwrap();
    }
    assert_eq!(
        full.clone().with_extra("one-more", "v").unwrap_err(),
        TooManyExtras
    );
    assert!(full.with_extra("k0", "replaced").is_ok());

    let password = "correct-horse-battery";
    for ssid in ["", &"s".repeat(33)] {
        let e = Wifi::new(ssid, WifiSecurity::Wpa, Some(password)).unwrap_err();
        assert_eq!(e, BadSsid);
        assert_clear(&e, password);
    }
    let wifi_cases: Vec<(WifiSecurity, Option<String>)> = vec![
        (WifiSecurity::Wpa, None),
        (WifiSecurity::Wpa, Some("short77".into())),
        (WifiSecurity::Wpa, Some("x".repeat(64))),
        (WifiSecurity::Wpa, Some(format!("{password}\u{0}"))),
        (WifiSecurity::Wpa, Some(format!("{password}é"))),
        (WifiSecurity::Wep, None),
        (WifiSecurity::Wep, Some(password.into())),
        (WifiSecurity::None, Some(password.into())),
        (WifiSecurity::Eap, Some(format!("{password}\n"))),
        (WifiSecurity::Eap, Some(password.repeat(300))),
    ];
    for (security, pw) in wifi_cases {
        let e = Wifi::new("Corp", security, pw.as_deref()).unwrap_err();
        assert!(matches!(e, BadWifiPassword(_)), "{security:?}: {e:?}");
        assert_clear(&e, password);
        if let Some(pw) = &pw {
            assert_clear(&e, pw);
        }
    }
    let wpa = Wifi::new("Corp", WifiSecurity::Wpa, Some(password)).unwrap();
    assert!(!format!("{wpa:?}").contains(password));
    assert!(matches!(
        wpa.clone()
            .with_eap(EapMethod::Peap, None, None, None)
            .unwrap_err(),
        BadEap(_)
    ));
    assert!(matches!(
        wpa.with_domain("example.com").unwrap_err(),
        BadEap(_)
    ));
    let eap = Wifi::new("Corp", WifiSecurity::Eap, Some(password)).unwrap();
    assert!(matches!(
        eap.clone()
            .with_eap(EapMethod::Tls, None, Some("a\nb"), None)
            .unwrap_err(),
        BadEap(_)
    ));
    assert!(matches!(
        eap.clone().with_domain("").unwrap_err(),
        BadEap(_)
    ));
    assert!(matches!(
        eap.with_domain("exämple.com").unwrap_err(),
        BadEap(_)
    ));
    for s in ["", "wpa3", "WPA2", " WPA"] {
        assert_eq!(s.parse::<WifiSecurity>().unwrap_err(), UnknownWifiSecurity);
    }

    let android = AndroidProvisioning::new(
        "com.example.dpc/.AdminReceiver",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
        "https://mdm.example.com/dpc.apk",
    )
    .unwrap();
    for l in [
        "", "e", "english", "en_us", "EN_US", "en_USA", "en-", "de_DE_x", "é",
    ] {
        assert_eq!(
            android.clone().with_locale(l).unwrap_err(),
            BadLocale,
            "{l:?}"
        );
    }
    for tz in [
        "",
        "/Berlin",
        "Europe/Berlin; rm",
        "Europe Berlin",
        &"A".repeat(65),
        "Éurope",
    ] {
        assert_eq!(
            android.clone().with_time_zone(tz).unwrap_err(),
            BadTimeZone,
            "{tz:?}"
        );
    }
    for (c, s, d) in [
        (
            "",
            "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
            "https://x/y",
        ),
        ("a/b", "", "https://x/y"),
        (
            "a/b",
            "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
            "http://x/y",
        ),
    ] {
        assert!(AndroidProvisioning::new(c, s, d).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// tokenctl: exit 1 with a one-line reason, and nothing written

#[cfg(all(feature = "sqlite", feature = "qr"))]
mod cli {
    use super::support::tokenctl::{Env, Run};
    use super::*;
    use serde_json::Value;

    /// What the store holds, as `list --all --json` and `show` see it.
    fn state(env: &Env) -> Vec<Value> {
        env.list()
            .into_iter()
            .map(|t| {
                let id = t["id"].as_str().unwrap().to_owned();
                env.show(&id)
            })
            .collect()
    }

    fn db_bytes(env: &Env) -> Vec<u8> {
        std::fs::read(env.db()).unwrap()
    }

    #[test]
    fn tokenctl_redeem_rejects_every_mutation_with_exit_1_and_consumes_nothing() {
        let env = Env::init();
        let (id, token) = env.issue(&["--group", "g", "--max-uses", "3"]);
        assert_eq!(env.run(&["redeem", &token, "--device", "first"]).code, 0);
        let before = state(&env);
        assert_eq!(before[0]["uses"], 1);

        let chars: Vec<char> = token.chars().collect();
        let mut inputs: Vec<String> = Vec::new();
        // Every truncation, a substitution at every position, an extension at every end.
        for i in 0..chars.len() {
            inputs.push(chars[..i].iter().collect());
            let mut m = chars.clone();
            m[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            inputs.push(m.into_iter().collect());
        }
        inputs.push(format!("{token}A"));
        inputs.push(format!("A{token}"));
        inputs.push(format!("obt2_{}", &token[5..]));
        inputs.push(format!("ghp_{}", &token[5..]));
        inputs.push(" ".into());
        // An empty argument is refused too.
        inputs.push(String::new());
        for input in &inputs {
            let run = env.run(&["redeem", input, "--device", "attacker"]);
            if input.is_empty() || input.trim().is_empty() {
                run.assert_rejected("invalid token");
                continue;
            }
            run.assert_rejected("invalid token");
            assert!(!run.stderr.contains(&token[5..20]), "{run:?}");
            assert!(!run.stderr.contains("panicked"), "{run:?}");
        }
        // Through standard input: 1 MB of garbage, invalid UTF-8, a token cut short.
        let big = env.run_stdin(&["redeem", "-", "--device", "attacker"], &vec![b'x'; MB]);
        big.assert_rejected("invalid token");
        let mut bytes = token.as_bytes()[..40].to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        let run = env.run_stdin(&["redeem", "-", "--device", "attacker"], &bytes);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        let run = env.run_stdin(&["redeem", "-", "--device", "attacker"], b"");
        run.assert_rejected("invalid token");
        // Bad device ids.
        for device in ["", "has space", &"d".repeat(300)] {
            let run = env.run(&["redeem", &token, "--device", device]);
            run.assert_clean_error();
        }
        assert_eq!(state(&env), before, "nothing consumed");
        assert_eq!(env.show(&id)["redemptions"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn tokenctl_issue_and_bulk_refuse_bad_values_with_exit_1_and_write_nothing() {
        let env = Env::init();
        env.issue(&["--group", "seed"]);
        let before = state(&env);
        let db_before = db_bytes(&env);
        let big = "x".repeat(64 * 1024);
        let meta_big = format!("k={}", "v".repeat(5000));
        let bad_issues: Vec<Vec<&str>> = vec![
            vec!["--group", ""],
            vec!["--group", "a//b"],
            vec!["--group", &big],
            vec!["--group", "g", "--policy", "a b"],
            vec!["--group", "g", "--expires-in", "7"],
            vec!["--group", "g", "--expires-in", "0d"],
            vec!["--group", "g", "--expires-in", "12h1d"],
            vec!["--group", "g", "--expires-in", "99999999999999999999d"],
            vec!["--group", "g", "--expires-at", "tomorrow"],
            vec!["--group", "g", "--expires-at", "2000-01-01T00:00:00Z"],
            vec!["--group", "g", "--not-before", "2030-02-30T00:00:00Z"],
            vec!["--group", "g", "--meta", "novalue"],
            vec!["--group", "g", "--meta", &meta_big],
            vec!["--group", "g", "--description", &big],
            vec!["--group", "g", "--format", "url", "--url-base", "ftp://x"],
            vec![
                "--group",
                "g",
                "--format",
                "url",
                "--url-base",
                "https://u:pw-secret@x",
            ],
        ];
        for args in &bad_issues {
            let mut all = vec!["issue"];
            all.extend_from_slice(args);
            let run = env.run(&all);
            assert!(
                run.code == 1 || run.code == 2,
                "{args:?} exits 1 (bad value) or 2 (usage): {run:?}"
            );
            assert_eq!(run.stdout, "", "{run:?}");
            assert!(!run.stderr.contains("pw-secret"), "{run:?}");
            assert!(!run.stderr.contains("panicked"), "{run:?}");
        }
        // Values the library parses are exit 1 with a one-line message naming the option.
        for (args, option) in [
            (vec!["--group", "g", "--expires-in", "7"], "--expires-in"),
            (
                vec!["--group", "g", "--expires-at", "tomorrow"],
                "--expires-at",
            ),
            (vec!["--group", "a//b"], "--group"),
            (vec!["--group", "g", "--meta", "novalue"], "--meta"),
        ] {
            let mut all = vec!["issue"];
            all.extend_from_slice(&args);
            let run = env.run(&all);
            run.assert_clean_error();
            assert!(run.stderr.contains(option), "{option}: {run:?}");
        }
        // A number that is not a number is clap's usage error.
        env.run(&["issue", "--group", "g", "--max-uses", "many"])
            .assert_usage_error();
        env.run(&["issue", "--group", "g", "--max-uses", "0"])
            .assert_usage_error();

        // Bulk specifications: missing and extra columns, bad values, invalid UTF-8.
        let specs: Vec<(&str, Vec<u8>)> = vec![
            ("empty.csv", Vec::new()),
            ("missing.csv", b"group,policies\ng,wifi\n".to_vec()),
            ("extra.csv", b"group,count,colour\ng,1,red\n".to_vec()),
            ("fields.csv", b"group,count\ng,1,extra\n".to_vec()),
            ("values.csv", b"group,count,expires\ng,1,soon\n".to_vec()),
            ("binary.csv", b"group,count\ng\xff\xfe,1\n".to_vec()),
            ("quote.csv", b"group,count\n\"g,1\n".to_vec()),
        ];
        for (name, bytes) in specs {
            let path = env.path(name);
            std::fs::write(&path, bytes).unwrap();
            let out = env.path(&format!("out-{name}"));
            let run = env.run(&[
                "bulk",
                "--spec",
                path.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
            ]);
            run.assert_clean_error();
            assert!(
                !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
                "{name}"
            );
        }
        let out = env.path("out-template");
        let run = env.run(&[
            "bulk",
            "--group",
            "g",
            "--count",
            "5",
            "--expires-in",
            "soon",
            "--out-dir",
            out.to_str().unwrap(),
        ]);
        run.assert_clean_error();
        assert_eq!(state(&env), before, "nothing issued");
        // Not even a page of the database file changed.
        assert_eq!(db_bytes(&env), db_before);
    }

    #[test]
    fn tokenctl_refuses_bad_key_files_and_global_options_with_exit_1() {
        use std::os::unix::fs::PermissionsExt;
        let env = Env::init();
        let (_, token) = env.issue(&["--group", "g"]);
        let before = state(&env);
        let key = std::fs::read(env.key()).unwrap();
        let secret = String::from_utf8_lossy(&key)
            .split(' ')
            .nth(2)
            .unwrap()
            .to_owned();

        let check = |run: Run, needle: &str| {
            run.assert_clean_error();
            assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
            assert!(run.stderr.contains(needle), "{needle}: {run:?}");
            assert!(!run.stderr.contains(&secret), "{run:?}");
        };
        let set_mode = |mode: u32| {
            std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set_mode(0o644);
        check(env.run(&["redeem", &token, "--device", "d"]), "chmod 600");
        check(env.run(&["list"]), "chmod 600");
        set_mode(0o600);
        let mut binary = key.clone();
        binary.extend_from_slice(&[0xff, 0xfe]);
        std::fs::write(env.key(), &binary).unwrap();
        check(env.run(&["redeem", &token, "--device", "d"]), "not text");
        std::fs::write(
            env.key(),
            key.iter()
                .map(|b| if *b == b'a' { b'!' } else { *b })
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let run = env.run(&["redeem", &token, "--device", "d"]);
        run.assert_clean_error();
        assert!(!run.stderr.contains(&secret));
        std::fs::write(env.key(), &key).unwrap();

        check(env.run(&["--org", "a b", "list"]), "--org");
        check(env.run(&["--db", "", "list"]), "--db");
        let missing = env.path("nope.db");
        let run = Run::from(
            env.cmd()
                .args(["--db", missing.to_str().unwrap(), "list"])
                .output()
                .unwrap(),
        );
        run.assert_clean_error();
        assert!(!missing.exists(), "a mistyped --db creates nothing");
        let run = Run::from(
            env.cmd()
                .env("ONBOARDING_TOKEN_NOW", "yesterday")
                .args(["list"])
                .output()
                .unwrap(),
        );
        run.assert_clean_error();
        for id in ["", "zz", "0123", &"0".repeat(33)] {
            let run = env.run(&["show", id]);
            run.assert_clean_error();
            let run = env.run(&["revoke", id]);
            assert!(run.code == 1 || run.code == 2, "{run:?}");
        }
        assert_eq!(state(&env), before);
    }
}
