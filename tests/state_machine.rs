//! Property test: random commands, protocol replies in any order (stale ones
//! included), resource results, socket drops and clock ticks drive the real
//! engine; after every step the DESIGN §5 invariants are checked against ghost
//! state kept from the API's own answers.
//!
//! Checked here: 1 (refcount = ghost subscriptions), 3 (an ignored input
//! changes nothing), 4 and 5 (every phase change is a table row from the
//! phase the incarnation was in; active only after join and settling), 6
//! (resources once each; via the audit in `common`), 7 (at quiescence,
//! nothing leaks) and 8 (rooms show only their latest request, and at
//! quiescence show it or report it failed). Also after every step: the
//! counters of `stats()` agree with `topics()`, `room_ids()` lists exactly
//! the rooms opened and not closed, and an ending incarnation sends
//! `phx_leave` exactly when the socket is up and the server has not already
//! ended it (join error, `phx_close`, `phx_error`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use channel_registry::engine::audit::check_quiescent;
use channel_registry::engine::{
    Config, Effect, Error, Event, Handled, Holder, JoinOptions, JoinRef, JoinReply, Limits, Output,
    Phase, RoomId, Stats, SubscriberId, TopicStatus,
};
use common::Sim;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

const TOPICS: [&str; 4] = ["doc:1:v1", "doc:1:v2", "doc:1:v3", "room:lobby"];

#[derive(Clone, Copy, Debug)]
enum Reply {
    JoinOk,
    JoinError,
    Close,
    Crash,
    Settled,
    SettleFailed,
}

#[derive(Clone, Debug)]
enum Step {
    Subscribe {
        topic: usize,
        sub: u64,
    },
    Unsubscribe {
        topic: usize,
        sub: u64,
    },
    Switch {
        room: u64,
        topic: usize,
    },
    CloseRoom {
        room: u64,
    },
    CloseAll,
    /// A protocol or resource input for one of the topic's join refs so far:
    /// `pick` 0 is the newest, others may be stale.
    Input {
        topic: usize,
        pick: usize,
        reply: Reply,
    },
    SocketDown,
    SocketUp,
    Tick {
        millis: u64,
    },
}

/// Generation only; the ghost state lives in the system under test, built
/// from what the engine's API answered.
struct Reference;

impl ReferenceStateMachine for Reference {
    type State = bool; // settling on or off for the run
    type Transition = Step;

    fn init_state() -> BoxedStrategy<bool> {
        any::<bool>().boxed()
    }

    fn transitions(_: &bool) -> BoxedStrategy<Step> {
        let topic = 0..TOPICS.len();
        let reply = prop_oneof![
            4 => Just(Reply::JoinOk),
            1 => Just(Reply::JoinError),
            1 => Just(Reply::Close),
            1 => Just(Reply::Crash),
            3 => Just(Reply::Settled),
            1 => Just(Reply::SettleFailed),
        ];
        let pick = prop_oneof![3 => Just(0usize), 1 => 1..4usize];
        prop_oneof![
            6 => (topic.clone(), 0..3u64).prop_map(|(topic, sub)| Step::Subscribe { topic, sub }),
            4 => (topic.clone(), 0..3u64).prop_map(|(topic, sub)| Step::Unsubscribe { topic, sub }),
            4 => (0..2u64, topic.clone()).prop_map(|(room, topic)| Step::Switch { room, topic }),
            1 => (0..2u64).prop_map(|room| Step::CloseRoom { room }),
            1 => Just(Step::CloseAll),
            10 => (topic, pick, reply).prop_map(|(topic, pick, reply)| Step::Input { topic, pick, reply }),
            1 => Just(Step::SocketDown),
            2 => Just(Step::SocketUp),
            5 => (0..12_000u64).prop_map(|millis| Step::Tick { millis }),
        ]
        .boxed()
    }

    fn apply(state: bool, _: &Step) -> bool {
        state
    }
}

struct Sut {
    sim: Sim,
    /// Live subscriptions, as the API reported them.
    subs: BTreeSet<(usize, u64)>,
    /// Each room's latest accepted request.
    requested: BTreeMap<u64, usize>,
    /// Every join ref sent per topic, oldest first.
    refs: BTreeMap<usize, Vec<JoinRef>>,
    /// Incarnations the server ended itself (an applied join error,
    /// `phx_close` or `phx_error`): the server holds no channel for them, so
    /// ending them must not send `phx_leave`.
    ended_by_server: BTreeSet<JoinRef>,
}

fn topic_index(name: &str) -> usize {
    TOPICS.iter().position(|t| *t == name).expect("known topic")
}

