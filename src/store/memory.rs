//! [`MemoryStore`]: a concurrent in-memory store, always compiled.
//!
//! # Layout
//!
//! Tokens are spread over shards by a mix of their id. Each shard keeps its records densely
//! in fixed-size chunks and finds them through an open-addressing table of 8-byte slots (at
//! most three quarters full), so a token costs its record plus 11 to 22 bytes of table,
//! instead of a hash map bucket sized for the whole record (which, at half load, doubled
//! the cost of a token). Records are never removed, so positions are stable and the table
//! needs no tombstones.
//!
//! # Concurrency
//!
//! Every record has a lock of its own, and finding a record takes no shared lock: a
//! shard's table and chunks are only ever published (each table size and each chunk set
//! once, each slot filled once, atomically, after the record it names), never changed in
//! place, so a lookup reads them while an insert goes on, and locks only the record (or,
//! rarely, the records) whose tag matches, to compare the id. A table that must grow is
//! built whole in a new size, which lookups use from then on; the old sizes stay until the
//! store is dropped (about as much again as the table: some 17 bytes per token at a million
//! tokens, none for a store made with its capacity unless a shard outgrows its share).
//! So a redemption writes its own token's record and no lock or table of the shard: with
//! one lock per shard, that lock's cache line moved between the cores on about every other
//! redemption, whichever tokens they were. What threads redeeming different tokens can
//! still write in common: a reference count on an assignment that is not popular (tokens
//! of small batches share it; a large batch's is striped per thread, see below), on shared
//! metadata, and a cache line shared by two neighbouring records. Inserts take their
//! shard's writer lock; a bulk insert holds every shard's, but redemptions of stored tokens
//! go on meanwhile, and a batch's tokens become visible to lookups one by one (it is still
//! all or nothing: every check comes before the first token is stored). All of it is safe
//! Rust (`Mutex`, `OnceLock` and atomics). Never call a lookup or `for_each` on a shard
//! while holding one of its record guards: the probe may need that record's lock.
//!
//! A redemption is kept in 24 bytes (the device id and the time in microseconds, where a
//! public [`Redemption`] takes 32). A token's first is kept in its record (in the 32 bytes
//! a list header and its tag take anyway), so redeeming a single-use token allocates
//! nothing; from the second on they are a list in redemption order, allocated at their
//! exact size for small usage limits. Once a token has more than 16 of them, its record
//! points to an index (the same kind of table) from a keyed SipHash of each device id to its
//! position, so the replay check stays O(1) for unlimited tokens and costs one hash per
//! redemption; tokens with few redemptions (nearly all) pay 8 bytes for the empty pointer.
//!
//! Equal assignments (organization, group, policies) are kept once per shard. An enrollment
//! takes a reference on its token's assignment; for a popular one (a large batch) the shard
//! keeps a few equal copies and each thread takes its references on a copy of its own, so
//! threads redeeming tokens of one batch do not all write one reference count.

use std::collections::{BinaryHeap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, Utc};

use crate::enrollment::{Enrollment, Redemption};
use crate::error::{RedeemError, Rejection, StoreError};
use crate::name::DeviceId;
use crate::policy::Assignment;
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

/// Records per chunk. A chunk is allocated whole when its first token arrives and never
/// moves, so growing a shard copies no record, and a shard wastes at most one partly
/// filled chunk (an empty store's first tokens cost at most 64 records per shard).
const CHUNK: usize = 64;

/// The shard-local position of a record.
type Pos = u32;

struct Entry {
    token: Token,
    redemptions: Records,
    /// Once there are more than [`INDEX_THRESHOLD`] redemptions: their devices (tag: keyed
    /// device hash, value: position in `redemptions`). Kept beside the list, so a long
    /// list's replay check follows one pointer from the record it already holds.
    index: Option<Box<Table>>,
}

impl Entry {
    fn new(token: Token) -> Self {
        Self {
            token,
            redemptions: Records::NONE,
            index: None,
        }
    }
}

/// A redemption as the store keeps it: 24 bytes, where a [`Redemption`] takes 32 (its time
/// is 12 bytes and padding). Every redemption of a long list is one of these, so the list
/// and the memory a growing store touches are a quarter smaller.
///
/// The time is kept as the SQL stores keep it, in whole microseconds since the epoch
/// (rounded down), so a time during a leap second comes back as the same fraction of the
/// second after it.
struct Record {
    device: DeviceId,
    /// Microseconds since the Unix epoch, as every store keeps redemption times.
    at: i64,
}

impl Record {
    fn new(device: &DeviceId, at: DateTime<Utc>) -> Self {
        Self {
            device: device.clone(),
            at: at.timestamp_micros(),
        }
    }

    fn redeemed_at(&self) -> DateTime<Utc> {
        // Made from a `DateTime`, so it converts back, except for a leap second in chrono's
        // very last second, which counts past the end of its range: the end stands in.
        DateTime::from_timestamp_micros(self.at).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn to_redemption(&self) -> Redemption {
        Redemption {
            device: self.device.clone(),
            redeemed_at: self.redeemed_at(),
        }
    }
}

const _: () = assert!(std::mem::size_of::<Record>() == 24);

/// A token's redemption records, in redemption order. The first is kept in the entry
/// itself, so redeeming a single-use token (nearly every token) allocates nothing and
/// touches no memory beyond its record; from the second on they are a list, allocated at
/// exactly the limit for small limits, then doubling, never past the limit.
enum Records {
    /// Exactly one.
    One(Record),
    /// None (an empty list allocates nothing), or two and more.
    Many(Vec<Record>),
}

// The first record takes no room beyond a list header and the variant's tag.
const _: () = assert!(std::mem::size_of::<Records>() == 32);

impl Records {
    const NONE: Self = Records::Many(Vec::new());

