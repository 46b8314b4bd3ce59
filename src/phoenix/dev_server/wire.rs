//! What the dev server reads and writes on the wire, as tolerant as Phoenix is.
//!
//! Binary V2 frames go through the shared [`Codec`]. Text frames are pre-parsed here instead,
//! because Phoenix accepts more than a client may send: a heartbeat whose payload is not a
//! map is answered, a ref that is a number is echoed back as a number, and a topic that is
//! not a string gets an `unmatched topic` reply. The shared client-side decoder stays strict.
//! V1 (object) frames are spoken on sockets that negotiated the V1 fallback.

use serde_json::{Map, Value};

use crate::phoenix::codec::{
    event, Codec, DecodeError, Field, Frame, FrameRef, Message, Payload, ServerMessage,
    PHOENIX_TOPIC,
};

/// The protocol version a socket speaks, from the `vsn` it connected with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireProtocol {
    /// `vsn=1.0.0` (or none, with [`MissingVsnPolicy::FallBackToV1`]): JSON object frames
    /// `{"topic", "event", "payload", "ref", "join_ref"}`, no binary frames.
    ///
    /// [`MissingVsnPolicy::FallBackToV1`]: super::MissingVsnPolicy::FallBackToV1
    V1,
    /// `vsn=2.0.0`: array text frames and binary frames.
    V2,
}

/// Why a client frame could not be read; the socket is closed with 1011 as a Phoenix socket
/// process crashing on it would be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedFrame {
    /// Not a V2 frame (see the decode error).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A V1 socket received text that is not a JSON object, such as a V2 array.
    #[error(
        "V1 text frame is a JSON {found}, not an object; this socket connected without \
         vsn=2.0.0 and speaks V1: add vsn=2.0.0 to the socket URL"
    )]
    NotAV1Object {
        /// The JSON type found.
        found: &'static str,
    },
    /// A V1 socket received a binary frame, which V1 does not have.
    #[error("binary frames are not part of V1; connect with vsn=2.0.0 to send binary payloads")]
    BinaryOnV1,
}

/// A decoded client frame.
#[derive(Debug)]
pub(super) struct Inbound {
    /// The message, with refs and topic as strings (a number is written as its JSON text).
    pub(super) message: Message,
    /// The join_ref exactly as sent: Phoenix compares it with a channel's without converting.
    pub(super) raw_join_ref: Value,
    /// Fields that were not strings, to be echoed as sent in replies to this message.
    pub(super) echo: Echo,
}

/// Fields of a client message that were sent as JSON values other than strings, to put back
/// as they were in the replies to that message (Phoenix echoes what it received).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Echo {
    join_ref: Option<Value>,
    msg_ref: Option<Value>,
    topic: Option<Value>,
}

impl Echo {
    /// The same echo for a reply that carries the channel's join_ref, not the message's.
    pub(super) fn without_join_ref(&self) -> Echo {
        Echo {
            join_ref: None,
            ..self.clone()
        }
    }

    /// Whether the topic was not a string (so it can match no channel).
    pub(super) fn has_foreign_topic(&self) -> bool {
        self.topic.is_some()
    }

    fn is_empty(&self) -> bool {
        self.join_ref.is_none() && self.msg_ref.is_none() && self.topic.is_none()
    }
}

/// Decode one client frame for a socket speaking `protocol`.
pub(super) fn decode(
    protocol: WireProtocol,
    codec: &Codec,
    frame: FrameRef<'_>,
) -> Result<Inbound, MalformedFrame> {
    let size = frame.len();
    if size > codec.max_frame_size() {
        return Err(DecodeError::FrameTooLarge {
            size,
            max: codec.max_frame_size(),
        }
        .into());
    }
    match (protocol, frame) {
        (WireProtocol::V2, FrameRef::Binary(_)) => {
            let message = codec.decode_client_frame(frame)?;
            let raw_join_ref = message.join_ref.clone().map_or(Value::Null, Value::String);
            Ok(Inbound {
                message,
                raw_join_ref,
                echo: Echo::default(),
            })
        }
        (WireProtocol::V2, FrameRef::Text(text)) => decode_v2_text(text),
        (WireProtocol::V1, FrameRef::Text(text)) => decode_v1_text(text),
        (WireProtocol::V1, FrameRef::Binary(_)) => Err(MalformedFrame::BinaryOnV1),
    }
}

fn parse(text: &str) -> Result<Value, DecodeError> {
    serde_json::from_str(text).map_err(|err| DecodeError::InvalidJson {
        detail: err.to_string(),
    })
}

