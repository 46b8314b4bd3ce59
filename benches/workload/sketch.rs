//! The baseline: a minimal engine doing the same work as the real one on the
//! same workloads, driven the same way. A hash map from topic name to
//! `{phase, subscribers, join_ref}`, a `Vec` of outputs with a read index,
//! and a `VecDeque` of grace timers. It has no settling, retries, rooms,
//! limits, params, validation, resources or stale-input reporting; a room
//! switch is "subscribe the new version, and once it is active unsubscribe
//! the old one".

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use super::{base, names, visit_order, GRACE};

const CONNECTING: u8 = 0;
const ACTIVE: u8 = 1;
const DRAINING: u8 = 2;

struct Entry {
    phase: u8,
    subscribers: SmallVec<[u32; 4]>,
    join_ref: u64,
}

/// What the sketch asks its driver to do.
#[derive(Clone, Debug)]
pub enum SketchOutput {
    Join { topic: Arc<str>, join_ref: u64 },
    Leave { topic: Arc<str>, join_ref: u64 },
}

pub struct Sketch {
    topics: HashMap<Arc<str>, Entry, FxBuildHasher>,
    outputs: Vec<SketchOutput>,
    read: usize,
    grace: VecDeque<(Instant, Arc<str>, u64)>,
    last_ref: u64,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            topics: HashMap::with_hasher(FxBuildHasher),
            outputs: Vec::new(),
            read: 0,
            grace: VecDeque::new(),
            last_ref: 0,
        }
    }
}

impl Sketch {
    pub fn subscribe(&mut self, topic: &str, sub: u32) {
        if let Some(e) = self.topics.get_mut(topic) {
            if !e.subscribers.contains(&sub) {
                e.subscribers.push(sub);
            }
            if e.phase == DRAINING {
                e.phase = ACTIVE;
            }
            return;
        }
        self.last_ref += 1;
        let topic: Arc<str> = Arc::from(topic);
        let mut subscribers = SmallVec::new();
        subscribers.push(sub);
        self.topics.insert(
            topic.clone(),
            Entry {
                phase: CONNECTING,
                subscribers,
                join_ref: self.last_ref,
            },
        );
        self.outputs.push(SketchOutput::Join {
            topic,
            join_ref: self.last_ref,
        });
    }

    pub fn join_ok(&mut self, topic: &str, join_ref: u64) {
        if let Some(e) = self.topics.get_mut(topic) {
            if e.join_ref == join_ref && e.phase == CONNECTING {
                e.phase = ACTIVE;
            }
        }
    }

    pub fn unsubscribe(&mut self, topic: &str, sub: u32, now: Instant) {
        let Some((name, e)) = self.topics.get_key_value_mut(topic) else {
            return;
        };
        let Some(pos) = e.subscribers.iter().position(|s| *s == sub) else {
            return;
        };
        e.subscribers.swap_remove(pos);
        if !e.subscribers.is_empty() {
            return;
        }
        if e.phase == ACTIVE {
            e.phase = DRAINING;
            self.grace
                .push_back((now + GRACE, name.clone(), e.join_ref));
        } else {
            let join_ref = e.join_ref;
            let (topic, _) = self.topics.remove_entry(topic).expect("present");
            self.outputs.push(SketchOutput::Leave { topic, join_ref });
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.grace.front() {
            if *at > now {
                return;
            }
            let (_, topic, join_ref) = self.grace.pop_front().expect("present");
            let expired = self
                .topics
                .get(&topic)
                .is_some_and(|e| e.phase == DRAINING && e.join_ref == join_ref);
            if expired {
                let (topic, _) = self.topics.remove_entry(&topic).expect("present");
                self.outputs.push(SketchOutput::Leave { topic, join_ref });
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.grace.front().map(|(at, _, _)| *at)
    }

    pub fn poll_output(&mut self) -> Option<SketchOutput> {
        let Some(out) = self.outputs.get(self.read) else {
            self.outputs.clear();
            self.read = 0;
            return None;
        };
        self.read += 1;
        Some(out.clone())
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }
}

/// What a driver keeps of one drain: the last join (topic and ref).
fn drain(s: &mut Sketch) -> Option<(Arc<str>, u64)> {
    let mut join = None;
    while let Some(out) = s.poll_output() {
        if let SketchOutput::Join { topic, join_ref } = &out {
            join = Some((topic.clone(), *join_ref));
        }
        black_box(out);
    }
    black_box(s.poll_timeout());
    join
}

/// The same workloads as [`super::Workload`], on the sketch.
pub struct SketchWorkload {
    pub sketch: Sketch,
    now: Instant,
    live: Vec<String>,
    order: Vec<u32>,
    cursor: usize,
    fresh: Vec<String>,
    next_fresh: usize,
    /// The version a room shows (the sketch has no rooms: the switch holds
    /// it with a subscriber of its own).
    shown: Option<usize>,
}

const ROOM: u32 = u32::MAX;

impl SketchWorkload {
    pub fn new(n: usize, uniform: bool) -> SketchWorkload {
        let (live, fresh) = names(n);
        let (sketch, now) = SketchWorkload::sketch_with(&live);
        SketchWorkload {
            sketch,
            now,
            live,
            order: visit_order(n, uniform),
            cursor: 0,
            fresh,
            next_fresh: 0,
            shown: None,
        }
    }

    pub fn sketch_with(live: &[String]) -> (Sketch, Instant) {
        let now = base();
        let mut s = Sketch::default();
        for t in live {
            s.subscribe(t, 0);
            let (topic, r) = drain(&mut s).expect("a join");
            s.join_ok(&topic, r);
        }
        (s, now)
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

    pub fn sub_unsub(&mut self) {
        let i = self.next_live();
        self.sketch.subscribe(&self.live[i], 1);
        drain(&mut self.sketch);
        self.sketch.unsubscribe(&self.live[i], 1, self.now);
        drain(&mut self.sketch);
    }

    pub fn lifecycle(&mut self) {
        let i = self.next_fresh();
        self.sketch.subscribe(&self.fresh[i], 1);
        let (topic, r) = drain(&mut self.sketch).expect("a join");
        self.sketch.join_ok(&topic, r);
        drain(&mut self.sketch);
        self.sketch.unsubscribe(&self.fresh[i], 1, self.now);
        drain(&mut self.sketch);
        self.now += GRACE;
        self.sketch.handle_timeout(self.now);
        drain(&mut self.sketch);
    }

    pub fn switch(&mut self) {
        let i = self.next_fresh();
        self.sketch.subscribe(&self.fresh[i], ROOM);
        let (topic, r) = drain(&mut self.sketch).expect("a join");
        self.sketch.join_ok(&topic, r);
        if let Some(old) = self.shown.replace(i) {
            self.sketch.unsubscribe(&self.fresh[old], ROOM, self.now);
        }
        drain(&mut self.sketch);
        self.now += GRACE;
        self.sketch.handle_timeout(self.now);
        drain(&mut self.sketch);
    }

    pub fn revive(&mut self) {
        let i = self.next_live();
        self.sketch.unsubscribe(&self.live[i], 0, self.now);
        drain(&mut self.sketch);
        self.sketch.subscribe(&self.live[i], 0);
        drain(&mut self.sketch);
    }
}
