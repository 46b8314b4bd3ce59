//! How topics move: holding and releasing, incarnations, the phase table
//! applied, retries and failure. Every phase change goes through
//! [`Engine::transition`], which looks it up in [`next`].

use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use crate::engine::error::validate_topic;
use crate::engine::ids::{Holder, JoinRef, RoomId};
use crate::engine::output::{Effect, Event, FailReason, IgnoreReason, InputKind};
use crate::engine::phase::{next, Phase, Trigger};
use crate::engine::store::{Lane, Status, Store, TopicEntry};
use crate::engine::{Engine, Error, Handled, JoinOptions};

impl Engine {
    /// Adds `holder` to `topic` (creating the topic if new). Returns the slot
    /// and whether the holder is new. On error nothing changed.
    pub(crate) fn hold(
        &mut self,
        topic: &str,
        holder: Holder,
        options: &JoinOptions,
    ) -> Result<(u32, bool), Error> {
        let settling = options.settling.unwrap_or(self.config.settling);
        let hash = Store::hash(topic);
        let Some(idx) = self.store.find_hashed(topic, hash) else {
            return self
                .create_topic(topic, hash, holder, options, settling)
                .map(|i| (i, true));
        };
        let limit = self.config.limits.max_holders_per_topic;
        let entry = self.store.get_mut(idx);
        if entry.settling != settling || !same_params(&entry.params, &options.params) {
            return Err(Error::ParamsConflict {
                topic: entry.name.clone(),
            });
        }
        let added = match entry.holders.binary_search(&holder) {
            Ok(_) => false,
            Err(pos) => {
                if entry.holders.len() >= limit {
                    return Err(Error::TooManyHolders {
                        topic: entry.name.clone(),
                        limit,
                    });
                }
                entry.holders.insert(pos, holder);
                true
            }
        };
        match entry.status {
            Status::Live {
                phase: Phase::Draining,
                ..
            } => {
                let _ = self.transition(idx, Trigger::Revive, None);
            }
            Status::Failed(_) => {
                entry.attempts = 0;
                self.start_incarnation(idx);
            }
            _ => {}
        }
        Ok((idx, added))
    }

    fn create_topic(
        &mut self,
        topic: &str,
        hash: u64,
        holder: Holder,
        options: &JoinOptions,
        settling: bool,
    ) -> Result<u32, Error> {
        validate_topic(topic, self.config.limits.max_topic_len)?;
        if self.store.len() >= self.config.limits.max_topics && !self.evict_one_draining() {
            return Err(Error::TooManyTopics {
                limit: self.config.limits.max_topics,
            });
        }
        let mut holders = SmallVec::new();
        holders.push(holder);
        let idx = self.store.insert_hashed(
            TopicEntry {
                name: Arc::from(topic),
                holders,
                params: options.params.clone(),
                settling,
                attempts: 0,
                status: Status::Offline,
                deadline: None,
            },
            hash,
        );
        self.start_incarnation(idx);
        Ok(idx)
    }

    /// Closes the draining topic whose grace ends first (ties by name), to
    /// make room.
    fn evict_one_draining(&mut self) -> bool {
        let victim = self
            .store
            .in_grace()
            .filter(|&idx| self.store.get(idx).phase() == Some(Phase::Draining))
            .min_by(|&a, &b| {
                let (a, b) = (self.store.get(a), self.store.get(b));
                (a.deadline, &a.name).cmp(&(b.deadline, &b.name))
            });
        match victim {
            Some(idx) => self.transition(idx, Trigger::Evicted, None).is_ok(),
            None => false,
        }
    }

    /// Removes `holder` from the topic in `idx`; when it was the last one, the
    /// topic is released with `trigger` (`LastHolderLeft` or `Superseded`).
    /// Returns whether the holder was there.
    pub(crate) fn release(&mut self, idx: u32, holder: Holder, trigger: Trigger) -> bool {
        let entry = self.store.get_mut(idx);
        let Ok(pos) = entry.holders.binary_search(&holder) else {
            return false;
        };
        entry.holders.remove(pos);
        if entry.holders.is_empty() {
            if entry.join_ref().is_some() {
                let _ = self.transition(idx, trigger, None);
            } else {
                self.remove_topic(idx);
            }
        }
        true
    }

