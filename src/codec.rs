//! The Phoenix V2 serializer (`vsn=2.0.0`), both directions, plus the socket URL helper.
//!
//! Phoenix speaks two frame shapes over one WebSocket:
//!
//! - **text** frames, a JSON array `[join_ref, ref, topic, event, payload]`, where `join_ref`
//!   and `ref` are strings or `null`. Replies are `phx_reply` events whose payload is
//!   `{"status": "ok"|"error", "response": ...}`;
//! - **binary** frames, whose header is *asymmetric*: a client push carries four one-byte
//!   sizes (join_ref, ref, topic, event), a server push three (no ref), a reply four with the
//!   status where the event would be, a broadcast two (topic, event). The rest of the frame is
//!   the raw payload.
//!
//! The codec is split by sender because the two directions differ: a client encodes with
//! [`Codec::encode_client_message`] and decodes with [`Codec::decode_server_frame`]; a server
//! does the reverse with [`Codec::encode_server_message`] and [`Codec::decode_client_frame`].
//!
//! Decoding never panics: a malformed, truncated, oversized or wrongly typed frame is a
//! [`DecodeError`] that says what was wrong, so a caller can count it and carry on.
//!
//! In binary frames an absent ref is written as an empty string, as Phoenix does; decoding
//! therefore maps an empty binary ref back to `None`.
//!
//! ```
//! use channel_registry::codec::{websocket_url, Codec, Frame, FrameRef, Message, ServerMessage};
//! use serde_json::json;
//!
//! let url = websocket_url("ws://localhost:4000/socket", [("token", "s3cr3t")])?;
//! assert_eq!(url, "ws://localhost:4000/socket/websocket?token=s3cr3t&vsn=2.0.0");
//!
//! let codec = Codec::new();
//! let join = codec.encode_client_message(&Message::join("1", "room:42", json!({})))?;
//! assert_eq!(join, Frame::Text(r#"["1","1","room:42","phx_join",{}]"#.to_owned()));
//!
//! let frame = r#"["1","1","room:42","phx_reply",{"response":{},"status":"ok"}]"#;
//! match codec.decode_server_frame(FrameRef::Text(frame))? {
//!     ServerMessage::Reply(reply) => assert!(reply.is_ok()),
//!     other => panic!("expected a reply, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde_json::{Map, Value};

/// The protocol version this codec speaks; sent as `vsn` on the socket URL.
pub const PROTOCOL_VSN: &str = "2.0.0";

/// Default upper bound for one decoded frame (8 MiB).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 8 * 1024 * 1024;

/// Largest join_ref, ref, topic, event or status a binary frame can carry (one size byte).
pub const MAX_BINARY_FIELD_LEN: usize = 255;

/// The topic of socket-level messages such as heartbeats.
pub const PHOENIX_TOPIC: &str = "phoenix";

/// Event names with a meaning in the protocol itself.
pub mod event {
    /// Join a topic; its ref becomes the channel's join_ref.
    pub const JOIN: &str = "phx_join";
    /// Leave a topic.
    pub const LEAVE: &str = "phx_leave";
    /// A reply to a message, matched by ref.
    pub const REPLY: &str = "phx_reply";
    /// The server closed the channel (normal stop, leave, or duplicate join).
    pub const CLOSE: &str = "phx_close";
    /// The channel crashed on the server.
    pub const ERROR: &str = "phx_error";
    /// Socket keep-alive on the `phoenix` topic.
    pub const HEARTBEAT: &str = "heartbeat";
}

const KIND_PUSH: u8 = 0;
const KIND_REPLY: u8 = 1;
const KIND_BROADCAST: u8 = 2;

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// The payload of a message: JSON in text frames, raw bytes in binary frames.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Payload {
    /// A JSON value (an object for anything a client sends).
    Json(Value),
    /// Raw bytes, carried in a binary frame.
    Binary(Vec<u8>),
}

impl Payload {
    /// The empty JSON object `{}`, the payload of heartbeats, leaves and closes.
    pub fn empty() -> Self {
        Payload::Json(Value::Object(Map::new()))
    }

    /// The JSON value, if this is a JSON payload.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Payload::Json(value) => Some(value),
            Payload::Binary(_) => None,
        }
    }

    /// The bytes, if this is a binary payload.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Payload::Json(_) => None,
            Payload::Binary(bytes) => Some(bytes),
        }
    }

    /// Whether this payload travels in a binary frame.
    pub fn is_binary(&self) -> bool {
        matches!(self, Payload::Binary(_))
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload::Json(value)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Binary(bytes)
    }
}

/// A client payload encoded once ([`Codec::encode_payload`]): JSON object text, or bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodedPayload {
    /// JSON object text.
    Json(String),
    /// Bytes for a binary frame.
    Binary(Vec<u8>),
}

