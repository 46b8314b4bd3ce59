//! Ordered streams inside the session: a topic's
//! [`OrderedStream`](crate::session::stream::OrderedStream) is fed the
//! topic's joins, join replies and numbered events, and its outputs become
//! pushes (acknowledgements, replay requests), new incarnations (rejoin,
//! resync), the settle signal of a versioned topic, and the readers' events.
//!
//! What readers see on an ordered topic:
//! - its numbered events as [`Event::Message`], each position at most once
//!   and in increasing order across every incarnation (a versioned stream
//!   starts again at version 1 after a resync, announced first);
//! - [`StreamEvent::Lost`] for positions that will never come (the server no
//!   longer holds them): never a silent skip;
//! - [`StreamEvent::Resync`] when a versioned stream broke: drop derived
//!   state; a room keeps showing the topic but shows nothing of it until the
//!   new mount's version 1 ([`RoomEvent::ShownLost`] with
//!   [`LostReason::Resync`](crate::session::LostReason::Resync), then
//!   [`RoomEvent::ShownRejoined`]);
//! - [`StreamEvent::Malformed`] for an event whose position is unusable.

mod options;
mod position;

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::codec::{Message, Payload, Reply, ReplyStatus};
use crate::engine::{JoinRef, TopicId};
use crate::session::error::PushError;
use crate::session::events::{Event, Recipient, Recipients, RoomEvent, SubscriptionEvent};
use crate::session::message::ChannelMessage;
use crate::session::stream::{
    OrderedStream, PositionError, RejoinReason, ResyncReason, StreamConfigError, StreamOutput,
    StreamStats,
};
use crate::session::topics::RefKind;
use crate::session::Session;

pub use options::{StreamOptions, StreamWire};

/// What happened to a topic's ordered stream that its readers must know.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamEvent {
    /// Positions `from..=to` will never be delivered: the server no longer
    /// holds them (beyond its replay window). Delivery goes on after `to`.
    Lost {
        /// First lost position.
        from: u64,
        /// Last lost position.
        to: u64,
    },
    /// A versioned stream broke: drop what was derived from it. Nothing more
    /// is delivered until the new incarnation's mount (version 1); pushes
    /// pending on the topic failed with [`PushError::Resynced`].
    Resync {
        /// Why.
        reason: ResyncReason,
    },
    /// A sequenced stream could not fill a gap by replay and rejoins with
    /// its last position; nothing is lost yet (the join replays).
    Rejoin {
        /// Why.
        reason: RejoinReason,
    },
    /// An event was dropped because its position is unusable.
    Malformed {
        /// What was wrong with it.
        error: PositionError,
    },
}

/// The session's side of one ordered topic.
pub(crate) struct TopicStream {
    stream: OrderedStream<ChannelMessage>,
    pub(crate) options: Arc<StreamOptions>,
    /// The acknowledgement awaiting its reply: ref, position, deadline.
    ack: Option<(u64, u64, Instant)>,
    /// The replay request awaiting its reply: ref, position, deadline.
    replay: Option<(u64, u64, Instant)>,
}

