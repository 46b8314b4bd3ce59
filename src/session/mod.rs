//! The pure Phoenix session: everything a Phoenix client does besides IO,
//! one value per socket, in the engine's style. A driver (the tokio
//! [`Client`](crate::phoenix::Client), the blocking example, a game loop)
//! only moves bytes and time:
//!
//! - **inputs** take `now`: frames in ([`Session::handle_frame`]), the socket
//!   opened, closed or failed ([`Session::handle_connected`],
//!   [`Session::handle_disconnected`]), timers ([`Session::handle_timeout`],
//!   idempotent), and the application's commands with plain ids
//!   ([`Session::subscribe`], [`Session::switch`], [`Session::push`], …);
//! - **outputs** come out of one ordered queue ([`Session::poll_output`]):
//!   frames to send, connect and close requests, resource calls, diagnostics
//!   and the application's events (subscriptions joined, lost, rejoining,
//!   failed, closed; rooms showing, losing, failing; messages with their
//!   recipients; push outcomes); [`Session::poll_timeout`] says when to call
//!   `handle_timeout` next.
//!
//! The session owns the [lifecycle engine](crate::engine) (refcounts, phases,
//! incarnations, rooms, retries), the codec, the heartbeat and dead-link
//! detection, the reconnect ladder with jitter and give-up, push buffering,
//! refs and deadlines, routing, and the subscription and room bookkeeping.
//! No clock, no IO, no threads, no channels: deterministic for a given seed.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use channel_registry::codec::{Frame, FrameRef};
//! use channel_registry::engine::SubscriberId;
//! use channel_registry::session::{Event, JoinParams, Output, Session, SessionConfig, SubscriptionEvent};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let mut now = Instant::now();
//! let config = SessionConfig::new("ws://localhost:4000/socket").with_seed(7);
//! let mut session = Session::new(config, now)?;
//! session.connect(now);
//! session.subscribe(SubscriberId(1), "room:lobby", JoinParams::none(), now)?;
//!
//! let mut joined = false;
//! while let Some(output) = session.poll_output() {
//!     match output {
//!         // A real driver opens a WebSocket here, and says when it is open.
//!         Output::Connect(request) => session.handle_connected(request.id, now),
//!         // ... and sends frames. This "server" answers the join at once.
//!         Output::Transmit(Frame::Text(text)) if text.contains("phx_join") => {
//!             let reply = r#"["1","1","room:lobby","phx_reply",{"status":"ok","response":{}}]"#;
//!             session.handle_frame(FrameRef::Text(reply), now);
//!         }
//!         Output::Event(Event::Subscription { event: SubscriptionEvent::Joined { .. }, .. }) => {
//!             joined = true;
//!         }
//!         _ => {}
//!     }
//! }
//! assert!(joined);
//! // Sleep until the next timer (the heartbeat, here), then tell the session.
//! now = session.poll_timeout().expect("a heartbeat is due");
//! session.handle_timeout(now);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Parts that also stand on their own:
//! - [`presence`]: phoenix.js `Presence` semantics (state and diffs keyed by
//!   `phx_ref`, diffs buffered until the state of the current join).
//! - [`stream`]: ordered, gap-free delivery across rejoins (numbered events
//!   with acks and replay; versioned patch streams with gap recovery).

mod commands;
mod config;
mod error;
mod events;
mod inbound;
mod lifecycle;
mod message;
mod ordered;
mod presence_query;
mod pushes;
mod socket;
mod topics;

pub mod presence;
pub mod record;
pub mod stream;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

pub use commands::{PushOptions, PushTarget, SubscribeOptions};
pub use config::{
    redact_query, AuthTokenProvider, OverflowPolicy, ReconnectPolicy, SessionConfig,
    SessionConfigError, SocketParamsProvider, MIN_FRAME_SIZE,
};
pub use error::{describe, describe_response, PushError, SubscribeError};
pub use events::{
    CloseReason, CloseRequest, ConnectRequest, ConnectionId, ConnectionState, Diagnostic, Event,
    LostReason, Output, PushId, Recipient, Recipients, ResourceEffect, RoomEvent, RoomState,
    ShownStatus, SubscriptionEvent, SubscriptionState,
};
#[cfg(feature = "phoenix")]
pub(crate) use message::catch as catch_panic;
pub use message::{ChannelMessage, JoinParams, ParamsError};
pub use ordered::{StreamEvent, StreamOptions, StreamWire};
pub use socket::Disconnect;

