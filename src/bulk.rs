//! Bulk issuance: a CSV specification (one row per department or location) parsed into
//! [`TokenSpec`]s, the manifest of what was issued (CSV and JSON), and a printable HTML
//! sheet of QR cards (feature `qr`).
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
//! | `group` | a [`GroupId`] such as `emea/berlin` | required |
//! | `policies` | [`PolicyId`]s separated by `;` | no policies |
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
//! [`SecretText`]. Write them with restrictive permissions, hand them over like passwords,
//! and destroy printed sheets once the devices are enrolled.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::name::{InvalidName, OrgId};
use crate::payload::SecretText;
use crate::policy::{GroupId, PolicyId};
use crate::service::Issued;
use crate::token::{
    BatchId, Expiry, ExpirySpec, Metadata, SpecError, TokenId, TokenSpec, UsageLimit, Validity,
};

/// The most tokens one CSV row may ask for.
pub const MAX_COUNT_PER_ROW: u32 = 10_000;
/// The most tokens one CSV specification may ask for in all.
pub const MAX_TOKENS: u64 = 100_000;
/// The largest CSV specification read, in bytes (4 MiB).
pub const MAX_SPEC_BYTES: usize = 4 * 1024 * 1024;
/// The most errors reported for one specification.
pub const MAX_ERRORS: usize = 100;

// ---------------------------------------------------------------------------------------
// Small grammars

/// A duration could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was given.
    #[error("duration is empty")]
    Empty,
    /// Not a sequence of number-unit pairs (`7d`, `1d12h`).
    #[error("duration must be numbers with units w, d, h, m or s, such as 90m, 36h, 7d or 1d12h")]
    Syntax,
    /// A unit came twice or out of order (`12h1d`).
    #[error("duration units must each appear once, largest first (1d12h, not 12h1d)")]
    UnitOrder,
    /// The duration is zero.
    #[error("duration must be positive")]
    Zero,
    /// The duration is too large.
    #[error("duration is too large")]
    Overflow,
}

/// Parses a duration: one or more `<number><unit>` pairs, units `w` (weeks), `d`, `h`,
/// `m` (minutes), `s`, each at most once and largest first. Case-insensitive, no spaces.
///
/// ```
/// use chrono::TimeDelta;
/// use onboarding_token::bulk::{parse_duration, DurationError};
/// assert_eq!(parse_duration("90m"), Ok(TimeDelta::minutes(90)));
/// assert_eq!(parse_duration("36h"), Ok(TimeDelta::hours(36)));
/// assert_eq!(parse_duration("7d"), Ok(TimeDelta::days(7)));
/// assert_eq!(parse_duration("2w"), Ok(TimeDelta::weeks(2)));
/// assert_eq!(parse_duration("1d12h"), Ok(TimeDelta::hours(36)));
/// assert_eq!(parse_duration("0d"), Err(DurationError::Zero));
/// assert_eq!(parse_duration("7"), Err(DurationError::Syntax));
/// ```
pub fn parse_duration(input: &str) -> Result<TimeDelta, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    const UNITS: [(char, i64); 5] = [
        ('w', 7 * 86_400),
        ('d', 86_400),
        ('h', 3_600),
        ('m', 60),
        ('s', 1),
    ];
    let mut total: i64 = 0;
    let mut last_unit = None::<usize>;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 18 {
            return Err(if digits > 18 {
                DurationError::Overflow
            } else {
                DurationError::Syntax
            });
        }
        let number: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        let unit = rest[digits..]
            .chars()
            .next()
            .map(|c| c.to_ascii_lowercase())
            .ok_or(DurationError::Syntax)?;
        let index = UNITS
            .iter()
            .position(|&(u, _)| u == unit)
            .ok_or(DurationError::Syntax)?;
        if last_unit.is_some_and(|last| index <= last) {
            return Err(DurationError::UnitOrder);
        }
        last_unit = Some(index);
        total = number
            .checked_mul(UNITS[index].1)
            .and_then(|s| total.checked_add(s))
            .ok_or(DurationError::Overflow)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err(DurationError::Zero);
    }
    TimeDelta::try_seconds(total).ok_or(DurationError::Overflow)
}

/// An expiry could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiryError {
    /// Neither an RFC 3339 time, nor `never`, nor a valid duration.
    #[error("expected an RFC 3339 time, a duration such as 7d, 36h or 90m, or `never`: {0}")]
    Invalid(#[source] DurationError),
}

