//! The `android_payload` fuzz target's checks.

use super::*;

/// The fields of an Android provisioning payload, each an arbitrary string.
#[derive(Debug, Clone, Default)]
pub struct AndroidInput {
    pub component: String,
    pub checksum: String,
    pub download: String,
    pub token_key: Option<String>,
    pub extras: Vec<(String, String)>,
    pub wifi: Option<WifiInput>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub flags: [Option<bool>; 4],
    pub token_seed: Vec<u8>,
}

/// EAP settings: method and phase 2 (as indexes), identity, anonymous identity.
pub type EapInput = (u8, Option<u8>, Option<String>, Option<String>);

/// The Wi-Fi part of [`AndroidInput`].
#[derive(Debug, Clone, Default)]
pub struct WifiInput {
    pub ssid: String,
    pub security: u8,
    pub password: Option<String>,
    pub hidden: bool,
    pub eap: Option<EapInput>,
    pub domain: Option<String>,
}

const GOOD_COMPONENT: &str = "com.example.dpc/.AdminReceiver";
const GOOD_CHECKSUM: &str = "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w";
const GOOD_DOWNLOAD: &str = "https://mdm.example.com/dpc.apk";

/// Builds the payload from arbitrary field strings (a rejected field keeps its previous,
/// valid value), renders the QR JSON, the KME JSON and the NFC properties, and reads them
/// back: JSON parses and carries every field exactly, the NFC properties say the same as
/// the JSON, no rejection message shows the Wi-Fi password, and the device-side extractor
/// finds the token in every form.
pub fn check_android(input: &AndroidInput) {
    let token = token_from(&input.token_seed);
    let rejected = |e: &dyn std::error::Error| assert_no_token_in(&e.to_string());

    let android = AndroidProvisioning::new(&input.component, &input.checksum, &input.download)
        .or_else(|e| {
            rejected(&e);
            AndroidProvisioning::new(GOOD_COMPONENT, &input.checksum, GOOD_DOWNLOAD)
        })
        .or_else(|e| {
            rejected(&e);
            AndroidProvisioning::new(GOOD_COMPONENT, GOOD_CHECKSUM, &input.download)
        })
        .or_else(|e| {
            rejected(&e);
            AndroidProvisioning::new(GOOD_COMPONENT, GOOD_CHECKSUM, GOOD_DOWNLOAD)
        })
        .expect("the fallback settings are valid");

    let mut extras = AdminExtras::new();
    if let Some(key) = &input.token_key {
        match extras.clone().with_token_key(key) {
            Ok(e) => extras = e,
            Err(e) => rejected(&e),
        }
    }
    for (k, v) in &input.extras {
        match extras.clone().with_extra(k, v) {
            Ok(e) => extras = e,
            Err(e) => rejected(&e),
        }
    }
    let mut android = android.with_admin_extras(extras.clone());

    let mut locale_set = None;
    if let Some(l) = &input.locale {
        match android.clone().with_locale(l) {
            Ok(a) => {
                android = a;
                locale_set = Some(l.replace('-', "_"));
            }
            Err(e) => rejected(&e),
        }
    }
    let mut tz_set = None;
    if let Some(tz) = &input.time_zone {
        match android.clone().with_time_zone(tz) {
            Ok(a) => {
                android = a;
                tz_set = Some(tz.clone());
            }
            Err(e) => rejected(&e),
        }
    }
    let [f0, f1, f2, f3] = input.flags;
    if let Some(v) = f0 {
        android = android.with_leave_all_system_apps_enabled(v);
    }
    if let Some(v) = f1 {
        android = android.with_skip_encryption(v);
    }
    if let Some(v) = f2 {
        android = android.with_allow_offline(v);
    }
    if let Some(v) = f3 {
        android = android.with_use_mobile_data(v);
    }

    // Wi-Fi last, built twice: with the password and with a stand-in of the same shape.
    // Nothing but the JSON and NFC output may tell them apart: not the outcome, not an error
    // message, not Debug.
    let mut wifi_set = None;
    if let Some(w) = &input.wifi {
        let stand_in = w.password.as_deref().map(stand_in_password);
        let real = build_wifi(w, w.password.as_deref());
        let shadow = build_wifi(w, stand_in.as_deref());
        match (real, shadow) {
            (Ok((real, real_errors)), Ok((shadow, shadow_errors))) => {
                assert_eq!(
                    real_errors, shadow_errors,
                    "EAP errors depend on the password"
                );
                assert_eq!(format!("{real:?}"), format!("{shadow:?}"), "Debug of Wifi");
                let with_real = android.clone().with_wifi(real);
                let with_shadow = android.clone().with_wifi(shadow);
                assert_eq!(
                    format!("{with_real:?}"),
                    format!("{with_shadow:?}"),
                    "Debug of AndroidProvisioning shows the password"
                );
                android = with_real;
                wifi_set = Some((w.ssid.clone(), w.password.clone()));
            }
            (Err(real), Err(shadow)) => {
                rejected(&real);
                assert_eq!(
                    real.to_string(),
                    shadow.to_string(),
                    "a rejection shows the password"
                );
                assert_eq!(format!("{real:?}"), format!("{shadow:?}"));
            }
            (real, shadow) => panic!(
                "the password's shape decides, not its characters: {:?} vs {:?}",
                real.map(|_| ()),
                shadow.map(|_| ())
            ),
        }
    }

    let debug = format!("{android:?}");
    assert!(!debug.contains(token.expose_secret()));

    // QR JSON: ASCII, parses, carries every field.
    let qr = android.qr_json(&token);
    assert!(qr.expose_secret().is_ascii(), "QR JSON must be ASCII");
    let json: serde_json::Value =
        serde_json::from_str(qr.expose_secret()).expect("the QR JSON parses");
    let top = json.as_object().expect("the QR JSON is an object");
    let bundle = top[EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE]
        .as_object()
        .expect("the extras bundle is an object");
    let extras = android.admin_extras();
    assert_eq!(bundle[extras.token_key()], token.expose_secret());
    assert_eq!(bundle.len(), extras.extras().count() + 1);
    for (k, v) in extras.extras() {
        assert_eq!(bundle[k], v, "extra {k:?}");
    }
    assert_eq!(
        top["android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"],
        android.component().as_str()
    );
    if let Some((ssid, password)) = &wifi_set {
        assert_eq!(
            top["android.app.extra.PROVISIONING_WIFI_SSID"],
            ssid.as_str()
        );
        match password {
            Some(pw) => assert_eq!(
                top["android.app.extra.PROVISIONING_WIFI_PASSWORD"],
                pw.as_str()
            ),
            None => assert!(!top.contains_key("android.app.extra.PROVISIONING_WIFI_PASSWORD")),
        }
    }
    if let Some(l) = &locale_set {
        assert_eq!(top["android.app.extra.PROVISIONING_LOCALE"], l.as_str());
    }
    if let Some(tz) = &tz_set {
        assert_eq!(top["android.app.extra.PROVISIONING_TIME_ZONE"], tz.as_str());
    }
    for (key, flag) in [
        ("LEAVE_ALL_SYSTEM_APPS_ENABLED", f0),
        ("SKIP_ENCRYPTION", f1),
        ("ALLOW_OFFLINE", f2),
        ("USE_MOBILE_DATA", f3),
    ] {
        let key = format!("android.app.extra.PROVISIONING_{key}");
        match flag {
            Some(v) => assert_eq!(top[&key], v),
            None => assert!(!top.contains_key(&key)),
        }
    }

    // KME JSON: flat, the token and the extras.
    let kme = extras.kme_json(&token);
    assert!(kme.expose_secret().is_ascii());
    let kme: serde_json::Value = serde_json::from_str(kme.expose_secret()).expect("KME JSON");
    assert_eq!(kme.as_object().expect("an object"), bundle);

    // NFC properties say exactly what the JSON says.
    let nfc = android.nfc_properties(&token);
    assert!(
        nfc.expose_secret().is_ascii(),
        "NFC properties must be ASCII"
    );
    let pairs = read_properties(nfc.expose_secret());
    let mut expected = BTreeMap::new();
    for (k, v) in top {
        if k == EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE {
            continue;
        }
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => panic!("unexpected JSON value {other}"),
        };
        expected.insert(k.clone(), v);
    }
    let mut nfc_top: BTreeMap<String, String> = pairs.iter().cloned().collect();
    assert_eq!(nfc_top.len(), pairs.len(), "NFC keys are distinct");
    let nfc_bundle = nfc_top
        .remove(EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE)
        .expect("the NFC properties carry the extras bundle");
    assert_eq!(nfc_top, expected, "NFC and JSON disagree");
    let bundle_pairs: BTreeMap<String, String> = read_properties(&nfc_bundle).into_iter().collect();
    let json_bundle: BTreeMap<String, String> = bundle
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string extras").to_owned()))
        .collect();
    assert_eq!(bundle_pairs, json_bundle, "NFC and JSON bundles disagree");

    // The device side finds the token in every form, unless another field looks like one.
    let kme_text = extras.kme_json(&token);
    let others_look_like_tokens = qr
        .expose_secret()
        .to_ascii_lowercase()
        .matches("obt")
        .count()
        > 1;
    if !others_look_like_tokens {
        for (form, text) in [
            ("qr", qr.expose_secret()),
            ("nfc", nfc.expose_secret()),
            ("kme", kme_text.expose_secret()),
        ] {
            if text.len() > MAX_INPUT_LEN {
                continue;
            }
            let found = extract_token(text).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(found.expose_secret(), token.expose_secret(), "{form}");
        }
    }
    // And the payload configuration renders every format it is configured for.
    let config = payload::PayloadConfig::new().with_android(android);
    for format in PayloadFormat::ALL {
        match config.render(format, &token) {
            Ok(text) => assert!(!text.is_empty()),
            Err(e) => {
                assert_eq!(format, PayloadFormat::Url);
                assert_no_token_in(&e.to_string());
            }
        }
    }
}

