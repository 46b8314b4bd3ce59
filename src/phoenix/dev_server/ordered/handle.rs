//! Driving ordered topics from a test: publish, look.

use std::ops::RangeInclusive;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{OrderedKind, SequencedFormat, SequencedInfo};
use crate::phoenix::dev_server::DevServerHandle;

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
    /// An event body that is not a JSON object: the server adds the sequence number to it.
    #[error("an event body must be a JSON object (the server adds its sequence number to it), not {found}")]
    BodyNotObject {
        /// The body given.
        found: String,
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

    /// Number one event of the sequenced `topic` and push it to every joined channel of the
    /// topic; `body` (a JSON object) gets the sequence number added. Returns the number.
    pub fn publish(&self, topic: &str, body: Value) -> Result<u64, OrderedError> {
        let format = self.sequenced_format(topic)?;
        let Value::Object(body) = body else {
            return Err(OrderedError::BodyNotObject {
                found: body.to_string(),
            });
        };
        Ok(self
            .shared
            .ordered_update(|topics| topics.publish(topic, &format, body)))
    }

    /// Number `count` events of the sequenced `topic` at once (each `{"seq": N}`) and push
    /// them, in order, to every joined channel of the topic. Returns their numbers.
    pub fn publish_events(
        &self,
        topic: &str,
        count: u64,
    ) -> Result<RangeInclusive<u64>, OrderedError> {
        let format = self.sequenced_format(topic)?;
        let first = self.shared.ordered_update(|topics| {
            let first = topics.sequenced_log(topic, &format).next_seq;
            for _ in 0..count {
                topics.publish(topic, &format, Map::new());
            }
            first
        });
        Ok(first..=first + count - 1)
    }

    /// The server's side of a sequenced topic, once a join or a publish created it.
    pub fn sequenced_topic(&self, topic: &str) -> Option<SequencedInfo> {
        self.view(|view| view.sequenced_topic(topic))
    }
}
