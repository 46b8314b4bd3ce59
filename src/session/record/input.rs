//! Every input of a session as data: what a recording stores and a replay
//! applies, through the same methods a live driver calls.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::codec::{FrameRef, Payload};
use crate::engine::{JoinRef, RoomId, SubscriberId};
use crate::session::record::base64;
use crate::session::{
    ConnectionId, Disconnect, JoinParams, PushId, PushOptions, PushTarget, Session, StreamOptions,
    SubscribeOptions,
};

/// JSON kept as the exact text it was recorded with (numbers, key order and
/// spacing untouched).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text of `value`.
    pub fn from_value(value: &Value) -> RawJson {
        // A value's own text is always valid JSON.
        RawJson(RawValue::from_string(value.to_string()).unwrap_or_default())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON as a value.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

/// A push's payload in a recording: JSON text, or bytes in base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordedPayload {
    /// A JSON payload, as its text.
    Json(RawJson),
    /// A binary payload, base64.
    Binary(String),
}

impl RecordedPayload {
    /// The recorded form of `payload`.
    pub fn new(payload: &Payload) -> RecordedPayload {
        match payload {
            Payload::Json(value) => RecordedPayload::Json(RawJson::from_value(value)),
            Payload::Binary(bytes) => RecordedPayload::Binary(base64::encode(bytes)),
        }
    }

    /// The payload again (invalid base64 gives no bytes).
    pub fn to_payload(&self) -> Payload {
        match self {
            RecordedPayload::Json(raw) => Payload::Json(raw.to_value()),
            RecordedPayload::Binary(text) => {
                Payload::Binary(base64::decode(text).unwrap_or_default())
            }
        }
    }
}

/// Join params in a recording. Values are redacted unless the recording
/// keeps secrets; a provider is recorded by identity only (it is never
/// called for the recording), so that subscribers sharing one provider
/// still share one channel on replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedParams {
    /// The params' JSON, values redacted (`None`: no params, or a provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<RawJson>,
    /// The provider's number in the recording, when the params came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<u64>,
    /// Whether the topic settles (`None`: the engine's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settling: Option<bool>,
}

impl RecordedParams {
    /// Params a replay can use: the recorded JSON, or for a provider a fixed
    /// object naming it (the join payload differs, and replay compares join
    /// payloads redacted).
    pub fn to_params(&self) -> JoinParams {
        let params = match (&self.json, self.provider) {
            (Some(json), _) => JoinParams::json(json.to_value()),
            (None, Some(n)) => JoinParams::json(serde_json::json!({ "$provider": n })),
            (None, None) => JoinParams::none(),
        };
        match self.settling {
            Some(settling) => params.with_settling(settling),
            None => params,
        }
    }
}

/// The target of a recorded push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordedTarget {
    /// The topic of this subscription.
    Subscription(u64),
    /// The topic this room shows.
    Room(u64),
    /// A topic by name.
    Topic(String),
}

impl RecordedTarget {
    /// The recorded form of `target`.
    pub fn new(target: &PushTarget) -> RecordedTarget {
        match target {
            PushTarget::Subscription(id) => RecordedTarget::Subscription(id.0),
            PushTarget::Room(id) => RecordedTarget::Room(id.0),
            PushTarget::Topic(name) => RecordedTarget::Topic(name.to_string()),
        }
    }

    /// The target again.
    pub fn to_target(&self) -> PushTarget {
        match self {
            RecordedTarget::Subscription(id) => PushTarget::Subscription(SubscriberId(*id)),
            RecordedTarget::Room(id) => PushTarget::Room(RoomId(*id)),
            RecordedTarget::Topic(name) => PushTarget::Topic(Arc::from(name.as_str())),
        }
    }
}

