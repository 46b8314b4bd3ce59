//! The audit has teeth: each kind of corruption, planted in an otherwise
//! healthy engine or fed as a forged output, is reported with its invariant.

use super::start;
use crate::engine::audit::{check_quiescent, check_structure, Audit, Violation};
use crate::engine::ids::{JoinRef, TopicId};
use crate::engine::output::{Effect, Event, FailReason, Output};
use crate::engine::phase::{Phase, Trigger};
use crate::engine::rooms::Room;
use crate::engine::store::{ParamsId, Status, NEVER};
use crate::engine::{Config, Engine, JoinOptions, JoinReply, RoomId, SubscriberId};

const T: &str = "doc:1";
const U: &str = "doc:2";

/// A healthy engine: `T` active with subscribers 1 and 2 and params, `U`
/// connecting; every output fed to an audit, which is returned along.
fn healthy() -> (Engine, Audit) {
    let now = start();
    let mut e = Engine::new(Config::default(), now).unwrap();
    e.handle_socket_up(now);
    let opts = JoinOptions::with_params("{\"v\":1}");
    e.subscribe(T, SubscriberId(1), &opts, now).unwrap();
    e.subscribe(T, SubscriberId(2), &opts, now).unwrap();
    let r = e.current_join_ref(T).unwrap();
    e.handle_join_reply(T, r, JoinReply::Ok, now);
    e.subscribe(U, SubscriberId(1), &JoinOptions::default(), now)
        .unwrap();
    let mut audit = Audit::new();
    while let Some(o) = e.poll_output() {
        audit.on_output(&e, &o).unwrap();
    }
    check_structure(&e).unwrap();
    audit.check_against(&e).unwrap();
    (e, audit)
}

fn idx(e: &Engine, topic: &str) -> u32 {
    e.store.find(topic).unwrap()
}

/// Asserts `result` is a violation of `invariant` whose message has `needle`.
#[track_caller]
fn assert_violation(result: Result<(), Violation>, invariant: u8, needle: &str) {
    match result {
        Err(v) => {
            assert_eq!(v.invariant, invariant, "{v}");
            assert!(v.message.contains(needle), "{v}: no {needle:?}");
            assert!(v.to_string().contains(&format!("invariant {invariant}")));
        }
        Ok(()) => panic!("the corruption went unnoticed ({needle})"),
    }
}

// --- check_structure ------------------------------------------------------------------

#[test]
fn a_missing_timer_is_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, U);
    e.store.disarm(i);
    assert_violation(check_structure(&e), 0, "with timer");
}

#[test]
fn a_timer_where_none_belongs_is_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, T);
    let at = e.store.get(idx(&e, U)).deadline;
    e.store.arm(i, at, crate::engine::store::Lane::Join);
    assert_violation(check_structure(&e), 0, "with timer");
}

#[test]
fn a_timer_not_in_its_queue_is_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, U);
    e.store.get_mut(i).deadline += 1;
    assert_violation(check_structure(&e), 0, "not in the timer set");
}

#[test]
fn a_retry_timer_not_in_its_queue_is_reported() {
    let (mut e, _) = healthy();
    let now = e.last_input;
    let r = e.current_join_ref(U).unwrap();
    e.handle_error(U, r, now);
    assert_eq!(e.store.get(idx(&e, U)).status, Status::Backoff);
    check_structure(&e).unwrap();
    let i = idx(&e, U);
    e.store.get_mut(i).deadline += 1;
    assert_violation(check_structure(&e), 0, "not in the timer set");
}

#[test]
fn a_miscounted_timer_is_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, U);
    let entry = e.store.get_mut(i);
    entry.status = Status::Failed(FailReason::JoinTimeout);
    entry.deadline = NEVER;
    assert_violation(check_structure(&e), 0, "timers vs");
}

#[test]
fn holders_out_of_order_or_repeated_are_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, T);
    e.store.get_mut(i).holders.reverse();
    assert_violation(check_structure(&e), 1, "sorted set");
    let (mut e, _) = healthy();
    let i = idx(&e, T);
    let first = e.store.get(i).holders[0];
    e.store.get_mut(i).holders[1] = first;
    assert_violation(check_structure(&e), 1, "sorted set");
}

#[test]
fn a_draining_topic_with_holders_or_a_live_one_without_is_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, T);
    e.store.get_mut(i).holders.clear();
    assert_violation(check_structure(&e), 7, "0 holders");
}

