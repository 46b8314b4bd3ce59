//! A local Phoenix-protocol WebSocket server for tests, examples and demos.
//!
//! It speaks the V2 protocol (JSON and binary frames) and behaves like a Phoenix 1.7+ server
//! in the points a client depends on: join routing by topic pattern, duplicate joins (the new
//! join is answered first, then the old incarnation gets `phx_close`), leave replies followed by
//! `phx_close`, stale join_refs dropped without a reply, `unmatched topic` errors, the
//! per-socket channel limit, heartbeats, the idle timeout, crashes (`phx_error`), stops
//! (`phx_close`), presence, and slow joins that block the whole socket.
//!
//! Tests steer it through a cloneable [`DevServerHandle`] — fault knobs (delay or fail joins,
//! crash or stop channels, drop or close sockets, mute heartbeats, send garbage, broadcast) and
//! observation (joined channels per socket, an event log, [`DevServerHandle::wait_until`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
//!
//! let server = DevServer::start(DevServerConfig::default().with_sync_delay(Duration::from_millis(5))).await?;
//! println!("connect to {}", server.url()); // ws://127.0.0.1:PORT/socket
//! // ... connect a client, join "room:1" ...
//! server.wait_until(Duration::from_secs(1), |s| s.is_joined("room:1")).await?;
//! server.crash_channels("room:1");
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The built-in channels are described in [`BuiltinChannel`]; custom ones implement
//! [`ChannelHandler`] and are mounted with [`DevServerConfig::route`].

mod builtin;
mod connection;
mod handler;
mod outbound;
mod policy;
mod registry;
#[cfg(feature = "tls")]
mod tls;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use builtin::BuiltinChannel;
pub use handler::{
    ChannelContext, ChannelHandler, HandleOutcome, HandlerFactory, JoinOutcome, TopicPattern,
};
pub use policy::{MissingVsnPolicy, StalePushPolicy};
pub use registry::{ServerView, SessionInfo, SocketInfo};
pub use wire::{MalformedFrame, WireProtocol};

use builtin::BuiltinTimings;
use registry::{Route, Shared, SocketCommand};

use crate::phoenix::codec::{Frame, Message, Payload, DEFAULT_MAX_FRAME_SIZE, PROTOCOL_VSN};

/// The id of one connected socket, unique for the server's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(u64);

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
        /// Bytes queued for the client when the next frame did not fit.
        queued_bytes: usize,
        /// Size of the frame that did not fit.
        frame_bytes: usize,
        /// The bound ([`DevServerConfig::with_max_outbound_bytes`]).
        limit: usize,
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

/// A route as configured: a custom handler or a built-in behaviour.
#[derive(Clone)]
enum RouteSpec {
    Handler(TopicPattern, HandlerFactory),
    Builtin(TopicPattern, BuiltinChannel),
}

