//! Where topics live: a chunked slab of compact entries, a hash index from
//! topic name to slot, interned join params, and the armed timers. Lookups are
//! O(1) and flat in the number of topics; only topics with an armed timer are
//! in a timer queue.
//!
//! Layout choices, each measured (see the engine benchmark):
//! - An entry is 128 bytes and holds short names (up to [`INLINE_NAME`]
//!   bytes) inline, so an idle topic costs one slab entry and one index slot,
//!   with no allocation of its own.
//! - The slab grows in chunks of [`CHUNK`] entries, so its spare capacity is
//!   at most one chunk instead of up to half the slab.
//! - The index keeps a 32-bit hash per entry: a probe compares hashes before
//!   bytes, and growing the index never re-hashes names.
//! - A removed topic's slot is *retired* until the outputs that name it have
//!   been polled, so a driver can always read the name of a [`TopicId`] it
//!   got from an output; only then is the slot freed and its generation
//!   bumped, which makes stale handles miss.
//!
//! Timers of a fixed duration (join, settle, grace) are armed in deadline
//! order, since time only moves forward: each kind gets a FIFO lane, where
//! arming is a push and cancelling is lazy (an entry whose topic's deadline
//! or lane changed is stale, and is dropped when it reaches the front).
//! Retry delays vary, so those few live in an ordered set.

use std::collections::{BTreeSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use crate::engine::ids::{Holder, JoinRef, RoomId, SubscriberId, TopicId};
use crate::engine::output::FailReason;
use crate::engine::phase::Phase;

/// Engine time: nanoseconds since the engine's epoch (the `now` it was created
/// with). Small, `Copy`, and independent of the process's clock base.
pub(crate) type Nanos = u64;

/// "No timer armed".
pub(crate) const NEVER: Nanos = Nanos::MAX;

/// Names up to this many bytes are stored in the entry itself.
pub(crate) const INLINE_NAME: usize = 54;

/// Entries per slab chunk.
pub(crate) const CHUNK: usize = 256;
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();

/// Where a topic stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Status {
    /// An incarnation exists (never `Destroyed`: a destroyed one is forgotten).
    Live { join_ref: JoinRef, phase: Phase },
    /// The last incarnation failed; a new one is joined when the timer fires.
    Backoff,
    /// The socket is down; a new incarnation is joined when it comes up.
    Offline,
    /// Gave up; reported. Retried on a new subscribe or a reconnect.
    Failed(FailReason),
}

/// A holder packed into one word: the id shifted left, the low bit set for a
/// room. Ids must be below 2^63 (checked where holders come in).
pub(crate) type Packed = u64;

/// The largest subscriber or room id a holder may have.
pub(crate) const MAX_HOLDER_ID: u64 = u64::MAX >> 1;

pub(crate) fn pack(holder: Holder) -> Packed {
    match holder {
        Holder::Subscriber(SubscriberId(id)) => id << 1,
        Holder::Room(RoomId(id)) => id << 1 | 1,
    }
}

pub(crate) fn unpack(packed: Packed) -> Holder {
    if packed & 1 == 0 {
        Holder::Subscriber(SubscriberId(packed >> 1))
    } else {
        Holder::Room(RoomId(packed >> 1))
    }
}

/// Who holds a topic: sorted and unique (set semantics with a canonical
/// order). Three fit inline, so a topic with up to three holders never
/// allocates for them.
pub(crate) type Holders = SmallVec<[Packed; 3]>;

/// A topic's name, inline when short.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum TopicName {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Heap(Box<str>),
}

impl TopicName {
    const EMPTY: TopicName = TopicName::Inline {
        len: 0,
        bytes: [0; INLINE_NAME],
    };

