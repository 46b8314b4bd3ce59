//! The seam between the harness and an engine under test.
//!
//! The harness drives every engine through [`Registry`], so the very same
//! environment, actions and properties run against the real
//! [`Engine`] and against the faithful port of the reference design
//! ([`crate::reference::Reference`]). The trait is deliberately thin: the
//! implementation for the real engine forwards each call to the engine's own
//! public method, nothing more, so what the checker explores is the engine's
//! code and not an imitation of it.

use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use channel_registry::engine::audit::{self, Audit, Violation};
use channel_registry::engine::{
    next, Config, Engine, Holder, JoinOptions, JoinRef, JoinReply, Phase, RoomId, Route,
    SubscriberId, TopicInfo, TopicStatus, Trigger,
};

use crate::canon;
use crate::out::{self, Output};

/// The kind of an armed timer. The real engine has one timer per topic whose
/// kind follows from the topic's status; the reference design keeps separate
/// JavaScript timers, so a topic may have more than one there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// No join reply in time.
    Join,
    /// Settling took too long.
    Settle,
    /// The drain grace period (the reference design's cleanup timer).
    Grace,
    /// Waiting to retry after a failure.
    Backoff,
    /// phoenix.js's own rejoin timer of a crashed channel (reference only).
    Rejoin,
}

impl TimerKind {
    /// Whether the timer firing is a failure of the environment (a join or a
    /// settle that did not finish in time) rather than the normal course of
    /// events (grace and backoff timers always fire eventually). The model
    /// charges failures to its fault budget.
    pub const fn is_failure(self) -> bool {
        matches!(self, TimerKind::Join | TimerKind::Settle)
    }

    /// Every kind.
    pub const ALL: [TimerKind; 5] = [
        TimerKind::Join,
        TimerKind::Settle,
        TimerKind::Grace,
        TimerKind::Backoff,
        TimerKind::Rejoin,
    ];

    /// Its bit in [`TopicView::timers`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Short name for traces.
    pub const fn name(self) -> &'static str {
        match self {
            TimerKind::Join => "join timeout",
            TimerKind::Settle => "settle timeout",
            TimerKind::Grace => "drain grace",
            TimerKind::Backoff => "retry backoff",
            TimerKind::Rejoin => "phoenix.js rejoin",
        }
    }
}

/// What a room shows and what it is switching to, as the engine reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomView {
    /// The topic shown.
    pub shown: Option<Arc<str>>,
    /// The topic being switched to.
    pub pending: Option<Arc<str>>,
}

/// One topic as the checks see it, gathered for all topics in one pass
/// ([`Registry::views`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicView {
    /// Where it stands (`None`: the engine does not manage it).
    pub status: Option<TopicStatus>,
    /// Joins in a row that have not reached active.
    pub attempts: u8,
    /// Armed timers, one bit per [`TimerKind`].
    pub timers: u8,
    /// Subscribers holding it: bit `i` for `SubscriberId(i + 1)`, bit 63 for
    /// any other id.
    pub subscribers: u64,
}

impl TopicView {
    /// The active incarnation, if any.
    pub fn active(&self) -> Option<JoinRef> {
        match self.status {
            Some(TopicStatus::Live {
                join_ref,
                phase: Phase::Active,
            }) => Some(join_ref),
            _ => None,
        }
    }

    /// Whether the topic is reported failed.
    pub fn failed(&self) -> bool {
        matches!(self.status, Some(TopicStatus::Failed(_)))
    }

    /// The armed timers.
    pub fn timer_kinds(&self) -> impl Iterator<Item = TimerKind> + '_ {
        TimerKind::ALL
            .into_iter()
            .filter(|k| self.timers & k.bit() != 0)
    }

    fn add_subscriber(&mut self, s: SubscriberId) {
        let bit = if (1..=63).contains(&s.0) { s.0 - 1 } else { 63 };
        self.subscribers |= 1 << bit;
    }
}

/// How the engine under test is configured; both engines read the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Setup {
    /// Topics settle (wait for the resources' first sync) before active.
    pub settling: bool,
    /// Joins in a row before a topic is reported failed (real engine only).
    pub max_attempts: u8,
}

