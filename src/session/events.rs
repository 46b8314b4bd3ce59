//! What a session asks its driver to do and what it tells the application:
//! one ordered queue of [`Output`]s, drained with
//! [`Session::poll_output`](super::Session::poll_output).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use crate::codec::{Frame, Payload, Reply};
use crate::engine::{FailReason, JoinRef, RoomId, SubscriberId, TopicStatus};
use crate::session::error::PushError;
use crate::session::message::ChannelMessage;
use crate::session::presence::PresenceEvent;

/// The id of one push, chosen by the caller; its outcome comes back as
/// [`Event::Push`] with the same id.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PushId(pub u64);

/// The id of one connection attempt: answers about an attempt the session
/// has given up on are recognised and ignored.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection#{}", self.0)
    }
}

/// One output of the session.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Output {
    /// Send this data frame on the open socket.
    Transmit(Frame),
    /// Open a WebSocket connection.
    Connect(ConnectRequest),
    /// Close the connection (or abandon the attempt) with this code.
    Close(CloseRequest),
    /// Call the application's resources.
    Resource(ResourceEffect),
    /// News for the application.
    Event(Event),
    /// Something worth a log line (never a secret).
    Diagnostic(Diagnostic),
}

/// Open a WebSocket to `url` within `timeout`; answer with
/// [`Session::handle_connected`](super::Session::handle_connected) or
/// [`Session::handle_disconnected`](super::Session::handle_disconnected)
/// under the same `id`.
///
/// The URL's query and the protocols carry secrets (socket params, the auth
/// token): `Debug` shows neither, and a driver must not log them.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The attempt.
    pub id: ConnectionId,
    /// Consecutive attempts since the connection was last healthy (0 for the
    /// first).
    pub attempt: u32,
    /// Give up on the attempt after this long (the session also times it out
    /// itself and says so with a [`CloseRequest`]).
    pub timeout: Duration,
    pub(crate) url: String,
    pub(crate) protocols: Vec<String>,
}

impl ConnectRequest {
    /// The full socket URL, query (params, `vsn`) included. A secret.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `Sec-WebSocket-Protocol` values to offer (`phoenix` and the auth
    /// token, when one is configured). Secrets.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The URL without its query: what logs may show.
    pub fn endpoint(&self) -> &str {
        crate::session::config::redact_query(&self.url)
    }
}

impl fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("timeout", &self.timeout)
            .field("endpoint", &self.endpoint())
            .field("protocols", &self.protocols.len())
            .finish()
    }
}

/// Close the connection `id` (or abandon connecting it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseRequest {
    /// The connection.
    pub id: ConnectionId,
    /// The close code (1000: normal).
    pub code: u16,
    /// The close reason.
    pub reason: &'static str,
}

/// A call on the application's resources, in the order the engine decided
/// them: per incarnation, `Create` once, maybe `StartSettling`, `Destroy`
/// exactly once.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ResourceEffect {
    /// Create the resources of a new incarnation (its join is being sent).
    Create {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation.
        join_ref: JoinRef,
    },
    /// Start waiting for the first sync; answer with
    /// [`Session::handle_settled`](super::Session::handle_settled).
    StartSettling {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation.
        join_ref: JoinRef,
    },
    /// Stop waiting: the incarnation is gone.
    AbortSettling {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation.
        join_ref: JoinRef,
    },
    /// Destroy the resources of an incarnation.
    Destroy {
        /// Topic.
        topic: Arc<str>,
        /// Incarnation.
        join_ref: JoinRef,
    },
    /// A message of the current incarnation (also while it settles), when
    /// [`SessionConfig::with_resources`](super::SessionConfig::with_resources) is on.
    Message {
        /// Incarnation.
        join_ref: JoinRef,
        /// The message.
        message: ChannelMessage,
    },
}

/// Who a message goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recipient {
    /// A subscription.
    Subscription(SubscriberId),
    /// A room (showing the message's topic).
    Room(RoomId),
}

/// The recipients of one message.
pub type Recipients = SmallVec<[Recipient; 2]>;

