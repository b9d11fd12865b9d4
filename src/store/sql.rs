//! What the SQL backends share: the table prefix, the row layout, statement text, value
//! encoding and decoding, and migrations bookkeeping.
//!
//! Both backends use the same schema shape and numbered `$N` parameters (SQLite accepts
//! them too), so most statements are written once here; [`Dialect`] covers the few
//! differences.
//!
//! Row layout (`<prefix>tokens`): ids as 16-byte blobs (so `ORDER BY id` is byte order, the
//! same as [`TokenId`]'s `Ord`); timestamps as `BIGINT` unix microseconds, UTC; the usage
//! limit as `max_uses` (`NULL` = unlimited); expiry `NULL` = never; policies as one
//! comma-separated text in order (`,` is not a legal policy character); metadata as a JSON
//! object text, `NULL` when empty. Description and revocation reason may contain NUL, which
//! PostgreSQL's `TEXT` cannot hold, so there they are UTF-8 `BYTEA`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, SqlSafeStr, SqlStr, Type};

use crate::error::StoreError;
use crate::keys::KeyId;
use crate::name::OrgId;
use crate::policy::{GroupId, PolicyId};
use crate::rules::Leeway;
use crate::store::{RevokeTarget, TokenQuery};
use crate::token::{
    BatchId, Expiry, Metadata, Revocation, Status, Token, TokenId, TokenParts, UsageLimit, Validity,
};

/// The table prefix used when none is configured.
pub(crate) const DEFAULT_PREFIX: &str = "onboarding_";

/// A table prefix was rejected by `with_table_prefix`.
///
/// A prefix is 0 to 32 bytes of `a-z 0-9 _` (so it is safe to splice into SQL and every
/// derived table and index name stays within PostgreSQL's 63-byte identifier limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid table prefix: use at most {max} characters of a-z, 0-9 and _", max = TablePrefix::MAX_LEN)]
pub struct InvalidTablePrefix(());

/// A validated table prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TablePrefix(String);

impl TablePrefix {
    pub(crate) const MAX_LEN: usize = 32;

    pub(crate) fn new(prefix: &str) -> Result<Self, InvalidTablePrefix> {
        let ok = prefix.len() <= Self::MAX_LEN
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(prefix.to_owned()))
        } else {
            Err(InvalidTablePrefix(()))
        }
    }

    pub(crate) fn default_prefix() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// `sql` with every `{prefix}` replaced by the prefix.
    pub(crate) fn apply(&self, sql: &str) -> String {
        sql.replace("{prefix}", &self.0)
    }

    /// A stable 64-bit key for this prefix's migration lock (FNV-1a).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn lock_key(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in b"onboarding_token.migrate:".iter().chain(self.0.as_bytes()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

/// The SQL dialect differences between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

impl Dialect {
    pub(crate) fn backend(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// `1`-based position of `needle` in `haystack`, `0` when absent.
    fn position(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr({haystack}, {needle})"),
            Dialect::Postgres => format!("strpos({haystack}, {needle})"),
        }
    }
}

/// One schema migration.
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    /// Statements with `{prefix}` placeholders.
    pub sql: &'static str,
}

/// The schema version is newer than this library knows.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database schema is at version {found}, newer than the newest this library knows ({known}); upgrade onboarding-token"
)]
pub(crate) struct SchemaTooNew {
    pub found: i64,
    pub known: i64,
}

/// Checks the applied versions against the known migrations; returns the ones to apply.
pub(crate) fn pending_migrations<'m>(
    known: &'m [Migration],
    applied: &[i64],
) -> Result<Vec<&'m Migration>, SchemaTooNew> {
    let newest = known.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(&found) = applied.iter().find(|&&v| v > newest) {
        return Err(SchemaTooNew {
            found,
            known: newest,
        });
    }
    Ok(known
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect())
}

/// The token columns, in the order [`TokenRow`] binds and decodes them.
pub(crate) const TOKEN_COLUMNS: &str = "id, key_id, organization, group_path, policies, \
     max_uses, uses, not_before, expires_at, created_at, description, metadata, batch_id, \
     revoked_at, revocation_reason";

/// The number of columns in [`TOKEN_COLUMNS`].
pub(crate) const TOKEN_COLUMN_COUNT: usize = 15;