/// Parses an expiry: `never`, an RFC 3339 time, or a duration after the window opens
/// ([`parse_duration`]).
///
/// ```
/// use onboarding_token::bulk::parse_expiry;
/// use onboarding_token::ExpirySpec;
/// assert_eq!(parse_expiry("never"), Ok(ExpirySpec::Never));
/// assert_eq!(parse_expiry("7d"), Ok(ExpirySpec::After(chrono::TimeDelta::days(7))));
/// assert!(matches!(parse_expiry("2030-01-01T00:00:00Z"), Ok(ExpirySpec::At(_))));
/// assert!(parse_expiry("soon").is_err());
/// ```
pub fn parse_expiry(input: &str) -> Result<ExpirySpec, ExpiryError> {
    if input.eq_ignore_ascii_case("never") {
        return Ok(ExpirySpec::Never);
    }
    if let Ok(at) = parse_time(input) {
        return Ok(ExpirySpec::At(at));
    }
    parse_duration(input)
        .map(ExpirySpec::After)
        .map_err(ExpiryError::Invalid)
}

/// A time was not RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 time such as 2030-01-31T09:00:00Z or 2030-01-31T09:00:00+01:00")]
pub struct TimeError;

/// Parses an RFC 3339 time (with `Z` or an offset) into UTC.
pub fn parse_time(input: &str) -> Result<DateTime<Utc>, TimeError> {
    DateTime::parse_from_rfc3339(input)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| TimeError)
}

/// A usage limit was not a positive number, `once` or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number from 1 to 4294967295, `once` or `unlimited`")]
pub struct LimitError;

/// Parses a usage limit: a number of devices (1 or more), `once` or `unlimited`.
///
/// ```
/// use onboarding_token::bulk::parse_usage_limit;
/// use onboarding_token::UsageLimit;
/// assert_eq!(parse_usage_limit("25"), Ok(UsageLimit::limited(25).unwrap()));
/// assert_eq!(parse_usage_limit("unlimited"), Ok(UsageLimit::Unlimited));
/// assert!(parse_usage_limit("0").is_err());
/// ```
pub fn parse_usage_limit(input: &str) -> Result<UsageLimit, LimitError> {
    if input.eq_ignore_ascii_case("unlimited") {
        return Ok(UsageLimit::Unlimited);
    }
    if input.eq_ignore_ascii_case("once") {
        return Ok(UsageLimit::Once);
    }
    if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LimitError);
    }
    input
        .parse::<u32>()
        .ok()
        .and_then(UsageLimit::limited)
        .ok_or(LimitError)
}

/// Metadata text was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A pair has no `=`.
    #[error("metadata pairs must be key=value, separated by `;`")]
    MissingEquals,
    /// A key is empty.
    #[error("metadata keys must not be empty")]
    EmptyKey,
    /// A key came twice.
    #[error("metadata key `{0}` is given twice")]
    DuplicateKey(String),
    /// The metadata breaks a record rule (too large).
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Parses `key=value;key=value` (pieces trimmed, empty pieces skipped; a value may hold
/// `=` but not `;`).
///
/// ```
/// use onboarding_token::bulk::parse_metadata;
/// let meta = parse_metadata("site=berlin; cost_centre=4711;")?;
/// assert_eq!(meta.get("cost_centre"), Some("4711"));
/// # Ok::<(), onboarding_token::bulk::MetadataError>(())
/// ```
pub fn parse_metadata(input: &str) -> Result<Metadata, MetadataError> {
    let mut map = BTreeMap::new();
    for piece in input.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').ok_or(MetadataError::MissingEquals)?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(MetadataError::EmptyKey);
        }
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(MetadataError::DuplicateKey(key.chars().take(64).collect()));
        }
    }
    Ok(Metadata::from_map(map)?)
}

/// Parses policy ids separated by `;` (pieces trimmed, empty pieces skipped).
pub fn parse_policies(input: &str) -> Result<Vec<PolicyId>, InvalidName> {
    input
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PolicyId::new)
        .collect()
}

// ---------------------------------------------------------------------------------------
// CSV

/// One CSV record: its fields and the line it starts on.
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// A CSV syntax problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvProblem {
    /// A quoted field is not closed.
    #[error("quoted field is not closed")]
    UnterminatedQuote,
    /// Something other than a comma or a line break follows a closing quote.
    #[error("unexpected character after a closing quote")]
    AfterQuote,
}

