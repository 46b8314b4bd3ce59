//! One test per row of the phase table, each driving the real engine through
//! its public inputs into the row's `from` phase and applying the input that
//! carries the row's trigger. (Rejected pairs are tested inside the crate,
//! where the table lookup can be called directly: see `engine::tests`.)

mod common;

use std::time::Duration;

use channel_registry::engine::{Config, Phase, Phase::*, Trigger, Trigger::*, TRANSITIONS};
use common::{Sim, T};

const OTHER: &str = "workflow:6f1c2a7e-0b7e-4c59-9a53-0d3c1e5b8f21:v2";

fn connecting(settling: bool) -> Sim {
    let mut sim = Sim::new(Config {
        settling,
        ..Config::default()
    });
    sim.sub(T, 1);
    assert_eq!(sim.phase(T), Some(Connecting));
    sim
}

fn settling() -> Sim {
    let mut sim = connecting(true);
    sim.join_ok(T);
    assert_eq!(sim.phase(T), Some(Settling));
    sim
}

fn active() -> Sim {
    let mut sim = connecting(false);
    sim.join_ok(T);
    assert_eq!(sim.phase(T), Some(Active));
    sim
}

fn draining() -> Sim {
    let mut sim = active();
    sim.unsub(T, 1);
    assert_eq!(sim.phase(T), Some(Draining));
    sim
}

/// A room waits for `T` (in `phase`), then switches on to `OTHER`.
fn superseded_while(phase: Phase) -> Sim {
    let mut sim = Sim::new(Config {
        settling: phase == Settling,
        ..Config::default()
    });
    sim.switch(1, T);
    if phase == Settling {
        sim.join_ok(T);
    }
    assert_eq!(sim.phase(T), Some(phase));
    sim.switch(1, OTHER);
    sim
}

fn assert_row(sim: &Sim, from: Phase, trigger: Trigger, to: Phase) {
    assert!(TRANSITIONS.contains(&(from, trigger, to)), "not a row");
    if trigger == Trigger::Resync {
        // A resync leaves the broken incarnation and joins a new one at once.
        let changes = sim.changes(T);
        assert_eq!(changes.last(), Some(&(None, None, Phase::Connecting)));
        assert_eq!(changes[changes.len() - 2], (Some(from), Some(trigger), to));
        let effects = sim.effects_of(T);
        let tail: Vec<&str> = effects[effects.len() - 4..]
            .iter()
            .map(|e| e.split(' ').next().unwrap())
            .collect();
        assert_eq!(tail, ["leave", "destroy", "create", "join"]);
        return;
    }
    assert_eq!(sim.last_change(T), (Some(from), Some(trigger), to));
    if to == Destroyed {
        assert!(sim.effects_of(T).last().unwrap().starts_with("destroy"));
    } else {
        assert_eq!(sim.phase(T), Some(to));
    }
}

macro_rules! row {
    ($name:ident, $from:expr, $trigger:expr, $to:expr, |$sim:ident| $setup:expr, $act:expr) => {
        #[test]
        #[allow(unused_mut, clippy::no_effect)]
        fn $name() {
            let mut $sim = $setup;
            $act;
            assert_row(&$sim, $from, $trigger, $to);
        }
    };
}

row!(
    connecting_join_ok_settling,
    Connecting,
    JoinOkSettling,
    Settling,
    |s| connecting(true),
    s.join_ok(T)
);
row!(
    connecting_join_ok,
    Connecting,
    JoinOk,
    Active,
    |s| connecting(false),
    s.join_ok(T)
);
row!(
    connecting_join_error,
    Connecting,
    JoinError,
    Destroyed,
    |s| connecting(false),
    s.join_error(T)
);
row!(
    connecting_join_timeout,
    Connecting,
    JoinTimeout,
    Destroyed,
    |s| connecting(false),
    s.advance(Duration::from_secs(10))
);
row!(
    connecting_socket_down,
    Connecting,
    SocketDown,
    Destroyed,
    |s| connecting(false),
    s.socket_down()
);
row!(
    connecting_server_close,
    Connecting,
    ServerClose,
    Destroyed,
    |s| connecting(false),
    s.close(T)
);
row!(
    connecting_server_error,
    Connecting,
    ServerError,
    Destroyed,
    |s| connecting(false),
    s.crash(T)
);
row!(
    connecting_last_holder_left,
    Connecting,
    LastHolderLeft,
    Destroyed,
    |s| connecting(false),
    s.unsub(T, 1)
);
row!(
    connecting_superseded,
    Connecting,
    Superseded,
    Destroyed,
    |s| superseded_while(Connecting),
    ()
);
row!(
    connecting_close_all,
    Connecting,
    CloseAll,
    Destroyed,
    |s| connecting(false),
    {
        s.engine.close_all(s.now);
        s.drain()
    }
);