/// Every statement with a fixed text, built once per store (they embed the table prefix).
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub dialect: Dialect,
    pub tokens: String,
    pub insert: SqlStr,
    pub get: SqlStr,
    /// `$1` token id, `$2` device: the token row (locked on PostgreSQL) and the device's
    /// prior redemption time as column 16.
    pub redeem_read: SqlStr,
    /// `$1` token id, `$2` device: when the device redeemed the token.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub prior_redemption: SqlStr,
    /// The same without a lock.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub redeem_peek: SqlStr,
    /// SQLite only: `$1` id, `$2` uses after.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub set_uses: SqlStr,
    /// SQLite only: `$1` token id, `$2` device, `$3` use number, `$4` redeemed at.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub record_redemption: SqlStr,
    /// PostgreSQL only: both writes of a consuming redemption in one statement.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub consume: SqlStr,
    /// PostgreSQL only: `$1` token id, `$2` device: undoes a consuming redemption.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub give_back: SqlStr,
    /// PostgreSQL only: the rules as one conditional update; see `postgres.rs`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub redeem_conditional: SqlStr,
    pub exists: SqlStr,
    pub redemptions_of: SqlStr,
    pub revoke_token: SqlStr,
    pub revoke_group: SqlStr,
    pub revoke_batch: SqlStr,
}

/// The `WHERE` fragment matching a group and its subgroups, for group `$g` and `$gs` = the
/// group followed by `/`. Not `LIKE`: `_` is a legal group character.
/// The rows whose status is `status`, with the window's bounds in parameters `np` (a
/// `not_before` above it is pending) and `nm` (an `expires_at` at or below it is expired).
///
/// The same precedence as [`rules::status_at`](crate::rules::status_at) (revoked, then
/// outside the window, then exhausted), spelled as plain column comparisons rather than one
/// `CASE` expression: a planner estimates these from its statistics, so a filtered page is
/// read in `created_at` order from the index and stops after a page, where an opaque
/// `CASE ... = status` (estimated at a few rows) made PostgreSQL scan and sort the table
/// (100,000 tokens: 43 ms against 0.1 ms).
fn status_condition(status: Status, np: usize, nm: usize) -> String {
    let open = format!("(not_before IS NULL OR not_before <= ${np})");
    let unexpired = format!("(expires_at IS NULL OR expires_at > ${nm})");
    match status {
        Status::Revoked => "revoked_at IS NOT NULL".to_owned(),
        Status::Pending => {
            format!("(revoked_at IS NULL AND not_before IS NOT NULL AND not_before > ${np})")
        }
        Status::Expired => format!(
            "(revoked_at IS NULL AND {open} AND expires_at IS NOT NULL AND expires_at <= ${nm})"
        ),
        Status::Exhausted => format!(
            "(revoked_at IS NULL AND {open} AND {unexpired} \
             AND max_uses IS NOT NULL AND uses >= max_uses)"
        ),
        Status::Active => format!(
            "(revoked_at IS NULL AND {open} AND {unexpired} \
             AND (max_uses IS NULL OR uses < max_uses))"
        ),
    }
}

fn group_condition(g: usize, gs: usize) -> String {
    format!("(group_path = ${g} OR substr(group_path, 1, length(${gs})) = ${gs})")
}

