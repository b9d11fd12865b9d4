//! QR codes: decoded back with a pure-Rust decoder (rqrr), sizes as documented, SVG and
//! terminal renderings, typed errors instead of panics.
#![cfg(feature = "qr")]

mod support;

use onboarding_token::TokenString;
use onboarding_token::android::{AdminExtras, AndroidProvisioning, Wifi, WifiSecurity};
use onboarding_token::payload::EnrollmentUrl;
use onboarding_token::qr::{EcLevel, MAX_SCALE, QUIET_ZONE, Qr, QrError, TerminalStyle};
use proptest::prelude::*;
use support::fixture::token_from;
use support::qr::decode_png;

fn token() -> TokenString {
    token_from([1, 2, 3, 4], 7, *b"0123456789abcdef")
}

fn android_minimal() -> AndroidProvisioning {
    AndroidProvisioning::new(
        "com.example.dpc/.AdminReceiver",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
        "https://mdm.example.com/dpc/latest.apk",
    )
    .unwrap()
}

fn android_full() -> AndroidProvisioning {
    android_minimal()
        .with_admin_extras(
            AdminExtras::new()
                .with_extra("server_url", "https://mdm.example.com/api")
                .unwrap()
                .with_extra("tenant", "acme-emea")
                .unwrap(),
        )
        .with_wifi(
            Wifi::new(
                "Corp Setup 5G",
                WifiSecurity::Wpa,
                Some("correct horse battery"),
            )
            .unwrap()
            .hidden(true),
        )
        .with_locale("de_DE")
        .unwrap()
        .with_time_zone("Europe/Berlin")
        .unwrap()
        .with_leave_all_system_apps_enabled(true)
        .with_skip_encryption(false)
        .with_allow_offline(false)
}

#[test]
fn bare_token_fits_version_4_at_level_m() {
    for seed in 0..16u8 {
        let t = token_from([seed, 0, 0, 1], seed, [seed.wrapping_mul(17); 16]);
        let qr = Qr::encode(t.expose_secret()).unwrap();
        assert_eq!(qr.ec_level(), EcLevel::M);
        assert_eq!(
            qr.version(),
            4,
            "bare token must be QR version 4 at level M"
        );
        assert_eq!(qr.width(), 33);
        assert_eq!(qr.width_with_quiet_zone(), 33 + 2 * QUIET_ZONE);
    }
}

/// The table in the `qr` module docs: (version at L, M, Q, H) for each documented payload.
#[test]
fn documented_sizes_hold() {
    let t = token();
    let url = EnrollmentUrl::new("https://mdm.example.com/enroll")
        .unwrap()
        .render(&t);
    let minimal = android_minimal().qr_json(&t);
    let full = android_full().qr_json(&t);
    let cases: [(&str, &str, usize, [u8; 4]); 4] = [
        ("bare token", t.expose_secret(), 53, [3, 4, 5, 6]),
        ("link", url.expose_secret(), 90, [5, 6, 8, 9]),
        (
            "android minimal",
            minimal.expose_secret(),
            494,
            [15, 17, 21, 24],
        ),
        ("android full", full.expose_secret(), 1079, [23, 27, 32, 37]),
    ];
    for (name, content, len, versions) in cases {
        let measured: Vec<u8> = EcLevel::ALL
            .iter()
            .map(|&ec| Qr::encode_with(content, ec).unwrap().version())
            .collect();
        println!(
            "{name}: {} bytes, versions L/M/Q/H {measured:?}",
            content.len()
        );
        if std::env::var_os("QR_MEASURE").is_some() {
            continue;
        }
        assert_eq!(
            content.len(),
            len,
            "{name}: payload length changed; update the docs"
        );
        assert_eq!(
            measured, versions,
            "{name}: versions changed; update the docs"
        );
        for (&ec, &v) in EcLevel::ALL.iter().zip(&versions) {
            assert_eq!(
                Qr::encode_with(content, ec).unwrap().width(),
                17 + 4 * usize::from(v)
            );
        }
    }
}

#[test]
fn png_of_bare_token_decodes_to_the_token() {
    let t = token();
    for ec in EcLevel::ALL {
        let png = Qr::encode_with(t.expose_secret(), ec)
            .unwrap()
            .to_png(4)
            .unwrap();
        assert_eq!(decode_png(&png), vec![t.expose_secret().to_owned()]);
    }
}