impl Sut {
    fn record_new_outputs(&mut self) {
        let socket_up = self.sim.engine.is_socket_up();
        for e in self.sim.take_effects() {
            match e.item {
                Effect::Join { join_ref, .. } => {
                    let topic = e.topic.expect("a join names its topic");
                    self.refs
                        .entry(topic_index(&topic))
                        .or_default()
                        .push(join_ref);
                }
                Effect::End {
                    join_ref, leave, ..
                } => {
                    // Only a socket-down step ends incarnations and leaves
                    // the socket down, so the socket's state after the step
                    // is the one the incarnation ended with.
                    let server_holds = !self.ended_by_server.contains(&join_ref);
                    assert_eq!(
                        leave,
                        socket_up && server_holds,
                        "{join_ref} of {:?} ended with leave = {leave} (socket up: {socket_up}, \
                         ended by the server: {})",
                        e.topic,
                        !server_holds
                    );
                }
                _ => {}
            }
        }
        for e in self.sim.take_events() {
            if let Event::RoomShows { room, .. } = e.item {
                assert_eq!(
                    self.requested.get(&room.0).map(|&i| TOPICS[i]),
                    e.topic.as_deref(),
                    "invariant 8: {room:?} showed a topic that is not its latest request"
                );
            }
        }
    }

    /// Invariant 3: an ignored input leaves exactly one `Ignored` event and
    /// otherwise the engine as it was.
    fn input(&mut self, topic: usize, pick: usize, reply: Reply) {
        let Some(refs) = self.refs.get(&topic) else {
            return;
        };
        let join_ref = refs[refs.len() - 1 - pick.min(refs.len() - 1)];
        let before = self.sim.engine.clone();
        let (t, now, e) = (TOPICS[topic], self.sim.now, &mut self.sim.engine);
        let handled = match reply {
            Reply::JoinOk => e.handle_join_reply(t, join_ref, JoinReply::Ok, now),
            Reply::JoinError => e.handle_join_reply(t, join_ref, JoinReply::Error, now),
            Reply::Close => e.handle_close(t, join_ref, now),
            Reply::Crash => e.handle_error(t, join_ref, now),
            Reply::Settled => e.handle_settled(t, join_ref, now),
            Reply::SettleFailed => e.handle_settle_failed(t, join_ref, now),
        };
        if handled == Handled::Applied
            && matches!(reply, Reply::JoinError | Reply::Close | Reply::Crash)
        {
            self.ended_by_server.insert(join_ref);
        }
        if let Handled::Ignored(reason) = handled {
            let mut after = self.sim.engine.clone();
            match after.poll_output() {
                Some(Output::Event(Event::Ignored { reason: r, .. })) => assert_eq!(r, reason),
                other => panic!("invariant 3: ignored input produced {other:?}"),
            }
            assert_eq!(
                after, before,
                "invariant 3: an ignored input changed the engine"
            );
        }
    }

    fn check(&self) {
        self.check_stats();
        // Rooms: exactly those switched and not closed since.
        let rooms: Vec<u64> = self.sim.engine.room_ids().map(|r| r.0).collect();
        let opened: Vec<u64> = self.requested.keys().copied().collect();
        assert_eq!(rooms, opened, "room_ids() disagrees with the rooms opened");
        // Invariant 1: holders that are subscribers equal the ghost set.
        let mut seen = BTreeSet::new();
        for info in self.sim.engine.topics() {
            let i = topic_index(info.topic);
            for h in info.holders() {
                if let Holder::Subscriber(SubscriberId(s)) = h {
                    assert!(
                        self.subs.contains(&(i, s)),
                        "invariant 1: {s} holds {} without subscribing",
                        info.topic
                    );
                    seen.insert((i, s));
                }
            }
        }
        assert_eq!(
            seen, self.subs,
            "invariant 1: a live subscription is missing from the engine"
        );
        // Invariants 7 and 8 at quiescence.
        if self.sim.engine.poll_timeout().is_none() {
            if let Err(v) = check_quiescent(&self.sim.engine) {
                panic!("{v}\n{:#?}", self.sim.engine);
            }
            if self.sim.engine.is_socket_up() {
                for (&room, &topic) in &self.requested {
                    let r = self.sim.engine.room(RoomId(room)).expect("room exists");
                    if r.pending.is_none() {
                        assert_eq!(r.shown, Some(TOPICS[topic]), "invariant 8 at quiescence");
                    }
                }
            }
        }
    }
}