    /// Joins a new incarnation, or waits for the socket.
    pub(crate) fn start_incarnation(&mut self, idx: u32) {
        if !self.socket_up {
            self.store.get_mut(idx).status = Status::Offline;
            return;
        }
        self.last_ref += 1;
        let join_ref = JoinRef::new(self.last_ref).expect("refs start at 1");
        let deadline = self.after(self.config.join_timeout);
        let entry = self.store.get_mut(idx);
        entry.attempts = entry.attempts.saturating_add(1);
        entry.status = Status::Live {
            join_ref,
            phase: Phase::Connecting,
        };
        let topic = entry.name.clone();
        let params = entry.params.clone();
        self.store.arm(idx, deadline, Lane::Join);
        self.emit_effect(Effect::CreateResources {
            topic: topic.clone(),
            join_ref,
        });
        self.emit_effect(Effect::Join {
            topic: topic.clone(),
            join_ref,
            params,
        });
        self.emit_event(Event::PhaseChanged {
            topic,
            join_ref,
            from: None,
            to: Phase::Connecting,
            trigger: None,
        });
    }

    /// A protocol or resource input for `(topic, join_ref)`: checked for
    /// staleness, then applied through the table.
    pub(crate) fn protocol_input(
        &mut self,
        topic: &str,
        join_ref: JoinRef,
        input: InputKind,
        detail: Option<Arc<str>>,
    ) -> Handled {
        let Some(idx) = self.store.find(topic) else {
            return self.ignored(
                Arc::from(topic),
                join_ref,
                input,
                IgnoreReason::UnknownTopic,
            );
        };
        let entry = self.store.get(idx);
        let current = entry.join_ref();
        if current != Some(join_ref) {
            let name = entry.name.clone();
            return self.ignored(name, join_ref, input, IgnoreReason::Stale { current });
        }
        let trigger = match input {
            InputKind::JoinOk if entry.settling => Trigger::JoinOkSettling,
            InputKind::JoinOk => Trigger::JoinOk,
            InputKind::JoinError => Trigger::JoinError,
            InputKind::Close => Trigger::ServerClose,
            InputKind::Error => Trigger::ServerError,
            InputKind::Settled => Trigger::Settled,
            InputKind::SettleFailed => Trigger::SettleFailed,
        };
        match self.transition(idx, trigger, detail) {
            Ok(_) => Handled::Applied,
            Err(reason) => {
                let name = self.store.get(idx).name.clone();
                self.ignored(name, join_ref, input, reason)
            }
        }
    }

    fn ignored(
        &mut self,
        topic: Arc<str>,
        join_ref: JoinRef,
        input: InputKind,
        reason: IgnoreReason,
    ) -> Handled {
        self.emit_event(Event::Ignored {
            topic,
            join_ref,
            input,
            reason: reason.clone(),
        });
        Handled::Ignored(reason)
    }

    /// A timer of the topic in `idx` fired (already disarmed). Its kind
    /// follows from the topic's status.
    pub(crate) fn fire(&mut self, idx: u32) {
        let trigger = match self.store.get(idx).status {
            Status::Live { phase, .. } => match phase {
                Phase::Connecting => Trigger::JoinTimeout,
                Phase::Settling => Trigger::SettleTimeout,
                Phase::Draining => Trigger::GraceElapsed,
                Phase::Active | Phase::Destroyed => return,
            },
            Status::Backoff => return self.start_incarnation(idx),
            Status::Offline | Status::Failed(_) => return,
        };
        let _ = self.transition(idx, trigger, None);
    }

    /// The one place a phase changes. Looks the change up in the table; a pair
    /// that is not a row changes nothing and is returned as the reason.
    pub(crate) fn transition(
        &mut self,
        idx: u32,
        trigger: Trigger,
        detail: Option<Arc<str>>,
    ) -> Result<Phase, IgnoreReason> {
        let entry = self.store.get(idx);
        let Status::Live { join_ref, phase } = entry.status else {
            return Err(IgnoreReason::Stale { current: None });
        };
        let Some(to) = next(phase, trigger) else {
            return Err(IgnoreReason::NotApplicable { phase });
        };
        self.emit_event(Event::PhaseChanged {
            topic: entry.name.clone(),
            join_ref,
            from: Some(phase),
            to,
            trigger: Some(trigger),
        });
        self.store.disarm(idx);
        let arm = match to {
            Phase::Destroyed => {
                let topic = self.store.get(idx).name.clone();
                self.destroy(idx, topic, join_ref, phase, trigger, detail);
                return Ok(to);
            }
            Phase::Settling => {
                let topic = self.store.get(idx).name.clone();
                self.emit_effect(Effect::StartSettling { topic, join_ref });
                Some((self.config.settle_timeout, Lane::Settle))
            }
            Phase::Draining => Some((self.config.drain_grace, Lane::Grace)),
            Phase::Active | Phase::Connecting => None,
        };
        let entry = self.store.get_mut(idx);
        entry.status = Status::Live {
            join_ref,
            phase: to,
        };
        if to == Phase::Active {
            entry.attempts = 0;
        }
        if let Some((d, lane)) = arm {
            let at = self.after(d);
            self.store.arm(idx, at, lane);
        }
        if to == Phase::Active {
            self.complete_switches_to(idx);
        }
        Ok(to)
    }

