//! One WebSocket connection: the handshake, then a loop that handles inbound frames and
//! server commands one at a time — like a Phoenix socket process, where a slow join delays
//! every later frame on the same socket, heartbeats included.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use super::handler::{ChannelContext, ChannelHandler, Effect, HandleOutcome, JoinOutcome};
use super::registry::{CommandSender, Shared, SocketCommand};
use super::{ChannelEnd, ServerEventKind, SocketId};
use crate::phoenix::codec::{
    event, parse_query, Codec, FrameRef, Message, Payload, Reply, ReplyStatus, ServerMessage,
    PHOENIX_TOPIC, PROTOCOL_VSN,
};

/// Close code for a client frame the server cannot decode (the socket process would crash).
const CLOSE_MALFORMED: u16 = 1011;
/// Close code when the server shuts down.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code of the idle timeout.
const CLOSE_IDLE: u16 = 1000;
/// Longest close reason that fits a control frame.
const MAX_CLOSE_REASON: usize = 120;
/// How long a closing socket waits for the peer's close frame.
const CLOSE_HANDSHAKE_WAIT: Duration = Duration::from_millis(500);

/// Accept one TCP connection: upgrade it, then serve it until it ends.
// The handshake callback's error type is fixed by tungstenite.
#[allow(clippy::result_large_err)]
pub(super) async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let mut accepted_params = None;
    let mut refusal = None;
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match check_request(request) {
            Ok(params) => {
                accepted_params = Some(params);
                Ok(response)
            }
            Err((status, reason)) => {
                refusal = Some((status, reason.clone()));
                let mut error = ErrorResponse::new(Some(reason));
                *error.status_mut() = status;
                Err(error)
            }
        }
    };
    let max = shared.config.max_frame_size;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(ws_config));
    let ws = match tokio::time::timeout(shared.config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            if let Some((status, reason)) = refusal {
                shared.record(
                    None,
                    ServerEventKind::Refused {
                        status: status.as_u16(),
                        reason,
                    },
                );
            } else {
                tracing::debug!(%error, "dev server: WebSocket handshake failed");
            }
            return;
        }
        Err(_) => {
            tracing::debug!("dev server: WebSocket handshake timed out");
            return;
        }
    };
    let params = accepted_params.unwrap_or_default();
    let (sender, commands) = mpsc::unbounded_channel();
    let id = shared.register_socket(sender.clone(), params);
    let connection = Connection {
        id,
        codec: Codec::new().with_max_frame_size(max),
        shutdown: shared.shutdown.subscribe(),
        shared,
        ws,
        commands,
        self_sender: sender,
        channels: HashMap::new(),
        stash: VecDeque::new(),
        last_inbound: Instant::now(),
    };
    connection.run().await;
}

/// Accept `…/websocket?vsn=2.0.0`; refuse `reject=1` with 403 as a refusing `connect/3` does.
fn check_request(request: &Request) -> Result<Vec<(String, String)>, (StatusCode, String)> {
    let path = request.uri().path();
    if !path.ends_with("/websocket") {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no socket at {path}; the path must end in /websocket"),
        ));
    }
    let params = parse_query(request.uri().query().unwrap_or(""));
    let vsn = params
        .iter()
        .find(|(name, _)| name == "vsn")
        .map(|(_, value)| value.as_str());
    if vsn != Some(PROTOCOL_VSN) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("this server speaks only the V2 protocol; add vsn={PROTOCOL_VSN} to the query"),
        ));
    }
    if params
        .iter()
        .any(|(name, value)| name == "reject" && value == "1")
    {
        return Err((
            StatusCode::FORBIDDEN,
            "connection refused by connect (reject=1)".to_owned(),
        ));
    }
    Ok(params)
}

/// How a connection ends.
enum Stop {
    /// Send a close frame with this code.
    Close { code: u16, reason: String },
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
    join_ref: String,
    handler: Box<dyn ChannelHandler>,
    /// A `phx_leave` was received; the reply and `phx_close` are pending.
    leaving: bool,
}