impl Statements {
    pub(crate) fn new(dialect: Dialect, prefix: &TablePrefix) -> Self {
        let p = prefix.as_str();
        let tokens = format!("{p}tokens");
        let redemptions = format!("{p}redemptions");
        let s = |sql: String| sqlx::AssertSqlSafe(sql).into_sql_str();
        let placeholders = (1..=TOKEN_COLUMN_COUNT)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let lock = match dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE OF t",
        };
        let redeem_peek = format!(
            "SELECT {cols}, (SELECT r.redeemed_at FROM {redemptions} r \
             WHERE r.token_id = $1 AND r.device_id = $2) \
             FROM {tokens} t WHERE t.id = $1",
            cols = qualified_columns("t")
        );
        let revoke_set = "UPDATE {t} SET revoked_at = $1, revocation_reason = $2";
        let revoke_set = revoke_set.replace("{t}", &tokens);
        Self {
            dialect,
            insert: s(format!(
                "INSERT INTO {tokens} ({TOKEN_COLUMNS}) VALUES ({placeholders})"
            )),
            get: s(format!(
                "SELECT {TOKEN_COLUMNS} FROM {tokens} WHERE id = $1"
            )),
            redeem_read: s(format!("{redeem_peek}{lock}")),
            redeem_peek: s(redeem_peek),
            prior_redemption: s(format!(
                "SELECT redeemed_at FROM {redemptions} WHERE token_id = $1 AND device_id = $2"
            )),
            set_uses: s(format!("UPDATE {tokens} SET uses = $2 WHERE id = $1")),
            record_redemption: s(format!(
                "INSERT INTO {redemptions} (token_id, device_id, use_number, redeemed_at) \
                 VALUES ($1, $2, $3, $4)"
            )),
            consume: s(format!(
                "WITH u AS (UPDATE {tokens} SET uses = $3 WHERE id = $1) \
                 INSERT INTO {redemptions} (token_id, device_id, use_number, redeemed_at) \
                 VALUES ($1, $2, $3, $4)"
            )),
            redeem_conditional: s(format!(
                "WITH u AS (\
                   UPDATE {tokens} SET uses = uses + 1 \
                   WHERE id = $1 AND key_id = $2 AND revoked_at IS NULL \
                     AND (not_before IS NULL OR not_before <= $4) \
                     AND (expires_at IS NULL OR expires_at > $5) \
                     AND (max_uses IS NULL OR uses < max_uses) \
                     AND NOT EXISTS (SELECT 1 FROM {redemptions} \
                                     WHERE token_id = $1 AND device_id = $3) \
                   RETURNING {TOKEN_COLUMNS}), \
                 r AS (\
                   INSERT INTO {redemptions} (token_id, device_id, use_number, redeemed_at) \
                   SELECT id, $3, uses, $6 FROM u) \
                 SELECT {TOKEN_COLUMNS} FROM u"
            )),
            give_back: s(format!(
                "WITH d AS (DELETE FROM {redemptions} \
                            WHERE token_id = $1 AND device_id = $2 RETURNING token_id) \
                 UPDATE {tokens} SET uses = uses - 1 WHERE id IN (SELECT token_id FROM d)"
            )),
            exists: s(format!("SELECT 1 FROM {tokens} WHERE id = $1")),
            redemptions_of: s(format!(
                "SELECT device_id, redeemed_at FROM {redemptions} \
                 WHERE token_id = $1 ORDER BY redeemed_at, use_number"
            )),
            revoke_token: s(format!("{revoke_set} WHERE id = $3 AND revoked_at IS NULL")),
            revoke_group: s(format!(
                "{revoke_set} WHERE organization = $3 AND {} AND revoked_at IS NULL",
                group_condition(4, 5)
            )),
            revoke_batch: s(format!(
                "{revoke_set} WHERE batch_id = $3 AND revoked_at IS NULL"
            )),
            tokens,
        }
    }

    /// Parameter `n` (1-based) of a statement whose parameters appear in order. SQLite gets
    /// anonymous `?`: it looks named ones (`$1`) up linearly while parsing, which makes a
    /// statement with thousands of them quadratic.
    fn ordered_placeholder(&self, sql: &mut String, n: usize) {
        match self.dialect {
            Dialect::Sqlite => sql.push('?'),
            Dialect::Postgres => {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
        }
    }

    /// A multi-row insert of `rows` tokens.
    pub(crate) fn insert_many(&self, rows: usize) -> String {
        let mut sql = format!("INSERT INTO {} ({TOKEN_COLUMNS}) VALUES ", self.tokens);
        let mut n = 0;
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..TOKEN_COLUMN_COUNT {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                self.ordered_placeholder(&mut sql, n);
            }
            sql.push(')');
        }
        sql
    }

    /// `SELECT id FROM tokens WHERE id IN (<n parameters>) LIMIT 1`.
    pub(crate) fn existing_ids(&self, n: usize) -> String {
        let mut sql = format!("SELECT id FROM {} WHERE id IN (", self.tokens);
        for i in 1..=n {
            if i > 1 {
                sql.push_str(", ");
            }
            self.ordered_placeholder(&mut sql, i);
        }
        sql.push_str(") LIMIT 1");
        sql
    }

    /// The listing statement for `query` and its parameters.
    pub(crate) fn list(&self, query: &TokenQuery) -> (String, Vec<Param>) {
        let mut params = Vec::new();
        let next = |params: &mut Vec<Param>, p: Param| {
            params.push(p);
            params.len()
        };
        let mut sql = format!("SELECT {TOKEN_COLUMNS} FROM {} WHERE TRUE", self.tokens);
        if let Some(org) = &query.organization {
            let i = next(&mut params, Param::text(org.as_str()));
            sql.push_str(&format!(" AND organization = ${i}"));
        }
        if let Some(group) = &query.group {
            let g = next(&mut params, Param::text(group.as_str()));
            let gs = next(&mut params, Param::text(format!("{group}/")));
            sql.push_str(" AND ");
            sql.push_str(&group_condition(g, gs));
        }
        if let Some(policy) = &query.policy {
            let i = next(&mut params, Param::text(format!(",{policy},")));
            let pos = self
                .dialect
                .position("(',' || policies || ',')", &format!("${i}"));
            sql.push_str(&format!(" AND {pos} > 0"));
        }
        if let Some(batch) = query.batch {
            let i = next(&mut params, Param::blob(batch.as_bytes()));
            sql.push_str(&format!(" AND batch_id = ${i}"));
        }
        if let Some(status) = query.status {
            let (opens, closes) = window_bounds(query.now, query.leeway);
            let np = next(&mut params, Param::int(opens));
            let nm = next(&mut params, Param::int(closes));
            sql.push_str(" AND ");
            sql.push_str(&status_condition(status, np, nm));
        }
        if let Some(cursor) = query.after {
            // Stored times are whole microseconds. A cursor with a sub-microsecond part
            // lies strictly between two of them, so every token at its floored microsecond
            // comes before it: compare with the largest id instead of the cursor's.
            let exact = cursor.created_at.timestamp_subsec_nanos() % 1000 == 0;
            let id = if exact {
                *cursor.id.as_bytes()
            } else {
                [0xff; TokenId::LEN]
            };
            let c = next(
                &mut params,
                Param::int(cursor.created_at.timestamp_micros()),
            );
            let i = next(&mut params, Param::blob(&id));
            sql.push_str(&format!(" AND (created_at, id) > (${c}, ${i})"));
        }
        let limit = i64::try_from(query.page_size() + 1).unwrap_or(i64::MAX);
        let l = next(&mut params, Param::int(limit));
        sql.push_str(&format!(" ORDER BY created_at, id LIMIT ${l}"));
        (sql, params)
    }

    /// The revocation statement for `target` and its parameters.
    pub(crate) fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> (SqlStr, Vec<Param>) {
        let mut params = vec![
            Param::int(micros(revocation.revoked_at)),
            Param::free_text(self.dialect, Some(&revocation.reason)),
        ];
        let sql = match target {
            RevokeTarget::Token(id) => {
                params.push(Param::blob(id.as_bytes()));
                &self.revoke_token
            }
            RevokeTarget::Group {
                organization,
                group,
            } => {
                params.push(Param::text(organization.as_str()));
                params.push(Param::text(group.as_str()));
                params.push(Param::text(format!("{group}/")));
                &self.revoke_group
            }
            RevokeTarget::Batch(batch) => {
                params.push(Param::blob(batch.as_bytes()));
                &self.revoke_batch
            }
        };
        (sql.clone(), params)
    }
}

