//! One WebSocket connection after the upgrade: a task that reads and handles inbound
//! frames and server commands one at a time — like a Phoenix socket process, where a slow join
//! delays every later frame on the same socket, heartbeats included. Writing is left to a
//! writer task of its own ([`outbound`](super::outbound)), so a client that does not read
//! never stops this task from reading and handling what that client sends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use super::handler::{ChannelContext, ChannelHandler, Effect, HandleOutcome, JoinOutcome};
use super::handshake::{Accepted, Transport};
use super::outbound::{Outbound, OutboundGauge, Overflow, Refused};
use super::registry::{CommandSender, Recipient, Shared, SocketCommand};
use super::wire::{self, Echo, Inbound};
use super::{ChannelEnd, ServerEventKind, SocketId, StalePushPolicy, WireProtocol};
use crate::phoenix::codec::{
    event, Codec, FrameRef, Message, Payload, Reply, ReplyStatus, ServerMessage, PHOENIX_TOPIC,
};

/// Close code for a client frame the server cannot decode (the socket process would crash).
const CLOSE_MALFORMED: u16 = 1011;
/// Close code for a client that left more than the outbound bound unread.
const CLOSE_OVERFLOW: u16 = 1008;
/// Close code when the server shuts down.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code of the idle timeout.
const CLOSE_IDLE: u16 = 1000;
/// Longest close reason that fits a control frame.
const MAX_CLOSE_REASON: usize = 120;
/// How long a closing socket waits for its queued frames and close frame to be written and
/// for the peer's close frame; a socket that could not even be told is reset.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Serve an upgraded connection until it ends.
pub(super) async fn run<S: Transport>(
    shared: Arc<Shared>,
    ws: WebSocketStream<S>,
    accepted: Accepted,
) {
    let Accepted {
        params,
        protocol,
        auth_token,
        ..
    } = accepted;
    let (sink, inbound) = ws.split();
    let gauge = Arc::new(OutboundGauge::default());
    let outbound = Outbound::start(sink, shared.config.max_outbound_bytes, Arc::clone(&gauge));
    let (sender, commands) = mpsc::unbounded_channel();
    let auth_token: Option<Arc<str>> = auth_token.map(Arc::from);
    let id = shared.register_socket(sender.clone(), params, auth_token.clone(), protocol, gauge);
    let connection = Connection {
        id,
        codec: Codec::new().with_max_frame_size(shared.config.max_frame_size),
        protocol,
        shutdown: shared.shutdown.subscribe(),
        shared,
        inbound,
        outbound,
        commands,
        self_sender: sender,
        channels: HashMap::new(),
        next_incarnation: 0,
        stash: VecDeque::new(),
        last_inbound: Instant::now(),
        auth_token,
    };
    connection.run().await;
}

/// How a connection ends.
enum Stop {
    /// Send a close frame with this code after the queued frames.
    Close { code: u16, reason: String },
    /// The client left more than the outbound bound unread: drop what is queued and close.
    Overflow(Overflow),
    /// Reset the TCP connection.
    Abort,
    /// The peer is gone or the transport failed.
    Gone,
}

type Step = Result<(), Stop>;

/// What woke the connection loop.
enum Wake {
    Shutdown,
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Command(Option<SocketCommand>),
    Idle,
}

/// One joined channel incarnation on this socket.
struct Channel {
    /// This socket's counter for the incarnation: timers address it, not the join_ref, which
    /// a client may reuse.
    incarnation: u64,
    /// The join_ref its pushes and replies carry: the join's join_ref, or its ref if the
    /// join carried none (as Phoenix does).
    join_ref: String,
    /// The join_ref exactly as the join carried it, which later messages are compared with.
    wire_join_ref: Value,
    handler: Box<dyn ChannelHandler>,
    /// A `phx_leave` was received; the reply and `phx_close` are pending.
    leaving: bool,
}

impl Channel {
    /// Whether a message sent with `join_ref` is for this incarnation. A channel joined
    /// without a join_ref takes any, as Phoenix does.
    fn accepts(&self, join_ref: &Value) -> bool {
        self.wire_join_ref.is_null() || *join_ref == self.wire_join_ref
    }

