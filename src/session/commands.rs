//! The application's commands: subscriptions, rooms, pushes, settling
//! results, close-all and disconnect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{event, Payload};
use crate::engine::{Phase, RoomId, SubscriberId, Switched, TopicId, TopicStatus};
use crate::session::error::{PushError, SubscribeError};
use crate::session::events::{
    CloseReason, CloseRequest, Event, Output, PushId, RoomEvent, SubscriptionEvent,
};
use crate::session::message::JoinParams;
use crate::session::ordered::{StreamOptions, TopicStream};
use crate::session::pushes::{PushEntry, PushState};
use crate::session::socket::{after, Conn};
use crate::session::topics::{RoomEntry, SubEntry, TopicSide};
use crate::session::Session;

/// How a subscription wants its topic.
#[derive(Clone, Debug, Default)]
pub struct SubscribeOptions {
    /// Join params (shared by every subscription of the topic).
    pub params: JoinParams,
    /// Only these events reach the subscription (`None`: all). The filter
    /// runs before anything is queued for it, so unwanted events cost the
    /// consumer nothing.
    pub events: Option<Arc<[String]>>,
    /// Track presence on the topic ([`SubscriptionEvent::Presence`]).
    pub presence: bool,
    /// Deliver the topic's numbered events as an ordered stream, gap-free
    /// across rejoins (shared by every holder of the topic: the first one
    /// sets it, later ones must ask for the same or nothing).
    pub stream: Option<Arc<StreamOptions>>,
}

impl SubscribeOptions {
    /// Options with these params.
    pub fn params(params: impl Into<JoinParams>) -> Self {
        SubscribeOptions {
            params: params.into(),
            ..SubscribeOptions::default()
        }
    }

    /// Only these events reach the subscription.
    #[must_use]
    pub fn with_events<I, S>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = Some(events.into_iter().map(Into::into).collect());
        self
    }

    /// Track presence on the topic.
    #[must_use]
    pub fn with_presence(mut self, on: bool) -> Self {
        self.presence = on;
        self
    }

    /// Deliver the topic's numbered events as an ordered stream (see
    /// [`StreamOptions`]).
    #[must_use]
    pub fn with_stream(mut self, stream: StreamOptions) -> Self {
        self.stream = Some(Arc::new(stream));
        self
    }

    /// The engine's join options: a versioned stream settles on its mount.
    fn join_options(&self) -> Result<crate::engine::JoinOptions, SubscribeError> {
        let mut options = self.params.options()?;
        if self.stream.as_ref().is_some_and(|s| s.is_versioned()) {
            options.settling = Some(true);
        }
        Ok(options)
    }
}

impl From<JoinParams> for SubscribeOptions {
    fn from(params: JoinParams) -> Self {
        SubscribeOptions::params(params)
    }
}

impl From<serde_json::Value> for SubscribeOptions {
    fn from(params: serde_json::Value) -> Self {
        SubscribeOptions::params(params)
    }
}

impl From<Option<serde_json::Value>> for SubscribeOptions {
    fn from(params: Option<serde_json::Value>) -> Self {
        SubscribeOptions::params(params)
    }
}

/// Where a push goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PushTarget {
    /// The topic of this subscription.
    Subscription(SubscriberId),
    /// The topic this room shows when the push is made.
    Room(RoomId),
    /// A topic by name (it must be held by a subscription or a room): what a
    /// topic's resources use, e.g. for a settling handshake.
    Topic(Arc<str>),
}

/// How one push behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// How long it may wait for its reply, from now (`None`: the session's
    /// push timeout).
    pub timeout: Option<Duration>,
    /// Part of the topic's settling handshake: it goes out while the topic
    /// settles (stamped with the current join_ref) instead of waiting for
    /// active.
    pub settling: bool,
}

/// Events the application may not push: the protocol's own.
const RESERVED: [&str; 6] = [
    event::JOIN,
    event::LEAVE,
    event::REPLY,
    event::CLOSE,
    event::ERROR,
    event::HEARTBEAT,
];

