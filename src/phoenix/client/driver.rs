//! The client's one task: it waits on the WebSocket, the handles' commands
//! and the next timer, turns each into an engine input, and performs the
//! engine's effects. It keeps transport state only (the socket, heartbeats,
//! reconnect backoff, refs awaiting replies); every lifecycle decision is the
//! engine's.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::engine::{
    Effect, Engine, Event, JoinOptions, JoinRef, JoinReply, Output, RoomId, Route, SubscriberId,
    Switched, TopicId, TopicStatus,
};
use crate::phoenix::client::config::ClientConfig;
use crate::phoenix::client::error::{ConnectError, PushError, SubscribeError};
use crate::phoenix::client::inbox::InboxSender;
use crate::phoenix::client::push::{NewPush, PushBook};
use crate::phoenix::client::resources::SettleError;
use crate::phoenix::client::room::{RoomEvent, RoomState};
use crate::phoenix::client::{
    ChannelMessage, ClientStats, ConnectionState, JoinParams, SocketStats, TopicState,
};
use crate::phoenix::codec::{
    event, websocket_url, Codec, FrameRef, Message, Reply, ReplyStatus, ServerMessage,
    PHOENIX_TOPIC,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, ConnectError>> + Send>>;

/// Unanswered joins of destroyed incarnations remembered for their late reply.
const UNANSWERED_KEPT: usize = 1024;

/// How long a closing socket may take to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A request from a handle.
pub(crate) enum Command {
    Subscribe {
        topic: Arc<str>,
        id: SubscriberId,
        params: JoinParams,
        options: JoinOptions,
        sink: InboxSender<ChannelMessage>,
        reply: oneshot::Sender<Result<watch::Receiver<TopicState>, SubscribeError>>,
    },
    Unsubscribe {
        topic: Arc<str>,
        id: SubscriberId,
    },
    OpenRoom {
        id: RoomId,
        name: Arc<str>,
        sink: InboxSender<RoomEvent>,
        state: watch::Sender<RoomState>,
    },
    Switch {
        room: RoomId,
        topic: Arc<str>,
        params: JoinParams,
        options: JoinOptions,
        reply: oneshot::Sender<Result<Switched, SubscribeError>>,
    },
    CloseRoom {
        room: RoomId,
    },
    Push {
        target: PushTarget,
        push: NewPush,
    },
    Settled {
        topic: Arc<str>,
        join_ref: JoinRef,
        result: Result<(), SettleError>,
    },
    Stats {
        reply: oneshot::Sender<ClientStats>,
    },
    CloseAll {
        reply: oneshot::Sender<()>,
    },
    Reconnect,
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

/// Where a push goes.
pub(crate) enum PushTarget {
    Topic(Arc<str>),
    /// The topic the room shows when the push reaches the task.
    Room(RoomId),
}

/// What the task keeps per topic: who gets its messages, its params, and the
/// state its subscriptions observe.
struct TopicEntry {
    params: JoinParams,
    state: watch::Sender<TopicState>,
    subscribers: Vec<(SubscriberId, InboxSender<ChannelMessage>)>,
    /// Rooms that show this topic.
    rooms: Vec<RoomId>,
}

struct RoomEntry {
    name: Arc<str>,
    sink: InboxSender<RoomEvent>,
    state: watch::Sender<RoomState>,
    shown: Option<Arc<str>>,
}

/// Why the socket went away.
enum Lost {
    Closed { code: u16, reason: String },
    Failed(String),
    Ended,
    HeartbeatTimeout,
}

pub(crate) struct Driver {
    engine: Engine,
    config: Arc<ClientConfig>,
    codec: Codec,
    endpoint: String,
    shown_endpoint: String,
    commands: mpsc::UnboundedReceiver<Command>,
    /// For settling tasks: a weak sender, so the task ends when every handle
    /// is gone.
    weak: mpsc::WeakUnboundedSender<Command>,
    connection: watch::Sender<ConnectionState>,
    first: Option<oneshot::Sender<Result<(), ConnectError>>>,

    ws: Option<Ws>,
    connecting: Option<Connecting>,
    reconnect_at: Option<Instant>,
    reconnect_failures: u32,
    heartbeat_at: Option<Instant>,
    pending_heartbeat: Option<(u64, Instant)>,
    /// Joins sent and not answered, by ref (= join_ref), until their reply or
    /// the socket goes down, so a late reply still reaches the engine (which
    /// reports it stale).
    sent_joins: HashMap<u64, Arc<str>>,
    /// Refs of destroyed incarnations whose join reply never came, oldest
    /// first; only the last [`UNANSWERED_KEPT`] are kept.
    unanswered: VecDeque<u64>,

    topics: HashMap<Arc<str>, TopicEntry>,
    rooms: HashMap<RoomId, RoomEntry>,
    pushes: PushBook,
    settling: HashMap<JoinRef, AbortHandle>,
    /// The last failure detail per topic (a join error's reason, a settle
    /// error), for the errors the handles see.
    details: HashMap<Arc<str>, Arc<str>>,

    out: Vec<crate::phoenix::codec::Frame>,
    needs_flush: bool,
    touched: Vec<Arc<str>>,
    done: Vec<oneshot::Sender<()>>,
    disconnects: Vec<oneshot::Sender<()>>,
    stats: SocketStats,
    rng: u64,
    exit: bool,
}

impl Driver {
    pub(crate) fn new(
        endpoint: String,
        shown_endpoint: String,
        config: Arc<ClientConfig>,
        commands: mpsc::UnboundedReceiver<Command>,
        weak: mpsc::WeakUnboundedSender<Command>,
        connection: watch::Sender<ConnectionState>,
        first: oneshot::Sender<Result<(), ConnectError>>,
    ) -> Result<Driver, ConnectError> {
        let engine = Engine::new(config.engine.clone(), Instant::now().into_std())
            .map_err(|e| ConnectError::Config(e.into()))?;
        Ok(Driver {
            engine,
            codec: Codec::new().with_max_frame_size(config.max_frame_size),
            config,
            endpoint,
            shown_endpoint,
            commands,
            weak,
            connection,
            first: Some(first),
            ws: None,
            connecting: None,
            reconnect_at: None,
            reconnect_failures: 0,
            heartbeat_at: None,
            pending_heartbeat: None,
            sent_joins: HashMap::new(),
            unanswered: VecDeque::new(),
            topics: HashMap::new(),
            rooms: HashMap::new(),
            pushes: PushBook::default(),
            settling: HashMap::new(),
            details: HashMap::new(),
            out: Vec::new(),
            needs_flush: false,
            touched: Vec::new(),
            done: Vec::new(),
            disconnects: Vec::new(),
            stats: SocketStats::default(),
            rng: random_seed(),
            exit: false,
        })
    }

    /// The task: runs until every handle is gone, `disconnect` is called, or
    /// the first connection fails.
    pub(crate) async fn run(mut self) {
        self.start_connecting();
        loop {
            let wake = self.next_wake();
            tokio::select! {
                command = self.commands.recv() => {
                    let now = Instant::now();
                    match command {
                        Some(command) => self.on_command(command, now),
                        // Every handle is gone.
                        None => break,
                    }
                    self.process();
                }
                item = next_frame(&mut self.ws) => {
                    let now = Instant::now();
                    self.on_ws(item, now);
                    self.process();
                }
                result = progress(&mut self.connecting) => {
                    let now = Instant::now();
                    self.on_connected(result, now);
                    self.process();
                }
                () = sleep_until_some(wake) => {
                    let now = Instant::now();
                    self.on_timers(now);
                    self.process();
                }
            }
            if self.exit {
                // The first connection failed: nothing was ever joined.
                return;
            }
            if !self.disconnects.is_empty() {
                break;
            }
            self.flush_out().await;
        }
        self.shut_down().await;
        for reply in self.disconnects.drain(..) {
            let _ = reply.send(());
        }
    }

    // --- inputs -------------------------------------------------------------------------

    fn on_command(&mut self, command: Command, now: Instant) {
        let at = now.into_std();
        match command {
            Command::Subscribe {
                topic,
                id,
                params,
                options,
                sink,
                reply,
            } => match self.engine.subscribe(&topic, id, &options, at) {
                Ok(_) => {
                    let entry = self.entry(&topic, params);
                    entry.subscribers.push((id, sink));
                    let state = entry.state.subscribe();
                    self.touched.push(Arc::clone(&topic));
                    tracing::debug!(topic = %topic, subscriber = id.0, "subscribed");
                    if reply.send(Ok(state)).is_err() {
                        // The caller gave up before getting its handle.
                        self.unsubscribe(topic, id, now);
                    }
                }
                Err(error) => {
                    let _ = reply.send(Err(SubscribeError::Refused(error)));
                }
            },
            Command::Unsubscribe { topic, id } => self.unsubscribe(topic, id, now),
            Command::OpenRoom {
                id,
                name,
                sink,
                state,
            } => {
                self.rooms.insert(
                    id,
                    RoomEntry {
                        name,
                        sink,
                        state,
                        shown: None,
                    },
                );
            }
            Command::Switch {
                room,
                topic,
                params,
                options,
                reply,
            } => {
                if !self.rooms.contains_key(&room) {
                    let _ = reply.send(Err(SubscribeError::Closed));
                    return;
                }
                match self.engine.switch(room, &topic, &options, at) {
                    Ok(switched) => {
                        self.entry(&topic, params);
                        self.touched.push(Arc::clone(&topic));
                        if let Some(r) = self.rooms.get(&room) {
                            tracing::debug!(room = %r.name, topic = %topic, ?switched, "switch");
                            r.state.send_modify(|s| s.failed = None);
                        }
                        self.refresh_room(room);
                        let _ = reply.send(Ok(switched));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(SubscribeError::Refused(error)));
                    }
                }
            }
            Command::CloseRoom { room } => {
                self.engine.close_room(room, at);
                if let Some(r) = self.rooms.remove(&room) {
                    if let Some(shown) = &r.shown {
                        if let Some(entry) = self.topics.get_mut(&**shown) {
                            entry.rooms.retain(|x| *x != room);
                        }
                    }
                    r.state.send_modify(|s| s.closed = true);
                }
            }
            Command::Push { target, push } => self.on_push(target, push, now),
            Command::Settled {
                topic,
                join_ref,
                result,
            } => {
                self.settling.remove(&join_ref);
                match result {
                    Ok(()) => self.engine.handle_settled(&*topic, join_ref, at),
                    Err(error) => {
                        if let Some(reason) = error.into_reason() {
                            self.details.insert(Arc::clone(&topic), reason);
                        }
                        self.engine.handle_settle_failed(&*topic, join_ref, at)
                    }
                };
            }
            Command::Stats { reply } => {
                let (pushes_buffered, pushes_in_flight) = self.pushes.counts();
                let _ = reply.send(ClientStats {
                    engine: self.engine.stats(),
                    socket: self.stats.clone(),
                    pushes_buffered,
                    pushes_in_flight,
                });
            }
            Command::CloseAll { reply } => {
                tracing::info!("close all");
                self.engine.close_all(at);
                self.close_rooms();
                self.done.push(reply);
            }
            Command::Reconnect => {
                if self.ws.is_none() && self.connecting.is_none() {
                    self.reconnect_failures = 0;
                    self.reconnect_at = None;
                    self.start_connecting();
                }
            }
            Command::Disconnect { reply } => {
                tracing::info!("disconnect");
                self.disconnects.push(reply);
            }
        }
    }

    fn unsubscribe(&mut self, topic: Arc<str>, id: SubscriberId, now: Instant) {
        self.engine.unsubscribe(&topic, id, now.into_std());
        if let Some(entry) = self.topics.get_mut(&*topic) {
            entry.subscribers.retain(|(s, _)| *s != id);
        }
        tracing::debug!(topic = %topic, subscriber = id.0, "unsubscribed");
        self.touched.push(topic);
    }

    fn on_push(&mut self, target: PushTarget, push: NewPush, now: Instant) {
        let topic = match target {
            PushTarget::Topic(topic) => topic,
            PushTarget::Room(room) => match self.rooms.get(&room).and_then(|r| r.shown.clone()) {
                Some(topic) => topic,
                None => {
                    let _ = push.reply.send(Err(PushError::NothingShown));
                    return;
                }
            },
        };
        if !self.topics.contains_key(&*topic) {
            let _ = push.reply.send(Err(PushError::Closed));
            return;
        }
        if push.deadline <= now {
            let after = push.timeout;
            let _ = push.reply.send(Err(PushError::Timeout { after }));
            return;
        }
        if let Some(TopicStatus::Failed(reason)) = self.engine.topic(&topic).map(|t| t.status) {
            let _ = push
                .reply
                .send(Err(PushError::TopicFailed { topic, reason }));
            return;
        }
        let msg_ref = self.engine.mint_ref();
        match self.engine.active_join_ref(&topic) {
            Some(join_ref) if self.ws.is_some() => {
                let message = self.pushes.send(msg_ref, topic, push, join_ref);
                self.send_push(msg_ref, &message);
            }
            _ => self.pushes.buffer(
                msg_ref,
                topic,
                push,
                self.config.push_buffer,
                self.config.overflow,
            ),
        }
    }

    fn on_ws(&mut self, item: Option<Result<WsMessage, WsError>>, now: Instant) {
        match item {
            Some(Ok(message)) => {
                if let Some(frame) = FrameRef::from_ws_message(&message) {
                    self.stats.frames_in += 1;
                    self.stats.bytes_in += frame.len() as u64;
                    match self.codec.decode_server_frame(frame) {
                        Ok(decoded) => self.on_server_message(decoded, now),
                        Err(error) => {
                            self.stats.decode_errors += 1;
                            tracing::warn!(%error, "undecodable frame from the server, ignored");
                        }
                    }
                    return;
                }
                match message {
                    WsMessage::Close(frame) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| {
                            (u16::from(f.code), f.reason.as_str().to_owned())
                        });
                        self.socket_lost(now, Lost::Closed { code, reason });
                    }
                    // tungstenite queues the pong; it goes out with the next flush.
                    WsMessage::Ping(_) => self.needs_flush = true,
                    _ => {}
                }
            }
            Some(Err(error)) => self.socket_lost(now, Lost::Failed(error.to_string())),
            None => self.socket_lost(now, Lost::Ended),
        }
    }

    fn on_server_message(&mut self, message: ServerMessage, now: Instant) {
        match message {
            ServerMessage::Reply(reply) => self.on_reply(reply, now),
            ServerMessage::Message(message) => {
                let close = message.event == event::CLOSE;
                if close || message.event == event::ERROR {
                    // phx_close / phx_error carry the incarnation's join_ref;
                    // the engine decides whether it is the current one.
                    let Some(join_ref) = message.join_ref.as_deref().and_then(JoinRef::parse)
                    else {
                        self.stats.dropped_messages += 1;
                        return;
                    };
                    let at = now.into_std();
                    if close {
                        self.engine.handle_close(&message.topic, join_ref, at);
                    } else {
                        self.engine.handle_error(&message.topic, join_ref, at);
                    }
                    return;
                }
                self.deliver(message);
            }
        }
    }

    fn on_reply(&mut self, reply: Reply, now: Instant) {
        let Some(msg_ref) = reply.msg_ref.as_deref().and_then(|r| r.parse::<u64>().ok()) else {
            self.stats.unmatched_replies += 1;
            return;
        };
        if let Some((pending, sent_at)) = self.pending_heartbeat {
            if pending == msg_ref && reply.topic == PHOENIX_TOPIC {
                self.pending_heartbeat = None;
                self.stats.last_heartbeat_rtt = Some(now.saturating_duration_since(sent_at));
                return;
            }
        }
        if self
            .sent_joins
            .get(&msg_ref)
            .is_some_and(|topic| **topic == *reply.topic)
        {
            let topic = self.sent_joins.remove(&msg_ref).expect("present");
            let join_ref = JoinRef::new(msg_ref).expect("a sent join ref is not zero");
            let answer = match reply.status {
                ReplyStatus::Ok => JoinReply::Ok,
                _ => {
                    if let Some(reason) = reply_reason(&reply) {
                        self.details.insert(Arc::clone(&topic), reason);
                    }
                    JoinReply::Error
                }
            };
            self.engine
                .handle_join_reply(&topic, join_ref, answer, now.into_std());
            return;
        }
        if !self.pushes.resolve(msg_ref, reply) {
            self.stats.unmatched_replies += 1;
        }
    }

    /// A push or broadcast: to resources while it belongs to the current
    /// incarnation, to subscribers and rooms only if the engine accepts it.
    fn deliver(&mut self, message: Message) {
        let join_ref = match message.join_ref.as_deref() {
            None => None,
            Some(text) => match JoinRef::parse(text) {
                Some(join_ref) => Some(join_ref),
                None => {
                    self.stats.dropped_messages += 1;
                    return;
                }
            },
        };
        let route = self.engine.route(&message.topic, join_ref);
        let Some((topic, entry)) = self.topics.get_key_value(message.topic.as_str()) else {
            self.stats.dropped_messages += 1;
            return;
        };
        let (current, accepted) = match route {
            Route::Deliver { join_ref, .. } => (join_ref, true),
            Route::ResourcesOnly { join_ref, .. } => (join_ref, false),
            _ => {
                self.stats.dropped_messages += 1;
                tracing::trace!(topic = %topic, event = %message.event, "message of no current incarnation dropped");
                return;
            }
        };
        let message = ChannelMessage {
            topic: Arc::clone(topic),
            event: message.event,
            payload: message.payload,
            join_ref,
        };
        self.config.resources.on_message(current, &message);
        if !accepted {
            self.stats.dropped_messages += 1;
            return;
        }
        let receivers = entry.subscribers.len() + entry.rooms.len();
        let mut message = Some(message);
        let mut take = |i: usize| {
            if i + 1 == receivers {
                message.take().expect("moved into the last receiver only")
            } else {
                message.clone().expect("still here")
            }
        };
        let mut missed = 0;
        let mut i = 0;
        for (_, sink) in &entry.subscribers {
            if sink.send_data(take(i)).is_full() {
                missed += 1;
            }
            i += 1;
        }
        for room in &entry.rooms {
            let m = take(i);
            i += 1;
            if let Some(r) = self.rooms.get(room) {
                if r.sink.send_data(RoomEvent::Message(m)).is_full() {
                    missed += 1;
                }
            }
        }
        self.stats.missed_messages += missed;
    }

    fn on_connected(&mut self, result: Result<Ws, ConnectError>, now: Instant) {
        self.connecting = None;
        match result {
            Ok(ws) => {
                self.ws = Some(ws);
                self.stats.connects += 1;
                if self.stats.connects > 1 {
                    self.stats.reconnects += 1;
                }
                self.reconnect_failures = 0;
                self.pending_heartbeat = None;
                self.heartbeat_at = Some(now + self.config.heartbeat_interval);
                self.connection.send_replace(ConnectionState::Connected);
                tracing::info!(connects = self.stats.connects, "connected");
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
                self.engine.handle_socket_up(now.into_std());
            }
            Err(error) => {
                self.stats.connect_failures += 1;
                if let Some(first) = self.first.take() {
                    let _ = first.send(Err(error));
                    self.exit = true;
                    return;
                }
                tracing::warn!(%error, "connection attempt failed");
                self.schedule_reconnect(now);
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        self.engine.handle_timeout(now.into_std());
        self.pushes.expire(now);
        if self.heartbeat_at.is_some_and(|at| at <= now) {
            self.heartbeat(now);
        }
        if self.reconnect_at.is_some_and(|at| at <= now) {
            self.reconnect_at = None;
            self.start_connecting();
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        if self.ws.is_none() {
            self.heartbeat_at = None;
            return;
        }
        if self.pending_heartbeat.is_some() {
            self.stats.heartbeat_timeouts += 1;
            tracing::warn!("heartbeat unanswered: the link is dead, reconnecting");
            self.socket_lost(now, Lost::HeartbeatTimeout);
            return;
        }
        let msg_ref = self.engine.mint_ref();
        self.pending_heartbeat = Some((msg_ref, now));
        self.heartbeat_at = Some(now + self.config.heartbeat_interval);
        self.stats.heartbeats += 1;
        self.send(&Message::heartbeat(msg_ref.to_string()));
    }

    // --- the socket ---------------------------------------------------------------------

    fn start_connecting(&mut self) {
        let mut params = self.config.params.clone();
        if let Some(provider) = &self.config.params_provider {
            params.extend(provider());
        }
        let endpoint = self.shown_endpoint.clone();
        let timeout = self.config.connect_timeout;
        let url = websocket_url(&self.endpoint, params.iter().map(|(k, v)| (k, v)));
        let max = self.config.max_frame_size;
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        self.connection.send_replace(ConnectionState::Connecting);
        tracing::debug!("connecting");
        self.connecting = Some(Box::pin(async move {
            let url = url?;
            let connect = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true);
            match tokio::time::timeout(timeout, connect).await {
                Ok(Ok((ws, _response))) => Ok(ws),
                Ok(Err(source)) => Err(ConnectError::Connect {
                    endpoint,
                    source: Box::new(source),
                }),
                Err(_) => Err(ConnectError::Timeout {
                    endpoint,
                    after: timeout,
                }),
            }
        }));
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        let base = self.config.reconnect_delay(self.reconnect_failures);
        let max_jitter = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX) / 1000
            * u64::from(self.config.reconnect_jitter_permille);
        let jitter = if max_jitter == 0 {
            0
        } else {
            self.next_random() % (max_jitter + 1)
        };
        let delay = base + Duration::from_nanos(jitter);
        self.reconnect_failures = self.reconnect_failures.saturating_add(1);
        self.reconnect_at = Some(now + delay);
        tracing::info!(
            attempt = self.reconnect_failures,
            ?delay,
            "reconnect scheduled"
        );
        self.connection.send_replace(ConnectionState::Reconnecting {
            attempt: self.reconnect_failures,
            delay,
        });
    }

    fn socket_lost(&mut self, now: Instant, lost: Lost) {
        let Some(mut ws) = self.ws.take() else {
            return;
        };
        self.out.clear();
        self.needs_flush = false;
        self.pending_heartbeat = None;
        self.heartbeat_at = None;
        self.sent_joins.clear();
        self.unanswered.clear();
        match &lost {
            Lost::HeartbeatTimeout => {
                // As phoenix.js: close normally, then reconnect on our own.
                tokio::spawn(async move {
                    let frame = CloseFrame {
                        code: CloseCode::Normal,
                        reason: "heartbeat timeout".into(),
                    };
                    let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(Some(frame))).await;
                });
            }
            Lost::Closed { .. } => {
                // Let tungstenite send its queued close reply.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(None)).await;
                });
            }
            Lost::Failed(_) | Lost::Ended => drop(ws),
        }
        self.engine.handle_socket_down(now.into_std());
        match lost {
            Lost::Closed { code: 1000, reason } => {
                tracing::info!(code = 1000, %reason, "the server closed the socket normally; not reconnecting");
                self.connection
                    .send_replace(ConnectionState::Disconnected { code: 1000, reason });
            }
            Lost::Closed { code, reason } => {
                tracing::warn!(code, %reason, "the server closed the socket");
                self.schedule_reconnect(now);
            }
            Lost::Failed(error) => {
                tracing::warn!(%error, "socket failed");
                self.schedule_reconnect(now);
            }
            Lost::Ended => {
                tracing::warn!("socket ended without a close frame");
                self.schedule_reconnect(now);
            }
            Lost::HeartbeatTimeout => self.schedule_reconnect(now),
        }
    }

    fn send(&mut self, message: &Message) -> bool {
        match self.codec.encode_client_message(message) {
            Ok(frame) => {
                self.out.push(frame);
                true
            }
            Err(error) => {
                self.stats.encode_errors += 1;
                tracing::error!(%error, topic = %message.topic, event = %message.event, "message not encodable, not sent");
                false
            }
        }
    }

    fn send_push(&mut self, msg_ref: u64, message: &Message) {
        match self.codec.encode_client_message(message) {
            Ok(frame) => self.out.push(frame),
            Err(error) => {
                self.stats.encode_errors += 1;
                self.pushes.fail(msg_ref, PushError::Encode(error));
            }
        }
    }

    /// Writes the frames queued by the last input.
    async fn flush_out(&mut self) {
        if self.out.is_empty() && !self.needs_flush {
            self.release_done();
            return;
        }
        self.needs_flush = false;
        let Some(ws) = self.ws.as_mut() else {
            self.out.clear();
            self.release_done();
            return;
        };
        let frames = std::mem::take(&mut self.out);
        let stats = &mut self.stats;
        let write = async {
            for frame in frames {
                stats.frames_out += 1;
                stats.bytes_out += frame.len() as u64;
                ws.feed(frame.into_ws_message()).await?;
            }
            ws.flush().await
        };
        // A peer that stops reading for a whole heartbeat interval is dead.
        let result = tokio::time::timeout(self.config.heartbeat_interval, write).await;
        let now = Instant::now();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                self.socket_lost(now, Lost::Failed(error.to_string()));
                self.process();
            }
            Err(_) => {
                self.socket_lost(now, Lost::Failed("write stalled".to_owned()));
                self.process();
            }
        }
        self.out.clear();
        self.release_done();
    }

    fn release_done(&mut self) {
        for reply in self.done.drain(..) {
            let _ = reply.send(());
        }
    }

    // --- outputs ------------------------------------------------------------------------

    /// Drains the engine's outputs: performs effects, reports events, then
    /// publishes the state of every topic they touched and flushes the push
    /// buffers of those now active.
    fn process(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Effect(effect) => self.perform(effect),
                Output::Event(event) => self.report(event),
            }
        }
        let mut touched = std::mem::take(&mut self.touched);
        for topic in touched.drain(..) {
            let Some(entry) = self.topics.get(&*topic) else {
                continue;
            };
            let state = self
                .engine
                .topic(&topic)
                .map_or(TopicState::Closed, |info| TopicState::Managed(info.status));
            entry.state.send_if_modified(|s| {
                let changed = *s != state;
                *s = state;
                changed
            });
            if self.pushes.has_buffered(&topic) {
                if let Some(join_ref) = self.engine.active_join_ref(&topic) {
                    if self.ws.is_some() {
                        for (msg_ref, message) in self.pushes.flush(&topic, join_ref) {
                            self.send_push(msg_ref, &message);
                        }
                    }
                }
            }
        }
        self.touched = touched;
    }

    /// The name of a topic an output names (valid until the next input).
    fn name(&self, topic: TopicId) -> Arc<str> {
        Arc::from(self.engine.topic_name(topic).unwrap_or_default())
    }

    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Join { topic, join_ref } => {
                let params = self.engine.params(topic).cloned();
                let topic = self.name(topic);
                self.config.resources.create(&topic, join_ref);
                let payload = match self.topics.get(&*topic) {
                    Some(entry) => entry.params.resolve(),
                    None => params
                        .as_deref()
                        .and_then(|text| serde_json::from_str(text).ok())
                        .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
                };
                tracing::debug!(topic = %topic, %join_ref, "join");
                if self.send(&Message::join(join_ref.to_string(), &*topic, payload)) {
                    self.sent_joins.insert(join_ref.get(), topic);
                }
            }
            Effect::StartSettling { topic, join_ref } => {
                let topic = self.name(topic);
                tracing::debug!(topic = %topic, %join_ref, "settling");
                let settled = self
                    .config
                    .resources
                    .wait_for_settled(Arc::clone(&topic), join_ref);
                let commands = self.weak.clone();
                let task = tokio::spawn(async move {
                    let result = settled.await;
                    if let Some(commands) = commands.upgrade() {
                        let _ = commands.send(Command::Settled {
                            topic,
                            join_ref,
                            result,
                        });
                    }
                });
                self.settling.insert(join_ref, task.abort_handle());
            }
            Effect::AbortSettling { topic, join_ref } => {
                tracing::debug!(topic = %self.name(topic), %join_ref, "settling aborted");
                if let Some(task) = self.settling.remove(&join_ref) {
                    task.abort();
                }
            }
            Effect::End {
                topic,
                join_ref,
                leave,
                removed,
            } => {
                let topic = self.name(topic);
                if leave {
                    let msg_ref = self.engine.mint_ref();
                    tracing::debug!(topic = %topic, %join_ref, "leave");
                    self.send(&Message::leave(
                        join_ref.to_string(),
                        msg_ref.to_string(),
                        &*topic,
                    ));
                }
                self.config.resources.destroy(&topic, join_ref);
                if self.sent_joins.contains_key(&join_ref.get()) {
                    self.unanswered.push_back(join_ref.get());
                    while self.unanswered.len() > UNANSWERED_KEPT {
                        if let Some(old) = self.unanswered.pop_front() {
                            self.sent_joins.remove(&old);
                        }
                    }
                }
                // No reply can come for pushes of an incarnation that is gone.
                self.pushes
                    .fail_in_flight(&topic, join_ref, PushError::ChannelLost);
                if removed {
                    self.topic_removed(topic);
                }
            }
        }
    }

    fn topic_removed(&mut self, topic: Arc<str>) {
        tracing::debug!(topic = %topic, "topic removed");
        self.pushes.fail_buffered(&topic, || PushError::Closed);
        if let Some(entry) = self.topics.remove(&*topic) {
            entry.state.send_replace(TopicState::Closed);
        }
    }

    fn report(&mut self, event: Event) {
        match event {
            Event::PhaseChanged {
                topic,
                join_ref,
                from,
                to,
                trigger,
            } => {
                let topic = self.name(topic);
                tracing::debug!(topic = %topic, %join_ref, from = ?from, phase = %to, ?trigger, "phase");
                self.touched.push(topic);
            }
            Event::Retrying {
                topic,
                attempt,
                delay,
                reason,
            } => {
                let topic = self.name(topic);
                tracing::info!(topic = %topic, attempt, ?delay, ?reason, "retrying");
                self.touched.push(topic);
            }
            Event::TopicFailed { topic, reason } => {
                let topic = self.name(topic);
                let detail = self.details.get(&topic);
                tracing::warn!(topic = %topic, ?reason, ?detail, "topic failed");
                self.pushes
                    .fail_buffered(&topic, || PushError::TopicFailed {
                        topic: Arc::clone(&topic),
                        reason,
                    });
                self.touched.push(topic);
            }
            Event::TopicRemoved { topic } => {
                let topic = self.name(topic);
                self.details.remove(&topic);
                self.topic_removed(topic);
            }
            Event::RoomShows { room, topic } => {
                let topic = self.name(topic);
                self.room_shows(room, topic)
            }
            Event::RoomSwitchFailed {
                room,
                topic,
                reason,
            } => {
                let topic = self.name(topic);
                if let Some(r) = self.rooms.get(&room) {
                    tracing::warn!(room = %r.name, topic = %topic, ?reason, "room switch failed");
                    r.sink.send_control(RoomEvent::SwitchFailed {
                        topic: Arc::clone(&topic),
                        reason,
                    });
                    r.state
                        .send_modify(|s| s.failed = Some((Arc::clone(&topic), reason)));
                }
                self.refresh_room(room);
            }
            Event::Ignored {
                topic,
                join_ref,
                input,
                reason,
            } => {
                self.stats.ignored_inputs += 1;
                let topic = topic.map(|t| self.name(t));
                tracing::debug!(topic = ?topic, %join_ref, ?input, ?reason, "ignored");
            }
        }
    }

    fn room_shows(&mut self, room: RoomId, topic: Arc<str>) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        tracing::debug!(room = %r.name, topic = %topic, "room shows");
        let old = r.shown.replace(Arc::clone(&topic));
        r.sink.send_control(RoomEvent::Shows {
            topic: Arc::clone(&topic),
        });
        r.state.send_modify(|s| {
            s.shown = Some(Arc::clone(&topic));
            s.failed = None;
        });
        if let Some(old) = old {
            if let Some(entry) = self.topics.get_mut(&*old) {
                entry.rooms.retain(|x| *x != room);
            }
        }
        if let Some(entry) = self.topics.get_mut(&*topic) {
            entry.rooms.push(room);
        }
        self.refresh_room(room);
    }

    fn refresh_room(&self, room: RoomId) {
        let (Some(r), Some(info)) = (self.rooms.get(&room), self.engine.room(room)) else {
            return;
        };
        let shown = info.shown.map(Arc::from);
        let pending = info.pending.map(Arc::from);
        r.state.send_if_modified(|s| {
            let changed = s.shown != shown || s.pending != pending;
            s.shown = shown;
            s.pending = pending;
            changed
        });
    }

    fn close_rooms(&mut self) {
        for (_, r) in self.rooms.drain() {
            r.state.send_modify(|s| s.closed = true);
        }
        for entry in self.topics.values_mut() {
            entry.rooms.clear();
        }
    }

    fn entry(&mut self, topic: &Arc<str>, params: JoinParams) -> &mut TopicEntry {
        let engine = &self.engine;
        self.topics.entry(Arc::clone(topic)).or_insert_with(|| {
            let state = engine
                .topic(topic)
                .map_or(TopicState::Closed, |info| TopicState::Managed(info.status));
            TopicEntry {
                params,
                state: watch::Sender::new(state),
                subscribers: Vec::new(),
                rooms: Vec::new(),
            }
        })
    }

    fn next_wake(&mut self) -> Option<Instant> {
        [
            self.engine.poll_timeout().map(Instant::from_std),
            self.pushes.next_deadline(),
            self.heartbeat_at,
            self.reconnect_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn next_random(&mut self) -> u64 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Leaves everything, closes the socket, and tells every handle.
    async fn shut_down(&mut self) {
        let now = Instant::now();
        tracing::info!("shutting down");
        self.engine.close_all(now.into_std());
        self.process();
        self.close_rooms();
        self.flush_out().await;
        if let Some(mut ws) = self.ws.take() {
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "client disconnect".into(),
            };
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(Some(frame))).await;
        }
        self.engine.handle_socket_down(now.into_std());
        self.process();
        self.pushes.fail_all(PushError::Closed);
        for (_, entry) in self.topics.drain() {
            entry.state.send_replace(TopicState::Closed);
        }
        for (_, task) in self.settling.drain() {
            task.abort();
        }
        self.connection.send_replace(ConnectionState::Closed);
        self.release_done();
    }
}

/// The reason of an error reply, for the engine's report.
fn reply_reason(reply: &Reply) -> Option<Arc<str>> {
    if let Some(reason) = reply.reason() {
        return Some(Arc::from(reason));
    }
    match reply.response.as_json() {
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(value) => Some(Arc::from(value.to_string())),
        None => None,
    }
}

async fn next_frame(ws: &mut Option<Ws>) -> Option<Result<WsMessage, WsError>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn progress(connecting: &mut Option<Connecting>) -> Result<Ws, ConnectError> {
    match connecting {
        Some(connecting) => connecting.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A seed for reconnect jitter, different in every process.
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}