struct Connection {
    id: SocketId,
    shared: Arc<Shared>,
    codec: Codec,
    ws: WebSocketStream<TcpStream>,
    commands: mpsc::UnboundedReceiver<SocketCommand>,
    self_sender: CommandSender,
    shutdown: watch::Receiver<bool>,
    channels: HashMap<String, Channel>,
    /// Commands that arrived while the socket was blocked in a slow join.
    stash: VecDeque<SocketCommand>,
    last_inbound: Instant,
}

impl Connection {
    async fn run(mut self) {
        let stop = loop {
            let step = match self.stash.pop_front() {
                Some(command) => self.on_command(command).await,
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
                    Wake::Command(Some(command)) => self.on_command(command).await,
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
            frame = self.ws.next() => Wake::Frame(frame),
            command = self.commands.recv() => Wake::Command(command),
            () = sleep_until(idle) => Wake::Idle,
        }
    }

    async fn finish(mut self, stop: Stop) {
        match stop {
            Stop::Close { code, reason } => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: truncate(reason, MAX_CLOSE_REASON).into(),
                };
                if self.ws.close(Some(frame)).await.is_ok() {
                    let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
                    let _ = tokio::time::timeout(CLOSE_HANDSHAKE_WAIT, drain).await;
                }
            }
            Stop::Abort => {
                let _ = self.ws.get_ref().set_zero_linger();
            }
            Stop::Gone => {}
        }
        let Connection {
            id,
            shared,
            ws,
            channels,
            ..
        } = self;
        drop(ws);
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
        match self.codec.decode_client_frame(data) {
            Ok(message) => self.on_message(message).await,
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

    async fn on_message(&mut self, msg: Message) -> Step {
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
            return self.send(reply.into()).await;
        }
        match msg.event.as_str() {
            event::JOIN => self.on_join(msg).await,
            event::LEAVE => self.on_leave(msg).await,
            _ => self.on_push(msg).await,
        }
    }

    /// A join. On a duplicate, the old incarnation is killed first and its `phx_close` is sent
    /// after the new join's reply — the order a Phoenix server produces.
    async fn on_join(&mut self, msg: Message) -> Step {
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
        let after_join = self.run_join(&msg, &topic, &join_ref).await?;
        if let Some(old_join_ref) = replaced {
            self.send(Message::close(old_join_ref, topic.as_str()).into())
                .await?;
        }
        match after_join {
            Some(effects) => self.run_effects(&topic, &join_ref, effects).await,
            None => Ok(()),
        }
    }

    /// Route, check limits and faults, run the handler's join and send the reply. Returns the
    /// handler's after-join effects when the channel joined.
    async fn run_join(
        &mut self,
        msg: &Message,
        topic: &str,
        join_ref: &str,
    ) -> Result<Option<Vec<Effect>>, Stop> {
        let join_reply = |status: ReplyStatus, response: Value| -> ServerMessage {
            Reply {
                join_ref: Some(join_ref.to_owned()),
                msg_ref: msg.msg_ref.clone(),
                topic: topic.to_owned(),
                status,
                response: Payload::Json(response),
            }
            .into()
        };
        let Some(factory) = self.shared.route(topic) else {
            self.send(unmatched_topic(msg)).await?;
            return Ok(None);
        };
        if self.channels.len() >= self.shared.config.max_channels_per_socket {
            let reply = join_reply(
                ReplyStatus::Error,
                json!({"reason": "too many channels joined"}),
            );
            self.send(reply).await?;
            return Ok(None);
        }
        if !self.shared.has_room(topic) {
            self.send(join_reply(ReplyStatus::Error, max_clients_reached()))
                .await?;
            return Ok(None);
        }
        let fault = self.shared.join_fault(topic);
        self.block(fault.delay).await?;
        if let Some(response) = fault.reject {
            self.send(join_reply(ReplyStatus::Error, response)).await?;
            return Ok(None);
        }

        let mut handler = factory(topic);
        let mut ctx = ChannelContext::new(topic, join_ref, self.id);
        let outcome = handler.join(&mut ctx, &msg.payload);
        let ChannelContext { effects, block, .. } = ctx;
        self.block(block).await?;
        match outcome {
            JoinOutcome::Ok(response) => {
                if self.shared.add_member(self.id, topic, join_ref).is_err() {
                    self.send(join_reply(ReplyStatus::Error, max_clients_reached()))
                        .await?;
                    return Ok(None);
                }
                let channel = Channel {
                    join_ref: join_ref.to_owned(),
                    handler,
                    leaving: false,
                };
                self.channels.insert(topic.to_owned(), channel);
                self.send(join_reply(ReplyStatus::Ok, response)).await?;
                Ok(Some(effects))
            }
            JoinOutcome::Error(response) => {
                self.send(join_reply(ReplyStatus::Error, response)).await?;
                Ok(None)
            }
        }
    }

