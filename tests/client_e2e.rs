//! The tokio client against the dev server on loopback, with short timings:
//! refcounts, drain grace and revive, room switches without flicker, crashes,
//! socket drops, stale frames, push buffering and timeouts, malformed frames,
//! heartbeat loss. Every test ends with no channel left on the server.
#![cfg(feature = "dev-server")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use channel_registry::engine::{
    Config, Error as EngineError, FailReason, JoinRef, Phase, Switched, TopicError, TopicStatus,
};
use channel_registry::phoenix::codec::{Frame, Payload};
use channel_registry::phoenix::dev_server::{ChannelEnd, DevServer, DevServerConfig};
use channel_registry::phoenix::{
    ChannelMessage, Client, ClientConfig, CloseReason, ConnectError, ConnectionState, JoinParams,
    OverflowPolicy, PushError, Room, RoomEvent, SettleOnEvent, SubscribeError, Subscription,
    SubscriptionState,
};
use channel_registry::session::ParamsError;
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};

/// Upper bound for anything a test waits for; reached only when it fails.
const WAIT: Duration = Duration::from_secs(5);
/// Drain grace of the test clients.
const GRACE: Duration = Duration::from_millis(100);
/// No `sync` push unless a test asks for one.
const NO_SYNC: Duration = Duration::from_secs(600);

fn engine() -> Config {
    Config {
        join_timeout: Duration::from_secs(2),
        drain_grace: GRACE,
        rejoin_backoff: vec![Duration::from_millis(20), Duration::from_millis(40)],
        max_attempts: 3,
        ..Config::default()
    }
}

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_engine(engine())
        .with_heartbeat_interval(Duration::from_secs(2))
        .with_reconnect_backoff(vec![
            Duration::from_millis(10),
            Duration::from_millis(20),
            Duration::from_millis(50),
        ])
        .with_push_timeout(Duration::from_secs(2))
}

async fn start(config: DevServerConfig) -> DevServer {
    DevServer::start(config).await.expect("dev server starts")
}

async fn server() -> DevServer {
    start(DevServerConfig::default().with_sync_delay(NO_SYNC)).await
}

async fn connect(server: &DevServer, config: ClientConfig) -> Client {
    within(Client::connect(&server.url(), config))
        .await
        .expect("client connects")
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    timeout(WAIT, future).await.expect("in time")
}

async fn subscribe(client: &Client, topic: &str) -> Subscription {
    client
        .subscribe(topic, JoinParams::none())
        .await
        .expect("subscribe accepted")
}

async fn active(sub: &mut Subscription) -> JoinRef {
    within(sub.wait_active())
        .await
        .expect("topic becomes active")
}

/// Waits until the subscription is active on an incarnation other than `old`.
async fn rejoined(sub: &Subscription, old: JoinRef) -> JoinRef {
    let mut state = sub.state_watch();
    let state = within(state.wait_for(|s| s.is_active() && s.join_ref() != Some(old)))
        .await
        .expect("client alive");
    state.join_ref().expect("active has a join_ref")
}

async fn next(sub: &mut Subscription) -> ChannelMessage {
    within(sub.recv()).await.expect("a message")
}

async fn next_event(room: &mut Room) -> RoomEvent {
    within(room.recv()).await.expect("a room event")
}

/// Room events up to and including `Shows { topic }`.
async fn events_until_shows(room: &mut Room, topic: &str) -> Vec<RoomEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(room).await;
        let done = matches!(&event, RoomEvent::Shows { topic: t, .. } if &**t == topic);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

/// The server has no channel left.
async fn all_left(server: &DevServer) {
    server
        .wait_until(WAIT, |v| v.joined_count() == 0)
        .await
        .expect("every channel left");
}

/// The client's engine manages nothing (polled: the engine has no watch).
async fn client_idle(client: &Client) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.stats().await.expect("client alive");
        if stats.engine.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "client not idle: {stats:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn json_of(message: &ChannelMessage) -> &Value {
    message.json().expect("a JSON payload")
}

