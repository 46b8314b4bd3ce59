//! Ordered streams through the session, on a simulated clock: what a reader
//! of an ordered topic sees when the server's events have gaps, duplicates,
//! crashes and broken versions, and what the session says to the server
//! (join params, acknowledgements, replay requests, new incarnations).
//!
//! The "server" here is the test itself: it answers frames by hand, so each
//! test shows exactly the frames Phoenix would exchange.

#![allow(clippy::disallowed_methods)] // a simulated clock starts somewhere

use std::time::{Duration, Instant};

use channel_registry::codec::{Codec, FrameRef, Message, Payload};
use channel_registry::engine::{RoomId, SubscriberId};
use channel_registry::session::stream::{ResyncReason, SequencedConfig};
use channel_registry::session::{
    Event, LostReason, Output, PushError, PushId, PushOptions, PushTarget, RoomEvent, Session,
    SessionConfig, StreamEvent, StreamOptions, SubscribeError, SubscribeOptions, SubscriptionEvent,
};
use serde_json::{json, Value};

const SEQ: &str = "seq:feed";
const DOC: &str = "doc:1";

struct Sim {
    session: Session,
    now: Instant,
    /// Client frames, decoded, oldest first.
    sent: Vec<Message>,
    events: Vec<Event>,
}

impl Sim {
    fn new() -> Sim {
        let now = Instant::now();
        let config = SessionConfig::new("ws://localhost:4000/socket")
            .with_seed(1)
            .with_rejoin_backoff(vec![Duration::from_millis(10)])
            .with_heartbeat_interval(Duration::from_secs(3600));
        let mut sim = Sim {
            session: Session::new(config, now).unwrap(),
            now,
            sent: Vec::new(),
            events: Vec::new(),
        };
        sim.session.connect(now);
        sim.drain();
        sim
    }

    fn drain(&mut self) {
        let codec = Codec::new();
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Connect(request) => self.session.handle_connected(request.id, self.now),
                Output::Transmit(frame) => self
                    .sent
                    .push(codec.decode_client_frame(frame.as_frame_ref()).unwrap()),
                Output::Event(event) => self.events.push(event),
                _ => {}
            }
        }
    }

    fn frame(&mut self, frame: Value) {
        let text = frame.to_string();
        self.session.handle_frame(FrameRef::Text(&text), self.now);
        self.drain();
    }

    /// The last frame sent with `event` on `topic`.
    fn last(&self, topic: &str, event: &str) -> Message {
        self.sent
            .iter()
            .rev()
            .find(|m| m.topic == topic && m.event == event)
            .unwrap_or_else(|| panic!("no {event} sent on {topic}: {:?}", self.sent))
            .clone()
    }

    fn count(&self, topic: &str, event: &str) -> usize {
        self.sent
            .iter()
            .filter(|m| m.topic == topic && m.event == event)
            .count()
    }

    fn reply(&mut self, to: &Message, status: &str, response: Value) {
        self.frame(json!([to.join_ref, to.msg_ref, to.topic, "phx_reply",
            {"status": status, "response": response}]));
    }

    /// Answers the last join of `topic` and returns its join_ref.
    fn join_ok(&mut self, topic: &str, response: Value) -> String {
        let join = self.last(topic, "phx_join");
        self.reply(&join, "ok", response);
        join.join_ref.unwrap()
    }

    fn push_event(&mut self, topic: &str, join_ref: &str, event: &str, payload: Value) {
        self.frame(json!([join_ref, null, topic, event, payload]));
    }

    fn seq(&mut self, join_ref: &str, n: u64) {
        self.push_event(
            SEQ,
            join_ref,
            "event",
            json!({"seq": n, "body": format!("e{n}")}),
        );
    }

    fn patch(&mut self, join_ref: &str, base: u64, version: u64) {
        self.push_event(
            DOC,
            join_ref,
            "patch",
            json!({"base_version": base, "version": version, "ops": []}),
        );
    }

    fn advance(&mut self) {
        self.now = self.session.poll_timeout().expect("a timer");
        self.session.handle_timeout(self.now);
        self.drain();
    }

    /// The positions delivered so far, by payload field.
    fn delivered(&self, field: &str) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Message { message, .. } => message.payload().as_json()?.get(field)?.as_u64(),
                _ => None,
            })
            .collect()
    }

    fn sub_events(&self, id: u64) -> Vec<SubscriptionEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Subscription { id: s, event } if s.0 == id => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    fn room_events(&self, id: u64) -> Vec<RoomEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Room { id: r, event } if r.0 == id => Some(event.clone()),
                _ => None,
            })
            .collect()
    }
}

