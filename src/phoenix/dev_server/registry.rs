//! Server-wide state shared by the socket tasks and the handle: connected sockets, per-topic
//! sessions with their members and presence, fault settings, and the event log.
//!
//! # Sessions
//!
//! Each topic with joined clients has one session, as in a Phoenix app that keeps a
//! per-topic session process: it is refcounted by the joined channel incarnations across all
//! sockets, refuses joins beyond `max_clients_per_topic` (`{"reason": "max_clients_reached"}`),
//! ends `session_grace` after its last member leaves (a join within the grace keeps it), and
//! closes every member channel (`phx_close`) after `session_idle_timeout` without inbound
//! traffic on the topic.
//!
//! Sessions are deliberately *not* driven by the crate's lifecycle engine. The engine
//! reconciles what a client wants with what a remote server answered, across round trips and
//! stale replies; a session is the server's own synchronous registry of who is joined, with
//! no round trip to reconcile. And this server is the oracle the engine is tested against:
//! sharing the engine's code would let one bug hide on both sides of the wire.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::handler::{HandlerFactory, TopicPattern};
use super::ordered::{OrderedKind, OrderedTopics};
use super::outbound::OutboundGauge;
use super::wire::Echo;
use super::{
    ChannelEnd, DevServerConfig, ServerEvent, ServerEventKind, SessionEnd, SocketId, WireProtocol,
};
use crate::phoenix::codec::{Frame, Message, ServerMessage};

/// Which channel incarnation a delivery is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Recipient {
    /// Whichever incarnation of the topic is joined (broadcasts).
    Current,
    /// The incarnation joined under this join_ref (addressed from outside the socket).
    JoinRef(String),
    /// One incarnation, by the socket's own counter: a timer of a channel that has ended
    /// never reaches a later channel, even one that reused its join_ref.
    Incarnation(u64),
}

/// A command for one socket task.
#[derive(Debug)]
pub(super) enum SocketCommand {
    /// Send `message` if `topic` is joined by the `to` incarnation.
    Deliver {
        topic: String,
        to: Recipient,
        message: ServerMessage,
    },
    /// Complete a `phx_leave`: reply ok, then `phx_close`.
    FinishLeave {
        topic: String,
        incarnation: u64,
        leave_ref: Option<String>,
        echo: Echo,
    },
    /// End the channel on `topic` (the given incarnation, or whichever is current).
    End {
        topic: String,
        join_ref: Option<String>,
        end: ChannelEnd,
    },
    /// Send a frame as it is.
    Raw(Frame),
    /// Close the WebSocket with a close frame.
    Close { code: u16, reason: String },
    /// Reset the TCP connection without a close frame.
    Abort,
}

pub(super) type CommandSender = mpsc::UnboundedSender<SocketCommand>;

/// A route from a topic pattern to a handler factory.
#[derive(Clone)]
pub(super) struct Route {
    pub(super) pattern: TopicPattern,
    pub(super) factory: HandlerFactory,
    /// The ordered design the route serves, if any.
    pub(super) ordered: Option<OrderedKind>,
}

/// Join faults configured through the handle.
#[derive(Clone, Debug, Default)]
pub(super) struct JoinFault {
    pub(super) delay: Duration,
    pub(super) reject: Option<Value>,
}

struct SocketEntry {
    commands: CommandSender,
    params: Vec<(String, String)>,
    protocol: WireProtocol,
    auth_token: Option<String>,
    outbound: Arc<OutboundGauge>,
    joined: BTreeMap<String, String>,
}

struct PresenceEntry {
    key: String,
    meta: Map<String, Value>,
    owner: (SocketId, String),
}

struct Session {
    generation: u64,
    members: BTreeSet<(SocketId, String)>,
    presences: Vec<PresenceEntry>,
    started_at: Instant,
    last_activity: Instant,
    /// Bumped whenever the session becomes empty, so a stale grace timer does nothing.
    empty_epoch: u64,
    /// The idle-timeout watcher, stopped when the session ends another way.
    idle_watcher: Option<tokio::task::AbortHandle>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(watcher) = self.idle_watcher.take() {
            watcher.abort();
        }
    }
}

