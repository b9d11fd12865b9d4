//! The keyring: rotation, retirement, duplicate ids, the text form, re-signing.

mod support;

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{TimeZone, Utc};
use onboarding_token::*;
use proptest::prelude::*;
use support::fixture::filled_key as key;

fn tid(n: u8) -> TokenId {
    TokenId::from_bytes([n; 16])
}

#[test]
fn rotation_keeps_old_tokens_verifying_and_signs_new_ones_with_the_new_key() {
    let mut ring = Keyring::new(key(1, 1));
    let old = ring.sign(&tid(1));
    assert_eq!(old.key_id(), key(1, 1).id());

    ring.rotate(key(2, 2)).unwrap();
    assert_eq!(ring.active_key_id(), key(2, 2).id());
    let new = ring.sign(&tid(2));
    assert_eq!(new.key_id(), key(2, 2).id());

    let v_old = ring.verify_str(old.expose_secret()).unwrap();
    assert_eq!((v_old.key_id(), v_old.token_id()), (key(1, 1).id(), tid(1)));
    let v_new = ring.verify_str(new.expose_secret()).unwrap();
    assert_eq!((v_new.key_id(), v_new.token_id()), (key(2, 2).id(), tid(2)));

    // A keyring that only knows the new key rejects the old token.
    let fresh = Keyring::new(key(2, 2));
    assert_eq!(
        fresh.verify_str(old.expose_secret()).unwrap_err(),
        Rejection::UnknownKey(key(1, 1).id())
    );
}

#[test]
fn key_ids_lists_the_active_key_first_then_newest_verify_only() {
    let mut ring = Keyring::new(key(1, 1));
    ring.rotate(key(2, 2)).unwrap();
    ring.rotate(key(3, 3)).unwrap();
    let ids: Vec<_> = ring.key_ids().collect();
    assert_eq!(ids, [key(3, 3).id(), key(2, 2).id(), key(1, 1).id()]);
}

#[test]
fn retiring_a_key_invalidates_only_its_tokens() {
    let mut ring = Keyring::new(key(1, 1));
    let t1 = ring.sign(&tid(1));
    ring.rotate(key(2, 2)).unwrap();
    let t2 = ring.sign(&tid(2));
    ring.rotate(key(3, 3)).unwrap();
    let t3 = ring.sign(&tid(3));

    let retired = ring.retire(key(1, 1).id()).unwrap();
    assert_eq!(retired.id(), key(1, 1).id());
    assert_eq!(
        ring.verify_str(t1.expose_secret()).unwrap_err(),
        Rejection::UnknownKey(key(1, 1).id())
    );
    assert!(ring.verify_str(t2.expose_secret()).is_ok());
    assert!(ring.verify_str(t3.expose_secret()).is_ok());
    assert_eq!(ring.key_ids().count(), 2);

    // Retiring it again: it is gone.
    assert_eq!(
        ring.retire(key(1, 1).id()).unwrap_err(),
        KeyringError::UnknownKey(key(1, 1).id())
    );
}

#[test]
fn the_active_key_cannot_be_retired() {
    let mut ring = Keyring::new(key(1, 1));
    let token = ring.sign(&tid(1));
    assert_eq!(
        ring.retire(key(1, 1).id()).unwrap_err(),
        KeyringError::ActiveKey(key(1, 1).id())
    );
    assert_eq!(ring.active_key_id(), key(1, 1).id());
    assert!(ring.verify_str(token.expose_secret()).is_ok());
    let msg = KeyringError::ActiveKey(key(1, 1).id()).to_string();
    assert!(msg.contains("rotate"), "{msg}");
}

#[test]
fn retiring_an_unknown_key_is_an_error() {
    let mut ring = Keyring::new(key(1, 1));
    assert_eq!(
        ring.retire(key(9, 9).id()).unwrap_err(),
        KeyringError::UnknownKey(key(9, 9).id())
    );
}

