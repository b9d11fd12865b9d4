//! [`Onboarding`]: the service an MDM server calls. It holds the keyring, the store, a clock
//! and a random source, and is the only layer that reads the time or draws randomness.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, SubsecRound, Utc};
use rand_core::CryptoRng;

use crate::clock::{Clock, SystemClock};
use crate::core::codec::{TokenString, UnverifiedToken, VerifiedToken};
use crate::core::enrollment::{Enrollment, Redemption};
use crate::core::error::{AdminError, RedeemError, Rejection, StoreError};
use crate::core::keys::{Keyring, KeyringError};
use crate::core::name::DeviceId;
use crate::core::rules::{Leeway, RedeemRequest};
use crate::core::token::{BatchId, Revocation, SpecError, Status, Token, TokenId, TokenSpec};
use crate::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};

/// The operating system's random source, as used by default.
pub type SystemRng = rand_core::UnwrapErr<getrandom::SysRng>;

/// A token just issued: its record and its secret string form.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The stored record.
    pub token: Token,
    /// The string to hand to devices (a credential: see [`TokenString`]).
    pub secret: TokenString,
}

/// Tokens issued together in one batch.
#[derive(Debug, Clone)]
pub struct IssuedBatch {
    /// The batch id every token carries.
    pub batch: BatchId,
    /// The tokens, in the order of the specifications.
    pub tokens: Vec<Issued>,
}

/// Issues, redeems, lists and revokes onboarding tokens.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use onboarding_token::*;
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
///
/// let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("sales").unwrap());
/// let issued = service.issue(spec).await.unwrap();
///
/// let device = DeviceId::new("SN-42").unwrap();
/// let enrollment = service.redeem(issued.secret.expose_secret(), &device).await.unwrap();
/// assert_eq!(enrollment.group().as_str(), "sales");
/// assert!(!enrollment.replay);
/// # });
/// ```
pub struct Onboarding<S, C = SystemClock, R = SystemRng> {
    keyring: Keyring,
    store: S,
    clock: C,
    rng: Mutex<R>,
    leeway: Leeway,
}

impl<S, C, R> std::fmt::Debug for Onboarding<S, C, R>
where
    S: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onboarding")
            .field("keyring", &self.keyring)
            .field("store", &self.store)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> Onboarding<S> {
    /// A service over `store`, signing with `keyring`, on the system clock and random source.
    pub fn new(keyring: Keyring, store: S) -> Self {
        Self {
            keyring,
            store,
            clock: SystemClock,
            rng: Mutex::new(rand_core::UnwrapErr(getrandom::SysRng)),
            leeway: Leeway::ZERO,
        }
    }
}

