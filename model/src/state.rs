//! What a model state holds: the engine under test, the socket and server,
//! the ghost state the checks compare the engine against, and what the last
//! step found; and the actions that move it.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use channel_registry::engine::{JoinRef, Phase, SubscriberId};

use crate::properties::Inv;
use crate::registry::{Registry, TimerKind, TopicView};
use crate::server::{Net, TopicIdx};

/// One nondeterministic step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The application subscribes `sub` to `topic` (again, when it failed).
    Subscribe {
        /// Subscriber index (id = index + 1).
        sub: u8,
        /// Topic.
        topic: TopicIdx,
    },
    /// The application unsubscribes `sub` from `topic`.
    Unsubscribe {
        /// Subscriber index.
        sub: u8,
        /// Topic.
        topic: TopicIdx,
    },
    /// The application switches a room.
    Switch {
        /// Room id.
        room: u8,
        /// Topic.
        topic: TopicIdx,
    },
    /// The application closes everything.
    CloseAll,
    /// The application pushes on an active topic it holds.
    Push {
        /// Topic.
        topic: TopicIdx,
    },
    /// The server takes the `phx_leave` waiting at the head of its queue (and
    /// the frames queued behind it).
    ServerTake,
    /// The server rejects the join of a topic's channel (its ok reply is not
    /// delivered yet).
    ServerReject {
        /// Topic.
        topic: TopicIdx,
    },
    /// The channel of a topic crashes on the server.
    ServerCrash {
        /// Topic.
        topic: TopicIdx,
    },
    /// The server stops the channel of a topic.
    ServerStop {
        /// Topic.
        topic: TopicIdx,
    },
    /// The client takes its next frame.
    Deliver,
    /// The clock jumps to the latest armed deadline and the engine fires
    /// every armed timer in one `handle_timeout`, as a driver that wakes
    /// late does (offered when two or more timers are armed and
    /// [`crate::ModelCfg::batched_timers`] is on).
    TimersDue,
    /// An armed timer fires.
    Fire {
        /// Topic.
        topic: TopicIdx,
        /// Which timer.
        kind: TimerKind,
    },
    /// A resource settle result arrives.
    Settle {
        /// Topic.
        topic: TopicIdx,
        /// Incarnation whose resources settled.
        join_ref: JoinRef,
        /// Settled or failed.
        ok: bool,
    },
    /// The socket drops.
    SocketDrop,
    /// The socket reconnects.
    Reconnect,
}

/// Ghost of one incarnation, built from the engine's outputs and from what
/// the model delivered to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inc {
    /// Topic.
    pub topic: TopicIdx,
    /// The join_ref its resources were created under.
    pub id: JoinRef,
    /// The join_ref of its latest `phx_join` (differs from `id` only when the
    /// reference design's phoenix.js channel rejoins).
    pub wire: JoinRef,
    /// Its phase, as reported.
    pub phase: Phase,
    /// The model delivered a join ok for `wire`.
    pub acked: bool,
    /// The model delivered a settled result for `id`.
    pub settled: bool,
    /// The engine has been told that the server no longer holds `wire`: the
    /// model delivered its join error, its `phx_close` or its `phx_error`, or
    /// the socket it lived on went down. A `phx_leave` for it is then a
    /// mistake. (The real engine destroys such an incarnation in the same
    /// step, so the flag never outlives a step there.)
    pub ended: bool,
}

/// A settle result the model owes the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingSettle {
    /// Topic.
    pub topic: TopicIdx,
    /// Incarnation.
    pub join_ref: JoinRef,
    /// The engine aborted it; a result may still race in and must be stale.
    pub aborted: bool,
}

/// Ghost of one room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoomGhost {
    /// The last topic the application switched it to.
    pub requested: Option<TopicIdx>,
    /// How far the room has shown v1, v2, v3… of the first document in order.
    pub chain: u8,
}

