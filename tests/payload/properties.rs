//! Property tests: any token in any form, with random grouping and whitespace, and
//! arbitrary input.

use super::*;

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
