//! Live delivery of a topic's items to its subscribers, with the fault knobs applied on the
//! way: each item is one push per subscriber, sent through the subscriber's socket so that it
//! reaches exactly the channel incarnation that subscribed.

use serde_json::Value;

use super::faults::OrderedFault;
use crate::phoenix::codec::Message;
use crate::phoenix::dev_server::registry::{CommandSender, Recipient, SocketCommand};
use crate::phoenix::dev_server::SocketId;

/// One joined channel incarnation of an ordered topic, as the topic's log knows it — like the
/// pid a Phoenix channel subscribes to PubSub with.
#[derive(Debug)]
pub(crate) struct Subscriber {
    /// Unique for the server's lifetime, so a subscription ending cannot remove another.
    pub(crate) id: u64,
    pub(crate) socket: SocketId,
    pub(crate) join_ref: String,
    /// The socket's counter for the incarnation: a push queued for an incarnation that has
    /// ended never reaches a later one, even one that reused its join_ref.
    pub(crate) incarnation: u64,
    pub(crate) commands: CommandSender,
    /// The version the subscriber's mount is at (versioned topics; 0 for sequenced ones).
    pub(crate) version: u64,
}

impl Subscriber {
    /// Queue a channel push for this incarnation on its socket.
    pub(crate) fn push(&self, topic: &str, event: &str, payload: Value) {
        let message = Message::channel_push(self.join_ref.as_str(), topic, event, payload);
        // A socket that is gone has nobody to tell; its subscription ends with its channel.
        let _ = self.commands.send(SocketCommand::Deliver {
            topic: topic.to_owned(),
            to: Recipient::Incarnation(self.incarnation),
            message: message.into(),
        });
    }
}

/// One item of a topic (an event or a patch) as each subscriber is to receive it.
#[derive(Debug)]
pub(crate) struct Item {
    /// `(subscriber id, payload)`, in subscription order.
    pub(crate) deliveries: Vec<(u64, Value)>,
}

impl Item {
    /// The same payload for every subscriber.
    pub(crate) fn to_all(subscribers: &[Subscriber], payload: &Value) -> Self {
        Item {
            deliveries: subscribers
                .iter()
                .map(|subscriber| (subscriber.id, payload.clone()))
                .collect(),
        }
    }
}

/// Sends a topic's live items, holding one back while a reorder is under way.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    held_back: Option<Item>,
}

impl Fanout {
    /// Whether an item is held back for a reorder: the next item completes it and takes no
    /// fault of its own.
    pub(crate) fn reordering(&self) -> bool {
        self.held_back.is_some()
    }

    /// Send `item` to those of `subscribers` it is for, as `fault` says.
    pub(crate) fn send(
        &mut self,
        subscribers: &[Subscriber],
        topic: &str,
        event: &str,
        item: Item,
        fault: Option<&OrderedFault>,
    ) {
        if let Some(earlier) = self.held_back.take() {
            send_each(subscribers, topic, event, &item, |_| true);
            send_each(subscribers, topic, event, &earlier, |_| true);
            return;
        }
        match fault {
            Some(OrderedFault::Reorder) => self.held_back = Some(item),
            Some(OrderedFault::Duplicate) => {
                send_each(subscribers, topic, event, &item, |_| true);
                send_each(subscribers, topic, event, &item, |_| true);
            }
            Some(OrderedFault::Drop { socket }) => {
                let spared =
                    |subscriber: &Subscriber| socket.is_some_and(|s| s != subscriber.socket);
                send_each(subscribers, topic, event, &item, spared);
            }
            Some(OrderedFault::SkipVersion) | None => {
                send_each(subscribers, topic, event, &item, |_| true);
            }
        }
    }
}

/// Push each delivery of `item` whose subscriber is still subscribed and passes `filter`.
fn send_each(
    subscribers: &[Subscriber],
    topic: &str,
    event: &str,
    item: &Item,
    filter: impl Fn(&Subscriber) -> bool,
) {
    for (id, payload) in &item.deliveries {
        if let Some(subscriber) = subscribers.iter().find(|s| s.id == *id) {
            if filter(subscriber) {
                subscriber.push(topic, event, payload.clone());
            }
        }
    }
}
