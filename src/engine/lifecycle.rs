//! How topics move: holding and releasing, incarnations, the phase table
//! applied, retries and failure. Every phase change goes through
//! [`Engine::transition`], which looks it up in [`next`].

use std::time::Duration;

use smallvec::SmallVec;

use crate::engine::error::validate_topic;
use crate::engine::ids::{Holder, JoinRef, RoomId, TopicId};
use crate::engine::output::{Effect, Event, FailReason, IgnoreReason, InputKind};
use crate::engine::phase::{next, Phase, Trigger};
use crate::engine::store::{
    hash32, holder_position, pack, unpack, Lane, NewTopic, Packed, Status, MAX_HOLDER_ID,
};
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
        let packed = checked_pack(holder)?;
        let settling = options.settling.unwrap_or(self.config.settling);
        let hash = hash32(topic);
        let Some(idx) = self.store.find_hashed(topic, hash) else {
            return self
                .create_topic(topic, hash, packed, options, settling)
                .map(|i| (i, true));
        };
        let limit = self.config.limits.max_holders_per_topic;
        let entry = self.store.get(idx);
        if entry.settling != settling
            || !self.store.params.is(entry.params, options.params.as_ref())
        {
            return Err(Error::ParamsConflict {
                topic: topic.into(),
            });
        }
        let entry = self.store.get_mut(idx);
        let added = match holder_position(&entry.holders, packed) {
            Ok(_) => false,
            Err(pos) => {
                if entry.holders.len() >= limit {
                    return Err(Error::TooManyHolders {
                        topic: topic.into(),
                        limit,
                    });
                }
                entry.holders.insert(pos, packed);
                true
            }
        };
        match entry.status {
            Status::Live {
                phase: Phase::Draining,
                ..
            } => {
                let _ = self.transition(idx, Trigger::Revive);
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
        hash: u32,
        holder: Packed,
        options: &JoinOptions,
        settling: bool,
    ) -> Result<u32, Error> {
        validate_topic(topic, self.config.limits.max_topic_len)?;
        if self.store.len() >= self.config.limits.max_topics && !self.evict_one_draining() {
            return Err(Error::TooManyTopics {
                limit: self.config.limits.max_topics,
            });
        }
        let params = self.store.params.intern(options.params.as_ref());
        let idx = self.store.insert(NewTopic {
            name: topic,
            hash,
            holder,
            params,
            settling,
        });
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
                (a.deadline, a.name.as_bytes()).cmp(&(b.deadline, b.name.as_bytes()))
            });
        match victim {
            Some(idx) => self.transition(idx, Trigger::Evicted).is_ok(),
            None => false,
        }
    }

    /// Removes `holder` from the topic in `idx`; when it was the last one, the
    /// topic is released with `trigger` (`LastHolderLeft` or `Superseded`).
    /// Returns whether the holder was there.
    pub(crate) fn release(&mut self, idx: u32, holder: Holder, trigger: Trigger) -> bool {
        let Ok(packed) = checked_pack(holder) else {
            return false;
        };
        let entry = self.store.get_mut(idx);
        let Ok(pos) = holder_position(&entry.holders, packed) else {
            return false;
        };
        entry.holders.remove(pos);
        if entry.holders.is_empty() {
            if entry.join_ref().is_some() {
                let _ = self.transition(idx, trigger);
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
        self.store.arm(idx, deadline, Lane::Join);
        let topic = self.store.id(idx);
        self.emit_effect(Effect::Join { topic, join_ref });
    }

    /// A protocol or resource input for `(topic, join_ref)`: checked for
    /// staleness, then applied through the table.
    pub(crate) fn protocol_input(
        &mut self,
        idx: Option<u32>,
        join_ref: JoinRef,
        input: InputKind,
    ) -> Handled {
        let Some(idx) = idx else {
            return self.ignored(None, join_ref, input, IgnoreReason::UnknownTopic);
        };
        let entry = self.store.get(idx);
        let current = entry.join_ref();
        if current != Some(join_ref) {
            let id = self.store.id(idx);
            return self.ignored(Some(id), join_ref, input, IgnoreReason::Stale { current });
        }
        let trigger = match input {
            InputKind::JoinOk if entry.settling => Trigger::JoinOkSettling,
            InputKind::JoinOk => Trigger::JoinOk,
            InputKind::JoinError => Trigger::JoinError,
            InputKind::Close => Trigger::ServerClose,
            InputKind::Error => Trigger::ServerError,
            InputKind::Settled => Trigger::Settled,
            InputKind::SettleFailed => Trigger::SettleFailed,
            InputKind::Resync => Trigger::Resync,
        };
        match self.transition(idx, trigger) {
            Ok(_) => Handled::Applied,
            Err(reason) => {
                let id = self.store.id(idx);
                self.ignored(Some(id), join_ref, input, reason)
            }
        }
    }

    fn ignored(
        &mut self,
        topic: Option<TopicId>,
        join_ref: JoinRef,
        input: InputKind,
        reason: IgnoreReason,
    ) -> Handled {
        self.emit_event(Event::Ignored {
            topic,
            join_ref,
            input,
            reason,
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
        let _ = self.transition(idx, trigger);
    }

    /// The one place a phase changes. Looks the change up in the table; a pair
    /// that is not a row changes nothing and is returned as the reason.
    pub(crate) fn transition(&mut self, idx: u32, trigger: Trigger) -> Result<Phase, IgnoreReason> {
        let entry = self.store.get(idx);
        let Status::Live { join_ref, phase } = entry.status else {
            return Err(IgnoreReason::Stale { current: None });
        };
        let Some(to) = next(phase, trigger) else {
            return Err(IgnoreReason::NotApplicable { phase });
        };
        let topic = self.store.id(idx);
        if self.config.phase_events {
            self.emit_event(Event::PhaseChanged {
                topic,
                join_ref,
                from: phase,
                to,
                trigger,
            });
        }
        self.store.disarm(idx);
        let arm = match to {
            Phase::Destroyed => {
                self.destroy(idx, join_ref, phase, trigger);
                return Ok(to);
            }
            Phase::Settling => {
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
        if to == Phase::Active && self.store.get(idx).holders.iter().any(|p| p & 1 == 1) {
            self.complete_switches_to(idx);
        }
        Ok(to)
    }

    fn destroy(&mut self, idx: u32, join_ref: JoinRef, from: Phase, trigger: Trigger) {
        let topic = self.store.id(idx);
        if from == Phase::Settling {
            self.emit_effect(Effect::AbortSettling { topic, join_ref });
        }
        let leave = trigger.sends_leave() && self.socket_up;
        let removed = self.store.get(idx).holders.is_empty();
        self.emit_effect(Effect::End {
            topic,
            join_ref,
            leave,
            removed,
        });
        if removed {
            return self.forget(idx);
        }
        let reason = match trigger {
            Trigger::SocketDown => {
                self.store.get_mut(idx).status = Status::Offline;
                return;
            }
            Trigger::JoinError => FailReason::JoinRejected,
            Trigger::JoinTimeout => FailReason::JoinTimeout,
            Trigger::SettleFailed => FailReason::SettleFailed,
            Trigger::SettleTimeout => FailReason::SettleTimeout,
            Trigger::ServerError => FailReason::Crashed,
            Trigger::ServerClose if self.config.rejoin_on_server_close => {
                FailReason::ClosedByServer
            }
            Trigger::ServerClose => return self.fail(idx, FailReason::ClosedByServer),
            // A broken stream is repaired by a new incarnation at once; a
            // topic whose repairs never reach active fails like any other.
            Trigger::Resync if self.store.get(idx).attempts < self.config.max_attempts => {
                return self.start_incarnation(idx);
            }
            Trigger::Resync => return self.fail(idx, FailReason::Resync),
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
        let jitter = self.config.max_jitter(delay);
        let jitter = self
            .rng
            .up_to(u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX));
        let delay = delay.saturating_add(Duration::from_nanos(jitter));
        let at = self.after(delay);
        self.store.get_mut(idx).status = Status::Backoff;
        self.store.arm(idx, at, Lane::Backoff);
        let topic = self.store.id(idx);
        self.emit_event(Event::Retrying {
            topic,
            // This failure counts even when it ended an active incarnation.
            attempt: attempts.max(1),
            delay,
            reason,
        });
    }

    fn fail(&mut self, idx: u32, reason: FailReason) {
        let entry = self.store.get_mut(idx);
        entry.status = Status::Failed(reason);
        let topic = self.store.id(idx);
        let rooms: SmallVec<[RoomId; 4]> = rooms_of(&self.store.get(idx).holders).collect();
        for room in rooms {
            if self
                .rooms
                .get(&room)
                .is_some_and(|r| r.pending == Some(topic))
            {
                self.emit_event(Event::RoomSwitchFailed {
                    room,
                    topic,
                    reason,
                });
            }
        }
        self.emit_event(Event::TopicFailed { topic, reason });
    }

    /// Removes a topic that has no incarnation, reporting it.
    pub(crate) fn remove_topic(&mut self, idx: u32) {
        let topic = self.store.id(idx);
        self.forget(idx);
        self.emit_event(Event::TopicRemoved { topic });
    }

    /// Removes a topic (its timer, if any, is cancelled first).
    fn forget(&mut self, idx: u32) {
        self.store.disarm(idx);
        self.store.remove(idx);
    }
}

pub(crate) fn rooms_of(holders: &[Packed]) -> impl Iterator<Item = RoomId> + '_ {
    holders.iter().filter_map(|&p| match unpack(p) {
        Holder::Room(r) => Some(r),
        Holder::Subscriber(_) => None,
    })
}

/// A holder as stored, or the error for an id too large to store.
fn checked_pack(holder: Holder) -> Result<Packed, Error> {
    let id = match holder {
        Holder::Subscriber(s) => s.0,
        Holder::Room(r) => r.0,
    };
    if id > MAX_HOLDER_ID {
        return Err(Error::IdOutOfRange { id });
    }
    Ok(pack(holder))
}