impl EncodedPayload {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match self {
            EncodedPayload::Json(text) => text.len(),
            EncodedPayload::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether it has no bytes (never true for JSON, which is at least `{}`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One protocol message that is not a reply: a client push (join, leave, heartbeat, event) or a
/// server push, broadcast, `phx_close` or `phx_error`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The join_ref of the channel incarnation the message belongs to; `None` for heartbeats,
    /// broadcasts and `presence_diff`.
    pub join_ref: Option<String>,
    /// The ref a reply will carry; `None` for server pushes and broadcasts.
    pub msg_ref: Option<String>,
    /// The topic, e.g. `room:42`.
    pub topic: String,
    /// The event name.
    pub event: String,
    /// The payload.
    pub payload: Payload,
}

impl Message {
    /// A message without refs.
    pub fn new(
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Self {
        Message {
            join_ref: None,
            msg_ref: None,
            topic: topic.into(),
            event: event.into(),
            payload: payload.into(),
        }
    }

    /// A client push on a joined channel: `[join_ref, ref, topic, event, payload]`.
    pub fn push(
        join_ref: impl Into<String>,
        msg_ref: impl Into<String>,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Self {
        Message {
            join_ref: Some(join_ref.into()),
            msg_ref: Some(msg_ref.into()),
            ..Message::new(topic, event, payload)
        }
    }

    /// A `phx_join`; as in phoenix.js its ref doubles as the new incarnation's join_ref.
    pub fn join(join_ref: impl Into<String>, topic: impl Into<String>, params: Value) -> Self {
        let join_ref = join_ref.into();
        Message::push(join_ref.clone(), join_ref, topic, event::JOIN, params)
    }

    /// A `phx_leave` of the incarnation `join_ref`.
    pub fn leave(
        join_ref: impl Into<String>,
        msg_ref: impl Into<String>,
        topic: impl Into<String>,
    ) -> Self {
        Message::push(join_ref, msg_ref, topic, event::LEAVE, Payload::empty())
    }

    /// A heartbeat: `[null, ref, "phoenix", "heartbeat", {}]`.
    pub fn heartbeat(msg_ref: impl Into<String>) -> Self {
        Message {
            msg_ref: Some(msg_ref.into()),
            ..Message::new(PHOENIX_TOPIC, event::HEARTBEAT, Payload::empty())
        }
    }

    /// A server push to one channel incarnation: `[join_ref, null, topic, event, payload]`.
    pub fn channel_push(
        join_ref: impl Into<String>,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Self {
        Message {
            join_ref: Some(join_ref.into()),
            ..Message::new(topic, event, payload)
        }
    }

    /// A broadcast: `[null, null, topic, event, payload]`.
    pub fn broadcast(
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Self {
        Message::new(topic, event, payload)
    }

    /// The server closing an incarnation: `[join_ref, join_ref, topic, "phx_close", {}]`.
    pub fn close(join_ref: impl Into<String>, topic: impl Into<String>) -> Self {
        Message::lifecycle(join_ref.into(), topic, event::CLOSE)
    }

    /// The server reporting a crashed incarnation: `[join_ref, join_ref, topic, "phx_error", {}]`.
    pub fn error(join_ref: impl Into<String>, topic: impl Into<String>) -> Self {
        Message::lifecycle(join_ref.into(), topic, event::ERROR)
    }

    fn lifecycle(join_ref: String, topic: impl Into<String>, event: &str) -> Self {
        Message {
            join_ref: Some(join_ref.clone()),
            msg_ref: Some(join_ref),
            ..Message::new(topic, event, Payload::empty())
        }
    }

    /// Whether this is a heartbeat on the `phoenix` topic.
    pub fn is_heartbeat(&self) -> bool {
        self.topic == PHOENIX_TOPIC && self.event == event::HEARTBEAT
    }
}

/// The status of a reply. Phoenix channels may reply with any status atom; `ok` and `error`
/// are the ones clients act on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyStatus {
    /// `"ok"`.
    Ok,
    /// `"error"`.
    Error,
    /// Any other status string.
    Other(String),
}

impl ReplyStatus {
    /// The status as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
            ReplyStatus::Other(status) => status,
        }
    }
}

impl From<&str> for ReplyStatus {
    fn from(status: &str) -> Self {
        match status {
            "ok" => ReplyStatus::Ok,
            "error" => ReplyStatus::Error,
            other => ReplyStatus::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ReplyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `phx_reply`: the answer to the message whose ref it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The join_ref of the incarnation; `None` for heartbeat and `unmatched topic` replies.
    pub join_ref: Option<String>,
    /// The ref of the message being answered.
    pub msg_ref: Option<String>,
    /// The topic.
    pub topic: String,
    /// `ok`, `error` or another status.
    pub status: ReplyStatus,
    /// The response: JSON in a text frame, bytes in a binary frame.
    pub response: Payload,
}

impl Reply {
    /// A reply answering `msg`: same join_ref, ref and topic.
    pub fn to(msg: &Message, status: ReplyStatus, response: impl Into<Payload>) -> Self {
        Reply {
            join_ref: msg.join_ref.clone(),
            msg_ref: msg.msg_ref.clone(),
            topic: msg.topic.clone(),
            status,
            response: response.into(),
        }
    }

    /// An `ok` reply answering `msg`.
    pub fn ok(msg: &Message, response: impl Into<Payload>) -> Self {
        Reply::to(msg, ReplyStatus::Ok, response)
    }

    /// An `error` reply answering `msg`.
    pub fn error(msg: &Message, response: impl Into<Payload>) -> Self {
        Reply::to(msg, ReplyStatus::Error, response)
    }

    /// Whether the status is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == ReplyStatus::Ok
    }

    /// The `reason` string of a JSON response such as `{"reason": "unmatched topic"}`.
    pub fn reason(&self) -> Option<&str> {
        self.response.as_json()?.get("reason")?.as_str()
    }
}

/// Anything a server sends: a reply, or a message (push, broadcast, close, error).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// A `phx_reply`.
    Reply(Reply),
    /// Any other event.
    Message(Message),
}

impl ServerMessage {
    /// The topic.
    pub fn topic(&self) -> &str {
        match self {
            ServerMessage::Reply(reply) => &reply.topic,
            ServerMessage::Message(msg) => &msg.topic,
        }
    }

    /// The event name (`phx_reply` for replies).
    pub fn event(&self) -> &str {
        match self {
            ServerMessage::Reply(_) => event::REPLY,
            ServerMessage::Message(msg) => &msg.event,
        }
    }

    /// The join_ref, if any.
    pub fn join_ref(&self) -> Option<&str> {
        match self {
            ServerMessage::Reply(reply) => reply.join_ref.as_deref(),
            ServerMessage::Message(msg) => msg.join_ref.as_deref(),
        }
    }

    /// The ref, if any.
    pub fn msg_ref(&self) -> Option<&str> {
        match self {
            ServerMessage::Reply(reply) => reply.msg_ref.as_deref(),
            ServerMessage::Message(msg) => msg.msg_ref.as_deref(),
        }
    }
}

impl From<Reply> for ServerMessage {
    fn from(reply: Reply) -> Self {
        ServerMessage::Reply(reply)
    }
}

impl From<Message> for ServerMessage {
    fn from(msg: Message) -> Self {
        ServerMessage::Message(msg)
    }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// An encoded WebSocket data frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A text frame (JSON array).
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

impl Frame {
    /// Borrow as a [`FrameRef`].
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        match self {
            Frame::Text(text) => FrameRef::Text(text),
            Frame::Binary(bytes) => FrameRef::Binary(bytes),
        }
    }

    /// Size on the wire, in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Convert into a WebSocket message for sending.
    #[cfg(feature = "phoenix")]
    pub fn into_ws_message(self) -> tokio_tungstenite::tungstenite::Message {
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        match self {
            Frame::Text(text) => WsMessage::text(text),
            Frame::Binary(bytes) => WsMessage::binary(bytes),
        }
    }
}

/// A borrowed WebSocket data frame, the input of decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameRef<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame.
    Binary(&'a [u8]),
}

impl<'a> FrameRef<'a> {
    /// The data frame inside a received WebSocket message; `None` for ping, pong and close,
    /// which carry no Phoenix message.
    #[cfg(feature = "phoenix")]
    pub fn from_ws_message(msg: &'a tokio_tungstenite::tungstenite::Message) -> Option<Self> {
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        match msg {
            WsMessage::Text(text) => Some(FrameRef::Text(text.as_str())),
            WsMessage::Binary(bytes) => Some(FrameRef::Binary(bytes)),
            _ => None,
        }
    }

