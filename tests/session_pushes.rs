//! Pushes through the session on a simulated clock against a simulated
//! Phoenix server: deadlines, buffer overflow, which join_ref a push may
//! carry (never a stale one, never before active unless it is part of the
//! settling handshake), pushes lost with their incarnation, refusals up
//! front, and casts.

#[path = "common/session_sim/mod.rs"]
mod session_sim;

use std::time::Duration;

use channel_registry::codec::FrameRef;
use channel_registry::engine::SubscriberId;
use channel_registry::session::{
    Event, JoinParams, OverflowPolicy, PushError, PushOptions, PushTarget, SessionConfig,
    SubscribeOptions, SubscriptionEvent,
};
use serde_json::json;
use session_sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> SessionConfig {
    SessionConfig::new("ws://sim.test/socket")
        .with_seed(3)
        .with_heartbeat_interval(Duration::from_secs(3600))
        .with_push_timeout(ms(2000))
        .with_join_timeout(ms(5000))
        .with_rejoin_backoff(vec![ms(100)])
}

fn to(id: u64) -> PushTarget {
    PushTarget::Subscription(SubscriberId(id))
}

/// The join_refs of the pushes with `event` the server received, in order.
fn stamps(sim: &Sim, event: &str) -> Vec<String> {
    sim.server
        .received
        .iter()
        .filter(|r| r.message.event == event)
        .map(|r| r.message.join_ref.clone().unwrap_or_default())
        .collect()
}

fn current_join_ref(sim: &Sim, id: u64) -> String {
    let state = sim.session.subscription_state(SubscriberId(id)).unwrap();
    state.join_ref().expect("an incarnation").to_string()
}

// --- deadlines -----------------------------------------------------------------------------

#[test]
fn a_buffered_push_times_out_and_is_never_sent() {
    let mut sim = Sim::connected(config());
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    sim.push(1, to(1), "echo", json!({})).unwrap();
    assert_eq!(sim.session.stats().pushes_buffered, 1);

    sim.advance(ms(1999));
    assert!(sim.push_outcomes().is_empty());
    sim.advance(ms(1));
    assert_eq!(
        sim.push_outcomes(),
        [(1, Err(PushError::Timeout { after: ms(2000) }))]
    );
    // The join is answered later: the push is not sent after its deadline.
    sim.server.paused = false;
    sim.drain();
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    assert!(stamps(&sim, "echo").is_empty());
    assert_eq!(sim.session.stats().pushes_buffered, 0);
    sim.assert_contract();
}

#[test]
fn an_unanswered_push_times_out_and_its_late_reply_is_ignored() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.server.paused = true;
    let timeout = PushOptions {
        timeout: Some(ms(700)),
        ..PushOptions::default()
    };
    sim.push_with(1, to(1), "echo", json!({"n": 1}), timeout)
        .unwrap();
    assert_eq!(sim.session.stats().pushes_in_flight, 1);
    sim.advance(ms(700));
    assert_eq!(
        sim.push_outcomes(),
        [(1, Err(PushError::Timeout { after: ms(700) }))]
    );
    let unmatched = sim.session.stats().socket.unmatched_replies;
    sim.server.paused = false;
    sim.drain();
    assert_eq!(sim.push_outcomes().len(), 1, "one outcome per push");
    assert_eq!(sim.session.stats().socket.unmatched_replies, unmatched + 1);
    sim.assert_contract();
}

// --- the buffer ----------------------------------------------------------------------------

#[test]
fn a_full_buffer_drops_its_oldest_push() {
    let config = config().with_push_buffer(2, OverflowPolicy::DropOldest);
    let mut sim = Sim::connected(config);
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    for id in 1..=3 {
        sim.push(id, to(1), "echo", json!({ "n": id })).unwrap();
    }
    let outcomes = sim.push_outcomes();
    assert!(
        matches!(
            outcomes.as_slice(),
            [(
                1,
                Err(PushError::BufferOverflow {
                    capacity: 2,
                    policy: OverflowPolicy::DropOldest,
                    ..
                })
            )]
        ),
        "{outcomes:?}"
    );
    sim.server.paused = false;
    sim.drain();
    assert_eq!(
        sim.push_outcomes()[1..],
        [(2, Ok(json!({"n": 2}))), (3, Ok(json!({"n": 3})))]
    );
    sim.assert_contract();
}