#[test]
fn png_of_android_json_decodes_to_the_json() {
    let t = token();
    let json = android_full()
        .with_admin_extras(
            AdminExtras::new()
                .with_extra("note", "quote \" backslash \\ newline \n unicode é ✓ 😀")
                .unwrap(),
        )
        .qr_json(&t);
    let png = Qr::encode(json.expose_secret()).unwrap().to_png(3).unwrap();
    assert_eq!(decode_png(&png), vec![json.expose_secret().to_owned()]);
}

#[test]
fn png_of_non_ascii_text_decodes_exactly() {
    let text = "Grüße – 東京 – 😀";
    let png = Qr::encode(text).unwrap().to_png(4).unwrap();
    assert_eq!(decode_png(&png), vec![text.to_owned()]);
}

#[test]
fn png_has_the_quiet_zone_and_scale() {
    let qr = Qr::encode(token().expose_secret()).unwrap();
    let png_bytes = qr.to_png(5).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes[..]));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!(info.width as usize, (33 + 8) * 5);
    assert_eq!(info.height, info.width);
    assert_eq!(info.bit_depth, png::BitDepth::One);
    // The first 4 modules (20 pixels) of every border are light.
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes[..]));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let out = reader.next_frame(&mut buf).unwrap();
    let side = out.width as usize;
    let white = |x: usize, y: usize| buf[y * out.line_size + x] != 0;
    for i in 0..side {
        for d in 0..QUIET_ZONE * 5 {
            assert!(white(i, d) && white(d, i) && white(i, side - 1 - d) && white(side - 1 - d, i));
        }
    }
    // And the first dark module (top-left finder pattern) starts right after it.
    assert!(!white(20, 20));
}

#[test]
fn png_scale_is_bounded() {
    let qr = Qr::encode("x").unwrap();
    assert!(matches!(qr.to_png(0), Err(QrError::BadScale { scale: 0 })));
    assert!(matches!(
        qr.to_png(MAX_SCALE + 1),
        Err(QrError::BadScale { .. })
    ));
    assert!(qr.to_png(MAX_SCALE).is_ok());
}

#[test]
fn svg_is_well_formed_and_has_no_token_text() {
    let t = token();
    let qr = Qr::encode(t.expose_secret()).unwrap();
    let svg = qr.to_svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains("viewBox=\"0 0 41 41\""));
    assert!(svg.contains("width=\"328\""));
    assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    assert_eq!(svg.matches('"').count() % 2, 0);
    assert!(!svg.contains(t.expose_secret()));
    assert!(!svg.contains(&t.expose_secret()[5..15]));
    // The path only draws rectangles.
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        d.chars()
            .all(|c| c.is_ascii_digit() || "Mhvz- ".contains(c))
    );
    // One rectangle per dark run: count the dark modules from the path.
    let mut dark = 0;
    for rect in d.split('M').filter(|r| !r.is_empty()) {
        let h = rect.split('h').nth(1).unwrap().split('v').next().unwrap();
        dark += h.parse::<usize>().unwrap();
    }
    let expected = (0..33)
        .flat_map(|y| (0..33).map(move |x| (x, y)))
        .filter(|&(x, y)| qr.is_dark(x, y))
        .count();
    assert_eq!(dark, expected);
    assert!(qr.to_svg_sized(2).contains("width=\"82\""));
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn terminal_rendering_reproduces_the_modules() {
    let qr = Qr::encode(token().expose_secret()).unwrap();
    let side = qr.width_with_quiet_zone();
    for style in [
        TerminalStyle::Ansi,
        TerminalStyle::DarkOnLight,
        TerminalStyle::LightOnDark,
    ] {
        let text = strip_ansi(&qr.to_terminal(style));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        for (row, line) in lines.iter().enumerate() {
            let cells: Vec<char> = line.chars().collect();
            assert_eq!(cells.len(), side);
            for (x, c) in cells.iter().enumerate() {
                let (mut top, mut bottom) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                };
                if style == TerminalStyle::LightOnDark {
                    top = !top;
                    bottom = !bottom;
                }
                let dark = |x: usize, y: usize| {
                    x >= QUIET_ZONE && y >= QUIET_ZONE && qr.is_dark(x - QUIET_ZONE, y - QUIET_ZONE)
                };
                assert_eq!(top, dark(x, 2 * row), "{style:?} ({x},{row}) top");
                if 2 * row + 1 < side {
                    assert_eq!(bottom, dark(x, 2 * row + 1), "{style:?} ({x},{row}) bottom");
                }
            }
        }
    }
    let ansi = qr.to_terminal(TerminalStyle::Ansi);
    assert!(
        ansi.lines()
            .all(|l| l.starts_with("\x1b[30;107m") && l.ends_with("\x1b[0m"))
    );
}