    /// Size on the wire, in bytes.
    pub fn len(&self) -> usize {
        match self {
            FrameRef::Text(text) => text.len(),
            FrameRef::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A field of a frame, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `join_ref`.
    JoinRef,
    /// `ref`.
    Ref,
    /// `topic`.
    Topic,
    /// `event`.
    Event,
    /// A reply's `status`.
    Status,
    /// `payload`.
    Payload,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::JoinRef => "join_ref",
            Field::Ref => "ref",
            Field::Topic => "topic",
            Field::Event => "event",
            Field::Status => "status",
            Field::Payload => "payload",
        })
    }
}

/// Why a received frame could not be decoded. The frame should be counted and dropped; the
/// connection itself is still usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is larger than the configured limit.
    #[error(
        "frame of {size} bytes exceeds the {max}-byte limit; raise the codec's max frame size \
         if frames this large are expected"
    )]
    FrameTooLarge {
        /// Size of the frame.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A text frame that is not JSON.
    #[error(
        "text frame is not valid JSON ({detail}); a V2 text frame is a JSON array \
         [join_ref, ref, topic, event, payload]"
    )]
    InvalidJson {
        /// What the JSON parser reported.
        detail: String,
    },
    /// A text frame that is JSON but not an array.
    #[error(
        "text frame is a JSON {found}, not an array [join_ref, ref, topic, event, payload]; \
         make sure the socket URL carries vsn=2.0.0 (V1 frames are objects)"
    )]
    NotAnArray {
        /// The JSON type found.
        found: &'static str,
    },
    /// A text frame array with fewer than five elements.
    #[error(
        "text frame has {len} elements; a V2 frame needs 5: [join_ref, ref, topic, event, payload]"
    )]
    TooFewElements {
        /// Number of elements found.
        len: usize,
    },
    /// A field of a text frame has the wrong JSON type.
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field.
        field: Field,
        /// What the protocol requires.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A `phx_reply` whose payload is not `{"status": string, "response": ...}`.
    #[error("phx_reply payload must be {{\"status\": string, \"response\": value}}: {problem}")]
    MalformedReply {
        /// What is missing or wrong.
        problem: &'static str,
    },
    /// A binary frame without even a kind byte.
    #[error("binary frame is empty; a V2 binary frame starts with a kind byte (0 push, 1 reply, 2 broadcast)")]
    EmptyBinary,
    /// A binary frame of a kind the protocol does not define.
    #[error(
        "binary frame kind {kind} is unknown; V2 kinds are 0 (push), 1 (reply) and 2 (broadcast)"
    )]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// A binary reply or broadcast received from a client, which may only send pushes.
    #[error(
        "binary frame kind {kind} cannot come from a client; clients send only pushes (kind 0)"
    )]
    NotAClientKind {
        /// The kind byte.
        kind: u8,
    },
    /// A binary frame shorter than its header says.
    #[error(
        "binary frame is truncated: its header needs {needed} bytes but the frame has {available}"
    )]
    Truncated {
        /// Bytes the header and its declared fields need.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A binary string field that is not UTF-8.
    #[error("binary frame field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: Field,
    },
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A client message whose JSON payload is not an object.
    #[error(
        "a client message payload must be a JSON object, found {found}; wrap the value in an \
         object (Phoenix rejects non-map payloads)"
    )]
    PayloadNotObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A string too long for a one-byte size in a binary frame.
    #[error(
        "`{field}` is {len} bytes but a binary frame carries at most 255 bytes per field; \
         shorten it or send a JSON payload"
    )]
    FieldTooLong {
        /// The field.
        field: Field,
        /// Its length in bytes.
        len: usize,
    },
    /// A binary server push with a ref, which the binary push header cannot carry.
    #[error(
        "a binary server push cannot carry a ref (its header has no ref field); send a Reply, \
         or clear msg_ref"
    )]
    BinaryPushWithRef,
    /// JSON serialization failed.
    #[error("JSON serialization failed: {detail}")]
    Json {
        /// What the serializer reported.
        detail: String,
    },
}

/// Why an endpoint or its parameters do not make a socket URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The endpoint is not a ws/wss (or http/https) URL.
    #[error("endpoint `{endpoint}` must start with ws://, wss://, http:// or https://")]
    UnsupportedScheme {
        /// The endpoint given.
        endpoint: String,
    },
    /// The endpoint has no host.
    #[error("endpoint `{endpoint}` has no host; write it like ws://localhost:4000/socket")]
    MissingHost {
        /// The endpoint given.
        endpoint: String,
    },
    /// The endpoint contains whitespace or control characters.
    #[error("endpoint `{endpoint}` contains whitespace or a control character; percent-encode it")]
    InvalidCharacter {
        /// The endpoint given.
        endpoint: String,
    },
    /// The endpoint has a `#fragment`.
    #[error("endpoint `{endpoint}` has a fragment (#...); remove it")]
    Fragment {
        /// The endpoint given.
        endpoint: String,
    },
    /// A parameter the protocol sets itself.
    #[error(
        "socket parameter `{name}` is reserved: this client speaks the V2 protocol and always \
         sends vsn=2.0.0; remove it"
    )]
    ReservedParam {
        /// The parameter name.
        name: String,
    },
    /// A parameter with an empty name.
    #[error("a socket parameter has an empty name; give every parameter a name")]
    EmptyParamName,
}

// ---------------------------------------------------------------------------------------------
// Codec
// ---------------------------------------------------------------------------------------------

/// The V2 serializer with its frame-size limit. Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    max_frame_size: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

impl Codec {
    /// A codec with the default frame-size limit ([`DEFAULT_MAX_FRAME_SIZE`]).
    pub const fn new() -> Self {
        Codec {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }

    /// The same codec rejecting received frames larger than `max` bytes.
    #[must_use]
    pub const fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self
    }

