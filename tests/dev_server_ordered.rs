//! The dev server's ordered topics, frame by frame: sequenced topics (numbering, joins with
//! `last_seq`, acknowledgements, replays, the replay window), versioned topics (mounts and
//! increments), and every ordered fault knob. Real sockets on loopback, raw clients.
#![cfg(feature = "dev-server")]

mod raw_client;

use std::time::Duration;

use channel_registry::phoenix::dev_server::{
    DevServer, DevServerConfig, OrderedError, OrderedFault, SequencedFormat, ServerEventKind,
    SocketId, VersionedFormat,
};
use raw_client::{error_reply, ok_reply, RawClient, EXPECT};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn start(config: DevServerConfig) -> DevServer {
    DevServer::start(config).await.expect("dev server starts")
}

async fn connect(server: &DevServer) -> RawClient {
    RawClient::connect(&server.websocket_url()).await
}

/// `[join_ref, null, topic, "event", {"seq": seq}]`.
fn event(join_ref: &str, topic: &str, seq: u64) -> Value {
    json!([join_ref, null, topic, "event", {"seq": seq}])
}

/// `[join_ref, null, topic, "patch", {"base_version", "version", "ops"}]`.
fn patch(join_ref: &str, topic: &str, base: u64, version: u64, ops: Value) -> Value {
    json!([join_ref, null, topic, "patch", {"base_version": base, "version": version, "ops": ops}])
}

/// The ops of a patch made by `apply_patches`.
fn counter(revision: u64) -> Value {
    json!([{"op": "add", "path": "/counter", "value": revision}])
}

/// The ops of a mount.
fn mount(state: Value) -> Value {
    json!([{"op": "replace", "path": "", "value": state}])
}

/// Join a sequenced topic and check the reply; `last_seq` is left out when `None`.
async fn join_seq(
    client: &mut RawClient,
    join_ref: &str,
    topic: &str,
    last_seq: Option<u64>,
    earliest: u64,
) {
    let params = last_seq.map_or_else(|| json!({}), |n| json!({"last_seq": n}));
    let reply = client.join(join_ref, topic, params).await;
    assert_eq!(
        reply,
        ok_reply(
            json!(join_ref),
            json!(join_ref),
            json!(topic),
            json!({"earliest_seq": earliest})
        )
    );
}

/// Expect exactly these frames, in this order.
async fn expect_frames(client: &mut RawClient, frames: &[Value]) {
    for expected in frames {
        assert_eq!(&client.next_json().await, expected);
    }
}

/// Expect the events `seqs` of `topic` pushed to `join_ref`, in this order.
async fn expect_events(client: &mut RawClient, join_ref: &str, topic: &str, seqs: &[u64]) {
    for seq in seqs {
        assert_eq!(client.next_json().await, event(join_ref, topic, *seq));
    }
}

/// The socket a topic's `join_ref` is joined on.
fn socket_of(server: &DevServer, topic: &str, join_ref: &str) -> SocketId {
    let info = server.sequenced_topic(topic).expect("the topic exists");
    info.subscribers
        .iter()
        .find(|(_, r)| r == join_ref)
        .map(|(socket, _)| *socket)
        .expect("the join_ref is subscribed")
}

// --- sequenced topics ------------------------------------------------------------------------

#[tokio::test]
async fn fresh_join_gets_earliest_then_live_events_in_order() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    c.expect_quiet().await;

    assert_eq!(server.publish_events("seq:a", 3), Ok(1..=3));
    expect_events(&mut c, "1", "seq:a", &[1, 2, 3]).await;
    assert_eq!(server.publish("seq:a", json!({"text": "hi"})), Ok(4));
    expect_frames(
        &mut c,
        &[json!(["1", null, "seq:a", "event", {"text": "hi", "seq": 4}])],
    )
    .await;
    c.expect_quiet().await;

    let info = server.sequenced_topic("seq:a").expect("joined");
    assert_eq!((info.next_seq, info.earliest_seq, info.held), (5, 1, 4));
}

