//! The session's outputs as a recording keeps them, and the normal form a
//! replay compares.
//!
//! Frames, connect and close requests are kept as data; events, resource
//! calls and diagnostics as their `Debug` text, which carries every field
//! and no secret (the session never puts param values in them). A replay
//! compares them within one crate version; the header names it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::{event, Frame};
use crate::session::record::{base64, config::redact_url, redact_json, REDACTED};
use crate::session::Output;

/// One output of a session, serializable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordedOutput {
    /// A text frame sent (a join's params redacted unless secrets are kept).
    Text(String),
    /// A binary frame sent, base64.
    Binary(String),
    /// A connection attempt asked for.
    Connect {
        /// The attempt.
        id: u64,
        /// Attempts since the connection was last healthy.
        attempt: u32,
        /// Its timeout, in nanoseconds.
        timeout_ns: u64,
        /// The URL (query values redacted unless secrets are kept).
        url: String,
        /// The protocols offered (the auth token redacted unless secrets
        /// are kept).
        protocols: Vec<String>,
    },
    /// A close asked for.
    Close {
        /// The connection.
        id: u64,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A resource call, as its `Debug` text.
    Resource(String),
    /// An event for the application, as its `Debug` text.
    Event(String),
    /// A diagnostic, as its `Debug` text.
    Diagnostic(String),
}

/// The `Sec-WebSocket-Protocol` prefix of an auth token.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

impl RecordedOutput {
    /// The recorded form of `output`; secrets (join params, socket params,
    /// the auth token) redacted unless `secrets`.
    pub fn new(output: &Output, secrets: bool) -> RecordedOutput {
        let recorded = match output {
            Output::Transmit(Frame::Text(text)) => RecordedOutput::Text(text.clone()),
            Output::Transmit(Frame::Binary(bytes)) => RecordedOutput::Binary(base64::encode(bytes)),
            Output::Connect(request) => RecordedOutput::Connect {
                id: request.id.0,
                attempt: request.attempt,
                timeout_ns: u64::try_from(request.timeout.as_nanos()).unwrap_or(u64::MAX),
                url: request.url().to_owned(),
                protocols: request.protocols().to_vec(),
            },
            Output::Close(request) => RecordedOutput::Close {
                id: request.id.0,
                code: request.code,
                reason: request.reason.to_owned(),
            },
            Output::Resource(effect) => RecordedOutput::Resource(format!("{effect:?}")),
            Output::Event(event) => RecordedOutput::Event(format!("{event:?}")),
            Output::Diagnostic(diagnostic) => RecordedOutput::Diagnostic(format!("{diagnostic:?}")),
        };
        if secrets {
            recorded
        } else {
            recorded.redacted()
        }
    }

    /// This output with its secrets redacted: join params, the URL's query
    /// values and the auth token.
    pub fn redacted(self) -> RecordedOutput {
        match self {
            RecordedOutput::Text(text) => RecordedOutput::Text(redact_join(&text, false)),
            RecordedOutput::Connect {
                id,
                attempt,
                timeout_ns,
                url,
                protocols,
            } => RecordedOutput::Connect {
                id,
                attempt,
                timeout_ns,
                url: redact_url(&url),
                protocols: protocols
                    .into_iter()
                    .map(|p| {
                        if p.starts_with(AUTH_TOKEN_PREFIX) {
                            format!("{AUTH_TOKEN_PREFIX}{REDACTED}")
                        } else {
                            p
                        }
                    })
                    .collect(),
            },
            other => other,
        }
    }

    /// The form a replay compares: redacted, with what a replay cannot
    /// reproduce left out (a join's params entirely, since a provider's are
    /// unknown; the URL's query, whose provider params are unknown).
    pub fn normalized(&self) -> RecordedOutput {
        match self.clone().redacted() {
            RecordedOutput::Text(text) => RecordedOutput::Text(redact_join(&text, true)),
            RecordedOutput::Connect {
                id,
                attempt,
                timeout_ns,
                url,
                protocols,
            } => RecordedOutput::Connect {
                id,
                attempt,
                timeout_ns,
                url: crate::session::redact_query(&url).to_owned(),
                protocols,
            },
            other => other,
        }
    }
}

/// A join frame's text with its params redacted (`whole`: replaced by the
/// redaction mark entirely); other frames unchanged.
fn redact_join(text: &str, whole: bool) -> String {
    let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    if parts.len() != 5 || parts[3].as_str() != Some(event::JOIN) {
        return text.to_owned();
    }
    parts[4] = if whole {
        Value::String(REDACTED.to_owned())
    } else {
        redact_json(&parts[4])
    };
    Value::Array(parts).to_string()
}