/// A password of the same shape as `pw` (the same byte length, hex digits, printable ASCII,
/// control and non-ASCII characters in the same places), differing in every character.
fn stand_in_password(pw: &str) -> String {
    pw.chars()
        .map(|c| {
            let pick = |a: char, b: char| if c == a { b } else { a };
            if c.is_ascii_hexdigit() {
                pick('0', '1')
            } else if c.is_control() {
                if c.len_utf8() == 1 {
                    pick('\u{1}', '\u{2}')
                } else {
                    pick('\u{85}', '\u{86}')
                }
            } else if c.is_ascii() {
                pick('~', '}')
            } else {
                match c.len_utf8() {
                    2 => pick('é', 'è'),
                    3 => pick('€', '₤'),
                    _ => pick('😀', '😁'),
                }
            }
        })
        .collect()
}

/// The Wi-Fi settings of `w` with `password`, and the messages of rejected EAP settings.
fn build_wifi(
    w: &WifiInput,
    password: Option<&str>,
) -> Result<(Wifi, Vec<String>), onboarding_token::android::AndroidError> {
    let security = [
        WifiSecurity::None,
        WifiSecurity::Wpa,
        WifiSecurity::Wep,
        WifiSecurity::Eap,
    ][usize::from(w.security % 4)];
    let mut wifi = Wifi::new(&w.ssid, security, password)?.hidden(w.hidden);
    let mut errors = Vec::new();
    if let Some((m, p, id, anon)) = &w.eap {
        let methods = [
            EapMethod::Peap,
            EapMethod::Tls,
            EapMethod::Ttls,
            EapMethod::Pwd,
            EapMethod::Sim,
            EapMethod::Aka,
            EapMethod::AkaPrime,
        ];
        let phases = [
            Phase2Auth::Pap,
            Phase2Auth::Mschap,
            Phase2Auth::Mschapv2,
            Phase2Auth::Gtc,
            Phase2Auth::Sim,
            Phase2Auth::Aka,
            Phase2Auth::AkaPrime,
        ];
        let method = methods[usize::from(*m) % methods.len()];
        let phase = p.map(|p| phases[usize::from(p) % phases.len()]);
        match wifi
            .clone()
            .with_eap(method, phase, id.as_deref(), anon.as_deref())
        {
            Ok(x) => wifi = x,
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Some(d) = &w.domain {
        match wifi.clone().with_domain(d) {
            Ok(x) => wifi = x,
            Err(e) => errors.push(e.to_string()),
        }
    }
    Ok((wifi, errors))
}

/// An independent reader for the `java.util.Properties` text the NFC form is written in,
/// following `Properties.load`: `#`/`!` comments, `=`, `:` or whitespace separators,
/// backslash escapes (`\t \n \r \f \uXXXX`, anything else stands for itself) and
/// continuation lines.
pub fn read_properties(text: &str) -> Vec<(String, String)> {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\u{c}');
    let mut logical_lines = Vec::new();
    let mut current = String::new();
    let mut continuing = false;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = if continuing {
            line.trim_start_matches(ws)
        } else {
            let t = line.trim_start_matches(ws);
            if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
                continue;
            }
            t
        };
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            current.push_str(&line[..line.len() - 1]);
            continuing = true;
        } else {
            current.push_str(line);
            logical_lines.push(std::mem::take(&mut current));
            continuing = false;
        }
    }
    if !current.is_empty() {
        logical_lines.push(current);
    }
    let mut out = Vec::new();
    for line in logical_lines {
        let chars: Vec<char> = line.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            match chars[k] {
                '\\' => k += 2,
                '=' | ':' => break,
                c if ws(c) => break,
                _ => k += 1,
            }
        }
        let key_end = k.min(chars.len());
        let mut v = key_end;
        while v < chars.len() && ws(chars[v]) {
            v += 1;
        }
        if v < chars.len() && matches!(chars[v], '=' | ':') {
            v += 1;
        }
        while v < chars.len() && ws(chars[v]) {
            v += 1;
        }
        out.push((unescape(&chars[..key_end]), unescape(&chars[v..])));
    }
    out
}

fn unescape(chars: &[char]) -> String {
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let mut buf = [0u16; 2];
        if c != '\\' {
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let Some(&n) = chars.get(i) else { break };
        i += 1;
        match n {
            't' => units.push(9),
            'n' => units.push(10),
            'r' => units.push(13),
            'f' => units.push(12),
            'u' => {
                let hex: String = chars[i..(i + 4).min(chars.len())].iter().collect();
                let unit = u16::from_str_radix(&hex, 16).expect("a \\uXXXX escape");
                assert_eq!(hex.len(), 4, "a short \\u escape");
                units.push(unit);
                i += 4;
            }
            other => units.extend_from_slice(other.encode_utf16(&mut buf)),
        }
    }
    String::from_utf16(&units).expect("escapes form valid UTF-16")
}
