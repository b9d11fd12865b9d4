//! Payload forms and the device side: the typed form, enrollment links, and
//! `extract_token` over every form, with random grouping and whitespace, and arbitrary input.

mod support;

use onboarding_token::android::{AdminExtras, AndroidProvisioning};
use onboarding_token::payload::{
    EnrollmentUrl, ExtractError, GROUP_LEN, MAX_INPUT_LEN, PayloadConfig, PayloadError,
    PayloadFormat, SecretText, TokenText, UrlError, extract_token, grouped, grouped_lines,
    parse_grouped,
};
use onboarding_token::{DecodeError, Keyring, SigningKey, TokenId, TokenString};
use proptest::prelude::*;
use support::fixture::token_from;

fn token() -> TokenString {
    token_from([9, 8, 7, 6], 3, *b"fedcba9876543210")
}

fn other_token() -> TokenString {
    token_from([1, 1, 1, 1], 4, *b"another token id")
}

fn android() -> AndroidProvisioning {
    AndroidProvisioning::new(
        "com.example.dpc/.AdminReceiver",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w=",
        "https://mdm.example.com/dpc.apk",
    )
    .unwrap()
    .with_admin_extras(
        AdminExtras::new()
            .with_extra("server_url", "https://mdm.example.com/api?x=1&y=2")
            .unwrap(),
    )
}

fn extracted(input: &str) -> Result<String, ExtractError> {
    extract_token(input).map(|t| t.expose_secret().to_owned())
}

// ---------------------------------------------------------------------------------------
// The typed form

#[test]
fn grouped_form_has_the_documented_shape() {
    let t = token();
    let typed = grouped(&t);
    let text = typed.expose_secret();
    assert_eq!(text.len(), 5 + 12 * (1 + GROUP_LEN));
    let parts: Vec<&str> = text.split(' ').collect();
    assert_eq!(parts[0], "obt1_");
    assert_eq!(parts.len(), 13);
    assert!(parts[1..].iter().all(|g| g.len() == GROUP_LEN));
    assert_eq!(parts.concat(), t.expose_secret());

    let lines = grouped_lines(&t);
    let lines: Vec<&str> = lines.expose_secret().lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("obt1_ "));
    assert_eq!(lines[0].split(' ').count(), 5);
    assert_eq!(lines[1].split(' ').count(), 4);
    assert_eq!(lines[2].split(' ').count(), 4);
}

#[test]
fn grouped_forms_parse_back_exactly() {
    let t = token();
    for typed in [grouped(&t), grouped_lines(&t)] {
        assert_eq!(
            parse_grouped(typed.expose_secret())
                .unwrap()
                .expose_secret(),
            t.expose_secret()
        );
        assert_eq!(extracted(typed.expose_secret()).unwrap(), t.expose_secret());
    }
}

#[test]
fn parse_grouped_rejects_what_is_not_one_token() {
    let t = token();
    let s = t.expose_secret();
    assert_eq!(parse_grouped("   ").unwrap_err(), DecodeError::Empty);
    assert_eq!(parse_grouped("abc").unwrap_err(), DecodeError::BadPrefix);
    assert_eq!(
        parse_grouped(&format!("obt2_{}", &s[5..])).unwrap_err(),
        DecodeError::UnsupportedVersion
    );
    assert_eq!(
        parse_grouped(&s[..50]).unwrap_err(),
        DecodeError::BadLength { len: 50 }
    );
    assert_eq!(
        parse_grouped(&format!("{s} extra")).unwrap_err(),
        DecodeError::BadLength { len: 58 }
    );
    assert_eq!(
        parse_grouped(&format!("{}!{}", &s[..20], &s[21..])).unwrap_err(),
        DecodeError::BadEncoding
    );
}

