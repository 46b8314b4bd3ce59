//! The session's socket on a simulated clock against a simulated Phoenix
//! server: dead-link detection by heartbeat, the reconnect ladder (what
//! counts as healthy, jitter, seeds), giving up, and a normal close by the
//! server.

#[path = "common/session_sim/mod.rs"]
mod session_sim;

use std::time::Duration;

use channel_registry::engine::{Config as EngineConfig, RoomId, SubscriberId};
use channel_registry::session::{
    CloseReason, ConnectionState, Diagnostic, Event, LostReason, Output, PushError, PushTarget,
    ReconnectPolicy, RoomEvent, SessionConfig, SubscriptionEvent,
};
use serde_json::json;
use session_sim::{Connects, Sim};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Heartbeat every second, a 100/200/400 ms ladder without jitter.
fn config() -> SessionConfig {
    SessionConfig::new("ws://sim.test/socket")
        .with_seed(1)
        .with_heartbeat_interval(Duration::from_secs(1))
        .with_reconnect(ReconnectPolicy {
            backoff: vec![ms(100), ms(200), ms(400)],
            jitter_permille: 0,
            ..ReconnectPolicy::default()
        })
}

fn ladder(delays: &[u64]) -> Vec<(u32, Duration)> {
    delays
        .iter()
        .enumerate()
        .map(|(i, d)| (u32::try_from(i).unwrap() + 1, ms(*d)))
        .collect()
}

// --- heartbeat and the ladder --------------------------------------------------------------

#[test]
fn an_unanswered_heartbeat_closes_the_socket_and_reconnects_on_the_ladder() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    assert_eq!(sim.sub_story(1), ["Joined"]);
    sim.server.answer_heartbeats = false;
    sim.connects = Connects::Refuse;
    sim.clear_log();

    sim.advance(ms(1000));
    assert_eq!(sim.sent("heartbeat").len(), 1, "a heartbeat at 1 s");
    assert!(
        sim.conn.is_some(),
        "one unanswered heartbeat is not yet a dead link"
    );

    sim.advance(ms(1000));
    let close = sim.log.iter().find_map(|(at, o)| match o {
        Output::Close(request) => Some((*at, request.code, request.reason)),
        _ => None,
    });
    assert_eq!(close, Some((ms(2000), 1000, "heartbeat timeout")));
    assert!(sim
        .log
        .iter()
        .any(|(_, o)| matches!(o, Output::Diagnostic(Diagnostic::HeartbeatTimeout))));
    assert_eq!(sim.session.stats().socket.heartbeat_timeouts, 1);
    assert_eq!(
        sim.sub_events(1),
        [SubscriptionEvent::Lost {
            reason: LostReason::SocketDown
        }]
    );

    // Every attempt is refused: 100, 200, 400 ms, then 400 ms again.
    sim.advance(ms(1200));
    assert_eq!(sim.reconnect_delays(), ladder(&[100, 200, 400, 400, 400]));
    assert_eq!(
        sim.connect_times(),
        [ms(2100), ms(2300), ms(2700), ms(3100)]
    );

    // The server is back: the next attempt at 3.5 s rejoins the topic.
    sim.connects = Connects::Accept;
    sim.server.answer_heartbeats = true;
    sim.advance(ms(400));
    assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
    assert!(matches!(
        sim.sub_events(1).last(),
        Some(SubscriptionEvent::Joined { rejoin: true, .. })
    ));
    sim.assert_contract();
}

