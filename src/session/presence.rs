//! Presence with phoenix.js semantics: who is on a channel, kept in sync
//! from the server's `presence_state` and `presence_diff` messages.
//!
//! [`Presence`] reproduces the `Presence` class of phoenix.js 1.8 exactly —
//! the same list in the same order, the same join and leave notifications
//! with the same arguments — as a pure value: messages go in through
//! [`Presence::handle_message`], notifications come out of
//! [`Presence::poll_event`]. A differential test replays generated message
//! sequences through the pinned phoenix.js and compares both after every step.
//!
//! The rules, all phoenix.js's:
//! - A **state** (`{key: {metas: [{phx_ref, ...}]}}`) replaces the list. It
//!   is compared with the current list by `phx_ref`: connections not known
//!   yet are joins, connections and keys that are gone are leaves.
//! - A **diff** (`{joins, leaves}`) applies its joins, then its leaves, by
//!   `phx_ref`. A key left without connections is removed.
//! - Diffs that arrive before the state of the **current join** are buffered
//!   and applied, in order, right after that state. Phoenix sends the diff
//!   that announces a joiner before the state it pushes to that joiner, so a
//!   diff can precede the state it applies to. Every new join (a rejoin after
//!   a reconnect, say) buffers again until its own state arrives; the list of
//!   the previous join stays until then, and the new state is compared
//!   against it, so only real changes are reported.
//! - Messages stamped with another join's ref are dropped as stale, as
//!   phoenix.js channels do.
//!
//! The list is ordered as phoenix.js orders object keys: keys that are array
//! indices (`"0"`, `"42"`, not `"007"`) first, ascending, then the others in
//! the order they were first added. Within one payload, keys are taken in the
//! order the `serde_json::Value` iterates them: source order with serde_json's
//! `preserve_order` feature, sorted otherwise.
//!
//! ```
//! use channel_registry::session::presence::{Handled, Presence, PresenceConfig, PresenceEvent};
//! use serde_json::json;
//!
//! let mut presence = Presence::new(PresenceConfig::default());
//! // The phx_join with ref "1" went out; the server replied ok.
//! presence.handle_join("1");
//!
//! // Phoenix broadcasts the diff announcing us before it pushes our state:
//! // the diff waits for the state.
//! let diff = json!({"joins": {"alice": {"metas": [{"phx_ref": "F1"}]}}, "leaves": {}});
//! assert_eq!(presence.handle_message(None, "presence_diff", &diff)?, Handled::Buffered);
//! assert!(!presence.is_synced());
//!
//! let state = json!({
//!     "alice": {"metas": [{"phx_ref": "F1"}]},
//!     "bob": {"metas": [{"phx_ref": "F0", "device": "phone"}]},
//! });
//! assert_eq!(presence.handle_message(Some("1"), "presence_state", &state)?, Handled::Applied);
//! assert!(presence.is_synced());
//!
//! let online = presence.list_by(|key, entry| format!("{key} ×{}", entry.metas().len()));
//! assert_eq!(online, ["alice ×1", "bob ×1"]);
//!
//! let mut joined = Vec::new();
//! while let Some(event) = presence.poll_event() {
//!     match event {
//!         PresenceEvent::Join { key, current: None, .. } => joined.push(key),
//!         PresenceEvent::Sync => println!("render {} users", presence.len()),
//!         _ => {}
//!     }
//! }
//! assert_eq!(joined, ["alice", "bob"]);
//! # Ok::<(), channel_registry::session::presence::PresenceError>(())
//! ```

mod entry;
mod error;
mod js_object;
mod payload;
mod snapshot;
mod sync;

use std::collections::VecDeque;

use serde_json::Value;

pub use entry::{PresenceEntry, PresenceMeta};
pub use error::PresenceError;
pub use snapshot::PresenceList;

use payload::{parse_diff, parse_state, Diff};
use sync::{sync_diff, sync_state, State};

