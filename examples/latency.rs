//! Measures, against the dev server on loopback:
//!
//! 1. join → active latency through the client (subscribe, then wait until
//!    the subscription reports active) versus a raw WebSocket round trip of
//!    the same join frame on the same server — median of 1 000 each, on a
//!    current-thread and on a multi-thread runtime;
//! 2. how many channels one socket holds: N topics subscribed at once on one
//!    socket (the server's per-socket limit and the engine's topic limit
//!    raised), time until all are active, then one server push per topic and
//!    the time until every subscription got its message.
//!
//! ```text
//! cargo run --release --example latency --features dev-server [-- CHANNELS...]
//! ```
//!
//! `CHANNELS` defaults to 1000 5000 20000.

use std::error::Error;
use std::time::Duration;

use channel_registry::engine::{Config, Limits};
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, JoinParams, Subscription};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const SAMPLES: usize = 1000;
const WARMUP: usize = 100;
/// No `sync` push: only the join reply is on the wire.
const NO_SYNC: Duration = Duration::from_secs(3600);

fn server_config(channels: usize) -> DevServerConfig {
    DevServerConfig::default()
        .with_sync_delay(NO_SYNC)
        .with_max_channels_per_socket(channels)
        .with_max_clients_per_topic(channels)
        .with_event_log_capacity(0)
}

fn client_config(channels: usize) -> ClientConfig {
    ClientConfig::default().with_engine(Config {
        limits: Limits {
            max_topics: channels,
            ..Limits::default()
        },
        ..Config::default()
    })
}

struct Summary {
    median: Duration,
    p90: Duration,
    p99: Duration,
}

fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Summary {
        median: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Raw round trips: send `phx_join` for a fresh topic, wait for its reply.
async fn raw_round_trips(server: &DevServer, n: usize) -> Result<Vec<Duration>, Box<dyn Error>> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(server.websocket_url(), None, true).await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..WARMUP + n {
        let r = i + 1;
        let frame = format!(r#"["{r}","{r}","room:raw:{i}","phx_join",{{}}]"#);
        let started = Instant::now();
        ws.send(WsMessage::text(frame)).await?;
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(text))) if text.contains("phx_reply") => break,
                Some(Ok(_)) => continue,
                other => return Err(format!("connection ended: {other:?}").into()),
            }
        }
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    ws.close(None).await?;
    Ok(samples)
}

/// Client joins: subscribe to a fresh topic, wait until it is active.
async fn client_joins(server: &DevServer, n: usize) -> Result<Vec<Duration>, Box<dyn Error>> {
    let client = Client::connect(&server.url(), client_config(WARMUP + n + 10)).await?;
    let mut samples = Vec::with_capacity(n);
    // For context: one command round trip through the client's task, no network.
    let mut hops = Vec::with_capacity(n);
    for i in 0..WARMUP + n {
        let started = Instant::now();
        client.stats().await.ok_or("client closed")?;
        if i >= WARMUP {
            hops.push(started.elapsed());
        }
    }
    let hop = summarize(hops);
    println!(
        "  (handle → task → handle round trip, no network: median {:.1} µs)",
        us(hop.median)
    );
    let mut held = Vec::with_capacity(WARMUP + n);
    for i in 0..WARMUP + n {
        let topic = format!("room:client:{i}");
        let started = Instant::now();
        let mut sub = client.subscribe(&topic, JoinParams::none()).await?;
        sub.wait_active().await?;
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
        held.push(sub);
    }
    drop(held);
    client.disconnect().await;
    Ok(samples)
}

async fn latency(flavor: &str) -> Result<(), Box<dyn Error>> {
    let server = DevServer::start(server_config(10 * (WARMUP + SAMPLES))).await?;
    println!("join latency, {flavor} runtime, {SAMPLES} samples each (µs):");
    let raw = summarize(raw_round_trips(&server, SAMPLES).await?);
    let client = summarize(client_joins(&server, SAMPLES).await?);
    println!(
        "  raw WebSocket join round trip  median {:7.1}  p90 {:7.1}  p99 {:7.1}",
        us(raw.median),
        us(raw.p90),
        us(raw.p99)
    );
    println!(
        "  client subscribe → active      median {:7.1}  p90 {:7.1}  p99 {:7.1}",
        us(client.median),
        us(client.p90),
        us(client.p99)
    );
    println!(
        "  ratio of medians {:.3} (+{:.1} µs)",
        client.median.as_secs_f64() / raw.median.as_secs_f64(),
        us(client.median.saturating_sub(raw.median))
    );
    server.shutdown().await;
    Ok(())
}

async fn channels_per_socket(n: usize) -> Result<(), Box<dyn Error>> {
    let server = DevServer::start(server_config(n)).await?;
    let client = Client::connect(&server.url(), client_config(n)).await?;
    let topics: Vec<String> = (0..n).map(|i| format!("room:many:{i}")).collect();

    let started = Instant::now();
    let mut subs: Vec<Subscription> = Vec::with_capacity(n);
    for topic in &topics {
        subs.push(client.subscribe(topic, JoinParams::none()).await?);
    }
    let subscribed = started.elapsed();
    for sub in &mut subs {
        sub.wait_active().await?;
    }
    let all_active = started.elapsed();
    let on_socket = server.view(|v| v.socket_ids().first().map_or(0, |id| v.joined_on(*id)));

    let started = Instant::now();
    for (i, topic) in topics.iter().enumerate() {
        server.push(topic, "tick", json!({"i": i}));
    }
    for sub in &mut subs {
        sub.recv().await.ok_or("stream ended")?;
    }
    let delivered = started.elapsed();

    let started = Instant::now();
    client.close_all().await;
    server
        .wait_until(Duration::from_secs(60), |v| v.joined_count() == 0)
        .await?;
    let left = started.elapsed();
    let stats = client.stats().await.ok_or("client closed")?;
    println!(
        "{n:>6} channels on one socket (server holds {on_socket}): subscribe calls {:7.1} ms, \
         all active {:7.1} ms ({:5.1} µs/channel); one push per topic delivered in {:7.1} ms \
         ({:5.1} µs/message); close_all → server empty {:7.1} ms; frames in/out {}/{}",
        subscribed.as_secs_f64() * 1e3,
        all_active.as_secs_f64() * 1e3,
        us(all_active) / n as f64,
        delivered.as_secs_f64() * 1e3,
        us(delivered) / n as f64,
        left.as_secs_f64() * 1e3,
        stats.socket.frames_in,
        stats.socket.frames_out,
    );
    drop(subs);
    client.disconnect().await;
    server.shutdown().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut channels: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    if channels.is_empty() {
        channels = vec![1000, 5000, 20_000];
    }
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    current.block_on(latency("current-thread"))?;
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    multi.block_on(latency("multi-thread"))?;
    println!("channels per socket (multi-thread runtime):");
    for n in channels {
        multi.block_on(channels_per_socket(n))?;
    }
    Ok(())
}