#[test]
fn a_connection_kicked_at_once_walks_up_the_ladder() {
    let mut sim = Sim::new(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.connects = Connects::Kick(1011);
    sim.connect();
    sim.advance(ms(100 + 200 + 400 + 400));
    // Each connection opened (and its join went out) but was kicked before
    // anything proved it healthy: the ladder climbs instead of retrying at
    // its first step forever.
    assert_eq!(sim.session.stats().socket.connects, 5);
    assert_eq!(sim.reconnect_delays(), ladder(&[100, 200, 400, 400, 400]));
    assert_eq!(sim.server.received_events("phx_join").len(), 1);

    // An open socket whose join is never answered proves nothing either.
    sim.connects = Connects::Accept;
    sim.server.paused = true;
    sim.advance(ms(400));
    assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
    sim.drop_socket();
    assert_eq!(sim.reconnect_delays().last(), Some(&(6, ms(400))));
    sim.assert_contract();
}

#[test]
fn a_join_ok_starts_the_ladder_over() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.connects = Connects::Refuse;
    sim.drop_socket();
    sim.advance(ms(300));
    assert_eq!(sim.reconnect_delays(), ladder(&[100, 200, 400]));

    // The next attempt opens and the rejoin is accepted: healthy.
    sim.connects = Connects::Accept;
    sim.advance(ms(400));
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    sim.drop_socket();
    assert_eq!(sim.reconnect_delays().last(), Some(&(1, ms(100))));
    sim.assert_contract();
}

#[test]
fn an_answered_heartbeat_starts_the_ladder_over() {
    // No topic: only the heartbeat can prove the connection healthy.
    let mut sim = Sim::connected(config());
    sim.connects = Connects::Refuse;
    sim.drop_socket();
    sim.advance(ms(300));
    assert_eq!(sim.reconnect_delays(), ladder(&[100, 200, 400]));

    sim.connects = Connects::Accept;
    sim.advance(ms(400));
    assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
    sim.advance(ms(1000));
    assert_eq!(sim.sent("heartbeat").len(), 1);
    assert!(sim.session.stats().socket.last_heartbeat_rtt.is_some());
    sim.drop_socket();
    assert_eq!(sim.reconnect_delays().last(), Some(&(1, ms(100))));
    sim.assert_contract();
}

// --- jitter --------------------------------------------------------------------------------

fn jittery(seed: Option<u64>) -> SessionConfig {
    let engine = EngineConfig {
        jitter_permille: 500,
        rejoin_backoff: vec![ms(100), ms(300)],
        max_attempts: 50,
        ..EngineConfig::default()
    };
    let config = SessionConfig::new("ws://sim.test/socket")
        .with_engine(engine)
        .with_heartbeat_interval(Duration::from_secs(3600))
        .with_reconnect(ReconnectPolicy {
            backoff: vec![ms(100), ms(200), ms(400)],
            jitter_permille: 250,
            ..ReconnectPolicy::default()
        });
    match seed {
        Some(seed) => config.with_seed(seed),
        None => config,
    }
}

/// Reconnect delays (attempt, delay), rejoin delays (attempt, delay) and
/// the session's seed.
type Delays = (Vec<(u32, Duration)>, Vec<(u8, Duration)>, u64);

/// Reconnect delays (attempt, delay) and rejoin delays (attempt, delay) of
/// a session whose joins of `fail:x` are all rejected and whose reconnects
/// are all refused, checked against the gaps between the frames and
/// attempts they announce.
fn delays(seed: Option<u64>) -> Delays {
    let mut sim = Sim::connected(jittery(seed));
    sim.subscribe(1, "fail:x").unwrap();
    sim.advance(Duration::from_secs(5));
    let rejoins: Vec<(u8, Duration)> = sim
        .sub_events(1)
        .into_iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Rejoining { attempt, delay, .. } => Some((attempt, delay)),
            _ => None,
        })
        .collect();
    let joins: Vec<Duration> = sim.sent("phx_join").into_iter().map(|(at, _)| at).collect();
    for (i, (_, delay)) in rejoins.iter().enumerate() {
        if let (Some(a), Some(b)) = (joins.get(i), joins.get(i + 1)) {
            assert_eq!(
                *b - *a,
                *delay,
                "rejoin {i} went out after its announced delay"
            );
        }
    }

    sim.clear_log();
    sim.connects = Connects::Refuse;
    let dropped_at = sim.elapsed();
    sim.drop_socket();
    sim.advance(Duration::from_secs(5));
    let reconnects = sim.reconnect_delays();
    let mut at = dropped_at;
    for ((_, delay), connect) in reconnects.iter().zip(sim.connect_times()) {
        at += *delay;
        assert_eq!(connect, at, "attempts go out after their announced delay");
    }
    sim.assert_contract();
    (reconnects, rejoins, sim.session.seed())
}

