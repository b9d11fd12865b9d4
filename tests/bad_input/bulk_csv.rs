//! Bulk CSV.

use super::*;

fn parse_csv(text: &str) -> Result<BulkSpec, bulk::BulkSpecError> {
    BulkSpec::parse(text, &org(), t0())
}

#[track_caller]
fn one_error(text: &str) -> bulk::RowError {
    let err = parse_csv(text).unwrap_err();
    assert_eq!(err.errors().len(), 1, "{err}");
    err.errors()[0].clone()
}

#[test]
fn bulk_csv_refuses_missing_extra_and_bad_columns() {
    let e = one_error("");
    assert_eq!((e.line, e.problem), (1, RowProblem::NoHeader));
    assert_eq!(one_error(" \n\n  \n").problem, RowProblem::NoHeader);
    assert_eq!(one_error(",,,\n").problem, RowProblem::NoHeader);
    assert_eq!(one_error("group,count\n").problem, RowProblem::NoRows);
    assert_eq!(
        one_error("group,count\n# only a comment\n").problem,
        RowProblem::NoRows
    );

    // Missing required columns: both named.
    let err = parse_csv("policies,limit\nwifi,3\n").unwrap_err();
    let missing: Vec<Option<Column>> = err.errors().iter().map(|e| e.column).collect();
    assert_eq!(missing, vec![Some(Column::Group), Some(Column::Count)]);
    assert!(
        err.errors()
            .iter()
            .all(|e| e.problem == RowProblem::MissingColumn)
    );
    assert!(
        err.to_string().contains("required column is missing"),
        "{err}"
    );

    // An unknown extra column, named (at most 64 characters of it).
    let e = one_error("group,count,colour\ng,1,red\n");
    assert_eq!(
        e.problem,
        RowProblem::UnknownColumn {
            name: "colour".into()
        }
    );
    let long = "x".repeat(MB);
    let e = one_error(&format!("group,count,{long}\ng,1,red\n"));
    assert_eq!(
        e.problem,
        RowProblem::UnknownColumn {
            name: "x".repeat(64)
        }
    );
    assert!(e.to_string().len() < 300);
    let e = one_error("group,count,Count\ng,1,2\n");
    assert_eq!(
        (e.column, e.problem),
        (Some(Column::Count), RowProblem::DuplicateColumn)
    );

    // However wide the header, at most MAX_ERRORS problems, the missing columns among them
    // (found by fuzzing: a header of 110 unknown names gave 112 errors).
    let wide = format!("{}\nx\n", "colour,".repeat(300));
    let err = parse_csv(&wide).unwrap_err();
    assert_eq!(err.errors().len(), bulk::MAX_ERRORS);
    let tail: Vec<(Option<Column>, RowProblem)> = err.errors()[bulk::MAX_ERRORS - 2..]
        .iter()
        .map(|e| (e.column, e.problem.clone()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (Some(Column::Group), RowProblem::MissingColumn),
            (Some(Column::Count), RowProblem::MissingColumn),
        ]
    );
    let huge_header = format!("group,count{}\ng,1\n", ",dup".repeat(MB / 4));
    assert_eq!(
        parse_csv(&huge_header).unwrap_err().errors().len(),
        bulk::MAX_ERRORS
    );

    // Rows with missing or extra fields.
    let err = parse_csv("group,count\ng\ng,1,extra\ng,1\n").unwrap_err();
    let problems: Vec<(usize, RowProblem)> = err
        .errors()
        .iter()
        .map(|e| (e.line, e.problem.clone()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (
                2,
                RowProblem::FieldCount {
                    expected: 2,
                    found: 1
                }
            ),
            (
                3,
                RowProblem::FieldCount {
                    expected: 2,
                    found: 3
                }
            ),
        ]
    );
}