#[test]
fn duplicate_key_ids_are_refused_everywhere() {
    // Same id, different secret: still a duplicate.
    let mut ring = Keyring::new(key(1, 1));
    assert_eq!(
        ring.rotate(key(1, 7)).unwrap_err(),
        KeyringError::DuplicateKey(key(1, 1).id())
    );
    // The failed rotation changed nothing.
    assert_eq!(ring.active_key_id(), key(1, 1).id());
    assert_eq!(ring.key_ids().count(), 1);
    let t = ring.sign(&tid(1));
    assert!(
        Keyring::new(key(1, 1))
            .verify_str(t.expose_secret())
            .is_ok()
    );

    ring.rotate(key(2, 2)).unwrap();
    // Rotating back to a verify-only key's id is refused too.
    assert_eq!(
        ring.rotate(key(1, 1)).unwrap_err(),
        KeyringError::DuplicateKey(key(1, 1).id())
    );
    assert_eq!(
        Keyring::new(key(1, 1))
            .with_verify_only(key(1, 2))
            .unwrap_err(),
        KeyringError::DuplicateKey(key(1, 1).id())
    );
    assert_eq!(
        Keyring::new(key(1, 1))
            .with_verify_only(key(2, 2))
            .unwrap()
            .with_verify_only(key(2, 3))
            .unwrap_err(),
        KeyringError::DuplicateKey(key(2, 2).id())
    );
}

#[test]
fn verify_only_keys_verify_but_do_not_sign() {
    let old = Keyring::new(key(1, 1));
    let token = old.sign(&tid(4));
    let ring = Keyring::new(key(2, 2)).with_verify_only(key(1, 1)).unwrap();
    assert_eq!(ring.active_key_id(), key(2, 2).id());
    assert_eq!(ring.sign(&tid(4)).key_id(), key(2, 2).id());
    assert_eq!(
        ring.verify_str(token.expose_secret()).unwrap().key_id(),
        key(1, 1).id()
    );
}

#[test]
fn sign_with_reproduces_the_string_of_a_token_signed_before_rotation() {
    let mut ring = Keyring::new(key(1, 1));
    let original = ring.sign(&tid(5));
    ring.rotate(key(2, 2)).unwrap();
    let again = ring.sign_with(key(1, 1).id(), &tid(5)).unwrap();
    assert_eq!(again.expose_secret(), original.expose_secret());
    assert_eq!(again, original);
    // The active key gives a different string for the same id.
    assert_ne!(ring.sign(&tid(5)).expose_secret(), original.expose_secret());
    assert_eq!(
        ring.sign_with(key(9, 9).id(), &tid(5)).unwrap_err(),
        KeyringError::UnknownKey(key(9, 9).id())
    );
    ring.retire(key(1, 1).id()).unwrap();
    assert!(ring.sign_with(key(1, 1).id(), &tid(5)).is_err());
}

