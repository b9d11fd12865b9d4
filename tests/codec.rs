//! The compact string form: grammar, round trips, and rejection of every malformed or
//! forged string before any store access.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onboarding_token::codec::{PREFIX, TOKEN_LEN, TOKEN_REGEX};
use onboarding_token::rules::RedeemRequest;
use onboarding_token::*;
use proptest::prelude::*;
use support::fixture::keyring;

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Characters that are not base64url, ASCII or not.
const NON_BASE64: &[char] = &[
    '+', '/', '=', ' ', '.', '~', '%', '!', '*', ':', '\0', '\n', '\t', '\u{7f}', 'é', 'ß', '—',
    '\u{200b}', '😀', 'Ａ',
];

/// `obt1_[A-Za-z0-9_-]{48}`, by hand.
fn matches_grammar(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 53
        && b.starts_with(b"obt1_")
        && b[5..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

fn fixed_keyring() -> Keyring {
    keyring([1, 2, 3, 4], [7; 32])
}

fn sample_token(ring: &Keyring, n: u8) -> TokenString {
    ring.sign(&TokenId::from_bytes([n; 16]))
}

fn is_malformed(r: &Rejection) -> bool {
    matches!(r, Rejection::Malformed(_))
}

fn replace_char(s: &str, pos: usize, c: char) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, orig) in s.chars().enumerate() {
        out.push(if i == pos { c } else { orig });
    }
    out
}

#[test]
fn constants_describe_the_documented_grammar() {
    assert_eq!(TOKEN_LEN, 53);
    assert_eq!(PREFIX, "obt1_");
    assert_eq!(TOKEN_REGEX, "obt1_[A-Za-z0-9_-]{48}");
    const { assert!(TOKEN_LEN <= 64, "the issue requires at most 64 characters") };
}

#[test]
fn hand_written_grammar_check_is_itself_correct() {
    let good = format!("obt1_{}", "A".repeat(48));
    assert!(matches_grammar(&good));
    assert!(!matches_grammar(&format!("obt1_{}", "A".repeat(47))));
    assert!(!matches_grammar(&format!("obt1_{}", "A".repeat(49))));
    assert!(!matches_grammar(&format!("obt2_{}", "A".repeat(48))));
    assert!(!matches_grammar(&format!("obt1_{}+", "A".repeat(47))));
}

proptest! {
    /// sign -> parse -> verify gives back the same ids, and the string matches the grammar.
    #[test]
    fn sign_parse_verify_round_trips(
        key_id in any::<[u8; 4]>(),
        secret in any::<[u8; 32]>(),
        token_id in any::<[u8; 16]>(),
    ) {
        let ring = keyring(key_id, secret);
        let id = TokenId::from_bytes(token_id);
        let token = ring.sign(&id);
        let text = token.expose_secret();

        prop_assert_eq!(text.len(), TOKEN_LEN);
        prop_assert!(matches_grammar(text), "{} does not match the grammar", text);
        prop_assert_eq!(token.token_id(), id);
        prop_assert_eq!(token.key_id(), KeyId::from_bytes(key_id));

        let parsed = UnverifiedToken::parse(text).unwrap();
        prop_assert_eq!(parsed.untrusted_token_id(), id);
        prop_assert_eq!(parsed.untrusted_key_id(), KeyId::from_bytes(key_id));

        let verified = ring.verify(&parsed).unwrap();
        prop_assert_eq!(verified.token_id(), id);
        prop_assert_eq!(verified.key_id(), KeyId::from_bytes(key_id));
        prop_assert_eq!(ring.verify_str(text).unwrap(), verified);

        // Signing is deterministic: the same key and id give the same string.
        let again = ring.sign(&id);
        prop_assert_eq!(again.expose_secret(), text);
    }

    /// A string parses exactly when it matches the documented grammar; parsing never panics.
    #[test]
    fn parse_succeeds_exactly_on_the_grammar(s in prop_oneof![
        "\\PC{0,80}",
        "obt1_[A-Za-z0-9_-]{48}",
        "obt1_[A-Za-z0-9_+/=-]{46,50}",
        "obt1_\\PC{48}",
    ]) {
        prop_assert_eq!(UnverifiedToken::parse(&s).is_ok(), matches_grammar(&s));
    }

    /// Random strings in the grammar parse, but do not verify (forgery by guessing fails).
    #[test]
    fn random_grammar_strings_parse_but_do_not_verify(s in "obt1_[A-Za-z0-9_-]{48}") {
        prop_assert!(UnverifiedToken::parse(&s).is_ok());
        let err = fixed_keyring().verify_str(&s).unwrap_err();
        prop_assert!(
            matches!(err, Rejection::UnknownKey(_) | Rejection::BadSignature),
            "unexpected {:?}", err
        );
    }

    /// A single changed character anywhere in a token for a random key and id is rejected.
    #[test]
    fn random_single_character_substitution_is_rejected(
        secret in any::<[u8; 32]>(),
        token_id in any::<[u8; 16]>(),
        pos in 0..TOKEN_LEN,
        replacement in any::<char>(),
    ) {
        let ring = keyring([9, 8, 7, 6], secret);
        let token = ring.sign(&TokenId::from_bytes(token_id));
        let text = token.expose_secret();
        prop_assume!(text.chars().nth(pos) != Some(replacement));
        let changed = replace_char(text, pos, replacement);
        prop_assert!(ring.verify_str(&changed).is_err());
    }
}

