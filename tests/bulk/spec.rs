//! The bulk CSV spec: parsing it into token specs, and the problems it reports.

use super::*;

#[test]
fn full_spec_parses_into_token_specs() {
    let spec = parse(FULL).unwrap();
    let rows = spec.rows();
    assert_eq!(rows.len(), 4);
    assert_eq!(spec.total_tokens(), 31);
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        [2, 5, 6, 8]
    );

    let berlin = &rows[0];
    assert_eq!(berlin.count, 25);
    let s = &berlin.spec;
    assert_eq!(s.organization().as_str(), "acme");
    assert_eq!(s.group().as_str(), "emea/berlin");
    let policies: Vec<&str> = s.policies().iter().map(PolicyId::as_str).collect();
    assert_eq!(policies, ["wifi-corp", "vpn"]);
    assert_eq!(s.usage_limit(), UsageLimit::limited(10).unwrap());
    let validity = s.validate(now()).unwrap();
    let opens = Utc.with_ymd_and_hms(2026, 3, 2, 7, 0, 0).unwrap();
    assert_eq!(validity.not_before, Some(opens));
    assert_eq!(validity.expiry, Expiry::At(opens + TimeDelta::days(7)));

    let nyc = s_of(&spec, 1);
    assert_eq!(nyc.usage_limit(), UsageLimit::Once);
    assert!(nyc.policies().is_empty());
    assert_eq!(
        nyc.validate(now()).unwrap().expiry,
        Expiry::At(now() + Validity::DEFAULT_TTL)
    );

    let tokyo = s_of(&spec, 2);
    assert_eq!(tokyo.usage_limit(), UsageLimit::Unlimited);
    assert_eq!(tokyo.validate(now()).unwrap().expiry, Expiry::Never);

    let paris = s_of(&spec, 3);
    assert_eq!(
        paris.validate(now()).unwrap().expiry,
        Expiry::At(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap())
    );

    let specs = spec.to_specs();
    assert_eq!(specs.len(), 31);
    assert!(
        specs[..25]
            .iter()
            .all(|x| x.group().as_str() == "emea/berlin")
    );
    assert_eq!(specs[30].group().as_str(), "emea/paris");
}

fn s_of(spec: &BulkSpec, i: usize) -> &TokenSpec {
    &spec.rows()[i].spec
}

#[tokio::test]
async fn descriptions_and_metadata_reach_the_issued_tokens() {
    let spec = parse(FULL).unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let service = Onboarding::new(
        Keyring::new(SigningKey::generate(&mut rng)),
        MemoryStore::new(),
    )
    .with_clock(ManualClock::new(now()));
    let batch = service.issue_batch(spec.to_specs()).await.unwrap();
    assert_eq!(batch.tokens.len(), 31);
    let berlin = &batch.tokens[0].token;
    assert_eq!(berlin.description(), "Berlin laptops, Q3");
    assert_eq!(berlin.metadata().get("site"), Some("berlin"));
    assert_eq!(berlin.metadata().get("cc"), Some("4711"));
    assert_eq!(
        batch.tokens[26].token.description(),
        "He said \"hi\"\nsecond line"
    );
}

#[test]
fn header_problems_are_reported_by_column() {
    assert_eq!(
        errors("group,expiry,count,group\n"),
        vec![
            (
                1,
                None,
                RowProblem::UnknownColumn {
                    name: "expiry".to_owned()
                }
            ),
            (1, Some(Column::Group), RowProblem::DuplicateColumn),
        ]
    );
    assert_eq!(
        errors("policies,limit\nx,1\n"),
        vec![
            (1, Some(Column::Group), RowProblem::MissingColumn),
            (1, Some(Column::Count), RowProblem::MissingColumn),
        ]
    );
    assert_eq!(errors(""), vec![(1, None, RowProblem::NoHeader)]);
    assert_eq!(
        errors("\u{feff}\n\n"),
        vec![(1, None, RowProblem::NoHeader)]
    );
    assert_eq!(errors("group,count\n"), vec![(1, None, RowProblem::NoRows)]);
}