/// The operations the harness needs from an engine. Inputs mirror the real
/// engine's `handle_*` and command methods; queries are the ones an adapter
/// has, plus the canonical untimed hash and the engine's own self-checks.
pub trait Registry: Clone + Debug + PartialEq + Send + Sync + 'static {
    /// Whatever the engine's own output audit keeps (nothing for the port).
    type Audit: Clone + Debug + Default + Send + Sync + 'static;

    /// Short name for reports.
    const NAME: &'static str;

    /// A fresh engine with the socket already up.
    fn build(setup: Setup) -> Self;

    /// A subscriber takes a topic.
    fn subscribe(&mut self, topic: &str, sub: SubscriberId) -> Result<(), String>;
    /// A subscriber lets go of a topic; false when it did not hold it.
    fn unsubscribe(&mut self, topic: &str, sub: SubscriberId) -> bool;
    /// A room switches to a topic.
    fn switch(&mut self, room: RoomId, topic: &str) -> Result<(), String>;
    /// Everything ends (logout).
    fn close_all(&mut self);

    /// A join reply.
    fn join_reply(&mut self, topic: &str, join_ref: JoinRef, ok: bool);
    /// A `phx_close`.
    fn close(&mut self, topic: &str, join_ref: JoinRef);
    /// A `phx_error`.
    fn error(&mut self, topic: &str, join_ref: JoinRef);
    /// The resources of `join_ref` settled (`ok`) or failed to.
    fn settle_result(&mut self, topic: &str, join_ref: JoinRef, ok: bool);
    /// The socket connected.
    fn socket_up(&mut self);
    /// The socket dropped.
    fn socket_down(&mut self);
    /// Fires one armed timer; false when it is not armed.
    fn fire(&mut self, topic: &str, kind: TimerKind) -> bool;
    /// Fires every armed timer in one call, as a driver that wakes after
    /// every deadline has passed does; false when none is armed.
    fn fire_all_due(&mut self) -> bool;
    /// Drains every output, in order, into `out` in the model's vocabulary,
    /// feeding each to the engine's own audit as it comes; returns the first
    /// violation the audit found.
    /// `names` are the model's topics, so outputs can share their names.
    fn drain_into(
        &mut self,
        audit: &mut Self::Audit,
        names: &[Arc<str>],
        out: &mut Vec<Output>,
    ) -> Option<Violation>;
    /// Whether outputs wait to be drained.
    fn has_output(&self) -> bool;

    /// Where a topic stands, if the engine manages it.
    fn status(&self, topic: &str) -> Option<TopicStatus>;
    /// A view of each of `topics`, in that order, into `out` (cleared).
    fn views(&self, topics: &[Arc<str>], out: &mut Vec<TopicView>);
    /// Joins in a row that have not reached active.
    fn attempts(&self, topic: &str) -> u8;
    /// The join_ref a push on `topic` may carry and whose messages reach
    /// subscribers, if any.
    fn active_join_ref(&self, topic: &str) -> Option<JoinRef>;
    /// A room.
    fn room(&self, room: RoomId) -> Option<RoomView>;
    /// The index in `topics` of the topic a room shows: what the per-step
    /// room checks compare, without building a [`RoomView`].
    fn shown_idx(&self, room: RoomId, topics: &[Arc<str>]) -> Option<usize> {
        let shown = self.room(room)?.shown?;
        topics.iter().position(|t| *t == shown)
    }

    /// Hash without absolute times (see [`Engine::hash_untimed`]).
    fn hash_untimed<H: Hasher>(&self, state: &mut H);
    /// Hash without absolute times and with every join_ref passed through
    /// `rename` (see [`crate::canon`]), built from what the engine's public
    /// queries show.
    fn hash_canonical(&self, state: &mut dyn Hasher, rename: &mut dyn FnMut(JoinRef) -> u64);
    /// Where a server message for `topic` stamped with `join_ref` (`None` for
    /// a broadcast) goes: `Some(incarnation)` when it reaches subscribers.
    fn route(&self, topic: &str, join_ref: Option<JoinRef>) -> Option<JoinRef>;
    /// Whether `from --trigger--> to` is a row of this engine's own table.
    fn table_allows(from: Phase, trigger: Trigger, to: Phase) -> bool;
    /// Feeds one output to the engine's own audit.
    /// The engine's own structural self-check, against its audit.
    fn audit_state(&self, audit: &Self::Audit) -> Result<(), Violation>;
    /// The engine's own quiescence check.
    fn audit_quiescent(&self) -> Result<(), Violation>;
}

