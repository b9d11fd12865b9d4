//! Metadata, specs and their serde forms.

use super::*;

#[test]
fn metadata_over_4_kib_is_refused_at_every_door() {
    let exactly = Metadata::from_pairs([("k", "v".repeat(Metadata::MAX_BYTES - 1))]);
    assert!(exactly.is_ok());
    let over = Metadata::from_pairs([("k", "v".repeat(Metadata::MAX_BYTES))]).unwrap_err();
    assert_eq!(
        over,
        SpecError::MetadataTooLarge {
            size: 4097,
            max: 4096
        }
    );
    assert_eq!(
        over.to_string(),
        "metadata is 4097 bytes; at most 4096 are allowed"
    );
    // Many small pairs add up.
    let many = Metadata::from_pairs((0..600).map(|i| (format!("key{i:04}"), "1"))).unwrap_err();
    assert!(matches!(many, SpecError::MetadataTooLarge { .. }));
    let big = Metadata::from_pairs([("k", "v".repeat(MB))]).unwrap_err();
    assert!(big.to_string().len() < 100);
    assert_eq!(
        Metadata::from_pairs([("", "v")]).unwrap_err(),
        SpecError::EmptyMetadataKey
    );
    // parse_metadata and serde enforce the same bound.
    let text = format!("k={}", "v".repeat(Metadata::MAX_BYTES));
    assert!(matches!(
        bulk::parse_metadata(&text).unwrap_err(),
        MetadataError::Spec(SpecError::MetadataTooLarge { .. })
    ));
    let json = serde_json::json!({"k": "v".repeat(Metadata::MAX_BYTES)});
    let err = serde_json::from_value::<Metadata>(json).unwrap_err();
    assert!(err.to_string().contains("at most 4096"), "{err}");
    let spec_json = serde_json::json!({
        "organization": "acme", "group": "g", "metadata": {"k": "v".repeat(MB)}
    });
    assert!(serde_json::from_value::<TokenSpec>(spec_json).is_err());
}

#[test]
fn metadata_text_refuses_with_typed_errors() {
    let cases: Vec<(String, MetadataError)> = vec![
        ("k".into(), MetadataError::MissingEquals),
        ("a=1;b".into(), MetadataError::MissingEquals),
        ("=v".into(), MetadataError::EmptyKey),
        (" = v".into(), MetadataError::EmptyKey),
        ("k=1;k=2".into(), MetadataError::DuplicateKey("k".into())),
        (
            format!("{0}=1;{0}=2", "k".repeat(MB)),
            MetadataError::DuplicateKey("k".repeat(64)),
        ),
    ];
    for (input, expected) in cases {
        let err = bulk::parse_metadata(&input).unwrap_err();
        assert_eq!(err, expected);
        assert!(err.to_string().len() < 200);
    }
    for ok in ["", " ", ";;", "a=b=c", " a = b ;"] {
        assert!(bulk::parse_metadata(ok).is_ok(), "{ok:?}");
    }
}

#[test]
fn token_spec_and_token_json_refuse_with_errors() {
    let bad_specs = [
        "".to_owned(),
        " ".into(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        r#"{"organization": "acme"}"#.into(),
        r#"{"organization": "", "group": "g"}"#.into(),
        r#"{"organization": "acme", "group": "a//b"}"#.into(),
        r#"{"organization": "acme", "group": "g", "usage_limit": {"limited": 0}}"#.into(),
        r#"{"organization": "acme", "group": "g", "usage_limit": "twice"}"#.into(),
        r#"{"organization": "acme", "group": "g", "policies": ["a b"]}"#.into(),
        r#"{"organization": "acme", "group": "g", "expiry": {"after": 9223372036854775807}}"#
            .into(),
        r#"{"organization": "acme", "group": "g", "expiry": {"at": "tomorrow"}}"#.into(),
        r#"{"organization": "acme", "group": "g", "not_before": "2030-02-30T00:00:00Z"}"#.into(),
        format!(
            r#"{{"organization": "acme", "group": "{}"}}"#,
            "g".repeat(MB)
        ),
    ];
    for text in &bad_specs {
        let err = serde_json::from_str::<TokenSpec>(text).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(err.to_string().len() < 300, "{err}");
    }
    // Invalid UTF-8 bytes.
    assert!(
        serde_json::from_slice::<TokenSpec>(b"{\"organization\": \"a\xff\", \"group\": \"g\"}")
            .is_err()
    );
    assert!(serde_json::from_slice::<Token>(b"\xff\xfe").is_err());
    for text in ["", "null", "{}", "[]", "\"obt1_x\""] {
        assert!(serde_json::from_str::<Token>(text).is_err(), "{text}");
    }
    // Specs that deserialize but break a rule are refused when issued.
    let negative: TokenSpec =
        serde_json::from_str(r#"{"organization": "acme", "group": "g", "expiry": {"after": -60}}"#)
            .unwrap();
    assert_eq!(negative.validate(t0()), Err(SpecError::NonPositiveLifetime));
}