#[test]
fn hyphen_grouping_is_accepted_only_when_regular() {
    let t = token();
    let body = &t.expose_secret()[5..];
    for g in [3, 4, 6, 8, 12] {
        let groups: Vec<&str> = (0..48 / g).map(|i| &body[i * g..(i + 1) * g]).collect();
        let dashed = format!("obt1_{}", groups.join("-"));
        assert_eq!(extracted(&dashed).unwrap(), t.expose_secret(), "g = {g}");
        assert_eq!(
            parse_grouped(&dashed).unwrap().expose_secret(),
            t.expose_secret()
        );
        // A separator right after the prefix, and line breaks standing in for some hyphens.
        let lead = format!("obt1_-{}", groups.join("-"));
        assert_eq!(extracted(&lead).unwrap(), t.expose_secret());
        let mixed = format!("obt1_{}\n{}", groups[..2].join("-"), groups[2..].join("-"));
        assert_eq!(extracted(&mixed).unwrap(), t.expose_secret());
    }
    // A body that itself starts with `-` (key id 0xf8...): the leading hyphen is data.
    let dash = token_from([0xf8, 0, 0, 0], 0, [0; 16]);
    let dash_body = &dash.expose_secret()[5..];
    assert!(dash_body.starts_with('-'));
    for g in [2, 3, 4, 6, 8, 12, 16, 24] {
        let groups: Vec<&str> = (0..48 / g)
            .map(|i| &dash_body[i * g..(i + 1) * g])
            .collect();
        let dashed = format!("obt1_{}", groups.join("-"));
        assert_eq!(extracted(&dashed).unwrap(), dash.expose_secret(), "g = {g}");
    }
    // Irregular hyphens: an extra one in the middle cannot be told from a token character.
    let irregular = format!("obt1_{}-{}", &body[..10], &body[10..]);
    assert!(matches!(
        extract_token(&irregular),
        Err(ExtractError::Malformed(DecodeError::BadLength { len: 54 }))
    ));
}