#[test]
fn a_full_buffer_rejects_the_new_push() {
    let config = config().with_push_buffer(2, OverflowPolicy::RejectNew);
    let mut sim = Sim::connected(config);
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    for id in 1..=3 {
        sim.push(id, to(1), "echo", json!({ "n": id })).unwrap();
    }
    let outcomes = sim.push_outcomes();
    assert!(
        matches!(
            outcomes.as_slice(),
            [(
                3,
                Err(PushError::BufferOverflow {
                    capacity: 2,
                    policy: OverflowPolicy::RejectNew,
                    ..
                })
            )]
        ),
        "{outcomes:?}"
    );
    sim.server.paused = false;
    sim.drain();
    assert_eq!(
        sim.push_outcomes()[1..],
        [(1, Ok(json!({"n": 1}))), (2, Ok(json!({"n": 2})))]
    );
    sim.assert_contract();
}

#[test]
fn a_zero_buffer_refuses_pushes_until_active() {
    let config = config().with_push_buffer(0, OverflowPolicy::DropOldest);
    let mut sim = Sim::connected(config);
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    sim.push(1, to(1), "echo", json!({})).unwrap();
    assert!(matches!(
        sim.push_outcomes().as_slice(),
        [(1, Err(PushError::BufferOverflow { capacity: 0, .. }))]
    ));
    sim.server.paused = false;
    sim.drain();
    sim.push(2, to(1), "echo", json!({})).unwrap();
    assert_eq!(sim.push_outcomes()[1], (2, Ok(json!({}))));
    sim.assert_contract();
}

// --- which join_ref --------------------------------------------------------------------------

#[test]
fn pushes_never_carry_a_join_ref_older_than_the_active_one() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    let first = current_join_ref(&sim, 1);
    // The server is slow: push 1 is on the wire when the channel crashes.
    sim.server.paused = true;
    sim.push(1, to(1), "echo", json!({"n": 1})).unwrap();
    sim.on_server(|s| s.crash("room:a"));
    // Its incarnation is gone: no reply can come, it fails at once.
    assert_eq!(sim.push_outcomes(), [(1, Err(PushError::ChannelLost))]);
    // Pushes made while the topic rejoins wait for the new incarnation.
    sim.push(2, to(1), "echo", json!({"n": 2})).unwrap();
    sim.advance(ms(150));
    sim.push(3, to(1), "echo", json!({"n": 3})).unwrap();
    assert_eq!(stamps(&sim, "echo"), [first.as_str()]);
    sim.server.paused = false;
    sim.drain();
    let second = current_join_ref(&sim, 1);
    assert_ne!(first, second);
    assert_eq!(stamps(&sim, "echo"), [first, second.clone(), second]);
    assert_eq!(
        sim.push_outcomes()[1..],
        [(2, Ok(json!({"n": 2}))), (3, Ok(json!({"n": 3})))]
    );
    // Push 1 reached a topic without a channel: its `unmatched topic` reply
    // answers nothing the session still waits for.
    assert_eq!(sim.push_outcomes().len(), 3);
    sim.assert_contract();
}

#[test]
fn pushes_in_flight_fail_when_the_socket_drops_and_later_ones_use_the_new_socket() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.push(1, to(1), "noreply", json!({})).unwrap();
    sim.drop_socket();
    assert_eq!(sim.push_outcomes(), [(1, Err(PushError::ChannelLost))]);
    sim.push(2, to(1), "echo", json!({})).unwrap();
    assert!(sim.server.received_events("echo").is_empty());
    sim.advance(ms(20));
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    assert_eq!(sim.server.received_events("echo").len(), 1);
    assert_eq!(sim.push_outcomes()[1], (2, Ok(json!({}))));
    sim.assert_contract();
}

