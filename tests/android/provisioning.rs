//! The provisioning JSON: Android's key names, what is written, and what is validated.

use super::*;

#[test]
fn key_names_are_androids_constants() {
    let expected = [
        (
            EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME,
            "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME",
        ),
        (
            EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM,
            "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM",
        ),
        (
            EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION,
            "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION",
        ),
        (
            EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE,
            "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE",
        ),
        (
            EXTRA_PROVISIONING_WIFI_SSID,
            "android.app.extra.PROVISIONING_WIFI_SSID",
        ),
        (
            EXTRA_PROVISIONING_WIFI_SECURITY_TYPE,
            "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE",
        ),
        (
            EXTRA_PROVISIONING_WIFI_PASSWORD,
            "android.app.extra.PROVISIONING_WIFI_PASSWORD",
        ),
        (
            EXTRA_PROVISIONING_WIFI_HIDDEN,
            "android.app.extra.PROVISIONING_WIFI_HIDDEN",
        ),
        (
            EXTRA_PROVISIONING_LOCALE,
            "android.app.extra.PROVISIONING_LOCALE",
        ),
        (
            EXTRA_PROVISIONING_TIME_ZONE,
            "android.app.extra.PROVISIONING_TIME_ZONE",
        ),
        (
            EXTRA_PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED,
            "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED",
        ),
        (
            EXTRA_PROVISIONING_SKIP_ENCRYPTION,
            "android.app.extra.PROVISIONING_SKIP_ENCRYPTION",
        ),
        (
            EXTRA_PROVISIONING_ALLOW_OFFLINE,
            "android.app.extra.PROVISIONING_ALLOW_OFFLINE",
        ),
        (
            EXTRA_PROVISIONING_USE_MOBILE_DATA,
            "android.app.extra.PROVISIONING_USE_MOBILE_DATA",
        ),
        (
            CLOUDDPC_ENROLLMENT_TOKEN,
            "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN",
        ),
        (
            MIME_TYPE_PROVISIONING_NFC,
            "application/com.android.managedprovisioning",
        ),
    ];
    for (constant, literal) in expected {
        assert_eq!(constant, literal);
    }
}

#[test]
fn minimal_json_has_exactly_the_required_keys() {
    let t = token();
    let json = json_of(&base(), &t);
    assert_eq!(
        json,
        json!({
            "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME":
                "com.example.dpc/com.example.dpc.AdminReceiver$Inner",
            "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION":
                "https://mdm.example.com/dpc.apk?v=2&x=%20",
            "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": CHECKSUM,
            "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
                "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN": t.expose_secret(),
            },
        })
    );
}

#[test]
fn full_json_parses_back_to_what_was_configured() {
    let t = token();
    let ssid = "Café \"Guest\" \\ 😀"; // 22 bytes
    let android = base()
        .with_admin_extras(
            AdminExtras::new()
                .with_token_key("com.example.dpc.TOKEN")
                .unwrap()
                .with_extra("server_url", "https://mdm.example.com/api")
                .unwrap()
                .with_extra("awkward", AWKWARD)
                .unwrap()
                .with_extra(AWKWARD_KEY, "key too")
                .unwrap(),
        )
        .with_wifi(
            Wifi::new(ssid, WifiSecurity::Wpa, Some("pa\"ss\\word!"))
                .unwrap()
                .hidden(true),
        )
        .with_locale("pt-BR")
        .unwrap()
        .with_time_zone("America/Sao_Paulo")
        .unwrap()
        .with_leave_all_system_apps_enabled(true)
        .with_skip_encryption(false)
        .with_allow_offline(true)
        .with_use_mobile_data(false);
    let text = android.qr_json(&t);
    assert!(text.expose_secret().is_ascii(), "JSON must be ASCII-only");
    let json: Value = serde_json::from_str(text.expose_secret()).unwrap();
    let expected = json!({
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME":
            "com.example.dpc/com.example.dpc.AdminReceiver$Inner",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION":
            "https://mdm.example.com/dpc.apk?v=2&x=%20",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": CHECKSUM,
        "android.app.extra.PROVISIONING_WIFI_SSID": ssid,
        "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE": "WPA",
        "android.app.extra.PROVISIONING_WIFI_PASSWORD": "pa\"ss\\word!",
        "android.app.extra.PROVISIONING_WIFI_HIDDEN": true,
        "android.app.extra.PROVISIONING_LOCALE": "pt_BR",
        "android.app.extra.PROVISIONING_TIME_ZONE": "America/Sao_Paulo",
        "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED": true,
        "android.app.extra.PROVISIONING_SKIP_ENCRYPTION": false,
        "android.app.extra.PROVISIONING_ALLOW_OFFLINE": true,
        "android.app.extra.PROVISIONING_USE_MOBILE_DATA": false,
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
            "com.example.dpc.TOKEN": t.expose_secret(),
            "server_url": "https://mdm.example.com/api",
            "awkward": AWKWARD,
            AWKWARD_KEY: "key too",
        },
    });
    assert_eq!(json, expected);
    // And the device side finds the token in it.
    assert_eq!(
        extract_token(text.expose_secret()).unwrap().expose_secret(),
        t.expose_secret()
    );
}

