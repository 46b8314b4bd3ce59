//! The session against a simulated Phoenix server, driven by random
//! sequences of application commands, server actions and clock jumps.
//!
//! After every step: the engine's bookkeeping is consistent
//! (`check_structure`) and the session's observable contract holds — every
//! push frame carries the join_ref of its topic's joined incarnation, as the
//! session was told it and as the server holds it; every push gets at most
//! one outcome; subscription and room events follow their grammar; messages
//! reach only the subscriptions and rooms of the incarnation that sent them.
//! At quiescence (the server answers everything, the socket is allowed back,
//! the timers run out): every subscription is joined or ended with a reason,
//! every room shows the topic it last asked for or reports it failed, every
//! push got its outcome, and the server holds no channel nobody wants.

#[path = "common/session_sim/mod.rs"]
mod session_sim;

use std::time::Duration;

use channel_registry::engine::audit::check_quiescent;
use channel_registry::engine::{Config as EngineConfig, Phase, RoomId, SubscriberId, TopicStatus};
use channel_registry::session::{
    ConnectionState, OverflowPolicy, PushOptions, PushTarget, ReconnectPolicy, SessionConfig,
    ShownStatus, SubscribeOptions,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;
use session_sim::contract::SubTrack;
use session_sim::server::{JoinAnswer, StalePushes};
use session_sim::{Connects, Sim};

const TOPICS: [&str; 4] = ["room:a", "room:b", "presence:p", "fail:x"];

#[derive(Clone, Copy, Debug)]
enum Target {
    Sub(u64),
    Room(u64),
    Topic(usize),
}

#[derive(Clone, Debug)]
enum Step {
    // The application.
    Subscribe {
        sub: u64,
        topic: usize,
        presence: bool,
    },
    Unsubscribe {
        sub: u64,
    },
    Switch {
        room: u64,
        topic: usize,
    },
    CloseRoom {
        room: u64,
    },
    Push {
        target: Target,
        event: &'static str,
        settling: bool,
        timeout_ms: Option<u64>,
    },
    Cast {
        target: Target,
    },
    CloseAll,
    Reconnect,
    // The server.
    Pause,
    Resume,
    Crash(usize),
    Stop(usize),
    ServerPush(usize),
    Broadcast(usize),
    PresenceJoin(usize),
    PresenceLeave(usize),
    LateClose(usize),
    RejectNextJoin(usize),
    // The network.
    DropSocket,
    Close(u16),
    Heartbeats(bool),
    ConnectsAs(Connects),
    // The clock.
    Advance(u64),
    NextDeadline,
}

fn topic() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0usize), 3 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => (1u64..=4).prop_map(Target::Sub),
        1 => (1u64..=2).prop_map(Target::Room),
        1 => topic().prop_map(Target::Topic),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let app = prop_oneof![
        6 => (1u64..=4, topic(), prop::bool::weighted(0.3))
            .prop_map(|(sub, topic, presence)| Step::Subscribe { sub, topic, presence }),
        3 => (1u64..=4).prop_map(|sub| Step::Unsubscribe { sub }),
        3 => (1u64..=2, topic()).prop_map(|(room, topic)| Step::Switch { room, topic }),
        1 => (1u64..=2).prop_map(|room| Step::CloseRoom { room }),
        6 => (
            target(),
            prop::sample::select(&["echo", "echo", "error", "noreply", "broadcast", "boom"][..]),
            prop::bool::weighted(0.2),
            prop_oneof![3 => Just(None), 1 => (1u64..4_000).prop_map(Some)],
        )
            .prop_map(|(target, event, settling, timeout_ms)| Step::Push { target, event, settling, timeout_ms }),
        2 => target().prop_map(|target| Step::Cast { target }),
        1 => Just(Step::CloseAll),
        1 => Just(Step::Reconnect),
    ];
    let server = prop_oneof![
        2 => Just(Step::Pause),
        3 => Just(Step::Resume),
        2 => topic().prop_map(Step::Crash),
        1 => topic().prop_map(Step::Stop),
        2 => topic().prop_map(Step::ServerPush),
        2 => topic().prop_map(Step::Broadcast),
        1 => Just(Step::PresenceJoin(2)),
        1 => Just(Step::PresenceLeave(2)),
        1 => topic().prop_map(Step::LateClose),
        1 => topic().prop_map(Step::RejectNextJoin),
    ];
    let network = prop_oneof![
        2 => Just(Step::DropSocket),
        1 => prop::sample::select(&[1000u16, 1012][..]).prop_map(Step::Close),
        1 => any::<bool>().prop_map(Step::Heartbeats),
        1 => prop::sample::select(&[Connects::Accept, Connects::Accept, Connects::Refuse, Connects::Hang, Connects::Kick(1011)][..])
            .prop_map(Step::ConnectsAs),
    ];
    let clock = prop_oneof![
        3 => (1u64..3_000).prop_map(Step::Advance),
        2 => Just(Step::NextDeadline),
    ];
    prop_oneof![10 => app, 5 => server, 2 => network, 4 => clock]
}