/// Every single-character substitution at every position, with all 64 base64url characters
/// and a set of non-base64url ones, is rejected, for the right reason.
#[test]
fn every_single_character_substitution_is_rejected() {
    let ring = fixed_keyring();
    let mut checked = 0;
    for n in [0u8, 0x5a, 0xff] {
        let token = sample_token(&ring, n);
        let text = token.expose_secret();
        let candidates = BASE64URL
            .iter()
            .map(|&b| char::from(b))
            .chain(NON_BASE64.iter().copied());
        for c in candidates {
            let is_base64 = c.is_ascii_alphanumeric() || c == '-' || c == '_';
            for pos in 0..TOKEN_LEN {
                if text.chars().nth(pos) == Some(c) {
                    continue;
                }
                let changed = replace_char(text, pos, c);
                let err = ring
                    .verify_str(&changed)
                    .expect_err(&format!("substitution of {c:?} at {pos} was accepted"));
                if pos >= PREFIX.len() && is_base64 {
                    // Still well formed: it fails on the key or the tag.
                    assert!(
                        matches!(err, Rejection::UnknownKey(_) | Rejection::BadSignature),
                        "{c:?} at {pos}: {err:?}"
                    );
                } else {
                    assert!(is_malformed(&err), "{c:?} at {pos}: {err:?}");
                }
                checked += 1;
            }
        }
    }
    // 3 tokens x 53 positions x (64 + 20 candidates), minus the unchanged ones.
    assert!(
        checked > 3 * 53 * 80,
        "only {checked} substitutions checked"
    );
}

#[test]
fn changing_the_key_id_part_gives_unknown_key_and_the_rest_bad_signature() {
    let ring = fixed_keyring();
    let token = sample_token(&ring, 3);
    let text = token.expose_secret();
    // Characters 5..10 of the body carry only key-id bits (5 x 6 = 30 of its 32 bits).
    for pos in 5..10 {
        let orig = text.as_bytes()[pos];
        let c = if orig == b'A' { 'B' } else { 'A' };
        let err = ring.verify_str(&replace_char(text, pos, c)).unwrap_err();
        assert!(matches!(err, Rejection::UnknownKey(_)), "{pos}: {err:?}");
    }
    // Characters 11.. carry only token-id and tag bits.
    for pos in 11..TOKEN_LEN {
        let orig = text.as_bytes()[pos];
        let c = if orig == b'A' { 'B' } else { 'A' };
        let err = ring.verify_str(&replace_char(text, pos, c)).unwrap_err();
        assert_eq!(err, Rejection::BadSignature, "{pos}");
    }
}

