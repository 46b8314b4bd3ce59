//! Points where the dev server once differed from a real Phoenix 1.7.24, found by sending
//! identical raw frames to both; each test pins Phoenix's answer.
#![cfg(feature = "dev-server")]

mod raw_client;

use std::time::Duration;

use channel_registry::phoenix::dev_server::{
    DevServer, DevServerConfig, MissingVsnPolicy, ServerEventKind, StalePushPolicy, WireProtocol,
};
use raw_client::{error_reply, ok_reply, RawClient, EXPECT};
use serde_json::{json, Value};

/// No `sync` push within a test unless it asks for one.
const NO_SYNC: Duration = Duration::from_secs(600);

async fn start(config: DevServerConfig) -> DevServer {
    DevServer::start(config).await.expect("dev server starts")
}

fn joined(topic: &str) -> Value {
    json!({"joined": topic, "params": {}})
}

fn unmatched() -> Value {
    json!({"reason": "unmatched topic"})
}

#[tokio::test]
async fn an_event_without_handler_crashes_the_channel_without_reply() {
    let server = start(DevServerConfig::default().with_sync_delay(NO_SYNC)).await;
    let mut c = RawClient::connect(&server.websocket_url()).await;
    c.join("5", "room:k", json!({})).await;
    c.send_json(json!(["5", "14", "room:k", "unknown_event", {}]))
        .await;
    // phx_error carries ref = join_ref; the push itself is never answered.
    assert_eq!(
        c.next_json().await,
        json!(["5", "5", "room:k", "phx_error", {}])
    );
    c.send_json(json!(["5", "15", "room:k", "echo", {}])).await;
    assert_eq!(
        c.next_json().await,
        error_reply(Value::Null, json!("15"), json!("room:k"), unmatched())
    );
    c.expect_quiet().await;
}

#[tokio::test]
async fn a_rejoin_reusing_the_join_ref_gets_one_sync_not_the_closed_channels_too() {
    let sync = Duration::from_millis(80);
    let server = start(DevServerConfig::default().with_sync_delay(sync)).await;
    let mut c = RawClient::connect(&server.websocket_url()).await;
    let topic = "room:k3";
    assert_eq!(
        c.join("8", topic, json!({})).await,
        ok_reply(json!("8"), json!("8"), json!(topic), joined(topic))
    );
    // Rejoin before the first channel's sync is due, with the same join_ref.
    c.send_json(json!(["8", "9", topic, "phx_join", {}])).await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("8"), json!("9"), json!(topic), joined(topic))
    );
    assert_eq!(
        c.next_json().await,
        json!(["8", "8", topic, "phx_close", {}])
    );
    assert_eq!(
        c.next_json().await,
        json!(["8", null, topic, "sync", {"seq": 1}])
    );
    // The closed channel's timer must send nothing.
    c.expect_quiet_for(sync * 3).await;
}

#[tokio::test]
async fn a_join_without_join_ref_is_answered_with_null_and_its_pushes_carry_its_ref() {
    let sync = Duration::from_millis(20);
    for policy in [StalePushPolicy::HandToCurrent, StalePushPolicy::Drop] {
        let config = DevServerConfig::default()
            .with_sync_delay(sync)
            .with_stale_push_policy(policy);
        let server = start(config).await;
        let mut c = RawClient::connect(&server.websocket_url()).await;
        c.send_json(json!([null, "7", "room:k2", "phx_join", {}]))
            .await;
        assert_eq!(
            c.next_json().await,
            ok_reply(Value::Null, json!("7"), json!("room:k2"), joined("room:k2")),
            "{policy:?}"
        );
        assert_eq!(
            c.next_json().await,
            json!(["7", null, "room:k2", "sync", {"seq": 1}])
        );
        // Such a channel takes any join_ref, under either policy, and answers with its own.
        c.send_json(json!([null, "8", "room:k2", "echo", {"a": 1}]))
            .await;
        assert_eq!(
            c.next_json().await,
            ok_reply(json!("7"), json!("8"), json!("room:k2"), json!({"a": 1}))
        );
        c.send_json(json!(["3", "9", "room:k2", "echo", {"b": 2}]))
            .await;
        assert_eq!(
            c.next_json().await,
            ok_reply(json!("7"), json!("9"), json!("room:k2"), json!({"b": 2}))
        );
        assert_eq!(server.view(|s| s.join_refs("room:k2")), ["7"]);
    }
}

