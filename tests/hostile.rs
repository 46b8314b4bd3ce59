//! The tokio client against servers that misbehave on purpose: a small
//! WebSocket server written here (not the dev server, which behaves) that
//! stops reading, kicks every connection, sends garbage, oversized frames or
//! floods, stalls the handshake, goes silent after the upgrade, or closes with
//! each close code. Each scenario asserts what the application sees: bounded
//! time, bounded memory, a clear state, no panic.
#![cfg(feature = "phoenix")]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use channel_registry::phoenix::{
    Client, ClientConfig, CloseReason, ConnectionState, JoinParams, PushError, Subscription,
    SubscriptionEvent,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Upper bound for anything a test waits for; reached only when it fails.
const WAIT: Duration = Duration::from_secs(5);
/// How long a handle may take to answer while the socket misbehaves.
const RESPONSIVE: Duration = Duration::from_millis(500);

type Ws = WebSocketStream<TcpStream>;

/// A server whose every accepted TCP connection runs `behave(n, stream)`,
/// `n` counting connections from 0; it records when each arrived.
struct Hostile {
    url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Hostile {
    async fn start<F, Fut>(behave: F) -> Hostile
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/socket", listener.local_addr().expect("addr"));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&arrivals);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(Instant::now());
                    seen.len() - 1
                };
                tokio::spawn(behave(n, stream));
            }
        });
        Hostile { url, arrivals }
    }

    fn connections(&self) -> usize {
        self.arrivals.lock().expect("lock").len()
    }

    async fn wait_connections(&self, n: usize) {
        within(async {
            while self.connections() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

async fn upgrade(stream: TcpStream) -> Ws {
    tokio_tungstenite::accept_async(stream)
        .await
        .expect("upgrade")
}

/// A frame of the V2 protocol, parsed.
fn parse(message: &Message) -> Option<Vec<Value>> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).ok(),
        _ => None,
    }
}

fn reply_ok(frame: &[Value]) -> Message {
    Message::text(
        json!([
            frame[0],
            frame[1],
            frame[2],
            "phx_reply",
            {"status": "ok", "response": {}}
        ])
        .to_string(),
    )
}

/// Answers heartbeats and pushes until a join comes; answers it and returns
/// its topic.
async fn accept_join(ws: &mut Ws) -> String {
    while let Some(Ok(message)) = ws.next().await {
        let Some(frame) = parse(&message) else {
            continue;
        };
        let _ = ws.send(reply_ok(&frame)).await;
        if frame[3] == "phx_join" {
            return frame[2].as_str().expect("topic").to_owned();
        }
    }
    String::new()
}

/// Behaves like a Phoenix endpoint: answers joins, heartbeats and pushes
/// with `ok` until the client goes.
async fn behave_well(ws: &mut Ws) {
    while let Some(Ok(message)) = ws.next().await {
        if let Some(frame) = parse(&message) {
            if ws.send(reply_ok(&frame)).await.is_err() {
                return;
            }
        }
    }
}

fn message_to(topic: &str, event: &str, payload: Value) -> Message {
    Message::text(json!([null, null, topic, event, payload]).to_string())
}

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_heartbeat_interval(Duration::from_secs(5))
        .with_reconnect_backoff(vec![Duration::from_millis(10), Duration::from_millis(20)])
        .with_reconnect_jitter(0)
        .with_connect_timeout(Duration::from_secs(1))
        .with_push_timeout(Duration::from_secs(2))
}

async fn within<F: Future>(future: F) -> F::Output {
    timeout(WAIT, future).await.expect("in time")
}

/// As [`within`], for the floods (debug builds decode slowly).
async fn slowly<F: Future>(future: F) -> F::Output {
    timeout(WAIT * 4, future).await.expect("in time")
}

async fn connect(server: &Hostile, config: ClientConfig) -> Client {
    within(Client::connect(&server.url, config))
        .await
        .expect("client connects")
}