#[tokio::test]
async fn two_handles_share_one_channel_and_dropping_one_keeps_the_other() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut a = subscribe(&client, "room:rc").await;
    let mut b = subscribe(&client, "room:rc").await;
    let ja = active(&mut a).await;
    assert_eq!(active(&mut b).await, ja);
    assert_eq!(server.inbound_count("room:rc", "phx_join"), 1);

    server.push("room:rc", "news", json!({"n": 1}));
    assert_eq!(json_of(&next(&mut a).await), &json!({"n": 1}));
    let m = next(&mut b).await;
    assert_eq!((json_of(&m), m.join_ref()), (&json!({"n": 1}), Some(ja)));

    drop(a);
    // Well past the drain grace: the channel must still be there for `b`.
    tokio::time::sleep(GRACE * 3).await;
    server.push("room:rc", "news", json!({"n": 2}));
    assert_eq!(json_of(&next(&mut b).await), &json!({"n": 2}));
    assert_eq!(server.inbound_count("room:rc", "phx_leave"), 0);
    assert_eq!(server.view(|v| v.join_refs("room:rc")), [ja.to_string()]);
    assert!(b.state().is_active());

    drop(b);
    all_left(&server).await;
    client_idle(&client).await;
}

#[tokio::test]
async fn last_drop_leaves_after_the_grace_and_a_quick_return_revives_without_rejoin() {
    let server = server().await;
    let grace = Duration::from_millis(300);
    let client = connect(
        &server,
        config().with_engine(Config {
            drain_grace: grace,
            ..engine()
        }),
    )
    .await;
    let mut a = subscribe(&client, "room:grace").await;
    let j1 = active(&mut a).await;
    drop(a);
    let mut b = subscribe(&client, "room:grace").await;
    assert_eq!(active(&mut b).await, j1, "revived, same incarnation");
    assert_eq!(server.inbound_count("room:grace", "phx_join"), 1);
    assert_eq!(server.inbound_count("room:grace", "phx_leave"), 0);

    let dropped_at = Instant::now();
    drop(b);
    server
        .wait_until(WAIT, |v| v.inbound_count("room:grace", "phx_leave") == 1)
        .await
        .expect("a leave");
    let waited = dropped_at.elapsed();
    assert!(waited >= grace, "left after {waited:?}, before the grace");
    all_left(&server).await;
    assert_eq!(server.inbound_count("room:grace", "phx_join"), 1);
    client_idle(&client).await;
}

#[tokio::test]
async fn room_switch_shows_v1_until_v2_is_active() {
    let server = start(DevServerConfig::default().with_sync_delay(Duration::from_millis(20))).await;
    let client = connect(&server, config()).await;
    let (v1, v2) = ("room:doc:v1", "room:doc:v2");
    let mut room = client.room("doc");
    assert_eq!(room.switch(v1, None).await, Ok(Switched::Pending));
    let seen = events_until_shows(&mut room, v1).await;
    assert_eq!(seen.len(), 1, "nothing before v1 is shown: {seen:?}");
    match next_event(&mut room).await {
        RoomEvent::Message(m) => assert_eq!((&**m.topic(), m.event()), (v1, "sync")),
        other => panic!("expected v1's sync, got {other:?}"),
    }

    server.delay_joins(v2, Duration::from_millis(300));
    assert_eq!(room.switch(v2, None).await, Ok(Switched::Pending));
    let state = room.state();
    assert_eq!(
        (state.shown.as_deref(), state.pending.as_deref()),
        (Some(v1), Some(v2))
    );
    // The server is now busy with v2's slow join: the room still shows v1.
    server
        .wait_until(WAIT, |v| v.inbound_count(v2, "phx_join") == 1)
        .await
        .expect("v2's join reached the server");
    assert_eq!(
        room.state().shown.as_deref(),
        Some(v1),
        "v1 shown while v2 joins"
    );

    let seen = events_until_shows(&mut room, v2).await;
    assert!(
        seen.iter()
            .all(|e| !matches!(e, RoomEvent::Message(m) if &**m.topic() != v1)),
        "only v1 before v2 is shown: {seen:?}"
    );
    match next_event(&mut room).await {
        RoomEvent::Message(m) => assert_eq!((&**m.topic(), m.event()), (v2, "sync")),
        other => panic!("expected v2's sync, got {other:?}"),
    }
    assert_eq!(room.state().pending, None);
    // v1 drains and is left; v2 stays.
    server
        .wait_until(WAIT, |v| !v.is_joined(v1) && v.is_joined(v2))
        .await
        .expect("v1 left after the grace");
    drop(room);
    all_left(&server).await;
    client_idle(&client).await;
}

