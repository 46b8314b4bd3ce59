//! Ordered streams end to end: the tokio client against the dev server's
//! ordered topics on loopback, 10 000 events with channel crashes, socket
//! drops and the server's fault knobs mid-stream. A reader must see every
//! numbered event exactly once and in order (sequenced), and every version
//! of a mount in order with a resync announced before each remount
//! (versioned).
#![cfg(feature = "dev-server")]

use std::time::Duration;

use channel_registry::engine::Config;
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig, OrderedFault};
use channel_registry::phoenix::{Client, ClientConfig, Subscription};
use channel_registry::session::stream::SequencedConfig;
use channel_registry::session::{
    LostReason, StreamEvent, StreamOptions, SubscribeOptions, SubscriptionEvent,
};
use tokio::time::timeout;

const EVENTS: u64 = 10_000;
/// Upper bound for the whole run; reached only when a test fails.
const WAIT: Duration = Duration::from_secs(60);

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_engine(Config {
            join_timeout: Duration::from_secs(2),
            drain_grace: Duration::from_millis(50),
            rejoin_backoff: vec![Duration::from_millis(10), Duration::from_millis(20)],
            max_attempts: 20,
            ..Config::default()
        })
        .with_heartbeat_interval(Duration::from_secs(5))
        .with_reconnect_backoff(vec![Duration::from_millis(10), Duration::from_millis(20)])
        // The stream is gap-free up to the subscriber's queue; a reader
        // slower than the server still gets `Lagged` for what its queue
        // could not hold. Room for a whole run here.
        .with_subscriber_budget(16 << 20)
        .with_subscriber_capacity(2 * EVENTS as usize)
}

async fn setup() -> (DevServer, Client) {
    setup_with(EVENTS, config()).await
}

async fn setup_with(window: u64, config: ClientConfig) -> (DevServer, Client) {
    let server = DevServer::start(DevServerConfig::default().with_replay_window(window))
        .await
        .expect("dev server starts");
    let client = Client::connect(&server.url(), config)
        .await
        .expect("client connects");
    (server, client)
}

/// Reads `sub` until `done` says so, returning what it saw.
async fn read_until(
    sub: &mut Subscription,
    mut seen: impl FnMut(&SubscriptionEvent) -> bool,
) -> Vec<SubscriptionEvent> {
    let mut events = Vec::new();
    let run = async {
        while let Some(event) = sub.next_event().await {
            let done = seen(&event);
            events.push(event);
            if done {
                return;
            }
        }
        panic!("the subscription ended early");
    };
    timeout(WAIT, run).await.unwrap_or_else(|_| {
        let tail: Vec<_> = events.iter().rev().take(5).collect();
        panic!("timed out after {} events; last: {tail:?}", events.len())
    });
    events
}