/// How a [`Presence`] reads its channel. `PresenceConfig::default()` follows
/// phoenix.js and `Phoenix.Presence`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PresenceConfig {
    /// The event that carries the full state. Default `"presence_state"`.
    /// When it equals [`diff_event`](Self::diff_event), messages are states.
    pub state_event: String,
    /// The event that carries a diff. Default `"presence_diff"`.
    pub diff_event: String,
    /// How many diffs may wait for the state of the current join. Default
    /// 10 000. phoenix.js has no bound; a server that never sends the state
    /// would grow the buffer forever, so past this a diff is refused with
    /// [`PresenceError::TooManyPendingDiffs`].
    pub max_pending_diffs: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            state_event: "presence_state".to_owned(),
            diff_event: "presence_diff".to_owned(),
            max_pending_diffs: 10_000,
        }
    }
}

impl PresenceConfig {
    /// The default configuration with other event names, as phoenix.js
    /// `new Presence(channel, {events: {state, diff}})`.
    pub fn with_events(state: impl Into<String>, diff: impl Into<String>) -> Self {
        PresenceConfig {
            state_event: state.into(),
            diff_event: diff.into(),
            ..PresenceConfig::default()
        }
    }
}

/// What [`Presence::handle_message`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Handled {
    /// Not a presence event: nothing changed; route it elsewhere.
    Unrelated,
    /// Stamped with the ref of another join than the current one: dropped,
    /// as phoenix.js channels drop outdated messages.
    Stale,
    /// A diff that arrived before the state of the current join: kept, to be
    /// applied right after that state.
    Buffered,
    /// A state or diff was applied: its events are queued, ending with
    /// [`PresenceEvent::Sync`].
    Applied,
}

/// A change of the presence list, in the order phoenix.js calls its
/// `onJoin`, `onLeave` and `onSync` callbacks, with the same arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresenceEvent {
    /// Connections of `key` joined (phoenix.js `onJoin`).
    Join {
        /// The presence key.
        key: String,
        /// The key's entry before the join; `None` for a key new to the list.
        current: Option<PresenceEntry>,
        /// The joined connections, as the state or diff carried them.
        joined: PresenceEntry,
    },
    /// Connections of `key` left (phoenix.js `onLeave`).
    Leave {
        /// The presence key.
        key: String,
        /// The key's entry after the leave; when its metas are empty the key
        /// is no longer listed.
        current: PresenceEntry,
        /// The connections that left, as the state or diff carried them.
        left: PresenceEntry,
    },
    /// A state or diff was applied (phoenix.js `onSync`): a good moment to
    /// render the list.
    Sync,
}

/// The presence list of one channel, with phoenix.js semantics.
///
/// Feed it the channel's joins ([`handle_join`](Self::handle_join)) and
/// messages ([`handle_message`](Self::handle_message)); read the list
/// ([`iter`](Self::iter), [`list`](Self::list), [`list_by`](Self::list_by))
/// and drain the changes ([`poll_event`](Self::poll_event)). Pure: no IO, no
/// clock; the same inputs always give the same list and events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Presence {
    config: PresenceConfig,
    /// The list (phoenix.js `state`).
    state: State,
    /// Diffs waiting for the state of the current join (`pendingDiffs`).
    pending_diffs: Vec<Diff>,
    /// The ref of the channel's latest join (phoenix.js `channel.joinRef()`).
    channel_join_ref: Option<String>,
    /// The channel's join ref when the last state arrived (`joinRef`).
    synced_join_ref: Option<String>,
    events: VecDeque<PresenceEvent>,
}

impl Presence {
    /// An empty list, waiting for a state.
    pub fn new(config: PresenceConfig) -> Self {
        Presence {
            config,
            state: State::default(),
            pending_diffs: Vec::new(),
            channel_join_ref: None,
            synced_join_ref: None,
            events: VecDeque::new(),
        }
    }