#[tokio::test]
async fn fast_switches_v1_v2_v3_never_show_v2() {
    let server = start(DevServerConfig::default().with_sync_delay(Duration::from_millis(10))).await;
    let client = connect(&server, config()).await;
    let (v1, v2, v3) = ("room:fast:v1", "room:fast:v2", "room:fast:v3");

    // From nothing: three switches before any reply.
    let mut cold = client.room("cold");
    cold.switch(v1, None).await.expect("switch");
    cold.switch(v2, None).await.expect("switch");
    cold.switch(v3, None).await.expect("switch");
    let seen = events_until_shows(&mut cold, v3).await;
    assert_eq!(seen.len(), 1, "only v3 is ever shown: {seen:?}");
    drop(cold);
    all_left(&server).await;

    // From v1 shown, with a slow v2.
    let mut room = client.room("warm");
    room.switch(v1, None).await.expect("switch");
    within(room.wait_shows(v1)).await.expect("v1 shown");
    server.delay_joins(v2, Duration::from_millis(150));
    assert_eq!(room.switch(v2, None).await, Ok(Switched::Pending));
    assert_eq!(room.switch(v3, None).await, Ok(Switched::Pending));
    assert_eq!(room.state().shown.as_deref(), Some(v1));
    let seen = events_until_shows(&mut room, v3).await;
    for event in &seen {
        match event {
            RoomEvent::Shows { topic, .. } => assert!(&**topic == v1 || &**topic == v3, "{seen:?}"),
            RoomEvent::Message(m) => assert_eq!(&**m.topic(), v1, "{seen:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    server
        .wait_until(WAIT, |v| v.joined_count() == 1 && v.is_joined(v3))
        .await
        .expect("only v3 stays joined");
    drop(room);
    all_left(&server).await;
    client_idle(&client).await;
}

#[tokio::test]
async fn server_crash_recovers_with_a_new_join_ref() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "room:crash").await;
    let j1 = active(&mut sub).await;
    assert_eq!(server.crash_channels("room:crash"), 1);
    let j2 = rejoined(&sub, j1).await;
    assert!(j2 > j1);
    server
        .wait_until(WAIT, |v| v.join_refs("room:crash") == [j2.to_string()])
        .await
        .expect("server has the new incarnation");
    server.push("room:crash", "after", json!({}));
    let m = next(&mut sub).await;
    assert_eq!((m.event(), m.join_ref()), ("after", Some(j2)));
    drop(sub);
    all_left(&server).await;
}

#[tokio::test]
async fn socket_drop_reconnects_and_rejoins_everything_with_new_join_refs() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut a = subscribe(&client, "room:drop1").await;
    let mut b = subscribe(&client, "room:drop2").await;
    let (ja, jb) = (active(&mut a).await, active(&mut b).await);
    let first = server.view(|v| v.socket_ids());
    assert_eq!(server.drop_all_sockets(), 1);
    let (ja2, jb2) = (rejoined(&a, ja).await, rejoined(&b, jb).await);
    assert!(ja2.min(jb2) > ja.max(jb));
    server
        .wait_until(WAIT, |v| {
            v.socket_count() == 1 && v.socket_ids() != first && v.joined_count() == 2
        })
        .await
        .expect("one new socket with both channels");
    let stats = client.stats().await.expect("alive");
    assert_eq!((stats.socket.connects, stats.socket.reconnects), (2, 1));
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    server.broadcast("room:drop1", "hello", json!({"to": "all"}));
    let m = next(&mut a).await;
    assert_eq!((m.event(), m.join_ref()), ("hello", None));
    drop((a, b));
    all_left(&server).await;
}

