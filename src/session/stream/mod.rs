//! Ordered, gap-free delivery across rejoins.
//!
//! A Phoenix channel loses whatever the server sent while an incarnation was
//! dying (a crash, a socket drop, a duplicate join, a version switch). A topic
//! that opts in gets an [`OrderedStream`], which turns the events of its
//! successive incarnations into one ordered stream in which every position is
//! delivered at most once, in increasing order, and every position that will
//! never come is reported instead of skipped silently. Two server designs are
//! supported:
//!
//! - **Sequenced** ([`StreamConfig::Sequenced`]): the server numbers every
//!   event from 1. The stream delivers exactly the next number, holds later
//!   ones back (bounded), asks for what is missing
//!   ([`StreamOutput::RequestReplay`] or [`StreamOutput::Rejoin`] with
//!   [`OrderedStream::resume_position`] in the join params), acknowledges in
//!   batches ([`StreamOutput::SendAck`]) and reports what the server no longer
//!   holds ([`StreamOutput::Lost`]).
//! - **Versioned** ([`StreamConfig::Versioned`]): the server sends patch
//!   envelopes `base → version`. Each incarnation starts unmounted; its first
//!   envelope must be the `0 → 1` mount ([`StreamOutput::Settled`], then
//!   version 1 is delivered). Any gap emits [`StreamOutput::Resync`]: the
//!   consumer drops its derived state and the caller starts a new incarnation.
//!   Versions restart at 1 with every mount, so "increasing" holds within a
//!   mount: a consumer knows a new mount began because
//!   [`StreamOutput::Settled`] always comes before its version 1 (and
//!   [`StreamOutput::Resync`] before that when the old mount broke).
//!
//! The stream is pure, like the engine: it knows nothing of JSON or frames
//! (the caller extracts positions and passes an opaque item to be handed
//! back), never reads a clock (inputs take `now`; timers are
//! [`poll_timeout`](OrderedStream::poll_timeout) and
//! [`handle_timeout`](OrderedStream::handle_timeout)), and does no IO (pushes
//! to make are outputs).
//!
//! # Example
//!
//! A sequenced stream whose event 2 went missing: event 3 is held, a replay
//! is asked for, and once 2 arrives both are delivered in order.
//!
//! ```
//! use std::time::Instant;
//! use channel_registry::session::stream::{OrderedStream, Position, StreamConfig, StreamOutput};
//!
//! let now = Instant::now();
//! let mut stream = OrderedStream::new(StreamConfig::default())?;
//! stream.on_join(1, now); // join_ref 1, params carry `"last_seq": 0`
//! assert_eq!(stream.resume_position(), Some(0));
//! stream.handle_joined(1, None, now);
//!
//! stream.handle_event(1, Ok(Position::Seq(1)), "one", now);
//! stream.handle_event(1, Ok(Position::Seq(3)), "three", now);
//! assert_eq!(stream.poll_output(), Some(StreamOutput::Deliver { position: 1, item: "one" }));
//! assert_eq!(stream.poll_output(), Some(StreamOutput::RequestReplay { from: 2 }));
//! assert_eq!(stream.poll_output(), None);
//!
//! stream.handle_replay_result(2, Ok(()), now); // the server re-sends from 2
//! stream.handle_event(1, Ok(Position::Seq(2)), "two", now);
//! stream.handle_event(1, Ok(Position::Seq(3)), "three again", now); // a duplicate
//! let delivered: Vec<_> = std::iter::from_fn(|| stream.poll_output()).collect();
//! assert_eq!(
//!     delivered,
//!     [
//!         StreamOutput::Deliver { position: 2, item: "two" },
//!         StreamOutput::Deliver { position: 3, item: "three" },
//!     ]
//! );
//! assert_eq!(stream.stats().duplicates, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::time::Instant;

mod config;
mod output;
mod sequenced;
mod versioned;

#[cfg(test)]
mod tests;

pub use config::{
    Recovery, SequencedConfig, StreamConfig, StreamConfigError, VersionedConfig, MAX_HELD_LIMIT,
};
pub use output::{Position, PositionError, RejoinReason, ResyncReason, StreamOutput, StreamStats};

use sequenced::Sequenced;
use versioned::Versioned;

/// One ordered stream of one topic: feed it the topic's join lifecycle and
/// events, drain its outputs after every input.
///
/// `T` is whatever the caller wants back with each delivered event (the
/// decoded payload, typically). Events held back for a gap are owned by the
/// stream, at most [`SequencedConfig::max_held`] of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrderedStream<T> {
    /// The incarnation being joined or joined; events of any other are ignored.
    incarnation: Option<u64>,
    mode: Mode<T>,
    out: Outbox<T>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Mode<T> {
    Sequenced(Sequenced<T>),
    Versioned(Versioned),
}

/// Outputs not yet polled, and the counters, shared by both modes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Outbox<T> {
    queue: VecDeque<StreamOutput<T>>,
    stats: StreamStats,
}

impl<T> Outbox<T> {
    fn deliver(&mut self, position: u64, item: T) {
        self.stats.delivered += 1;
        self.queue
            .push_back(StreamOutput::Deliver { position, item });
    }

    fn malformed(&mut self, error: PositionError) {
        self.stats.malformed += 1;
        self.queue.push_back(StreamOutput::Malformed { error });
    }
}

