//! What the integration tests share; each test binary includes it with `mod support;` and
//! imports what it needs (`use support::fixture::{t0, dev};`).
//!
//! - [`fixture`]: fixed instants, names, specs, keys and token strings, and `Fixture`.
//! - [`sqlite`], [`postgres`]: fresh, isolated SQL stores, cleaned up on drop ([`Guarded`]).
//! - [`races`]: concurrent redeemers and revokers against any store.
//! - [`tokenctl`]: the `tokenctl` example run as a process, in a temporary directory.
//! - [`files`], [`qr`], [`secrets`]: reading back file modes, QR codes in PNGs, and the
//!   text forms of secret bytes.
//!
//! (`tests/fuzz_checks/` stays apart: the cargo-fuzz targets include it by path.)

// Every test binary compiles all of this and uses only part of it.
#![allow(dead_code)]

pub mod files;
pub mod fixture;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "qr")]
pub mod qr;
pub mod races;
pub mod secrets;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod tokenctl;

use onboarding_token::rules::RedeemRequest;
use onboarding_token::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};
use onboarding_token::{
    Enrollment, RedeemError, Redemption, Revocation, StoreError, Token, TokenId,
};

/// A store and something that must live exactly as long as it (a temporary directory, a
/// schema to drop). Fields drop in order: the store (and its pool) first.
pub struct Guarded<S, G> {
    pub store: S,
    pub guard: G,
}

impl<S: TokenStore, G: Send + Sync> TokenStore for Guarded<S, G> {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.store.insert(token).await
    }
    async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.store.insert_batch(tokens).await
    }
    async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.store.get(id).await
    }
    async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        self.store.list(query).await
    }
    async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        self.store.redeem(request).await
    }
    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        self.store.revoke(target, revocation).await
    }
    async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        self.store.redemptions(id).await
    }
}

/// 16 random hex digits.
pub fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
