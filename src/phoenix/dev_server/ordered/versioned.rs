//! A versioned topic's document: its state, the patches applied to it, and the mounts
//! (subscribers), each at its own version.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::fanout::{Fanout, Item, Subscriber};
use super::faults::OrderedFault;
use super::patch::{self, OpError};
use super::VersionedFormat;

/// One versioned topic, for the server's lifetime.
#[derive(Debug)]
pub(crate) struct VersionedDoc {
    pub(crate) format: Arc<VersionedFormat>,
    /// The document every mount starts from (an empty object at first).
    pub(crate) state: Value,
    /// Patches applied to the topic so far.
    pub(crate) revision: u64,
    pub(crate) subscribers: Vec<Subscriber>,
    fanout: Fanout,
}

impl VersionedDoc {
    pub(crate) fn new(format: Arc<VersionedFormat>) -> Self {
        VersionedDoc {
            format,
            state: Value::Object(Map::new()),
            revision: 0,
            subscribers: Vec::new(),
            fanout: Fanout::default(),
        }
    }

    pub(crate) fn reordering(&self) -> bool {
        self.fanout.reordering()
    }

    /// Whether a fault may be spent on the next patch (not while a reorder is completing).
    pub(crate) fn takes_fault(&self) -> bool {
        !self.fanout.reordering()
    }

    /// Mount a new incarnation: returns the `0 → 1` envelope carrying the whole state, to
    /// push after the join reply. Later patches reach it live, from version 1.
    pub(crate) fn mount(&mut self, mut subscriber: Subscriber) -> Value {
        subscriber.version = 1;
        self.subscribers.push(subscriber);
        let ops = json!([{"op": "replace", "path": "", "value": self.state}]);
        self.envelope(0, 1, ops)
    }

    /// The state `ops` would produce; the state itself is left as it is.
    pub(crate) fn patched(&self, ops: &[Value]) -> Result<Value, OpError> {
        let mut next = self.state.clone();
        patch::apply(&mut next, ops)?;
        Ok(next)
    }

    /// Make `next` (from [`patched`](Self::patched)) the state and push `ops` to every mount
    /// as its next version; returns the topic's new revision.
    pub(crate) fn commit(
        &mut self,
        topic: &str,
        next: Value,
        ops: Vec<Value>,
        fault: Option<&OrderedFault>,
    ) -> u64 {
        self.state = next;
        self.revision += 1;
        let step = if fault == Some(&OrderedFault::SkipVersion) {
            2
        } else {
            1
        };
        let ops = Value::Array(ops);
        let mut versions = Vec::with_capacity(self.subscribers.len());
        for subscriber in &mut self.subscribers {
            let base = subscriber.version;
            subscriber.version = base + step;
            versions.push((subscriber.id, base, subscriber.version));
        }
        let item = Item {
            deliveries: versions
                .into_iter()
                .map(|(id, base, version)| (id, self.envelope(base, version, ops.clone())))
                .collect(),
        };
        self.fanout
            .send(&self.subscribers, topic, &self.format.event, item, fault);
        self.revision
    }

    fn envelope(&self, base: u64, version: u64, ops: Value) -> Value {
        let mut envelope = Map::new();
        envelope.insert(self.format.base_field.clone(), Value::from(base));
        envelope.insert(self.format.version_field.clone(), Value::from(version));
        envelope.insert(self.format.ops_field.clone(), ops);
        Value::Object(envelope)
    }

    pub(crate) fn unsubscribe(&mut self, id: u64) {
        self.subscribers.retain(|subscriber| subscriber.id != id);
    }
}
