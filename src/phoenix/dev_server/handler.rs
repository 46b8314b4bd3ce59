//! The channel-handler interface: what a topic does on join and on each inbound event.
//!
//! Handlers are synchronous and return what Phoenix channel callbacks return (`{:ok, reply}`,
//! `{:reply, ...}`, `{:noreply, ...}`, `{:stop, ...}`, or a raise). Side effects — pushes,
//! broadcasts, presence tracking, a slow join — are recorded on the [`ChannelContext`] and
//! carried out by the socket afterwards, in Phoenix's order.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::SocketId;
use crate::phoenix::codec::{Payload, ReplyStatus};

/// A topic pattern: an exact topic (`room:lobby`) or a prefix ending in `*` (`room:*`, or `*`
/// for every topic), like the `channel "room:*"` routes of a Phoenix socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    prefix: String,
    wildcard: bool,
}

impl TopicPattern {
    /// Parse a pattern; a trailing `*` makes it a prefix match.
    pub fn new(pattern: &str) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => TopicPattern {
                prefix: prefix.to_owned(),
                wildcard: true,
            },
            None => TopicPattern {
                prefix: pattern.to_owned(),
                wildcard: false,
            },
        }
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        if self.wildcard {
            topic.starts_with(&self.prefix)
        } else {
            topic == self.prefix
        }
    }
}

impl From<&str> for TopicPattern {
    fn from(pattern: &str) -> Self {
        TopicPattern::new(pattern)
    }
}

impl From<String> for TopicPattern {
    fn from(pattern: String) -> Self {
        TopicPattern::new(&pattern)
    }
}

impl From<&String> for TopicPattern {
    fn from(pattern: &String) -> Self {
        TopicPattern::new(pattern)
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)?;
        if self.wildcard {
            f.write_str("*")?;
        }
        Ok(())
    }
}

/// What a channel does on join and for each inbound event. One instance serves one channel
/// incarnation (one join); it is created by the route's factory when the join arrives.
pub trait ChannelHandler: Send + 'static {
    /// Answer a `phx_join`. Effects recorded on `ctx` run after the join reply is sent, as
    /// Phoenix's `send(self(), :after_join)` does.
    fn join(&mut self, ctx: &mut ChannelContext<'_>, params: &Payload) -> JoinOutcome;

    /// Answer an inbound event. Effects recorded on `ctx` run before the reply is sent, as
    /// pushes and broadcasts inside Phoenix's `handle_in` do.
    fn handle_in(
        &mut self,
        ctx: &mut ChannelContext<'_>,
        event: &str,
        payload: Payload,
    ) -> HandleOutcome;
}

/// Creates the handler of a new channel incarnation for a topic.
pub type HandlerFactory = Arc<dyn Fn(&str) -> Box<dyn ChannelHandler> + Send + Sync>;

/// The answer to a join.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum JoinOutcome {
    /// `{:ok, response, socket}`: the channel is joined.
    Ok(Value),
    /// `{:error, response}`: the join is refused; no channel, no `phx_close`.
    Error(Value),
}

/// The answer to an inbound event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HandleOutcome {
    /// `{:reply, {status, response}, socket}`.
    Reply {
        /// The reply status.
        status: ReplyStatus,
        /// The response (binary stays binary).
        response: Payload,
    },
    /// `{:noreply, socket}`: the client's push will time out unless something else answers.
    NoReply,
    /// `{:stop, reason, [reply,] socket}`: optionally reply, then `phx_close`.
    Stop {
        /// A reply sent before the close.
        reply: Option<(ReplyStatus, Payload)>,
    },
    /// The channel raises: `phx_error`, and the topic is no longer joined.
    Crash,
}

impl HandleOutcome {
    /// An `ok` reply.
    pub fn ok(response: impl Into<Payload>) -> Self {
        HandleOutcome::Reply {
            status: ReplyStatus::Ok,
            response: response.into(),
        }
    }

    /// An `error` reply.
    pub fn error(response: impl Into<Payload>) -> Self {
        HandleOutcome::Reply {
            status: ReplyStatus::Error,
            response: response.into(),
        }
    }
}

/// An effect recorded by a handler, performed by the socket once the handler returns.
#[derive(Clone, Debug)]
pub(super) enum Effect {
    Push {
        event: String,
        payload: Payload,
    },
    PushAfter {
        delay: Duration,
        event: String,
        payload: Payload,
    },
    Broadcast {
        event: String,
        payload: Payload,
    },
    TrackPresence {
        key: String,
        meta: Map<String, Value>,
    },
    PushPresenceState,
}

/// What a handler can see and do besides returning its answer.
#[derive(Debug)]
pub struct ChannelContext<'a> {
    topic: &'a str,
    join_ref: &'a str,
    socket: SocketId,
    auth_token: Option<&'a str>,
    pub(super) effects: Vec<Effect>,
    pub(super) block: Duration,
}

impl<'a> ChannelContext<'a> {
    pub(super) fn new(
        topic: &'a str,
        join_ref: &'a str,
        socket: SocketId,
        auth_token: Option<&'a str>,
    ) -> Self {
        ChannelContext {
            topic,
            join_ref,
            socket,
            auth_token,
            effects: Vec::new(),
            block: Duration::ZERO,
        }
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// The channel's join_ref.
    pub fn join_ref(&self) -> &str {
        self.join_ref
    }

    /// The socket the channel lives on.
    pub fn socket(&self) -> SocketId {
        self.socket
    }

    /// The auth token the socket connected with (phoenix.js 1.8 `authToken`, sent in
    /// `Sec-WebSocket-Protocol`), decoded: what a Phoenix app checks in `connect/3` to
    /// authorise a join.
    pub fn auth_token(&self) -> Option<&str> {
        self.auth_token
    }

    /// Push `event` to this channel (`[join_ref, null, topic, event, payload]`).
    pub fn push(&mut self, event: impl Into<String>, payload: impl Into<Payload>) {
        self.effects.push(Effect::Push {
            event: event.into(),
            payload: payload.into(),
        });
    }

    /// Push `event` to this channel after `delay`, unless the incarnation has ended by then.
    pub fn push_after(
        &mut self,
        delay: Duration,
        event: impl Into<String>,
        payload: impl Into<Payload>,
    ) {
        self.effects.push(Effect::PushAfter {
            delay,
            event: event.into(),
            payload: payload.into(),
        });
    }

    /// Broadcast `event` to every member of the topic, this one included
    /// (`[null, null, topic, event, payload]`).
    pub fn broadcast(&mut self, event: impl Into<String>, payload: impl Into<Payload>) {
        self.effects.push(Effect::Broadcast {
            event: event.into(),
            payload: payload.into(),
        });
    }

    /// Track this channel in the topic's presence under `key` with `meta` (a `phx_ref` is
    /// added). Every member gets a `presence_diff` broadcast; the entry is removed, with a
    /// leave diff, when the channel ends.
    pub fn track_presence(&mut self, key: impl Into<String>, meta: Map<String, Value>) {
        self.effects.push(Effect::TrackPresence {
            key: key.into(),
            meta,
        });
    }

    /// Push the topic's full presence as `presence_state` to this channel.
    pub fn push_presence_state(&mut self) {
        self.effects.push(Effect::PushPresenceState);
    }

    /// Keep the socket busy for `duration` before answering. A join runs inside the socket
    /// in Phoenix, so every other frame on that socket — heartbeats included — waits too.
    pub fn block_for(&mut self, duration: Duration) {
        self.block = self.block.saturating_add(duration);
    }
}
