//! Differential test against a real Phoenix: every client frame recorded from a Phoenix
//! 1.7.24 server (`tests/transcripts/phoenix-1.7.24.json`) is replayed against the dev server
//! over real sockets, with channels configured like the recorded server's, and what the dev
//! server sends back is compared with what Phoenix sent.
//!
//! Frames are compared *normalised*: refs become symbols named after the client frame that
//! introduced them (so "the reply carries the join_ref of the second join" is compared, not
//! the literal "2"), presence `phx_ref`s become symbols by first appearance and `online_at`
//! a placeholder. Topics, events, statuses, payloads and order are compared as they are.
//!
//! Replay rules: client frames recorded back to back (no server frame between them) are
//! written in one go, as the recording client did; before a client frame is sent, every server
//! frame recorded before it must have arrived (that is what the recording client waited for).
//! After the last frame, a quiet window catches anything extra.
//!
//! Timing: the `sync` pushes come from a 50 ms timer on both servers, so where they fall
//! among other frames depends on scheduling, not on protocol rules. They are compared as an
//! order-independent set per socket; every other frame is compared in order.
#![cfg(feature = "dev-server")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use channel_registry::phoenix::codec::{Codec, FrameRef, ServerMessage};
use channel_registry::phoenix::codec::{Payload, ReplyStatus};
use channel_registry::phoenix::dev_server::{
    ChannelContext, ChannelHandler, DevServer, DevServerConfig, HandleOutcome, JoinOutcome,
    MissingVsnPolicy,
};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The recording, kept in the repository.
const RECORDING: &str = include_str!("transcripts/phoenix-1.7.24.json");
/// Upper bound for a frame the recording says comes next; reached only when it never does.
const EXPECT: Duration = Duration::from_secs(3);
/// After the last expected frame: longer than the recorded 50 ms sync timer.
const QUIET: Duration = Duration::from_millis(300);
/// The recorded servers' sync timer.
const SYNC_DELAY: Duration = Duration::from_millis(50);

// --- the recording -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct Recording {
    scenarios: Vec<Scenario>,
}

#[derive(Clone, Deserialize)]
struct Scenario {
    name: String,
    title: String,
    channels: String,
    sockets: BTreeMap<String, SocketSpec>,
    steps: Vec<Step>,
    #[serde(default)]
    missing_vsn: Option<String>,
    #[serde(default)]
    repeat: Option<usize>,
}

#[derive(Clone, Deserialize)]
struct SocketSpec {
    query: String,
}

#[derive(Clone, Deserialize)]
struct BinaryPush {
    join_ref: Option<String>,
    #[serde(rename = "ref")]
    msg_ref: Option<String>,
    topic: String,
    event: String,
    bytes: Vec<u8>,
}

#[derive(Clone, Deserialize)]
struct Step {
    socket: Option<String>,
    send: Option<Value>,
    send_text: Option<String>,
    send_binary: Option<BinaryPush>,
    send_binary_raw: Option<Vec<u8>>,
    recv: Option<Value>,
    recv_binary: Option<Value>,
    closed: Option<u16>,
    refused: Option<u16>,
}

/// What a client sends.
#[derive(Clone, Debug)]
enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
}

/// What a client sees: the unit of comparison.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Text(Value),
    /// A binary frame, decoded to the recording's object form.
    Binary(Value),
    /// The server closed the connection with this code.
    Closed(u16),
    /// The connection ended without a close frame.
    Ended,
    /// The upgrade was refused with this HTTP status.
    Refused(u16),
    /// The upgrade succeeded where a refusal was recorded.
    Accepted,
    /// A frame that is neither JSON nor a decodable binary frame.
    Unreadable(String),
}

enum Action {
    Send(String, Outgoing),
    Expect(String, Seen),
    Connect(String, u16),
}

