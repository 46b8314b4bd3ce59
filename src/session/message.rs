//! Messages from the server as subscribers receive them, and join params.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::codec::Payload;
use crate::engine::{JoinOptions, JoinRef};

/// A message from the server on a topic's current incarnation: a channel
/// push (`join_ref` set) or a broadcast (`join_ref` is `None`).
///
/// Cheap to clone (one shared allocation), so every subscriber of a topic
/// gets the same message without a copy of its payload.
#[derive(Clone, PartialEq)]
pub struct ChannelMessage(Arc<Inner>);

#[derive(PartialEq)]
struct Inner {
    topic: Arc<str>,
    event: String,
    payload: Payload,
    join_ref: Option<JoinRef>,
    size: usize,
}

impl ChannelMessage {
    /// A message (for tests and for drivers that build messages themselves).
    pub fn new(
        topic: impl Into<Arc<str>>,
        event: impl Into<String>,
        payload: Payload,
        join_ref: Option<JoinRef>,
    ) -> Self {
        let event = event.into();
        let size = payload_size(&payload) + event.len();
        ChannelMessage(Arc::new(Inner {
            topic: topic.into(),
            event,
            payload,
            join_ref,
            size,
        }))
    }

    /// A message decoded from a frame of `size` bytes.
    pub(crate) fn from_frame(
        topic: Arc<str>,
        event: String,
        payload: Payload,
        join_ref: Option<JoinRef>,
        size: usize,
    ) -> Self {
        ChannelMessage(Arc::new(Inner {
            topic,
            event,
            payload,
            join_ref,
            size,
        }))
    }

    /// The topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.0.topic
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.0.event
    }

    /// The payload: JSON from text frames, bytes from binary frames.
    pub fn payload(&self) -> &Payload {
        &self.0.payload
    }

    /// The JSON payload, if this came in a text frame.
    pub fn json(&self) -> Option<&Value> {
        self.0.payload.as_json()
    }

    /// The JSON payload decoded into `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.0.payload {
            Payload::Json(value) => T::deserialize(value),
            Payload::Binary(bytes) => serde_json::from_slice(bytes),
        }
    }

    /// The incarnation it was stamped with; `None` for broadcasts.
    pub fn join_ref(&self) -> Option<JoinRef> {
        self.0.join_ref
    }

    /// Roughly how many bytes it holds (its frame's size on the wire): what a
    /// subscriber's memory budget counts.
    pub fn size(&self) -> usize {
        self.0.size
    }
}

impl fmt::Debug for ChannelMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelMessage")
            .field("topic", &self.0.topic)
            .field("event", &self.0.event)
            .field("payload", &self.0.payload)
            .field("join_ref", &self.0.join_ref)
            .finish()
    }
}

fn payload_size(payload: &Payload) -> usize {
    match payload {
        Payload::Json(value) => value.to_string().len(),
        Payload::Binary(bytes) => bytes.len(),
    }
}

/// Join params of a topic: none, a JSON object, or a provider called on
/// every (re)join, as phoenix.js re-reads its params closure (for a token
/// that expires, or a "last seen" cursor).
///
/// All subscribers of one topic share one channel and so one set of params:
/// a second subscriber must pass equal JSON, or a clone of the same
/// provider, or the subscribe is refused with a params conflict.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use channel_registry::session::JoinParams;
/// use serde_json::json;
///
/// let fixed = JoinParams::json(json!({"user": "alice"}));
/// let cursor = Arc::new(AtomicU64::new(0));
/// let fresh = JoinParams::provider(move || json!({"after": cursor.load(Ordering::Relaxed)}));
/// let settled = JoinParams::none().with_settling(true);
/// # let _ = (fixed, fresh, settled);
/// ```
#[derive(Clone, Default)]
pub struct JoinParams {
    source: ParamsSource,
    settling: Option<bool>,
}

type ParamsFn = Arc<dyn Fn() -> Value + Send + Sync>;

#[derive(Clone, Default)]
enum ParamsSource {
    #[default]
    Empty,
    Json(Value),
    Provider(ParamsFn),
}

impl fmt::Debug for JoinParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Params may carry tokens: never print their values.
        let kind = match self.source {
            ParamsSource::Empty => "none",
            ParamsSource::Json(_) => "json",
            ParamsSource::Provider(_) => "provider",
        };
        f.debug_struct("JoinParams")
            .field("kind", &kind)
            .field("settling", &self.settling)
            .finish()
    }
}

