//! Edges of what the engine holds: topic names at the limits of validation,
//! holder ids at their bound, join params shared between topics, which
//! draining topic makes room, hundreds of topics at once, what a reconnect
//! restarts, and the read-only views.

mod common;

use std::sync::Arc;
use std::time::Duration;

use channel_registry::engine::{
    Config, Engine, Error, Event, FailReason, Holder, JoinOptions, Limits, Phase, RoomId,
    SubscriberId, TopicError, TopicStatus,
};
use common::{Sim, T};

const SEC: Duration = Duration::from_secs(1);

fn subscribe(sim: &mut Sim, topic: &str) -> Result<(), Error> {
    let r = sim
        .engine
        .subscribe(topic, SubscriberId(1), &JoinOptions::default(), sim.now)
        .map(|_| ());
    sim.drain();
    r
}

#[test]
fn topic_names_at_the_edges_of_validation() {
    let mut sim = Sim::new(Config::default());
    let longest = "x".repeat(255);
    for ok in [longest.as_str(), "a", "café:1", "a b", "room:~"] {
        assert_eq!(subscribe(&mut sim, ok), Ok(()), "{ok:?}");
    }
    let err = |sim: &mut Sim, t: &str| match subscribe(sim, t) {
        Err(Error::Topic(e)) => e,
        other => panic!("{t:?}: {other:?}"),
    };
    assert_eq!(
        err(&mut sim, "room:1 "),
        TopicError::Padded("room:1 ".into())
    );
    assert_eq!(err(&mut sim, " "), TopicError::Padded(" ".into()));
    for (topic, at) in [("\u{7}", 0), ("a\u{7}\u{7}b", 1), ("\u{7f}x", 0)] {
        assert_eq!(
            err(&mut sim, topic),
            TopicError::ControlChar {
                topic: topic.into(),
                at
            }
        );
    }
    for (topic, at, code) in [
        ("a\u{200B}b", 1, 0x200B),
        ("a\u{AD}b", 1, 0xAD),
        ("\u{FEFF}room", 0, 0xFEFF),
        ("room\u{202E}", 4, 0x202E),
    ] {
        let e = err(&mut sim, topic);
        assert_eq!(
            e,
            TopicError::InvisibleChar {
                topic: topic.into(),
                at,
                code
            }
        );
        assert!(e.to_string().contains(&format!("U+{code:04X}")), "{e}");
    }
    let tight = Config {
        limits: Limits {
            max_topic_len: 3,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut sim = Sim::new(tight);
    assert_eq!(subscribe(&mut sim, "abc"), Ok(()));
    assert_eq!(
        subscribe(&mut sim, "abcd"),
        Err(Error::Topic(TopicError::TooLong { len: 4, max: 3 }))
    );
}

#[test]
fn holder_ids_up_to_two_to_the_63_are_stored_and_larger_are_refused() {
    let mut sim = Sim::new(Config::default());
    let most = u64::MAX >> 1;
    let opts = JoinOptions::default();
    sim.engine
        .subscribe(T, SubscriberId(most), &opts, sim.now)
        .unwrap();
    sim.engine.switch(RoomId(most), T, &opts, sim.now).unwrap();
    sim.drain();
    let holders: Vec<Holder> = sim.engine.topic(T).unwrap().holders().collect();
    assert_eq!(
        holders,
        [
            Holder::Subscriber(SubscriberId(most)),
            Holder::Room(RoomId(most))
        ]
    );
    for id in [most + 1, u64::MAX] {
        let err = sim
            .engine
            .subscribe(T, SubscriberId(id), &opts, sim.now)
            .unwrap_err();
        assert_eq!(err, Error::IdOutOfRange { id });
        assert!(err.to_string().contains("2^63"));
        assert_eq!(
            sim.engine.switch(RoomId(id), T, &opts, sim.now),
            Err(Error::IdOutOfRange { id })
        );
        assert_eq!(
            sim.engine.unsubscribe(T, SubscriberId(id), sim.now),
            channel_registry::engine::Unsubscribed::NotSubscribed
        );
    }
    assert_eq!(sim.engine.topic(T).unwrap().holder_count(), 2);
}

#[test]
fn join_params_are_per_topic_shared_by_text_and_freed_with_the_topic() {
    let mut sim = Sim::new(Config::default());
    let v1 = || JoinOptions::with_params(String::from("{\"v\":1}"));
    let v2 = JoinOptions::with_params("{\"v\":2}");
    let now = sim.now;
    let e = &mut sim.engine;
    e.subscribe("a", SubscriberId(1), &v1(), now).unwrap();
    e.subscribe("b", SubscriberId(1), &v2, now).unwrap();
    e.subscribe("c", SubscriberId(1), &v1(), now).unwrap();
    // Another Arc with the same text is the same params.
    e.subscribe("a", SubscriberId(2), &v1(), now).unwrap();
    e.subscribe("d", SubscriberId(1), &JoinOptions::default(), now)
        .unwrap();
    sim.drain();
    let params = |sim: &Sim, t: &str| sim.engine.params(t).map(|p| p.to_string());
    assert_eq!(params(&sim, "a").as_deref(), Some("{\"v\":1}"));
    assert_eq!(params(&sim, "b").as_deref(), Some("{\"v\":2}"));
    assert_eq!(params(&sim, "c").as_deref(), Some("{\"v\":1}"));
    assert_eq!(params(&sim, "d"), None);
    assert_eq!(
        sim.engine.topic("c").unwrap().params.map(|p| &**p),
        Some("{\"v\":1}")
    );
    // Removing one user of a shared text keeps it for the other.
    for s in [1, 2] {
        sim.unsub("a", s);
    }
    assert_eq!(sim.engine.topic("a"), None);
    assert_eq!(params(&sim, "c").as_deref(), Some("{\"v\":1}"));
    sim.unsub("c", 1);
    sim.unsub("b", 1);
    // Texts freed and interned again stay right.
    let now = sim.now;
    sim.engine
        .subscribe("e", SubscriberId(1), &v2, now)
        .unwrap();
    sim.engine
        .subscribe("f", SubscriberId(1), &v1(), now)
        .unwrap();
    sim.drain();
    assert_eq!(params(&sim, "e").as_deref(), Some("{\"v\":2}"));
    assert_eq!(params(&sim, "f").as_deref(), Some("{\"v\":1}"));
    let other: Arc<str> = Arc::from("{\"v\":1}");
    assert!(matches!(
        sim.engine
            .subscribe("e", SubscriberId(2), &JoinOptions::with_params(other), now),
        Err(Error::ParamsConflict { .. })
    ));
}

#[test]
fn the_draining_topic_whose_grace_ends_first_makes_room() {
    let limited = || {
        let mut sim = Sim::new(Config {
            limits: Limits {
                max_topics: 4,
                ..Limits::default()
            },
            ..Config::default()
        });
        for t in ["a", "b", "c", "d"] {
            sim.active(t, 1);
        }
        sim
    };
    // `d` drains first, `b` later: `d` is closed for the newcomer.
    let mut sim = limited();
    sim.unsub("d", 1);
    sim.advance(SEC / 2);
    sim.unsub("b", 1);
    subscribe(&mut sim, "e").unwrap();
    assert_eq!(sim.engine.topic("d"), None);
    assert_eq!(sim.phase("b"), Some(Phase::Draining));
    // Graces ending together: the first by name goes.
    let mut sim = limited();
    sim.unsub("d", 1);
    sim.unsub("b", 1);
    subscribe(&mut sim, "e").unwrap();
    assert_eq!(sim.engine.topic("b"), None);
    assert_eq!(sim.phase("d"), Some(Phase::Draining));
    // Under the limit nothing is evicted.
    let mut sim = limited();
    sim.unsub("d", 1);
    sim.unsub("a", 1);
    sim.unsub("c", 1);
    sim.unsub("b", 1);
    sim.advance(SEC); // nothing expires yet
    assert_eq!(sim.engine.stats().draining, 4);
    sim.engine
        .subscribe("b", SubscriberId(2), &JoinOptions::default(), sim.now)
        .unwrap();
    sim.drain();
    assert_eq!(
        sim.phase("b"),
        Some(Phase::Active),
        "revived, nothing evicted"
    );
    assert_eq!(sim.engine.stats().draining, 3);
}

#[test]
fn creating_a_topic_under_the_limit_evicts_nothing() {
    let mut sim = Sim::new(Config {
        limits: Limits {
            max_topics: 3,
            ..Limits::default()
        },
        ..Config::default()
    });
    sim.active("a", 1);
    sim.unsub("a", 1);
    subscribe(&mut sim, "b").unwrap();
    assert_eq!(sim.phase("a"), Some(Phase::Draining), "room to spare");
}

#[test]
fn hundreds_of_topics_live_across_slab_chunks() {
    let n = 700;
    let mut sim = Sim::new(Config {
        limits: Limits {
            max_topics: n,
            ..Limits::default()
        },
        phase_events: false,
        ..Config::default()
    });
    let names: Vec<String> = (0..n).map(|i| format!("room:{i}")).collect();
    let now = sim.now;
    let e = &mut sim.engine;
    let ids: Vec<_> = names
        .iter()
        .map(|t| {
            e.subscribe(t, SubscriberId(1), &JoinOptions::default(), now)
                .unwrap()
                .topic
        })
        .collect();
    while e.poll_output().is_some() {}
    for (t, id) in names.iter().zip(&ids) {
        assert_eq!(e.topic_id(t), Some(*id));
        assert_eq!(e.topic_name(*id), Some(t.as_str()));
        assert_eq!(e.topic(*id).unwrap().topic, t);
    }
    let mut indices: Vec<usize> = ids.iter().map(|id| id.index()).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), n, "handles share an index");
    // Remove every other topic, then bring them back.
    for t in names.iter().step_by(2) {
        e.unsubscribe(t.as_str(), SubscriberId(1), now);
    }
    while e.poll_output().is_some() {}
    e.handle_timeout(now);
    assert_eq!(e.stats().topics, n / 2);
    for (i, t) in names.iter().enumerate() {
        assert_eq!(e.topic_id(t).is_some(), i % 2 == 1, "{t}");
    }
    for t in names.iter().step_by(2) {
        e.subscribe(t, SubscriberId(1), &JoinOptions::default(), now)
            .unwrap();
    }
    while e.poll_output().is_some() {}
    for t in &names {
        let id = e.topic_id(t).unwrap();
        assert_eq!(e.topic_name(id), Some(t.as_str()));
    }
    assert_eq!(e.stats().topics, n);
    assert_eq!(e.stats().timers, n);
    channel_registry::engine::audit::check_structure(e).unwrap();
}

