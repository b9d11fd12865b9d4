//! [`MemoryStore`]: a concurrent in-memory store, always compiled.
//!
//! # Layout
//!
//! Tokens are spread over independently locked shards by a mix of their id. Each shard keeps
//! its records densely in fixed-size chunks and finds them through an open-addressing table
//! of 8-byte slots (at most three quarters full), so a token costs its record plus 11 to 22
//! bytes of table, instead of a hash map bucket sized for the whole record (which, at half
//! load, doubled the cost of a token). Records are never removed, so positions are stable
//! and the table needs no tombstones.
//!
//! A token's redemptions are a list in redemption order, allocated at their exact size for
//! small usage limits. Once a token has more than 16 of them, the shard keeps a side index
//! (the same kind of table) from a keyed SipHash of each device id to its position, so the
//! replay check stays O(1) for unlimited tokens and costs one hash per redemption; tokens
//! with few redemptions (nearly all) pay for no index.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};

use crate::enrollment::{Enrollment, Redemption};
use crate::error::{RedeemError, Rejection, StoreError};
use crate::name::DeviceId;
use crate::rules::{self, Decision, RedeemRequest};
use crate::store::{PageCursor, RevokeTarget, TokenPage, TokenQuery, TokenStore};
use crate::token::{Revocation, Token, TokenId, UsageLimit};