    fn new(name: &str) -> TopicName {
        if name.len() <= INLINE_NAME {
            let mut bytes = [0; INLINE_NAME];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            TopicName::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            TopicName::Heap(name.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            TopicName::Inline { len, bytes } => &bytes[..usize::from(*len)],
            TopicName::Heap(name) => name.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // SAFETY: the bytes were copied whole from a `&str` (`new`) and
            // never changed since, so they are valid UTF-8. (Checking again on
            // every read showed up as 4 % of the model checker's time.)
            TopicName::Inline { .. } => unsafe { std::str::from_utf8_unchecked(self.as_bytes()) },
            TopicName::Heap(name) => name,
        }
    }
}

impl std::fmt::Debug for TopicName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Whether a slot holds a topic, held one whose outputs are not yet polled,
/// or is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Occupancy {
    Occupied,
    Retired,
    Vacant,
}

/// Which queue a timer is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Join = 0,
    Settle = 1,
    Grace = 2,
    Backoff = 3,
}

/// One slot of the slab.
#[derive(Clone, Debug)]
pub(crate) struct TopicEntry {
    pub(crate) status: Status,
    /// The armed timer's deadline, [`NEVER`] when none; its kind follows from
    /// `status`, its queue is `lane`.
    pub(crate) deadline: Nanos,
    pub(crate) holders: Holders,
    /// The name's 32-bit hash ([`hash32`]).
    hash: u32,
    /// Bumped when the slot is freed, so old [`TopicId`]s stop resolving.
    gen: u32,
    /// Interned join params, [`ParamsId::NONE`] for `{}`.
    pub(crate) params: ParamsId,
    /// Joins in a row that did not reach active.
    pub(crate) attempts: u8,
    pub(crate) settling: bool,
    lane: Lane,
    occupancy: Occupancy,
    pub(crate) name: TopicName,
}

impl TopicEntry {
    pub(crate) fn phase(&self) -> Option<Phase> {
        match self.status {
            Status::Live { phase, .. } => Some(phase),
            _ => None,
        }
    }

    pub(crate) fn join_ref(&self) -> Option<JoinRef> {
        match self.status {
            Status::Live { join_ref, .. } => Some(join_ref),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.name.as_str()
    }

    pub(crate) fn deadline(&self) -> Option<Nanos> {
        (self.deadline != NEVER).then_some(self.deadline)
    }

    pub(crate) fn holders(&self) -> impl Iterator<Item = Holder> + '_ {
        self.holders.iter().map(|&p| unpack(p))
    }

    fn vacant(gen: u32) -> TopicEntry {
        TopicEntry {
            status: Status::Offline,
            deadline: NEVER,
            holders: Holders::new(),
            hash: 0,
            gen,
            params: ParamsId::NONE,
            attempts: 0,
            settling: false,
            lane: Lane::Join,
            occupancy: Occupancy::Vacant,
            name: TopicName::EMPTY,
        }
    }
}

/// What a new topic starts with.
pub(crate) struct NewTopic<'a> {
    pub(crate) name: &'a str,
    pub(crate) hash: u32,
    pub(crate) holder: Packed,
    pub(crate) params: ParamsId,
    pub(crate) settling: bool,
}

/// The 32-bit hash the index and the entries keep.
pub(crate) fn hash32(name: &str) -> u32 {
    let h = FxBuildHasher.hash_one(name);
    (h ^ (h >> 32)) as u32
}

/// The index's 64-bit hash, a function of the 32-bit one only (so growing the
/// index needs no names), with well-mixed top bits for the control bytes.
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The slab, its index, the params and the timers.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    /// The first chunk inline, so a small engine clones with one allocation.
    chunks: SmallVec<[Vec<TopicEntry>; 1]>,
    free: Vec<u32>,
    retired: Vec<u32>,
    index: HashTable<u32>,
    len: usize,
    pub(crate) params: ParamsTable,
    /// `(deadline, slot)` per fixed-duration lane, in deadline order; fronts
    /// are always live entries, later ones may be stale.
    lanes: [VecDeque<(Nanos, u32)>; 3],
    /// Entries in the three lanes, live or stale.
    queued: usize,
    /// `(deadline, slot)` of armed retry timers.
    backoff: BTreeSet<(Nanos, u32)>,
    /// Topics with an armed timer.
    armed: usize,
    /// The earliest armed deadline ([`NEVER`] when none), kept up to date so
    /// that `poll_timeout` after every input costs one read.
    next_at: Nanos,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            chunks: SmallVec::new(),
            free: Vec::new(),
            retired: Vec::new(),
            index: HashTable::new(),
            len: 0,
            params: ParamsTable::default(),
            lanes: Default::default(),
            queued: 0,
            backoff: BTreeSet::new(),
            armed: 0,
            next_at: NEVER,
        }
    }
}

