//! The client's task: IO only. It moves bytes between the socket and the
//! [`Session`](crate::session::Session), sleeps until the session's next deadline, and maps the
//! session's ids to the application's queues, watches and oneshots. Every
//! protocol and lifecycle decision is the session's.
//!
//! Reading, serving commands and writing never wait for each other: frames
//! go to a writer task through a queue bounded in bytes, so a server that
//! stops reading cannot stop the client from reading, answering `stats()`,
//! subscribing or closing.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::codec::{FrameRef, Payload, Reply};
use crate::engine::{JoinRef, RoomId, SubscriberId, Switched};
use crate::phoenix::client::config::ClientConfig;
use crate::phoenix::client::error::ConnectError;
use crate::phoenix::client::inbox::InboxSender;
use crate::phoenix::client::recording::RecordedSession;
use crate::phoenix::client::resources::{ResourceManager, SettleContext};
use crate::phoenix::client::socket::{self, Reader, Writer, Ws};
use crate::phoenix::client::Pusher;
use crate::session::presence::{PresenceEvent, PresenceList};
use crate::session::{
    CloseReason, ConnectionId, ConnectionState, Diagnostic, Disconnect, Event, Output, PushError,
    PushId, PushOptions, PushTarget, Recipient, ResourceEffect, RoomEvent, RoomState, SessionStats,
    SubscribeError, SubscribeOptions, SubscriptionEvent, SubscriptionState, TopicListing,
};

type Connecting = Pin<Box<dyn Future<Output = Result<Ws, ConnectError>> + Send>>;

/// A request from a handle.
pub(crate) enum Command {
    Subscribe {
        id: SubscriberId,
        topic: Arc<str>,
        options: SubscribeOptions,
        sink: InboxSender<SubscriptionEvent>,
        state: watch::Sender<SubscriptionState>,
        /// Where the presence list goes, when the subscription tracks it.
        presence: Option<watch::Sender<PresenceList>>,
        reply: oneshot::Sender<Result<(), SubscribeError>>,
    },
    Unsubscribe {
        id: SubscriberId,
    },
    OpenRoom {
        id: RoomId,
        sink: InboxSender<RoomEvent>,
        state: watch::Sender<RoomState>,
    },
    Switch {
        room: RoomId,
        topic: Arc<str>,
        params: crate::session::JoinParams,
        reply: oneshot::Sender<Result<Switched, SubscribeError>>,
    },
    CloseRoom {
        room: RoomId,
    },
    Push {
        id: PushId,
        target: PushTarget,
        event: String,
        payload: Payload,
        options: PushOptions,
        reply: oneshot::Sender<Result<Reply, PushError>>,
    },
    Cast {
        target: PushTarget,
        event: String,
        payload: Payload,
        reply: oneshot::Sender<Result<(), PushError>>,
    },
    Settled {
        topic: Arc<str>,
        join_ref: JoinRef,
        result: Result<(), Option<Arc<str>>>,
    },
    Stats {
        reply: oneshot::Sender<SessionStats>,
    },
    Topics {
        reply: oneshot::Sender<Vec<TopicListing>>,
    },
    CloseAll {
        reply: oneshot::Sender<()>,
    },
    Reconnect,
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

struct SubSink {
    sink: InboxSender<SubscriptionEvent>,
    state: watch::Sender<SubscriptionState>,
    presence: Option<watch::Sender<PresenceList>>,
}

struct RoomSink {
    sink: InboxSender<RoomEvent>,
    state: watch::Sender<RoomState>,
}

/// The open connection.
struct Open {
    id: ConnectionId,
    reader: Reader,
    writer: Writer,
}

pub(crate) struct Driver {
    session: RecordedSession,
    config: Arc<ClientConfig>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// For settling tasks: a weak sender, so the task ends when every handle
    /// is gone.
    weak: mpsc::WeakUnboundedSender<Command>,
    connection: watch::Sender<ConnectionState>,
    first: Option<oneshot::Sender<Result<(), ConnectError>>>,
    last_error: Option<ConnectError>,
    socket: Option<Open>,
    connecting: Option<(ConnectionId, Connecting)>,
    subs: HashMap<SubscriberId, SubSink>,
    rooms: HashMap<RoomId, RoomSink>,
    pushes: HashMap<PushId, oneshot::Sender<Result<Reply, PushError>>>,
    next_push: u64,
    settling: HashMap<JoinRef, AbortHandle>,
    resources: Option<Arc<dyn ResourceManager>>,
    pusher: Option<Pusher>,
    done: Vec<oneshot::Sender<()>>,
    exit: bool,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        session: RecordedSession,
        config: Arc<ClientConfig>,
        commands: mpsc::UnboundedReceiver<Command>,
        weak: mpsc::WeakUnboundedSender<Command>,
        connection: watch::Sender<ConnectionState>,
        first: oneshot::Sender<Result<(), ConnectError>>,
        pusher: Pusher,
    ) -> Driver {
        Driver {
            resources: config.resources.clone(),
            session,
            config,
            commands,
            weak,
            connection,
            first: Some(first),
            last_error: None,
            socket: None,
            connecting: None,
            subs: HashMap::new(),
            rooms: HashMap::new(),
            pushes: HashMap::new(),
            next_push: 1,
            settling: HashMap::new(),
            pusher: Some(pusher),
            done: Vec::new(),
            exit: false,
        }
    }

