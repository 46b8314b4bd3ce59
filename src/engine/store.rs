//! Where topics live: a slab of entries, a hash index from topic string to
//! slot, and the armed timers. Lookups are O(1) and flat in the number of
//! topics; only topics with an armed timer are in a timer queue.
//!
//! Timers of a fixed duration (join, settle, grace) are armed in deadline
//! order, since time only moves forward: each kind gets a FIFO lane, where
//! arming is a push and cancelling is lazy (the entry goes stale when the
//! topic's deadline changes, and is dropped when it reaches the front).
//! Retry delays vary, so those few live in an ordered set.

use std::collections::{BTreeSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use crate::engine::ids::{Holder, JoinRef};
use crate::engine::output::FailReason;
use crate::engine::phase::Phase;

/// Engine time: nanoseconds since the engine's epoch (the `now` it was created
/// with). Small, `Copy`, and independent of the process's clock base.
pub(crate) type Nanos = u64;

/// Where a topic stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// One topic the registry manages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TopicEntry {
    pub(crate) name: Arc<str>,
    /// Sorted and unique: set semantics with a canonical order.
    pub(crate) holders: SmallVec<[Holder; 1]>,
    pub(crate) params: Option<Arc<str>>,
    pub(crate) settling: bool,
    /// Joins in a row that did not reach active.
    pub(crate) attempts: u8,
    pub(crate) status: Status,
    /// The armed timer, if any; its kind follows from `status`.
    pub(crate) deadline: Option<Nanos>,
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
}

/// The slab, its index and the timer set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Store {
    slots: Vec<Option<TopicEntry>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    len: usize,
    /// `(deadline, slot)` per fixed-duration lane, in deadline order; fronts
    /// are always live entries, later ones may be stale.
    lanes: [VecDeque<(Nanos, u32)>; 3],
    /// `(deadline, slot)` of armed retry timers.
    backoff: BTreeSet<(Nanos, u32)>,
    /// Topics with an armed timer.
    armed: usize,
}

/// Which queue a timer goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Join = 0,
    Settle = 1,
    Grace = 2,
    Backoff = 3,
}

fn hash_str(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

impl Store {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn find(&self, topic: &str) -> Option<u32> {
        self.find_hashed(topic, hash_str(topic))
    }

    /// The hash [`Store::find_hashed`] and [`Store::insert_hashed`] take, so a
    /// miss followed by an insert hashes once.
    pub(crate) fn hash(topic: &str) -> u64 {
        hash_str(topic)
    }

    pub(crate) fn find_hashed(&self, topic: &str, hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slot_name(slots, i) == topic)
            .copied()
    }

    pub(crate) fn insert_hashed(&mut self, entry: TopicEntry, hash: u64) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(entry);
                i
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).expect("more than 2^32 topics")
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, idx, |&i| hash_str(slot_name(slots, i)));
        self.len += 1;
        idx
    }

    /// Removes a topic whose timer is already cancelled.
    pub(crate) fn remove(&mut self, idx: u32) -> TopicEntry {
        let entry = self.slots[idx as usize]
            .take()
            .expect("removing a vacant slot");
        debug_assert!(entry.deadline.is_none(), "cancel the timer before removing");
        if let Ok(found) = self.index.find_entry(hash_str(&entry.name), |&i| i == idx) {
            found.remove();
        }
        self.free.push(idx);
        self.len -= 1;
        entry
    }

    pub(crate) fn get(&self, idx: u32) -> &TopicEntry {
        self.slots[idx as usize].as_ref().expect("vacant slot")
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut TopicEntry {
        self.slots[idx as usize].as_mut().expect("vacant slot")
    }

    /// Every occupied slot, in topic-name order: the order bulk operations
    /// (close-all, socket up and down) walk, so their outputs depend on what
    /// the engine holds and not on which slots history left free. A
    /// snapshot, so the caller may mutate while walking it.
    pub(crate) fn canonical_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = self.iter().map(|(idx, _)| idx).collect();
        order.sort_unstable_by(|&a, &b| self.get(a).name.cmp(&self.get(b).name));
        order
    }

    pub(crate) fn try_get(&self, idx: u32) -> Option<&TopicEntry> {
        self.slots.get(idx as usize).and_then(Option::as_ref)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &TopicEntry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i as u32, e)))
    }

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
            }
        }
        self.get_mut(idx).deadline = Some(at);
        self.armed += 1;
    }

    pub(crate) fn disarm(&mut self, idx: u32) {
        let Some(at) = self.get_mut(idx).deadline.take() else {
            return;
        };
        self.armed -= 1;
        if !self.backoff.is_empty() {
            self.backoff.remove(&(at, idx));
        }
        for lane in 0..3 {
            self.clean_front(lane);
        }
        let queued: usize = self.lanes.iter().map(VecDeque::len).sum();
        if queued > 2 * self.armed + 1024 {
            self.compact();
        }
    }

    fn is_live(&self, at: Nanos, idx: u32) -> bool {
        self.try_get(idx).is_some_and(|e| e.deadline == Some(at))
    }

    fn clean_front(&mut self, lane: usize) {
        while let Some(&(at, idx)) = self.lanes[lane].front() {
            if self.is_live(at, idx) {
                break;
            }
            self.lanes[lane].pop_front();
        }
    }

    /// Drops stale entries from the middle of the lanes (amortised: runs when
    /// they outnumber the armed timers).
    fn compact(&mut self) {
        let mut lanes = std::mem::take(&mut self.lanes);
        for q in &mut lanes {
            q.retain(|&(at, idx)| self.is_live(at, idx));
        }
        self.lanes = lanes;
    }

    fn earliest(&self) -> Option<(Nanos, u32, usize)> {
        let lanes = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|&(at, idx)| (at, idx, i)));
        let backoff = self.backoff.first().map(|&(at, idx)| (at, idx, 3));
        lanes.chain(backoff).min()
    }

    pub(crate) fn next_deadline(&self) -> Option<Nanos> {
        self.earliest().map(|(at, _, _)| at)
    }

    /// Takes the earliest timer due at or before `now`, disarming it.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<u32> {
        let (at, idx, lane) = self.earliest()?;
        if at > now {
            return None;
        }
        if lane == 3 {
            self.backoff.pop_first();
        } else {
            self.lanes[lane].pop_front();
        }
        self.get_mut(idx).deadline = None;
        self.armed -= 1;
        for lane in 0..3 {
            self.clean_front(lane);
        }
        Some(idx)
    }

    /// Slots whose grace period is running, earliest deadline first.
    pub(crate) fn in_grace(&self) -> impl Iterator<Item = u32> + '_ {
        self.lanes[Lane::Grace as usize]
            .iter()
            .filter(|&&(at, idx)| self.is_live(at, idx))
            .map(|&(_, idx)| idx)
    }

    /// Whether `(at, idx)` is queued as a live timer.
    pub(crate) fn is_queued(&self, at: Nanos, idx: u32) -> bool {
        self.backoff.contains(&(at, idx)) || self.lanes.iter().any(|q| q.contains(&(at, idx)))
    }

    pub(crate) fn timer_count(&self) -> usize {
        self.armed
    }
}

fn slot_name(slots: &[Option<TopicEntry>], i: u32) -> &str {
    slots[i as usize].as_ref().map_or("", |e| &e.name)
}