/// The one instant every model engine is created at and every input is
/// stamped with. The real engine only moves its clock forward, and only to a
/// timer's deadline when the model fires that timer, so passing the epoch
/// leaves its clock alone: time in the model is "when the last timer fired".
#[allow(clippy::disallowed_methods)] // any instant will do; this one is read once
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The real engine's configuration in the model: small retry limits and no
/// jitter keep the space small without removing a behaviour (jitter only moves
/// deadlines, and the model fires timers in any order anyway).
pub fn model_config(setup: Setup) -> Config {
    Config {
        settling: setup.settling,
        max_attempts: setup.max_attempts,
        jitter_permille: 0,
        rejoin_backoff: vec![Duration::from_secs(1)],
        ..Config::default()
    }
}

impl Registry for Engine {
    type Audit = Audit;
    const NAME: &'static str = "engine";

    fn build(setup: Setup) -> Self {
        let mut engine = Engine::new(model_config(setup), epoch()).expect("model config is valid");
        engine.handle_socket_up(epoch());
        engine
    }

    fn subscribe(&mut self, topic: &str, sub: SubscriberId) -> Result<(), String> {
        Engine::subscribe(self, topic, sub, &JoinOptions::default(), epoch())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn unsubscribe(&mut self, topic: &str, sub: SubscriberId) -> bool {
        matches!(
            Engine::unsubscribe(self, topic, sub, epoch()),
            channel_registry::engine::Unsubscribed::Removed
        )
    }

    fn switch(&mut self, room: RoomId, topic: &str) -> Result<(), String> {
        Engine::switch(self, room, topic, &JoinOptions::default(), epoch())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn close_all(&mut self) {
        Engine::close_all(self, epoch());
    }

    fn join_reply(&mut self, topic: &str, join_ref: JoinRef, ok: bool) {
        let reply = if ok { JoinReply::Ok } else { JoinReply::Error };
        let _ = self.handle_join_reply(topic, join_ref, reply, epoch());
    }

    fn close(&mut self, topic: &str, join_ref: JoinRef) {
        let _ = self.handle_close(topic, join_ref, epoch());
    }

    fn error(&mut self, topic: &str, join_ref: JoinRef) {
        let _ = self.handle_error(topic, join_ref, epoch());
    }

    fn settle_result(&mut self, topic: &str, join_ref: JoinRef, ok: bool) {
        let _ = if ok {
            self.handle_settled(topic, join_ref, epoch())
        } else {
            self.handle_settle_failed(topic, join_ref, epoch())
        };
    }

    fn socket_up(&mut self) {
        self.handle_socket_up(epoch());
    }

    fn socket_down(&mut self) {
        self.handle_socket_down(epoch());
    }

    fn fire(&mut self, topic: &str, _kind: TimerKind) -> bool {
        self.fire_timer(topic)
    }

    /// The clock jumps to the latest armed deadline and the engine's own
    /// `handle_timeout` fires whatever is due. Which timers fire does not
    /// depend on the deadlines (all of them do), so states that differ only
    /// in deadlines still behave alike (see [`crate::canon`]).
    fn fire_all_due(&mut self) -> bool {
        let Some(latest) = self.topics().filter_map(|t| t.deadline).max() else {
            return false;
        };
        self.handle_timeout(latest);
        true
    }

    fn drain_into(
        &mut self,
        audit: &mut Audit,
        names: &[Arc<str>],
        out: &mut Vec<Output>,
    ) -> Option<Violation> {
        let mut found = None;
        while let Some(o) = Engine::poll_output(self) {
            if let Err(v) = audit.on_output(self, &o) {
                found.get_or_insert(v);
            }
            out::expand(self, names, o, out);
        }
        found
    }

    fn has_output(&self) -> bool {
        self.queued_outputs() > 0
    }

    fn status(&self, topic: &str) -> Option<TopicStatus> {
        self.topic(topic).map(|t| t.status)
    }

    fn views(&self, topics: &[Arc<str>], out: &mut Vec<TopicView>) {
        out.clear();
        out.resize(topics.len(), TopicView::default());
        for info in self.topics() {
            let Some(i) = topics.iter().position(|t| **t == *info.topic) else {
                continue;
            };
            let v = &mut out[i];
            if info.deadline.is_some() {
                // One timer per topic; its kind follows from the status (the
                // structural audit reports any other combination).
                v.timers = match info.status {
                    TopicStatus::Live {
                        phase: Phase::Connecting,
                        ..
                    } => TimerKind::Join,
                    TopicStatus::Live {
                        phase: Phase::Settling,
                        ..
                    } => TimerKind::Settle,
                    TopicStatus::Live {
                        phase: Phase::Draining,
                        ..
                    } => TimerKind::Grace,
                    _ => TimerKind::Backoff,
                }
                .bit();
            }
            v.attempts = info.attempts;
            for h in info.holders() {
                if let Holder::Subscriber(s) = h {
                    v.add_subscriber(s);
                }
            }
            v.status = Some(info.status);
        }
    }

    fn attempts(&self, topic: &str) -> u8 {
        self.topic(topic).map_or(0, |t| t.attempts)
    }

    fn active_join_ref(&self, topic: &str) -> Option<JoinRef> {
        Engine::active_join_ref(self, topic)
    }

    fn room(&self, room: RoomId) -> Option<RoomView> {
        Engine::room(self, room).map(|r| RoomView {
            shown: r.shown.map(Arc::from),
            pending: r.pending.map(Arc::from),
        })
    }

    fn shown_idx(&self, room: RoomId, topics: &[Arc<str>]) -> Option<usize> {
        let shown = Engine::room(self, room)?.shown?;
        topics.iter().position(|t| **t == *shown)
    }

    fn hash_untimed<H: Hasher>(&self, state: &mut H) {
        Engine::hash_untimed(self, state);
    }

    fn hash_canonical(&self, h: &mut dyn Hasher, rename: &mut dyn FnMut(JoinRef) -> u64) {
        // Collected on the stack and handed to the checker's hasher in a few
        // large writes: a dynamic call per small write costs more than the
        // hashing itself.
        let mut h = canon::Buffered::new(h);
        self.is_socket_up().hash(&mut h);
        let mut hash_topic = |t: &TopicInfo<'_>| {
            t.topic.hash(&mut h);
            match t.status {
                TopicStatus::Live { join_ref, phase } => {
                    (0u8, rename(join_ref), phase).hash(&mut h)
                }
                TopicStatus::Retrying => 1u8.hash(&mut h),
                TopicStatus::Offline => 2u8.hash(&mut h),
                TopicStatus::Failed(reason) => (3u8, reason).hash(&mut h),
                other => format!("{other:?}").hash(&mut h),
            }
            t.holder_count().hash(&mut h);
            for holder in t.holders() {
                holder.hash(&mut h);
            }
            t.attempts.hash(&mut h);
            t.deadline.is_some().hash(&mut h);
        };
        // Name order: the engine's behaviour does not depend on its slot
        // layout (bulk operations walk topics in name order). Sorted on the
        // stack: the model has a handful of topics.
        let mut few: [Option<TopicInfo<'_>>; 8] = Default::default();
        let mut len = 0;
        let mut more = Vec::new();
        for t in self.topics() {
            match few.get_mut(len) {
                Some(slot) => {
                    *slot = Some(t);
                    len += 1;
                }
                None => more.push(t),
            }
        }
        if more.is_empty() {
            let few = &mut few[..len];
            few.sort_unstable_by(|a, b| {
                let (a, b) = (a.as_ref().map(|t| t.topic), b.as_ref().map(|t| t.topic));
                a.cmp(&b)
            });
            few.iter().flatten().for_each(&mut hash_topic);
        } else {
            let mut all: Vec<TopicInfo<'_>> = few.into_iter().flatten().chain(more).collect();
            all.sort_unstable_by(|a, b| a.topic.cmp(b.topic));
            all.iter().for_each(&mut hash_topic);
        }
        for id in self.room_ids() {
            let r = Engine::room(self, id).expect("listed room exists");
            (id, r.shown, r.pending).hash(&mut h);
        }
        self.queued_outputs().hash(&mut h);
        h.flush();
    }

    fn route(&self, topic: &str, join_ref: Option<JoinRef>) -> Option<JoinRef> {
        match Engine::route(self, topic, join_ref) {
            Route::Deliver { join_ref, .. } => Some(join_ref),
            _ => None,
        }
    }

    fn table_allows(from: Phase, trigger: Trigger, to: Phase) -> bool {
        next(from, trigger) == Some(to)
    }

    fn audit_state(&self, audit: &Audit) -> Result<(), Violation> {
        audit::check_structure(self)?;
        audit.check_against(self)
    }

    fn audit_quiescent(&self) -> Result<(), Violation> {
        audit::check_quiescent(self)
    }
}
