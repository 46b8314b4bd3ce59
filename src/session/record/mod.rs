//! Record a session's inputs and outputs as JSON lines, and replay them.
//!
//! A user who hits a bug hands over a recording; a replay re-runs it through
//! a fresh [`Session`] with the recorded configuration and jitter seed,
//! checks the engine's bookkeeping after every step and compares every
//! output with the recorded one, so the bug reproduces on any machine.
//!
//! A recording is one JSON value per line:
//! - first a [`Line::Header`]: the format version, the crate version, and
//!   the session's configuration ([`RecordedConfig`]: every knob and the
//!   seed in use);
//! - then, in the order the driver saw them, [`Line::Input`]s (each with its
//!   time since the session started, what the call returned, and how many
//!   outputs were still waiting to be polled) and [`Line::Output`]s.
//!
//! Secrets are redacted by default: the socket params and the endpoint's
//! query values, the auth token, and join params (in subscribe and switch
//! inputs, and in the join frames sent) become `"<redacted>"`;
//! [`Recorder::with_secrets`] keeps them. Payloads are kept as their JSON
//! text.
//!
//! The recorder is a pure value like the session: it turns inputs and
//! outputs into lines and leaves writing them to the driver (the tokio
//! client's `ClientConfig::with_recording` writes them to a file).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use channel_registry::codec::FrameRef;
//! use channel_registry::engine::SubscriberId;
//! use channel_registry::session::record::{replay, Input, Recorder};
//! use channel_registry::session::{Output, Session, SessionConfig};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now();
//! let config = SessionConfig::new("ws://localhost:4000/socket").with_seed(7);
//! let mut session = Session::new(config, start)?;
//! let mut recorder = Recorder::new(&session, start);
//! let mut lines = vec![recorder.header()];
//!
//! // Every input goes through `Session::apply` and into the recording, then
//! // every output the driver polls.
//! let mut step = |session: &mut Session, input: Input, now: Instant| {
//!     let queued = session.queued_outputs();
//!     let outcome = session.apply(&input, now);
//!     lines.push(recorder.input(&input, &outcome, queued, now));
//!     while let Some(output) = session.poll_output() {
//!         lines.push(recorder.output(&output));
//!     }
//! };
//! step(&mut session, Input::Connect, start);
//! step(&mut session, Input::Connected { id: 1 }, start);
//! let subscribe = Input::Subscribe {
//!     id: 1,
//!     topic: "room:lobby".into(),
//!     params: Default::default(),
//!     events: None,
//!     presence: false,
//!     stream: None,
//! };
//! step(&mut session, subscribe, start);
//! let reply = r#"["1","1","room:lobby","phx_reply",{"status":"ok","response":{}}]"#;
//! step(&mut session, Input::frame(FrameRef::Text(reply)), start + Duration::from_millis(5));
//!
//! let summary = replay(&lines.join("\n"), start)?;
//! assert_eq!(summary.inputs, 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod base64;
mod config;
mod input;
mod output;
mod replay;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

pub use config::RecordedConfig;
pub use input::{Input, Outcome, RawJson, RecordedParams, RecordedPayload, RecordedTarget};
pub use output::RecordedOutput;
pub use replay::{replay, ReplayError, ReplaySummary, Replayer};

use crate::engine::{RoomId, SubscriberId};
use crate::session::message::ParamsView;
use crate::session::{JoinParams, Output, Session, SessionConfig, SubscribeOptions};

/// What a redacted secret becomes.
pub const REDACTED: &str = "<redacted>";

/// The version of the recording format this crate writes and replays.
pub const FORMAT_VERSION: u32 = 1;

/// One line of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Line {
    /// The first line: what is needed to start the same session again.
    Header {
        /// The recording format ([`FORMAT_VERSION`]).
        format: u32,
        /// The version of the crate that recorded it.
        crate_version: String,
        /// The session's configuration and seed.
        config: Box<RecordedConfig>,
    },
    /// One input, after it was applied.
    Input {
        /// Its time since the session started, in nanoseconds.
        at_ns: u64,
        /// How many outputs were still waiting to be polled before it.
        queued: usize,
        /// The input.
        input: Input,
        /// What the call returned.
        outcome: Outcome,
    },
    /// One output, as the driver polled it.
    Output(RecordedOutput),
}

/// Turns a session's inputs and outputs into recording lines. Pure: it
/// writes nothing itself; the caller stores the lines it returns (each
/// without a newline).
#[derive(Clone, Debug)]
pub struct Recorder {
    start: Instant,
    config: SessionConfig,
    seed: u64,
    secrets: bool,
    /// Params providers seen, by identity, numbered in order of appearance.
    providers: HashMap<usize, u64>,
}