    fn as_slice(&self) -> &[Record] {
        match self {
            Records::One(record) => std::slice::from_ref(record),
            Records::Many(list) => list,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Appends `record` to the records of a token limited to `limit`. Anything that can
    /// fail (allocating) comes before the records change.
    fn push(&mut self, record: Record, limit: UsageLimit) {
        match self {
            Records::Many(list) if list.is_empty() => *self = Records::One(record),
            Records::Many(list) => {
                if list.len() == list.capacity() {
                    let room = limit
                        .max_uses()
                        .map_or(usize::MAX, |max| (max as usize).saturating_sub(list.len()));
                    list.reserve_exact(list.len().min(room).max(1));
                }
                list.push(record);
            }
            Records::One(_) => {
                // Room for the limit when it is small.
                let room = limit.max_uses().map_or(4, |max| (max as usize).clamp(2, 4));
                let mut list = Vec::with_capacity(room);
                if let Records::One(first) = std::mem::replace(self, Records::NONE) {
                    list.push(first);
                }
                list.push(record);
                *self = Records::Many(list);
            }
        }
    }
}

/// Linear probing over `len` slots (a power of two, or none), read through `load`: the
/// first answer of `is` for a position stored under `tag`, or else the empty slot where the
/// probe stopped (`None` when there are no slots).
///
/// Slots are `(tag << 32) | (position + 1)`; 0 marks an empty slot. Shared by both kinds of
/// table: a [`Table`] of plain slots and a shard's [`Levels`] of atomic ones.
#[inline(always)]
fn probe_slots<R>(
    len: usize,
    load: impl Fn(usize) -> u64,
    tag: u32,
    mut is: impl FnMut(Pos) -> Option<R>,
) -> Result<R, Option<usize>> {
    if len == 0 {
        return Err(None);
    }
    let mask = len - 1;
    let mut i = tag as usize & mask;
    loop {
        let slot = load(i);
        if slot == 0 {
            return Err(Some(i));
        }
        // Truncation intended: the high half is the tag, the low half the position + 1.
        if (slot >> 32) as u32 == tag {
            if let Some(found) = is(slot as u32 - 1) {
                return Ok(found);
            }
        }
        i = (i + 1) & mask;
    }
}

/// The slot holding `position` under `tag`.
fn slot_of(tag: u32, position: Pos) -> u64 {
    u64::from(tag) << 32 | u64::from(position + 1)
}

/// How many slots `total` entries need: at most three quarters full, a power of two, at
/// least 8.
fn slots_for(total: usize) -> usize {
    total
        .saturating_mul(4)
        .div_ceil(3)
        .max(8)
        .next_power_of_two()
}

/// Whether `len` slots hold `total` entries.
#[inline]
fn has_room(len: usize, total: usize) -> bool {
    // Powers of two: the same test as `slots_for`'s, without its arithmetic.
    len >= 8 && total.saturating_mul(4) <= len * 3
}

/// Open addressing with linear probing over 8-byte slots (see [`probe_slots`]). At most
/// three quarters full. Entries are never removed.
///
/// A long redemption list's device index (tag: a keyed hash of the device id), changed only
/// under its token's lock. Equal tags are allowed; the caller's predicate tells them apart,
/// and a probe touches one slot array only, not a separate control array and buckets.
#[derive(Default)]
struct Table {
    slots: Vec<u64>,
}

impl Table {
    /// The first position whose tag is `tag` and for which `is` holds.
    #[cfg(test)]
    fn find(&self, tag: u32, is: impl FnMut(Pos) -> bool) -> Option<Pos> {
        self.probe(tag, is).ok()
    }

    /// As [`find`](Table::find), or else the empty slot where the probe stopped (`None` for
    /// an empty table): where [`insert_at`](Table::insert_at) puts `tag` without probing
    /// again.
    fn probe(&self, tag: u32, mut is: impl FnMut(Pos) -> bool) -> Result<Pos, Option<usize>> {
        probe_slots(
            self.slots.len(),
            |i| self.slots[i],
            tag,
            |p| is(p).then_some(p),
        )
    }

    /// Whether `total` entries fit without growing.
    #[inline]
    fn has_room(&self, total: usize) -> bool {
        has_room(self.slots.len(), total)
    }

    /// Makes room for `total` entries.
    #[inline]
    fn reserve(&mut self, total: usize) {
        if !self.has_room(total) {
            self.grow(total);
        }
    }

    #[cold]
    fn grow(&mut self, total: usize) {
        let needed = slots_for(total);
        if needed <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; needed]);
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.place(slot);
        }
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        // Truncation intended: the tag is the high half.
        let mut i = (slot >> 32) as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Adds a position known to be absent; call [`reserve`](Table::reserve) first.
    fn insert(&mut self, tag: u32, position: Pos) {
        self.place(slot_of(tag, position));
    }

    /// Adds a position that [`probe`](Table::probe) did not find, as the `total`th entry:
    /// into the empty slot the probe stopped at (`vacant`), unless the table must grow
    /// first. Nothing may change the table between the probe and this.
    fn insert_at(&mut self, vacant: Option<usize>, total: usize, tag: u32, position: Pos) {
        match vacant {
            Some(i) if self.has_room(total) => {
                self.slots[i] = slot_of(tag, position);
            }
            _ => {
                self.reserve(total);
                self.insert(tag, position);
            }
        }
    }
}

/// How many table sizes a shard can go through: level `k` has `8 << k` slots, and a full
/// shard's table is level 30 (`8 << 30` slots hold `Pos::MAX - 1` positions); level 31 is
/// there for `with_capacity` of more.
const LEVELS: usize = 32;

/// A record's place: its own lock, so redemptions of different tokens share no lock, and
/// `None` only until its token is stored.
type Slot = Mutex<Option<Entry>>;

// A record and its lock: 8 bytes more than the record.
const _: () = assert!(std::mem::size_of::<Slot>() == std::mem::size_of::<Entry>() + 8);

/// [`CHUNK`] records, allocated together and never moved; shared by every level that
/// holds their positions.
type Chunk = Arc<[Slot; CHUNK]>;

/// One size of a shard's table: its slots and the chunks for every position it has room
/// for, so a lookup goes from the slot it found to the record through this level alone.
struct Level {
    slots: Box<[AtomicU64]>,
    chunks: Box<[OnceLock<Chunk>]>,
}

impl Level {
    /// A level of `slots` slots holding what `old` holds: its slots placed again, its
    /// chunks shared.
    fn grown(old: Option<&Level>, slots: usize) -> Self {
        // Room for three quarters of the slots.
        let chunks = (slots / 4 * 3).div_ceil(CHUNK);
        let level = Self {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            chunks: (0..chunks)
                .map(|i| {
                    old.and_then(|l| l.chunks.get(i))
                        .and_then(OnceLock::get)
                        .map_or_else(OnceLock::new, |c| OnceLock::from(Arc::clone(c)))
                })
                .collect(),
        };
        for slot in old.map_or(&[][..], |l| &l.slots[..]) {
            let slot = slot.load(Ordering::Relaxed);
            if slot != 0 {
                level.place(slot);
            }
        }
        level
    }