/// What the model knows besides the engine and the network.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Live subscriptions: bit `sub * topics + topic`.
    pub subs: u64,
    /// Rooms.
    pub rooms: Vec<RoomGhost>,
    /// Incarnations holding resources, in creation order.
    pub incs: Vec<Inc>,
    /// Settle results owed.
    pub settles: Vec<PendingSettle>,
    /// Highest join_ref resources were created under (refs are never reused,
    /// so "created again" or "used after destroy" is any ref at or below it
    /// that is not live).
    pub max_id: u64,
    /// Application operations left.
    pub ops: u8,
    /// Application pushes left.
    pub pushes: u8,
    /// Server faults left.
    pub faults: u8,
    /// Socket drops left.
    pub drops: u8,
    /// Reconnects owed.
    pub reconnects: u8,
    /// Whether the socket is up.
    pub socket_up: bool,
    /// Subscribers, topics and rooms used so far; fresh ones are taken in
    /// index order (see [`crate::ChannelModel`]'s `actions`).
    pub used: [u8; 3],
    /// The state is hashed with join refs renamed ([`crate::canon`]).
    pub canonical_refs: bool,
}

/// A model state: the engine, the socket and server, the ghost, the checks.
#[derive(Clone, Debug)]
pub struct State<E: Registry> {
    /// The engine under test.
    pub engine: E,
    /// Socket and server.
    pub net: Net,
    /// Ghost state.
    pub ghost: Ghost,
    /// Invariants the last step broke, by the checks that need the step
    /// (the action, the outputs, the state before). Per step, not sticky: a
    /// counterexample ends at the step that broke the invariant, and the
    /// checker, which keeps the last path it saw for a property, is not handed
    /// the longer paths through the broken state's descendants.
    pub found: Findings,
    /// The findings of the checks of the state alone, computed once, when the
    /// checker evaluates the properties ([`crate::ChannelModel::state_findings`]).
    /// Not hashed (a function of the state).
    pub state_found: OnceLock<Findings>,
    /// Milestones reached by the last step ([`crate::properties::Milestone::bit`]).
    pub milestones: u8,
    /// The engine's own output audit. Not hashed: it is a function of the
    /// engine's state as long as its cross-check passes.
    pub audit: E::Audit,
    /// How far the state is from the end of its run
    /// ([`crate::progress::rank`]). Not hashed: a function of the state.
    pub rank: crate::progress::Rank,
    /// The engine's view of every topic, gathered once
    /// ([`crate::ChannelModel::views`]). Not hashed: a function of the engine.
    pub views: OnceLock<Arc<[TopicView]>>,
}

/// Broken invariants, with the first message for each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// One bit per broken invariant ([`Inv::bit`]).
    pub bits: u16,
    /// For a terminal state (the run has ended), one bit per
    /// [`crate::properties::Goal`] met; `None` for any other state. Only the
    /// checks of a state alone set it.
    pub ended: Option<u8>,
    notes: Option<Arc<BTreeMap<Inv, String>>>,
}

impl Findings {
    /// Records a broken invariant (the first message per invariant is kept).
    pub fn flag(&mut self, inv: Inv, message: impl FnOnce() -> String) {
        if self.bits & inv.bit() == 0 {
            self.bits |= inv.bit();
            let mut notes = self.notes.as_deref().cloned().unwrap_or_default();
            notes.insert(inv, message());
            self.notes = Some(Arc::new(notes));
        }
    }

    /// The message recorded for a broken invariant.
    pub fn note(&self, inv: Inv) -> Option<&str> {
        self.notes.as_ref()?.get(&inv).map(String::as_str)
    }
}

impl<E: Registry> Hash for State<E> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        if self.ghost.canonical_refs {
            return crate::canon::hash_state(self, h);
        }
        self.engine.hash_untimed(h);
        self.net.hash(h);
        self.ghost.hash(h);
        self.found.bits.hash(h);
        self.milestones.hash(h);
    }
}

impl<E: Registry> PartialEq for State<E> {
    fn eq(&self, other: &Self) -> bool {
        self.engine == other.engine
            && self.net == other.net
            && self.ghost == other.ghost
            && self.found.bits == other.found.bits
            && self.milestones == other.milestones
    }
}

impl<E: Registry> State<E> {
    /// Records an invariant broken by the step.
    pub fn flag(&mut self, inv: Inv, message: impl FnOnce() -> String) {
        self.found.flag(inv, message);
    }

    pub(crate) fn holds(&self, topics: usize, sub: u8, topic: TopicIdx) -> bool {
        self.ghost.subs & sub_bit(topics, sub, topic) != 0
    }
}

pub(crate) fn sub_bit(topics: usize, sub: u8, topic: TopicIdx) -> u64 {
    1 << (usize::from(sub) * topics + usize::from(topic))
}

pub(crate) fn sub_id(sub: u8) -> SubscriberId {
    SubscriberId(u64::from(sub) + 1)
}