#[tokio::test]
async fn join_pushes_every_held_event_after_last_seq() {
    let server = start(DevServerConfig::default()).await;
    assert_eq!(server.publish_events("seq:a", 5), Ok(1..=5));

    let mut fresh = connect(&server).await;
    join_seq(&mut fresh, "1", "seq:a", Some(0), 1).await;
    expect_events(&mut fresh, "1", "seq:a", &[1, 2, 3, 4, 5]).await;
    fresh.expect_quiet().await;

    let mut behind = connect(&server).await;
    join_seq(&mut behind, "7", "seq:a", Some(2), 1).await;
    expect_events(&mut behind, "7", "seq:a", &[3, 4, 5]).await;
    behind.expect_quiet().await;

    let mut ahead = connect(&server).await;
    join_seq(&mut ahead, "9", "seq:a", Some(5), 1).await;
    ahead.expect_quiet().await;

    // All three now get the next one live, once.
    server.publish_events("seq:a", 1).expect("sequenced");
    expect_events(&mut fresh, "1", "seq:a", &[6]).await;
    expect_events(&mut behind, "7", "seq:a", &[6]).await;
    expect_events(&mut ahead, "9", "seq:a", &[6]).await;
}

#[tokio::test]
async fn rejoin_after_a_crash_replays_exactly_what_follows_last_seq() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 3).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2, 3]).await;

    assert_eq!(server.crash_channels("seq:a"), 1);
    expect_frames(&mut c, &[json!(["1", "1", "seq:a", "phx_error", {}])]).await;
    server
        .wait_until(EXPECT, |s| {
            s.sequenced_topic("seq:a")
                .is_some_and(|t| t.subscribers.is_empty())
        })
        .await
        .expect("the crashed channel unsubscribed");
    // Published while nobody is joined: held, pushed to nobody.
    server.publish_events("seq:a", 2).expect("sequenced");
    c.expect_quiet().await;

    join_seq(&mut c, "2", "seq:a", Some(3), 1).await;
    expect_events(&mut c, "2", "seq:a", &[4, 5]).await;
    server.publish_events("seq:a", 1).expect("sequenced");
    expect_events(&mut c, "2", "seq:a", &[6]).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn rejoin_on_a_new_socket_after_a_drop_replays_what_follows() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2]).await;

    assert_eq!(server.drop_all_sockets(), 1);
    assert!(matches!(c.closed().await, Ok(None) | Err(_)));
    server
        .wait_until(EXPECT, |s| s.socket_count() == 0)
        .await
        .expect("socket gone");
    server.publish_events("seq:a", 3).expect("sequenced");

    let mut c = connect(&server).await;
    join_seq(&mut c, "3", "seq:a", Some(2), 1).await;
    expect_events(&mut c, "3", "seq:a", &[3, 4, 5]).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn duplicate_join_and_leave_end_the_old_subscription() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    // The same join_ref again: the old incarnation is closed after the new reply.
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    expect_frames(&mut c, &[json!(["1", "1", "seq:a", "phx_close", {}])]).await;
    server.publish_events("seq:a", 1).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1]).await;
    c.expect_quiet().await;

    c.send_json(json!(["1", "2", "seq:a", "phx_leave", {}]))
        .await;
    expect_frames(
        &mut c,
        &[
            ok_reply(json!("1"), json!("2"), json!("seq:a"), json!({})),
            json!(["1", "1", "seq:a", "phx_close", {}]),
        ],
    )
    .await;
    server.publish_events("seq:a", 1).expect("sequenced");
    c.expect_quiet().await;
    let info = server.sequenced_topic("seq:a").expect("exists");
    assert!(info.subscribers.is_empty(), "{info:?}");
}