#[test]
fn jittered_delays_stay_within_their_bounds() {
    let reconnect = ReconnectPolicy {
        backoff: vec![ms(100), ms(200), ms(400)],
        ..ReconnectPolicy::default()
    };
    let rejoin = [ms(100), ms(300)];
    let mut jittered = 0;
    for seed in (0..16).map(Some).chain([None]) {
        let (reconnects, rejoins, _) = delays(seed);
        assert!(reconnects.len() > 10 && rejoins.len() > 10, "{seed:?}");
        for (attempt, delay) in reconnects {
            let d = reconnect.delay(attempt - 1);
            assert!(
                delay >= d && delay <= d + d * 250 / 1000,
                "reconnect {attempt}: {delay:?} outside [{d:?}, +25 %] (seed {seed:?})"
            );
            jittered += usize::from(delay > d);
        }
        for (attempt, delay) in rejoins {
            let d = rejoin[usize::from(attempt.min(2)) - 1];
            assert!(
                delay >= d && delay <= d + d * 500 / 1000,
                "rejoin {attempt}: {delay:?} outside [{d:?}, +50 %] (seed {seed:?})"
            );
            jittered += usize::from(delay > d);
        }
    }
    assert!(
        jittered > 100,
        "jitter is on: most delays are above their step"
    );
}

#[test]
fn sessions_without_a_fixed_seed_draw_different_delays() {
    let (reconnects_a, rejoins_a, seed_a) = delays(None);
    let (reconnects_b, rejoins_b, seed_b) = delays(None);
    assert_ne!(seed_a, seed_b);
    assert_ne!(reconnects_a, reconnects_b);
    assert_ne!(rejoins_a, rejoins_b);
}

#[test]
fn a_fixed_seed_gives_the_same_delays() {
    let a = delays(Some(42));
    let b = delays(Some(42));
    assert_eq!(a, b);
    assert_eq!(a.2, 42);
    let c = delays(Some(43));
    assert_ne!(a.0, c.0);
    assert_ne!(a.1, c.1);
}

// --- giving up -----------------------------------------------------------------------------

/// A subscription, a room and pushes (one in flight, never answered), then
/// the socket drops and every attempt is refused.
fn doomed(policy: ReconnectPolicy) -> Sim {
    let config = config().with_reconnect(ReconnectPolicy {
        jitter_permille: 0,
        ..policy
    });
    let mut sim = Sim::connected(config);
    sim.subscribe(1, "room:a").unwrap();
    sim.subscribe(2, "room:b").unwrap();
    sim.open_room(7).unwrap();
    sim.switch(7, "room:c").unwrap();
    sim.push(
        10,
        PushTarget::Subscription(SubscriberId(1)),
        "noreply",
        json!({}),
    )
    .unwrap();
    sim.connects = Connects::Refuse;
    sim.clear_log();
    sim.drop_socket();
    // A push made while reconnecting waits in its topic's buffer.
    sim.push(
        11,
        PushTarget::Subscription(SubscriberId(2)),
        "echo",
        json!({}),
    )
    .unwrap();
    sim
}

