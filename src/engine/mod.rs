//! The pure lifecycle engine: no IO, no clock, no async runtime.
//!
//! Inputs are the application's requests ([`Engine::subscribe`],
//! [`Engine::unsubscribe`], [`Engine::switch`], [`Engine::close_all`]) and the
//! `handle_*` methods (protocol replies, resource results, socket state,
//! [`Engine::handle_timeout`]). Outputs are drained with
//! [`Engine::poll_output`] (work for the driver and news for the
//! application, in order) and [`Engine::poll_timeout`] (when to call
//! `handle_timeout` next). Every input takes `now`; the engine never reads a
//! clock. After each input, drain the outputs fully.

mod canonical;
mod config;
mod error;
mod ids;
mod lifecycle;
mod output;
mod phase;
mod query;
mod rng;
mod rooms;
mod store;
#[cfg(test)]
mod tests;

pub mod audit;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

pub use config::{Config, Limits};
pub use error::{ConfigError, Error, TopicError};
pub use ids::{Holder, JoinRef, RoomId, SubscriberId, TopicId, TopicRef};
pub use output::{Effect, Event, FailReason, IgnoreReason, InputKind, Output};
pub use phase::{next, Phase, Trigger, TRANSITIONS};
pub use query::{RoomInfo, Route, Stats, TopicInfo, TopicStatus};

use rng::SplitMix64;
use rooms::Room;
use store::{Nanos, Status, Store};

/// Join options a holder asks a topic for. All holders of one topic must ask
/// for the same ones (a topic is one channel with one set of params).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JoinOptions {
    /// Join params as JSON object text (`None` = `{}`).
    pub params: Option<Arc<str>>,
    /// Settle before active; `None` = the registry's [`Config::settling`].
    pub settling: Option<bool>,
}

impl JoinOptions {
    /// Options with these params.
    pub fn with_params(params: impl Into<Arc<str>>) -> Self {
        JoinOptions {
            params: Some(params.into()),
            settling: None,
        }
    }
}

/// A server's answer to a join. The response itself (the rejection's reason)
/// stays with the driver, which has the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinReply {
    /// `{"status": "ok"}`.
    Ok,
    /// `{"status": "error"}`.
    Error,
}

/// What a subscribe did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// The topic's handle, for later inputs (`unsubscribe`, replies).
    pub topic: TopicId,
    /// False when the subscriber already held the topic (idempotent).
    pub newly_added: bool,
    /// Where the topic stands now.
    pub status: TopicStatus,
}

/// What an unsubscribe did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsubscribed {
    /// The subscriber was removed.
    Removed,
    /// The subscriber did not hold the topic (or the topic is unknown);
    /// nothing changed.
    NotSubscribed,
}

/// What a protocol or resource input did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// It changed the engine's state.
    Applied,
    /// It was ignored (and reported with [`Event::Ignored`]); nothing changed.
    Ignored(IgnoreReason),
}

/// What a room switch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Switched {
    /// The topic is joining; the room keeps showing its current topic until
    /// it is active.
    Pending,
    /// The topic was already active: the room shows it now.
    Shown,
    /// The room was already switching to this topic.
    AlreadyPending,
    /// The room already shows this topic and was switching nowhere.
    AlreadyShown,
    /// The room shows this topic; the switch it had pending was cancelled.
    Cancelled,
}

/// The lifecycle engine. See the [module docs](self) and the crate's drive
/// loop example.
///
/// `Clone + Hash + Eq + Debug`: equality and hashing are canonical (topics in
/// name order, slot layout and handles ignored), so a model checker can hold
/// the engine in its state and deduplicate equal states.
#[derive(Clone)]
pub struct Engine {
    config: Arc<Config>,
    epoch: Instant,
    /// The last `now` passed in: inputs in a burst share it, and comparing
    /// is cheaper than converting (not part of equality or hashing).
    last_input: Instant,
    now: Nanos,
    socket_up: bool,
    last_ref: u64,
    rng: SplitMix64,
    store: Store,
    rooms: BTreeMap<RoomId, Room>,
    outputs: VecDeque<Output>,
}

impl Engine {
    /// A new engine, with the socket down (call [`Engine::handle_socket_up`]
    /// once it is connected). `now` is the engine's epoch.
    pub fn new(config: Config, now: Instant) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            rng: SplitMix64::new(config.seed),
            config: Arc::new(config),
            epoch: now,
            last_input: now,
            now: 0,
            socket_up: false,
            last_ref: 0,
            store: Store::default(),
            rooms: BTreeMap::new(),
            outputs: VecDeque::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the engine believes the socket is up.
    pub fn is_socket_up(&self) -> bool {
        self.socket_up
    }

