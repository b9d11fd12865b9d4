//! The row layout of `<prefix>tokens` and the mapping between its rows and [`Token`]s, in
//! both directions, plus the value encodings shared with the statements.
//!
//! Ids are 16-byte blobs (so `ORDER BY id` is byte order, the same as [`TokenId`]'s `Ord`);
//! timestamps are `BIGINT` unix microseconds, UTC; the usage limit is `max_uses` (`NULL` =
//! unlimited); expiry `NULL` = never; policies are one comma-separated text in order (`,`
//! is not a legal policy character); metadata is a JSON object text, `NULL` when empty.
//! Description and revocation reason are free text, stored as the [`Dialect`] says.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use super::dialect::Dialect;
use super::errors::backend_error;
use crate::core::enrollment::Redemption;
use crate::core::error::StoreError;
use crate::core::keys::KeyId;
use crate::core::name::{DeviceId, OrgId};
use crate::core::policy::{GroupId, PolicyId};
use crate::core::rules::Leeway;
use crate::core::token::{
    BatchId, Expiry, Metadata, Revocation, Token, TokenId, TokenParts, UsageLimit, Validity,
};

/// The token columns, in the order [`token_params`] binds and [`token_from_row`] decodes
/// them.
pub(crate) const TOKEN_COLUMNS: &str = "id, key_id, organization, group_path, policies, \
     max_uses, uses, not_before, expires_at, created_at, description, metadata, batch_id, \
     revoked_at, revocation_reason";

/// The number of columns in [`TOKEN_COLUMNS`].
pub(crate) const TOKEN_COLUMN_COUNT: usize = 15;

/// Unix microseconds, floored (what the columns hold).
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The window bounds in stored units for `now` and `leeway`, as `(opens, closes)`:
/// a token is pending when `not_before > opens` and expired when `expires_at <= closes`.
///
/// [`rules::status_at`](crate::rules::status_at) says pending when
/// `now < not_before - leeway`, that is `not_before > now + leeway`; with `not_before` in
/// whole microseconds that is `not_before > floor(now + leeway)`. Likewise expired when
/// `now >= expires_at + leeway`, that is `expires_at <= floor(now - leeway)`.
pub(crate) fn window_bounds(now: DateTime<Utc>, leeway: Leeway) -> (i64, i64) {
    let delta: TimeDelta = leeway.as_delta();
    let opens = now.checked_add_signed(delta).map_or(i64::MAX, micros);
    let closes = now.checked_sub_signed(delta).map_or(i64::MIN, micros);
    (opens, closes)
}

/// A bound parameter of a dynamically built statement.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Param {
    pub(crate) fn int(v: i64) -> Self {
        Param::Int(Some(v))
    }
    pub(crate) fn text(v: impl Into<String>) -> Self {
        Param::Text(Some(v.into()))
    }
    pub(crate) fn blob(v: &[u8]) -> Self {
        Param::Blob(Some(v.to_vec()))
    }
    /// Free text that may contain NUL, encoded as the dialect stores it.
    pub(crate) fn free_text(dialect: Dialect, v: Option<&str>) -> Self {
        if dialect.free_text_as_bytes() {
            Param::Blob(v.map(|v| v.as_bytes().to_vec()))
        } else {
            Param::Text(v.map(str::to_owned))
        }
    }
}

/// Binds `params` in order.
pub(crate) fn bind_params<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    params: impl IntoIterator<Item = Param>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    Option<i64>: Encode<'static, DB> + Type<DB>,
    Option<String>: Encode<'static, DB> + Type<DB>,
    Option<Vec<u8>>: Encode<'static, DB> + Type<DB>,
{
    for p in params {
        query = match p {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Blob(v) => query.bind(v),
        };
    }
    query
}

/// A stored value did not fit its column or a column did not hold a valid value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}")]
pub(crate) struct BadValue {
    what: &'static str,
}

fn bad(what: &'static str) -> BadValue {
    BadValue { what }
}

/// The `uses` column value after a consuming redemption.
pub(crate) fn uses_column(dialect: Dialect, uses_after: u64) -> Result<i64, StoreError> {
    i64::try_from(uses_after).map_err(|_| {
        StoreError::backend(
            dialect.backend(),
            "recording the redemption",
            bad("use count out of range"),
        )
    })
}

/// The parameters of one token row, in [`TOKEN_COLUMNS`] order.
pub(crate) fn token_params(token: &Token, dialect: Dialect) -> Result<Vec<Param>, StoreError> {
    let to_i64 = |v: u64, what: &'static str| {
        i64::try_from(v).map_err(|_| StoreError::backend(dialect.backend(), what, bad(what)))
    };
    let validity = token.validity();
    let policies = token
        .policies()
        .iter()
        .map(PolicyId::as_str)
        .collect::<Vec<_>>()
        .join(",");
    let metadata = if token.metadata().is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(token.metadata().as_map()).map_err(|e| {
                StoreError::backend(dialect.backend(), "encoding metadata as JSON", e)
            })?,
        )
    };
    let revocation = token.revocation();
    Ok(vec![
        Param::blob(token.id().as_bytes()),
        Param::blob(token.key_id().as_bytes()),
        Param::text(token.organization().as_str()),
        Param::text(token.group().as_str()),
        Param::text(policies),
        Param::Int(token.usage_limit().max_uses().map(i64::from)),
        Param::int(to_i64(token.uses(), "use count out of range")?),
        Param::Int(validity.not_before.map(micros)),
        Param::Int(validity.expiry.at().map(micros)),
        Param::int(micros(token.created_at())),
        Param::free_text(dialect, Some(token.description())),
        Param::Text(metadata),
        Param::Blob(token.batch().map(|b| b.as_bytes().to_vec())),
        Param::Int(revocation.map(|r| micros(r.revoked_at()))),
        Param::free_text(dialect, revocation.map(|r| r.reason())),
    ])
}

