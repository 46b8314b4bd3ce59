//! The engine's outputs turned into frames, resource calls and the
//! application's events; pushes sent, buffered, flushed and failed as the
//! engine's phases say.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{Message, Payload};
use crate::engine::{
    Effect, Event as EngineEvent, FailReason, JoinRef, JoinReply, Output as EngineOutput, Phase,
    RoomId, TopicId, Trigger,
};
use crate::session::error::PushError;
use crate::session::events::{
    CloseReason, Diagnostic, Event, LostReason, Output, PushId, ResourceEffect, RoomEvent,
    ShownStatus, SubscriptionEvent,
};
use crate::session::pushes::PushState;
use crate::session::topics::RefKind;
use crate::session::{OverflowPolicy, Session};

/// Joins of ended incarnations remembered for their late reply.
const ENDED_JOINS_KEPT: usize = 1024;

impl Session {
    /// Drains the engine after an input: performs its effects and reports its
    /// events (which may feed the engine again; the loop runs until it is
    /// quiet), then keeps the push deadlines' heap tidy.
    pub(crate) fn pump(&mut self, now: Instant) {
        loop {
            self.drain_engine(now);
            if self.streams_dirty.is_empty() {
                break;
            }
            self.drain_streams(now);
        }
        self.report_statuses();
        self.pushes.prune();
    }

    /// Performs and reports the engine's outputs until it is quiet.
    pub(crate) fn drain_engine(&mut self, now: Instant) {
        while let Some(output) = self.engine.poll_output() {
            if let Some(topic) = output.topic() {
                if !self.touched.contains(&topic) {
                    self.touched.push(topic);
                }
            }
            match output {
                EngineOutput::Effect(effect) => self.perform(effect, now),
                EngineOutput::Event(event) => self.report(event, now),
            }
        }
    }

    /// Tells the subscriptions of every topic the last input touched its new
    /// status, when it changed.
    fn report_statuses(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for &topic in &touched {
            let Some(status) = self.engine.topic(topic).map(|t| t.status) else {
                continue;
            };
            let Some(side) = self.topics.get_mut(topic) else {
                continue;
            };
            if side.reported == Some(status) {
                continue;
            }
            side.reported = Some(status);
            for id in side.subscribers.clone() {
                self.emit(Event::SubscriptionStatus { id, status });
            }
        }
        self.touched = touched;
        self.touched.clear();
    }

    fn perform(&mut self, effect: Effect, now: Instant) {
        match effect {
            Effect::Join { topic, join_ref } => self.send_join(topic, join_ref, now),
            Effect::StartSettling { topic, join_ref } => {
                let Some(side) = self.topics.get_mut(topic) else {
                    return;
                };
                // A versioned stream settles on its mount.
                let mounts = side
                    .stream
                    .as_ref()
                    .is_some_and(|s| s.options.is_versioned());
                let waits_for_event = mounts || self.config.settle_on_event.is_some();
                if waits_for_event {
                    if side.settle_seen {
                        self.engine.handle_settled(topic, join_ref, now);
                    } else {
                        side.settle_waiting = true;
                    }
                } else if self.config.resources {
                    let topic = Arc::clone(&side.name);
                    self.outputs
                        .push_back(Output::Resource(ResourceEffect::StartSettling {
                            topic,
                            join_ref,
                        }));
                }
                self.flush_pushes(topic, true);
            }
            Effect::AbortSettling { topic, join_ref } => {
                if let Some(side) = self.topics.get_mut(topic) {
                    side.settle_waiting = false;
                    if self.config.resources {
                        let topic = Arc::clone(&side.name);
                        self.outputs
                            .push_back(Output::Resource(ResourceEffect::AbortSettling {
                                topic,
                                join_ref,
                            }));
                    }
                }
            }
            Effect::End {
                topic,
                join_ref,
                leave,
                removed,
            } => self.end_incarnation(topic, join_ref, leave, removed),
        }
    }