/// Reads RFC 4180 CSV. Skips a BOM, blank lines and `#` comment lines.
fn read_csv(text: &str) -> Result<Vec<Record>, (usize, CsvProblem)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let start_line = line;
        // Blank and comment lines.
        if chars[i] == '\n' || chars[i] == '\r' {
            if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
                i += 1;
            }
            i += 1;
            line += 1;
            continue;
        }
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            continue;
        }
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                let quote_line = line;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err((quote_line, CsvProblem::UnterminatedQuote)),
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            if c == '\n' || (c == '\r' && chars.get(i + 1) != Some(&'\n')) {
                                line += 1;
                            }
                            field.push(c);
                            i += 1;
                        }
                    }
                }
                if !matches!(chars.get(i), None | Some(',' | '\n' | '\r')) {
                    return Err((line, CsvProblem::AfterQuote));
                }
            } else {
                while let Some(&c) = chars.get(i) {
                    if c == ',' || c == '\n' || c == '\r' {
                        break;
                    }
                    field.push(c);
                    i += 1;
                }
            }
            fields.push(field);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('\r') => {
                    i += if chars.get(i + 1) == Some(&'\n') {
                        2
                    } else {
                        1
                    };
                    line += 1;
                    break;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        // Rows of empty cells (spreadsheets export them as `,,,`) count as blank lines.
        if fields.iter().any(|f| !f.trim().is_empty()) {
            records.push(Record {
                line: start_line,
                fields,
            });
        }
    }
    Ok(records)
}

/// Quotes a field when needed; with `text`, defuses spreadsheet formulas (a leading `=`,
/// `+`, `-`, `@`, tab or carriage return gets a `'`).
fn csv_field(out: &mut String, value: &str, text: bool) {
    let defuse = text && value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = defuse
        || value.contains([',', '"', '\n', '\r'])
        || value.starts_with(' ')
        || value.ends_with(' ');
    if quote {
        out.push('"');
    }
    if defuse {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

// ---------------------------------------------------------------------------------------
// The specification

/// A column of the CSV specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Column {
    /// `group`
    Group,
    /// `policies`
    Policies,
    /// `count`
    Count,
    /// `limit`
    Limit,
    /// `not_before`
    NotBefore,
    /// `expires`
    Expires,
    /// `description`
    Description,
    /// `metadata`
    Metadata,
}

impl Column {
    /// Every column, in the documented order.
    pub const ALL: [Column; 8] = [
        Self::Group,
        Self::Policies,
        Self::Count,
        Self::Limit,
        Self::NotBefore,
        Self::Expires,
        Self::Description,
        Self::Metadata,
    ];

    /// The header name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Policies => "policies",
            Self::Count => "count",
            Self::Limit => "limit",
            Self::NotBefore => "not_before",
            Self::Expires => "expires",
            Self::Description => "description",
            Self::Metadata => "metadata",
        }
    }

    fn required(&self) -> bool {
        matches!(self, Self::Group | Self::Count)
    }

    fn from_header(name: &str) -> Option<Self> {
        let normalized: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Self::ALL.into_iter().find(|c| c.as_str() == normalized)
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong at one place of a CSV specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowProblem {
    /// The input is larger than [`MAX_SPEC_BYTES`].
    #[error("specification is {len} bytes; at most {max} are read")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// CSV syntax.
    #[error(transparent)]
    Csv(#[from] CsvProblem),
    /// There is no header.
    #[error(
        "specification is empty; expected a header such as `group,policies,count,limit,not_before,expires,description,metadata`"
    )]
    NoHeader,
    /// There is a header but no rows.
    #[error("specification has a header but no rows")]
    NoRows,
    /// The header names a column this format does not have.
    #[error(
        "unknown column `{name}`; expected group, policies, count, limit, not_before, expires, description, metadata"
    )]
    UnknownColumn {
        /// The header cell (at most 64 characters of it).
        name: String,
    },
    /// The header names a column twice.
    #[error("column is named twice in the header")]
    DuplicateColumn,
    /// A required column is missing from the header.
    #[error("required column is missing from the header")]
    MissingColumn,
    /// A row has more or fewer fields than the header.
    #[error("row has {found} fields; the header has {expected}")]
    FieldCount {
        /// The header's fields.
        expected: usize,
        /// The row's fields.
        found: usize,
    },
    /// A required value is empty.
    #[error("value is required")]
    Required,
    /// The count is not a number in range.
    #[error("not a whole number from 1 to {MAX_COUNT_PER_ROW}")]
    Count,
    /// The limit is invalid.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The time is not RFC 3339.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// The expiry is invalid.
    #[error(transparent)]
    Expiry(#[from] ExpiryError),
    /// A group or policy name is invalid.
    #[error(transparent)]
    Name(#[from] InvalidName),
    /// The metadata is invalid.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The row's token breaks a record rule (empty window, expiry in the past, ...).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The rows ask for more than [`MAX_TOKENS`] tokens in all.
    #[error("the specification asks for more than {max} tokens")]
    TooManyTokens {
        /// The bound.
        max: u64,
    },
}

/// One problem in a CSV specification, with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RowError {
    /// 1-based line where the record starts.
    pub line: usize,
    /// The column, when the problem is in one value.
    pub column: Option<Column>,
    /// What is wrong.
    pub problem: RowProblem,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column `{}`: {}", self.line, c, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// A CSV specification was rejected; holds every problem found (up to [`MAX_ERRORS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSpecError {
    errors: Vec<RowError>,
}

