//! Canonical equality and hashing see every part of the state: engines that
//! differ in exactly one thing compare unequal and (with overwhelming
//! likelihood, checked for these cases) hash differently, and equal engines
//! built along different histories hash alike.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::start;
use crate::engine::output::{Event, FailReason, Output};
use crate::engine::store::Status;
use crate::engine::{Config, Engine, JoinOptions, JoinReply, RoomId, SubscriberId};

const A: &str = "doc:a";
const B: &str = "doc:b";

fn hash_of(e: &Engine) -> u64 {
    let mut h = DefaultHasher::new();
    e.hash(&mut h);
    h.finish()
}

fn untimed_hash_of(e: &Engine) -> u64 {
    let mut h = DefaultHasher::new();
    e.hash_untimed(&mut h);
    h.finish()
}

fn drain(e: &mut Engine) {
    while e.poll_output().is_some() {}
}

/// An engine with `A` active (subscriber 1) and `B` connecting (subscriber
/// 2), outputs drained.
fn base(now: Instant) -> Engine {
    let mut e = Engine::new(Config::default(), now).unwrap();
    e.handle_socket_up(now);
    let opts = JoinOptions::default();
    e.subscribe(A, SubscriberId(1), &opts, now).unwrap();
    let r = e.current_join_ref(A).unwrap();
    e.handle_join_reply(A, r, JoinReply::Ok, now);
    e.subscribe(B, SubscriberId(2), &opts, now).unwrap();
    drain(&mut e);
    e
}

/// `a` and `b` differ: unequal both ways, and their hashes differ.
fn assert_differ(a: &Engine, b: &Engine, what: &str) {
    assert_ne!(a, b, "engines that differ in {what} compare equal");
    assert_ne!(b, a, "engines that differ in {what} compare equal");
    assert_ne!(hash_of(a), hash_of(b), "{what} is not hashed");
}

fn assert_same(a: &Engine, b: &Engine) {
    assert_eq!(a, b);
    assert_eq!(hash_of(a), hash_of(b), "equal engines hash differently");
    assert_eq!(untimed_hash_of(a), untimed_hash_of(b));
}

#[test]
fn a_clone_is_equal_and_hashes_alike() {
    let e = base(start());
    assert_same(&e, &e.clone());
}

#[test]
fn engines_differing_only_in_the_clock_are_unequal_but_alike_untimed() {
    let now = start();
    let a = base(now);
    let mut b = a.clone();
    b.handle_timeout(now + Duration::from_millis(1));
    assert_differ(&a, &b, "now");
    assert_eq!(untimed_hash_of(&a), untimed_hash_of(&b));
}

#[test]
fn engines_differing_only_in_the_ref_counter_are_unequal() {
    let a = base(start());
    let mut b = a.clone();
    b.mint_ref();
    assert_differ(&a, &b, "last_ref");
    assert_ne!(untimed_hash_of(&a), untimed_hash_of(&b));
}

#[test]
fn engines_differing_only_in_the_jitter_generator_are_unequal() {
    let a = base(start());
    let mut b = a.clone();
    b.rng.next_u64();
    assert_differ(&a, &b, "the rng state");
    assert_ne!(untimed_hash_of(&a), untimed_hash_of(&b));
}

#[test]
fn engines_differing_only_in_the_socket_or_config_are_unequal() {
    let a = base(start());
    let mut b = a.clone();
    b.socket_up = false;
    assert_differ(&a, &b, "socket_up");
    let mut c = a.clone();
    c.config = Arc::new(Config {
        seed: 1,
        ..Config::default()
    });
    assert_ne!(a, c, "engines that differ in config compare equal");
}

#[test]
fn engines_differing_only_in_one_holder_are_unequal() {
    let now = start();
    let a = base(now);
    let mut b = a.clone();
    let opts = JoinOptions::default();
    b.subscribe(A, SubscriberId(3), &opts, now).unwrap();
    let mut c = a.clone();
    c.subscribe(A, SubscriberId(4), &opts, now).unwrap();
    assert_differ(&b, &c, "one holder");
    assert_differ(&a, &b, "the number of holders");
}