#[tokio::test]
async fn stale_closes_and_duplicate_joins_never_kill_the_current_incarnation() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let topic = "room:dup";
    // join 1, leave 1, join 2 all reach a server that is still busy with join 1:
    // the late reply and phx_close of incarnation 1 must not touch incarnation 2.
    server.delay_joins(topic, Duration::from_millis(150));
    let first = subscribe(&client, topic).await;
    drop(first);
    let mut sub = subscribe(&client, topic).await;
    let current = active(&mut sub).await;
    server.clear_join_faults();
    server
        .wait_until(WAIT, |v| v.join_refs(topic) == [current.to_string()])
        .await
        .expect("the server holds our current incarnation");
    let stats = client.stats().await.expect("alive");
    assert!(
        stats.socket.ignored_inputs >= 1,
        "the late reply or phx_close of incarnation 1 was reported stale: {stats:?}"
    );
    let ignored_before = stats.socket.ignored_inputs;

    // Frames of an old incarnation, and junk refs, injected as the server would send them.
    let old = server.view(|v| v.inbound(topic, "phx_join")[0].join_ref.clone());
    let old = old.expect("a join carries its join_ref");
    assert_ne!(old, current.to_string());
    assert_eq!(
        server.view(|v| v.channel_ends(topic)),
        [(old.clone(), ChannelEnd::Duplicate)],
        "the server saw a duplicate join and closed the old incarnation"
    );
    for frame in [
        json!([old, old, topic, "phx_close", {}]),
        json!([old, old, topic, "phx_error", {}]),
        json!([old, null, topic, "ghost", {"stale": true}]),
        json!(["x", "x", topic, "phx_close", {}]),
        json!([old, "999999", topic, "phx_reply", {"status": "ok", "response": {}}]),
    ] {
        server.send_raw_to_all(Frame::Text(frame.to_string()));
    }
    server.push(topic, "real", json!({}));
    let m = next(&mut sub).await;
    assert_eq!((m.event(), m.join_ref()), ("real", Some(current)));
    assert_eq!(sub.state().join_ref(), Some(current));
    assert!(sub.state().is_active());
    let stats = client.stats().await.expect("alive");
    assert!(
        stats.socket.ignored_inputs >= ignored_before + 2,
        "stale close and error reported ignored: {stats:?}"
    );
    assert_eq!(server.view(|v| v.join_refs(topic)), [current.to_string()]);
    drop(sub);
    all_left(&server).await;
}

#[tokio::test]
async fn push_buffer_overflow_drops_the_oldest_or_rejects_the_newest() {
    let server = server().await;
    for (policy, refused) in [
        (OverflowPolicy::DropOldest, 0),
        (OverflowPolicy::RejectNew, 2),
    ] {
        let client = connect(&server, config().with_push_buffer(2, policy)).await;
        let topic = format!("room:buf:{policy:?}");
        server.delay_joins(topic.as_str(), Duration::from_millis(200));
        let sub = subscribe(&client, &topic).await;
        let (r0, r1, r2) = tokio::join!(
            sub.push("echo", json!({"n": 0})),
            sub.push("echo", json!({"n": 1})),
            sub.push("echo", json!({"n": 2})),
        );
        let results = [r0, r1, r2];
        for (n, result) in results.iter().enumerate() {
            if n == refused {
                assert_eq!(
                    result,
                    &Err(PushError::BufferOverflow {
                        topic: Arc::from(topic.as_str()),
                        capacity: 2,
                        policy
                    })
                );
            } else {
                let reply = result.as_ref().expect("echoed once active");
                assert_eq!(reply.response, Payload::Json(json!({"n": n})));
            }
        }
        assert_eq!(server.inbound_count(&topic, "echo"), 2);
        drop(sub);
        all_left(&server).await;
    }
}

#[tokio::test]
async fn pushes_time_out_when_the_server_never_replies_or_the_channel_never_joins() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut silent = subscribe(&client, "silent:1").await;
    active(&mut silent).await;
    let t = Duration::from_millis(100);
    let started = Instant::now();
    let result = silent.push_with_timeout("anything", json!({}), t).await;
    assert_eq!(result, Err(PushError::Timeout { after: t }));
    assert!(started.elapsed() >= t);

    server.delay_joins("room:late", Duration::from_millis(400));
    let late = subscribe(&client, "room:late").await;
    let result = late.push_with_timeout("echo", json!({}), t).await;
    assert_eq!(result, Err(PushError::Timeout { after: t }));
    let stats = client.stats().await.expect("alive");
    assert_eq!((stats.pushes_buffered, stats.pushes_in_flight), (0, 0));
    assert_eq!(
        silent.push("x", json!([1])).await,
        Err(PushError::Encode(
            channel_registry::phoenix::codec::EncodeError::PayloadNotObject { found: "an array" }
        ))
    );
    drop((silent, late));
    all_left(&server).await;
}