#[test]
fn a_reconnect_restarts_failed_topics_except_those_the_server_closed() {
    let mut sim = Sim::new(Config {
        max_attempts: 1,
        ..Config::default()
    });
    sim.sub("rejected", 1);
    sim.join_error("rejected");
    sim.active("closed", 1);
    sim.close("closed");
    sim.active("crashed", 1);
    sim.crash("crashed"); // retrying
    assert_eq!(
        sim.engine.topic("rejected").unwrap().status,
        TopicStatus::Failed(FailReason::JoinRejected)
    );
    sim.socket_down();
    assert_eq!(
        sim.engine.topic("crashed").unwrap().status,
        TopicStatus::Offline
    );
    sim.socket_up();
    assert_eq!(sim.phase("rejected"), Some(Phase::Connecting));
    assert_eq!(sim.phase("crashed"), Some(Phase::Connecting));
    assert_eq!(
        sim.engine.topic("closed").unwrap().status,
        TopicStatus::Failed(FailReason::ClosedByServer)
    );
    assert_eq!(sim.engine.topic("rejected").unwrap().attempts, 1);
    // A second socket-up while up changes nothing.
    let before = sim.engine.clone();
    sim.engine.handle_socket_up(sim.now);
    assert_eq!(sim.engine, before);
    // And a second socket-down while down neither.
    sim.socket_down();
    let before = sim.engine.clone();
    sim.engine.handle_socket_down(sim.now);
    assert_eq!(sim.engine, before);
}

