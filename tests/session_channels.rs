//! Channels through the session on a simulated clock against a simulated
//! Phoenix server: Phoenix's duplicate-join order, presence on join, and the
//! events subscriptions and rooms get when their topic crashes, is rejected
//! or fails (nothing goes silent).

#[path = "common/session_sim/mod.rs"]
mod session_sim;

use std::time::Duration;

use channel_registry::codec::{FrameRef, Message, Payload};
use channel_registry::engine::{
    Config as EngineConfig, FailReason, Phase, RoomId, SubscriberId, TopicStatus,
};
use channel_registry::session::presence::{Presence, PresenceConfig, PresenceEvent};
use channel_registry::session::{
    ChannelMessage, CloseReason, Diagnostic, Event, JoinParams, LostReason, Output, PushTarget,
    ResourceEffect, RoomEvent, RoomState, SessionConfig, ShownStatus, SubscribeOptions,
    SubscriptionEvent,
};
use serde_json::{json, Value};
use session_sim::server::JoinAnswer;
use session_sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> SessionConfig {
    SessionConfig::new("ws://sim.test/socket")
        .with_seed(5)
        .with_heartbeat_interval(Duration::from_secs(3600))
        .with_join_timeout(ms(1000))
        .with_rejoin_backoff(vec![ms(100), ms(200)])
}

fn active_join_ref(sim: &Sim, id: u64) -> Option<String> {
    let state = sim.session.subscription_state(SubscriberId(id))?;
    state
        .is_active()
        .then(|| state.join_ref().unwrap().to_string())
}

fn room_events(sim: &Sim, room: u64) -> Vec<RoomEvent> {
    sim.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Room { id, event } if id == RoomId(room) => Some(event),
            _ => None,
        })
        .collect()
}

/// The frames the session sent, in order.
fn sent_frames(sim: &Sim) -> Vec<Message> {
    sim.log
        .iter()
        .filter_map(|(_, o)| match o {
            channel_registry::session::Output::Transmit(frame) => {
                sim.server.decode(frame.as_frame_ref())
            }
            _ => None,
        })
        .collect()
}

// --- the duplicate join ----------------------------------------------------------------------

#[test]
fn phoenix_duplicate_join_order_never_kills_the_current_incarnation() {
    let mut sim = Sim::connected(config());
    // The server is slow: the join times out and is left, and a new join
    // follows, all before the server gets to any of them.
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    sim.advance(ms(1000 + 200));
    let sent: Vec<(String, String)> = sent_frames(&sim)
        .into_iter()
        .filter(|m| m.topic == "room:a")
        .map(|m| (m.event, m.join_ref.unwrap_or_default()))
        .collect();
    let (old, new) = (sent[0].1.clone(), sent[2].1.clone());
    assert_eq!(
        sent,
        [
            ("phx_join".to_owned(), old.clone()),
            ("phx_leave".to_owned(), old.clone()),
            ("phx_join".to_owned(), new.clone()),
        ]
    );
    let ignored = sim.session.stats().socket.ignored_inputs;

    // Phoenix answers the old join, never answers the leave (the new join
    // kills the channel first), answers the new join, then closes the old
    // incarnation.
    sim.server.paused = false;
    sim.drain();
    assert_eq!(sim.server.channel("room:a"), Some(new.as_str()));
    assert_eq!(active_join_ref(&sim, 1), Some(new.clone()));
    assert_eq!(sim.sub_story(1), ["Rejoining", "Joined"]);
    assert!(matches!(
        &sim.sub_events(1)[1],
        SubscriptionEvent::Joined { join_ref, rejoin: false, .. } if join_ref.to_string() == new
    ));
    // The old ok reply and the old close were recognised as stale.
    assert_eq!(sim.session.stats().socket.ignored_inputs, ignored + 2);

    // The current incarnation works.
    sim.push(
        1,
        PushTarget::Subscription(SubscriberId(1)),
        "echo",
        json!({"after": true}),
    )
    .unwrap();
    assert_eq!(sim.push_outcomes(), [(1, Ok(json!({"after": true})))]);
    sim.assert_contract();
}

