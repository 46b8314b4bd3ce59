//! The server side of the stream model, written from the protocol alone
//! (seed behaviour of a sequenced log and of a versioned document), and the
//! frames it sends.

/// How an event came to be sent: it tells the reachability checks which
/// recovery brought it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// Published while the channel was up.
    Live,
    /// Replayed after a join, from the join's `last_seq`.
    JoinReplay,
    /// Re-sent for a replay request.
    Requested,
}

/// What the server sends with each position, handed back by the stream on
/// delivery: the checks compare it with the position delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    /// The position the server meant.
    pub pos: u8,
    /// The incarnation it was sent on.
    pub inc: u8,
    /// Why it was sent.
    pub tag: Tag,
}

/// One frame on its way to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A numbered event.
    Event {
        /// Topic index.
        topic: u8,
        /// What it carries.
        item: Item,
    },
    /// A patch envelope `base → version`.
    Patch {
        /// Topic index.
        topic: u8,
        /// The version it applies to.
        base: u8,
        /// What it carries (`pos` is the version it produces).
        item: Item,
    },
    /// The join of `inc` was accepted.
    JoinOk {
        /// Topic index.
        topic: u8,
        /// The incarnation.
        inc: u8,
        /// Sequenced: the oldest position the server holds.
        earliest: Option<u8>,
    },
    /// The answer to an acknowledgement.
    AckReply {
        /// Topic index.
        topic: u8,
        /// The incarnation it was pushed on.
        inc: u8,
        /// What it acknowledged.
        upto: u8,
        /// Ok, or an error (or a timeout: the stream cannot tell).
        ok: bool,
    },
    /// The answer to a replay request.
    ReplayReply {
        /// Topic index.
        topic: u8,
        /// The incarnation it was pushed on.
        inc: u8,
        /// Where the replay was asked from.
        from: u8,
        /// Ok, `Err(Some(earliest))` when `from` is gone, `Err(None)` for
        /// any other error or a timeout.
        result: Result<(), Option<u8>>,
    },
    /// The channel of `inc` crashed (`phx_error`).
    Crashed {
        /// Topic index.
        topic: u8,
        /// The incarnation.
        inc: u8,
    },
}

impl Frame {
    /// The topic and incarnation it belongs to.
    pub fn owner(&self) -> (u8, u8) {
        match *self {
            Frame::Event { topic, item } | Frame::Patch { topic, item, .. } => (topic, item.inc),
            Frame::JoinOk { topic, inc, .. }
            | Frame::AckReply { topic, inc, .. }
            | Frame::ReplayReply { topic, inc, .. }
            | Frame::Crashed { topic, inc } => (topic, inc),
        }
    }

    /// Whether it carries a position (the only frames the network may drop,
    /// duplicate or reorder).
    pub fn is_data(&self) -> bool {
        matches!(self, Frame::Event { .. } | Frame::Patch { .. })
    }

    /// The answer to a push turned into an error (or a timeout).
    pub fn refused(self) -> Option<Frame> {
        match self {
            Frame::AckReply {
                topic,
                inc,
                upto,
                ok: true,
            } => Some(Frame::AckReply {
                topic,
                inc,
                upto,
                ok: false,
            }),
            Frame::ReplayReply {
                topic,
                inc,
                from,
                result: Ok(()),
            } => Some(Frame::ReplayReply {
                topic,
                inc,
                from,
                result: Err(None),
            }),
            _ => None,
        }
    }
}

/// The channel of one topic on the server: which incarnation it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Channel {
    /// The incarnation joined last.
    pub inc: u8,
    /// Whether that channel is up (not crashed, its socket not dropped).
    pub up: bool,
}

/// A sequenced topic: a log of numbered events with a replay window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqLog {
    /// The last position numbered (0 before the first).
    pub published: u8,
    /// The oldest position held (`published + 1` when none).
    pub earliest: u8,
}

impl SeqLog {
    /// An empty log.
    pub fn new() -> SeqLog {
        SeqLog {
            published: 0,
            earliest: 1,
        }
    }

    /// How many positions it holds.
    pub fn held(&self) -> u8 {
        self.published + 1 - self.earliest
    }

    /// Whether it still holds `pos`.
    pub fn holds(&self, pos: u8) -> bool {
        pos >= self.earliest && pos <= self.published
    }

    /// A join of `inc` with `last_seq`: the answer, then every held
    /// position after `last_seq`.
    pub fn join(&self, topic: u8, inc: u8, last_seq: u8, out: &mut Vec<Frame>) {
        out.push(Frame::JoinOk {
            topic,
            inc,
            earliest: Some(self.earliest),
        });
        self.resend(topic, inc, last_seq + 1, Tag::JoinReplay, out);
    }

    /// A replay request from `from` on `inc`.
    pub fn replay(&self, topic: u8, inc: u8, from: u8, out: &mut Vec<Frame>) {
        if from < self.earliest {
            out.push(Frame::ReplayReply {
                topic,
                inc,
                from,
                result: Err(Some(self.earliest)),
            });
        } else {
            out.push(Frame::ReplayReply {
                topic,
                inc,
                from,
                result: Ok(()),
            });
            self.resend(topic, inc, from, Tag::Requested, out);
        }
    }

    /// An acknowledgement of everything up to `upto`: the log forgets it.
    /// Returns whether anything was trimmed.
    pub fn ack(&mut self, upto: u8) -> bool {
        let trimmed = upto >= self.earliest;
        self.earliest = self
            .earliest
            .max(upto.saturating_add(1).min(self.published + 1));
        trimmed
    }

    fn resend(&self, topic: u8, inc: u8, from: u8, tag: Tag, out: &mut Vec<Frame>) {
        for pos in from.max(self.earliest)..=self.published {
            out.push(Frame::Event {
                topic,
                item: Item { pos, inc, tag },
            });
        }
    }
}

impl Default for SeqLog {
    fn default() -> Self {
        SeqLog::new()
    }
}