impl BulkSpecError {
    /// The problems, in input order.
    pub fn errors(&self) -> &[RowError] {
        &self.errors
    }
}

impl fmt::Display for BulkSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "bulk spec has {n} error{}",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, e) in self.errors.iter().take(5).enumerate() {
            write!(f, "{}{e}", if i == 0 { ": " } else { "; " })?;
        }
        if n > 5 {
            write!(f, "; and {} more", n - 5)?;
        }
        Ok(())
    }
}

impl std::error::Error for BulkSpecError {}

/// One row of a specification: `count` tokens from `spec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRow {
    /// 1-based line the row starts on.
    pub line: usize,
    /// How many tokens to issue.
    pub count: u32,
    /// What each token is.
    pub spec: TokenSpec,
}

/// A parsed CSV specification. See the [module docs](self) for the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSpec {
    rows: Vec<SpecRow>,
}

impl BulkSpec {
    /// Parses and checks a specification for tokens in `organization`, as they would be
    /// issued at `now` (so an expiry in the past is reported here, by row, before anything
    /// is issued).
    pub fn parse(
        text: &str,
        organization: &OrgId,
        now: DateTime<Utc>,
    ) -> Result<Self, BulkSpecError> {
        let fail = |line, column, problem| BulkSpecError {
            errors: vec![RowError {
                line,
                column,
                problem,
            }],
        };
        if text.len() > MAX_SPEC_BYTES {
            return Err(fail(
                1,
                None,
                RowProblem::TooLarge {
                    len: text.len(),
                    max: MAX_SPEC_BYTES,
                },
            ));
        }
        let records = read_csv(text).map_err(|(line, p)| fail(line, None, p.into()))?;
        let Some((header, rows)) = records.split_first() else {
            return Err(fail(1, None, RowProblem::NoHeader));
        };
        let columns = parse_header(header)?;
        if rows.is_empty() {
            return Err(fail(header.line, None, RowProblem::NoRows));
        }
        let mut errors = Vec::new();
        let mut out = Vec::new();
        let mut total: u64 = 0;
        for record in rows {
            match parse_row(record, &columns, organization, now) {
                Ok(row) => {
                    total += u64::from(row.count);
                    if total > MAX_TOKENS {
                        errors.push(RowError {
                            line: record.line,
                            column: Some(Column::Count),
                            problem: RowProblem::TooManyTokens { max: MAX_TOKENS },
                        });
                        break;
                    }
                    out.push(row);
                }
                Err(mut row_errors) => errors.append(&mut row_errors),
            }
            if errors.len() >= MAX_ERRORS {
                errors.truncate(MAX_ERRORS);
                break;
            }
        }
        if errors.is_empty() {
            Ok(Self { rows: out })
        } else {
            Err(BulkSpecError { errors })
        }
    }

    /// The rows, in input order.
    pub fn rows(&self) -> &[SpecRow] {
        &self.rows
    }

    /// How many tokens the rows ask for.
    pub fn total_tokens(&self) -> u64 {
        self.rows.iter().map(|r| u64::from(r.count)).sum()
    }

    /// One [`TokenSpec`] per token, rows in order, each repeated `count` times: the input of
    /// [`Onboarding::issue_batch`](crate::Onboarding::issue_batch).
    pub fn to_specs(&self) -> Vec<TokenSpec> {
        self.rows
            .iter()
            .flat_map(|r| std::iter::repeat_n(r.spec.clone(), r.count as usize))
            .collect()
    }
}

fn parse_header(header: &Record) -> Result<Vec<Column>, BulkSpecError> {
    let mut errors = Vec::new();
    let mut columns = Vec::new();
    for name in &header.fields {
        // At most MAX_ERRORS problems are kept, however wide the header.
        let full = errors.len() >= MAX_ERRORS;
        match Column::from_header(name) {
            Some(c) if columns.contains(&c) => {
                if !full {
                    errors.push(RowError {
                        line: header.line,
                        column: Some(c),
                        problem: RowProblem::DuplicateColumn,
                    });
                }
            }
            Some(c) => columns.push(c),
            None if full => {}
            None => errors.push(RowError {
                line: header.line,
                column: None,
                problem: RowProblem::UnknownColumn {
                    name: name.trim().chars().take(64).collect(),
                },
            }),
        }
    }
    let missing: Vec<RowError> = Column::ALL
        .into_iter()
        .filter(|c| c.required() && !columns.contains(c))
        .map(|c| RowError {
            line: header.line,
            column: Some(c),
            problem: RowProblem::MissingColumn,
        })
        .collect();
    // A missing required column is always reported.
    errors.truncate(MAX_ERRORS - missing.len());
    errors.extend(missing);
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(BulkSpecError { errors })
    }
}

