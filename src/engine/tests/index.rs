//! The topic index tells topics apart by name, not by their 32-bit hash.

use super::start;
use crate::engine::store::hash32;
use crate::engine::{Config, Engine, JoinOptions, SubscriberId};

/// Two names whose 32-bit index hashes collide (found by search).
const TWINS: [&str; 2] = ["doc:45104", "doc:49012"];

#[test]
fn topics_whose_hashes_collide_stay_apart() {
    assert_eq!(
        hash32(TWINS[0]),
        hash32(TWINS[1]),
        "the index hash changed: find two new names that collide"
    );
    let now = start();
    let mut e = Engine::new(Config::default(), now).unwrap();
    e.handle_socket_up(now);
    let opts = JoinOptions::default();
    let a = e.subscribe(TWINS[0], SubscriberId(1), &opts, now).unwrap();
    assert_eq!(e.topic_id(TWINS[1]), None);
    let b = e.subscribe(TWINS[1], SubscriberId(2), &opts, now).unwrap();
    assert!(a.newly_added && b.newly_added);
    assert_ne!(a.topic, b.topic);
    assert_eq!(e.topic_id(TWINS[0]), Some(a.topic));
    assert_eq!(e.topic_id(TWINS[1]), Some(b.topic));
    e.unsubscribe(TWINS[0], SubscriberId(1), now);
    assert_eq!(e.topic_id(TWINS[0]), None);
    assert_eq!(e.topic_id(TWINS[1]), Some(b.topic));
    crate::engine::audit::check_structure(&e).unwrap();
}