impl<S, C, R> Onboarding<S, C, R>
where
    S: TokenStore,
    C: Clock,
    R: CryptoRng + Send,
{
    /// The same service reading time from `clock`.
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Onboarding<S, C2, R> {
        Onboarding {
            keyring: self.keyring,
            store: self.store,
            clock,
            rng: self.rng,
            leeway: self.leeway,
        }
    }

    /// The same service drawing ids from `rng`.
    pub fn with_rng<R2: CryptoRng + Send>(self, rng: R2) -> Onboarding<S, C, R2> {
        Onboarding {
            keyring: self.keyring,
            store: self.store,
            clock: self.clock,
            rng: Mutex::new(rng),
            leeway: self.leeway,
        }
    }

    /// The same service with a clock leeway for validity windows.
    pub fn with_leeway(mut self, leeway: Leeway) -> Self {
        self.leeway = leeway;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The leeway.
    pub fn leeway(&self) -> Leeway {
        self.leeway
    }

    /// The current time, truncated to microseconds (what every backend stores exactly).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    fn draw<T>(&self, f: impl FnOnce(&mut R) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut rng)
    }

    fn build(
        &self,
        spec: TokenSpec,
        now: DateTime<Utc>,
        batch: Option<BatchId>,
    ) -> Result<Issued, SpecError> {
        let id = self.draw(|rng| TokenId::generate(rng));
        let token = spec.into_token(id, self.keyring.active_key_id(), now, batch)?;
        let secret = self.keyring.sign(&id);
        Ok(Issued { token, secret })
    }

    /// Issues one token.
    pub async fn issue(&self, spec: TokenSpec) -> Result<Issued, AdminError> {
        let issued = self.build(spec, self.now(), None)?;
        self.store.insert(issued.token.clone()).await?;
        Ok(issued)
    }

    /// Issues a batch of tokens (one per specification) under one new [`BatchId`], all or
    /// nothing: if any specification is invalid or the store fails, none is stored.
    pub async fn issue_batch(&self, specs: Vec<TokenSpec>) -> Result<IssuedBatch, AdminError> {
        if specs.is_empty() {
            return Err(SpecError::EmptyBatch.into());
        }
        let now = self.now();
        let batch = self.draw(|rng| BatchId::generate(rng));
        let tokens = specs
            .into_iter()
            .map(|spec| self.build(spec, now, Some(batch)))
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .insert_batch(tokens.iter().map(|i| i.token.clone()).collect())
            .await?;
        Ok(IssuedBatch { batch, tokens })
    }

    /// Issues `count` tokens from one specification as a batch.
    pub async fn issue_many(
        &self,
        spec: TokenSpec,
        count: usize,
    ) -> Result<IssuedBatch, AdminError> {
        self.issue_batch(std::iter::repeat_n(spec, count).collect())
            .await
    }

    /// Parses and verifies a token string against the keyring, without touching the store.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, Rejection> {
        let parsed = UnverifiedToken::parse(token)?;
        Ok(self.keyring.verify(&parsed)?)
    }

    /// Validates and redeems a token for `device`, atomically.
    ///
    /// Malformed and forged strings are rejected before any store access. The same device
    /// redeeming again gets its original enrollment with `replay` set, consuming nothing.
    pub async fn redeem(&self, token: &str, device: &DeviceId) -> Result<Enrollment, RedeemError> {
        let verified = self.verify(token)?;
        let request = RedeemRequest {
            token: verified,
            device,
            now: self.now(),
            leeway: self.leeway,
        };
        self.store.redeem(&request).await
    }

    /// Looks a token string up and reports its record and status, consuming nothing.
    pub async fn inspect(&self, token: &str) -> Result<(Token, Status), RedeemError> {
        let verified = self.verify(token)?;
        let id = verified.token_id();
        match self.store.get(id).await? {
            Some(record) if record.key_id() == verified.key_id() => {
                let status = record.status_at_with(self.now(), self.leeway);
                Ok((record, status))
            }
            _ => Err(Rejection::NotFound { id }.into()),
        }
    }

    /// Revokes the targeted tokens with a reason; returns how many were newly revoked.
    pub async fn revoke(&self, target: &RevokeTarget, reason: &str) -> Result<u64, AdminError> {
        let revocation = Revocation::new(self.now(), reason)?;
        Ok(self.store.revoke(target, &revocation).await?)
    }

    /// The token with this id.
    pub async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.store.get(id).await
    }

    /// One page of tokens. Statuses in the query are computed at the query's `now`; use
    /// [`query`](Onboarding::query) for a query at the service's current time.
    pub async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        self.store.list(query).await
    }

    /// A query at the service's current time and leeway.
    pub fn query(&self) -> TokenQuery {
        TokenQuery::new(self.now()).with_leeway(self.leeway)
    }

    /// The devices that redeemed a token.
    pub async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        self.store.redemptions(id).await
    }

    /// A token's status now.
    pub fn status(&self, token: &Token) -> Status {
        token.status_at_with(self.now(), self.leeway)
    }

    /// The string form of a stored token again (for example to show its QR code later),
    /// if the key that signed it is still in the keyring.
    pub fn token_string(&self, token: &Token) -> Result<TokenString, KeyringError> {
        self.keyring.sign_with(token.key_id(), &token.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    proptest! {
        /// `now()` truncates exactly like `trunc_subsecs(6)`, leap-second nanos included.
        #[test]
        fn now_truncates_like_trunc_subsecs(
            days in -300_000i32..300_000,
            secs in 0u32..86_400,
            nanos in 0u32..2_000_000_000,
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt(days + 700_000).unwrap();
            // chrono only allows leap nanos (>= 1e9) in the last second of a minute.
            let secs = if nanos >= 1_000_000_000 { secs / 60 * 60 + 59 } else { secs };
            let t = date.and_hms_nano_opt(secs / 3600, secs / 60 % 60, secs % 60, nanos)
                .unwrap()
                .and_utc();
            let mut rng = crate::service::SystemRng::default();
            let keyring = Keyring::new(crate::core::keys::SigningKey::generate(&mut rng));
            let service = Onboarding::new(keyring, MemoryStore::with_shards(1)).with_clock(Fixed(t));
            prop_assert_eq!(service.now(), t.trunc_subsecs(6));
        }
    }
}