#[test]
fn from_bytes_is_deterministic_and_the_secret_matters() {
    let a = key(1, 1);
    let b = key(1, 1);
    assert_eq!(a.expose_secret(), &[1; 32]);
    assert_eq!(
        a.sign(&tid(6)).expose_secret(),
        b.sign(&tid(6)).expose_secret()
    );
    let c = key(1, 2);
    assert_ne!(
        a.sign(&tid(6)).expose_secret(),
        c.sign(&tid(6)).expose_secret()
    );
    let ring = Keyring::new(c);
    assert_eq!(
        ring.verify_str(a.sign(&tid(6)).expose_secret())
            .unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn generated_keys_differ() {
    let mut rng = SystemRng::default();
    let a = SigningKey::generate(&mut rng);
    let b = SigningKey::generate(&mut rng);
    assert_ne!(a.expose_secret(), b.expose_secret());
    assert_ne!(a.id(), b.id());
}

#[test]
fn key_id_text_form() {
    let id: KeyId = "00ff10ab".parse().unwrap();
    assert_eq!(id.as_bytes(), &[0x00, 0xff, 0x10, 0xab]);
    assert_eq!(id.to_string(), "00ff10ab");
    assert_eq!(format!("{id:?}"), "KeyId(00ff10ab)");
    for bad in [
        "",
        "00ff10a",
        "00ff10abc",
        "00FF10AB",
        "00ff10ag",
        " 0ff10ab",
        "00ff10é",
    ] {
        let err = bad.parse::<KeyId>().unwrap_err();
        assert!(err.to_string().contains("key id"), "{err}");
    }
}

#[test]
fn export_and_import_round_trip() {
    let mut ring = Keyring::new(key(1, 1));
    ring.rotate(key(2, 2)).unwrap();
    ring.rotate(key(3, 3)).unwrap();
    let text = ring.export_secret_text();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().next().unwrap().ends_with(" active"));
    assert!(text.lines().skip(1).all(|l| l.ends_with(" verify")));
    assert!(text.lines().all(|l| l.starts_with("obk1 ")));

    let back = Keyring::from_secret_text(&text).unwrap();
    assert_eq!(
        back.key_ids().collect::<Vec<_>>(),
        ring.key_ids().collect::<Vec<_>>()
    );
    assert_eq!(back.active_key_id(), ring.active_key_id());
    // Same keys: identical strings, each verifies with the other ring.
    for k in [1, 2, 3] {
        let id = key(k, k).id();
        let a = ring.sign_with(id, &tid(k)).unwrap();
        let b = back.sign_with(id, &tid(k)).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert!(back.verify_str(a.expose_secret()).is_ok());
    }
    assert_eq!(*back.export_secret_text(), *text);
}

#[test]
fn import_ignores_comments_blank_lines_and_surrounding_space() {
    let ring = Keyring::new(key(1, 1)).with_verify_only(key(2, 2)).unwrap();
    let text = ring.export_secret_text();
    let mut lines = text.lines();
    let decorated = format!(
        "# production keys\n\n   {}   \n\t\n# old\n{}\r\n",
        lines.next().unwrap(),
        lines.next().unwrap()
    );
    let back = Keyring::from_secret_text(&decorated).unwrap();
    assert_eq!(
        back.key_ids().collect::<Vec<_>>(),
        ring.key_ids().collect::<Vec<_>>()
    );
}

#[test]
fn import_accepts_the_active_key_on_any_line() {
    let verify = key(2, 2);
    let active = key(1, 1);
    let secret = |k: &SigningKey| Base64UrlUnpadded::encode_string(k.expose_secret());
    let text = format!(
        "obk1 {} {} verify\nobk1 {} {} active\n",
        verify.id(),
        secret(&verify),
        active.id(),
        secret(&active)
    );
    let ring = Keyring::from_secret_text(&text).unwrap();
    assert_eq!(ring.active_key_id(), active.id());
    assert_eq!(ring.key_ids().count(), 2);
}

/// Malformed key files: the right line, a clear problem, and no key material in the error.
#[test]
fn malformed_key_text_is_reported_without_key_material() {
    let secret = Base64UrlUnpadded::encode_string(&[0x5c; 32]);
    let short = Base64UrlUnpadded::encode_string(&[0x5c; 31]);
    let long = Base64UrlUnpadded::encode_string(&[0x5c; 33]);
    let std_alphabet = "XFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFw+/w";
    let good = format!("obk1 0a0b0c0d {secret} active");
    for text in [
        String::new(),
        "# only a comment\n\n".into(),
        format!("obk1 0a0b0c0d {secret} verify"),
    ] {
        let err = Keyring::from_secret_text(&text).unwrap_err();
        assert_eq!(err, KeyringError::NoActiveKey, "{text:?}");
        assert!(err.to_string().contains("no active key"), "{err}");
        assert!(!format!("{err:?}").contains(&secret[..12]));
    }
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("obk2 0a0b0c0d {secret} active"), 1, "expected"),
        (format!("obk1 0a0b0c0d {secret}"), 1, "expected"),
        (
            format!("obk1 0a0b0c0d {secret} active extra"),
            1,
            "expected",
        ),
        (format!("obk1 0a0b0c0d\t{secret}"), 1, "expected"),
        (format!("obk1 0A0B0C0D {secret} active"), 1, "key id"),
        (format!("obk1 0a0b0c {secret} active"), 1, "key id"),
        (format!("obk1 0a0b0c0d {short} active"), 1, "32 bytes"),
        (format!("obk1 0a0b0c0d {long} active"), 1, "32 bytes"),
        (
            format!("obk1 0a0b0c0d {std_alphabet} active"),
            1,
            "32 bytes",
        ),
        (format!("obk1 0a0b0c0d {secret}= active"), 1, "32 bytes"),
        (format!("obk1 0a0b0c0d {secret} signing"), 1, "role"),
        (
            format!("{good}\n# c\nobk1 0a0b0c0e {secret} active"),
            3,
            "more than one active",
        ),
        (format!("\n\n{good}\ngarbage"), 4, "expected"),
    ];
    for (text, line, problem_part) in cases {
        let err = Keyring::from_secret_text(&text).unwrap_err();
        match &err {
            KeyringError::Malformed { line: l, problem } => {
                assert_eq!(*l, line, "{text:?}: {err}");
                assert!(problem.contains(problem_part), "{text:?}: {problem}");
            }
            other => panic!("{text:?}: unexpected {other:?}"),
        }
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&secret[..12]), "{shown}");
        assert!(!shown.contains(&short[..12]), "{shown}");
        assert!(!shown.contains("XFxcXFxc"), "{shown}");
        assert!(shown.contains(&format!("line {line}")), "{shown}");
    }
}

