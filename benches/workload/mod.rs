//! The churn workloads shared by the criterion benchmarks and the side-by-side
//! comparison with phoenix.js: `n` live topics (each active with one
//! subscriber) in the background, and one operation at a time on top.
//!
//! Each operation is driven the way a real driver drives the engine, no more
//! and no less: after every input it drains every output (taking the join_ref
//! of a new incarnation from its `Join` output) and asks `poll_timeout`, and
//! it names topics by the handles the engine handed out (a subscription keeps
//! the handle `subscribe` returned; a driver maps a join reply's ref to the
//! handle of the `Join` it sent). [`sketch`] is the baseline: a minimal engine
//! doing the same work the same way.
#![allow(dead_code)]

pub mod sketch;

use std::hint::black_box;
use std::time::{Duration, Instant};

use channel_registry::engine::{
    Config, Effect, Engine, JoinOptions, JoinRef, JoinReply, Limits, Output, RoomId, SubscriberId,
    TopicId,
};

/// `workflow:<uuid>:v<n>` from a counter: realistic length and shape, no
/// randomness needed.
pub fn topic(doc: u64, version: u64) -> String {
    let h = doc.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "workflow:{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}:v{version}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 12) & 0xfff,
        doc
    )
}

/// The drain grace both engines use.
pub const GRACE: Duration = Duration::from_secs(2);

/// Size of the hot working set: the topics an application touches at a time,
/// while the rest of the `n` stay live in the background.
pub const HOT: usize = 1024;

/// Fresh topic names cycled through by `lifecycle` and `switch`.
pub const FRESH: usize = 4096;

#[allow(clippy::disallowed_methods)] // benchmarks need one base instant; the engine never reads a clock
pub fn base() -> Instant {
    Instant::now()
}

/// The order in which operations visit live topics: a working set of
/// [`HOT`] topics spread over the whole table, or all of them (`uniform`).
pub fn visit_order(n: usize, uniform: bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    if !uniform {
        order.truncate(HOT);
    }
    order
}

/// The names of the `n` live topics and of the fresh ring.
pub fn names(n: usize) -> (Vec<String>, Vec<String>) {
    let live = (0..n as u64).map(|i| topic(i, 1)).collect();
    let fresh = (0..FRESH as u64)
        .map(|i| topic(u64::MAX / 2 + i, 2))
        .collect();
    (live, fresh)
}

/// The engine configuration of the benchmarks: defaults, no topic limit.
pub fn config() -> Config {
    Config {
        limits: Limits {
            max_topics: usize::MAX,
            ..Limits::default()
        },
        drain_grace: GRACE,
        ..Config::default()
    }
}

/// What a driver keeps of one drain: the last `Join` it saw.
fn drain(engine: &mut Engine) -> Option<(TopicId, JoinRef)> {
    let mut join = None;
    while let Some(out) = engine.poll_output() {
        if let Output::Effect(Effect::Join { topic, join_ref }) = out {
            join = Some((topic, join_ref));
        }
        black_box(out);
    }
    black_box(engine.poll_timeout());
    join
}

pub struct Workload {
    pub engine: Engine,
    now: Instant,
    live: Vec<String>,
    /// The handle of each live topic (what its subscription holds).
    live_ids: Vec<TopicId>,
    order: Vec<u32>,
    cursor: usize,
    fresh: Vec<String>,
    next_fresh: usize,
    opts: JoinOptions,
}

impl Workload {
    /// `n` live active topics; operations on live topics go to a working set
    /// of [`HOT`] of them (`uniform`: to all of them, which mostly measures
    /// memory latency once the table outgrows the caches).
    pub fn new(n: usize, uniform: bool) -> Workload {
        let (live, fresh) = names(n);
        let (engine, now, live_ids) = Workload::engine_with(&live);
        Workload {
            engine,
            now,
            live,
            live_ids,
            order: visit_order(n, uniform),
            cursor: 0,
            fresh,
            next_fresh: 0,
            opts: JoinOptions::default(),
        }
    }

    /// An engine holding every topic in `live`, each active with one
    /// subscriber, and their handles.
    pub fn engine_with(live: &[String]) -> (Engine, Instant, Vec<TopicId>) {
        let now = base();
        let mut engine = Engine::new(config(), now).expect("valid config");
        engine.handle_socket_up(now);
        let opts = JoinOptions::default();
        let mut ids = Vec::with_capacity(live.len());
        for t in live {
            engine
                .subscribe(t, SubscriberId(0), &opts, now)
                .expect("subscribe");
            let (id, r) = drain(&mut engine).expect("a join");
            engine.handle_join_reply(id, r, JoinReply::Ok, now);
            drain(&mut engine);
            ids.push(id);
        }
        (engine, now, ids)
    }

    fn next_live(&mut self) -> usize {
        let i = self.order[self.cursor] as usize;
        self.cursor = (self.cursor + 1) % self.order.len();
        i
    }

    fn next_fresh(&mut self) -> usize {
        let i = self.next_fresh;
        self.next_fresh = (self.next_fresh + 1) % self.fresh.len();
        i
    }

    /// A second subscriber comes (by name) and goes (by the handle its
    /// subscribe returned) on a live topic.
    pub fn sub_unsub(&mut self) {
        let i = self.next_live();
        let sub = self
            .engine
            .subscribe(&self.live[i], SubscriberId(1), &self.opts, self.now)
            .expect("subscribe");
        drain(&mut self.engine);
        black_box(
            self.engine
                .unsubscribe(sub.topic, SubscriberId(1), self.now),
        );
        drain(&mut self.engine);
    }

    /// New topic → connecting → active → last unsubscribe → draining → grace
    /// elapsed → destroyed.
    pub fn lifecycle(&mut self) {
        let i = self.next_fresh();
        let _ = self
            .engine
            .subscribe(&self.fresh[i], SubscriberId(1), &self.opts, self.now);
        let (id, r) = drain(&mut self.engine).expect("a join");
        self.engine
            .handle_join_reply(id, r, JoinReply::Ok, self.now);
        drain(&mut self.engine);
        self.engine.unsubscribe(id, SubscriberId(1), self.now);
        drain(&mut self.engine);
        self.now += GRACE;
        self.engine.handle_timeout(self.now);
        drain(&mut self.engine);
    }

    /// A room switches to the next version: the new one connects and becomes
    /// active, the room shows it, the old one drains and is destroyed.
    pub fn switch(&mut self) {
        let i = self.next_fresh();
        let _ = self
            .engine
            .switch(RoomId(1), &self.fresh[i], &self.opts, self.now);
        let (id, r) = drain(&mut self.engine).expect("a join");
        self.engine
            .handle_join_reply(id, r, JoinReply::Ok, self.now);
        drain(&mut self.engine);
        self.now += GRACE;
        self.engine.handle_timeout(self.now);
        drain(&mut self.engine);
    }

    /// The only subscriber of a live topic leaves and comes back within the
    /// grace period: draining → active, no rejoin.
    pub fn revive(&mut self) {
        let i = self.next_live();
        self.engine
            .unsubscribe(self.live_ids[i], SubscriberId(0), self.now);
        drain(&mut self.engine);
        let _ = self
            .engine
            .subscribe(&self.live[i], SubscriberId(0), &self.opts, self.now);
        drain(&mut self.engine);
    }
}