fn parse_row(
    record: &Record,
    columns: &[Column],
    organization: &OrgId,
    now: DateTime<Utc>,
) -> Result<SpecRow, Vec<RowError>> {
    let line = record.line;
    if record.fields.len() != columns.len() {
        return Err(vec![RowError {
            line,
            column: None,
            problem: RowProblem::FieldCount {
                expected: columns.len(),
                found: record.fields.len(),
            },
        }]);
    }
    let mut errors = Vec::new();
    let mut err = |column, problem: RowProblem| {
        errors.push(RowError {
            line,
            column: Some(column),
            problem,
        })
    };
    let value = |c: Column| {
        columns
            .iter()
            .position(|&x| x == c)
            .map_or("", |i| record.fields[i].trim())
    };

    let group = match value(Column::Group) {
        "" => {
            err(Column::Group, RowProblem::Required);
            None
        }
        g => GroupId::new(g)
            .map_err(|e| err(Column::Group, e.into()))
            .ok(),
    };
    let count = match value(Column::Count) {
        "" => {
            err(Column::Count, RowProblem::Required);
            None
        }
        c => match c.parse::<u32>() {
            Ok(n)
                if (1..=MAX_COUNT_PER_ROW).contains(&n)
                    && c.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(n)
            }
            _ => {
                err(Column::Count, RowProblem::Count);
                None
            }
        },
    };
    let policies = parse_policies(value(Column::Policies))
        .map_err(|e| err(Column::Policies, e.into()))
        .ok();
    let limit = match value(Column::Limit) {
        "" => Some(UsageLimit::Once),
        l => parse_usage_limit(l)
            .map_err(|e| err(Column::Limit, e.into()))
            .ok(),
    };
    let not_before = match value(Column::NotBefore) {
        "" => Some(None),
        t => parse_time(t)
            .map(Some)
            .map_err(|e| err(Column::NotBefore, e.into()))
            .ok(),
    };
    let expiry = match value(Column::Expires) {
        "" => Some(ExpirySpec::Default),
        e => parse_expiry(e)
            .map_err(|e| err(Column::Expires, e.into()))
            .ok(),
    };
    let metadata = parse_metadata(value(Column::Metadata))
        .map_err(|e| err(Column::Metadata, e.into()))
        .ok();
    let description = value(Column::Description);

    let (
        Some(group),
        Some(count),
        Some(policies),
        Some(limit),
        Some(not_before),
        Some(expiry),
        Some(metadata),
    ) = (group, count, policies, limit, not_before, expiry, metadata)
    else {
        return Err(errors);
    };
    let mut spec = TokenSpec::new(organization.clone(), group)
        .with_policies(policies)
        .with_usage_limit(limit)
        .with_expiry(expiry)
        .with_description(description)
        .with_metadata(metadata);
    if let Some(nb) = not_before {
        spec = spec.with_not_before(nb);
    }
    if let Err(e) = spec.validate(now) {
        let column = match &e {
            SpecError::TooManyPolicies { .. } | SpecError::DuplicatePolicy(_) => Column::Policies,
            SpecError::DescriptionTooLong { .. } => Column::Description,
            SpecError::MetadataTooLarge { .. } | SpecError::EmptyMetadataKey => Column::Metadata,
            SpecError::EmptyWindow { .. } => Column::NotBefore,
            _ => Column::Expires,
        };
        err(column, e.into());
        return Err(errors);
    }
    Ok(SpecRow { line, count, spec })
}

// ---------------------------------------------------------------------------------------
// Manifest

/// The kind of QR image file written per token, which names it in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QrFileFormat {
    /// `.svg`
    #[default]
    Svg,
    /// `.png`
    Png,
}

impl QrFileFormat {
    /// The file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }

    /// The file name for a token's QR code: `<token id>.<extension>`.
    pub fn file_name(&self, id: TokenId) -> String {
        format!("{id}.{}", self.extension())
    }
}

/// One issued token in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The token id.
    pub id: TokenId,
    /// The batch it was issued in.
    pub batch: Option<BatchId>,
    /// Its group.
    pub group: GroupId,
    /// Its policies.
    pub policies: Vec<PolicyId>,
    /// Its validity window.
    pub validity: Validity,
    /// Its usage limit.
    pub limit: UsageLimit,
    /// Its description.
    pub description: String,
    /// The token string (a credential).
    pub token: SecretText,
    /// The QR image file name, if QR files are written.
    pub qr_file: Option<String>,
}