#[test]
fn a_live_topic_on_a_dead_socket_is_reported() {
    let (mut e, _) = healthy();
    e.socket_up = false;
    assert_violation(check_structure(&e), 2, "socket is down");
}

#[test]
fn a_join_ref_never_minted_is_reported() {
    let (mut e, _) = healthy();
    e.last_ref = 1;
    assert_violation(check_structure(&e), 0, "never minted");
}

#[test]
fn params_not_interned_as_used_are_reported() {
    let (mut e, _) = healthy();
    let i = idx(&e, T);
    e.store.get_mut(i).params = ParamsId::NONE;
    assert_violation(check_structure(&e), 0, "join params");
}

#[test]
fn a_room_holder_without_its_room_is_reported() {
    let (mut e, _) = healthy();
    let now = e.last_input;
    e.switch(RoomId(5), T, &JoinOptions::with_params("{\"v\":1}"), now)
        .unwrap();
    check_structure(&e).unwrap();
    e.rooms.remove(&RoomId(5));
    assert_violation(check_structure(&e), 1, "without showing or awaiting");
}

#[test]
fn a_room_that_does_not_hold_its_topic_is_reported() {
    let (mut e, _) = healthy();
    let id = e.topic_id(T).unwrap();
    e.rooms.insert(
        RoomId(9),
        Room {
            shown: Some(id),
            pending: None,
        },
    );
    assert_violation(check_structure(&e), 8, "without holding it");
    let (mut e, _) = healthy();
    let id = e.topic_id(U).unwrap();
    e.rooms.insert(
        RoomId(9),
        Room {
            shown: None,
            pending: Some(id),
        },
    );
    assert_violation(check_structure(&e), 8, "without holding it");
}

#[test]
fn a_room_awaiting_what_it_shows_is_reported() {
    let (mut e, _) = healthy();
    let now = e.last_input;
    e.switch(RoomId(5), T, &JoinOptions::with_params("{\"v\":1}"), now)
        .unwrap();
    let room = e.rooms.get_mut(&RoomId(5)).unwrap();
    room.pending = room.shown;
    assert_violation(check_structure(&e), 8, "awaits the topic it shows");
}

// --- check_quiescent ------------------------------------------------------------------

#[test]
fn quiescence_with_a_joining_or_unheld_topic_is_a_leak() {
    let (e, _) = healthy();
    assert_violation(check_quiescent(&e), 7, U);
    let (mut e, _) = healthy();
    let now = e.last_input;
    e.unsubscribe(U, SubscriberId(1), now);
    check_quiescent(&e).unwrap();
    let i = idx(&e, T);
    e.store.get_mut(i).holders.clear();
    assert_violation(check_quiescent(&e), 7, "0 holders");
}

#[test]
fn quiescence_is_not_judged_while_the_socket_is_down() {
    let (mut e, _) = healthy();
    e.socket_up = false;
    check_quiescent(&e).unwrap();
}

#[test]
fn quiescence_with_a_room_awaiting_a_topic_that_did_not_fail_is_a_leak() {
    let (mut e, _) = healthy();
    let now = e.last_input;
    let opts = JoinOptions::with_params("{\"v\":1}");
    e.switch(RoomId(5), T, &opts, now).unwrap();
    e.switch(RoomId(5), U, &JoinOptions::default(), now)
        .unwrap();
    // Make `U` look served, so only the room is wrong.
    let i = idx(&e, U);
    e.store.disarm(i);
    e.store.get_mut(i).status = Status::Failed(FailReason::JoinRejected);
    check_quiescent(&e).unwrap();
    let r = e.current_join_ref(T).unwrap();
    e.store.get_mut(i).status = Status::Live {
        join_ref: r,
        phase: Phase::Active,
    };
    assert_violation(check_quiescent(&e), 8, "still awaits");
}

// --- Audit ----------------------------------------------------------------------------

fn ids(e: &Engine) -> (TopicId, JoinRef, TopicId, JoinRef) {
    (
        e.topic_id(T).unwrap(),
        e.current_join_ref(T).unwrap(),
        e.topic_id(U).unwrap(),
        e.current_join_ref(U).unwrap(),
    )
}

fn phase_changed(topic: TopicId, join_ref: JoinRef, from: Phase, trigger: Trigger) -> Output {
    Output::Event(Event::PhaseChanged {
        topic,
        join_ref,
        from,
        to: crate::engine::phase::next(from, trigger).unwrap_or(Phase::Draining),
        trigger,
    })
}

