//! Bulk issuance: a CSV specification (one row per department or location) parsed into
//! [`TokenSpec`](crate::token::TokenSpec)s, the manifest of what was issued (CSV and JSON),
//! and a printable HTML sheet of QR cards (feature `qr`).
//!
//! Also the small grammars a CLI or a server shares with the CSV: [`parse_duration`]
//! (`90m`, `36h`, `7d`, `2w`, `1d12h`), [`parse_expiry`], [`parse_usage_limit`],
//! [`parse_time`], [`parse_metadata`], [`parse_policies`].
//!
//! # The CSV specification
//!
//! The first record is a header naming the columns, in any order (case-insensitive; `-` or
//! a space may stand for `_`). `group` and `count` are required; the others may be left
//! out of the header or left empty in a row.
//!
//! | column | value | empty or absent |
//! |---|---|---|
//! | `group` | a [`GroupId`](crate::policy::GroupId) such as `emea/berlin` | required |
//! | `policies` | [`PolicyId`](crate::policy::PolicyId)s separated by `;` | no policies |
//! | `count` | tokens to issue for the row, 1 to [`MAX_COUNT_PER_ROW`] | required |
//! | `limit` | devices per token: a number, `once` or `unlimited` | once |
//! | `not_before` | RFC 3339 time the window opens | at issue |
//! | `expires` | RFC 3339 time, a duration after the window opens ([`parse_duration`]), or `never` | [`Validity::DEFAULT_TTL`](crate::Validity::DEFAULT_TTL) |
//! | `description` | free text | none |
//! | `metadata` | `key=value` pairs separated by `;` (a value may hold `=`, not `;`) | none |
//!
//! Fields follow RFC 4180: separated by commas, quoted with `"` when they hold a comma, a
//! quote (doubled) or a line break. A UTF-8 byte-order mark is skipped, blank lines and
//! lines starting with `#` are ignored. Every problem is reported with its line and column,
//! all at once (up to [`MAX_ERRORS`]).
//!
//! ```
//! use onboarding_token::bulk::BulkSpec;
//! use onboarding_token::{OrgId, UsageLimit};
//! let csv = "group,policies,count,limit,expires,description\n\
//!            emea/berlin,wifi-corp;vpn,25,1,7d,Berlin laptops\n\
//!            amer/nyc,,3,unlimited,never,\"Kiosks, lobby\"\n";
//! let now = chrono::Utc::now();
//! let spec = BulkSpec::parse(csv, &OrgId::new("acme")?, now)?;
//! assert_eq!(spec.total_tokens(), 28);
//! assert_eq!(spec.rows()[1].spec.usage_limit(), UsageLimit::Unlimited);
//!
//! let err = BulkSpec::parse("group,count\nemea,many\n", &OrgId::new("acme")?, now).unwrap_err();
//! assert_eq!(err.to_string(), "bulk spec has 1 error: line 2, column `count`: \
//!     not a whole number from 1 to 10000");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Secrets
//!
//! The manifest ([`Manifest::to_csv`], [`Manifest::to_json`]) and the sheet
//! (`render_sheet`, feature `qr`) contain every token string: they are credentials, returned as
//! [`SecretText`](crate::payload::SecretText). Write them with restrictive permissions, hand
//! them over like passwords, and destroy printed sheets once the devices are enrolled.

mod csv;
mod grammar;
mod manifest;
#[cfg(feature = "qr")]
mod sheet;
mod spec;

pub use csv::CsvProblem;
pub use grammar::{
    DurationError, ExpiryError, LimitError, MetadataError, TimeError, parse_duration, parse_expiry,
    parse_metadata, parse_policies, parse_time, parse_usage_limit,
};
pub use manifest::{Manifest, ManifestEntry, QrFileFormat};
#[cfg(feature = "qr")]
pub use sheet::{Paper, SheetError, SheetOptions, render_sheet};
pub use spec::{
    BulkSpec, BulkSpecError, Column, MAX_COUNT_PER_ROW, MAX_ERRORS, MAX_SPEC_BYTES, MAX_TOKENS,
    RowError, RowProblem, SpecRow,
};
