//! What the server reports: socket ids, how channels and topic sessions end, and the event
//! log's entries.

use std::fmt;
use std::time::Duration;

use super::{MalformedFrame, OrderedFault};
use crate::phoenix::codec::Message;

/// The id of one connected socket, unique for the server's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub(super) u64);

impl SocketId {
    /// The numeric id (1 for the first socket).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

/// How a channel incarnation ended on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelEnd {
    /// The client left (`phx_leave` answered, then `phx_close`).
    Left,
    /// The handler stopped (`phx_close`).
    Stopped,
    /// The handler crashed (`phx_error`).
    Crashed,
    /// A new join of the same topic on the same socket replaced it (`phx_close`).
    Duplicate,
    /// Its socket disconnected.
    SocketClosed,
    /// Its topic session saw no traffic for the session idle timeout (`phx_close`).
    SessionIdle,
}

/// Why a topic session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionEnd {
    /// Its last member left and the grace period passed.
    Empty,
    /// No inbound traffic for the session idle timeout.
    Idle,
}

/// Something the server saw or did, in the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerEvent {
    /// Time since the server started.
    pub at: Duration,
    /// The socket concerned, if any.
    pub socket: Option<SocketId>,
    /// What happened.
    pub kind: ServerEventKind,
}

/// The kinds of [`ServerEvent`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServerEventKind {
    /// A WebSocket connection was accepted.
    Connected,
    /// A connection ended.
    Disconnected,
    /// A connection attempt was refused with an HTTP status (bad path, missing `vsn`,
    /// `reject=1`).
    Refused {
        /// The HTTP status sent.
        status: u16,
        /// Why.
        reason: String,
    },
    /// A decoded inbound message (every one, heartbeats included).
    Inbound(Message),
    /// An inbound frame that could not be decoded; the socket was closed with 1011.
    Malformed {
        /// What was wrong.
        error: MalformedFrame,
    },
    /// A channel incarnation joined.
    Joined {
        /// The topic.
        topic: String,
        /// Its join_ref.
        join_ref: String,
    },
    /// A channel incarnation ended.
    ChannelEnded {
        /// The topic.
        topic: String,
        /// Its join_ref.
        join_ref: String,
        /// How.
        end: ChannelEnd,
    },
    /// A message was dropped unanswered: a push or leave whose join_ref is not the one the
    /// topic's channel was joined with (pushes only under [`StalePushPolicy::Drop`]), or a
    /// push to a channel whose leave is pending.
    ///
    /// [`StalePushPolicy::Drop`]: super::StalePushPolicy::Drop
    DroppedStale {
        /// The topic.
        topic: String,
        /// The stale join_ref.
        join_ref: Option<String>,
        /// The event.
        event: String,
    },
    /// A push whose join_ref is not the channel's was handled by the topic's current channel
    /// and answered with its join_ref ([`StalePushPolicy::HandToCurrent`]).
    ///
    /// [`StalePushPolicy::HandToCurrent`]: super::StalePushPolicy::HandToCurrent
    StaleHandedToCurrent {
        /// The topic.
        topic: String,
        /// The join_ref the push carried.
        join_ref: Option<String>,
        /// The join_ref of the channel that handled it.
        current_join_ref: String,
        /// The event.
        event: String,
    },
    /// The client left more than the outbound bound unread; the socket was closed with 1008
    /// and the frames queued for it were dropped.
    OutboundOverflow {
        /// Bytes queued for the client when the next frame did not fit (never more than
        /// `limit`).
        queued_bytes: usize,
        /// Size of the frame that did not fit, its 64 bytes of bookkeeping included.
        frame_bytes: usize,
        /// The bound ([`DevServerConfig::with_max_outbound_bytes`]).
        ///
        /// [`DevServerConfig::with_max_outbound_bytes`]:
        ///     super::DevServerConfig::with_max_outbound_bytes
        limit: usize,
    },
    /// An armed [`OrderedFault`] spoiled a live push of an ordered topic.
    OrderedFault {
        /// The topic.
        topic: String,
        /// The fault.
        fault: OrderedFault,
        /// The sequence number of the event, or the revision of the patch, it spoiled.
        position: u64,
    },
    /// A topic session started.
    SessionStarted {
        /// The topic.
        topic: String,
    },
    /// A topic session ended.
    SessionEnded {
        /// The topic.
        topic: String,
        /// Why.
        reason: SessionEnd,
    },
}
