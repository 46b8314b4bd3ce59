//! A simulated Phoenix server for one client socket, written from the
//! protocol's rules (DESIGN §6 and the transcripts recorded from Phoenix
//! 1.7.24), independently of the session and the engine: it only shares the
//! codec's client-frame decoder. Server frames are written as plain JSON
//! arrays here.
//!
//! Frames from the client wait in an inbox until the server processes them
//! (all at once, in order, like the socket process draining its mailbox); a
//! paused server lets them wait. What the server sends waits in an outbox
//! for the driver to deliver, each frame tagged with the channel incarnation
//! that sent it, so the driver can tell which incarnation a broadcast (whose
//! join_ref is null) came from.
//!
//! The rules:
//! - `phx_join` of a topic with no channel: answered by the join policy
//!   (ok `{"joined": topic}` by default, `fail:*` rejected `unauthorized`,
//!   `nope:*` unrouted, over the channel cap `too many channels joined`).
//!   The channel's join_ref is the join's join_ref (its ref when null).
//! - **duplicate join** (a channel already holds the topic): the new join is
//!   answered first, then the old channel gets `phx_close` with its own
//!   join_ref; a leave of the old channel still pending is never answered.
//! - `phx_leave`: answered ok at the end of the batch, then `phx_close`; a
//!   leave of a topic with no channel is answered ok at once.
//! - a push whose join_ref is not the channel's: dropped without a reply
//!   (recent Phoenix) or handed to the current channel (Phoenix 1.7), as
//!   configured; a push to a topic with no channel gets `unmatched topic`.
//! - channel events: `noreply` is never answered, `error` is answered with
//!   an error, `boom` crashes the channel (`phx_error`), `stop` stops it
//!   (`phx_close`), `broadcast` broadcasts `msg` to the topic then answers;
//!   anything else is echoed in an ok reply.
//! - heartbeats are answered on their ref with a null join_ref (unless the
//!   server is told not to).
//! - `presence:*` tracks the joiner under `params.user`: after the join's ok
//!   reply comes the `presence_diff` announcing it, then `presence_state`.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use channel_registry::codec::{Codec, Frame, FrameRef, Message, Payload};
use serde_json::{json, Value};

/// What the server does with a push stamped with a join_ref that is not
/// its channel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StalePushes {
    /// Dropped without a reply (recent Phoenix).
    Drop,
    /// Handled by the current channel, replied with its join_ref (Phoenix 1.7).
    HandToCurrent,
}

/// How the server answers one join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinAnswer {
    /// `{"status": "ok", "response": {"joined": topic}}`.
    Ok,
    /// `{"status": "error", "response": {"reason": ...}}`.
    Reject(String),
}

/// Which channel incarnation sent a frame, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A reply (to a join, leave, push or heartbeat).
    Reply,
    /// A message of this channel incarnation (push, broadcast,
    /// `phx_close`, `phx_error`).
    Channel { topic: String, join_ref: String },
}

/// A frame the server sends, with its origin.
#[derive(Clone, Debug)]
pub struct ServerFrame {
    pub text: String,
    pub source: Source,
}

/// One client frame as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The connection it came on (1 for the first).
    pub conn: u64,
    pub message: Message,
}

#[derive(Clone, Debug)]
struct Channel {
    join_ref: String,
    /// The ref of a `phx_leave` being handled (answered at the batch end).
    leaving: Option<String>,
    /// The presence key this socket is tracked under, on `presence:*`.
    presence: Option<(String, String)>,
}

/// What the server saw of one topic on the current connection.
#[derive(Clone, Debug, Default)]
struct TopicHistory {
    /// join_ref of the last join processed, whatever its answer.
    last_join: Option<String>,
    /// join_refs accepted.
    accepted: Vec<String>,
    /// join_refs the server ended on its own (crash, stop, duplicate join).
    ended_by_server: HashSet<String>,
    /// join_refs the client left.
    left: HashSet<String>,
}

