//! [`MemoryStore`]: tokens in memory, for tests, examples, tools and single-process servers.
//!
//! Tokens are spread over shards by id; each shard is an `RwLock<HashMap>` from token id to
//! the token's entry behind a `Mutex` of its own. A redemption takes its shard's read
//! lock (shared with every other redemption) and then its token's lock, so redemptions of
//! different tokens do not wait for each other and those of one token are serialized: the
//! rule check and the use-count update are one step, as the store contract requires. Only
//! inserts take a shard's write lock. Lock order is always shard, then token; a batch insert
//! takes the shards' write locks in index order.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::core::enrollment::{Enrollment, Redemption};
use crate::core::error::{RedeemError, Rejection, StoreError};
use crate::core::name::DeviceId;
use crate::core::rules::{self, Decision, RedeemRequest};
use crate::core::token::{Revocation, Token, TokenId};
use crate::core::validity::floor_micros;
use crate::store::{PageCursor, RevokeTarget, TokenPage, TokenQuery, TokenStore};

/// A redemption list longer than this gets a device index, so the replay check stays O(1)
/// for unlimited tokens; shorter lists are scanned, which costs less than hashing.
const INDEX_AFTER: usize = 16;

/// A token and the devices that redeemed it.
#[derive(Debug)]
struct Entry {
    token: Token,
    redemptions: Redemptions,
}

/// A token's redemptions in redemption order: a short list is scanned for a replay, a long
/// one has an index from device to position.
#[derive(Debug)]
enum Redemptions {
    /// At most [`INDEX_AFTER`] records.
    Short(Vec<Redemption>),
    /// More, with their index (boxed: a token with few redemptions pays for a pointer, not
    /// an empty map).
    Long(Box<Indexed>),
}

#[derive(Debug)]
struct Indexed {
    list: Vec<Redemption>,
    index: HashMap<DeviceId, usize>,
}

impl Redemptions {
    fn as_slice(&self) -> &[Redemption] {
        match self {
            Redemptions::Short(list) => list,
            Redemptions::Long(long) => &long.list,
        }
    }
}

impl Entry {
    fn new(token: Token) -> Self {
        Self {
            token,
            redemptions: Redemptions::Short(Vec::new()),
        }
    }

    /// Runs the rules for `request` on this token and keeps a new device's redemption.
    fn redeem(&mut self, request: &RedeemRequest<'_>) -> Result<Enrollment, Rejection> {
        let device = request.device;
        // Kept to the microsecond, as every store keeps times.
        let record = || Redemption {
            device: device.clone(),
            redeemed_at: floor_micros(request.now),
        };
        match &mut self.redemptions {
            Redemptions::Short(list) => {
                let prior = list.iter().find(|r| r.device == *device);
                let prior = prior.map(|r| r.redeemed_at);
                let (decision, enrollment) =
                    rules::redeem_in_place(&mut self.token, request, prior)?;
                if let Decision::Consume { .. } = decision {
                    if list.capacity() == 0 {
                        // A list of the usage limit's size, up to four records at first.
                        let limit = self.token.usage_limit().max_uses().unwrap_or(u32::MAX);
                        list.reserve_exact(limit.min(4) as usize);
                    }
                    list.push(record());
                    if list.len() > INDEX_AFTER {
                        let list = std::mem::take(list);
                        let positions = list.iter().enumerate();
                        let index = positions.map(|(i, r)| (r.device.clone(), i)).collect();
                        self.redemptions = Redemptions::Long(Box::new(Indexed { list, index }));
                    }
                }
                Ok(enrollment)
            }
            Redemptions::Long(long) => {
                let Indexed { list, index } = &mut **long;
                // One lookup serves the replay check and the insert (a rejected new device
                // may still have grown the index by its slot).
                let slot = index.entry(device.clone());
                let prior = match &slot {
                    Slot::Occupied(at) => Some(list[*at.get()].redeemed_at),
                    Slot::Vacant(_) => None,
                };
                let (decision, enrollment) =
                    rules::redeem_in_place(&mut self.token, request, prior)?;
                if let (Decision::Consume { .. }, Slot::Vacant(vacant)) = (decision, slot) {
                    vacant.insert(list.len());
                    list.push(record());
                }
                Ok(enrollment)
            }
        }
    }
}

type Shard = RwLock<HashMap<TokenId, Box<Mutex<Entry>>>>;

/// A poisoned lock still guards consistent data: every write under these locks completes
/// before anything that could panic, so a panic elsewhere leaves nothing half-written.
fn read(shard: &Shard) -> RwLockReadGuard<'_, HashMap<TokenId, Box<Mutex<Entry>>>> {
    shard.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(shard: &Shard) -> RwLockWriteGuard<'_, HashMap<TokenId, Box<Mutex<Entry>>>> {
    shard.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock(entry: &Mutex<Entry>) -> MutexGuard<'_, Entry> {
    entry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A token in a listing page, ordered by its listing key only.
