//! A simulated-clock driver for the engine (quinn-proto `Pair` style): it
//! drains every output after every input, audits each one, checks the engine's
//! bookkeeping, and moves time only by jumping to the next deadline.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use channel_registry::engine::audit::{check_structure, Audit};
use channel_registry::engine::{
    Config, Effect, Engine, Event, Handled, JoinOptions, JoinRef, JoinReply, Output, Phase, RoomId,
    SubscriberId, Switched, Trigger,
};

pub const T: &str = "workflow:6f1c2a7e-0b7e-4c59-9a53-0d3c1e5b8f21:v1";

pub struct Sim {
    pub engine: Engine,
    pub now: Instant,
    pub start: Instant,
    pub effects: Vec<Effect>,
    pub events: Vec<Event>,
    pub audit: Audit,
}

#[allow(clippy::disallowed_methods)] // the simulated clock needs one base instant; nothing reads the clock after
fn base_instant() -> Instant {
    Instant::now()
}

impl Sim {
    /// An engine with the socket up.
    pub fn new(config: Config) -> Sim {
        let now = base_instant();
        let mut sim = Sim {
            engine: Engine::new(config, now).expect("valid config"),
            now,
            start: now,
            effects: Vec::new(),
            events: Vec::new(),
            audit: Audit::new(),
        };
        sim.engine.handle_socket_up(now);
        sim.drain();
        sim
    }

    pub fn with_settling() -> Sim {
        Sim::new(Config {
            settling: true,
            ..Config::default()
        })
    }

