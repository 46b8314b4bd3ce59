//! Typed errors of the session. Each message says what to do about it.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::{EncodeError, Payload};
use crate::engine::{Error as EngineError, FailReason};
use crate::session::config::OverflowPolicy;
use crate::session::events::CloseReason;
use crate::session::message::ParamsError;

/// Why a subscribe or a room switch was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The registry refused the request (bad topic, a limit, or a params
    /// conflict with another holder of the topic).
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// The join params are not usable.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The subscription id is already in use.
    #[error("subscription id {id} is already in use: give every subscription its own id")]
    IdInUse {
        /// The id.
        id: u64,
    },
    /// The room does not exist (never opened, or closed).
    #[error("room {id} is not open: open it first, or open a new one after close_all")]
    UnknownRoom {
        /// The room id.
        id: u64,
    },
    /// The topic gave up after its retries.
    #[error("topic {topic:?} failed ({}); subscribe again or reconnect to retry", describe(*.reason, .detail.as_deref()))]
    Failed {
        /// The topic.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
    },
    /// The subscription or room is closed.
    #[error("{}", closed_message(.reason))]
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// The ordered stream's numbers are not usable.
    #[error(transparent)]
    Stream(#[from] crate::session::stream::StreamConfigError),
    /// The topic is already held with another ordered stream (or none).
    #[error(
        "topic {topic:?} is already held with different stream options: every holder of a \
         topic reads the same stream; ask for the same StreamOptions, or for none"
    )]
    StreamMismatch {
        /// The topic.
        topic: Arc<str>,
    },
}

/// Why a push got no `ok` reply.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// No reply before the push's deadline (counted from when it was made,
    /// time spent waiting in the buffer included).
    #[error(
        "no reply within {after:?}: the server may be slow or may have dropped the push; retry \
         if the event is idempotent, or raise the push timeout"
    )]
    Timeout {
        /// The push's timeout.
        after: Duration,
    },
    /// The server replied with `{"status": "error"}`.
    #[error("the server rejected the push: {}", describe_response(.response))]
    Rejected {
        /// The server's response.
        response: Payload,
    },
    /// The topic gave up after its retries; the push was not sent.
    #[error(
        "topic {topic:?} failed ({}) so the push was not sent; subscribe again or reconnect to \
         retry",
        describe(*.reason, .detail.as_deref())
    )]
    TopicFailed {
        /// The topic.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
        /// The server's or the resource's words, when there were any.
        detail: Option<Arc<str>>,
    },
    /// The push waited in a full buffer and the overflow policy dropped it.
    #[error(
        "the push buffer of topic {topic:?} was full ({capacity} pushes waiting for the channel \
         to be active) and the {policy:?} policy dropped this push; wait until the subscription \
         is active, or raise the push buffer"
    )]
    BufferOverflow {
        /// The topic.
        topic: Arc<str>,
        /// The buffer's capacity.
        capacity: usize,
        /// The policy that dropped it.
        policy: OverflowPolicy,
    },
    /// The channel incarnation the push was sent on ended (crash, close,
    /// socket drop) before its reply.
    #[error(
        "the channel this push was sent on ended (crash, close or socket drop) before a reply; \
         it may or may not have been handled: retry if the event is idempotent"
    )]
    ChannelLost,
    /// The push belongs to a versioned stream that resynced: the state it
    /// was computed from is gone.
    #[error(
        "topic {topic:?} resynced (its versions had a gap) before this push was answered: \
         recompute it from the new state and push again"
    )]
    Resynced {
        /// The topic.
        topic: Arc<str>,
    },
    /// A room push, but the room shows no topic yet.
    #[error(
        "the room shows no topic yet: wait for its first switch to complete (Room::wait_shows)"
    )]
    NothingShown,
    /// The payload cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The push's frame is larger than the frame limit.
    #[error(
        "the push is {size} bytes, over the frame limit of {limit}: the server would drop the \
         socket; send it in parts, or raise the limit on both sides"
    )]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The event is one the protocol reserves.
    #[error(
        "{event:?} is reserved by the Phoenix protocol: subscribe, unsubscribe or close instead \
         of pushing it"
    )]
    ReservedEvent {
        /// The event.
        event: String,
    },
    /// The socket is disconnected for good (a normal close by the server,
    /// `disconnect`, or the reconnect policy gave up).
    #[error("{}", closed_message(.reason))]
    Disconnected {
        /// Why.
        reason: CloseReason,
    },
    /// The subscription, room or topic is no longer managed.
    #[error("{}", closed_message(.reason))]
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// A short human description of a failure, for error messages.
pub fn describe(reason: FailReason, detail: Option<&str>) -> String {
    let what = match reason {
        FailReason::JoinRejected => "the server rejected the join",
        FailReason::JoinTimeout => "no join reply in time",
        FailReason::SettleFailed => "settling failed",
        FailReason::SettleTimeout => "settling did not finish in time",
        FailReason::ClosedByServer => "the server closed the channel",
        FailReason::Crashed => "the channel crashed on the server",
        FailReason::Resync => "its ordered stream kept breaking and rejoining did not repair it",
    };
    match detail {
        Some(detail) => format!("{what}: {detail}"),
        None => what.to_owned(),
    }
}

/// The server's response as a reader wants it: its `reason` text when it
/// has one, else the JSON text, else the byte count.
pub fn describe_response(response: &Payload) -> String {
    match response {
        Payload::Json(value) => match value.get("reason").and_then(|r| r.as_str()) {
            Some(reason) => reason.to_owned(),
            None => value.to_string(),
        },
        Payload::Binary(bytes) => format!("{} bytes", bytes.len()),
    }
}

pub(crate) fn closed_message(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Unsubscribed => "the subscription was dropped: subscribe again".to_owned(),
        CloseReason::RoomClosed => "the room was closed: open a new one".to_owned(),
        CloseReason::CloseAll => "close_all ended every topic and room: subscribe again".to_owned(),
        CloseReason::Disconnected => "the client was disconnected: connect a new client".to_owned(),
        CloseReason::ServerClosed { code, reason } => format!(
            "the server closed the socket normally (code {code}{}): call reconnect and \
             subscribe again",
            if reason.is_empty() {
                String::new()
            } else {
                format!(", {reason:?}")
            }
        ),
        CloseReason::GaveUp { attempts, reason } => format!(
            "the socket gave up reconnecting after {attempts} attempts ({reason}): call \
             reconnect, or check that the server is up and the endpoint is right"
        ),
        CloseReason::TopicFailed => "the topic failed for good: subscribe again".to_owned(),
        CloseReason::Stopped => {
            "the client's task ended (the runtime shut down or a panic): connect a new client"
                .to_owned()
        }
    }
}