impl TopicStream {
    /// A stream for a new topic (the options were validated).
    pub(crate) fn new(options: Arc<StreamOptions>) -> Result<Self, StreamConfigError> {
        let stream = OrderedStream::new(options.config.clone())?;
        Ok(TopicStream {
            stream,
            options,
            ack: None,
            replay: None,
        })
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.stream.poll_timeout(),
            self.ack.map(|(_, _, at)| at),
            self.replay.map(|(_, _, at)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Session {
    /// A join of `topic` is about to go out: a sequenced stream's join params
    /// carry its last position.
    pub(crate) fn stream_on_join(
        &mut self,
        topic: TopicId,
        join_ref: JoinRef,
        params: &mut Value,
        now: Instant,
    ) {
        let Some(ts) = self.stream_mut(topic) else {
            return;
        };
        ts.stream.on_join(join_ref.get(), now);
        // The old incarnation's pushes died with it.
        let stale = [ts.ack.take(), ts.replay.take()];
        if let (Some(position), Value::Object(map)) = (ts.stream.resume_position(), params) {
            map.insert(ts.options.wire.resume_param.clone(), position.into());
        }
        for (msg_ref, _, _) in stale.into_iter().flatten() {
            self.refs.remove(&msg_ref);
        }
        self.stream_dirty(topic);
    }

    /// The oldest position the server says it holds, from a reply to a
    /// join or a replay request of `topic`.
    pub(crate) fn stream_earliest(&self, topic: TopicId, response: &Payload) -> Option<u64> {
        let ts = self.topics.get(topic)?.stream.as_ref()?;
        response
            .as_json()?
            .get(&ts.options.wire.earliest_field)?
            .as_u64()
    }

    /// The join of `join_ref` was answered ok; the server holds positions
    /// from `earliest` on, if it said.
    pub(crate) fn stream_joined(
        &mut self,
        topic: TopicId,
        join_ref: JoinRef,
        earliest: Option<u64>,
        now: Instant,
    ) {
        let Some(ts) = self.stream_mut(topic) else {
            return;
        };
        ts.stream.handle_joined(join_ref.get(), earliest, now);
        self.stream_dirty(topic);
    }

    /// A message of incarnation `current` of `topic`: true when the stream
    /// took it (it is delivered, or not, by the stream).
    pub(crate) fn stream_message(
        &mut self,
        topic: TopicId,
        current: JoinRef,
        message: &ChannelMessage,
        now: Instant,
    ) -> bool {
        let Some(ts) = self.stream_mut(topic) else {
            return false;
        };
        if !ts.options.wire.carries_position(message.event()) {
            return false;
        }
        let position = position::extract(&ts.options, message.payload());
        ts.stream
            .handle_event(current.get(), position, message.clone(), now);
        self.stream_dirty(topic);
        true
    }

    /// The reply to an acknowledgement or a replay request.
    pub(crate) fn stream_reply(
        &mut self,
        topic: TopicId,
        msg_ref: u64,
        reply: &Reply,
        now: Instant,
    ) {
        let earliest = self.stream_earliest(topic, &reply.response);
        let Some(ts) = self.stream_mut(topic) else {
            return;
        };
        let ok = reply.status == ReplyStatus::Ok;
        if let Some((_, upto, _)) = ts.ack.filter(|a| a.0 == msg_ref) {
            ts.ack = None;
            ts.stream.handle_ack_result(upto, ok, now);
        } else if let Some((_, from, _)) = ts.replay.filter(|r| r.0 == msg_ref) {
            ts.replay = None;
            let result = if ok { Ok(()) } else { Err(earliest) };
            ts.stream.handle_replay_result(from, result, now);
        }
        self.stream_dirty(topic);
    }

    /// The streams' timers and their pushes' deadlines.
    pub(crate) fn stream_deadline(&self) -> Option<Instant> {
        self.streams
            .iter()
            .filter_map(|t| self.topics.get(*t)?.stream.as_ref()?.next_deadline())
            .min()
    }

    /// Fires the streams' timers due at `now`; a push unanswered by its
    /// deadline counts as failed.
    pub(crate) fn stream_timers(&mut self, now: Instant) {
        for topic in self.streams.clone() {
            let Some(ts) = self.stream_mut(topic) else {
                continue;
            };
            ts.stream.handle_timeout(now);
            let mut expired = Vec::new();
            if let Some((msg_ref, upto, _)) = ts.ack.filter(|a| a.2 <= now) {
                ts.ack = None;
                ts.stream.handle_ack_result(upto, false, now);
                expired.push(msg_ref);
            }
            if let Some((msg_ref, from, _)) = ts.replay.filter(|r| r.2 <= now) {
                ts.replay = None;
                ts.stream.handle_replay_result(from, Err(None), now);
                expired.push(msg_ref);
            }
            for msg_ref in expired {
                self.refs.remove(&msg_ref);
            }
            self.stream_dirty(topic);
        }
    }

    /// Counters and position of `topic`'s ordered stream, if it has one.
    pub fn stream_stats(&self, topic: &str) -> Option<StreamStats> {
        let id = self.engine.topic_id(topic)?;
        Some(self.topics.get(id)?.stream.as_ref()?.stream.stats())
    }

    /// Acts on the outputs of the streams fed since the last call. Engine
    /// inputs made here are drained at once so that, say, a versioned
    /// topic's `Joined` comes before its version 1.
    pub(crate) fn drain_streams(&mut self, now: Instant) {
        while let Some(topic) = self.streams_dirty.pop() {
            loop {
                let output = self
                    .stream_mut(topic)
                    .and_then(|ts| ts.stream.poll_output());
                let Some(output) = output else {
                    break;
                };
                self.stream_output(topic, output, now);
            }
        }
    }

    fn stream_output(
        &mut self,
        topic: TopicId,
        output: StreamOutput<ChannelMessage>,
        now: Instant,
    ) {
        match output {
            StreamOutput::Deliver { item, .. } => self.deliver(topic, item),
            StreamOutput::SendAck { upto } => self.stream_push(topic, Pending::Ack(upto), now),
            StreamOutput::RequestReplay { from } => {
                self.stream_push(topic, Pending::Replay(from), now);
            }
            StreamOutput::Rejoin { reason } => {
                self.stream_event(topic, StreamEvent::Rejoin { reason });
                self.resync(topic, now);
            }
            StreamOutput::Resync { reason } => {
                self.stream_event(topic, StreamEvent::Resync { reason });
                self.fail_pending(topic);
                self.resync(topic, now);
            }
            StreamOutput::Settled { incarnation } => {
                let Some(join_ref) = JoinRef::new(incarnation) else {
                    return;
                };
                self.settle_signal(topic, join_ref, now);
                self.drain_engine(now);
            }
            StreamOutput::Lost { from, to } => {
                self.stream_event(topic, StreamEvent::Lost { from, to });
            }
            StreamOutput::Malformed { error } => {
                self.stream_event(topic, StreamEvent::Malformed { error });
            }
        }
    }

    /// A new incarnation of `topic`, now.
    fn resync(&mut self, topic: TopicId, now: Instant) {
        if let Some(join_ref) = self.topics.get(topic).and_then(|side| side.current) {
            self.engine.handle_resync(topic, join_ref, now);
            self.drain_engine(now);
        }
    }

    /// Fails the topic's pending pushes: the state they were made from is
    /// gone.
    fn fail_pending(&mut self, topic: TopicId) {
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        let name = Arc::clone(&side.name);
        let pending: Vec<_> = side
            .buffered
            .drain(..)
            .chain(side.in_flight.drain(..))
            .collect();
        for id in pending {
            self.fail_push(
                id,
                PushError::Resynced {
                    topic: Arc::clone(&name),
                },
            );
        }
    }

    /// Sends an acknowledgement or a replay request on the active
    /// incarnation; when there is none it fails at once (the stream retries
    /// or rejoins as its rules say).
    fn stream_push(&mut self, topic: TopicId, what: Pending, now: Instant) {
        let sendable = self.sendable(topic, false);
        let deadline = crate::session::socket::after(now, self.config.push_timeout);
        let Some(side) = self.topics.get_mut(topic) else {
            return;
        };
        let name = Arc::clone(&side.name);
        let Some(ts) = side.stream.as_mut() else {
            return;
        };
        let Some(join_ref) = sendable else {
            match what {
                Pending::Ack(upto) => ts.stream.handle_ack_result(upto, false, now),
                Pending::Replay(from) => ts.stream.handle_replay_result(from, Err(None), now),
            }
            return self.stream_dirty(topic);
        };
        let wire = &ts.options.wire;
        let (event, field, position) = match what {
            Pending::Ack(upto) => (wire.ack_event.clone(), &wire.ack_field, upto),
            Pending::Replay(from) => (wire.replay_event.clone(), &wire.replay_field, from),
        };
        let mut payload = serde_json::Map::new();
        payload.insert(field.clone(), position.into());
        let msg_ref = self.engine.mint_ref();
        let message = Message::push(
            join_ref.to_string(),
            msg_ref.to_string(),
            &*name,
            event,
            Value::Object(payload),
        );
        if !self.transmit(&message) {
            return;
        }
        self.refs.insert(msg_ref, RefKind::Stream { topic });
        let Some(ts) = self.stream_mut(topic) else {
            return;
        };
        match what {
            Pending::Ack(upto) => ts.ack = Some((msg_ref, upto, deadline)),
            Pending::Replay(from) => ts.replay = Some((msg_ref, from, deadline)),
        }
    }

    /// Hands a message of `topic` to its readers: the subscriptions that
    /// want its event and the rooms showing the topic.
    pub(crate) fn deliver(&mut self, topic: TopicId, message: ChannelMessage) {
        let Some(side) = self.topics.get(topic) else {
            return;
        };
        let mut to = Recipients::new();
        for id in &side.subscribers {
            if self.subs.get(id).is_some_and(|s| s.wants(message.event())) {
                to.push(Recipient::Subscription(*id));
            }
        }
        for room in &side.rooms {
            to.push(Recipient::Room(*room));
        }
        if !to.is_empty() {
            self.emit(Event::Message { message, to });
        }
    }

    /// Tells the topic's subscriptions and rooms about its stream.
    fn stream_event(&mut self, topic: TopicId, event: StreamEvent) {
        let Some(side) = self.topics.get(topic) else {
            return;
        };
        let name = Arc::clone(&side.name);
        let (subscribers, rooms) = (side.subscribers.clone(), side.rooms.clone());
        for id in subscribers {
            self.emit(Event::Subscription {
                id,
                event: SubscriptionEvent::Stream(event.clone()),
            });
        }
        for id in rooms {
            self.emit(Event::Room {
                id,
                event: RoomEvent::Stream {
                    topic: Arc::clone(&name),
                    event: event.clone(),
                },
            });
        }
    }

    fn stream_mut(&mut self, topic: TopicId) -> Option<&mut TopicStream> {
        self.topics.get_mut(topic)?.stream.as_deref_mut()
    }

    fn stream_dirty(&mut self, topic: TopicId) {
        if !self.streams_dirty.contains(&topic) {
            self.streams_dirty.push(topic);
        }
    }
}

#[derive(Clone, Copy)]
enum Pending {
    Ack(u64),
    Replay(u64),
}