impl Session {
    /// Subscribes `id` to `topic`: one more holder of the topic's channel,
    /// which is joined if new, kept if joined, revived if draining. Its
    /// events and messages come as [`Event::Subscription`] and
    /// [`Event::Message`]; a subscription to an active topic is
    /// [`SubscriptionEvent::Joined`] at once.
    pub fn subscribe(
        &mut self,
        id: SubscriberId,
        topic: &str,
        options: impl Into<SubscribeOptions>,
        now: Instant,
    ) -> Result<(), SubscribeError> {
        let options = options.into();
        if self.subs.contains_key(&id) {
            return Err(SubscribeError::IdInUse { id: id.0 });
        }
        if let Conn::Down(reason @ CloseReason::Disconnected) = &self.conn {
            return Err(SubscribeError::Closed {
                reason: reason.clone(),
            });
        }
        let join_options = options.join_options()?;
        let stream = self.check_stream(topic, options.stream.as_ref())?;
        let subscribed = self.engine.subscribe(topic, id, &join_options, now)?;
        let topic_id = subscribed.topic;
        let side = self.side_for(topic_id, topic, &options.params, stream);
        side.subscribers.push(id);
        if options.presence && side.presence.is_none() {
            let mut presence = crate::session::presence::Presence::new(Default::default());
            if let Some(join_ref) = side.current {
                presence.handle_join(join_ref.to_string());
            }
            side.presence = Some(Box::new(presence));
        }
        let active = matches!(
            subscribed.status,
            TopicStatus::Live {
                phase: Phase::Active,
                ..
            }
        );
        let joined = active.then(|| (side.current, side.response.clone()));
        self.subs.insert(
            id,
            SubEntry {
                topic: topic_id,
                events: options.events,
                joined: active,
                presence: options.presence,
            },
        );
        if let Some((Some(join_ref), response)) = joined {
            self.emit(Event::Subscription {
                id,
                event: SubscriptionEvent::Joined {
                    join_ref,
                    response,
                    rejoin: false,
                },
            });
        }
        self.pump(now);
        Ok(())
    }

    /// Ends the subscription `id` ([`SubscriptionEvent::Closed`] with
    /// [`CloseReason::Unsubscribed`] follows). The channel is left when its
    /// last holder is gone, after the drain grace. Returns false for an
    /// unknown id.
    pub fn unsubscribe(&mut self, id: SubscriberId, now: Instant) -> bool {
        let Some(sub) = self.subs.remove(&id) else {
            return false;
        };
        if let Some(side) = self.topics.get_mut(sub.topic) {
            side.subscribers.retain(|s| *s != id);
        }
        self.engine.unsubscribe(sub.topic, id, now);
        self.emit(Event::Subscription {
            id,
            event: SubscriptionEvent::Closed {
                reason: CloseReason::Unsubscribed,
            },
        });
        self.pump(now);
        true
    }

    /// Opens room `id`: it shows nothing until its first
    /// [`Session::switch`] completes.
    pub fn open_room(&mut self, id: RoomId) -> Result<(), SubscribeError> {
        if self.rooms.contains_key(&id) {
            return Err(SubscribeError::IdInUse { id: id.0 });
        }
        if let Conn::Down(reason @ CloseReason::Disconnected) = &self.conn {
            return Err(SubscribeError::Closed {
                reason: reason.clone(),
            });
        }
        self.rooms.insert(id, RoomEntry::default());
        Ok(())
    }

    /// Switches room `id` to `topic`: it keeps showing its current topic
    /// until `topic` is active ([`RoomEvent::Shows`]), then releases the old
    /// one. Switching again before that abandons the pending topic at once.
    pub fn switch(
        &mut self,
        id: RoomId,
        topic: &str,
        options: impl Into<SubscribeOptions>,
        now: Instant,
    ) -> Result<Switched, SubscribeError> {
        if !self.rooms.contains_key(&id) {
            return Err(SubscribeError::UnknownRoom { id: id.0 });
        }
        let options = options.into();
        let join_options = options.join_options()?;
        let stream = self.check_stream(topic, options.stream.as_ref())?;
        let switched = self.engine.switch(id, topic, &join_options, now)?;
        if let Some(pending) = self.engine.room(id).and_then(|r| r.pending_id) {
            self.side_for(pending, topic, &options.params, stream);
        }
        // A switch that changes nothing (already shown or pending) keeps the
        // failure reported: the topic it names is still failed.
        let changed = !matches!(switched, Switched::AlreadyShown | Switched::AlreadyPending);
        if let Some(room) = self.rooms.get_mut(&id).filter(|_| changed) {
            room.state.failed = None;
        }
        self.refresh_room(id);
        self.pump(now);
        Ok(switched)
    }

    /// Closes room `id` ([`RoomEvent::Closed`] follows); its topics are
    /// released. Returns false for an unknown room.
    pub fn close_room(&mut self, id: RoomId, now: Instant) -> bool {
        if !self.rooms.contains_key(&id) {
            return false;
        }
        self.end_room(id, CloseReason::RoomClosed);
        self.engine.close_room(id, now);
        self.pump(now);
        true
    }

    /// Sends `event` with `payload` to the target's topic and reports the
    /// reply as [`Event::Push`] with `id`. While the topic is not active the
    /// push waits in its buffer; it is sent stamped with the active
    /// incarnation's join_ref, never an older one. Refused at once (and no
    /// event follows) when the event is reserved, the payload cannot be
    /// encoded or is over the frame limit, or the target is gone.
    pub fn push(
        &mut self,
        id: PushId,
        target: PushTarget,
        event: &str,
        payload: &Payload,
        options: PushOptions,
        now: Instant,
    ) -> Result<(), PushError> {
        self.enqueue_push(id, target, event, payload, options, true, now)
    }

