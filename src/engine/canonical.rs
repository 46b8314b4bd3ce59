//! Canonical equality, hashing and debug output. The slab's layout depends on
//! history (which slots were freed when), so these walk topics in name order
//! and compare topic handles by the names they stand for: two engines that
//! hold the same topics in the same states are equal, which is what a model
//! checker needs to deduplicate. The epoch (an `Instant`) is left out too:
//! times are compared as offsets.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::engine::ids::TopicId;
use crate::engine::output::Output;
use crate::engine::rooms::Room;
use crate::engine::store::TopicEntry;
use crate::engine::Engine;

/// A placeholder handle: outputs are compared with their topic replaced by
/// it, and the topic's name compared separately.
const NO_TOPIC: TopicId = TopicId::new(u32::MAX, u32::MAX);

impl Engine {
    fn sorted_topics(&self) -> Vec<&TopicEntry> {
        let mut v: Vec<&TopicEntry> = self.store.iter().map(|(_, e)| e).collect();
        v.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        v
    }

    fn name(&self, id: Option<TopicId>) -> Option<&str> {
        id.and_then(|id| self.store.name_of(id))
    }

    /// An output without slot numbers: its shape and the name of its topic.
    fn canonical_output(&self, o: &Output) -> (Output, Option<&str>) {
        (o.with_topic(NO_TOPIC), self.name(o.topic()))
    }

    fn canonical_room(&self, r: &Room) -> (Option<&str>, Option<&str>) {
        (self.name(r.shown), self.name(r.pending))
    }

    fn entry_eq(&self, a: &TopicEntry, other: &Engine, b: &TopicEntry) -> bool {
        a.name == b.name
            && a.status == b.status
            && a.deadline == b.deadline
            && a.holders == b.holders
            && a.attempts == b.attempts
            && a.settling == b.settling
            && self.store.params.get(a.params) == other.store.params.get(b.params)
    }

    fn hash_entry<H: Hasher>(&self, e: &TopicEntry, state: &mut H, timed: bool) {
        e.name.as_bytes().hash(state);
        e.holders.hash(state);
        self.store.params.get(e.params).hash(state);
        e.settling.hash(state);
        e.attempts.hash(state);
        e.status.hash(state);
        if timed {
            e.deadline.hash(state);
        } else {
            e.deadline().is_some().hash(state);
        }
    }

    fn hash_common<H: Hasher>(&self, state: &mut H) {
        self.socket_up.hash(state);
        self.last_ref.hash(state);
        self.rng.hash(state);
        for (id, r) in &self.rooms {
            id.hash(state);
            self.canonical_room(r).hash(state);
        }
        for o in &self.outputs {
            self.canonical_output(o).hash(state);
        }
    }
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        self.now == other.now
            && self.socket_up == other.socket_up
            && self.last_ref == other.last_ref
            && self.rng == other.rng
            && self.config == other.config
            && self.rooms.len() == other.rooms.len()
            && self
                .rooms
                .iter()
                .zip(&other.rooms)
                .all(|((ia, a), (ib, b))| {
                    ia == ib && self.canonical_room(a) == other.canonical_room(b)
                })
            && self.outputs.len() == other.outputs.len()
            && self
                .outputs
                .iter()
                .zip(&other.outputs)
                .all(|(a, b)| self.canonical_output(a) == other.canonical_output(b))
            && self.store.len() == other.store.len()
            && self.store.iter().all(|(_, e)| {
                other
                    .store
                    .find(e.name())
                    .is_some_and(|i| self.entry_eq(e, other, other.store.get(i)))
            })
    }
}

impl Eq for Engine {}

impl Hash for Engine {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.now.hash(state);
        self.hash_common(state);
        for e in self.sorted_topics() {
            self.hash_entry(e, state, true);
        }
    }
}

impl Engine {
    /// Hashes the engine like its `Hash` impl but without absolute time: the
    /// clock and timer deadlines are left out (only which timers are armed
    /// counts). For model checkers that fire timers in any order: two states
    /// that differ only in when their timers fire behave alike there, and
    /// treating them as one keeps the state space finite.
    pub fn hash_untimed<H: Hasher>(&self, state: &mut H) {
        self.hash_common(state);
        for e in self.sorted_topics() {
            self.hash_entry(e, state, false);
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topics: Vec<_> = self
            .sorted_topics()
            .into_iter()
            .map(|e| {
                (
                    e.name(),
                    e.status,
                    e.holders().collect::<Vec<_>>(),
                    e.attempts,
                    e.deadline(),
                    self.store.params.get(e.params),
                )
            })
            .collect();
        let rooms: Vec<_> = self
            .rooms
            .iter()
            .map(|(id, r)| (id, self.canonical_room(r)))
            .collect();
        let outputs: Vec<_> = self
            .outputs
            .iter()
            .map(|o| (o, self.name(o.topic())))
            .collect();
        f.debug_struct("Engine")
            .field("now_ns", &self.now)
            .field("socket_up", &self.socket_up)
            .field("last_ref", &self.last_ref)
            .field("topics", &topics)
            .field("rooms", &rooms)
            .field("outputs", &outputs)
            .finish()
    }
}
