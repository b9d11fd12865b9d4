//! The `bulk_csv` fuzz target's checks.

use super::*;

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