/// The simulated Phoenix server. See the module docs for its rules.
pub struct Server {
    codec: Codec,
    /// Connections opened so far; the current one is `conn` while `open`.
    pub conn: u64,
    pub open: bool,
    channels: BTreeMap<String, Channel>,
    inbox: VecDeque<Message>,
    outbox: VecDeque<ServerFrame>,
    /// Whether client frames wait unprocessed (a paused or slow server).
    pub paused: bool,
    pub answer_heartbeats: bool,
    pub stale_pushes: StalePushes,
    pub max_channels: usize,
    /// Push `sync` to every channel right after its join's reply (as the
    /// recorded server's `room:*` channels do, 50 ms later).
    pub sync_on_join: bool,
    /// Answers for the next joins of a topic, before the default policy.
    join_answers: HashMap<String, VecDeque<JoinAnswer>>,
    /// Other sockets' presences per topic: key → phx_refs.
    others: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    phx_refs: u64,
    history: HashMap<String, TopicHistory>,
    /// Every client frame received, in order.
    pub received: Vec<Received>,
    /// Client frames that broke the protocol contract, as the server saw them.
    pub violations: Vec<String>,
    /// Pushes dropped for a stale join_ref.
    pub stale_dropped: u64,
    /// Frames that could not be decoded.
    pub undecodable: u64,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

fn frame(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: Value,
) -> String {
    json!([join_ref, msg_ref, topic, event, payload]).to_string()
}

fn reply(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    response: Value,
) -> String {
    frame(
        join_ref,
        msg_ref,
        topic,
        "phx_reply",
        json!({"status": status, "response": response}),
    )
}

impl Server {
    pub fn new() -> Server {
        Server {
            codec: Codec::new(),
            conn: 0,
            open: false,
            channels: BTreeMap::new(),
            inbox: VecDeque::new(),
            outbox: VecDeque::new(),
            paused: false,
            answer_heartbeats: true,
            stale_pushes: StalePushes::Drop,
            max_channels: 100,
            sync_on_join: false,
            join_answers: HashMap::new(),
            others: BTreeMap::new(),
            phx_refs: 0,
            history: HashMap::new(),
            received: Vec::new(),
            violations: Vec::new(),
            stale_dropped: 0,
            undecodable: 0,
        }
    }

    // --- the connection ----------------------------------------------------------------

    /// A new socket connects: it starts with no channel.
    pub fn accept(&mut self) {
        self.forget_socket();
        self.conn += 1;
        self.open = true;
    }

    /// The socket is gone (closed by either side, or dropped): its channels,
    /// its unprocessed frames and its undelivered frames are gone with it.
    pub fn forget_socket(&mut self) {
        self.open = false;
        self.channels.clear();
        self.inbox.clear();
        self.outbox.clear();
        self.history.clear();
    }

    /// A frame from the client arrives (it waits in the inbox).
    pub fn receive(&mut self, frame: &Frame) {
        match self.codec.decode_client_frame(frame.as_frame_ref()) {
            Ok(message) => {
                self.received.push(Received {
                    conn: self.conn,
                    message: message.clone(),
                });
                self.inbox.push_back(message);
            }
            Err(error) => {
                self.undecodable += 1;
                self.violations
                    .push(format!("the client sent an undecodable frame: {error}"));
            }
        }
    }

    /// Decodes a text frame as the client would have sent it (for tests
    /// that look at frames).
    pub fn decode(&self, frame: FrameRef<'_>) -> Option<Message> {
        self.codec.decode_client_frame(frame).ok()
    }

    pub fn inbox_len(&self) -> usize {
        self.inbox.len()
    }

    pub fn pop_outbox(&mut self) -> Option<ServerFrame> {
        self.outbox.pop_front()
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Queues the answers of the next joins of `topic`.
    pub fn answer_joins(&mut self, topic: &str, answers: impl IntoIterator<Item = JoinAnswer>) {
        self.join_answers
            .entry(topic.to_owned())
            .or_default()
            .extend(answers);
    }

    // --- what the server holds ---------------------------------------------------------

    /// The join_ref of the channel holding `topic`, if any.
    pub fn channel(&self, topic: &str) -> Option<&str> {
        self.channels.get(topic).map(|c| c.join_ref.as_str())
    }

    /// Every channel: topic → join_ref.
    pub fn channels(&self) -> BTreeMap<String, String> {
        self.channels
            .iter()
            .map(|(t, c)| (t.clone(), c.join_ref.clone()))
            .collect()
    }

    /// Whether the server accepted a join of `topic` with `join_ref` on the
    /// current connection.
    pub fn accepted(&self, topic: &str, join_ref: &str) -> bool {
        self.history
            .get(topic)
            .is_some_and(|h| h.accepted.iter().any(|r| r == join_ref))
    }

    /// Frames of the current connection received so far with this event.
    pub fn received_events(&self, event: &str) -> Vec<Message> {
        self.received
            .iter()
            .filter(|r| r.conn == self.conn && r.message.event == event)
            .map(|r| r.message.clone())
            .collect()
    }

    // --- processing --------------------------------------------------------------------

    /// Handles every frame in the inbox, in order, then answers the leaves
    /// of the batch.
    pub fn process(&mut self) {
        if !self.open {
            self.inbox.clear();
            return;
        }
        while let Some(message) = self.inbox.pop_front() {
            self.handle(message);
        }
        let leaving: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.leaving.is_some())
            .map(|(t, _)| t.clone())
            .collect();
        for topic in leaving {
            if let Some(channel) = self.channels.remove(&topic) {
                let join_ref = channel.join_ref.as_str();
                let leave_ref = channel.leaving.as_deref();
                self.send_reply(reply(Some(join_ref), leave_ref, &topic, "ok", json!({})));
                self.send_lifecycle(&topic, join_ref, "phx_close");
            }
        }
    }

