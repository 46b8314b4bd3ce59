//! Reading `presence_state` and `presence_diff` payloads into typed values,
//! checking their shape once on the way in.
//!
//! Keys come out in the order phoenix.js would see them: the order the JSON
//! object iterates in (source order with serde_json's `preserve_order`
//! feature, sorted otherwise), then rearranged by JavaScript's own-property
//! rule (array-index keys first, see [`js_object`](super::js_object)).

use serde_json::{Map, Value};

use super::entry::{PresenceEntry, PresenceMeta, METAS, PHX_REF};
use super::error::{kind, PresenceError};
use super::js_object::js_order;

/// Presences by key, in phoenix.js order.
pub(super) type Presences = Vec<(String, PresenceEntry)>;

/// A `presence_diff`: what joined and what left, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Diff {
    /// Joined connections, applied first.
    pub(super) joins: Presences,
    /// Left connections, applied after the joins.
    pub(super) leaves: Presences,
}

/// Reads a state payload `{key: {metas: [{phx_ref, ...}]}}`.
pub(super) fn parse_state(event: &str, payload: &Value) -> Result<Presences, PresenceError> {
    let mut at = Pointer::new(event);
    parse_presences(payload, &mut at)
}

/// Reads a diff payload `{joins: {...}, leaves: {...}}`.
pub(super) fn parse_diff(event: &str, payload: &Value) -> Result<Diff, PresenceError> {
    let mut at = Pointer::new(event);
    let object = at.object(payload, "an object {\"joins\": {...}, \"leaves\": {...}}")?;
    let mut field = |name: &str| {
        at.push(name);
        let presences = parse_presences_of(object.get(name), &mut at);
        at.pop();
        presences
    };
    let joins = field("joins")?;
    let leaves = field("leaves")?;
    Ok(Diff { joins, leaves })
}

fn parse_presences(value: &Value, at: &mut Pointer<'_>) -> Result<Presences, PresenceError> {
    parse_presences_of(Some(value), at)
}

fn parse_presences_of(
    value: Option<&Value>,
    at: &mut Pointer<'_>,
) -> Result<Presences, PresenceError> {
    let object = match value {
        Some(Value::Object(object)) => object,
        other => return Err(at.error("an object of presences by key", other)),
    };
    let mut presences = Vec::with_capacity(object.len());
    for (key, entry) in object {
        at.push(key);
        let entry = parse_entry(entry, at)?;
        at.pop();
        presences.push((key.clone(), entry));
    }
    Ok(js_order(presences))
}

fn parse_entry(value: &Value, at: &mut Pointer<'_>) -> Result<PresenceEntry, PresenceError> {
    let object = at.object(value, "an object {\"metas\": [...]}")?;
    at.push(METAS);
    let metas = match object.get(METAS) {
        Some(Value::Array(metas)) => metas,
        other => return Err(at.error("an array of metas", other)),
    };
    let metas = metas
        .iter()
        .enumerate()
        .map(|(index, meta)| {
            at.push(&index.to_string());
            let meta = parse_meta(meta, at);
            at.pop();
            meta
        })
        .collect::<Result<Vec<_>, _>>()?;
    at.pop();
    let fields: Map<String, Value> = object
        .iter()
        .filter(|(name, _)| name.as_str() != METAS)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Ok(PresenceEntry { metas, fields })
}

fn parse_meta(value: &Value, at: &mut Pointer<'_>) -> Result<PresenceMeta, PresenceError> {
    let object = at.object(value, "an object {\"phx_ref\": string, ...}")?;
    match object.get(PHX_REF) {
        Some(Value::String(_)) => Ok(PresenceMeta {
            fields: object.clone(),
        }),
        other => {
            at.push(PHX_REF);
            Err(at.error("a string", other))
        }
    }
}

/// Where the parser is, as a JSON pointer, for error messages.
struct Pointer<'a> {
    event: &'a str,
    /// The escaped reference tokens.
    tokens: Vec<String>,
}

impl<'a> Pointer<'a> {
    fn new(event: &'a str) -> Self {
        Pointer {
            event,
            tokens: Vec::new(),
        }
    }

    fn push(&mut self, token: &str) {
        self.tokens
            .push(token.replace('~', "~0").replace('/', "~1"));
    }

    fn pop(&mut self) {
        self.tokens.pop();
    }

    fn object<'v>(
        &self,
        value: &'v Value,
        expected: &'static str,
    ) -> Result<&'v Map<String, Value>, PresenceError> {
        value
            .as_object()
            .ok_or_else(|| self.error(expected, Some(value)))
    }

    fn error(&self, expected: &'static str, found: Option<&Value>) -> PresenceError {
        PresenceError::Malformed {
            event: self.event.to_owned(),
            pointer: self
                .tokens
                .iter()
                .map(|token| format!("/{token}"))
                .collect(),
            expected,
            found: kind(found),
        }
    }
}
