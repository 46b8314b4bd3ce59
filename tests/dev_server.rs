//! The dev server replays the scenarios of the Phoenix wire transcripts, driven by a raw
//! WebSocket client that checks every frame.
#![cfg(feature = "dev-server")]

use std::time::Duration;

use channel_registry::phoenix::codec::{Codec, FrameRef, Message, Payload, ServerMessage};
use channel_registry::phoenix::dev_server::{
    ChannelContext, ChannelEnd, ChannelHandler, DevServer, DevServerConfig, HandleOutcome,
    JoinOutcome, ServerEventKind, StalePushPolicy,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for a frame the test expects; reached only when the test fails.
const EXPECT: Duration = Duration::from_secs(3);
/// Window in which a frame the test forbids would have arrived.
const QUIET: Duration = Duration::from_millis(150);
/// No `sync` push within a test unless it asks for one.
const NO_SYNC: Duration = Duration::from_secs(600);

fn config() -> DevServerConfig {
    DevServerConfig::default().with_sync_delay(NO_SYNC)
}

async fn start(config: DevServerConfig) -> DevServer {
    DevServer::start(config).await.expect("dev server starts")
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    codec: Codec,
}

impl Client {
    async fn connect(server: &DevServer) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(server.websocket_url())
            .await
            .expect("client connects");
        Client {
            ws,
            codec: Codec::new(),
        }
    }

    async fn send_json(&mut self, frame: Value) {
        self.ws
            .send(WsMessage::text(frame.to_string()))
            .await
            .expect("send");
    }

    async fn send(&mut self, msg: &Message) {
        let frame = self.codec.encode_client_message(msg).expect("encodes");
        self.ws.send(frame.into_ws_message()).await.expect("send");
    }

    /// Queue frames and write them in one go, so the server receives them together.
    async fn send_together(&mut self, frames: &[Value]) {
        for frame in frames {
            self.ws
                .feed(WsMessage::text(frame.to_string()))
                .await
                .expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    /// The next data frame, or `None` when the connection ended.
    async fn next_ws(&mut self) -> Option<Result<WsMessage, tungstenite::Error>> {
        timeout(EXPECT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("a frame within the expected time")
    }

    async fn next_json(&mut self) -> Value {
        match self.next_ws().await {
            Some(Ok(WsMessage::Text(text))) => {
                serde_json::from_str(&text).expect("server sends JSON")
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    async fn next_message(&mut self) -> ServerMessage {
        match self.next_ws().await {
            Some(Ok(frame)) => {
                let data = FrameRef::from_ws_message(&frame).expect("a data frame");
                self.codec
                    .decode_server_frame(data)
                    .expect("server frames decode")
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Assert nothing arrives for a short while.
    async fn expect_quiet(&mut self) {
        if let Ok(frame) = timeout(QUIET, self.ws.next()).await {
            panic!("expected no frame, got {frame:?}");
        }
    }

    /// Wait for the connection to end; returns the close frame if there was one.
    async fn closed(&mut self) -> Result<Option<CloseFrame>, String> {
        match self.next_ws().await {
            Some(Ok(WsMessage::Close(frame))) => Ok(frame),
            Some(Ok(other)) => panic!("expected the connection to close, got {other:?}"),
            Some(Err(error)) => Err(error.to_string()),
            None => Ok(None),
        }
    }

    async fn join(&mut self, join_ref: &str, topic: &str, params: Value) -> Value {
        self.send_json(json!([join_ref, join_ref, topic, "phx_join", params]))
            .await;
        self.next_json().await
    }
}

fn ok_reply(join_ref: Value, msg_ref: &str, topic: &str, response: Value) -> Value {
    json!([join_ref, msg_ref, topic, "phx_reply", {"status": "ok", "response": response}])
}

fn error_reply(join_ref: Value, msg_ref: &str, topic: &str, response: Value) -> Value {
    json!([join_ref, msg_ref, topic, "phx_reply", {"status": "error", "response": response}])
}

fn joined(topic: &str, params: Value) -> Value {
    json!({"joined": topic, "params": params})
}

#[tokio::test]
async fn duplicate_join_is_answered_before_the_old_close() {
    let server = start(DevServerConfig::default().with_sync_delay(Duration::from_millis(20))).await;
    let mut c = Client::connect(&server).await;

    let reply = c.join("1", "room:dup", json!({"n": 1})).await;
    assert_eq!(
        reply,
        ok_reply(
            json!("1"),
            "1",
            "room:dup",
            joined("room:dup", json!({"n": 1}))
        )
    );
    assert_eq!(
        c.next_json().await,
        json!(["1", null, "room:dup", "sync", {"seq": 1}])
    );

    let reply = c.join("2", "room:dup", json!({"n": 2})).await;
    assert_eq!(
        reply,
        ok_reply(
            json!("2"),
            "2",
            "room:dup",
            joined("room:dup", json!({"n": 2}))
        )
    );
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "room:dup", "phx_close", {}])
    );
    assert_eq!(
        c.next_json().await,
        json!(["2", null, "room:dup", "sync", {"seq": 1}])
    );

    // The old join_ref is stale now. As on Phoenix 1.7 (the default policy), the push is
    // handled by the current channel and answered with the current join_ref.
    c.send_json(json!(["1", "3", "room:dup", "echo", {"via": "old"}]))
        .await;
    c.send_json(json!(["2", "4", "room:dup", "echo", {"via": "new"}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("2"), "3", "room:dup", json!({"via": "old"}))
    );
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("2"), "4", "room:dup", json!({"via": "new"}))
    );
    c.expect_quiet().await;

    server.view(|s| {
        assert_eq!(s.join_refs("room:dup"), ["2"]);
        assert_eq!(
            s.channel_ends("room:dup"),
            [("1".to_owned(), ChannelEnd::Duplicate)]
        );
        assert!(s.events().any(|e| matches!(
            &e.kind,
            ServerEventKind::StaleHandedToCurrent { topic, join_ref: Some(r), current_join_ref, .. }
                if topic == "room:dup" && r == "1" && current_join_ref == "2"
        )));
    });
}

#[tokio::test]
async fn back_to_back_duplicate_joins_cancel_the_old_sync() {
    let server = start(DevServerConfig::default().with_sync_delay(Duration::from_millis(30))).await;
    let mut c = Client::connect(&server).await;
    c.send_together(&[
        json!(["1", "1", "room:dup2", "phx_join", {}]),
        json!(["2", "2", "room:dup2", "phx_join", {}]),
    ])
    .await;
    let joined = joined("room:dup2", json!({}));
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "1", "room:dup2", joined.clone())
    );
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("2"), "2", "room:dup2", joined)
    );
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "room:dup2", "phx_close", {}])
    );
    assert_eq!(
        c.next_json().await,
        json!(["2", null, "room:dup2", "sync", {"seq": 1}])
    );
    c.expect_quiet().await;
}

