//! Typed errors of the client. Each message says what to do about it.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{ConfigError, Error as EngineError, FailReason};
use crate::phoenix::client::config::OverflowPolicy;
use crate::phoenix::codec::{EncodeError, Payload, UrlError};

/// Why [`Client::connect`](super::Client::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint or the socket params do not make a socket URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The configuration is not usable.
    #[error("invalid client configuration: {0}")]
    Config(#[from] ClientConfigError),
    /// The WebSocket connection or handshake failed.
    #[error(
        "could not connect to {endpoint}: {source}; check that the server is up and that the \
         endpoint and socket params are right"
    )]
    Connect {
        /// The endpoint, without its query (which may carry a token).
        endpoint: String,
        /// What the WebSocket layer reported.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The connection did not complete in time.
    #[error(
        "no connection to {endpoint} within {after:?}: check the endpoint, or raise \
         ClientConfig::with_connect_timeout"
    )]
    Timeout {
        /// The endpoint, without its query.
        endpoint: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The client's task ended before the first connection completed.
    #[error("the client's task ended before connecting (the runtime is shutting down?); retry")]
    TaskEnded,
}

/// Why a [`ClientConfig`](super::ClientConfig) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The engine configuration is not valid.
    #[error(transparent)]
    Engine(#[from] ConfigError),
    /// The heartbeat interval is zero.
    #[error(
        "heartbeat_interval is zero: use a positive interval well below the server's idle \
         timeout (60 s by default), e.g. 30 s"
    )]
    ZeroHeartbeat,
    /// The reconnect ladder is empty.
    #[error("reconnect_backoff is empty: give at least one delay, e.g. [1 s]")]
    EmptyReconnectBackoff,
    /// The per-subscription queue holds nothing.
    #[error("subscriber_capacity is zero: each subscription needs room for at least one message")]
    ZeroSubscriberCapacity,
    /// Reconnect jitter over 100 %.
    #[error("reconnect jitter is {0} permille: use 0 to 1000 (thousandths of the delay)")]
    Jitter(u16),
}

/// Why a subscribe or a room switch was refused, or why a subscription is not
/// served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The registry refused the request (bad topic, a limit, or a params
    /// conflict with another holder of the topic).
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// The join params are not a JSON object.
    #[error("join params must be a JSON object, found {found}; wrap the value in an object")]
    ParamsNotObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The topic gave up after its retries.
    #[error("topic {topic:?} failed ({}); subscribe again or reconnect to retry", describe(.reason))]
    Failed {
        /// The topic.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
    },
    /// The topic is no longer managed: `close_all` or `disconnect` was called,
    /// or the client's task ended.
    #[error(
        "the topic is no longer managed (close_all or disconnect was called, or the client \
         shut down): subscribe again, or connect a new Client"
    )]
    Closed,
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
    #[error("the server replied with an error: {response:?}")]
    Rejected {
        /// The server's response.
        response: Payload,
    },
    /// The topic gave up after its retries; the push was not sent.
    #[error(
        "topic {topic:?} failed ({}) so the push was not sent; subscribe again or reconnect to \
         retry",
        describe(.reason)
    )]
    TopicFailed {
        /// The topic.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
    },
    /// The push waited in a full buffer and the overflow policy dropped it.
    #[error(
        "the push buffer of topic {topic:?} was full ({capacity} pushes waiting for the channel \
         to be active) and the {policy:?} policy dropped this push; wait until the subscription \
         is active, or raise ClientConfig::with_push_buffer"
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
    /// disconnect) before its reply.
    #[error(
        "the channel this push was sent on ended (crash, close or disconnect) before a reply; \
         it may or may not have been handled: retry if the event is idempotent"
    )]
    ChannelLost,
    /// A room push, but the room shows no topic yet.
    #[error(
        "the room shows no topic yet: wait for its first switch to complete (Room::wait_shows)"
    )]
    NothingShown,
    /// The payload cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The topic is no longer managed, or the client shut down.
    #[error(
        "the topic is no longer managed (close_all or disconnect was called, or the client shut \
         down): subscribe again, or connect a new Client"
    )]
    Closed,
}

/// A short human description of a failure, for error messages.
pub(crate) fn describe(reason: &FailReason) -> String {
    match reason {
        FailReason::JoinRejected => "the server rejected the join".to_owned(),
        FailReason::JoinTimeout => "no join reply in time".to_owned(),
        FailReason::SettleFailed => "settling failed".to_owned(),
        FailReason::SettleTimeout => "settling did not finish in time".to_owned(),
        FailReason::ClosedByServer => "the server closed the channel".to_owned(),
        FailReason::Crashed => "the channel crashed on the server".to_owned(),
    }
}
