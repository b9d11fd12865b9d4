//! The conformance cases, one theme per file. Each case is a public `async fn(Arc<S>)`
//! that panics with a message naming the violated rule; `testing` re-exports them all.

pub(super) mod concurrency;
pub(super) mod insert;
pub(super) mod list;
pub(super) mod not_found;
pub(super) mod redeem;
pub(super) mod redemptions;
pub(super) mod revoke;
pub(super) mod round_trip;
pub(super) mod window;
