//! The `parse_verify` fuzz target's checks.

use super::*;

/// `UnverifiedToken::parse`, `Keyring::verify` and `payload::parse_grouped` over arbitrary
/// bytes: as text, and as the 36 payload bytes of a token string (so verification is
/// reached with known and unknown key ids).
pub fn check_parse_verify(data: &[u8]) {
    let ring = keyring();
    if let Ok(text) = std::str::from_utf8(data) {
        check_token_text(&ring, text);
    }
    if data.len() > 36 {
        let mut payload = [0u8; 36];
        payload.copy_from_slice(&data[1..37]);
        // Steer the key id to the active key, the verify-only key, or leave it arbitrary.
        match data[0] % 3 {
            0 => payload[..4].copy_from_slice(b"actv"),
            1 => payload[..4].copy_from_slice(b"old1"),
            _ => {}
        }
        let text = format!("{PREFIX}{}", Base64UrlUnpadded::encode_string(&payload));
        assert_eq!(text.len(), TOKEN_LEN);
        let parsed = UnverifiedToken::parse(&text).expect("a well-formed token string parses");
        assert_eq!(parsed.untrusted_key_id().as_bytes()[..], payload[..4]);
        assert_eq!(parsed.untrusted_token_id().as_bytes()[..], payload[4..20]);
        check_token_text(&ring, &text);
        // A genuine token with its tag changed by the remaining input never verifies.
        let genuine = ring.sign(&parsed.untrusted_token_id());
        let mut bytes = Base64UrlUnpadded::decode_vec(&genuine.expose_secret()[PREFIX.len()..])
            .expect("a genuine token decodes");
        let mut changed = false;
        for (i, b) in data[37..].iter().take(16).enumerate() {
            bytes[20 + i] ^= b;
            changed |= *b != 0;
        }
        let forged = format!("{PREFIX}{}", Base64UrlUnpadded::encode_string(&bytes));
        let result = ring.verify_str(&forged);
        if changed {
            assert_eq!(
                result,
                Err(Rejection::BadSignature),
                "a changed tag verified"
            );
        } else {
            assert!(result.is_ok(), "the genuine token must verify");
        }
    }
}

fn check_token_text(ring: &Keyring, text: &str) {
    match UnverifiedToken::parse(text) {
        Ok(parsed) => {
            assert_eq!(text.len(), TOKEN_LEN);
            assert!(text.starts_with(PREFIX));
            assert!(
                text[PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            match ring.verify(&parsed) {
                Ok(verified) => {
                    // Only the keyring's own signature verifies: re-signing gives the input.
                    let again = ring
                        .sign_with(verified.key_id(), &verified.token_id())
                        .expect("the verifying key is in the keyring");
                    assert_eq!(again.expose_secret(), text);
                }
                Err(VerifyError::UnknownKey(k)) => {
                    assert_eq!(k, parsed.untrusted_key_id());
                    assert!(ring.key_ids().all(|id| id != k));
                }
                Err(VerifyError::BadSignature) => {
                    let genuine = ring
                        .sign_with(parsed.untrusted_key_id(), &parsed.untrusted_token_id())
                        .expect("a bad signature is reported only for a known key");
                    assert_ne!(genuine.expose_secret(), text);
                }
                Err(other) => panic!("unexpected verify error {other:?}"),
            }
            // The grouped parser accepts a bare token as itself.
            let grouped = payload::parse_grouped(text).expect("a bare token is a typed form");
            assert_eq!(grouped.expose_secret(), text);
        }
        Err(e) => {
            assert_eq!(e == DecodeError::Empty, text.is_empty());
            assert_no_token_in(&e.to_string());
            assert_eq!(ring.verify_str(text), Err(Rejection::Malformed(e)));
        }
    }
    match payload::parse_grouped(text) {
        Ok(found) => {
            let again = UnverifiedToken::parse(found.expose_secret())
                .expect("parse_grouped returns a well-formed token");
            assert_eq!(&again, found.untrusted());
            // Whitespace is insignificant in the typed form.
            let (prefix, body) = found.expose_secret().split_at(PREFIX.len());
            let spaced: String = std::iter::once(format!(" \t{prefix}"))
                .chain(body.chars().map(|c| format!("{c} \n")))
                .collect();
            let respaced = payload::parse_grouped(&spaced).expect("a spaced-out token");
            assert_eq!(respaced.expose_secret(), found.expose_secret());
        }
        Err(e) => assert_no_token_in(&e.to_string()),
    }
}