struct State {
    next_socket: u64,
    next_generation: u64,
    next_presence_ref: u64,
    sockets: BTreeMap<SocketId, SocketEntry>,
    sessions: BTreeMap<String, Session>,
    ended_sessions: u64,
    join_faults: Vec<(TopicPattern, JoinFault)>,
    mute_heartbeats: bool,
    events: VecDeque<ServerEvent>,
    malformed: u64,
    ordered: OrderedTopics,
}

/// Why a member could not be added to a topic's session.
#[derive(Debug)]
pub(super) struct SessionFull;

/// Everything the server's tasks share.
pub(super) struct Shared {
    pub(super) config: DevServerConfig,
    pub(super) routes: Vec<Route>,
    pub(super) addr: std::net::SocketAddr,
    pub(super) shutdown: watch::Sender<bool>,
    /// The TLS acceptor when serving `wss://`.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    started: Instant,
    state: Mutex<State>,
    changes: watch::Sender<u64>,
}

impl Shared {
    pub(super) fn new(
        config: DevServerConfig,
        routes: Vec<Route>,
        addr: std::net::SocketAddr,
    ) -> Self {
        let replay_window = config.replay_window;
        Shared {
            config,
            routes,
            addr,
            shutdown: watch::Sender::new(false),
            #[cfg(feature = "tls")]
            tls: None,
            started: Instant::now(),
            state: Mutex::new(State {
                next_socket: 0,
                next_generation: 0,
                next_presence_ref: 0,
                sockets: BTreeMap::new(),
                sessions: BTreeMap::new(),
                ended_sessions: 0,
                join_faults: Vec::new(),
                mute_heartbeats: false,
                events: VecDeque::new(),
                malformed: 0,
                ordered: OrderedTopics::new(replay_window),
            }),
            changes: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking holder cannot leave the registry half-updated in a way that matters to a
        // test server; keep serving rather than cascade the panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read the state.
    pub(super) fn read<R>(&self, f: impl FnOnce(&ServerView<'_>) -> R) -> R {
        let state = self.lock();
        f(&ServerView {
            state: &state,
            started: self.started,
        })
    }

    /// Mutate the state and wake everyone waiting for a condition.
    fn update<R>(&self, f: impl FnOnce(&mut State, Duration) -> R) -> R {
        let result = {
            let mut state = self.lock();
            f(&mut state, self.started.elapsed())
        };
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
        result
    }

    pub(super) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(super) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub(super) fn route(&self, topic: &str) -> Option<HandlerFactory> {
        self.routes
            .iter()
            .find(|route| route.pattern.matches(topic))
            .map(|route| route.factory.clone())
    }

    /// The ordered design serving `topic`, if its route is ordered.
    pub(super) fn ordered_route(&self, topic: &str) -> Option<OrderedKind> {
        self.routes
            .iter()
            .find(|route| route.pattern.matches(topic))
            .and_then(|route| route.ordered.clone())
    }

    /// Change the ordered topics and wake everyone waiting for a condition.
    pub(super) fn ordered_update<R>(&self, f: impl FnOnce(&mut OrderedTopics) -> R) -> R {
        self.update(|state, _| f(&mut state.ordered))
    }

    // --- events -----------------------------------------------------------------------------

    pub(super) fn record(&self, socket: Option<SocketId>, kind: ServerEventKind) {
        let capacity = self.config.event_log_capacity;
        self.update(|state, at| push_event(state, capacity, ServerEvent { at, socket, kind }));
    }

    pub(super) fn record_malformed(&self, socket: SocketId, error: super::MalformedFrame) {
        let capacity = self.config.event_log_capacity;
        self.update(|state, at| {
            state.malformed += 1;
            push_event(
                state,
                capacity,
                ServerEvent {
                    at,
                    socket: Some(socket),
                    kind: ServerEventKind::Malformed { error },
                },
            );
        });
    }

    pub(super) fn clear_events(&self) {
        self.update(|state, _| state.events.clear());
    }

    // --- sockets ----------------------------------------------------------------------------

    pub(super) fn register_socket(
        &self,
        commands: CommandSender,
        params: Vec<(String, String)>,
        protocol: WireProtocol,
        auth_token: Option<String>,
        outbound: Arc<OutboundGauge>,
    ) -> SocketId {
        let capacity = self.config.event_log_capacity;
        self.update(|state, at| {
            state.next_socket += 1;
            let id = SocketId(state.next_socket);
            state.sockets.insert(
                id,
                SocketEntry {
                    commands,
                    params,
                    protocol,
                    auth_token,
                    outbound,
                    joined: BTreeMap::new(),
                },
            );
            push_event(
                state,
                capacity,
                ServerEvent {
                    at,
                    socket: Some(id),
                    kind: ServerEventKind::Connected,
                },
            );
            id
        })
    }

    pub(super) fn unregister_socket(&self, id: SocketId) {
        let capacity = self.config.event_log_capacity;
        self.update(|state, at| {
            state.sockets.remove(&id);
            push_event(
                state,
                capacity,
                ServerEvent {
                    at,
                    socket: Some(id),
                    kind: ServerEventKind::Disconnected,
                },
            );
        });
    }

    /// Send a command to every connected socket; returns how many were reached.
    pub(super) fn command_all(&self, make: impl Fn() -> SocketCommand) -> usize {
        self.read(|view| {
            view.state
                .sockets
                .values()
                .filter(|entry| entry.commands.send(make()).is_ok())
                .count()
        })
    }

    /// Send a command to every socket with a member on a topic matching `pattern`; returns how
    /// many channels were addressed.
    pub(super) fn command_members(
        &self,
        pattern: &TopicPattern,
        make: impl Fn(&str, &str) -> SocketCommand,
    ) -> usize {
        self.read(|view| {
            let mut count = 0;
            for (topic, session) in &view.state.sessions {
                if !pattern.matches(topic) {
                    continue;
                }
                for (socket, join_ref) in &session.members {
                    if let Some(entry) = view.state.sockets.get(socket) {
                        if entry.commands.send(make(topic, join_ref)).is_ok() {
                            count += 1;
                        }
                    }
                }
            }
            count
        })
    }

    // --- faults -----------------------------------------------------------------------------

    pub(super) fn set_join_fault(&self, pattern: TopicPattern, edit: impl FnOnce(&mut JoinFault)) {
        self.update(|state, _| {
            let index = match state.join_faults.iter().position(|(p, _)| *p == pattern) {
                Some(index) => index,
                None => {
                    state.join_faults.push((pattern, JoinFault::default()));
                    state.join_faults.len() - 1
                }
            };
            if let Some((_, fault)) = state.join_faults.get_mut(index) {
                edit(fault);
            }
        });
    }

    pub(super) fn clear_join_faults(&self) {
        self.update(|state, _| state.join_faults.clear());
    }

    /// The combined join fault for `topic`: delays add up, the last matching rejection wins.
    pub(super) fn join_fault(&self, topic: &str) -> JoinFault {
        self.read(|view| {
            let mut combined = JoinFault::default();
            for (pattern, fault) in &view.state.join_faults {
                if pattern.matches(topic) {
                    combined.delay = combined.delay.saturating_add(fault.delay);
                    if fault.reject.is_some() {
                        combined.reject.clone_from(&fault.reject);
                    }
                }
            }
            combined
        })
    }

    pub(super) fn set_mute_heartbeats(&self, mute: bool) {
        self.update(|state, _| state.mute_heartbeats = mute);
    }

    pub(super) fn heartbeats_muted(&self) -> bool {
        self.read(|view| view.state.mute_heartbeats)
    }

    // --- membership -------------------------------------------------------------------------

    /// Add a joined channel incarnation to its topic's session, creating or reviving it.
    pub(super) fn add_member(
        self: &Arc<Self>,
        socket: SocketId,
        topic: &str,
        join_ref: &str,
    ) -> Result<(), SessionFull> {
        let capacity = self.config.event_log_capacity;
        let max_clients = self.config.max_clients_per_topic;
        let idle_timeout = self.config.session_idle_timeout;
        let started = self.update(|state, at| {
            let now = Instant::now();
            let members = state
                .sessions
                .get(topic)
                .map_or(0, |session| session.members.len());
            if members >= max_clients {
                return Err(SessionFull);
            }
            let mut started = None;
            if !state.sessions.contains_key(topic) {
                state.next_generation += 1;
                let generation = state.next_generation;
                state.sessions.insert(
                    topic.to_owned(),
                    Session {
                        generation,
                        members: BTreeSet::new(),
                        presences: Vec::new(),
                        started_at: now,
                        last_activity: now,
                        empty_epoch: 0,
                        idle_watcher: None,
                    },
                );
                push_event(
                    state,
                    capacity,
                    ServerEvent {
                        at,
                        socket: Some(socket),
                        kind: ServerEventKind::SessionStarted {
                            topic: topic.to_owned(),
                        },
                    },
                );
                started = Some(generation);
            }
            let session = state.sessions.get_mut(topic).ok_or(SessionFull)?;
            session.members.insert((socket, join_ref.to_owned()));
            session.last_activity = now;
            if let Some(entry) = state.sockets.get_mut(&socket) {
                entry.joined.insert(topic.to_owned(), join_ref.to_owned());
            }
            push_event(
                state,
                capacity,
                ServerEvent {
                    at,
                    socket: Some(socket),
                    kind: ServerEventKind::Joined {
                        topic: topic.to_owned(),
                        join_ref: join_ref.to_owned(),
                    },
                },
            );
            Ok(started)
        })?;
        if let Some(generation) = started {
            if let Some(timeout) = idle_timeout {
                let watcher = tokio::spawn(watch_session_idle(
                    Arc::clone(self),
                    topic.to_owned(),
                    generation,
                    timeout,
                ));
                let mut state = self.lock();
                match state.sessions.get_mut(topic) {
                    Some(session) if session.generation == generation => {
                        session.idle_watcher = Some(watcher.abort_handle());
                    }
                    _ => watcher.abort(),
                }
            }
        }
        Ok(())
    }

    /// Remove a channel incarnation from its session, drop its presence (sending the leave
    /// diff to the remaining members) and arm the session's grace timer if it became empty.
    pub(super) fn remove_member(
        self: &Arc<Self>,
        socket: SocketId,
        topic: &str,
        join_ref: &str,
        end: ChannelEnd,
    ) {
        let capacity = self.config.event_log_capacity;
        let grace = self.config.session_grace;
        let empty = self.update(|state, at| {
            if let Some(entry) = state.sockets.get_mut(&socket) {
                if entry
                    .joined
                    .get(topic)
                    .is_some_and(|current| current == join_ref)
                {
                    entry.joined.remove(topic);
                }
            }
            push_event(
                state,
                capacity,
                ServerEvent {
                    at,
                    socket: Some(socket),
                    kind: ServerEventKind::ChannelEnded {
                        topic: topic.to_owned(),
                        join_ref: join_ref.to_owned(),
                        end,
                    },
                },
            );
            let owner = (socket, join_ref.to_owned());
            let session = state.sessions.get_mut(topic)?;
            session.members.remove(&owner);
            let mut leaves: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            session.presences.retain(|entry| {
                if entry.owner == owner {
                    leaves
                        .entry(entry.key.clone())
                        .or_default()
                        .push(Value::Object(entry.meta.clone()));
                    false
                } else {
                    true
                }
            });
            if !leaves.is_empty() {
                let diff = presence_diff(BTreeMap::new(), leaves);
                let message =
                    ServerMessage::Message(Message::broadcast(topic, "presence_diff", diff));
                fan_out(state, topic, None, &message);
            }
            let session = state.sessions.get_mut(topic)?;
            if session.members.is_empty() {
                session.empty_epoch += 1;
                Some((session.generation, session.empty_epoch))
            } else {
                None
            }
        });
        if let Some((generation, epoch)) = empty {
            if grace.is_zero() {
                self.end_empty_session(topic, generation, epoch);
            } else {
                let shared = Arc::clone(self);
                let topic = topic.to_owned();
                let mut shutdown = self.shutdown.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(grace) => shared.end_empty_session(&topic, generation, epoch),
                        () = super::shut_down(&mut shutdown) => {}
                    }
                });
            }
        }
    }

