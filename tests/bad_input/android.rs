//! Enrollment URLs and the Android builders.

use super::*;

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
