//! One test per (phase, trigger) pair the table rejects: the engine's one
//! phase-changing function refuses it and changes nothing. (Rows are tested
//! through the public API in `tests/transitions.rs`.)
//!
//! The submodules test what only the crate can reach: the audit's checks on
//! deliberately corrupted engines, equality and hashing against engines that
//! differ in one private field, and the jitter generator.

use std::time::Instant;

use crate::engine::phase::{next, Phase, Phase::*, Trigger, Trigger::*};
use crate::engine::{Config, Engine, IgnoreReason, JoinOptions, JoinReply, SubscriberId};

mod audit;
mod equality;
mod index;
mod rng;

const T: &str = "doc:1:v1";

#[allow(clippy::disallowed_methods)] // one base instant for a simulated clock
fn start() -> Instant {
    Instant::now()
}

/// An engine whose topic `T` is in `phase` (for `Destroyed`: its incarnation
/// was destroyed by a join error and the topic waits to retry).
fn engine_in(phase: Phase) -> Engine {
    let now = start();
    let config = Config {
        settling: phase == Settling,
        ..Config::default()
    };
    let mut e = Engine::new(config, now).unwrap();
    e.handle_socket_up(now);
    e.subscribe(T, SubscriberId(1), &JoinOptions::default(), now)
        .unwrap();
    let r = e.current_join_ref(T).unwrap();
    match phase {
        Connecting => {}
        Settling | Active => {
            e.handle_join_reply(T, r, JoinReply::Ok, now);
        }
        Draining => {
            e.handle_join_reply(T, r, JoinReply::Ok, now);
            e.unsubscribe(T, SubscriberId(1), now);
        }
        Destroyed => {
            e.handle_join_reply(T, r, JoinReply::Error, now);
        }
    }
    while e.poll_output().is_some() {}
    let live = e.topic(T).unwrap().status.phase();
    assert_eq!(live, (phase != Destroyed).then_some(phase));
    e
}

fn check_rejected(phase: Phase, trigger: Trigger) {
    assert_eq!(next(phase, trigger), None);
    let mut e = engine_in(phase);
    let before = e.clone();
    let idx = e.store.find(T).unwrap();
    let result = e.transition(idx, trigger);
    match phase {
        Destroyed => assert_eq!(result, Err(IgnoreReason::Stale { current: None })),
        _ => assert_eq!(result, Err(IgnoreReason::NotApplicable { phase })),
    }
    assert_eq!(e, before, "a rejected pair changed the engine");
}

macro_rules! rejected {
    ($name:ident, $phase:expr, $trigger:expr) => {
        #[test]
        fn $name() {
            check_rejected($phase, $trigger);
        }
    };
}

#[test]
fn rejected_pairs_and_rows_cover_every_pair() {
    let source: String = include_str!("tests.rs").split_whitespace().collect();
    for phase in Phase::ALL {
        for trigger in Trigger::ALL {
            let listed = source.contains(&format!(",{phase:?},{trigger:?});"));
            assert_eq!(
                listed,
                next(phase, trigger).is_none(),
                "{phase:?} {trigger:?}"
            );
        }
    }
}

rejected!(connecting_rejects_settled, Connecting, Settled);
rejected!(connecting_rejects_settle_failed, Connecting, SettleFailed);
rejected!(connecting_rejects_settle_timeout, Connecting, SettleTimeout);
rejected!(connecting_rejects_revive, Connecting, Revive);
rejected!(connecting_rejects_grace_elapsed, Connecting, GraceElapsed);
rejected!(connecting_rejects_evicted, Connecting, Evicted);
rejected!(connecting_rejects_resync, Connecting, Resync);
rejected!(settling_rejects_join_ok, Settling, JoinOk);
rejected!(settling_rejects_join_ok_settling, Settling, JoinOkSettling);
rejected!(settling_rejects_join_error, Settling, JoinError);
rejected!(settling_rejects_join_timeout, Settling, JoinTimeout);
rejected!(settling_rejects_revive, Settling, Revive);
rejected!(settling_rejects_grace_elapsed, Settling, GraceElapsed);
rejected!(settling_rejects_evicted, Settling, Evicted);
rejected!(active_rejects_join_ok, Active, JoinOk);
rejected!(active_rejects_join_ok_settling, Active, JoinOkSettling);
rejected!(active_rejects_join_error, Active, JoinError);
rejected!(active_rejects_join_timeout, Active, JoinTimeout);
rejected!(active_rejects_settled, Active, Settled);
rejected!(active_rejects_settle_failed, Active, SettleFailed);
rejected!(active_rejects_settle_timeout, Active, SettleTimeout);
rejected!(active_rejects_revive, Active, Revive);
rejected!(active_rejects_grace_elapsed, Active, GraceElapsed);
rejected!(active_rejects_evicted, Active, Evicted);
rejected!(draining_rejects_join_ok, Draining, JoinOk);
rejected!(draining_rejects_join_ok_settling, Draining, JoinOkSettling);
rejected!(draining_rejects_join_error, Draining, JoinError);
rejected!(draining_rejects_join_timeout, Draining, JoinTimeout);
rejected!(draining_rejects_settled, Draining, Settled);
rejected!(draining_rejects_settle_failed, Draining, SettleFailed);
rejected!(draining_rejects_settle_timeout, Draining, SettleTimeout);
rejected!(draining_rejects_last_holder_left, Draining, LastHolderLeft);
rejected!(draining_rejects_superseded, Draining, Superseded);
rejected!(draining_rejects_resync, Draining, Resync);
rejected!(destroyed_rejects_join_ok, Destroyed, JoinOk);
rejected!(
    destroyed_rejects_join_ok_settling,
    Destroyed,
    JoinOkSettling
);
rejected!(destroyed_rejects_join_error, Destroyed, JoinError);
rejected!(destroyed_rejects_join_timeout, Destroyed, JoinTimeout);
rejected!(destroyed_rejects_settled, Destroyed, Settled);
rejected!(destroyed_rejects_settle_failed, Destroyed, SettleFailed);
rejected!(destroyed_rejects_settle_timeout, Destroyed, SettleTimeout);
rejected!(
    destroyed_rejects_last_holder_left,
    Destroyed,
    LastHolderLeft
);
rejected!(destroyed_rejects_superseded, Destroyed, Superseded);
rejected!(destroyed_rejects_revive, Destroyed, Revive);
rejected!(destroyed_rejects_grace_elapsed, Destroyed, GraceElapsed);
rejected!(destroyed_rejects_evicted, Destroyed, Evicted);
rejected!(destroyed_rejects_socket_down, Destroyed, SocketDown);
rejected!(destroyed_rejects_server_close, Destroyed, ServerClose);
rejected!(destroyed_rejects_server_error, Destroyed, ServerError);
rejected!(destroyed_rejects_close_all, Destroyed, CloseAll);
rejected!(destroyed_rejects_resync, Destroyed, Resync);