/// Mixes a token id into 64 well-spread bits (every byte takes part, so structured ids from
/// other systems spread as well as random ones). The high half picks the shard; the low half
/// places and tags the token in the shard's table.
fn mix(id: &TokenId) -> u64 {
    let x = u128::from_le_bytes(*id.as_bytes());
    // Truncations intended: the two 64-bit halves.
    let (lo, hi) = (x as u64, (x >> 64) as u64);
    let mut h = lo ^ hi.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // MurmurHash3's 64-bit finalizer.
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// A hasher for keys that are already hashes or small integers: one multiply spreads them
/// over the top bits the standard map's probing uses.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SpreadMap<K, V> = HashMap<K, V, BuildHasherDefault<Spread>>;

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

/// Above this many redemptions a token gets a hash index of its devices.
const INDEX_THRESHOLD: usize = 16;

/// Records per chunk. Chunks never move once full, so growing a shard copies at most one
/// chunk, and a shard wastes at most one partly filled chunk.
const CHUNK: usize = 256;

/// The shard-local position of a record.
type Pos = u32;

struct Entry {
    token: Token,
    /// In redemption order.
    redemptions: Vec<Redemption>,
}

impl Entry {
    /// How many redemption records to make room for when the first one arrives: exactly
    /// the limit for small limits (a single-use token keeps exactly one record).
    fn first_capacity(limit: UsageLimit) -> usize {
        limit.max_uses().map_or(4, |max| (max as usize).min(4))
    }

    /// Where `device` already is in `redemptions`, by a linear scan.
    fn scan(&self, device: &DeviceId) -> Option<usize> {
        self.redemptions.iter().position(|r| r.device == *device)
    }
}

/// Open addressing with linear probing over 8-byte slots `(tag << 32) | (position + 1)`;
/// 0 marks an empty slot. At most three quarters full. Entries are never removed.
///
/// Used twice: a shard's tokens (tag: the low half of [`mix`]) and a long redemption list's
/// devices (tag: a keyed hash of the device id). Equal tags are allowed; the caller's
/// predicate tells them apart, and a probe touches one slot array only, not a separate
/// control array and buckets.
#[derive(Default)]
struct Table {
    slots: Vec<u64>,
}

impl Table {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The first position whose tag is `tag` and for which `is` holds.
    fn find(&self, tag: u32, mut is: impl FnMut(Pos) -> bool) -> Option<Pos> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = tag as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            // Truncation intended: the low half holds the position + 1.
            if (slot >> 32) as u32 == tag && is(slot as u32 - 1) {
                return Some(slot as u32 - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// Makes room for `total` entries.
    #[inline]
    fn reserve(&mut self, total: usize) {
        // Powers of two: the same test as `grow`'s, without its arithmetic.
        if self.slots.len() >= 8 && total.saturating_mul(4) <= self.slots.len() * 3 {
            return;
        }
        self.grow(total);
    }

    #[cold]
    fn grow(&mut self, total: usize) {
        let needed = total
            .saturating_mul(4)
            .div_ceil(3)
            .max(8)
            .next_power_of_two();
        if needed <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; needed]);
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.place(slot);
        }
    }

    fn place(&mut self, slot: u64) {
        let mask = self.mask();
        // Truncation intended: the tag is the high half.
        let mut i = (slot >> 32) as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Adds a position known to be absent; call [`reserve`](Table::reserve) first.
    fn insert(&mut self, tag: u32, position: Pos) {
        self.place(u64::from(tag) << 32 | u64::from(position + 1));
    }
}

#[derive(Default)]
struct Shard {
    table: Table,
    chunks: Vec<Vec<Entry>>,
    len: usize,
    /// Device indexes (tag: keyed device hash, position in the token's redemptions) of the
    /// entries with more than [`INDEX_THRESHOLD`] redemptions.
    indexes: SpreadMap<Pos, Table>,
}

impl Shard {
    fn find(&self, hash: u64, id: &TokenId) -> Option<Pos> {
        // Truncation intended: the low half is the tag.
        self.table
            .find(hash as u32, |p| self.entry(p).token.id() == *id)
    }

    fn entry(&self, position: Pos) -> &Entry {
        let p = position as usize;
        &self.chunks[p / CHUNK][p % CHUNK]
    }

    fn entry_mut(&mut self, position: Pos) -> &mut Entry {
        let p = position as usize;
        &mut self.chunks[p / CHUNK][p % CHUNK]
    }

    fn get(&self, hash: u64, id: &TokenId) -> Option<&Entry> {
        self.find(hash, id).map(|p| self.entry(p))
    }

    fn get_mut(&mut self, hash: u64, id: &TokenId) -> Option<&mut Entry> {
        self.find(hash, id).map(|p| self.entry_mut(p))
    }

    fn reserve(&mut self, additional: usize) {
        let total = self.len.saturating_add(additional);
        self.table.reserve(total);
        self.chunks
            .reserve(total.div_ceil(CHUNK).saturating_sub(self.chunks.len()));
    }

    /// Adds a token whose id is known to be absent.
    fn push(&mut self, hash: u64, token: Token) -> Result<(), StoreError> {
        let position = Pos::try_from(self.len)
            .ok()
            .filter(|&p| p < Pos::MAX - 1)
            .ok_or_else(|| StoreError::backend("memory", "a shard is full", SHARD_FULL))?;
        self.reserve(1);
        // Truncation intended: the low half is the tag.
        self.table.insert(hash as u32, position);
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(Entry {
                token,
                redemptions: Vec::new(),
            }),
            _ => self.chunks.push(vec![Entry {
                token,
                redemptions: Vec::new(),
            }]),
        }
        self.len += 1;
        Ok(())
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.chunks.iter().flatten()
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.chunks.iter_mut().flatten()
    }
}

/// A shard's lock on its own 128-byte line (two 64-byte lines: adjacent-line prefetch), so
/// threads working on different shards do not contend on a shared cache line.
#[repr(align(128))]
struct Padded(RwLock<Shard>);

/// A shard or a token's redemption list is at its size limit.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory store keeps at most {max} {what}", max = Pos::MAX - 1)]
struct Full {
    what: &'static str,
}

const SHARD_FULL: Full = Full {
    what: "tokens per shard",
};