#[test]
fn a_leave_followed_at_once_by_a_join_is_never_answered_and_harms_nothing() {
    let config = config().with_drain_grace(Duration::ZERO);
    let mut sim = Sim::connected(config);
    sim.subscribe(1, "room:a").unwrap();
    let old = active_join_ref(&sim, 1).unwrap();
    // Unsubscribe and subscribe again before the server reads either frame.
    sim.server.paused = true;
    sim.unsubscribe(1);
    sim.advance(ms(1));
    sim.subscribe(2, "room:a").unwrap();
    let events: Vec<String> = sim
        .server
        .received_events("phx_leave")
        .into_iter()
        .chain(sim.server.received_events("phx_join"))
        .map(|m| format!("{} {}", m.event, m.join_ref.unwrap_or_default()))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    let unmatched = sim.session.stats().socket.unmatched_replies;
    let ignored = sim.session.stats().socket.ignored_inputs;

    sim.server.paused = false;
    sim.drain();
    let new = active_join_ref(&sim, 2).unwrap();
    assert_ne!(old, new);
    assert_eq!(sim.server.channel("room:a"), Some(new.as_str()));
    // The old close was stale; no leave reply ever came.
    assert_eq!(sim.session.stats().socket.ignored_inputs, ignored + 1);
    assert_eq!(sim.session.stats().socket.unmatched_replies, unmatched);
    assert_eq!(sim.sub_story(2), ["Joined"]);
    sim.assert_contract();
}

#[test]
fn stale_replies_and_closes_are_ignored_and_counted() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    let first = active_join_ref(&sim, 1).unwrap();
    sim.on_server(|s| s.crash("room:a"));
    sim.advance(ms(150));
    let second = active_join_ref(&sim, 1).unwrap();
    assert_ne!(first, second);

    let ignored = sim.session.stats().socket.ignored_inputs;
    // A late close of the first incarnation, as a duplicate join sends it.
    assert!(sim.on_server(|s| s.late_close("room:a")));
    assert_eq!(sim.session.stats().socket.ignored_inputs, ignored + 1);
    assert_eq!(active_join_ref(&sim, 1), Some(second.clone()));
    // A push of the first incarnation arriving now would be another's.
    let dropped = sim.session.stats().socket.dropped_messages;
    let stale = format!(r#"["{first}",null,"room:a","news",{{}}]"#);
    sim.session
        .handle_frame(channel_registry::codec::FrameRef::Text(&stale), sim.now);
    sim.drain();
    assert_eq!(sim.session.stats().socket.dropped_messages, dropped + 1);
    assert!(!sim
        .events()
        .iter()
        .any(|e| matches!(e, Event::Message { .. })));
    assert_eq!(sim.sub_story(1), ["Joined", "Lost", "Rejoining", "Joined"]);
    sim.assert_contract();
}

// --- presence --------------------------------------------------------------------------------

