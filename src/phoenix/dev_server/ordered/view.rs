//! What tests see of ordered topics: the server's side of each log, on [`ServerView`].

use serde_json::Value;

use super::OrderedTopics;
use crate::phoenix::dev_server::{ServerView, SocketId};

/// The server's side of a sequenced topic.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SequencedInfo {
    /// The topic.
    pub topic: String,
    /// The number the next event gets (1 before the first).
    pub next_seq: u64,
    /// The oldest number held for replay, or `next_seq` when none is: what a join reply or a
    /// refused replay reports.
    pub earliest_seq: u64,
    /// Events held for replay.
    pub held: usize,
    /// The replay window: the last this many events are held whatever the acknowledgements.
    pub window: u64,
    /// The highest acknowledgement of each socket that acknowledged, by socket id.
    pub acked: Vec<(SocketId, u64)>,
    /// The joined channels receiving its events live, as `(socket, join_ref)`.
    pub subscribers: Vec<(SocketId, String)>,
    /// Whether an event is held back by [`OrderedFault::Reorder`](super::OrderedFault::Reorder),
    /// waiting for the next one.
    pub reordering: bool,
}

impl SequencedInfo {
    /// The highest acknowledgement `socket` sent, if it sent any.
    pub fn acked_by(&self, socket: SocketId) -> Option<u64> {
        self.acked
            .iter()
            .find(|(id, _)| *id == socket)
            .map(|(_, seq)| *seq)
    }
}

/// The server's side of a versioned topic.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VersionedInfo {
    /// The topic.
    pub topic: String,
    /// Patches applied to the topic so far.
    pub revision: u64,
    /// The document a new mount receives.
    pub state: Value,
    /// The joined channels (mounts), each at its own version.
    pub mounts: Vec<VersionedMount>,
    /// Whether a patch is held back by [`OrderedFault::Reorder`](super::OrderedFault::Reorder),
    /// waiting for the next one.
    pub reordering: bool,
}

/// One mount of a versioned topic.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionedMount {
    /// The socket it is on.
    pub socket: SocketId,
    /// Its join_ref.
    pub join_ref: String,
    /// The version the server has sent it up to (a dropped or held-back patch counts as
    /// sent).
    pub version: u64,
}

impl OrderedTopics {
    fn sequenced_info(&self, topic: &str) -> Option<SequencedInfo> {
        let log = self.sequenced.get(topic)?;
        Some(SequencedInfo {
            topic: topic.to_owned(),
            next_seq: log.next_seq,
            earliest_seq: log.earliest(),
            held: log.held(),
            window: self.window,
            acked: log.acked.iter().map(|(id, seq)| (*id, *seq)).collect(),
            subscribers: log
                .subscribers
                .iter()
                .map(|s| (s.socket, s.join_ref.clone()))
                .collect(),
            reordering: log.reordering(),
        })
    }

    fn versioned_info(&self, topic: &str) -> Option<VersionedInfo> {
        let doc = self.versioned.get(topic)?;
        Some(VersionedInfo {
            topic: topic.to_owned(),
            revision: doc.revision,
            state: doc.state.clone(),
            mounts: doc
                .subscribers
                .iter()
                .map(|s| VersionedMount {
                    socket: s.socket,
                    join_ref: s.join_ref.clone(),
                    version: s.version,
                })
                .collect(),
            reordering: doc.reordering(),
        })
    }
}

impl ServerView<'_> {
    /// The server's side of a sequenced topic, once a join or a publish created it.
    pub fn sequenced_topic(&self, topic: &str) -> Option<SequencedInfo> {
        self.ordered().sequenced_info(topic)
    }

    /// The server's side of a versioned topic, once a join or a patch created it.
    pub fn versioned_topic(&self, topic: &str) -> Option<VersionedInfo> {
        self.ordered().versioned_info(topic)
    }

    /// Ordered faults armed and not yet spent.
    pub fn armed_ordered_faults(&self) -> usize {
        self.ordered().faults.len()
    }
}