struct Listed {
    key: PageCursor,
    token: Token,
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Listed {}

impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// A concurrent in-memory [`TokenStore`], always compiled.
///
/// Nothing survives the process: use it for tests, examples and tools, or a single-process
/// server that can afford to lose its tokens. Limits are exact under concurrency (each
/// token has its own lock).
///
/// ```
/// use onboarding_token::{MemoryStore, Keyring, Onboarding, SigningKey};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
/// # let _ = service;
/// ```
pub struct MemoryStore {
    shards: Box<[Shard]>,
    /// Picks a token's shard (keyed per store, so ids chosen elsewhere spread too).
    hasher: RandomState,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("tokens", &self.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// The default number of shards.
    pub const DEFAULT_SHARDS: usize = 64;

    /// An empty store with [`DEFAULT_SHARDS`](MemoryStore::DEFAULT_SHARDS) shards.
    pub fn new() -> Self {
        Self::with_shards(Self::DEFAULT_SHARDS)
    }

    /// An empty store with `shards` shards (at least 1). One shard makes every token share
    /// one map, which tests use to make operations on different tokens meet.
    pub fn with_shards(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    /// An empty store with room for about `tokens` tokens before any map grows.
    pub fn with_capacity(tokens: usize) -> Self {
        let store = Self::new();
        let per_shard = tokens.div_ceil(store.shards.len());
        for shard in store.shards.iter() {
            // Ids spread at random: leave room for a shard that gets more than its share.
            write(shard).reserve(per_shard + per_shard / 8);
        }
        store
    }

    fn shard_index(&self, id: &TokenId) -> usize {
        // The remainder is below the shard count, which is a `usize`.
        (self.hasher.hash_one(id) % self.shards.len() as u64) as usize
    }

    fn shard(&self, id: &TokenId) -> &Shard {
        &self.shards[self.shard_index(id)]
    }

    /// Runs `f` on the entry of `id` under its lock; `None` if there is no such token.
    ///
    /// The shard's read lock is held while the token's lock is awaited: token locks are held
    /// for no I/O, only the rule check and a push, so the wait is short, and an entry needs
    /// no reference count of its own.
    fn with_entry<T>(&self, id: &TokenId, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let shard = read(self.shard(id));
        let entry = shard.get(id)?;
        Some(f(&mut lock(entry)))
    }

    /// Runs `f` on every entry, one shard at a time, each under its lock.
    fn for_each(&self, mut f: impl FnMut(&mut Entry)) {
        for shard in self.shards.iter() {
            for entry in read(shard).values() {
                f(&mut lock(entry));
            }
        }
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
        let id = token.id();
        let mut shard = write(self.shard(&id));
        if shard.contains_key(&id) {
            return Err(StoreError::Duplicate(id));
        }
        shard.insert(id, Box::new(Mutex::new(Entry::new(token))));
        Ok(())
    }

    /// Synchronous [`TokenStore::insert_batch`]: all or nothing.
    pub fn insert_batch_sync(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let mut seen = HashSet::with_capacity(tokens.len());
        if let Some(t) = tokens.iter().find(|t| !seen.insert(t.id())) {
            return Err(StoreError::Duplicate(t.id()));
        }
        // Entries are built and grouped by shard before any lock is taken.
        let mut by_shard: Vec<Vec<(TokenId, Box<Mutex<Entry>>)>> =
            self.shards.iter().map(|_| Vec::new()).collect();
        for token in tokens {
            let id = token.id();
            by_shard[self.shard_index(&id)].push((id, Box::new(Mutex::new(Entry::new(token)))));
        }
        // The write locks of the shards the batch touches, in index order (no deadlock with
        // another batch), held for the check and the inserts only: all or nothing.
        let mut locked: Vec<_> = self
            .shards
            .iter()
            .zip(by_shard)
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(shard, entries)| (write(shard), entries))
            .collect();
        for (shard, entries) in &locked {
            if let Some((id, _)) = entries.iter().find(|(id, _)| shard.contains_key(id)) {
                return Err(StoreError::Duplicate(*id));
            }
        }
        for (shard, entries) in &mut locked {
            shard.extend(entries.drain(..));
        }
        Ok(())
    }

    /// Synchronous [`TokenStore::get`].
    pub fn get_sync(&self, id: TokenId) -> Option<Token> {
        self.with_entry(&id, |e| e.token.clone())
    }

    /// Synchronous [`TokenStore::list`].
    pub fn list_sync(&self, query: &TokenQuery) -> TokenPage {
        let limit = query.limit();
        // The page and one more (which tells whether there is a next page), as a max-heap
        // by listing order: a match is cloned only when it enters the page.
        let keep = limit + 1;
        let mut page = BinaryHeap::with_capacity(keep);
        self.for_each(|entry| {
            if !query.matches(&entry.token) {
                return;
            }
            let key = PageCursor::after(&entry.token);
            if page.len() == keep {
                if page.peek().is_some_and(|last: &Listed| key < last.key) {
                    page.pop();
                } else {
                    return;
                }
            }
            page.push(Listed {
                key,
                token: entry.token.clone(),
            });
        });
        let sorted = page.into_sorted_vec().into_iter().map(|l| l.token);
        TokenPage::from_sorted(sorted.collect(), limit)
    }

    /// Synchronous [`TokenStore::redeem`].
    pub fn redeem_sync(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        let id = request.token.token_id();
        self.with_entry(&id, |entry| entry.redeem(request))
            .unwrap_or(Err(Rejection::NotFound { id }))
            .map_err(RedeemError::from)
    }

    /// Synchronous [`TokenStore::revoke`].
    pub fn revoke_sync(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        let revocation = std::sync::Arc::new(revocation.clone());
        if let RevokeTarget::Token(id) = target {
            return self
                .with_entry(id, |e| u64::from(e.token.revoke(&revocation)))
                .ok_or(StoreError::NotFound(*id));
        }
        let mut count = 0;
        self.for_each(|entry| {
            if target.matches(&entry.token) && entry.token.revoke(&revocation) {
                count += 1;
            }
        });
        Ok(count)
    }

    /// Synchronous [`TokenStore::redemptions`]: oldest first.
    pub fn redemptions_sync(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        let mut redemptions = self
            .with_entry(&id, |e| e.redemptions.as_slice().to_vec())
            .ok_or(StoreError::NotFound(id))?;
        // By time even when the clock went back; the stable sort keeps redemption order
        // for equal times.
        redemptions.sort_by_key(|r| r.redeemed_at);
        Ok(redemptions)
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