#[test]
fn bulk_csv_refuses_bad_values_naming_line_and_column() {
    let header = "group,count,limit,not_before,expires,policies,metadata,description\n";
    let rows = [
        (",1,,,,,,", Column::Group, RowProblem::Required),
        (
            "a//b,1,,,,,,",
            Column::Group,
            RowProblem::Name(GroupId::new("a//b").unwrap_err()),
        ),
        ("g,,,,,,,", Column::Count, RowProblem::Required),
        ("g,many,,,,,,", Column::Count, RowProblem::Count),
        ("g,0,,,,,,", Column::Count, RowProblem::Count),
        ("g,10001,,,,,,", Column::Count, RowProblem::Count),
        ("g,+5,,,,,,", Column::Count, RowProblem::Count),
        ("g,1,0,,,,,", Column::Limit, RowProblem::Limit(LimitError)),
        (
            "g,1,,yesterday,,,,",
            Column::NotBefore,
            RowProblem::Time(TimeError),
        ),
        (
            "g,1,,,soon,,,",
            Column::Expires,
            RowProblem::Expiry(ExpiryError::Invalid(DurationError::Syntax)),
        ),
        (
            "g,1,,,12h1d,,,",
            Column::Expires,
            RowProblem::Expiry(ExpiryError::Invalid(DurationError::UnitOrder)),
        ),
        (
            "g,1,,,2029-01-01T00:00:00Z,,,",
            Column::Expires,
            RowProblem::Spec(SpecError::ExpiresBeforeIssue {
                expires_at: Utc.with_ymd_and_hms(2029, 1, 1, 0, 0, 0).unwrap(),
                issued_at: t0(),
            }),
        ),
        (
            "g,1,,2031-01-01T00:00:00Z,2030-06-01T00:00:00Z,,,",
            Column::NotBefore,
            RowProblem::Spec(SpecError::EmptyWindow {
                not_before: Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap(),
                expires_at: Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap(),
            }),
        ),
        (
            "g,1,,,,a;a,,",
            Column::Policies,
            RowProblem::Spec(SpecError::DuplicatePolicy(PolicyId::new("a").unwrap())),
        ),
        (
            "g,1,,,,a b,,",
            Column::Policies,
            RowProblem::Name(PolicyId::new("a b").unwrap_err()),
        ),
        (
            "g,1,,,,,k,",
            Column::Metadata,
            RowProblem::Metadata(MetadataError::MissingEquals),
        ),
    ];
    for (row, column, problem) in rows {
        let e = one_error(&format!("{header}{row}\n"));
        assert_eq!(e.line, 2, "{row}");
        assert_eq!(e.column, Some(column), "{row}");
        assert_eq!(e.problem, problem, "{row}");
        assert!(e.to_string().starts_with("line 2, column `"), "{e}");
    }
    // Oversized metadata and description.
    let e = one_error(&format!("{header}g,1,,,,,k={},\n", "v".repeat(5000)));
    assert_eq!(e.column, Some(Column::Metadata));
    assert!(matches!(
        e.problem,
        RowProblem::Metadata(MetadataError::Spec(SpecError::MetadataTooLarge { .. }))
    ));
    let e = one_error(&format!("{header}g,1,,,,,,{}\n", "d".repeat(2000)));
    assert_eq!(e.column, Some(Column::Description));
    // Every problem of a row is reported, not just the first.
    let err = parse_csv(&format!("{header},0,0,x,y,a b,k,\n")).unwrap_err();
    assert_eq!(err.errors().len(), 7, "{err}");
}

#[test]
fn bulk_csv_refuses_bad_syntax_sizes_and_invalid_utf8() {
    assert_eq!(
        one_error("group,count\n\"g,1\n").problem,
        RowProblem::Csv(CsvProblem::UnterminatedQuote)
    );
    assert_eq!(
        one_error("group,count\n\"g\"x,1\n").problem,
        RowProblem::Csv(CsvProblem::AfterQuote)
    );
    let big = format!(
        "group,count\n{}",
        "g,1\n".repeat(bulk::MAX_SPEC_BYTES / 4 + 1)
    );
    assert!(matches!(
        one_error(&big).problem,
        RowProblem::TooLarge { .. }
    ));
    let many = format!("group,count\n{}", "g,10000\n".repeat(11));
    let e = one_error(&many);
    assert_eq!(
        (e.line, e.problem),
        (
            12,
            RowProblem::TooManyTokens {
                max: bulk::MAX_TOKENS
            }
        )
    );
    let bad_rows = format!("group,count\n{}", "g,0\n".repeat(500));
    assert_eq!(
        parse_csv(&bad_rows).unwrap_err().errors().len(),
        bulk::MAX_ERRORS
    );
    // Invalid UTF-8, read lossily: a group with U+FFFD is a bad name, not a panic.
    let bytes = b"group,count\ng\xff\xfe,1\n";
    let text = String::from_utf8_lossy(bytes);
    let e = one_error(&text);
    assert_eq!(e.column, Some(Column::Group));
    assert!(matches!(e.problem, RowProblem::Name(_)));
    // A byte-order mark is skipped, but not a second one.
    assert!(parse_csv("\u{feff}group,count\ng,1\n").is_ok());
    assert!(parse_csv("\u{feff}\u{feff}group,count\ng,1\n").is_err());
}

#[tokio::test]
async fn a_batch_with_one_bad_spec_writes_nothing() {
    let (service, _) = service_with_token().await;
    let before = snapshot(&service).await;
    let good = spec();
    let bad = [
        spec().with_expiry(ExpirySpec::At(t0() - TimeDelta::days(1))),
        spec().with_description("d".repeat(MB)),
        spec().with_policies((0..65).map(|i| PolicyId::new(format!("p{i}")).unwrap())),
        spec()
            .with_not_before(t0() + TimeDelta::days(2))
            .with_expiry(ExpirySpec::At(t0() + TimeDelta::days(1))),
        spec().with_expiry(ExpirySpec::After(TimeDelta::zero())),
    ];
    for b in bad {
        let err = service
            .issue_batch(vec![good.clone(), good.clone(), b.clone()])
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::Spec(_)), "{err:?}");
        assert!(err.to_string().len() < 300);
        assert!(service.issue(b).await.is_err());
    }
    assert!(matches!(
        service.issue_batch(Vec::new()).await.unwrap_err(),
        AdminError::Spec(SpecError::EmptyBatch)
    ));
    // Revocations with bad input write nothing either.
    let id = *before.keys().next().unwrap();
    assert!(
        service
            .revoke(&RevokeTarget::Token(id), &"r".repeat(MB))
            .await
            .is_err()
    );
    let unknown = TokenId::from_bytes([0; 16]);
    assert!(matches!(
        service
            .revoke(&RevokeTarget::Token(unknown), "r")
            .await
            .unwrap_err(),
        AdminError::Store(StoreError::NotFound(_))
    ));
    assert_eq!(snapshot(&service).await, before);
}