#[tokio::test]
async fn malformed_frames_are_counted_and_the_connection_carries_on() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "room:junk").await;
    let j = active(&mut sub).await;
    server.send_garbage_to_all();
    server.send_raw_to_all(Frame::Binary(vec![7, 1, 2]));
    server.send_raw_to_all(Frame::Text("[1,2]".to_owned()));
    server.send_raw_to_all(Frame::Text(
        r#"["1","2","room:junk","phx_reply",{"response":{}}]"#.to_owned(),
    ));
    let reply = sub
        .push("echo", json!({"alive": true}))
        .await
        .expect("echo");
    assert_eq!(reply.response, Payload::Json(json!({"alive": true})));
    let stats = client.stats().await.expect("alive");
    assert_eq!(stats.socket.decode_errors, 4);
    assert_eq!(stats.socket.reconnects, 0);
    assert_eq!(sub.state().join_ref(), Some(j));
    drop(sub);
    all_left(&server).await;
}

#[tokio::test]
async fn heartbeat_loss_tears_down_and_reconnects() {
    let server = server().await;
    let client = connect(
        &server,
        config().with_heartbeat_interval(Duration::from_millis(150)),
    )
    .await;
    let mut sub = subscribe(&client, "room:hb").await;
    let j1 = active(&mut sub).await;
    let first = server.view(|v| v.socket_ids());
    server.set_heartbeat_replies(false);
    server
        .wait_until(WAIT, |v| {
            v.socket_ids().iter().any(|id| !first.contains(id))
        })
        .await
        .expect("a new socket after the heartbeat timeout");
    server.set_heartbeat_replies(true);
    let j2 = rejoined(&sub, j1).await;
    assert!(j2 > j1);
    let stats = client.stats().await.expect("alive");
    assert!(stats.socket.heartbeat_timeouts >= 1 && stats.socket.reconnects >= 1);
    server
        .wait_until(WAIT, |v| v.socket_count() == 1)
        .await
        .expect("the dead socket was closed");
    // The new link stays up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sub.state().join_ref(), Some(j2));
    drop(sub);
    all_left(&server).await;
}

#[tokio::test]
async fn close_code_1000_stops_reconnecting_other_codes_reconnect() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "room:close").await;
    let j1 = active(&mut sub).await;

    server.close_all_sockets(1012, "restart");
    let j2 = rejoined(&sub, j1).await;

    server.close_all_sockets(1000, "bye");
    let mut connection = client.connection();
    within(connection.wait_for(|c| {
        matches!(
            c,
            ConnectionState::Disconnected(CloseReason::ServerClosed { code: 1000, .. })
        )
    }))
    .await
    .expect("alive");
    let mut state = sub.state_watch();
    within(state.wait_for(|s| *s == SubscriptionState::Managed(TopicStatus::Offline)))
        .await
        .expect("alive");
    server
        .wait_until(WAIT, |v| v.socket_count() == 0)
        .await
        .expect("closed");

    client.reconnect();
    let j3 = rejoined(&sub, j2).await;
    assert!(j3 > j2);
    assert_eq!(client.stats().await.expect("alive").socket.reconnects, 2);
    drop(sub);
    all_left(&server).await;
}

#[tokio::test]
async fn rejected_joins_fail_the_topic_after_the_retries() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "fail:1").await;
    let error = within(sub.wait_active()).await.expect_err("rejected");
    assert_eq!(
        error,
        SubscribeError::Failed {
            topic: Arc::from("fail:1"),
            reason: FailReason::JoinRejected,
            detail: Some(Arc::from("unauthorized")),
        }
    );
    assert_eq!(server.inbound_count("fail:1", "phx_join"), 3);
    assert!(matches!(
        sub.push("echo", json!({})).await,
        Err(PushError::TopicFailed { .. })
    ));
    assert!(error.to_string().contains("subscribe again"));
    drop(sub);
    client_idle(&client).await;
    all_left(&server).await;
}

