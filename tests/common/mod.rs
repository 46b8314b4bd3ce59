//! A simulated-clock driver for the engine (quinn-proto `Pair` style): it
//! drains every output after every input, audits each one, checks the engine's
//! bookkeeping, and moves time only by jumping to the next deadline.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use channel_registry::engine::audit::{check_structure, Audit};
use channel_registry::engine::{
    Config, Effect, Engine, Event, Handled, JoinOptions, JoinRef, JoinReply, Output, Phase, RoomId,
    SubscriberId, Switched, Trigger,
};

/// An output as polled, with the name of its topic read at that moment (a
/// handle of a removed topic stops naming it after the next input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named<T> {
    pub topic: Option<String>,
    pub item: T,
}

impl<T> Named<T> {
    pub fn is(&self, topic: &str) -> bool {
        self.topic.as_deref() == Some(topic)
    }
}

pub const T: &str = "workflow:6f1c2a7e-0b7e-4c59-9a53-0d3c1e5b8f21:v1";

pub struct Sim {
    pub engine: Engine,
    pub now: Instant,
    pub start: Instant,
    pub effects: Vec<Named<Effect>>,
    pub events: Vec<Named<Event>>,
    /// Every output in order (joins announce a new incarnation).
    pub outputs: Vec<Named<Output>>,
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
            outputs: Vec::new(),
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
            if let Err(v) = self.audit.on_output(&self.engine, &out) {
                panic!("{v}\nengine: {:#?}", self.engine);
            }
            let topic = out.topic().map(|t| {
                self.engine
                    .topic_name(t)
                    .expect("an output's topic has a name")
                    .to_owned()
            });
            self.outputs.push(Named {
                topic: topic.clone(),
                item: out,
            });
            match out {
                Output::Effect(item) => self.effects.push(Named { topic, item }),
                Output::Event(item) => self.events.push(Named { topic, item }),
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
        let h = self
            .engine
            .handle_join_reply(topic, r, JoinReply::Error, self.now);
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

    pub fn take_effects(&mut self) -> Vec<Named<Effect>> {
        std::mem::take(&mut self.effects)
    }

    pub fn take_events(&mut self) -> Vec<Named<Event>> {
        std::mem::take(&mut self.events)
    }

    /// The events seen so far, without their topic names.
    pub fn event_items(&self) -> Vec<Event> {
        self.events.iter().map(|e| e.item).collect()
    }

    /// The last event seen.
    pub fn last_event(&self) -> Option<Event> {
        self.events.last().map(|e| e.item)
    }

    /// The phase changes of `topic` seen so far, as `(from, trigger, to)`; a
    /// new incarnation (its join) shows as `(None, None, Connecting)`.
    pub fn changes(&self, topic: &str) -> Vec<(Option<Phase>, Option<Trigger>, Phase)> {
        self.outputs
            .iter()
            .filter(|o| o.is(topic))
            .filter_map(|o| match o.item {
                Output::Effect(Effect::Join { .. }) => Some((None, None, Phase::Connecting)),
                Output::Event(Event::PhaseChanged {
                    from, trigger, to, ..
                }) => Some((Some(from), Some(trigger), to)),
                _ => None,
            })
            .collect()
    }

    pub fn last_change(&self, topic: &str) -> (Option<Phase>, Option<Trigger>, Phase) {
        *self.changes(topic).last().expect("a phase change")
    }

    /// Effects naming `topic`, rendered short, one step each: a join is
    /// `create 3`, `join 3`; an end is `leave 3` (when it leaves), `destroy 3`.
    pub fn effects_of(&self, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.effects.iter().filter(|e| e.is(topic)) {
            match e.item {
                Effect::Join { join_ref, .. } => {
                    out.push(format!("create {join_ref}"));
                    out.push(format!("join {join_ref}"));
                }
                Effect::StartSettling { join_ref, .. } => out.push(format!("settle {join_ref}")),
                Effect::AbortSettling { join_ref, .. } => out.push(format!("abort {join_ref}")),
                Effect::End {
                    join_ref, leave, ..
                } => {
                    if leave {
                        out.push(format!("leave {join_ref}"));
                    }
                    out.push(format!("destroy {join_ref}"));
                }
                _ => {}
            }
        }
        out
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
