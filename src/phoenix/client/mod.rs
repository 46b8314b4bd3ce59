//! A tokio client for Phoenix channels: the pure [`Session`](crate::session::Session)
//! driven by one task per socket that does IO only.
//!
//! The task waits on four things at once — frames from the server, commands
//! from the handles ([`Client`], [`Subscription`], [`Room`], [`Pusher`]),
//! the connection attempt, and the session's next deadline — feeds each to
//! the session, and performs what the session asks for: send a frame, open
//! or close the socket, call the resources, and hand events, messages and
//! push replies to the handles. Writes go through a writer task, so a stuck
//! write never stops reading or serving commands.
//!
//! - **Refcount.** Each [`Subscription`] is its own subscriber of its topic;
//!   dropping it unsubscribes. The channel is left only when the last one is
//!   dropped, after the drain grace; a subscribe within the grace revives it
//!   without a rejoin.
//! - **Nothing silent.** A subscription's stream yields every
//!   [`SubscriptionEvent`]: joined (with the server's response), lost,
//!   rejoining, failed, closed, lagged, and its messages. It ends after
//!   `Failed` or `Closed`. Rooms likewise ([`RoomEvent`]).
//! - **Pushes** wait in a bounded buffer while their channel is not active
//!   and are stamped with the active join_ref when sent; each has a
//!   deadline. A [`Pusher`] pushes (or casts) while another task reads.
//! - **Rooms** follow one topic at a time and switch versions without
//!   flicker: a room shows its topic until the new one is active.
//! - **Socket.** Heartbeats detect a dead link; the client reconnects on a
//!   ladder that only starts over once a connection proved healthy, and may
//!   give up; every topic rejoins with fresh join_refs and re-read params.
//!
//! [`Client::connect`] connects eagerly: it returns once the first WebSocket
//! connection is up, or the error that prevented it. Later disconnections
//! are retried in the background.
//!
//! ```no_run
//! use channel_registry::phoenix::{Client, ClientConfig};
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
//! while let Some(message) = lobby.recv().await {
//!     println!("{}: {:?}", message.event(), message.payload());
//! }
//! println!("the subscription ended: {:?}", lobby.state());
//! # Ok(()) }
//! ```

mod config;
mod driver;
mod error;
mod inbox;
mod recording;
mod resources;
mod room;
mod socket;
mod subscription;
mod tenant;
mod tls;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

pub use config::ClientConfig;
pub use error::{ClientConfigError, ConnectError};
pub use resources::{
    NoResources, ResourceManager, SettleContext, SettleError, SettleFuture, SettleOnEvent,
};
pub use room::Room;
pub use subscription::{Pusher, Subscription};
pub use tenant::{TenantClient, TenantError, TenantRoom};

use crate::codec::{Payload, Reply};
use crate::engine::{RoomId, SubscriberId};
use crate::session::presence::PresenceList;
use crate::session::{
    redact_query, CloseReason, ConnectionState, PushError, PushId, PushOptions, PushTarget,
    RoomState, Session, SessionStats, SubscribeError, SubscribeOptions, SubscriptionState,
    TopicListing,
};
use driver::{Command, Driver};
use inbox::{inbox, Bounds};

pub(crate) struct ClientInner {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    push_timeout: Duration,
    bounds: Bounds,
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

    /// Why the client is gone, when its task ended.
    pub(crate) fn ended(&self) -> CloseReason {
        self.connection
            .borrow()
            .closed_reason()
            .unwrap_or(CloseReason::Stopped)
    }

    /// Hands a push to the task and waits for its outcome.
    pub(crate) async fn push(
        &self,
        target: PushTarget,
        event: &str,
        payload: Payload,
        options: PushOptions,
    ) -> Result<Reply, PushError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Command::Push {
            id: PushId(self.next_id()),
            target,
            event: event.to_owned(),
            payload,
            options,
            reply,
        });
        let gone = || PushError::Disconnected {
            reason: self.ended(),
        };
        if !sent {
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Hands a cast to the task; returns once the session took or refused it.
    pub(crate) async fn cast(
        &self,
        target: PushTarget,
        event: &str,
        payload: Payload,
    ) -> Result<(), PushError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Command::Cast {
            target,
            event: event.to_owned(),
            payload,
            reply,
        });
        let gone = || PushError::Disconnected {
            reason: self.ended(),
        };
        if !sent {
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
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
            .field("connection", &self.connection_state())
            .finish()
    }
}