row!(
    settling_settled,
    Settling,
    Settled,
    Active,
    |s| settling(),
    s.settled(T)
);
row!(
    settling_settle_failed,
    Settling,
    SettleFailed,
    Destroyed,
    |s| settling(),
    {
        let r = s.join_ref(T);
        s.engine.handle_settle_failed(T, r, s.now);
        s.drain()
    }
);
row!(
    settling_settle_timeout,
    Settling,
    SettleTimeout,
    Destroyed,
    |s| settling(),
    s.advance(Duration::from_secs(10))
);
row!(
    settling_socket_down,
    Settling,
    SocketDown,
    Destroyed,
    |s| settling(),
    s.socket_down()
);
row!(
    settling_server_close,
    Settling,
    ServerClose,
    Destroyed,
    |s| settling(),
    s.close(T)
);
row!(
    settling_server_error,
    Settling,
    ServerError,
    Destroyed,
    |s| settling(),
    s.crash(T)
);
row!(
    settling_last_holder_left,
    Settling,
    LastHolderLeft,
    Destroyed,
    |s| settling(),
    s.unsub(T, 1)
);
row!(
    settling_superseded,
    Settling,
    Superseded,
    Destroyed,
    |s| superseded_while(Settling),
    ()
);
row!(
    settling_close_all,
    Settling,
    CloseAll,
    Destroyed,
    |s| settling(),
    {
        s.engine.close_all(s.now);
        s.drain()
    }
);

row!(
    active_last_holder_left,
    Active,
    LastHolderLeft,
    Draining,
    |s| active(),
    s.unsub(T, 1)
);
row!(
    active_superseded,
    Active,
    Superseded,
    Draining,
    |s| {
        let mut s = Sim::new(Config::default());
        s.switch(1, T);
        s.join_ok(T);
        s.switch(1, OTHER);
        assert_eq!(
            s.phase(T),
            Some(Active),
            "shown until the new topic is active"
        );
        s
    },
    s.join_ok(OTHER)
);
row!(
    active_socket_down,
    Active,
    SocketDown,
    Destroyed,
    |s| active(),
    s.socket_down()
);
row!(
    active_server_close,
    Active,
    ServerClose,
    Destroyed,
    |s| active(),
    s.close(T)
);
row!(
    active_server_error,
    Active,
    ServerError,
    Destroyed,
    |s| active(),
    s.crash(T)
);
row!(
    active_close_all,
    Active,
    CloseAll,
    Destroyed,
    |s| active(),
    {
        s.engine.close_all(s.now);
        s.drain()
    }
);

row!(
    draining_revive,
    Draining,
    Revive,
    Active,
    |s| draining(),
    s.sub(T, 2)
);
row!(
    draining_grace_elapsed,
    Draining,
    GraceElapsed,
    Destroyed,
    |s| draining(),
    s.advance(Duration::from_secs(2))
);
row!(
    draining_evicted,
    Draining,
    Evicted,
    Destroyed,
    |s| {
        let mut s = Sim::new(Config {
            limits: channel_registry::engine::Limits {
                max_topics: 1,
                ..Default::default()
            },
            ..Config::default()
        });
        s.active(T, 1);
        s.unsub(T, 1);
        s
    },
    s.sub(OTHER, 2)
);
row!(
    draining_socket_down,
    Draining,
    SocketDown,
    Destroyed,
    |s| draining(),
    s.socket_down()
);
row!(
    draining_server_close,
    Draining,
    ServerClose,
    Destroyed,
    |s| draining(),
    s.close(T)
);
row!(
    draining_server_error,
    Draining,
    ServerError,
    Destroyed,
    |s| draining(),
    s.crash(T)
);
row!(
    draining_close_all,
    Draining,
    CloseAll,
    Destroyed,
    |s| draining(),
    {
        s.engine.close_all(s.now);
        s.drain()
    }
);

row!(
    settling_resync,
    Settling,
    Resync,
    Destroyed,
    |s| settling(),
    {
        let r = s.join_ref(T);
        s.engine.handle_resync(T, r, s.now);
        s.drain()
    }
);
row!(active_resync, Active, Resync, Destroyed, |s| active(), {
    let r = s.join_ref(T);
    s.engine.handle_resync(T, r, s.now);
    s.drain()
});

/// The macro list above covers the table exactly.
#[test]
fn every_row_has_a_test() {
    let source: String = include_str!("transitions.rs").split_whitespace().collect();
    for (from, trigger, _) in TRANSITIONS {
        let needle = format!("{from:?},{trigger:?},");
        assert!(
            source.contains(&needle),
            "no test for {from:?} on {trigger:?}"
        );
    }
    assert_eq!(TRANSITIONS.len(), 34);
}
