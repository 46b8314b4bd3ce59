//! The properties have teeth on the real engine's side too: three small
//! mistakes an adapter (or the engine) could make, wrapped around the real
//! engine, are each caught by the invariant they break.

use std::hash::Hasher;
use std::sync::Arc;

use channel_registry::engine::audit::{Audit, Violation};
use channel_registry::engine::{
    Engine, JoinRef, Phase, RoomId, SubscriberId, TopicStatus, Trigger,
};
use channel_registry_model::bugs::shortest;
use channel_registry_model::out::{Effect, Output};
use channel_registry_model::properties::Inv;
use channel_registry_model::registry::{Registry, RoomView, Setup, TimerKind, TopicView};
use channel_registry_model::{trace, ModelCfg};

/// The real engine with one mistake `M` around it:
/// 0. leaves are never sent;
/// 1. server messages reach subscribers whatever the phase;
/// 2. join replies are applied to the current incarnation whatever their ref.
#[derive(Clone, Debug, PartialEq)]
struct Mutant<const M: u8>(Engine);

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
    fn drain_into(
        &mut self,
        audit: &mut Audit,
        names: &[Arc<str>],
        out: &mut Vec<Output>,
    ) -> Option<Violation> {
        let found = Registry::drain_into(&mut self.0, audit, names, out);
        if M == 0 {
            out.retain(|o| !matches!(o, Output::Effect(Effect::Leave { .. })));
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