#[tokio::test]
async fn acks_are_replied_and_let_the_server_forget_outside_the_window() {
    let server = start(DevServerConfig::default().with_replay_window(3)).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 10).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).await;
    // Nothing acknowledged: everything is held, window or not.
    assert_eq!(server.sequenced_topic("seq:a").map(|t| t.held), Some(10));

    c.send_json(json!(["1", "2", "seq:a", "ack", {"sequence_number": 5}]))
        .await;
    expect_frames(
        &mut c,
        &[ok_reply(json!("1"), json!("2"), json!("seq:a"), json!({}))],
    )
    .await;
    let info = server.sequenced_topic("seq:a").expect("exists");
    assert_eq!((info.earliest_seq, info.held), (6, 5));
    let socket = socket_of(&server, "seq:a", "1");
    assert_eq!(info.acked_by(socket), Some(5));

    // Acknowledged but inside the last 3: held.
    c.send_json(json!(["1", "3", "seq:a", "ack", {"sequence_number": 10}]))
        .await;
    expect_frames(
        &mut c,
        &[ok_reply(json!("1"), json!("3"), json!("seq:a"), json!({}))],
    )
    .await;
    let info = server.sequenced_topic("seq:a").expect("exists");
    assert_eq!((info.earliest_seq, info.held, info.window), (8, 3, 3));
    assert_eq!(info.acked, [(socket, 10)]);

    // The window slides as events arrive.
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[11, 12]).await;
    let info = server.sequenced_topic("seq:a").expect("exists");
    assert_eq!((info.earliest_seq, info.held), (10, 3));
    // A lower acknowledgement does not lower the socket's.
    c.send_json(json!(["1", "4", "seq:a", "ack", {"sequence_number": 9}]))
        .await;
    c.next_json().await;
    assert_eq!(
        server
            .sequenced_topic("seq:a")
            .and_then(|t| t.acked_by(socket)),
        Some(10)
    );
}

#[tokio::test]
async fn bad_acks_are_refused_with_a_reason() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2]).await;

    c.send_json(json!(["1", "2", "seq:a", "ack", {"sequence_number": 3}]))
        .await;
    let reply = c.next_json().await;
    assert_eq!(reply[4]["status"], "error", "{reply}");
    assert_eq!(reply[4]["response"]["last_seq"], 2, "{reply}");
    for (msg_ref, payload) in [
        ("3", json!({"sequence_number": "2"})),
        ("4", json!({"sequence_number": -1})),
        ("5", json!({})),
    ] {
        c.send_json(json!(["1", msg_ref, "seq:a", "ack", payload]))
            .await;
        let reply = c.next_json().await;
        assert_eq!(reply[1], msg_ref, "{reply}");
        assert_eq!(reply[4]["status"], "error", "{reply}");
        let reason = reply[4]["response"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("sequence_number"), "{reply}");
    }
    let info = server.sequenced_topic("seq:a").expect("exists");
    assert!(info.acked.is_empty(), "{info:?}");
}

#[tokio::test]
async fn replay_pushes_what_is_held_from_the_position_then_replies_ok() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 5).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2, 3, 4, 5]).await;

    c.send_json(json!(["1", "2", "seq:a", "replay", {"from": 3}]))
        .await;
    expect_events(&mut c, "1", "seq:a", &[3, 4, 5]).await;
    expect_frames(
        &mut c,
        &[ok_reply(json!("1"), json!("2"), json!("seq:a"), json!({}))],
    )
    .await;

    // From beyond the last: nothing to push, still ok.
    c.send_json(json!(["1", "3", "seq:a", "replay", {"from": 6}]))
        .await;
    expect_frames(
        &mut c,
        &[ok_reply(json!("1"), json!("3"), json!("seq:a"), json!({}))],
    )
    .await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn replay_from_beyond_the_window_is_refused_with_earliest() {
    let server = start(DevServerConfig::default().with_replay_window(2)).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 5).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2, 3, 4, 5]).await;
    c.send_json(json!(["1", "2", "seq:a", "ack", {"sequence_number": 5}]))
        .await;
    c.next_json().await;

    c.send_json(json!(["1", "3", "seq:a", "replay", {"from": 2}]))
        .await;
    expect_frames(
        &mut c,
        &[error_reply(
            json!("1"),
            json!("3"),
            json!("seq:a"),
            json!({"earliest_seq": 4}),
        )],
    )
    .await;
    c.expect_quiet().await;

    // A rejoin from there learns the same earliest and gets what is held.
    join_seq(&mut c, "4", "seq:a", Some(1), 4).await;
    expect_frames(&mut c, &[json!(["1", "1", "seq:a", "phx_close", {}])]).await;
    expect_events(&mut c, "4", "seq:a", &[4, 5]).await;
}