    fn send_join(&mut self, topic: TopicId, join_ref: JoinRef, now: Instant) {
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        side.current = Some(join_ref);
        side.response = Payload::empty();
        side.settle_seen = false;
        side.settle_waiting = false;
        if let Some(presence) = side.presence.as_mut() {
            presence.handle_join(join_ref.to_string());
        }
        let name = Arc::clone(&side.name);
        if self.config.resources {
            self.outputs
                .push_back(Output::Resource(ResourceEffect::Create {
                    topic: Arc::clone(&name),
                    join_ref,
                }));
        }
        let mut params = match side.params.resolve() {
            Ok(params) => params,
            Err(error) => {
                // The join cannot be sent: it fails like a rejected one, and
                // is retried on the rejoin ladder.
                side.detail = Some(Arc::from(error.to_string()));
                if let crate::session::ParamsError::ProviderPanicked { message } = error {
                    self.diagnose(Diagnostic::CallbackPanicked {
                        what: "join params provider",
                        message,
                    });
                }
                self.engine
                    .handle_join_reply(topic, join_ref, JoinReply::Error, now);
                return;
            }
        };
        self.stream_on_join(topic, join_ref, &mut params, now);
        if self.transmit(&Message::join(join_ref.to_string(), &*name, params)) {
            self.refs
                .insert(join_ref.get(), RefKind::Join { topic, join_ref });
        }
    }

    fn end_incarnation(&mut self, topic: TopicId, join_ref: JoinRef, leave: bool, removed: bool) {
        if self.refs.contains_key(&join_ref.get()) {
            self.ended_joins.push_back(join_ref.get());
            while self.ended_joins.len() > ENDED_JOINS_KEPT {
                if let Some(old) = self.ended_joins.pop_front() {
                    self.refs.remove(&old);
                }
            }
        }
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        let name = Arc::clone(&side.name);
        if side.current == Some(join_ref) {
            side.current = None;
            side.settle_waiting = false;
        }
        // No reply can come for pushes of an incarnation that is gone.
        let lost: Vec<PushId> = side.in_flight.drain(..).collect();
        if leave && self.conn.is_open() {
            let msg_ref = self.engine.mint_ref();
            if self.transmit(&Message::leave(
                join_ref.to_string(),
                msg_ref.to_string(),
                &*name,
            )) {
                self.refs.insert(msg_ref, RefKind::Leave { topic });
            }
        }
        if self.config.resources {
            self.outputs
                .push_back(Output::Resource(ResourceEffect::Destroy {
                    topic: Arc::clone(&name),
                    join_ref,
                }));
        }
        for id in lost {
            self.fail_push(id, PushError::ChannelLost);
        }
        if removed {
            self.topic_removed(topic);
        }
    }

    fn report(&mut self, event: EngineEvent, now: Instant) {
        match event {
            EngineEvent::PhaseChanged {
                topic,
                join_ref,
                from,
                to,
                trigger,
            } => self.phase_changed(topic, join_ref, from, to, trigger, now),
            EngineEvent::Retrying {
                topic,
                attempt,
                delay,
                reason,
            } => {
                let Some(side) = self.topics.get(topic) else {
                    return;
                };
                let detail = side.detail.clone();
                for id in side.subscribers.clone() {
                    self.emit(Event::Subscription {
                        id,
                        event: SubscriptionEvent::Rejoining {
                            reason,
                            detail: detail.clone(),
                            attempt,
                            delay,
                        },
                    });
                }
            }
            EngineEvent::TopicFailed { topic, reason } => self.topic_failed(topic, reason, now),
            EngineEvent::TopicRemoved { topic } => self.topic_removed(topic),
            EngineEvent::RoomShows { room, topic } => self.room_shows(room, topic),
            EngineEvent::RoomSwitchFailed {
                room,
                topic,
                reason,
            } => {
                let Some(side) = self.topics.get(topic) else {
                    return;
                };
                let (name, detail) = (Arc::clone(&side.name), side.detail.clone());
                if let Some(entry) = self.rooms.get_mut(&room) {
                    entry.state.failed = Some((Arc::clone(&name), reason));
                    self.emit(Event::Room {
                        id: room,
                        event: RoomEvent::SwitchFailed {
                            topic: name,
                            reason,
                            detail,
                        },
                    });
                }
                self.refresh_room(room);
            }
            EngineEvent::Ignored { input, reason, .. } => {
                self.stats.ignored_inputs += 1;
                self.diagnose(Diagnostic::Ignored {
                    what: format!("{input:?}: {reason:?}"),
                });
            }
        }
    }

