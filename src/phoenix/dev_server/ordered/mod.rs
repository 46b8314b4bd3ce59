//! Ordered topics: channels whose events carry positions, served from a topic-wide log that
//! outlives every channel incarnation (as a GenServer fed through PubSub does in a Phoenix
//! app), so that a client's ordered-stream logic can be tested end to end across crashes,
//! socket drops, rejoins and replays.
//!
//! Two designs are served, each on its routes: by default `seq:*` is sequenced and `doc:*`
//! is versioned; [`DevServerConfig::route_sequenced`] and
//! [`DevServerConfig::route_versioned`] mount them on other patterns, with other names
//! ([`SequencedFormat`], [`VersionedFormat`]). A topic's log lives as long as the server: it
//! is created by the first join or publish and never reset.
//!
//! # Sequenced topics
//!
//! Every event of the topic gets the next number, from 1, across all its subscribers and
//! incarnations. With the default names:
//!
//! - an event is a channel push `[join_ref, null, topic, "event", {..., "seq": N}]` to every
//!   joined channel of the topic, in order;
//! - a join's params may carry `"last_seq": N` (0, null or absent when fresh; anything else
//!   but a non-negative integer is refused with `{"reason": ...}`); the ok reply is
//!   `{"earliest_seq": E}`, the oldest number the server holds (its next number when it
//!   holds none), and right after it the server pushes, in order, every event after N that it
//!   holds — so `E > N + 1` tells the client that `N + 1 .. E - 1` are gone;
//! - a push `"ack"` `{"sequence_number": N}` acknowledges everything up to N (cumulative) and
//!   is replied ok `{}`; one beyond the last number given out is replied error
//!   `{"reason": ..., "last_seq": L}`. The server forgets events once any socket acknowledged
//!   them and they fall out of the replay window, the last
//!   [`with_replay_window`](DevServerConfig::with_replay_window) events, which are kept
//!   regardless of acknowledgements so that several subscribers work. Events nobody
//!   acknowledged are held;
//! - a push `"replay"` `{"from": N}` makes the server push every held event from N on, then
//!   reply ok `{}`; when N is older than the oldest held event the reply is error
//!   `{"earliest_seq": E}` and nothing is pushed.
//!
//! # Versioned topics
//!
//! The topic has one JSON document (an empty object at first), changed by JSON Patch
//! operations (`add`, `replace`, `remove`). Each join is a mount with versions of its own:
//!
//! - right after the ok reply (`{}`) the server pushes `"patch"`
//!   `{"base_version": 0, "version": 1, "ops": [{"op": "replace", "path": "", "value": state}]}`;
//! - every later patch of the topic reaches the mount as `{"base_version": B, "version":
//!   B + 1, "ops": [...]}`, B being the version the mount is at.
//!
//! # Driving and observing
//!
//! Through the [`DevServerHandle`]: [`publish`](DevServerHandle::publish) and
//! [`publish_events`](DevServerHandle::publish_events) number events,
//! [`apply_patch`](DevServerHandle::apply_patch) and
//! [`apply_patches`](DevServerHandle::apply_patches) change documents, and
//! [`sequenced_topic`](DevServerHandle::sequenced_topic) and
//! [`versioned_topic`](DevServerHandle::versioned_topic) show the server's side (next
//! number, what is held, acknowledgements per socket, each mount's version); the same are on
//! [`ServerView`](super::ServerView) for [`wait_until`](DevServerHandle::wait_until).
//!
//! Faults ([`OrderedFault`]: duplicate, reorder, drop, skip a version) are armed with
//! [`arm_ordered_fault`](DevServerHandle::arm_ordered_fault) on a topic pattern (`*` for
//! every topic) and each spoils the next live push of a matching topic, logged as
//! [`ServerEventKind::OrderedFault`](super::ServerEventKind::OrderedFault);
//! [`overflow_replay_window`](DevServerHandle::overflow_replay_window) forgets everything
//! outside the window at once, acknowledged or not, so a rejoin finds a gap. They combine
//! with the socket and channel knobs (crash, stop, drop or close sockets).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig, OrderedFault};
//!
//! let server = DevServer::start(DevServerConfig::default().with_replay_window(100)).await?;
//! // ... a client joins "seq:feed" with {"last_seq": 0} ...
//! server.arm_ordered_fault("seq:feed", OrderedFault::Reorder);
//! let numbers = server.publish_events("seq:feed", 10_000)?; // 2 arrives before 1
//! assert_eq!(numbers, 1..=10_000);
//! let feed = server.sequenced_topic("seq:feed").expect("published to");
//! println!("next {} earliest {} acked {:?}", feed.next_seq, feed.earliest_seq, feed.acked);
//! # Ok(()) }
//! ```

mod channel;
mod fanout;
mod faults;
mod format;
mod handle;
mod patch;
mod sequenced;
mod versioned;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::TopicPattern;
#[cfg(doc)]
use super::{DevServerConfig, DevServerHandle};
pub(crate) use channel::factory;
pub use faults::OrderedFault;
pub(crate) use format::OrderedKind;
pub use format::{SequencedFormat, VersionedFormat};
pub use handle::OrderedError;
use patch::OpError;
use sequenced::{AckBeyondLast, ReplayGap, SequencedLog};
use versioned::VersionedDoc;
pub use view::{SequencedInfo, VersionedInfo, VersionedMount};

