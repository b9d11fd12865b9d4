//! [`MemoryStore`]: a concurrent in-memory store, always compiled.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};

use crate::enrollment::{Enrollment, Redemption};
use crate::error::{RedeemError, Rejection, StoreError};
use crate::name::DeviceId;
use crate::rules::{self, Decision, RedeemRequest};
use crate::store::{PageCursor, RevokeTarget, TokenPage, TokenQuery, TokenStore};
use crate::token::{Revocation, Token, TokenId};

/// Token ids are 128 random bits, so their first 8 bytes are already a good hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

type Shard = HashMap<TokenId, Entry, BuildHasherDefault<IdHasher>>;

/// Above this many redemptions a token gets a hash index of its devices.
const INDEX_THRESHOLD: usize = 16;

struct Entry {
    token: Token,
    /// In redemption order.
    redemptions: Vec<Redemption>,
    /// Device -> position in `redemptions`, built once the list grows long. Boxed so an
    /// entry without one costs 8 bytes instead of a 48-byte empty map.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<DeviceId, usize>>>,
}

impl Entry {
    fn new(token: Token) -> Self {
        Self {
            token,
            redemptions: Vec::new(),
            index: None,
        }
    }

    fn prior(&self, device: &DeviceId) -> Option<DateTime<Utc>> {
        match &self.index {
            Some(index) => index.get(device).map(|&i| self.redemptions[i].redeemed_at),
            None => self
                .redemptions
                .iter()
                .find(|r| r.device == *device)
                .map(|r| r.redeemed_at),
        }
    }

    fn record(&mut self, device: &DeviceId, at: DateTime<Utc>) {
        let position = self.redemptions.len();
        self.redemptions.push(Redemption {
            device: device.clone(),
            redeemed_at: at,
        });
        if let Some(index) = &mut self.index {
            index.insert(device.clone(), position);
        } else if self.redemptions.len() > INDEX_THRESHOLD {
            let index = self
                .redemptions
                .iter()
                .enumerate()
                .map(|(i, r)| (r.device.clone(), i))
                .collect();
            self.index = Some(Box::new(index));
        }
    }
}