/// What a bulk issuance produced, for scripts (JSON) and spreadsheets (CSV).
///
/// Contains every token string: see the [module docs](self#secrets).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use onboarding_token::bulk::{Manifest, QrFileFormat};
/// use onboarding_token::*;
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
/// let spec = TokenSpec::new(OrgId::new("acme")?, GroupId::new("sales")?);
/// let batch = service.issue_many(spec, 3).await?;
///
/// let manifest = Manifest::from_issued(&batch.tokens, Some(QrFileFormat::Png));
/// let csv = manifest.to_csv();
/// assert!(csv.expose_secret().starts_with("id,batch,group,policies,not_before,expires,limit,description,token,qr_file\n"));
/// assert_eq!(csv.expose_secret().lines().count(), 4);
/// let json: serde_json::Value = serde_json::from_str(manifest.to_json().expose_secret())?;
/// assert_eq!(json["tokens"].as_array().unwrap().len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn expiry_text(expiry: Expiry) -> String {
    match expiry {
        Expiry::At(t) => rfc3339(t),
        Expiry::Never => "never".to_owned(),
    }
}

fn limit_text(limit: UsageLimit) -> String {
    match limit.max_uses() {
        Some(n) => n.to_string(),
        None => "unlimited".to_owned(),
    }
}

impl Manifest {
    /// The manifest of issued tokens; with `qr`, each entry names its QR file
    /// ([`QrFileFormat::file_name`]).
    pub fn from_issued(issued: &[Issued], qr: Option<QrFileFormat>) -> Self {
        let entries = issued
            .iter()
            .map(|i| ManifestEntry {
                id: i.token.id(),
                batch: i.token.batch(),
                group: i.token.group().clone(),
                policies: i.token.policies().to_vec(),
                validity: *i.token.validity(),
                limit: i.token.usage_limit(),
                description: i.token.description().to_owned(),
                token: SecretText::from(&i.secret),
                qr_file: qr.map(|q| q.file_name(i.token.id())),
            })
            .collect();
        Self { entries }
    }

    /// The entries, in issue order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// CSV with the header `id,batch,group,policies,not_before,expires,limit,description,
    /// token,qr_file`. Policies are `;`-separated; `expires` is RFC 3339 or `never`; `limit`
    /// a number or `unlimited`; empty fields for no value. Text fields that a spreadsheet
    /// would take for a formula get a leading `'`.
    pub fn to_csv(&self) -> SecretText {
        let mut out = String::with_capacity(256 * (self.entries.len() + 1));
        out.push_str(
            "id,batch,group,policies,not_before,expires,limit,description,token,qr_file\n",
        );
        for e in &self.entries {
            let policies: Vec<&str> = e.policies.iter().map(PolicyId::as_str).collect();
            let fields: [(String, bool); 10] = [
                (e.id.to_string(), false),
                (e.batch.map(|b| b.to_string()).unwrap_or_default(), false),
                (e.group.to_string(), true),
                (policies.join(";"), true),
                (
                    e.validity.not_before.map(rfc3339).unwrap_or_default(),
                    false,
                ),
                (expiry_text(e.validity.expiry), false),
                (limit_text(e.limit), false),
                (e.description.clone(), true),
                (e.token.expose_secret().to_owned(), false),
                (e.qr_file.clone().unwrap_or_default(), true),
            ];
            for (i, (value, text)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(&mut out, value, *text);
            }
            out.push('\n');
        }
        SecretText::new(out)
    }

    /// JSON: `{"version": 1, "tokens": [{"id", "batch", "group", "policies", "not_before",
    /// "expires", "limit", "description", "token", "qr_file"}, ...]}` with the value forms
    /// of [`to_csv`](Manifest::to_csv) (`limit` a number or `"unlimited"`, `expires` a time
    /// or `"never"`, `null` for no value).
    pub fn to_json(&self) -> SecretText {
        use serde_json::{Value, json};
        let tokens: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id.to_string(),
                    "batch": e.batch.map(|b| b.to_string()),
                    "group": e.group.as_str(),
                    "policies": e.policies.iter().map(PolicyId::as_str).collect::<Vec<_>>(),
                    "not_before": e.validity.not_before.map(rfc3339),
                    "expires": expiry_text(e.validity.expiry),
                    "limit": match e.limit.max_uses() {
                        Some(n) => json!(n),
                        None => json!("unlimited"),
                    },
                    "description": e.description,
                    "token": e.token.expose_secret(),
                    "qr_file": e.qr_file,
                })
            })
            .collect();
        let doc = json!({ "version": 1, "tokens": tokens });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        SecretText::new(text + "\n")
    }
}

// ---------------------------------------------------------------------------------------
// Printable sheet

#[cfg(feature = "qr")]
pub use sheet::{Paper, SheetError, SheetOptions, render_sheet};

#[cfg(feature = "qr")]
mod sheet {
    use std::fmt::Write as _;

