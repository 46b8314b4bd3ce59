//! Frames from the server: decoded, replies matched to what they answer by
//! ref, channel messages routed by the engine to the current incarnation's
//! subscribers and rooms.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{event, FrameRef, Message, Reply, ReplyStatus, ServerMessage, PHOENIX_TOPIC};
use crate::engine::{JoinRef, JoinReply, Route, TopicId};
use crate::session::events::{Diagnostic, Output, ResourceEffect};
use crate::session::message::ChannelMessage;
use crate::session::topics::RefKind;
use crate::session::Session;

impl Session {
    /// A data frame from the server. A frame that cannot be decoded is
    /// counted and reported ([`Diagnostic::BadFrame`]); the session carries on.
    pub fn handle_frame(&mut self, frame: FrameRef<'_>, now: Instant) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        match self.codec.decode_server_frame(frame) {
            Ok(ServerMessage::Reply(reply)) => self.on_reply(reply, now),
            Ok(ServerMessage::Message(message)) => self.on_message(message, frame.len(), now),
            Err(error) => {
                self.stats.decode_errors += 1;
                self.diagnose(Diagnostic::BadFrame {
                    error: error.to_string(),
                });
            }
        }
        self.pump(now);
    }

    fn on_reply(&mut self, reply: Reply, now: Instant) {
        let kind = reply
            .msg_ref
            .as_deref()
            .and_then(|r| r.parse::<u64>().ok())
            .and_then(|r| Some((r, *self.refs.get(&r)?)));
        let Some((msg_ref, kind)) = kind else {
            return self.unmatched(reply);
        };
        match kind {
            RefKind::Heartbeat { sent } if reply.topic == PHOENIX_TOPIC => {
                self.refs.remove(&msg_ref);
                self.heartbeat_answered(msg_ref, sent, now);
            }
            RefKind::Join { topic, join_ref } if self.names(topic, &reply.topic) => {
                self.refs.remove(&msg_ref);
                self.on_join_reply(topic, join_ref, reply, now);
            }
            RefKind::Leave { topic } if self.names(topic, &reply.topic) => {
                self.refs.remove(&msg_ref);
            }
            RefKind::Stream { topic } if self.names(topic, &reply.topic) => {
                self.refs.remove(&msg_ref);
                self.stream_reply(topic, msg_ref, &reply, now);
            }
            RefKind::Push(id) => {
                let matches = self
                    .pushes
                    .get(id)
                    .is_some_and(|p| self.names(p.topic, &reply.topic));
                if !matches {
                    return self.unmatched(reply);
                }
                self.refs.remove(&msg_ref);
                self.on_push_reply(id, reply);
            }
            _ => self.unmatched(reply),
        }
    }

    /// Whether `topic`'s name is `name` (a reply must come from the topic its
    /// ref was sent on).
    fn names(&self, topic: TopicId, name: &str) -> bool {
        match self.topics.get(topic) {
            Some(side) => &*side.name == name,
            // A removed topic: only the engine can say (it reports stale).
            None => self.engine.topic_name(topic).is_none_or(|n| n == name),
        }
    }

    fn unmatched(&mut self, reply: Reply) {
        self.stats.unmatched_replies += 1;
        self.diagnose(Diagnostic::UnmatchedReply {
            topic: reply.topic,
            msg_ref: reply.msg_ref,
        });
    }

    fn on_join_reply(&mut self, topic: TopicId, join_ref: JoinRef, reply: Reply, now: Instant) {
        let ok = reply.status == ReplyStatus::Ok;
        let earliest = self.stream_earliest(topic, &reply.response);
        if let Some(side) = self.topics.get_mut(topic) {
            if side.current == Some(join_ref) {
                if ok {
                    side.response = reply.response;
                } else {
                    side.detail = Some(Arc::from(crate::session::error::describe_response(
                        &reply.response,
                    )));
                }
            }
        }
        let answer = if ok { JoinReply::Ok } else { JoinReply::Error };
        let applied = self.engine.handle_join_reply(topic, join_ref, answer, now);
        if ok && applied == crate::engine::Handled::Applied {
            self.mark_healthy(now);
            self.stream_joined(topic, join_ref, earliest, now);
        }
    }

    fn on_message(&mut self, message: Message, size: usize, now: Instant) {
        let close = message.event == event::CLOSE;
        if close || message.event == event::ERROR {
            // phx_close / phx_error carry the incarnation's join_ref; the
            // engine decides whether it is the current one.
            let Some(join_ref) = message.join_ref.as_deref().and_then(JoinRef::parse) else {
                return self.dropped(message);
            };
            if close {
                self.engine
                    .handle_close(message.topic.as_str(), join_ref, now);
            } else {
                self.engine
                    .handle_error(message.topic.as_str(), join_ref, now);
            }
            return;
        }
        let join_ref = match message.join_ref.as_deref() {
            None => None,
            Some(text) => match JoinRef::parse(text) {
                Some(r) => Some(r),
                None => return self.dropped(message),
            },
        };
        let (topic, current, deliver) = match self.engine.route(message.topic.as_str(), join_ref) {
            Route::Deliver { topic, join_ref } => (topic, join_ref, true),
            Route::ResourcesOnly { topic, join_ref } => (topic, join_ref, false),
            _ => return self.dropped(message),
        };
        let Some(side) = self.topics.get_mut(topic) else {
            return self.dropped(message);
        };
        let mut presence_error = None;
        if let (Some(presence), Some(value)) = (side.presence.as_mut(), message.payload.as_json()) {
            if let Err(error) =
                presence.handle_message(message.join_ref.as_deref(), &message.event, value)
            {
                presence_error = Some(error.to_string());
            }
        }
        let settle = self
            .config
            .settle_on_event
            .as_deref()
            .is_some_and(|e| e == message.event);
        if settle {
            self.settle_signal(topic, current, now);
        }
        if let Some(error) = presence_error {
            self.diagnose(Diagnostic::BadFrame { error });
        }
        let Some(side) = self.topics.get(topic) else {
            return;
        };
        let message = ChannelMessage::from_frame(
            Arc::clone(&side.name),
            message.event,
            message.payload,
            join_ref,
            size,
        );
        self.presence_events(topic);
        if self.config.resources {
            self.outputs
                .push_back(Output::Resource(ResourceEffect::Message {
                    join_ref: current,
                    message: message.clone(),
                }));
        }
        // An ordered topic's numbered events are delivered by its stream,
        // in order, settling included (a versioned topic mounts then).
        if self.stream_message(topic, current, &message, now) {
            return;
        }
        if !deliver {
            self.stats.dropped_messages += 1;
            return;
        }
        self.deliver(topic, message);
    }

    fn dropped(&mut self, message: Message) {
        self.stats.dropped_messages += 1;
        self.diagnose(Diagnostic::Dropped {
            topic: message.topic,
            event: message.event,
        });
    }
}