fn actions(scenario: &Scenario) -> Vec<Action> {
    let mut out = Vec::new();
    for step in &scenario.steps {
        let Some(socket) = step.socket.clone() else {
            continue; // a note
        };
        if let Some(value) = &step.send {
            out.push(Action::Send(socket, Outgoing::Text(value.to_string())));
        } else if let Some(text) = &step.send_text {
            out.push(Action::Send(socket, Outgoing::Text(text.clone())));
        } else if let Some(push) = &step.send_binary {
            out.push(Action::Send(socket, Outgoing::Binary(binary_push(push))));
        } else if let Some(bytes) = &step.send_binary_raw {
            out.push(Action::Send(socket, Outgoing::Binary(bytes.clone())));
        } else if let Some(value) = &step.recv {
            out.push(Action::Expect(socket, Seen::Text(value.clone())));
        } else if let Some(value) = &step.recv_binary {
            out.push(Action::Expect(socket, Seen::Binary(value.clone())));
        } else if let Some(code) = step.closed {
            out.push(Action::Expect(socket, Seen::Closed(code)));
        } else if let Some(status) = step.refused {
            out.push(Action::Connect(socket, status));
        }
    }
    out
}

/// A client binary push: kind 0, four one-byte sizes, the fields, the payload.
fn binary_push(push: &BinaryPush) -> Vec<u8> {
    let fields = [
        push.join_ref.as_deref().unwrap_or(""),
        push.msg_ref.as_deref().unwrap_or(""),
        push.topic.as_str(),
        push.event.as_str(),
    ];
    let mut bytes = vec![0];
    bytes.extend(
        fields
            .iter()
            .map(|f| u8::try_from(f.len()).expect("short field")),
    );
    for field in fields {
        bytes.extend_from_slice(field.as_bytes());
    }
    bytes.extend_from_slice(&push.bytes);
    bytes
}

// --- the recorded server's channels --------------------------------------------------------------

/// The channels of the second recording (the first one's are the dev server's built-ins).
#[derive(Clone, Copy)]
enum Set2 {
    Room,
    Fail,
    Crash,
    Close,
    Slow,
    Presence,
}

impl ChannelHandler for Set2 {
    fn join(&mut self, ctx: &mut ChannelContext<'_>, params: &Payload) -> JoinOutcome {
        let params = params.as_json().cloned().unwrap_or_else(|| json!({}));
        match self {
            Set2::Room => {
                ctx.push_after(SYNC_DELAY, "sync", json!({"n": 1}));
                JoinOutcome::Ok(json!({"joined": ctx.topic()}))
            }
            Set2::Fail => JoinOutcome::Error(json!({"reason": "unauthorized"})),
            Set2::Crash | Set2::Close => JoinOutcome::Ok(json!({})),
            Set2::Slow => {
                let delay = params
                    .get("delay_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(2000);
                ctx.block_for(Duration::from_millis(delay));
                JoinOutcome::Ok(json!({}))
            }
            Set2::Presence => {
                let user = params.get("user").and_then(Value::as_str).unwrap_or("anon");
                let mut meta = Map::new();
                // Normalised away; a fixed value keeps the clock out of the test.
                meta.insert("online_at".to_owned(), json!(1_796_179_086_u64));
                ctx.track_presence(user, meta);
                ctx.push_presence_state();
                JoinOutcome::Ok(json!({}))
            }
        }
    }

    fn handle_in(
        &mut self,
        ctx: &mut ChannelContext<'_>,
        event: &str,
        payload: Payload,
    ) -> HandleOutcome {
        match (*self, event) {
            (Set2::Crash, "boom") => HandleOutcome::Crash,
            (Set2::Close, "stop") => HandleOutcome::Stop { reply: None },
            (Set2::Close, "stop_reply") => HandleOutcome::Stop {
                reply: Some((ReplyStatus::Ok, Payload::Json(json!({"bye": true})))),
            },
            (Set2::Room, "echo") => HandleOutcome::ok(payload),
            (Set2::Room, "error") => HandleOutcome::error(json!({"reason": "asked"})),
            (Set2::Room, "noreply") => HandleOutcome::NoReply,
            (Set2::Room, "push_me") => {
                ctx.push("pushed", payload);
                HandleOutcome::NoReply
            }
            (Set2::Room, "broadcast") => {
                ctx.broadcast("broadcast", payload);
                HandleOutcome::ok(json!({}))
            }
            // No handle_in clause: the channel process raises.
            _ => HandleOutcome::Crash,
        }
    }
}

fn config(scenario: &Scenario) -> DevServerConfig {
    let mut config = match scenario.channels.as_str() {
        // The built-in channels mirror the first recording's, timings included.
        "set1" => DevServerConfig::default(),
        "set2" => {
            let mut config = DevServerConfig::default().without_builtin_routes();
            for (pattern, channel) in [
                ("room:*", Set2::Room),
                ("fail:*", Set2::Fail),
                ("crash:*", Set2::Crash),
                ("close:*", Set2::Close),
                ("slow:*", Set2::Slow),
                ("presence:*", Set2::Presence),
            ] {
                config = config.route(pattern, move |_| Box::new(channel));
            }
            config
        }
        other => panic!("{}: unknown channel set {other}", scenario.name),
    };
    if scenario.missing_vsn.as_deref() == Some("fall_back_to_v1") {
        config = config.with_missing_vsn_policy(MissingVsnPolicy::FallBackToV1);
    }
    config
}

// --- replay ----------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Default)]
struct Peer {
    ws: Option<Ws>,
    ended: bool,
    expected: Vec<Seen>,
    seen: Vec<Seen>,
    sent: Vec<Outgoing>,
}

impl Peer {
    /// Read until `count` frames were seen, the connection ended, or `deadline` passed.
    async fn read_until(&mut self, count: usize, deadline: Instant) {
        while self.seen.len() < count && !self.ended {
            let Some(ws) = self.ws.as_mut() else {
                return;
            };
            let Ok(next) = timeout_at(deadline, ws.next()).await else {
                return;
            };
            self.observe(next);
        }
    }