/// Server settings. Defaults mirror Phoenix (100 channels per socket, 60 s idle timeout) and
/// the transcript server (sync push 50 ms after a `room:*` join, 1500 ms `slow:*` joins);
/// tests shorten the timings they exercise.
#[derive(Clone)]
pub struct DevServerConfig {
    port: u16,
    sync_delay: Duration,
    slow_join: Duration,
    max_channels_per_socket: usize,
    idle_timeout: Duration,
    max_clients_per_topic: usize,
    session_grace: Duration,
    session_idle_timeout: Option<Duration>,
    leave_delay: Duration,
    max_frame_size: usize,
    max_outbound_bytes: usize,
    handshake_timeout: Duration,
    event_log_capacity: usize,
    stale_pushes: StalePushPolicy,
    missing_vsn: MissingVsnPolicy,
    builtin_routes: bool,
    routes: Vec<RouteSpec>,
    #[cfg(feature = "tls")]
    tls: Option<tls::TlsIdentity>,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        DevServerConfig {
            port: 0,
            sync_delay: Duration::from_millis(50),
            slow_join: Duration::from_millis(1500),
            max_channels_per_socket: 100,
            idle_timeout: Duration::from_secs(60),
            max_clients_per_topic: 1000,
            session_grace: Duration::from_secs(1),
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            leave_delay: Duration::ZERO,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_outbound_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
            handshake_timeout: Duration::from_secs(10),
            event_log_capacity: 10_000,
            stale_pushes: StalePushPolicy::default(),
            missing_vsn: MissingVsnPolicy::default(),
            builtin_routes: true,
            routes: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl fmt::Debug for DevServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|route| match route {
                RouteSpec::Handler(pattern, _) => format!("{pattern} => custom"),
                RouteSpec::Builtin(pattern, builtin) => format!("{pattern} => {builtin:?}"),
            })
            .collect();
        f.debug_struct("DevServerConfig")
            .field("port", &self.port)
            .field("sync_delay", &self.sync_delay)
            .field("slow_join", &self.slow_join)
            .field("max_channels_per_socket", &self.max_channels_per_socket)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_clients_per_topic", &self.max_clients_per_topic)
            .field("session_grace", &self.session_grace)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("leave_delay", &self.leave_delay)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_outbound_bytes", &self.max_outbound_bytes)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("event_log_capacity", &self.event_log_capacity)
            .field("stale_pushes", &self.stale_pushes)
            .field("missing_vsn", &self.missing_vsn)
            .field("builtin_routes", &self.builtin_routes)
            .field("routes", &routes)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl DevServerConfig {
    /// Listen on this port of 127.0.0.1 instead of a free one (for demos with a fixed URL).
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Delay of the `sync {"seq":1}` push after a `room:*` join (default 50 ms).
    #[must_use]
    pub fn with_sync_delay(mut self, delay: Duration) -> Self {
        self.sync_delay = delay;
        self
    }

    /// Sleep of a `slow:*` join without `delay_ms` (default 1500 ms).
    #[must_use]
    pub fn with_slow_join(mut self, delay: Duration) -> Self {
        self.slow_join = delay;
        self
    }

    /// Channels one socket may have joined (default 100); beyond it joins get
    /// `{"reason": "too many channels joined"}`.
    #[must_use]
    pub fn with_max_channels_per_socket(mut self, max: usize) -> Self {
        self.max_channels_per_socket = max;
        self
    }

    /// Close a socket (code 1000, "idle timeout") after this long without an inbound frame
    /// (default 60 s).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Members one topic session accepts over all sockets (default 1000); beyond it joins get
    /// `{"reason": "max_clients_reached"}`.
    #[must_use]
    pub fn with_max_clients_per_topic(mut self, max: usize) -> Self {
        self.max_clients_per_topic = max;
        self
    }

    /// How long an empty topic session lingers before it ends (default 1 s).
    #[must_use]
    pub fn with_session_grace(mut self, grace: Duration) -> Self {
        self.session_grace = grace;
        self
    }

    /// Close every member of a topic without inbound traffic for this long (default 30 min);
    /// `None` disables it.
    #[must_use]
    pub fn with_session_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.session_idle_timeout = timeout;
        self
    }

    /// Extra delay before a `phx_leave` is answered (default none: it is answered once the
    /// frames already received are handled, so a leave immediately followed by a join of
    /// the same topic gets no leave reply, as on a real server).
    #[must_use]
    pub fn with_leave_delay(mut self, delay: Duration) -> Self {
        self.leave_delay = delay;
        self
    }