    fn phase_changed(
        &mut self,
        topic: TopicId,
        join_ref: JoinRef,
        from: Phase,
        to: Phase,
        trigger: Trigger,
        _now: Instant,
    ) {
        match (from, to) {
            (Phase::Connecting | Phase::Settling, Phase::Active) => {
                let Some(side) = self.topics.get_mut(topic) else {
                    return;
                };
                let rejoin = std::mem::take(&mut side.lost);
                let response = side.response.clone();
                let name = Arc::clone(&side.name);
                let subscribers = side.subscribers.clone();
                let rooms = side.rooms.clone();
                for id in subscribers {
                    let was_joined = self
                        .subs
                        .get_mut(&id)
                        .map(|s| std::mem::replace(&mut s.joined, true));
                    self.emit(Event::Subscription {
                        id,
                        event: SubscriptionEvent::Joined {
                            join_ref,
                            response: response.clone(),
                            rejoin: rejoin || was_joined == Some(true),
                        },
                    });
                }
                for room in rooms {
                    let lost = self
                        .rooms
                        .get(&room)
                        .is_some_and(|r| r.state.shown_status != ShownStatus::Live);
                    if let Some(entry) = self.rooms.get_mut(&room).filter(|_| lost) {
                        entry.state.shown_status = ShownStatus::Live;
                        self.emit(Event::Room {
                            id: room,
                            event: RoomEvent::ShownRejoined {
                                topic: Arc::clone(&name),
                                join_ref,
                                response: response.clone(),
                            },
                        });
                    }
                }
                self.flush_pushes(topic, false);
            }
            (Phase::Active | Phase::Draining, Phase::Destroyed) => {
                let reason = match trigger {
                    Trigger::ServerError => LostReason::Crashed,
                    Trigger::ServerClose => LostReason::ClosedByServer,
                    Trigger::SocketDown => LostReason::SocketDown,
                    Trigger::Resync => LostReason::Resync,
                    _ => return,
                };
                let Some(side) = self.topics.get_mut(topic) else {
                    return;
                };
                if side.subscribers.is_empty() && side.rooms.is_empty() {
                    return;
                }
                side.lost = true;
                let name = Arc::clone(&side.name);
                let (subscribers, rooms) = (side.subscribers.clone(), side.rooms.clone());
                for id in subscribers {
                    self.emit(Event::Subscription {
                        id,
                        event: SubscriptionEvent::Lost { reason },
                    });
                }
                for room in rooms {
                    if let Some(entry) = self.rooms.get_mut(&room) {
                        entry.state.shown_status = ShownStatus::Lost(reason);
                        self.emit(Event::Room {
                            id: room,
                            event: RoomEvent::ShownLost {
                                topic: Arc::clone(&name),
                                reason,
                            },
                        });
                    }
                }
            }
            _ => {}
        }
    }

    /// The topic gave up: its subscriptions fail and end (they hold it no
    /// more), rooms showing it say so, and its buffered pushes fail.
    fn topic_failed(&mut self, topic: TopicId, reason: FailReason, now: Instant) {
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        let name = Arc::clone(&side.name);
        let detail = side.detail.clone();
        let subscribers: Vec<_> = side.subscribers.drain(..).collect();
        let buffered: Vec<_> = side.buffered.drain(..).collect();
        let rooms = side.rooms.clone();
        for id in buffered {
            self.fail_push(
                id,
                PushError::TopicFailed {
                    topic: Arc::clone(&name),
                    reason,
                    detail: detail.clone(),
                },
            );
        }
        for room in rooms {
            if let Some(entry) = self.rooms.get_mut(&room) {
                entry.state.shown_status = ShownStatus::Failed(reason);
                self.emit(Event::Room {
                    id: room,
                    event: RoomEvent::ShownFailed {
                        topic: Arc::clone(&name),
                        reason,
                        detail: detail.clone(),
                    },
                });
            }
        }
        for id in subscribers {
            self.subs.remove(&id);
            self.emit(Event::Subscription {
                id,
                event: SubscriptionEvent::Failed {
                    reason,
                    detail: detail.clone(),
                },
            });
            self.emit(Event::Subscription {
                id,
                event: SubscriptionEvent::Closed {
                    reason: CloseReason::TopicFailed,
                },
            });
            // Failed is terminal for the subscription: nothing retries for it.
            self.engine.unsubscribe(topic, id, now);
        }
    }