fn field(event: &SubscriptionEvent, name: &str) -> Option<u64> {
    match event {
        SubscriptionEvent::Message(m) => m.payload().as_json()?.get(name)?.as_u64(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_numbered_events_arrive_once_in_order_across_crashes_and_drops() {
    let (server, client) = setup().await;
    let topic = "seq:e2e";
    let options =
        SubscribeOptions::default().with_stream(StreamOptions::sequenced(SequencedConfig {
            ack_every: 50,
            gap_timeout: Duration::from_millis(500),
            ..SequencedConfig::default()
        }));
    let mut sub = client.subscribe(topic, options).await.expect("subscribed");
    timeout(WAIT, sub.wait_active()).await.unwrap().unwrap();

    // The publisher: batches with a crash, a socket drop and lost, doubled
    // and swapped frames between them.
    let handle = server.handle();
    let publisher = tokio::spawn(async move {
        let batch = EVENTS / 10;
        for i in 0..10 {
            match i {
                2 => {
                    handle.crash_channels(topic);
                }
                4 => {
                    handle.drop_all_sockets();
                }
                5 => handle.arm_ordered_fault(topic, OrderedFault::Drop { socket: None }),
                6 => handle.arm_ordered_fault(topic, OrderedFault::Duplicate),
                7 => handle.arm_ordered_fault(topic, OrderedFault::Reorder),
                8 => {
                    handle.crash_channels(topic);
                    handle.arm_ordered_fault(topic, OrderedFault::Drop { socket: None });
                }
                _ => {}
            }
            handle.publish_events(topic, batch).expect("published");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let events = read_until(&mut sub, |e| field(e, "seq") == Some(EVENTS)).await;
    publisher.await.unwrap();
    let seqs: Vec<u64> = events.iter().filter_map(|e| field(e, "seq")).collect();
    let others: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e, SubscriptionEvent::Message(_)))
        .collect();
    assert_eq!(
        seqs.len() as u64,
        EVENTS,
        "every event once; besides messages: {others:?}"
    );
    assert!(seqs.iter().copied().eq(1..=EVENTS), "in order");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Stream(StreamEvent::Lost { .. }))),
        "nothing lost: the window holds everything"
    );
    let rejoins = events
        .iter()
        .filter(|e| matches!(e, SubscriptionEvent::Joined { rejoin: true, .. }))
        .count();
    assert!(
        rejoins >= 2,
        "the crashes and the drop rejoined ({rejoins})"
    );
    assert!(
        others.iter().any(|e| matches!(
            e,
            SubscriptionEvent::Lost {
                reason: LostReason::SocketDown
            }
        )),
        "the socket drop was seen: {others:?}"
    );

    // The server hears the acknowledgements: it may trim its window.
    let acked = timeout(WAIT, async {
        loop {
            let info = server
                .handle()
                .sequenced_topic(topic)
                .expect("a sequenced topic");
            let best = info.acked.iter().map(|(_, n)| *n).max().unwrap_or(0);
            if best == EVENTS {
                return best;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("acknowledged up to the last event");
    assert_eq!(acked, EVENTS);
    let stats = client.stats().await.expect("client running");
    assert!(stats.socket.frames_in > EVENTS);
    drop(sub);
    client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_beyond_the_replay_window_is_reported_never_silent() {
    // A window of 5, and a client slow enough to come back that the server
    // publishes while it is away.
    let slow = config().with_reconnect_backoff(vec![Duration::from_millis(300)]);
    let (server, client) = setup_with(5, slow).await;
    let topic = "seq:window";
    let options =
        SubscribeOptions::default().with_stream(StreamOptions::sequenced(SequencedConfig {
            gap_timeout: Duration::from_millis(300),
            ..SequencedConfig::default()
        }));
    let mut sub = client.subscribe(topic, options).await.expect("subscribed");
    timeout(WAIT, sub.wait_active()).await.unwrap().unwrap();
    server.handle().publish_events(topic, 10).unwrap();
    read_until(&mut sub, |e| field(e, "seq") == Some(10)).await;

    // The socket is down while 11..=30 are published, and the server forgets
    // them before the client is back.
    server.handle().drop_all_sockets();
    timeout(WAIT, async {
        while !server
            .handle()
            .sequenced_topic(topic)
            .unwrap()
            .subscribers
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server saw the socket go");
    server.handle().publish_events(topic, 20).unwrap();
    server.handle().overflow_replay_window(topic);
    server.handle().publish_events(topic, 5).unwrap();
    let events = read_until(&mut sub, |e| field(e, "seq") == Some(35)).await;
    let lost: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Stream(StreamEvent::Lost { from, to }) => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert!(!lost.is_empty(), "the loss is reported: {events:?}");
    let seqs: Vec<u64> = events.iter().filter_map(|e| field(e, "seq")).collect();
    let mut covered: Vec<u64> = seqs.clone();
    for (from, to) in &lost {
        covered.extend(*from..=*to);
    }
    covered.sort_unstable();
    assert!(
        covered.iter().copied().eq(11..=35),
        "every position delivered or reported lost, once: {seqs:?} {lost:?}"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    drop(sub);
    client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_patches_stay_in_order_and_a_skipped_version_remounts() {
    let (server, client) = setup().await;
    let topic = "doc:e2e";
    let options = SubscribeOptions::default().with_stream(StreamOptions::versioned());
    let mut sub = client.subscribe(topic, options).await.expect("subscribed");
    timeout(WAIT, sub.wait_active()).await.unwrap().unwrap();

    let handle = server.handle();
    let patches = 2_000u64;
    let publisher = tokio::spawn(async move {
        for i in 0..10 {
            match i {
                3 | 6 => handle.arm_ordered_fault(topic, OrderedFault::SkipVersion),
                8 => {
                    handle.crash_channels(topic);
                }
                _ => {}
            }
            handle.apply_patches(topic, patches / 10).expect("applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle
            .versioned_topic(topic)
            .expect("a versioned topic")
            .revision
    });

    // The reader keeps the state a client would: the counter the patches
    // set, replaced whole by each mount.
    let mut counter = None;
    let mut version = 0u64;
    let mut resyncs = 0;
    let events = read_until(&mut sub, |event| {
        match event {
            SubscriptionEvent::Message(m) => {
                let payload = m.payload().as_json().expect("json");
                let v = payload["version"].as_u64().expect("a version");
                assert_eq!(v, version + 1, "versions of a mount are consecutive");
                version = v;
                for op in payload["ops"].as_array().expect("ops") {
                    counter = match op["path"].as_str() {
                        Some("") => op["value"]["counter"].as_u64(),
                        Some("/counter") => op["value"].as_u64(),
                        _ => counter,
                    };
                }
            }
            SubscriptionEvent::Stream(StreamEvent::Resync { .. }) => {
                resyncs += 1;
                version = 0;
            }
            SubscriptionEvent::Lost { .. } => version = 0,
            _ => {}
        }
        counter == Some(patches)
    })
    .await;
    let revision = publisher.await.unwrap();
    assert_eq!(revision, patches);
    assert_eq!(
        counter,
        Some(revision),
        "the reader's state is the server's"
    );
    assert!(
        resyncs >= 2,
        "each skipped version resynced ({resyncs}): {:?}",
        &events[..5]
    );
    drop(sub);
    client.disconnect().await;
}