    /// [`Session::push`] without a reply: sent when the channel is active
    /// (buffered until then, within the push timeout), and forgotten.
    pub fn cast(
        &mut self,
        target: PushTarget,
        event: &str,
        payload: &Payload,
        now: Instant,
    ) -> Result<(), PushError> {
        self.casts += 1;
        let id = PushId(CAST_IDS | self.casts);
        self.enqueue_push(
            id,
            target,
            event,
            payload,
            PushOptions::default(),
            false,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn enqueue_push(
        &mut self,
        id: PushId,
        target: PushTarget,
        event_name: &str,
        payload: &Payload,
        options: PushOptions,
        reply: bool,
        now: Instant,
    ) -> Result<(), PushError> {
        if RESERVED.contains(&event_name) {
            return Err(PushError::ReservedEvent {
                event: event_name.to_owned(),
            });
        }
        if let Conn::Down(reason) = &self.conn {
            return Err(PushError::Disconnected {
                reason: reason.clone(),
            });
        }
        let topic = self.push_topic(target)?;
        let side = self.topics.get(topic).ok_or(PushError::Closed {
            reason: CloseReason::Unsubscribed,
        })?;
        if let Some(TopicStatus::Failed(reason)) = self.engine.topic(topic).map(|t| t.status) {
            return Err(PushError::TopicFailed {
                topic: Arc::clone(&side.name),
                reason,
                detail: side.detail.clone(),
            });
        }
        let encoded = self.codec.encode_payload(payload)?;
        // A frame is its payload plus two refs, topic, event and punctuation.
        let size = encoded.len() + side.name.len() + event_name.len() + 48;
        if size > self.config.max_frame_size {
            return Err(PushError::TooLarge {
                size,
                limit: self.config.max_frame_size,
            });
        }
        if self.pushes.contains(id) {
            return Err(PushError::Encode(crate::codec::EncodeError::Json {
                detail: format!("push id {} is already in use", id.0),
            }));
        }
        let timeout = options.timeout.unwrap_or(self.config.push_timeout);
        self.pushes.insert(
            id,
            PushEntry {
                topic,
                event: event_name.to_owned(),
                payload: encoded,
                deadline: after(now, timeout),
                timeout,
                state: PushState::Buffered,
                settling: options.settling,
                reply,
            },
        );
        if let Some(join_ref) = self.sendable(topic, options.settling) {
            self.send_push(id, join_ref);
        } else {
            self.buffer_push(id, topic);
        }
        self.pump(now);
        Ok(())
    }

    fn push_topic(&self, target: PushTarget) -> Result<TopicId, PushError> {
        match target {
            PushTarget::Subscription(id) => match self.subs.get(&id) {
                Some(sub) => Ok(sub.topic),
                None => Err(self.gone(CloseReason::Unsubscribed)),
            },
            PushTarget::Room(id) => match self.rooms.get(&id) {
                Some(room) => room.shown.ok_or(PushError::NothingShown),
                None => Err(self.gone(CloseReason::RoomClosed)),
            },
            PushTarget::Topic(name) => self
                .engine
                .topic_id(&name)
                .ok_or_else(|| self.gone(CloseReason::Unsubscribed)),
        }
    }

    /// The ordered stream a new holder of `topic` brings, checked against
    /// the one the topic has: every holder reads the same stream.
    fn check_stream(
        &self,
        topic: &str,
        wanted: Option<&Arc<StreamOptions>>,
    ) -> Result<Option<TopicStream>, SubscribeError> {
        let existing = self
            .engine
            .topic_id(topic)
            .and_then(|id| self.topics.get(id))
            .map(|side| side.stream.as_ref().map(|s| &*s.options));
        match (existing, wanted) {
            (_, None) => Ok(None),
            (Some(Some(has)), Some(wanted)) if has == &**wanted => Ok(None),
            (Some(_), Some(_)) => Err(SubscribeError::StreamMismatch {
                topic: Arc::from(topic),
            }),
            (None, Some(wanted)) => Ok(Some(TopicStream::new(Arc::clone(wanted))?)),
        }
    }

    /// The side of `topic`, made (with its stream, if any) when new.
    fn side_for(
        &mut self,
        id: TopicId,
        topic: &str,
        params: &JoinParams,
        stream: Option<TopicStream>,
    ) -> &mut TopicSide {
        if let Some(stream) = stream {
            if !self.streams.contains(&id) {
                self.streams.push(id);
            }
            let side = self
                .topics
                .entry(id, || TopicSide::new(id, Arc::from(topic), params.clone()));
            side.stream.get_or_insert_with(|| Box::new(stream));
            return side;
        }
        self.topics
            .entry(id, || TopicSide::new(id, Arc::from(topic), params.clone()))
    }

    /// The error for a push whose target is gone: the session's own reason
    /// when it is down for good.
    fn gone(&self, otherwise: CloseReason) -> PushError {
        match &self.conn {
            Conn::Down(reason) => PushError::Disconnected {
                reason: reason.clone(),
            },
            _ => PushError::Closed { reason: otherwise },
        }
    }

    /// The resources of `topic`'s incarnation `join_ref` settled (`Ok`) or
    /// failed to (`Err` with their words). For a stale incarnation nothing
    /// happens.
    pub fn handle_settled(
        &mut self,
        topic: &str,
        join_ref: crate::engine::JoinRef,
        result: Result<(), Option<Arc<str>>>,
        now: Instant,
    ) {
        match result {
            Ok(()) => {
                self.engine.handle_settled(topic, join_ref, now);
            }
            Err(detail) => {
                let side = self
                    .engine
                    .topic_id(topic)
                    .and_then(|id| self.topics.get_mut(id));
                if let Some(side) = side.filter(|s| s.current == Some(join_ref)) {
                    side.detail = detail;
                }
                self.engine.handle_settle_failed(topic, join_ref, now);
            }
        }
        self.pump(now);
    }

    /// Ends every topic and room (logout): joined channels are left, every
    /// subscription and room ends with [`CloseReason::CloseAll`], every push
    /// fails. The socket stays connected.
    pub fn close_all(&mut self, now: Instant) {
        self.close_everything(CloseReason::CloseAll, now);
    }

    /// Shuts the session down: every topic is left and closed, the socket is
    /// closed with code 1000, and nothing reconnects until
    /// [`Session::connect`]; subscriptions and rooms end with
    /// [`CloseReason::Disconnected`].
    pub fn disconnect(&mut self, now: Instant) {
        self.close_everything(CloseReason::Disconnected, now);
        if let Conn::Open { id, .. } | Conn::Connecting { id, .. } = self.conn {
            self.outputs.push_back(Output::Close(CloseRequest {
                id,
                code: 1000,
                reason: "client disconnect",
            }));
            self.lose_socket(now);
        }
        self.conn = Conn::Down(CloseReason::Disconnected);
        self.emit(Event::Connection(
            crate::session::ConnectionState::Disconnected(CloseReason::Disconnected),
        ));
    }

    /// Every subscription and room ends with `reason`, every push fails, the
    /// engine closes everything (leaving joined channels if the socket is up).
    pub(crate) fn close_everything(&mut self, reason: CloseReason, now: Instant) {
        let mut subs: Vec<SubscriberId> = self.subs.keys().copied().collect();
        subs.sort_unstable();
        for id in subs {
            self.subs.remove(&id);
            self.emit(Event::Subscription {
                id,
                event: SubscriptionEvent::Closed {
                    reason: reason.clone(),
                },
            });
        }
        let mut rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
        rooms.sort_unstable();
        for id in rooms {
            self.end_room(id, reason.clone());
        }
        self.fail_all_pushes(&reason);
        for id in self.topics.ids() {
            if let Some(side) = self.topics.get_mut(id) {
                side.subscribers.clear();
                side.rooms.clear();
                side.buffered.clear();
                side.in_flight.clear();
            }
        }
        self.engine.close_all(now);
        self.pump(now);
    }

    /// Fails every push with `reason` (closed for close-all, disconnected
    /// otherwise).
    pub(crate) fn fail_all_pushes(&mut self, reason: &CloseReason) {
        let error = match reason {
            CloseReason::CloseAll => PushError::Closed {
                reason: reason.clone(),
            },
            _ => PushError::Disconnected {
                reason: reason.clone(),
            },
        };
        for (id, push) in self.pushes.drain() {
            if let Some(side) = self.topics.get_mut(push.topic) {
                side.buffered.retain(|p| *p != id);
                side.in_flight.retain(|p| *p != id);
            }
            if let PushState::InFlight { msg_ref, .. } = push.state {
                self.refs.remove(&msg_ref);
            }
            if push.reply {
                self.emit(Event::Push {
                    id,
                    outcome: Err(error.clone()),
                });
            }
        }
    }

    /// Removes room `id`, telling it why.
    pub(crate) fn end_room(&mut self, id: RoomId, reason: CloseReason) {
        let Some(room) = self.rooms.remove(&id) else {
            return;
        };
        if let Some(shown) = room.shown {
            if let Some(side) = self.topics.get_mut(shown) {
                side.rooms.retain(|r| *r != id);
            }
        }
        self.emit(Event::Room {
            id,
            event: RoomEvent::Closed { reason },
        });
    }
}

/// Casts get ids of their own, above every id a caller may choose.
const CAST_IDS: u64 = 1 << 63;