/// News for the application.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The connection's state changed.
    Connection(ConnectionState),
    /// News for one subscription.
    Subscription {
        /// The subscription.
        id: SubscriberId,
        /// What happened.
        event: SubscriptionEvent,
    },
    /// News for one room.
    Room {
        /// The room.
        id: RoomId,
        /// What happened.
        event: RoomEvent,
    },
    /// A message of an active topic, for these recipients (subscribers of the
    /// topic whose event filter lets it through, and rooms showing it).
    Message {
        /// The message.
        message: ChannelMessage,
        /// Who gets it.
        to: Recipients,
    },
    /// The status of a subscription's topic changed (connecting, settling,
    /// active, retrying, offline…): for displays and state watches. The
    /// changes that matter to a consumer also come as
    /// [`Event::Subscription`].
    SubscriptionStatus {
        /// The subscription.
        id: SubscriberId,
        /// Its topic's status now.
        status: TopicStatus,
    },
    /// The outcome of a push (not for casts).
    Push {
        /// The push.
        id: PushId,
        /// The server's `ok` (or other non-error) reply, or why there was none.
        outcome: Result<Reply, PushError>,
    },
}

/// Why a subscription or room ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application unsubscribed.
    Unsubscribed,
    /// The application closed the room.
    RoomClosed,
    /// `close_all`.
    CloseAll,
    /// `disconnect`.
    Disconnected,
    /// The server closed the socket with code 1000 (normal): no reconnect.
    ServerClosed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The reconnect policy gave up.
    GaveUp {
        /// Attempts made since the connection was last healthy.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The topic failed for good (the subscription saw
    /// [`SubscriptionEvent::Failed`] first).
    TopicFailed,
    /// The driver stopped (its runtime shut down, or it panicked).
    Stopped,
}

/// Why a joined channel was lost (a new incarnation follows, unless the
/// topic fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// The channel crashed on the server (`phx_error`).
    Crashed,
    /// The server closed the channel (`phx_close`).
    ClosedByServer,
    /// The socket went down.
    SocketDown,
    /// A versioned stream had a gap and resyncs.
    Resync,
}

/// What happens to one subscription, in order. After `Failed` or `Closed`
/// nothing more comes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// The topic is active (joined and, where configured, settled): messages
    /// flow. `response` is the server's join reply; `rejoin` says whether an
    /// earlier incarnation was lost (so derived state may be stale).
    Joined {
        /// The incarnation.
        join_ref: JoinRef,
        /// The server's response to the join.
        response: Payload,
        /// Whether this follows a lost incarnation.
        rejoin: bool,
    },
    /// The joined channel was lost; a rejoin follows unless the topic fails.
    Lost {
        /// Why.
        reason: LostReason,
    },
    /// A join attempt failed; another follows after `delay`.
    Rejoining {
        /// What failed.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
        /// Failures in a row so far.
        attempt: u8,
        /// The delay before the next join, jitter included.
        delay: Duration,
    },
    /// The topic gave up after its retries; the subscription ends.
    Failed {
        /// The last error.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
    },
    /// A presence change on the topic (when presence tracking is on).
    Presence(PresenceEvent),
    /// Something the topic's ordered stream's readers must know: positions
    /// lost, a resync, a malformed position (when the topic has a stream).
    Stream(crate::session::StreamEvent),
    /// A message of the topic. (The session emits messages once per message,
    /// as [`Event::Message`] with their recipients; drivers hand each
    /// recipient this.)
    Message(ChannelMessage),
    /// Messages were dropped because the subscription had too many unread
    /// (a driver's queue bound), since the last `Lagged`.
    Lagged {
        /// Messages dropped.
        messages: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// The subscription ended.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// What happens to one room, in order. After `Closed` nothing more comes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// The room shows `topic` from now on: its switch completed, the topic is
    /// active. Every later message is of this topic.
    Shows {
        /// The topic now shown.
        topic: Arc<str>,
        /// Its incarnation.
        join_ref: JoinRef,
        /// The server's response to its join.
        response: Payload,
    },
    /// The shown topic's channel was lost; the room keeps showing it, and a
    /// rejoin follows unless it fails.
    ShownLost {
        /// The topic.
        topic: Arc<str>,
        /// Why.
        reason: LostReason,
    },
    /// The shown topic is active again after it was lost: derived state may
    /// be stale (resync).
    ShownRejoined {
        /// The topic.
        topic: Arc<str>,
        /// Its new incarnation.
        join_ref: JoinRef,
        /// The server's response to its join.
        response: Payload,
    },
    /// The shown topic gave up; the room shows nothing live until the next
    /// switch.
    ShownFailed {
        /// The topic.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
    },
    /// The topic the room was switching to failed; the room keeps showing
    /// what it showed.
    SwitchFailed {
        /// The topic that failed.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
    },
    /// A message of the shown topic (see [`SubscriptionEvent::Message`]).
    Message(ChannelMessage),
    /// The shown topic's ordered stream (see [`SubscriptionEvent::Stream`]).
    /// During a resync the room keeps showing the topic but shows none of
    /// its versions until the new mount's version 1: never one out of order.
    Stream {
        /// The topic.
        topic: Arc<str>,
        /// What happened.
        event: crate::session::StreamEvent,
    },
    /// Messages were dropped because the room had too many unread.
    Lagged {
        /// Messages dropped.
        messages: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// The room ended.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// How the shown topic of a room stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShownStatus {
    /// Active: its messages reach the room.
    #[default]
    Live,
    /// Its channel was lost; a rejoin is under way.
    Lost(LostReason),
    /// It gave up.
    Failed(FailReason),
}

/// What a room shows and waits for, accurate after every event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomState {
    /// The topic shown (none before the first switch completes, and after
    /// the room closed).
    pub shown: Option<Arc<str>>,
    /// How the shown topic stands.
    pub shown_status: ShownStatus,
    /// The topic being switched to.
    pub pending: Option<Arc<str>>,
    /// The last switch that failed, with its error, until the next switch or
    /// the next topic shown.
    pub failed: Option<(Arc<str>, FailReason)>,
    /// Why the room closed, once it did.
    pub closed: Option<CloseReason>,
}