    use super::*;
    use crate::payload::{PayloadConfig, PayloadError, PayloadFormat, grouped_lines};
    use crate::qr::{EcLevel, Qr, QrError};

    /// The paper a sheet is laid out for. Either way six cards (two by three) fit a page of
    /// A4 and of US Letter, so a sheet made for one prints on the other.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum Paper {
        /// ISO A4, 210 × 297 mm.
        #[default]
        A4,
        /// US Letter, 8.5 × 11 in.
        Letter,
    }

    impl Paper {
        fn css(&self) -> &'static str {
            match self {
                Self::A4 => "A4",
                Self::Letter => "letter",
            }
        }
    }

    /// How [`render_sheet`] lays out and encodes cards.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SheetOptions {
        title: String,
        paper: Paper,
        ec_level: EcLevel,
        format: PayloadFormat,
    }

    impl Default for SheetOptions {
        fn default() -> Self {
            Self {
                title: "Device enrollment codes".to_owned(),
                paper: Paper::A4,
                ec_level: EcLevel::M,
                format: PayloadFormat::Token,
            }
        }
    }

    impl SheetOptions {
        /// A4, level M, the bare token in each QR code.
        pub fn new() -> Self {
            Self::default()
        }

        /// The page title.
        pub fn with_title(mut self, title: impl Into<String>) -> Self {
            self.title = title.into();
            self
        }

        /// The paper size.
        pub fn with_paper(mut self, paper: Paper) -> Self {
            self.paper = paper;
            self
        }

        /// The QR error-correction level.
        pub fn with_ec_level(mut self, ec_level: EcLevel) -> Self {
            self.ec_level = ec_level;
            self
        }

        /// What each QR code holds (the bare token, a link, the Android JSON, ...).
        pub fn with_format(mut self, format: PayloadFormat) -> Self {
            self.format = format;
            self
        }
    }

    /// A sheet could not be rendered.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum SheetError {
        /// The payload format is not configured.
        #[error(transparent)]
        Payload(#[from] PayloadError),
        /// A token's payload does not fit in a QR code.
        #[error("QR code for token {id}: {source}")]
        Qr {
            /// The token.
            id: TokenId,
            /// Why.
            #[source]
            source: QrError,
        },
    }

    const CARDS_PER_PAGE: usize = 6;

    const STYLE: &str = "\
*{box-sizing:border-box}\
html{color:#000;background:#fff}\
body{margin:0;font:9pt/1.3 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
.page{width:186mm;margin:0 auto;break-after:page;page-break-after:always}\
.page:last-child{break-after:auto;page-break-after:auto}\
header{height:10mm;display:flex;justify-content:space-between;align-items:baseline;gap:4mm}\
h1{font-size:11pt;margin:0;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}\
.secret{font-size:7.5pt;margin:0;text-align:right}\
.cards{display:grid;grid-template-columns:repeat(2,90mm);grid-auto-rows:78mm;gap:4mm 6mm}\
.card{border:.3mm dashed #777;border-radius:2mm;padding:3mm;display:flex;flex-direction:column;align-items:center;overflow:hidden;break-inside:avoid;page-break-inside:avoid}\
.card>*{flex:none;max-width:100%}\
.card svg{width:38mm;height:38mm}\
.group{font-size:10pt;font-weight:700;margin-top:1mm;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
.facts,.desc,.hint{font-size:7pt;line-height:1.25;text-align:center;margin:0;overflow:hidden}\
.desc{white-space:nowrap;text-overflow:ellipsis;font-style:italic}\
.hint{color:#333}\
.token{font:7.5pt/1.25 ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;margin:1mm 0 0;white-space:pre;letter-spacing:.02em}\
@media screen{body{background:#eee}.page{background:#fff;padding:10mm 12mm;margin:8mm auto;width:210mm;box-shadow:0 0 3mm #999}}\
";

    /// A self-contained printable HTML page: one card per token with its QR code (inline
    /// SVG), group, policies, usage limit, validity, short id, description, a scanning hint
    /// and the token in the typed form ([`grouped_lines`]). Six cards per page, on A4 or
    /// Letter. Every text is HTML-escaped; the page loads nothing and runs no script (its
    /// Content-Security-Policy forbids both).
    ///
    /// The sheet holds every token: it is a credential (see the [module docs](super#secrets)).
    pub fn render_sheet(
        issued: &[Issued],
        payloads: &PayloadConfig,
        options: &SheetOptions,
    ) -> Result<SecretText, SheetError> {
        let mut out = String::with_capacity(4096 + issued.len() * 12_000);
        let title = escape(&options.title);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"robots\" content=\"noindex\">\n\
             <title>{title}</title>\n<style>@page{{size:{paper};margin:10mm}}{STYLE}</style>\n</head>\n<body>\n",
            paper = options.paper.css(),
        );
        let hint = match options.format {
            PayloadFormat::Android => "Android setup: tap the welcome screen six times, then scan.",
            PayloadFormat::Url => "Scan with the camera, or open the link on the device.",
            PayloadFormat::Kme | PayloadFormat::Nfc => "Knox / NFC provisioning payload.",
            _ => "Scan in the enrollment app, or type the code below.",
        };
        let pages = issued.chunks(CARDS_PER_PAGE).count().max(1);
        for (page_index, page) in issued.chunks(CARDS_PER_PAGE).enumerate() {
            let _ = write!(
                out,
                "<section class=\"page\">\n<header><h1>{title}</h1>\
                 <p class=\"secret\">Confidential: each code enrolls a device. \
                 Store securely; shred after use. Page {} of {pages}</p></header>\n\
                 <div class=\"cards\">\n",
                page_index + 1
            );
            for item in page {
                card(&mut out, item, payloads, options, hint)?;
            }
            out.push_str("</div>\n</section>\n");
        }
        out.push_str("</body>\n</html>\n");
        Ok(SecretText::new(out))
    }

    fn card(
        out: &mut String,
        item: &Issued,
        payloads: &PayloadConfig,
        options: &SheetOptions,
        hint: &str,
    ) -> Result<(), SheetError> {
        let token = &item.token;
        let payload = payloads.render(options.format, &item.secret)?;
        let qr = Qr::encode_with(payload.expose_secret(), options.ec_level).map_err(|source| {
            SheetError::Qr {
                id: token.id(),
                source,
            }
        })?;
        let id = token.id().to_string();
        let policies = if token.policies().is_empty() {
            "no policies".to_owned()
        } else {
            token
                .policies()
                .iter()
                .map(PolicyId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let limit = match token.usage_limit() {
            UsageLimit::Once => "single use".to_owned(),
            UsageLimit::Limited(n) => format!("up to {n} devices"),
            UsageLimit::Unlimited => "unlimited devices".to_owned(),
        };
        let fmt_time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let validity = token.validity();
        let from = validity
            .not_before
            .map_or_else(|| "issue".to_owned(), fmt_time);
        let until = match validity.expiry {
            Expiry::At(t) => format!("until {}", fmt_time(t)),
            Expiry::Never => "no expiry".to_owned(),
        };
        let _ = write!(
            out,
            "<article class=\"card\">{svg}\n<div class=\"group\">{group}</div>\n\
             <p class=\"facts\">{policies}<br>{limit} · id {short}<br>valid from {from}, {until}</p>\n",
            svg = qr.to_svg(),
            group = escape(token.group().as_str()),
            policies = escape(&policies),
            limit = escape(&limit),
            from = escape(&from),
            until = escape(&until),
            short = escape(&id[..8]),
        );
        if !token.description().is_empty() {
            let _ = writeln!(out, "<p class=\"desc\">{}</p>", escape(token.description()));
        }
        let typed = grouped_lines(&item.secret);
        let _ = write!(
            out,
            "<p class=\"hint\">{}</p>\n<pre class=\"token\">{}</pre></article>\n",
            escape(hint),
            escape(typed.expose_secret())
        );
        Ok(())
    }

    /// Escapes text for HTML element content and attribute values.
    pub(super) fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_reader_handles_quotes_crlf_bom_and_comments() {
        let text =
            "\u{feff}a,b\r\n# comment\r\n\r\n\"x,1\",\"he said \"\"hi\"\"\"\r\n\"multi\nline\",z\n";
        let records = read_csv(text).unwrap();
        let fields: Vec<Vec<String>> = records.iter().map(|r| r.fields.clone()).collect();
        assert_eq!(
            fields,
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["x,1".to_owned(), "he said \"hi\"".to_owned()],
                vec!["multi\nline".to_owned(), "z".to_owned()],
            ]
        );
        let lines: Vec<usize> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 4, 5]);
        assert_eq!(
            read_csv("a\n\"open,b\n").err(),
            Some((2, CsvProblem::UnterminatedQuote))
        );
        assert_eq!(
            read_csv("\"a\"b\n").err(),
            Some((1, CsvProblem::AfterQuote))
        );
    }

    #[test]
    fn csv_writer_round_trips_and_defuses_formulas() {
        let mut out = String::new();
        for (i, v) in ["plain", "a,b", "say \"x\"", "two\nlines", " pad ", "=1+1"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, v, true);
        }
        out.push('\n');
        let records = read_csv(&out).unwrap();
        assert_eq!(
            records[0].fields,
            vec!["plain", "a,b", "say \"x\"", "two\nlines", " pad ", "'=1+1"]
        );
    }
}
