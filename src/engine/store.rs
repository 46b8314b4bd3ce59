//! Where topics live: a slab of entries, a hash index from topic string to
//! slot, and an ordered set of armed deadlines. Lookups are O(1) and flat in
//! the number of topics; only topics with an armed timer are in the timer set.

use std::collections::BTreeSet;
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
    /// `(deadline, slot)` of every armed timer.
    timers: BTreeSet<(Nanos, u32)>,
}

fn hash_str(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

impl Store {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn find(&self, topic: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash_str(topic), |&i| slot_name(slots, i) == topic)
            .copied()
    }

    pub(crate) fn insert(&mut self, entry: TopicEntry) -> u32 {
        let hash = hash_str(&entry.name);
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
        let entry = self.slots[idx as usize].take().expect("removing a vacant slot");
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

    /// Every occupied slot index, in slot order (a snapshot, so the caller may
    /// mutate while walking it).
    pub(crate) fn slot_count(&self) -> u32 {
        self.slots.len() as u32
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

    pub(crate) fn arm(&mut self, idx: u32, at: Nanos) {
        self.disarm(idx);
        self.timers.insert((at, idx));
        self.get_mut(idx).deadline = Some(at);
    }

    pub(crate) fn disarm(&mut self, idx: u32) {
        if let Some(at) = self.get_mut(idx).deadline.take() {
            self.timers.remove(&(at, idx));
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Nanos> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Takes the earliest timer due at or before `now`, disarming it.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<u32> {
        let &(at, idx) = self.timers.first()?;
        if at > now {
            return None;
        }
        self.timers.pop_first();
        self.get_mut(idx).deadline = None;
        Some(idx)
    }

    /// Slots with an armed timer, earliest first.
    pub(crate) fn armed(&self) -> impl Iterator<Item = (Nanos, u32)> + '_ {
        self.timers.iter().copied()
    }

    pub(crate) fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Heap bytes this store owns (excluding topic names and holder spills),
    /// for memory reports.
    pub(crate) fn approx_table_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<TopicEntry>>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.free.capacity() * 4
    }
}

fn slot_name(slots: &[Option<TopicEntry>], i: u32) -> &str {
    slots[i as usize].as_ref().map_or("", |e| &e.name)
}
