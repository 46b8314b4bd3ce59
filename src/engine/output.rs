//! What the engine asks its driver to do ([`Effect`]) and what it tells the
//! application ([`Event`]). Both go into one queue, in the order they
//! happened, drained with [`Engine::poll_output`](crate::engine::Engine::poll_output).

use std::time::Duration;

use crate::engine::ids::{JoinRef, RoomId, TopicId};
use crate::engine::phase::{Phase, Trigger};

/// One output of the engine: `Copy`, 32 bytes, naming topics by handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Output {
    /// Work for the driver.
    Effect(Effect),
    /// News for the application.
    Event(Event),
}

/// Work for the driver: frames to send and resource calls to make. Each
/// names its topic by handle: read the name with
/// [`Engine::topic_name`](crate::engine::Engine::topic_name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Effect {
    /// A new incarnation: create its resources, then send `phx_join` with
    /// `ref = join_ref` and the topic's params
    /// ([`Engine::params`](crate::engine::Engine::params)).
    Join {
        /// Topic to join.
        topic: TopicId,
        /// The new incarnation's ref (also the frame's ref).
        join_ref: JoinRef,
    },
    /// Start waiting for the resources' first sync; answer with
    /// `handle_settled` or `handle_settle_failed`.
    StartSettling {
        /// Topic.
        topic: TopicId,
        /// Incarnation that is settling.
        join_ref: JoinRef,
    },
    /// Stop waiting for settling: the incarnation is gone.
    AbortSettling {
        /// Topic.
        topic: TopicId,
        /// Incarnation that was settling.
        join_ref: JoinRef,
    },
    /// The incarnation ended: send `phx_leave` for it when `leave` is set,
    /// then destroy its resources (exactly once per incarnation; nothing
    /// refers to them afterwards).
    End {
        /// Topic.
        topic: TopicId,
        /// The incarnation that ended.
        join_ref: JoinRef,
        /// Whether the server may still hold the channel, so a `phx_leave`
        /// must be sent.
        leave: bool,
        /// Whether the engine no longer manages the topic (nobody holds it):
        /// no [`Event::TopicRemoved`] follows.
        removed: bool,
    },
}

/// Why a topic's incarnation failed (the last error, when it is reported).
/// The details (the server's response, the resource's error) are the
/// driver's: it fed them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FailReason {
    /// The server rejected the join.
    JoinRejected,
    /// No join reply in time.
    JoinTimeout,
    /// Settling failed.
    SettleFailed,
    /// Settling did not finish in time.
    SettleTimeout,
    /// The server closed the channel.
    ClosedByServer,
    /// The channel crashed on the server.
    Crashed,
    /// Its ordered stream broke and the rejoins to repair it did not get the
    /// topic active.
    Resync,
}

/// The protocol or resource input an [`Event::Ignored`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputKind {
    /// A join reply (ok).
    JoinOk,
    /// A join reply (error).
    JoinError,
    /// `phx_close`.
    Close,
    /// `phx_error`.
    Error,
    /// Settled.
    Settled,
    /// Settle failed.
    SettleFailed,
    /// The stream of the incarnation broke (see [`Trigger::Resync`]).
    Resync,
}

/// Why an input was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The registry does not manage the topic (any more).
    UnknownTopic,
    /// The join_ref is not the topic's current incarnation: a late event of an
    /// older join (stale isolation).
    Stale {
        /// The current incarnation, if the topic has one.
        current: Option<JoinRef>,
    },
    /// The input does not apply to the incarnation's phase (not a table row),
    /// e.g. a second join reply.
    NotApplicable {
        /// The incarnation's phase.
        phase: Phase,
    },
}

/// News for the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// An incarnation changed phase (a new one starts in `Connecting`,
    /// announced by [`Effect::Join`]). Emitted unless
    /// [`Config::phase_events`](crate::engine::Config::phase_events) is off.
    PhaseChanged {
        /// Topic.
        topic: TopicId,
        /// Incarnation.
        join_ref: JoinRef,
        /// Previous phase.
        from: Phase,
        /// New phase.
        to: Phase,
        /// Cause.
        trigger: Trigger,
    },
    /// An incarnation failed and a new one will be joined after `delay`.
    Retrying {
        /// Topic.
        topic: TopicId,
        /// Failures in a row so far.
        attempt: u8,
        /// Delay before the next join, jitter included.
        delay: Duration,
        /// What failed.
        reason: FailReason,
    },
    /// The topic gave up: its holders are not served until they subscribe
    /// again or the socket reconnects.
    TopicFailed {
        /// Topic.
        topic: TopicId,
        /// The last error.
        reason: FailReason,
    },
    /// The registry no longer manages the topic (no holder, no incarnation),
    /// when that happens without an incarnation ending (otherwise
    /// [`Effect::End`] says `removed`).
    TopicRemoved {
        /// Topic.
        topic: TopicId,
    },
    /// A room now shows `topic` (its switch completed).
    RoomShows {
        /// Room.
        room: RoomId,
        /// Topic shown.
        topic: TopicId,
    },
    /// The topic a room is switching to failed; the room keeps showing what it
    /// showed.
    RoomSwitchFailed {
        /// Room.
        room: RoomId,
        /// The topic that failed.
        topic: TopicId,
        /// Why.
        reason: FailReason,
    },
    /// An input was ignored; nothing changed.
    Ignored {
        /// Topic named by the input, when the engine manages it.
        topic: Option<TopicId>,
        /// Join ref carried by the input.
        join_ref: JoinRef,
        /// The input.
        input: InputKind,
        /// Why.
        reason: IgnoreReason,
    },
}

impl Output {
    /// The topic this output is about, if any.
    pub fn topic(&self) -> Option<TopicId> {
        match *self {
            Output::Effect(
                Effect::Join { topic, .. }
                | Effect::StartSettling { topic, .. }
                | Effect::AbortSettling { topic, .. }
                | Effect::End { topic, .. },
            ) => Some(topic),
            Output::Event(
                Event::PhaseChanged { topic, .. }
                | Event::Retrying { topic, .. }
                | Event::TopicFailed { topic, .. }
                | Event::TopicRemoved { topic }
                | Event::RoomShows { topic, .. }
                | Event::RoomSwitchFailed { topic, .. },
            ) => Some(topic),
            Output::Event(Event::Ignored { topic, .. }) => topic,
        }
    }

    /// The same output about another topic handle (for canonical comparison).
    pub(crate) fn with_topic(mut self, to: TopicId) -> Output {
        match &mut self {
            Output::Effect(
                Effect::Join { topic, .. }
                | Effect::StartSettling { topic, .. }
                | Effect::AbortSettling { topic, .. }
                | Effect::End { topic, .. },
            ) => *topic = to,
            Output::Event(
                Event::PhaseChanged { topic, .. }
                | Event::Retrying { topic, .. }
                | Event::TopicFailed { topic, .. }
                | Event::TopicRemoved { topic }
                | Event::RoomShows { topic, .. }
                | Event::RoomSwitchFailed { topic, .. },
            ) => *topic = to,
            Output::Event(Event::Ignored { topic, .. }) => {
                if topic.is_some() {
                    *topic = Some(to);
                }
            }
        }
        self
    }
}
