//! Schema migrations: the embedded scripts of each dialect and the check of which to apply.
//!
//! A script is applied once and recorded in `<prefix>schema_migrations`; its text is never
//! changed afterwards, since databases already at its version will not run it again.

/// One schema migration.
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    /// Statements with `{prefix}` placeholders.
    pub sql: &'static str,
}

/// The SQLite migrations, oldest first.
pub(crate) const SQLITE: &[Migration] = &[Migration {
    version: 1,
    description: "tokens and redemptions",
    sql: include_str!("migrations/sqlite/0001_tokens_and_redemptions.sql"),
}];

/// The PostgreSQL migrations, oldest first.
pub(crate) const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    description: "tokens and redemptions",
    sql: include_str!("migrations/postgres/0001_tokens_and_redemptions.sql"),
}];

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