    /// A leave of the current incarnation is completed (reply, then `phx_close`) after the
    /// frames already received; a stale one is ignored; one for an unjoined topic is answered
    /// ok at once.
    async fn on_leave(&mut self, msg: Message) -> Step {
        match self.channels.get_mut(&msg.topic) {
            Some(channel) if msg.join_ref.as_deref() == Some(channel.join_ref.as_str()) => {
                if !channel.leaving {
                    channel.leaving = true;
                    let command = SocketCommand::FinishLeave {
                        topic: msg.topic,
                        join_ref: channel.join_ref.clone(),
                        leave_ref: msg.msg_ref,
                    };
                    self.schedule(command, self.shared.config.leave_delay);
                }
                Ok(())
            }
            Some(_) => {
                self.record_stale(msg);
                Ok(())
            }
            None => self.send(Reply::ok(&msg, Payload::empty()).into()).await,
        }
    }

    /// Any other event: to the channel's handler if the join_ref is current, dropped without
    /// a reply if it is stale, `unmatched topic` if the topic has no channel.
    async fn on_push(&mut self, msg: Message) -> Step {
        let id = self.id;
        let Some(channel) = self.channels.get_mut(&msg.topic) else {
            return self.send(unmatched_topic(&msg)).await;
        };
        if channel.leaving || msg.join_ref.as_deref() != Some(channel.join_ref.as_str()) {
            self.record_stale(msg);
            return Ok(());
        }
        let join_ref = channel.join_ref.clone();
        let Message {
            join_ref: msg_join_ref,
            msg_ref,
            topic,
            event,
            payload,
        } = msg;
        let mut ctx = ChannelContext::new(&topic, &join_ref, id);
        let outcome = channel.handler.handle_in(&mut ctx, &event, payload);
        let ChannelContext { effects, block, .. } = ctx;
        self.shared.touch(&topic);
        self.block(block).await?;
        self.run_effects(&topic, &join_ref, effects).await?;
        let reply = |status: ReplyStatus, response: Payload| -> ServerMessage {
            Reply {
                join_ref: msg_join_ref.clone(),
                msg_ref: msg_ref.clone(),
                topic: topic.clone(),
                status,
                response,
            }
            .into()
        };
        match outcome {
            HandleOutcome::Reply { status, response } => self.send(reply(status, response)).await,
            HandleOutcome::NoReply => Ok(()),
            HandleOutcome::Stop { reply: answer } => {
                if let Some((status, response)) = answer {
                    self.send(reply(status, response)).await?;
                }
                self.end_channel(&topic, Some(&join_ref), ChannelEnd::Stopped)
                    .await
            }
            HandleOutcome::Crash => {
                self.end_channel(&topic, Some(&join_ref), ChannelEnd::Crashed)
                    .await
            }
        }
    }

