//! The properties have teeth on the real engine's side too: small mistakes an
//! adapter (or the engine) could make, wrapped around the real engine, are
//! each caught by the invariant they break.

use std::collections::BTreeSet;
use std::hash::Hasher;
use std::sync::Arc;
use std::time::Instant;

use channel_registry::engine::audit::{Audit, Violation};
use channel_registry::engine::{
    Engine, Holder, JoinRef, Phase, RoomId, SubscriberId, TopicStatus, Trigger,
};
use channel_registry_model::bugs::shortest;
use channel_registry_model::out::{Effect, Event, Output};
use channel_registry_model::properties::Inv;
use channel_registry_model::registry::{Registry, RoomView, Setup, TimerKind, TopicView};
use channel_registry_model::report::{self, Verdict};
use channel_registry_model::{trace, ModelCfg};
use stateright::{Checker, HasDiscoveries, Model};

/// The real engine with one mistake `M` around it:
/// 0. leaves are never sent;
/// 1. server messages reach subscribers whatever the phase;
/// 2. join replies are applied to the current incarnation whatever their ref;
/// 3. a `phx_leave` is sent for every incarnation that ends while the socket
///    is up, even one the server ended itself (join error, `phx_close`,
///    `phx_error`): `Trigger::sends_leave` returning `true`;
/// 4. timers due together fire in deadline order (ties in name order)
///    instead of topic-name order: `Engine::handle_timeout` without its sort;
/// 5. a topic reported failed is subscribed again at once by its first
///    subscriber (an adapter that "never gives up"): it retries forever.
#[derive(Clone, Debug, PartialEq)]
struct Mutant<const M: u8>(Engine);

impl<const M: u8> Mutant<M> {
    /// Mutant 3: a leave before the end of every incarnation the server ended.
    fn leave_anyway(&self, out: &mut Vec<Output>) {
        if !self.0.is_socket_up() {
            return;
        }
        let mut i = 0;
        while i < out.len() {
            if let Output::Event(Event::PhaseChanged {
                topic,
                join_ref,
                to: Phase::Destroyed,
                trigger: Some(Trigger::JoinError | Trigger::ServerClose | Trigger::ServerError),
                ..
            }) = &out[i]
            {
                let (topic, join_ref) = (topic.clone(), *join_ref);
                let destroy = out[i..].iter().position(|o| {
                    matches!(o, Output::Effect(Effect::DestroyResources { topic: t, join_ref: r }) if *t == topic && *r == join_ref)
                });
                if let Some(at) = destroy {
                    out.insert(i + at, Output::Effect(Effect::Leave { topic, join_ref }));
                }
            }
            i += 1;
        }
    }

    /// Mutant 5: every topic reported failed is subscribed again by its first
    /// subscriber; returns whether it did.
    fn resubscribe_failed(&mut self, out: &[Output]) -> bool {
        let failed: Vec<Arc<str>> = out
            .iter()
            .filter_map(|o| match o {
                Output::Event(Event::TopicFailed { topic, .. }) => Some(topic.clone()),
                _ => None,
            })
            .collect();
        let mut again = false;
        for topic in failed {
            let holder = self.0.topic(&*topic).and_then(|t| {
                t.holders().find_map(|h| match h {
                    Holder::Subscriber(s) => Some(s),
                    _ => None,
                })
            });
            if let Some(sub) = holder {
                again |= Registry::subscribe(&mut self.0, &topic, sub).is_ok();
            }
        }
        again
    }
}

impl<const M: u8> Registry for Mutant<M> {
    type Audit = Audit;
    const NAME: &'static str = "mutant";

