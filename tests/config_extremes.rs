//! `ClientConfig` with extreme durations and sizes: `Client::connect` either
//! refuses with a typed error that says what to do, or the client runs a
//! short scenario against the dev server; nothing panics, in the caller or
//! in the client's task.
#![cfg(feature = "dev-server")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use channel_registry::engine::Config;
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, JoinParams, OverflowPolicy};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;
use tokio::time::timeout;

/// Panics anywhere in the process, spawned tasks included.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::from_millis(50)),
        Just(Duration::from_secs(u64::from(u32::MAX))),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::MAX),
    ]
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(64),
        Just(64 * 1024),
        Just(usize::MAX / 2),
        Just(usize::MAX),
    ]
}

#[derive(Debug, Clone)]
struct Extremes {
    heartbeat: Duration,
    connect_timeout: Duration,
    push_timeout: Duration,
    join_timeout: Duration,
    drain_grace: Duration,
    rejoin: Vec<Duration>,
    reconnect: Vec<Duration>,
    max_frame: usize,
    push_buffer: usize,
    subscriber_capacity: usize,
    subscriber_budget: usize,
    write_buffer: usize,
}

fn extremes() -> impl Strategy<Value = Extremes> {
    (
        (duration(), duration(), duration(), duration(), duration()),
        (
            prop::collection::vec(duration(), 0..3),
            prop::collection::vec(duration(), 0..3),
        ),
        (size(), size(), size(), size(), size()),
    )
        .prop_map(
            |(
                (heartbeat, connect_timeout, push_timeout, join_timeout, drain_grace),
                (rejoin, reconnect),
                (max_frame, push_buffer, subscriber_capacity, subscriber_budget, write_buffer),
            )| Extremes {
                heartbeat,
                connect_timeout,
                push_timeout,
                join_timeout,
                drain_grace,
                rejoin,
                reconnect,
                max_frame,
                push_buffer,
                subscriber_capacity,
                subscriber_budget,
                write_buffer,
            },
        )
}

fn config(x: &Extremes) -> ClientConfig {
    ClientConfig::default()
        .with_engine(Config {
            join_timeout: x.join_timeout,
            drain_grace: x.drain_grace,
            rejoin_backoff: x.rejoin.clone(),
            ..Config::default()
        })
        .with_heartbeat_interval(x.heartbeat)
        .with_connect_timeout(x.connect_timeout)
        .with_push_timeout(x.push_timeout)
        .with_reconnect_backoff(x.reconnect.clone())
        .with_max_frame_size(x.max_frame)
        .with_push_buffer(x.push_buffer, OverflowPolicy::DropOldest)
        .with_subscriber_capacity(x.subscriber_capacity)
        .with_subscriber_budget(x.subscriber_budget)
        .with_write_buffer(x.write_buffer)
}

/// Connects and, if that worked, joins, pushes, drops a socket and
/// disconnects, each step bounded.
async fn scenario(server: &DevServer, config: ClientConfig) {
    let step = Duration::from_millis(500);
    let client = match timeout(step, Client::connect(&server.url(), config)).await {
        Err(_) => return,
        Ok(Err(error)) => {
            let text = error.to_string();
            assert!(text.len() > 20, "says what to do: {text}");
            return;
        }
        Ok(Ok(client)) => client,
    };
    if let Ok(Ok(mut sub)) = timeout(step, client.subscribe("room:x", JoinParams::none())).await {
        let _ = timeout(step, sub.wait_active()).await;
        let _ = timeout(step, sub.push("echo", json!({"n": 1}))).await;
        server.drop_all_sockets();
        let _ = timeout(step, sub.wait_active()).await;
        let _ = timeout(step, client.stats()).await;
    }
    let _ = timeout(step, client.disconnect()).await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/config_extremes.txt"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn extreme_configs_are_refused_or_run_without_panicking(x in extremes()) {
        count_panics();
        let before = PANICS.load(Ordering::SeqCst);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let server = DevServer::start(DevServerConfig::default())
                .await
                .expect("dev server starts");
            scenario(&server, config(&x)).await;
            // Let the client's task run what the scenario started.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        drop(runtime);
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "a panic with {:?}", x);
    }
}