    fn end_empty_session(&self, topic: &str, generation: u64, epoch: u64) {
        let capacity = self.config.event_log_capacity;
        self.update(|state, at| {
            let still_empty = state.sessions.get(topic).is_some_and(|session| {
                session.generation == generation
                    && session.empty_epoch == epoch
                    && session.members.is_empty()
            });
            if still_empty {
                end_session(state, capacity, at, topic, SessionEnd::Empty);
            }
        });
    }

    /// Note inbound traffic on a topic for the session's idle timeout.
    pub(super) fn touch(&self, topic: &str) {
        let mut state = self.lock();
        if let Some(session) = state.sessions.get_mut(topic) {
            session.last_activity = Instant::now();
        }
    }

    /// Whether a session for `topic` can take one more member (checked before running a join).
    pub(super) fn has_room(&self, topic: &str) -> bool {
        self.read(|view| {
            view.state
                .sessions
                .get(topic)
                .is_none_or(|session| session.members.len() < self.config.max_clients_per_topic)
        })
    }

    // --- broadcast and presence -------------------------------------------------------------

    /// Deliver `message` to every member of `topic` except those on `except`; returns how
    /// many sockets were addressed.
    pub(super) fn broadcast(
        &self,
        topic: &str,
        except: Option<SocketId>,
        message: &ServerMessage,
    ) -> usize {
        let state = self.lock();
        fan_out(&state, topic, except, message)
    }