    fn is(&self, recipient: &Recipient) -> bool {
        match recipient {
            Recipient::Current => true,
            Recipient::JoinRef(join_ref) => *join_ref == self.join_ref,
            Recipient::Incarnation(incarnation) => *incarnation == self.incarnation,
        }
    }
}

struct Connection<S> {
    id: SocketId,
    shared: Arc<Shared>,
    codec: Codec,
    protocol: WireProtocol,
    inbound: SplitStream<WebSocketStream<S>>,
    outbound: Outbound<S>,
    commands: mpsc::UnboundedReceiver<SocketCommand>,
    self_sender: CommandSender,
    shutdown: watch::Receiver<bool>,
    channels: HashMap<String, Channel>,
    next_incarnation: u64,
    /// Commands that arrived while the socket was blocked in a slow join.
    stash: VecDeque<SocketCommand>,
    last_inbound: Instant,
    /// The auth token the socket connected with (`Sec-WebSocket-Protocol`).
    auth_token: Option<Arc<str>>,
}

impl<S: Transport> Connection<S> {
    async fn run(mut self) {
        let stop = loop {
            let step = match self.stash.pop_front() {
                Some(command) => self.on_command(command),
                None => match self.next_wake().await {
                    Wake::Shutdown => Err(Stop::Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "server shutting down".to_owned(),
                    }),
                    Wake::Frame(Some(Ok(frame))) => {
                        self.last_inbound = Instant::now();
                        self.on_ws_message(frame).await
                    }
                    Wake::Frame(Some(Err(_)) | None) => Err(Stop::Gone),
                    Wake::Command(Some(command)) => self.on_command(command),
                    Wake::Command(None) => Err(Stop::Gone),
                    Wake::Idle => Err(Stop::Close {
                        code: CLOSE_IDLE,
                        reason: "idle timeout".to_owned(),
                    }),
                },
            };
            if let Err(stop) = step {
                break stop;
            }
        };
        self.finish(stop).await;
    }

    /// Inbound frames first: a `phx_leave` completes only after frames already received
    /// (such as an immediate re-join of the topic) are handled, as on a real server.
    async fn next_wake(&mut self) -> Wake {
        let idle = super::deadline_after(self.last_inbound, self.shared.config.idle_timeout);
        tokio::select! {
            biased;
            () = super::shut_down(&mut self.shutdown) => Wake::Shutdown,
            frame = self.inbound.next() => Wake::Frame(frame),
            command = self.commands.recv() => Wake::Command(command),
            () = sleep_until(idle) => Wake::Idle,
        }
    }

    async fn finish(self, stop: Stop) {
        let Connection {
            id,
            shared,
            mut inbound,
            mut outbound,
            channels,
            ..
        } = self;
        let mut reset = matches!(stop, Stop::Abort);
        let close = match stop {
            Stop::Close { code, reason } => Some((code, reason)),
            Stop::Overflow(overflow) => {
                shared.record(
                    Some(id),
                    ServerEventKind::OutboundOverflow {
                        queued_bytes: overflow.queued,
                        frame_bytes: overflow.frame,
                        limit: overflow.limit,
                    },
                );
                outbound.discard_pending();
                let reason = format!(
                    "client is not reading: over {} bytes queued for it",
                    overflow.limit
                );
                Some((CLOSE_OVERFLOW, reason))
            }
            Stop::Abort | Stop::Gone => None,
        };
        let closing = close.is_some();
        if let Some((code, reason)) = close {
            outbound.close(CloseFrame {
                code: CloseCode::from(code),
                reason: truncate(reason, MAX_CLOSE_REASON).into(),
            });
            // Read on while the writer catches up: the peer's close frame ends the stream.
            let drain = async { while let Some(Ok(_)) = inbound.next().await {} };
            let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
        }
        let (sink, finished) = outbound.finish(Duration::ZERO).await;
        // A peer that could not even be sent the close frame is reset, not left to drain.
        reset |= closing && !finished;
        if reset {
            if let Some(ws) = sink.and_then(|sink| inbound.reunite(sink).ok()) {
                let _ = ws.get_ref().tcp().set_zero_linger();
            }
        }
        for (topic, channel) in channels {
            shared.remove_member(id, &topic, &channel.join_ref, ChannelEnd::SocketClosed);
        }
        shared.unregister_socket(id);
    }

    // --- inbound ------------------------------------------------------------------------------

    async fn on_ws_message(&mut self, frame: WsMessage) -> Step {
        let Some(data) = FrameRef::from_ws_message(&frame) else {
            // Ping, pong and close are handled by the WebSocket layer.
            return Ok(());
        };
        match wire::decode(self.protocol, &self.codec, data) {
            Ok(inbound) => self.on_message(inbound).await,
            Err(error) => {
                let reason = format!("malformed frame: {error}");
                self.shared.record_malformed(self.id, error);
                Err(Stop::Close {
                    code: CLOSE_MALFORMED,
                    reason,
                })
            }
        }
    }

    async fn on_message(&mut self, inbound: Inbound) -> Step {
        let Inbound {
            message: msg,
            raw_join_ref,
            echo,
        } = inbound;
        self.shared
            .record(Some(self.id), ServerEventKind::Inbound(msg.clone()));
        if msg.is_heartbeat() {
            if self.shared.heartbeats_muted() {
                return Ok(());
            }
            let reply = Reply {
                join_ref: None,
                msg_ref: msg.msg_ref,
                topic: PHOENIX_TOPIC.to_owned(),
                status: ReplyStatus::Ok,
                response: Payload::empty(),
            };
            return self.send_echo(reply.into(), &echo.without_join_ref());
        }
        if echo.has_foreign_topic() {
            // A topic that is not a string matches no channel: Phoenix answers a leave ok and
            // anything else `unmatched topic`.
            if msg.event == event::LEAVE {
                return self.send_echo(Reply::ok(&msg, Payload::empty()).into(), &echo);
            }
            return self.send_echo(unmatched_topic(&msg), &echo.without_join_ref());
        }
        match msg.event.as_str() {
            event::JOIN => self.on_join(msg, raw_join_ref, echo).await,
            event::LEAVE => self.on_leave(msg, &raw_join_ref, &echo),
            _ => self.on_push(msg, &raw_join_ref, &echo).await,
        }
    }

    /// A join. On a duplicate, the old incarnation is killed first and its `phx_close` is sent
    /// after the new join's reply — the order a Phoenix server produces.
    async fn on_join(&mut self, msg: Message, raw_join_ref: Value, echo: Echo) -> Step {
        let topic = msg.topic.clone();
        let join_ref = msg
            .join_ref
            .clone()
            .or_else(|| msg.msg_ref.clone())
            .unwrap_or_default();
        let replaced = self.channels.remove(&topic).map(|old| {
            self.shared
                .remove_member(self.id, &topic, &old.join_ref, ChannelEnd::Duplicate);
            old.join_ref
        });
        let after_join = self
            .run_join(&msg, raw_join_ref, &echo, &topic, &join_ref)
            .await?;
        if let Some(old_join_ref) = replaced {
            self.send(Message::close(old_join_ref, topic.as_str()).into())?;
        }
        match after_join {
            Some((incarnation, effects)) => {
                self.run_effects(&topic, &join_ref, incarnation, effects)
            }
            None => Ok(()),
        }
    }

    /// Route, check limits and faults, run the handler's join and send the reply. Returns the
    /// new incarnation and the handler's after-join effects when the channel joined.
    async fn run_join(
        &mut self,
        msg: &Message,
        raw_join_ref: Value,
        echo: &Echo,
        topic: &str,
        join_ref: &str,
    ) -> Result<Option<(u64, Vec<Effect>)>, Stop> {
        // The reply carries the join's own join_ref, null if it had none.
        let join_reply = |status: ReplyStatus, response: Value| -> ServerMessage {
            Reply::to(msg, status, Payload::Json(response)).into()
        };
        let Some(factory) = self.shared.route(topic) else {
            self.send_echo(unmatched_topic(msg), &echo.without_join_ref())?;
            return Ok(None);
        };
        if self.channels.len() >= self.shared.config.max_channels_per_socket {
            let reply = join_reply(
                ReplyStatus::Error,
                json!({"reason": "too many channels joined"}),
            );
            self.send_echo(reply, echo)?;
            return Ok(None);
        }
        if !self.shared.has_room(topic) {
            self.send_echo(join_reply(ReplyStatus::Error, max_clients_reached()), echo)?;
            return Ok(None);
        }
        let fault = self.shared.join_fault(topic);
        self.block(fault.delay).await?;
        if let Some(response) = fault.reject {
            self.send_echo(join_reply(ReplyStatus::Error, response), echo)?;
            return Ok(None);
        }

        let mut handler = factory(topic);
        let mut ctx = ChannelContext::new(topic, join_ref, self.id, self.auth_token.as_deref());
        let outcome = handler.join(&mut ctx, &msg.payload);
        let ChannelContext { effects, block, .. } = ctx;
        self.block(block).await?;
        match outcome {
            JoinOutcome::Ok(response) => {
                if self.shared.add_member(self.id, topic, join_ref).is_err() {
                    self.send_echo(join_reply(ReplyStatus::Error, max_clients_reached()), echo)?;
                    return Ok(None);
                }
                self.next_incarnation += 1;
                let incarnation = self.next_incarnation;
                let channel = Channel {
                    incarnation,
                    join_ref: join_ref.to_owned(),
                    wire_join_ref: raw_join_ref,
                    handler,
                    leaving: false,
                };
                self.channels.insert(topic.to_owned(), channel);
                self.send_echo(join_reply(ReplyStatus::Ok, response), echo)?;
                Ok(Some((incarnation, effects)))
            }
            JoinOutcome::Error(response) => {
                self.send_echo(join_reply(ReplyStatus::Error, response), echo)?;
                Ok(None)
            }
        }
    }

    /// A leave of the current incarnation is completed (reply, then `phx_close`) after the
    /// frames already received; one with another join_ref is ignored (the client raced a
    /// close); one for an unjoined topic is answered ok at once.
    fn on_leave(&mut self, msg: Message, raw_join_ref: &Value, echo: &Echo) -> Step {
        match self.channels.get_mut(&msg.topic) {
            Some(channel) if channel.accepts(raw_join_ref) => {
                if !channel.leaving {
                    channel.leaving = true;
                    let command = SocketCommand::FinishLeave {
                        topic: msg.topic,
                        incarnation: channel.incarnation,
                        leave_ref: msg.msg_ref,
                        echo: echo.without_join_ref(),
                    };
                    self.schedule(command, self.shared.config.leave_delay);
                }
                Ok(())
            }
            Some(_) => {
                self.record_dropped(msg);
                Ok(())
            }
            None => self.send_echo(Reply::ok(&msg, Payload::empty()).into(), echo),
        }
    }

    /// Any other event: to the channel's handler (a push with another join_ref as the
    /// [`StalePushPolicy`] says), `unmatched topic` if the topic has no channel.
    async fn on_push(&mut self, msg: Message, raw_join_ref: &Value, echo: &Echo) -> Step {
        let id = self.id;
        let policy = self.shared.config.stale_pushes;
        let Some(channel) = self.channels.get(&msg.topic) else {
            return self.send_echo(unmatched_topic(&msg), &echo.without_join_ref());
        };
        let stale = !channel.accepts(raw_join_ref);
        if channel.leaving || (stale && policy == StalePushPolicy::Drop) {
            self.record_dropped(msg);
            return Ok(());
        }
        if stale {
            self.shared.record(
                Some(id),
                ServerEventKind::StaleHandedToCurrent {
                    topic: msg.topic.clone(),
                    join_ref: msg.join_ref.clone(),
                    current_join_ref: channel.join_ref.clone(),
                    event: msg.event.clone(),
                },
            );
        }
        let Message {
            msg_ref,
            topic,
            event,
            payload,
            ..
        } = msg;
        let Some(channel) = self.channels.get_mut(&topic) else {
            return Ok(());
        };
        let join_ref = channel.join_ref.clone();
        let incarnation = channel.incarnation;
        let mut ctx = ChannelContext::new(&topic, &join_ref, id, self.auth_token.as_deref());
        let outcome = channel.handler.handle_in(&mut ctx, &event, payload);
        let ChannelContext { effects, block, .. } = ctx;
        self.shared.touch(&topic);
        self.block(block).await?;
        self.run_effects(&topic, &join_ref, incarnation, effects)?;
        // The channel answers with its own join_ref, whatever the push carried.
        let echo = echo.without_join_ref();
        let reply = |status: ReplyStatus, response: Payload| -> ServerMessage {
            Reply {
                join_ref: Some(join_ref.clone()),
                msg_ref: msg_ref.clone(),
                topic: topic.clone(),
                status,
                response,
            }
            .into()
        };
        let this = Recipient::Incarnation(incarnation);
        match outcome {
            HandleOutcome::Reply { status, response } => {
                self.send_echo(reply(status, response), &echo)
            }
            HandleOutcome::NoReply => Ok(()),
            HandleOutcome::Stop { reply: answer } => {
                if let Some((status, response)) = answer {
                    self.send_echo(reply(status, response), &echo)?;
                }
                self.end_channel(&topic, &this, ChannelEnd::Stopped)
            }
            HandleOutcome::Crash => self.end_channel(&topic, &this, ChannelEnd::Crashed),
        }
    }

    /// Log a message for a channel that was not handed to it.
    fn record_dropped(&self, msg: Message) {
        self.shared.record(
            Some(self.id),
            ServerEventKind::DroppedStale {
                topic: msg.topic,
                join_ref: msg.join_ref,
                event: msg.event,
            },
        );
    }

    // --- effects and commands -------------------------------------------------------------------

    fn run_effects(
        &mut self,
        topic: &str,
        join_ref: &str,
        incarnation: u64,
        effects: Vec<Effect>,
    ) -> Step {
        for effect in effects {
            match effect {
                Effect::Push { event, payload } => {
                    self.send(Message::channel_push(join_ref, topic, event, payload).into())?;
                }
                Effect::PushAfter {
                    delay,
                    event,
                    payload,
                } => {
                    let command = SocketCommand::Deliver {
                        topic: topic.to_owned(),
                        to: Recipient::Incarnation(incarnation),
                        message: Message::channel_push(join_ref, topic, event, payload).into(),
                    };
                    self.schedule(command, delay);
                }
                Effect::Broadcast { event, payload } => {
                    self.broadcast(topic, Message::broadcast(topic, event, payload).into())?;
                }
                Effect::TrackPresence { key, meta } => {
                    let owner = (self.id, join_ref.to_owned());
                    if let Some(diff) = self.shared.track_presence(topic, owner, key, meta) {
                        self.broadcast(
                            topic,
                            Message::broadcast(topic, "presence_diff", diff).into(),
                        )?;
                    }
                }
                Effect::PushPresenceState => {
                    let state = self.shared.presence_state(topic);
                    self.send(
                        Message::channel_push(join_ref, topic, "presence_state", state).into(),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Broadcast to the other members through their sockets, and to this socket directly so
    /// the sender sees the broadcast before its own reply.
    fn broadcast(&mut self, topic: &str, message: ServerMessage) -> Step {
        self.shared.broadcast(topic, Some(self.id), &message);
        self.deliver(topic, &Recipient::Current, message)
    }

    fn on_command(&mut self, command: SocketCommand) -> Step {
        match command {
            SocketCommand::Deliver { topic, to, message } => self.deliver(&topic, &to, message),
            SocketCommand::FinishLeave {
                topic,
                incarnation,
                leave_ref,
                echo,
            } => {
                let pending = self
                    .channels
                    .get(&topic)
                    .is_some_and(|channel| channel.leaving && channel.incarnation == incarnation);
                if !pending {
                    return Ok(());
                }
                let Some(channel) = self.channels.remove(&topic) else {
                    return Ok(());
                };
                let join_ref = channel.join_ref;
                self.shared
                    .remove_member(self.id, &topic, &join_ref, ChannelEnd::Left);
                let reply = Reply {
                    join_ref: Some(join_ref.clone()),
                    msg_ref: leave_ref,
                    topic: topic.clone(),
                    status: ReplyStatus::Ok,
                    response: Payload::empty(),
                };
                self.send_echo(reply.into(), &echo)?;
                self.send(Message::close(join_ref, topic).into())
            }
            SocketCommand::End {
                topic,
                join_ref,
                end,
            } => {
                let recipient = join_ref.map_or(Recipient::Current, Recipient::JoinRef);
                self.end_channel(&topic, &recipient, end)
            }
            SocketCommand::Raw(frame) => self.enqueue(frame.into_ws_message()),
            SocketCommand::Close { code, reason } => Err(Stop::Close { code, reason }),
            SocketCommand::Abort => Err(Stop::Abort),
        }
    }

    /// Send `message` if `topic` has a live channel here that is the recipient.
    fn deliver(&mut self, topic: &str, to: &Recipient, message: ServerMessage) -> Step {
        let live = self
            .channels
            .get(topic)
            .is_some_and(|channel| !channel.leaving && channel.is(to));
        if live {
            self.send(message)
        } else {
            Ok(())
        }
    }

    /// End a channel from the server side: `phx_error` for a crash, `phx_close` otherwise.
    fn end_channel(&mut self, topic: &str, which: &Recipient, end: ChannelEnd) -> Step {
        if !self
            .channels
            .get(topic)
            .is_some_and(|channel| channel.is(which))
        {
            return Ok(());
        }
        let Some(channel) = self.channels.remove(topic) else {
            return Ok(());
        };
        self.shared
            .remove_member(self.id, topic, &channel.join_ref, end);
        let message = match end {
            ChannelEnd::Crashed => Message::error(channel.join_ref, topic),
            _ => Message::close(channel.join_ref, topic),
        };
        self.send(message.into())
    }

    /// Queue a command for this socket, now or after `delay`.
    fn schedule(&self, command: SocketCommand, delay: Duration) {
        if delay.is_zero() {
            let _ = self.self_sender.send(command);
        } else {
            let sender = self.self_sender.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sender.send(command);
            });
        }
    }

    /// Keep the socket busy for `duration`: no frame is read meanwhile (frames already queued
    /// are still written). Close and abort commands still take effect; other commands wait
    /// until after.
    async fn block(&mut self, duration: Duration) -> Step {
        if duration.is_zero() {
            return Ok(());
        }
        let deadline = super::deadline_after(Instant::now(), duration);
        loop {
            let command = tokio::select! {
                biased;
                () = super::shut_down(&mut self.shutdown) => {
                    return Err(Stop::Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "server shutting down".to_owned(),
                    });
                }
                () = sleep_until(deadline) => return Ok(()),
                command = self.commands.recv() => command,
            };
            match command {
                Some(SocketCommand::Close { code, reason }) => {
                    return Err(Stop::Close { code, reason })
                }
                Some(SocketCommand::Abort) => return Err(Stop::Abort),
                Some(other) => self.stash.push_back(other),
                None => return Err(Stop::Gone),
            }
        }
    }

    fn send(&mut self, message: ServerMessage) -> Step {
        self.send_echo(message, &Echo::default())
    }

    /// Encode for this socket's protocol, putting back the fields `echo` holds, and queue.
    fn send_echo(&mut self, message: ServerMessage, echo: &Echo) -> Step {
        match wire::encode(self.protocol, &self.codec, &message, echo) {
            Ok(frame) => self.enqueue(frame.into_ws_message()),
            Err(error) => {
                tracing::warn!(%error, "dev server: dropping an outbound message that cannot be encoded");
                Ok(())
            }
        }
    }

    fn enqueue(&mut self, frame: WsMessage) -> Step {
        self.outbound.send(frame).map_err(|refused| match refused {
            Refused::Overflow(overflow) => Stop::Overflow(overflow),
            Refused::WriterGone => Stop::Gone,
        })
    }
}

fn unmatched_topic(msg: &Message) -> ServerMessage {
    Reply {
        join_ref: None,
        msg_ref: msg.msg_ref.clone(),
        topic: msg.topic.clone(),
        status: ReplyStatus::Error,
        response: Payload::Json(json!({"reason": "unmatched topic"})),
    }
    .into()
}

fn max_clients_reached() -> Value {
    json!({"reason": "max_clients_reached"})
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