    /// Read whatever else arrives before `deadline`.
    async fn read_rest(&mut self, deadline: Instant) {
        while !self.ended {
            let Some(ws) = self.ws.as_mut() else {
                return;
            };
            let Ok(next) = timeout_at(deadline, ws.next()).await else {
                return;
            };
            self.observe(next);
        }
    }

    fn observe(&mut self, next: Option<Result<WsMessage, tungstenite::Error>>) {
        let seen = match next {
            Some(Ok(WsMessage::Text(text))) => match serde_json::from_str(&text) {
                Ok(value) => Seen::Text(value),
                Err(_) => Seen::Unreadable(text.to_string()),
            },
            Some(Ok(WsMessage::Binary(bytes))) => decode_binary(&bytes),
            Some(Ok(WsMessage::Close(frame))) => {
                self.ended = true;
                frame.map_or(Seen::Ended, |frame| Seen::Closed(u16::from(frame.code)))
            }
            Some(Ok(_)) => return, // ping, pong
            Some(Err(_)) | None => {
                self.ended = true;
                Seen::Ended
            }
        };
        self.seen.push(seen);
    }
}

/// A server binary frame in the recording's decoded form.
fn decode_binary(bytes: &[u8]) -> Seen {
    match Codec::new().decode_server_frame(FrameRef::Binary(bytes)) {
        Ok(ServerMessage::Reply(reply)) => Seen::Binary(json!({
            "kind": "reply", "join_ref": reply.join_ref, "ref": reply.msg_ref, "topic": reply.topic,
            "status": reply.status.as_str(), "bytes": reply.response.as_binary().unwrap_or_default(),
        })),
        Ok(ServerMessage::Message(msg)) if msg.join_ref.is_none() => Seen::Binary(json!({
            "kind": "broadcast", "topic": msg.topic, "event": msg.event,
            "bytes": msg.payload.as_binary().unwrap_or_default(),
        })),
        Ok(ServerMessage::Message(msg)) => Seen::Binary(json!({
            "kind": "push", "join_ref": msg.join_ref, "topic": msg.topic, "event": msg.event,
            "bytes": msg.payload.as_binary().unwrap_or_default(),
        })),
        Ok(other) => Seen::Unreadable(format!("{other:?}")),
        Err(error) => Seen::Unreadable(format!("binary frame {bytes:?}: {error}")),
    }
}

/// Replay one scenario against a fresh dev server; returns the peers with what each expected
/// and saw.
async fn replay(scenario: &Scenario) -> BTreeMap<String, Peer> {
    let server = DevServer::start(config(scenario))
        .await
        .expect("dev server starts");
    let base = server.url();
    let mut peers: BTreeMap<String, Peer> = scenario
        .sockets
        .keys()
        .map(|name| (name.clone(), Peer::default()))
        .collect();
    let url = |name: &str| {
        let query = &scenario.sockets[name].query;
        if query.is_empty() {
            format!("{base}/websocket")
        } else {
            format!("{base}/websocket?{query}")
        }
    };
    let actions = actions(scenario);
    let mut index = 0;
    while index < actions.len() {
        match &actions[index] {
            Action::Expect(name, seen) => {
                peer(&mut peers, name).expected.push(seen.clone());
                index += 1;
            }
            Action::Connect(name, status) => {
                let seen = match tokio_tungstenite::connect_async(url(name)).await {
                    Err(error) => refusal(error),
                    Ok(_) => Seen::Accepted,
                };
                let peer = peer(&mut peers, name);
                peer.expected.push(Seen::Refused(*status));
                peer.seen.push(seen);
                peer.ended = true;
                index += 1;
            }
            Action::Send(name, _) => {
                // First, everything recorded before this frame must have arrived.
                let deadline = Instant::now() + EXPECT;
                for peer in peers.values_mut() {
                    let due = peer.expected.len();
                    peer.read_until(due, deadline).await;
                }
                // Then the run of frames recorded back to back, in one write.
                let peer = peer(&mut peers, name);
                if peer.ws.is_none() && !peer.ended {
                    match tokio_tungstenite::connect_async(url(name)).await {
                        Ok((ws, _)) => peer.ws = Some(ws),
                        // Shown in the comparison where the recording has frames.
                        Err(error) => {
                            peer.seen.push(refusal(error));
                            peer.ended = true;
                        }
                    }
                }
                while let Some(Action::Send(next, frame)) = actions.get(index) {
                    if next != name {
                        break;
                    }
                    peer.sent.push(frame.clone());
                    if let Some(ws) = peer.ws.as_mut() {
                        let message = match frame {
                            Outgoing::Text(text) => WsMessage::text(text.as_str()),
                            Outgoing::Binary(bytes) => WsMessage::binary(bytes.clone()),
                        };
                        if ws.feed(message).await.is_err() {
                            peer.ended = true;
                        }
                    }
                    index += 1;
                }
                if let Some(ws) = peer.ws.as_mut() {
                    let _ = ws.flush().await;
                }
            }
        }
    }
    let deadline = Instant::now() + EXPECT;
    for peer in peers.values_mut() {
        let due = peer.expected.len();
        peer.read_until(due, deadline).await;
    }
    let quiet = Instant::now() + QUIET;
    for peer in peers.values_mut() {
        peer.read_rest(quiet).await;
    }
    server.shutdown().await;
    peers
}

/// A failed upgrade as the client saw it.
fn refusal(error: tungstenite::Error) -> Seen {
    match error {
        tungstenite::Error::Http(response) => Seen::Refused(response.status().as_u16()),
        other => Seen::Unreadable(format!("the upgrade failed: {other}")),
    }
}

fn peer<'a>(peers: &'a mut BTreeMap<String, Peer>, name: &str) -> &'a mut Peer {
    peers
        .get_mut(name)
        .unwrap_or_else(|| panic!("socket {name} is not declared"))
}