    /// Largest inbound frame accepted (default 8 MiB).
    #[must_use]
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self
    }

    /// Bytes a socket may hold for its client, written to the socket not yet (default
    /// 64 MiB). A client that stops reading makes them pile up; a frame that would take them
    /// past this bound gets the socket closed with 1008 instead (the queued frames are
    /// dropped, [`ServerEventKind::OutboundOverflow`] is logged). Meanwhile the socket keeps
    /// reading and handling that client's frames. Keep it above the largest frame sent.
    #[must_use]
    pub fn with_max_outbound_bytes(mut self, max: usize) -> Self {
        self.max_outbound_bytes = max;
        self
    }

    /// What a push with a join_ref other than its channel's gets (default
    /// [`StalePushPolicy::HandToCurrent`], as on Phoenix 1.7; newer Phoenix drops it).
    #[must_use]
    pub fn with_stale_push_policy(mut self, policy: StalePushPolicy) -> Self {
        self.stale_pushes = policy;
        self
    }

    /// What a connection without `vsn=2.0.0` gets (default [`MissingVsnPolicy::Refuse`]:
    /// HTTP 400; [`MissingVsnPolicy::FallBackToV1`] is what Phoenix does).
    #[must_use]
    pub fn with_missing_vsn_policy(mut self, policy: MissingVsnPolicy) -> Self {
        self.missing_vsn = policy;
        self
    }

    /// How long a connection may take to complete the WebSocket handshake (default 10 s).
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Events kept in the log; older ones are dropped first (default 10 000; 0 disables it).
    #[must_use]
    pub fn with_event_log_capacity(mut self, capacity: usize) -> Self {
        self.event_log_capacity = capacity;
        self
    }

    /// Serve `wss://` with this certificate chain and private key; [`DevServerHandle::url`]
    /// then returns a `wss://` URL. Each may be PEM (any number of certificates, the leaf
    /// first) or DER (one certificate; a PKCS#8, PKCS#1 or SEC1 key). They are checked when
    /// the server starts ([`DevServerError::Tls`]). The certificate must name the host
    /// clients connect to (`127.0.0.1`, or `localhost`).
    ///
    /// ```no_run
    /// # async fn demo(cert_pem: &str, key_pem: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
    ///
    /// let config = DevServerConfig::default().with_tls(cert_pem, key_pem);
    /// let server = DevServer::start(config).await?;
    /// assert!(server.url().starts_with("wss://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.tls = Some(tls::TlsIdentity::new(cert_chain.as_ref(), key.as_ref()));
        self
    }

    /// Whether the server serves `wss://`.
    fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Leave out the built-in routes (`room:*`, `fail:*`, …); only configured routes remain.
    #[must_use]
    pub fn without_builtin_routes(mut self) -> Self {
        self.builtin_routes = false;
        self
    }

    /// Route topics matching `pattern` to handlers made by `factory`. Configured routes are
    /// tried in order, before the built-in ones.
    #[must_use]
    pub fn route<F>(mut self, pattern: impl Into<TopicPattern>, factory: F) -> Self
    where
        F: Fn(&str) -> Box<dyn ChannelHandler> + Send + Sync + 'static,
    {
        self.routes
            .push(RouteSpec::Handler(pattern.into(), Arc::new(factory)));
        self
    }

    /// Route topics matching `pattern` to a built-in behaviour, e.g. `doc:*` to
    /// [`BuiltinChannel::Room`].
    #[must_use]
    pub fn route_builtin(
        mut self,
        pattern: impl Into<TopicPattern>,
        channel: BuiltinChannel,
    ) -> Self {
        self.routes
            .push(RouteSpec::Builtin(pattern.into(), channel));
        self
    }

    fn resolve_routes(&self) -> Vec<Route> {
        let timings = BuiltinTimings {
            sync_delay: self.sync_delay,
            slow_join: self.slow_join,
        };
        let builtin = self
            .builtin_routes
            .then_some(BuiltinChannel::DEFAULT_ROUTES.iter())
            .into_iter()
            .flatten()
            .map(|(pattern, channel)| RouteSpec::Builtin(TopicPattern::new(pattern), *channel));
        self.routes
            .iter()
            .cloned()
            .chain(builtin)
            .map(|spec| match spec {
                RouteSpec::Handler(pattern, factory) => Route { pattern, factory },
                RouteSpec::Builtin(pattern, channel) => Route {
                    pattern,
                    factory: channel.factory(timings),
                },
            })
            .collect()
    }
}

/// Default of [`DevServerConfig::with_max_outbound_bytes`]: 64 MiB.
pub const DEFAULT_MAX_OUTBOUND_BYTES: usize = 64 * 1024 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevServerError {
    /// The listening socket could not be opened.
    #[error("could not listen on {addr}: {source}; use port 0 to pick a free port")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate chain or key given to [`DevServerConfig::with_tls`] is unusable.
    #[cfg(feature = "tls")]
    #[error("cannot serve TLS: {detail}")]
    Tls {
        /// What is wrong with them, and what to give instead.
        detail: String,
    },
}

/// A [`DevServerHandle::wait_until`] condition did not hold in time.
#[derive(Clone, Debug, thiserror::Error)]
#[error("condition not met within {timeout:?}; server state: {summary}")]
pub struct WaitTimeout {
    /// The timeout that passed.
    pub timeout: Duration,
    /// What the server looked like at the deadline.
    pub summary: String,
}

