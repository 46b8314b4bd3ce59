//! A tour of the client against the local dev server: two subscribers sharing
//! a channel, pushes and broadcasts, a room switched v1 → v2 → v3 faster than
//! the server answers, and a crash the client recovers from. Exits by itself
//! after a few seconds.
//!
//! ```text
//! cargo run --example demo --features dev-server
//! ```
//!
//! Set `RUST_LOG`-style filtering up with your own `tracing` subscriber to see
//! every lifecycle step; this example prints what the handles observe.

use std::error::Error;
use std::time::Duration;

use channel_registry::engine::Config;
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, JoinParams, RoomEvent, SubscriptionEvent};
use serde_json::json;
use tokio::time::{timeout, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let t = move || format!("{:>7.1} ms", start.elapsed().as_secs_f64() * 1000.0);

    let server =
        DevServer::start(DevServerConfig::default().with_sync_delay(Duration::from_millis(30)))
            .await?;
    // Version 2 of the document is slow to join: the room must keep showing v1.
    server.delay_joins("room:doc:v2", Duration::from_millis(200));

    let engine = Config {
        drain_grace: Duration::from_millis(300),
        ..Config::default()
    };
    let config = ClientConfig::default()
        .with_engine(engine)
        .with_param("token", "demo-token");
    let client = Client::connect(&server.url(), config).await?;
    println!("{} connected to {}", t(), client.endpoint());

    // --- two subscribers, one channel ---------------------------------------------------
    let params = json!({"user": "alice"});
    let mut alice = client.subscribe("room:lobby", params.clone()).await?;
    let mut again = client.subscribe("room:lobby", params).await?;
    let join_ref = alice.wait_active().await?;
    again.wait_active().await?;
    println!(
        "{} room:lobby active (join_ref {join_ref}); the server holds {} channel for both subscribers",
        t(),
        server.joined_count()
    );
    let reply = alice.push("echo", json!({"hello": "world"})).await?;
    println!("{} echo replied {:?}", t(), reply.response);
    again.push("broadcast", json!({"from": "again"})).await?;
    for (name, sub) in [("alice", &mut alice), ("again", &mut again)] {
        while let Ok(Some(m)) = timeout(Duration::from_millis(100), sub.recv()).await {
            println!("{} {name} got {} {:?}", t(), m.event(), m.payload());
        }
    }
    drop(again);
    println!(
        "{} dropped one subscriber; the channel stays for the other ({} joined)",
        t(),
        server.joined_count()
    );

    // --- a room switched faster than the server answers ---------------------------------
    let mut room = client.room("editor");
    room.switch("room:doc:v1", JoinParams::none()).await?;
    while let Some(event) = room.recv().await {
        if let RoomEvent::Shows { topic, .. } = event {
            println!("{} the editor shows {topic}", t());
            break;
        }
    }
    room.switch("room:doc:v2", JoinParams::none()).await?;
    room.switch("room:doc:v3", JoinParams::none()).await?;
    let state = room.state();
    println!(
        "{} switched to v2 then v3 at once: shows {:?}, pending {:?}",
        t(),
        state.shown,
        state.pending
    );
    let until = Instant::now() + Duration::from_millis(800);
    while let Ok(Some(event)) = tokio::time::timeout_at(until, room.recv()).await {
        match event {
            RoomEvent::Shows { topic, .. } => println!("{} the editor now shows {topic}", t()),
            RoomEvent::Message(m) => {
                println!("{} editor message from {}: {}", t(), m.topic(), m.event())
            }
            RoomEvent::SwitchFailed { topic, reason, .. } => {
                println!("{} switch to {topic} failed: {reason:?}", t())
            }
            other => println!("{} {other:?}", t()),
        }
    }
    let joined: Vec<String> = server
        .sockets()
        .into_iter()
        .flat_map(|s| s.joined.into_iter().map(|(topic, _)| topic))
        .collect();
    println!("{} server channels now: {joined:?}", t());
    let reply = room.push("echo", json!({"edit": 1})).await?;
    println!(
        "{} pushed an edit through the room: {:?}",
        t(),
        reply.response
    );

    // --- a crash on the server: the subscription hears every step ----------------------
    let before = alice.state().join_ref().ok_or("room:lobby is active")?;
    server.crash_channels("room:lobby");
    while let Some(event) = alice.next_event().await {
        match event {
            SubscriptionEvent::Lost { reason } => println!("{} room:lobby lost: {reason:?}", t()),
            SubscriptionEvent::Rejoining { attempt, delay, .. } => {
                println!("{} rejoining (attempt {attempt}) in {delay:?}", t())
            }
            SubscriptionEvent::Joined {
                join_ref, rejoin, ..
            } => {
                println!(
                    "{} joined again (rejoin: {rejoin}): join_ref {before} -> {join_ref}; \
                     derived state may be stale, resync it",
                    t()
                );
                break;
            }
            other => println!("{} {other:?}", t()),
        }
    }

    let stats = client.stats().await.ok_or("client closed")?;
    println!(
        "{} engine: {} topics ({} active, {} draining); socket: {} frames in, {} out, {} stale inputs ignored",
        t(),
        stats.engine.topics,
        stats.engine.active,
        stats.engine.draining,
        stats.socket.frames_in,
        stats.socket.frames_out,
        stats.socket.ignored_inputs
    );

    drop((alice, room));
    server
        .wait_until(Duration::from_secs(5), |v| v.joined_count() == 0)
        .await?;
    println!("{} every handle dropped: the server holds no channel", t());
    client.disconnect().await;
    server.shutdown().await;
    println!("{} done", t());
    Ok(())
}