    /// Drains every output, auditing each, and checks the engine's bookkeeping.
    pub fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            if let Err(v) = self.audit.on_output(&out) {
                panic!("{v}\nengine: {:#?}", self.engine);
            }
            match out {
                Output::Effect(e) => self.effects.push(e),
                Output::Event(e) => self.events.push(e),
                _ => unreachable!("unknown output"),
            }
        }
        if let Err(v) =
            check_structure(&self.engine).and_then(|()| self.audit.check_against(&self.engine))
        {
            panic!("{v}\nengine: {:#?}", self.engine);
        }
    }

    /// Moves the clock forward by `d`, firing every timer due on the way at
    /// its own deadline.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(at) = self.engine.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        // Tell the engine the time too (nothing is due), so its clock and ours agree.
        self.now = target;
        self.engine.handle_timeout(target);
        self.drain();
    }

    /// Jumps from deadline to deadline until no timer is armed; fails on a
    /// livelock (more than `max_steps` timers).
    pub fn run_timers(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            let Some(at) = self.engine.poll_timeout() else {
                return;
            };
            self.now = self.now.max(at);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        panic!(
            "timers still armed after {max_steps} steps: {:#?}",
            self.engine
        );
    }

    pub fn sub(&mut self, topic: &str, id: u64) {
        self.engine
            .subscribe(topic, SubscriberId(id), &JoinOptions::default(), self.now)
            .expect("subscribe");
        self.drain();
    }

    pub fn unsub(&mut self, topic: &str, id: u64) {
        let _ = self.engine.unsubscribe(topic, SubscriberId(id), self.now);
        self.drain();
    }

    pub fn switch(&mut self, room: u64, topic: &str) -> Switched {
        let r = self
            .engine
            .switch(RoomId(room), topic, &JoinOptions::default(), self.now)
            .expect("switch");
        self.drain();
        r
    }

    pub fn join_ref(&self, topic: &str) -> JoinRef {
        self.engine
            .current_join_ref(topic)
            .unwrap_or_else(|| panic!("{topic} has no incarnation: {:#?}", self.engine))
    }

    pub fn phase(&self, topic: &str) -> Option<Phase> {
        self.engine.topic(topic).and_then(|t| t.status.phase())
    }

    pub fn join_ok(&mut self, topic: &str) -> Handled {
        let r = self.join_ref(topic);
        self.join_ok_for(topic, r)
    }

    pub fn join_ok_for(&mut self, topic: &str, r: JoinRef) -> Handled {
        let h = self
            .engine
            .handle_join_reply(topic, r, JoinReply::Ok, self.now);
        self.drain();
        h
    }

    pub fn join_error(&mut self, topic: &str) -> Handled {
        let r = self.join_ref(topic);
        let h = self.engine.handle_join_reply(
            topic,
            r,
            JoinReply::Error(Some(Arc::from("unauthorized"))),
            self.now,
        );
        self.drain();
        h
    }

    pub fn settled(&mut self, topic: &str) -> Handled {
        let r = self.join_ref(topic);
        let h = self.engine.handle_settled(topic, r, self.now);
        self.drain();
        h
    }

    pub fn close(&mut self, topic: &str) -> Handled {
        let r = self.join_ref(topic);
        let h = self.engine.handle_close(topic, r, self.now);
        self.drain();
        h
    }

    pub fn crash(&mut self, topic: &str) -> Handled {
        let r = self.join_ref(topic);
        let h = self.engine.handle_error(topic, r, self.now);
        self.drain();
        h
    }

    pub fn socket_down(&mut self) {
        self.engine.handle_socket_down(self.now);
        self.drain();
    }

    pub fn socket_up(&mut self) {
        self.engine.handle_socket_up(self.now);
        self.drain();
    }

    /// Subscribes `id` to `topic` and answers its join (and settling) at once.
    pub fn active(&mut self, topic: &str, id: u64) {
        self.sub(topic, id);
        if self.phase(topic) == Some(Phase::Connecting) {
            self.join_ok(topic);
        }
        if self.phase(topic) == Some(Phase::Settling) {
            self.settled(topic);
        }
        assert_eq!(self.phase(topic), Some(Phase::Active));
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The phase changes of `topic` seen so far, as `(from, trigger, to)`.
    pub fn changes(&self, topic: &str) -> Vec<(Option<Phase>, Option<Trigger>, Phase)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::PhaseChanged {
                    topic: t,
                    from,
                    trigger,
                    to,
                    ..
                } if &**t == topic => Some((*from, *trigger, *to)),
                _ => None,
            })
            .collect()
    }

    pub fn last_change(&self, topic: &str) -> (Option<Phase>, Option<Trigger>, Phase) {
        *self.changes(topic).last().expect("a phase change")
    }

    /// Effects naming `topic`, rendered short: `join 3`, `leave 3`, `create 3`...
    pub fn effects_of(&self, topic: &str) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|e| {
                let (kind, t, r) = match e {
                    Effect::Join {
                        topic, join_ref, ..
                    } => ("join", topic, join_ref),
                    Effect::Leave { topic, join_ref } => ("leave", topic, join_ref),
                    Effect::CreateResources { topic, join_ref } => ("create", topic, join_ref),
                    Effect::StartSettling { topic, join_ref } => ("settle", topic, join_ref),
                    Effect::AbortSettling { topic, join_ref } => ("abort", topic, join_ref),
                    Effect::DestroyResources { topic, join_ref } => ("destroy", topic, join_ref),
                    _ => return None,
                };
                (&**t == topic).then(|| format!("{kind} {r}"))
            })
            .collect()
    }

    /// Drains, then asserts nothing is left (the drain consumes the final
    /// `TopicRemoved` events).
    pub fn assert_empty_after_drain(&mut self) {
        self.drain();
        self.assert_empty();
    }

    /// Nothing left at all: no topic, room, timer, queued output or resource.
    pub fn assert_empty(&self) {
        let stats = self.engine.stats();
        assert!(stats.is_empty(), "left over: {stats:?}\n{:#?}", self.engine);
        assert_eq!(self.engine.poll_timeout(), None);
        assert_eq!(self.audit.live_resources(), 0, "resources not destroyed");
    }
}