#[tokio::test]
async fn leave_immediately_followed_by_join_gets_no_leave_reply() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    for round in 0..10 {
        let topic = format!("room:lj{round}");
        let reply = c.join("1", &topic, json!({})).await;
        assert_eq!(
            reply,
            ok_reply(json!("1"), "1", &topic, joined(&topic, json!({})))
        );
        c.send_together(&[
            json!(["1", "2", topic, "phx_leave", {}]),
            json!(["3", "3", topic, "phx_join", {}]),
        ])
        .await;
        assert_eq!(
            c.next_json().await,
            ok_reply(json!("3"), "3", &topic, joined(&topic, json!({})))
        );
        assert_eq!(
            c.next_json().await,
            json!(["1", "1", topic, "phx_close", {}])
        );
    }
    c.expect_quiet().await;
    assert_eq!(server.inbound_count("room:lj0", "phx_leave"), 1);
}

#[tokio::test]
async fn leave_is_replied_then_closed_and_the_topic_is_unmatched_after() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:leave", json!({})).await;
    c.send_json(json!(["1", "2", "room:leave", "phx_leave", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "2", "room:leave", json!({}))
    );
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "room:leave", "phx_close", {}])
    );

    c.send_json(json!(["1", "3", "room:leave", "echo", {"after": "leave"}]))
        .await;
    assert_eq!(
        c.next_json().await,
        error_reply(
            Value::Null,
            "3",
            "room:leave",
            json!({"reason": "unmatched topic"})
        )
    );
    // A leave for a topic that is not joined is answered ok.
    c.send_json(json!(["1", "4", "room:leave", "phx_leave", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "4", "room:leave", json!({}))
    );

    assert_eq!(server.inbound_count("room:leave", "phx_leave"), 2);
    assert_eq!(
        server.view(|s| s.channel_ends("room:leave")),
        [("1".to_owned(), ChannelEnd::Left)]
    );
    assert_eq!(server.joined_count(), 0);
}