#[test]
fn only_settling_pushes_go_out_while_a_topic_settles() {
    let config = config().with_settling(true).with_settle_on_event("sync");
    let mut sim = Sim::connected(config);
    sim.contract.settle_event = Some("sync".to_owned());
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    let settling = PushOptions {
        settling: true,
        ..PushOptions::default()
    };
    // Both wait while the join is unanswered.
    sim.push(1, to(1), "echo", json!({"n": 1})).unwrap();
    sim.push_with(
        2,
        to(1),
        "echo",
        json!({"n": 2, "settling": true}),
        settling,
    )
    .unwrap();
    sim.server.paused = false;
    sim.drain();
    // Joined, settling: the settling push went out with the new join_ref;
    // the other waits for active.
    let join_ref = sim.session.subscription_state(SubscriberId(1)).unwrap();
    assert!(!join_ref.is_active());
    let join_ref = join_ref.join_ref().unwrap().to_string();
    assert_eq!(stamps(&sim, "echo"), [join_ref.as_str()]);
    assert_eq!(
        sim.push_outcomes(),
        [(2, Ok(json!({"n": 2, "settling": true})))]
    );
    assert!(!sim
        .sub_events(1)
        .iter()
        .any(|e| matches!(e, SubscriptionEvent::Joined { .. })));
    // Made while the topic settles: a settling push goes out at once, any
    // other waits for active.
    sim.push_with(
        3,
        to(1),
        "echo",
        json!({"n": 3, "settling": true}),
        settling,
    )
    .unwrap();
    sim.push(4, to(1), "echo", json!({"n": 4})).unwrap();
    assert_eq!(stamps(&sim, "echo"), [join_ref.as_str(), join_ref.as_str()]);
    assert_eq!(sim.push_outcomes().len(), 2);

    sim.on_server(|s| s.push_to("room:a", "sync", json!({})));
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    assert_eq!(stamps(&sim, "echo"), vec![join_ref; 4]);
    assert_eq!(
        sim.push_outcomes()[2..],
        [(1, Ok(json!({"n": 1}))), (4, Ok(json!({"n": 4})))]
    );
    sim.assert_contract();
}

// --- refusals and casts ----------------------------------------------------------------------

#[test]
fn oversized_pushes_and_reserved_events_are_refused_up_front() {
    let mut sim = Sim::connected(config().with_max_frame_size(1024));
    sim.subscribe(1, "room:a").unwrap();
    let frames = sim.session.stats().socket.frames_out;
    let big = json!({ "blob": "x".repeat(2000) });
    let refused = sim.push(1, to(1), "echo", big.clone());
    assert!(
        matches!(refused, Err(PushError::TooLarge { limit: 1024, .. })),
        "{refused:?}"
    );
    assert!(matches!(
        sim.cast(to(1), "echo", big),
        Err(PushError::TooLarge { .. })
    ));
    for event in [
        "phx_join",
        "phx_leave",
        "phx_reply",
        "phx_close",
        "phx_error",
        "heartbeat",
    ] {
        let refused = sim.push(2, to(1), event, json!({}));
        assert_eq!(
            refused,
            Err(PushError::ReservedEvent {
                event: event.to_owned()
            })
        );
        assert!(matches!(
            sim.cast(to(1), event, json!({})),
            Err(PushError::ReservedEvent { .. })
        ));
    }
    // A payload just under the limit goes out.
    let fits = json!({ "blob": "x".repeat(900) });
    sim.push(3, to(1), "echo", fits.clone()).unwrap();
    assert_eq!(sim.push_outcomes(), [(3, Ok(fits))]);
    assert_eq!(sim.session.stats().socket.frames_out, frames + 1);
    assert!(!sim
        .events()
        .iter()
        .any(|e| matches!(e, Event::Push { id, .. } if id.0 != 3)));
    sim.assert_contract();
}