#[tokio::test]
async fn several_subscribers_share_one_numbering_and_ack_per_socket() {
    let server = start(DevServerConfig::default()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    join_seq(&mut a, "1", "seq:a", None, 1).await;
    join_seq(&mut b, "5", "seq:a", None, 1).await;
    server.publish_events("seq:a", 3).expect("sequenced");
    expect_events(&mut a, "1", "seq:a", &[1, 2, 3]).await;
    expect_events(&mut b, "5", "seq:a", &[1, 2, 3]).await;

    // Another topic numbers on its own.
    let mut other = connect(&server).await;
    join_seq(&mut other, "1", "seq:b", None, 1).await;
    server.publish_events("seq:b", 1).expect("sequenced");
    expect_events(&mut other, "1", "seq:b", &[1]).await;

    a.send_json(json!(["1", "2", "seq:a", "ack", {"sequence_number": 2}]))
        .await;
    a.next_json().await;
    b.send_json(json!(["5", "6", "seq:a", "ack", {"sequence_number": 3}]))
        .await;
    b.next_json().await;
    let (sa, sb) = (
        socket_of(&server, "seq:a", "1"),
        socket_of(&server, "seq:a", "5"),
    );
    let info = server.sequenced_topic("seq:a").expect("exists");
    assert_eq!(info.acked, [(sa, 2), (sb, 3)]);
    a.expect_quiet().await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn bad_join_params_and_unknown_events() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    let reply = c.join("1", "seq:a", json!({"last_seq": "3"})).await;
    assert_eq!(reply[4]["status"], "error", "{reply}");
    let reason = reply[4]["response"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("last_seq"), "{reply}");
    // Refused joins subscribe nothing.
    let info = server.sequenced_topic("seq:a");
    assert!(
        info.as_ref().is_none_or(|t| t.subscribers.is_empty()),
        "{info:?}"
    );

    // `null` is fresh; an event without a handler crashes the channel, as in Phoenix.
    join_seq(&mut c, "2", "seq:a", None, 1).await;
    c.send_json(json!(["2", "3", "seq:a", "what", {}])).await;
    expect_frames(&mut c, &[json!(["2", "2", "seq:a", "phx_error", {}])]).await;
}

/// 10 000 events published while the client's channel crashes and its socket drops: every
/// number arrives exactly once, in order, because each join resumes after the last one
/// received. The publisher runs concurrently with the joins, so a join racing a publish
/// neither loses nor repeats an event.
#[tokio::test]
async fn ten_thousand_events_across_a_crash_and_a_socket_drop_arrive_exactly_once() {
    const TOTAL: u64 = 10_000;
    let topic = "seq:long";
    let server = start(DevServerConfig::default().with_replay_window(100)).await;
    let handle = server.handle();
    server.publish_events(topic, 1).expect("sequenced");
    let publisher = tokio::spawn(async move {
        let mut published = 1;
        while published < TOTAL {
            let batch = (TOTAL - published).min(50);
            handle.publish_events(topic, batch).expect("sequenced");
            published += batch;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });

    let mut received: Vec<u64> = Vec::new();
    let mut c = connect(&server).await;
    let mut join = 1u64;
    let (mut crashed, mut dropped) = (false, false);
    join_any(&mut c, join, topic, 0).await;
    let mut next_ref = 100u64;
    while received.last().copied().unwrap_or(0) < TOTAL {
        let frame = match c.next_ws().await {
            Some(Ok(WsMessage::Text(text))) => serde_json::from_str::<Value>(&text).expect("JSON"),
            Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {
                // The socket was dropped: a new one resumes after the last event received.
                c = connect(&server).await;
                join += 1;
                join_any(&mut c, join, topic, received.last().copied().unwrap_or(0)).await;
                continue;
            }
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        };
        match frame[3].as_str() {
            Some("event") => {
                assert_eq!(frame[0], json!(join.to_string()), "{frame}");
                let seq = frame[4]["seq"].as_u64().expect("numbered");
                received.push(seq);
                if seq % 500 == 0 {
                    next_ref += 1;
                    let ack = json!([join.to_string(), next_ref.to_string(), topic, "ack", {"sequence_number": seq}]);
                    c.send_json(ack).await;
                }
                if seq >= 3_000 && !crashed {
                    crashed = true;
                    server.crash_channels(topic);
                }
                if seq >= 6_000 && !dropped {
                    dropped = true;
                    server.drop_all_sockets();
                }
            }
            Some("phx_reply") => assert_eq!(frame[4]["status"], "ok", "{frame}"),
            Some("phx_error") => {
                join += 1;
                join_any(&mut c, join, topic, received.last().copied().unwrap_or(0)).await;
            }
            _ => panic!("unexpected frame {frame}"),
        }
    }
    publisher.await.expect("publisher finishes");
    assert!(crashed && dropped);
    let expected: Vec<u64> = (1..=TOTAL).collect();
    assert!(
        received == expected,
        "not exactly once in order: {} events",
        received.len()
    );
}

/// Join `topic` with `last_seq` and check only that it is accepted.
async fn join_any(client: &mut RawClient, join: u64, topic: &str, last_seq: u64) {
    let join_ref = join.to_string();
    client
        .send_json(json!([join_ref, join_ref, topic, "phx_join", {"last_seq": last_seq}]))
        .await;
    loop {
        let frame = client.next_json().await;
        // Events and replies of the old incarnation may still be on their way.
        if frame[3] == "phx_reply" && frame[1] == json!(join_ref) {
            assert_eq!(frame[4]["status"], "ok", "{frame}");
            return;
        }
        assert_ne!(frame[3], "event", "an event before the join reply: {frame}");
    }
}

// --- versioned topics ------------------------------------------------------------------------

#[tokio::test]
async fn a_mount_starts_with_the_whole_state_at_version_1_then_increments() {
    let server = start(DevServerConfig::default()).await;
    assert_eq!(server.apply_patches("doc:a", 2), Ok(1..=2));

    let mut a = connect(&server).await;
    let reply = a.join("1", "doc:a", json!({})).await;
    assert_eq!(
        reply,
        ok_reply(json!("1"), json!("1"), json!("doc:a"), json!({}))
    );
    expect_frames(
        &mut a,
        &[patch("1", "doc:a", 0, 1, mount(json!({"counter": 2})))],
    )
    .await;
    a.expect_quiet().await;

    assert_eq!(server.apply_patches("doc:a", 2), Ok(3..=4));
    expect_frames(
        &mut a,
        &[
            patch("1", "doc:a", 1, 2, counter(3)),
            patch("1", "doc:a", 2, 3, counter(4)),
        ],
    )
    .await;

    // A second mount has versions of its own.
    let mut b = connect(&server).await;
    b.join("8", "doc:a", json!({})).await;
    expect_frames(
        &mut b,
        &[patch("8", "doc:a", 0, 1, mount(json!({"counter": 4})))],
    )
    .await;
    let ops = vec![json!({"op": "add", "path": "/title", "value": "t"})];
    assert_eq!(server.apply_patch("doc:a", ops.clone()), Ok(5));
    expect_frames(&mut a, &[patch("1", "doc:a", 3, 4, json!(ops))]).await;
    expect_frames(&mut b, &[patch("8", "doc:a", 1, 2, json!(ops))]).await;

    let info = server.versioned_topic("doc:a").expect("exists");
    assert_eq!(info.revision, 5);
    assert_eq!(info.state, json!({"counter": 4, "title": "t"}));
    let versions: Vec<(&str, u64)> = info
        .mounts
        .iter()
        .map(|m| (m.join_ref.as_str(), m.version))
        .collect();
    assert_eq!(versions, [("1", 4), ("8", 2)]);
}

#[tokio::test]
async fn a_rejoin_after_a_crash_mounts_again_from_version_1() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    c.join("1", "doc:a", json!({})).await;
    expect_frames(&mut c, &[patch("1", "doc:a", 0, 1, mount(json!({})))]).await;
    server.apply_patches("doc:a", 1).expect("versioned");
    expect_frames(&mut c, &[patch("1", "doc:a", 1, 2, counter(1))]).await;

    server.crash_channels("doc:a");
    expect_frames(&mut c, &[json!(["1", "1", "doc:a", "phx_error", {}])]).await;
    server
        .wait_until(EXPECT, |s| {
            s.versioned_topic("doc:a")
                .is_some_and(|t| t.mounts.is_empty())
        })
        .await
        .expect("the crashed mount is gone");
    server.apply_patches("doc:a", 1).expect("versioned");
    c.expect_quiet().await;

    c.join("2", "doc:a", json!({})).await;
    expect_frames(
        &mut c,
        &[patch("2", "doc:a", 0, 1, mount(json!({"counter": 2})))],
    )
    .await;
    server.apply_patches("doc:a", 1).expect("versioned");
    expect_frames(&mut c, &[patch("2", "doc:a", 1, 2, counter(3))]).await;
}

#[tokio::test]
async fn an_invalid_patch_changes_nothing() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    c.join("1", "doc:a", json!({})).await;
    c.next_json().await;
    let ops = vec![
        json!({"op": "add", "path": "/a", "value": 1}),
        json!({"op": "replace", "path": "/missing", "value": 2}),
    ];
    match server.apply_patch("doc:a", ops) {
        Err(OrderedError::InvalidPatch { index: 1, .. }) => {}
        other => panic!("expected the second op refused, got {other:?}"),
    }
    c.expect_quiet().await;
    let info = server.versioned_topic("doc:a").expect("exists");
    assert_eq!((info.revision, info.state), (0, json!({})));
}

