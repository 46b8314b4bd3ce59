//! Subscribe and unsubscribe on a live topic allocate nothing, cold and warm,
//! with up to three holders per topic: counted with a global allocator
//! wrapper, over many topics at once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use channel_registry::engine::{
    Config, Effect, Engine, JoinOptions, JoinReply, Limits, Output, SubscriberId, TopicId,
};

struct Counting;

thread_local! {
    /// Allocations made by this thread only: the test harness runs other
    /// tests on other threads at the same time.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An engine with 1 000 active topics, one subscriber each, and their names
/// and handles.
#[allow(clippy::disallowed_methods)] // one base instant; the clock is not read again
fn live_engine() -> (Engine, Instant, Vec<String>, Vec<TopicId>) {
    let now = Instant::now();
    let config = Config {
        limits: Limits {
            max_topics: 10_000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut engine = Engine::new(config, now).unwrap();
    engine.handle_socket_up(now);
    let topics: Vec<String> = (0..1000)
        .map(|i| format!("workflow:{i:08x}-aaaa-bbbb-cccc-dddddddddddd:v1"))
        .collect();
    let opts = JoinOptions::default();
    let mut ids = Vec::new();
    for t in &topics {
        let id = engine
            .subscribe(t, SubscriberId(0), &opts, now)
            .unwrap()
            .topic;
        while let Some(out) = engine.poll_output() {
            if let Output::Effect(Effect::Join { topic, join_ref }) = out {
                engine.handle_join_reply(topic, join_ref, JoinReply::Ok, now);
            }
        }
        ids.push(id);
    }
    while engine.poll_output().is_some() {}
    (engine, now, topics, ids)
}

#[test]
fn subscribe_unsubscribe_on_a_live_topic_does_not_allocate_cold_or_warm() {
    let (mut engine, now, topics, ids) = live_engine();
    let opts = JoinOptions::default();
    // Cold: the first time a second and a third holder come to each topic.
    // Warm: the same again. Up to three holders at once, as a subscriber
    // comes by name and leaves by handle (what the session does).
    for round in ["cold", "warm", "warm again"] {
        let before = allocations();
        for (t, id) in topics.iter().zip(&ids) {
            for who in [SubscriberId(1), SubscriberId(2)] {
                let s = engine.subscribe(t, who, &opts, now).unwrap();
                assert_eq!(s.topic, *id);
                assert!(engine.poll_timeout().is_none());
            }
            for who in [SubscriberId(2), SubscriberId(1)] {
                engine.unsubscribe(*id, who, now);
            }
        }
        let allocated = allocations() - before;
        assert_eq!(
            allocated, 0,
            "{round}: subscribe/unsubscribe allocated {allocated} times"
        );
        assert_eq!(
            engine.queued_outputs(),
            0,
            "no output for a holder change on a live topic"
        );
    }
    assert_eq!(engine.stats().active, 1000);
    assert_eq!(engine.stats().holders, 1000);
}

#[test]
fn engine_is_send_sync_and_model_checkable() {
    fn assert_bounds<T: Send + Sync + Clone + std::hash::Hash + Eq + std::fmt::Debug + 'static>() {}
    assert_bounds::<Engine>();
}