/// One input of a [`Session`], as data: one variant per input method.
/// [`Session::apply`] dispatches it to that method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Input {
    /// [`Session::connect`].
    Connect,
    /// [`Session::reconnect`].
    Reconnect,
    /// [`Session::handle_connected`].
    Connected {
        /// The attempt.
        id: u64,
    },
    /// [`Session::handle_disconnected`].
    Disconnected {
        /// The attempt or connection.
        id: u64,
        /// Why it ended.
        why: Disconnect,
    },
    /// [`Session::handle_frame`] with a text frame, as received.
    Text(String),
    /// [`Session::handle_frame`] with a binary frame, base64.
    Binary(String),
    /// [`Session::handle_timeout`].
    Timeout,
    /// [`Session::subscribe`].
    Subscribe {
        /// The subscription.
        id: u64,
        /// Its topic.
        topic: String,
        /// Its join params (redacted unless secrets are kept).
        #[serde(default)]
        params: RecordedParams,
        /// Its event filter.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events: Option<Vec<String>>,
        /// Whether it tracks presence.
        #[serde(default)]
        presence: bool,
        /// Its ordered stream, if it asked for one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<Box<StreamOptions>>,
    },
    /// [`Session::unsubscribe`].
    Unsubscribe {
        /// The subscription.
        id: u64,
    },
    /// [`Session::open_room`].
    OpenRoom {
        /// The room.
        id: u64,
    },
    /// [`Session::switch`].
    Switch {
        /// The room.
        id: u64,
        /// The topic to show.
        topic: String,
        /// Its join params (redacted unless secrets are kept).
        #[serde(default)]
        params: RecordedParams,
    },
    /// [`Session::close_room`].
    CloseRoom {
        /// The room.
        id: u64,
    },
    /// [`Session::push`].
    Push {
        /// The push.
        id: u64,
        /// Where it goes.
        target: RecordedTarget,
        /// Its event.
        event: String,
        /// Its payload.
        payload: RecordedPayload,
        /// Its own timeout, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<Duration>,
        /// Whether it is part of a settling handshake.
        #[serde(default)]
        settling: bool,
    },
    /// [`Session::cast`].
    Cast {
        /// Where it goes.
        target: RecordedTarget,
        /// Its event.
        event: String,
        /// Its payload.
        payload: RecordedPayload,
    },
    /// [`Session::handle_settled`].
    Settled {
        /// The topic.
        topic: String,
        /// The incarnation.
        join_ref: u64,
        /// `Ok`, or the failure's words.
        result: Result<(), Option<String>>,
    },
    /// [`Session::close_all`].
    CloseAll,
    /// [`Session::disconnect`].
    Disconnect,
}

impl Input {
    /// A frame received.
    pub fn frame(frame: FrameRef<'_>) -> Input {
        match frame {
            FrameRef::Text(text) => Input::Text(text.to_owned()),
            FrameRef::Binary(bytes) => Input::Binary(base64::encode(bytes)),
        }
    }

    /// A push, as [`Session::push`] takes it.
    pub fn push(
        id: PushId,
        target: &PushTarget,
        event: &str,
        payload: &Payload,
        options: PushOptions,
    ) -> Input {
        Input::Push {
            id: id.0,
            target: RecordedTarget::new(target),
            event: event.to_owned(),
            payload: RecordedPayload::new(payload),
            timeout: options.timeout,
            settling: options.settling,
        }
    }

    /// A cast, as [`Session::cast`] takes it.
    pub fn cast(target: &PushTarget, event: &str, payload: &Payload) -> Input {
        Input::Cast {
            target: RecordedTarget::new(target),
            event: event.to_owned(),
            payload: RecordedPayload::new(payload),
        }
    }

    /// A settling result, as [`Session::handle_settled`] takes it.
    pub fn settled(topic: &str, join_ref: JoinRef, result: &Result<(), Option<Arc<str>>>) -> Input {
        Input::Settled {
            topic: topic.to_owned(),
            join_ref: join_ref.get(),
            result: result
                .clone()
                .map_err(|detail| detail.as_deref().map(str::to_owned)),
        }
    }

