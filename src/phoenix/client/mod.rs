//! A tokio client for Phoenix channels, driven by the [lifecycle engine](crate::engine).
//!
//! One task per socket owns the WebSocket and the [`Engine`](crate::engine::Engine).
//! It waits on three things at once — frames from the server, commands from
//! the handles ([`Client`], [`Subscription`], [`Room`]) and the next timer
//! (the engine's, heartbeats, reconnects, push deadlines) — turns each into an
//! engine input, and performs what the engine asks for (send a join or a
//! leave, create or destroy resources, start or abort settling). Every
//! lifecycle decision — refcounts, phases, retries, version switches, which
//! join_ref a message or a push belongs to — is the engine's; the task keeps
//! only transport state (the socket, heartbeats, reconnect backoff, pending
//! replies).
//!
//! - **Refcount.** Each [`Subscription`] is its own subscriber of its topic;
//!   dropping it unsubscribes. The channel is left only when the last one is
//!   dropped, after the drain grace; a subscribe within the grace revives it
//!   without a rejoin.
//! - **Incarnations.** Messages reach a subscription only when they belong to
//!   the topic's current active incarnation (broadcasts included); late
//!   replies, `phx_close` or `phx_error` of an older join are reported stale
//!   and change nothing.
//! - **Pushes** wait in a bounded buffer while their channel is not active and
//!   are stamped with the active join_ref when sent; each has a deadline.
//! - **Rooms** follow one topic at a time and switch versions without flicker:
//!   a room shows its topic until the new one is active.
//! - **Socket.** Heartbeats detect a dead link; the client reconnects with a
//!   backoff ladder (unless the server closed with code 1000) and the engine
//!   rejoins every topic with fresh join_refs, re-reading join params.
//!
//! [`Client::connect`] connects eagerly: it returns once the first WebSocket
//! connection is up, or the error that prevented it. Later disconnections
//! are retried in the background.
//!
//! ```no_run
//! use channel_registry::phoenix::{Client, ClientConfig};
//! use futures_util::StreamExt;
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::default().with_param("token", "s3cr3t");
//! let client = Client::connect("ws://localhost:4000/socket", config).await?;
//!
//! let mut lobby = client.subscribe("room:lobby", json!({"user": "alice"})).await?;
//! lobby.wait_active().await?;
//! let reply = lobby.push("echo", json!({"hello": "world"})).await?;
//! println!("server said {:?}", reply.response);
//!
//! while let Some(message) = lobby.next().await {
//!     println!("{}: {:?}", message.event, message.payload);
//! }
//! # Ok(()) }
//! ```

mod config;
mod driver;
mod error;
mod inbox;
mod push;
mod resources;
mod room;
mod subscription;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

pub use config::{ClientConfig, OverflowPolicy};
pub use error::{ClientConfigError, ConnectError, PushError, SubscribeError};
pub use resources::{NoResources, ResourceManager, SettleError, SettleFuture, SettleOnEvent};
pub use room::{Room, RoomEvent, RoomState};
pub use subscription::Subscription;

use crate::engine::{
    FailReason, JoinOptions, JoinRef, Phase, RoomId, Stats, SubscriberId, TopicStatus,
};
use crate::phoenix::codec::{websocket_url, Payload};
use driver::{Command, Driver};
use inbox::inbox;

/// A message from the server on a topic's current incarnation: a channel
/// push (`join_ref` set) or a broadcast (`join_ref` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMessage {
    /// The topic.
    pub topic: Arc<str>,
    /// The event name.
    pub event: String,
    /// The payload: JSON from text frames, bytes from binary frames.
    pub payload: Payload,
    /// The incarnation it was stamped with; `None` for broadcasts.
    pub join_ref: Option<JoinRef>,
}

/// Where a subscription's topic stands, as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicState {
    /// The registry manages the topic; this is its status.
    Managed(TopicStatus),
    /// The topic is no longer managed (`close_all`, `disconnect`, or the
    /// client shut down): nothing more will come.
    Closed,
}

impl TopicState {
    /// Whether the topic is active: subscribers are served, pushes are sent.
    pub fn is_active(&self) -> bool {
        self.phase() == Some(Phase::Active)
    }

