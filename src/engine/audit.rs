//! Invariant checks shared by the unit tests, the property tests and the
//! model checker (DESIGN §5). They read the real engine and its real outputs;
//! nothing here re-implements the lifecycle rules beyond the table itself.
//!
//! - [`check_structure`]: the engine's own bookkeeping agrees with itself
//!   (index, timers, holders, rooms, socket state).
//! - [`Audit`]: fed every effect and event the engine emits, it checks that
//!   each phase change is a table row taken from the phase the incarnation was
//!   really in (invariants 4 and 5), that resources are created and destroyed
//!   exactly once per incarnation with nothing done to them afterwards
//!   (invariant 6), and that at most one incarnation per topic is alive
//!   (invariant 2).
//! - [`check_quiescent`]: when nothing is in flight and no timer is armed,
//!   nothing leaks (the engine's part of invariant 7).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::engine::ids::{Holder, JoinRef};
use crate::engine::output::{Effect, Event, Output};
use crate::engine::phase::{next, Phase, Trigger};
use crate::engine::store::Status;
use crate::engine::Engine;

/// A broken invariant, with the DESIGN §5 number it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    /// DESIGN §5 invariant number (0 for internal bookkeeping).
    pub invariant: u8,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} violated: {}", self.invariant, self.message)
    }
}

impl std::error::Error for Violation {}

fn fail<T>(invariant: u8, message: String) -> Result<T, Violation> {
    Err(Violation { invariant, message })
}

/// Checks the engine's bookkeeping is self-consistent.
pub fn check_structure(engine: &Engine) -> Result<(), Violation> {
    let store = &engine.store;
    let mut armed = 0;
    let mut count = 0;
    for (idx, e) in store.iter() {
        count += 1;
        if store.find(e.name()) != Some(idx) {
            return fail(
                0,
                format!("topic {:?} is not found by its own name", e.name),
            );
        }
        if !e.holders.windows(2).all(|w| w[0] < w[1]) {
            return fail(1, format!("holders of {:?} are not a sorted set", e.name));
        }
        let draining = e.phase() == Some(Phase::Draining);
        if e.holders.is_empty() != draining {
            return fail(
                7,
                format!(
                    "topic {:?} is {:?} with {} holders",
                    e.name,
                    e.status,
                    e.holders.len()
                ),
            );
        }
        let wants_timer = matches!(
            e.status,
            Status::Backoff
                | Status::Live {
                    phase: Phase::Connecting | Phase::Settling | Phase::Draining,
                    ..
                }
        );
        if wants_timer != e.deadline().is_some() {
            return fail(
                0,
                format!(
                    "topic {:?} is {:?} with timer {:?}",
                    e.name, e.status, e.deadline
                ),
            );
        }
        if e.deadline().is_some() {
            armed += 1;
            if !store.is_queued(idx) {
                return fail(0, format!("timer of {:?} is not in the timer set", e.name));
            }
        }
        if !engine.socket_up && matches!(e.status, Status::Live { .. } | Status::Backoff) {
            return fail(
                2,
                format!(
                    "topic {:?} is {:?} while the socket is down",
                    e.name, e.status
                ),
            );
        }
        if let Some(r) = e.join_ref() {
            if r.get() > engine.last_ref {
                return fail(0, format!("join_ref {r} of {:?} was never minted", e.name));
            }
        }
        let id = store.id(idx);
        for h in e.holders() {
            if let Holder::Room(room) = h {
                let holds = engine
                    .rooms
                    .get(&room)
                    .is_some_and(|r| r.shown == Some(id) || r.pending == Some(id));
                if !holds {
                    return fail(
                        1,
                        format!("{room:?} holds {:?} without showing or awaiting it", e.name),
                    );
                }
            }
        }
    }
    let mut params: Vec<_> = store
        .iter()
        .map(|(_, e)| e.params)
        .filter(|p| *p != crate::engine::store::ParamsId::NONE)
        .collect();
    params.sort_unstable_by_key(|p| store.params.get(*p).cloned());
    params.dedup();
    if params.len() != store.params.len() {
        return fail(
            0,
            format!(
                "{} distinct join params in use, {} interned",
                params.len(),
                store.params.len()
            ),
        );
    }
    if count != store.len() || armed != store.timer_count() {
        return fail(
            0,
            format!(
                "{count} topics / {armed} timers vs {} / {}",
                store.len(),
                store.timer_count()
            ),
        );
    }
    for (room, r) in &engine.rooms {
        for topic in [r.shown, r.pending].into_iter().flatten() {
            let held = store
                .resolve(topic)
                .is_some_and(|i| store.get(i).holders().any(|h| h == Holder::Room(*room)));
            if !held {
                return fail(8, format!("{room:?} refers to {topic} without holding it"));
            }
        }
        if r.shown.is_some() && r.shown == r.pending {
            return fail(8, format!("{room:?} awaits the topic it shows"));
        }
    }
    Ok(())
}