#[test]
fn row_problems_are_reported_by_line_and_column() {
    let csv = "group,policies,count,limit,not_before,expires,description,metadata\n\
               ok,,1,,,,,\n\
               bad group!,,0,zero,yesterday,soon,,novalue\n\
               ok,p;p,1,,,,,\n\
               ok,,1,,,2020-01-01T00:00:00Z,,\n\
               ok,,1,,2026-05-01T00:00:00Z,2026-04-01T00:00:00Z,,\n\
               ok,,1,,,0d,,\n\
               ok,,1,,,12h1d,,\n\
               ok,,1\n\
               ,,,1,,,,\n\
               ok,,99999999999,,,,,a=1;a=2\n\
               ok,,1,,,,,=v\n";
    let got = errors(csv);
    let expect: Vec<(usize, Option<Column>, &str)> = vec![
        (3, Some(Column::Group), "invalid group id"),
        (3, Some(Column::Count), "not a whole number"),
        (3, Some(Column::Limit), "limit must be"),
        (3, Some(Column::NotBefore), "RFC 3339"),
        (
            3,
            Some(Column::Expires),
            "expected an RFC 3339 time, a duration",
        ),
        (3, Some(Column::Metadata), "key=value"),
        (4, Some(Column::Policies), "listed twice"),
        (5, Some(Column::Expires), "is not after the time of issue"),
        (6, Some(Column::NotBefore), "validity window is empty"),
        (7, Some(Column::Expires), "must be positive"),
        (8, Some(Column::Expires), "largest first"),
        (9, None, "row has 3 fields; the header has 8"),
        (10, Some(Column::Group), "value is required"),
        (10, Some(Column::Count), "value is required"),
        (11, Some(Column::Count), "not a whole number"),
        (11, Some(Column::Metadata), "given twice"),
        (12, Some(Column::Metadata), "must not be empty"),
    ];
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for ((line, column, problem), (eline, ecolumn, text)) in got.iter().zip(&expect) {
        assert_eq!((line, column), (eline, ecolumn), "{problem}");
        assert!(problem.to_string().contains(text), "{problem} !~ {text}");
    }
    let err = parse(csv).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("bulk spec has 17 errors: line 3, column `group`: invalid group id")
    );
    assert!(message.ends_with("and 12 more"));
}

#[test]
fn csv_syntax_errors_name_their_line() {
    assert_eq!(
        errors("group,count\nok,1\n\"open,1\n"),
        vec![(3, None, RowProblem::Csv(CsvProblem::UnterminatedQuote))]
    );
    assert_eq!(
        errors("group,count\n\"ok\"x,1\n"),
        vec![(2, None, RowProblem::Csv(CsvProblem::AfterQuote))]
    );
}

#[test]
fn totals_and_sizes_are_bounded() {
    let mut csv = String::from("group,count\n");
    for _ in 0..11 {
        csv.push_str("g,10000\n");
    }
    let got = errors(&csv);
    assert_eq!(
        got,
        vec![(
            12,
            Some(Column::Count),
            RowProblem::TooManyTokens { max: MAX_TOKENS }
        )]
    );
    assert_eq!(
        errors("group,count\ng,10001\n"),
        vec![(2, Some(Column::Count), RowProblem::Count)]
    );
    let big = format!("group,count\n{}", "g,1\n".repeat(MAX_SPEC_BYTES / 4 + 1));
    assert!(matches!(errors(&big)[0].2, RowProblem::TooLarge { .. }));
    let many_bad = format!("group,count\n{}", "g,x\n".repeat(500));
    assert_eq!(parse(&many_bad).unwrap_err().errors().len(), MAX_ERRORS);
}