fn assert_everything_gave_up(sim: &Sim, attempts: u32) {
    let state = sim.session.connection_state();
    assert!(
        matches!(&state, ConnectionState::Disconnected(CloseReason::GaveUp { attempts: a, .. }) if *a == attempts),
        "{state:?}"
    );
    for id in [1, 2] {
        let events = sim.sub_events(id);
        assert!(
            matches!(
                events.last(),
                Some(SubscriptionEvent::Closed {
                    reason: CloseReason::GaveUp { .. }
                })
            ),
            "subscription {id}: {events:?}"
        );
        assert_eq!(sim.session.subscription_state(SubscriberId(id)), None);
    }
    let room: Vec<RoomEvent> = sim
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Room {
                id: RoomId(7),
                event,
            } => Some(event),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            room.as_slice(),
            [
                RoomEvent::ShownLost { .. },
                RoomEvent::Closed {
                    reason: CloseReason::GaveUp { .. }
                }
            ]
        ),
        "{room:?}"
    );
    assert_eq!(sim.session.room_state(RoomId(7)), None);
    let outcomes = sim.push_outcomes();
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                (10, Err(PushError::ChannelLost)),
                (
                    11,
                    Err(PushError::Disconnected {
                        reason: CloseReason::GaveUp { .. }
                    })
                )
            ]
        ),
        "{outcomes:?}"
    );
    let stats = sim.session.stats();
    assert_eq!((stats.pushes_buffered, stats.pushes_in_flight), (0, 0));
    assert_eq!(stats.subscriptions + stats.rooms, 0);
    assert_eq!(
        sim.session.poll_timeout(),
        None,
        "nothing is left to wait for"
    );
}

#[test]
fn max_attempts_gives_up_and_ends_everything() {
    let mut sim = doomed(ReconnectPolicy {
        backoff: vec![ms(100), ms(200)],
        max_attempts: Some(3),
        ..ReconnectPolicy::default()
    });
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.connect_times(), [ms(100), ms(300), ms(500)]);
    assert_everything_gave_up(&sim, 3);
    sim.assert_contract();

    // A push after the give-up is refused at once; reconnect starts over.
    let refused = sim.push(12, PushTarget::Topic("room:a".into()), "echo", json!({}));
    assert!(
        matches!(refused, Err(PushError::Disconnected { .. })),
        "{refused:?}"
    );
    sim.connects = Connects::Accept;
    sim.reconnect();
    assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
    sim.assert_contract();
}

#[test]
fn max_duration_gives_up_and_ends_everything() {
    let mut sim = doomed(ReconnectPolicy {
        backoff: vec![ms(300)],
        max_duration: Some(Duration::from_secs(1)),
        ..ReconnectPolicy::default()
    });
    sim.advance(Duration::from_secs(10));
    // Attempts at 0.3, 0.6, 0.9 and 1.2 s; the one failing at 1.2 s is past
    // the second of grace.
    assert_eq!(sim.connect_times(), [ms(300), ms(600), ms(900), ms(1200)]);
    assert_everything_gave_up(&sim, 4);
    sim.assert_contract();
}

// --- a normal close by the server ----------------------------------------------------------