use crate::codec::Codec;
use crate::engine::{Engine, RoomId, Stats, SubscriberId};
use pushes::PushBook;
use socket::Conn;
use topics::{RefKind, RoomEntry, SubEntry, Topics};

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
    /// Frames from the server that could not be decoded (dropped).
    pub decode_errors: u64,
    /// Messages that could not be encoded (not sent).
    pub encode_errors: u64,
    /// Messages not delivered because they belong to no current active
    /// incarnation (stale join_ref, topic not active, unknown topic).
    pub dropped_messages: u64,
    /// Replies that answered nothing pending (leave replies, late replies).
    pub unmatched_replies: u64,
    /// Protocol inputs the engine ignored as stale or not applicable.
    pub ignored_inputs: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Heartbeats left unanswered until the next one was due.
    pub heartbeat_timeouts: u64,
    /// Round trip of the last answered heartbeat.
    pub last_heartbeat_rtt: Option<std::time::Duration>,
}

/// A snapshot of the session: the engine's counts and the socket's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Topics by phase, holders, rooms, timers.
    pub engine: Stats,
    /// Socket and traffic counters.
    pub socket: SocketStats,
    /// Pushes waiting for their channel to be active.
    pub pushes_buffered: usize,
    /// Pushes sent and waiting for their reply.
    pub pushes_in_flight: usize,
    /// Subscriptions open.
    pub subscriptions: usize,
    /// Rooms open.
    pub rooms: usize,
    /// Refs awaiting a reply (joins, pushes, heartbeats, leaves).
    pub pending_refs: usize,
}

/// One topic as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicListing {
    /// The topic.
    pub topic: Arc<str>,
    /// Where it stands.
    pub status: crate::engine::TopicStatus,
    /// Its subscriptions.
    pub subscriptions: usize,
    /// Rooms showing or switching to it.
    pub rooms: usize,
    /// The current incarnation, if any.
    pub join_ref: Option<crate::engine::JoinRef>,
}

/// The pure Phoenix session: one per socket. See the [module docs](self).
pub struct Session {
    config: Arc<SessionConfig>,
    engine: Engine,
    codec: Codec,
    seed: u64,
    rng: u64,
    conn: Conn,
    /// Connection ids handed out so far.
    connections: u64,
    /// Attempts in a row since the connection was last healthy.
    attempts: u32,
    /// When the connection was last healthy (or the session started).
    healthy_at: Instant,
    refs: HashMap<u64, RefKind, FxBuildHasher>,
    /// Refs of joins whose incarnation ended unanswered, oldest first, so a
    /// late reply still reaches the engine (which reports it stale).
    ended_joins: VecDeque<u64>,
    topics: Topics,
    subs: HashMap<SubscriberId, SubEntry, FxBuildHasher>,
    rooms: HashMap<RoomId, RoomEntry, FxBuildHasher>,
    pushes: PushBook,
    casts: u64,
    outputs: VecDeque<Output>,
    /// Topics the engine's outputs named since the last status report.
    touched: Vec<crate::engine::TopicId>,
    /// Topics with an ordered stream (their timers count).
    streams: Vec<crate::engine::TopicId>,
    /// Ordered streams fed since their outputs were last drained.
    streams_dirty: Vec<crate::engine::TopicId>,
    stats: SocketStats,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connection", &self.connection_state())
            .field("engine", &self.engine.stats())
            .field("subscriptions", &self.subs.len())
            .field("rooms", &self.rooms.len())
            .field("pushes", &self.pushes.len())
            .field("queued_outputs", &self.outputs.len())
            .finish()
    }
}

/// A seed for jitter, different in every session of every process.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}