fn decode_v2_text(text: &str) -> Result<Inbound, MalformedFrame> {
    let elements = match parse(text)? {
        Value::Array(elements) => elements,
        other => {
            return Err(DecodeError::NotAnArray {
                found: json_type(&other),
            }
            .into())
        }
    };
    if elements.len() < 5 {
        return Err(DecodeError::TooFewElements {
            len: elements.len(),
        }
        .into());
    }
    // Trailing elements are ignored, as Phoenix does.
    let mut elements = elements.into_iter();
    let mut next = || elements.next().unwrap_or(Value::Null);
    let (join_ref, msg_ref, topic, event, payload) = (next(), next(), next(), next(), next());
    assemble(join_ref, msg_ref, topic, event, payload)
}

fn decode_v1_text(text: &str) -> Result<Inbound, MalformedFrame> {
    let mut object = match parse(text)? {
        Value::Object(object) => object,
        other => {
            return Err(MalformedFrame::NotAV1Object {
                found: json_type(&other),
            })
        }
    };
    let mut take = |key: &str| object.remove(key).unwrap_or(Value::Null);
    let (join_ref, msg_ref, topic, event, payload) = (
        take("join_ref"),
        take("ref"),
        take("topic"),
        take("event"),
        take("payload"),
    );
    assemble(join_ref, msg_ref, topic, event, payload)
}

/// Build the message from the five raw fields, keeping non-string values for the echo.
fn assemble(
    join_ref: Value,
    msg_ref: Value,
    topic: Value,
    event: Value,
    payload: Value,
) -> Result<Inbound, MalformedFrame> {
    let event = match event {
        Value::String(event) => event,
        other => {
            return Err(DecodeError::WrongType {
                field: Field::Event,
                expected: "a string",
                found: json_type(&other),
            }
            .into())
        }
    };
    let (topic, topic_echo) = match topic {
        Value::String(topic) => (topic, None),
        other => (other.to_string(), Some(other)),
    };
    let heartbeat = topic_echo.is_none() && topic == PHOENIX_TOPIC && event == event::HEARTBEAT;
    // Phoenix answers any heartbeat; other messages must carry a map.
    if !heartbeat && !payload.is_object() {
        return Err(DecodeError::WrongType {
            field: Field::Payload,
            expected: "a JSON object",
            found: json_type(&payload),
        }
        .into());
    }
    let (join_ref_text, join_ref_echo) = ref_text(&join_ref);
    let (msg_ref_text, msg_ref_echo) = ref_text(&msg_ref);
    Ok(Inbound {
        message: Message {
            join_ref: join_ref_text,
            msg_ref: msg_ref_text,
            topic,
            event,
            payload: Payload::Json(payload),
        },
        raw_join_ref: join_ref,
        echo: Echo {
            join_ref: join_ref_echo,
            msg_ref: msg_ref_echo,
            topic: topic_echo,
        },
    })
}

/// A ref as text, and the raw value to echo when it was neither a string nor null.
fn ref_text(value: &Value) -> (Option<String>, Option<Value>) {
    match value {
        Value::Null => (None, None),
        Value::String(text) => (Some(text.clone()), None),
        other => (Some(other.to_string()), Some(other.clone())),
    }
}

/// Encode a server message for a socket speaking `protocol`, putting back the echoed fields.
pub(super) fn encode(
    protocol: WireProtocol,
    codec: &Codec,
    msg: &ServerMessage,
    echo: &Echo,
) -> Result<Frame, String> {
    let is_binary = match msg {
        ServerMessage::Reply(reply) => reply.response.is_binary(),
        ServerMessage::Message(message) => message.payload.is_binary(),
    };
    match protocol {
        // Binary frames carry strings only; an echo cannot apply to them.
        WireProtocol::V2 if echo.is_empty() || is_binary => codec
            .encode_server_message(msg)
            .map_err(|error| error.to_string()),
        WireProtocol::V2 => {
            let [join_ref, msg_ref, topic, event, payload] = json_fields(msg, echo)?;
            Ok(Frame::Text(
                Value::Array(vec![join_ref, msg_ref, topic, event, payload]).to_string(),
            ))
        }
        WireProtocol::V1 if is_binary => {
            Err("binary payloads cannot be sent on a V1 socket (V1 frames are JSON)".to_owned())
        }
        WireProtocol::V1 => {
            // V1 frames carry no join_ref.
            let [_, msg_ref, topic, event, payload] = json_fields(msg, echo)?;
            let mut object = Map::new();
            object.insert("event".to_owned(), event);
            object.insert("payload".to_owned(), payload);
            object.insert("ref".to_owned(), msg_ref);
            object.insert("topic".to_owned(), topic);
            Ok(Frame::Text(Value::Object(object).to_string()))
        }
    }
}

