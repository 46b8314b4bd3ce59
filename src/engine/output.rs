//! What the engine asks its driver to do ([`Effect`]) and what it tells the
//! application ([`Event`]). Both go into one queue, in the order they
//! happened, drained with [`Engine::poll_output`](crate::engine::Engine::poll_output).

use std::sync::Arc;
use std::time::Duration;

use crate::engine::ids::{JoinRef, RoomId};
use crate::engine::phase::{Phase, Trigger};

/// One output of the engine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Output {
    /// Work for the driver.
    Effect(Effect),
    /// News for the application.
    Event(Event),
}

/// Work for the driver: frames to send and resource calls to make.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Effect {
    /// Send `phx_join` with `ref = join_ref`.
    Join {
        /// Topic to join.
        topic: Arc<str>,
        /// The new incarnation's ref (also the frame's ref).
        join_ref: JoinRef,
        /// Join params (JSON object text) as given at subscribe, if any. A
        /// driver may re-read fresh params (a token) instead.
        params: Option<Arc<str>>,
    },
    /// Send `phx_leave` for this incarnation.
    Leave {
        /// Topic to leave.
        topic: Arc<str>,
        /// The incarnation being left.
        join_ref: JoinRef,
    },
    /// Create the resources of a new incarnation.
    CreateResources {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation that owns them.
        join_ref: JoinRef,
    },
    /// Start waiting for the resources' first sync; answer with
    /// `handle_settled` or `handle_settle_failed`.
    StartSettling {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation that is settling.
        join_ref: JoinRef,
    },
    /// Stop waiting for settling: the incarnation is gone.
    AbortSettling {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation that was settling.
        join_ref: JoinRef,
    },
    /// Destroy the resources of an incarnation. Emitted exactly once per
    /// incarnation, after which nothing refers to them.
    DestroyResources {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation that owned them.
        join_ref: JoinRef,
    },
}

/// Why a topic's incarnation failed (the last error, when it is reported).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailReason {
    /// The server rejected the join; its reason when it gave one.
    JoinRejected(Option<Arc<str>>),
    /// No join reply in time.
    JoinTimeout,
    /// Settling failed; the resource's reason when it gave one.
    SettleFailed(Option<Arc<str>>),
    /// Settling did not finish in time.
    SettleTimeout,
    /// The server closed the channel.
    ClosedByServer,
    /// The channel crashed on the server.
    Crashed,
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
}

/// Why an input was ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// An incarnation changed phase. `from` is `None` for a new incarnation
    /// (which starts in `Connecting`).
    PhaseChanged {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation.
        join_ref: JoinRef,
        /// Previous phase.
        from: Option<Phase>,
        /// New phase.
        to: Phase,
        /// Cause (`None` for a new incarnation).
        trigger: Option<Trigger>,
    },
    /// An incarnation failed and a new one will be joined after `delay`.
    Retrying {
        /// Topic.
        topic: Arc<str>,
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
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
    },
    /// The registry no longer manages the topic (no holder, no incarnation).
    TopicRemoved {
        /// Topic.
        topic: Arc<str>,
    },
    /// A room now shows `topic` (its switch completed).
    RoomShows {
        /// Room.
        room: RoomId,
        /// Topic shown.
        topic: Arc<str>,
    },
    /// The topic a room is switching to failed; the room keeps showing what it
    /// showed.
    RoomSwitchFailed {
        /// Room.
        room: RoomId,
        /// The topic that failed.
        topic: Arc<str>,
        /// Why.
        reason: FailReason,
    },
    /// An input was ignored; nothing changed.
    Ignored {
        /// Topic named by the input.
        topic: Arc<str>,
        /// Join ref carried by the input.
        join_ref: JoinRef,
        /// The input.
        input: InputKind,
        /// Why.
        reason: IgnoreReason,
    },
}
