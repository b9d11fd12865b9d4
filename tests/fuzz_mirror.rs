//! The fuzz targets under `fuzz/fuzz_targets/`, mirrored as property tests so `cargo test`
//! runs the same entry points with the same assertions (`tests/fuzz_checks/mod.rs`, shared
//! with the fuzz crate) on arbitrary input: no panic, a typed error or a result that
//! round-trips.

mod fuzz_checks;

use fuzz_checks::{AndroidInput, WifiInput};
use proptest::prelude::*;

/// Arbitrary bytes, text that looks like a token, and valid tokens with one character
/// changed, removed or added.
fn token_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        "[oObBtT1_ ]{0,6}[A-Za-z0-9_\\- ]{40,60}".prop_map(String::into_bytes),
        "obt[0-9]{1,3}_[A-Za-z0-9_-]{48}".prop_map(String::into_bytes),
        (any::<[u8; 16]>(), 0usize..53, any::<char>(), 0u8..3).prop_map(|(seed, i, c, op)| {
            let token = fuzz_checks::token_from(&seed);
            let mut chars: Vec<char> = token.expose_secret().chars().collect();
            match op {
                0 => chars[i] = c,
                1 => {
                    chars.remove(i);
                }
                _ => chars.insert(i, c),
            }
            chars.into_iter().collect::<String>().into_bytes()
        }),
    ]
}

/// Text around tokens: URLs, JSON, properties, free text.
fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "\\PC{0,80}".prop_map(String::into_bytes),
        "https?://[a-z.]{1,12}(/[a-z%0-9+]{0,8})?(\\?[a-z]{1,5}=[A-Za-z0-9_%-]{0,60})?"
            .prop_map(String::into_bytes),
        "[\\[{\"a-z:, 0-9_}\\]-]{0,80}".prop_map(String::into_bytes),
        "android\\.app\\.extra\\.[A-Z_]{1,10}[=: ][A-Za-z0-9\\\\u_= \n-]{0,80}"
            .prop_map(String::into_bytes),
        "(obt1_ ?[A-Za-z0-9_-]{2,8}[ -]?){1,12}".prop_map(String::into_bytes),
    ]
}

fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        Just(String::new()),
        "[a-z/]{1,12}",
        "[0-9]{1,6}",
        Just("unlimited".to_owned()),
        Just("once".to_owned()),
        "[0-9]{1,3}[wdhms]",
        "20[0-9]{2}-0[1-9]-1[0-9]T0[0-9]:00:00Z",
        "[a-z]{1,4}=[a-z]{0,4}(;[a-z]{1,4}=[a-z]{0,4}){0,3}",
        "\"[a-z, \n\"]{0,10}\"",
        "\\PC{0,12}",
    ];
    let row = proptest::collection::vec(cell, 1..9).prop_map(|cells| cells.join(","));
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (
            proptest::collection::vec(
                prop_oneof![
                    Just("group"),
                    Just("count"),
                    Just("Count"),
                    Just("limit"),
                    Just("expires"),
                    Just("policies"),
                    Just("metadata"),
                    Just("not-before"),
                    Just("description"),
                    Just("bogus"),
                    Just(""),
                ],
                1..150,
            ),
            proptest::collection::vec(row, 0..6),
        )
            .prop_map(|(header, rows)| {
                format!("{}\n{}", header.join(","), rows.join("\n")).into_bytes()
            }),
    ]
}

fn keyring_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "(#[a-z ]{0,8}\n|obk1 [0-9a-f]{7,9} [A-Za-z0-9_-]{40,46} (active|verify|boss)\n|\n){0,4}"
            .prop_map(String::into_bytes),
    ]
}

fn grammar_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[0-9]{0,20}[wdhmsWDHMS]{0,2}([0-9]{1,4}[wdhms]){0,3}".prop_map(String::into_bytes),
        "[0-9a-fA-F]{6,34}".prop_map(String::into_bytes),
        "-?[0-9]{1,20}\\.[0-9a-f]{30,34}".prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(String::into_bytes),
        "https?://[a-z0-9.:@\\[\\]%-]{0,20}[/?#]?[\\PC]{0,20}".prop_map(String::into_bytes),
        "[a-z]{0,5}=[a-z=]{0,5}(;[ a-z]{0,5}=?[a-z]{0,5}){0,4}".prop_map(String::into_bytes),
    ]
}

