//! A second model: ordered streams (DESIGN §5, invariant 10).
//!
//! The state holds the **real** [`OrderedStream`] of each topic together with
//! an independent server written here ([`server`]): a sequenced topic log
//! with a replay window, cumulative acknowledgements and replay answers, or a
//! versioned document that sends patch envelopes per incarnation. The
//! environment publishes, delivers, drops, duplicates and reorders frames,
//! crashes channels, drops the socket, joins twice, skips versions and lets
//! the clock jump to the stream's deadlines; the client does what the stream
//! asks (acknowledge, ask for a replay, rejoin, resync). The properties
//! ([`props`]) look only at what the stream outputs and at what the server
//! holds: none of them repeats a rule of the stream.
//!
//! Two configurations are checked, one per run mode: a sequenced topic
//! ([`StreamsCfg::sequenced`]) and a room over two versioned topics
//! ([`StreamsCfg::versioned`]), which switches once from the first to the
//! second.
//!
//! # What the environment may and may not do
//!
//! - The server takes every client frame as soon as it is sent (joins,
//!   acknowledgements, replay requests); only its answers travel, so a slow
//!   server is a late answer.
//! - A frame is lost only if a later one can reveal the loss: the last
//!   position of a run (event `events`, version `versions`) is never dropped
//!   on the wire. Nothing could ever tell the client about it, on any
//!   implementation; a real client learns of a lost tail with the next event
//!   or rejoin, which the model also has.
//! - An answer to an acknowledgement or a replay request may come back as an
//!   error, which is also how the caller reports a push timeout; the server
//!   has taken the acknowledgement either way (trimming is the side that can
//!   lose data).
//! - The clock jumps to a stream's deadline only when no frame of its current
//!   incarnation is on the way: a deadline stands for an answer that will not
//!   come (which drops and errors produce). A network slower than
//!   `gap_timeout` is outside the guarantee: the stream then reports lost
//!   what was merely late.

use std::sync::OnceLock;
use std::time::Instant;

pub mod harness;
pub mod props;
pub mod run;
pub mod server;

pub use harness::{Action, State, StreamsModel};

#[cfg(doc)]
use channel_registry::session::stream::OrderedStream;

/// Which kind of stream a configuration checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamMode {
    /// One sequenced topic.
    Sequenced,
    /// A room over two versioned topics.
    Versioned,
}

/// Bounds of one stream model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamsCfg {
    /// The run mode.
    pub mode: StreamMode,
    /// Sequenced: events the server publishes (positions 1..=events).
    pub events: u8,
    /// Sequenced: the replay window; the server may evict its oldest event
    /// once it holds more than this many.
    pub window: u8,
    /// Sequenced: the stream's `max_held`.
    pub max_held: u8,
    /// Sequenced: the stream's `ack_every`.
    pub ack_every: u8,
    /// Versioned: the last version the server reaches in one incarnation.
    pub versions: u8,
    /// Most frames on their way to the client before the server waits to
    /// publish (a replay may go past it).
    pub in_flight: u8,
    /// Faults along one run: a frame dropped, duplicated or delivered ahead
    /// of the others, an answer refused, a channel crash, a socket drop, a
    /// duplicate join, a skipped version.
    pub faults: u8,
    /// Sequenced: report every loss of a position the server still holds,
    /// even one the stream gave up on after `gap_timeout` because its frame
    /// was lost on the wire after a rejoin (which the stream documents as a
    /// loss). Off in CI: on, it shows that counterexample.
    pub strict_loss: bool,
}

impl StreamsCfg {
    /// The sequenced configuration CI checks: four events, a window of
    /// two, one held event at most (so a second event past a gap
    /// overflows), acknowledgements every two positions, three frames in
    /// flight, three faults.
    pub fn sequenced() -> StreamsCfg {
        StreamsCfg {
            mode: StreamMode::Sequenced,
            events: 4,
            window: 2,
            max_held: 1,
            ack_every: 2,
            versions: 0,
            in_flight: 3,
            faults: 3,
            strict_loss: false,
        }
    }

    /// The versioned configuration CI checks: a room over two topics, three
    /// versions per incarnation, two frames in flight, three faults.
    pub fn versioned() -> StreamsCfg {
        StreamsCfg {
            mode: StreamMode::Versioned,
            events: 0,
            window: 0,
            max_held: 1,
            ack_every: 1,
            versions: 3,
            in_flight: 2,
            faults: 3,
            strict_loss: false,
        }
    }

    /// Both configurations CI checks.
    pub fn ci() -> [StreamsCfg; 2] {
        [StreamsCfg::sequenced(), StreamsCfg::versioned()]
    }

    /// Overrides one field by name (`faults=3`), for runs by hand.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key == "strict_loss" {
            self.strict_loss = match value {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => return Err(format!("{key} needs on or off, not {value:?}")),
            };
            return Ok(());
        }
        let num = value
            .parse::<u8>()
            .map_err(|_| format!("{key} needs a number, not {value:?}"))?;
        match key {
            "events" => self.events = num,
            "window" => self.window = num,
            "max_held" => self.max_held = num.max(1),
            "ack_every" => self.ack_every = num.max(1),
            "versions" => self.versions = num,
            "in_flight" => self.in_flight = num,
            "faults" => self.faults = num,
            _ => return Err(format!("unknown stream configuration field {key:?}")),
        }
        Ok(())
    }

    /// The model of this configuration.
    pub fn into_model(self) -> StreamsModel {
        StreamsModel::new(self)
    }
}

/// The instant the model clock counts from. The streams only compare
/// instants, so any one will do; it is read once.
#[allow(clippy::disallowed_methods)]
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}