    /// Send a channel push to every member incarnation of `topic`.
    pub(super) fn push_to_members(
        &self,
        topic: &str,
        event: &str,
        payload: &crate::phoenix::codec::Payload,
    ) -> usize {
        let state = self.lock();
        let Some(session) = state.sessions.get(topic) else {
            return 0;
        };
        let mut count = 0;
        for (socket, join_ref) in &session.members {
            if let Some(entry) = state.sockets.get(socket) {
                let message =
                    Message::channel_push(join_ref.as_str(), topic, event, payload.clone());
                let command = SocketCommand::Deliver {
                    topic: topic.to_owned(),
                    to: Recipient::JoinRef(join_ref.clone()),
                    message: message.into(),
                };
                if entry.commands.send(command).is_ok() {
                    count += 1;
                }
            }
        }
        count
    }

    /// Track a presence; returns the `presence_diff` payload announcing it.
    pub(super) fn track_presence(
        &self,
        topic: &str,
        owner: (SocketId, String),
        key: String,
        mut meta: Map<String, Value>,
    ) -> Option<Value> {
        self.update(|state, _| {
            state.next_presence_ref += 1;
            let phx_ref = format!("dev{:08}", state.next_presence_ref);
            meta.insert("phx_ref".to_owned(), Value::String(phx_ref));
            let session = state.sessions.get_mut(topic)?;
            let mut joins = BTreeMap::new();
            joins.insert(key.clone(), vec![Value::Object(meta.clone())]);
            session.presences.push(PresenceEntry { key, meta, owner });
            Some(presence_diff(joins, BTreeMap::new()))
        })
    }