    fn build(setup: Setup) -> Self {
        Mutant(Engine::build(setup))
    }
    fn subscribe(&mut self, topic: &str, sub: SubscriberId) -> Result<(), String> {
        Registry::subscribe(&mut self.0, topic, sub)
    }
    fn unsubscribe(&mut self, topic: &str, sub: SubscriberId) -> bool {
        Registry::unsubscribe(&mut self.0, topic, sub)
    }
    fn switch(&mut self, room: RoomId, topic: &str) -> Result<(), String> {
        Registry::switch(&mut self.0, room, topic)
    }
    fn close_all(&mut self) {
        Registry::close_all(&mut self.0)
    }
    fn join_reply(&mut self, topic: &str, join_ref: JoinRef, ok: bool) {
        let join_ref = match (M, self.0.current_join_ref(topic)) {
            (2, Some(current)) => current,
            _ => join_ref,
        };
        Registry::join_reply(&mut self.0, topic, join_ref, ok)
    }
    fn close(&mut self, topic: &str, join_ref: JoinRef) {
        Registry::close(&mut self.0, topic, join_ref)
    }
    fn error(&mut self, topic: &str, join_ref: JoinRef) {
        Registry::error(&mut self.0, topic, join_ref)
    }
    fn settle_result(&mut self, topic: &str, join_ref: JoinRef, ok: bool) {
        Registry::settle_result(&mut self.0, topic, join_ref, ok)
    }
    fn socket_up(&mut self) {
        Registry::socket_up(&mut self.0)
    }
    fn socket_down(&mut self) {
        Registry::socket_down(&mut self.0)
    }
    fn fire(&mut self, topic: &str, kind: TimerKind) -> bool {
        Registry::fire(&mut self.0, topic, kind)
    }
    fn fire_all_due(&mut self) -> bool {
        if M != 4 {
            return Registry::fire_all_due(&mut self.0);
        }
        let mut due: Vec<(Instant, Arc<str>)> = self
            .0
            .topics()
            .filter_map(|t| t.deadline.map(|at| (at, Arc::from(t.topic))))
            .collect();
        due.sort();
        for (_, topic) in &due {
            self.0.fire_timer(&**topic);
        }
        !due.is_empty()
    }
    fn drain_into(
        &mut self,
        audit: &mut Audit,
        names: &[Arc<str>],
        out: &mut Vec<Output>,
    ) -> Option<Violation> {
        let mut found = Registry::drain_into(&mut self.0, audit, names, out);
        match M {
            0 => out.retain(|o| !matches!(o, Output::Effect(Effect::Leave { .. }))),
            3 => self.leave_anyway(out),
            5 => {
                while self.resubscribe_failed(out) {
                    let mut more = Vec::new();
                    found = found.or(Registry::drain_into(&mut self.0, audit, names, &mut more));
                    let again = more
                        .iter()
                        .any(|o| matches!(o, Output::Event(Event::TopicFailed { .. })));
                    out.extend(more);
                    if !again {
                        break;
                    }
                }
            }
            _ => {}
        }
        found
    }
    fn has_output(&self) -> bool {
        Registry::has_output(&self.0)
    }
    fn status(&self, topic: &str) -> Option<TopicStatus> {
        Registry::status(&self.0, topic)
    }
    fn views(&self, topics: &[Arc<str>], out: &mut Vec<TopicView>) {
        Registry::views(&self.0, topics, out)
    }
    fn attempts(&self, topic: &str) -> u8 {
        Registry::attempts(&self.0, topic)
    }
    fn active_join_ref(&self, topic: &str) -> Option<JoinRef> {
        Registry::active_join_ref(&self.0, topic)
    }
    fn room(&self, room: RoomId) -> Option<RoomView> {
        Registry::room(&self.0, room)
    }
    fn hash_untimed<H: Hasher>(&self, state: &mut H) {
        Registry::hash_untimed(&self.0, state)
    }
    fn hash_canonical(&self, state: &mut dyn Hasher, rename: &mut dyn FnMut(JoinRef) -> u64) {
        Registry::hash_canonical(&self.0, state, rename)
    }
    fn route(&self, topic: &str, join_ref: Option<JoinRef>) -> Option<JoinRef> {
        let current = self.0.current_join_ref(topic)?;
        match M {
            1 if join_ref.is_none_or(|r| r == current) => Some(current),
            _ => Registry::route(&self.0, topic, join_ref),
        }
    }
    fn table_allows(from: Phase, trigger: Trigger, to: Phase) -> bool {
        Engine::table_allows(from, trigger, to)
    }
    fn audit_state(&self, audit: &Audit) -> Result<(), Violation> {
        Registry::audit_state(&self.0, audit)
    }
    fn audit_quiescent(&self) -> Result<(), Violation> {
        Registry::audit_quiescent(&self.0)
    }
}