/// A concurrent in-memory [`TokenStore`].
///
/// Tokens are spread over independently locked shards by id, so redemptions of different
/// tokens rarely contend, and a redemption holds one shard's write lock only for the rule
/// check and the update: it is exact under any number of parallel redeemers. Nothing is
/// persisted; use it for tests, single-process tools, or in front of nothing at all.
///
/// ```
/// use onboarding_token::{MemoryStore, Keyring, Onboarding, SigningKey};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
/// # let _ = service;
/// ```
pub struct MemoryStore {
    shards: Box<[RwLock<Shard>]>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

fn read(lock: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    // The lock is never held across code that can panic mid-update, so a poisoned shard
    // still holds consistent data.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    /// The default number of shards.
    pub const DEFAULT_SHARDS: usize = 64;

    /// An empty store with [`DEFAULT_SHARDS`](MemoryStore::DEFAULT_SHARDS) shards.
    pub fn new() -> Self {
        Self::with_shards(Self::DEFAULT_SHARDS)
    }

    /// An empty store with `shards` shards (rounded up to a power of two, at least 1).
    pub fn with_shards(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        Self {
            shards: (0..n).map(|_| RwLock::new(Shard::default())).collect(),
        }
    }

    /// An empty store sized for about `tokens` tokens.
    pub fn with_capacity(tokens: usize) -> Self {
        let store = Self::new();
        let per_shard = tokens.div_ceil(store.shards.len());
        for shard in store.shards.iter() {
            write(shard).reserve(per_shard);
        }
        store
    }

    fn shard_index(&self, id: &TokenId) -> usize {
        let b = id.as_bytes();
        (usize::from(b[15]) | usize::from(b[14]) << 8) & (self.shards.len() - 1)
    }

    fn shard(&self, id: &TokenId) -> &RwLock<Shard> {
        &self.shards[self.shard_index(id)]
    }

    /// The number of tokens stored.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Synchronous [`TokenStore::insert`].
    pub fn insert_sync(&self, token: Token) -> Result<(), StoreError> {
        let mut shard = write(self.shard(&token.id()));
        if shard.contains_key(&token.id()) {
            return Err(StoreError::Duplicate(token.id()));
        }
        shard.insert(token.id(), Entry::new(token));
        Ok(())
    }

    /// Synchronous [`TokenStore::insert_batch`].
    pub fn insert_batch_sync(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let mut seen = HashSet::with_capacity(tokens.len());
        for t in &tokens {
            if !seen.insert(t.id()) {
                return Err(StoreError::Duplicate(t.id()));
            }
        }
        // Lock every shard in index order (no deadlock), check, then write: all or nothing.
        let mut guards: Vec<_> = self.shards.iter().map(write).collect();
        if let Some(dup) = tokens
            .iter()
            .find(|t| guards[self.shard_index(&t.id())].contains_key(&t.id()))
        {
            return Err(StoreError::Duplicate(dup.id()));
        }
        for token in tokens {
            let i = self.shard_index(&token.id());
            guards[i].insert(token.id(), Entry::new(token));
        }
        Ok(())
    }

    /// Synchronous [`TokenStore::get`].
    pub fn get_sync(&self, id: TokenId) -> Option<Token> {
        read(self.shard(&id)).get(&id).map(|e| e.token.clone())
    }

    /// Synchronous [`TokenStore::list`].
    pub fn list_sync(&self, query: &TokenQuery) -> TokenPage {
        let limit = query.page_size();
        let mut matching: Vec<Token> = Vec::new();
        for shard in self.shards.iter() {
            matching.extend(
                read(shard)
                    .values()
                    .filter(|e| query.matches(&e.token))
                    .map(|e| e.token.clone()),
            );
        }
        let key = |t: &Token| PageCursor::after(t);
        if matching.len() > limit + 1 {
            matching.select_nth_unstable_by_key(limit, key);
            matching.truncate(limit + 1);
        }
        matching.sort_unstable_by_key(key);
        TokenPage::from_sorted(matching, limit)
    }

    /// Synchronous [`TokenStore::redeem`].
    pub fn redeem_sync(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        let id = request.token.token_id();
        let mut shard = write(self.shard(&id));
        let entry = shard.get_mut(&id).ok_or(Rejection::NotFound { id })?;
        let prior = entry.prior(request.device);
        let (decision, enrollment) = rules::redeem_in_place(&mut entry.token, request, prior)?;
        if let Decision::Consume { .. } = decision {
            entry.record(request.device, request.now);
        }
        Ok(enrollment)
    }

    /// Synchronous [`TokenStore::revoke`].
    pub fn revoke_sync(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        let revocation = std::sync::Arc::new(revocation.clone());
        if let RevokeTarget::Token(id) = target {
            let mut shard = write(self.shard(id));
            let entry = shard.get_mut(id).ok_or(StoreError::NotFound(*id))?;
            return Ok(u64::from(entry.token.revoke(&revocation)));
        }
        let mut count = 0;
        for shard in self.shards.iter() {
            for entry in write(shard).values_mut() {
                if target.matches(&entry.token) && entry.token.revoke(&revocation) {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Synchronous [`TokenStore::redemptions`].
    pub fn redemptions_sync(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        read(self.shard(&id))
            .get(&id)
            .map(|e| e.redemptions.clone())
            .ok_or(StoreError::NotFound(id))
    }
}

impl TokenStore for MemoryStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.insert_sync(token)
    }

    async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.insert_batch_sync(tokens)
    }

    async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        Ok(self.get_sync(id))
    }

    async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
        Ok(self.list_sync(query))
    }

    async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        self.redeem_sync(request)
    }

    async fn revoke(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        self.revoke_sync(target, revocation)
    }

    async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        self.redemptions_sync(id)
    }
}