    /// The largest frame [`decode_server_frame`](Self::decode_server_frame) and
    /// [`decode_client_frame`](Self::decode_client_frame) accept.
    pub const fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Client side: encode a message for the server. JSON payloads must be objects and go in
    /// a text frame; binary payloads go in a binary push (kind 0, four sizes).
    pub fn encode_client_message(&self, msg: &Message) -> Result<Frame, EncodeError> {
        match &msg.payload {
            Payload::Json(value) => {
                if !value.is_object() {
                    return Err(EncodeError::PayloadNotObject {
                        found: json_type(value),
                    });
                }
                encode_text(&msg.join_ref, &msg.msg_ref, &msg.topic, &msg.event, value)
            }
            Payload::Binary(data) => encode_binary(
                KIND_PUSH,
                &[
                    (Field::JoinRef, opt_str(&msg.join_ref)),
                    (Field::Ref, opt_str(&msg.msg_ref)),
                    (Field::Topic, &msg.topic),
                    (Field::Event, &msg.event),
                ],
                data,
            ),
        }
    }

    /// Client side: encode a payload once, so that it can be framed later with whatever
    /// refs it is sent under ([`Codec::frame_client_push`]). JSON payloads must be objects.
    pub fn encode_payload(&self, payload: &Payload) -> Result<EncodedPayload, EncodeError> {
        match payload {
            Payload::Json(value) => {
                if !value.is_object() {
                    return Err(EncodeError::PayloadNotObject {
                        found: json_type(value),
                    });
                }
                serde_json::to_string(value)
                    .map(EncodedPayload::Json)
                    .map_err(|err| EncodeError::Json {
                        detail: err.to_string(),
                    })
            }
            Payload::Binary(bytes) => Ok(EncodedPayload::Binary(bytes.clone())),
        }
    }

    /// Client side: a push frame around a payload encoded earlier; the same bytes as
    /// [`Codec::encode_client_message`] would give.
    pub fn frame_client_push(
        &self,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: &EncodedPayload,
    ) -> Result<Frame, EncodeError> {
        match payload {
            EncodedPayload::Json(text) => {
                let json = |e| EncodeError::Json {
                    detail: format!("{e}"),
                };
                let head =
                    serde_json::to_string(&(join_ref, msg_ref, topic, event)).map_err(json)?;
                let mut out = String::with_capacity(head.len() + text.len() + 1);
                out.push_str(&head[..head.len() - 1]);
                out.push(',');
                out.push_str(text);
                out.push(']');
                Ok(Frame::Text(out))
            }
            EncodedPayload::Binary(data) => encode_binary(
                KIND_PUSH,
                &[
                    (Field::JoinRef, join_ref.unwrap_or_default()),
                    (Field::Ref, msg_ref.unwrap_or_default()),
                    (Field::Topic, topic),
                    (Field::Event, event),
                ],
                data,
            ),
        }
    }

    /// Client side: decode a frame received from the server.
    pub fn decode_server_frame(&self, frame: FrameRef<'_>) -> Result<ServerMessage, DecodeError> {
        self.check_size(frame)?;
        match frame {
            FrameRef::Text(text) => {
                let parts = decode_text(text)?;
                if parts.event == event::REPLY {
                    let (status, response) = split_reply_payload(parts.payload)?;
                    Ok(ServerMessage::Reply(Reply {
                        join_ref: parts.join_ref,
                        msg_ref: parts.msg_ref,
                        topic: parts.topic,
                        status,
                        response: Payload::Json(response),
                    }))
                } else {
                    Ok(ServerMessage::Message(parts.into_message()))
                }
            }
            FrameRef::Binary(bytes) => match bytes.first() {
                None => Err(DecodeError::EmptyBinary),
                Some(&KIND_PUSH) => {
                    let ([join_ref, topic, event], data) =
                        split_binary(bytes, [Field::JoinRef, Field::Topic, Field::Event])?;
                    Ok(ServerMessage::Message(Message {
                        join_ref: non_empty(join_ref),
                        msg_ref: None,
                        topic: topic.to_owned(),
                        event: event.to_owned(),
                        payload: Payload::Binary(data.to_vec()),
                    }))
                }
                Some(&KIND_REPLY) => {
                    let ([join_ref, msg_ref, topic, status], data) = split_binary(
                        bytes,
                        [Field::JoinRef, Field::Ref, Field::Topic, Field::Status],
                    )?;
                    Ok(ServerMessage::Reply(Reply {
                        join_ref: non_empty(join_ref),
                        msg_ref: non_empty(msg_ref),
                        topic: topic.to_owned(),
                        status: ReplyStatus::from(status),
                        response: Payload::Binary(data.to_vec()),
                    }))
                }
                Some(&KIND_BROADCAST) => {
                    let ([topic, event], data) = split_binary(bytes, [Field::Topic, Field::Event])?;
                    Ok(ServerMessage::Message(Message::new(
                        topic,
                        event,
                        Payload::Binary(data.to_vec()),
                    )))
                }
                Some(&kind) => Err(DecodeError::UnknownKind { kind }),
            },
        }
    }

    /// Server side: encode a reply or message for a client. JSON goes in a text frame; a
    /// binary reply is kind 1, a binary message with neither join_ref nor ref a broadcast
    /// (kind 2), any other binary message a push (kind 0, no ref).
    pub fn encode_server_message(&self, msg: &ServerMessage) -> Result<Frame, EncodeError> {
        match msg {
            ServerMessage::Reply(reply) => match &reply.response {
                Payload::Json(response) => {
                    let mut body = Map::new();
                    body.insert(
                        "status".to_owned(),
                        Value::String(reply.status.as_str().to_owned()),
                    );
                    body.insert("response".to_owned(), response.clone());
                    encode_text(
                        &reply.join_ref,
                        &reply.msg_ref,
                        &reply.topic,
                        event::REPLY,
                        &Value::Object(body),
                    )
                }
                Payload::Binary(data) => encode_binary(
                    KIND_REPLY,
                    &[
                        (Field::JoinRef, opt_str(&reply.join_ref)),
                        (Field::Ref, opt_str(&reply.msg_ref)),
                        (Field::Topic, &reply.topic),
                        (Field::Status, reply.status.as_str()),
                    ],
                    data,
                ),
            },
            ServerMessage::Message(msg) => match &msg.payload {
                Payload::Json(value) => {
                    encode_text(&msg.join_ref, &msg.msg_ref, &msg.topic, &msg.event, value)
                }
                Payload::Binary(data) => match (&msg.join_ref, &msg.msg_ref) {
                    (_, Some(_)) => Err(EncodeError::BinaryPushWithRef),
                    (None, None) => encode_binary(
                        KIND_BROADCAST,
                        &[(Field::Topic, &msg.topic), (Field::Event, &msg.event)],
                        data,
                    ),
                    (Some(join_ref), None) => encode_binary(
                        KIND_PUSH,
                        &[
                            (Field::JoinRef, join_ref),
                            (Field::Topic, &msg.topic),
                            (Field::Event, &msg.event),
                        ],
                        data,
                    ),
                },
            },
        }
    }

