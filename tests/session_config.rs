//! Configuration extremes: for any `SessionConfig` (durations from zero to
//! `Duration::MAX`, sizes from zero to `usize::MAX`, empty ladders, odd
//! endpoints), `Session::new` either refuses it with a typed error whose
//! message says what to do, or the session runs a short scripted scenario
//! against the simulated server (connect, subscribe, push, every deadline,
//! a crash, a dropped socket and a reconnect) without panicking and without
//! breaking its contract.

#[path = "common/session_sim/mod.rs"]
mod session_sim;

use std::time::Duration;

use channel_registry::engine::{Config as EngineConfig, Limits, SubscriberId};
use channel_registry::session::{
    redact_query, Output, OverflowPolicy, PushOptions, PushTarget, ReconnectPolicy, SessionConfig,
    SessionConfigError, SubscribeOptions,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;
use session_sim::{Connects, Sim};

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        10 => Just(Duration::from_nanos(1)),
        20 => (1u64..5_000).prop_map(Duration::from_millis),
        5 => Just(Duration::from_secs(30)),
        10 => Just(Duration::from_secs(u64::MAX)),
        10 => Just(Duration::MAX),
    ]
}

fn ladder() -> impl Strategy<Value = Vec<Duration>> {
    prop_oneof![
        1 => Just(Vec::new()),
        50 => prop::collection::vec(duration(), 1..4),
    ]
}

/// A count or a size: zero now and then, else small to huge.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0),
        15 => Just(1),
        10 => Just(100),
        10 => Just(255),
        15 => Just(usize::MAX),
    ]
}

/// A frame limit: under the minimum now and then, else from the minimum up.
fn frame_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => prop_oneof![Just(0), Just(1), Just(1023)],
        15 => Just(1024),
        15 => Just(8 << 20),
        15 => Just(usize::MAX),
    ]
}

fn permille() -> impl Strategy<Value = u16> {
    prop_oneof![
        15 => Just(0),
        15 => Just(100),
        15 => Just(1000),
        1 => prop_oneof![Just(1001), Just(u16::MAX), any::<u16>()],
    ]
}

fn engine() -> impl Strategy<Value = EngineConfig> {
    (
        (any::<bool>(), duration(), duration(), duration(), ladder()),
        (
            permille(),
            prop_oneof![1 => Just(0u8), 50 => 1..=u8::MAX],
            any::<bool>(),
            any::<bool>(),
        ),
        (size(), size(), size()),
    )
        .prop_map(
            |(
                (settling, join_timeout, settle_timeout, drain_grace, rejoin_backoff),
                (jitter_permille, max_attempts, rejoin_on_server_close, phase_events),
                (max_topics, max_holders_per_topic, max_topic_len),
            )| EngineConfig {
                settling,
                join_timeout,
                settle_timeout,
                drain_grace,
                rejoin_backoff,
                jitter_permille,
                max_attempts,
                rejoin_on_server_close,
                limits: Limits {
                    max_topics,
                    max_holders_per_topic,
                    max_topic_len,
                },
                phase_events,
                ..EngineConfig::default()
            },
        )
}

fn reconnect() -> impl Strategy<Value = ReconnectPolicy> {
    (
        ladder(),
        permille(),
        prop_oneof![
            15 => Just(None),
            1 => Just(Some(0)),
            10 => Just(Some(1)),
            10 => Just(Some(3)),
            10 => Just(Some(u32::MAX)),
        ],
        prop_oneof![Just(None), duration().prop_map(Some)],
    )
        .prop_map(
            |(backoff, jitter_permille, max_attempts, max_duration)| ReconnectPolicy {
                backoff,
                jitter_permille,
                max_attempts,
                max_duration,
            },
        )
}

fn endpoint() -> impl Strategy<Value = &'static str> {
    const VALID: [&str; 3] = [
        "ws://sim.test/socket",
        "wss://sim.test/socket/websocket",
        "http://sim.test:4000/socket",
    ];
    const INVALID: [&str; 6] = [
        "",
        "sim.test/socket",
        "ws:///socket",
        "ws://sim test/socket",
        "ws://sim.test/socket#frag",
        "ws://sim.test/socket?vsn=1.0.0",
    ];
    prop_oneof![
        40 => prop::sample::select(&VALID[..]),
        1 => prop::sample::select(&INVALID[..]),
    ]
}

