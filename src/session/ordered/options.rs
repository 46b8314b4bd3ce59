//! How a topic opts into an ordered stream: the mode with its numbers, and
//! the names its server uses on the wire.

use crate::session::stream::{SequencedConfig, StreamConfig, StreamConfigError, VersionedConfig};

/// The names of the events, fields and pushes an ordered topic's server
/// speaks. The defaults are the wire format in the README (seed 002's
/// `sequence_number` ack included); change a field to fit an existing
/// server.
///
/// ```
/// use channel_registry::session::StreamWire;
///
/// let mut wire = StreamWire::sequenced();
/// wire.events = vec!["new_msg".into()];
/// wire.seq_field = "n".into();
/// assert_eq!(wire.ack_field, "sequence_number");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StreamWire {
    /// The events that carry a position; other events of the topic are
    /// delivered as they come, outside the stream. Default `["event"]`
    /// (sequenced) or `["patch"]` (versioned).
    pub events: Vec<String>,
    /// Sequenced: the payload field holding the event's number. Default `seq`.
    pub seq_field: String,
    /// Sequenced: the join param carrying the last position the client has.
    /// Default `last_seq`.
    pub resume_param: String,
    /// Sequenced: the join reply's field with the oldest position the server
    /// still holds (also in a refused replay's reply). Default `earliest_seq`.
    pub earliest_field: String,
    /// Sequenced: the event of acknowledgement pushes. Default `ack`.
    pub ack_event: String,
    /// Sequenced: the acknowledgement's field with the position acknowledged
    /// (cumulative). Default `sequence_number`, as in seed 002.
    pub ack_field: String,
    /// Sequenced: the event of replay requests. Default `replay`.
    pub replay_event: String,
    /// Sequenced: the replay request's field with the first position wanted.
    /// Default `from`.
    pub replay_field: String,
    /// Versioned: the envelope's field with the version the patch applies
    /// to. Default `base_version`.
    pub base_field: String,
    /// Versioned: the envelope's field with the version it produces.
    /// Default `version`.
    pub version_field: String,
}

impl StreamWire {
    /// The default names, with `event` as the numbered event.
    pub fn sequenced() -> Self {
        StreamWire {
            events: vec!["event".to_owned()],
            seq_field: "seq".to_owned(),
            resume_param: "last_seq".to_owned(),
            earliest_field: "earliest_seq".to_owned(),
            ack_event: "ack".to_owned(),
            ack_field: "sequence_number".to_owned(),
            replay_event: "replay".to_owned(),
            replay_field: "from".to_owned(),
            base_field: "base_version".to_owned(),
            version_field: "version".to_owned(),
        }
    }

    /// The default names, with `patch` as the envelope event.
    pub fn versioned() -> Self {
        StreamWire {
            events: vec!["patch".to_owned()],
            ..StreamWire::sequenced()
        }
    }

    pub(crate) fn carries_position(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

impl Default for StreamWire {
    /// [`StreamWire::sequenced`].
    fn default() -> Self {
        StreamWire::sequenced()
    }
}

/// A topic's ordered stream: its mode and numbers, and its wire names. Give
/// it to [`SubscribeOptions::with_stream`](crate::session::SubscribeOptions::with_stream).
///
/// ```
/// use channel_registry::session::{StreamOptions, SubscribeOptions};
/// use channel_registry::session::stream::SequencedConfig;
///
/// let options = SubscribeOptions::default()
///     .with_stream(StreamOptions::sequenced(SequencedConfig { ack_every: 10, ..Default::default() }));
/// # let _ = options;
/// let versioned = SubscribeOptions::default().with_stream(StreamOptions::versioned());
/// # let _ = versioned;
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StreamOptions {
    /// The mode and its numbers.
    pub config: StreamConfig,
    /// The names on the wire.
    pub wire: StreamWire,
}

impl StreamOptions {
    /// Numbered events with acknowledgements and replay (seed 002).
    pub fn sequenced(config: SequencedConfig) -> Self {
        StreamOptions {
            config: StreamConfig::Sequenced(config),
            wire: StreamWire::sequenced(),
        }
    }

    /// Versioned patch envelopes that remount on any gap (seed 003). The
    /// topic settles on its `0 → 1` mount: it is active, and its
    /// subscriptions are joined, only once the first state arrived.
    pub fn versioned() -> Self {
        StreamOptions {
            config: StreamConfig::Versioned(VersionedConfig::default()),
            wire: StreamWire::versioned(),
        }
    }

    /// The same stream with other wire names.
    #[must_use]
    pub fn with_wire(mut self, wire: StreamWire) -> Self {
        self.wire = wire;
        self
    }

    /// Checks every number is usable.
    pub fn validate(&self) -> Result<(), StreamConfigError> {
        self.config.validate()
    }

    pub(crate) fn is_versioned(&self) -> bool {
        matches!(self.config, StreamConfig::Versioned(_))
    }
}

impl Default for StreamOptions {
    /// A sequenced stream with the default numbers.
    fn default() -> Self {
        StreamOptions::sequenced(SequencedConfig::default())
    }
}
