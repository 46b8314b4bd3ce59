//! Rooms: version switching with handover. A room holds the topic it shows
//! and the topic it is switching to; it shows the old one until the new one
//! is active, then releases the old one (which drains if nobody else holds it).

use std::time::Instant;

use smallvec::SmallVec;

use crate::engine::ids::{Holder, RoomId, TopicId};
use crate::engine::lifecycle::rooms_of;
use crate::engine::output::Event;
use crate::engine::phase::{Phase, Trigger};
use crate::engine::{Engine, Error, JoinOptions, Switched};

/// What a room shows and waits for (handles of live topics: a room holds
/// both, so neither is removed while the room refers to it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Room {
    pub(crate) shown: Option<TopicId>,
    pub(crate) pending: Option<TopicId>,
}

impl Engine {
    /// Switches `room` to `topic` (creating the room on first use). The room
    /// keeps showing its current topic until `topic` is active; switching
    /// again before that releases the pending topic at once, and switching
    /// back to the shown topic cancels the pending one. On error the room is
    /// unchanged.
    pub fn switch(
        &mut self,
        room: RoomId,
        topic: &str,
        options: &JoinOptions,
        now: Instant,
    ) -> Result<Switched, Error> {
        self.begin(now);
        let holder = Holder::Room(room);
        let current = self.rooms.get(&room).copied().unwrap_or_default();
        let named =
            |id: Option<TopicId>| id.is_some_and(|id| self.store.name_of(id) == Some(topic));
        if named(current.shown) {
            let Some(pending) = current.pending else {
                return Ok(Switched::AlreadyShown);
            };
            self.rooms.get_mut(&room).expect("room exists").pending = None;
            self.release_id(pending, holder, Trigger::Superseded);
            return Ok(Switched::Cancelled);
        }
        if named(current.pending) {
            return Ok(Switched::AlreadyPending);
        }
        let (idx, _) = self.hold(topic, holder, options)?;
        let id = self.store.id(idx);
        let previous = self.rooms.entry(room).or_default().pending.replace(id);
        if let Some(previous) = previous {
            self.release_id(previous, holder, Trigger::Superseded);
        }
        if self.store.get(idx).phase() == Some(Phase::Active) {
            self.complete_switch(room);
            return Ok(Switched::Shown);
        }
        Ok(Switched::Pending)
    }

    /// Drops a room: both its shown and its pending topic are released.
    /// Returns false for an unknown room.
    pub fn close_room(&mut self, room: RoomId, now: Instant) -> bool {
        self.begin(now);
        let Some(r) = self.rooms.remove(&room) else {
            return false;
        };
        for topic in [r.pending, r.shown].into_iter().flatten() {
            self.release_id(topic, Holder::Room(room), Trigger::LastHolderLeft);
        }
        true
    }

    fn release_id(&mut self, topic: TopicId, holder: Holder, trigger: Trigger) {
        if let Some(idx) = self.store.resolve(topic) {
            self.release(idx, holder, trigger);
        }
    }

    /// The topic in `idx` became active: every room waiting for it shows it.
    pub(crate) fn complete_switches_to(&mut self, idx: u32) {
        let id = self.store.id(idx);
        let rooms: SmallVec<[RoomId; 4]> = rooms_of(&self.store.get(idx).holders).collect();
        for room in rooms {
            if self.rooms.get(&room).is_some_and(|r| r.pending == Some(id)) {
                self.complete_switch(room);
            }
        }
    }

    fn complete_switch(&mut self, room: RoomId) {
        let r = self.rooms.get_mut(&room).expect("room exists");
        let Some(new) = r.pending.take() else { return };
        let old = r.shown.replace(new);
        self.emit_event(Event::RoomShows { room, topic: new });
        if let Some(old) = old {
            self.release_id(old, Holder::Room(room), Trigger::Superseded);
        }
    }
}