#[tokio::test]
async fn join_params_and_socket_params_are_re_read_on_every_rejoin() {
    let server = server().await;
    let session = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&session);
    let client = connect(
        &server,
        config()
            .with_param("token", "t0")
            .with_params_provider(move || {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                vec![("session".to_owned(), n.to_string())]
            }),
    )
    .await;
    let version = Arc::new(AtomicU64::new(1));
    let v = Arc::clone(&version);
    let params = JoinParams::provider(move || json!({"v": v.load(Ordering::Relaxed)}));
    let mut sub = client
        .subscribe("room:params", params.clone())
        .await
        .expect("subscribe");
    // A clone of the same provider is the same params; other params conflict.
    let twin = client
        .subscribe("room:params", params)
        .await
        .expect("same params");
    assert!(matches!(
        client.subscribe("room:params", json!({"v": 1})).await,
        Err(SubscribeError::Refused(EngineError::ParamsConflict { .. }))
    ));
    let j1 = active(&mut sub).await;
    let joins = |s: &DevServer| {
        s.view(|v| {
            v.inbound("room:params", "phx_join")
                .into_iter()
                .map(|m| m.payload.as_json().cloned().expect("json"))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(joins(&server), [json!({"v": 1})]);

    version.store(2, Ordering::Relaxed);
    server.crash_channels("room:params");
    let j2 = rejoined(&sub, j1).await;
    assert_eq!(joins(&server), [json!({"v": 1}), json!({"v": 2})]);

    let params_of_socket = |s: &DevServer| s.sockets()[0].params.clone();
    let expected = |n: &str| {
        vec![
            ("token".to_owned(), "t0".to_owned()),
            ("session".to_owned(), n.to_owned()),
            ("vsn".to_owned(), "2.0.0".to_owned()),
        ]
    };
    assert_eq!(params_of_socket(&server), expected("1"));
    version.store(3, Ordering::Relaxed);
    server.drop_all_sockets();
    rejoined(&sub, j2).await;
    assert_eq!(params_of_socket(&server), expected("2"));
    assert_eq!(joins(&server).last(), Some(&json!({"v": 3})));
    drop((sub, twin));
    all_left(&server).await;
}

#[tokio::test]
async fn settling_rooms_show_a_version_only_after_its_first_sync() {
    let sync = Duration::from_millis(150);
    let server = start(DevServerConfig::default().with_sync_delay(sync)).await;
    let client = connect(
        &server,
        config()
            .with_engine(Config {
                settling: true,
                ..engine()
            })
            .with_resources(SettleOnEvent::new("sync")),
    )
    .await;
    let (v1, v2) = ("room:set:v1", "room:set:v2");
    let mut room = client.room("settled");
    let started = Instant::now();
    room.switch(v1, None).await.expect("switch");
    events_until_shows(&mut room, v1).await;
    assert!(started.elapsed() >= sync, "shown before its sync");

    let mut sub = subscribe(&client, v2).await;
    room.switch(v2, None).await.expect("switch");
    server
        .wait_until(WAIT, |v| v.is_joined(v2))
        .await
        .expect("v2 joined");
    // Joined but not synced yet: settling, and the room still shows v1.
    let mut state = sub.state_watch();
    within(state.wait_for(|s| {
        matches!(
            s,
            SubscriptionState::Managed(TopicStatus::Live {
                phase: Phase::Settling,
                ..
            })
        )
    }))
    .await
    .expect("alive");
    assert_eq!(room.state().shown.as_deref(), Some(v1));
    let seen = events_until_shows(&mut room, v2).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    active(&mut sub).await;
    drop((room, sub));
    all_left(&server).await;
    client_idle(&client).await;
}

#[tokio::test]
async fn close_all_ends_every_stream_and_leaves_every_channel() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "room:ca1").await;
    active(&mut sub).await;
    let mut room = client.room("ca");
    room.switch("room:ca2", None).await.expect("switch");
    within(room.wait_shows("room:ca2")).await.expect("shown");
    client.close_all().await;
    assert_eq!(
        sub.state(),
        SubscriptionState::Closed(CloseReason::CloseAll)
    );
    assert_eq!(within(sub.recv()).await, None);
    assert_eq!(room.state().closed, Some(CloseReason::CloseAll));
    assert_eq!(room.state().shown, None, "a closed room shows nothing");
    while within(room.recv()).await.is_some() {}
    assert!(matches!(
        sub.push("echo", json!({})).await,
        Err(PushError::Closed { .. })
    ));
    assert!(matches!(
        room.push("echo", json!({})).await,
        Err(PushError::Closed {
            reason: CloseReason::RoomClosed
        })
    ));
    assert!(matches!(
        room.switch("room:ca3", None).await,
        Err(SubscribeError::UnknownRoom { .. })
    ));
    all_left(&server).await;
    client_idle(&client).await;

    // The socket stays: subscribe again.
    let mut again = subscribe(&client, "room:ca1").await;
    active(&mut again).await;
    drop((sub, room, again));
    all_left(&server).await;
}

