//! The CSV specification: its columns, its limits, its errors and the parser that turns
//! rows into [`TokenSpec`]s.

use std::fmt;

use chrono::{DateTime, Utc};

use super::csv::{CsvProblem, Record, read_csv};
use super::grammar::{
    ExpiryError, LimitError, MetadataError, TimeError, parse_expiry, parse_metadata,
    parse_policies, parse_time, parse_usage_limit,
};
use crate::core::name::{InvalidName, OrgId};
use crate::core::policy::GroupId;
use crate::core::token::{ExpirySpec, SpecError, TokenSpec, UsageLimit};

/// The most tokens one CSV row may ask for.
pub const MAX_COUNT_PER_ROW: u32 = 10_000;
/// The most tokens one CSV specification may ask for in all.
pub const MAX_TOKENS: u64 = 100_000;
/// The largest CSV specification read, in bytes (4 MiB).
pub const MAX_SPEC_BYTES: usize = 4 * 1024 * 1024;
/// The most errors reported for one specification.
pub const MAX_ERRORS: usize = 100;

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

/// A parsed CSV specification. See the [module docs](super) for the format.
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