// --- normalisation and comparison ---------------------------------------------------------------------

/// Symbols standing for values whose literal form does not matter, only their relations.
#[derive(Default)]
struct Symbols(BTreeMap<String, usize>);

impl Symbols {
    fn intern(&mut self, key: String) -> usize {
        let next = self.0.len() + 1;
        *self.0.entry(key).or_insert(next)
    }

    fn get(&self, key: &str) -> Option<usize> {
        self.0.get(key).copied()
    }
}

/// The refs a client used, numbered in the order it introduced them.
fn client_refs(sent: &[Outgoing]) -> Symbols {
    let mut refs = Symbols::default();
    for frame in sent {
        match frame {
            Outgoing::Text(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) => {
                    for item in items.iter().take(2).filter(|item| !item.is_null()) {
                        refs.intern(item.to_string());
                    }
                }
                Ok(Value::Object(object)) => {
                    for key in ["join_ref", "ref"] {
                        if let Some(item) = object.get(key).filter(|item| !item.is_null()) {
                            refs.intern(item.to_string());
                        }
                    }
                }
                _ => {}
            },
            Outgoing::Binary(bytes) => {
                let sizes: Vec<usize> = bytes.iter().skip(1).take(2).map(|&b| b.into()).collect();
                if bytes.first() == Some(&0) && sizes.len() == 2 {
                    let start = 5;
                    let join_ref = bytes.get(start..start + sizes[0]);
                    let msg_ref = bytes.get(start + sizes[0]..start + sizes[0] + sizes[1]);
                    for field in [join_ref, msg_ref].into_iter().flatten() {
                        if !field.is_empty() {
                            let text = String::from_utf8_lossy(field).into_owned();
                            refs.intern(Value::String(text).to_string());
                        }
                    }
                }
            }
        }
    }
    refs
}