#[tokio::test]
async fn rejected_join_is_an_error_reply_without_close() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    let reply = c.join("1", "fail:1", json!({})).await;
    assert_eq!(
        reply,
        error_reply(json!("1"), "1", "fail:1", json!({"reason": "unauthorized"}))
    );
    c.expect_quiet().await;
    assert_eq!(server.joined_count(), 0);
}

#[tokio::test]
async fn unrouted_join_and_push_get_unmatched_topic() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    let reply = c.join("3", "nosuch:1", json!({})).await;
    assert_eq!(
        reply,
        error_reply(
            Value::Null,
            "3",
            "nosuch:1",
            json!({"reason": "unmatched topic"})
        )
    );
    c.send_json(json!(["4", "5", "nosuch:1", "echo", {}])).await;
    assert_eq!(
        c.next_json().await,
        error_reply(
            Value::Null,
            "5",
            "nosuch:1",
            json!({"reason": "unmatched topic"})
        )
    );
}

#[tokio::test]
async fn crash_is_phx_error_and_the_topic_is_gone() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    let reply = c.join("1", "crash:1", json!({})).await;
    assert_eq!(
        reply,
        ok_reply(json!("1"), "1", "crash:1", json!({"joined": "crash:1"}))
    );
    c.send_json(json!(["1", "2", "crash:1", "boom", {}])).await;
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "crash:1", "phx_error", {}])
    );
    c.send_json(json!(["1", "3", "crash:1", "echo", {}])).await;
    assert_eq!(
        c.next_json().await,
        error_reply(
            Value::Null,
            "3",
            "crash:1",
            json!({"reason": "unmatched topic"})
        )
    );
    assert_eq!(
        server.view(|s| s.channel_ends("crash:1")),
        [("1".to_owned(), ChannelEnd::Crashed)]
    );
}