fn sequenced(ack_every: u32) -> SubscribeOptions {
    SubscribeOptions::default().with_stream(StreamOptions::sequenced(SequencedConfig {
        ack_every,
        ..SequencedConfig::default()
    }))
}

fn versioned() -> SubscribeOptions {
    SubscribeOptions::default().with_stream(StreamOptions::versioned())
}

#[test]
fn a_gap_is_replayed_and_every_event_arrives_once_in_order() {
    let mut sim = Sim::new();
    sim.session
        .subscribe(SubscriberId(1), SEQ, sequenced(2), sim.now)
        .unwrap();
    sim.drain();
    let join = sim.last(SEQ, "phx_join");
    assert_eq!(
        join.payload.as_json().unwrap()["last_seq"],
        0,
        "a fresh stream starts at 0"
    );
    let jr = sim.join_ok(SEQ, json!({"earliest_seq": 1}));

    sim.seq(&jr, 1);
    sim.seq(&jr, 3); // 2 went missing
    assert_eq!(sim.delivered("seq"), [1]);
    let replay = sim.last(SEQ, "replay");
    assert_eq!(replay.payload.as_json().unwrap(), &json!({"from": 2}));
    assert_eq!(
        replay.join_ref.as_deref(),
        Some(jr.as_str()),
        "sent on the active incarnation"
    );
    sim.reply(&replay, "ok", json!({}));

    sim.seq(&jr, 2);
    sim.seq(&jr, 3); // the replay re-sends 3: a duplicate of the held one
    sim.seq(&jr, 4);
    assert_eq!(sim.delivered("seq"), [1, 2, 3, 4]);
    let stats = sim.session.stream_stats(SEQ).unwrap();
    assert_eq!(
        (stats.delivered, stats.duplicates, stats.position),
        (4, 1, 4)
    );

    // Acknowledgements are cumulative, batched (every 2 here), one in flight
    // at a time, and never ahead of what was delivered.
    let acked = |sim: &Sim| -> Vec<u64> {
        sim.sent
            .iter()
            .filter(|m| m.event == "ack")
            .map(|m| {
                m.payload.as_json().unwrap()["sequence_number"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(
        acked(&sim).len(),
        1,
        "one acknowledgement in flight at a time"
    );
    let ack = sim.last(SEQ, "ack");
    sim.reply(&ack, "ok", json!({}));
    // The rest is under the batch size: it goes after ack_interval.
    sim.advance();
    let ack = sim.last(SEQ, "ack");
    sim.reply(&ack, "ok", json!({}));
    let sent = acked(&sim);
    assert!(
        sent.windows(2).all(|w| w[0] < w[1]) && sent.last() == Some(&4),
        "{sent:?}"
    );
    assert_eq!(sim.session.stream_stats(SEQ).unwrap().acked, 4);
}

#[test]
fn a_rejoin_resumes_from_the_last_position_and_a_loss_is_reported() {
    let mut sim = Sim::new();
    sim.session
        .subscribe(SubscriberId(1), SEQ, sequenced(100), sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(SEQ, json!({"earliest_seq": 1}));
    for n in 1..=3 {
        sim.seq(&jr, n);
    }
    // The channel crashes; the session rejoins after its backoff.
    sim.frame(json!([jr, jr, SEQ, "phx_error", {}]));
    assert!(sim.sub_events(1).contains(&SubscriptionEvent::Lost {
        reason: LostReason::Crashed
    }));
    sim.advance();
    let rejoin = sim.last(SEQ, "phx_join");
    assert_ne!(rejoin.join_ref.as_deref(), Some(jr.as_str()));
    assert_eq!(rejoin.payload.as_json().unwrap()["last_seq"], 3);

    // The server no longer holds 4 and 5.
    let jr2 = sim.join_ok(SEQ, json!({"earliest_seq": 6}));
    sim.seq(&jr, 6); // a late event of the dead incarnation: ignored
    sim.seq(&jr2, 6);
    assert_eq!(sim.delivered("seq"), [1, 2, 3, 6]);
    let events = sim.sub_events(1);
    let lost = events
        .iter()
        .position(|e| *e == SubscriptionEvent::Stream(StreamEvent::Lost { from: 4, to: 5 }))
        .expect("the loss is reported");
    let rejoined = events
        .iter()
        .position(|e| matches!(e, SubscriptionEvent::Joined { rejoin: true, .. }))
        .unwrap();
    assert!(
        rejoined < lost,
        "joined again, then told what is lost: {events:?}"
    );
}

#[test]
fn a_malformed_position_is_reported_and_dropped() {
    let mut sim = Sim::new();
    sim.session
        .subscribe(SubscriberId(1), SEQ, sequenced(100), sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(SEQ, json!({}));
    sim.push_event(SEQ, &jr, "event", json!({"seq": "one"}));
    sim.push_event(SEQ, &jr, "other", json!({"note": "not numbered"}));
    sim.seq(&jr, 1);
    assert!(sim
        .sub_events(1)
        .iter()
        .any(|e| matches!(e, SubscriptionEvent::Stream(StreamEvent::Malformed { .. }))));
    assert_eq!(sim.delivered("seq"), [1]);
    let others = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::Message { message, .. } if message.event() == "other"))
        .count();
    assert_eq!(
        others, 1,
        "events outside the stream are delivered as they come"
    );
    assert_eq!(sim.session.stream_stats(SEQ).unwrap().malformed, 1);
}

#[test]
fn a_versioned_topic_joins_on_its_mount_and_resyncs_on_a_gap() {
    let mut sim = Sim::new();
    sim.session
        .subscribe(SubscriberId(1), DOC, versioned(), sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(DOC, json!({}));
    assert!(
        !sim.sub_events(1)
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Joined { .. })),
        "not joined before the first state"
    );
    sim.patch(&jr, 0, 1);
    let events = sim.sub_events(1);
    assert!(matches!(
        events.last(),
        Some(SubscriptionEvent::Joined { rejoin: false, .. })
    ));
    sim.patch(&jr, 1, 2);
    assert_eq!(sim.delivered("version"), [1, 2]);

    // A push waits for its reply when the stream breaks.
    sim.session
        .push(
            PushId(7),
            PushTarget::Subscription(SubscriberId(1)),
            "edit",
            &Payload::Json(json!({"at": 2})),
            PushOptions::default(),
            sim.now,
        )
        .unwrap();
    sim.drain();
    assert_eq!(sim.count(DOC, "edit"), 1);
    sim.patch(&jr, 3, 4); // version 3 never came

    let events = sim.sub_events(1);
    assert!(
        events.contains(&SubscriptionEvent::Stream(StreamEvent::Resync {
            reason: ResyncReason::Gap {
                current: 2,
                base: 3,
                version: 4
            }
        }))
    );
    assert!(events.contains(&SubscriptionEvent::Lost {
        reason: LostReason::Resync
    }));
    let failed = sim.events.iter().any(|e| {
        matches!(
            e,
            Event::Push {
                id: PushId(7),
                outcome: Err(PushError::Resynced { .. })
            }
        )
    });
    assert!(failed, "the pending push fails with Resynced");
    assert_eq!(
        sim.last(DOC, "phx_leave").join_ref.as_deref(),
        Some(jr.as_str())
    );
    let jr2 = sim.join_ok(DOC, json!({}));
    assert_ne!(jr2, jr);
    sim.patch(&jr, 4, 5); // the old incarnation's: never shown
    sim.patch(&jr2, 0, 1);
    sim.patch(&jr2, 1, 2);
    assert_eq!(sim.delivered("version"), [1, 2, 1, 2]);
    assert!(
        matches!(
            sim.sub_events(1).last(),
            Some(SubscriptionEvent::Joined { rejoin: true, .. })
        ) || sim
            .sub_events(1)
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Joined { rejoin: true, .. }))
    );
}

#[test]
fn a_room_never_shows_versions_out_of_order() {
    let mut sim = Sim::new();
    sim.session.open_room(RoomId(1)).unwrap();
    sim.session
        .switch(RoomId(1), DOC, versioned(), sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(DOC, json!({}));
    assert!(
        sim.room_events(1).is_empty(),
        "a room shows a versioned topic once mounted"
    );
    sim.patch(&jr, 0, 1);
    assert!(matches!(
        sim.room_events(1).first(),
        Some(RoomEvent::Shows { .. })
    ));
    sim.patch(&jr, 1, 2);
    sim.patch(&jr, 1, 3); // a base that is not the current version

    let state = sim.session.room_state(RoomId(1)).unwrap();
    assert_eq!(
        state.shown.as_deref(),
        Some(DOC),
        "the room keeps showing the topic"
    );
    let events = sim.room_events(1);
    assert!(events.iter().any(|e| matches!(
        e,
        RoomEvent::Stream {
            event: StreamEvent::Resync { .. },
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        RoomEvent::ShownLost {
            reason: LostReason::Resync,
            ..
        }
    )));
    let jr2 = sim.join_ok(DOC, json!({}));
    sim.patch(&jr, 3, 4); // stale: never shown
    sim.patch(&jr2, 2, 3); // not a mount: resyncs again, nothing shown
    let jr3 = sim.join_ok(DOC, json!({}));
    sim.patch(&jr3, 0, 1);
    sim.patch(&jr3, 1, 2);

    // What the room was handed, with the resyncs between: increasing
    // within each mount, and a new mount only after a Resync.
    let mut shown = Vec::new();
    for event in &sim.events {
        match event {
            Event::Message { message, to }
                if to.iter().any(|r| format!("{r:?}").contains("Room")) =>
            {
                shown.push(
                    message.payload().as_json().unwrap()["version"]
                        .as_u64()
                        .unwrap(),
                );
            }
            Event::Room {
                event:
                    RoomEvent::Stream {
                        event: StreamEvent::Resync { .. },
                        ..
                    },
                ..
            } => {
                shown.push(0);
            }
            _ => {}
        }
    }
    assert_eq!(shown, [1, 2, 0, 0, 1, 2]);
    assert!(sim
        .room_events(1)
        .iter()
        .any(|e| matches!(e, RoomEvent::ShownRejoined { .. })));
}

#[test]
fn a_holder_asking_for_another_stream_is_refused_and_nothing_is_lost() {
    let mut sim = Sim::new();
    sim.session
        .subscribe(SubscriberId(1), SEQ, sequenced(100), sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(SEQ, json!({}));
    let refused = sim
        .session
        .subscribe(SubscriberId(2), SEQ, versioned(), sim.now)
        .unwrap_err();
    assert!(matches!(refused, SubscribeError::StreamMismatch { .. }));
    assert!(refused.to_string().contains("same StreamOptions"));
    // A holder that asks for nothing reads the same stream.
    sim.session
        .subscribe(SubscriberId(3), SEQ, SubscribeOptions::default(), sim.now)
        .unwrap();
    sim.drain();
    sim.seq(&jr, 1);
    assert_eq!(sim.delivered("seq"), [1]);
    let Some(Event::Message { to, .. }) = sim
        .events
        .iter()
        .rev()
        .find(|e| matches!(e, Event::Message { .. }))
    else {
        unreachable!()
    };
    assert_eq!(to.len(), 2);
}

#[test]
fn an_unanswered_replay_escalates_to_a_rejoin_with_the_last_position() {
    let mut sim = Sim::new();
    let config = SequencedConfig {
        gap_timeout: Duration::from_millis(200),
        ..SequencedConfig::default()
    };
    let options = SubscribeOptions::default().with_stream(StreamOptions::sequenced(config));
    sim.session
        .subscribe(SubscriberId(1), SEQ, options, sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(SEQ, json!({}));
    sim.seq(&jr, 1);
    sim.seq(&jr, 3);
    assert_eq!(sim.count(SEQ, "replay"), 1);
    let joins = sim.count(SEQ, "phx_join");
    while sim.count(SEQ, "phx_join") == joins {
        sim.advance();
    }
    let rejoin = sim.last(SEQ, "phx_join");
    assert_eq!(rejoin.payload.as_json().unwrap()["last_seq"], 1);
    assert!(sim
        .sub_events(1)
        .iter()
        .any(|e| matches!(e, SubscriptionEvent::Stream(StreamEvent::Rejoin { .. }))));
    let jr2 = sim.join_ok(SEQ, json!({"earliest_seq": 1}));
    sim.seq(&jr2, 2);
    sim.seq(&jr2, 3);
    assert_eq!(sim.delivered("seq"), [1, 2, 3]);
}

#[test]
fn an_acknowledgement_is_answered_only_by_a_reply_on_its_own_topic() {
    let mut sim = Sim::new();
    sim.session
        .subscribe(SubscriberId(1), SEQ, sequenced(1), sim.now)
        .unwrap();
    sim.drain();
    let jr = sim.join_ok(SEQ, json!({"earliest_seq": 1}));
    sim.seq(&jr, 1);
    let ack = sim.last(SEQ, "ack");

    let mut stray = ack.clone();
    stray.topic = "seq:other".to_owned();
    sim.reply(&stray, "ok", json!({}));
    assert_eq!(sim.session.stream_stats(SEQ).unwrap().acked, 0);
    assert_eq!(sim.session.stats().socket.unmatched_replies, 1);

    sim.reply(&ack, "ok", json!({}));
    assert_eq!(sim.session.stream_stats(SEQ).unwrap().acked, 1);
}