struct Normaliser<'a> {
    refs: &'a Symbols,
    phx_refs: &'a mut Symbols,
}

impl Normaliser<'_> {
    fn reference(&self, value: &Value) -> Value {
        if value.is_null() {
            return Value::Null;
        }
        match self.refs.get(&value.to_string()) {
            Some(n) => Value::String(format!("ref#{n}")),
            None => Value::String(format!("ref not sent by the client: {value}")),
        }
    }

    fn payload(&mut self, value: &Value) -> Value {
        match value {
            Value::Object(object) => Value::Object(
                object
                    .iter()
                    .map(|(key, item)| {
                        let item = match (key.as_str(), item) {
                            ("phx_ref", Value::String(phx_ref)) => {
                                json!(format!("phx_ref#{}", self.phx_refs.intern(phx_ref.clone())))
                            }
                            ("online_at", Value::Number(_)) => json!("<unix seconds>"),
                            _ => self.payload(item),
                        };
                        (key.clone(), item)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.payload(item)).collect())
            }
            other => other.clone(),
        }
    }

    fn seen(&mut self, seen: &Seen) -> Seen {
        match seen {
            Seen::Text(Value::Array(items)) => {
                let mut items = items.clone();
                for (index, item) in items.iter_mut().enumerate() {
                    *item = match index {
                        0 | 1 => self.reference(item),
                        4 => self.payload(item),
                        _ => item.clone(),
                    };
                }
                Seen::Text(Value::Array(items))
            }
            Seen::Text(Value::Object(object)) | Seen::Binary(Value::Object(object)) => {
                let mut object = object.clone();
                for (key, item) in &mut object {
                    *item = match key.as_str() {
                        "ref" | "join_ref" => self.reference(item),
                        "payload" => self.payload(item),
                        _ => item.clone(),
                    };
                }
                match seen {
                    Seen::Binary(_) => Seen::Binary(Value::Object(object)),
                    _ => Seen::Text(Value::Object(object)),
                }
            }
            other => other.clone(),
        }
    }
}

/// Whether a frame was sent by the recorded servers' 50 ms timer.
fn is_timed(seen: &Seen) -> bool {
    match seen {
        Seen::Text(Value::Array(items)) => items.get(3).and_then(Value::as_str) == Some("sync"),
        Seen::Text(Value::Object(object)) => {
            object.get("event").and_then(Value::as_str) == Some("sync")
        }
        _ => false,
    }
}

fn show(seen: &Seen) -> String {
    match seen {
        Seen::Text(value) => value.to_string(),
        Seen::Binary(value) => format!("BIN {value}"),
        Seen::Closed(code) => format!("closed {code}"),
        Seen::Ended => "connection ended without a close frame".to_owned(),
        Seen::Refused(status) => format!("HTTP {status}"),
        Seen::Accepted => "upgrade accepted".to_owned(),
        Seen::Unreadable(text) => format!("unreadable: {text}"),
    }
}