#[tokio::test]
async fn stop_closes_and_stop_reply_replies_first() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "close:1", json!({})).await;
    c.send_json(json!(["1", "2", "close:1", "stop", {}])).await;
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "close:1", "phx_close", {}])
    );

    c.send_json(json!(["2", "3", "close:2", "phx_join", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("2"), "3", "close:2", json!({"joined": "close:2"}))
    );
    c.send_json(json!(["2", "4", "close:2", "stop_reply", {"bye": true}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("2"), "4", "close:2", json!({"bye": true}))
    );
    assert_eq!(
        c.next_json().await,
        json!(["2", "2", "close:2", "phx_close", {}])
    );
}

#[tokio::test]
async fn slow_join_blocks_every_later_frame_on_the_socket() {
    let server = start(config().with_slow_join(Duration::from_millis(300))).await;
    let mut c = Client::connect(&server).await;
    let mut other = Client::connect(&server).await;
    let started = Instant::now();
    c.send_together(&[
        json!(["1", "1", "slow:1", "phx_join", {}]),
        json!(["2", "2", "room:after", "phx_join", {}]),
        json!(["2", "3", "phoenix", "heartbeat", {}]),
    ])
    .await;
    // Another socket is not blocked.
    other
        .send_json(json!([null, "1", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        other.next_json().await,
        ok_reply(Value::Null, "1", "phoenix", json!({}))
    );
    assert!(started.elapsed() < Duration::from_millis(300));

    assert_eq!(
        c.next_json().await,
        ok_reply(
            json!("1"),
            "1",
            "slow:1",
            json!({"joined": "slow:1", "slept_ms": 300})
        )
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        c.next_json().await,
        ok_reply(
            json!("2"),
            "2",
            "room:after",
            joined("room:after", json!({}))
        )
    );
    assert_eq!(
        c.next_json().await,
        ok_reply(Value::Null, "3", "phoenix", json!({}))
    );

    // delay_ms in the params overrides the default.
    let reply = c.join("4", "slow:2", json!({"delay_ms": 20})).await;
    assert_eq!(
        reply,
        ok_reply(
            json!("4"),
            "4",
            "slow:2",
            json!({"joined": "slow:2", "slept_ms": 20})
        )
    );
}

#[tokio::test]
async fn heartbeats_are_answered_with_a_null_join_ref_unless_muted() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.send_json(json!([null, "2", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(Value::Null, "2", "phoenix", json!({}))
    );

    server.set_heartbeat_replies(false);
    c.send_json(json!([null, "3", "phoenix", "heartbeat", {}]))
        .await;
    c.expect_quiet().await;

    server.set_heartbeat_replies(true);
    c.send_json(json!([null, "4", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(Value::Null, "4", "phoenix", json!({}))
    );
    assert_eq!(server.inbound_count("phoenix", "heartbeat"), 3);
}

#[tokio::test]
async fn broadcast_reaches_every_member_sender_first_then_its_reply() {
    let server = start(config()).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.join("1", "room:b", json!({})).await;
    b.join("1", "room:b", json!({})).await;

    a.send_json(json!(["1", "2", "room:b", "broadcast", {"hi": 1}]))
        .await;
    assert_eq!(
        a.next_json().await,
        json!([null, null, "room:b", "msg", {"hi": 1}])
    );
    assert_eq!(
        a.next_json().await,
        ok_reply(json!("1"), "2", "room:b", json!({}))
    );
    assert_eq!(
        b.next_json().await,
        json!([null, null, "room:b", "msg", {"hi": 1}])
    );

    // From the server side too.
    assert_eq!(server.broadcast("room:b", "news", json!({"n": 2})), 2);
    assert_eq!(
        a.next_json().await,
        json!([null, null, "room:b", "news", {"n": 2}])
    );
    assert_eq!(
        b.next_json().await,
        json!([null, null, "room:b", "news", {"n": 2}])
    );
    assert_eq!(server.push("room:b", "direct", json!({})), 2);
    assert_eq!(
        a.next_json().await,
        json!(["1", null, "room:b", "direct", {}])
    );
    assert_eq!(
        b.next_json().await,
        json!(["1", null, "room:b", "direct", {}])
    );
}

fn metas(payload: &Value, key: &str) -> Vec<Value> {
    payload
        .get(key)
        .and_then(|p| p.get("metas"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn presence_state_and_diffs() {
    let server = start(config()).await;
    let mut alice = Client::connect(&server).await;
    let reply = alice
        .join("1", "presence:lobby", json!({"user": "alice"}))
        .await;
    assert_eq!(
        reply,
        ok_reply(
            json!("1"),
            "1",
            "presence:lobby",
            json!({"joined": "presence:lobby", "user": "alice"})
        )
    );
    // The joiner's own diff comes before its state, as in the transcript.
    let diff = alice.next_json().await;
    assert_eq!(diff[0], Value::Null);
    assert_eq!(diff[3], "presence_diff");
    let alice_metas = metas(&diff[4]["joins"], "alice");
    assert_eq!(alice_metas.len(), 1);
    assert!(alice_metas[0]["phx_ref"].is_string());
    assert!(alice_metas[0]["online_at"].is_u64());
    let state = alice.next_json().await;
    assert_eq!(
        state,
        json!(["1", null, "presence:lobby", "presence_state", {"alice": {"metas": alice_metas}}])
    );

    let mut bob = Client::connect(&server).await;
    bob.join("1", "presence:lobby", json!({"user": "bob"}))
        .await;
    let diff = alice.next_json().await;
    assert_eq!(diff[3], "presence_diff");
    let bob_metas = metas(&diff[4]["joins"], "bob");
    assert_eq!(bob_metas.len(), 1);
    assert_eq!(diff[4]["leaves"], json!({}));
    bob.next_json().await; // bob's own diff
    let bob_state = bob.next_json().await;
    assert_eq!(bob_state[3], "presence_state");
    assert_eq!(metas(&bob_state[4], "alice"), alice_metas);
    assert_eq!(metas(&bob_state[4], "bob"), bob_metas);

    bob.send_json(json!(["1", "2", "presence:lobby", "phx_leave", {}]))
        .await;
    let diff = alice.next_json().await;
    assert_eq!(
        diff,
        json!([null, null, "presence:lobby", "presence_diff", {"joins": {}, "leaves": {"bob": {"metas": bob_metas}}}])
    );
    assert_eq!(server.view(|s| s.members("presence:lobby")), 1);
}

#[tokio::test]
async fn binary_push_gets_a_binary_reply_and_binary_broadcasts() {
    let server = start(config()).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.join("1", "room:bin", json!({})).await;
    b.join("7", "room:bin", json!({})).await;

    a.send(&Message::push(
        "1",
        "2",
        "room:bin",
        "echo",
        Payload::Binary(vec![0, 1, 2, 255]),
    ))
    .await;
    let ServerMessage::Reply(reply) = a.next_message().await else {
        panic!("expected a reply");
    };
    assert_eq!(reply.join_ref.as_deref(), Some("1"));
    assert_eq!(reply.msg_ref.as_deref(), Some("2"));
    assert!(reply.is_ok());
    assert_eq!(reply.response, Payload::Binary(vec![0, 1, 2, 255]));

    a.send(&Message::push(
        "1",
        "3",
        "room:bin",
        "broadcast",
        Payload::Binary(vec![9, 9]),
    ))
    .await;
    let expected = ServerMessage::Message(Message::broadcast(
        "room:bin",
        "msg",
        Payload::Binary(vec![9, 9]),
    ));
    assert_eq!(a.next_message().await, expected);
    assert_eq!(b.next_message().await, expected);

    assert_eq!(server.push("room:bin", "blob", Payload::Binary(vec![5])), 2);
    assert_eq!(
        b.next_message().await,
        ServerMessage::Message(Message::channel_push(
            "7",
            "room:bin",
            "blob",
            Payload::Binary(vec![5])
        ))
    );
}

#[tokio::test]
async fn channel_limit_per_socket() {
    let server = start(config().with_max_channels_per_socket(2)).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:1", json!({})).await;
    c.join("2", "room:2", json!({})).await;
    let reply = c.join("3", "room:3", json!({})).await;
    assert_eq!(
        reply,
        error_reply(
            json!("3"),
            "3",
            "room:3",
            json!({"reason": "too many channels joined"})
        )
    );
    // A duplicate join replaces a channel, so it does not count twice.
    let reply = c.join("4", "room:2", json!({})).await;
    assert_eq!(
        reply,
        ok_reply(json!("4"), "4", "room:2", joined("room:2", json!({})))
    );
    let ids = server.view(|s| s.socket_ids());
    assert_eq!(server.view(|s| s.joined_on(ids[0])), 2);
}

#[tokio::test]
async fn stale_pushes_are_dropped_without_reply_under_the_drop_policy() {
    let server = start(config().with_stale_push_policy(StalePushPolicy::Drop)).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:s", json!({})).await;
    c.send_json(json!(["9", "2", "room:s", "echo", {}])).await;
    c.send_json(json!([null, "3", "room:s", "echo", {}])).await;
    c.send_json(json!(["9", "4", "room:s", "phx_leave", {}]))
        .await;
    c.expect_quiet().await;
    assert!(server.view(|s| s.is_joined("room:s")));
    let dropped = server.view(|s| {
        s.events()
            .filter(|e| matches!(e.kind, ServerEventKind::DroppedStale { .. }))
            .count()
    });
    assert_eq!(dropped, 3);
    // The current join_ref is still served.
    c.send_json(json!(["1", "5", "room:s", "echo", {"n": 5}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "5", "room:s", json!({"n": 5}))
    );
}

#[tokio::test]
async fn stale_pushes_are_handed_to_the_current_channel_by_default_but_stale_leaves_ignored() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:s", json!({})).await;
    c.send_json(json!(["9", "2", "room:s", "echo", {"n": 2}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "2", "room:s", json!({"n": 2}))
    );
    c.send_json(json!([null, "3", "room:s", "echo", {"n": 3}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "3", "room:s", json!({"n": 3}))
    );
    // A leave stamped with another join_ref is ignored under every policy.
    c.send_json(json!(["9", "4", "room:s", "phx_leave", {}]))
        .await;
    c.expect_quiet().await;
    assert!(server.view(|s| s.is_joined("room:s")));
    server.view(|s| {
        let handed = s
            .events()
            .filter(|e| matches!(e.kind, ServerEventKind::StaleHandedToCurrent { .. }))
            .count();
        let dropped = s
            .events()
            .filter(|e| matches!(e.kind, ServerEventKind::DroppedStale { .. }))
            .count();
        assert_eq!((handed, dropped), (2, 1));
    });
}

#[tokio::test]
async fn connect_refusals_are_http_errors() {
    let server = start(config()).await;
    let status = |result: Result<_, tungstenite::Error>| match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the connection was accepted"),
    };
    let base = server.url();
    let refused =
        tokio_tungstenite::connect_async(format!("{base}/websocket?vsn=2.0.0&reject=1")).await;
    assert_eq!(status(refused), 403);
    let no_vsn = tokio_tungstenite::connect_async(format!("{base}/websocket")).await;
    assert_eq!(status(no_vsn), 400);
    let bad_path = tokio_tungstenite::connect_async(format!("{base}/nope?vsn=2.0.0")).await;
    assert_eq!(status(bad_path), 404);
    server
        .wait_until(EXPECT, |s| {
            s.events()
                .filter(|e| matches!(e.kind, ServerEventKind::Refused { .. }))
                .count()
                == 3
        })
        .await
        .expect("refusals are logged");

    // Parameters are recorded with the socket.
    let (_ws, _) =
        tokio_tungstenite::connect_async(format!("{base}/websocket?token=a%20b&vsn=2.0.0"))
            .await
            .expect("connects");
    server
        .wait_until(EXPECT, |s| s.socket_count() == 1)
        .await
        .expect("socket registered");
    let params = &server.sockets()[0].params;
    assert!(params.contains(&("token".to_owned(), "a b".to_owned())));
}

#[tokio::test]
async fn idle_sockets_are_closed() {
    let server = start(config().with_idle_timeout(Duration::from_millis(150))).await;
    let mut c = Client::connect(&server).await;
    let frame = c
        .closed()
        .await
        .expect("clean close")
        .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
    assert_eq!(frame.reason.as_str(), "idle timeout");
}

#[tokio::test]
async fn knobs_crash_stop_and_fail_joins() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:k1", json!({})).await;
    c.join("2", "room:k2", json!({})).await;

    assert_eq!(server.crash_channels("room:k1"), 1);
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "room:k1", "phx_error", {}])
    );
    assert_eq!(server.stop_channels("room:*"), 1);
    assert_eq!(
        c.next_json().await,
        json!(["2", "2", "room:k2", "phx_close", {}])
    );

    server.fail_joins("room:f*", json!({"reason": "nope"}));
    let reply = c.join("3", "room:f1", json!({})).await;
    assert_eq!(
        reply,
        error_reply(json!("3"), "3", "room:f1", json!({"reason": "nope"}))
    );
    server.clear_join_faults();
    let reply = c.join("4", "room:f1", json!({})).await;
    assert_eq!(
        reply,
        ok_reply(json!("4"), "4", "room:f1", joined("room:f1", json!({})))
    );

    server.delay_joins("room:d", Duration::from_millis(100));
    let started = Instant::now();
    c.join("5", "room:d", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn knobs_close_drop_and_garbage() {
    let server = start(config()).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    server
        .wait_until(EXPECT, |s| s.socket_count() == 2)
        .await
        .expect("both connected");

    assert_eq!(server.send_garbage_to_all(), 2);
    for c in [&mut a, &mut b] {
        let Some(Ok(frame)) = c.next_ws().await else {
            panic!("expected the garbage frame");
        };
        let data = FrameRef::from_ws_message(&frame).expect("a data frame");
        assert!(Codec::new().decode_server_frame(data).is_err());
    }

    assert_eq!(server.close_all_sockets(1012, "restart"), 2);
    let frame = a
        .closed()
        .await
        .expect("clean close")
        .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1012);
    server
        .wait_until(EXPECT, |s| s.socket_count() == 0)
        .await
        .expect("sockets gone");

    let mut c = Client::connect(&server).await;
    c.join("1", "room:x", json!({})).await;
    assert_eq!(server.drop_all_sockets(), 1);
    // An abrupt end: no close frame.
    match c.closed().await {
        Ok(None) | Err(_) => {}
        Ok(Some(frame)) => panic!("expected an abrupt close, got {frame:?}"),
    }
    server
        .wait_until(EXPECT, |s| s.socket_count() == 0 && !s.is_joined("room:x"))
        .await
        .expect("socket and channel gone");
    assert_eq!(
        server.view(|s| s.channel_ends("room:x")),
        [("1".to_owned(), ChannelEnd::SocketClosed)]
    );
}

#[tokio::test]
async fn malformed_client_frames_close_the_socket() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.ws.send(WsMessage::text("{not json")).await.expect("send");
    let frame = c
        .closed()
        .await
        .expect("clean close")
        .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1011);
    assert!(frame.reason.as_str().starts_with("malformed frame"));
    assert_eq!(server.view(|s| s.malformed_count()), 1);

    let mut c = Client::connect(&server).await;
    c.send_json(json!(["1", "1", "room:1", "phx_join", "not a map"]))
        .await;
    let frame = c
        .closed()
        .await
        .expect("clean close")
        .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1011);
}

#[tokio::test]
async fn topic_sessions_refcount_limit_and_end_after_grace() {
    let server = start(
        config()
            .with_max_clients_per_topic(2)
            .with_session_grace(Duration::from_millis(100)),
    )
    .await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    let mut c = Client::connect(&server).await;
    a.join("1", "room:s", json!({})).await;
    b.join("1", "room:s", json!({})).await;
    let reply = c.join("1", "room:s", json!({})).await;
    assert_eq!(
        reply,
        error_reply(
            json!("1"),
            "1",
            "room:s",
            json!({"reason": "max_clients_reached"})
        )
    );
    assert_eq!(server.view(|s| s.members("room:s")), 2);

    a.send_json(json!(["1", "2", "room:s", "phx_leave", {}]))
        .await;
    b.send_json(json!(["1", "2", "room:s", "phx_leave", {}]))
        .await;
    server
        .wait_until(EXPECT, |s| s.members("room:s") == 0)
        .await
        .expect("both left");
    // Still there during the grace; a join within it revives the same session.
    assert!(server.view(|s| s.has_session("room:s")));
    c.join("2", "room:s", json!({})).await;
    c.send_json(json!(["2", "3", "room:s", "phx_leave", {}]))
        .await;
    server
        .wait_until(EXPECT, |s| !s.has_session("room:s"))
        .await
        .expect("session ends after the grace");
    let ended = server.view(|s| {
        s.events()
            .filter(|e| matches!(e.kind, ServerEventKind::SessionEnded { .. }))
            .count()
    });
    assert_eq!(ended, 1);
}

#[tokio::test]
async fn idle_topic_sessions_close_their_members() {
    let server = start(config().with_session_idle_timeout(Some(Duration::from_millis(150)))).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:idle", json!({})).await;
    assert_eq!(
        c.next_json().await,
        json!(["1", "1", "room:idle", "phx_close", {}])
    );
    assert_eq!(
        server.view(|s| s.channel_ends("room:idle")),
        [("1".to_owned(), ChannelEnd::SessionIdle)]
    );
}

/// A handler that counts pushes and replies with the count.
struct Counter(u64);

impl ChannelHandler for Counter {
    fn join(&mut self, ctx: &mut ChannelContext<'_>, _params: &Payload) -> JoinOutcome {
        ctx.push("hello", json!({}));
        JoinOutcome::Ok(json!({}))
    }

    fn handle_in(
        &mut self,
        _ctx: &mut ChannelContext<'_>,
        _event: &str,
        _payload: Payload,
    ) -> HandleOutcome {
        self.0 += 1;
        HandleOutcome::ok(json!({"count": self.0}))
    }
}

#[tokio::test]
async fn custom_routes_come_before_builtin_ones() {
    let server = start(config().route("room:custom", |_| Box::new(Counter(0)))).await;
    let mut c = Client::connect(&server).await;
    assert_eq!(
        c.join("1", "room:custom", json!({})).await,
        ok_reply(json!("1"), "1", "room:custom", json!({}))
    );
    assert_eq!(
        c.next_json().await,
        json!(["1", null, "room:custom", "hello", {}])
    );
    c.send_json(json!(["1", "2", "room:custom", "anything", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), "2", "room:custom", json!({"count": 1}))
    );
    // Other room topics still use the built-in behaviour.
    let reply = c.join("3", "room:other", json!({})).await;
    assert_eq!(
        reply,
        ok_reply(
            json!("3"),
            "3",
            "room:other",
            joined("room:other", json!({}))
        )
    );
}

#[tokio::test]
async fn wait_until_reports_the_state_on_timeout_and_shutdown_closes_with_1001() {
    let server = start(config()).await;
    let mut c = Client::connect(&server).await;
    c.join("1", "room:w", json!({})).await;
    let error = server
        .wait_until(Duration::from_millis(50), |s| s.joined_count() == 5)
        .await
        .expect_err("never holds");
    assert!(error.to_string().contains("room:w"), "{error}");

    server.shutdown().await;
    let frame = c
        .closed()
        .await
        .expect("clean close")
        .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001);
}