    fn handle(&mut self, m: Message) {
        if m.topic == "phoenix" && m.event == "heartbeat" {
            if self.answer_heartbeats {
                self.send_reply(reply(
                    None,
                    m.msg_ref.as_deref(),
                    "phoenix",
                    "ok",
                    json!({}),
                ));
            }
            return;
        }
        match m.event.as_str() {
            "phx_join" => self.join(m),
            "phx_leave" => self.leave(m),
            _ => self.push(m),
        }
    }

    fn join(&mut self, m: Message) {
        let topic = m.topic.clone();
        let msg_ref = m.msg_ref.as_deref();
        if topic.starts_with("nope:") {
            let response = json!({"reason": "unmatched topic"});
            return self.send_reply(reply(None, msg_ref, &topic, "error", response));
        }
        let Some(join_ref) = m.join_ref.clone().or_else(|| m.msg_ref.clone()) else {
            let response = json!({"reason": "unmatched topic"});
            return self.send_reply(reply(None, msg_ref, &topic, "error", response));
        };
        let old = self.channels.remove(&topic);
        let history = self.history.entry(topic.clone()).or_default();
        history.last_join = Some(join_ref.clone());
        let answer = if self.channels.len() >= self.max_channels {
            JoinAnswer::Reject("too many channels joined".to_owned())
        } else {
            self.join_answers
                .get_mut(&topic)
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(|| default_answer(&topic))
        };
        match answer {
            JoinAnswer::Ok => {
                let response = json!({"joined": topic});
                self.send_reply(reply(
                    m.join_ref.as_deref(),
                    msg_ref,
                    &topic,
                    "ok",
                    response,
                ));
                self.history
                    .entry(topic.clone())
                    .or_default()
                    .accepted
                    .push(join_ref.clone());
                let mut channel = Channel {
                    join_ref: join_ref.clone(),
                    leaving: None,
                    presence: None,
                };
                if topic.starts_with("presence:") {
                    let key = m
                        .payload
                        .as_json()
                        .and_then(|p| p.get("user"))
                        .and_then(Value::as_str)
                        .unwrap_or("anon")
                        .to_owned();
                    self.phx_refs += 1;
                    let phx_ref = format!("F{}", self.phx_refs);
                    channel.presence = Some((key.clone(), phx_ref.clone()));
                    self.channels.insert(topic.clone(), channel);
                    // Phoenix's order: the diff announcing the joiner, then
                    // the state pushed to it.
                    let joins = json!({ key.as_str(): {"metas": [{"phx_ref": phx_ref}]} });
                    self.broadcast(
                        &topic,
                        "presence_diff",
                        json!({"joins": joins, "leaves": {}}),
                    );
                    let state = self.presence_state(&topic);
                    self.push_to(&topic, "presence_state", state);
                } else {
                    self.channels.insert(topic.clone(), channel);
                }
                if self.sync_on_join {
                    self.push_to(&topic, "sync", json!({"n": 1}));
                }
            }
            JoinAnswer::Reject(reason) => {
                let response = json!({"reason": reason});
                self.send_reply(reply(
                    m.join_ref.as_deref(),
                    msg_ref,
                    &topic,
                    "error",
                    response,
                ));
            }
        }
        if let Some(old) = old {
            // Duplicate join: the old channel is closed after the new join's
            // reply; a leave it was handling is never answered.
            self.send_lifecycle(&topic, &old.join_ref, "phx_close");
            self.end_by_server(&topic, &old.join_ref);
        }
    }