/// Compare every socket of a replayed scenario; returns a report of the differences, showing
/// both sides, or `None` when the dev server matched the recording.
fn compare(scenario: &Scenario, peers: &BTreeMap<String, Peer>) -> Option<String> {
    let mut recorded_phx = Symbols::default();
    let mut replayed_phx = Symbols::default();
    let mut report = String::new();
    for (name, peer) in peers {
        let refs = client_refs(&peer.sent);
        let mut recorded = Normaliser {
            refs: &refs,
            phx_refs: &mut recorded_phx,
        };
        let expected: Vec<Seen> = peer.expected.iter().map(|s| recorded.seen(s)).collect();
        let mut replayed = Normaliser {
            refs: &refs,
            phx_refs: &mut replayed_phx,
        };
        let actual: Vec<Seen> = peer.seen.iter().map(|s| replayed.seen(s)).collect();

        let (expected_timed, expected_ordered): (Vec<_>, Vec<_>) =
            expected.iter().partition(|s| is_timed(s));
        let (actual_timed, actual_ordered): (Vec<_>, Vec<_>) =
            actual.iter().partition(|s| is_timed(s));
        let sorted = |frames: Vec<&Seen>| {
            let mut shown: Vec<String> = frames.into_iter().map(show).collect();
            shown.sort();
            shown
        };
        let (expected_timed, actual_timed) = (sorted(expected_timed), sorted(actual_timed));
        if expected_ordered == actual_ordered && expected_timed == actual_timed {
            continue;
        }
        let _ = writeln!(
            report,
            "\n{} ({}), socket {name}: the dev server differs from Phoenix 1.7.24",
            scenario.name, scenario.title
        );
        let _ = writeln!(report, "  in order (normalised):");
        for index in 0..expected_ordered.len().max(actual_ordered.len()) {
            let recorded = expected_ordered
                .get(index)
                .map_or("(nothing)".to_owned(), |s| show(s));
            let replayed = actual_ordered
                .get(index)
                .map_or("(nothing)".to_owned(), |s| show(s));
            let mark = if recorded == replayed { " " } else { "≠" };
            let _ = writeln!(report, "  {mark} #{index} phoenix:    {recorded}");
            let _ = writeln!(report, "  {mark} #{index} dev server: {replayed}");
        }
        if expected_timed != actual_timed {
            let _ = writeln!(report, "  ≠ timer-driven pushes, in any order:");
            let _ = writeln!(report, "      phoenix:    {expected_timed:?}");
            let _ = writeln!(report, "      dev server: {actual_timed:?}");
        }
    }
    (!report.is_empty()).then_some(report)
}

fn scenarios() -> Vec<Scenario> {
    let recording: Recording = serde_json::from_str(RECORDING).expect("the recording parses");
    recording.scenarios
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_server_answers_every_recorded_scenario_as_phoenix_did() {
    let scenarios = scenarios();
    assert!(scenarios.len() >= 20, "the recording holds every scenario");
    let runs = scenarios.iter().flat_map(|scenario| {
        (0..scenario.repeat.unwrap_or(1)).map(move |_| async move {
            let peers = replay(scenario).await;
            compare(scenario, &peers)
        })
    });
    let reports: Vec<String> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(reports.is_empty(), "{}", reports.concat());
}

/// The comparison has teeth: a reply whose join_ref points at the wrong join, an extra frame
/// and a missing timer push are each reported, with both sides shown.
#[test]
fn differences_are_reported_with_both_sides() {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.name == "set2/b")
        .expect("sequence b is recorded");
    let mut peer = Peer::default();
    for action in actions(&scenario) {
        match action {
            Action::Send(_, frame) => peer.sent.push(frame),
            Action::Expect(_, seen) => peer.expected.push(seen),
            Action::Connect(..) => {}
        }
    }
    peer.seen = peer.expected.clone();
    let peers = |peer: Peer| BTreeMap::from([("B".to_owned(), peer)]);
    let same = Peer {
        seen: peer.seen.clone(),
        expected: peer.expected.clone(),
        sent: peer.sent.clone(),
        ..Peer::default()
    };
    assert_eq!(compare(&scenario, &peers(same)), None);

    // The stale echo answered with the OLD join_ref instead of the new one.
    let mut wrong_ref = Peer {
        seen: peer.seen.clone(),
        expected: peer.expected.clone(),
        sent: peer.sent.clone(),
        ..Peer::default()
    };
    let stale_reply = wrong_ref
        .seen
        .iter()
        .position(|s| matches!(s, Seen::Text(v) if v[4]["response"] == json!({"old": true})))
        .expect("the stale echo's reply is recorded");
    wrong_ref.seen[stale_reply] = Seen::Text(
        json!(["1", "3", "room:d", "phx_reply", {"response": {"old": true}, "status": "ok"}]),
    );
    let report = compare(&scenario, &peers(wrong_ref)).expect("a wrong join_ref is reported");
    assert!(
        report.contains(r#"phoenix:    ["ref#2","ref#3""#),
        "{report}"
    );
    assert!(
        report.contains(r#"dev server: ["ref#1","ref#3""#),
        "{report}"
    );

    // One sync too many.
    let mut extra = Peer {
        seen: peer.seen.clone(),
        expected: peer.expected.clone(),
        sent: peer.sent.clone(),
        ..Peer::default()
    };
    extra
        .seen
        .push(Seen::Text(json!(["1", null, "room:d", "sync", {"n": 1}])));
    let report = compare(&scenario, &peers(extra)).expect("an extra sync is reported");
    assert!(report.contains("timer-driven"), "{report}");
}