/// Where `holder` is, or would go, in a sorted holder set: a linear scan for
/// the usual few holders, a binary search for many.
pub(crate) fn holder_position(holders: &[Packed], holder: Packed) -> Result<usize, usize> {
    if holders.len() > 8 {
        return holders.binary_search(&holder);
    }
    for (i, &h) in holders.iter().enumerate() {
        if h >= holder {
            return if h == holder { Ok(i) } else { Err(i) };
        }
    }
    Err(holders.len())
}

impl Store {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn slot(&self, idx: u32) -> &TopicEntry {
        &self.chunks[(idx >> CHUNK_BITS) as usize][idx as usize & (CHUNK - 1)]
    }

    fn slot_mut(&mut self, idx: u32) -> &mut TopicEntry {
        &mut self.chunks[(idx >> CHUNK_BITS) as usize][idx as usize & (CHUNK - 1)]
    }

    fn slot_count(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// The slot of `name`, given its [`hash32`].
    pub(crate) fn find_hashed(&self, name: &str, hash: u32) -> Option<u32> {
        let chunks = &self.chunks;
        self.index
            .find(spread(hash), |&i| {
                let e = &chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)];
                e.hash == hash && e.name.as_bytes() == name.as_bytes()
            })
            .copied()
    }

    pub(crate) fn find(&self, name: &str) -> Option<u32> {
        self.find_hashed(name, hash32(name))
    }

    /// The slot of a live topic's handle.
    pub(crate) fn resolve(&self, id: TopicId) -> Option<u32> {
        let e = self
            .chunks
            .get((id.slot() >> CHUNK_BITS) as usize)?
            .get(id.slot() as usize & (CHUNK - 1))?;
        (e.gen == id.generation() && e.occupancy == Occupancy::Occupied).then_some(id.slot())
    }

    /// The name of a topic, live or retired (removed, outputs not yet polled).
    pub(crate) fn name_of(&self, id: TopicId) -> Option<&str> {
        let e = self
            .chunks
            .get((id.slot() >> CHUNK_BITS) as usize)?
            .get(id.slot() as usize & (CHUNK - 1))?;
        (e.gen == id.generation() && e.occupancy != Occupancy::Vacant).then(|| e.name())
    }

    /// The handle of the topic in `idx` (live or retired).
    pub(crate) fn id(&self, idx: u32) -> TopicId {
        TopicId::new(idx, self.slot(idx).gen)
    }

    pub(crate) fn insert(&mut self, new: NewTopic<'_>) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                let slots = self.slot_count();
                let idx = u32::try_from(slots).expect("more than 2^32 topic slots");
                if slots.is_multiple_of(CHUNK) {
                    self.chunks.push(Vec::new());
                }
                self.chunks
                    .last_mut()
                    .expect("a chunk with room")
                    .push(TopicEntry::vacant(0));
                idx
            }
        };
        let e = self.slot_mut(idx);
        debug_assert_eq!(e.occupancy, Occupancy::Vacant);
        let mut holders = Holders::new();
        holders.push(new.holder);
        *e = TopicEntry {
            status: Status::Offline,
            deadline: NEVER,
            holders,
            hash: new.hash,
            gen: e.gen,
            params: new.params,
            attempts: 0,
            settling: new.settling,
            lane: Lane::Join,
            occupancy: Occupancy::Occupied,
            name: TopicName::new(new.name),
        };
        let chunks = &self.chunks;
        self.index.insert_unique(spread(new.hash), idx, |&i| {
            spread(chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)].hash)
        });
        self.len += 1;
        idx
    }

    /// Removes a topic whose timer is already cancelled. Its slot is retired:
    /// its name stays readable through its handle until [`Store::release_retired`].
    pub(crate) fn remove(&mut self, idx: u32) {
        let e = self.slot(idx);
        debug_assert_eq!(e.deadline, NEVER, "cancel the timer before removing");
        debug_assert_eq!(e.occupancy, Occupancy::Occupied);
        let (hash, params) = (e.hash, e.params);
        if let Ok(found) = self.index.find_entry(spread(hash), |&i| i == idx) {
            found.remove();
        }
        self.params.release(params);
        let e = self.slot_mut(idx);
        e.occupancy = Occupancy::Retired;
        e.holders = Holders::new();
        e.params = ParamsId::NONE;
        self.retired.push(idx);
        self.len -= 1;
    }

    /// Frees the slots of removed topics (call only when no output naming them
    /// is still queued).
    pub(crate) fn release_retired(&mut self) {
        while let Some(idx) = self.retired.pop() {
            let e = self.slot_mut(idx);
            let gen = e.gen.wrapping_add(1);
            *e = TopicEntry::vacant(gen);
            self.free.push(idx);
        }
    }

    pub(crate) fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    pub(crate) fn get(&self, idx: u32) -> &TopicEntry {
        let e = self.slot(idx);
        debug_assert_eq!(e.occupancy, Occupancy::Occupied, "vacant slot");
        e
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut TopicEntry {
        let e = self.slot_mut(idx);
        debug_assert_eq!(e.occupancy, Occupancy::Occupied, "vacant slot");
        e
    }

    pub(crate) fn try_get(&self, idx: u32) -> Option<&TopicEntry> {
        let e = self
            .chunks
            .get((idx >> CHUNK_BITS) as usize)?
            .get(idx as usize & (CHUNK - 1))?;
        (e.occupancy == Occupancy::Occupied).then_some(e)
    }

    /// Every live topic, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &TopicEntry)> {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, e)| e.occupancy == Occupancy::Occupied)
            .map(|(i, e)| (i as u32, e))
    }

    /// Every live slot, in topic-name order: the order bulk operations
    /// (close-all, socket up and down) walk, so their outputs depend on what
    /// the engine holds and not on which slots history left free. A
    /// snapshot, so the caller may mutate while walking it.
    pub(crate) fn canonical_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = self.iter().map(|(idx, _)| idx).collect();
        self.sort_by_name(&mut order);
        order
    }

    pub(crate) fn sort_by_name(&self, slots: &mut [u32]) {
        slots.sort_unstable_by(|&a, &b| {
            self.slot(a)
                .name
                .as_bytes()
                .cmp(self.slot(b).name.as_bytes())
        });
    }

    // --- timers ----------------------------------------------------------------------

    /// Arms the topic's one timer. `lane` must be the fixed-duration lane of
    /// the timer's kind (so deadlines in a lane never decrease), or `Backoff`.
    pub(crate) fn arm(&mut self, idx: u32, at: Nanos, lane: Lane) {
        self.disarm(idx);
        match lane {
            Lane::Backoff => {
                self.backoff.insert((at, idx));
            }
            _ => {
                let q = &mut self.lanes[lane as usize];
                debug_assert!(
                    q.back().is_none_or(|&(last, _)| last <= at),
                    "lane out of order"
                );
                q.push_back((at, idx));
                self.queued += 1;
            }
        }
        let e = self.get_mut(idx);
        e.deadline = at;
        e.lane = lane;
        self.armed += 1;
        self.next_at = self.next_at.min(at);
    }

    pub(crate) fn disarm(&mut self, idx: u32) {
        let e = self.slot_mut(idx);
        let at = e.deadline;
        if at == NEVER {
            return;
        }
        e.deadline = NEVER;
        let lane = e.lane;
        self.armed -= 1;
        if lane == Lane::Backoff {
            self.backoff.remove(&(at, idx));
        } else {
            let q = lane as usize;
            if self.lanes[q].front() == Some(&(at, idx)) {
                self.lanes[q].pop_front();
                self.queued -= 1;
                self.clean_front(q);
            } else if self.queued > 2 * self.armed + 1024 {
                self.compact();
            }
        }
        if at == self.next_at {
            self.next_at = self.earliest().map_or(NEVER, |(at, _, _)| at);
        }
    }

    fn is_live(&self, at: Nanos, idx: u32, lane: usize) -> bool {
        self.try_get(idx)
            .is_some_and(|e| e.deadline == at && e.lane as usize == lane)
    }

    fn clean_front(&mut self, lane: usize) {
        while let Some(&(at, idx)) = self.lanes[lane].front() {
            if self.is_live(at, idx, lane) {
                break;
            }
            self.lanes[lane].pop_front();
            self.queued -= 1;
        }
    }

    /// Drops stale entries from the middle of the lanes (amortised: runs when
    /// they outnumber the armed timers).
    fn compact(&mut self) {
        let mut lanes = std::mem::take(&mut self.lanes);
        for (lane, q) in lanes.iter_mut().enumerate() {
            q.retain(|&(at, idx)| self.is_live(at, idx, lane));
        }
        self.queued = lanes.iter().map(VecDeque::len).sum();
        self.lanes = lanes;
    }

    fn earliest(&self) -> Option<(Nanos, u32, Lane)> {
        let mut best = self
            .backoff
            .first()
            .map(|&(at, idx)| (at, idx, Lane::Backoff));
        for (q, lane) in self
            .lanes
            .iter()
            .zip([Lane::Join, Lane::Settle, Lane::Grace])
        {
            if let Some(&(at, idx)) = q.front() {
                if best.is_none_or(|(b, _, _)| at < b) {
                    best = Some((at, idx, lane));
                }
            }
        }
        best
    }

    pub(crate) fn next_deadline(&self) -> Option<Nanos> {
        debug_assert_eq!(
            self.next_at,
            self.earliest().map_or(NEVER, |(at, _, _)| at),
            "cached deadline"
        );
        (self.next_at != NEVER).then_some(self.next_at)
    }

    /// Takes the earliest timer due at or before `now`, disarming it.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<u32> {
        if self.next_at > now {
            return None;
        }
        let (at, idx, lane) = self.earliest()?;
        if at > now {
            return None;
        }
        debug_assert_eq!(self.slot(idx).lane, lane);
        self.disarm(idx);
        Some(idx)
    }

    /// Slots whose grace period is running, earliest deadline first.
    pub(crate) fn in_grace(&self) -> impl Iterator<Item = u32> + '_ {
        let lane = Lane::Grace as usize;
        self.lanes[lane]
            .iter()
            .filter(move |&&(at, idx)| self.is_live(at, idx, lane))
            .map(|&(_, idx)| idx)
    }

    /// Whether the topic in `idx` has its armed timer in the right queue.
    pub(crate) fn is_queued(&self, idx: u32) -> bool {
        let e = self.slot(idx);
        let at = e.deadline;
        match e.lane {
            Lane::Backoff => self.backoff.contains(&(at, idx)),
            lane => self.lanes[lane as usize].contains(&(at, idx)),
        }
    }

    pub(crate) fn timer_count(&self) -> usize {
        self.armed
    }
}

