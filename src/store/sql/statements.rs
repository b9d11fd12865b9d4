//! Every statement the SQL stores run, written once for both dialects.
//!
//! Both backends use the same schema shape and numbered `$N` parameters (SQLite accepts
//! them too), so each statement has one text; [`Dialect`] supplies the few spellings that
//! differ. Statements embed the table prefix, so a store builds them once.

use sqlx::{SqlSafeStr, SqlStr};

use super::dialect::Dialect;
use super::prefix::TablePrefix;
use super::rows::{Param, TOKEN_COLUMN_COUNT, TOKEN_COLUMNS, micros, window_bounds};
use crate::core::token::{Revocation, Status, TokenId};
use crate::store::{RevokeTarget, TokenQuery};

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
    /// PostgreSQL only: both writes of a consuming redemption in one statement, with the
    /// parameters of `record_redemption`.
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

/// The rows whose status is `status`, with the window's bounds in parameters `np` (a
/// `not_before` above it is pending) and `nm` (an `expires_at` at or below it is expired).
///
/// The same precedence as [`rules::status_at`](crate::rules::status_at) (revoked, then
/// outside the window, then exhausted), spelled as plain column comparisons rather than one
/// `CASE` expression: a planner estimates these from its statistics, so a filtered page is
/// read in `created_at` order from the index and stops after a page, where an opaque
/// `CASE ... = status` is estimated at a few rows and makes PostgreSQL scan and sort the
/// table.
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

/// The `WHERE` fragment matching a group and its subgroups, for group `$g` and `$gs` = the
/// group followed by `/`. Not `LIKE`: `_` is a legal group character.
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
        let lock = dialect.row_lock();
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
                self.dialect.ordered_placeholder(&mut sql, n);
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
            self.dialect.ordered_placeholder(&mut sql, i);
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
        if let Some(org) = query.organization() {
            let i = next(&mut params, Param::text(org.as_str()));
            sql.push_str(&format!(" AND organization = ${i}"));
        }
        if let Some(group) = query.group() {
            let g = next(&mut params, Param::text(group.as_str()));
            let gs = next(&mut params, Param::text(format!("{group}/")));
            sql.push_str(" AND ");
            sql.push_str(&group_condition(g, gs));
        }
        if let Some(policy) = query.policy() {
            let i = next(&mut params, Param::text(format!(",{policy},")));
            let pos = self
                .dialect
                .position("(',' || policies || ',')", &format!("${i}"));
            sql.push_str(&format!(" AND {pos} > 0"));
        }
        if let Some(batch) = query.batch() {
            let i = next(&mut params, Param::blob(batch.as_bytes()));
            sql.push_str(&format!(" AND batch_id = ${i}"));
        }
        if let Some(status) = query.status() {
            let (opens, closes) = window_bounds(query.now(), query.leeway());
            let np = next(&mut params, Param::int(opens));
            let nm = next(&mut params, Param::int(closes));
            sql.push_str(" AND ");
            sql.push_str(&status_condition(status, np, nm));
        }
        if let Some(cursor) = query.after() {
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
        let limit = i64::try_from(query.limit() + 1).unwrap_or(i64::MAX);
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
            Param::int(micros(revocation.revoked_at())),
            Param::free_text(self.dialect, Some(revocation.reason())),
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