#[test]
fn eap_wifi_is_written_with_its_settings() {
    let t = token();
    let wifi = Wifi::new("Corp-8021X", WifiSecurity::Eap, Some("s3cret"))
        .unwrap()
        .with_eap(
            EapMethod::Peap,
            Some(Phase2Auth::Mschapv2),
            Some("alice@example.com"),
            Some("anonymous@example.com"),
        )
        .unwrap()
        .with_domain("radius.example.com")
        .unwrap();
    let json = json_of(&base().with_wifi(wifi), &t);
    assert_eq!(
        json["android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE"],
        "EAP"
    );
    assert_eq!(
        json["android.app.extra.PROVISIONING_WIFI_EAP_METHOD"],
        "PEAP"
    );
    assert_eq!(
        json["android.app.extra.PROVISIONING_WIFI_PHASE2_AUTH"],
        "MSCHAPV2"
    );
    assert_eq!(
        json["android.app.extra.PROVISIONING_WIFI_IDENTITY"],
        "alice@example.com"
    );
    assert_eq!(
        json["android.app.extra.PROVISIONING_WIFI_ANONYMOUS_IDENTITY"],
        "anonymous@example.com"
    );
    assert_eq!(
        json["android.app.extra.PROVISIONING_WIFI_DOMAIN"],
        "radius.example.com"
    );
    assert!(
        json.get("android.app.extra.PROVISIONING_WIFI_HIDDEN")
            .is_none()
    );
    let wpa = Wifi::wpa("Corp", "password1").unwrap();
    assert!(
        wpa.with_eap(EapMethod::Tls, None, None, None).is_err(),
        "EAP settings need an EAP network"
    );
}

#[test]
fn checksums_are_validated() {
    let unpadded = &CHECKSUM[..43];
    assert_eq!(SignatureChecksum::new(CHECKSUM).unwrap().as_str(), CHECKSUM);
    assert_eq!(SignatureChecksum::new(unpadded).unwrap().as_str(), CHECKSUM);
    let standard = CHECKSUM.replace('-', "+");
    assert_eq!(
        SignatureChecksum::new(&standard).unwrap_err(),
        AndroidError::StandardBase64Checksum
    );
    for bad in [
        "",
        "abc",
        &CHECKSUM[..42],
        // 20 bytes: a SHA-1 digest, no longer accepted on Android 10+.
        "2jmj7l5rSw0yVb_vlWAYkK_YBwk=",
        // 33 bytes.
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w==",
        "gJD2YwtOiWJHkSMkkIfLRlj quNqG1fb6v100QmzM9w=",
    ] {
        assert!(
            matches!(SignatureChecksum::new(bad), Err(AndroidError::BadChecksum)),
            "{bad:?}"
        );
    }
    let digest = [0xabu8; 32];
    let from_digest = SignatureChecksum::from_sha256(digest);
    assert_eq!(
        SignatureChecksum::new(from_digest.as_str()).unwrap(),
        from_digest
    );
    let hex = "ab".repeat(32);
    assert_eq!(
        SignatureChecksum::from_sha256_hex(&hex).unwrap(),
        from_digest
    );
    assert_eq!(
        SignatureChecksum::from_sha256_hex(&hex.to_uppercase()).unwrap(),
        from_digest
    );
    assert!(SignatureChecksum::from_sha256_hex(&"ab".repeat(31)).is_err());
    assert!(SignatureChecksum::from_sha256_hex(&"zz".repeat(32)).is_err());
}

#[test]
fn components_locations_locales_and_time_zones_are_validated() {
    for good in [
        "com.example/.Admin",
        "com.example.dpc/com.example.dpc.receivers.Admin",
        "a/b",
        "com.example/.Outer$Inner",
        "com.google.android.apps.work.clouddpc/.receivers.CloudDeviceAdminReceiver",
    ] {
        assert_eq!(ComponentName::new(good).unwrap().as_str(), good);
    }
    assert_eq!(
        ComponentName::new("com.example.dpc/.Admin")
            .unwrap()
            .package(),
        "com.example.dpc"
    );
    for bad in [
        "",
        "com.example",
        "/Admin",
        "com.example/",
        "com..example/.A",
        "com.example/.A/B",
        "com.ex ample/.A",
        "1com/.A",
        "com.example/..A",
        "com.exämple/.A",
    ] {
        assert_eq!(
            ComponentName::new(bad).unwrap_err(),
            AndroidError::BadComponent,
            "{bad:?}"
        );
    }
    assert!(DownloadLocation::new("https://x.example/dpc.apk").is_ok());
    for bad in [
        "http://x.example/dpc.apk",
        "ftp://x.example/dpc.apk",
        "https://",
        "https://x.example/a b.apk",
    ] {
        assert!(
            matches!(
                DownloadLocation::new(bad),
                Err(AndroidError::BadDownloadLocation(_))
            ),
            "{bad:?}"
        );
    }
    let a = base();
    assert!(a.clone().with_locale("en").is_ok());
    assert!(a.clone().with_locale("en_US").is_ok());
    assert!(a.clone().with_locale("es_419").is_ok());
    for bad in ["", "EN", "en_us", "english", "en_USA", "en US", "e"] {
        assert_eq!(
            a.clone().with_locale(bad).unwrap_err(),
            AndroidError::BadLocale,
            "{bad:?}"
        );
    }
    for good in [
        "UTC",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+5",
    ] {
        assert!(a.clone().with_time_zone(good).is_ok(), "{good}");
    }
    for bad in ["", "Europe/Berlin\n", "../etc", "Zone With Spaces", "+0100"] {
        assert_eq!(
            a.clone().with_time_zone(bad).unwrap_err(),
            AndroidError::BadTimeZone,
            "{bad:?}"
        );
    }
}