    /// The `presence_state` payload of a topic: `{key: {metas: [...]}}`.
    pub(super) fn presence_state(&self, topic: &str) -> Value {
        self.read(|view| {
            let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            if let Some(session) = view.state.sessions.get(topic) {
                for entry in &session.presences {
                    by_key
                        .entry(entry.key.clone())
                        .or_default()
                        .push(Value::Object(entry.meta.clone()));
                }
            }
            presence_map(by_key)
        })
    }
}

/// Forgets a topic's session and logs why it ended.
fn end_session(state: &mut State, capacity: usize, at: Duration, topic: &str, reason: SessionEnd) {
    state.sessions.remove(topic);
    state.ended_sessions += 1;
    let kind = ServerEventKind::SessionEnded {
        topic: topic.to_owned(),
        reason,
    };
    push_event(
        state,
        capacity,
        ServerEvent {
            at,
            socket: None,
            kind,
        },
    );
}

fn push_event(state: &mut State, capacity: usize, event: ServerEvent) {
    if capacity == 0 {
        return;
    }
    while state.events.len() >= capacity {
        state.events.pop_front();
    }
    state.events.push_back(event);
}

fn fan_out(state: &State, topic: &str, except: Option<SocketId>, message: &ServerMessage) -> usize {
    let Some(session) = state.sessions.get(topic) else {
        return 0;
    };
    let sockets: BTreeSet<SocketId> = session
        .members
        .iter()
        .map(|(socket, _)| *socket)
        .filter(|socket| Some(*socket) != except)
        .collect();
    sockets
        .into_iter()
        .filter_map(|socket| state.sockets.get(&socket))
        .filter(|entry| {
            entry
                .commands
                .send(SocketCommand::Deliver {
                    topic: topic.to_owned(),
                    to: Recipient::Current,
                    message: message.clone(),
                })
                .is_ok()
        })
        .count()
}

fn presence_map(by_key: BTreeMap<String, Vec<Value>>) -> Value {
    Value::Object(
        by_key
            .into_iter()
            .map(|(key, metas)| (key, json!({ "metas": metas })))
            .collect(),
    )
}