#[test]
fn settle_failures_use_up_the_attempts() {
    let mut sim = Sim::new(Config {
        settling: true,
        max_attempts: 2,
        jitter_permille: 0,
        ..Config::default()
    });
    sim.sub(T, 1);
    sim.join_ok(T);
    let r = sim.join_ref(T);
    sim.engine.handle_settle_failed(T, r, sim.now);
    sim.drain();
    assert_eq!(
        sim.last_event(),
        Some(Event::Retrying {
            topic: sim.engine.topic_id(T).unwrap(),
            attempt: 1,
            delay: SEC,
            reason: FailReason::SettleFailed
        })
    );
    sim.advance(SEC);
    sim.join_ok(T);
    assert_eq!(sim.engine.topic(T).unwrap().attempts, 2);
    sim.advance(10 * SEC); // settle timeout
    assert_eq!(
        sim.engine.topic(T).unwrap().status,
        TopicStatus::Failed(FailReason::SettleTimeout)
    );
}

#[test]
fn read_only_views_agree() {
    let mut sim = Sim::new(Config {
        seed: 99,
        ..Config::default()
    });
    assert_eq!(sim.engine.config().seed, 99);
    sim.sub(T, 1);
    let r = sim.join_ref(T);
    assert_eq!(sim.engine.active_join_ref(T), None, "not active yet");
    assert_eq!(sim.engine.current_join_ref(T), Some(r));
    sim.join_ok(T);
    assert_eq!(sim.engine.active_join_ref(T), Some(r));
    assert!(sim.engine.accepts(T, Some(r)) && sim.engine.accepts(T, None));
    let info = sim.engine.topic(T).unwrap();
    assert_eq!(info.status.phase(), Some(Phase::Active));
    assert_eq!(info.status.join_ref(), Some(r));
    assert_eq!(TopicStatus::Retrying.phase(), None);
    assert_eq!(TopicStatus::Offline.join_ref(), None);
    assert_eq!(info, sim.engine.topic(T).unwrap());
    assert_eq!(sim.engine.topics().count(), 1);
    let mut other = sim.engine.clone();
    other
        .subscribe(T, SubscriberId(2), &JoinOptions::default(), sim.now)
        .unwrap();
    other
        .subscribe("doc:new", SubscriberId(2), &JoinOptions::default(), sim.now)
        .unwrap();
    let waiting = other.queued_outputs();
    assert!(waiting > 0);
    assert_eq!(other.stats().queued_outputs, waiting);
    assert!(!other.stats().is_empty());
    let more = other.topic(T).unwrap();
    assert_eq!((info.holder_count(), more.holder_count()), (1, 2));
    assert_ne!(info, more, "views with other holders compare equal");
    for p in Phase::ALL {
        assert_eq!(p.to_string(), p.name());
        assert!(!p.name().is_empty());
    }
    assert_eq!(Phase::Draining.to_string(), "draining");
    assert_eq!(Phase::Settling.name(), "settling");
}

#[test]
fn topic_views_differ_in_any_field() {
    // The same topic in the same state under two handles (slot generations).
    let now = Sim::new(Config::default()).now;
    let opts = JoinOptions::default();
    let mut a = Engine::new(Config::default(), now).unwrap();
    a.handle_socket_up(now);
    a.mint_ref();
    a.subscribe(T, SubscriberId(1), &opts, now).unwrap();
    let mut b = Engine::new(Config::default(), now).unwrap();
    b.handle_socket_up(now);
    b.subscribe("x", SubscriberId(1), &opts, now).unwrap();
    b.unsubscribe("x", SubscriberId(1), now);
    while b.poll_output().is_some() {}
    b.subscribe(T, SubscriberId(1), &opts, now).unwrap();
    let (ia, ib) = (a.topic(T).unwrap(), b.topic(T).unwrap());
    assert_eq!(ia.id.index(), ib.id.index());
    assert_ne!(ia.id, ib.id);
    assert_eq!(
        (ia.status, ia.attempts, ia.deadline),
        (ib.status, ib.attempts, ib.deadline)
    );
    assert_ne!(ia, ib, "views of different handles compare equal");
}
