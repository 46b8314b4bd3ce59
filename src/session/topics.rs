//! The session's books beside the engine: per topic (indexed by the engine's
//! dense [`TopicId::index`]), per subscription, per room, and per ref
//! awaiting a reply.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use smallvec::SmallVec;

use crate::codec::Payload;
use crate::engine::{JoinRef, RoomId, SubscriberId, TopicId};
use crate::session::events::{PushId, RoomState};
use crate::session::message::JoinParams;
use crate::session::ordered::TopicStream;
use crate::session::presence::Presence;

/// What the session keeps per topic the engine manages.
pub(crate) struct TopicSide {
    pub(crate) id: TopicId,
    pub(crate) name: Arc<str>,
    pub(crate) params: JoinParams,
    /// Subscriptions of this topic, in subscription order.
    pub(crate) subscribers: SmallVec<[SubscriberId; 2]>,
    /// Rooms that show this topic (they get its messages).
    pub(crate) rooms: SmallVec<[RoomId; 1]>,
    /// The incarnation joined last (its join sent), if any.
    pub(crate) current: Option<JoinRef>,
    /// The server's response to the current incarnation's join.
    pub(crate) response: Payload,
    /// The server's or a resource's words about the last failure.
    pub(crate) detail: Option<Arc<str>>,
    /// An active incarnation was lost and no other is active yet.
    pub(crate) lost: bool,
    /// The settle event arrived for the current incarnation.
    pub(crate) settle_seen: bool,
    /// The current incarnation is settling and waits for the settle event.
    pub(crate) settle_waiting: bool,
    /// Pushes waiting for the channel, oldest first.
    pub(crate) buffered: VecDeque<PushId>,
    /// Pushes sent on the current incarnation, awaiting replies.
    pub(crate) in_flight: SmallVec<[PushId; 2]>,
    /// Presence tracking, when a subscriber asked for it.
    pub(crate) presence: Option<Box<Presence>>,
    /// The status last reported to the subscriptions.
    pub(crate) reported: Option<crate::engine::TopicStatus>,
    /// The ordered stream, when the topic has one.
    pub(crate) stream: Option<Box<TopicStream>>,
}

impl TopicSide {
    pub(crate) fn new(id: TopicId, name: Arc<str>, params: JoinParams) -> TopicSide {
        TopicSide {
            id,
            name,
            params,
            subscribers: SmallVec::new(),
            rooms: SmallVec::new(),
            current: None,
            response: Payload::empty(),
            detail: None,
            lost: false,
            settle_seen: false,
            settle_waiting: false,
            buffered: VecDeque::new(),
            in_flight: SmallVec::new(),
            presence: None,
            reported: None,
            stream: None,
        }
    }
}

/// Topic sides by the engine's dense topic index.
#[derive(Default)]
pub(crate) struct Topics {
    slots: Vec<Option<TopicSide>>,
}

impl Topics {
    pub(crate) fn get(&self, id: TopicId) -> Option<&TopicSide> {
        self.slots
            .get(id.index())?
            .as_ref()
            .filter(|side| side.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: TopicId) -> Option<&mut TopicSide> {
        self.slots
            .get_mut(id.index())?
            .as_mut()
            .filter(|side| side.id == id)
    }

    /// The side of `id`, created with `make` when missing (a stale side of an
    /// older topic in the same slot is replaced).
    pub(crate) fn entry(
        &mut self,
        id: TopicId,
        make: impl FnOnce() -> TopicSide,
    ) -> &mut TopicSide {
        let i = id.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let slot = &mut self.slots[i];
        if slot.as_ref().is_none_or(|side| side.id != id) {
            *slot = Some(make());
        }
        slot.as_mut().expect("just filled")
    }

    pub(crate) fn remove(&mut self, id: TopicId) -> Option<TopicSide> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.as_ref().is_some_and(|side| side.id == id) {
            slot.take()
        } else {
            None
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &TopicSide> {
        self.slots.iter().flatten()
    }

    pub(crate) fn ids(&self) -> Vec<TopicId> {
        self.iter().map(|side| side.id).collect()
    }
}

/// One subscription.
pub(crate) struct SubEntry {
    pub(crate) topic: TopicId,
    /// Events it wants (`None`: all).
    pub(crate) events: Option<Arc<[String]>>,
    /// It has seen its topic joined (so a later join is a rejoin for it).
    pub(crate) joined: bool,
    /// It asked for presence events.
    pub(crate) presence: bool,
}

impl SubEntry {
    pub(crate) fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.iter().any(|e| e == event))
    }
}

/// One room.
#[derive(Default)]
pub(crate) struct RoomEntry {
    /// The topic shown, as the session delivers its messages.
    pub(crate) shown: Option<TopicId>,
    /// The topic being switched to.
    pub(crate) pending: Option<TopicId>,
    pub(crate) state: RoomState,
}

/// What a ref awaiting a reply belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefKind {
    Heartbeat {
        sent: Instant,
    },
    Join {
        topic: TopicId,
        join_ref: JoinRef,
    },
    Leave {
        topic: TopicId,
    },
    Push(PushId),
    /// An ordered stream's acknowledgement or replay request.
    Stream {
        topic: TopicId,
    },
}