/// Checks that nothing leaks once the engine is quiescent (no timer armed; the
/// caller also knows no reply is in flight): every topic has holders and is
/// active or reported failed; no room awaits a topic that is not failed.
pub fn check_quiescent(engine: &Engine) -> Result<(), Violation> {
    if !engine.socket_up {
        return Ok(());
    }
    for (_, e) in engine.store.iter() {
        let served = matches!(
            e.status,
            Status::Live {
                phase: Phase::Active,
                ..
            } | Status::Failed(_)
        );
        if e.holders.is_empty() || !served {
            return fail(
                7,
                format!(
                    "quiescent with {:?} {:?} and {} holders",
                    e.name,
                    e.status,
                    e.holders.len()
                ),
            );
        }
    }
    for (room, r) in &engine.rooms {
        if let Some(p) = r.pending {
            let failed = engine
                .store
                .resolve(p)
                .is_some_and(|i| matches!(engine.store.get(i).status, Status::Failed(_)));
            if !failed {
                return fail(8, format!("quiescent {room:?} still awaits {p}"));
            }
        }
    }
    Ok(())
}

/// What the audit knows of one incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Incarnation {
    topic: Arc<str>,
    phase: Phase,
    settling: bool,
}

/// Ghost state built from the engine's outputs alone. Feed it every effect and
/// event, in order; each call says whether the output was legal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Audit {
    /// By join_ref: refs are never reused, so one ref names one incarnation.
    live: BTreeMap<JoinRef, Incarnation>,
    /// Incarnations destroyed whose resources are also destroyed (pruned).
    finished: u64,
}

impl Audit {
    /// A new audit, before the engine emitted anything.
    pub fn new() -> Audit {
        Audit::default()
    }

    /// Checks one output, just polled from `engine` (which names its topic).
    pub fn on_output(&mut self, engine: &Engine, output: &Output) -> Result<(), Violation> {
        let Some(id) = output.topic() else {
            return Ok(());
        };
        let Some(topic) = engine.topic_name(id) else {
            return fail(
                0,
                format!("{output:?} names a topic handle the engine cannot name"),
            );
        };
        match output {
            Output::Effect(e) => self.on_effect(topic, e),
            Output::Event(e) => self.on_event(topic, e),
        }
    }

    fn on_effect(&mut self, topic: &str, effect: &Effect) -> Result<(), Violation> {
        match *effect {
            Effect::Join { join_ref, .. } => {
                if self.live.values().any(|i| &*i.topic == topic)
                    || self.live.contains_key(&join_ref)
                {
                    return fail(
                        2,
                        format!("second live incarnation {join_ref} of {topic:?}"),
                    );
                }
                self.live.insert(
                    join_ref,
                    Incarnation {
                        topic: Arc::from(topic),
                        phase: Phase::Connecting,
                        settling: false,
                    },
                );
                Ok(())
            }
            Effect::StartSettling { join_ref, .. } => {
                self.expect(topic, join_ref, 6, |i| i.phase == Phase::Settling)
            }
            Effect::AbortSettling { join_ref, .. } => {
                self.expect(topic, join_ref, 6, |i| i.phase == Phase::Destroyed)
            }
            Effect::End { join_ref, .. } => {
                self.expect(topic, join_ref, 6, |i| i.phase == Phase::Destroyed)?;
                self.live.remove(&join_ref);
                self.finished += 1;
                Ok(())
            }
        }
    }