// --- driving errors and formats ----------------------------------------------------------------

#[tokio::test]
async fn the_handle_refuses_topics_of_another_kind() {
    let server = start(DevServerConfig::default()).await;
    assert_eq!(
        server.publish_events("room:1", 1),
        Err(OrderedError::NotSequenced {
            topic: "room:1".to_owned()
        })
    );
    assert!(matches!(
        server.publish("doc:1", json!({})),
        Err(OrderedError::NotSequenced { .. })
    ));
    assert!(matches!(
        server.apply_patches("seq:1", 1),
        Err(OrderedError::NotVersioned { .. })
    ));
    assert!(matches!(
        server.publish("seq:1", json!([1])),
        Err(OrderedError::BodyNotObject { .. })
    ));
    assert!(server.sequenced_topic("seq:1").is_none());
    // Without the built-in routes there is no ordered topic at all.
    let bare = start(DevServerConfig::default().without_builtin_routes()).await;
    assert!(matches!(
        bare.publish_events("seq:1", 1),
        Err(OrderedError::NotSequenced { .. })
    ));
}

#[tokio::test]
async fn configured_names_are_spoken_on_the_wire() {
    let mut sequenced = SequencedFormat::default();
    sequenced.event = "reliable_event".to_owned();
    sequenced.seq_field = "sequence_number".to_owned();
    sequenced.last_seq_param = "since".to_owned();
    sequenced.earliest_field = "oldest".to_owned();
    sequenced.ack_event = "acknowledge".to_owned();
    sequenced.ack_field = "upto".to_owned();
    sequenced.replay_event = "resend".to_owned();
    sequenced.replay_from_field = "start".to_owned();
    let mut versioned = VersionedFormat::default();
    versioned.event = "envelope".to_owned();
    versioned.base_field = "b".to_owned();
    versioned.version_field = "v".to_owned();
    versioned.ops_field = "o".to_owned();
    let config = DevServerConfig::default()
        .with_replay_window(0)
        .route_sequenced("feed:*", sequenced)
        .route_versioned("root:*", versioned);
    let server = start(config).await;
    server.publish_events("feed:x", 3).expect("sequenced");

    let mut c = connect(&server).await;
    let reply = c.join("1", "feed:x", json!({"since": 1})).await;
    assert_eq!(reply[4]["response"], json!({"oldest": 1}), "{reply}");
    let named = |seq: u64| json!(["1", null, "feed:x", "reliable_event", {"sequence_number": seq}]);
    expect_frames(&mut c, &[named(2), named(3)]).await;
    c.send_json(json!(["1", "2", "feed:x", "acknowledge", {"upto": 2}]))
        .await;
    expect_frames(
        &mut c,
        &[ok_reply(json!("1"), json!("2"), json!("feed:x"), json!({}))],
    )
    .await;
    c.send_json(json!(["1", "3", "feed:x", "resend", {"start": 1}]))
        .await;
    expect_frames(
        &mut c,
        &[error_reply(
            json!("1"),
            json!("3"),
            json!("feed:x"),
            json!({"oldest": 3}),
        )],
    )
    .await;

    c.join("4", "root:x", json!({})).await;
    expect_frames(
        &mut c,
        &[json!(["4", null, "root:x", "envelope", {"b": 0, "v": 1, "o": mount(json!({}))}])],
    )
    .await;
}