    fn record_stale(&self, msg: Message) {
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

    async fn run_effects(&mut self, topic: &str, join_ref: &str, effects: Vec<Effect>) -> Step {
        for effect in effects {
            match effect {
                Effect::Push { event, payload } => {
                    self.send(Message::channel_push(join_ref, topic, event, payload).into())
                        .await?;
                }
                Effect::PushAfter {
                    delay,
                    event,
                    payload,
                } => {
                    let command = SocketCommand::Deliver {
                        topic: topic.to_owned(),
                        join_ref: Some(join_ref.to_owned()),
                        message: Message::channel_push(join_ref, topic, event, payload).into(),
                    };
                    self.schedule(command, delay);
                }
                Effect::Broadcast { event, payload } => {
                    self.broadcast(topic, Message::broadcast(topic, event, payload).into())
                        .await?;
                }
                Effect::TrackPresence { key, meta } => {
                    let owner = (self.id, join_ref.to_owned());
                    if let Some(diff) = self.shared.track_presence(topic, owner, key, meta) {
                        self.broadcast(
                            topic,
                            Message::broadcast(topic, "presence_diff", diff).into(),
                        )
                        .await?;
                    }
                }
                Effect::PushPresenceState => {
                    let state = self.shared.presence_state(topic);
                    self.send(
                        Message::channel_push(join_ref, topic, "presence_state", state).into(),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Broadcast to the other members through their sockets, and to this socket directly so
    /// the sender sees the broadcast before its own reply.
    async fn broadcast(&mut self, topic: &str, message: ServerMessage) -> Step {
        self.shared.broadcast(topic, Some(self.id), &message);
        self.deliver(topic, None, message).await
    }

    async fn on_command(&mut self, command: SocketCommand) -> Step {
        match command {
            SocketCommand::Deliver {
                topic,
                join_ref,
                message,
            } => self.deliver(&topic, join_ref.as_deref(), message).await,
            SocketCommand::FinishLeave {
                topic,
                join_ref,
                leave_ref,
            } => {
                let pending = self
                    .channels
                    .get(&topic)
                    .is_some_and(|channel| channel.leaving && channel.join_ref == join_ref);
                if !pending {
                    return Ok(());
                }
                self.channels.remove(&topic);
                self.shared
                    .remove_member(self.id, &topic, &join_ref, ChannelEnd::Left);
                let reply = Reply {
                    join_ref: Some(join_ref.clone()),
                    msg_ref: leave_ref,
                    topic: topic.clone(),
                    status: ReplyStatus::Ok,
                    response: Payload::empty(),
                };
                self.send(reply.into()).await?;
                self.send(Message::close(join_ref, topic).into()).await
            }
            SocketCommand::End {
                topic,
                join_ref,
                end,
            } => self.end_channel(&topic, join_ref.as_deref(), end).await,
            SocketCommand::Raw(frame) => self
                .ws
                .send(frame.into_ws_message())
                .await
                .map_err(|_| Stop::Gone),
            SocketCommand::Close { code, reason } => Err(Stop::Close { code, reason }),
            SocketCommand::Abort => Err(Stop::Abort),
        }
    }

    /// Send `message` if `topic` has a live channel here (of incarnation `join_ref`, if given).
    async fn deliver(
        &mut self,
        topic: &str,
        join_ref: Option<&str>,
        message: ServerMessage,
    ) -> Step {
        let live = self.channels.get(topic).is_some_and(|channel| {
            !channel.leaving && join_ref.is_none_or(|wanted| wanted == channel.join_ref)
        });
        if live {
            self.send(message).await
        } else {
            Ok(())
        }
    }

    /// End a channel from the server side: `phx_error` for a crash, `phx_close` otherwise.
    async fn end_channel(&mut self, topic: &str, join_ref: Option<&str>, end: ChannelEnd) -> Step {
        let current = self
            .channels
            .get(topic)
            .is_some_and(|channel| join_ref.is_none_or(|wanted| wanted == channel.join_ref));
        if !current {
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
        self.send(message.into()).await
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

    /// Keep the socket busy for `duration`: no frame is read meanwhile. Close and abort
    /// commands still take effect; other commands wait until after.
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

    async fn send(&mut self, message: ServerMessage) -> Step {
        match self.codec.encode_server_message(&message) {
            Ok(frame) => self
                .ws
                .send(frame.into_ws_message())
                .await
                .map_err(|_| Stop::Gone),
            Err(error) => {
                tracing::warn!(%error, "dev server: dropping an outbound message that cannot be encoded");
                Ok(())
            }
        }
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