#[test]
fn a_cast_is_sent_when_active_and_forgotten() {
    let mut sim = Sim::connected(config());
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    sim.cast(to(1), "echo", json!({"cast": 1})).unwrap();
    assert!(sim.server.received_events("echo").is_empty());
    sim.server.paused = false;
    sim.drain();
    assert_eq!(sim.server.received_events("echo").len(), 1);
    // Its reply came back; nobody hears of it.
    sim.cast(to(1), "noreply", json!({})).unwrap();
    sim.advance(Duration::from_secs(10));
    assert!(sim.push_outcomes().is_empty());
    let stats = sim.session.stats();
    assert_eq!((stats.pushes_buffered, stats.pushes_in_flight), (0, 0));
    sim.assert_contract();
}

#[test]
fn a_push_is_sized_as_its_payload_names_and_framing_up_to_the_limit() {
    let mut sim = Sim::connected(config().with_max_frame_size(1024));
    sim.subscribe(1, "room:a").unwrap();
    // `{"blob":"…"}` is 11 bytes plus the blob; "room:a" and "echo" add 10,
    // refs and punctuation 48: a 955-byte blob makes exactly 1024.
    let blob = |n: usize| json!({ "blob": "x".repeat(n) });
    assert_eq!(sim.push(1, to(1), "echo", blob(955)), Ok(()));
    assert_eq!(
        sim.push(2, to(1), "echo", blob(956)),
        Err(PushError::TooLarge {
            size: 1025,
            limit: 1024
        })
    );
    assert_eq!(
        sim.push_outcomes(),
        [(1, Ok(json!({ "blob": "x".repeat(955) })))]
    );
    sim.assert_contract();
}

#[test]
fn a_channel_lost_with_many_pushes_in_flight_fails_every_one() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.server.paused = true;
    for id in 1..=100 {
        sim.push(id, to(1), "echo", json!({ "n": id })).unwrap();
    }
    assert_eq!(sim.session.stats().pushes_in_flight, 100);

    sim.on_server(|s| s.crash("room:a"));
    let outcomes = sim.push_outcomes();
    assert_eq!(outcomes.len(), 100);
    assert!(outcomes
        .iter()
        .all(|(_, o)| *o == Err(PushError::ChannelLost)));
    let stats = sim.session.stats();
    assert_eq!((stats.pushes_buffered, stats.pushes_in_flight), (0, 0));
}

#[test]
fn a_reply_to_one_push_leaves_the_others_in_flight() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.server.paused = true;
    for id in 1..=3 {
        sim.push(id, to(1), "echo", json!({ "n": id })).unwrap();
    }
    let sent = sim.sent("echo");
    let (_, first) = &sent[0];
    let reply = format!(
        r#"["{}","{}","room:a","phx_reply",{{"status":"ok","response":{{"n":1}}}}]"#,
        first.join_ref.as_deref().unwrap(),
        first.msg_ref.as_deref().unwrap(),
    );
    let now = sim.now;
    sim.session.handle_frame(FrameRef::Text(&reply), now);
    sim.drain();
    assert_eq!(sim.push_outcomes(), [(1, Ok(json!({"n": 1})))]);

    // The channel goes: the two still in flight are lost with it, at once.
    sim.on_server(|s| s.crash("room:a"));
    assert_eq!(
        sim.push_outcomes(),
        [
            (1, Ok(json!({"n": 1}))),
            (2, Err(PushError::ChannelLost)),
            (3, Err(PushError::ChannelLost))
        ]
    );
}

#[test]
fn join_params_may_ask_one_topic_to_settle() {
    let mut sim = Sim::connected(config().with_settle_on_event("sync"));
    sim.contract.settle_event = Some("sync".to_owned());
    let params = JoinParams::json(json!({"room": "a"})).with_settling(true);
    sim.subscribe_with(1, "room:a", SubscribeOptions::params(params))
        .unwrap();
    let joins = sim.sent("phx_join");
    assert_eq!(
        joins[0].1.payload.as_json(),
        Some(&json!({"room": "a"})),
        "the params are kept"
    );
    let state = sim.session.subscription_state(SubscriberId(1)).unwrap();
    assert!(
        state.join_ref().is_some() && !state.is_active(),
        "joined, settling"
    );
    sim.on_server(|s| s.push_to("room:a", "sync", json!({})));
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    sim.assert_contract();
}