#[test]
fn a_normal_close_stops_reconnecting_until_reconnect() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.subscribe(2, "room:b").unwrap();
    sim.push(
        10,
        PushTarget::Subscription(SubscriberId(1)),
        "noreply",
        json!({}),
    )
    .unwrap();
    // room:b's rejoin will wait: its buffered push must fail at the close.
    sim.on_server(|s| s.crash("room:b"));
    sim.push(
        11,
        PushTarget::Subscription(SubscriberId(2)),
        "echo",
        json!({}),
    )
    .unwrap();
    sim.clear_log();

    sim.server_close(1000);
    let closed = CloseReason::ServerClosed {
        code: 1000,
        reason: String::new(),
    };
    assert_eq!(
        sim.session.connection_state(),
        ConnectionState::Disconnected(closed.clone())
    );
    assert_eq!(
        sim.session.connection_state().closed_reason(),
        Some(closed.clone())
    );
    assert_eq!(ConnectionState::Connected.closed_reason(), None);
    let outcomes = sim.push_outcomes();
    assert!(
        matches!(
            outcomes.as_slice(),
            [(10, Err(PushError::ChannelLost)), (11, Err(PushError::Disconnected { reason }))] if *reason == closed
        ),
        "{outcomes:?}"
    );
    // New pushes fail at once, with no event.
    let refused = sim.push(
        12,
        PushTarget::Subscription(SubscriberId(1)),
        "echo",
        json!({}),
    );
    assert_eq!(refused, Err(PushError::Disconnected { reason: closed }));
    // Nothing reconnects on its own; the subscriptions wait, offline.
    sim.advance(Duration::from_secs(60));
    assert!(sim.connect_times().is_empty());
    assert_eq!(sim.session.poll_timeout(), None);
    for id in [1, 2] {
        let state = sim.session.subscription_state(SubscriberId(id)).unwrap();
        assert!(!state.is_active() && !state.is_terminal(), "{state:?}");
    }
    assert_eq!(
        sim.sub_events(1),
        [SubscriptionEvent::Lost {
            reason: LostReason::SocketDown
        }]
    );

    // reconnect rejoins every topic.
    sim.reconnect();
    assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
    for id in [1, 2] {
        assert!(sim
            .session
            .subscription_state(SubscriberId(id))
            .unwrap()
            .is_active());
    }
    assert!(matches!(
        sim.sub_events(1).last(),
        Some(SubscriptionEvent::Joined { rejoin: true, .. })
    ));
    assert_eq!(
        sim.server.channels().keys().collect::<Vec<_>>(),
        ["room:a", "room:b"]
    );
    sim.push(
        13,
        PushTarget::Subscription(SubscriberId(1)),
        "echo",
        json!({"n": 13}),
    )
    .unwrap();
    assert_eq!(sim.push_outcomes().last().unwrap().1, Ok(json!({"n": 13})));
    sim.assert_contract();
}

#[test]
fn a_service_restart_close_reconnects_on_its_own() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.server_close(1012);
    assert!(matches!(
        sim.session.connection_state(),
        ConnectionState::Reconnecting { attempt: 1, reason, .. }
            if reason == "closed by the server with code 1012"
    ));
    sim.advance(ms(100));
    assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    sim.assert_contract();
}

#[test]
fn the_socket_counters_count_failed_attempts_and_every_frame_sent() {
    let mut sim = Sim::new(config());
    sim.connects = Connects::Refuse;
    sim.connect();
    sim.advance(ms(100));
    assert_eq!(sim.session.stats().socket.connect_failures, 2);

    sim.connects = Connects::Accept;
    sim.advance(ms(200));
    sim.subscribe(1, "room:a").unwrap();
    sim.advance(ms(1000));
    let sent: Vec<u64> = sim
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Transmit(frame) => Some(frame.len() as u64),
            _ => None,
        })
        .collect();
    assert!(sent.len() >= 2, "a join and a heartbeat: {sent:?}");
    let socket = sim.session.stats().socket;
    assert_eq!(
        (socket.connects, socket.connect_failures),
        (1, 2),
        "{socket:?}"
    );
    assert_eq!(socket.frames_out, sent.len() as u64);
    assert_eq!(socket.bytes_out, sent.iter().sum::<u64>());
    assert_eq!(socket.reconnects, 0, "the first connection is no reconnect");

    for connects in 2..=3 {
        sim.drop_socket();
        sim.advance(ms(100));
        let socket = sim.session.stats().socket;
        assert_eq!(
            (socket.connects, socket.reconnects),
            (connects, connects - 1)
        );
    }
    // Each attempt has its own id, so that a late answer to an abandoned
    // one is told apart.
    let ids: Vec<u64> = sim
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Connect(request) => Some(request.id.0),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
}

#[test]
fn a_reconnect_says_what_went_wrong() {
    let mut sim = Sim::connected(config());
    sim.connects = Connects::Refuse;
    sim.drop_socket();
    sim.advance(ms(100));
    let reasons: Vec<String> = sim
        .connection_events()
        .into_iter()
        .filter_map(|s| match s {
            ConnectionState::Reconnecting { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons.first().map(String::as_str),
        Some("connection reset")
    );
    assert_eq!(
        reasons.last().map(String::as_str),
        Some("connection refused")
    );
}