#[test]
fn a_change_that_is_not_a_row_is_reported() {
    let (e, mut audit) = healthy();
    let (_, _, u, ur) = ids(&e);
    let forged = Output::Event(Event::PhaseChanged {
        topic: u,
        join_ref: ur,
        from: Phase::Connecting,
        to: Phase::Draining,
        trigger: Trigger::JoinOk,
    });
    assert_violation(audit.on_output(&e, &forged), 5, "is not a row");
}

#[test]
fn a_change_from_the_wrong_phase_is_reported() {
    let (e, mut audit) = healthy();
    let (t, tr, _, _) = ids(&e);
    let forged = phase_changed(t, tr, Phase::Connecting, Trigger::JoinOk);
    assert_violation(audit.on_output(&e, &forged), 5, "but was");
}

#[test]
fn a_change_of_an_unknown_incarnation_is_reported() {
    let (e, mut audit) = healthy();
    let (t, _, _, ur) = ids(&e);
    // `U`'s incarnation, but named with `T`'s handle.
    let forged = phase_changed(t, ur, Phase::Connecting, Trigger::JoinOk);
    assert_violation(audit.on_output(&e, &forged), 6, "without resources");
}

#[test]
fn a_second_incarnation_is_reported() {
    let (mut e, mut audit) = healthy();
    let (_, _, u, ur) = ids(&e);
    let fresh = JoinRef::new(e.mint_ref()).unwrap();
    let forged = Output::Effect(Effect::Join {
        topic: u,
        join_ref: fresh,
    });
    assert_violation(audit.on_output(&e, &forged), 2, "second live incarnation");
    let again = Output::Effect(Effect::Join {
        topic: u,
        join_ref: ur,
    });
    assert_violation(audit.on_output(&e, &again), 2, "second live incarnation");
}

#[test]
fn a_join_ref_reused_by_another_topic_is_reported() {
    let (e, _) = healthy();
    let (t, tr, u, _) = ids(&e);
    let mut audit = Audit::new();
    let join = |topic| {
        Output::Effect(Effect::Join {
            topic,
            join_ref: tr,
        })
    };
    audit.on_output(&e, &join(t)).unwrap();
    assert_violation(audit.on_output(&e, &join(u)), 2, "second live incarnation");
}

#[test]
fn resources_destroyed_twice_are_reported() {
    let (mut e, mut audit) = healthy();
    let now = e.last_input;
    e.unsubscribe(U, SubscriberId(1), now);
    let mut end = None;
    while let Some(o) = e.poll_output() {
        audit.on_output(&e, &o).unwrap();
        if matches!(o, Output::Effect(Effect::End { .. })) {
            end = Some(o);
        }
    }
    assert_eq!(Audit::new().finished(), 0);
    assert_eq!(audit.finished(), 1);
    let end = end.expect("the incarnation ended");
    assert_violation(audit.on_output(&e, &end), 6, "unexpected effect");
}

#[test]
fn resource_effects_in_the_wrong_phase_are_reported() {
    let (e, audit) = healthy();
    let (_, _, u, ur) = ids(&e);
    for effect in [
        Effect::StartSettling {
            topic: u,
            join_ref: ur,
        },
        Effect::AbortSettling {
            topic: u,
            join_ref: ur,
        },
        Effect::End {
            topic: u,
            join_ref: ur,
            leave: true,
            removed: false,
        },
    ] {
        assert_violation(
            audit.clone().on_output(&e, &Output::Effect(effect)),
            6,
            "unexpected effect",
        );
    }
}

#[test]
fn an_output_naming_an_unknown_handle_is_reported() {
    let (e, mut audit) = healthy();
    let forged = Output::Event(Event::TopicRemoved {
        topic: TopicId::new(77, 0),
    });
    assert_violation(audit.on_output(&e, &forged), 0, "cannot name");
}

#[test]
fn the_audit_and_the_engine_disagreeing_is_reported() {
    let (e, audit) = healthy();
    assert_eq!(audit.live_resources(), 2);
    // The engine has incarnations the audit never saw.
    assert_violation(Audit::new().check_against(&e), 5, "audit has None");
    // The audit holds one the engine ended unseen.
    let mut ended = e.clone();
    let now = ended.last_input;
    ended.unsubscribe(U, SubscriberId(1), now);
    assert_violation(audit.check_against(&ended), 6, "hold resources");
    // The audit missed a phase change.
    let mut joined = e.clone();
    let ur = joined.current_join_ref(U).unwrap();
    joined.handle_join_reply(U, ur, JoinReply::Ok, now);
    assert_violation(audit.check_against(&joined), 5, "is active in the engine");
}