fn config() -> impl Strategy<Value = SessionConfig> {
    (
        (endpoint(), engine(), reconnect()),
        (duration(), duration(), duration()),
        (size(), any::<bool>(), frame_size()),
        (any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |(
                (endpoint, engine, reconnect),
                (heartbeat, connect_timeout, push_timeout),
                (push_buffer, reject_new, max_frame_size),
                (settle_on_sync, resources, seed),
            )| {
                let policy = if reject_new {
                    OverflowPolicy::RejectNew
                } else {
                    OverflowPolicy::DropOldest
                };
                let config = SessionConfig::new(endpoint)
                    .with_engine(engine)
                    .with_reconnect(reconnect)
                    .with_heartbeat_interval(heartbeat)
                    .with_connect_timeout(connect_timeout)
                    .with_push_timeout(push_timeout)
                    .with_push_buffer(push_buffer, policy)
                    .with_max_frame_size(max_frame_size)
                    .with_resources(resources)
                    .with_seed(seed);
                if settle_on_sync {
                    config.with_settle_on_event("sync")
                } else {
                    config
                }
            },
        )
}

/// Words of advice every refusal's message carries.
const ADVICE: [&str; 7] = [
    "use ",
    "give ",
    "must ",
    "remove it",
    "write it",
    "percent-encode",
    "e.g.",
];

/// Jumps to the next deadline, at most `n` times.
fn run_deadlines(sim: &mut Sim, n: usize) {
    for _ in 0..n {
        if !sim.next_deadline() {
            return;
        }
    }
}

/// The scripted scenario: everything a short life of a session does.
fn scenario(sim: &mut Sim) {
    sim.connect();
    let _ = sim.subscribe(1, "room:a");
    let _ = sim.subscribe_with(
        2,
        "presence:p",
        SubscribeOptions::default().with_presence(true),
    );
    let _ = sim.open_room(1);
    let _ = sim.switch(1, "room:v1");
    let _ = sim.push(
        1,
        PushTarget::Subscription(SubscriberId(1)),
        "echo",
        json!({"n": 1}),
    );
    let settling = PushOptions {
        settling: true,
        timeout: Some(Duration::MAX),
    };
    let _ = sim.push_with(
        2,
        PushTarget::Subscription(SubscriberId(1)),
        "noreply",
        json!({}),
        settling,
    );
    let _ = sim.cast(PushTarget::Topic("room:a".into()), "echo", json!({}));
    sim.on_server(|s| {
        s.push_to("room:a", "sync", json!({}));
        s.push_to("room:v1", "sync", json!({}));
        s.presence_join("presence:p", "bob");
    });
    run_deadlines(sim, 20);
    sim.on_server(|s| s.crash("room:a"));
    run_deadlines(sim, 20);
    sim.connects = Connects::Refuse;
    sim.drop_socket();
    run_deadlines(sim, 10);
    sim.connects = Connects::Accept;
    sim.reconnect();
    run_deadlines(sim, 20);
    let _ = sim.switch(1, "room:v2");
    let _ = sim.unsubscribe(1);
    run_deadlines(sim, 10);
    sim.server_close(1000);
    sim.reconnect();
    sim.close_all();
    run_deadlines(sim, 10);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/session_config.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_config_is_refused_with_advice_or_runs(config in config()) {
        match Sim::try_new(config) {
            Err(error) => {
                let message = error.to_string();
                prop_assert!(
                    ADVICE.iter().any(|a| message.contains(a)),
                    "the refusal does not say what to do: {message}"
                );
            }
            Ok(mut sim) => {
                scenario(&mut sim);
                let violations: Vec<&String> =
                    sim.contract.violations.iter().chain(&sim.server.violations).collect();
                prop_assert!(violations.is_empty(), "{violations:#?}");
            }
        }
    }
}

#[test]
fn the_defaults_run_the_scenario() {
    let mut sim = Sim::new(SessionConfig::new("ws://sim.test/socket"));
    scenario(&mut sim);
    sim.assert_contract();
    assert!(sim.sub_events(1).len() >= 4, "{:?}", sim.sub_story(1));
}

/// The property above is only as good as the share of configs that get to
/// run the scenario: most must.
#[test]
fn most_generated_configs_are_valid() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = config();
    let valid = (0..400)
        .filter(|_| Sim::try_new(strategy.new_tree(&mut runner).unwrap().current()).is_ok())
        .count();
    assert!(valid > 200, "only {valid} of 400 configs are valid");
}

#[test]
fn jitter_may_be_the_whole_delay_but_no_more() {
    let with_jitter = |jitter_permille| {
        SessionConfig::new("ws://sim.test/socket").with_reconnect(ReconnectPolicy {
            jitter_permille,
            ..ReconnectPolicy::default()
        })
    };
    assert!(with_jitter(1000).validate().is_ok());
    assert!(matches!(
        with_jitter(1001).validate(),
        Err(SessionConfigError::Jitter(1001))
    ));
}

#[test]
fn the_connect_request_carries_the_socket_url_with_params_and_version() {
    let mut sim = Sim::new(SessionConfig::new("ws://sim.test/socket").with_param("token", "a b"));
    sim.connect();
    let urls: Vec<(String, String)> = sim
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Connect(request) => {
                Some((request.url().to_owned(), request.endpoint().to_owned()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        urls,
        [(
            "ws://sim.test/socket/websocket?token=a%20b&vsn=2.0.0".to_owned(),
            "ws://sim.test/socket/websocket".to_owned()
        )],
        "the endpoint, for logs, leaves the query (and its secrets) out"
    );
}

#[test]
fn a_redacted_endpoint_keeps_everything_before_the_query_or_fragment() {
    assert_eq!(
        redact_query("wss://h:4000/socket?token=s3cret"),
        "wss://h:4000/socket"
    );
    assert_eq!(redact_query("ws://h/socket#x?y"), "ws://h/socket");
    assert_eq!(redact_query("ws://h/socket"), "ws://h/socket");
    let shown = format!("{:?}", SessionConfig::new("ws://h/socket?token=s3cret"));
    assert!(!shown.contains("s3cret"), "{shown}");
}