    fn on_event(&mut self, topic: &str, event: &Event) -> Result<(), Violation> {
        let Event::PhaseChanged {
            join_ref,
            from,
            to,
            trigger,
            ..
        } = *event
        else {
            return Ok(());
        };
        let Some(inc) = self.live.get_mut(&join_ref).filter(|i| &*i.topic == topic) else {
            return fail(
                6,
                format!("{topic:?} {join_ref} changed phase without resources"),
            );
        };
        if from != inc.phase {
            return fail(
                5,
                format!("{topic:?} {join_ref} left {from} but was {}", inc.phase),
            );
        }
        if next(from, trigger) != Some(to) {
            return fail(
                5,
                format!("{topic:?} {join_ref}: {from} --{trigger:?}--> {to} is not a row"),
            );
        }
        if trigger == Trigger::JoinOkSettling {
            inc.settling = true;
        }
        if to == Phase::Active && from == Phase::Connecting && inc.settling {
            return fail(4, format!("{topic:?} {join_ref} active without settling"));
        }
        inc.phase = to;
        Ok(())
    }

    /// Checks the audit's view agrees with the engine: every live incarnation
    /// the engine has is one the audit saw created, in the same phase, and
    /// every incarnation the audit holds is the engine's current one (or has
    /// been destroyed and awaits its resource destruction, which cannot be:
    /// the engine emits both in one step).
    pub fn check_against(&self, engine: &Engine) -> Result<(), Violation> {
        let mut live = 0;
        for (_, e) in engine.store.iter() {
            if let Status::Live { join_ref, phase } = e.status {
                live += 1;
                match self.live.get(&join_ref) {
                    Some(inc) if inc.phase == phase && &*inc.topic == e.name() => {}
                    other => {
                        return fail(
                            5,
                            format!(
                                "{:?} {join_ref} is {phase} in the engine, audit has {other:?}",
                                e.name()
                            ),
                        )
                    }
                }
            }
        }
        if live != self.live.len() {
            return fail(
                6,
                format!(
                    "{} incarnations hold resources, engine has {live} live",
                    self.live.len()
                ),
            );
        }
        Ok(())
    }

    /// Incarnations whose resources exist now.
    pub fn live_resources(&self) -> usize {
        self.live.len()
    }

    /// Incarnations fully destroyed so far.
    pub fn finished(&self) -> u64 {
        self.finished
    }
}

impl Audit {
    fn expect(
        &self,
        topic: &str,
        join_ref: JoinRef,
        invariant: u8,
        ok: impl Fn(&Incarnation) -> bool,
    ) -> Result<(), Violation> {
        match self.live.get(&join_ref) {
            Some(i) if &*i.topic == topic && ok(i) => Ok(()),
            other => fail(
                invariant,
                format!("unexpected effect for {topic:?} {join_ref} in state {other:?}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Config, JoinOptions, SubscriberId};

    /// Unreachable through outputs alone (an incarnation that saw a settling
    /// join ok is no longer connecting), so planted in the ghost state.
    #[test]
    fn active_without_settling_is_reported() {
        #[allow(clippy::disallowed_methods)] // a base instant for a simulated clock
        let now = std::time::Instant::now();
        let mut e = Engine::new(Config::default(), now).unwrap();
        e.handle_socket_up(now);
        e.subscribe("doc:1", SubscriberId(1), &JoinOptions::default(), now)
            .unwrap();
        let mut audit = Audit::new();
        let mut join = None;
        while let Some(o) = e.poll_output() {
            audit.on_output(&e, &o).unwrap();
            join = o.topic().zip(e.current_join_ref("doc:1"));
        }
        let (topic, join_ref) = join.unwrap();
        audit.live.get_mut(&join_ref).unwrap().settling = true;
        let ok = Output::Event(Event::PhaseChanged {
            topic,
            join_ref,
            from: Phase::Connecting,
            to: Phase::Active,
            trigger: Trigger::JoinOk,
        });
        let v = audit.on_output(&e, &ok).unwrap_err();
        assert_eq!(v.invariant, 4, "{v}");
    }
}