    fn destroy(
        &mut self,
        idx: u32,
        topic: Arc<str>,
        join_ref: JoinRef,
        from: Phase,
        trigger: Trigger,
        detail: Option<Arc<str>>,
    ) {
        if from == Phase::Settling {
            self.emit_effect(Effect::AbortSettling {
                topic: topic.clone(),
                join_ref,
            });
        }
        if trigger.sends_leave() && self.socket_up {
            self.emit_effect(Effect::Leave {
                topic: topic.clone(),
                join_ref,
            });
        }
        self.emit_effect(Effect::DestroyResources { topic, join_ref });
        if self.store.get(idx).holders.is_empty() {
            return self.remove_topic(idx);
        }
        let reason = match trigger {
            Trigger::SocketDown => {
                self.store.get_mut(idx).status = Status::Offline;
                return;
            }
            Trigger::JoinError => FailReason::JoinRejected(detail),
            Trigger::JoinTimeout => FailReason::JoinTimeout,
            Trigger::SettleFailed => FailReason::SettleFailed(detail),
            Trigger::SettleTimeout => FailReason::SettleTimeout,
            Trigger::ServerError => FailReason::Crashed,
            Trigger::ServerClose if self.config.rejoin_on_server_close => {
                FailReason::ClosedByServer
            }
            Trigger::ServerClose => return self.fail(idx, FailReason::ClosedByServer),
            // Every other way to destroyed happens only without holders.
            _ => unreachable!("{trigger:?} destroyed a topic that still has holders"),
        };
        self.retry_or_fail(idx, reason);
    }

    fn retry_or_fail(&mut self, idx: u32, reason: FailReason) {
        let attempts = self.store.get(idx).attempts;
        if attempts >= self.config.max_attempts {
            return self.fail(idx, reason);
        }
        let delay = self.config.backoff(attempts);
        let max_jitter = delay.as_nanos() as u64 / 1000 * u64::from(self.config.jitter_permille);
        let delay = delay + Duration::from_nanos(self.rng.up_to(max_jitter));
        let at = self.after(delay);
        let entry = self.store.get_mut(idx);
        entry.status = Status::Backoff;
        let topic = entry.name.clone();
        self.store.arm(idx, at, Lane::Backoff);
        self.emit_event(Event::Retrying {
            topic,
            attempt: attempts,
            delay,
            reason,
        });
    }

    fn fail(&mut self, idx: u32, reason: FailReason) {
        let entry = self.store.get_mut(idx);
        entry.status = Status::Failed(reason.clone());
        let topic = entry.name.clone();
        let rooms: SmallVec<[RoomId; 4]> = rooms_of(&entry.holders).collect();
        for room in rooms {
            if self
                .rooms
                .get(&room)
                .is_some_and(|r| r.pending.as_deref() == Some(&*topic))
            {
                self.emit_event(Event::RoomSwitchFailed {
                    room,
                    topic: topic.clone(),
                    reason: reason.clone(),
                });
            }
        }
        self.emit_event(Event::TopicFailed { topic, reason });
    }

    pub(crate) fn remove_topic(&mut self, idx: u32) {
        self.store.disarm(idx);
        let entry = self.store.remove(idx);
        self.emit_event(Event::TopicRemoved { topic: entry.name });
    }
}

pub(crate) fn rooms_of(holders: &[Holder]) -> impl Iterator<Item = RoomId> + '_ {
    holders.iter().filter_map(|h| match h {
        Holder::Room(r) => Some(*r),
        Holder::Subscriber(_) => None,
    })
}

fn same_params(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    }
}