#[tokio::test]
async fn heartbeats_with_any_payload_numeric_refs_and_numeric_topics_are_answered() {
    let server = start(DevServerConfig::default().with_sync_delay(NO_SYNC)).await;
    let mut c = RawClient::connect(&server.websocket_url()).await;
    for (msg_ref, payload) in [
        ("4", json!("notamap")),
        ("5", json!([1, 2])),
        ("6", Value::Null),
    ] {
        c.send_json(json!([null, msg_ref, "phoenix", "heartbeat", payload]))
            .await;
        assert_eq!(
            c.next_json().await,
            ok_reply(Value::Null, json!(msg_ref), json!("phoenix"), json!({}))
        );
    }

    c.join("1", "room:e", json!({})).await;
    // Numeric refs are echoed as numbers; the reply carries the channel's join_ref.
    c.send_json(json!([1, 2, "room:e", "echo", {}])).await;
    assert_eq!(
        c.next_json().await,
        ok_reply(json!("1"), json!(2), json!("room:e"), json!({}))
    );
    c.send_json(json!([null, 3, "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(Value::Null, json!(3), json!("phoenix"), json!({}))
    );

    // A topic that is not a string matches no channel.
    c.send_json(json!(["1", "1", 5, "phx_join", {}])).await;
    assert_eq!(
        c.next_json().await,
        error_reply(Value::Null, json!("1"), json!(5), unmatched())
    );
    c.send_json(json!(["1", "2", 5, "echo", {}])).await;
    assert_eq!(
        c.next_json().await,
        error_reply(Value::Null, json!("2"), json!(5), unmatched())
    );

    // The socket is still open and serving.
    c.send_json(json!([null, "7", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(Value::Null, json!("7"), json!("phoenix"), json!({}))
    );
    assert_eq!(server.view(|s| s.malformed_count()), 0);
}

#[tokio::test]
async fn frames_phoenix_cannot_read_still_close_with_1011() {
    let server = start(DevServerConfig::default().with_sync_delay(NO_SYNC)).await;
    for text in [
        r#"{"topic":"room:e","event":"echo"}"#,
        r#"["1","2","room:e","echo"]"#,
        "not json at all",
    ] {
        let mut c = RawClient::connect(&server.websocket_url()).await;
        c.send_text(text).await;
        assert_eq!(c.close_code().await, 1011, "{text}");
    }
    assert_eq!(server.view(|s| s.malformed_count()), 3);
}

#[tokio::test]
async fn without_vsn_the_fallback_policy_speaks_v1_and_closes_on_a_v2_frame() {
    let config = DevServerConfig::default()
        .with_sync_delay(NO_SYNC)
        .with_missing_vsn_policy(MissingVsnPolicy::FallBackToV1);
    let server = start(config).await;
    let base = server.url();

    for query in ["", "?vsn=1.0.0"] {
        let mut c = RawClient::connect(&format!("{base}/websocket{query}")).await;
        c.send_json(json!({"topic": "room:v", "event": "phx_join", "payload": {}, "ref": "1"}))
            .await;
        assert_eq!(
            c.next_json().await,
            json!({"event": "phx_reply", "payload": {"response": joined("room:v"), "status": "ok"}, "ref": "1", "topic": "room:v"}),
            "{query}"
        );
        c.send_json(
            json!({"topic": "room:v", "event": "echo", "payload": {"v1": true}, "ref": "2", "join_ref": "1"}),
        )
        .await;
        assert_eq!(
            c.next_json().await,
            json!({"event": "phx_reply", "payload": {"response": {"v1": true}, "status": "ok"}, "ref": "2", "topic": "room:v"})
        );
        c.send_json(json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "3"}))
            .await;
        assert_eq!(
            c.next_json().await,
            json!({"event": "phx_reply", "payload": {"response": {}, "status": "ok"}, "ref": "3", "topic": "phoenix"})
        );
        assert!(server
            .sockets()
            .iter()
            .any(|socket| socket.protocol == WireProtocol::V1));
        c.send_json(json!(["1", "4", "room:v", "phx_join", {}]))
            .await;
        assert_eq!(c.close_code().await, 1011, "{query}");
    }

    // V2 is still spoken with vsn=2.0.0, and other versions are refused.
    let mut c = RawClient::connect(&server.websocket_url()).await;
    c.send_json(json!([null, "1", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        c.next_json().await,
        ok_reply(Value::Null, json!("1"), json!("phoenix"), json!({}))
    );
    let refused = tokio_tungstenite::connect_async(format!("{base}/websocket?vsn=3.0.0")).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref response)) if response.status() == 400),
        "{refused:?}"
    );
    server
        .wait_until(EXPECT, |s| {
            s.events()
                .filter(|e| matches!(e.kind, ServerEventKind::Malformed { .. }))
                .count()
                == 2
        })
        .await
        .expect("both V2 frames on V1 sockets were malformed");
}