/// The scenario's knobs.
#[derive(Clone, Debug)]
struct Setup {
    seed: u64,
    stale: StalePushes,
    overflow: OverflowPolicy,
    settling: bool,
    /// Whether the server pushes `sync` right after each join's reply; if
    /// not, topics settle only when a server step pushes it, so pushes meet
    /// topics that settle.
    sync_on_join: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<u64>(),
        prop::sample::select(&[StalePushes::Drop, StalePushes::HandToCurrent][..]),
        prop::sample::select(&[OverflowPolicy::DropOldest, OverflowPolicy::RejectNew][..]),
        prop::bool::weighted(0.25),
        any::<bool>(),
    )
        .prop_map(|(seed, stale, overflow, settling, sync_on_join)| Setup {
            seed,
            stale,
            overflow,
            settling,
            sync_on_join,
        })
}

fn config(setup: &Setup) -> SessionConfig {
    let ms = Duration::from_millis;
    let engine = EngineConfig {
        join_timeout: ms(2000),
        settle_timeout: ms(1500),
        drain_grace: ms(500),
        rejoin_backoff: vec![ms(100), ms(300)],
        max_attempts: 3,
        settling: setup.settling,
        ..EngineConfig::default()
    };
    let config = SessionConfig::new("ws://sim.test/socket")
        .with_seed(setup.seed)
        .with_engine(engine)
        .with_heartbeat_interval(ms(1000))
        .with_connect_timeout(ms(1000))
        .with_push_timeout(ms(3000))
        .with_push_buffer(3, setup.overflow)
        .with_reconnect(ReconnectPolicy {
            backoff: vec![ms(10), ms(50), ms(200)],
            max_attempts: Some(8),
            ..ReconnectPolicy::default()
        });
    if setup.settling {
        config.with_settle_on_event("sync")
    } else {
        config
    }
}

/// What the scenario asked for, beside the contract's books.
#[derive(Default)]
struct Asked {
    pushes: u64,
    /// The last topic each room was switched to (accepted).
    rooms: std::collections::BTreeMap<u64, Option<String>>,
}

fn push_target(target: Target) -> PushTarget {
    match target {
        Target::Sub(id) => PushTarget::Subscription(SubscriberId(id)),
        Target::Room(id) => PushTarget::Room(RoomId(id)),
        Target::Topic(t) => PushTarget::Topic(TOPICS[t].into()),
    }
}

