//! A deliberately faithful port of the reference design (the TypeScript
//! channel registry of a collaborative editor), bugs included, so the model
//! can show that it finds them.
//!
//! Ported as written:
//! - the transition table (`VALID` below), enforced by `transitionState`,
//!   which refuses any other change and leaves the state as it was;
//! - `subscribe`: an existing entry gets the subscriber added, and if it is
//!   draining, its cleanup is cancelled and it is moved to `active` through
//!   `transitionState` — which the table refuses (`draining → active` ❌);
//!   a new entry creates its resources, is registered and joins;
//! - `handleJoinSuccess`: with `waitForSettled`, `transitionState(settling)`
//!   then `startSettling(10 s)` (called even if the transition was refused),
//!   whose completion calls `transitionState(active)`; otherwise straight to
//!   `active`;
//! - `unsubscribe`: the subscriber is removed; only when the set is empty
//!   **and** the state is `active` does the entry drain, with a 2 s cleanup
//!   (`destroyEntry` + `registry.delete`);
//! - `migrateToRoom`: drains the room's current entry only if it is `active`
//!   (its component id stays in that entry's subscribers), then subscribes the
//!   component to the new topic, which becomes the current one.
//!
//! Where the design shows no code, the port follows its prose and tests:
//! - `startSettling` on timeout sets `entry.error` and does not call the
//!   completion; DESIGN §4 summarises the rest: the entry is destroyed
//!   (`destroyEntry`: resources destroyed, channel left, timers cancelled,
//!   subscribers cleared) while subscribers still hold it, with no retry. The
//!   helper has no registry, so the destroyed entry stays registered;
//! - a `waitForSettled` that throws is "caught and logged": the entry stays
//!   `settling`;
//! - `handleJoinError` reports the error and destroys and deletes the entry;
//! - the registry registers no `onClose`/`onError` handlers; phoenix.js does
//!   what it does: a closed channel stays closed, a crashed one rejoins after
//!   its rejoin timer, and every errored channel rejoins when the socket
//!   reconnects; its join `receive("ok")` hooks run again on every rejoin.
//!   phoenix.js drops frames whose join_ref is not its channel's (stale).
//!
//! A room's "shown" topic is the reference's current entry: it moves at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::out::{Effect, Event, Output};
use channel_registry::engine::audit::Violation;
use channel_registry::engine::{
    FailReason, Holder, IgnoreReason, InputKind, JoinRef, Phase, RoomId, SubscriberId, TopicStatus,
    Trigger,
};

use crate::registry::{Registry, RoomView, Setup, TimerKind, TopicView};

use Phase::*;

/// The reference design's table: `(from, to)` pairs marked ✅.
pub const VALID: &[(Phase, Phase)] = &[
    (Connecting, Settling),
    (Connecting, Active),
    (Connecting, Destroyed),
    (Settling, Active),
    (Settling, Destroyed),
    (Active, Draining),
    (Active, Destroyed),
    (Draining, Destroyed),
];

/// The state of an entry's phoenix.js channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Chan {
    /// `phx_join` sent, no reply yet.
    Joining,
    /// Joined.
    Joined,
    /// Crashed, or the socket dropped: rejoins on its timer / on reconnect.
    Errored,
    /// Closed by the server: phoenix.js does not rejoin.
    Closed,
    /// Left by `channel.leave()`.
    Left,
}

/// One `ChannelEntry`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Entry {
    topic: Arc<str>,
    /// The entry's identity: the ref of its first join (resources and phase
    /// events are reported under it).
    id: JoinRef,
    /// The phoenix.js channel's current join ref.
    wire: JoinRef,
    chan: Chan,
    state: Phase,
    subscribers: BTreeSet<Holder>,
    resources: bool,
    cleanup_timer: bool,
    /// `settlingAbortController` with its timeout armed.
    settling: bool,
    rejoin_timer: bool,
    error: Option<&'static str>,
}

/// The reference registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    settling: bool,
    socket_up: bool,
    last_ref: u64,
    registry: BTreeMap<Arc<str>, Entry>,
    /// Each room's current topic (`getCurrentEntry`).
    rooms: BTreeMap<RoomId, Arc<str>>,
    outputs: VecDeque<Output>,
}

impl Hash for Reference {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.settling.hash(h);
        self.socket_up.hash(h);
        self.last_ref.hash(h);
        self.registry.hash(h);
        self.rooms.hash(h);
        self.outputs.hash(h);
    }
}

impl Reference {
    fn mint(&mut self) -> JoinRef {
        self.last_ref += 1;
        JoinRef::new(self.last_ref).expect("refs start at 1")
    }

    fn emit(&mut self, o: Output) {
        self.outputs.push_back(o);
    }