impl Recorder {
    /// A recorder for `session`, which started at `start` (the `now` given
    /// to [`Session::new`]). Secrets are redacted.
    pub fn new(session: &Session, start: Instant) -> Recorder {
        Recorder {
            start,
            config: session.config().clone(),
            seed: session.seed(),
            secrets: false,
            providers: HashMap::new(),
        }
    }

    /// Keep secrets (socket params, the auth token, join params) in the
    /// recording instead of redacting them. Only for recordings that stay
    /// where the secrets may be.
    #[must_use]
    pub fn with_secrets(mut self, keep: bool) -> Self {
        self.secrets = keep;
        self
    }

    /// The header line; it comes first.
    pub fn header(&self) -> String {
        to_line(&Line::Header {
            format: FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            config: Box::new(RecordedConfig::new(&self.config, self.seed, self.secrets)),
        })
    }

    /// The line of `input`, applied at `now` with `outcome`, when `queued`
    /// outputs were still waiting to be polled
    /// ([`Session::queued_outputs`] just before the call).
    pub fn input(&self, input: &Input, outcome: &Outcome, queued: usize, now: Instant) -> String {
        let at = now.saturating_duration_since(self.start);
        let input = if self.secrets {
            input.clone()
        } else {
            redact_input(input)
        };
        to_line(&Line::Input {
            at_ns: nanos(at),
            queued,
            input,
            outcome: outcome.clone(),
        })
    }

    /// The line of one output polled.
    pub fn output(&self, output: &Output) -> String {
        to_line(&Line::Output(RecordedOutput::new(output, self.secrets)))
    }

    /// The recorded form of join params (their values are redacted when the
    /// line is made, unless secrets are kept).
    pub fn params(&mut self, params: &JoinParams) -> RecordedParams {
        let (view, settling) = params.view();
        let next = u64::try_from(self.providers.len()).unwrap_or(u64::MAX) + 1;
        let (json, provider) = match view {
            ParamsView::Empty => (None, None),
            ParamsView::Json(value) => (Some(RawJson::from_value(value)), None),
            ParamsView::Provider(identity) => {
                (None, Some(*self.providers.entry(identity).or_insert(next)))
            }
        };
        RecordedParams {
            json,
            provider,
            settling,
        }
    }

    /// The input of [`Session::subscribe`] with these arguments.
    pub fn subscribe(
        &mut self,
        id: SubscriberId,
        topic: &str,
        options: &SubscribeOptions,
    ) -> Input {
        Input::Subscribe {
            id: id.0,
            topic: topic.to_owned(),
            params: self.params(&options.params),
            events: options.events.as_ref().map(|e| e.to_vec()),
            presence: options.presence,
            stream: options.stream.as_deref().cloned().map(Box::new),
        }
    }

    /// The input of [`Session::switch`] with these arguments.
    pub fn switch(&mut self, id: RoomId, topic: &str, params: &JoinParams) -> Input {
        Input::Switch {
            id: id.0,
            topic: topic.to_owned(),
            params: self.params(params),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn to_line(line: &Line) -> String {
    // Every field serializes (string keys, no non-finite floats: payloads
    // are `serde_json` values already).
    serde_json::to_string(line).unwrap_or_else(|e| format!("{{\"unserializable\":\"{e}\"}}"))
}

/// `value` with every value of an object replaced by the redaction mark
/// (the keys stay: they tell what was there); anything else by an empty
/// value of its type, so a replay refuses it the same way.
pub(crate) fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.keys()
                .map(|k| (k.clone(), Value::String(REDACTED.to_owned())))
                .collect(),
        ),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::String(_) => Value::String(REDACTED.to_owned()),
        Value::Number(_) => Value::from(0),
        Value::Bool(_) => Value::Bool(false),
        Value::Null => Value::Null,
    }
}

fn redact_params(params: &RecordedParams) -> RecordedParams {
    RecordedParams {
        json: params
            .json
            .as_ref()
            .map(|json| RawJson::from_value(&redact_json(&json.to_value()))),
        ..params.clone()
    }
}

fn redact_input(input: &Input) -> Input {
    match input {
        Input::Subscribe {
            id,
            topic,
            params,
            events,
            presence,
            stream,
        } => Input::Subscribe {
            id: *id,
            topic: topic.clone(),
            params: redact_params(params),
            events: events.clone(),
            presence: *presence,
            stream: stream.clone(),
        },
        Input::Switch { id, topic, params } => Input::Switch {
            id: *id,
            topic: topic.clone(),
            params: redact_params(params),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