impl Sut {
    /// Every counter of `stats()` agrees with what `topics()` and the other
    /// views show.
    fn check_stats(&self) {
        let engine = &self.sim.engine;
        let mut want = Stats::default();
        for info in engine.topics() {
            want.topics += 1;
            want.holders += info.holder_count();
            assert_eq!(info.holders().count(), info.holder_count());
            if info.deadline.is_some() {
                want.timers += 1;
            }
            match info.status {
                TopicStatus::Live { phase, .. } => match phase {
                    Phase::Connecting => want.connecting += 1,
                    Phase::Settling => want.settling += 1,
                    Phase::Active => want.active += 1,
                    Phase::Draining => want.draining += 1,
                    other => panic!("a live topic in {other}"),
                },
                TopicStatus::Retrying => want.retrying += 1,
                TopicStatus::Offline => want.offline += 1,
                TopicStatus::Failed(_) => want.failed += 1,
                other => panic!("unknown status {other:?}"),
            }
        }
        want.rooms = engine.room_ids().count();
        want.queued_outputs = engine.queued_outputs();
        let stats = engine.stats();
        assert_eq!(stats, want, "stats() disagrees with topics()");
        assert_eq!(stats.is_empty(), want == Stats::default());
        assert_eq!(
            engine.poll_timeout().is_some(),
            want.timers > 0,
            "poll_timeout() disagrees with the armed timers"
        );
    }
}

struct EngineTest;

impl StateMachineTest for EngineTest {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(settling: &bool) -> Sut {
        let mut sim = Sim::new(Config {
            settling: *settling,
            max_attempts: 3,
            limits: Limits {
                max_topics: 3,
                ..Limits::default()
            },
            ..Config::default()
        });
        sim.drain();
        let mut sut = Sut {
            sim,
            subs: BTreeSet::new(),
            requested: BTreeMap::new(),
            refs: BTreeMap::new(),
            ended_by_server: BTreeSet::new(),
        };
        sut.record_new_outputs();
        sut
    }

    fn apply(mut sut: Sut, _: &bool, step: Step) -> Sut {
        let now = sut.sim.now;
        let opts = JoinOptions::default();
        match step {
            Step::Subscribe { topic, sub } => {
                let before = sut.sim.engine.clone();
                match sut
                    .sim
                    .engine
                    .subscribe(TOPICS[topic], SubscriberId(sub), &opts, now)
                {
                    Ok(_) => {
                        sut.subs.insert((topic, sub));
                    }
                    Err(Error::TooManyTopics { .. }) => {
                        assert_eq!(
                            sut.sim.engine, before,
                            "a refused subscribe changed the engine"
                        );
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Step::Unsubscribe { topic, sub } => {
                let _ = sut
                    .sim
                    .engine
                    .unsubscribe(TOPICS[topic], SubscriberId(sub), now);
                sut.subs.remove(&(topic, sub));
            }
            Step::Switch { room, topic } => {
                let before = sut.sim.engine.clone();
                match sut
                    .sim
                    .engine
                    .switch(RoomId(room), TOPICS[topic], &opts, now)
                {
                    Ok(_) => {
                        sut.requested.insert(room, topic);
                    }
                    Err(Error::TooManyTopics { .. }) => {
                        assert_eq!(
                            sut.sim.engine, before,
                            "a refused switch changed the engine"
                        );
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Step::CloseRoom { room } => {
                let existed = sut.sim.engine.close_room(RoomId(room), now);
                assert_eq!(existed, sut.requested.remove(&room).is_some());
            }
            Step::CloseAll => {
                sut.sim.engine.close_all(now);
                sut.subs.clear();
                sut.requested.clear();
            }
            Step::Input { topic, pick, reply } => sut.input(topic, pick, reply),
            Step::SocketDown => sut.sim.engine.handle_socket_down(now),
            Step::SocketUp => sut.sim.engine.handle_socket_up(now),
            Step::Tick { millis } => sut.sim.advance(Duration::from_millis(millis)),
        }
        sut.sim.drain();
        sut.record_new_outputs();
        sut
    }

    fn check_invariants(sut: &Sut, _: &bool) {
        sut.check();
    }

    fn teardown(mut sut: Sut, _: bool) {
        // Leak check after teardown: close-all leaves nothing at all.
        let now = sut.sim.now;
        sut.sim.engine.close_all(now);
        sut.sim.assert_empty_after_drain();
    }
}

/// Cases per run: 2000, unless `PROPTEST_CASES` says otherwise (the mutation
/// run, which runs this test once per mutant, asks for fewer).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

prop_state_machine! {
    #![proptest_config(PtConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/state_machine.txt"))),
        .. PtConfig::default()
    })]
    #[test]
    fn engine_keeps_its_invariants(sequential 1..60 => EngineTest);
}