    /// The channel sent a `phx_join` with this ref: a new incarnation whose
    /// messages carry it. Call it before handing over any message of that
    /// join. Diffs are buffered again until its state arrives; the list stays
    /// as it is until then.
    pub fn handle_join(&mut self, join_ref: impl Into<String>) {
        self.channel_join_ref = Some(join_ref.into());
    }

    /// Handles one message of the channel: `join_ref` is the frame's
    /// join_ref (set on the state, a channel push; `None` on a diff, a
    /// broadcast), `event` and `payload` the frame's.
    ///
    /// Other events are [`Handled::Unrelated`] and change nothing, so every
    /// message of the channel may be passed through here.
    ///
    /// # Errors
    ///
    /// A payload that is not a presence state or diff
    /// ([`PresenceError::Malformed`]), or a diff beyond
    /// [`PresenceConfig::max_pending_diffs`]. Nothing changes then.
    pub fn handle_message(
        &mut self,
        join_ref: Option<&str>,
        event: &str,
        payload: &Value,
    ) -> Result<Handled, PresenceError> {
        let is_state = event == self.config.state_event;
        if !is_state && event != self.config.diff_event {
            return Ok(Handled::Unrelated);
        }
        // phoenix.js `Channel.isMember`: an empty join_ref counts as none.
        if let Some(join_ref) = join_ref.filter(|join_ref| !join_ref.is_empty()) {
            if self.channel_join_ref.as_deref() != Some(join_ref) {
                return Ok(Handled::Stale);
            }
        }
        if is_state {
            let new_state = parse_state(event, payload)?;
            self.synced_join_ref.clone_from(&self.channel_join_ref);
            sync_state(&mut self.state, new_state, &mut self.events);
            for diff in std::mem::take(&mut self.pending_diffs) {
                sync_diff(&mut self.state, diff, &mut self.events);
            }
        } else {
            let diff = parse_diff(event, payload)?;
            if !self.is_synced() {
                let limit = self.config.max_pending_diffs;
                if self.pending_diffs.len() >= limit {
                    return Err(PresenceError::TooManyPendingDiffs { limit });
                }
                self.pending_diffs.push(diff);
                return Ok(Handled::Buffered);
            }
            sync_diff(&mut self.state, diff, &mut self.events);
        }
        self.events.push_back(PresenceEvent::Sync);
        Ok(Handled::Applied)
    }

    /// Whether the list reflects the state of the current join (phoenix.js
    /// `!inPendingSyncState()`): diffs are applied as they come only then.
    pub fn is_synced(&self) -> bool {
        match (&self.synced_join_ref, &self.channel_join_ref) {
            (Some(synced), Some(current)) => !synced.is_empty() && synced == current,
            _ => false,
        }
    }

    /// The next change, oldest first. Drain it after every message that
    /// returned [`Handled::Applied`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PresenceEvent> {
        self.events.pop_front()
    }

    /// The entries by key, in phoenix.js order, without copying.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &PresenceEntry)> + Clone {
        self.state.iter()
    }

    /// The entries in phoenix.js order, each beside its key (phoenix.js
    /// `presence.list()` gives the entries alone).
    pub fn list(&self) -> Vec<(String, PresenceEntry)> {
        self.list_by(|key, entry| (key.to_owned(), entry.clone()))
    }

    /// What `chooser` makes of each entry, in phoenix.js order
    /// (`presence.list(chooser)`).
    pub fn list_by<T>(&self, mut chooser: impl FnMut(&str, &PresenceEntry) -> T) -> Vec<T> {
        self.iter()
            .map(|(key, entry)| chooser(key, entry))
            .collect()
    }

    /// The entry of one key.
    pub fn get(&self, key: &str) -> Option<&PresenceEntry> {
        self.state.get(key)
    }

    /// Number of keys listed.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether nobody is listed.
    pub fn is_empty(&self) -> bool {
        self.state.len() == 0
    }

    /// The configuration.
    pub fn config(&self) -> &PresenceConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests;