#[test]
fn presence_on_join_follows_phoenix_order_and_phoenix_js_semantics() {
    let mut sim = Sim::connected(config());
    sim.on_server(|s| s.presence_join("presence:lobby", "bob"));
    let params = JoinParams::json(json!({"user": "alice"}));
    let options = SubscribeOptions::params(params.clone()).with_presence(true);
    sim.subscribe_with(1, "presence:lobby", options).unwrap();
    sim.subscribe_with(2, "presence:lobby", params).unwrap();
    sim.on_server(|s| s.presence_leave("presence:lobby", "bob"));

    // What the server sent on the channel, in order: the ok reply, the diff
    // announcing alice, the state, then bob's leave.
    let join_ref = active_join_ref(&sim, 1).unwrap();
    let delivered: Vec<(Option<String>, String, Value)> = sim
        .delivered_messages()
        .into_iter()
        .filter(|(_, event, _)| event.starts_with("presence"))
        .collect();
    let kinds: Vec<&str> = delivered.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(kinds, ["presence_diff", "presence_state", "presence_diff"]);

    // The subscription's presence events are phoenix.js's for that order.
    let mut reference = Presence::new(PresenceConfig::default());
    reference.handle_join(join_ref);
    let mut expected = Vec::new();
    for (join_ref, event, payload) in &delivered {
        reference
            .handle_message(join_ref.as_deref(), event, payload)
            .unwrap();
        while let Some(event) = reference.poll_event() {
            expected.push(event);
        }
    }
    let got: Vec<PresenceEvent> = sim
        .sub_events(1)
        .into_iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Presence(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(got, expected);
    let keys: Vec<(&str, bool)> = got
        .iter()
        .filter_map(|e| match e {
            PresenceEvent::Join { key, current, .. } => Some((key.as_str(), current.is_some())),
            _ => None,
        })
        .collect();
    // alice and bob from the state, then alice's own diff applied on top.
    assert_eq!(keys, [("alice", false), ("bob", false), ("alice", true)]);
    assert!(matches!(got.last(), Some(PresenceEvent::Sync)));
    assert!(got
        .iter()
        .any(|e| matches!(e, PresenceEvent::Leave { key, .. } if key == "bob")));
    // Nothing of presence before the subscription was joined.
    let story = sim.sub_events(1);
    assert!(
        matches!(story[0], SubscriptionEvent::Joined { .. }),
        "{story:?}"
    );
    sim.assert_contract();
}

#[test]
fn presence_events_reach_only_the_subscriptions_that_asked() {
    let mut sim = Sim::connected(config());
    let options = SubscribeOptions::params(JoinParams::none()).with_presence(true);
    sim.subscribe_with(1, "presence:lobby", options).unwrap();
    sim.subscribe(2, "presence:lobby").unwrap();
    sim.on_server(|s| s.presence_join("presence:lobby", "bob"));
    assert!(sim
        .sub_events(1)
        .iter()
        .any(|e| matches!(e, SubscriptionEvent::Presence(_))));
    let leaked: Vec<SubscriptionEvent> = sim
        .sub_events(2)
        .into_iter()
        .filter(|e| matches!(e, SubscriptionEvent::Presence(_)))
        .collect();
    assert!(
        leaked.is_empty(),
        "subscription 2 did not ask for presence: {leaked:?}"
    );
    sim.assert_contract();
}

// --- events never go silent --------------------------------------------------------------------

#[test]
fn a_crashed_channel_is_lost_then_rejoined() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    sim.on_server(|s| s.crash("room:a"));
    sim.advance(ms(150));
    let events = sim.sub_events(1);
    assert!(
        matches!(
            events.as_slice(),
            [
                SubscriptionEvent::Joined { rejoin: false, .. },
                SubscriptionEvent::Lost {
                    reason: LostReason::Crashed
                },
                SubscriptionEvent::Rejoining {
                    reason: FailReason::Crashed,
                    attempt: 1,
                    ..
                },
                SubscriptionEvent::Joined { rejoin: true, .. },
            ]
        ),
        "{events:?}"
    );
    assert!(sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .is_active());
    sim.assert_contract();
}

#[test]
fn rejected_joins_end_in_failed_then_closed() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "fail:x").unwrap();
    sim.advance(Duration::from_secs(5));
    let events = sim.sub_events(1);
    let max = usize::from(sim.session.config().engine().max_attempts);
    assert_eq!(events.len(), max + 1, "{events:?}");
    for (i, event) in events[..max - 1].iter().enumerate() {
        assert!(
            matches!(
                event,
                SubscriptionEvent::Rejoining { reason: FailReason::JoinRejected, detail: Some(d), attempt, .. }
                    if &**d == "unauthorized" && usize::from(*attempt) == i + 1
            ),
            "{event:?}"
        );
    }
    assert!(matches!(
        &events[max - 1],
        SubscriptionEvent::Failed { reason: FailReason::JoinRejected, detail: Some(d) } if &**d == "unauthorized"
    ));
    assert_eq!(
        events[max],
        SubscriptionEvent::Closed {
            reason: CloseReason::TopicFailed
        }
    );
    assert_eq!(sim.session.subscription_state(SubscriberId(1)), None);
    assert_eq!(sim.server.received_events("phx_join").len(), max);
    sim.assert_contract();
}

