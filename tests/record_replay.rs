//! A real client run against the dev server, recorded to a file, replays
//! through the pure session with no mismatch: joins with secret params, a
//! message, a push answered, a channel crash and its rejoin, a socket drop
//! and the reconnect, a room switch, close-all and disconnect. (The topic is
//! a `crash:*` one: the dev server's `room:*` topics echo their join params
//! in the join reply, and what the server sends is recorded as it came.)
#![cfg(feature = "dev-server")]

use std::time::Duration;

use channel_registry::engine::Config;
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, JoinParams, RoomEvent};
use channel_registry::session::record::{replay, ReplayError};
use serde_json::json;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &str = "s3cret-e2e";

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_engine(Config {
            join_timeout: Duration::from_secs(2),
            drain_grace: Duration::from_millis(50),
            rejoin_backoff: vec![Duration::from_millis(20)],
            ..Config::default()
        })
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_reconnect_backoff(vec![Duration::from_millis(10)])
        .with_push_timeout(Duration::from_secs(2))
        .with_param("token", SECRET)
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    timeout(WAIT, future).await.expect("in time")
}

#[tokio::test]
async fn a_recorded_client_run_replays_through_the_pure_session() {
    let server =
        DevServer::start(DevServerConfig::default().with_sync_delay(Duration::from_secs(600)))
            .await
            .expect("dev server starts");
    let dir = std::env::temp_dir().join(format!("record-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    let path = dir.join("run.jsonl");
    let client = within(Client::connect(
        &server.url(),
        config().with_recording(&path),
    ))
    .await
    .expect("client connects");

    let mut sub = client
        .subscribe("crash:rec", JoinParams::json(json!({"secret": SECRET})))
        .await
        .expect("subscribe accepted");
    let first = within(sub.wait_active()).await.expect("active");
    server.push("crash:rec", "news", json!({"n": 1, "x": 0.1}));
    let message = within(sub.recv()).await.expect("a message");
    assert_eq!(message.json(), Some(&json!({"n": 1, "x": 0.1})));
    within(sub.push("echo", json!({"ping": true})))
        .await
        .expect("a reply");

    // The channel crashes and rejoins; then the socket drops and reconnects.
    server.crash_channels("crash:rec");
    let mut state = sub.state_watch();
    within(state.wait_for(|s| s.is_active() && s.join_ref() != Some(first)))
        .await
        .expect("rejoined");
    let second = sub.state().join_ref();
    server.drop_all_sockets();
    within(state.wait_for(|s| s.is_active() && s.join_ref() != second))
        .await
        .expect("rejoined after the reconnect");

    let mut room = client.room("lobby");
    room.switch("room:other", JoinParams::none())
        .await
        .expect("switch accepted");
    loop {
        if let RoomEvent::Shows { .. } = within(room.recv()).await.expect("a room event") {
            break;
        }
    }
    // A few heartbeats.
    tokio::time::sleep(Duration::from_millis(450)).await;
    client.close_all().await;
    client.disconnect().await;
    drop((sub, room, client));

    let text = std::fs::read_to_string(&path).expect("the recording");
    let _ = std::fs::remove_dir_all(&dir);
    let leaks: Vec<&str> = text.lines().filter(|l| l.contains(SECRET)).collect();
    assert!(
        leaks.is_empty(),
        "a secret leaked into the recording: {leaks:#?}"
    );
    let lines = text.lines().count();
    assert!(lines > 30, "{lines} lines");
    #[allow(clippy::disallowed_methods)]
    let base = std::time::Instant::now();
    match replay(&text, base) {
        Ok(summary) => {
            assert_eq!(summary.lines, lines);
            assert!(summary.inputs > 10, "{summary:?}");
            assert!(text.contains("heartbeat"));
        }
        Err(error) => panic!("the replay differs: {error}\n{text}"),
    }
    // A tampered recording is caught.
    let tampered = text.replacen("\\\"n\\\":1", "\\\"n\\\":2", 1);
    assert_ne!(tampered, text);
    assert!(matches!(
        replay(&tampered, base),
        Err(ReplayError::Queued { .. } | ReplayError::Output { .. })
    ));
}