/// `[join_ref, ref, topic, event, payload]` as JSON values, echoed fields substituted.
fn json_fields(msg: &ServerMessage, echo: &Echo) -> Result<[Value; 5], String> {
    let text = |value: Option<&str>| value.map_or(Value::Null, |v| Value::String(v.to_owned()));
    let payload = match msg {
        ServerMessage::Reply(reply) => {
            let response = reply
                .response
                .as_json()
                .ok_or("a binary reply cannot be sent as JSON")?;
            let mut body = Map::new();
            body.insert(
                "status".to_owned(),
                Value::String(reply.status.as_str().to_owned()),
            );
            body.insert("response".to_owned(), response.clone());
            Value::Object(body)
        }
        ServerMessage::Message(message) => message
            .payload
            .as_json()
            .ok_or("a binary message cannot be sent as JSON")?
            .clone(),
    };
    Ok([
        echo.join_ref
            .clone()
            .unwrap_or_else(|| text(msg.join_ref())),
        echo.msg_ref.clone().unwrap_or_else(|| text(msg.msg_ref())),
        echo.topic
            .clone()
            .unwrap_or_else(|| Value::String(msg.topic().to_owned())),
        Value::String(msg.event().to_owned()),
        payload,
    ])
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::phoenix::codec::Reply;

    const CODEC: Codec = Codec::new();

    fn v2(text: &str) -> Result<Inbound, MalformedFrame> {
        decode(WireProtocol::V2, &CODEC, FrameRef::Text(text))
    }

    fn reencode(protocol: WireProtocol, msg: ServerMessage, echo: &Echo) -> Value {
        match encode(protocol, &CODEC, &msg, echo).expect("encodes") {
            Frame::Text(text) => serde_json::from_str(&text).expect("JSON"),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn heartbeats_with_any_payload_decode() {
        for payload in ["\"notamap\"", "[1,2]", "null", "{}"] {
            let inbound = v2(&format!(r#"[null,"4","phoenix","heartbeat",{payload}]"#))
                .expect("heartbeat decodes");
            assert!(inbound.message.is_heartbeat());
        }
        assert!(v2(r#"["1","1","room:1","phx_join","notamap"]"#).is_err());
    }

    #[test]
    fn numeric_refs_and_topics_are_echoed_as_sent() {
        let inbound = v2(r#"[1,2,"room:e","echo",{}]"#).expect("decodes");
        assert_eq!(inbound.message.join_ref.as_deref(), Some("1"));
        assert_eq!(inbound.raw_join_ref, json!(1));
        let reply = Reply {
            join_ref: Some("1".to_owned()),
            ..Reply::ok(&inbound.message, json!({}))
        };
        assert_eq!(
            reencode(
                WireProtocol::V2,
                reply.into(),
                &inbound.echo.without_join_ref()
            ),
            json!(["1", 2, "room:e", "phx_reply", {"status": "ok", "response": {}}])
        );

        let inbound = v2(r#"["1","1",5,"phx_join",{}]"#).expect("decodes");
        assert!(inbound.echo.has_foreign_topic());
        let reply = Reply {
            join_ref: None,
            ..Reply::error(&inbound.message, json!({}))
        };
        assert_eq!(
            reencode(WireProtocol::V2, reply.into(), &inbound.echo),
            json!([null, "1", 5, "phx_reply", {"status": "error", "response": {}}])
        );
    }

    #[test]
    fn malformed_text_frames_are_errors() {
        for text in [
            "not json at all",
            r#"{"topic":"room:e","event":"echo"}"#,
            r#"["1","2","room:e","echo"]"#,
            r#"["1","2","room:e",7,{}]"#,
        ] {
            assert!(v2(text).is_err(), "{text} must not decode");
        }
        assert!(v2(r#"["1","1","room:e","phx_join",{},"extra"]"#).is_ok());
    }

    #[test]
    fn v1_frames_are_objects_without_join_ref_on_the_way_out() {
        let inbound = decode(
            WireProtocol::V1,
            &CODEC,
            FrameRef::Text(r#"{"topic":"room:v","event":"phx_join","payload":{},"ref":"1"}"#),
        )
        .expect("decodes");
        assert_eq!(inbound.message.join_ref, None);
        assert_eq!(inbound.message.msg_ref.as_deref(), Some("1"));
        let reply = Reply::ok(&inbound.message, json!({"joined": "room:v"}));
        assert_eq!(
            reencode(WireProtocol::V1, reply.into(), &inbound.echo),
            json!({"event": "phx_reply", "payload": {"response": {"joined": "room:v"}, "status": "ok"}, "ref": "1", "topic": "room:v"})
        );
        assert!(matches!(
            decode(
                WireProtocol::V1,
                &CODEC,
                FrameRef::Text(r#"["1","1","room:v","phx_join",{}]"#)
            ),
            Err(MalformedFrame::NotAV1Object { found: "an array" })
        ));
    }
}