fn serde_bytes() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("\"once\"".to_owned()),
        Just("\"unlimited\"".to_owned()),
        Just("{\"limited\":3}".to_owned()),
        Just("\"never\"".to_owned()),
        Just("\"2030-01-01T00:00:00Z\"".to_owned()),
        Just(format!("\"{}\"", "ab".repeat(16))),
        Just("\"61637476\"".to_owned()),
        Just("\"acme\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        "\"\\PC{0,8}\"",
    ];
    let field = (
        prop_oneof![
            Just("id"),
            Just("key_id"),
            Just("organization"),
            Just("group"),
            Just("policies"),
            Just("usage_limit"),
            Just("uses"),
            Just("validity"),
            Just("created_at"),
            Just("description"),
            Just("metadata"),
            Just("batch"),
            Just("revocation"),
            Just("expiry"),
            Just("not_before"),
        ],
        value,
    )
        .prop_map(|(k, v)| format!("\"{k}\":{v}"));
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        proptest::collection::vec(field, 0..14).prop_map(|fields| format!(
            "{{{}}}",
            fields.join(",")
        )
        .into_bytes()),
    ]
}

/// A field string: arbitrary, or close to valid for one of the Android settings.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[\\x00-\\x7f]{0,12}",
        Just(String::new()),
        Just("com.example.dpc/.AdminReceiver".to_owned()),
        Just("gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w".to_owned()),
        Just("https://mdm.example.com/dpc.apk".to_owned()),
        "[a-z]{2}[_-][A-Z]{2}",
        "[A-Z][a-z]{2,8}/[A-Z][a-z_]{2,10}",
        "[ -~]{8,20}",
        "[\"\\\\=:#! \t\n\r\u{c}é😀\u{2028}]{0,10}",
    ]
}

prop_compose! {
    fn wifi_input()(
        ssid in field(),
        security in any::<u8>(),
        password in proptest::option::of(field()),
        hidden in any::<bool>(),
        eap in proptest::option::of((any::<u8>(), proptest::option::of(any::<u8>()),
            proptest::option::of(field()), proptest::option::of(field()))),
        domain in proptest::option::of(field()),
    ) -> WifiInput {
        WifiInput { ssid, security, password, hidden, eap, domain }
    }
}

prop_compose! {
    fn android_input()(
        component in field(),
        checksum in field(),
        download in field(),
        token_key in proptest::option::of(field()),
        extras in proptest::collection::vec((field(), field()), 0..6),
        wifi in proptest::option::of(wifi_input()),
        locale in proptest::option::of(field()),
        time_zone in proptest::option::of(field()),
        flags in any::<[Option<bool>; 4]>(),
        token_seed in proptest::collection::vec(any::<u8>(), 0..16),
    ) -> AndroidInput {
        AndroidInput {
            component, checksum, download, token_key, extras, wifi, locale, time_zone, flags,
            token_seed,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Mirrors `fuzz_targets/parse_verify.rs`.
    #[test]
    fn fuzz_mirror_parse_verify(data in token_bytes()) {
        fuzz_checks::check_parse_verify(&data);
    }

    /// Mirrors `fuzz_targets/extract.rs`.
    #[test]
    fn fuzz_mirror_extract(data in payload_bytes()) {
        fuzz_checks::check_extract(&data);
    }

    /// Mirrors `fuzz_targets/android_payload.rs`.
    #[test]
    fn fuzz_mirror_android_payload(input in android_input()) {
        fuzz_checks::check_android(&input);
    }

    /// Mirrors `fuzz_targets/bulk_csv.rs`.
    #[test]
    fn fuzz_mirror_bulk_csv(data in csv_bytes()) {
        fuzz_checks::check_bulk_csv(&data);
    }

    /// Mirrors `fuzz_targets/keyring_text.rs`.
    #[test]
    fn fuzz_mirror_keyring_text(data in keyring_bytes()) {
        fuzz_checks::check_keyring_text(&data);
    }

    /// Mirrors `fuzz_targets/grammars.rs`.
    #[test]
    fn fuzz_mirror_grammars(data in grammar_bytes()) {
        fuzz_checks::check_grammars(&data);
    }

    /// Mirrors `fuzz_targets/serde_records.rs`.
    #[test]
    fn fuzz_mirror_serde_records(data in serde_bytes()) {
        fuzz_checks::check_serde(&data);
    }
}

/// The checks do check: each one fails on what it must refuse (guards against a check that
/// silently accepts everything).
#[test]
fn fuzz_mirror_checks_are_not_vacuous() {
    // A genuine token in neutral text must be found, and is.
    let token = fuzz_checks::token_from(b"seed");
    let text = format!("(see: {})", token.expose_secret());
    let found = onboarding_token::extract_token(&text).unwrap();
    assert_eq!(found.expose_secret(), token.expose_secret());
    // The independent properties reader reads what the NFC writer writes.
    let pairs = fuzz_checks::read_properties("a\\ b=c\\:d\\u00e9\n# x\nk v\\\n   w\n");
    assert_eq!(
        pairs,
        vec![
            ("a b".to_owned(), "c:d\u{e9}".to_owned()),
            ("k".to_owned(), "vw".to_owned()),
        ]
    );
    // A property check panics on a broken invariant.
    let caught = std::panic::catch_unwind(|| {
        fuzz_checks::read_properties("k=\\u00zz");
    });
    assert!(caught.is_err());
}