fn presence_diff(
    joins: BTreeMap<String, Vec<Value>>,
    leaves: BTreeMap<String, Vec<Value>>,
) -> Value {
    json!({ "joins": presence_map(joins), "leaves": presence_map(leaves) })
}

/// Close every member of a session that saw no inbound traffic for `timeout`.
async fn watch_session_idle(
    shared: Arc<Shared>,
    topic: String,
    generation: u64,
    timeout: Duration,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let deadline = {
            let state = shared.lock();
            match state.sessions.get(&topic) {
                Some(session) if session.generation == generation => {
                    super::deadline_after(session.last_activity, timeout)
                }
                _ => return,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = super::shut_down(&mut shutdown) => return,
        }
        let capacity = shared.config.event_log_capacity;
        let expired = shared.update(|state, at| {
            let session = match state.sessions.get(&topic) {
                Some(session) if session.generation == generation => session,
                _ => return Some(false),
            };
            if super::deadline_after(session.last_activity, timeout) > Instant::now() {
                return None;
            }
            for (socket, join_ref) in &session.members {
                if let Some(entry) = state.sockets.get(socket) {
                    let _ = entry.commands.send(SocketCommand::End {
                        topic: topic.clone(),
                        join_ref: Some(join_ref.clone()),
                        end: ChannelEnd::SessionIdle,
                    });
                }
            }
            end_session(state, capacity, at, &topic, SessionEnd::Idle);
            Some(true)
        });
        if expired.is_some() {
            return;
        }
    }
}

/// A consistent, read-only view of the server's state, for assertions and
/// [`wait_until`](super::DevServerHandle::wait_until) conditions.
pub struct ServerView<'a> {
    state: &'a State,
    started: Instant,
}

/// One connected socket.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The socket's id.
    pub id: SocketId,
    /// The decoded query parameters it connected with (`vsn` included).
    pub params: Vec<(String, String)>,
    /// The protocol it speaks.
    pub protocol: WireProtocol,
    /// The token it sent in `Sec-WebSocket-Protocol` (phoenix.js 1.8 `authToken`), decoded,
    /// as a Phoenix 1.8 socket mounted with `auth_token: true` hands it to `connect/3`.
    pub auth_token: Option<String>,
    /// Its joined channels as `(topic, join_ref)`, sorted by topic.
    pub joined: Vec<(String, String)>,
    /// Bytes queued for it and not yet written to the socket: what a client that does not
    /// read costs the server (bounded by [`with_max_outbound_bytes`]).
    ///
    /// [`with_max_outbound_bytes`]: super::DevServerConfig::with_max_outbound_bytes
    pub outbound_bytes: usize,
    /// The most bytes ever queued for it at once.
    pub outbound_peak_bytes: usize,
}

/// One topic session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The topic.
    pub topic: String,
    /// Joined channel incarnations across all sockets.
    pub members: usize,
    /// Tracked presences.
    pub presences: usize,
    /// Time since the session started.
    pub age: Duration,
}