use fanout::Subscriber;
use faults::ArmedFaults;

/// Default of [`DevServerConfig::with_replay_window`]: the last 1 000 events.
pub const DEFAULT_REPLAY_WINDOW: u64 = 1_000;

/// Every ordered topic's log, and the faults armed for them; kept in the server's state so
/// that changes wake [`wait_until`](super::DevServerHandle::wait_until).
#[derive(Debug)]
pub(crate) struct OrderedTopics {
    window: u64,
    sequenced: BTreeMap<String, SequencedLog>,
    versioned: BTreeMap<String, VersionedDoc>,
    faults: ArmedFaults,
    next_subscription: u64,
}

/// A live push a fault spoiled, for the event log.
pub(crate) type Spoiled = Option<(OrderedFault, u64)>;

impl OrderedTopics {
    pub(crate) fn new(window: u64) -> Self {
        OrderedTopics {
            window,
            sequenced: BTreeMap::new(),
            versioned: BTreeMap::new(),
            faults: ArmedFaults::default(),
            next_subscription: 0,
        }
    }

    fn sequenced_log(&mut self, topic: &str, format: &Arc<SequencedFormat>) -> &mut SequencedLog {
        self.sequenced
            .entry(topic.to_owned())
            .or_insert_with(|| SequencedLog::new(Arc::clone(format)))
    }

    fn versioned_doc(&mut self, topic: &str, format: &Arc<VersionedFormat>) -> &mut VersionedDoc {
        self.versioned
            .entry(topic.to_owned())
            .or_insert_with(|| VersionedDoc::new(Arc::clone(format)))
    }

    /// A fresh subscription id.
    fn subscription_id(&mut self) -> u64 {
        self.next_subscription += 1;
        self.next_subscription
    }

    // --- sequenced ------------------------------------------------------------------------

    /// Subscribe a sequenced incarnation; returns its subscription id, the earliest number
    /// held and the events to push after the join reply.
    fn join_sequenced(
        &mut self,
        topic: &str,
        format: &Arc<SequencedFormat>,
        mut subscriber: Subscriber,
        last_seq: u64,
    ) -> (u64, u64, Vec<Value>) {
        let id = self.subscription_id();
        subscriber.id = id;
        let (earliest, replay) = self.sequenced_log(topic, format).join(subscriber, last_seq);
        (id, earliest, replay)
    }

    fn ack(
        &mut self,
        topic: &str,
        format: &Arc<SequencedFormat>,
        socket: super::SocketId,
        seq: u64,
    ) -> Result<(), AckBeyondLast> {
        let window = self.window;
        self.sequenced_log(topic, format).ack(socket, seq, window)
    }

    fn replay(
        &mut self,
        topic: &str,
        format: &Arc<SequencedFormat>,
        from: u64,
    ) -> Result<Vec<Value>, ReplayGap> {
        self.sequenced_log(topic, format).replay(from)
    }

    /// Number and push one event; returns its number and the fault it took, if any.
    fn publish(
        &mut self,
        topic: &str,
        format: &Arc<SequencedFormat>,
        body: Map<String, Value>,
    ) -> (u64, Spoiled) {
        let window = self.window;
        let takes_fault = self.sequenced_log(topic, format).takes_fault();
        let fault = takes_fault
            .then(|| self.faults.take(topic, false))
            .flatten();
        let seq = self
            .sequenced_log(topic, format)
            .publish(topic, body, fault.as_ref(), window);
        (seq, fault.map(|fault| (fault, seq)))
    }

    /// Forget every event outside the window on sequenced topics matching `pattern`; returns
    /// how many were forgotten.
    fn overflow(&mut self, pattern: &TopicPattern) -> usize {
        let window = self.window;
        self.sequenced
            .iter_mut()
            .filter(|(topic, _)| pattern.matches(topic))
            .map(|(_, log)| log.overflow(window))
            .sum()
    }

    // --- versioned ------------------------------------------------------------------------

    /// Mount a versioned incarnation; returns its subscription id and the mount envelope.
    fn mount(
        &mut self,
        topic: &str,
        format: &Arc<VersionedFormat>,
        mut subscriber: Subscriber,
    ) -> (u64, Value) {
        let id = self.subscription_id();
        subscriber.id = id;
        (id, self.versioned_doc(topic, format).mount(subscriber))
    }

    /// Apply one patch (all or nothing); returns the topic's revision and the fault it took.
    fn apply_patch(
        &mut self,
        topic: &str,
        format: &Arc<VersionedFormat>,
        ops: Vec<Value>,
    ) -> Result<(u64, Spoiled), OpError> {
        let doc = self.versioned_doc(topic, format);
        let next = doc.patched(&ops)?;
        let takes_fault = doc.takes_fault();
        let fault = takes_fault.then(|| self.faults.take(topic, true)).flatten();
        let revision = self
            .versioned_doc(topic, format)
            .commit(topic, next, ops, fault.as_ref());
        Ok((revision, fault.map(|fault| (fault, revision))))
    }

    // --- both -------------------------------------------------------------------------------

    /// End a subscription (its channel incarnation ended).
    fn unsubscribe(&mut self, topic: &str, id: u64) {
        if let Some(log) = self.sequenced.get_mut(topic) {
            log.unsubscribe(id);
        }
        if let Some(doc) = self.versioned.get_mut(topic) {
            doc.unsubscribe(id);
        }
    }
}