/// A running server. It shuts down when dropped or on [`shutdown`](Self::shutdown); its
/// knobs and observations are those of its [`DevServerHandle`], which it dereferences to.
pub struct DevServer {
    handle: DevServerHandle,
    task: Option<JoinHandle<()>>,
}

impl DevServer {
    /// Listen on 127.0.0.1 and serve until dropped.
    pub async fn start(config: DevServerConfig) -> Result<DevServer, DevServerError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DevServerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| DevServerError::Bind { addr, source })?;
        #[cfg(feature = "tls")]
        let tls = config
            .tls
            .as_ref()
            .map(tls::TlsIdentity::acceptor)
            .transpose()?;
        let routes = config.resolve_routes();
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut shared = Shared::new(config, routes, local);
        #[cfg(feature = "tls")]
        {
            shared.tls = tls;
        }
        let shared = Arc::new(shared);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(DevServer {
            handle: DevServerHandle { shared },
            task: Some(task),
        })
    }

    /// A cloneable handle for knobs and observation; it outlives the server harmlessly.
    pub fn handle(&self) -> DevServerHandle {
        self.handle.clone()
    }

    /// Close every socket (code 1001) and stop listening; returns when the server is down.
    pub async fn shutdown(mut self) {
        self.handle.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Deref for DevServer {
    type Target = DevServerHandle;

    fn deref(&self) -> &DevServerHandle {
        &self.handle
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
    }
}

impl fmt::Debug for DevServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevServer")
            .field("addr", &self.handle.addr())
            .finish()
    }
}

/// `from + duration`, saturating at a far-future instant instead of overflowing.
fn deadline_after(from: tokio::time::Instant, duration: Duration) -> tokio::time::Instant {
    /// Far enough to never fire in a test or demo, small enough to add to any instant.
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    from.checked_add(duration).unwrap_or_else(|| from + FAR)
}