    /// Server side: decode a frame received from a client. JSON payloads must be objects, as
    /// Phoenix requires; binary frames must be pushes.
    pub fn decode_client_frame(&self, frame: FrameRef<'_>) -> Result<Message, DecodeError> {
        self.check_size(frame)?;
        match frame {
            FrameRef::Text(text) => {
                let parts = decode_text(text)?;
                if !parts.payload.is_object() {
                    return Err(DecodeError::WrongType {
                        field: Field::Payload,
                        expected: "a JSON object",
                        found: json_type(&parts.payload),
                    });
                }
                Ok(parts.into_message())
            }
            FrameRef::Binary(bytes) => match bytes.first() {
                None => Err(DecodeError::EmptyBinary),
                Some(&KIND_PUSH) => {
                    let ([join_ref, msg_ref, topic, event], data) = split_binary(
                        bytes,
                        [Field::JoinRef, Field::Ref, Field::Topic, Field::Event],
                    )?;
                    Ok(Message {
                        join_ref: non_empty(join_ref),
                        msg_ref: non_empty(msg_ref),
                        topic: topic.to_owned(),
                        event: event.to_owned(),
                        payload: Payload::Binary(data.to_vec()),
                    })
                }
                Some(&kind @ (KIND_REPLY | KIND_BROADCAST)) => {
                    Err(DecodeError::NotAClientKind { kind })
                }
                Some(&kind) => Err(DecodeError::UnknownKind { kind }),
            },
        }
    }

    fn check_size(&self, frame: FrameRef<'_>) -> Result<(), DecodeError> {
        let size = frame.len();
        if size > self.max_frame_size {
            return Err(DecodeError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        Ok(())
    }
}

/// The five fields of a text frame.
struct TextParts {
    join_ref: Option<String>,
    msg_ref: Option<String>,
    topic: String,
    event: String,
    payload: Value,
}

impl TextParts {
    fn into_message(self) -> Message {
        Message {
            join_ref: self.join_ref,
            msg_ref: self.msg_ref,
            topic: self.topic,
            event: self.event,
            payload: Payload::Json(self.payload),
        }
    }
}

fn decode_text(text: &str) -> Result<TextParts, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|err| DecodeError::InvalidJson {
        detail: err.to_string(),
    })?;
    let elements = match value {
        Value::Array(elements) => elements,
        other => {
            return Err(DecodeError::NotAnArray {
                found: json_type(&other),
            })
        }
    };
    if elements.len() < 5 {
        return Err(DecodeError::TooFewElements {
            len: elements.len(),
        });
    }
    // Phoenix ignores trailing elements; so do we.
    let mut elements = elements.into_iter();
    let mut next = || elements.next().unwrap_or(Value::Null);
    let join_ref = optional_string(next(), Field::JoinRef)?;
    let msg_ref = optional_string(next(), Field::Ref)?;
    let topic = required_string(next(), Field::Topic)?;
    let event = required_string(next(), Field::Event)?;
    let payload = next();
    Ok(TextParts {
        join_ref,
        msg_ref,
        topic,
        event,
        payload,
    })
}

fn optional_string(value: Value, field: Field) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(DecodeError::WrongType {
            field,
            expected: "a string or null",
            found: json_type(&other),
        }),
    }
}

fn required_string(value: Value, field: Field) -> Result<String, DecodeError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            found: json_type(&other),
        }),
    }
}

fn split_reply_payload(payload: Value) -> Result<(ReplyStatus, Value), DecodeError> {
    let mut body = match payload {
        Value::Object(body) => body,
        _ => {
            return Err(DecodeError::MalformedReply {
                problem: "the payload is not an object",
            })
        }
    };
    let status = match body.remove("status") {
        Some(Value::String(status)) => ReplyStatus::from(status.as_str()),
        Some(_) => {
            return Err(DecodeError::MalformedReply {
                problem: "`status` is not a string",
            })
        }
        None => {
            return Err(DecodeError::MalformedReply {
                problem: "`status` is missing",
            })
        }
    };
    let response = body.remove("response").ok_or(DecodeError::MalformedReply {
        problem: "`response` is missing",
    })?;
    Ok((status, response))
}

fn encode_text(
    join_ref: &Option<String>,
    msg_ref: &Option<String>,
    topic: &str,
    event: &str,
    payload: &Value,
) -> Result<Frame, EncodeError> {
    serde_json::to_string(&(join_ref, msg_ref, topic, event, payload))
        .map(Frame::Text)
        .map_err(|err| EncodeError::Json {
            detail: err.to_string(),
        })
}

fn encode_binary(kind: u8, fields: &[(Field, &str)], data: &[u8]) -> Result<Frame, EncodeError> {
    let mut meta_len = 0;
    for &(field, value) in fields {
        if value.len() > MAX_BINARY_FIELD_LEN {
            return Err(EncodeError::FieldTooLong {
                field,
                len: value.len(),
            });
        }
        meta_len += value.len();
    }
    let mut out = Vec::with_capacity(1 + fields.len() + meta_len + data.len());
    out.push(kind);
    for &(_, value) in fields {
        // Checked above: every length fits in one byte.
        out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    }
    for &(_, value) in fields {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(data);
    Ok(Frame::Binary(out))
}

/// Split a binary frame after its kind byte into `N` size-prefixed strings and the payload.
fn split_binary<const N: usize>(
    frame: &[u8],
    fields: [Field; N],
) -> Result<([&str; N], &[u8]), DecodeError> {
    let header_len = 1 + N;
    let sizes = frame.get(1..header_len).ok_or(DecodeError::Truncated {
        needed: header_len,
        available: frame.len(),
    })?;
    let needed = header_len + sizes.iter().map(|&size| usize::from(size)).sum::<usize>();
    if frame.len() < needed {
        return Err(DecodeError::Truncated {
            needed,
            available: frame.len(),
        });
    }
    let mut out = [""; N];
    let mut pos = header_len;
    for ((slot, &size), field) in out.iter_mut().zip(sizes).zip(fields) {
        let end = pos + usize::from(size);
        let bytes = frame.get(pos..end).ok_or(DecodeError::Truncated {
            needed,
            available: frame.len(),
        })?;
        *slot = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field })?;
        pos = end;
    }
    Ok((out, frame.get(pos..).unwrap_or_default()))
}