    /// The phase of the current incarnation, if one exists.
    pub fn phase(&self) -> Option<Phase> {
        match self {
            TopicState::Managed(status) => status.phase(),
            TopicState::Closed => None,
        }
    }

    /// The current incarnation, if one exists.
    pub fn join_ref(&self) -> Option<JoinRef> {
        match self {
            TopicState::Managed(TopicStatus::Live { join_ref, .. }) => Some(*join_ref),
            _ => None,
        }
    }

    /// The last error, when the topic was reported failed.
    pub fn failure(&self) -> Option<&FailReason> {
        match self {
            TopicState::Managed(TopicStatus::Failed(reason)) => Some(reason),
            _ => None,
        }
    }

    /// Whether the topic is no longer managed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TopicState::Closed)
    }
}

/// Join params of a topic: none, a JSON object, or a provider called on
/// every (re)join, as phoenix.js re-reads its params closure (for a token
/// that expires, or a "last seen" cursor).
///
/// All subscribers of one topic share one channel and so one set of params:
/// a second subscriber must pass equal JSON, or a clone of the same
/// provider, or the subscribe is refused with a params conflict.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use channel_registry::phoenix::JoinParams;
/// use serde_json::json;
///
/// let fixed = JoinParams::json(json!({"user": "alice"}));
/// let cursor = Arc::new(AtomicU64::new(0));
/// let fresh = JoinParams::provider(move || json!({"after": cursor.load(Ordering::Relaxed)}));
/// let settled = JoinParams::none().with_settling(true);
/// # let _ = (fixed, fresh, settled);
/// ```
#[derive(Clone, Default)]
pub struct JoinParams {
    source: ParamsSource,
    settling: Option<bool>,
}

type ParamsFn = Arc<dyn Fn() -> Value + Send + Sync>;

#[derive(Clone, Default)]
enum ParamsSource {
    #[default]
    Empty,
    Json(Value),
    Provider(ParamsFn),
}

impl fmt::Debug for JoinParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Params may carry tokens: never print their values.
        let kind = match self.source {
            ParamsSource::Empty => "none",
            ParamsSource::Json(_) => "json",
            ParamsSource::Provider(_) => "provider",
        };
        f.debug_struct("JoinParams")
            .field("kind", &kind)
            .field("settling", &self.settling)
            .finish()
    }
}

impl JoinParams {
    /// No params (`{}` on the wire).
    pub fn none() -> Self {
        JoinParams::default()
    }

    /// Fixed params; must be a JSON object.
    pub fn json(params: Value) -> Self {
        JoinParams {
            source: ParamsSource::Json(params),
            settling: None,
        }
    }

    /// Params computed on every join and rejoin. It must return a JSON object
    /// (checked once at subscribe; later a non-object is sent as `{}` and
    /// logged).
    pub fn provider<F>(provider: F) -> Self
    where
        F: Fn() -> Value + Send + Sync + 'static,
    {
        JoinParams {
            source: ParamsSource::Provider(Arc::new(provider)),
            settling: None,
        }
    }

    /// Whether the topic settles (its resources report ready) before it is
    /// active; default: the engine's [`Config::settling`](crate::engine::Config::settling).
    #[must_use]
    pub fn with_settling(mut self, settling: bool) -> Self {
        self.settling = Some(settling);
        self
    }

    /// The engine's view: params identity (JSON text, or the provider's
    /// identity) and settling.
    pub(crate) fn options(&self) -> Result<JoinOptions, SubscribeError> {
        let params = match &self.source {
            ParamsSource::Empty => None,
            ParamsSource::Json(value) => match value {
                Value::Object(map) if map.is_empty() => None,
                Value::Object(_) => Some(Arc::from(value.to_string())),
                other => {
                    return Err(SubscribeError::ParamsNotObject {
                        found: json_type(other),
                    })
                }
            },
            ParamsSource::Provider(provider) => {
                let sample = provider();
                if !sample.is_object() {
                    return Err(SubscribeError::ParamsNotObject {
                        found: json_type(&sample),
                    });
                }
                let id = Arc::as_ptr(provider).cast::<()>() as usize;
                Some(Arc::from(format!("{{\"$params_provider\":{id}}}")))
            }
        };
        Ok(JoinOptions {
            params,
            settling: self.settling,
        })
    }