#[test]
fn person_typing_quirks_are_forgiven() {
    let t = token();
    let s = t.expose_secret();
    let cases = [
        format!("  {s}\n"),
        format!("OBT1_{}", &s[5..]),
        format!("Obt1_ {}", &s[5..]),
        format!("obt1_\u{200b}{}", &s[5..]),
        format!("\u{feff}{s}"),
        format!("{}\u{a0}{}", &s[..20], &s[20..]),
        format!("{}\r\n{}", &s[..30], &s[30..]),
        format!("{}\t {}", &s[..9], &s[9..]),
        format!("Your enrollment code is {s}. Thanks!"),
        format!("code:\n{}\n\nregards", grouped_lines(&t).expose_secret()),
    ];
    for input in cases {
        assert_eq!(extracted(&input).unwrap(), s, "input {input:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Enrollment links

#[test]
fn url_keeps_query_and_fragment_and_encodes() {
    let t = token();
    let s = t.expose_secret();
    let cases = [
        (
            "https://mdm.example.com/enroll",
            format!("https://mdm.example.com/enroll?token={s}"),
        ),
        (
            "http://localhost:8080",
            format!("http://localhost:8080?token={s}"),
        ),
        (
            "https://x.example/e?",
            format!("https://x.example/e?token={s}"),
        ),
        (
            "https://x.example/e?a=1&",
            format!("https://x.example/e?a=1&token={s}"),
        ),
        (
            "https://x.example/e?a=1",
            format!("https://x.example/e?a=1&token={s}"),
        ),
        (
            "https://x.example/e?a=%20b#/enroll",
            format!("https://x.example/e?a=%20b&token={s}#/enroll"),
        ),
        (
            "https://[::1]:8443/e",
            format!("https://[::1]:8443/e?token={s}"),
        ),
        (
            "HTTPS://X.EXAMPLE/e",
            format!("HTTPS://X.EXAMPLE/e?token={s}"),
        ),
    ];
    for (base, expected) in cases {
        let url = EnrollmentUrl::new(base).unwrap();
        assert_eq!(url.render(&t).expose_secret(), expected, "base {base}");
        assert_eq!(extracted(&expected).unwrap(), s);
    }
    let named = EnrollmentUrl::new("https://x.example/e?token=keep").unwrap_err();
    assert_eq!(named, UrlError::ParamAlreadyPresent);
    let url = EnrollmentUrl::new("https://x.example/e?token2=1")
        .unwrap()
        .with_param("t.k~n-1_")
        .unwrap();
    assert_eq!(url.param(), "t.k~n-1_");
    assert!(
        url.render(&t)
            .expose_secret()
            .ends_with(&format!("&t.k~n-1_={s}"))
    );
}

#[test]
fn url_bases_are_validated() {
    let bad = [
        ("", UrlError::NotHttp),
        ("mdm.example.com", UrlError::NotHttp),
        ("ftp://mdm.example.com", UrlError::NotHttp),
        ("javascript:alert(1)", UrlError::NotHttp),
        ("https://", UrlError::MissingHost),
        ("https:///path", UrlError::MissingHost),
        ("https://mdm example.com", UrlError::BadCharacter),
        ("https://mdm.example.com/a b", UrlError::BadCharacter),
        ("https://mdm.example.com/\n", UrlError::BadCharacter),
        ("https://mdmé.example.com", UrlError::BadCharacter),
        ("https://mdm.example.com:port/", UrlError::BadCharacter),
        ("https://mdm.example.com/<script>", UrlError::BadCharacter),
        ("https://[zz::1]/", UrlError::BadCharacter),
        (
            "https://admin:hunter2@mdm.example.com/",
            UrlError::Credentials,
        ),
        ("https://user@mdm.example.com/", UrlError::Credentials),
    ];
    for (base, err) in bad {
        assert_eq!(EnrollmentUrl::new(base).unwrap_err(), err, "base {base:?}");
    }
    let long = format!("https://x.example/{}", "a".repeat(3000));
    assert!(matches!(
        EnrollmentUrl::new(&long),
        Err(UrlError::TooLong { .. })
    ));
    let url = EnrollmentUrl::new("https://x.example").unwrap();
    for name in ["", "a b", "a&b", "a=b", "é", &"p".repeat(65)] {
        assert_eq!(
            url.clone().with_param(name).unwrap_err(),
            UrlError::BadParamName
        );
    }
}

#[test]
fn percent_encoded_token_in_a_link_is_found() {
    let t = token();
    let s = t.expose_secret();
    let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
    let link = format!("https://x.example/e?site=a+b&token={encoded}#top");
    assert_eq!(extracted(&link).unwrap(), s);
    let path = format!("myapp://enroll/{s}");
    assert_eq!(extracted(&path).unwrap(), s);
}

// ---------------------------------------------------------------------------------------
// Errors

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

// ---------------------------------------------------------------------------------------
// PayloadConfig

#[test]
fn payload_config_renders_every_format_and_each_extracts() {
    let t = token();
    let config = PayloadConfig::new()
        .with_url(EnrollmentUrl::new("https://mdm.example.com/e").unwrap())
        .with_android(android());
    for format in PayloadFormat::ALL {
        let payload = config.render(format, &t).unwrap();
        assert_eq!(
            extracted(payload.expose_secret()).unwrap(),
            t.expose_secret(),
            "format {format}"
        );
        assert_eq!(format.to_string().parse::<PayloadFormat>().unwrap(), format);
    }
    let bare = PayloadConfig::new();
    for format in [
        PayloadFormat::Url,
        PayloadFormat::Android,
        PayloadFormat::Nfc,
    ] {
        assert_eq!(
            bare.render(format, &t).unwrap_err(),
            PayloadError::NotConfigured(format)
        );
    }
    // KME falls back to the default token key without settings.
    let kme = bare.render(PayloadFormat::Kme, &t).unwrap();
    assert!(
        kme.expose_secret()
            .contains("clouddpc.EXTRA_ENROLLMENT_TOKEN")
    );
    assert!("KME".parse::<PayloadFormat>().is_ok());
    assert!("qr".parse::<PayloadFormat>().is_err());
}

// ---------------------------------------------------------------------------------------
// Property tests

fn any_token() -> impl Strategy<Value = TokenString> {
    (any::<[u8; 4]>(), any::<u8>(), any::<[u8; 16]>()).prop_map(|(k, s, i)| token_from(k, s, i))
}

/// Whitespace a person or a scanner might leave.
fn any_space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "  ", "\n", "\r\n", "\t", "\u{a0}", " \n "])
}