async fn subscribe_active(client: &Client, topic: &str) -> Subscription {
    let mut sub = client
        .subscribe(topic, JoinParams::none())
        .await
        .expect("subscribe accepted");
    within(sub.wait_active()).await.expect("joined");
    sub
}

/// Waits for a connection state that `matches`.
async fn wait_state(
    client: &Client,
    matches: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    let mut states = client.connection();
    let state = within(states.wait_for(|s| matches(s)))
        .await
        .expect("client alive")
        .clone();
    state
}

/// `future` completes within [`RESPONSIVE`].
async fn promptly<F: Future>(what: &str, future: F) -> F::Output {
    let started = Instant::now();
    let out = timeout(RESPONSIVE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {RESPONSIVE:?}"));
    eprintln!("{what}: {:?}", started.elapsed());
    out
}

#[tokio::test]
async fn a_server_that_stops_reading_never_stops_the_client_and_fails_past_the_write_buffer() {
    let server = Hostile::start(|n, stream| async move {
        let mut ws = upgrade(stream).await;
        if n == 0 {
            accept_join(&mut ws).await;
            // Never read again; keep the socket open.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(ws);
        } else {
            behave_well(&mut ws).await;
        }
    })
    .await;
    let write_buffer = 16 * 1024 * 1024;
    let client = connect(
        &server,
        config()
            .with_write_buffer(write_buffer)
            .with_reconnect_backoff(vec![Duration::from_millis(100)]),
    )
    .await;
    let sub = subscribe_active(&client, "room:stuck").await;
    let chunk = "x".repeat(512 * 1024);
    let pusher = sub.pusher();
    let mut failed = client.connection();
    let mut sent = 0usize;
    // Casts fill the socket buffers, then the writer blocks, then the queue
    // passes the write buffer and the connection fails.
    while sent < 256 * 1024 * 1024 {
        if pusher.cast("fill", json!({ "data": chunk })).await.is_err() {
            break;
        }
        sent += chunk.len();
        if !matches!(*failed.borrow_and_update(), ConnectionState::Connected) {
            break;
        }
        if sent.is_multiple_of(2 * 1024 * 1024) {
            // While writes are blocked, the handles are served.
            promptly("stats", client.stats()).await.expect("alive");
            promptly("topics", client.topics()).await;
            let other = promptly("subscribe", client.subscribe("room:other", json!({}))).await;
            drop(other.expect("accepted"));
        }
    }
    let state = wait_state(&client, |s| !matches!(s, ConnectionState::Connected)).await;
    let ConnectionState::Reconnecting { reason, .. } = state else {
        panic!("expected a reconnect, got {state:?}");
    };
    assert!(reason.contains("stopped reading"), "{reason}");
    eprintln!("failed after {sent} bytes queued: {reason}");
    promptly("close_all", client.close_all()).await;
    // The second connection behaves: the client is back.
    wait_state(&client, |s| *s == ConnectionState::Connected).await;
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_server_that_kicks_every_connection_sees_the_client_walk_up_the_ladder() {
    let server = Hostile::start(|_, stream| async move {
        let mut ws = upgrade(stream).await;
        let _ = ws
            .close(Some(CloseFrame {
                code: CloseCode::Error,
                reason: "go away".into(),
            }))
            .await;
    })
    .await;
    let ladder = vec![
        Duration::from_millis(20),
        Duration::from_millis(40),
        Duration::from_millis(80),
        Duration::from_millis(160),
    ];
    let client = connect(&server, config().with_reconnect_backoff(ladder)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let arrivals = server.arrivals.lock().expect("lock").clone();
    // 20 + 40 + 80 + 160 * 4 ms of delays in the first second, at most.
    assert!(
        (5..=12).contains(&arrivals.len()),
        "{} connections in 1 s",
        arrivals.len()
    );
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("gaps between connections: {gaps:?}");
    assert!(gaps[0] >= Duration::from_millis(20), "{gaps:?}");
    assert!(gaps[3] > gaps[0] * 3, "the delays grow: {gaps:?}");
    assert!(
        gaps.last()
            .is_some_and(|g| *g >= Duration::from_millis(160)),
        "the ladder reached its last step: {gaps:?}"
    );
    drop(client);
}

#[tokio::test]
async fn random_text_and_binary_frames_are_counted_and_subscriptions_carry_on() {
    let server = Hostile::start(|_, stream| async move {
        let mut ws = upgrade(stream).await;
        let topic = accept_join(&mut ws).await;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..200u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| (seed.rotate_left(k as u32) & 0xff) as u8)
                .collect();
            let garbage = if i % 2 == 0 {
                Message::binary(bytes)
            } else {
                Message::text(String::from_utf8_lossy(&bytes).into_owned())
            };
            let _ = ws.send(garbage).await;
        }
        let _ = ws
            .send(message_to(&topic, "after", json!({"still": "here"})))
            .await;
        behave_well(&mut ws).await;
    })
    .await;
    let client = connect(&server, config()).await;
    let mut sub = subscribe_active(&client, "room:noise").await;
    let message = within(sub.recv()).await.expect("a message");
    assert_eq!(message.event(), "after");
    let stats = client.stats().await.expect("alive");
    assert!(
        stats.socket.decode_errors >= 100,
        "garbage counted: {:?}",
        stats.socket
    );
    assert!(sub.state().is_active());
    assert_eq!(server.connections(), 1);
    sub.push("ping", json!({}))
        .await
        .expect("pushes still work");
}

#[tokio::test]
async fn a_frame_over_the_limit_fails_the_connection_and_oversized_pushes_are_refused() {
    let server = Hostile::start(|n, stream| async move {
        let mut ws = upgrade(stream).await;
        if n == 0 {
            let topic = accept_join(&mut ws).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let big = "y".repeat(128 * 1024);
            let _ = ws
                .send(message_to(&topic, "big", json!({ "data": big })))
                .await;
        }
        behave_well(&mut ws).await;
    })
    .await;
    let client = connect(
        &server,
        config()
            .with_max_frame_size(64 * 1024)
            .with_reconnect_backoff(vec![Duration::from_millis(100)]),
    )
    .await;
    let sub = subscribe_active(&client, "room:big").await;
    // Refused before it is sent: the server would drop the socket.
    let started = Instant::now();
    let refused = sub
        .push("up", json!({ "data": "z".repeat(100 * 1024) }))
        .await;
    assert!(
        matches!(refused, Err(PushError::TooLarge { .. })),
        "{refused:?}"
    );
    assert!(started.elapsed() < RESPONSIVE);
    let state = wait_state(&client, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let ConnectionState::Reconnecting { reason, .. } = state else {
        unreachable!()
    };
    assert!(reason.contains("frame limit"), "{reason}");
    wait_state(&client, |s| *s == ConnectionState::Connected).await;
    let mut sub = sub;
    within(sub.wait_active()).await.expect("rejoined");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_stalled_handshake_times_out_and_the_client_tries_again() {
    let server = Hostile::start(|n, stream| async move {
        match n {
            // Accepts the TCP connection, never answers the upgrade.
            1 => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(stream);
            }
            0 => {
                let mut ws = upgrade(stream).await;
                accept_join(&mut ws).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                // Dropped without a close frame.
            }
            _ => behave_well(&mut upgrade(stream).await).await,
        }
    })
    .await;
    let connect_timeout = Duration::from_millis(300);
    let client = connect(
        &server,
        config()
            .with_connect_timeout(connect_timeout)
            .with_reconnect_backoff(vec![Duration::from_millis(100)]),
    )
    .await;
    let mut sub = subscribe_active(&client, "room:slow").await;
    let first = sub.state().join_ref();
    server.wait_connections(2).await;
    let stalled_at = server.arrivals.lock().expect("lock")[1];
    let state = wait_state(
        &client,
        |s| matches!(s, ConnectionState::Reconnecting { reason, .. } if reason.contains("within")),
    )
    .await;
    eprintln!("{state:?}");
    server.wait_connections(3).await;
    let retried_at = server.arrivals.lock().expect("lock")[2];
    assert!(retried_at - stalled_at >= connect_timeout);
    let mut state = sub.state_watch();
    within(state.wait_for(|s| s.is_active() && s.join_ref() != first))
        .await
        .expect("rejoined");
    within(sub.wait_active()).await.expect("active");
    let stats = client.stats().await.expect("alive");
    assert!(stats.socket.connect_failures >= 1, "{:?}", stats.socket);
}

#[tokio::test]
async fn an_upgrade_then_silence_is_found_by_the_heartbeat() {
    let server = Hostile::start(|n, stream| async move {
        let mut ws = upgrade(stream).await;
        if n == 0 {
            // Reads everything, answers nothing.
            while let Some(Ok(_)) = ws.next().await {}
        } else {
            behave_well(&mut ws).await;
        }
    })
    .await;
    let heartbeat = Duration::from_millis(150);
    let started = Instant::now();
    let client = connect(&server, config().with_heartbeat_interval(heartbeat)).await;
    let mut sub = client
        .subscribe("room:silent", JoinParams::none())
        .await
        .expect("accepted");
    within(sub.wait_active())
        .await
        .expect("joined on the second connection");
    let recovered = started.elapsed();
    eprintln!("recovered from a silent server in {recovered:?}");
    assert!(recovered >= heartbeat);
    let stats = client.stats().await.expect("alive");
    assert!(stats.socket.heartbeat_timeouts >= 1, "{:?}", stats.socket);
    assert_eq!(server.connections(), 2);
}

/// Held by the tests that measure memory, so that they do not measure each
/// other.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bytes of resident memory of this process (Linux), for reports.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_frames_to_an_unread_subscription_stays_within_its_bounds() {
    const FRAMES: usize = 100_000;
    let _memory = MEMORY.lock().await;
    let server = Hostile::start(|_, stream| async move {
        let mut ws = upgrade(stream).await;
        let topic = accept_join(&mut ws).await;
        let message = message_to(&topic, "flood", json!({ "n": 1 }));
        for _ in 0..FRAMES {
            if ws.feed(message.clone()).await.is_err() {
                return;
            }
        }
        let _ = ws.flush().await;
        behave_well(&mut ws).await;
    })
    .await;
    let budget = 64 * 1024;
    let client = connect(
        &server,
        config()
            .with_subscriber_budget(budget)
            .with_subscriber_capacity(100_000),
    )
    .await;
    let mut sub = subscribe_active(&client, "room:flood").await;
    slowly(async {
        loop {
            let stats = client.stats().await.expect("alive");
            if stats.socket.frames_in as usize > FRAMES {
                return;
            }
            assert!(sub.queued_bytes() <= budget + 1024);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        sub.queued_bytes() <= budget + 1024,
        "{}",
        sub.queued_bytes()
    );
    assert!(sub.missed() > 0);
    let mut lagged = None;
    let mut read = 0;
    while let Ok(Some(event)) = timeout(Duration::from_millis(200), sub.next_event()).await {
        match event {
            SubscriptionEvent::Lagged { messages, .. } => {
                assert!(lagged.is_none(), "one Lagged for the whole flood");
                assert_eq!(read, 0, "Lagged comes before the next message");
                lagged = Some(messages);
            }
            SubscriptionEvent::Message(_) => read += 1,
            _ => {}
        }
    }
    let lagged = lagged.expect("a Lagged event");
    assert_eq!(lagged as usize + read, FRAMES);
    eprintln!("flood: {read} read, {lagged} dropped, rss {:?}", rss());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_one_mib_messages_stay_within_the_byte_budget() {
    const MESSAGES: usize = 16;
    let _memory = MEMORY.lock().await;
    let server = Hostile::start(|_, stream| async move {
        let mut ws = upgrade(stream).await;
        let a = accept_join(&mut ws).await;
        let b = accept_join(&mut ws).await;
        let payload = json!({ "data": "m".repeat(1024 * 1024) });
        let messages = [&a, &b].map(|topic| message_to(topic, "big", payload.clone()));
        for _ in 0..MESSAGES {
            for message in &messages {
                if ws.send(message.clone()).await.is_err() {
                    return;
                }
            }
        }
        behave_well(&mut ws).await;
    })
    .await;
    let budget = 2 * 1024 * 1024;
    let message_size = 1024 * 1024 + 64;
    let before = rss();
    let client = connect(&server, config().with_subscriber_budget(budget)).await;
    let mut subs = [
        subscribe_active(&client, "room:a").await,
        subscribe_active(&client, "room:b").await,
    ];
    slowly(async {
        loop {
            let stats = client.stats().await.expect("alive");
            if stats.socket.frames_in as usize >= 2 + 2 * MESSAGES {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let after = rss();
    for sub in &subs {
        assert!(
            sub.queued_bytes() <= budget + message_size,
            "{}",
            sub.queued_bytes()
        );
        assert!(sub.missed() > 0);
    }
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        eprintln!(
            "slow consumer: {} MiB sent, rss grew by {} MiB",
            2 * MESSAGES,
            growth / (1024 * 1024)
        );
        // Unbounded queues would hold all 32 MiB.
        assert!(growth < 20 * 1024 * 1024, "rss grew by {growth} bytes");
    }
    for sub in &mut subs {
        let mut first = None;
        while let Some(event) = within(sub.next_event()).await {
            match event {
                SubscriptionEvent::Lagged { messages, bytes } => {
                    first = Some((messages, bytes));
                    break;
                }
                SubscriptionEvent::Message(_) => panic!("a message before Lagged"),
                _ => {}
            }
        }
        let (messages, bytes) = first.expect("Lagged");
        assert!(messages > 0 && bytes >= messages * (1024 * 1024));
        let next = within(sub.recv()).await.expect("then the queued messages");
        assert_eq!(next.event(), "big");
    }
}

/// The client is kicked with `code` once its channel is joined.
async fn closed_with(code: u16) -> (Hostile, Client, Subscription) {
    let server = Hostile::start(move |n, stream| async move {
        let mut ws = upgrade(stream).await;
        if n == 0 {
            accept_join(&mut ws).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: "bye".into(),
                }))
                .await;
            while let Some(Ok(_)) = ws.next().await {}
        } else {
            behave_well(&mut ws).await;
        }
    })
    .await;
    let client = connect(&server, config().with_push_timeout(Duration::from_secs(5))).await;
    let sub = subscribe_active(&client, "room:close").await;
    (server, client, sub)
}

#[tokio::test]
async fn close_1000_stops_reconnecting_and_fails_pushes_at_once() {
    let (server, client, sub) = closed_with(1000).await;
    wait_state(&client, |s| {
        matches!(
            s,
            ConnectionState::Disconnected(CloseReason::ServerClosed { code: 1000, .. })
        )
    })
    .await;
    let started = Instant::now();
    let pushed = sub.push("after", json!({})).await;
    assert!(
        matches!(pushed, Err(PushError::Disconnected { .. })),
        "{pushed:?}"
    );
    assert!(started.elapsed() < RESPONSIVE, "{:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.connections(), 1, "no reconnect after 1000");
}

#[tokio::test]
async fn close_1001_1011_1012_reconnect_and_rejoin() {
    for code in [1001, 1011, 1012] {
        let (server, _client, mut sub) = closed_with(code).await;
        let first = sub.state().join_ref();
        let mut state = sub.state_watch();
        within(state.wait_for(|s| s.is_active() && s.join_ref() != first))
            .await
            .expect("rejoined");
        within(sub.wait_active()).await.expect("active");
        assert_eq!(server.connections(), 2, "code {code}");
    }
}
