//! Errors: typed, never echoing the input, and secrets kept out of `Debug`.

use super::*;

#[test]
fn errors_are_typed_and_never_echo_the_input() {
    let t = token();
    let s = t.expose_secret();
    let too_long = format!("{s}{}", " ".repeat(MAX_INPUT_LEN));
    assert_eq!(
        extract_token(&too_long).unwrap_err(),
        ExtractError::TooLong {
            len: too_long.len(),
            max: MAX_INPUT_LEN
        }
    );
    assert_eq!(extract_token("").unwrap_err(), ExtractError::Empty);
    assert_eq!(
        extract_token(" \n\t\u{feff}").unwrap_err(),
        ExtractError::Empty
    );
    assert_eq!(
        extract_token("no token here").unwrap_err(),
        ExtractError::NotFound
    );
    assert_eq!(
        extract_token(&s[..40]).unwrap_err(),
        ExtractError::Malformed(DecodeError::BadLength { len: 40 })
    );
    assert_eq!(
        extract_token(&format!("obt7_{}", &s[5..])).unwrap_err(),
        ExtractError::Malformed(DecodeError::UnsupportedVersion)
    );
    assert!(matches!(
        extract_token("{\"a\": "),
        Err(ExtractError::InvalidJson { line: 1, .. })
    ));
    assert_eq!(
        extract_token("android.app.extra.PROVISIONING_LOCALE=\\u12\n").unwrap_err(),
        ExtractError::InvalidProperties { line: 1 }
    );
    let two = format!("{s} and {}", other_token().expose_secret());
    assert_eq!(
        extract_token(&two).unwrap_err(),
        ExtractError::Ambiguous { count: 2 }
    );
    let with_broken = format!("{s} and {}", &other_token().expose_secret()[..30]);
    assert_eq!(
        extract_token(&with_broken).unwrap_err(),
        ExtractError::Ambiguous { count: 2 }
    );
    // A cut-short token does not swallow the next one.
    let cut_then_full = format!("{} {}", &other_token().expose_secret()[..30], s);
    assert_eq!(
        extract_token(&cut_then_full).unwrap_err(),
        ExtractError::Ambiguous { count: 2 }
    );
    // The same token twice is one token.
    assert_eq!(
        extracted(&format!("{s}\n{}", grouped(&t).expose_secret())).unwrap(),
        s
    );

    for input in [&two, &with_broken, &too_long, &s[..40].to_owned()] {
        let err = extract_token(input).unwrap_err();
        assert!(!err.to_string().contains(&s[5..20]));
        assert!(!format!("{err:?}").contains(&s[5..20]));
    }
}

#[test]
fn secret_types_redact_debug() {
    let t = token();
    let text = TokenText::from(&t);
    let debug = format!("{text:?}");
    assert!(debug.contains("[redacted]"));
    assert!(!debug.contains(&t.expose_secret()[5..]));
    assert_eq!(text.untrusted().untrusted_token_id(), t.token_id());
    let secret = SecretText::from(&t);
    assert!(!format!("{secret:?}").contains(&t.expose_secret()[5..]));
    let url = EnrollmentUrl::new("https://x.example").unwrap().render(&t);
    assert!(!format!("{url:?}").contains(&t.expose_secret()[5..]));
    assert_eq!(TokenText::parse(t.expose_secret()).unwrap(), text);
}

#[test]
fn extracted_tokens_verify_against_the_keyring() {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let keyring = Keyring::new(SigningKey::generate(&mut rng));
    let t = keyring.sign(&TokenId::generate(&mut rng));
    let link = EnrollmentUrl::new("https://mdm.example.com/e")
        .unwrap()
        .render(&t);
    let found = extract_token(link.expose_secret()).unwrap();
    let verified = keyring.verify(found.untrusted()).unwrap();
    assert_eq!(verified.token_id(), t.token_id());
}