impl ServerView<'_> {
    /// The ordered topics' logs.
    pub(super) fn ordered(&self) -> &OrderedTopics {
        &self.state.ordered
    }

    /// Connected sockets.
    pub fn socket_count(&self) -> usize {
        self.state.sockets.len()
    }

    /// Ids of the connected sockets, oldest first.
    pub fn socket_ids(&self) -> Vec<SocketId> {
        self.state.sockets.keys().copied().collect()
    }

    /// Every connected socket with its parameters and joined channels.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        self.state
            .sockets
            .iter()
            .map(|(id, entry)| SocketInfo {
                id: *id,
                params: entry.params.clone(),
                protocol: entry.protocol,
                auth_token: entry.auth_token.clone(),
                joined: entry
                    .joined
                    .iter()
                    .map(|(t, r)| (t.clone(), r.clone()))
                    .collect(),
                outbound_bytes: entry.outbound.queued(),
                outbound_peak_bytes: entry.outbound.peak(),
            })
            .collect()
    }

    /// Joined channels over all sockets.
    pub fn joined_count(&self) -> usize {
        self.state
            .sockets
            .values()
            .map(|entry| entry.joined.len())
            .sum()
    }

    /// Bytes queued for one socket and not yet written (0 if it is not connected).
    pub fn outbound_bytes(&self, socket: SocketId) -> usize {
        self.state
            .sockets
            .get(&socket)
            .map_or(0, |entry| entry.outbound.queued())
    }

    /// Joined channels on one socket (0 if it is not connected).
    pub fn joined_on(&self, socket: SocketId) -> usize {
        self.state
            .sockets
            .get(&socket)
            .map_or(0, |entry| entry.joined.len())
    }

    /// The `(topic, join_ref)` pairs joined on one socket.
    pub fn joined(&self, socket: SocketId) -> Vec<(String, String)> {
        self.state
            .sockets
            .get(&socket)
            .map_or_else(Vec::new, |entry| {
                entry
                    .joined
                    .iter()
                    .map(|(t, r)| (t.clone(), r.clone()))
                    .collect()
            })
    }

    /// Whether any socket has `topic` joined.
    pub fn is_joined(&self, topic: &str) -> bool {
        self.state
            .sockets
            .values()
            .any(|entry| entry.joined.contains_key(topic))
    }

    /// The join_refs under which `topic` is joined, over all sockets.
    pub fn join_refs(&self, topic: &str) -> Vec<String> {
        self.state
            .sockets
            .values()
            .filter_map(|entry| entry.joined.get(topic).cloned())
            .collect()
    }

    /// Members of `topic`'s session (0 if there is none).
    pub fn members(&self, topic: &str) -> usize {
        self.state
            .sessions
            .get(topic)
            .map_or(0, |session| session.members.len())
    }

    /// Live sessions.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.state
            .sessions
            .iter()
            .map(|(topic, session)| SessionInfo {
                topic: topic.clone(),
                members: session.members.len(),
                presences: session.presences.len(),
                age: session.started_at.elapsed(),
            })
            .collect()
    }

    /// Whether `topic` has a live session.
    pub fn has_session(&self, topic: &str) -> bool {
        self.state.sessions.contains_key(topic)
    }

    /// Sessions ended so far (empty after the grace, or idle).
    pub fn ended_sessions(&self) -> u64 {
        self.state.ended_sessions
    }

    /// The event log, oldest first (bounded by the configured capacity).
    pub fn events(&self) -> impl Iterator<Item = &ServerEvent> + '_ {
        self.state.events.iter()
    }

    /// Inbound messages on `topic` with `event`, over all sockets.
    pub fn inbound(&self, topic: &str, event: &str) -> Vec<&Message> {
        self.events()
            .filter_map(|e| match &e.kind {
                ServerEventKind::Inbound(msg) if msg.topic == topic && msg.event == event => {
                    Some(msg)
                }
                _ => None,
            })
            .collect()
    }

    /// How many inbound messages on `topic` with `event` the server received.
    pub fn inbound_count(&self, topic: &str, event: &str) -> usize {
        self.inbound(topic, event).len()
    }

    /// How each channel incarnation of `topic` ended, in order.
    pub fn channel_ends(&self, topic: &str) -> Vec<(String, ChannelEnd)> {
        self.events()
            .filter_map(|e| match &e.kind {
                ServerEventKind::ChannelEnded {
                    topic: t,
                    join_ref,
                    end,
                } if t == topic => Some((join_ref.clone(), *end)),
                _ => None,
            })
            .collect()
    }

    /// Malformed frames received from clients so far.
    pub fn malformed_count(&self) -> u64 {
        self.state.malformed
    }

    /// Whether heartbeats are currently left unanswered.
    pub fn heartbeats_muted(&self) -> bool {
        self.state.mute_heartbeats
    }

    /// Time since the server started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A short human-readable summary (sockets, joined channels, sessions, last events), for
    /// failure messages.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{} socket(s)", self.socket_count());
        for info in self.sockets() {
            let _ = write!(out, "; {} joined {:?}", info.id, info.joined);
        }
        let _ = write!(
            out,
            "; sessions {:?}",
            self.state.sessions.keys().collect::<Vec<_>>()
        );
        // Events can carry megabytes of payload; a failure message needs their gist.
        let recent: Vec<String> = self
            .state
            .events
            .iter()
            .rev()
            .take(8)
            .map(|event| clip(format!("{event:?}"), SUMMARY_EVENT_CHARS))
            .collect();
        let _ = write!(out, "; last events (newest first) {recent:?}");
        out
    }
}

/// Longest an event is shown in a [`ServerView::summary`].
const SUMMARY_EVENT_CHARS: usize = 240;

/// `text` cut to at most `max` characters, marked when cut.
fn clip(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}