    /// The payload of one join.
    pub(crate) fn resolve(&self) -> Value {
        match &self.source {
            ParamsSource::Empty => Value::Object(serde_json::Map::new()),
            ParamsSource::Json(value) => value.clone(),
            ParamsSource::Provider(provider) => {
                let value = provider();
                if value.is_object() {
                    value
                } else {
                    tracing::warn!(
                        found = json_type(&value),
                        "join params provider returned a non-object; joining with {{}}"
                    );
                    Value::Object(serde_json::Map::new())
                }
            }
        }
    }
}

impl From<Value> for JoinParams {
    fn from(params: Value) -> Self {
        JoinParams::json(params)
    }
}

impl From<Option<Value>> for JoinParams {
    fn from(params: Option<Value>) -> Self {
        params.map_or_else(JoinParams::none, JoinParams::json)
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The socket's connection, as the client's task sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// A connection attempt is under way.
    Connecting,
    /// Connected; channels are (re)joined.
    Connected,
    /// The connection was lost or an attempt failed; the next attempt starts
    /// after `delay`.
    Reconnecting {
        /// Failed attempts in a row so far.
        attempt: u32,
        /// Delay before the next attempt, jitter included.
        delay: Duration,
    },
    /// The server closed the socket with code 1000 (normal): no reconnect
    /// until [`Client::reconnect`].
    Disconnected {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The client shut down.
    Closed,
}

/// Counters of the socket and its traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Successful connections (the first one included).
    pub connects: u64,
    /// Successful connections after the first one.
    pub reconnects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Data frames received.
    pub frames_in: u64,
    /// Data frames sent.
    pub frames_out: u64,
    /// Bytes of data frames received.
    pub bytes_in: u64,
    /// Bytes of data frames sent.
    pub bytes_out: u64,
    /// Frames from the server that could not be decoded (ignored).
    pub decode_errors: u64,
    /// Messages that could not be encoded (not sent).
    pub encode_errors: u64,
    /// Messages not delivered because they belong to no current active
    /// incarnation (stale join_ref, topic not active, unknown topic).
    pub dropped_messages: u64,
    /// Messages dropped because a subscription or room had too many unread.
    pub missed_messages: u64,
    /// Replies that answered nothing pending (leave replies, late replies).
    pub unmatched_replies: u64,
    /// Protocol inputs the engine ignored as stale or not applicable.
    pub ignored_inputs: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Heartbeats left unanswered until the next one was due.
    pub heartbeat_timeouts: u64,
    /// Round trip of the last answered heartbeat.
    pub last_heartbeat_rtt: Option<Duration>,
}

/// A snapshot of the client: the engine's counts and the socket's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Topics by phase, holders, rooms, timers.
    pub engine: Stats,
    /// Socket and traffic counters.
    pub socket: SocketStats,
    /// Pushes waiting for their channel to be active.
    pub pushes_buffered: usize,
    /// Pushes sent and waiting for their reply.
    pub pushes_in_flight: usize,
}

pub(crate) struct ClientInner {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    push_timeout: Duration,
    capacity: usize,
    connection: watch::Receiver<ConnectionState>,
    endpoint: String,
}

impl ClientInner {
    pub(crate) fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A connection to a Phoenix socket, shared by any number of subscriptions
/// and rooms. Cheap to clone. The socket stays open while the client or any
/// subscription or room made from it exists; [`Client::disconnect`] ends it
/// at once.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("connection", &*self.inner.connection.borrow())
            .finish()
    }
}