#[test]
fn wifi_passwords_fit_their_security_type() {
    assert!(Wifi::new("", WifiSecurity::None, None).is_err());
    assert!(Wifi::new(&"s".repeat(33), WifiSecurity::None, None).is_err());
    assert!(Wifi::open("Guest").is_ok());
    assert!(Wifi::new("Guest", WifiSecurity::None, Some("x")).is_err());
    assert!(Wifi::new("Corp", WifiSecurity::Wpa, None).is_err());
    assert!(Wifi::wpa("Corp", "1234567").is_err());
    assert!(Wifi::wpa("Corp", "12345678").is_ok());
    assert!(Wifi::wpa("Corp", &"p".repeat(63)).is_ok());
    assert!(Wifi::wpa("Corp", &"p".repeat(64)).is_err());
    assert!(Wifi::wpa("Corp", &"ab".repeat(32)).is_ok());
    assert!(Wifi::wpa("Corp", "pässwörd").is_err());
    assert!(Wifi::new("Old", WifiSecurity::Wep, Some("12345")).is_ok());
    assert!(Wifi::new("Old", WifiSecurity::Wep, Some("0123456789")).is_ok());
    assert!(Wifi::new("Old", WifiSecurity::Wep, Some("123456")).is_err());
    assert!(Wifi::new("Ent", WifiSecurity::Eap, None).is_ok());
    assert_eq!("wpa".parse::<WifiSecurity>().unwrap(), WifiSecurity::Wpa);
    assert_eq!("NONE".parse::<WifiSecurity>().unwrap(), WifiSecurity::None);
    assert_eq!(
        "WPA2".parse::<WifiSecurity>().unwrap_err(),
        AndroidError::UnknownWifiSecurity
    );
}

#[test]
fn admin_extras_are_validated() {
    let extras = AdminExtras::new();
    assert_eq!(extras.token_key(), CLOUDDPC_ENROLLMENT_TOKEN);
    assert_eq!(
        extras
            .clone()
            .with_extra(CLOUDDPC_ENROLLMENT_TOKEN, "x")
            .unwrap_err(),
        AndroidError::ExtraIsTokenKey
    );
    assert!(extras.clone().with_extra("", "x").is_err());
    assert!(extras.clone().with_extra("a\nb", "x").is_err());
    assert!(extras.clone().with_token_key("").is_err());
    assert_eq!(
        extras
            .clone()
            .with_extra("k", &"v".repeat(MAX_VALUE_LEN + 1))
            .unwrap_err(),
        AndroidError::ValueTooLong
    );
    let mut many = AdminExtras::new();
    for i in 0..MAX_EXTRAS {
        many = many.with_extra(&format!("k{i}"), "v").unwrap();
    }
    assert_eq!(
        many.clone().with_extra("one-more", "v").unwrap_err(),
        AndroidError::TooManyExtras
    );
    assert!(many.with_extra("k0", "replaced").is_ok());
    let with = AdminExtras::new().with_extra("k", "v").unwrap();
    assert_eq!(
        with.with_token_key("k").unwrap_err(),
        AndroidError::ExtraIsTokenKey
    );
}

#[test]
fn kme_json_is_flat() {
    let t = token();
    let extras = AdminExtras::new().with_extra("tenant", AWKWARD).unwrap();
    let text = extras.kme_json(&t);
    assert!(text.expose_secret().is_ascii());
    let json: Value = serde_json::from_str(text.expose_secret()).unwrap();
    assert_eq!(
        json,
        json!({
            "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN": t.expose_secret(),
            "tenant": AWKWARD,
        })
    );
}

#[test]
fn secrets_stay_out_of_debug() {
    let t = token();
    let android = base().with_wifi(Wifi::wpa("Corp", "super-secret-pass").unwrap());
    let debug = format!("{android:?}");
    assert!(!debug.contains("super-secret-pass"));
    assert!(debug.contains("[redacted]"));
    let json = android.qr_json(&t);
    assert!(!format!("{json:?}").contains(&t.expose_secret()[5..]));
    let nfc = android.nfc_properties(&t);
    assert!(!format!("{nfc:?}").contains("super-secret-pass"));
    // Errors never carry the password either.
    let err = Wifi::wpa("Corp", "short").unwrap_err();
    assert!(!err.to_string().contains("short"));
}
