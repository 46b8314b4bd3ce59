//! The churn workloads shared by the criterion benchmarks and the side-by-side
//! comparison with phoenix.js: `n` live topics (each active with one
//! subscriber) in the background, and one operation at a time on top.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use channel_registry::engine::{
    Config, Engine, JoinOptions, JoinReply, Limits, RoomId, SubscriberId,
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

pub struct Workload {
    pub engine: Engine,
    now: Instant,
    live: Vec<String>,
    /// Which live topics operations hit, in order: spread over the whole
    /// table, either a working set of [`HOT`] topics or all of them.
    order: Vec<u32>,
    cursor: usize,
    fresh: Vec<String>,
    next_fresh: usize,
    opts: JoinOptions,
}

const GRACE: Duration = Duration::from_secs(2);

/// Size of the hot working set: the topics an application touches at a time,
/// while the rest of the `n` stay live in the background.
pub const HOT: usize = 1024;

#[allow(clippy::disallowed_methods)] // benchmarks need one base instant; the engine never reads a clock
fn base() -> Instant {
    Instant::now()
}

impl Workload {
    /// `n` live active topics; operations on live topics go to a working set
    /// of [`HOT`] of them (`uniform`: to all of them, which mostly measures
    /// memory latency once the table outgrows the caches).
    pub fn new(n: usize, uniform: bool) -> Workload {
        let live: Vec<String> = (0..n as u64).map(|i| topic(i, 1)).collect();
        let (engine, now) = Workload::engine_with(&live);
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
        let fresh = (0..4096u64).map(|i| topic(u64::MAX / 2 + i, 2)).collect();
        Workload {
            engine,
            now,
            live,
            order,
            cursor: 0,
            fresh,
            next_fresh: 0,
            opts: JoinOptions::default(),
        }
    }

    /// An engine holding every topic in `live`, each active with one subscriber.
    pub fn engine_with(live: &[String]) -> (Engine, Instant) {
        let now = base();
        let config = Config {
            limits: Limits {
                max_topics: usize::MAX,
                ..Limits::default()
            },
            drain_grace: GRACE,
            ..Config::default()
        };
        let mut engine = Engine::new(config, now).expect("valid config");
        engine.handle_socket_up(now);
        let opts = JoinOptions::default();
        for t in live {
            engine
                .subscribe(t, SubscriberId(0), &opts, now)
                .expect("subscribe");
            let r = engine.current_join_ref(t).expect("joining");
            engine.handle_join_reply(t, r, JoinReply::Ok, now);
            while engine.poll_output().is_some() {}
        }
        (engine, now)
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

    fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            black_box(out);
        }
    }

    /// A second subscriber comes and goes on a live topic.
    pub fn sub_unsub(&mut self) {
        let i = self.next_live();
        let t = &self.live[i];
        let r = self
            .engine
            .subscribe(t, SubscriberId(1), &self.opts, self.now);
        black_box(r.is_ok());
        black_box(self.engine.unsubscribe(t, SubscriberId(1), self.now));
    }

    /// New topic → connecting → active → last unsubscribe → draining → grace
    /// elapsed → destroyed, with every output drained.
    pub fn lifecycle(&mut self) {
        let i = self.next_fresh();
        let t = &self.fresh[i];
        let _ = self
            .engine
            .subscribe(t, SubscriberId(1), &self.opts, self.now);
        let r = self.engine.current_join_ref(t).expect("joining");
        self.engine.handle_join_reply(t, r, JoinReply::Ok, self.now);
        self.engine.unsubscribe(t, SubscriberId(1), self.now);
        self.now += GRACE;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    /// A room switches to the next version: the new one connects and becomes
    /// active, the room shows it, the old one drains and is destroyed.
    pub fn switch(&mut self) {
        let i = self.next_fresh();
        let t = &self.fresh[i];
        let _ = self.engine.switch(RoomId(1), t, &self.opts, self.now);
        let r = self.engine.current_join_ref(t).expect("joining");
        self.engine.handle_join_reply(t, r, JoinReply::Ok, self.now);
        self.now += GRACE;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    /// The only subscriber of a live topic leaves and comes back within the
    /// grace period: draining → active, no rejoin.
    pub fn revive(&mut self) {
        let i = self.next_live();
        let t = &self.live[i];
        self.engine.unsubscribe(t, SubscriberId(0), self.now);
        let _ = self
            .engine
            .subscribe(t, SubscriberId(0), &self.opts, self.now);
        self.drain();
    }
}
