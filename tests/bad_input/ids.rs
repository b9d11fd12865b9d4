//! Ids, names, cursors, statuses.

use super::*;

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