#[test]
fn too_long_content_is_a_typed_error() {
    let big = "x".repeat(3000);
    match Qr::encode_with(&big, EcLevel::H) {
        Err(QrError::TooLong { len, ec_level }) => {
            assert_eq!((len, ec_level), (3000, EcLevel::H));
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert!(matches!(
        Qr::encode(&"1".repeat(7089 + 1)),
        Err(QrError::TooLong { len: 7090, .. })
    ));
    assert_eq!(
        Qr::encode_with(&"1".repeat(7089), EcLevel::L)
            .unwrap()
            .version(),
        40
    );
    let err = Qr::encode(&"y".repeat(10_000_000)).unwrap_err();
    assert!(!err.to_string().contains("yyy"));
    // The largest byte payload at level L (2953 bytes) still fits, in version 40.
    let max = Qr::encode_with(&"z".repeat(2953), EcLevel::L).unwrap();
    assert_eq!((max.version(), max.width()), (40, 177));
}

#[test]
fn debug_does_not_show_modules_or_content() {
    let t = token();
    let qr = Qr::encode(t.expose_secret()).unwrap();
    let debug = format!("{qr:?}");
    assert_eq!(debug, "Qr { version: 4, width: 33, ec_level: M, .. }");
    assert!(!debug.contains(t.expose_secret()));
}

#[test]
fn ec_level_names() {
    assert_eq!("m".parse::<EcLevel>().unwrap(), EcLevel::M);
    assert_eq!("H".parse::<EcLevel>().unwrap(), EcLevel::H);
    assert!(matches!(
        "x".parse::<EcLevel>(),
        Err(QrError::UnknownEcLevel)
    ));
    assert_eq!(EcLevel::default(), EcLevel::M);
    assert_eq!(EcLevel::Q.to_string(), "Q");
}

#[test]
fn numeric_content_uses_a_denser_mode() {
    // 100 digits: numeric mode fits version 3-M (byte mode needs version 6).
    let digits = "1234567890".repeat(10);
    assert_eq!(Qr::encode(&digits).unwrap().version(), 3);
    let bytes = "abcdefghij".repeat(10);
    assert_eq!(Qr::encode(&bytes).unwrap().version(), 6);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_tokens_round_trip_through_png(key: [u8; 4], secret: u8, id: [u8; 16]) {
        let t = token_from(key, secret, id);
        let qr = Qr::encode(t.expose_secret()).unwrap();
        prop_assert_eq!(qr.version(), 4);
        let png = qr.to_png(3).unwrap();
        prop_assert_eq!(decode_png(&png), vec![t.expose_secret().to_owned()]);
    }

    #[test]
    fn arbitrary_content_never_panics(content in ".{0,400}", ec in 0usize..4) {
        let ec = EcLevel::ALL[ec];
        if let Ok(qr) = Qr::encode_with(&content, ec) {
            prop_assert_eq!(qr.width(), 17 + 4 * usize::from(qr.version()));
            prop_assert!(qr.to_svg().ends_with("</svg>"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Mixed content exercises numeric, alphanumeric and byte segments side by side.
    #[test]
    fn mixed_content_round_trips_through_png(
        content in "([0-9]{1,12}|[A-Z0-9 $%*+./:-]{1,12}|[a-z_]{1,6}|[é✓😀]{1,2}){1,12}",
        ec in 0usize..4,
    ) {
        let qr = Qr::encode_with(&content, EcLevel::ALL[ec]).unwrap();
        let png = qr.to_png(3).unwrap();
        prop_assert_eq!(decode_png(&png), vec![content.clone()]);
    }
}