// --- fault knobs ---------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_pushes_the_next_event_twice() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.arm_ordered_fault("seq:a", OrderedFault::Duplicate);
    assert_eq!(server.view(|v| v.armed_ordered_faults()), 1);
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 1, 2]).await;
    c.expect_quiet().await;
    assert_eq!(server.view(|v| v.armed_ordered_faults()), 0);
    let logged: Vec<ServerEventKind> = server
        .events()
        .into_iter()
        .map(|e| e.kind)
        .filter(|kind| matches!(kind, ServerEventKind::OrderedFault { .. }))
        .collect();
    assert_eq!(
        logged,
        [ServerEventKind::OrderedFault {
            topic: "seq:a".to_owned(),
            fault: OrderedFault::Duplicate,
            position: 1,
        }]
    );
}

#[tokio::test]
async fn reorder_swaps_the_next_two_events() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.arm_ordered_fault("seq:a", OrderedFault::Reorder);
    server.publish_events("seq:a", 1).expect("sequenced");
    // Held back until the next one.
    c.expect_quiet().await;
    assert!(server
        .sequenced_topic("seq:a")
        .is_some_and(|t| t.reordering));
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[2, 1, 3]).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn drop_skips_one_socket_and_holds_the_event_for_replay() {
    let server = start(DevServerConfig::default()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    join_seq(&mut a, "1", "seq:a", None, 1).await;
    join_seq(&mut b, "2", "seq:a", None, 1).await;
    let socket = socket_of(&server, "seq:a", "1");
    server.arm_ordered_fault(
        "seq:a",
        OrderedFault::Drop {
            socket: Some(socket),
        },
    );
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut a, "1", "seq:a", &[2]).await;
    expect_events(&mut b, "2", "seq:a", &[1, 2]).await;
    a.expect_quiet().await;

    a.send_json(json!(["1", "3", "seq:a", "replay", {"from": 1}]))
        .await;
    expect_events(&mut a, "1", "seq:a", &[1, 2]).await;
    expect_frames(
        &mut a,
        &[ok_reply(json!("1"), json!("3"), json!("seq:a"), json!({}))],
    )
    .await;
}

