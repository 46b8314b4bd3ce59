//! Why a presence message was refused.

use serde_json::Value;

/// Why [`Presence::handle_message`](super::Presence::handle_message) refused a
/// message. The presence list, the buffered diffs and the event queue are
/// exactly as they were before the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The payload does not have the shape of a `Phoenix.Presence` state
    /// (`{key: {metas: [{phx_ref, ...}]}}`) or diff (`{joins, leaves}`).
    #[error(
        "malformed {event} payload: {} must be {expected}, found {found}; the message was \
         ignored (does the server send Phoenix.Presence payloads on this event? if not, \
         configure other event names in PresenceConfig)",
        describe_pointer(.pointer)
    )]
    Malformed {
        /// The event the payload came with.
        event: String,
        /// Where in the payload, as a JSON pointer (RFC 6901); empty for the
        /// payload itself.
        pointer: String,
        /// What that place must hold.
        expected: &'static str,
        /// What it holds instead (`"nothing"` when absent).
        found: &'static str,
    },
    /// Too many diffs arrived before the state of the current join.
    #[error(
        "{limit} presence diffs are already waiting for the presence_state of the current \
         join; this diff was dropped and the list may now miss a change. If the server never \
         sends presence_state on this channel, rejoin it; otherwise raise \
         PresenceConfig::max_pending_diffs"
    )]
    TooManyPendingDiffs {
        /// The configured limit.
        limit: usize,
    },
}

fn describe_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "the payload".to_owned()
    } else {
        format!("`{pointer}`")
    }
}

/// The kind of a JSON value, for error messages.
pub(super) fn kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "nothing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}