#[tokio::test]
async fn room_pushes_binary_payloads_and_broadcasts_reach_subscribers() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut room = client.room("bin");
    assert_eq!(
        room.push("echo", json!({})).await,
        Err(PushError::NothingShown)
    );
    room.switch("room:bin", None).await.expect("switch");
    within(room.wait_shows("room:bin")).await.expect("shown");
    let reply = room
        .push("echo", Payload::Binary(vec![1, 2, 3]))
        .await
        .expect("echo");
    assert_eq!(reply.response, Payload::Binary(vec![1, 2, 3]));

    let mut sub = subscribe(&client, "room:bin").await;
    active(&mut sub).await;
    sub.push("broadcast", json!({"hi": 1})).await.expect("ok");
    let m = next(&mut sub).await;
    assert_eq!(
        (m.event(), json_of(&m), m.join_ref()),
        ("msg", &json!({"hi": 1}), None)
    );
    assert!(events_contain_msg(&mut room).await);
    drop((room, sub));
    all_left(&server).await;
}

async fn events_contain_msg(room: &mut Room) -> bool {
    loop {
        match next_event(room).await {
            RoomEvent::Message(m) if m.event() == "msg" => return true,
            _ => {}
        }
    }
}

#[tokio::test]
async fn misuse_is_a_typed_error_that_says_what_to_do() {
    let server = server().await;
    let client = connect(
        &server,
        config().with_engine(Config {
            limits: channel_registry::engine::Limits {
                max_topics: 1,
                ..Default::default()
            },
            ..engine()
        }),
    )
    .await;
    assert_eq!(
        client.subscribe("", None).await.map(drop),
        Err(SubscribeError::Refused(EngineError::Topic(
            TopicError::Empty
        )))
    );
    assert!(matches!(
        client.subscribe("room:x", json!([1])).await,
        Err(SubscribeError::Params(ParamsError::NotObject {
            found: "an array"
        }))
    ));
    let one = subscribe(&client, "room:one").await;
    let error = client.subscribe("room:two", None).await.expect_err("limit");
    assert!(matches!(
        error,
        SubscribeError::Refused(EngineError::TooManyTopics { limit: 1 })
    ));
    assert!(error.to_string().contains("max_topics"));
    drop(one);

    assert!(matches!(
        Client::connect("localhost:4000", ClientConfig::default()).await,
        Err(ConnectError::Url(_))
    ));
    let refused = Client::connect(&server.url(), config().with_param("reject", "1")).await;
    assert!(
        matches!(refused, Err(ConnectError::Connect { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        Client::connect(
            &server.url(),
            config().with_heartbeat_interval(Duration::ZERO)
        )
        .await,
        Err(ConnectError::Config(_))
    ));
    all_left(&server).await;
}

#[tokio::test]
async fn disconnect_and_dropping_every_handle_close_the_socket() {
    let server = server().await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "room:bye").await;
    active(&mut sub).await;
    client.disconnect().await;
    assert_eq!(
        client.connection_state(),
        ConnectionState::Disconnected(CloseReason::Disconnected)
    );
    assert_eq!(within(sub.recv()).await, None);
    assert_eq!(
        sub.state(),
        SubscriptionState::Closed(CloseReason::Disconnected)
    );
    let error = sub.push("echo", json!({})).await.unwrap_err();
    assert!(
        matches!(
            error,
            PushError::Disconnected {
                reason: CloseReason::Disconnected
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("connect a new client"),
        "{error}"
    );
    assert!(client.stats().await.is_none());
    assert!(matches!(
        client.subscribe("room:bye", None).await,
        Err(SubscribeError::Closed {
            reason: CloseReason::Disconnected
        })
    ));
    server
        .wait_until(WAIT, |v| v.socket_count() == 0)
        .await
        .expect("socket closed");
    drop(sub);

    let client = connect(&server, config()).await;
    let mut sub = subscribe(&client, "room:bye").await;
    active(&mut sub).await;
    drop((client, sub));
    server
        .wait_until(WAIT, |v| v.socket_count() == 0)
        .await
        .expect("socket closed once every handle is gone");
    all_left(&server).await;
}