    /// The record at `position`, if its chunk exists.
    #[inline]
    fn slot(&self, position: Pos) -> Option<&Slot> {
        let p = position as usize;
        Some(&self.chunks.get(p / CHUNK)?.get()?[p % CHUNK])
    }

    fn place(&self, slot: u64) {
        let mask = self.slots.len() - 1;
        // Truncation intended: the tag is the high half.
        let mut i = (slot >> 32) as usize & mask;
        while self.slots[i].load(Ordering::Relaxed) != 0 {
            i = (i + 1) & mask;
        }
        // A lookup that sees the slot sees the record it names.
        self.slots[i].store(slot, Ordering::Release);
    }
}

/// A shard's token table (tag: the low half of [`mix`]) and its records, readable while it
/// grows: each size is a [`Level`] of its own, set once, and a lookup probes the level
/// `current` names. Growing copies the current level's slots into a larger one, shares its
/// chunks with it, and then names the new one, so a lookup that started on the old level
/// still finds everything the old level held. Old levels' slots are kept until the store is
/// dropped, about as much again as the current level's (a store made
/// [`with_capacity`](MemoryStore::with_capacity) usually has none).
///
/// Changed by the shard's writer only; read by anyone, without a lock: a lookup writes
/// nothing of it.
struct Levels {
    current: AtomicUsize,
    levels: [OnceLock<Level>; LEVELS],
}

impl Default for Levels {
    fn default() -> Self {
        Self {
            current: AtomicUsize::new(0),
            levels: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl Levels {
    /// The level lookups probe (none before the first token).
    #[inline]
    fn current(&self) -> Option<&Level> {
        let level = self.current.load(Ordering::Acquire);
        self.levels.get(level).and_then(OnceLock::get)
    }

    /// The first answer of `is` for a position under `tag`, given the level that holds it.
    #[inline(always)]
    fn find<'a, R>(
        &'a self,
        tag: u32,
        mut is: impl FnMut(&'a Level, Pos) -> Option<R>,
    ) -> Option<R> {
        let level = self.current()?;
        let slots = &level.slots;
        probe_slots(
            slots.len(),
            |i| slots[i].load(Ordering::Acquire),
            tag,
            |p| is(level, p),
        )
        .ok()
    }

    /// Makes room for `total` entries and returns the level that has it. Writer only.
    fn reserve(&self, total: usize) -> Option<&Level> {
        match self.current() {
            Some(level) if has_room(level.slots.len(), total) => Some(level),
            _ => self.grow(total),
        }
    }

    #[cold]
    fn grow(&self, total: usize) -> Option<&Level> {
        let old = self.current();
        // `8 << k` slots, and a level above the current one.
        let needed = slots_for(total).max(old.map_or(0, |l| l.slots.len() * 2));
        let k = needed.trailing_zeros() as usize - 3;
        // Past the largest level: more tokens than a shard's positions; `push` refuses
        // them before this.
        let cell = self.levels.get(k)?;
        // Built whole, then published: a level is never seen half copied.
        cell.set(Level::grown(old, needed)).ok()?;
        let level = cell.get()?;
        // Lookups that see the new level see the copy in it.
        self.current.store(k, Ordering::Release);
        Some(level)
    }

    /// The slots in use in the current level, for tests.
    #[cfg(test)]
    fn used(&self) -> (usize, usize) {
        let slots = self.current().map_or(&[][..], |l| &l.slots[..]);
        let used = slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count();
        (used, slots.len())
    }
}

/// Locks a record. Nothing panics while a record is locked mid-update, so a poisoned lock
/// still guards consistent data.
#[inline]
fn lock(slot: &Slot) -> MutexGuard<'_, Option<Entry>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a shard's writer (an insert) keeps to itself.
#[derive(Default)]
struct Writer {
    /// One `Arc` per distinct assignment among the shard's tokens (see [`Writer::intern`]).
    assignments: HashSet<Arc<Assignment>>,
    /// The assignment last interned, as given and as kept: the tokens of a batch arrive
    /// with one `Arc`, so they skip the set. Holding the given `Arc` keeps its address from
    /// being reused, so comparing pointers is sound.
    last_interned: Option<(Arc<Assignment>, Arc<Assignment>)>,
}

impl Writer {
    /// The shard's `Arc` for an assignment equal to `given`.
    ///
    /// Tokens from one specification share their assignment already; tokens issued one by
    /// one (or rebuilt from parts) bring their own, 64 bytes and more each. Keeping one per
    /// distinct value makes a token cost the same however it was issued.
    fn intern(&mut self, given: &Arc<Assignment>) -> Arc<Assignment> {
        match &self.last_interned {
            Some((last, kept)) if Arc::ptr_eq(last, given) => Arc::clone(kept),
            _ => {
                let kept = match self.assignments.get(&**given) {
                    Some(kept) => Arc::clone(kept),
                    None => {
                        self.assignments.insert(Arc::clone(given));
                        Arc::clone(given)
                    }
                };
                self.last_interned = Some((Arc::clone(given), Arc::clone(&kept)));
                kept
            }
        }
    }
}

/// The part of a shard that inserts write, on its own 128-byte line (two 64-byte lines:
/// adjacent-line prefetch), away from what lookups read.
#[repr(align(128))]
#[derive(Default)]
struct WriteSide {
    writer: Mutex<Writer>,
    /// How many tokens the shard holds: positions below it are stored.
    len: AtomicUsize,
}

/// A share of the store's tokens.
///
/// A lookup (every redemption) takes no shard-wide lock: it reads the table, the chunk
/// directory and the popular assignments, which only inserts change and only by publishing
/// (each piece set once, or an atomic slot filled), and then locks the record it found.
/// So threads redeeming different tokens write nothing of the shard's, however their
/// tokens fall over the shards. Inserts take the shard's writer lock, one at a time.
#[derive(Default)]
struct Shard {
    table: Levels,
    /// Per-thread copies of the popular assignments.
    popular: Popular,
    write: WriteSide,
}

/// A shard's popular assignments and their [`Stripes`].
#[derive(Default)]
struct Popular {
    /// The popular assignments in the order they became popular, with the kept `Arc`'s
    /// address (kept `Arc`s stay in the shard's `assignments` for good, so an address stays
    /// its own). A shard usually has one or none, and comparing an address or two costs
    /// less than a map lookup on every redemption; past [`POPULAR`], enrollments take the
    /// token's own `Arc`, as for any assignment.
    slots: [OnceLock<(usize, Stripes)>; POPULAR],
    /// How many references make an assignment popular: [`STRIPE_AFTER`] per shard of the
    /// store, as the tokens of a batch spread over every shard and hold one `Arc`.
    after: usize,
}

/// How many popular assignments a shard keeps stripes for.
const POPULAR: usize = 8;

impl Popular {
    /// Gives `kept` its stripes once it is popular. Writer only.
    fn note(&self, kept: &Arc<Assignment>) {
        if Arc::strong_count(kept) < self.after {
            return;
        }
        let address = Arc::as_ptr(kept) as usize;
        for slot in &self.slots {
            match slot.get() {
                Some((a, _)) if *a == address => return,
                Some(_) => {}
                None => {
                    // One writer: the slot is still empty.
                    let _ = slot.set((address, Stripes::of(kept)));
                    return;
                }
            }
        }
    }

    /// The stripes of `kept`, if it is popular.
    #[inline]
    fn of(&self, kept: &Arc<Assignment>) -> Option<&Stripes> {
        let address = Arc::as_ptr(kept) as usize;
        for slot in &self.slots {
            match slot.get() {
                Some((a, stripes)) if *a == address => return Some(stripes),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }

    /// How many assignments are popular.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }

    /// The assignment an enrollment of a token holding `kept` takes: this thread's copy
    /// when the assignment is popular, otherwise the token's own.
    #[inline]
    fn for_enrollment<'a>(&'a self, kept: &'a Arc<Assignment>) -> &'a Arc<Assignment> {
        self.of(kept).map_or(kept, Stripes::for_this_thread)
    }
}

/// How many copies of a popular assignment a shard hands to enrollments.
const STRIPES: usize = 8;

/// An assignment gets its [`Stripes`] in a shard once this many references to it exist per
/// shard of the store (nearly all of them tokens): a batch of some 4,000 tokens or more
/// with the default 64 shards, never a token issued on its own. The copies then cost at
/// most about 13 bytes per token of the batch, and less the larger it is.
const STRIPE_AFTER: usize = 64;

/// Equal copies of one assignment, one per thread stripe. Every enrollment takes a
/// reference on its token's assignment; when the threads of a server redeem tokens of one
/// batch, they would all write the same reference count, and its cache line would move
/// between the cores with every redemption. Each thread takes its references on the copy
/// of its stripe instead. Made when an assignment becomes popular (at insert, never on
/// the redeem path), about 100 bytes a copy, once per shard.
struct Stripes(Box<[Arc<Assignment>; STRIPES]>);

impl Stripes {
    fn of(kept: &Assignment) -> Self {
        Self(Box::new(std::array::from_fn(|_| Arc::new(kept.clone()))))
    }

    /// The copy for the calling thread.
    fn for_this_thread(&self) -> &Arc<Assignment> {
        &self.0[STRIPE.with(|s| *s)]
    }
}

/// Gives out stripes to threads in turn, so the first [`STRIPES`] threads each have one of
/// their own.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe.
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

impl Shard {
    fn new(stripe_after: usize) -> Self {
        Self {
            popular: Popular {
                after: stripe_after,
                ..Popular::default()
            },
            ..Self::default()
        }
    }

    /// The number of tokens stored.
    fn len(&self) -> usize {
        self.write.len.load(Ordering::Acquire)
    }

    /// The writer's lock, for inserts.
    fn writer(&self) -> MutexGuard<'_, Writer> {
        // Nothing panics mid-insert, so a poisoned lock still guards consistent data.
        self.write
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The token `id`, locked.
    #[inline(always)]
    fn find(&self, hash: u64, id: &TokenId) -> Option<MutexGuard<'_, Option<Entry>>> {
        // Truncation intended: the low half is the tag.
        self.table.find(hash as u32, |level, p| {
            let guard = lock(level.slot(p)?);
            let found = guard.as_ref().is_some_and(|e| e.token.id() == *id);
            found.then_some(guard)
        })
    }

    /// Calls `f` on every stored record, each locked in turn.
    fn for_each(&self, mut f: impl FnMut(&mut Entry)) {
        // The count first: the level current after it holds every position below it.
        let len = self.len();
        let Some(level) = self.table.current() else {
            return;
        };
        for p in 0..len {
            // Positions below `len` fit (`push` keeps them below `Pos::MAX - 1`).
            if let Some(slot) = level.slot(p as Pos) {
                if let Some(entry) = lock(slot).as_mut() {
                    f(entry);
                }
            }
        }
    }

    /// Makes room in the table for `additional` more tokens. Writer only.
    fn reserve(&self, additional: usize) {
        self.table.reserve(self.len().saturating_add(additional));
    }

    /// Adds a token whose id is known to be absent. Writer only (`writer` is the held lock).
    fn push(&self, writer: &mut Writer, hash: u64, mut token: Token) -> Result<(), StoreError> {
        let len = self.len();
        let position = Pos::try_from(len)
            .ok()
            .filter(|&p| p < Pos::MAX - 1)
            .ok_or_else(shard_full)?;
        let kept = writer.intern(token.assignment());
        self.popular.note(&kept);
        token.share_assignment(kept);
        let level = self.table.reserve(len + 1).ok_or_else(shard_full)?;
        let p = position as usize;
        // The level has room for the position, so a chunk for it.
        let chunk = level.chunks[p / CHUNK]
            .get_or_init(|| Arc::new(std::array::from_fn(|_| Mutex::new(None))));
        // The record first, then the table slot that names it, then the count: whoever
        // finds the slot or counts the position finds the record.
        *lock(&chunk[p % CHUNK]) = Some(Entry::new(token));
        // Truncation intended: the low half is the tag.
        level.place(slot_of(hash as u32, position));
        self.write.len.store(len + 1, Ordering::Release);
        Ok(())
    }
}

/// A shard or a token's redemption list is at its size limit.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory store keeps at most {max} {what}", max = Pos::MAX - 1)]
struct Full {
    what: &'static str,
}

/// A shard holds `Pos::MAX - 1` tokens.
fn shard_full() -> StoreError {
    StoreError::backend(
        "memory",
        "a shard is full",
        Full {
            what: "tokens per shard",
        },
    )
}

/// A concurrent in-memory [`TokenStore`].
///
/// Tokens are spread over shards by id, and every token has a lock of its own: a
/// redemption finds its token without taking any shared lock (the shard's table is
/// published, not locked, see the `memory` module's source) and holds its token's lock
/// only for the rule check and the update. So it is exact under any number of parallel
/// redeemers, and threads redeeming different tokens share no lock and, for tokens of a
/// large batch or of different specifications, no written memory. Inserts take their
/// shard's writer lock; redemptions go on while they run. Nothing is persisted; use it for
/// tests, single-process tools, or in front of nothing at all.
///
/// Redeeming a single-use token allocates nothing (its record sits in the token's entry;
/// longer lists are allocated at the limit, or doubling for unlimited tokens), and a stored
/// token without metadata costs about 220 bytes of heap (tokens with equal organization,
/// group and policies keep them once per shard, however they were issued); see
/// `BENCHMARKS.md`.
///
/// ```
/// use onboarding_token::{MemoryStore, Keyring, Onboarding, SigningKey};
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
/// # let _ = service;
/// ```
pub struct MemoryStore {
    shards: Box<[Shard]>,
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
                .map(|_| Shard::new(STRIPE_AFTER.saturating_mul(n)))
                .collect(),
            devices: RandomState::new(),
        }
    }

    /// An empty store sized for about `tokens` tokens.
    pub fn with_capacity(tokens: usize) -> Self {
        let store = Self::new();
        // Each shard's share and four standard deviations more (ids spread at random), so
        // that a shard rarely outgrows its table and keeps an earlier size.
        let per_shard = tokens.div_ceil(store.shards.len());
        let per_shard = per_shard.saturating_add(4 * per_shard.isqrt());
        for shard in store.shards.iter() {
            let _writer = shard.writer();
            shard.reserve(per_shard);
        }
        store
    }

    fn shard_index(&self, hash: u64) -> usize {
        // Truncation intended: the high half picks the shard.
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[self.shard_index(hash)]
    }

    /// The number of tokens stored.
    pub fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Synchronous [`TokenStore::insert`].
    pub fn insert_sync(&self, token: Token) -> Result<(), StoreError> {
        let id = token.id();
        let hash = mix(&id);
        let shard = self.shard(hash);
        let mut writer = shard.writer();
        if shard.find(hash, &id).is_some() {
            return Err(StoreError::Duplicate(id));
        }
        shard.push(&mut writer, hash, token)
    }

    /// Synchronous [`TokenStore::insert_batch`].
    pub fn insert_batch_sync(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let mut seen = HashSet::with_capacity(tokens.len());
        for t in &tokens {
            if !seen.insert(t.id()) {
                return Err(StoreError::Duplicate(t.id()));
            }
        }
        // Lock every shard's writer in index order (no deadlock), check, then write: all or
        // nothing. Lookups are not held off: they see the batch's tokens one by one.
        let mut writers: Vec<_> = self.shards.iter().map(Shard::writer).collect();
        let mut added = vec![0usize; writers.len()];
        for t in &tokens {
            let hash = mix(&t.id());
            let i = self.shard_index(hash);
            if self.shards[i].find(hash, &t.id()).is_some() {
                return Err(StoreError::Duplicate(t.id()));
            }
            added[i] += 1;
        }
        for (shard, &n) in self.shards.iter().zip(&added) {
            if shard.len().saturating_add(n) >= Pos::MAX as usize {
                return Err(shard_full());
            }
            shard.reserve(n);
        }
        for token in tokens {
            let hash = mix(&token.id());
            let i = self.shard_index(hash);
            self.shards[i].push(&mut writers[i], hash, token)?;
        }
        Ok(())
    }

    /// Synchronous [`TokenStore::get`].
    pub fn get_sync(&self, id: TokenId) -> Option<Token> {
        let hash = mix(&id);
        let entry = self.shard(hash).find(hash, &id)?;
        entry.as_ref().map(|e| e.token.clone())
    }

    /// Synchronous [`TokenStore::list`].
    pub fn list_sync(&self, query: &TokenQuery) -> TokenPage {
        let limit = query.page_size();
        // The page and one more (to tell whether there is a next page), kept as a bounded
        // max-heap by listing order: a token is cloned only when it enters, not for every
        // match (tokens sit in insertion order, which is nearly creation order, so after
        // the first page most matches are larger than the heap's largest and pass by).
        let keep = limit + 1;
        let mut page: BinaryHeap<Listed> = BinaryHeap::with_capacity(keep);
        for shard in self.shards.iter() {
            shard.for_each(|entry| {
                if !query.matches(&entry.token) {
                    return;
                }
                let key = PageCursor::after(&entry.token);
                if page.len() == keep {
                    match page.peek() {
                        Some(largest) if key < largest.key => {
                            page.pop();
                        }
                        _ => return,
                    }
                }
                page.push(Listed {
                    key,
                    token: entry.token.clone(),
                });
            });
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
        let shard = self.shard(hash);
        let not_found = || Rejection::NotFound { id };
        let mut guard = shard.find(hash, &id).ok_or_else(not_found)?;
        let Entry {
            token,
            redemptions,
            index,
        } = guard.as_mut().ok_or_else(not_found)?;

        // The replay check: a scan of a short list, the index of a long one (and, for a new
        // device, its tag and the empty slot the probe stopped at, for the insert below).
        let list = redemptions.as_slice();
        let (found, vacancy) = if list.len() > INDEX_THRESHOLD {
            if list.len() >= Pos::MAX as usize - 1 {
                return Err(StoreError::backend(
                    "memory",
                    "a token has too many redemptions",
                    Full {
                        what: "redemptions per token",
                    },
                )
                .into());
            }
            // Made when the list grew past the threshold; rebuilt if it were missing.
            let index = index.get_or_insert_with(|| Box::new(self.index_of(list)));
            let tag = self.device_tag(device);
            match index.probe(tag, |p| list[p as usize].device == *device) {
                Ok(p) => (Some(p as usize), None),
                Err(vacant) => (None, Some((tag, vacant))),
            }
        } else {
            (list.iter().position(|r| r.device == *device), None)
        };
        let prior = found.map(|i| list[i].redeemed_at());

        // `rules::redeem_in_place`, spelled out so the enrollment is built in place.
        let decision = rules::decide(token, request, prior)?;
        token.apply(&decision);
        let assignment = Arc::clone(shard.popular.for_enrollment(token.assignment()));
        let enrollment = Enrollment::sharing(token, &decision, request.now, assignment);
        if let Decision::Consume { .. } = decision {
            let at = redemptions.len();
            redemptions.push(Record::new(device, request.now), token.usage_limit());
            // Positions fit: lists stop below `Pos::MAX - 1` (checked above).
            if let (Some((tag, vacant)), Some(index)) = (vacancy, index.as_deref_mut()) {
                index.insert_at(vacant, redemptions.len(), tag, at as Pos);
            } else if redemptions.len() == INDEX_THRESHOLD + 1 {
                *index = Some(Box::new(self.index_of(redemptions.as_slice())));
            }
        }
        Ok(enrollment)
    }

    /// A device index of `list`.
    fn index_of(&self, list: &[Record]) -> Table {
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
        // The bytes in one `write`: `Hash for str` would add a second one for its
        // terminator, and each write costs SipHash a partial block. (No terminator is
        // needed: every input is a whole device id, never one of several fields.)
        let mut hasher = self.devices.build_hasher();
        hasher.write(device.as_str().as_bytes());
        // Truncation intended: 32 bits of the hash.
        hasher.finish() as u32
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
            let mut entry = self
                .shard(hash)
                .find(hash, id)
                .ok_or(StoreError::NotFound(*id))?;
            let revoked = entry.as_mut().is_some_and(|e| e.token.revoke(&revocation));
            return Ok(u64::from(revoked));
        }
        let mut count = 0;
        for shard in self.shards.iter() {
            shard.for_each(|entry| {
                if target.matches(&entry.token) && entry.token.revoke(&revocation) {
                    count += 1;
                }
            });
        }
        Ok(count)
    }

    /// Synchronous [`TokenStore::redemptions`].
    pub fn redemptions_sync(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
        let hash = mix(&id);
        let mut redemptions = self
            .shard(hash)
            .find(hash, &id)
            .and_then(|entry| {
                let list = entry.as_ref()?.redemptions.as_slice();
                Some(list.iter().map(Record::to_redemption).collect::<Vec<_>>())
            })
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

    /// The capacities a token's records go through, one redemption at a time.
    fn capacities(limit: UsageLimit, n: usize) -> Vec<usize> {
        let mut records = Records::NONE;
        let mut seen = Vec::new();
        for i in 0..n {
            let at = DateTime::UNIX_EPOCH + chrono::TimeDelta::microseconds(i as i64 - 3);
            records.push(
                Record::new(&DeviceId::new(format!("SN-{i}")).unwrap(), at),
                limit,
            );
            assert_eq!(records.as_slice()[i].redeemed_at(), at);
            assert_eq!(records.len(), i + 1);
            assert_eq!(records.as_slice()[i].device.as_str(), format!("SN-{i}"));
            let capacity = match &records {
                Records::One(_) => 0,
                Records::Many(list) => list.capacity(),
            };
            if seen.last() != Some(&capacity) {
                seen.push(capacity);
            }
        }
        seen
    }

    #[test]
    fn records_grow_to_the_limit_and_never_past_it() {
        let limited = |n| UsageLimit::limited(n).unwrap();
        // 0: the first record, in the entry.
        assert_eq!(capacities(UsageLimit::Once, 1), [0]);
        assert_eq!(capacities(limited(2), 2), [0, 2]);
        assert_eq!(capacities(limited(3), 3), [0, 3]);
        assert_eq!(capacities(limited(5), 5), [0, 4, 5]);
        assert_eq!(capacities(limited(10), 10), [0, 4, 8, 10]);
        assert_eq!(capacities(UsageLimit::Unlimited, 40), [0, 4, 8, 16, 32, 64]);
    }

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

    /// A leap second in chrono's last second counts past the end of its range in
    /// microseconds; the record gives back the end instead of panicking.
    #[test]
    fn a_leap_second_at_the_end_of_time_comes_back_as_the_end() {
        let last = chrono::NaiveDate::MAX
            .and_hms_nano_opt(23, 59, 59, 1_999_999_000)
            .unwrap()
            .and_utc();
        let record = Record::new(&DeviceId::new("SN-1").unwrap(), last);
        assert_eq!(record.redeemed_at(), DateTime::<Utc>::MAX_UTC);
        let start = DateTime::<Utc>::MIN_UTC;
        let first = Record::new(&DeviceId::new("SN-1").unwrap(), start);
        assert_eq!(first.redeemed_at(), start);
    }

    proptest::proptest! {
        /// A kept record gives back its redemption time to the microsecond (what every
        /// store keeps), anywhere in chrono's range, before the epoch included; a time in a
        /// leap second as the same fraction of the next second (the end of chrono's range
        /// for its last second), never a panic.
        #[test]
        fn records_keep_times_to_the_microsecond(
            secs in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            nanos in 0u32..2_000_000_000,
        ) {
            use chrono::SubsecRound;
            // chrono allows a leap second (nanos from 1e9) only in a minute's last second.
            let secs = if nanos >= 1_000_000_000 { secs - secs.rem_euclid(60) + 59 } else { secs };
            let Some(at) = DateTime::from_timestamp(secs, nanos) else {
                return Ok(());
            };
            let expected = if nanos < 1_000_000_000 {
                at.trunc_subsecs(6)
            } else {
                DateTime::from_timestamp(secs + 1, (nanos - 1_000_000_000) / 1000 * 1000)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            };
            let record = Record::new(&DeviceId::new("SN-1").unwrap(), at);
            proptest::prop_assert_eq!(record.redeemed_at(), expected);
            proptest::prop_assert_eq!(record.to_redemption().redeemed_at, expected);
        }

        /// Inserting where a probe stopped (as the redeem path does) keeps exactly what
        /// `reserve` + `insert` would: every position is found under its own tag, never
        /// under another key, and the table stays at most three quarters full.
        #[test]
        fn probe_then_insert_at_keeps_every_position(
            // Small tags collide and crowd the low slots; any tags spread over the table.
            tags in proptest::collection::vec(
                proptest::prop_oneof![0u32..64, proptest::num::u32::ANY],
                0..400,
            ),
            start in 0usize..3,
        ) {
            let mut table = Table::default();
            // Start empty, half grown or fully grown, so both branches of `insert_at` run.
            table.reserve([0, 8, 1024][start]);
            for (p, &tag) in tags.iter().enumerate() {
                let p = p as Pos;
                let vacant = match table.probe(tag, |q| q == p) {
                    Ok(q) => return Err(proptest::test_runner::TestCaseError::fail(
                        format!("{p} found as {q} before it was inserted"),
                    )),
                    Err(vacant) => vacant,
                };
                table.insert_at(vacant, p as usize + 1, tag, p);
            }
            for (p, &tag) in tags.iter().enumerate() {
                let p = p as Pos;
                proptest::prop_assert_eq!(table.find(tag, |q| q == p), Some(p));
                // A position never inserted is not found under a tag that is there.
                let absent = tags.len() as Pos;
                proptest::prop_assert_eq!(table.find(tag, |q| q == absent), None);
            }
            let used = table.slots.iter().filter(|&&s| s != 0).count();
            proptest::prop_assert_eq!(used, tags.len());
            proptest::prop_assert!(used * 4 <= table.slots.len() * 3);
        }
    }

    /// Past the index threshold, replays are still found (at their own time) and new
    /// devices still consume, up to the limit.
    #[test]
    fn long_redemption_lists_replay_and_exhaust_exactly() {
        use crate::codec::VerifiedToken;
        use crate::name::OrgId;
        use crate::policy::GroupId;
        use crate::rules::Leeway;
        use crate::token::{ExpirySpec, TokenSpec};
        use chrono::TimeDelta;

        let store = MemoryStore::new();
        let t0 = test_now();
        let key = test_key();
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

    /// Enrollments of a large batch's tokens take this thread's copy of the assignment
    /// (equal, not the token's `Arc`), the same copy every time on one thread; a small
    /// batch's enrollments take the token's own.
    #[test]
    fn enrollments_of_a_large_batch_take_a_copy_per_thread() {
        use crate::codec::VerifiedToken;
        use crate::name::OrgId;
        use crate::policy::{GroupId, PolicyId};
        use crate::rules::Leeway;
        use crate::token::{ExpirySpec, TokenSpec};
        use std::sync::Arc;

        // One shard: popular from STRIPE_AFTER references on.
        let store = MemoryStore::with_shards(1);
        let now = test_now();
        let key = test_key();
        let batch = |group: &str, first: u8, n: u8| {
            let spec = TokenSpec::new(OrgId::new("o").unwrap(), GroupId::new(group).unwrap())
                .with_policies([PolicyId::new("p").unwrap()])
                .with_usage_limit(UsageLimit::Unlimited)
                .with_expiry(ExpirySpec::Never);
            for i in first..first + n {
                let id = TokenId::from_bytes([i; 16]);
                store
                    .insert_sync(spec.clone().into_token(id, key, now, None).unwrap())
                    .unwrap();
            }
        };
        batch("small", 0, 3);
        batch("large", 3, STRIPE_AFTER as u8 + 10);
        // A second popular assignment: the shard's second slot.
        let second = 3 + STRIPE_AFTER as u8 + 10;
        batch("second", second, STRIPE_AFTER as u8 + 10);
        let redeem = |i: u8, device: &str| {
            store
                .redeem_sync(&RedeemRequest {
                    token: VerifiedToken::new(key, TokenId::from_bytes([i; 16])),
                    device: &DeviceId::new(device).unwrap(),
                    now,
                    leeway: Leeway::ZERO,
                })
                .unwrap()
        };
        let token = |i: u8| store.get_sync(TokenId::from_bytes([i; 16])).unwrap();

        let small = redeem(1, "SN-1");
        assert!(Arc::ptr_eq(&small.assignment, token(1).assignment()));

        let (a, b) = (redeem(10, "SN-1"), redeem(40, "SN-2"));
        let kept = token(10);
        assert!(Arc::ptr_eq(kept.assignment(), token(40).assignment()));
        assert!(!Arc::ptr_eq(&a.assignment, kept.assignment()));
        assert_eq!(a.assignment, *kept.assignment());
        assert_eq!(a.group().as_str(), "large");
        assert!(
            Arc::ptr_eq(&a.assignment, &b.assignment),
            "one thread, one copy"
        );
        // A replay takes the copy too.
        assert!(Arc::ptr_eq(&redeem(10, "SN-1").assignment, &a.assignment));

        let c = redeem(second + 5, "SN-1");
        let other = token(second + 5);
        assert_eq!(c.group().as_str(), "second");
        assert_eq!(c.assignment, *other.assignment());
        assert!(!Arc::ptr_eq(&c.assignment, other.assignment()));
        assert!(Arc::ptr_eq(
            &redeem(second + 6, "SN-1").assignment,
            &c.assignment
        ));

        // Every copy equals the kept assignment and is an allocation of its own.
        let shard = &store.shards[0];
        for kept in [kept.assignment(), other.assignment()] {
            let stripes = shard.popular.of(kept).expect("popular");
            for (i, copy) in stripes.0.iter().enumerate() {
                assert_eq!(**copy, **kept);
                assert!(!Arc::ptr_eq(copy, kept));
                assert!(stripes.0[..i].iter().all(|c| !Arc::ptr_eq(c, copy)));
            }
        }
        assert!(shard.popular.of(token(1).assignment()).is_none());
        assert_eq!(shard.popular.len(), 2, "the small batch has none");
    }

    /// Equal assignments brought by separate `Arc`s (tokens issued one by one) are kept
    /// once per shard; different ones stay apart, and every token keeps its own values.
    #[test]
    fn equal_assignments_are_kept_once() {
        use crate::name::OrgId;
        use crate::policy::{GroupId, PolicyId};
        use crate::token::TokenSpec;
        use std::sync::Arc;

        let store = MemoryStore::with_shards(1);
        let now = test_now();
        let spec = |group: &str| {
            TokenSpec::new(OrgId::new("o").unwrap(), GroupId::new(group).unwrap())
                .with_policies([PolicyId::new("p").unwrap()])
        };
        for n in 0..40u8 {
            // A specification of its own for every token: a fresh `Arc` each time.
            let group = if n % 4 == 0 { "h" } else { "g" };
            let token = spec(group)
                .into_token(TokenId::from_bytes([n; 16]), test_key(), now, None)
                .unwrap();
            store.insert_sync(token).unwrap();
        }
        let tokens: Vec<Token> = (0..40u8)
            .map(|n| store.get_sync(TokenId::from_bytes([n; 16])).unwrap())
            .collect();
        let (g, h) = (&tokens[1], &tokens[0]);
        assert_eq!((g.group().as_str(), h.group().as_str()), ("g", "h"));
        assert!(!Arc::ptr_eq(g.assignment(), h.assignment()));
        for (n, t) in tokens.iter().enumerate() {
            let same = if n % 4 == 0 { h } else { g };
            assert!(Arc::ptr_eq(t.assignment(), same.assignment()), "token {n}");
            assert_eq!(t.policies(), [PolicyId::new("p").unwrap()]);
        }
    }

    /// The time, key and ids of the tests' tokens.
    fn test_now() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000)
    }

    fn test_key() -> crate::keys::KeyId {
        crate::keys::KeyId::from_bytes([1; 4])
    }

    fn test_id(i: u32) -> TokenId {
        let mut bytes = [7u8; 16];
        bytes[..4].copy_from_slice(&i.to_le_bytes());
        TokenId::from_bytes(bytes)
    }

    /// Inserts tokens `test_id(0..n)` (organization `o`, group `g`, single-use, never
    /// expiring) one by one, storing after each how many inserts have returned.
    fn insert_one_by_one(store: &MemoryStore, n: u32, inserted: &std::sync::atomic::AtomicUsize) {
        use crate::name::OrgId;
        use crate::policy::GroupId;
        use crate::token::{ExpirySpec, TokenSpec};
        let spec = TokenSpec::new(OrgId::new("o").unwrap(), GroupId::new("g").unwrap())
            .with_expiry(ExpirySpec::Never);
        for i in 0..n {
            let token = spec
                .clone()
                .into_token(test_id(i), test_key(), test_now(), None);
            store.insert_sync(token.unwrap()).unwrap();
            inserted.store(i as usize + 1, std::sync::atomic::Ordering::Release);
        }
    }

    /// `for_each` (revoke by group, list) racing inserts and growth: every token whose
    /// insert returned before the call is covered by it, each exactly once overall.
    #[test]
    fn for_each_covers_every_finished_insert_while_the_shard_grows() {
        use crate::name::OrgId;
        use crate::policy::GroupId;
        use std::sync::atomic::{AtomicUsize, Ordering};

        const N: u32 = 20_000;
        let store = MemoryStore::with_shards(1);
        let inserted = AtomicUsize::new(0);
        let target = RevokeTarget::Group {
            organization: OrgId::new("o").unwrap(),
            group: GroupId::new("g").unwrap(),
        };
        let revocation = Revocation::new(test_now(), "leaked").unwrap();
        std::thread::scope(|s| {
            s.spawn(|| insert_one_by_one(&store, N, &inserted));
            let mut revoked = 0u64;
            loop {
                let done = inserted.load(Ordering::Acquire) as u64;
                revoked += store.revoke_sync(&target, &revocation).unwrap();
                assert!(revoked >= done, "{revoked} revoked, {done} inserted before");
                assert!(revoked <= store.len() as u64);
                if done == u64::from(N) {
                    break;
                }
            }
            assert_eq!(revoked, u64::from(N));
        });
    }

    /// Every level has a chunk for every position it claims room for, the table never
    /// passes three quarters, and a full shard's table is a level that exists.
    #[test]
    fn every_level_has_a_chunk_for_every_position_it_has_room_for() {
        for k in 0..LEVELS {
            let slots = 8usize << k;
            let chunks = (slots / 4 * 3).div_ceil(CHUNK);
            let most = slots / 4 * 3;
            assert!(has_room(slots, most) && !has_room(slots, most + 1), "k {k}");
            assert!((most - 1) / CHUNK < chunks, "k {k}");
            assert_eq!(slots_for(most), slots);
        }
        for total in 0..200_000usize {
            let s = slots_for(total);
            assert!(has_room(s, total));
            assert!(s == 8 || !has_room(s / 2, total), "{total}");
        }
        let full = slots_for(Pos::MAX as usize - 1);
        assert!((full.trailing_zeros() as usize - 3) < LEVELS);
    }

    /// White-box: while one thread inserts through every growth, another keeps checking
    /// what lookups and `for_each` rely on, on in-flight state: every published slot of the
    /// current level names a record that is there (chunk set, entry `Some`), and every
    /// position below `len` is stored in the level current after loading `len`.
    #[test]
    fn published_slots_and_counted_positions_always_name_stored_records() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        const N: u32 = 20_000;
        let store = MemoryStore::with_shards(1);
        let shard = &store.shards[0];
        let inserted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| insert_one_by_one(&store, N, &inserted));
            while inserted.load(Ordering::Acquire) < N as usize {
                let len = shard.len();
                if let Some(level) = shard.table.current() {
                    for p in 0..len {
                        let slot = level
                            .slot(p as Pos)
                            .expect("a counted position has a chunk");
                        assert!(lock(slot).is_some(), "position {p} < len {len} is stored");
                    }
                    for s in level.slots.iter() {
                        let s = s.load(Ordering::Acquire);
                        if s != 0 {
                            let p = s as u32 - 1;
                            let slot = level.slot(p).expect("a published slot has a chunk");
                            assert!(lock(slot).is_some(), "published position {p} is stored");
                        }
                    }
                }
            }
        });
    }

    /// A lookup takes no lock on the shard: while one thread inserts tokens one by one
    /// (through every table growth and chunk), another finds and redeems each as soon as
    /// its insert has returned, never missing one, and the shard ends up holding each once.
    #[test]
    fn lookups_find_every_finished_insert_while_the_shard_grows() {
        use crate::codec::VerifiedToken;
        use crate::rules::Leeway;
        use std::sync::atomic::{AtomicUsize, Ordering};

        const N: u32 = 5_000;
        let store = MemoryStore::with_shards(1);
        let inserted = AtomicUsize::new(0);
        let device = DeviceId::new("SN-1").unwrap();
        std::thread::scope(|s| {
            s.spawn(|| insert_one_by_one(&store, N, &inserted));
            let mut redeemed = 0;
            while redeemed < N {
                let done = inserted.load(Ordering::Acquire) as u32;
                for i in redeemed..done {
                    assert!(store.get_sync(test_id(i)).is_some(), "token {i} is found");
                    let e = store
                        .redeem_sync(&RedeemRequest {
                            token: VerifiedToken::new(test_key(), test_id(i)),
                            device: &device,
                            now: test_now(),
                            leeway: Leeway::ZERO,
                        })
                        .unwrap_or_else(|e| panic!("token {i}: {e}"));
                    assert_eq!((e.uses, e.replay), (1, false));
                }
                redeemed = done;
            }
        });
        assert_eq!(store.len(), N as usize);
        let (used, slots) = store.shards[0].table.used();
        assert_eq!(used, N as usize);
        assert!(used * 4 <= slots * 3);
        assert!(store.get_sync(test_id(N)).is_none());
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