/// The token's body with whitespace inserted at random places.
fn spaced_token() -> impl Strategy<Value = (TokenString, String)> {
    (
        any_token(),
        prop::collection::vec((0usize..48, any_space()), 0..12),
        any::<bool>(),
    )
        .prop_map(|(t, spaces, upper)| {
            let body = &t.expose_secret()[5..];
            let mut cuts: Vec<(usize, &str)> = spaces;
            cuts.sort();
            let mut out = String::from(if upper { "OBT1_" } else { "obt1_" });
            let mut last = 0;
            for (at, space) in cuts {
                out.push_str(&body[last..at]);
                out.push_str(space);
                last = at;
            }
            out.push_str(&body[last..]);
            (t, out)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_tokens_with_random_whitespace_come_back((t, typed) in spaced_token(),
                                                      before in any_space(),
                                                      after in any_space()) {
        let input = format!("{before}{typed}{after}");
        prop_assert_eq!(extracted(&input).unwrap(), t.expose_secret());
        let parsed = parse_grouped(&input).unwrap();
        prop_assert_eq!(parsed.expose_secret(), t.expose_secret());
    }

    #[test]
    fn random_tokens_in_every_form_come_back(
        t in any_token(),
        form in 0usize..9,
        g in prop::sample::select(vec![2usize, 3, 4, 6, 8, 12, 16, 24]),
        words in "[A-Za-z ,.:!?]{0,30}",
    ) {
        let s = t.expose_secret();
        let input = match form {
            0 => s.to_owned(),
            1 => grouped(&t).expose_secret().to_owned(),
            2 => grouped_lines(&t).expose_secret().to_owned(),
            3 => {
                let body = &s[5..];
                let groups: Vec<&str> = (0..48 / g).map(|i| &body[i * g..(i + 1) * g]).collect();
                format!("obt1_{}", groups.join("-"))
            }
            4 => EnrollmentUrl::new("https://mdm.example.com/e?site=x")
                .unwrap()
                .render(&t)
                .expose_secret()
                .to_owned(),
            5 => android().qr_json(&t).expose_secret().to_owned(),
            6 => AdminExtras::new().kme_json(&t).expose_secret().to_owned(),
            7 => android().nfc_properties(&t).expose_secret().to_owned(),
            _ => format!("{words} {s} {words}"),
        };
        prop_assert_eq!(extracted(&input).unwrap(), s);
    }

    #[test]
    fn arbitrary_input_never_panics(input in any::<String>()) {
        match extract_token(&input) {
            Ok(t) => prop_assert_eq!(t.expose_secret().len(), 53),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = parse_grouped(&input);
    }

    #[test]
    fn tokenish_garbage_gives_typed_errors(
        prefix in "(obt1_|OBT1_|obt2_|obt|\\{|https://x/\\?t=|android\\.app\\.extra\\.X=)",
        body in "[A-Za-z0-9_\\- \n%\\\\\"{}]{0,120}",
    ) {
        let input = format!("{prefix}{body}");
        if let Ok(t) = extract_token(&input) {
            prop_assert_eq!(t.expose_secret().len(), 53);
        }
    }

    #[test]
    fn text_without_the_prefix_is_not_found(input in "[^oO{\\[%]{1,200}") {
        let result = extract_token(&input);
        prop_assert!(
            matches!(result, Err(ExtractError::NotFound | ExtractError::Empty | ExtractError::InvalidProperties { .. })),
            "{:?}", result
        );
    }
}