    /// The settle signal of `join_ref` (the configured settle event, or a
    /// versioned stream's mount): settles the topic if it waits for it, or
    /// is remembered for when it starts settling.
    pub(crate) fn settle_signal(&mut self, topic: TopicId, join_ref: JoinRef, now: Instant) {
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        if side.current != Some(join_ref) {
            return;
        }
        side.settle_seen = true;
        if std::mem::take(&mut side.settle_waiting) {
            self.engine.handle_settled(topic, join_ref, now);
        }
    }

    fn topic_removed(&mut self, topic: TopicId) {
        let Some(side) = self.topics.remove(topic) else {
            return;
        };
        if side.stream.is_some() {
            self.streams.retain(|t| *t != topic);
            self.streams_dirty.retain(|t| *t != topic);
        }
        for id in side.buffered.into_iter().chain(side.in_flight) {
            self.fail_push(
                id,
                PushError::Closed {
                    reason: CloseReason::Unsubscribed,
                },
            );
        }
    }

    fn room_shows(&mut self, room: RoomId, topic: TopicId) {
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        if !side.rooms.contains(&room) {
            side.rooms.push(room);
        }
        let (name, response) = (Arc::clone(&side.name), side.response.clone());
        let join_ref = side.current;
        let old = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.shown.replace(topic));
        if let Some(old) = old.filter(|old| *old != topic) {
            if let Some(side) = self.topics.get_mut(old) {
                side.rooms.retain(|r| *r != room);
            }
        }
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.state.shown_status = ShownStatus::Live;
            entry.state.failed = None;
            if let Some(join_ref) = join_ref {
                self.emit(Event::Room {
                    id: room,
                    event: RoomEvent::Shows {
                        topic: name,
                        join_ref,
                        response,
                    },
                });
            }
        }
        self.refresh_room(room);
    }

    /// Copies what the engine says a room shows and awaits into its state.
    pub(crate) fn refresh_room(&mut self, room: RoomId) {
        let info = self.engine.room(room).map(|r| (r.shown_id, r.pending_id));
        let name = |id: Option<TopicId>| {
            id.and_then(|id| self.topics.get(id))
                .map(|side| Arc::clone(&side.name))
        };
        let Some((shown, pending)) = info else {
            return;
        };
        let (shown_name, pending_name) = (name(shown), name(pending));
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.pending = pending;
            entry.state.shown = shown_name;
            entry.state.pending = pending_name;
        }
    }

    /// Presence changes of `topic`, to its subscriptions that asked for them.
    pub(crate) fn presence_events(&mut self, topic: TopicId) {
        loop {
            let Some(side) = self.topics.get_mut(topic) else {
                return;
            };
            let Some(event) = side.presence.as_mut().and_then(|p| p.poll_event()) else {
                return;
            };
            for id in side.subscribers.clone() {
                if !self.subs.get(&id).is_some_and(|s| s.presence) {
                    continue;
                }
                self.emit(Event::Subscription {
                    id,
                    event: SubscriptionEvent::Presence(event.clone()),
                });
            }
        }
    }

    // --- pushes ------------------------------------------------------------------------

    /// The join_ref a push on `topic` may be stamped with now, if it may go
    /// out: the topic is active (or settling, for a settling push) and the
    /// socket is open.
    pub(crate) fn sendable(&self, topic: TopicId, settling: bool) -> Option<JoinRef> {
        if !self.conn.is_open() {
            return None;
        }
        let status = self.engine.topic(topic)?.status;
        match status {
            crate::engine::TopicStatus::Live {
                join_ref,
                phase: Phase::Active,
            } => Some(join_ref),
            crate::engine::TopicStatus::Live {
                join_ref,
                phase: Phase::Settling,
            } if settling => Some(join_ref),
            _ => None,
        }
    }

    pub(crate) fn send_push(&mut self, id: PushId, join_ref: JoinRef) {
        let Some(push) = self.pushes.get(id) else {
            return;
        };
        let Some(side) = self.topics.get(push.topic) else {
            return;
        };
        let msg_ref = self.engine.mint_ref();
        let frame = self.codec.frame_client_push(
            Some(&join_ref.to_string()),
            Some(&msg_ref.to_string()),
            &side.name,
            &push.event,
            &push.payload,
        );
        match frame {
            Ok(frame) => {
                let topic = push.topic;
                self.stats.frames_out += 1;
                self.stats.bytes_out += frame.len() as u64;
                self.outputs.push_back(Output::Transmit(frame));
                self.refs.insert(msg_ref, RefKind::Push(id));
                if let Some(side) = self.topics.get_mut(topic) {
                    side.in_flight.push(id);
                }
                if let Some(push) = self.pushes.get_mut(id) {
                    push.state = PushState::InFlight { msg_ref, join_ref };
                }
            }
            Err(error) => {
                self.stats.encode_errors += 1;
                self.fail_push(id, PushError::Encode(error));
            }
        }
    }

    /// Puts a push in its topic's buffer, applying the overflow policy.
    pub(crate) fn buffer_push(&mut self, id: PushId, topic: TopicId) {
        let (capacity, policy) = (self.config.push_buffer, self.config.overflow);
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        let name = Arc::clone(&side.name);
        let overflow = || PushError::BufferOverflow {
            topic: Arc::clone(&name),
            capacity,
            policy,
        };
        if side.buffered.len() >= capacity {
            match policy {
                OverflowPolicy::DropOldest if capacity > 0 => {
                    if let Some(oldest) = side.buffered.pop_front() {
                        side.buffered.push_back(id);
                        self.fail_push(oldest, overflow());
                    }
                }
                _ => self.fail_push(id, overflow()),
            }
            return;
        }
        side.buffered.push_back(id);
    }

    /// Sends the buffered pushes of `topic` that may go now, in order.
    pub(crate) fn flush_pushes(&mut self, topic: TopicId, settling_only: bool) {
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        if side.buffered.is_empty() {
            return;
        }
        let waiting: Vec<PushId> = side.buffered.drain(..).collect();
        for id in waiting {
            let settling = self.pushes.get(id).is_some_and(|p| p.settling);
            match self.sendable(topic, settling) {
                Some(join_ref) if settling || !settling_only => self.send_push(id, join_ref),
                _ => {
                    if let Some(side) = self.topics.get_mut(topic) {
                        side.buffered.push_back(id);
                    }
                }
            }
        }
    }

    /// Fails every push whose deadline passed.
    pub(crate) fn expire_pushes(&mut self, now: Instant) {
        for (id, push) in self.pushes.take_expired(now) {
            if let PushState::InFlight { msg_ref, .. } = push.state {
                self.refs.remove(&msg_ref);
            }
            if let Some(side) = self.topics.get_mut(push.topic) {
                side.buffered.retain(|p| *p != id);
                side.in_flight.retain(|p| *p != id);
            }
            if push.reply {
                self.emit(Event::Push {
                    id,
                    outcome: Err(PushError::Timeout {
                        after: push.timeout,
                    }),
                });
            }
        }
    }

    /// A reply to a push in flight.
    pub(crate) fn on_push_reply(&mut self, id: PushId, reply: crate::codec::Reply) {
        let Some(push) = self.pushes.remove(id) else {
            return;
        };
        if let Some(side) = self.topics.get_mut(push.topic) {
            side.in_flight.retain(|p| *p != id);
        }
        if !push.reply {
            return;
        }
        let outcome = match reply.status {
            crate::codec::ReplyStatus::Error => Err(PushError::Rejected {
                response: reply.response,
            }),
            _ => Ok(reply),
        };
        self.emit(Event::Push { id, outcome });
    }

    /// Fails one push (wherever it waits).
    pub(crate) fn fail_push(&mut self, id: PushId, error: PushError) {
        let Some(push) = self.pushes.remove(id) else {
            return;
        };
        if let PushState::InFlight { msg_ref, .. } = push.state {
            self.refs.remove(&msg_ref);
        }
        if let Some(side) = self.topics.get_mut(push.topic) {
            side.buffered.retain(|p| *p != id);
            side.in_flight.retain(|p| *p != id);
        }
        if push.reply {
            self.emit(Event::Push {
                id,
                outcome: Err(error),
            });
        }
    }

    /// Encodes and queues a frame; false (reported) when it cannot be encoded.
    pub(crate) fn transmit(&mut self, message: &Message) -> bool {
        match self.codec.encode_client_message(message) {
            Ok(frame) => {
                self.stats.frames_out += 1;
                self.stats.bytes_out += frame.len() as u64;
                self.outputs.push_back(Output::Transmit(frame));
                true
            }
            Err(error) => {
                self.stats.encode_errors += 1;
                self.diagnose(Diagnostic::Unencodable {
                    topic: message.topic.clone(),
                    error: error.to_string(),
                });
                false
            }
        }
    }
}
