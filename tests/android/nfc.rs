//! NFC: the Properties text read back by an independent reader of `java.util.Properties.load`.

use super::*;

/// Reads Properties text the way `java.util.Properties.load(Reader)` does (logical lines,
/// comments, `=`/`:`/whitespace separators, escapes, `\uXXXX` with surrogate pairs).
fn java_properties_load(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start_matches([' ', '\t', '\u{c}']).to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while logical.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1 {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}'])),
                None => break,
            }
        }
        let chars: Vec<char> = logical.chars().collect();
        let mut i = 0;
        let mut key_end = chars.len();
        while i < chars.len() {
            match chars[i] {
                '\\' => i += 2,
                '=' | ':' | ' ' | '\t' | '\u{c}' => {
                    key_end = i;
                    break;
                }
                _ => i += 1,
            }
        }
        let key_end = key_end.min(chars.len());
        let mut v = key_end;
        while v < chars.len() && matches!(chars[v], ' ' | '\t' | '\u{c}') {
            v += 1;
        }
        if v < chars.len() && matches!(chars[v], '=' | ':') {
            v += 1;
        }
        while v < chars.len() && matches!(chars[v], ' ' | '\t' | '\u{c}') {
            v += 1;
        }
        out.insert(unescape(&chars[..key_end]), unescape(&chars[v..]));
    }
    out
}

fn unescape(chars: &[char]) -> String {
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' || i >= chars.len() {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let e = chars[i];
        i += 1;
        match e {
            'u' => {
                let hex: String = chars[i..i + 4].iter().collect();
                units.push(u16::from_str_radix(&hex, 16).unwrap());
                i += 4;
            }
            't' => units.push(9),
            'n' => units.push(10),
            'r' => units.push(13),
            'f' => units.push(12),
            other => {
                let mut buf = [0u16; 2];
                units.extend_from_slice(other.encode_utf16(&mut buf));
            }
        }
    }
    String::from_utf16(&units).unwrap()
}

#[test]
fn nfc_properties_read_back_with_the_same_keys() {
    let t = token();
    let android = base()
        .with_admin_extras(
            AdminExtras::new()
                .with_extra("awkward", AWKWARD)
                .unwrap()
                .with_extra(" lead space key", " lead space value")
                .unwrap(),
        )
        .with_wifi(Wifi::wpa("Café 😀", "p=a:s#s!w\\d ").unwrap().hidden(true))
        .with_locale("de_DE")
        .unwrap()
        .with_time_zone("Europe/Berlin")
        .unwrap()
        .with_skip_encryption(true);
    let text = android.nfc_properties(&t);
    let text = text.expose_secret();
    assert!(text.is_ascii(), "non-ASCII must be \\uXXXX");
    assert!(text.contains("\\u00E9") && text.contains("\\uD83D\\uDE00"));
    assert_eq!(text.lines().count(), 11, "one line per key: {text}");

    let props = java_properties_load(text);
    let mut expected: BTreeMap<String, String> = [
        (
            EXTRA_PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME,
            "com.example.dpc/com.example.dpc.AdminReceiver$Inner",
        ),
        (
            EXTRA_PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION,
            "https://mdm.example.com/dpc.apk?v=2&x=%20",
        ),
        (EXTRA_PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM, CHECKSUM),
        (EXTRA_PROVISIONING_WIFI_SSID, "Café 😀"),
        (EXTRA_PROVISIONING_WIFI_SECURITY_TYPE, "WPA"),
        (EXTRA_PROVISIONING_WIFI_PASSWORD, "p=a:s#s!w\\d "),
        (EXTRA_PROVISIONING_WIFI_HIDDEN, "true"),
        (EXTRA_PROVISIONING_LOCALE, "de_DE"),
        (EXTRA_PROVISIONING_TIME_ZONE, "Europe/Berlin"),
        (EXTRA_PROVISIONING_SKIP_ENCRYPTION, "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let bundle = props[EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE].clone();
    expected.insert(
        EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE.to_owned(),
        bundle.clone(),
    );
    assert_eq!(props, expected);

    // The bundle is itself Properties text, as Android's NFC parser reads it.
    let inner = java_properties_load(&bundle);
    let expected_inner: BTreeMap<String, String> = [
        (CLOUDDPC_ENROLLMENT_TOKEN, t.expose_secret()),
        ("awkward", AWKWARD),
        (" lead space key", " lead space value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(inner, expected_inner);

    assert_eq!(
        extract_token(text).unwrap().expose_secret(),
        t.expose_secret()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_extra_survives_json_and_nfc(
        key in "[^\\p{Cc}]{1,40}",
        value in any::<String>().prop_map(|s| s.chars().take(200).collect::<String>()),
        ssid in "[^\\p{Cc}]{1,8}",
    ) {
        prop_assume!(key != CLOUDDPC_ENROLLMENT_TOKEN);
        let t = token();
        let android = base()
            .with_admin_extras(AdminExtras::new().with_extra(&key, &value).unwrap())
            .with_wifi(Wifi::open(&ssid).unwrap());

        let json: Value = serde_json::from_str(android.qr_json(&t).expose_secret()).unwrap();
        let bundle = &json[EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE];
        prop_assert_eq!(&bundle[key.as_str()], &Value::String(value.clone()));
        prop_assert_eq!(&bundle[CLOUDDPC_ENROLLMENT_TOKEN], t.expose_secret());
        prop_assert_eq!(&json[EXTRA_PROVISIONING_WIFI_SSID], ssid.as_str());

        let nfc = android.nfc_properties(&t);
        let props = java_properties_load(nfc.expose_secret());
        prop_assert_eq!(&props[EXTRA_PROVISIONING_WIFI_SSID], &ssid);
        let inner = java_properties_load(&props[EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE]);
        prop_assert_eq!(&inner[&key], &value);
        prop_assert_eq!(inner[CLOUDDPC_ENROLLMENT_TOKEN].as_str(), t.expose_secret());
    }
}