    /// The task: runs until every handle is gone, `disconnect` completes, or
    /// the first connection fails.
    pub(crate) async fn run(mut self) {
        self.session.connect(now());
        self.drain();
        while !self.exit {
            let wake = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    // Every handle is gone.
                    None => break,
                },
                item = next_frame(&mut self.socket) => self.on_ws(item),
                result = progress(&mut self.connecting) => self.on_connected(result),
                () = sleep_until_some(wake) => self.session.handle_timeout(now()),
            }
            self.drain();
        }
        self.shut_down().await;
    }

    fn on_command(&mut self, command: Command) {
        let at = now();
        match command {
            Command::Subscribe {
                id,
                topic,
                options,
                sink,
                state,
                presence,
                reply,
            } => {
                let result = self.session.subscribe(id, &topic, options, at);
                if result.is_ok() {
                    if let Some(s) = self.session.subscription_state(id) {
                        state.send_replace(s);
                    }
                    self.subs.insert(
                        id,
                        SubSink {
                            sink,
                            state,
                            presence,
                        },
                    );
                    self.refresh_presence(id);
                }
                if reply.send(result).is_err() {
                    // The caller gave up before getting its handle.
                    self.session.unsubscribe(id, at);
                }
            }
            Command::Unsubscribe { id } => {
                self.session.unsubscribe(id, at);
                self.subs.remove(&id);
            }
            Command::OpenRoom { id, sink, state } => {
                if self.session.open_room(id, at).is_ok() {
                    self.rooms.insert(id, RoomSink { sink, state });
                } else {
                    state.send_modify(|s| {
                        s.closed = Some(
                            self.session
                                .connection_state()
                                .closed_reason()
                                .unwrap_or(CloseReason::RoomClosed),
                        )
                    });
                }
            }
            Command::Switch {
                room,
                topic,
                params,
                reply,
            } => {
                let result = self.session.switch(room, &topic, params, at);
                self.refresh_room(room);
                let _ = reply.send(result);
            }
            Command::CloseRoom { room } => {
                self.session.close_room(room, at);
            }
            Command::Push {
                id,
                target,
                event,
                payload,
                options,
                reply,
            } => {
                let id = if id.0 == 0 { self.fresh_push_id() } else { id };
                match self.session.push(id, target, &event, &payload, options, at) {
                    Ok(()) => {
                        self.pushes.insert(id, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Command::Cast {
                target,
                event,
                payload,
                reply,
            } => {
                let _ = reply.send(self.session.cast(target, &event, &payload, at));
            }
            Command::Settled {
                topic,
                join_ref,
                result,
            } => {
                self.settling.remove(&join_ref);
                self.session.handle_settled(&topic, join_ref, result, at);
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.session.stats());
            }
            Command::Topics { reply } => {
                let _ = reply.send(self.session.topics());
            }
            Command::CloseAll { reply } => {
                self.session.close_all(at);
                self.drain();
                let _ = reply.send(());
            }
            Command::Reconnect => self.session.reconnect(at),
            Command::Disconnect { reply } => {
                self.done.push(reply);
                self.exit = true;
            }
        }
    }

    fn fresh_push_id(&mut self) -> PushId {
        self.next_push += 1;
        PushId(self.next_push)
    }

    fn on_ws(&mut self, item: Option<Result<WsMessage, WsError>>) {
        let Some(open) = &self.socket else {
            return;
        };
        let id = open.id;
        let at = now();
        match item {
            Some(Ok(message)) => {
                if let Some(frame) = FrameRef::from_ws_message(&message) {
                    self.session.handle_frame(frame, at);
                    return;
                }
                match message {
                    WsMessage::Close(frame) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| {
                            (u16::from(f.code), f.reason.as_str().to_owned())
                        });
                        // Let tungstenite answer the close, then drop the socket.
                        if let Some(open) = self.socket.take() {
                            open.writer.flush();
                        }
                        self.session.handle_disconnected(
                            id,
                            Disconnect::Closed { code, reason },
                            at,
                        );
                    }
                    // tungstenite queues the pong; a flush sends it.
                    WsMessage::Ping(_) => open.writer.flush(),
                    _ => {}
                }
            }
            Some(Err(error)) => {
                self.socket = None;
                let error = socket::describe(&error);
                self.session
                    .handle_disconnected(id, Disconnect::Failed { error }, at);
            }
            None => {
                self.socket = None;
                let error = "the connection ended without a close frame".to_owned();
                self.session
                    .handle_disconnected(id, Disconnect::Failed { error }, at);
            }
        }
    }

    fn on_connected(&mut self, result: Result<Ws, ConnectError>) {
        let Some((id, _)) = self.connecting.take() else {
            return;
        };
        let at = now();
        match result {
            Ok(ws) => {
                let (sink, reader) = ws.split();
                self.socket = Some(Open {
                    id,
                    reader,
                    writer: Writer::spawn(sink),
                });
                self.session.handle_connected(id, at);
            }
            Err(error) => {
                let text = error.to_string();
                self.last_error = Some(error);
                self.session
                    .handle_disconnected(id, Disconnect::Failed { error: text }, at);
            }
        }
    }

    /// Performs everything the session asked for.
    fn drain(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(frame) => self.transmit(frame),
                Output::Connect(request) => {
                    tracing::debug!(
                        endpoint = request.endpoint(),
                        attempt = request.attempt,
                        "connecting"
                    );
                    let id = request.id;
                    let max_frame = self.config.session.max_frame_size;
                    let tls = self.config.tls.clone();
                    self.socket = None;
                    self.connecting = Some((id, Box::pin(socket::open(request, max_frame, tls))));
                }
                Output::Close(request) => {
                    if let Some(open) = self.socket.as_ref().filter(|o| o.id == request.id) {
                        open.writer.close(request.code, request.reason);
                        self.socket = None;
                    }
                    if self
                        .connecting
                        .as_ref()
                        .is_some_and(|(id, _)| *id == request.id)
                    {
                        self.connecting = None;
                    }
                }
                Output::Resource(effect) => self.resource(effect),
                Output::Event(event) => self.event(event),
                Output::Diagnostic(diagnostic) => log(&diagnostic),
            }
        }
        if let Some(open) = &self.socket {
            let queued = open.writer.queued();
            if queued > self.config.write_buffer {
                let id = open.id;
                self.socket = None;
                let error = format!(
                    "the server stopped reading: {queued} bytes wait to be written (over the \
                     write buffer of {} bytes)",
                    self.config.write_buffer
                );
                self.session
                    .handle_disconnected(id, Disconnect::Failed { error }, now());
                self.drain();
            }
        }
    }

    fn transmit(&mut self, frame: crate::codec::Frame) {
        let Some(open) = &self.socket else {
            return;
        };
        if !open.writer.send(frame) {
            let id = open.id;
            self.socket = None;
            let error = "the connection broke while writing".to_owned();
            self.session
                .handle_disconnected(id, Disconnect::Failed { error }, now());
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connection(state) => {
                tracing::debug!(?state, "connection");
                if let Some(first) = self.first.take() {
                    match &state {
                        ConnectionState::Connected => {
                            let _ = first.send(Ok(()));
                        }
                        ConnectionState::Reconnecting { reason, .. }
                        | ConnectionState::Disconnected(CloseReason::GaveUp { reason, .. }) => {
                            let error =
                                self.last_error
                                    .take()
                                    .unwrap_or_else(|| ConnectError::Connect {
                                        endpoint: crate::session::redact_query(
                                            self.session.config().endpoint(),
                                        )
                                        .to_owned(),
                                        reason: reason.clone(),
                                    });
                            let _ = first.send(Err(error));
                            self.exit = true;
                        }
                        _ => self.first = Some(first),
                    }
                }
                self.connection.send_replace(state);
            }
            Event::Subscription { id, event } => {
                if matches!(event, SubscriptionEvent::Presence(PresenceEvent::Sync)) {
                    self.refresh_presence(id);
                }
                let state = match &event {
                    SubscriptionEvent::Failed { reason, detail } => SubscriptionState::Failed {
                        reason: *reason,
                        detail: detail.clone(),
                    },
                    SubscriptionEvent::Closed { reason } => {
                        SubscriptionState::Closed(reason.clone())
                    }
                    _ => match self.session.subscription_state(id) {
                        Some(state) => state,
                        None => return self.deliver_sub(id, event),
                    },
                };
                if let Some(sub) = self.subs.get(&id) {
                    if !matches!(event, SubscriptionEvent::Closed { .. })
                        || !sub.state.borrow().is_terminal()
                    {
                        sub.state.send_replace(state);
                    }
                }
                self.deliver_sub(id, event);
            }
            Event::Room { id, event } => {
                if let Some(room) = self.rooms.get(&id) {
                    room.sink.send_control(event.clone());
                }
                if let RoomEvent::Closed { reason } = event {
                    if let Some(room) = self.rooms.remove(&id) {
                        room.state.send_modify(|s| {
                            s.closed = Some(reason);
                            s.shown = None;
                            s.pending = None;
                        });
                    }
                } else {
                    self.refresh_room(id);
                }
            }
            Event::Message { message, to } => {
                let size = message.size();
                for recipient in to {
                    match recipient {
                        Recipient::Subscription(id) => {
                            if let Some(sub) = self.subs.get(&id) {
                                sub.sink
                                    .send_data(SubscriptionEvent::Message(message.clone()), size);
                            }
                        }
                        Recipient::Room(id) => {
                            if let Some(room) = self.rooms.get(&id) {
                                room.sink
                                    .send_data(RoomEvent::Message(message.clone()), size);
                            }
                        }
                    }
                }
            }
            Event::Push { id, outcome } => {
                if let Some(reply) = self.pushes.remove(&id) {
                    let _ = reply.send(outcome);
                }
            }
            Event::SubscriptionStatus { id, status } => {
                if let Some(sub) = self.subs.get(&id) {
                    sub.state.send_if_modified(|s| {
                        let new = SubscriptionState::Managed(status);
                        let changed = !s.is_terminal() && *s != new;
                        if changed {
                            *s = new;
                        }
                        changed
                    });
                }
            }
        }
    }

    /// Queues a subscription event; after `Closed` the subscription's queue
    /// is let go, so its stream ends once drained.
    fn deliver_sub(&mut self, id: SubscriberId, event: SubscriptionEvent) {
        let closed = matches!(event, SubscriptionEvent::Closed { .. });
        if let Some(sub) = self.subs.get(&id) {
            sub.sink.send_control(event);
        }
        if closed {
            self.subs.remove(&id);
        }
    }

    /// Publishes the presence list of subscription `id`, if it tracks it.
    fn refresh_presence(&self, id: SubscriberId) {
        let Some(watch) = self.subs.get(&id).and_then(|sub| sub.presence.as_ref()) else {
            return;
        };
        if let Some(presence) = self.session.presence(id) {
            watch.send_replace(presence.snapshot());
        }
    }

    fn refresh_room(&mut self, id: RoomId) {
        if let (Some(room), Some(state)) = (self.rooms.get(&id), self.session.room_state(id)) {
            room.state.send_if_modified(|s| {
                let changed = *s != state;
                *s = state;
                changed
            });
        }
    }

    fn resource(&mut self, effect: ResourceEffect) {
        let Some(resources) = self.resources.clone() else {
            return;
        };
        match effect {
            ResourceEffect::Create { topic, join_ref } => {
                guard("create", || resources.create(&topic, join_ref));
            }
            ResourceEffect::Destroy { topic, join_ref } => {
                guard("destroy", || resources.destroy(&topic, join_ref));
            }
            ResourceEffect::Message { join_ref, message } => {
                guard("on_message", || resources.on_message(join_ref, &message));
            }
            ResourceEffect::StartSettling { topic, join_ref } => {
                let Some(pusher) = self.pusher.clone() else {
                    return;
                };
                let context = SettleContext {
                    topic: Arc::clone(&topic),
                    join_ref,
                    pusher: pusher.for_topic(Arc::clone(&topic)),
                };
                let settled = match crate::session::catch_panic(|| resources.settle(context)) {
                    Ok(future) => future,
                    Err(message) => {
                        tracing::error!(%message, "the resource manager panicked in settle");
                        Box::pin(std::future::ready(Err(
                            crate::phoenix::client::SettleError::new(
                                "the resource manager panicked",
                            ),
                        )))
                    }
                };
                let commands = self.weak.clone();
                let task = tokio::spawn(async move {
                    let result = settled.await.map_err(|e| e.into_reason());
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
            ResourceEffect::AbortSettling { join_ref, .. } => {
                if let Some(task) = self.settling.remove(&join_ref) {
                    task.abort();
                }
            }
        }
    }

    /// Leaves everything, closes the socket, and tells every handle.
    async fn shut_down(&mut self) {
        let at = now();
        tracing::info!("shutting down");
        self.session.disconnect(at);
        self.drain();
        if let Some(open) = self.socket.take() {
            open.writer.close(1000, "client disconnect");
        }
        for (_, sub) in self.subs.drain() {
            sub.state
                .send_replace(SubscriptionState::Closed(CloseReason::Disconnected));
        }
        for (_, room) in self.rooms.drain() {
            room.state
                .send_modify(|s| s.closed = Some(CloseReason::Disconnected));
        }
        for (_, reply) in self.pushes.drain() {
            let _ = reply.send(Err(PushError::Disconnected {
                reason: CloseReason::Disconnected,
            }));
        }
        for (_, task) in self.settling.drain() {
            task.abort();
        }
        // Give the writer a moment to say goodbye before the runtime moves on.
        tokio::time::sleep(Duration::from_millis(0)).await;
        for reply in self.done.drain(..) {
            let _ = reply.send(());
        }
    }
}

/// The driver's clock: tokio's, so tests with a paused clock work.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Calls user code, logging a panic instead of dying of it.
fn guard(what: &'static str, f: impl FnOnce()) {
    if let Err(message) = crate::session::catch_panic(f) {
        tracing::error!(%message, callback = what, "the resource manager panicked");
    }
}

fn log(diagnostic: &Diagnostic) {
    match diagnostic {
        Diagnostic::BadFrame { error } => {
            tracing::warn!(%error, "undecodable frame from the server, dropped")
        }
        Diagnostic::HeartbeatTimeout => {
            tracing::warn!("heartbeat unanswered: the link is dead, reconnecting")
        }
        Diagnostic::CallbackPanicked { what, message } => {
            tracing::error!(callback = what, %message, "a callback panicked; carrying on")
        }
        other => tracing::debug!(diagnostic = ?other),
    }
}

async fn next_frame(socket: &mut Option<Open>) -> Option<Result<WsMessage, WsError>> {
    match socket {
        Some(open) => open.reader.next().await,
        None => std::future::pending().await,
    }
}

async fn progress(connecting: &mut Option<(ConnectionId, Connecting)>) -> Result<Ws, ConnectError> {
    match connecting {
        Some((_, future)) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
