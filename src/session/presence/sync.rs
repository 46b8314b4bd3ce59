//! phoenix.js `Presence.syncState` and `Presence.syncDiff`, step for step,
//! with the `onJoin` / `onLeave` callbacks turned into queued events.

use std::collections::{HashSet, VecDeque};

use super::entry::{PresenceEntry, PresenceMeta};
use super::js_object::{js_order, JsObject};
use super::payload::{Diff, Presences};
use super::PresenceEvent;

/// The presence list: entries by key, in phoenix.js order.
pub(super) type State = JsObject<PresenceEntry>;

/// Replaces the whole list with `new_state` the way phoenix.js does: the
/// differences become a diff (joins: connections not known yet; leaves:
/// connections gone, and keys gone altogether), applied with [`sync_diff`].
///
/// Connections known on both sides are kept as they were, even if the new
/// state carries other metas for the same `phx_ref`.
pub(super) fn sync_state(
    state: &mut State,
    new_state: Presences,
    events: &mut VecDeque<PresenceEvent>,
) {
    let mut leaves = {
        let new_keys: HashSet<&str> = new_state.iter().map(|(key, _)| key.as_str()).collect();
        state
            .iter()
            .filter(|(key, _)| !new_keys.contains(key))
            .map(|(key, presence)| (key.to_owned(), presence.clone()))
            .collect::<Vec<_>>()
    };
    let mut joins = Vec::new();
    for (key, new_presence) in new_state {
        let Some(current) = state.get(&key) else {
            joins.push((key, new_presence));
            continue;
        };
        let left = without_refs_of(&current.metas, &new_presence.metas);
        if !left.is_empty() {
            let fields = current.fields.clone();
            leaves.push((
                key.clone(),
                PresenceEntry {
                    metas: left,
                    fields,
                },
            ));
        }
        let joined = without_refs_of(&new_presence.metas, &current.metas);
        if !joined.is_empty() {
            let fields = new_presence.fields;
            joins.push((
                key,
                PresenceEntry {
                    metas: joined,
                    fields,
                },
            ));
        }
    }
    let diff = Diff {
        joins,
        leaves: js_order(leaves),
    };
    sync_diff(state, diff, events);
}

/// Applies a diff the way phoenix.js does: every join first (the joined
/// entry replaces the key's entry, with the connections it does not mention
/// kept in front), then every leave (the left connections are removed; a key
/// left without connections is removed). A leave of an unknown key is
/// ignored; a leave of unknown refs of a known key is still reported.
pub(super) fn sync_diff(state: &mut State, diff: Diff, events: &mut VecDeque<PresenceEvent>) {
    for (key, joined) in diff.joins {
        let mut merged = joined.clone();
        if let Some(current) = state.get(&key) {
            let mut metas = without_refs_of(&current.metas, &joined.metas);
            metas.append(&mut merged.metas);
            merged.metas = metas;
        }
        let current = state.insert(key.clone(), merged);
        events.push_back(PresenceEvent::Join {
            key,
            current,
            joined,
        });
    }
    for (key, left) in diff.leaves {
        let Some(current) = state.get_mut(&key) else {
            continue;
        };
        let gone = RefSet::of(&left.metas);
        current.metas.retain(|meta| !gone.contains(meta.phx_ref()));
        let current = if current.metas.is_empty() {
            match state.remove(&key) {
                Some(removed) => removed,
                None => continue,
            }
        } else {
            current.clone()
        };
        events.push_back(PresenceEvent::Leave { key, current, left });
    }
}

/// The metas of `metas` whose `phx_ref` no meta of `other` has, in order.
fn without_refs_of(metas: &[PresenceMeta], other: &[PresenceMeta]) -> Vec<PresenceMeta> {
    let refs = RefSet::of(other);
    metas
        .iter()
        .filter(|meta| !refs.contains(meta.phx_ref()))
        .cloned()
        .collect()
}

/// The `phx_ref`s of some metas, for membership tests: a scan for the usual
/// handful of connections per key, a hash set for many.
enum RefSet<'a> {
    Few(&'a [PresenceMeta]),
    Many(HashSet<&'a str>),
}

impl<'a> RefSet<'a> {
    /// Above this many metas a hash set beats a scan.
    const SCAN_LIMIT: usize = 16;

    fn of(metas: &'a [PresenceMeta]) -> Self {
        if metas.len() <= Self::SCAN_LIMIT {
            RefSet::Few(metas)
        } else {
            RefSet::Many(metas.iter().map(PresenceMeta::phx_ref).collect())
        }
    }

    fn contains(&self, phx_ref: &str) -> bool {
        match self {
            RefSet::Few(metas) => metas.iter().any(|meta| meta.phx_ref() == phx_ref),
            RefSet::Many(refs) => refs.contains(phx_ref),
        }
    }
}
