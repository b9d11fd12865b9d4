//! The typed form: its grouped shape, parsing it back, and the typing quirks it forgives.

use super::*;

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
