//! Churn soak: random subscribes, unsubscribes, room switches and pushes
//! against the dev server while it crashes channels, drops sockets and slows
//! joins. At the end nothing is left anywhere (client topics and timers,
//! server channels) and resident memory did not grow after the warm-up.
//! Runs ~10 s; `SOAK_SECS=600` runs longer.
#![cfg(feature = "dev-server")]

use std::time::Duration;

use channel_registry::engine::Config;
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, JoinParams, Room, Subscription};
use serde_json::json;
use tokio::time::{timeout, Instant};

/// xorshift64: the soak is the same for a given seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Resident memory in bytes (Linux only).
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_with_faults_leaves_nothing_behind_and_memory_flat() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let server =
        DevServer::start(DevServerConfig::default().with_sync_delay(Duration::from_secs(600)))
            .await
            .expect("dev server starts");
    let config = ClientConfig::default()
        .with_engine(Config {
            join_timeout: Duration::from_millis(500),
            drain_grace: Duration::from_millis(30),
            rejoin_backoff: vec![Duration::from_millis(10), Duration::from_millis(30)],
            ..Config::default()
        })
        .with_heartbeat_interval(Duration::from_millis(500))
        .with_reconnect_backoff(vec![Duration::from_millis(5), Duration::from_millis(20)])
        .with_push_timeout(Duration::from_millis(300));
    let client = Client::connect(&server.url(), config)
        .await
        .expect("connects");
    let mut rng = Rng(seed);
    let mut subs: Vec<Subscription> = Vec::new();
    let mut rooms: Vec<Room> = Vec::new();
    let mut counts = [0u64; 9];
    let started = Instant::now();
    let warm_up = Duration::from_secs(secs.min(10) / 5 + 1);
    let mut warm_rss = None;
    while started.elapsed() < Duration::from_secs(secs) {
        if warm_rss.is_none() && started.elapsed() >= warm_up {
            warm_rss = rss();
        }
        let topic = format!("room:{}", rng.below(12));
        let op = rng.below(100);
        match op {
            0..=29 => {
                if let Ok(sub) = client.subscribe(&topic, JoinParams::none()).await {
                    subs.push(sub);
                }
                counts[0] += 1;
            }
            30..=54 if !subs.is_empty() => {
                let i = rng.below(subs.len() as u64) as usize;
                drop(subs.swap_remove(i));
                counts[1] += 1;
            }
            55..=64 => {
                if rooms.len() < 4 {
                    rooms.push(client.room("soak"));
                }
                let i = rng.below(rooms.len() as u64) as usize;
                let _ = rooms[i].switch(&topic, json!({})).await;
                counts[2] += 1;
            }
            65..=69 if !rooms.is_empty() => {
                let i = rng.below(rooms.len() as u64) as usize;
                drop(rooms.swap_remove(i));
                counts[3] += 1;
            }
            70..=89 if !subs.is_empty() => {
                let i = rng.below(subs.len() as u64) as usize;
                let pusher = subs[i].pusher();
                // Not awaited: pushes overlap with everything else.
                tokio::spawn(async move {
                    let _ = pusher.push("echo", json!({"n": 1})).await;
                });
                counts[4] += 1;
            }
            90..=93 => {
                server.crash_channels(topic.as_str());
                counts[5] += 1;
            }
            94 | 95 => {
                server.drop_all_sockets();
                counts[6] += 1;
            }
            96 | 97 => {
                server.delay_joins(topic.as_str(), Duration::from_millis(50));
                counts[7] += 1;
            }
            _ => {
                server.clear_join_faults();
                counts[8] += 1;
            }
        }
        // Keep the streams from filling: read what is there.
        for sub in &mut subs {
            while let Ok(Some(_)) = timeout(Duration::ZERO, sub.next_event()).await {}
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.clear_join_faults();
    drop(subs);
    drop(rooms);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = client.stats().await.expect("client alive");
        if stats.engine.is_empty() || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(stats.engine.topics, 0, "{stats:?}");
    assert_eq!(stats.engine.timers, 0, "{stats:?}");
    assert!(stats.engine.is_empty(), "{stats:?}");
    server
        .wait_until(Duration::from_secs(10), |v| v.joined_count() == 0)
        .await
        .expect("no channel left on the server");
    eprintln!(
        "soak {secs} s: subscribe {}, unsubscribe {}, switch {}, close room {}, push {}, \
         crash {}, socket drop {}, slow join {}; socket {:?}",
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        counts[6],
        counts[7],
        stats.socket
    );
    if let (Some(warm), Some(end)) = (warm_rss, rss()) {
        eprintln!(
            "rss after warm-up {} KiB, at the end {} KiB",
            warm / 1024,
            end / 1024
        );
        assert!(
            end <= warm + 16 * 1024 * 1024,
            "rss grew from {warm} to {end} bytes"
        );
    }
}