    /// A short name for messages ("subscribe", "text frame", …).
    pub fn name(&self) -> &'static str {
        match self {
            Input::Connect => "connect",
            Input::Reconnect => "reconnect",
            Input::Connected { .. } => "connected",
            Input::Disconnected { .. } => "disconnected",
            Input::Text(_) => "text frame",
            Input::Binary(_) => "binary frame",
            Input::Timeout => "timeout",
            Input::Subscribe { .. } => "subscribe",
            Input::Unsubscribe { .. } => "unsubscribe",
            Input::OpenRoom { .. } => "open_room",
            Input::Switch { .. } => "switch",
            Input::CloseRoom { .. } => "close_room",
            Input::Push { .. } => "push",
            Input::Cast { .. } => "cast",
            Input::Settled { .. } => "settled",
            Input::CloseAll => "close_all",
            Input::Disconnect => "disconnect",
        }
    }
}

/// What an input returned to its caller, in a form a recording keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Done (or nothing to return).
    Done,
    /// The call named nothing known (an unknown subscription or room): it
    /// returned false.
    Unknown,
    /// The call was refused with this error.
    Refused(String),
}

impl Outcome {
    /// The outcome of a call returning a `Result`.
    pub fn of<T, E: fmt::Display>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::Refused(error.to_string()),
        }
    }

    /// The outcome of a call returning whether it found its target.
    pub fn found(found: bool) -> Outcome {
        if found {
            Outcome::Done
        } else {
            Outcome::Unknown
        }
    }
}

impl Session {
    /// Applies one recorded input at `now`, through the method a live driver
    /// calls for it, and says what that method returned. Outputs follow in
    /// [`Session::poll_output`] as usual.
    pub fn apply(&mut self, input: &Input, now: Instant) -> Outcome {
        match input {
            Input::Connect => self.connect(now),
            Input::Reconnect => self.reconnect(now),
            Input::Connected { id } => self.handle_connected(ConnectionId(*id), now),
            Input::Disconnected { id, why } => {
                self.handle_disconnected(ConnectionId(*id), why.clone(), now)
            }
            Input::Text(text) => self.handle_frame(FrameRef::Text(text), now),
            Input::Binary(text) => match base64::decode(text) {
                Some(bytes) => self.handle_frame(FrameRef::Binary(&bytes), now),
                None => return Outcome::Refused("the binary frame is not base64".to_owned()),
            },
            Input::Timeout => self.handle_timeout(now),
            Input::Subscribe {
                id,
                topic,
                params,
                events,
                presence,
                stream,
            } => {
                let mut options = SubscribeOptions::params(params.to_params());
                options.events = events.as_ref().map(|e| e.iter().cloned().collect());
                options.presence = *presence;
                options.stream = stream.as_deref().cloned().map(std::sync::Arc::new);
                return Outcome::of(&self.subscribe(SubscriberId(*id), topic, options, now));
            }
            Input::Unsubscribe { id } => {
                return Outcome::found(self.unsubscribe(SubscriberId(*id), now))
            }
            Input::OpenRoom { id } => return Outcome::of(&self.open_room(RoomId(*id))),
            Input::Switch { id, topic, params } => {
                return Outcome::of(&self.switch(RoomId(*id), topic, params.to_params(), now))
            }
            Input::CloseRoom { id } => return Outcome::found(self.close_room(RoomId(*id), now)),
            Input::Push {
                id,
                target,
                event,
                payload,
                timeout,
                settling,
            } => {
                let options = PushOptions {
                    timeout: *timeout,
                    settling: *settling,
                };
                let result = self.push(
                    PushId(*id),
                    target.to_target(),
                    event,
                    &payload.to_payload(),
                    options,
                    now,
                );
                return Outcome::of(&result);
            }
            Input::Cast {
                target,
                event,
                payload,
            } => {
                let result = self.cast(target.to_target(), event, &payload.to_payload(), now);
                return Outcome::of(&result);
            }
            Input::Settled {
                topic,
                join_ref,
                result,
            } => {
                let Some(join_ref) = JoinRef::new(*join_ref) else {
                    return Outcome::Refused("join_ref 0 names no incarnation".to_owned());
                };
                let result = result
                    .clone()
                    .map_err(|detail| detail.map(|d| Arc::from(d.as_str())));
                self.handle_settled(topic, join_ref, result, now);
            }
            Input::CloseAll => self.close_all(now),
            Input::Disconnect => self.disconnect(now),
        }
        Outcome::Done
    }
}
