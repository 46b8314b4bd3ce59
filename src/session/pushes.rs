//! The books of pushes: where each waits (in its topic's buffer, or in
//! flight under a ref), and when each times out. Which join_ref a push is
//! stamped with, and when a buffer is flushed, is decided by the session from
//! the engine's phases; this module only keeps the books.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use crate::codec::EncodedPayload;
use crate::engine::{JoinRef, TopicId};
use crate::session::events::PushId;

/// Where a push is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushState {
    /// In its topic's buffer, waiting for the channel.
    Buffered,
    /// Sent under `msg_ref`, stamped with `join_ref`.
    InFlight { msg_ref: u64, join_ref: JoinRef },
}

/// One push the session still owes an outcome (or, for a cast, still has to
/// send).
#[derive(Clone, Debug)]
pub(crate) struct PushEntry {
    pub(crate) topic: TopicId,
    pub(crate) event: String,
    pub(crate) payload: EncodedPayload,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) state: PushState,
    /// May go out while the topic settles (part of its settling handshake).
    pub(crate) settling: bool,
    /// Whether the caller wants the outcome (false for casts).
    pub(crate) reply: bool,
}

/// Every push not yet resolved, by id, with their deadlines.
#[derive(Clone, Debug, Default)]
pub(crate) struct PushBook {
    entries: HashMap<PushId, PushEntry, FxBuildHasher>,
    deadlines: BinaryHeap<Reverse<(Instant, PushId)>>,
}

impl PushBook {
    pub(crate) fn insert(&mut self, id: PushId, entry: PushEntry) {
        self.deadlines.push(Reverse((entry.deadline, id)));
        self.entries.insert(id, entry);
    }

    pub(crate) fn contains(&self, id: PushId) -> bool {
        self.entries.contains_key(&id)
    }

    pub(crate) fn get(&self, id: PushId) -> Option<&PushEntry> {
        self.entries.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: PushId) -> Option<&mut PushEntry> {
        self.entries.get_mut(&id)
    }

    pub(crate) fn remove(&mut self, id: PushId) -> Option<PushEntry> {
        self.entries.remove(&id)
    }

    /// The earliest deadline in the heap (live after [`PushBook::prune`]).
    pub(crate) fn peek_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the deadlines of resolved pushes off the heap's top, so that
    /// [`PushBook::peek_deadline`] is live (call after every input). The
    /// heap is rebuilt when stale entries outnumber the live ones.
    pub(crate) fn prune(&mut self) -> Option<Instant> {
        if self.deadlines.len() > 64 && self.deadlines.len() > 4 * self.entries.len() {
            let entries = &self.entries;
            self.deadlines
                .retain(|Reverse((at, id))| entries.get(id).is_some_and(|e| e.deadline == *at));
        }
        while let Some(Reverse((at, id))) = self.deadlines.peek() {
            match self.entries.get(id) {
                Some(e) if e.deadline == *at => return Some(*at),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    /// Takes every push whose deadline is at or before `now`.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<(PushId, PushEntry)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.entries.get(&id).is_some_and(|e| e.deadline == at) {
                if let Some(e) = self.entries.remove(&id) {
                    out.push((id, e));
                }
            }
        }
        out
    }

    /// `(buffered, in flight)` counts.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let in_flight = self
            .entries
            .values()
            .filter(|e| matches!(e.state, PushState::InFlight { .. }))
            .count();
        (self.entries.len() - in_flight, in_flight)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every push, for failing them all.
    pub(crate) fn drain(&mut self) -> Vec<(PushId, PushEntry)> {
        self.deadlines.clear();
        let mut all: Vec<_> = self.entries.drain().collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }
}