impl Client {
    /// Connects to `endpoint` (e.g. `ws://localhost:4000/socket`; a
    /// `/websocket` suffix and `?vsn=2.0.0` are accepted) and starts the
    /// client's task. Returns once the first connection is up.
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
        let session_config = config.for_endpoint(endpoint);
        session_config.validate().map_err(|e| match e {
            crate::session::SessionConfigError::Url(url) => ConnectError::Url(url),
            other => ConnectError::Config(other.into()),
        })?;
        let shown = redact_query(endpoint).to_owned();
        let start = tokio::time::Instant::now().into_std();
        let session =
            Session::new(session_config, start).map_err(|e| ConnectError::Config(e.into()))?;
        let session = recording::RecordedSession::new(
            session,
            start,
            config.recording.as_deref(),
            config.recording_secrets,
        )?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::Idle);
        let inner = Arc::new(ClientInner {
            commands: commands.clone(),
            next_id: AtomicU64::new(1),
            push_timeout: config.session.push_timeout,
            bounds: Bounds {
                capacity: config.subscriber_capacity,
                budget: config.subscriber_budget,
            },
            connection: state_rx,
            endpoint: shown.clone(),
        });
        let pusher = Pusher::new(Arc::downgrade(&inner));
        let driver = Driver::new(
            session,
            Arc::new(config),
            receiver,
            commands.downgrade(),
            state_tx,
            first_tx,
            pusher,
        );
        drop(commands);
        let span = tracing::info_span!("phoenix_client", endpoint = %shown);
        tokio::spawn(driver.run().instrument(span));
        match first_rx.await {
            Ok(Ok(())) => Ok(Client { inner }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ConnectError::TaskEnded(
                "the client's task ended before connecting (its runtime shut down)",
            )),
        }
    }

    /// Subscribes to `topic` with `options` (join params as a
    /// [`serde_json::Value`] object, [`JoinParams`](crate::session::JoinParams),
    /// or [`SubscribeOptions`] with an event filter or presence). The returned
    /// [`Subscription`] is one more holder of the topic: the channel is
    /// joined if it is new, kept if it is joined, revived if it is draining.
    /// Drop it to unsubscribe.
    ///
    /// Returns once the registry accepted the subscriber, not once the
    /// channel is joined: use [`Subscription::wait_active`] for that.
    pub async fn subscribe(
        &self,
        topic: &str,
        options: impl Into<SubscribeOptions>,
    ) -> Result<Subscription, SubscribeError> {
        let id = SubscriberId(self.inner.next_id());
        let (sink, events) = inbox(self.inner.bounds);
        let (state_tx, state_rx) = watch::channel(SubscriptionState::Managed(
            crate::engine::TopicStatus::Offline,
        ));
        let options: SubscribeOptions = options.into();
        let (presence_tx, presence_rx) = options
            .presence
            .then(|| watch::channel(PresenceList::default()))
            .unzip();
        let (reply, answer) = oneshot::channel();
        let topic: Arc<str> = Arc::from(topic);
        let sent = self.inner.send(Command::Subscribe {
            id,
            topic: Arc::clone(&topic),
            options,
            sink,
            state: state_tx,
            presence: presence_tx,
            reply,
        });
        let gone = || SubscribeError::Closed {
            reason: self.inner.ended(),
        };
        if !sent {
            return Err(gone());
        }
        answer.await.map_err(|_| gone())??;
        Ok(
            Subscription::new(Arc::clone(&self.inner), topic, id, events, state_rx)
                .with_presence(presence_rx),
        )
    }

    /// A new room named `name` (the name is for logs). It shows nothing until
    /// its first [`Room::switch`] completes.
    pub fn room(&self, name: &str) -> Room {
        let id = RoomId(self.inner.next_id());
        let (sink, events) = inbox(self.inner.bounds);
        let (state_tx, state_rx) = watch::channel(RoomState::default());
        if !self.inner.send(Command::OpenRoom {
            id,
            sink,
            state: state_tx,
        }) {
            // The task is gone: the room is closed from the start.
            let (tx, rx) = watch::channel(RoomState {
                closed: Some(self.inner.ended()),
                ..RoomState::default()
            });
            drop(tx);
            return Room::new(Arc::clone(&self.inner), id, Arc::from(name), events, rx);
        }
        Room::new(
            Arc::clone(&self.inner),
            id,
            Arc::from(name),
            events,
            state_rx,
        )
    }

    /// A push handle for a topic this client holds (through a subscription
    /// or a room): pushes and casts from any task.
    pub fn pusher(&self, topic: &str) -> Pusher {
        Pusher::new(Arc::downgrade(&self.inner)).for_topic(Arc::from(topic))
    }

    /// The session's counts and the socket's counters; `None` once the
    /// client has shut down.
    pub async fn stats(&self) -> Option<SessionStats> {
        let (reply, answer) = oneshot::channel();
        if !self.inner.send(Command::Stats { reply }) {
            return None;
        }
        answer.await.ok()
    }

    /// Every topic the client holds: status, subscriptions, rooms and
    /// current join_ref, in name order. Empty once the client shut down.
    pub async fn topics(&self) -> Vec<TopicListing> {
        let (reply, answer) = oneshot::channel();
        if !self.inner.send(Command::Topics { reply }) {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Ends every topic and room (logout): joined channels are left, every
    /// resource is destroyed, every subscription and room stream ends with
    /// [`CloseReason::CloseAll`]. The socket stays connected.
    pub async fn close_all(&self) {
        let (reply, answer) = oneshot::channel();
        if self.inner.send(Command::CloseAll { reply }) {
            let _ = answer.await;
        }
    }

    /// Shuts the client down: every topic is left and closed, the socket is
    /// closed with code 1000 and the client's task ends. Every handle made
    /// from this client stops working (streams end, pushes fail with
    /// [`PushError::Disconnected`]).
    pub async fn disconnect(&self) {
        let (reply, answer) = oneshot::channel();
        if self.inner.send(Command::Disconnect { reply }) {
            let _ = answer.await;
        }
    }

    /// Connects now if the socket is down (after a close with code 1000, a
    /// give-up, or to skip the rest of a reconnect delay).
    pub fn reconnect(&self) {
        self.inner.send(Command::Reconnect);
    }

    /// The connection state now. Once the client's task has ended (for
    /// whatever reason: `disconnect`, its runtime shut down), this says
    /// [`ConnectionState::Disconnected`].
    pub fn connection_state(&self) -> ConnectionState {
        let state = self.inner.connection.borrow().clone();
        if self.inner.commands.is_closed() && state.closed_reason().is_none() {
            return ConnectionState::Disconnected(CloseReason::Stopped);
        }
        state
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
