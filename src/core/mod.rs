//! The core: tokens, their string form, keys and the redemption rules.
//!
//! Nothing here does I/O, reads a clock or draws randomness on its own: `now` and random
//! sources are arguments. Nothing here imports a module outside `core`; the service, the
//! stores, payloads and bulk issuance build on it.
//!
//! Files from the bottom up: `id` and `name` (leaf types), `policy`, `codec` (the string
//! form), `error`, `keys`, `validity`, `metadata`, `limit`, `revocation`, `decision`, `record` (the token record),
//! `spec`, `token` (the public `token` module: the record's parts gathered), `enrollment`,
//! and `rules` on top.

pub mod codec;
pub mod decision;
pub mod enrollment;
pub mod error;
pub mod id;
pub mod keys;
pub mod limit;
pub mod metadata;
pub mod name;
pub mod policy;
pub mod record;
pub mod revocation;
pub mod rules;
pub mod spec;
pub mod token;
pub mod validity;
