//! Driving ordered topics from a test: publish, patch, arm faults, look.

use std::ops::RangeInclusive;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::patch::OpError;
use super::{
    OrderedFault, OrderedKind, SequencedFormat, SequencedInfo, VersionedFormat, VersionedInfo,
};
use crate::phoenix::dev_server::{DevServerHandle, ServerEventKind, TopicPattern};

/// Why an ordered topic could not be driven as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderedError {
    /// The topic's route is not sequenced, so nobody could receive numbered events on it.
    #[error(
        "{topic} is not served by a sequenced route: publish to a topic matching seq:* or a \
         pattern given to DevServerConfig::route_sequenced"
    )]
    NotSequenced {
        /// The topic.
        topic: String,
    },
    /// The topic's route is not versioned, so nobody could receive patches on it.
    #[error(
        "{topic} is not served by a versioned route: patch a topic matching doc:* or a \
         pattern given to DevServerConfig::route_versioned"
    )]
    NotVersioned {
        /// The topic.
        topic: String,
    },
    /// An event body that is not a JSON object: the server adds the sequence number to it.
    #[error("an event body must be a JSON object (the server adds its sequence number to it), not {found}")]
    BodyNotObject {
        /// The body given.
        found: String,
    },
    /// A patch operation could not be applied; the document and the mounts are unchanged.
    #[error("patch operation {index} cannot be applied: {reason}")]
    InvalidPatch {
        /// Position of the operation in the patch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl DevServerHandle {
    fn sequenced_format(&self, topic: &str) -> Result<Arc<SequencedFormat>, OrderedError> {
        match self.shared.ordered_route(topic) {
            Some(OrderedKind::Sequenced(format)) => Ok(format),
            _ => Err(OrderedError::NotSequenced {
                topic: topic.to_owned(),
            }),
        }
    }

    fn versioned_format(&self, topic: &str) -> Result<Arc<VersionedFormat>, OrderedError> {
        match self.shared.ordered_route(topic) {
            Some(OrderedKind::Versioned(format)) => Ok(format),
            _ => Err(OrderedError::NotVersioned {
                topic: topic.to_owned(),
            }),
        }
    }

    fn log_spoiled(&self, topic: &str, spoiled: Vec<(OrderedFault, u64)>) {
        for (fault, position) in spoiled {
            let kind = ServerEventKind::OrderedFault {
                topic: topic.to_owned(),
                fault,
                position,
            };
            self.shared.record(None, kind);
        }
    }

    /// Number one event of the sequenced `topic` and push it to every joined channel of the
    /// topic; `body` (a JSON object) gets the sequence number added. Returns the number.
    pub fn publish(&self, topic: &str, body: Value) -> Result<u64, OrderedError> {
        let format = self.sequenced_format(topic)?;
        let Value::Object(body) = body else {
            return Err(OrderedError::BodyNotObject {
                found: body.to_string(),
            });
        };
        let (seq, spoiled) = self
            .shared
            .ordered_update(|topics| topics.publish(topic, &format, body));
        self.log_spoiled(topic, spoiled.into_iter().collect());
        Ok(seq)
    }

    /// Number `count` events of the sequenced `topic` at once (each `{"seq": N}`) and push
    /// them, in order, to every joined channel of the topic. Returns their numbers.
    pub fn publish_events(
        &self,
        topic: &str,
        count: u64,
    ) -> Result<RangeInclusive<u64>, OrderedError> {
        let format = self.sequenced_format(topic)?;
        let (first, spoiled) = self.shared.ordered_update(|topics| {
            let first = topics.sequenced_log(topic, &format).next_seq;
            let spoiled: Vec<(OrderedFault, u64)> = (0..count)
                .filter_map(|_| topics.publish(topic, &format, Map::new()).1)
                .collect();
            (first, spoiled)
        });
        self.log_spoiled(topic, spoiled);
        Ok(first..=first + count - 1)
    }

    /// Apply one JSON Patch (`add`, `replace` and `remove` operations) to the versioned
    /// `topic`'s document and push it to every mount as its next version. All or nothing: an
    /// operation that cannot be applied leaves everything as it was. Returns the topic's
    /// revision (patches applied so far).
    pub fn apply_patch(&self, topic: &str, ops: Vec<Value>) -> Result<u64, OrderedError> {
        let format = self.versioned_format(topic)?;
        let (revision, spoiled) = self
            .shared
            .ordered_update(|topics| topics.apply_patch(topic, &format, ops))
            .map_err(invalid_patch)?;
        self.log_spoiled(topic, spoiled.into_iter().collect());
        Ok(revision)
    }

    /// Apply `count` patches to the versioned `topic`, each setting `/counter` to the
    /// revision it makes, and push them in order. Returns the revisions. Fails like
    /// [`apply_patch`](Self::apply_patch) only if the document was replaced by something
    /// other than an object (the patches before the failing one stay applied).
    pub fn apply_patches(
        &self,
        topic: &str,
        count: u64,
    ) -> Result<RangeInclusive<u64>, OrderedError> {
        let format = self.versioned_format(topic)?;
        let (result, spoiled) = self.shared.ordered_update(|topics| {
            let first = topics.versioned_doc(topic, &format).revision + 1;
            let mut spoiled: Vec<(OrderedFault, u64)> = Vec::new();
            for revision in first..first + count {
                let ops = vec![json!({"op": "add", "path": "/counter", "value": revision})];
                match topics.apply_patch(topic, &format, ops) {
                    Ok((_, fault)) => spoiled.extend(fault),
                    Err(error) => return (Err(invalid_patch(error)), spoiled),
                }
            }
            (Ok(first..=first + count - 1), spoiled)
        });
        self.log_spoiled(topic, spoiled);
        result
    }

    /// Arm `fault` for the next live push on a topic matching `pattern` (`*` for every
    /// topic). Faults are spent one per push, oldest first; a
    /// [`SkipVersion`](OrderedFault::SkipVersion) waits for a versioned topic.
    pub fn arm_ordered_fault(&self, pattern: impl Into<TopicPattern>, fault: OrderedFault) {
        let pattern = pattern.into();
        self.shared
            .ordered_update(|topics| topics.faults.arm(pattern, fault));
    }

    /// Disarm every ordered fault not yet spent (an event held back for a reorder still
    /// waits for the next one).
    pub fn clear_ordered_faults(&self) {
        self.shared.ordered_update(|topics| topics.faults.clear());
    }

    /// Forget, on every sequenced topic matching `pattern`, the events outside the replay
    /// window, acknowledged or not — as a server does whose window overflowed — so that a
    /// client joining with an older `last_seq` finds a gap. Returns how many were forgotten.
    pub fn overflow_replay_window(&self, pattern: impl Into<TopicPattern>) -> usize {
        let pattern = pattern.into();
        self.shared
            .ordered_update(|topics| topics.overflow(&pattern))
    }

    /// The server's side of a sequenced topic, once a join or a publish created it.
    pub fn sequenced_topic(&self, topic: &str) -> Option<SequencedInfo> {
        self.view(|view| view.sequenced_topic(topic))
    }

    /// The server's side of a versioned topic, once a join or a patch created it.
    pub fn versioned_topic(&self, topic: &str) -> Option<VersionedInfo> {
        self.view(|view| view.versioned_topic(topic))
    }
}

fn invalid_patch(error: OpError) -> OrderedError {
    OrderedError::InvalidPatch {
        index: error.index,
        reason: error.reason,
    }
}
