//! The properties every fuzz target checks, shared by the cargo-fuzz targets under `fuzz/`
//! (which include this file by path) and their proptest mirrors in `tests/fuzz_mirror.rs`,
//! so `cargo test` exercises the same entry points with the same assertions.
//!
//! Each `check_*` function takes arbitrary input, calls public parsers and builders, and
//! panics only when a property fails: an input may be rejected, but only with a typed
//! error whose message does not repeat a token, and whatever is accepted must round-trip.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use onboarding_token::android::{
    AdminExtras, AndroidProvisioning, EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, EapMethod,
    Phase2Auth, Wifi, WifiSecurity,
};
use onboarding_token::bulk::{self, BulkSpec};
use onboarding_token::chrono::{DateTime, TimeZone, Utc};
use onboarding_token::codec::{PREFIX, TOKEN_LEN};
use onboarding_token::payload::{
    self, EnrollmentUrl, ExtractError, MAX_INPUT_LEN, PayloadFormat, TokenText, extract_token,
};
use onboarding_token::store::PageCursor;
use onboarding_token::*;

/// The fixed instant the checks treat as "now".
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

/// A keyring with an active key and a verify-only key, fixed so runs are reproducible.
pub fn keyring() -> Keyring {
    Keyring::new(SigningKey::from_bytes(
        KeyId::from_bytes(*b"actv"),
        &[0x5a; 32],
    ))
    .with_verify_only(SigningKey::from_bytes(
        KeyId::from_bytes(*b"old1"),
        &[0xa5; 32],
    ))
    .expect("distinct key ids")
}

/// A genuine token signed by [`keyring`]'s active key, its id taken from `seed`.
pub fn token_from(seed: &[u8]) -> TokenString {
    let mut id = [0u8; 16];
    for (i, b) in seed.iter().take(16).enumerate() {
        id[i] = *b;
    }
    keyring().sign(&TokenId::from_bytes(id))
}

/// No error message contains a token string (or the start of one).
#[track_caller]
fn assert_no_token_in(message: &str) {
    assert!(!message.is_empty(), "an error with an empty message");
    assert!(
        !message.contains(PREFIX),
        "an error message repeats token text: {message:?}"
    );
}

// ---------------------------------------------------------------------------------------
// parse_verify

/// `UnverifiedToken::parse`, `Keyring::verify` and `payload::parse_grouped` over arbitrary
/// bytes: as text, and as the 36 payload bytes of a token string (so verification is
/// reached with known and unknown key ids).
pub fn check_parse_verify(data: &[u8]) {
    let ring = keyring();
    if let Ok(text) = std::str::from_utf8(data) {
        check_token_text(&ring, text);
    }
    if data.len() > 36 {
        let mut payload = [0u8; 36];
        payload.copy_from_slice(&data[1..37]);
        // Steer the key id to the active key, the verify-only key, or leave it arbitrary.
        match data[0] % 3 {
            0 => payload[..4].copy_from_slice(b"actv"),
            1 => payload[..4].copy_from_slice(b"old1"),
            _ => {}
        }
        let text = format!("{PREFIX}{}", Base64UrlUnpadded::encode_string(&payload));
        assert_eq!(text.len(), TOKEN_LEN);
        let parsed = UnverifiedToken::parse(&text).expect("a well-formed token string parses");
        assert_eq!(parsed.untrusted_key_id().as_bytes()[..], payload[..4]);
        assert_eq!(parsed.untrusted_token_id().as_bytes()[..], payload[4..20]);
        check_token_text(&ring, &text);
        // A genuine token with its tag changed by the remaining input never verifies.
        let genuine = ring.sign(&parsed.untrusted_token_id());
        let mut bytes = Base64UrlUnpadded::decode_vec(&genuine.expose_secret()[PREFIX.len()..])
            .expect("a genuine token decodes");
        let mut changed = false;
        for (i, b) in data[37..].iter().take(16).enumerate() {
            bytes[20 + i] ^= b;
            changed |= *b != 0;
        }
        let forged = format!("{PREFIX}{}", Base64UrlUnpadded::encode_string(&bytes));
        let result = ring.verify_str(&forged);
        if changed {
            assert_eq!(
                result,
                Err(Rejection::BadSignature),
                "a changed tag verified"
            );
        } else {
            assert!(result.is_ok(), "the genuine token must verify");
        }
    }
}