    /// `transitionState(entry, to)`: refused (false, nothing changes) unless
    /// the table has the pair.
    fn transition(&mut self, topic: &str, to: Phase, why: Trigger) -> bool {
        let e = self.registry.get_mut(topic).expect("entry");
        if !VALID.contains(&(e.state, to)) {
            return false;
        }
        let from = std::mem::replace(&mut e.state, to);
        let ev = Event::PhaseChanged {
            topic: e.topic.clone(),
            join_ref: e.id,
            from: Some(from),
            to,
            trigger: Some(why),
        };
        self.emit(Output::Event(ev));
        true
    }

    fn subscribe_holder(&mut self, topic: &str, holder: Holder) {
        if let Some(e) = self.registry.get_mut(topic) {
            e.subscribers.insert(holder);
            if e.state == Draining {
                e.cleanup_timer = false; // cancelCleanup(entry)
                self.transition(topic, Active, Trigger::Revive); // refused by the table
            }
            return;
        }
        let id = self.mint();
        let name: Arc<str> = Arc::from(topic);
        let mut entry = Entry {
            topic: name.clone(),
            id,
            wire: id,
            chan: Chan::Errored,
            state: Connecting,
            subscribers: BTreeSet::new(),
            resources: true,
            cleanup_timer: false,
            settling: false,
            rejoin_timer: false,
            error: None,
        };
        entry.subscribers.insert(holder);
        self.emit(Output::Effect(Effect::CreateResources {
            topic: name.clone(),
            join_ref: id,
        }));
        self.emit(Output::Event(Event::PhaseChanged {
            topic: name.clone(),
            join_ref: id,
            from: None,
            to: Connecting,
            trigger: None,
        }));
        if self.socket_up {
            entry.chan = Chan::Joining;
            self.emit(Output::Effect(Effect::Join {
                topic: name.clone(),
                join_ref: id,
            }));
        }
        self.registry.insert(name, entry);
    }

    fn unsubscribe_holder(&mut self, topic: &str, holder: Holder) -> bool {
        let Some(e) = self.registry.get_mut(topic) else {
            return false;
        };
        let was = e.subscribers.remove(&holder);
        if e.subscribers.is_empty() && e.state == Active {
            self.transition(topic, Draining, Trigger::LastHolderLeft);
            self.registry.get_mut(topic).expect("entry").cleanup_timer = true;
        }
        was
    }

    fn join_success(&mut self, topic: &str) {
        if self.settling {
            self.transition(topic, Settling, Trigger::JoinOkSettling);
            self.start_settling(topic);
        } else {
            self.transition(topic, Active, Trigger::JoinOk);
        }
    }

    fn start_settling(&mut self, topic: &str) {
        let e = self.registry.get_mut(topic).expect("entry");
        e.settling = true;
        let (topic, join_ref) = (e.topic.clone(), e.id);
        self.emit(Output::Effect(Effect::StartSettling { topic, join_ref }));
    }

    /// `destroyEntry(entry, resourceManager)`.
    fn destroy_entry(&mut self, topic: &str, why: Trigger) {
        self.transition(topic, Destroyed, why);
        let socket_up = self.socket_up;
        let e = self.registry.get_mut(topic).expect("entry");
        let mut out = Vec::new();
        if std::mem::take(&mut e.settling) {
            out.push(Effect::AbortSettling {
                topic: e.topic.clone(),
                join_ref: e.id,
            });
        }
        if std::mem::take(&mut e.resources) {
            out.push(Effect::DestroyResources {
                topic: e.topic.clone(),
                join_ref: e.id,
            });
        }
        if matches!(e.chan, Chan::Joining | Chan::Joined) && socket_up {
            out.push(Effect::Leave {
                topic: e.topic.clone(),
                join_ref: e.wire,
            });
        }
        e.chan = Chan::Left;
        e.cleanup_timer = false;
        e.rejoin_timer = false;
        e.subscribers.clear();
        for effect in out {
            self.emit(Output::Effect(effect));
        }
    }

    fn rejoin(&mut self, topic: &str) {
        let wire = self.mint();
        let e = self.registry.get_mut(topic).expect("entry");
        e.wire = wire;
        e.chan = Chan::Joining;
        let topic = e.topic.clone();
        self.emit(Output::Effect(Effect::Join {
            topic,
            join_ref: wire,
        }));
    }

    /// The entry a frame for `(topic, wire)` reaches through phoenix.js, or
    /// an `Ignored` event when phoenix.js drops it as stale.
    fn member(&mut self, topic: &str, wire: JoinRef, input: InputKind, live: &[Chan]) -> bool {
        let current = self.registry.get(topic).map(|e| e.wire);
        let ok = self
            .registry
            .get(topic)
            .is_some_and(|e| e.wire == wire && live.contains(&e.chan));
        if !ok {
            self.emit(Output::Event(Event::Ignored {
                topic: Some(Arc::from(topic)),
                join_ref: wire,
                input,
                reason: IgnoreReason::Stale { current },
            }));
        }
        ok
    }
}

