//! The numbers a stream runs on, validated once at construction.
//!
//! Field and event names are not here: the caller owns the JSON and hands the
//! stream positions it already extracted.

use std::time::Duration;

/// Which kind of ordered stream a topic speaks, with its numbers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum StreamConfig {
    /// The server numbers every event; the client acknowledges and, after a
    /// gap or a rejoin, asks for what it missed.
    Sequenced(SequencedConfig),
    /// The server sends patch envelopes `base → version`; any gap drops the
    /// derived state and remounts from version 1.
    Versioned(VersionedConfig),
}

impl Default for StreamConfig {
    /// A sequenced stream with [`SequencedConfig::default`].
    fn default() -> Self {
        StreamConfig::Sequenced(SequencedConfig::default())
    }
}

/// How a sequenced stream recovers when a position is missing.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum Recovery {
    /// Ask the server to re-send from the first missing position
    /// ([`StreamOutput::RequestReplay`](super::StreamOutput::RequestReplay));
    /// rejoin if that fails or the gap stays open for `gap_timeout`. Cheapest
    /// when the server answers replay requests. The default.
    #[default]
    Replay,
    /// Start a new incarnation at once
    /// ([`StreamOutput::Rejoin`](super::StreamOutput::Rejoin)); its join params
    /// carry the last position and the server replays after it. For servers
    /// that replay only on join.
    Rejoin,
}

/// The numbers of a sequenced stream. `SequencedConfig::default()` suits a
/// server that keeps a replay window of a few thousand events.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SequencedConfig {
    /// Acknowledge after this many positions past the last acknowledgement.
    /// 1 acknowledges every event (seed behaviour, one push per event).
    /// Default 100.
    pub ack_every: u32,
    /// Acknowledge at the latest this long after the first position not yet
    /// acknowledged, so that a quiet stream still lets the server trim its
    /// window. `Duration::MAX` means "by count only". Default 1 s.
    pub ack_interval: Duration,
    /// Most events held back while waiting for a missing position. On
    /// overflow the held events are dropped (the server replays them) and the
    /// stream rejoins. Default 10 000.
    pub max_held: usize,
    /// How long a gap may stay open after a replay request or a rejoin before
    /// the stream escalates (replay → rejoin) or reports the rest lost.
    /// `Duration::MAX` waits forever. Default 5 s.
    pub gap_timeout: Duration,
    /// A position more than this far below the last one is not a duplicate
    /// but a sign that the server restarted its numbering: it is reported as
    /// malformed. Default 100 000.
    pub max_backwards: u64,
    /// What to do about a gap. Default [`Recovery::Replay`].
    pub recovery: Recovery,
}

impl Default for SequencedConfig {
    fn default() -> Self {
        SequencedConfig {
            ack_every: 100,
            ack_interval: Duration::from_secs(1),
            max_held: 10_000,
            gap_timeout: Duration::from_secs(5),
            max_backwards: 100_000,
            recovery: Recovery::Replay,
        }
    }
}

/// The most events [`SequencedConfig::max_held`] may allow: more than this is
/// memory a broken server could make the client hold for nothing; a gap that
/// large is better recovered by rejoining.
pub const MAX_HELD_LIMIT: usize = 1 << 24;

impl SequencedConfig {
    /// Checks every number is usable.
    pub fn validate(&self) -> Result<(), StreamConfigError> {
        if self.ack_every == 0 {
            return Err(StreamConfigError::ZeroAckEvery);
        }
        if self.ack_interval.is_zero() {
            return Err(StreamConfigError::ZeroAckInterval);
        }
        if self.max_held == 0 {
            return Err(StreamConfigError::ZeroMaxHeld);
        }
        if self.max_held > MAX_HELD_LIMIT {
            return Err(StreamConfigError::MaxHeldTooLarge {
                max_held: self.max_held,
            });
        }
        if self.gap_timeout.is_zero() {
            return Err(StreamConfigError::ZeroGapTimeout);
        }
        if self.max_backwards == 0 {
            return Err(StreamConfigError::ZeroMaxBackwards);
        }
        Ok(())
    }
}

/// The numbers of a versioned stream. There are none yet: a version stream
/// never holds or acknowledges anything, every gap remounts. The struct exists
/// so that options can be added without breaking callers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct VersionedConfig {}

impl StreamConfig {
    /// Checks every number is usable.
    pub fn validate(&self) -> Result<(), StreamConfigError> {
        match self {
            StreamConfig::Sequenced(config) => config.validate(),
            StreamConfig::Versioned(_) => Ok(()),
        }
    }
}

/// Why a [`StreamConfig`] was refused. Nothing is built when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StreamConfigError {
    /// `ack_every` is zero.
    #[error("ack_every is 0: use 1 to acknowledge every event, or a batch size such as 100")]
    ZeroAckEvery,
    /// `ack_interval` is zero.
    #[error(
        "ack_interval is 0: use a delay such as 1 s (Duration::MAX acknowledges by count only); \
         to acknowledge every event set ack_every to 1"
    )]
    ZeroAckInterval,
    /// `max_held` is zero.
    #[error(
        "max_held is 0: a gap must be able to hold at least one event; use a few thousand, \
         or Recovery::Rejoin if memory is tight"
    )]
    ZeroMaxHeld,
    /// `max_held` is over [`MAX_HELD_LIMIT`].
    #[error(
        "max_held is {max_held}, over the limit of {limit}: a gap that large is better \
         recovered by rejoining; use 10 000 or so",
        limit = MAX_HELD_LIMIT
    )]
    MaxHeldTooLarge {
        /// The value given.
        max_held: usize,
    },
    /// `gap_timeout` is zero.
    #[error(
        "gap_timeout is 0: a replay needs a round trip to arrive; use a few seconds \
         (Duration::MAX waits forever)"
    )]
    ZeroGapTimeout,
    /// `max_backwards` is zero.
    #[error(
        "max_backwards is 0: a duplicate of an older event would be reported as malformed; \
         use at least the server's replay window, e.g. 100 000"
    )]
    ZeroMaxBackwards,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(StreamConfig::default().validate(), Ok(()));
        assert_eq!(
            StreamConfig::Versioned(VersionedConfig::default()).validate(),
            Ok(())
        );
    }

    #[test]
    fn each_unusable_number_is_named() {
        let base = SequencedConfig::default();
        let cases: [(SequencedConfig, StreamConfigError); 6] = [
            (
                SequencedConfig {
                    ack_every: 0,
                    ..base.clone()
                },
                StreamConfigError::ZeroAckEvery,
            ),
            (
                SequencedConfig {
                    ack_interval: Duration::ZERO,
                    ..base.clone()
                },
                StreamConfigError::ZeroAckInterval,
            ),
            (
                SequencedConfig {
                    max_held: 0,
                    ..base.clone()
                },
                StreamConfigError::ZeroMaxHeld,
            ),
            (
                SequencedConfig {
                    max_held: usize::MAX,
                    ..base.clone()
                },
                StreamConfigError::MaxHeldTooLarge {
                    max_held: usize::MAX,
                },
            ),
            (
                SequencedConfig {
                    gap_timeout: Duration::ZERO,
                    ..base.clone()
                },
                StreamConfigError::ZeroGapTimeout,
            ),
            (
                SequencedConfig {
                    max_backwards: 0,
                    ..base.clone()
                },
                StreamConfigError::ZeroMaxBackwards,
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error.clone()));
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn extreme_durations_are_accepted() {
        let config = SequencedConfig {
            ack_interval: Duration::MAX,
            gap_timeout: Duration::MAX,
            max_held: MAX_HELD_LIMIT,
            ..SequencedConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }
}
