//! What goes into a stream (positions) and what comes out (outputs, stats).

/// Where an event sits in its stream, as the caller extracted it from the
/// payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Position {
    /// A sequence number (sequenced streams). The first event is 1.
    Seq(u64),
    /// A patch envelope taking the state from `base` to `version`
    /// (versioned streams). The first envelope of an incarnation is `0 → 1`.
    Version {
        /// The version the patch applies to.
        base: u64,
        /// The version it produces.
        version: u64,
    },
}

/// Why an event's position is unusable. The caller builds the first three
/// when it cannot extract an integer; the stream adds the others. Each one is
/// reported as [`StreamOutput::Malformed`] and counted; the event is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PositionError {
    /// The payload has no position field.
    #[error(
        "the event carries no position: a server of an ordered stream must number every event"
    )]
    Missing,
    /// The position is not an integer (a string, a float, an object...).
    #[error("the event's position is not an integer: the server must send a JSON integer")]
    NotAnInteger,
    /// The position is a negative integer.
    #[error("the event's position is negative: positions start at 1 (versions at 0)")]
    Negative,
    /// Sequence number 0 (sequenced streams start at 1).
    #[error("sequence number 0: a sequenced server numbers its first event 1")]
    Zero,
    /// Far below the last delivered position: the server probably restarted
    /// its numbering.
    #[error(
        "sequence number {position} is far below the last one ({last}): the server probably \
         restarted its numbering; start a new stream, or raise max_backwards if its replay \
         window is that large"
    )]
    TooFarBack {
        /// The position received.
        position: u64,
        /// The last position delivered or reported lost.
        last: u64,
    },
    /// An envelope whose version does not come after its base.
    #[error(
        "patch envelope from version {base} to {version}: a patch must produce a newer version"
    )]
    VersionNotAfterBase {
        /// The envelope's base version.
        base: u64,
        /// The envelope's version.
        version: u64,
    },
    /// A sequence number given to a versioned stream.
    #[error("a versioned stream got a sequence number: configure the topic as sequenced, or pass Position::Version")]
    UnexpectedSeq,
    /// A version envelope given to a sequenced stream.
    #[error("a sequenced stream got a version envelope: configure the topic as versioned, or pass Position::Seq")]
    UnexpectedVersion,
}

/// Why a sequenced stream asks for a new incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejoinReason {
    /// Positions `from..=to` are missing and [`Recovery::Rejoin`](super::Recovery::Rejoin)
    /// is configured.
    Gap {
        /// First missing position.
        from: u64,
        /// Last missing position known so far.
        to: u64,
    },
    /// The server refused to replay from `from` without saying what it still
    /// holds (an error reply without `earliest`, or no reply in time).
    ReplayRefused {
        /// The position the replay was asked from.
        from: u64,
    },
    /// The gap was still open `gap_timeout` after asking for a replay.
    ReplayTimedOut {
        /// The position the replay was asked from.
        from: u64,
    },
    /// More events arrived past a gap than `max_held` allows; they were
    /// dropped and the rejoin replays them.
    Overflow {
        /// How many held events were dropped.
        dropped: usize,
    },
}

/// Why a versioned stream dropped its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResyncReason {
    /// The first envelope of the incarnation was not the `0 → 1` mount.
    BadMount {
        /// The envelope's base version.
        base: u64,
        /// The envelope's version.
        version: u64,
    },
    /// An envelope that does not continue the current version: a forward gap
    /// or a base that is not the current version.
    Gap {
        /// The version the stream was at.
        current: u64,
        /// The envelope's base version.
        base: u64,
        /// The envelope's version.
        version: u64,
    },
}

/// One output of an [`OrderedStream`](super::OrderedStream), drained with
/// [`poll_output`](super::OrderedStream::poll_output) in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamOutput<T> {
    /// Hand `item` to the consumer. Positions strictly increase, each at most
    /// once (within a mount for versioned streams: a new mount starts again
    /// at version 1, announced by [`StreamOutput::Settled`]).
    Deliver {
        /// The sequence number or version.
        position: u64,
        /// What the caller passed with the event.
        item: T,
    },
    /// Push an acknowledgement of every position up to `upto`; answer with
    /// [`handle_ack_result`](super::OrderedStream::handle_ack_result).
    SendAck {
        /// The last position delivered or reported lost.
        upto: u64,
    },
    /// Push a request to re-send from `from`; answer with
    /// [`handle_replay_result`](super::OrderedStream::handle_replay_result).
    RequestReplay {
        /// The first missing position.
        from: u64,
    },
    /// Start a new incarnation of the topic, with
    /// [`resume_position`](super::OrderedStream::resume_position) in its join
    /// params, and tell the stream with
    /// [`on_join`](super::OrderedStream::on_join).
    Rejoin {
        /// Why.
        reason: RejoinReason,
    },
    /// Versioned: drop all state derived from the stream, fail the topic's
    /// pending pushes with a typed error, and start a new incarnation. Nothing
    /// is delivered until that incarnation's `0 → 1` mount.
    Resync {
        /// Why.
        reason: ResyncReason,
    },
    /// Versioned: the incarnation's `0 → 1` mount arrived (delivered right
    /// after as version 1): the topic has its first data and may settle.
    Settled {
        /// The incarnation that mounted.
        incarnation: u64,
    },
    /// Positions `from..=to` will never be delivered: the server no longer
    /// holds them, or a rejoin did not bring them within `gap_timeout`.
    /// Delivery continues after `to`.
    Lost {
        /// First lost position.
        from: u64,
        /// Last lost position.
        to: u64,
    },
    /// An event was dropped because its position is unusable.
    Malformed {
        /// What was wrong with it.
        error: PositionError,
    },
}

/// Counters and the current state of one stream, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StreamStats {
    /// Events delivered.
    pub delivered: u64,
    /// Events dropped as already delivered or already held.
    pub duplicates: u64,
    /// Events dropped as malformed.
    pub malformed: u64,
    /// Events of another incarnation (or of one that resynced), ignored.
    pub ignored: u64,
    /// Gaps detected (sequenced): times a position arrived past a missing one
    /// while no recovery was running.
    pub gaps: u64,
    /// Positions reported lost.
    pub lost: u64,
    /// Replay requests asked for.
    pub replays: u64,
    /// Rejoins asked for.
    pub rejoins: u64,
    /// Times the held buffer overflowed.
    pub overflows: u64,
    /// Acknowledgements asked for.
    pub acks_sent: u64,
    /// Acknowledgements that failed or timed out.
    pub acks_failed: u64,
    /// Replay or acknowledgement answers that matched nothing outstanding.
    pub stale_answers: u64,
    /// Resyncs (versioned).
    pub resyncs: u64,
    /// Mounts (versioned): `0 → 1` envelopes accepted.
    pub mounts: u64,
    /// Events held now, waiting for a missing position.
    pub held: usize,
    /// Sequenced: the last position delivered or reported lost (0 before the
    /// first). Versioned: the current version (0 when unmounted).
    pub position: u64,
    /// Sequenced: the last position the server confirmed as acknowledged.
    pub acked: u64,
}
