//! Driver errors as [`StoreError`]s.

use crate::core::error::StoreError;

use super::dialect::Dialect;

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