#[test]
fn engines_differing_only_in_one_topic_field_are_unequal() {
    let a = base(start());
    let idx = a.store.find(A).unwrap();
    let connecting = a.store.find(B).unwrap();

    let mut b = a.clone();
    b.store.get_mut(idx).attempts += 1;
    assert_differ(&a, &b, "attempts");

    let mut b = a.clone();
    b.store.get_mut(idx).settling = true;
    assert_differ(&a, &b, "settling");

    let mut b = a.clone();
    let params = b.store.params.intern(Some(&Arc::from("{\"v\":2}")));
    b.store.get_mut(idx).params = params;
    assert_differ(&a, &b, "params");

    // Status alone (no timer either way).
    let mut b = a.clone();
    let mut c = a.clone();
    b.store.get_mut(idx).status = Status::Failed(FailReason::JoinRejected);
    c.store.get_mut(idx).status = Status::Failed(FailReason::JoinTimeout);
    assert_differ(&b, &c, "status");

    // Deadline alone: same timer kind, another instant.
    let mut b = a.clone();
    b.store.get_mut(connecting).deadline += 1;
    assert_differ(&a, &b, "a deadline");
    assert_eq!(
        untimed_hash_of(&a),
        untimed_hash_of(&b),
        "the untimed hash sees only whether a timer is armed"
    );
}

#[test]
fn engines_differing_only_in_one_room_are_unequal() {
    let now = start();
    let mut a = base(now);
    let opts = JoinOptions::default();
    a.switch(RoomId(1), A, &opts, now).unwrap();
    a.switch(RoomId(1), B, &opts, now).unwrap();
    drain(&mut a);
    // The same holders, the room's two topics the other way round.
    let mut b = a.clone();
    let room = b.rooms.get_mut(&RoomId(1)).unwrap();
    std::mem::swap(&mut room.shown, &mut room.pending);
    assert_differ(&a, &b, "what a room shows");
    // Another room id.
    let mut c = a.clone();
    let r = c.rooms.remove(&RoomId(1)).unwrap();
    c.rooms.insert(RoomId(2), r);
    assert_differ(&a, &c, "a room's id");
    // One room more.
    let mut d = a.clone();
    d.rooms.insert(RoomId(3), Default::default());
    assert_differ(&a, &d, "the number of rooms");
}

#[test]
fn engines_differing_only_in_queued_outputs_are_unequal() {
    let now = start();
    let mut a = base(now);
    let opts = JoinOptions::default();
    a.subscribe("doc:c", SubscriberId(1), &opts, now).unwrap();
    let b = a.clone();
    assert!(a.queued_outputs() > 0);
    assert_same(&a, &b);
    let mut c = a.clone();
    let id = c.topic_id(A).unwrap();
    c.outputs.pop_back();
    c.outputs
        .push_back(Output::Event(Event::TopicRemoved { topic: id }));
    assert_differ(&a, &c, "one output");
    let mut d = a.clone();
    d.outputs.pop_back();
    assert_differ(&a, &d, "the number of outputs");
}

#[test]
fn equal_engines_with_different_slot_layouts_hash_alike() {
    let now = start();
    let opts = JoinOptions::default();
    let build = |first: &str, second: &str| {
        let mut e = Engine::new(Config::default(), now).unwrap();
        e.handle_socket_up(now);
        e.subscribe("doc:tmp", SubscriberId(9), &opts, now).unwrap();
        e.unsubscribe("doc:tmp", SubscriberId(9), now);
        drain(&mut e);
        e.handle_timeout(now);
        for t in [first, second] {
            e.subscribe(t, SubscriberId(1), &opts, now).unwrap();
        }
        e
    };
    let a = build(A, B);
    let b = build(B, A);
    assert_ne!(
        a.topic_id(A).unwrap().index(),
        b.topic_id(A).unwrap().index(),
        "the layouts should differ for this test to mean anything"
    );
    // Join refs were minted in another order: equalise them by name.
    let mut b = b;
    for t in [A, B] {
        let (ia, ib) = (a.store.find(t).unwrap(), b.store.find(t).unwrap());
        b.store.get_mut(ib).status = a.store.get(ia).status;
    }
    b.outputs.clear();
    let mut a = a;
    a.outputs.clear();
    assert_same(&a, &b);
}

#[test]
fn debug_output_names_topics_and_state() {
    let e = base(start());
    let text = format!("{e:?}");
    for part in [A, B, "now_ns", "socket_up: true", "last_ref: 2"] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
}