#[test]
fn truncations_are_rejected() {
    let ring = fixed_keyring();
    let token = sample_token(&ring, 1);
    let text = token.expose_secret();
    for len in 0..TOKEN_LEN {
        let err = ring.verify_str(&text[..len]).unwrap_err();
        assert!(is_malformed(&err), "{len}: {err:?}");
        let expected = match len {
            0 => DecodeError::Empty,
            1..=4 => DecodeError::BadPrefix,
            _ => DecodeError::BadLength { len },
        };
        assert_eq!(UnverifiedToken::parse(&text[..len]).unwrap_err(), expected);
        // Cutting from the front is rejected too.
        assert!(ring.verify_str(&text[TOKEN_LEN - len..]).is_err());
    }
}

#[test]
fn extensions_are_rejected() {
    let ring = fixed_keyring();
    let token = sample_token(&ring, 2);
    let text = token.expose_secret();
    for c in BASE64URL
        .iter()
        .map(|&b| char::from(b))
        .chain(['=', ' ', '\n', 'é'])
    {
        let longer = format!("{text}{c}");
        assert_eq!(
            UnverifiedToken::parse(&longer).unwrap_err(),
            DecodeError::BadLength { len: longer.len() }
        );
        assert!(ring.verify_str(&format!("{c}{text}")).is_err());
    }
    assert!(ring.verify_str(&format!("{text}{text}")).is_err());
}

#[test]
fn wrong_prefixes_are_rejected() {
    let ring = fixed_keyring();
    let token = sample_token(&ring, 4);
    let body = &token.expose_secret()[PREFIX.len()..];
    for prefix in [
        "OBT1_", "obt1-", "obt1.", "xbt1_", "obx1_", "ob1t_", "tbo1_", "obt_1",
    ] {
        let s = format!("{prefix}{body}");
        assert_eq!(s.len(), TOKEN_LEN);
        assert_eq!(
            UnverifiedToken::parse(&s).unwrap_err(),
            DecodeError::BadPrefix,
            "{s}"
        );
        assert!(is_malformed(&ring.verify_str(&s).unwrap_err()));
    }
    for other in [
        "ghp_abcdef",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "Bearer x",
        "obt",
    ] {
        assert_eq!(
            UnverifiedToken::parse(other).unwrap_err(),
            DecodeError::BadPrefix
        );
    }
}

#[test]
fn unknown_versions_are_rejected_as_unsupported() {
    let ring = fixed_keyring();
    let token = sample_token(&ring, 5);
    let body = &token.expose_secret()[PREFIX.len()..];
    for version in ["0", "2", "9", "10", "1a", "v2"] {
        let s = format!("obt{version}_{body}");
        assert_eq!(
            UnverifiedToken::parse(&s).unwrap_err(),
            DecodeError::UnsupportedVersion,
            "{s}"
        );
        assert_eq!(
            ring.verify_str(&s).unwrap_err(),
            Rejection::Malformed(DecodeError::UnsupportedVersion)
        );
    }
}

#[test]
fn unknown_key_id_is_reported_with_the_claimed_id() {
    let ring = fixed_keyring();
    let other = keyring([0xde, 0xad, 0xbe, 0xef], [7; 32]);
    let token = sample_token(&other, 6);
    assert_eq!(
        ring.verify_str(token.expose_secret()).unwrap_err(),
        Rejection::UnknownKey(KeyId::from_bytes([0xde, 0xad, 0xbe, 0xef]))
    );
    let parsed = UnverifiedToken::parse(token.expose_secret()).unwrap();
    assert_eq!(
        ring.verify(&parsed).unwrap_err(),
        VerifyError::UnknownKey(parsed.untrusted_key_id())
    );
}