#[test]
fn import_refuses_duplicate_key_ids() {
    let a = Base64UrlUnpadded::encode_string(&[1; 32]);
    let b = Base64UrlUnpadded::encode_string(&[2; 32]);
    let text = format!("obk1 01020304 {a} active\nobk1 01020304 {b} verify\n");
    assert_eq!(
        Keyring::from_secret_text(&text).unwrap_err(),
        KeyringError::DuplicateKey("01020304".parse().unwrap())
    );
    let text =
        format!("obk1 01020304 {a} verify\nobk1 01020304 {b} verify\nobk1 0a0b0c0d {a} active");
    assert!(matches!(
        Keyring::from_secret_text(&text).unwrap_err(),
        KeyringError::DuplicateKey(_)
    ));
}

/// The tag a token string carries, decoded from its body.
fn carried_tag(token: &TokenString) -> [u8; 16] {
    let mut payload = [0u8; 36];
    Base64UrlUnpadded::decode(&token.expose_secret()[5..], &mut payload).unwrap();
    payload[20..].try_into().unwrap()
}

/// HMAC-SHA256 from the `hmac` crate over what a token signs, cut to 128 bits.
fn reference_tag(secret: &[u8; 32], key_id: KeyId, token_id: TokenId) -> [u8; 16] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(b"obt1");
    mac.update(key_id.as_bytes());
    mac.update(token_id.as_bytes());
    mac.finalize().into_bytes()[..16].try_into().unwrap()
}

/// RFC 4231 keys are not 32 bytes and its messages are not ours, so the known answer is
/// for this construction: HMAC-SHA256(key = 0x00..0x1f, "obt1" || 01020304 || 0x10 x 16).
#[test]
fn tags_match_a_known_answer() {
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
    let key = SigningKey::from_bytes(KeyId::from_bytes([1, 2, 3, 4]), &secret);
    let token = key.sign(&TokenId::from_bytes([0x10; 16]));
    let expected = reference_tag(&secret, key.id(), token.token_id());
    assert_eq!(carried_tag(&token), expected);
    // Pinned, so that a change to both implementations at once is still caught.
    let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, KNOWN_TAG_HEX);
}

