//! A frozen copy of a presence list, cheap to clone and share: what a driver
//! hands to readers on other tasks or threads while the tracker moves on.

use std::sync::Arc;

use super::{Presence, PresenceEntry};

/// The presence list of one channel as it was at one moment, in phoenix.js
/// order. Cloning shares the entries (one reference count), so one snapshot
/// per sync can go to every reader.
///
/// ```
/// use channel_registry::session::presence::{Presence, PresenceConfig, PresenceList};
/// use serde_json::json;
///
/// let mut presence = Presence::new(PresenceConfig::default());
/// presence.handle_join("1");
/// let state = json!({"alice": {"metas": [{"phx_ref": "F1"}]}});
/// presence.handle_message(Some("1"), "presence_state", &state)?;
///
/// let list: PresenceList = presence.snapshot();
/// assert!(list.is_synced());
/// assert_eq!(list.keys().collect::<Vec<_>>(), ["alice"]);
/// assert_eq!(list.get("alice").map(|entry| entry.metas().len()), Some(1));
/// assert!(PresenceList::default().is_empty());
/// # Ok::<(), channel_registry::session::presence::PresenceError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PresenceList {
    entries: Arc<[(Arc<str>, PresenceEntry)]>,
    synced: bool,
}

impl PresenceList {
    /// The entries by key, in phoenix.js order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &PresenceEntry)> + Clone {
        self.entries.iter().map(|(key, entry)| (&**key, entry))
    }

    /// The keys, in phoenix.js order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.entries.iter().map(|(key, _)| &**key)
    }

    /// The entry of one key (a linear search: lists are small, and the order
    /// is phoenix.js's, not a map's).
    pub fn get(&self, key: &str) -> Option<&PresenceEntry> {
        self.iter().find(|(k, _)| *k == key).map(|(_, entry)| entry)
    }

    /// Number of keys listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nobody is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the list reflected the state of the channel's current join
    /// when it was taken (see [`Presence::is_synced`]). Before the first
    /// state arrives the list is empty and not synced.
    pub fn is_synced(&self) -> bool {
        self.synced
    }
}

impl Presence {
    /// A snapshot of the list, to share with readers elsewhere.
    pub fn snapshot(&self) -> PresenceList {
        PresenceList {
            entries: self
                .iter()
                .map(|(key, entry)| (Arc::from(key), entry.clone()))
                .collect(),
            synced: self.is_synced(),
        }
    }
}