#[test]
fn a_room_whose_shown_topic_crashes_is_told_lost_then_rejoined() {
    let mut sim = Sim::connected(config());
    sim.open_room(1).unwrap();
    sim.switch(1, "room:v1").unwrap();
    assert!(
        matches!(room_events(&sim, 1).as_slice(), [RoomEvent::Shows { topic, .. }] if &**topic == "room:v1")
    );
    let live = sim.session.room_state(RoomId(1)).unwrap();
    assert_eq!(live.shown.as_deref(), Some("room:v1"));
    assert_eq!(
        (live.shown_status, live.pending.clone()),
        (ShownStatus::Live, None)
    );

    sim.on_server(|s| s.crash("room:v1"));
    assert!(matches!(
        room_events(&sim, 1).last(),
        Some(RoomEvent::ShownLost { topic, reason: LostReason::Crashed }) if &**topic == "room:v1"
    ));
    let lost = sim.session.room_state(RoomId(1)).unwrap();
    assert_eq!(
        lost.shown.as_deref(),
        Some("room:v1"),
        "it keeps showing the topic"
    );
    assert_eq!(lost.shown_status, ShownStatus::Lost(LostReason::Crashed));

    sim.advance(ms(150));
    assert!(matches!(
        room_events(&sim, 1).last(),
        Some(RoomEvent::ShownRejoined { topic, .. }) if &**topic == "room:v1"
    ));
    assert_eq!(sim.session.room_state(RoomId(1)).unwrap(), live);

    // Its messages flow again, to the room.
    sim.on_server(|s| s.broadcast("room:v1", "news", json!({"n": 1})));
    assert!(sim.events().iter().any(|e| matches!(
        e,
        Event::Message { message, to } if message.event() == "news" && to.len() == 1
    )));
    sim.assert_contract();
}

#[test]
fn a_room_whose_shown_topic_fails_is_told_and_close_all_ends_it() {
    let mut sim = Sim::connected(config());
    sim.open_room(1).unwrap();
    sim.switch(1, "room:v1").unwrap();
    let max = usize::from(sim.session.config().engine().max_attempts);
    sim.server
        .answer_joins("room:v1", vec![JoinAnswer::Reject("gone".to_owned()); max]);
    sim.on_server(|s| s.crash("room:v1"));
    sim.advance(Duration::from_secs(5));
    let events = room_events(&sim, 1);
    assert!(
        matches!(
            events.as_slice(),
            [
                RoomEvent::Shows { .. },
                RoomEvent::ShownLost { .. },
                RoomEvent::ShownFailed { reason: FailReason::JoinRejected, detail: Some(d), .. },
            ] if &**d == "gone"
        ),
        "{events:?}"
    );
    let failed = sim.session.room_state(RoomId(1)).unwrap();
    assert_eq!(failed.shown.as_deref(), Some("room:v1"));
    assert_eq!(
        failed.shown_status,
        ShownStatus::Failed(FailReason::JoinRejected)
    );
    assert_eq!(failed.closed, None);

    // A switch away from a failed topic still works.
    sim.switch(1, "room:v2").unwrap();
    let moved = sim.session.room_state(RoomId(1)).unwrap();
    assert_eq!(moved.shown.as_deref(), Some("room:v2"));
    assert_eq!(moved.shown_status, ShownStatus::Live);

    sim.close_all();
    assert_eq!(
        room_events(&sim, 1).last(),
        Some(&RoomEvent::Closed {
            reason: CloseReason::CloseAll
        })
    );
    assert_eq!(sim.session.room_state(RoomId(1)), None::<RoomState>);
    assert!(
        sim.server.channels().is_empty(),
        "close_all leaves every channel"
    );
    sim.assert_contract();
}

#[test]
fn switching_again_to_a_failed_topic_keeps_the_failure_reported() {
    let mut sim = Sim::connected(config());
    sim.open_room(1).unwrap();
    sim.switch(1, "fail:x").unwrap();
    sim.advance(Duration::from_secs(5));
    assert!(matches!(
        room_events(&sim, 1).as_slice(),
        [RoomEvent::SwitchFailed {
            reason: FailReason::JoinRejected,
            ..
        }]
    ));
    let failed = sim.session.room_state(RoomId(1)).unwrap();
    assert_eq!(failed.failed.as_ref().map(|(t, _)| &**t), Some("fail:x"));

    // The room already waits for that topic: nothing changes, and the room
    // still says why it waits in vain.
    sim.switch(1, "fail:x").unwrap();
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.session.room_state(RoomId(1)).unwrap(), failed);
    sim.assert_contract();
}

// --- status reports, resources and stray replies ---------------------------------------------