fn caught<const M: u8>(cfg: ModelCfg, inv: Inv) {
    let model = cfg.into_model::<Mutant<M>>();
    let path = shortest(model.clone(), inv.name())
        .unwrap_or_else(|| panic!("mutant {M} not caught by {}", inv.name()));
    eprintln!("mutant {M}, {}:", inv.name());
    for line in trace::path_lines(&model, &path) {
        eprintln!("  {line}");
    }
}

fn small() -> ModelCfg {
    ModelCfg {
        ops: 2,
        faults: 1,
        server_messages: true,
        ..ModelCfg::minimal()
    }
}

#[test]
fn forgotten_leaves_leak_channels() {
    caught::<0>(small(), Inv::NoLeak);
}

#[test]
fn messages_routed_before_active_are_cross_talk() {
    caught::<1>(small(), Inv::NoCrossTalk);
}

#[test]
fn replies_applied_whatever_their_ref_break_stale_isolation() {
    caught::<2>(small(), Inv::StaleIsolation);
}

#[test]
fn leaves_for_channels_the_server_ended_are_caught() {
    caught::<3>(small(), Inv::LeaveOnlyHeld);
}

#[test]
fn timers_due_together_fired_in_deadline_order_are_caught() {
    // v1 settles slowly (a 10 s timeout) while v2, active, is left (a 2 s
    // grace): both are due together, v2's deadline first.
    let cfg = ModelCfg {
        versions: 2,
        ops: 3,
        faults: 1,
        settling: true,
        batched_timers: true,
        ..ModelCfg::minimal()
    };
    caught::<4>(cfg, Inv::TimerOrder);
}

#[test]
fn a_retry_loop_that_never_ends_is_caught_by_progress_alone() {
    // The unrouted topic is rejected on every join: with the failed topic
    // subscribed again at once, the retries never end.
    let cfg = ModelCfg {
        unrouted: true,
        ..ModelCfg::minimal()
    };
    caught::<5>(cfg.clone(), Inv::Progress);
    // Nothing else sees it: the loop never reaches a quiescent state, and a
    // checker without the progress property would not notice it.
    let outcome = report::check(cfg.into_model::<Mutant<5>>(), 1, false);
    for (name, verdict) in &outcome.properties {
        if matches!(verdict, Verdict::Violated(_)) {
            assert_eq!(*name, Inv::Progress.name(), "{verdict:?}");
        }
    }
}

/// The CI configuration, smaller than the full one, still catches every
/// mistake above: breadth-first, until the invariant that names it breaks.
fn caught_in_ci<const M: u8>(inv: Inv) {
    let found = ModelCfg::ci()
        .into_model::<Mutant<M>>()
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([inv.name()])))
        .spawn_bfs()
        .join()
        .discovery(inv.name())
        .map(|path| path.into_actions().len());
    let steps = found.unwrap_or_else(|| {
        panic!(
            "mutant {M} not caught by {} in the CI configuration",
            inv.name()
        )
    });
    eprintln!("mutant {M}: {} breaks after {steps} steps", inv.name());
}

#[test]
fn the_ci_configuration_catches_forgotten_leaves() {
    caught_in_ci::<0>(Inv::NoLeak);
}

#[test]
fn the_ci_configuration_catches_messages_routed_before_active() {
    caught_in_ci::<1>(Inv::NoCrossTalk);
}

#[test]
fn the_ci_configuration_catches_replies_applied_whatever_their_ref() {
    caught_in_ci::<2>(Inv::StaleIsolation);
}

#[test]
fn the_ci_configuration_catches_leaves_for_ended_channels() {
    caught_in_ci::<3>(Inv::LeaveOnlyHeld);
}

#[test]
fn the_ci_configuration_catches_timers_fired_in_deadline_order() {
    caught_in_ci::<4>(Inv::TimerOrder);
}

#[test]
fn the_ci_configuration_catches_a_retry_loop() {
    caught_in_ci::<5>(Inv::Progress);
}