/// Resolves once the server is shutting down.
async fn shut_down(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone, which also means shutdown.
    let _ = shutdown.wait_for(|down| *down).await;
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shut_down(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(connection::serve(Arc::clone(&shared), tcp));
                }
                Err(error) => {
                    tracing::warn!(%error, "dev server: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// Knobs and observation of a running [`DevServer`]. Cheap to clone; after the server has
/// shut down, knobs do nothing and observations show the final state.
#[derive(Clone)]
pub struct DevServerHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for DevServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevServerHandle")
            .field("addr", &self.addr())
            .finish()
    }
}

impl DevServerHandle {
    /// The listening address (127.0.0.1 and the chosen port).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The socket endpoint, `ws://127.0.0.1:PORT/socket` (`wss://` when serving TLS), as a
    /// client is configured with.
    pub fn url(&self) -> String {
        format!("{}://{}/socket", self.scheme(), self.shared.addr)
    }

    /// The full WebSocket URL, `ws://127.0.0.1:PORT/socket/websocket?vsn=2.0.0` (`wss://`
    /// when serving TLS).
    pub fn websocket_url(&self) -> String {
        format!(
            "{}://{}/socket/websocket?vsn={PROTOCOL_VSN}",
            self.scheme(),
            self.shared.addr
        )
    }

    fn scheme(&self) -> &'static str {
        if self.shared.config.is_tls() {
            "wss"
        } else {
            "ws"
        }
    }

    /// Whether the server is still serving.
    pub fn is_running(&self) -> bool {
        !self.shared.is_shut_down()
    }

    // --- fault knobs ------------------------------------------------------------------------

    /// Delay joins of topics matching `pattern` by `delay`, blocking their socket meanwhile
    /// like a slow `join/3`. Delays of several matching patterns add up.
    pub fn delay_joins(&self, pattern: impl Into<TopicPattern>, delay: Duration) {
        self.shared
            .set_join_fault(pattern.into(), |fault| fault.delay = delay);
    }

    /// Refuse joins of topics matching `pattern` with an error reply carrying `response`
    /// (e.g. `{"reason": "unauthorized"}`).
    pub fn fail_joins(&self, pattern: impl Into<TopicPattern>, response: Value) {
        self.shared
            .set_join_fault(pattern.into(), |fault| fault.reject = Some(response));
    }

    /// Remove every join delay and refusal.
    pub fn clear_join_faults(&self) {
        self.shared.clear_join_faults();
    }

    /// Crash every channel on topics matching `pattern` (`phx_error`); returns how many were
    /// addressed. Takes effect asynchronously, in order with the sockets' other frames.
    pub fn crash_channels(&self, pattern: impl Into<TopicPattern>) -> usize {
        self.end_channels(pattern.into(), ChannelEnd::Crashed)
    }

    /// Stop every channel on topics matching `pattern` (`phx_close`); returns how many were
    /// addressed.
    pub fn stop_channels(&self, pattern: impl Into<TopicPattern>) -> usize {
        self.end_channels(pattern.into(), ChannelEnd::Stopped)
    }

    fn end_channels(&self, pattern: TopicPattern, end: ChannelEnd) -> usize {
        self.shared
            .command_members(&pattern, |topic, join_ref| SocketCommand::End {
                topic: topic.to_owned(),
                join_ref: Some(join_ref.to_owned()),
                end,
            })
    }

    /// Reset every connection (TCP RST, no close frame), as a crashed server or a dropped
    /// network does; returns how many sockets were addressed.
    pub fn drop_all_sockets(&self) -> usize {
        self.shared.command_all(|| SocketCommand::Abort)
    }

    /// Close every connection with a close frame (`1000` normal, `1001` going away, `1012`
    /// restart, ...); returns how many sockets were addressed.
    pub fn close_all_sockets(&self, code: u16, reason: &str) -> usize {
        self.shared.command_all(|| SocketCommand::Close {
            code,
            reason: reason.to_owned(),
        })
    }

    /// Answer heartbeats (the default) or leave them unanswered, so clients detect a dead
    /// link.
    pub fn set_heartbeat_replies(&self, enabled: bool) {
        self.shared.set_mute_heartbeats(!enabled);
    }

    /// Send `frame` as it is to every socket; returns how many were addressed.
    pub fn send_raw_to_all(&self, frame: Frame) -> usize {
        self.shared
            .command_all(|| SocketCommand::Raw(frame.clone()))
    }

    /// Send a text frame that is not a Phoenix frame (not even JSON) to every socket.
    pub fn send_garbage_to_all(&self) -> usize {
        self.send_raw_to_all(Frame::Text("\u{1}this is not a phoenix frame {".to_owned()))
    }

    /// Broadcast `[null, null, topic, event, payload]` to every member of `topic`; returns
    /// how many sockets were addressed.
    pub fn broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> usize {
        let message = Message::broadcast(topic, event, payload).into();
        self.shared.broadcast(topic, None, &message)
    }

    /// Push `[join_ref, null, topic, event, payload]` to every member incarnation of `topic`;
    /// returns how many were addressed.
    pub fn push(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> usize {
        self.shared.push_to_members(topic, event, &payload.into())
    }

    // --- observation ------------------------------------------------------------------------

    /// Look at a consistent view of the server state.
    pub fn view<R>(&self, f: impl FnOnce(&ServerView<'_>) -> R) -> R {
        self.shared.read(f)
    }

    /// Connected sockets.
    pub fn socket_count(&self) -> usize {
        self.view(|view| view.socket_count())
    }

    /// Joined channels over all sockets.
    pub fn joined_count(&self) -> usize {
        self.view(|view| view.joined_count())
    }

    /// Every connected socket with its parameters and `(topic, join_ref)` channels.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        self.view(|view| view.sockets())
    }

    /// A copy of the event log, oldest first.
    pub fn events(&self) -> Vec<ServerEvent> {
        self.view(|view| view.events().cloned().collect())
    }

    /// Empty the event log.
    pub fn clear_events(&self) {
        self.shared.clear_events();
    }

    /// How many inbound messages on `topic` with `event` the server received (e.g.
    /// `phx_leave`, to assert the server saw a leave).
    pub fn inbound_count(&self, topic: &str, event: &str) -> usize {
        self.view(|view| view.inbound_count(topic, event))
    }

    /// Wait until `condition` holds, re-checking on every state change (no polling
    /// interval); fails with the server state after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&ServerView<'_>) -> bool,
    ) -> Result<(), WaitTimeout> {
        let mut changes = self.shared.subscribe_changes();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if self.view(&mut condition) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    if self.view(&mut condition) {
                        return Ok(());
                    }
                    return Err(WaitTimeout {
                        timeout,
                        summary: self.view(|view| view.summary()),
                    });
                }
            }
        }
    }
}
