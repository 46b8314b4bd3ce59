//! A mirror of the real engine's slot layout, for hashing.
//!
//! The engine stores topics in a slab: a new topic takes the most recently
//! freed slot, or a new one at the end; bulk operations (socket up, socket
//! down, close-all) walk topics in slot order, so the order of their outputs
//! (which topic rejoins first, which leave is sent first) depends on the
//! layout. The engine's canonical equality and hash leave the layout out, so
//! two engines it calls equal can behave differently, and a model that
//! merged them could miss behaviours (and count a different number of states
//! from run to run on several threads).
//!
//! The engine does not expose its free list, so the model mirrors the layout
//! from what it sees (a topic appears: insert; `TopicRemoved`: remove) and
//! hashes the mirror. Every step checks the mirror against the order in which
//! the engine lists its topics; if the engine's slab policy ever changes, that
//! check fails loudly (invariant 0) instead of the hash going quietly wrong.

use crate::server::TopicIdx;

/// Slots (topic or free) and the free list, most recently freed last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layout {
    slots: Vec<Option<TopicIdx>>,
    free: Vec<u8>,
}

impl Layout {
    /// A topic was created.
    pub fn insert(&mut self, topic: TopicIdx) {
        match self.free.pop() {
            Some(i) => self.slots[i as usize] = Some(topic),
            None => self.slots.push(Some(topic)),
        }
    }

    /// A topic was removed.
    pub fn remove(&mut self, topic: TopicIdx) {
        if let Some(i) = self.slots.iter().position(|s| *s == Some(topic)) {
            self.slots[i] = None;
            self.free.push(i as u8);
        }
    }

    /// The topics in slot order.
    pub fn order(&self) -> impl Iterator<Item = TopicIdx> + '_ {
        self.slots.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_last_freed_first() {
        let mut l = Layout::default();
        for t in [0, 1, 2] {
            l.insert(t);
        }
        l.remove(0);
        l.remove(2);
        l.insert(3);
        l.insert(4);
        assert_eq!(l.order().collect::<Vec<_>>(), [4, 1, 3]);
    }
}