/// The raw values of one token row.
struct RawToken {
    id: Vec<u8>,
    key_id: Vec<u8>,
    organization: String,
    group: String,
    policies: String,
    max_uses: Option<i64>,
    uses: i64,
    not_before: Option<i64>,
    expires_at: Option<i64>,
    created_at: i64,
    description: String,
    metadata: Option<String>,
    batch: Option<Vec<u8>>,
    revoked_at: Option<i64>,
    reason: Option<String>,
}

/// Decodes a token from the first [`TOKEN_COLUMN_COUNT`] columns of `row`.
///
/// Never panics: a row that breaks the record's rules gives [`StoreError::Invalid`], a value
/// of the wrong shape gives [`StoreError::Backend`].
pub(crate) fn token_from_row<R>(row: &R, dialect: Dialect) -> Result<Token, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    Vec<u8>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    let get = backend_error(dialect, "reading a token row");
    let raw = (|| {
        Ok::<_, sqlx::Error>(RawToken {
            id: row.try_get(0)?,
            key_id: row.try_get(1)?,
            organization: row.try_get(2)?,
            group: row.try_get(3)?,
            policies: row.try_get(4)?,
            max_uses: row.try_get(5)?,
            uses: row.try_get(6)?,
            not_before: row.try_get(7)?,
            expires_at: row.try_get(8)?,
            created_at: row.try_get(9)?,
            description: free_text(row, 10, dialect)?.unwrap_or_default(),
            metadata: row.try_get(11)?,
            batch: row.try_get(12)?,
            revoked_at: row.try_get(13)?,
            reason: free_text(row, 14, dialect)?,
        })
    })()
    .map_err(get)?;
    token_from_raw(raw, dialect)
}

/// A row of [`Statements::redemptions_of`](super::statements::Statements::redemptions_of).
pub(crate) fn redemption_from_row<R>(row: &R, dialect: Dialect) -> Result<Redemption, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    let err = || backend_error(dialect, "reading a redemption");
    let device: String = row.try_get(0).map_err(err())?;
    let at: i64 = row.try_get(1).map_err(err())?;
    Ok(Redemption {
        device: DeviceId::new(device).map_err(crate::core::error::SpecError::from)?,
        redeemed_at: time(at, dialect)?,
    })
}

/// A column written with [`Param::free_text`].
fn free_text<R>(row: &R, index: usize, dialect: Dialect) -> Result<Option<String>, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    Vec<u8>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    if !dialect.free_text_as_bytes() {
        return row.try_get(index);
    }
    let bytes: Option<Vec<u8>> = row.try_get(index)?;
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|e| sqlx::Error::ColumnDecode {
                index: index.to_string(),
                source: Box::new(e),
            })
        })
        .transpose()
}

/// A timestamp column.
pub(crate) fn time(micros: i64, dialect: Dialect) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| bad_row(dialect, "timestamp out of range"))
}

fn bad_row(dialect: Dialect, what: &'static str) -> StoreError {
    StoreError::backend(dialect.backend(), "decoding a token row", bad(what))
}

fn token_from_raw(raw: RawToken, dialect: Dialect) -> Result<Token, StoreError> {
    let bad = |what| bad_row(dialect, what);
    let id = TokenId::from_bytes(
        raw.id
            .try_into()
            .map_err(|_| bad("token id is not 16 bytes"))?,
    );
    let key_id = KeyId::from_bytes(
        raw.key_id
            .try_into()
            .map_err(|_| bad("key id is not 4 bytes"))?,
    );
    let policies = if raw.policies.is_empty() {
        Vec::new()
    } else {
        raw.policies
            .split(',')
            .map(PolicyId::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::core::error::SpecError::from)?
    };
    let usage_limit = match raw.max_uses {
        None => UsageLimit::Unlimited,
        Some(n) => u32::try_from(n)
            .ok()
            .and_then(UsageLimit::limited)
            .ok_or_else(|| bad("usage limit out of range"))?,
    };
    let metadata = match raw.metadata {
        None => Metadata::new(),
        Some(json) => {
            let map: BTreeMap<String, String> = serde_json::from_str(&json)
                .map_err(|e| StoreError::backend(dialect.backend(), "decoding metadata JSON", e))?;
            Metadata::from_map(map)?
        }
    };
    let batch = match raw.batch {
        None => None,
        Some(b) => Some(BatchId::from_bytes(
            b.try_into().map_err(|_| bad("batch id is not 16 bytes"))?,
        )),
    };
    let revocation = match (raw.revoked_at, raw.reason) {
        (Some(at), reason) => Some(Revocation::new(
            time(at, dialect)?,
            reason.unwrap_or_default(),
        )?),
        (None, _) => None,
    };
    let parts = TokenParts {
        id,
        key_id,
        organization: OrgId::new(&raw.organization).map_err(crate::core::error::SpecError::from)?,
        group: GroupId::new(&raw.group).map_err(crate::core::error::SpecError::from)?,
        policies,
        usage_limit,
        uses: u64::try_from(raw.uses).map_err(|_| bad("negative use count"))?,
        validity: Validity {
            not_before: raw.not_before.map(|t| time(t, dialect)).transpose()?,
            expiry: match raw.expires_at {
                Some(t) => Expiry::At(time(t, dialect)?),
                None => Expiry::Never,
            },
        },
        created_at: time(raw.created_at, dialect)?,
        description: raw.description,
        metadata,
        batch,
        revocation,
    };
    Ok(Token::from_parts(parts)?)
}
