//! Findings about the real engine that the model checker made, kept as
//! regression tests (the fixes are in the engine).

use std::time::Instant;

use channel_registry::engine::{Config, Effect, Engine, JoinOptions, Output, SubscriberId};

fn leaves(engine: &mut Engine) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(o) = engine.poll_output() {
        if let Output::Effect(Effect::End {
            topic, leave: true, ..
        }) = o
        {
            out.push(engine.topic_name(topic).unwrap().to_string());
        }
    }
    out
}

/// Two engines that compare equal (and hash equal) must behave alike: a model
/// checker keeps only one of them. `close_all` (like `handle_socket_up`
/// and `handle_socket_down`) walks topics in slot order, which equality
/// ignores, so equal engines emitted their outputs in different orders; they
/// now walk topics in name order.
#[test]
#[allow(clippy::disallowed_methods)] // any instant will do
fn equal_engines_close_all_in_the_same_order() {
    let now = Instant::now();
    let sub = SubscriberId(1);
    let opts = JoinOptions::default();
    let mut a = Engine::new(Config::default(), now).unwrap();
    let mut b = Engine::new(Config::default(), now).unwrap();
    for e in [&mut a, &mut b] {
        e.handle_socket_up(now);
    }
    // a: t1 in slot 0, t2 in slot 1; t1 leaves; t3 reuses slot 0.
    a.subscribe("t1", sub, &opts, now).unwrap();
    a.subscribe("t2", sub, &opts, now).unwrap();
    a.unsubscribe("t1", sub, now);
    let _ = leaves(&mut a);
    a.subscribe("t3", sub, &opts, now).unwrap();
    // b: t1, t2, t3 in slots 0, 1, 2; t1 leaves.
    b.subscribe("t1", sub, &opts, now).unwrap();
    b.subscribe("t2", sub, &opts, now).unwrap();
    b.subscribe("t3", sub, &opts, now).unwrap();
    b.unsubscribe("t1", sub, now);
    let _ = (leaves(&mut a), leaves(&mut b));
    assert_eq!(a, b, "same topics, refs and phases");
    a.close_all(now);
    b.close_all(now);
    assert_eq!(leaves(&mut a), leaves(&mut b));
}