    /// Adds `subscriber` as a holder of `topic`, creating and joining the
    /// topic if it is new, reviving it if it is draining, and retrying it if
    /// it had failed. Idempotent for a subscriber that already holds it.
    /// Returns the topic's handle with what happened.
    pub fn subscribe(
        &mut self,
        topic: &str,
        subscriber: SubscriberId,
        options: &JoinOptions,
        now: Instant,
    ) -> Result<Subscribed, Error> {
        self.begin(now);
        let (idx, newly_added) = self.hold(topic, Holder::Subscriber(subscriber), options)?;
        Ok(Subscribed {
            topic: self.store.id(idx),
            newly_added,
            status: TopicStatus::of(&self.store.get(idx).status),
        })
    }

    /// Removes `subscriber` from `topic` (a name or a handle). The last
    /// holder leaving drains an active topic (kept joined for the grace
    /// period) and ends a joining one at once. An unknown subscriber or topic
    /// changes nothing.
    pub fn unsubscribe<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        subscriber: SubscriberId,
        now: Instant,
    ) -> Unsubscribed {
        self.begin(now);
        match self.locate(topic.into()) {
            Some(idx)
                if self.release(idx, Holder::Subscriber(subscriber), Trigger::LastHolderLeft) =>
            {
                Unsubscribed::Removed
            }
            _ => Unsubscribed::NotSubscribed,
        }
    }

    /// Ends everything (logout): every incarnation is destroyed (leaving the
    /// joined ones), every resource destroyed, every room and holder dropped.
    pub fn close_all(&mut self, now: Instant) {
        self.begin(now);
        self.rooms.clear();
        for idx in self.store.canonical_order() {
            if self.store.try_get(idx).is_none() {
                continue;
            }
            self.store.get_mut(idx).holders.clear();
            if self.store.get(idx).join_ref().is_some() {
                let _ = self.transition(idx, Trigger::CloseAll);
            } else {
                self.remove_topic(idx);
            }
        }
    }

    /// A join reply for `join_ref`.
    pub fn handle_join_reply<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        join_ref: JoinRef,
        reply: JoinReply,
        now: Instant,
    ) -> Handled {
        self.begin(now);
        let idx = self.locate(topic.into());
        let input = match reply {
            JoinReply::Ok => InputKind::JoinOk,
            JoinReply::Error => InputKind::JoinError,
        };
        self.protocol_input(idx, join_ref, input)
    }

    /// A `phx_close` for `join_ref`: the server ended the channel.
    pub fn handle_close<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        join_ref: JoinRef,
        now: Instant,
    ) -> Handled {
        self.input(topic.into(), join_ref, InputKind::Close, now)
    }

    /// A `phx_error` for `join_ref`: the channel crashed on the server.
    pub fn handle_error<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        join_ref: JoinRef,
        now: Instant,
    ) -> Handled {
        self.input(topic.into(), join_ref, InputKind::Error, now)
    }

    /// The resources of `join_ref` finished settling.
    pub fn handle_settled<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        join_ref: JoinRef,
        now: Instant,
    ) -> Handled {
        self.input(topic.into(), join_ref, InputKind::Settled, now)
    }

    /// The resources of `join_ref` failed to settle.
    pub fn handle_settle_failed<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        join_ref: JoinRef,
        now: Instant,
    ) -> Handled {
        self.input(topic.into(), join_ref, InputKind::SettleFailed, now)
    }

    /// The ordered stream of `join_ref` broke (a version gap, or positions
    /// only a rejoin can replay): the incarnation is left and a new one is
    /// joined at once (its params can carry where to resume). A topic whose
    /// repairs never reach active fails after `max_attempts`.
    pub fn handle_resync<'a>(
        &mut self,
        topic: impl Into<TopicRef<'a>>,
        join_ref: JoinRef,
        now: Instant,
    ) -> Handled {
        self.input(topic.into(), join_ref, InputKind::Resync, now)
    }

    fn input(
        &mut self,
        topic: TopicRef<'_>,
        join_ref: JoinRef,
        input: InputKind,
        now: Instant,
    ) -> Handled {
        self.begin(now);
        let idx = self.locate(topic);
        self.protocol_input(idx, join_ref, input)
    }

    /// The socket is connected: every topic that still has holders gets a new
    /// incarnation at once (as phoenix.js rejoins on reconnect), and retry
    /// counts start over.
    pub fn handle_socket_up(&mut self, now: Instant) {
        self.begin(now);
        if self.socket_up {
            return;
        }
        self.socket_up = true;
        for idx in self.store.canonical_order() {
            let Some(entry) = self.store.try_get(idx) else {
                continue;
            };
            let restart = match entry.status {
                Status::Offline | Status::Backoff => true,
                Status::Failed(reason) => reason != FailReason::ClosedByServer,
                Status::Live { .. } => false,
            };
            if restart {
                self.store.disarm(idx);
                self.store.get_mut(idx).attempts = 0;
                self.start_incarnation(idx);
            }
        }
    }

    /// The socket went down: every incarnation is destroyed (the server
    /// forgets them too) and topics with holders wait for the socket.
    pub fn handle_socket_down(&mut self, now: Instant) {
        self.begin(now);
        if !self.socket_up {
            return;
        }
        self.socket_up = false;
        for idx in self.store.canonical_order() {
            let Some(entry) = self.store.try_get(idx) else {
                continue;
            };
            match entry.status {
                Status::Live { .. } => {
                    let _ = self.transition(idx, Trigger::SocketDown);
                }
                Status::Backoff => {
                    self.store.disarm(idx);
                    self.store.get_mut(idx).status = Status::Offline;
                }
                Status::Offline | Status::Failed(_) => {}
            }
        }
    }

    /// Fires every timer due at `now`. Idempotent: a second call with the same
    /// `now` does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.begin(now);
        // Timers due together fire in topic order, not arming order, so that
        // engines that compare equal behave alike. A timer's firing touches
        // only its own topic, so the batch stays valid while it is fired.
        let mut due: SmallVec<[u32; 8]> = SmallVec::new();
        loop {
            while let Some(idx) = self.store.pop_due(self.now) {
                due.push(idx);
            }
            if due.is_empty() {
                return;
            }
            if due.len() > 1 {
                self.store.sort_by_name(&mut due);
            }
            for idx in due.drain(..) {
                self.fire(idx);
            }
        }
    }

    /// When [`Engine::handle_timeout`] should be called next, if any timer is
    /// armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.store.next_deadline().map(|at| self.instant(at))
    }

    /// The next output, in the order the engine produced them: an effect for
    /// the driver to perform or an event for the application. Drain until
    /// `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// How many outputs wait to be polled.
    pub fn queued_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// A fresh ref for a push or a heartbeat, from the same counter as join
    /// refs, so no two frames on a socket share a ref.
    pub fn mint_ref(&mut self) -> u64 {
        self.last_ref += 1;
        self.last_ref
    }

    /// Fires the timer of `topic` now, whatever its deadline, through the same
    /// code as [`Engine::handle_timeout`]; the clock moves to the deadline.
    /// For model checkers, which treat timers as events that may happen in any
    /// order. Returns false when the topic has no armed timer.
    #[doc(hidden)]
    pub fn fire_timer<'a>(&mut self, topic: impl Into<TopicRef<'a>>) -> bool {
        let Some(idx) = self.locate(topic.into()) else {
            return false;
        };
        let Some(at) = self.store.get(idx).deadline() else {
            return false;
        };
        if self.outputs.is_empty() {
            self.store.release_retired();
        }
        self.now = self.now.max(at);
        self.store.disarm(idx);
        self.fire(idx);
        true
    }

    pub(crate) fn emit_effect(&mut self, effect: Effect) {
        self.outputs.push_back(Output::Effect(effect));
    }

    pub(crate) fn emit_event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// The slot of a topic named in an input.
    pub(crate) fn locate(&self, topic: TopicRef<'_>) -> Option<u32> {
        match topic {
            TopicRef::Name(name) => self.store.find(name),
            TopicRef::Id(id) => self.store.resolve(id),
        }
    }

    /// Every input starts here: the clock moves, and the slots of topics
    /// removed earlier are freed once the outputs naming them were polled.
    fn begin(&mut self, now: Instant) {
        if self.outputs.is_empty() && self.store.has_retired() {
            self.store.release_retired();
        }
        if now == self.last_input {
            return;
        }
        self.last_input = now;
        let t = now.saturating_duration_since(self.epoch);
        let t = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        self.now = self.now.max(t);
    }

    fn instant(&self, at: Nanos) -> Instant {
        let d = Duration::from_nanos(at);
        self.epoch
            .checked_add(d)
            .unwrap_or_else(|| far_future(self.epoch))
    }

    /// The deadline `d` from now, saturating below [`store::NEVER`].
    fn after(&self, d: Duration) -> Nanos {
        self.now
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .min(store::NEVER - 1)
    }
}

/// The latest instant representable after `base` (deadlines that would
/// overflow `Instant` saturate to it).
fn far_future(base: Instant) -> Instant {
    // About 136 years; `Instant` cannot hold `Duration::MAX` past any base.
    let mut d = Duration::from_secs(u64::from(u32::MAX));
    loop {
        if let Some(t) = base.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}