    fn leave(&mut self, m: Message) {
        let topic = m.topic.clone();
        let join_ref = m.join_ref.clone().unwrap_or_default();
        self.history
            .entry(topic.clone())
            .or_default()
            .left
            .insert(join_ref.clone());
        let stale_policy = self.stale_pushes;
        match self.channels.get_mut(&topic) {
            Some(channel)
                if channel.join_ref == join_ref || stale_policy == StalePushes::HandToCurrent =>
            {
                if channel.leaving.is_none() {
                    channel.leaving = m.msg_ref.clone();
                }
            }
            Some(_) => self.stale_dropped += 1,
            None => {
                let msg_ref = m.msg_ref.as_deref();
                self.send_reply(reply(
                    m.join_ref.as_deref(),
                    msg_ref,
                    &topic,
                    "ok",
                    json!({}),
                ));
            }
        }
    }

    fn push(&mut self, m: Message) {
        let topic = m.topic.clone();
        self.check_stamp(&m);
        let msg_ref = m.msg_ref.as_deref();
        let stale_policy = self.stale_pushes;
        let Some(channel) = self.channels.get(&topic) else {
            let response = json!({"reason": "unmatched topic"});
            return self.send_reply(reply(None, msg_ref, &topic, "error", response));
        };
        let current = channel.join_ref.clone();
        if m.join_ref.as_deref() != Some(current.as_str()) && stale_policy == StalePushes::Drop {
            self.stale_dropped += 1;
            return;
        }
        let jr = Some(current.as_str());
        match m.event.as_str() {
            "noreply" => {}
            "error" => self.send_reply(reply(
                jr,
                msg_ref,
                &topic,
                "error",
                json!({"reason": "asked"}),
            )),
            "boom" => {
                self.crash(&topic);
            }
            "stop" => {
                self.stop(&topic);
            }
            "broadcast" => {
                let payload = json_of(&m.payload);
                self.broadcast(&topic, "msg", payload);
                self.send_reply(reply(jr, msg_ref, &topic, "ok", json!({})));
            }
            _ => {
                let payload = json_of(&m.payload);
                self.send_reply(reply(jr, msg_ref, &topic, "ok", payload));
            }
        }
    }

    /// A push may only carry the join_ref of the channel the client joined
    /// last on this topic and this connection, accepted and not left; the
    /// channel may be gone only if the server ended it (a race).
    fn check_stamp(&mut self, m: &Message) {
        let join_ref = m.join_ref.clone().unwrap_or_default();
        let history = self.history.get(&m.topic);
        let last = history.and_then(|h| h.last_join.as_deref());
        let accepted = history.is_some_and(|h| h.accepted.contains(&join_ref));
        let left = history.is_some_and(|h| h.left.contains(&join_ref));
        let ended = history.is_some_and(|h| h.ended_by_server.contains(&join_ref));
        let current = self.channels.get(&m.topic).map(|c| c.join_ref.as_str());
        let ok = last == Some(join_ref.as_str())
            && accepted
            && !left
            && (current == Some(join_ref.as_str()) || (current.is_none() && ended));
        if !ok {
            self.violations.push(format!(
                "connection {}: push {:?} on {:?} stamped with join_ref {:?}; the server's channel is \
                 {current:?}, the last join {last:?} (accepted {accepted}, left {left}, ended {ended})",
                self.conn, m.event, m.topic, join_ref
            ));
        }
    }

    // --- server-side actions -----------------------------------------------------------

    /// The channel of `topic` crashes (`phx_error`). False if there is none.
    pub fn crash(&mut self, topic: &str) -> bool {
        self.end(topic, "phx_error")
    }

    /// The channel of `topic` stops (`phx_close`). False if there is none.
    pub fn stop(&mut self, topic: &str) -> bool {
        self.end(topic, "phx_close")
    }

    fn end(&mut self, topic: &str, event: &str) -> bool {
        let Some(channel) = self.channels.remove(topic) else {
            return false;
        };
        self.send_lifecycle(topic, &channel.join_ref, event);
        self.end_by_server(topic, &channel.join_ref);
        true
    }