#[test]
fn small_grammars() {
    assert_eq!(parse_duration("90m"), Ok(TimeDelta::minutes(90)));
    assert_eq!(parse_duration("36H"), Ok(TimeDelta::hours(36)));
    assert_eq!(parse_duration("2w3d"), Ok(TimeDelta::days(17)));
    assert_eq!(parse_duration("1d2h3m4s"), Ok(TimeDelta::seconds(93_784)));
    assert_eq!(parse_duration(""), Err(DurationError::Empty));
    for bad in ["d", "7", "7x", "-7d", "7 d", " 7d", "1.5h", "7d7d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_duration("1h1d"), Err(DurationError::UnitOrder));
    assert_eq!(parse_duration("0h0m"), Err(DurationError::Zero));
    assert_eq!(
        parse_duration("99999999999999999w"),
        Err(DurationError::Overflow)
    );
    assert_eq!(parse_usage_limit("ONCE"), Ok(UsageLimit::Once));
    assert_eq!(parse_usage_limit("1"), Ok(UsageLimit::Once));
    assert_eq!(
        parse_usage_limit("4294967295").unwrap().max_uses(),
        Some(u32::MAX)
    );
    for bad in ["", "0", "-1", "+5", "4294967296", "many", " 5"] {
        assert!(parse_usage_limit(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_time("2026-03-01T10:00:00+01:00"),
        Ok(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
    );
    assert!(parse_time("2026-03-01").is_err());
    assert_eq!(parse_expiry("NEVER"), Ok(ExpirySpec::Never));
    let policies = parse_policies(" a; b ;;c ").unwrap();
    assert_eq!(policies.len(), 3);
    assert!(parse_policies("a b").is_err());
    let meta = parse_metadata("url=https://x/?a=b; k = v ").unwrap();
    assert_eq!(meta.get("url"), Some("https://x/?a=b"));
    assert_eq!(meta.get("k"), Some("v"));
    assert!(matches!(
        parse_metadata(&format!("k={}", "v".repeat(5000))),
        Err(MetadataError::Spec(_))
    ));
}

proptest! {
    #[test]
    fn durations_round_trip(parts in prop::collection::btree_map(0usize..5, 1u32..10_000, 1..5)) {
        let units = ['w', 'd', 'h', 'm', 's'];
        let seconds = [604_800i64, 86_400, 3_600, 60, 1];
        let text: String = parts.iter().map(|(&u, n)| format!("{n}{}", units[u])).collect();
        let expected: i64 = parts.iter().map(|(&u, &n)| i64::from(n) * seconds[u]).sum();
        prop_assert_eq!(parse_duration(&text), Ok(TimeDelta::seconds(expected)));
    }

    #[test]
    fn arbitrary_durations_and_specs_never_panic(text in any::<String>()) {
        let _ = parse_duration(&text);
        let _ = parse_expiry(&text);
        let _ = parse_usage_limit(&text);
        let _ = parse_metadata(&text);
        let _ = BulkSpec::parse(&text, &org(), now());
        let with_header = format!("group,policies,count,limit,not_before,expires,description,metadata\n{text}");
        if let Err(e) = BulkSpec::parse(&with_header, &org(), now()) {
            prop_assert!(!e.errors().is_empty());
            prop_assert!(e.errors().iter().all(|r| r.line >= 1));
        }
    }

    #[test]
    fn quoted_descriptions_round_trip(desc in "[^\r]{0,80}") {
        let quoted = format!("\"{}\"", desc.replace('"', "\"\""));
        let csv = format!("group,count,description\ng,1,{quoted}\n");
        let spec = parse(&csv).unwrap();
        let issued_desc = spec.rows()[0].spec.clone();
        // Values are trimmed, like every other field.
        let expected = desc.trim();
        let debug = format!("{issued_desc:?}");
        let needle = format!("description: {expected:?}");
        prop_assert!(debug.contains(&needle));
    }
}