impl Registry for Reference {
    type Audit = ();
    const NAME: &'static str = "reference";

    fn build(setup: Setup) -> Self {
        Reference {
            settling: setup.settling,
            socket_up: true,
            last_ref: 0,
            registry: BTreeMap::new(),
            rooms: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    fn subscribe(&mut self, topic: &str, sub: SubscriberId) -> Result<(), String> {
        self.subscribe_holder(topic, Holder::Subscriber(sub));
        Ok(())
    }

    fn unsubscribe(&mut self, topic: &str, sub: SubscriberId) -> bool {
        self.unsubscribe_holder(topic, Holder::Subscriber(sub))
    }

    fn switch(&mut self, room: RoomId, topic: &str) -> Result<(), String> {
        // migrateToRoom(newTopic)
        if let Some(current) = self.rooms.get(&room).cloned() {
            if self
                .registry
                .get(&current)
                .is_some_and(|e| e.state == Active)
            {
                self.transition(&current, Draining, Trigger::Superseded);
                self.registry
                    .get_mut(&current)
                    .expect("entry")
                    .cleanup_timer = true;
            }
        }
        self.subscribe_holder(topic, Holder::Room(room));
        self.rooms.insert(room, Arc::from(topic));
        Ok(())
    }

    fn close_all(&mut self) {
        let topics: Vec<Arc<str>> = self.registry.keys().cloned().collect();
        for t in topics {
            if self.registry[&t].state != Destroyed {
                self.destroy_entry(&t, Trigger::CloseAll);
            }
        }
        self.registry.clear();
        self.rooms.clear();
    }

    fn join_reply(&mut self, topic: &str, join_ref: JoinRef, ok: bool) {
        let input = if ok {
            InputKind::JoinOk
        } else {
            InputKind::JoinError
        };
        if !self.member(topic, join_ref, input, &[Chan::Joining]) {
            return;
        }
        if ok {
            self.registry.get_mut(topic).expect("entry").chan = Chan::Joined;
            self.join_success(topic);
        } else {
            // handleJoinError: report, destroy, delete.
            let e = self.registry.get_mut(topic).expect("entry");
            e.chan = Chan::Errored;
            e.error = Some("join error");
            let name = e.topic.clone();
            self.emit(Output::Event(Event::TopicFailed {
                topic: name,
                reason: FailReason::JoinRejected,
            }));
            self.destroy_entry(topic, Trigger::JoinError);
            self.registry.remove(topic);
        }
    }

    fn close(&mut self, topic: &str, join_ref: JoinRef) {
        if self.member(
            topic,
            join_ref,
            InputKind::Close,
            &[Chan::Joining, Chan::Joined],
        ) {
            self.registry.get_mut(topic).expect("entry").chan = Chan::Closed;
        }
    }

    fn error(&mut self, topic: &str, join_ref: JoinRef) {
        if self.member(
            topic,
            join_ref,
            InputKind::Error,
            &[Chan::Joining, Chan::Joined],
        ) {
            let e = self.registry.get_mut(topic).expect("entry");
            e.chan = Chan::Errored;
            e.rejoin_timer = true;
        }
    }

    fn settle_result(&mut self, topic: &str, join_ref: JoinRef, ok: bool) {
        let input = if ok {
            InputKind::Settled
        } else {
            InputKind::SettleFailed
        };
        let running = self
            .registry
            .get(topic)
            .is_some_and(|e| e.id == join_ref && e.settling);
        if !running {
            let current = self.registry.get(topic).map(|e| e.id);
            self.emit(Output::Event(Event::Ignored {
                topic: Some(Arc::from(topic)),
                join_ref,
                input,
                reason: IgnoreReason::Stale { current },
            }));
            return;
        }
        let e = self.registry.get_mut(topic).expect("entry");
        e.settling = false;
        if ok {
            self.transition(topic, Active, Trigger::Settled);
        } else {
            e.error = Some("settling failed (caught and logged)");
        }
    }

    fn socket_up(&mut self) {
        if self.socket_up {
            return;
        }
        self.socket_up = true;
        let errored: Vec<Arc<str>> = self
            .registry
            .values()
            .filter(|e| e.chan == Chan::Errored && e.state != Destroyed)
            .map(|e| e.topic.clone())
            .collect();
        for t in errored {
            self.registry.get_mut(&t).expect("entry").rejoin_timer = false;
            self.rejoin(&t);
        }
    }

    fn socket_down(&mut self) {
        self.socket_up = false;
        for e in self.registry.values_mut() {
            if matches!(e.chan, Chan::Joining | Chan::Joined) {
                e.chan = Chan::Errored;
            }
        }
    }

    fn fire(&mut self, topic: &str, kind: TimerKind) -> bool {
        let Some(e) = self.registry.get_mut(topic) else {
            return false;
        };
        match kind {
            TimerKind::Grace if e.cleanup_timer => {
                e.cleanup_timer = false;
                self.destroy_entry(topic, Trigger::GraceElapsed);
                self.registry.remove(topic);
            }
            TimerKind::Settle if e.settling => {
                e.error = Some("Settling timeout");
                self.destroy_entry(topic, Trigger::SettleTimeout);
            }
            TimerKind::Rejoin if e.rejoin_timer => {
                e.rejoin_timer = false;
                if self.socket_up && e.chan == Chan::Errored {
                    self.rejoin(topic);
                }
            }
            _ => return false,
        }
        true
    }

    /// JavaScript timers due together run in the order they were set; the
    /// port keeps no deadlines, so it fires them in topic-name order, which is
    /// one of the orders a browser could show.
    fn fire_all_due(&mut self) -> bool {
        let armed: Vec<(Arc<str>, TimerKind)> = self
            .registry
            .values()
            .flat_map(|e| {
                [
                    (e.settling, TimerKind::Settle),
                    (e.cleanup_timer, TimerKind::Grace),
                    (e.rejoin_timer, TimerKind::Rejoin),
                ]
                .into_iter()
                .filter(|(armed, _)| *armed)
                .map(|(_, kind)| (e.topic.clone(), kind))
            })
            .collect();
        for (topic, kind) in &armed {
            self.fire(topic, *kind);
        }
        !armed.is_empty()
    }

    fn drain_into(
        &mut self,
        _: &mut (),
        _: &[Arc<str>],
        out: &mut Vec<Output>,
    ) -> Option<Violation> {
        out.extend(self.outputs.drain(..));
        None
    }

    fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    fn status(&self, topic: &str) -> Option<TopicStatus> {
        self.registry.get(topic).map(|e| TopicStatus::Live {
            join_ref: e.wire,
            phase: e.state,
        })
    }

    fn views(&self, topics: &[Arc<str>], out: &mut Vec<TopicView>) {
        out.clear();
        out.extend(topics.iter().map(|t| {
            let mut v = TopicView::default();
            if let Some(e) = self.registry.get(t) {
                v.status = self.status(t);
                v.attempts = 1;
                for (armed, kind) in [
                    (e.settling, TimerKind::Settle),
                    (e.cleanup_timer, TimerKind::Grace),
                    (e.rejoin_timer, TimerKind::Rejoin),
                ] {
                    if armed {
                        v.timers |= kind.bit();
                    }
                }
                for h in &e.subscribers {
                    if let Holder::Subscriber(s) = h {
                        v.subscribers |= 1 << (s.0.clamp(1, 64) - 1);
                    }
                }
            }
            v
        }));
    }

    fn attempts(&self, _topic: &str) -> u8 {
        1
    }

    fn active_join_ref(&self, topic: &str) -> Option<JoinRef> {
        self.registry
            .get(topic)
            .filter(|e| e.state == Active)
            .map(|e| e.wire)
    }

    fn room(&self, room: RoomId) -> Option<RoomView> {
        self.rooms.get(&room).map(|t| RoomView {
            shown: Some(t.clone()),
            pending: None,
        })
    }

    fn hash_untimed<H: Hasher>(&self, state: &mut H) {
        self.hash(state);
    }

    fn hash_canonical(&self, h: &mut dyn Hasher, rename: &mut dyn FnMut(JoinRef) -> u64) {
        let mut h = h;
        (self.settling, self.socket_up).hash(&mut h);
        for (name, e) in &self.registry {
            name.hash(&mut h);
            (rename(e.id), rename(e.wire)).hash(&mut h);
            (e.chan, e.state, &e.subscribers, e.resources).hash(&mut h);
            (e.cleanup_timer, e.settling, e.rejoin_timer, e.error).hash(&mut h);
        }
        self.rooms.hash(&mut h);
        self.outputs.len().hash(&mut h);
    }

    /// phoenix.js hands a message to the channel's handlers whenever the
    /// channel owns the join_ref (or it is a broadcast), and the reference
    /// registry forwards it to its subscribers whatever the entry's phase.
    fn route(&self, topic: &str, join_ref: Option<JoinRef>) -> Option<JoinRef> {
        let e = self.registry.get(topic)?;
        let member = join_ref.is_none_or(|r| r == e.wire);
        (member && matches!(e.chan, Chan::Joining | Chan::Joined)).then_some(e.wire)
    }

    fn table_allows(from: Phase, _trigger: Trigger, to: Phase) -> bool {
        VALID.contains(&(from, to))
    }

    fn audit_state(&self, _: &()) -> Result<(), Violation> {
        Ok(())
    }

    fn audit_quiescent(&self) -> Result<(), Violation> {
        Ok(())
    }
}