/// A concurrent in-memory [`TokenStore`].
///
/// Tokens are spread over independently locked shards by id, so redemptions of different
/// tokens rarely contend, and a redemption holds one shard's write lock only for the rule
/// check and the update: it is exact under any number of parallel redeemers. Nothing is
/// persisted; use it for tests, single-process tools, or in front of nothing at all.
///
/// A redemption allocates nothing beyond the record it keeps (a single-use token keeps
/// exactly one), and a stored token without metadata or policies costs about 235 bytes
/// of heap (16 more per policy); see `BENCHMARKS.md`.
///
/// ```
/// use onboarding_token::{MemoryStore, Keyring, Onboarding, SigningKey};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
/// # let _ = service;
/// ```
pub struct MemoryStore {
    shards: Box<[Padded]>,
    /// Keys the device-id hash of long redemption lists (SipHash, random per store).
    devices: RandomState,
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

fn read(lock: &Padded) -> RwLockReadGuard<'_, Shard> {
    // The lock is never held across code that can panic mid-update, so a poisoned shard
    // still holds consistent data.
    lock.0.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &Padded) -> RwLockWriteGuard<'_, Shard> {
    lock.0.write().unwrap_or_else(PoisonError::into_inner)
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
        let n = shards.clamp(1, 1 << 31).next_power_of_two();
        Self {
            shards: (0..n)
                .map(|_| Padded(RwLock::new(Shard::default())))
                .collect(),
            devices: RandomState::new(),
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

    fn shard_index(&self, hash: u64) -> usize {
        // Truncation intended: the high half picks the shard.
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    fn shard(&self, hash: u64) -> &Padded {
        &self.shards[self.shard_index(hash)]
    }

    /// The number of tokens stored.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Synchronous [`TokenStore::insert`].
    pub fn insert_sync(&self, token: Token) -> Result<(), StoreError> {
        let id = token.id();
        let hash = mix(&id);
        let mut shard = write(self.shard(hash));
        if shard.find(hash, &id).is_some() {
            return Err(StoreError::Duplicate(id));
        }
        shard.push(hash, token)
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
        let mut added = vec![0usize; guards.len()];
        for t in &tokens {
            let hash = mix(&t.id());
            let i = self.shard_index(hash);
            if guards[i].find(hash, &t.id()).is_some() {
                return Err(StoreError::Duplicate(t.id()));
            }
            added[i] += 1;
        }
        for (guard, &n) in guards.iter_mut().zip(&added) {
            if guard.len.saturating_add(n) >= Pos::MAX as usize {
                return Err(StoreError::backend("memory", "a shard is full", SHARD_FULL));
            }
            guard.reserve(n);
        }
        for token in tokens {
            let hash = mix(&token.id());
            let i = self.shard_index(hash);
            guards[i].push(hash, token)?;
        }
        Ok(())
    }

    /// Synchronous [`TokenStore::get`].
    pub fn get_sync(&self, id: TokenId) -> Option<Token> {
        let hash = mix(&id);
        read(self.shard(hash))
            .get(hash, &id)
            .map(|e| e.token.clone())
    }

    /// Synchronous [`TokenStore::list`].
    pub fn list_sync(&self, query: &TokenQuery) -> TokenPage {
        let limit = query.page_size();
        // The page and one more (to tell whether there is a next page), kept as a bounded
        // max-heap by listing order: a token is cloned only when it enters, not for every
        // match (tokens sit in insertion order, which is nearly creation order, so after
        // the first page most matches are larger than the heap's largest and pass by).
        let keep = limit + 1;
        let mut page: BinaryHeap<Listed> = BinaryHeap::with_capacity(keep + 1);
        for shard in self.shards.iter() {
            for entry in read(shard).entries() {
                if !query.matches(&entry.token) {
                    continue;
                }
                let key = PageCursor::after(&entry.token);
                if page.len() == keep {
                    match page.peek() {
                        Some(largest) if key < largest.key => {
                            page.pop();
                        }
                        _ => continue,
                    }
                }
                page.push(Listed {
                    key,
                    token: entry.token.clone(),
                });
            }
        }
        let sorted = page
            .into_sorted_vec()
            .into_iter()
            .map(|l| l.token)
            .collect();
        TokenPage::from_sorted(sorted, limit)
    }

    /// Synchronous [`TokenStore::redeem`].
    pub fn redeem_sync(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        let id = request.token.token_id();
        let device = request.device;
        let hash = mix(&id);
        let mut guard = write(self.shard(hash));
        let shard = &mut *guard;
        let position = shard.find(hash, &id).ok_or(Rejection::NotFound { id })?;
        let p = position as usize;
        let entry = &mut shard.chunks[p / CHUNK][p % CHUNK];

        // The replay check: a scan of a short list, the index of a long one (looked up once
        // for the check and the insert).
        let index = if entry.redemptions.len() > INDEX_THRESHOLD {
            if entry.redemptions.len() >= Pos::MAX as usize - 1 {
                return Err(StoreError::backend(
                    "memory",
                    "a token has too many redemptions",
                    Full {
                        what: "redemptions per token",
                    },
                )
                .into());
            }
            let list = &entry.redemptions;
            let index = shard
                .indexes
                .entry(position)
                // Made when the list grew past the threshold; rebuilt if it were missing.
                .or_insert_with(|| self.index_of(list));
            Some((self.device_tag(device), index))
        } else {
            None
        };
        let list = &entry.redemptions;
        let found = match &index {
            Some((tag, index)) => index
                .find(*tag, |p| list[p as usize].device == *device)
                .map(|p| p as usize),
            None => entry.scan(device),
        };
        let prior = found.map(|i| entry.redemptions[i].redeemed_at);

        // `rules::redeem_in_place`, spelled out so the enrollment is built in place.
        let decision = rules::decide(&entry.token, request, prior)?;
        entry.token.apply(&decision);
        let enrollment = Enrollment::new(&entry.token, &decision, request.now);
        if let Decision::Consume { .. } = decision {
            if let Some(new_index) = self.record(entry, index, device, request.now) {
                shard.indexes.insert(position, new_index);
            }
        }
        Ok(enrollment)
    }

    /// Appends a redemption and keeps the device index of a long list up to date; returns
    /// the index to keep when the list just grew past [`INDEX_THRESHOLD`].
    fn record(
        &self,
        entry: &mut Entry,
        index: Option<(u32, &mut Table)>,
        device: &DeviceId,
        at: DateTime<Utc>,
    ) -> Option<Table> {
        let list = &mut entry.redemptions;
        if list.capacity() == 0 {
            list.reserve_exact(Entry::first_capacity(entry.token.usage_limit()));
        } else if list.len() == list.capacity() {
            // Double, but never past the usage limit.
            let room = entry
                .token
                .usage_limit()
                .max_uses()
                .map_or(usize::MAX, |max| (max as usize).saturating_sub(list.len()));
            list.reserve_exact(list.len().min(room).max(1));
        }
        let at_position = list.len();
        list.push(Redemption {
            device: device.clone(),
            redeemed_at: at,
        });
        // Positions fit: `redeem_sync` refuses lists of `Pos::MAX - 1` and more.
        match index {
            Some((tag, index)) => {
                index.reserve(list.len());
                index.insert(tag, at_position as Pos);
                None
            }
            None if list.len() == INDEX_THRESHOLD + 1 => Some(self.index_of(list)),
            None => None,
        }
    }

    /// A device index of `list`.
    fn index_of(&self, list: &[Redemption]) -> Table {
        let mut index = Table::default();
        index.reserve(2 * list.len());
        for (i, r) in list.iter().enumerate() {
            // Positions fit: lists stop below `Pos::MAX - 1`.
            index.insert(self.device_tag(&r.device), i as Pos);
        }
        index
    }

    /// A device id's tag in a redemption index: a SipHash keyed per store, so nobody can
    /// choose device ids that pile up on one slot.
    fn device_tag(&self, device: &DeviceId) -> u32 {
        // Truncation intended: 32 bits of the hash.
        self.devices.hash_one(device.as_str()) as u32
    }

    /// Synchronous [`TokenStore::revoke`].
    pub fn revoke_sync(
        &self,
        target: &RevokeTarget,
        revocation: &Revocation,
    ) -> Result<u64, StoreError> {
        revocation.validate()?;
        let revocation = Arc::new(revocation.clone());
        if let RevokeTarget::Token(id) = target {
            let hash = mix(id);
            let mut shard = write(self.shard(hash));
            let entry = shard.get_mut(hash, id).ok_or(StoreError::NotFound(*id))?;
            return Ok(u64::from(entry.token.revoke(&revocation)));
        }
        let mut count = 0;
        for shard in self.shards.iter() {
            for entry in write(shard).entries_mut() {
                if target.matches(&entry.token) && entry.token.revoke(&revocation) {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Synchronous [`TokenStore::redemptions`].
    pub fn redemptions_sync(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        let hash = mix(&id);
        let mut redemptions = read(self.shard(hash))
            .get(hash, &id)
            .map(|e| e.redemptions.clone())
            .ok_or(StoreError::NotFound(id))?;
        // Oldest first by time even when clocks went back; the stable sort keeps
        // redemption order for equal times.
        if !redemptions.is_sorted_by_key(|r| r.redeemed_at) {
            redemptions.sort_by_key(|r| r.redeemed_at);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_finds_what_it_holds_across_growth() {
        let mut table = Table::default();
        for p in 0..10_000u32 {
            // Many equal tags: probing must still tell positions apart.
            let tag = p % 7;
            table.reserve(p as usize + 1);
            table.insert(tag, p);
        }
        for p in 0..10_000u32 {
            assert_eq!(table.find(p % 7, |q| q == p), Some(p));
        }
        assert_eq!(table.find(3, |q| q == 10_000), None);
        assert!(table.slots.iter().filter(|&&s| s != 0).count() * 4 <= table.slots.len() * 3);
    }

    /// Past the index threshold, replays are still found (at their own time) and new
    /// devices still consume, up to the limit.
    #[test]
    fn long_redemption_lists_replay_and_exhaust_exactly() {
        use crate::codec::VerifiedToken;
        use crate::keys::KeyId;
        use crate::name::OrgId;
        use crate::policy::GroupId;
        use crate::rules::Leeway;
        use crate::token::{ExpirySpec, TokenSpec};
        use chrono::TimeDelta;

        let store = MemoryStore::new();
        let t0 = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
        let key = KeyId::from_bytes([1; 4]);
        let limit = UsageLimit::limited(100).unwrap();
        let mut ids = Vec::new();
        for (n, limit) in [(1u8, limit), (2, UsageLimit::Unlimited)] {
            let id = TokenId::from_bytes([n; 16]);
            let spec = TokenSpec::new(OrgId::new("o").unwrap(), GroupId::new("g").unwrap())
                .with_usage_limit(limit)
                .with_expiry(ExpirySpec::Never);
            store
                .insert_sync(spec.into_token(id, key, t0, None).unwrap())
                .unwrap();
            ids.push(id);
        }
        let device = |i: i64| DeviceId::new(format!("SN-{i}")).unwrap();
        let redeem = |id: TokenId, d: &DeviceId, at: i64| {
            store.redeem_sync(&RedeemRequest {
                token: VerifiedToken::new(key, id),
                device: d,
                now: t0 + TimeDelta::seconds(at),
                leeway: Leeway::ZERO,
            })
        };
        for &id in &ids {
            for i in 0..100 {
                let e = redeem(id, &device(i), i).unwrap();
                assert!(!e.replay);
                assert_eq!(e.uses, i as u64 + 1);
            }
            for i in (0..100).rev() {
                let e = redeem(id, &device(i), 1000).unwrap();
                assert!(e.replay, "device {i} replays");
                assert_eq!(e.redeemed_at, t0 + TimeDelta::seconds(i));
                assert_eq!(e.uses, 100);
            }
        }
        assert!(matches!(
            redeem(ids[0], &device(100), 2000),
            Err(RedeemError::Rejected(Rejection::Exhausted { limit: 100 }))
        ));
        assert_eq!(redeem(ids[1], &device(100), 2000).unwrap().uses, 101);
        let list = store.redemptions_sync(ids[1]).unwrap();
        assert_eq!(list.len(), 101);
        assert!(
            list.iter()
                .enumerate()
                .all(|(i, r)| r.device == device(i as i64))
        );
    }

    #[test]
    fn mix_spreads_structured_ids_over_shards() {
        let store = MemoryStore::new();
        let mut used = HashSet::new();
        for i in 0..1024u32 {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            used.insert(store.shard_index(mix(&TokenId::from_bytes(bytes))));
        }
        assert_eq!(used.len(), MemoryStore::DEFAULT_SHARDS);
    }
}
