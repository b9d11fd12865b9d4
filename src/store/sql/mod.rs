//! The SQL stores: [`sqlite::SqliteStore`] and [`postgres::PgStore`], on one schema shape
//! and one body of code.
//!
//! - [`dialect`]: every difference between the backends but redemption: SQL spellings,
//!   limits, column encodings, how transactions open and how writers are ordered.
//! - [`errors`]: driver errors as store errors.
//! - [`prefix`]: the validated table prefix.
//! - [`rows`]: the token row layout and its mapping to and from [`Token`](crate::token::Token).
//! - [`statements`]: every statement's text, built once per store.
//! - [`migrations`]: the embedded schema scripts (`migrations/<dialect>/*.sql`) and which
//!   to apply.
//! - [`common`]: the store operations both backends run alike, generic over the sqlx
//!   database.
//! - [`sqlite`], [`postgres`]: each public store, its connection set-up and how it makes a
//!   redemption atomic.

mod common;
mod dialect;
mod errors;
mod migrations;
mod prefix;
mod rows;
mod statements;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
