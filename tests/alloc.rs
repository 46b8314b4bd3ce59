//! Subscribe and unsubscribe on a live topic allocate nothing once warm:
//! counted with a global allocator wrapper, over many topics at once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use channel_registry::engine::{Config, Engine, JoinOptions, JoinReply, Limits, SubscriberId};

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

#[test]
#[allow(clippy::disallowed_methods)] // one base instant; the clock is not read again
fn subscribe_unsubscribe_on_a_live_topic_does_not_allocate_once_warm() {
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
    for t in &topics {
        engine.subscribe(t, SubscriberId(0), &opts, now).unwrap();
        let r = engine.current_join_ref(t).unwrap();
        engine.handle_join_reply(t, r, JoinReply::Ok, now);
    }
    while engine.poll_output().is_some() {}
    let churn = |engine: &mut Engine| {
        for (i, t) in topics.iter().enumerate() {
            let who = SubscriberId(1 + i as u64 % 3);
            engine.subscribe(t, who, &opts, now).unwrap();
            engine.unsubscribe(t, who, now);
        }
    };
    churn(&mut engine); // warm: spill each holder list once
    let before = allocations();
    for _ in 0..10 {
        churn(&mut engine);
    }
    let allocated = allocations() - before;
    assert_eq!(
        allocated, 0,
        "subscribe/unsubscribe allocated {allocated} times"
    );
    assert_eq!(
        engine.queued_outputs(),
        0,
        "no output for a holder change on a live topic"
    );
    assert_eq!(engine.stats().active, 1000);
}

#[test]
fn engine_is_send_sync_and_model_checkable() {
    fn assert_bounds<T: Send + Sync + Clone + std::hash::Hash + Eq + std::fmt::Debug + 'static>() {}
    assert_bounds::<Engine>();
}
