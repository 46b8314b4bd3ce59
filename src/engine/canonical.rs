//! Canonical equality, hashing and debug output. The slab's layout depends on
//! history (which slots were freed when), so these walk topics in name order
//! and ignore slot numbers: two engines that hold the same topics in the same
//! states are equal, which is what a model checker needs to deduplicate.
//! The epoch (an `Instant`) is left out too: times are compared as offsets.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::engine::store::TopicEntry;
use crate::engine::Engine;

impl Engine {
    fn sorted_topics(&self) -> Vec<&TopicEntry> {
        let mut v: Vec<&TopicEntry> = self.store.iter().map(|(_, e)| e).collect();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        self.now == other.now
            && self.socket_up == other.socket_up
            && self.last_ref == other.last_ref
            && self.rng == other.rng
            && self.config == other.config
            && self.rooms == other.rooms
            && self.outputs == other.outputs
            && self.store.len() == other.store.len()
            && self.store.iter().all(|(_, e)| {
                other
                    .store
                    .find(&e.name)
                    .is_some_and(|i| other.store.get(i) == e)
            })
    }
}

impl Eq for Engine {}

impl Hash for Engine {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.now.hash(state);
        self.socket_up.hash(state);
        self.last_ref.hash(state);
        self.rng.hash(state);
        self.rooms.hash(state);
        self.outputs.hash(state);
        self.sorted_topics().hash(state);
    }
}

impl Engine {
    /// Hashes the engine like its `Hash` impl but without absolute time: the
    /// clock and timer deadlines are left out (only which timers are armed
    /// counts). For model checkers that fire timers in any order: two states
    /// that differ only in when their timers fire behave alike there, and
    /// treating them as one keeps the state space finite.
    pub fn hash_untimed<H: Hasher>(&self, state: &mut H) {
        self.socket_up.hash(state);
        self.last_ref.hash(state);
        self.rng.hash(state);
        self.rooms.hash(state);
        self.outputs.hash(state);
        for e in self.sorted_topics() {
            e.name.hash(state);
            e.holders.hash(state);
            e.params.hash(state);
            e.settling.hash(state);
            e.attempts.hash(state);
            e.status.hash(state);
            e.deadline.is_some().hash(state);
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("now_ns", &self.now)
            .field("socket_up", &self.socket_up)
            .field("last_ref", &self.last_ref)
            .field("topics", &self.sorted_topics())
            .field("rooms", &self.rooms)
            .field("outputs", &self.outputs)
            .finish()
    }
}
