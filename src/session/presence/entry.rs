//! What the tracker holds per presence key: the metas of every connection of
//! that key, each identified by its `phx_ref`.

use serde::Serialize;
use serde_json::{Map, Value};

/// The field that identifies one tracked connection.
pub(super) const PHX_REF: &str = "phx_ref";
/// The field of an entry that lists its connections.
pub(super) const METAS: &str = "metas";

/// One presence key (a user, a device, whatever the server tracks by): the
/// metas of each of its connections, plus any other fields the server adds to
/// the entry (for example from a `Phoenix.Presence` `fetch/2` callback).
///
/// Serializes to the JSON phoenix.js would hold: `{"metas": [...], ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PresenceEntry {
    pub(super) metas: Vec<PresenceMeta>,
    #[serde(flatten)]
    pub(super) fields: Map<String, Value>,
}

impl PresenceEntry {
    /// One meta per tracked connection of this key, in phoenix.js order:
    /// the connections already known first, newly joined ones after them.
    pub fn metas(&self) -> &[PresenceMeta] {
        &self.metas
    }

    /// A field of the entry other than `metas` (as added by the server's
    /// `fetch/2`), taken from the latest join of this key.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// The entry as JSON, exactly as phoenix.js holds it.
    pub fn to_value(&self) -> Value {
        let mut object = self.fields.clone();
        let metas = self.metas.iter().map(PresenceMeta::to_value).collect();
        object.insert(METAS.to_owned(), Value::Array(metas));
        Value::Object(object)
    }
}

/// The metadata of one tracked connection, as the server sent it. Its
/// `phx_ref` identifies the connection: joins and leaves are matched on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PresenceMeta {
    /// Every field, `phx_ref` included (a string, checked on the way in).
    pub(super) fields: Map<String, Value>,
}

impl PresenceMeta {
    /// The ref that identifies this connection on the server.
    pub fn phx_ref(&self) -> &str {
        self.fields
            .get(PHX_REF)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A field of the meta (`phx_ref` included), such as `online_at` or the
    /// `phx_ref_prev` a server sends when it updates a connection's meta.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// All fields, as the server sent them.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The meta as JSON.
    pub fn to_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }
}