    /// A `phx_close` for an older incarnation of `topic` than its current
    /// one, as a late duplicate-join close. False if there was none.
    pub fn late_close(&mut self, topic: &str) -> bool {
        let current = self.channel(topic).map(str::to_owned);
        let old = self
            .history
            .get(topic)
            .and_then(|h| {
                h.accepted
                    .iter()
                    .rev()
                    .find(|r| Some(*r) != current.as_ref())
            })
            .cloned();
        match old {
            Some(join_ref) => {
                self.send_lifecycle(topic, &join_ref, "phx_close");
                true
            }
            None => false,
        }
    }

    /// The channel pushes `event` to this socket. False without a channel.
    pub fn push_to(&mut self, topic: &str, event: &str, payload: Value) -> bool {
        let Some(channel) = self.channels.get(topic) else {
            return false;
        };
        let join_ref = channel.join_ref.clone();
        self.outbox.push_back(ServerFrame {
            text: frame(Some(&join_ref), None, topic, event, payload),
            source: Source::Channel {
                topic: topic.to_owned(),
                join_ref,
            },
        });
        true
    }

    /// A broadcast on `topic` reaches this socket through its channel, if it
    /// has one.
    pub fn broadcast(&mut self, topic: &str, event: &str, payload: Value) -> bool {
        let Some(channel) = self.channels.get(topic) else {
            return false;
        };
        let join_ref = channel.join_ref.clone();
        self.outbox.push_back(ServerFrame {
            text: frame(None, None, topic, event, payload),
            source: Source::Channel {
                topic: topic.to_owned(),
                join_ref,
            },
        });
        true
    }

    /// Another socket joins `topic`'s presence under `key`.
    pub fn presence_join(&mut self, topic: &str, key: &str) {
        self.phx_refs += 1;
        let phx_ref = format!("F{}", self.phx_refs);
        self.others
            .entry(topic.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default()
            .push(phx_ref.clone());
        let joins = json!({ key: {"metas": [{"phx_ref": phx_ref}]} });
        self.broadcast(
            topic,
            "presence_diff",
            json!({"joins": joins, "leaves": {}}),
        );
    }

    /// Another socket's presence `key` leaves `topic` (every connection).
    pub fn presence_leave(&mut self, topic: &str, key: &str) {
        let Some(refs) = self.others.get_mut(topic).and_then(|m| m.remove(key)) else {
            return;
        };
        let metas: Vec<Value> = refs.iter().map(|r| json!({"phx_ref": r})).collect();
        let leaves = json!({ key: {"metas": metas} });
        self.broadcast(
            topic,
            "presence_diff",
            json!({"joins": {}, "leaves": leaves}),
        );
    }

    fn presence_state(&self, topic: &str) -> Value {
        let mut state = serde_json::Map::new();
        let mut add = |key: &str, phx_ref: &str| {
            let entry = state
                .entry(key.to_owned())
                .or_insert_with(|| json!({"metas": []}));
            if let Some(metas) = entry.get_mut("metas").and_then(Value::as_array_mut) {
                metas.push(json!({"phx_ref": phx_ref}));
            }
        };
        if let Some(others) = self.others.get(topic) {
            for (key, refs) in others {
                for r in refs {
                    add(key, r);
                }
            }
        }
        if let Some((key, r)) = self.channels.get(topic).and_then(|c| c.presence.as_ref()) {
            add(key, r);
        }
        Value::Object(state)
    }

    // --- helpers -----------------------------------------------------------------------

    fn send_reply(&mut self, text: String) {
        self.outbox.push_back(ServerFrame {
            text,
            source: Source::Reply,
        });
    }

    fn send_lifecycle(&mut self, topic: &str, join_ref: &str, event: &str) {
        self.outbox.push_back(ServerFrame {
            text: frame(Some(join_ref), Some(join_ref), topic, event, json!({})),
            source: Source::Channel {
                topic: topic.to_owned(),
                join_ref: join_ref.to_owned(),
            },
        });
    }

    fn end_by_server(&mut self, topic: &str, join_ref: &str) {
        self.history
            .entry(topic.to_owned())
            .or_default()
            .ended_by_server
            .insert(join_ref.to_owned());
    }
}

fn default_answer(topic: &str) -> JoinAnswer {
    if topic.starts_with("fail:") {
        JoinAnswer::Reject("unauthorized".to_owned())
    } else {
        JoinAnswer::Ok
    }
}

fn json_of(payload: &Payload) -> Value {
    payload.as_json().cloned().unwrap_or_else(|| json!({}))
}