fn apply(sim: &mut Sim, asked: &mut Asked, step: &Step) {
    let ms = Duration::from_millis;
    match *step {
        Step::Subscribe {
            sub,
            topic,
            presence,
        } => {
            let options = SubscribeOptions::default().with_presence(presence);
            let _ = sim.subscribe_with(sub, TOPICS[topic], options);
        }
        Step::Unsubscribe { sub } => {
            sim.unsubscribe(sub);
        }
        Step::Switch { room, topic } => {
            if sim.session.room_state(RoomId(room)).is_none() {
                let _ = sim.open_room(room);
                asked.rooms.insert(room, None);
            }
            if sim.switch(room, TOPICS[topic]).is_ok() {
                asked.rooms.insert(room, Some(TOPICS[topic].to_owned()));
            }
        }
        Step::CloseRoom { room } => {
            sim.close_room(room);
            asked.rooms.remove(&room);
        }
        Step::Push {
            target,
            event,
            settling,
            timeout_ms,
        } => {
            asked.pushes += 1;
            let options = PushOptions {
                settling,
                timeout: timeout_ms.map(ms),
            };
            let payload = json!({ "n": asked.pushes, "settling": settling });
            let _ = sim.push_with(asked.pushes, push_target(target), event, payload, options);
        }
        Step::Cast { target } => {
            let _ = sim.cast(push_target(target), "echo", json!({}));
        }
        Step::CloseAll => {
            sim.close_all();
            asked.rooms.clear();
        }
        Step::Reconnect => sim.reconnect(),
        Step::Pause => sim.server.paused = true,
        Step::Resume => {
            sim.server.paused = false;
            sim.drain();
        }
        Step::Crash(t) => {
            sim.on_server(|s| s.crash(TOPICS[t]));
        }
        Step::Stop(t) => {
            sim.on_server(|s| s.stop(TOPICS[t]));
        }
        Step::ServerPush(t) => {
            sim.on_server(|s| {
                s.push_to(TOPICS[t], "news", json!({"pushed": true}));
                s.push_to(TOPICS[t], "sync", json!({}));
            });
        }
        Step::Broadcast(t) => {
            sim.on_server(|s| s.broadcast(TOPICS[t], "news", json!({"broadcast": true})));
        }
        Step::PresenceJoin(t) => sim.on_server(|s| s.presence_join(TOPICS[t], "bob")),
        Step::PresenceLeave(t) => sim.on_server(|s| s.presence_leave(TOPICS[t], "bob")),
        Step::LateClose(t) => {
            sim.on_server(|s| s.late_close(TOPICS[t]));
        }
        Step::RejectNextJoin(t) => sim
            .server
            .answer_joins(TOPICS[t], [JoinAnswer::Reject("not now".to_owned())]),
        Step::DropSocket => sim.drop_socket(),
        Step::Close(code) => sim.server_close(code),
        Step::Heartbeats(on) => sim.server.answer_heartbeats = on,
        Step::ConnectsAs(mode) => sim.connects = mode,
        Step::Advance(n) => sim.advance(ms(n)),
        Step::NextDeadline => {
            sim.next_deadline();
        }
    }
}

fn violations(sim: &Sim) -> Vec<String> {
    sim.contract
        .violations
        .iter()
        .chain(&sim.server.violations)
        .cloned()
        .collect()
}

/// Lets everything settle: the server answers, connections are accepted,
/// a socket down for good is reconnected (as an application would), and
/// the timers run out.
fn quiesce(sim: &mut Sim) {
    sim.server.paused = false;
    sim.server.answer_heartbeats = true;
    sim.server.sync_on_join = true;
    sim.connects = Connects::Accept;
    sim.open_hanging();
    sim.drain();
    if matches!(
        sim.session.connection_state(),
        ConnectionState::Disconnected(_) | ConnectionState::Idle
    ) {
        sim.reconnect();
    }
    // Topics waiting to settle are told so.
    sim.on_server(|s| {
        for topic in TOPICS {
            s.push_to(topic, "sync", json!({}));
        }
    });
    sim.advance(Duration::from_secs(30));
}