impl<T> OrderedStream<T> {
    /// A stream that has not joined yet. Fails when a number in `config` is
    /// unusable; the error says which and what to use.
    pub fn new(config: StreamConfig) -> Result<Self, StreamConfigError> {
        config.validate()?;
        let mode = match config {
            StreamConfig::Sequenced(config) => Mode::Sequenced(Sequenced::new(config)),
            StreamConfig::Versioned(_) => Mode::Versioned(Versioned::new()),
        };
        Ok(OrderedStream {
            incarnation: None,
            mode,
            out: Outbox {
                queue: VecDeque::new(),
                stats: StreamStats::default(),
            },
        })
    }

    /// A new incarnation of the topic is being joined (`incarnation` is its
    /// join_ref). From now on only its events count. Call it for every join,
    /// asked for by the stream or not (retries, reconnects, switches), with
    /// [`resume_position`](Self::resume_position) in the join params.
    pub fn on_join(&mut self, incarnation: u64, now: Instant) {
        self.incarnation = Some(incarnation);
        match &mut self.mode {
            Mode::Sequenced(s) => s.on_join(now),
            Mode::Versioned(v) => v.on_join(),
        }
    }

    /// What the join params must carry so that the server replays what this
    /// client missed: sequenced, `Some(last position delivered or reported
    /// lost)` (0 before the first); versioned, `None` (every incarnation
    /// remounts).
    #[must_use]
    pub fn resume_position(&self) -> Option<u64> {
        match &self.mode {
            Mode::Sequenced(s) => Some(s.cursor()),
            Mode::Versioned(_) => None,
        }
    }

    /// The join of `incarnation` was answered ok. `earliest` is the oldest
    /// position the server says it still holds (the next one it will number
    /// when it holds none), if it says: anything missing below it is reported
    /// lost at once. Answers for another incarnation are ignored.
    pub fn handle_joined(&mut self, incarnation: u64, earliest: Option<u64>, now: Instant) {
        if self.incarnation != Some(incarnation) {
            self.out.stats.stale_answers += 1;
            return;
        }
        if let Mode::Sequenced(s) = &mut self.mode {
            s.handle_joined(earliest, now, &mut self.out);
        }
    }

    /// An event of `incarnation`, with its position as the caller could
    /// extract it (`Err` when it could not: the event is reported
    /// [`StreamOutput::Malformed`]). `item` comes back in
    /// [`StreamOutput::Deliver`], or is dropped with the event.
    pub fn handle_event(
        &mut self,
        incarnation: u64,
        position: Result<Position, PositionError>,
        item: T,
        now: Instant,
    ) {
        if self.incarnation != Some(incarnation) {
            self.out.stats.ignored += 1;
            return;
        }
        match (&mut self.mode, position) {
            (_, Err(error)) => self.out.malformed(error),
            (Mode::Sequenced(s), Ok(Position::Seq(seq))) => {
                s.handle_event(seq, item, now, &mut self.out);
            }
            (Mode::Sequenced(_), Ok(Position::Version { .. })) => {
                self.out.malformed(PositionError::UnexpectedVersion);
            }
            (Mode::Versioned(v), Ok(Position::Version { base, version })) => {
                v.handle_event(incarnation, base, version, item, &mut self.out);
            }
            (Mode::Versioned(_), Ok(Position::Seq(_))) => {
                self.out.malformed(PositionError::UnexpectedSeq);
            }
        }
    }

    /// The answer to [`StreamOutput::SendAck`]: `ok` false for an error reply
    /// or a timeout (retried on the next trigger). Answers to anything but
    /// the acknowledgement in flight are ignored.
    pub fn handle_ack_result(&mut self, upto: u64, ok: bool, now: Instant) {
        match &mut self.mode {
            Mode::Sequenced(s) => s.handle_ack_result(upto, ok, now, &mut self.out),
            Mode::Versioned(_) => self.out.stats.stale_answers += 1,
        }
    }

    /// The answer to [`StreamOutput::RequestReplay`]: `Ok` when the server
    /// re-sends; `Err(Some(earliest))` when it no longer holds `from` (what
    /// is below `earliest` is reported lost and the rest asked for again);
    /// `Err(None)` for any other error or a timeout (the stream rejoins).
    /// Answers to anything but the request outstanding are ignored.
    pub fn handle_replay_result(
        &mut self,
        from: u64,
        result: Result<(), Option<u64>>,
        now: Instant,
    ) {
        match &mut self.mode {
            Mode::Sequenced(s) => s.handle_replay_result(from, result, now, &mut self.out),
            Mode::Versioned(_) => self.out.stats.stale_answers += 1,
        }
    }

    /// Fires the timers due at `now`. Calling it again with the same `now`
    /// does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Mode::Sequenced(s) = &mut self.mode {
            s.handle_timeout(now, &mut self.out);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to
    /// do, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.mode {
            Mode::Sequenced(s) => s.poll_timeout(),
            Mode::Versioned(_) => None,
        }
    }

    /// The next output, in the order they happened. Drain it after every
    /// input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<StreamOutput<T>> {
        self.out.queue.pop_front()
    }

    /// Counters and the current position.
    #[must_use]
    pub fn stats(&self) -> StreamStats {
        let mut stats = self.out.stats;
        match &self.mode {
            Mode::Sequenced(s) => {
                stats.held = s.held();
                stats.position = s.cursor();
                stats.acked = s.acked();
            }
            Mode::Versioned(v) => stats.position = v.version(),
        }
        stats
    }
}