/// SplitMix64's output function: seeds derived from one seed stay apart.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Session {
    /// A new session, not yet connecting (call [`Session::connect`]). `now`
    /// is its epoch. The jitter seed is the config's, or drawn from the OS.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Session, SessionConfigError> {
        config.validate()?;
        let seed = config.seed.unwrap_or_else(os_seed);
        let mut engine_config = config.engine.clone();
        engine_config.seed = mix(seed ^ 0xE);
        // Joined, Lost and the flush of buffered pushes follow the engine's
        // phase changes: the session always needs them.
        engine_config.phase_events = true;
        let engine = Engine::new(engine_config, now)?;
        Ok(Session {
            codec: Codec::new().with_max_frame_size(config.max_frame_size),
            config: Arc::new(config),
            engine,
            seed,
            rng: mix(seed ^ 0x5),
            conn: Conn::Idle,
            connections: 0,
            attempts: 0,
            healthy_at: now,
            refs: HashMap::with_hasher(FxBuildHasher),
            ended_joins: VecDeque::new(),
            topics: Topics::default(),
            subs: HashMap::with_hasher(FxBuildHasher),
            rooms: HashMap::with_hasher(FxBuildHasher),
            pushes: PushBook::default(),
            casts: 0,
            outputs: VecDeque::new(),
            touched: Vec::new(),
            streams: Vec::new(),
            streams_dirty: Vec::new(),
            stats: SocketStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The jitter seed in use (the config's, or the one drawn from the OS):
    /// with it, a recorded run replays exactly.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The lifecycle engine underneath (read-only: for stats, audits and
    /// listings).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The next output, in the order the session produced them. Drain until
    /// `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// How many outputs wait to be polled.
    pub fn queued_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// When [`Session::handle_timeout`] should be called next, if anything
    /// waits for time: the engine's timers, the heartbeat, a reconnect or a
    /// connect deadline, push deadlines.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.engine.poll_timeout(),
            self.conn.deadline(),
            self.pushes.peek_deadline(),
            self.stream_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires everything due at `now`. Idempotent: a second call with the same
    /// `now` does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        self.pump(now);
        self.expire_pushes(now);
        self.socket_timers(now);
        self.stream_timers(now);
        self.pump(now);
    }

    /// The connection's state now.
    pub fn connection_state(&self) -> ConnectionState {
        self.conn.state(self.attempts)
    }

    /// Where a subscription stands (`None` once it ended: its last event
    /// said why).
    pub fn subscription_state(&self, id: SubscriberId) -> Option<SubscriptionState> {
        let sub = self.subs.get(&id)?;
        let status = self.engine.topic(sub.topic)?.status;
        Some(SubscriptionState::Managed(status))
    }

    /// What a room shows and waits for (`None` for a room never opened or
    /// closed: its last event said why).
    pub fn room_state(&self, id: RoomId) -> Option<RoomState> {
        self.rooms.get(&id).map(|r| r.state.clone())
    }

    /// Every topic the session holds: its status, subscriptions, rooms and
    /// current incarnation, in name order.
    pub fn topics(&self) -> Vec<TopicListing> {
        let mut out: Vec<TopicListing> = self
            .engine
            .topics()
            .map(|info| {
                let side = self.topics.get(info.id);
                TopicListing {
                    topic: side.map_or_else(|| Arc::from(info.topic), |s| Arc::clone(&s.name)),
                    status: info.status,
                    subscriptions: side.map_or(0, |s| s.subscribers.len()),
                    rooms: info
                        .holders()
                        .filter(|h| matches!(h, crate::engine::Holder::Room(_)))
                        .count(),
                    join_ref: info.status.join_ref(),
                }
            })
            .collect();
        out.sort_unstable_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// Counts and counters.
    pub fn stats(&self) -> SessionStats {
        let (pushes_buffered, pushes_in_flight) = self.pushes.counts();
        SessionStats {
            engine: self.engine.stats(),
            socket: self.stats.clone(),
            pushes_buffered,
            pushes_in_flight,
            subscriptions: self.subs.len(),
            rooms: self.rooms.len(),
            pending_refs: self.refs.len(),
        }
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn diagnose(&mut self, diagnostic: Diagnostic) {
        self.outputs.push_back(Output::Diagnostic(diagnostic));
    }

    fn next_random(&mut self) -> u64 {
        let z = self.rng;
        self.rng = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(z)
    }
}
