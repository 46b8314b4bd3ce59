//! A local Phoenix-protocol WebSocket server for tests, examples and demos.
//!
//! It answers like the Phoenix 1.7.24 server its wire transcripts were recorded from, and
//! `tests/transcripts.rs` checks that by replaying every recorded client frame against it:
//! join routing by topic pattern; duplicate joins (the new join is answered first, then the
//! old incarnation gets `phx_close`); leave replies followed by `phx_close`; `unmatched topic`
//! errors (with a null join_ref, also for a topic that is not a string); the per-socket
//! channel limit; heartbeats (whatever their payload); refs echoed as sent (numbers stay
//! numbers); a join without join_ref answered with a null one, its channel then pushing with
//! the join's ref; an event without handler crashing its channel (`phx_error`, no reply);
//! crashes and stops; presence; slow joins that block the whole socket; the idle timeout;
//! an auth token in `Sec-WebSocket-Protocol` (`phoenix, base64url.bearer.phx.<base64>`, as
//! phoenix.js 1.8 sends it and Phoenix ≥ 1.8 reads it: answered with the `phoenix`
//! subprotocol, decoded into [`SocketInfo::auth_token`]).
//!
//! It shares only the wire codec with the crate's engine and client, never their logic, so
//! that a bug cannot hide on both sides of the wire.
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
//! # Configuration
//!
//! Every knob of [`DevServerConfig`], with its default:
//!
//! | knob | default | what it sets |
//! |---|---|---|
//! | [`with_port`](DevServerConfig::with_port) | a free port | the port on 127.0.0.1 |
//! | [`with_sync_delay`](DevServerConfig::with_sync_delay) | 50 ms | when `room:*` pushes `sync` after its join |
//! | [`with_slow_join`](DevServerConfig::with_slow_join) | 1500 ms | how long a `slow:*` join without `delay_ms` blocks its socket |
//! | [`with_max_channels_per_socket`](DevServerConfig::with_max_channels_per_socket) | 100 | joins beyond it get `too many channels joined` |
//! | [`with_idle_timeout`](DevServerConfig::with_idle_timeout) | 60 s | a socket without inbound frames is closed (1000) |
//! | [`with_max_clients_per_topic`](DevServerConfig::with_max_clients_per_topic) | 1000 | a topic session's members; beyond it `max_clients_reached` |
//! | [`with_session_grace`](DevServerConfig::with_session_grace) | 1 s | how long an empty topic session lingers |
//! | [`with_session_idle_timeout`](DevServerConfig::with_session_idle_timeout) | 30 min | a topic without inbound traffic has its members closed |
//! | [`with_leave_delay`](DevServerConfig::with_leave_delay) | none | an extra delay before a leave is answered |
//! | [`with_max_frame_size`](DevServerConfig::with_max_frame_size) | 8 MiB | the largest inbound frame |
//! | [`with_max_outbound_bytes`](DevServerConfig::with_max_outbound_bytes) | 64 MiB | what a socket may queue for a client that does not read |
//! | [`with_stale_push_policy`](DevServerConfig::with_stale_push_policy) | [`HandToCurrent`](StalePushPolicy::HandToCurrent) | pushes stamped with an old join_ref |
//! | [`with_missing_vsn_policy`](DevServerConfig::with_missing_vsn_policy) | [`Refuse`](MissingVsnPolicy::Refuse) | connections without `vsn=2.0.0` |
//! | [`with_handshake_timeout`](DevServerConfig::with_handshake_timeout) | 10 s | TLS and WebSocket handshake, together |
//! | [`with_event_log_capacity`](DevServerConfig::with_event_log_capacity) | 10 000 | events kept in the log |
//! | `with_tls` (feature `tls`) | plain `ws://` | serve `wss://` with a certificate and key |
//! | [`without_builtin_routes`](DevServerConfig::without_builtin_routes), [`route`](DevServerConfig::route), [`route_builtin`](DevServerConfig::route_builtin) | the built-in routes | which channel serves which topic |
//!
//! # Where Phoenix versions differ
//!
//! Two knobs choose between behaviours of real Phoenix servers, so a client can be tested
//! against each: [`StalePushPolicy`] (Phoenix 1.7 hands a push stamped with an old join_ref
//! to the topic's current channel, newer Phoenix drops it) and [`MissingVsnPolicy`] (Phoenix
//! falls back to V1 without `vsn`, then closes the socket with 1011 on the first V2 frame;
//! the default refuses the upgrade with HTTP 400 instead, the clearer signal).
//!
//! # Clients that do not read
//!
//! Each socket reads and handles frames in one task and writes in another, so a client that
//! stops reading never stops the server from reading it: its frames, heartbeats included,
//! keep being handled while the answers queue up. The queue is bounded in bytes; a frame that
//! would take it past the bound gets the socket closed with 1008 and
//! [`ServerEventKind::OutboundOverflow`] logged. [`SocketInfo`] shows what is queued.
//!
//! # TLS
//!
//! With the `tls` feature, `DevServerConfig::with_tls` takes a certificate chain and key (PEM
//! or DER) and the server speaks `wss://` (rustls, ring provider);
//! [`url`](DevServerHandle::url) then returns a `wss://` URL.
//!
//! # Auth tokens
//!
//! Like a Phoenix 1.8 socket mounted with `auth_token: true`, the server reads a token sent
//! among the WebSocket subprotocols (`base64url.bearer.phx.TOKEN`, phoenix.js 1.8
//! `authToken`), answers with the `phoenix` subprotocol offered beside it, and shows the
//! decoded token in [`SocketInfo::auth_token`]. Subprotocols without `phoenix` are refused
//! with 403.
//!
//! # Steering and observing
//!
//! Tests steer the server through a cloneable [`DevServerHandle`] — fault knobs (delay or fail
//! joins, crash or stop channels, drop or close sockets, mute heartbeats, send raw frames or
//! garbage, broadcast, push) — and observe it (joined channels per socket, topic sessions, an
//! event log, [`DevServerHandle::wait_until`]).
//!
//! The built-in channels are described in [`BuiltinChannel`]; custom ones implement
//! [`ChannelHandler`] and are mounted with [`DevServerConfig::route`].

mod builtin;
mod config;
mod connection;
mod events;
mod handler;
mod handshake;
pub mod ordered;
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
pub use config::{DevServerConfig, DEFAULT_MAX_OUTBOUND_BYTES};
pub use events::{ChannelEnd, ServerEvent, ServerEventKind, SessionEnd, SocketId};
pub use handler::{
    ChannelContext, ChannelHandler, HandleOutcome, HandlerFactory, JoinOutcome, TopicPattern,
};
pub use ordered::{
    OrderedError, OrderedFault, SequencedFormat, SequencedInfo, VersionedFormat, VersionedInfo,
    VersionedMount, DEFAULT_REPLAY_WINDOW,
};
pub use policy::{MissingVsnPolicy, StalePushPolicy};
pub use registry::{ServerView, SessionInfo, SocketInfo};
pub use wire::{MalformedFrame, WireProtocol};

use registry::{Shared, SocketCommand};

use crate::phoenix::codec::{Frame, Message, Payload, PROTOCOL_VSN};

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
                    connections.spawn(handshake::serve(Arc::clone(&shared), tcp));
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