fn qualified_columns(alias: &str) -> String {
    TOKEN_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

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
    /// Free text that may contain NUL: `TEXT` on SQLite, UTF-8 `BYTEA` on PostgreSQL
    /// (whose `TEXT` cannot hold NUL).
    pub(crate) fn free_text(dialect: Dialect, v: Option<&str>) -> Self {
        match dialect {
            Dialect::Sqlite => Param::Text(v.map(str::to_owned)),
            Dialect::Postgres => Param::Blob(v.map(|v| v.as_bytes().to_vec())),
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

/// Wraps a driver error.
pub(crate) fn backend_error(
    dialect: Dialect,
    what: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::backend(dialect.backend(), what, e)
}

/// Whether `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
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
        Param::Int(revocation.map(|r| micros(r.revoked_at))),
        Param::free_text(dialect, revocation.map(|r| r.reason.as_str())),
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

/// A column written with [`Param::free_text`].
fn free_text<R>(row: &R, index: usize, dialect: Dialect) -> Result<Option<String>, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    Vec<u8>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    match dialect {
        Dialect::Sqlite => row.try_get(index),
        Dialect::Postgres => {
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
    }
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
            .map_err(crate::token::SpecError::from)?
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
        (Some(at), reason) => Some(Revocation {
            revoked_at: time(at, dialect)?,
            reason: reason.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let parts = TokenParts {
        id,
        key_id,
        organization: OrgId::new(&raw.organization).map_err(crate::token::SpecError::from)?,
        group: GroupId::new(&raw.group).map_err(crate::token::SpecError::from)?,
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