fn check_quiescence(sim: &Sim, asked: &Asked) -> Result<(), String> {
    if sim.session.connection_state() != ConnectionState::Connected {
        return Err(format!(
            "not connected: {:?}",
            sim.session.connection_state()
        ));
    }
    check_quiescent(sim.session.engine()).map_err(|v| v.to_string())?;
    let stats = sim.session.stats();
    if stats.pushes_buffered + stats.pushes_in_flight > 0 {
        return Err(format!("pushes left: {stats:?}"));
    }
    for (id, push) in &sim.contract.pushes {
        if push.accepted && push.outcomes.len() != 1 {
            return Err(format!("push {id:?} has {} outcomes", push.outcomes.len()));
        }
    }
    for (id, sub) in &sim.contract.subs {
        match &sub.state {
            SubTrack::Closed(_) => {}
            SubTrack::Joined { join_ref } => {
                let state = sim.session.subscription_state(*id);
                let fine = state
                    .as_ref()
                    .is_some_and(|s| s.is_active() && s.join_ref() == Some(*join_ref));
                if !fine {
                    return Err(format!(
                        "{id:?} was told joined {join_ref} but is {state:?}"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "{id:?} on {:?} is left {other:?}: {:?}",
                    sub.topic, sub.events
                ))
            }
        }
    }
    for (room, last) in &asked.rooms {
        let Some(last) = last else { continue };
        let closed = sim
            .contract
            .rooms
            .get(&RoomId(*room))
            .is_some_and(|r| r.closed.is_some());
        if closed {
            continue;
        }
        let state = sim.session.room_state(RoomId(*room));
        let shows_last = state.as_ref().is_some_and(|s| {
            s.shown.as_deref() == Some(last.as_str()) && s.shown_status == ShownStatus::Live
        });
        let reports_failed = state.as_ref().is_some_and(|s| {
            s.failed.as_ref().is_some_and(|(t, _)| **t == **last)
                || (s.shown.as_deref() == Some(last.as_str())
                    && matches!(s.shown_status, ShownStatus::Failed(_)))
        });
        if !shows_last && !reports_failed {
            return Err(format!("room {room} asked for {last:?} and is {state:?}"));
        }
    }
    let listing = sim.session.topics();
    for (topic, join_ref) in sim.server.channels() {
        let wanted = listing.iter().any(|t| {
            *t.topic == *topic
                && t.subscriptions + t.rooms > 0
                && matches!(t.status, TopicStatus::Live { join_ref: j, phase: Phase::Active } if j.to_string() == join_ref)
        });
        if !wanted {
            return Err(format!(
                "the server holds {topic:?}/{join_ref} for nobody: {listing:?}"
            ));
        }
    }
    for t in &listing {
        if let TopicStatus::Live { join_ref, .. } = t.status {
            if sim.server.channel(&t.topic) != Some(join_ref.to_string().as_str()) {
                return Err(format!(
                    "{:?} is live as {join_ref} but the server has {:?}",
                    t.topic,
                    sim.server.channel(&t.topic)
                ));
            }
        }
    }
    Ok(())
}

fn run(setup: &Setup, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(config(setup));
    sim.server.stale_pushes = setup.stale;
    if setup.settling {
        sim.server.sync_on_join = setup.sync_on_join;
        sim.contract.settle_event = Some("sync".to_owned());
    }
    sim.connect();
    let mut asked = Asked::default();
    for (i, step) in steps.iter().enumerate() {
        apply(&mut sim, &mut asked, step);
        let v = violations(&sim);
        prop_assert!(v.is_empty(), "after step {i} {step:?}:\n{v:#?}");
    }
    quiesce(&mut sim);
    let v = violations(&sim);
    prop_assert!(v.is_empty(), "while quiescing:\n{v:#?}");
    if let Err(why) = check_quiescence(&sim, &asked) {
        return Err(TestCaseError::fail(format!("at quiescence: {why}")));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/session_props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_session_keeps_its_contract_against_a_phoenix_server(
        setup in setup(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        run(&setup, &steps)?;
    }
}
