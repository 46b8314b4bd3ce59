//! Ordered topics: channels whose events carry positions, served from a topic-wide log that
//! outlives every channel incarnation (as a GenServer fed through PubSub does in a Phoenix
//! app), so that a client's ordered-stream logic can be tested end to end across crashes,
//! socket drops, rejoins and replays.
//!
//! By default `seq:*` is sequenced; [`DevServerConfig::route_sequenced`] mounts the design
//! on other patterns, with other names ([`SequencedFormat`]). A topic's log lives as long as
//! the server: it is created by the first join or publish and never reset.
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
//! # Driving and observing
//!
//! Through the [`DevServerHandle`]: [`publish`](DevServerHandle::publish) and
//! [`publish_events`](DevServerHandle::publish_events) number events, and
//! [`sequenced_topic`](DevServerHandle::sequenced_topic) shows the server's side (next
//! number, what is held, acknowledgements per socket); the same is on
//! [`ServerView`](super::ServerView) for [`wait_until`](DevServerHandle::wait_until).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
//!
//! let server = DevServer::start(DevServerConfig::default().with_replay_window(100)).await?;
//! // ... a client joins "seq:feed" with {"last_seq": 0} ...
//! let numbers = server.publish_events("seq:feed", 10_000)?;
//! assert_eq!(numbers, 1..=10_000);
//! let feed = server.sequenced_topic("seq:feed").expect("published to");
//! println!("next {} earliest {} acked {:?}", feed.next_seq, feed.earliest_seq, feed.acked);
//! # Ok(()) }
//! ```

mod channel;
mod fanout;
mod format;
mod handle;
mod sequenced;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

#[cfg(doc)]
use super::{DevServerConfig, DevServerHandle};
pub(crate) use channel::factory;
pub(crate) use format::OrderedKind;
pub use format::SequencedFormat;
pub use handle::OrderedError;
use sequenced::{AckBeyondLast, ReplayGap, SequencedLog};
pub use view::SequencedInfo;

use fanout::Subscriber;

/// Default of [`DevServerConfig::with_replay_window`]: the last 1 000 events.
pub const DEFAULT_REPLAY_WINDOW: u64 = 1_000;

/// Every ordered topic's log; kept in the server's state so that changes wake
/// [`wait_until`](super::DevServerHandle::wait_until).
#[derive(Debug)]
pub(crate) struct OrderedTopics {
    window: u64,
    sequenced: BTreeMap<String, SequencedLog>,
    next_subscription: u64,
}

impl OrderedTopics {
    pub(crate) fn new(window: u64) -> Self {
        OrderedTopics {
            window,
            sequenced: BTreeMap::new(),
            next_subscription: 0,
        }
    }

    fn sequenced_log(&mut self, topic: &str, format: &Arc<SequencedFormat>) -> &mut SequencedLog {
        self.sequenced
            .entry(topic.to_owned())
            .or_insert_with(|| SequencedLog::new(Arc::clone(format)))
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

    /// Number and push one event; returns its number.
    fn publish(
        &mut self,
        topic: &str,
        format: &Arc<SequencedFormat>,
        body: Map<String, Value>,
    ) -> u64 {
        let window = self.window;
        self.sequenced_log(topic, format)
            .publish(topic, body, window)
    }

    /// End a subscription (its channel incarnation ended).
    fn unsubscribe(&mut self, topic: &str, id: u64) {
        if let Some(log) = self.sequenced.get_mut(topic) {
            log.unsubscribe(id);
        }
    }
}