// --- params ----------------------------------------------------------------------------

/// An interned set of join params (JSON object text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct ParamsId(u32);

impl ParamsId {
    pub(crate) const NONE: ParamsId = ParamsId(0);
}

/// Join params, interned: topics keep a 4-byte id instead of a pointer each,
/// and topics joined with the same params share one copy.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamsTable {
    /// Slot `i` holds id `i + 1`: the text and how many topics use it.
    slots: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl ParamsTable {
    /// The id of `text`, one more use of it.
    pub(crate) fn intern(&mut self, text: Option<&Arc<str>>) -> ParamsId {
        let Some(text) = text else {
            return ParamsId::NONE;
        };
        let hash = FxBuildHasher.hash_one(&**text);
        let slots = &mut self.slots;
        if let Some(&i) = self.index.find(hash, |&i| {
            slots[i as usize].as_ref().is_some_and(|(t, _)| t == text)
        }) {
            if let Some((_, uses)) = &mut slots[i as usize] {
                *uses += 1;
            }
            return ParamsId(i + 1);
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some((text.clone(), 1));
                i
            }
            None => {
                self.slots.push(Some((text.clone(), 1)));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 params")
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, i, |&j| {
            FxBuildHasher.hash_one(slots[j as usize].as_ref().map_or("", |(t, _)| &**t))
        });
        ParamsId(i + 1)
    }

    /// One use less of `id`.
    pub(crate) fn release(&mut self, id: ParamsId) {
        let Some(i) = id.0.checked_sub(1) else {
            return;
        };
        let Some((text, uses)) = &mut self.slots[i as usize] else {
            return;
        };
        *uses -= 1;
        if *uses > 0 {
            return;
        }
        let hash = FxBuildHasher.hash_one(&**text);
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        self.slots[i as usize] = None;
        self.free.push(i);
    }

    /// The text of `id` (`None` for no params).
    pub(crate) fn get(&self, id: ParamsId) -> Option<&Arc<str>> {
        let i = id.0.checked_sub(1)?;
        self.slots.get(i as usize)?.as_ref().map(|(t, _)| t)
    }

    /// Whether `id` stands for `text`.
    pub(crate) fn is(&self, id: ParamsId, text: Option<&Arc<str>>) -> bool {
        match (self.get(id), text) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }

    /// Distinct params texts in use.
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_two_cache_lines() {
        assert_eq!(std::mem::size_of::<TopicEntry>(), 128);
    }

    #[test]
    fn names_round_trip_inline_and_on_the_heap() {
        for name in [
            "",
            "a",
            &"x".repeat(INLINE_NAME),
            &"é".repeat(40),
            &"y".repeat(300),
        ] {
            assert_eq!(TopicName::new(name).as_str(), name);
        }
        assert!(matches!(
            TopicName::new(&"x".repeat(INLINE_NAME)),
            TopicName::Inline { .. }
        ));
        assert!(matches!(
            TopicName::new(&"x".repeat(INLINE_NAME + 1)),
            TopicName::Heap(_)
        ));
    }

    #[test]
    fn holders_pack_and_unpack() {
        for h in [
            Holder::Subscriber(SubscriberId(0)),
            Holder::Subscriber(SubscriberId(MAX_HOLDER_ID)),
            Holder::Room(RoomId(7)),
            Holder::Room(RoomId(MAX_HOLDER_ID)),
        ] {
            assert_eq!(unpack(pack(h)), h);
        }
    }

    #[test]
    fn params_are_shared_and_freed_with_their_last_use() {
        let mut t = ParamsTable::default();
        let a: Arc<str> = Arc::from("{\"a\":1}");
        let b: Arc<str> = Arc::from("{\"a\":1}");
        let ia = t.intern(Some(&a));
        assert_eq!(t.intern(Some(&b)), ia);
        assert!(t.is(ia, Some(&b)));
        assert_eq!(t.intern(None), ParamsId::NONE);
        t.release(ia);
        assert_eq!(t.len(), 1);
        t.release(ia);
        assert_eq!(t.len(), 0);
        assert_eq!(t.get(ia), None);
    }
}