fn opt_str(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// Socket URL
// ---------------------------------------------------------------------------------------------

/// Build the WebSocket URL of a Phoenix socket endpoint: append `/websocket` unless the path
/// already ends with it, add the percent-encoded `params` and `vsn=2.0.0`.
///
/// `ws://host:4000/socket` with `[("token", "a b")]` becomes
/// `ws://host:4000/socket/websocket?token=a%20b&vsn=2.0.0`. `http`/`https` endpoints are
/// mapped to `ws`/`wss`, as phoenix.js does. A query already on the endpoint is kept; a
/// `vsn=2.0.0` in it (as copied from server docs) is accepted and sent once, any other
/// version is refused (this client speaks 2.0.0 only). Errors never repeat the endpoint's
/// query, which may carry a token.
pub fn websocket_url<I, K, V>(endpoint: &str, params: I) -> Result<String, UrlError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    // The query may carry a token: errors show the rest only.
    let owned = || {
        endpoint
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(UrlError::InvalidCharacter { endpoint: owned() });
    }
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| UrlError::UnsupportedScheme { endpoint: owned() })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(UrlError::UnsupportedScheme { endpoint: owned() }),
    };
    if rest.contains('#') {
        return Err(UrlError::Fragment { endpoint: owned() });
    }
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match location.find('/') {
        Some(slash) => location.split_at(slash),
        None => (location, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') {
        return Err(UrlError::MissingHost { endpoint: owned() });
    }
    let path = path.trim_end_matches('/');
    let suffix = if path.ends_with("/websocket") {
        ""
    } else {
        "/websocket"
    };

    let mut pairs: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(name) == "vsn" {
            if percent_decode(value) == PROTOCOL_VSN {
                continue;
            }
            return Err(UrlError::ReservedParam {
                name: "vsn".to_owned(),
            });
        }
        pairs.push(pair.to_owned());
    }
    for (name, value) in params {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.is_empty() {
            return Err(UrlError::EmptyParamName);
        }
        if name == "vsn" {
            return Err(UrlError::ReservedParam {
                name: name.to_owned(),
            });
        }
        pairs.push(format!(
            "{}={}",
            percent_encode(name),
            percent_encode(value)
        ));
    }
    pairs.push(format!("vsn={PROTOCOL_VSN}"));
    Ok(format!(
        "{scheme}://{authority}{path}{suffix}?{}",
        pairs.join("&")
    ))
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decode `%XX` escapes and `+` (form encoding); invalid escapes are kept as they are and
/// invalid UTF-8 is replaced, so this never fails.
pub(crate) fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| char::from(b).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|&b| char::from(b).to_digit(16));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                out.push(byte);
            }
            _ => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a URL query (`a=1&b=x%20y`) into decoded name/value pairs, in order.