/// Computed independently, with Python's `hmac` module.
const KNOWN_TAG_HEX: &str = "066e81d633a24bb667811690e11d3679";

proptest! {
    /// Tags are HMAC-SHA256 as the `hmac` crate computes it, for any key and token id;
    /// one flipped bit anywhere in the tag fails verification.
    #[test]
    fn tags_are_hmac_sha256_and_every_tag_bit_matters(
        secret in prop::array::uniform32(any::<u8>()),
        key_id in prop::array::uniform4(any::<u8>()),
        token_id in prop::array::uniform16(any::<u8>()),
        flip in 0usize..128,
    ) {
        let key = SigningKey::from_bytes(KeyId::from_bytes(key_id), &secret);
        let id = TokenId::from_bytes(token_id);
        let token = key.sign(&id);
        prop_assert_eq!(carried_tag(&token), reference_tag(&secret, key.id(), id));
        let ring = Keyring::new(key);
        prop_assert_eq!(ring.verify_str(token.expose_secret()).unwrap().token_id(), id);

        let mut payload = [0u8; 36];
        Base64UrlUnpadded::decode(&token.expose_secret()[5..], &mut payload).unwrap();
        payload[20 + flip / 8] ^= 1 << (flip % 8);
        let forged = format!("obt1_{}", Base64UrlUnpadded::encode_string(&payload));
        prop_assert_eq!(ring.verify_str(&forged).unwrap_err(), Rejection::BadSignature);
    }
    /// Any keyring survives export and import: same keys, same roles, same strings.
    #[test]
    fn export_import_round_trips_random_keyrings(
        keys in proptest::collection::btree_map(any::<[u8; 4]>(), any::<[u8; 32]>(), 1..6),
        token in any::<[u8; 16]>(),
    ) {
        let mut keys = keys.into_iter().map(|(id, s)| SigningKey::from_bytes(KeyId::from_bytes(id), &s));
        let mut ring = Keyring::new(keys.next().unwrap());
        for k in keys {
            ring.rotate(k).unwrap();
        }
        let back = Keyring::from_secret_text(&ring.export_secret_text()).unwrap();
        prop_assert_eq!(back.key_ids().collect::<Vec<_>>(), ring.key_ids().collect::<Vec<_>>());
        let id = TokenId::from_bytes(token);
        for k in ring.key_ids() {
            let a = ring.sign_with(k, &id).unwrap();
            let b = back.sign_with(k, &id).unwrap();
            prop_assert_eq!(a.expose_secret(), b.expose_secret());
        }
    }

    /// Importing arbitrary text never panics and never echoes the input in its error.
    #[test]
    fn import_of_arbitrary_text_never_panics(text in "(obk1 [0-9a-f]{8} [A-Za-z0-9_-]{40,45} (active|verify|x)\n|[^\n]{0,30}\n){0,4}") {
        if let Err(err) = Keyring::from_secret_text(&text) {
            let shown = err.to_string();
            for line in text.lines().filter(|l| l.len() > 20) {
                prop_assert!(!shown.contains(line));
            }
        }
    }
}

#[tokio::test]
async fn service_token_string_follows_the_keyring() {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let service = Onboarding::new(Keyring::new(key(1, 1)), MemoryStore::new())
        .with_clock(ManualClock::new(now));
    let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap());
    let issued = service.issue(spec).await.unwrap();
    let again = service.token_string(&issued.token).unwrap();
    assert_eq!(again.expose_secret(), issued.secret.expose_secret());
    assert_eq!(issued.token.key_id(), key(1, 1).id());
    let msg = service
        .token_string(
            &Token::from_parts(TokenParts {
                key_id: key(9, 9).id(),
                ..issued.token.clone().into_parts()
            })
            .unwrap(),
        )
        .unwrap_err();
    assert_eq!(msg, KeyringError::UnknownKey(key(9, 9).id()));
}