fn check_token_text(ring: &Keyring, text: &str) {
    match UnverifiedToken::parse(text) {
        Ok(parsed) => {
            assert_eq!(text.len(), TOKEN_LEN);
            assert!(text.starts_with(PREFIX));
            assert!(
                text[PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            match ring.verify(&parsed) {
                Ok(verified) => {
                    // Only the keyring's own signature verifies: re-signing gives the input.
                    let again = ring
                        .sign_with(verified.key_id(), &verified.token_id())
                        .expect("the verifying key is in the keyring");
                    assert_eq!(again.expose_secret(), text);
                }
                Err(VerifyError::UnknownKey(k)) => {
                    assert_eq!(k, parsed.untrusted_key_id());
                    assert!(ring.key_ids().all(|id| id != k));
                }
                Err(VerifyError::BadSignature) => {
                    let genuine = ring
                        .sign_with(parsed.untrusted_key_id(), &parsed.untrusted_token_id())
                        .expect("a bad signature is reported only for a known key");
                    assert_ne!(genuine.expose_secret(), text);
                }
                Err(other) => panic!("unexpected verify error {other:?}"),
            }
            // The grouped parser accepts a bare token as itself.
            let grouped = payload::parse_grouped(text).expect("a bare token is a typed form");
            assert_eq!(grouped.expose_secret(), text);
        }
        Err(e) => {
            assert_eq!(e == DecodeError::Empty, text.is_empty());
            assert_no_token_in(&e.to_string());
            assert_eq!(ring.verify_str(text), Err(Rejection::Malformed(e)));
        }
    }
    match payload::parse_grouped(text) {
        Ok(found) => {
            let again = UnverifiedToken::parse(found.expose_secret())
                .expect("parse_grouped returns a well-formed token");
            assert_eq!(&again, found.untrusted());
            // Whitespace is insignificant in the typed form.
            let (prefix, body) = found.expose_secret().split_at(PREFIX.len());
            let spaced: String = std::iter::once(format!(" \t{prefix}"))
                .chain(body.chars().map(|c| format!("{c} \n")))
                .collect();
            let respaced = payload::parse_grouped(&spaced).expect("a spaced-out token");
            assert_eq!(respaced.expose_secret(), found.expose_secret());
        }
        Err(e) => assert_no_token_in(&e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// extract

/// Characters that cannot start, continue or end a token, JSON, a URL or properties.
const NEUTRAL: &[char] = &[
    ' ', '\t', '\n', '.', ',', ';', '!', '?', '(', ')', '<', '>', '"', '\'',
];

/// `payload::extract_token` over arbitrary input (as UTF-8 when it is, and as lossy text),
/// and over a genuine token in its every form, wrapped in text made from the input.
pub fn check_extract(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_extract_text(text);
    }
    let lossy = String::from_utf8_lossy(data);
    check_extract_text(&lossy);

    // A genuine token in neutral surroundings is always found.
    let token = token_from(data);
    let split = data.first().map_or(0, |&b| usize::from(b)) % (data.len().max(1));
    let neutral = |bytes: &[u8]| -> String {
        bytes
            .iter()
            .map(|&b| NEUTRAL[usize::from(b) % NEUTRAL.len()])
            .collect()
    };
    let (before, after) = data.split_at(split.min(data.len()));
    let (before, after) = (neutral(before), neutral(after));
    for form in [
        payload::SecretText::from(&token),
        payload::grouped(&token),
        payload::grouped_lines(&token),
    ] {
        let text = format!("{before}{}{after}", form.expose_secret());
        if text.len() > MAX_INPUT_LEN {
            continue;
        }
        let found = extract_token(&text).expect("a genuine token in neutral text is found");
        assert_eq!(found.expose_secret(), token.expose_secret());
    }

    // An enrollment link on any accepted base carries the token back out, unless the base
    // itself holds token-like or percent-encoded text.
    let base = String::from_utf8_lossy(data);
    if let Ok(url) = EnrollmentUrl::new(&base) {
        let lower = base.to_ascii_lowercase();
        if !lower.contains("obt") && !lower.contains('%') {
            let link = url.render(&token);
            let found = extract_token(link.expose_secret()).expect("a link's token is found");
            assert_eq!(found.expose_secret(), token.expose_secret());
        }
    }
    let prefixed = format!("https://mdm.example.com/{}", neutral(data).trim());
    if let Ok(url) = EnrollmentUrl::new(&prefixed) {
        let found = extract_token(url.render(&token).expose_secret()).expect("link");
        assert_eq!(found.expose_secret(), token.expose_secret());
    }
}

fn check_extract_text(text: &str) {
    match extract_token(text) {
        Ok(found) => {
            assert!(text.len() <= MAX_INPUT_LEN);
            let exact = TokenText::parse(found.expose_secret()).expect("a well-formed token");
            assert_eq!(exact.untrusted(), found.untrusted());
            // The result is a fixed point.
            let again = extract_token(found.expose_secret()).expect("a bare token");
            assert_eq!(again.expose_secret(), found.expose_secret());
        }
        Err(e) => {
            assert_eq!(
                matches!(e, ExtractError::TooLong { .. }),
                text.len() > MAX_INPUT_LEN
            );
            assert_no_token_in(&e.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------
// android_payload

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

// ---------------------------------------------------------------------------------------
// bulk_csv

/// `BulkSpec::parse` over arbitrary text (lossy UTF-8): a spec or every problem with its
/// line, never more than the documented bounds; every accepted row is a valid spec.
pub fn check_bulk_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let org = OrgId::new("acme").expect("org");
    for text in [
        text.as_ref(),
        &format!("group,count,limit,expires,policies,metadata,not_before,description\n{text}"),
    ] {
        match BulkSpec::parse(text, &org, now()) {
            Ok(spec) => {
                assert!(!spec.rows().is_empty());
                let total = spec.total_tokens();
                assert!(total >= spec.rows().len() as u64);
                assert!(total <= bulk::MAX_TOKENS);
                for row in spec.rows() {
                    assert!((1..=bulk::MAX_COUNT_PER_ROW).contains(&row.count));
                    assert!(row.line >= 2, "rows start after the header");
                    row.spec
                        .validate(now())
                        .expect("an accepted row is a valid spec");
                    assert_eq!(row.spec.organization(), &org);
                }
                if total <= 1000 {
                    assert_eq!(spec.to_specs().len() as u64, total);
                }
            }
            Err(e) => {
                assert!(!e.errors().is_empty());
                assert!(e.errors().len() <= bulk::MAX_ERRORS);
                let lines = text.split(['\n', '\r']).count().max(1);
                for row in e.errors() {
                    assert!(
                        row.line >= 1 && row.line <= lines + 1,
                        "line {} of {lines}",
                        row.line
                    );
                    assert!(!row.to_string().is_empty());
                }
                assert!(e.to_string().starts_with("bulk spec has "));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// grammars

/// Every small public parser over arbitrary text: durations, expiries, times, limits,
/// metadata, policies, ids, names, cursors, statuses, formats, URLs, checksums. Accepted
/// values round-trip through their text form.
pub fn check_grammars(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    match bulk::parse_duration(s) {
        Ok(d) => assert!(d > onboarding_token::chrono::TimeDelta::zero()),
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    match bulk::parse_expiry(s) {
        Ok(ExpirySpec::After(d)) => assert!(d > onboarding_token::chrono::TimeDelta::zero()),
        Ok(_) => {}
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    if let Ok(t) = bulk::parse_time(s) {
        assert_eq!(bulk::parse_time(&t.to_rfc3339()), Ok(t));
    }
    match bulk::parse_usage_limit(s) {
        Ok(limit) => {
            if let Ok(n) = s.parse::<u32>() {
                assert_eq!(limit.max_uses(), Some(n));
            }
        }
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    match bulk::parse_metadata(s) {
        Ok(meta) => {
            let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(size <= Metadata::MAX_BYTES);
            assert!(meta.iter().all(|(k, _)| !k.is_empty()));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(policies) = bulk::parse_policies(s) {
        assert!(policies.iter().all(|p| !p.as_str().is_empty()));
    }
    fn round_trip<T>(s: &str)
    where
        T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
        T::Err: std::fmt::Display,
    {
        match s.parse::<T>() {
            Ok(v) => {
                let shown = v.to_string();
                let again: T = shown.parse().ok().expect("Display output parses back");
                assert_eq!(again, v);
            }
            Err(e) => assert_no_token_in(&e.to_string()),
        }
    }
    round_trip::<TokenId>(s);
    round_trip::<BatchId>(s);
    round_trip::<KeyId>(s);
    round_trip::<PageCursor>(s);
    round_trip::<Status>(s);
    round_trip::<OrgId>(s);
    round_trip::<GroupId>(s);
    round_trip::<PolicyId>(s);
    round_trip::<DeviceId>(s);
    round_trip::<PayloadFormat>(s);
    if let Ok(id) = s.parse::<TokenId>() {
        assert_eq!(id.to_string(), s, "ids have one text form");
    }
    if let Ok(id) = s.parse::<KeyId>() {
        assert_eq!(id.to_string(), s, "key ids have one text form");
    }
    let _ = s.parse::<WifiSecurity>();
    match EnrollmentUrl::new(s) {
        Ok(url) => {
            assert_eq!(url.base(), s);
            let token = token_from(data);
            let link = url.render(&token);
            assert!(link.expose_secret().is_ascii());
            assert!(!link.expose_secret().chars().any(char::is_whitespace));
        }
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    let _ = onboarding_token::android::SignatureChecksum::new(s);
    let _ = onboarding_token::android::SignatureChecksum::from_sha256_hex(s);
}

// ---------------------------------------------------------------------------------------
// keyring_text

/// `Keyring::from_secret_text` over arbitrary text, and over a real export spliced with the
/// input: a keyring that exports to the same text, or an error that shows no key material.
pub fn check_keyring_text(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_keyring_str(text);
    }
    // Splice the input into a genuine export, so the parser's later stages are reached.
    let export = keyring().export_secret_text();
    let at = data.first().map_or(0, |&b| usize::from(b) * 2) % (export.len() + 1);
    let at = (0..=at)
        .rev()
        .find(|&i| export.is_char_boundary(i))
        .unwrap_or(0);
    let cut = data.get(1).map_or(0, |&b| usize::from(b) % 8);
    let end = (at + cut).min(export.len());
    let insert = String::from_utf8_lossy(data.get(2..).unwrap_or_default());
    let spliced = format!("{}{}{}", &export[..at], insert, &export[end..]);
    check_keyring_str(&spliced);
}

fn check_keyring_str(text: &str) {
    match Keyring::from_secret_text(text) {
        Ok(ring) => {
            let export = ring.export_secret_text();
            let back = Keyring::from_secret_text(&export).expect("an export reads back");
            assert_eq!(back.export_secret_text(), export);
            assert_eq!(
                back.key_ids().collect::<Vec<_>>(),
                ring.key_ids().collect::<Vec<_>>()
            );
            let debug = format!("{ring:?}");
            for line in export.lines() {
                let secret = line.split(' ').nth(2).expect("a secret field");
                assert!(!debug.contains(secret), "Debug of Keyring shows a key");
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            for word in text.split_whitespace().filter(|w| w.len() >= 16) {
                assert!(
                    !message.contains(word),
                    "the error repeats input: {message}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// serde

/// serde deserialization of records and specifications from arbitrary JSON: a record that
/// passes every rule and round-trips, or an error.
pub fn check_serde(data: &[u8]) {
    fn rt<T>(bytes: &[u8])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(value) = serde_json::from_slice::<T>(bytes) {
            let text = serde_json::to_string(&value).expect("serializes");
            let back: T = serde_json::from_str(&text).expect("its own JSON reads back");
            assert_eq!(back, value);
        }
    }
    rt::<Token>(data);
    rt::<TokenSpec>(data);
    rt::<Enrollment>(data);
    rt::<Validity>(data);
    rt::<Metadata>(data);
    rt::<UsageLimit>(data);
    rt::<ExpirySpec>(data);
    rt::<Leeway>(data);
    rt::<PageCursor>(data);
    rt::<RevokeTarget>(data);
    if let Ok(token) = serde_json::from_slice::<Token>(data) {
        // Whatever deserializes obeys the record's rules.
        let parts = token.clone().into_parts();
        assert_eq!(Token::from_parts(parts).expect("valid parts"), token);
        if let Some(max) = token.usage_limit().max_uses() {
            assert!(token.uses() <= u64::from(max));
        }
    }
    if let Ok(spec) = serde_json::from_slice::<TokenSpec>(data) {
        let _ = spec.validate(now());
    }
}

use onboarding_token::store::RevokeTarget;