#[cfg(any(feature = "dev-server", test))]
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CODEC: Codec = Codec::new();

    fn client(text: &str) -> Message {
        CODEC
            .decode_client_frame(FrameRef::Text(text))
            .unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    fn server(text: &str) -> ServerMessage {
        CODEC
            .decode_server_frame(FrameRef::Text(text))
            .unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    fn parsed(frame: &Frame) -> Value {
        match frame {
            Frame::Text(text) => serde_json::from_str(text).expect("encoder writes JSON"),
            Frame::Binary(_) => panic!("expected a text frame"),
        }
    }

    /// Client frames from the transcripts decode and re-encode to the same JSON.
    #[test]
    fn transcript_client_frames_round_trip() {
        let frames = [
            r#"["1","1","room:dup","phx_join",{"n":1}]"#,
            r#"["1","3","room:dup","echo",{"via":"old"}]"#,
            r#"["1","2","room:lj","phx_leave",{}]"#,
            r#"["2","3","phoenix","heartbeat",{}]"#,
            r#"[null,"2","phoenix","heartbeat",{}]"#,
            r#"["1","1","slow:2","phx_join",{"delay_ms":200}]"#,
            r#"["2","4","close:2","stop_reply",{"bye":true}]"#,
            r#"["1","1","presence:lobby","phx_join",{"user":"alice"}]"#,
        ];
        for text in frames {
            let msg = client(text);
            let frame = CODEC.encode_client_message(&msg).expect("encodes");
            assert_eq!(
                parsed(&frame),
                serde_json::from_str::<Value>(text).expect("vector is JSON")
            );
        }
    }

    #[test]
    fn transcript_join_and_heartbeat_decode_to_fields() {
        assert_eq!(
            client(r#"["1","1","room:dup","phx_join",{"n":1}]"#),
            Message::join("1", "room:dup", json!({"n": 1}))
        );
        let heartbeat = client(r#"[null,"2","phoenix","heartbeat",{}]"#);
        assert_eq!(heartbeat, Message::heartbeat("2"));
        assert!(heartbeat.is_heartbeat());
    }

    /// Server frames from the transcripts decode to the right variant and re-encode to the
    /// same JSON.
    #[test]
    fn transcript_server_frames_round_trip() {
        let frames = [
            r#"["1","1","room:dup","phx_reply",{"response":{"joined":"room:dup","params":{"n":1}},"status":"ok"}]"#,
            r#"["1",null,"room:dup","sync",{"seq":1}]"#,
            r#"["1","1","room:dup","phx_close",{}]"#,
            r#"[null,"3","room:leave","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]"#,
            r#"["1","1","fail:1","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]"#,
            r#"["1","1","crash:1","phx_error",{}]"#,
            r#"[null,"3","phoenix","phx_reply",{"response":{},"status":"ok"}]"#,
            r#"[null,null,"room:b","msg",{"hi":1}]"#,
            r#"[null,null,"presence:lobby","presence_diff",{"joins":{"alice":{"metas":[{"online_at":1795343153,"phx_ref":"GOpXFfTkfoiblQ_x"}]}},"leaves":{}}]"#,
            r#"["1",null,"presence:lobby","presence_state",{"alice":{"metas":[{"online_at":1795343153,"phx_ref":"GOpXFfTkfoiblQ_x"}]}}]"#,
        ];
        for text in frames {
            let msg = server(text);
            let frame = CODEC.encode_server_message(&msg).expect("encodes");
            assert_eq!(
                parsed(&frame),
                serde_json::from_str::<Value>(text).expect("vector is JSON")
            );
        }
    }

    #[test]
    fn replies_are_typed() {
        let ServerMessage::Reply(reply) = server(
            r#"[null,"3","room:leave","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]"#,
        ) else {
            panic!("expected a reply");
        };
        assert_eq!(reply.join_ref, None);
        assert_eq!(reply.msg_ref.as_deref(), Some("3"));
        assert_eq!(reply.status, ReplyStatus::Error);
        assert_eq!(reply.reason(), Some("unmatched topic"));
        assert!(!reply.is_ok());

        let ServerMessage::Reply(reply) =
            server(r#"["2","4","close:2","phx_reply",{"response":{"bye":true},"status":"ok"}]"#)
        else {
            panic!("expected a reply");
        };
        assert!(reply.is_ok());
        assert_eq!(reply.response, Payload::Json(json!({"bye": true})));
    }

    #[test]
    fn close_and_error_carry_join_ref_as_ref() {
        let close = Message::close("2", "close:2");
        assert_eq!(
            server(r#"["2","2","close:2","phx_close",{}]"#),
            ServerMessage::Message(close)
        );
        let error = Message::error("1", "crash:1");
        assert_eq!(
            server(r#"["1","1","crash:1","phx_error",{}]"#),
            ServerMessage::Message(error)
        );
    }

    #[test]
    fn reply_helpers_answer_the_message() {
        let msg = Message::push("2", "4", "close:2", "stop_reply", json!({"bye": true}));
        let reply = Reply::ok(&msg, json!({"bye": true}));
        let frame = CODEC.encode_server_message(&reply.into()).expect("encodes");
        assert_eq!(
            parsed(&frame),
            json!(["2", "4", "close:2", "phx_reply", {"status": "ok", "response": {"bye": true}}])
        );
    }

    #[test]
    fn trailing_elements_are_ignored() {
        let msg = client(r#"["1","1","t","e",{},"extra",3]"#);
        assert_eq!(msg.event, "e");
    }

    #[test]
    fn client_binary_push_layout_matches_phoenix_js() {
        let msg = Message::push("12", "34", "room:1", "ev", Payload::Binary(vec![1, 2, 3]));
        let Frame::Binary(bytes) = CODEC.encode_client_message(&msg).expect("encodes") else {
            panic!("expected binary");
        };
        let mut expected = vec![0, 2, 2, 6, 2];
        expected.extend_from_slice(b"1234room:1ev");
        expected.extend_from_slice(&[1, 2, 3]);
        assert_eq!(bytes, expected);
        assert_eq!(CODEC.decode_client_frame(FrameRef::Binary(&bytes)), Ok(msg));
    }

    #[test]
    fn server_binary_layouts() {
        // push: kind, join_ref size, topic size, event size (no ref)
        let push = Message::channel_push("1", "t", "ev", Payload::Binary(vec![9]));
        let frame = CODEC
            .encode_server_message(&push.clone().into())
            .expect("encodes");
        assert_eq!(
            frame,
            Frame::Binary(vec![0, 1, 1, 2, b'1', b't', b'e', b'v', 9])
        );
        assert_eq!(
            CODEC.decode_server_frame(frame.as_frame_ref()),
            Ok(push.into())
        );

        // reply: kind, join_ref, ref, topic, status sizes
        let reply = Reply {
            join_ref: Some("1".into()),
            msg_ref: Some("2".into()),
            topic: "t".into(),
            status: ReplyStatus::Ok,
            response: Payload::Binary(vec![7, 8]),
        };
        let frame = CODEC
            .encode_server_message(&reply.clone().into())
            .expect("encodes");
        assert_eq!(
            frame,
            Frame::Binary(vec![1, 1, 1, 1, 2, b'1', b'2', b't', b'o', b'k', 7, 8])
        );
        assert_eq!(
            CODEC.decode_server_frame(frame.as_frame_ref()),
            Ok(reply.into())
        );

        // broadcast: kind, topic size, event size
        let broadcast = Message::broadcast("t", "ev", Payload::Binary(vec![]));
        let frame = CODEC
            .encode_server_message(&broadcast.clone().into())
            .expect("encodes");
        assert_eq!(frame, Frame::Binary(vec![2, 1, 2, b't', b'e', b'v']));
        assert_eq!(
            CODEC.decode_server_frame(frame.as_frame_ref()),
            Ok(broadcast.into())
        );
    }

    #[test]
    fn binary_refuses_long_fields_and_refs_on_pushes() {
        let long = "x".repeat(256);
        let msg = Message::push("1", "2", long.as_str(), "e", Payload::Binary(vec![]));
        assert_eq!(
            CODEC.encode_client_message(&msg),
            Err(EncodeError::FieldTooLong {
                field: Field::Topic,
                len: 256
            })
        );
        let ok = Message::push("1", "2", "x".repeat(255), "e", Payload::Binary(vec![]));
        assert!(CODEC.encode_client_message(&ok).is_ok());
        let with_ref = Message::push("1", "2", "t", "e", Payload::Binary(vec![]));
        assert_eq!(
            CODEC.encode_server_message(&with_ref.into()),
            Err(EncodeError::BinaryPushWithRef)
        );
    }

    #[test]
    fn client_payload_must_be_an_object() {
        let msg = Message::push("1", "2", "t", "e", json!([1]));
        assert_eq!(
            CODEC.encode_client_message(&msg),
            Err(EncodeError::PayloadNotObject { found: "an array" })
        );
        assert!(matches!(
            CODEC.decode_client_frame(FrameRef::Text(r#"["1","2","t","e",5]"#)),
            Err(DecodeError::WrongType {
                field: Field::Payload,
                ..
            })
        ));
    }

    #[test]
    fn malformed_text_frames_are_typed_errors() {
        type Check = fn(&DecodeError) -> bool;
        let cases: [(&str, Check); 7] = [
            ("not json", |e| matches!(e, DecodeError::InvalidJson { .. })),
            (r#"{"topic":"t"}"#, |e| {
                matches!(e, DecodeError::NotAnArray { found: "an object" })
            }),
            (r#"["1","2","t"]"#, |e| {
                matches!(e, DecodeError::TooFewElements { len: 3 })
            }),
            (r#"[1,"2","t","e",{}]"#, |e| {
                matches!(
                    e,
                    DecodeError::WrongType {
                        field: Field::JoinRef,
                        found: "a number",
                        ..
                    }
                )
            }),
            (r#"["1","2",null,"e",{}]"#, |e| {
                matches!(
                    e,
                    DecodeError::WrongType {
                        field: Field::Topic,
                        ..
                    }
                )
            }),
            (r#"["1","2","t","phx_reply",{"response":{}}]"#, |e| {
                matches!(e, DecodeError::MalformedReply { .. })
            }),
            (r#"["1","2","t","phx_reply",[]]"#, |e| {
                matches!(e, DecodeError::MalformedReply { .. })
            }),
        ];
        for (text, expected) in cases {
            let err = CODEC
                .decode_server_frame(FrameRef::Text(text))
                .expect_err("malformed frame must not decode");
            assert!(expected(&err), "{text}: unexpected {err:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn malformed_binary_frames_are_typed_errors() {
        assert_eq!(
            CODEC.decode_server_frame(FrameRef::Binary(&[])),
            Err(DecodeError::EmptyBinary)
        );
        assert_eq!(
            CODEC.decode_server_frame(FrameRef::Binary(&[7])),
            Err(DecodeError::UnknownKind { kind: 7 })
        );
        assert_eq!(
            CODEC.decode_server_frame(FrameRef::Binary(&[0, 1])),
            Err(DecodeError::Truncated {
                needed: 4,
                available: 2
            })
        );
        assert_eq!(
            CODEC.decode_server_frame(FrameRef::Binary(&[2, 5, 1, b'a'])),
            Err(DecodeError::Truncated {
                needed: 9,
                available: 4
            })
        );
        assert_eq!(
            CODEC.decode_server_frame(FrameRef::Binary(&[2, 1, 1, 0xff, b'e'])),
            Err(DecodeError::InvalidUtf8 {
                field: Field::Topic
            })
        );
        assert_eq!(
            CODEC.decode_client_frame(FrameRef::Binary(&[1, 0, 0, 0, 0])),
            Err(DecodeError::NotAClientKind { kind: 1 })
        );
    }

    #[test]
    fn oversized_frames_are_rejected_before_parsing() {
        let codec = Codec::new().with_max_frame_size(8);
        assert_eq!(
            codec.decode_server_frame(FrameRef::Text(r#"[null,null,"t","e",{}]"#)),
            Err(DecodeError::FrameTooLarge { size: 22, max: 8 })
        );
        assert!(matches!(
            codec.decode_client_frame(FrameRef::Binary(&[0; 9])),
            Err(DecodeError::FrameTooLarge { size: 9, max: 8 })
        ));
    }

    #[test]
    fn deep_json_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "[null,null,\"t\",\"e\",{}{}]",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            CODEC.decode_server_frame(FrameRef::Text(&deep)),
            Err(DecodeError::InvalidJson { .. })
        ));
    }

    #[test]
    fn websocket_url_appends_suffix_params_and_vsn() {
        assert_eq!(
            websocket_url("ws://localhost:4000/socket", [("token", "a b&c=d/é")]).as_deref(),
            Ok("ws://localhost:4000/socket/websocket?token=a%20b%26c%3Dd%2F%C3%A9&vsn=2.0.0")
        );
        assert_eq!(
            websocket_url("wss://h/socket/websocket", None::<(&str, &str)>).as_deref(),
            Ok("wss://h/socket/websocket?vsn=2.0.0")
        );
        assert_eq!(
            websocket_url("https://h/socket/?x=1", [("y", "2")]).as_deref(),
            Ok("wss://h/socket/websocket?x=1&y=2&vsn=2.0.0")
        );
        assert_eq!(
            websocket_url("http://h:1", None::<(&str, &str)>).as_deref(),
            Ok("ws://h:1/websocket?vsn=2.0.0")
        );
    }

    #[test]
    fn framing_a_pre_encoded_payload_matches_encoding_the_message() {
        let codec = Codec::new();
        for payload in [
            Payload::Json(serde_json::json!({"a": [1, "x\"y"], "b": null})),
            Payload::Json(serde_json::json!({})),
            Payload::Binary(vec![0, 1, 2, 255]),
        ] {
            for (join_ref, msg_ref) in [(Some("1"), Some("2")), (None, Some("7")), (None, None)] {
                let message = Message {
                    join_ref: join_ref.map(str::to_owned),
                    msg_ref: msg_ref.map(str::to_owned),
                    topic: "room:\"1\"".to_owned(),
                    event: "ev\u{e9}nt".to_owned(),
                    payload: payload.clone(),
                };
                let encoded = codec.encode_payload(&payload).expect("encodable");
                assert_eq!(
                    codec.frame_client_push(
                        join_ref,
                        msg_ref,
                        &message.topic,
                        &message.event,
                        &encoded
                    ),
                    codec.encode_client_message(&message)
                );
            }
        }
        assert!(codec
            .encode_payload(&Payload::Json(serde_json::json!([1])))
            .is_err());
    }

    #[test]
    fn websocket_url_accepts_what_server_docs_show() {
        let none = None::<(&str, &str)>;
        for endpoint in [
            "ws://h/socket",
            "ws://h/socket/",
            "ws://h/socket/websocket",
            "ws://h/socket/websocket?vsn=2.0.0",
            "ws://h/socket?vsn=2.0.0",
        ] {
            assert_eq!(
                websocket_url(endpoint, none).as_deref(),
                Ok("ws://h/socket/websocket?vsn=2.0.0"),
                "{endpoint}"
            );
        }
    }

    #[test]
    fn websocket_url_rejects_bad_endpoints() {
        let none = None::<(&str, &str)>;
        assert!(matches!(
            websocket_url("ftp://h/socket", none),
            Err(UrlError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            websocket_url("localhost:4000", none),
            Err(UrlError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            websocket_url("ws:///socket", none),
            Err(UrlError::MissingHost { .. })
        ));
        assert!(matches!(
            websocket_url("ws://h/so cket", none),
            Err(UrlError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            websocket_url("ws://h/socket#x", none),
            Err(UrlError::Fragment { .. })
        ));
        assert!(matches!(
            websocket_url("ws://h/socket", [("vsn", "1.0.0")]),
            Err(UrlError::ReservedParam { .. })
        ));
        assert!(matches!(
            websocket_url("ws://h/socket?vsn=1.0.0", none),
            Err(UrlError::ReservedParam { .. })
        ));
        // Errors never show the query (it may carry a token).
        let error = websocket_url("ws://h/so cket?token=s3cr3t", none).unwrap_err();
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        assert!(!format!("{error:?}").contains("s3cr3t"), "{error:?}");
        assert_eq!(
            websocket_url("ws://h/socket", [("", "x")]),
            Err(UrlError::EmptyParamName)
        );
    }

    #[test]
    fn query_parsing_decodes_what_the_url_helper_encodes() {
        let url = websocket_url("ws://h/socket", [("token", "a b+ü%"), ("k", "")]).expect("valid");
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        assert_eq!(
            parse_query(query),
            vec![
                ("token".to_owned(), "a b+ü%".to_owned()),
                ("k".to_owned(), String::new()),
                ("vsn".to_owned(), "2.0.0".to_owned()),
            ]
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }
}