impl Client {
    /// Connects to the socket at `endpoint` (e.g. `ws://localhost:4000/socket`;
    /// `/websocket` and `vsn=2.0.0` are added, with the config's params) and
    /// starts the client's task. Returns once the first connection is up.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use channel_registry::phoenix::{Client, ClientConfig};
    /// let client = Client::connect("ws://localhost:4000/socket", ClientConfig::default()).await?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub async fn connect(endpoint: &str, config: ClientConfig) -> Result<Client, ConnectError> {
        config.validate()?;
        websocket_url(endpoint, config.params.iter().map(|(k, v)| (k, v)))?;
        // The query may carry a token: logs and errors show the rest only.
        let shown = endpoint.split('?').next().unwrap_or_default().to_owned();
        let (commands, receiver) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let push_timeout = config.push_timeout;
        let capacity = config.subscriber_capacity;
        let driver = Driver::new(
            endpoint.to_owned(),
            shown.clone(),
            Arc::new(config),
            receiver,
            commands.downgrade(),
            state_tx,
            first_tx,
        )?;
        let span = tracing::info_span!("phoenix_client", endpoint = %shown);
        tokio::spawn(driver.run().instrument(span));
        let inner = Arc::new(ClientInner {
            commands,
            next_id: AtomicU64::new(1),
            push_timeout,
            capacity,
            connection: state_rx,
            endpoint: shown,
        });
        match first_rx.await {
            Ok(Ok(())) => Ok(Client { inner }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ConnectError::TaskEnded),
        }
    }

    /// Subscribes to `topic` with `params` (a [`serde_json::Value`] object,
    /// `None`, or [`JoinParams`]). The returned [`Subscription`] is one more
    /// holder of the topic: the channel is joined if it is new, kept if it is
    /// joined, revived if it is draining. Drop it to unsubscribe.
    ///
    /// Returns once the registry accepted the subscriber, not once the
    /// channel is joined: use [`Subscription::wait_active`] for that.
    /// Messages sent before the topic is active are not delivered.
    pub async fn subscribe(
        &self,
        topic: &str,
        params: impl Into<JoinParams>,
    ) -> Result<Subscription, SubscribeError> {
        let params = params.into();
        let options = params.options()?;
        let id = SubscriberId(self.inner.next_id());
        let (sink, messages) = inbox(self.inner.capacity);
        let (reply, answer) = oneshot::channel();
        let topic: Arc<str> = Arc::from(topic);
        let sent = self.inner.send(Command::Subscribe {
            topic: Arc::clone(&topic),
            id,
            params,
            options,
            sink,
            reply,
        });
        if !sent {
            return Err(SubscribeError::Closed);
        }
        let state = answer.await.map_err(|_| SubscribeError::Closed)??;
        Ok(Subscription::new(
            Arc::clone(&self.inner),
            topic,
            id,
            messages,
            state,
        ))
    }

    /// A new room named `name` (the name is for logs). It shows nothing until
    /// its first [`Room::switch`] completes.
    pub fn room(&self, name: &str) -> Room {
        let id = RoomId(self.inner.next_id());
        let (sink, events) = inbox(self.inner.capacity);
        let (state_tx, state_rx) = watch::channel(RoomState::default());
        let name: Arc<str> = Arc::from(name);
        self.inner.send(Command::OpenRoom {
            id,
            name: Arc::clone(&name),
            sink,
            state: state_tx,
        });
        Room::new(Arc::clone(&self.inner), id, name, events, state_rx)
    }

    /// The engine's counts and the socket's counters; `None` once the client
    /// has shut down.
    pub async fn stats(&self) -> Option<ClientStats> {
        let (reply, answer) = oneshot::channel();
        if !self.inner.send(Command::Stats { reply }) {
            return None;
        }
        answer.await.ok()
    }

    /// Ends every topic and room (logout): joined channels are left, every
    /// resource is destroyed, every subscription and room stream ends and
    /// reports [`TopicState::Closed`]. The socket stays connected.
    pub async fn close_all(&self) {
        let (reply, answer) = oneshot::channel();
        if self.inner.send(Command::CloseAll { reply }) {
            let _ = answer.await;
        }
    }

    /// Shuts the client down: every topic is left and closed, the socket is
    /// closed with code 1000 and the client's task ends. Every handle made
    /// from this client stops working (streams end, pushes fail with
    /// [`PushError::Closed`]).
    pub async fn disconnect(&self) {
        let (reply, answer) = oneshot::channel();
        if self.inner.send(Command::Disconnect { reply }) {
            let _ = answer.await;
        }
    }

    /// Connects now if the socket is down (after a close with code 1000, or
    /// to skip the rest of a reconnect delay).
    pub fn reconnect(&self) {
        self.inner.send(Command::Reconnect);
    }

    /// The connection state now.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.connection.borrow().clone()
    }

    /// A receiver of connection state changes.
    pub fn connection(&self) -> watch::Receiver<ConnectionState> {
        self.inner.connection.clone()
    }

    /// The endpoint, without its query.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }
}