#[tokio::test]
async fn drop_for_every_socket_then_a_crash_the_rejoin_recovers_it() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.arm_ordered_fault("*", OrderedFault::Drop { socket: None });
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[2]).await;

    server.crash_channels("seq:a");
    expect_frames(&mut c, &[json!(["1", "1", "seq:a", "phx_error", {}])]).await;
    join_seq(&mut c, "2", "seq:a", Some(0), 1).await;
    expect_events(&mut c, "2", "seq:a", &[1, 2]).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn overflow_forgets_unacknowledged_events_so_a_rejoin_finds_a_gap() {
    let server = start(DevServerConfig::default().with_replay_window(2)).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.publish_events("seq:a", 1).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1]).await;
    server.stop_channels("seq:a");
    expect_frames(&mut c, &[json!(["1", "1", "seq:a", "phx_close", {}])]).await;
    server.publish_events("seq:a", 5).expect("sequenced");

    assert_eq!(server.overflow_replay_window("seq:*"), 4);
    join_seq(&mut c, "2", "seq:a", Some(1), 5).await;
    expect_events(&mut c, "2", "seq:a", &[5, 6]).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn skip_version_sends_base_to_base_plus_two() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    c.join("1", "doc:a", json!({})).await;
    c.next_json().await;
    server.arm_ordered_fault("doc:*", OrderedFault::SkipVersion);
    server.apply_patches("doc:a", 2).expect("versioned");
    expect_frames(
        &mut c,
        &[
            patch("1", "doc:a", 1, 3, counter(1)),
            patch("1", "doc:a", 3, 4, counter(2)),
        ],
    )
    .await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn versioned_faults_duplicate_reorder_and_drop_patches() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    c.join("1", "doc:a", json!({})).await;
    c.next_json().await;
    server.arm_ordered_fault("doc:a", OrderedFault::Duplicate);
    server.arm_ordered_fault("doc:a", OrderedFault::Reorder);
    server.arm_ordered_fault("doc:a", OrderedFault::Drop { socket: None });
    server.apply_patches("doc:a", 4).expect("versioned");
    expect_frames(
        &mut c,
        &[
            patch("1", "doc:a", 1, 2, counter(1)),
            patch("1", "doc:a", 1, 2, counter(1)),
            // The reorder holds 2 → 3 back until 3 → 4 is out.
            patch("1", "doc:a", 3, 4, counter(3)),
            patch("1", "doc:a", 2, 3, counter(2)),
            // 4 → 5 is dropped; the mount's version moved on anyway.
        ],
    )
    .await;
    c.expect_quiet().await;
    server.apply_patches("doc:a", 1).expect("versioned");
    expect_frames(&mut c, &[patch("1", "doc:a", 5, 6, counter(5))]).await;
}

#[tokio::test]
async fn faults_wait_for_a_matching_topic_of_their_kind() {
    let server = start(DevServerConfig::default()).await;
    let mut c = connect(&server).await;
    join_seq(&mut c, "1", "seq:a", None, 1).await;
    server.arm_ordered_fault("*", OrderedFault::SkipVersion);
    server.arm_ordered_fault("seq:other", OrderedFault::Duplicate);
    server.publish_events("seq:a", 2).expect("sequenced");
    expect_events(&mut c, "1", "seq:a", &[1, 2]).await;
    c.expect_quiet().await;
    assert_eq!(server.view(|v| v.armed_ordered_faults()), 2);

    server.clear_ordered_faults();
    assert_eq!(server.view(|v| v.armed_ordered_faults()), 0);
}