#[test]
fn same_key_id_with_another_secret_is_a_bad_signature() {
    let ring = fixed_keyring();
    let impostor = keyring([1, 2, 3, 4], [8; 32]);
    let forged = sample_token(&impostor, 7);
    assert_eq!(
        ring.verify_str(forged.expose_secret()).unwrap_err(),
        Rejection::BadSignature
    );
    let parsed = UnverifiedToken::parse(forged.expose_secret()).unwrap();
    assert_eq!(ring.verify(&parsed).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn a_tag_moved_to_another_token_id_does_not_verify() {
    let ring = fixed_keyring();
    let a = sample_token(&ring, 10);
    let b = sample_token(&ring, 11);
    // The body is key (4 bytes) + id (16) + tag (16): the first 27 characters carry the
    // key, all of the token id and 2 tag bits; take those from a and the rest of the tag
    // from b.
    let spliced = format!(
        "{}{}",
        &a.expose_secret()[..PREFIX.len() + 27],
        &b.expose_secret()[PREFIX.len() + 27..]
    );
    assert!(matches_grammar(&spliced));
    assert_eq!(
        ring.verify_str(&spliced).unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn empty_and_whitespace_inputs_are_rejected() {
    let ring = fixed_keyring();
    assert_eq!(UnverifiedToken::parse("").unwrap_err(), DecodeError::Empty);
    assert_eq!(
        ring.verify_str("").unwrap_err(),
        Rejection::Malformed(DecodeError::Empty)
    );
    let token = sample_token(&ring, 8);
    let text = token.expose_secret();
    let padded_body = format!("obt1_ {}", &text[6..]);
    for s in [
        " ".to_string(),
        "\t\r\n".to_string(),
        " ".repeat(TOKEN_LEN),
        format!(" {text}"),
        format!("{text} "),
        format!("{text}\n"),
        format!("\u{feff}{text}"),
        padded_body,
    ] {
        let err = ring.verify_str(&s).unwrap_err();
        assert!(is_malformed(&err), "{s:?}: {err:?}");
    }
}

#[test]
fn a_megabyte_string_is_rejected_by_length() {
    let ring = fixed_keyring();
    let big = format!("obt1_{}", "A".repeat(1 << 20));
    assert_eq!(
        UnverifiedToken::parse(&big).unwrap_err(),
        DecodeError::BadLength { len: big.len() }
    );
    assert!(is_malformed(&ring.verify_str(&big).unwrap_err()));
    let junk = "x".repeat(1 << 20);
    assert_eq!(
        UnverifiedToken::parse(&junk).unwrap_err(),
        DecodeError::BadPrefix
    );
    // The error never repeats the input.
    assert!(ring.verify_str(&big).unwrap_err().to_string().len() < 200);
}

#[test]
fn non_ascii_inputs_are_rejected() {
    let ring = fixed_keyring();
    // 53 bytes, correct prefix, non-ASCII body: passes the length check, fails decoding.
    let s = format!("obt1_{}", "é".repeat(24));
    assert_eq!(s.len(), TOKEN_LEN);
    assert_eq!(
        UnverifiedToken::parse(&s).unwrap_err(),
        DecodeError::BadEncoding
    );
    // 53 characters but more bytes: the length is in bytes.
    let s = format!("obt1_{}", "é".repeat(48));
    assert_eq!(
        UnverifiedToken::parse(&s).unwrap_err(),
        DecodeError::BadLength { len: 5 + 96 }
    );
    // Fullwidth look-alike prefix.
    let token = sample_token(&ring, 9);
    let lookalike = format!("ｏbt1_{}", &token.expose_secret()[5..]);
    assert!(is_malformed(&ring.verify_str(&lookalike).unwrap_err()));
}

#[test]
fn padding_and_standard_base64_alphabet_are_rejected() {
    let ring = fixed_keyring();
    let token = sample_token(&ring, 12);
    let text = token.expose_secret();
    for (from, to) in [('-', '+'), ('_', '/')] {
        let swapped: String = text[5..]
            .chars()
            .map(|c| if c == from { to } else { c })
            .collect();
        if swapped != text[5..] {
            assert_eq!(
                UnverifiedToken::parse(&format!("obt1_{swapped}")).unwrap_err(),
                DecodeError::BadEncoding
            );
        }
    }
    let padded = format!("{}=", &text[..TOKEN_LEN - 1]);
    assert_eq!(
        UnverifiedToken::parse(&padded).unwrap_err(),
        DecodeError::BadEncoding
    );
}

/// A store that counts every call and forwards to a [`MemoryStore`].
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    calls: AtomicUsize,
}

impl CountingStore {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl TokenStore for CountingStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.count();
        self.inner.insert(token).await
    }
    async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.count();
        self.inner.insert_batch(tokens).await
    }
    async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.count();
        self.inner.get(id).await
    }
    async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        self.count();
        self.inner.list(query).await
    }
    async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        self.count();
        self.inner.redeem(request).await
    }
    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        self.count();
        self.inner.revoke(target, revocation).await
    }
    async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        self.count();
        self.inner.redemptions(id).await
    }
}

