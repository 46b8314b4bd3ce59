//! Edges of the engine's public API that the scenarios do not reach: the size
//! and spread of retry jitter, `Config` arithmetic at its limits, join ref
//! parsing, topic handles after their topic is gone, timers that fall due
//! together, and equality of engines that differ in one thing.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use channel_registry::engine::{
    Config, ConfigError, Effect, Engine, Event, Handled, IgnoreReason, JoinOptions, JoinRef,
    JoinReply, Limits, Output, RoomId, SubscriberId, TopicRef,
};
use common::{Sim, T};

const SEC: Duration = Duration::from_secs(1);

/// The delay of the retry the last event announced.
fn retry_delay(sim: &Sim) -> Duration {
    match sim.last_event() {
        Some(Event::Retrying { delay, .. }) => delay,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn full_jitter_spreads_retries_over_the_whole_range() {
    let d = SEC;
    let mut sim = Sim::new(Config {
        jitter_permille: 1000,
        rejoin_backoff: vec![d],
        ..Config::default()
    });
    sim.active(T, 1);
    let draws = 1000;
    let mut delays = Vec::with_capacity(draws);
    for _ in 0..draws {
        sim.crash(T);
        let delay = retry_delay(&sim);
        assert_eq!(
            sim.engine.poll_timeout(),
            Some(sim.now + delay),
            "the retry is armed for the delay it announced"
        );
        delays.push(delay);
        sim.advance(delay);
        sim.join_ok(T);
        sim.take_events();
        sim.take_effects();
        sim.outputs.clear();
    }
    assert!(
        delays.iter().all(|&x| d <= x && x <= 2 * d),
        "a delay outside [d, 2d]"
    );
    let secs: Vec<f64> = delays.iter().map(Duration::as_secs_f64).collect();
    let mean = secs.iter().sum::<f64>() / draws as f64;
    let low = secs.iter().filter(|&&x| x < 1.5).count();
    let (min, max) = secs
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(
        (mean - 1.5).abs() < 0.03,
        "mean {mean} s, expected about 1.5 s"
    );
    assert!(
        (400..=600).contains(&low),
        "{low} of {draws} delays in the lower half"
    );
    assert!(min < 1.01 && max > 1.99, "draws span only [{min}, {max}]");
}

#[test]
fn default_jitter_is_at_most_a_tenth_and_not_zero() {
    let mut sim = Sim::new(Config {
        rejoin_backoff: vec![10 * SEC],
        ..Config::default()
    });
    sim.active(T, 1);
    let mut extra = Vec::new();
    for _ in 0..50 {
        sim.crash(T);
        let delay = retry_delay(&sim);
        extra.push(delay - 10 * SEC);
        sim.advance(delay);
        sim.join_ok(T);
    }
    assert!(extra.iter().all(|&x| x <= SEC), "jitter over 10 %");
    assert!(
        extra.iter().any(|&x| x > SEC / 2),
        "jitter never reaches the upper half: {extra:?}"
    );
}

#[test]
fn huge_retry_delays_saturate_instead_of_panicking() {
    let mut sim = Sim::new(Config {
        jitter_permille: 1000,
        rejoin_backoff: vec![Duration::MAX],
        ..Config::default()
    });
    sim.active(T, 1);
    sim.crash(T);
    assert_eq!(retry_delay(&sim), Duration::MAX);
    assert!(sim.engine.poll_timeout().is_some());
}

#[test]
fn max_jitter_at_its_edges() {
    let at = |permille: u16, d: Duration| {
        Config {
            jitter_permille: permille,
            ..Config::default()
        }
        .max_jitter(d)
    };
    assert_eq!(at(0, SEC), Duration::ZERO);
    assert_eq!(at(1000, SEC), SEC);
    assert_eq!(at(100, SEC), SEC / 10);
    assert_eq!(at(1, Duration::from_nanos(999)), Duration::ZERO);
    assert_eq!(at(1000, Duration::ZERO), Duration::ZERO);
    let most = Duration::from_nanos(u64::MAX);
    assert_eq!(at(1000, Duration::MAX), most);
    assert_eq!(at(1000, most), most);
    assert_eq!(at(500, Duration::MAX), most / 2);
    assert_eq!(at(0, Duration::MAX), Duration::ZERO);
}

#[test]
fn backoff_follows_the_ladder_and_repeats_its_last_rung() {
    let c = Config {
        rejoin_backoff: vec![SEC, 2 * SEC, 5 * SEC],
        ..Config::default()
    };
    let got: Vec<u64> = (0..=5).map(|n| c.backoff(n).as_secs()).collect();
    assert_eq!(got, [1, 1, 2, 5, 5, 5]);
    assert_eq!(c.backoff(u8::MAX), 5 * SEC);
    let one = Config {
        rejoin_backoff: vec![3 * SEC],
        ..Config::default()
    };
    assert_eq!(one.backoff(1), 3 * SEC);
    assert_eq!(one.backoff(9), 3 * SEC);
}

#[test]
fn config_validation_refuses_each_bad_value_alone() {
    let ok = Config::default();
    assert_eq!(ok.validate(), Ok(()));
    let limits = |f: fn(&mut Limits)| {
        let mut c = Config::default();
        f(&mut c.limits);
        c.validate()
    };
    assert_eq!(limits(|l| l.max_topics = 0), Err(ConfigError::ZeroLimit));
    assert_eq!(
        limits(|l| l.max_holders_per_topic = 0),
        Err(ConfigError::ZeroLimit)
    );
    assert_eq!(limits(|l| l.max_topic_len = 0), Err(ConfigError::ZeroLimit));
    let jitter = |permille| {
        Config {
            jitter_permille: permille,
            ..Config::default()
        }
        .validate()
    };
    assert_eq!(jitter(1000), Ok(()));
    assert_eq!(jitter(1001), Err(ConfigError::Jitter(1001)));
    let empty = Config {
        rejoin_backoff: Vec::new(),
        ..Config::default()
    };
    assert_eq!(empty.validate(), Err(ConfigError::EmptyBackoff));
    let none = Config {
        max_attempts: 0,
        ..Config::default()
    };
    assert_eq!(none.validate(), Err(ConfigError::ZeroAttempts));
    let now = Sim::new(Config::default()).now;
    assert!(Engine::new(empty, now).is_err());
    for e in [
        ConfigError::ZeroAttempts,
        ConfigError::EmptyBackoff,
        ConfigError::ZeroLimit,
        ConfigError::Jitter(1001),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn join_refs_parse_only_nonzero_decimal_u64() {
    assert_eq!(JoinRef::parse("1"), JoinRef::new(1));
    assert_eq!(JoinRef::parse("42").map(JoinRef::get), Some(42));
    assert_eq!(
        JoinRef::parse("18446744073709551615").map(JoinRef::get),
        Some(u64::MAX)
    );
    for bad in [
        "",
        "0",
        "-1",
        " 1",
        "1 ",
        "1.0",
        "0x1",
        "abc",
        "18446744073709551616",
    ] {
        assert_eq!(JoinRef::parse(bad), None, "{bad:?}");
    }
    assert_eq!(JoinRef::new(0), None);
    let r = JoinRef::new(7).unwrap();
    assert_eq!(r.get(), 7);
    assert_eq!(r.to_string(), "7");
    assert_eq!(JoinRef::parse(&r.to_string()), Some(r));
    assert!(JoinRef::new(2).unwrap() > r.min(JoinRef::new(1).unwrap()));
}

#[test]
fn a_removed_topics_handle_names_it_until_the_next_input_then_nothing() {
    let mut sim = Sim::new(Config::default());
    let opts = JoinOptions::default();
    let sub = sim
        .engine
        .subscribe(T, SubscriberId(1), &opts, sim.now)
        .unwrap();
    let id = sub.topic;
    assert_eq!(sim.engine.topic_id(T), Some(id));
    assert_eq!(sim.engine.topic(id).map(|t| t.topic), Some(T));
    assert_eq!(sim.engine.topic_name(id), Some(T));
    let r = sim.join_ref(T);
    sim.engine.unsubscribe(id, SubscriberId(1), sim.now);
    // Removed, but the outputs that name it are still queued.
    assert_eq!(sim.engine.topic(id), None, "a removed topic is not managed");
    assert_eq!(sim.engine.topic_id(T), None);
    assert_eq!(sim.engine.topic_name(id), Some(T));
    while let Some(o) = sim.engine.poll_output() {
        assert_eq!(o.topic(), Some(id));
        assert_eq!(sim.engine.topic_name(id), Some(T));
    }
    // The next input frees the slot: the handle names nothing any more.
    let h = sim.engine.handle_join_reply(id, r, JoinReply::Ok, sim.now);
    assert_eq!(h, Handled::Ignored(IgnoreReason::UnknownTopic));
    assert_eq!(sim.engine.topic_name(id), None);
    // A new topic reuses the slot under a new generation.
    let other = sim
        .engine
        .subscribe("doc:other", SubscriberId(1), &opts, sim.now)
        .unwrap()
        .topic;
    assert_eq!(other.index(), id.index());
    assert_ne!(other, id);
    assert_ne!(other.to_string(), id.to_string());
    assert_eq!(sim.engine.topic_name(id), None);
    assert_eq!(sim.engine.topic(id), None);
    assert_eq!(sim.engine.current_join_ref(id), None);
    assert_eq!(
        sim.engine.unsubscribe(id, SubscriberId(1), sim.now),
        channel_registry::engine::Unsubscribed::NotSubscribed
    );
    assert_eq!(sim.engine.topic_name(other), Some("doc:other"));
    assert_eq!(
        sim.engine.topic(TopicRef::from(&other)).map(|t| t.id),
        Some(other)
    );
}

/// Subscribes `names` in this order, so slots and timer queues follow it.
fn subscribed_in_order(names: &[&str], config: Config) -> Sim {
    let mut sim = Sim::new(Config { ..config });
    for t in names {
        sim.sub(t, 1);
    }
    sim
}

/// The topics named by `kind` outputs since the last call, in order.
fn fired(sim: &mut Sim, kind: fn(&Output) -> bool) -> Vec<String> {
    let out = sim
        .outputs
        .iter()
        .filter(|o| kind(&o.item))
        .map(|o| o.topic.clone().unwrap())
        .collect();
    sim.outputs.clear();
    out
}

fn is_end(o: &Output) -> bool {
    matches!(o, Output::Effect(Effect::End { .. }))
}

fn is_join(o: &Output) -> bool {
    matches!(o, Output::Effect(Effect::Join { .. }))
}

const SHUFFLED: [&str; 4] = ["c", "a", "d", "b"];
const SORTED: [&str; 4] = ["a", "b", "c", "d"];

#[test]
fn join_timeouts_due_together_fire_in_topic_order() {
    let mut sim = subscribed_in_order(&SHUFFLED, Config::default());
    sim.outputs.clear();
    sim.advance(10 * SEC);
    assert_eq!(fired(&mut sim, is_end), SORTED);
}

#[test]
fn grace_periods_ending_together_fire_in_topic_order() {
    let mut sim = subscribed_in_order(&SHUFFLED, Config::default());
    for t in SHUFFLED {
        sim.join_ok(t);
    }
    for t in SHUFFLED {
        sim.unsub(t, 1);
    }
    sim.outputs.clear();
    sim.advance(2 * SEC);
    assert_eq!(fired(&mut sim, is_end), SORTED);
}

#[test]
fn retries_due_together_fire_in_topic_order() {
    let mut sim = subscribed_in_order(
        &SHUFFLED,
        Config {
            jitter_permille: 0,
            ..Config::default()
        },
    );
    for t in SHUFFLED {
        sim.join_error(t);
    }
    sim.outputs.clear();
    sim.advance(SEC);
    assert_eq!(fired(&mut sim, is_join), SORTED);
}

fn hash_of(e: &Engine) -> u64 {
    let mut h = DefaultHasher::new();
    e.hash(&mut h);
    h.finish()
}

#[test]
fn engines_differing_in_one_thing_are_unequal() {
    let base = {
        let mut sim = Sim::new(Config::default());
        sim.active(T, 1);
        sim.switch(1, T);
        sim
    };
    let same = base.engine.clone();
    assert_eq!(same, base.engine);
    assert_eq!(hash_of(&same), hash_of(&base.engine));

    let mut later = base.engine.clone();
    later.handle_timeout(base.now + SEC);
    assert_ne!(later, base.engine, "only the clock differs");
    assert_ne!(hash_of(&later), hash_of(&base.engine));

    let mut minted = base.engine.clone();
    minted.mint_ref();
    assert_ne!(minted, base.engine, "only the ref counter differs");

    let opts = JoinOptions::default();
    let with = |id: u64| {
        let mut e = base.engine.clone();
        e.subscribe(T, SubscriberId(id), &opts, base.now).unwrap();
        e
    };
    assert_ne!(with(2), with(3), "only one holder differs");
    assert_eq!(with(2), with(2));

    let room = |id: u64| {
        let mut e = base.engine.clone();
        e.switch(RoomId(id), T, &opts, base.now).unwrap();
        while e.poll_output().is_some() {}
        e
    };
    assert_ne!(room(2), room(3), "only one room differs");
    assert_eq!(room(2), room(2));
    assert_eq!(
        room(2).room_ids().collect::<Vec<_>>(),
        [RoomId(1), RoomId(2)]
    );
}

#[test]
fn names_of_removed_topics_survive_later_inputs_until_their_outputs_are_polled() {
    let mut sim = Sim::new(Config::default());
    sim.sub(T, 1);
    let id = sim.engine.topic_id(T).unwrap();
    let now = sim.now;
    sim.engine.unsubscribe(T, SubscriberId(1), now);
    // More inputs while the outputs naming `T` wait.
    sim.engine
        .subscribe("doc:other", SubscriberId(2), &JoinOptions::default(), now)
        .unwrap();
    sim.engine.handle_timeout(now + SEC);
    assert_eq!(sim.engine.topic_name(id), Some(T));
    sim.drain();
    assert_eq!(
        sim.engine.topic_name(id),
        Some(T),
        "polling alone frees nothing"
    );
    sim.engine.handle_timeout(now + SEC);
    assert_eq!(sim.engine.topic_name(id), None);
}

#[test]
fn fire_timer_fires_one_topics_timer_whatever_its_deadline() {
    let mut sim = Sim::new(Config::default());
    sim.active("doc:active", 1);
    sim.sub(T, 1);
    assert!(!sim.engine.fire_timer("doc:unknown"));
    assert!(!sim.engine.fire_timer("doc:active"), "no timer armed");
    let deadline = sim.engine.poll_timeout().unwrap();
    assert!(sim.engine.fire_timer(T));
    sim.drain();
    assert_eq!(
        sim.last_change(T),
        (
            Some(channel_registry::engine::Phase::Connecting),
            Some(channel_registry::engine::Trigger::JoinTimeout),
            channel_registry::engine::Phase::Destroyed
        )
    );
    // The clock moved to the deadline: the retry is armed from there.
    let delay = retry_delay(&sim);
    assert_eq!(sim.engine.poll_timeout(), Some(deadline + delay));
    let id = sim.engine.topic_id(T).unwrap();
    assert!(sim.engine.fire_timer(id));
    sim.drain();
    assert!(sim.join_ref(T).get() > 2);
}

/// The latest `Instant` this platform can represent, to the second.
fn latest_instant(from: std::time::Instant) -> std::time::Instant {
    let mut step = Duration::from_secs(1 << 62);
    let mut at = from;
    while step >= SEC {
        if let Some(t) = at.checked_add(step) {
            at = t;
        } else {
            step /= 2;
        }
    }
    at
}

#[test]
fn deadlines_past_the_end_of_time_saturate() {
    let start = Sim::new(Config::default()).now;
    let epoch = latest_instant(start) - 5 * SEC;
    let mut engine = Engine::new(Config::default(), epoch).unwrap();
    engine.handle_socket_up(epoch);
    engine
        .subscribe(T, SubscriberId(1), &JoinOptions::default(), epoch)
        .unwrap();
    // The join timeout (10 s) lies past the last representable instant.
    let at = engine.poll_timeout().unwrap();
    assert!(at > epoch && at.checked_add(10 * SEC).is_none(), "{at:?}");
    engine.handle_timeout(at);
    assert_eq!(engine.topic(T).unwrap().attempts, 1);
}

#[test]
fn minted_refs_count_up_from_the_join_refs_and_back_into_them() {
    let mut sim = Sim::new(Config::default());
    sim.sub(T, 1);
    let first = sim.join_ref(T).get();
    let a = sim.engine.mint_ref();
    let b = sim.engine.mint_ref();
    assert_eq!((a, b), (first + 1, first + 2));
    sim.sub("doc:other", 1);
    assert_eq!(sim.join_ref("doc:other").get(), b + 1);
}

#[test]
fn timers_in_every_queue_fire_at_their_own_deadlines() {
    let mut sim = Sim::new(Config {
        jitter_permille: 0,
        settle_timeout: 5 * SEC,
        ..Config::default()
    });
    let t0 = sim.now;
    sim.sub("join", 1); // join timeout at 10 s
    sim.active("grace", 1);
    sim.unsub("grace", 1); // grace ends at 2 s
    sim.sub("retry", 1);
    sim.join_error("retry"); // rejoins at 1 s
    let opts = JoinOptions {
        settling: Some(true),
        ..JoinOptions::default()
    };
    sim.engine
        .subscribe("settle", SubscriberId(1), &opts, sim.now)
        .unwrap();
    sim.drain();
    sim.join_ok("settle"); // settle timeout at 5 s
    sim.outputs.clear();
    let mut fired = Vec::new();
    while let Some(at) = sim.engine.poll_timeout() {
        if at > t0 + 10 * SEC {
            break;
        }
        sim.now = at;
        sim.engine.handle_timeout(at);
        sim.drain();
        let topics: Vec<String> = sim.outputs.drain(..).filter_map(|o| o.topic).collect();
        fired.push(((at - t0).as_secs(), topics[0].clone()));
    }
    assert_eq!(
        fired,
        [
            (1, "retry".to_owned()),
            (2, "grace".to_owned()),
            (5, "settle".to_owned()),
            (6, "settle".to_owned()), // its retry
            (10, "join".to_owned())
        ]
    );
}