/// Where a subscription stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionState {
    /// The topic is managed; this is its status.
    Managed(TopicStatus),
    /// The topic gave up (terminal).
    Failed {
        /// The last error.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
    },
    /// The subscription ended.
    Closed(CloseReason),
}

impl SubscriptionState {
    /// Whether the topic is active: messages flow, pushes are sent.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            SubscriptionState::Managed(TopicStatus::Live {
                phase: crate::engine::Phase::Active,
                ..
            })
        )
    }

    /// The current incarnation, if one exists.
    pub fn join_ref(&self) -> Option<JoinRef> {
        match self {
            SubscriptionState::Managed(status) => status.join_ref(),
            _ => None,
        }
    }

    /// Whether nothing more will come.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SubscriptionState::Failed { .. } | SubscriptionState::Closed(_)
        )
    }
}

/// The socket's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not connected, and not trying (before the first `connect`).
    Idle,
    /// A connection attempt is under way.
    Connecting {
        /// Attempts in a row since the connection was last healthy.
        attempt: u32,
    },
    /// Connected; channels are (re)joined.
    Connected,
    /// The connection was lost or an attempt failed; the next attempt starts
    /// after `delay`.
    Reconnecting {
        /// Failed attempts in a row so far.
        attempt: u32,
        /// Delay before the next attempt, jitter included.
        delay: Duration,
        /// What went wrong.
        reason: String,
    },
    /// Disconnected for good: the server closed normally, `disconnect` was
    /// called, or the reconnect policy gave up. `reconnect` starts over.
    Disconnected(CloseReason),
}

impl ConnectionState {
    /// Why the connection is down for good, if it is.
    pub fn closed_reason(&self) -> Option<CloseReason> {
        match self {
            ConnectionState::Disconnected(reason) => Some(reason.clone()),
            _ => None,
        }
    }
}

/// Something worth a log line. Never carries a secret (no param values, no
/// payloads of joins).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// A frame from the server could not be decoded; it was dropped.
    BadFrame {
        /// What was wrong.
        error: String,
    },
    /// A reply that answered nothing pending (a late or unknown ref).
    UnmatchedReply {
        /// Its topic.
        topic: String,
        /// Its ref.
        msg_ref: Option<String>,
    },
    /// A message for no current incarnation (stale join_ref, unknown topic,
    /// or a topic not active yet), dropped.
    Dropped {
        /// Its topic.
        topic: String,
        /// Its event.
        event: String,
    },
    /// An input the engine ignored as stale or not applicable.
    Ignored {
        /// What it was.
        what: String,
    },
    /// A message could not be encoded and was not sent.
    Unencodable {
        /// Its topic.
        topic: String,
        /// What went wrong.
        error: String,
    },
    /// A user callback (a params provider) panicked; the session went on.
    CallbackPanicked {
        /// Which callback.
        what: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The heartbeat went unanswered: the link is dead.
    HeartbeatTimeout,
}
