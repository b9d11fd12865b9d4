//! Bulk issuance: the CSV specification (values and row/column errors), the shared small
//! grammars (durations, expiries, limits), the manifest, and the printable sheet.

#[path = "../support/mod.rs"]
mod support;

use chrono::{TimeDelta, TimeZone, Utc};
use onboarding_token::bulk::*;
use onboarding_token::*;
use proptest::prelude::*;
use serde_json::Value;
// Specifications are parsed for acme, as of March 2026.
use support::fixture::{acme as org, t0_2026 as now};

fn parse(csv: &str) -> Result<BulkSpec, BulkSpecError> {
    BulkSpec::parse(csv, &org(), now())
}

/// The (line, column, problem) of each error.
fn errors(csv: &str) -> Vec<(usize, Option<Column>, RowProblem)> {
    parse(csv)
        .unwrap_err()
        .errors()
        .iter()
        .map(|e| (e.line, e.column, e.problem.clone()))
        .collect()
}

const FULL: &str = "\u{feff}Group,Policies,Count,Limit,Not-Before,Expires,Description,Metadata\r\n\
emea/berlin, wifi-corp ; vpn ,25,10,2026-03-02T08:00:00+01:00,7d,\"Berlin laptops, Q3\",site=berlin;cc=4711\r\n\
# a comment line\r\n\
,,,,,,,\r\n\
amer/nyc,,1,,,,,\r\n\
apac/tokyo,kiosk,2,unlimited,,never,\"He said \"\"hi\"\"\nsecond line\",\r\n\
emea/paris,,3,once,,2026-04-01T00:00:00Z,,\r\n";

/// A batch of two tokens whose descriptions need escaping (HTML, CSV formulas).
async fn issue_sample() -> IssuedBatch {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let service = Onboarding::new(
        Keyring::new(SigningKey::generate(&mut rng)),
        MemoryStore::new(),
    )
    .with_clock(ManualClock::new(now()));
    let org = org();
    let specs = vec![
        TokenSpec::new(org.clone(), GroupId::new("emea/berlin").unwrap())
            .with_policies([
                PolicyId::new("wifi").unwrap(),
                PolicyId::new("vpn").unwrap(),
            ])
            .with_usage_limit(UsageLimit::limited(5).unwrap())
            .with_description("<script>alert('x')</script> & \"quotes\", commas"),
        TokenSpec::new(org.clone(), GroupId::new("-dash").unwrap())
            .with_usage_limit(UsageLimit::Unlimited)
            .with_not_before(now() + TimeDelta::hours(1))
            .with_expiry(ExpirySpec::Never)
            .with_description("=HYPERLINK(\"http://evil\")"),
    ];
    service.issue_batch(specs).await.unwrap()
}

mod manifest;
#[cfg(feature = "qr")]
mod sheet;
mod spec;