fn statuses(sim: &Sim, sub: u64) -> Vec<TopicStatus> {
    sim.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SubscriptionStatus { id, status } if id == SubscriberId(sub) => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn a_subscription_is_told_each_status_change_of_its_topic() {
    let mut sim = Sim::connected(config());
    sim.subscribe(1, "room:a").unwrap();
    let join_ref = sim
        .session
        .subscription_state(SubscriberId(1))
        .unwrap()
        .join_ref()
        .unwrap();
    let live = |phase| TopicStatus::Live { join_ref, phase };
    assert_eq!(
        statuses(&sim, 1),
        [live(Phase::Connecting), live(Phase::Active)]
    );

    sim.on_server(|s| s.crash("room:a"));
    assert_eq!(
        statuses(&sim, 1),
        [
            live(Phase::Connecting),
            live(Phase::Active),
            TopicStatus::Retrying
        ]
    );
    sim.assert_contract();
}

#[test]
fn with_resources_a_room_shows_its_topic_once_the_application_settled_it() {
    let engine = EngineConfig {
        settling: true,
        ..EngineConfig::default()
    };
    let mut sim = Sim::connected(config().with_engine(engine).with_resources(true));
    sim.open_room(1).unwrap();
    sim.switch(1, "room:v1").unwrap();
    let settling: Vec<_> = sim
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Resource(ResourceEffect::StartSettling { topic, join_ref }) => {
                Some((topic.clone(), *join_ref))
            }
            _ => None,
        })
        .collect();
    let [(topic, join_ref)] = settling.as_slice() else {
        panic!("one incarnation settles: {settling:?}");
    };
    assert_eq!(&**topic, "room:v1");
    assert!(
        room_events(&sim, 1).is_empty(),
        "the room waits for the settle"
    );

    let now = sim.now;
    sim.session
        .handle_settled("room:v1", *join_ref, Ok(()), now);
    sim.drain();
    assert!(
        matches!(room_events(&sim, 1).as_slice(), [RoomEvent::Shows { topic, .. }] if &**topic == "room:v1")
    );
    sim.assert_contract();
}

#[test]
fn a_join_reply_from_another_topic_is_not_taken_for_the_join() {
    let mut sim = Sim::connected(config());
    sim.server.paused = true;
    sim.subscribe(1, "room:a").unwrap();
    let joins = sim.sent("phx_join");
    let [(_, join)] = joins.as_slice() else {
        panic!("one join: {joins:?}");
    };
    let stray = format!(
        r#"["{}","{}","room:b","phx_reply",{{"status":"ok","response":{{}}}}]"#,
        join.join_ref.as_deref().unwrap(),
        join.msg_ref.as_deref().unwrap(),
    );
    let now = sim.now;
    sim.session.handle_frame(FrameRef::Text(&stray), now);
    sim.drain();
    assert!(sim.sub_story(1).is_empty(), "{:?}", sim.sub_story(1));
    assert!(sim
        .log
        .iter()
        .any(|(_, o)| matches!(o, Output::Diagnostic(Diagnostic::UnmatchedReply { .. }))));

    sim.server.paused = false;
    sim.drain();
    assert_eq!(sim.sub_story(1), ["Joined"], "the real reply still counts");
}

#[test]
fn a_message_is_sized_as_its_payload_and_event() {
    let message = ChannelMessage::new("room:a", "news", Payload::Json(json!({ "a": 1 })), None);
    assert_eq!(message.size(), r#"{"a":1}"#.len() + "news".len());
    let binary = ChannelMessage::new("room:a", "blob", Payload::Binary(vec![0; 10]), None);
    assert_eq!(binary.size(), 14);
}

#[test]
fn closing_a_room_says_whether_there_was_one() {
    let mut sim = Sim::connected(config());
    sim.open_room(1).unwrap();
    sim.switch(1, "room:v1").unwrap();
    assert!(sim.close_room(1));
    assert!(matches!(
        room_events(&sim, 1).last(),
        Some(RoomEvent::Closed {
            reason: CloseReason::RoomClosed,
            ..
        })
    ));
    assert!(!sim.close_room(1), "already closed");
    assert!(!sim.close_room(2), "never opened");
    sim.assert_contract();
}

#[test]
fn join_params_that_are_not_an_object_are_refused_naming_what_they_are() {
    let mut sim = Sim::connected(config());
    let cases = [
        (json!(null), "null"),
        (json!(true), "a boolean"),
        (json!(1), "a number"),
        (json!("x"), "a string"),
        (json!([1]), "an array"),
    ];
    for (i, (params, found)) in cases.into_iter().enumerate() {
        let refused = sim.subscribe_with(
            i as u64 + 1,
            "room:a",
            SubscribeOptions::params(JoinParams::json(params)),
        );
        let Err(error) = refused else {
            panic!("{found}: accepted");
        };
        assert!(
            error.to_string().contains(&format!("found {found};")),
            "{error}"
        );
    }
}
