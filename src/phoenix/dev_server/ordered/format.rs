//! The names an ordered topic speaks on the wire, configurable so the server can match an
//! application that names its events and fields differently.

use std::sync::Arc;

/// The names of the sequenced wire format. The defaults are the ones in the
/// [module docs](super#sequenced-topics); change a field to match another application:
///
/// ```
/// use channel_registry::phoenix::dev_server::{DevServerConfig, SequencedFormat};
///
/// let mut format = SequencedFormat::default();
/// format.event = "reliable_event".to_owned();
/// let config = DevServerConfig::default().route_sequenced("feed:*", format);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SequencedFormat {
    /// Event of the channel push that carries one numbered event (default `"event"`).
    pub event: String,
    /// Field of that push holding its sequence number (default `"seq"`).
    pub seq_field: String,
    /// Join parameter with the last sequence number the client holds (default `"last_seq"`).
    pub last_seq_param: String,
    /// Field of the join reply (and of a refused replay) with the oldest sequence number the
    /// server still holds (default `"earliest_seq"`).
    pub earliest_field: String,
    /// Event a client pushes to acknowledge (default `"ack"`).
    pub ack_event: String,
    /// Field of the acknowledgement with the sequence number it covers, cumulatively
    /// (default `"sequence_number"`).
    pub ack_field: String,
    /// Event a client pushes to have events re-sent (default `"replay"`).
    pub replay_event: String,
    /// Field of the replay request with the first sequence number to re-send
    /// (default `"from"`).
    pub replay_from_field: String,
}

impl Default for SequencedFormat {
    fn default() -> Self {
        SequencedFormat {
            event: "event".to_owned(),
            seq_field: "seq".to_owned(),
            last_seq_param: "last_seq".to_owned(),
            earliest_field: "earliest_seq".to_owned(),
            ack_event: "ack".to_owned(),
            ack_field: "sequence_number".to_owned(),
            replay_event: "replay".to_owned(),
            replay_from_field: "from".to_owned(),
        }
    }
}

/// The names of the versioned wire format. The defaults are the ones in the
/// [module docs](super#versioned-topics).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VersionedFormat {
    /// Event of the channel push that carries one patch envelope (default `"patch"`).
    pub event: String,
    /// Field with the version the patch applies to (default `"base_version"`).
    pub base_field: String,
    /// Field with the version the patch produces (default `"version"`).
    pub version_field: String,
    /// Field with the JSON Patch operations (default `"ops"`).
    pub ops_field: String,
}

impl Default for VersionedFormat {
    fn default() -> Self {
        VersionedFormat {
            event: "patch".to_owned(),
            base_field: "base_version".to_owned(),
            version_field: "version".to_owned(),
            ops_field: "ops".to_owned(),
        }
    }
}

/// Which ordered design a route serves, with its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OrderedKind {
    Sequenced(Arc<SequencedFormat>),
    Versioned(Arc<VersionedFormat>),
}
