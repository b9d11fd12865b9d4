//! Durations, times, expiries, limits.

use super::*;

#[test]
fn durations_refuse_with_typed_errors() {
    use DurationError::*;
    let cases: Vec<(String, DurationError)> = vec![
        (String::new(), Empty),
        (" ".into(), Syntax),
        ("7".into(), Syntax),
        ("d".into(), Syntax),
        ("7x".into(), Syntax),
        ("-7d".into(), Syntax),
        ("+7d".into(), Syntax),
        ("7d ".into(), Syntax),
        (" 7d".into(), Syntax),
        ("1.5h".into(), Syntax),
        ("７d".into(), Syntax),
        ("7dd".into(), Syntax),
        ("7 d".into(), Syntax),
        ("7é".into(), Syntax),
        ("12h1d".into(), UnitOrder),
        ("1d1d".into(), UnitOrder),
        ("1m1h".into(), UnitOrder),
        ("0d".into(), Zero),
        ("0d0h0m".into(), Zero),
        ("0000s".into(), Zero),
        ("9999999999999999999d".into(), Overflow),
        ("999999999999999999w".into(), Overflow),
        ("9223372036854776s".into(), Overflow),
        (format!("{}d", "1".repeat(MB)), Overflow),
        ("1".repeat(MB), Overflow),
    ];
    for (input, expected) in cases {
        let err = bulk::parse_duration(&input).unwrap_err();
        assert_eq!(err, expected, "{:?}", &input[..input.len().min(30)]);
        assert!(err.to_string().len() < 200);
    }
    assert_eq!(bulk::parse_duration("1W2D"), Ok(TimeDelta::days(9)));
}

#[test]
fn times_and_expiries_refuse_with_typed_errors() {
    for input in [
        String::new(),
        " ".into(),
        "2030-01-01".into(),
        "2030-01-01T00:00:00".into(),
        "2030-13-01T00:00:00Z".into(),
        "2030-02-30T00:00:00Z".into(),
        "2030-01-01T25:00:00Z".into(),
        "2030-01-01T00:00:00+25:00".into(),
        "30-01-01T00:00:00Z".into(),
        "yesterday".into(),
        "1767225600".into(),
        " 2030-01-01T00:00:00Z".into(),
        huge(),
    ] {
        assert_eq!(
            bulk::parse_time(&input),
            Err(TimeError),
            "{:?}",
            &input[..input.len().min(30)]
        );
    }
    assert!(bulk::parse_time("2030-01-01t00:00:00z").is_ok());
    for (input, expected) in [
        ("", DurationError::Empty),
        ("soon", DurationError::Syntax),
        ("never ", DurationError::Syntax),
        ("0d", DurationError::Zero),
        ("-1d", DurationError::Syntax),
        ("2030-01-01", DurationError::Syntax),
    ] {
        assert_eq!(
            bulk::parse_expiry(input),
            Err(ExpiryError::Invalid(expected)),
            "{input:?}"
        );
    }
    assert_eq!(bulk::parse_expiry("NEVER"), Ok(ExpirySpec::Never));
}

#[test]
fn usage_limits_refuse_with_a_typed_error() {
    for input in [
        String::new(),
        " ".into(),
        "0".into(),
        "00".into(),
        "-1".into(),
        "+5".into(),
        " 5".into(),
        "5 ".into(),
        "1.5".into(),
        "4294967296".into(),
        "five".into(),
        "unlimited!".into(),
        "５".into(),
        huge(),
    ] {
        assert_eq!(bulk::parse_usage_limit(&input), Err(LimitError));
    }
    assert_eq!(
        bulk::parse_usage_limit("4294967295").unwrap().max_uses(),
        Some(u32::MAX)
    );
    assert_eq!(bulk::parse_usage_limit("ONCE"), Ok(UsageLimit::Once));
}