fn counting_service() -> Onboarding<Arc<CountingStore>> {
    Onboarding::new(fixed_keyring(), Arc::new(CountingStore::default()))
}

fn bad_strings(valid: &str) -> Vec<String> {
    let forged = sample_token(&keyring([1, 2, 3, 4], [0; 32]), 1);
    let unknown_key = sample_token(&keyring([4, 3, 2, 1], [7; 32]), 1);
    vec![
        String::new(),
        " ".into(),
        "obt1_".into(),
        format!("obt2_{}", &valid[5..]),
        format!("{valid}A"),
        valid[..TOKEN_LEN - 1].to_string(),
        replace_char(valid, 20, if &valid[20..21] == "A" { 'B' } else { 'A' }),
        replace_char(valid, 20, '+'),
        forged.expose_secret().to_string(),
        unknown_key.expose_secret().to_string(),
        "x".repeat(1 << 20),
    ]
}

#[tokio::test]
async fn malformed_and_forged_strings_never_reach_the_store() {
    let service = counting_service();
    let store = Arc::clone(service.store());
    let issued = service
        .issue(TokenSpec::new(
            OrgId::new("acme").unwrap(),
            GroupId::new("g").unwrap(),
        ))
        .await
        .unwrap();
    let valid = issued.secret.expose_secret().to_string();
    let before = store.calls();
    let device = DeviceId::new("SN-1").unwrap();

    for bad in bad_strings(&valid) {
        let err = service.redeem(&bad, &device).await.unwrap_err();
        assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
        assert!(service.inspect(&bad).await.is_err());
        assert!(service.verify(&bad).is_err());
        assert_eq!(store.calls(), before, "store was called for {:.60}", bad);
    }

    // The counter works: a valid string does reach the store, once per operation.
    service.redeem(&valid, &device).await.unwrap();
    assert_eq!(store.calls(), before + 1);
    service.inspect(&valid).await.unwrap();
    assert_eq!(store.calls(), before + 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any string that is not a token signed by the keyring is rejected with no store call.
    #[test]
    fn arbitrary_strings_never_reach_the_store(s in prop_oneof![
        "\\PC{0,70}",
        "obt1_[A-Za-z0-9_-]{48}",
        "obt[0-9]_[A-Za-z0-9_+/=-]{46,50}",
    ]) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let service = counting_service();
            let device = DeviceId::new("SN-1").unwrap();
            let err = service.redeem(&s, &device).await.unwrap_err();
            prop_assert_eq!(err.device_facing(), DeviceRejection::InvalidToken);
            prop_assert!(service.inspect(&s).await.is_err());
            prop_assert_eq!(service.store().calls(), 0);
            Ok(())
        })?;
    }
}