/// Join params as a recording sees them.
pub(crate) enum ParamsView<'a> {
    Empty,
    Json(&'a Value),
    /// The provider's identity (its address).
    Provider(usize),
}

/// Why join params could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The params are not a JSON object.
    #[error("join params must be a JSON object, found {found}; wrap the value in an object")]
    NotObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The params provider panicked.
    #[error("the join params provider panicked: {message}; fix the provider")]
    ProviderPanicked {
        /// The panic's message, when it had one.
        message: String,
    },
}

impl JoinParams {
    /// No params (`{}` on the wire).
    pub fn none() -> Self {
        JoinParams::default()
    }

    /// Fixed params; must be a JSON object.
    pub fn json(params: Value) -> Self {
        JoinParams {
            source: ParamsSource::Json(params),
            settling: None,
        }
    }

    /// Params computed on every join and rejoin. It must return a JSON object
    /// (checked once at subscribe; later a non-object fails that join). A
    /// provider that panics fails the join, like a rejected one, and is
    /// retried on the rejoin ladder; the session keeps running.
    pub fn provider<F>(provider: F) -> Self
    where
        F: Fn() -> Value + Send + Sync + 'static,
    {
        JoinParams {
            source: ParamsSource::Provider(Arc::new(provider)),
            settling: None,
        }
    }

    /// Whether the topic settles (its resources report ready) before it is
    /// active; default: the engine's [`Config::settling`](crate::engine::Config::settling).
    #[must_use]
    pub fn with_settling(mut self, settling: bool) -> Self {
        self.settling = Some(settling);
        self
    }

    /// Whether these are no params at all.
    pub fn is_none(&self) -> bool {
        matches!(self.source, ParamsSource::Empty)
    }

    /// The engine's view: params identity (JSON text, or the provider's
    /// identity) and settling.
    pub(crate) fn options(&self) -> Result<JoinOptions, ParamsError> {
        let params = match &self.source {
            ParamsSource::Empty => None,
            ParamsSource::Json(value) => match value {
                Value::Object(map) if map.is_empty() => None,
                Value::Object(_) => Some(Arc::from(value.to_string())),
                other => {
                    return Err(ParamsError::NotObject {
                        found: json_type(other),
                    })
                }
            },
            ParamsSource::Provider(provider) => {
                let sample = call(provider)?;
                if !sample.is_object() {
                    return Err(ParamsError::NotObject {
                        found: json_type(&sample),
                    });
                }
                let id = Arc::as_ptr(provider).cast::<()>() as usize;
                Some(Arc::from(format!("{{\"$params_provider\":{id}}}")))
            }
        };
        Ok(JoinOptions {
            params,
            settling: self.settling,
        })
    }

    /// What a recording keeps of these params: their JSON, or the identity
    /// of their provider (never called here), and the settling choice.
    pub(crate) fn view(&self) -> (ParamsView<'_>, Option<bool>) {
        let view = match &self.source {
            ParamsSource::Empty => ParamsView::Empty,
            ParamsSource::Json(value) => ParamsView::Json(value),
            ParamsSource::Provider(provider) => {
                ParamsView::Provider(Arc::as_ptr(provider).cast::<()>() as usize)
            }
        };
        (view, self.settling)
    }

    /// The payload of one join.
    pub(crate) fn resolve(&self) -> Result<Value, ParamsError> {
        match &self.source {
            ParamsSource::Empty => Ok(Value::Object(serde_json::Map::new())),
            ParamsSource::Json(value) => Ok(value.clone()),
            ParamsSource::Provider(provider) => {
                let value = call(provider)?;
                if value.is_object() {
                    Ok(value)
                } else {
                    Err(ParamsError::NotObject {
                        found: json_type(&value),
                    })
                }
            }
        }
    }
}

impl From<Value> for JoinParams {
    fn from(params: Value) -> Self {
        JoinParams::json(params)
    }
}

impl From<Option<Value>> for JoinParams {
    fn from(params: Option<Value>) -> Self {
        params.map_or_else(JoinParams::none, JoinParams::json)
    }
}

/// Calls a user callback, turning a panic into an error (the session must
/// keep running whatever user code does).
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

fn call(provider: &ParamsFn) -> Result<Value, ParamsError> {
    catch(|| provider()).map_err(|message| ParamsError::ProviderPanicked { message })
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
