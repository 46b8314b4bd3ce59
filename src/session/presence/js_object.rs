//! A map that iterates in the order of a JavaScript object's own properties.
//!
//! phoenix.js keeps presences in plain objects and lists them with
//! `Object.getOwnPropertyNames`, whose order is: keys that are array indices
//! (the canonical decimal form of an integer from 0 to 2^32 − 2) first, in
//! ascending numeric order, then every other key in the order it was first
//! added. Deleting a key and adding it again moves a non-index key to the end.
//! Presence keys are often numeric user ids, so this order is visible to
//! applications and reproduced here exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The largest array index: 2^32 − 2 (2^32 − 1 is an ordinary key in JavaScript).
const MAX_ARRAY_INDEX: u64 = u32::MAX as u64 - 1;

/// Where a key sorts: all array indices (by value) before all other keys (by
/// insertion). The derived order follows the variant order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Slot {
    /// An array index, ordered by its numeric value.
    Index(u32),
    /// Any other key, ordered by when it was added.
    Named(u64),
}

/// The array index a key denotes in JavaScript, if any: the canonical decimal
/// form (no sign, no leading zero unless the key is `"0"`) of an integer from
/// 0 to 2^32 − 2.
pub(super) fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    let canonical = match bytes {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ => bytes.len() <= 10 && bytes.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    let value: u64 = key.parse().ok()?;
    if value <= MAX_ARRAY_INDEX {
        u32::try_from(value).ok()
    } else {
        None
    }
}

/// Puts freshly collected object properties (unique keys, in insertion order)
/// into JavaScript's own-property order.
pub(super) fn js_order<V>(items: Vec<(String, V)>) -> Vec<(String, V)> {
    let mut keyed: Vec<(Slot, (String, V))> = items
        .into_iter()
        .zip(0u64..)
        .map(|(item, position)| {
            let slot = array_index(&item.0).map_or(Slot::Named(position), Slot::Index);
            (slot, item)
        })
        .collect();
    keyed.sort_by_key(|(slot, _)| *slot);
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// A string-keyed map with JavaScript's own-property iteration order.
#[derive(Clone)]
pub(super) struct JsObject<V> {
    /// The entries in iteration order.
    entries: BTreeMap<Slot, (String, V)>,
    /// Where each key sits in `entries`.
    slots: BTreeMap<String, Slot>,
    /// The insertion stamp of the next non-index key.
    next_named: u64,
}

impl<V> Default for JsObject<V> {
    fn default() -> Self {
        JsObject {
            entries: BTreeMap::new(),
            slots: BTreeMap::new(),
            next_named: 0,
        }
    }
}

impl<V> JsObject<V> {
    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&V> {
        let slot = self.slots.get(key)?;
        self.entries.get(slot).map(|(_, value)| value)
    }

    /// The value of `key`, mutably.
    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let slot = self.slots.get(key)?;
        self.entries.get_mut(slot).map(|(_, value)| value)
    }

    /// Sets `key` like `object[key] = value`: an existing key keeps its place,
    /// a new one takes the place JavaScript gives it. Returns the old value.
    pub(super) fn insert(&mut self, key: String, value: V) -> Option<V> {
        if let Some(slot) = self.slots.get(&key) {
            let entry = self.entries.get_mut(slot)?;
            return Some(std::mem::replace(&mut entry.1, value));
        }
        let slot = match array_index(&key) {
            Some(index) => Slot::Index(index),
            None => {
                let stamp = self.next_named;
                self.next_named = self.next_named.wrapping_add(1);
                Slot::Named(stamp)
            }
        };
        self.slots.insert(key.clone(), slot);
        self.entries.insert(slot, (key, value));
        None
    }

    /// Removes `key` like `delete object[key]`.
    pub(super) fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.slots.remove(key)?;
        self.entries.remove(&slot).map(|(_, value)| value)
    }

    /// The entries in JavaScript's own-property order.
    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &V)> + Clone {
        self.entries
            .values()
            .map(|(key, value)| (key.as_str(), value))
    }
}

/// Equal when the same keys hold equal values in the same order (insertion
/// stamps are bookkeeping, not content).
impl<V: PartialEq> PartialEq for JsObject<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Eq> Eq for JsObject<V> {}

impl<V: Hash> Hash for JsObject<V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for entry in self.iter() {
            entry.hash(state);
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for JsObject<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_indices_are_canonical_integers_below_two_to_the_32_minus_one() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("42"), Some(42));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        for not_index in [
            "",
            "00",
            "01",
            "-1",
            "+1",
            "1.0",
            "1e3",
            " 1",
            "4294967295",
            "99999999999",
            "alice",
        ] {
            assert_eq!(array_index(not_index), None, "{not_index:?}");
        }
    }

    #[test]
    fn iterates_indices_ascending_then_names_in_insertion_order() {
        let mut object = JsObject::default();
        for key in ["bob", "10", "alice", "9", "01", "4294967295", "0"] {
            object.insert(key.to_owned(), ());
        }
        let keys: Vec<&str> = object.iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["0", "9", "10", "bob", "alice", "01", "4294967295"]);
    }

    #[test]
    fn overwriting_keeps_the_place_and_re_adding_moves_a_name_to_the_end() {
        let mut object = JsObject::default();
        for key in ["a", "b", "c", "7"] {
            object.insert(key.to_owned(), 1);
        }
        assert_eq!(object.insert("a".to_owned(), 2), Some(1));
        assert_eq!(object.remove("b"), Some(1));
        assert_eq!(object.remove("7"), Some(1));
        object.insert("b".to_owned(), 3);
        object.insert("7".to_owned(), 3);
        let entries: Vec<(&str, i32)> = object.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(entries, [("7", 3), ("a", 2), ("c", 1), ("b", 3)]);
        assert_eq!(object.get("c"), Some(&1));
        assert_eq!(object.remove("missing"), None);
    }

    #[test]
    fn equality_ignores_insertion_stamps() {
        let mut churned = JsObject::default();
        churned.insert("x".to_owned(), 1);
        churned.remove("x");
        churned.insert("y".to_owned(), 1);
        let mut fresh = JsObject::default();
        fresh.insert("y".to_owned(), 1);
        assert_eq!(churned, fresh);
        fresh.insert("z".to_owned(), 1);
        assert_ne!(churned, fresh);
    }

    #[test]
    fn js_order_sorts_collected_properties() {
        let items = vec![
            ("b".to_owned(), 0),
            ("2".to_owned(), 1),
            ("a".to_owned(), 2),
            ("1".to_owned(), 3),
        ];
        let keys: Vec<String> = js_order(items).into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["1", "2", "b", "a"]);
    }
}
