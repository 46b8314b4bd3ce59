//! Sequenced streams: numbered events, cumulative acknowledgements, replay
//! after a gap or a rejoin.
//!
//! The stream keeps a *cursor*: the last position delivered or reported lost.
//! Everything at or below it is settled; the next delivery is `cursor + 1`.
//! The *horizon* is the highest position known to exist; a gap is open while
//! it is above the cursor. Held events lie strictly between the two.

use std::collections::VecDeque;
use std::time::Instant;

use super::config::{Recovery, SequencedConfig};
use super::output::{PositionError, RejoinReason, StreamOutput};
use super::Outbox;

/// Where the recovery of an open gap stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum GapState {
    /// No gap is open.
    Closed,
    /// A gap is open, and nothing can be asked for until the incarnation's
    /// join is answered (its join params already ask for a replay).
    AwaitingJoin,
    /// A replay from `from` was asked for; at `deadline` the stream rejoins.
    Replaying {
        from: u64,
        deadline: Option<Instant>,
    },
    /// A rejoin was asked for and has not started yet.
    RejoinRequested,
    /// Joined with the gap still open; what has not arrived by `deadline` is
    /// reported lost.
    Refilling { deadline: Option<Instant> },
}

/// Cumulative, batched acknowledgements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Acks {
    /// Last position the server confirmed.
    acked: u64,
    /// The acknowledgement waiting for its answer.
    in_flight: Option<u64>,
    /// `upto` of the last acknowledgement sent, whatever its outcome: the
    /// count trigger counts from here.
    sent_upto: u64,
    /// When the interval trigger fires (`None`: not armed, or never).
    due: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Sequenced<T> {
    config: SequencedConfig,
    cursor: u64,
    horizon: u64,
    /// Events past a gap, sorted by position, each in `cursor + 2..=horizon`.
    held: VecDeque<(u64, T)>,
    gap: GapState,
    /// Whether the current incarnation's join was answered: only then may
    /// pushes (acknowledgements, replay requests) go out.
    joined: bool,
    acks: Acks,
}

impl<T> Sequenced<T> {
    pub(super) fn new(config: SequencedConfig) -> Self {
        Sequenced {
            config,
            cursor: 0,
            horizon: 0,
            held: VecDeque::new(),
            gap: GapState::Closed,
            joined: false,
            acks: Acks {
                acked: 0,
                in_flight: None,
                sent_upto: 0,
                due: None,
            },
        }
    }

    pub(super) fn cursor(&self) -> u64 {
        self.cursor
    }

    pub(super) fn held(&self) -> usize {
        self.held.len()
    }

    pub(super) fn acked(&self) -> u64 {
        self.acks.acked
    }

    fn gap_open(&self) -> bool {
        self.horizon > self.cursor
    }

    pub(super) fn on_join(&mut self, now: Instant) {
        self.joined = false;
        // The old channel's pushes die with it; whatever it acknowledged is
        // re-sent on the new one.
        self.acks.in_flight = None;
        self.acks.sent_upto = self.acks.acked;
        if self.cursor > self.acks.acked && self.acks.due.is_none() {
            self.acks.due = now.checked_add(self.config.ack_interval);
        }
        // Held events stay: positions mean the same across incarnations, and
        // the join's replay fills in around them.
        self.gap = if self.gap_open() {
            GapState::AwaitingJoin
        } else {
            GapState::Closed
        };
    }

    pub(super) fn handle_joined(
        &mut self,
        earliest: Option<u64>,
        now: Instant,
        out: &mut Outbox<T>,
    ) {
        if self.joined {
            out.stats.stale_answers += 1;
            return;
        }
        self.joined = true;
        if let Some(earliest) = earliest {
            // Everything below `earliest` the server no longer holds.
            self.settle_through(earliest.saturating_sub(1), now, out);
        }
        if self.gap_open() {
            self.gap = GapState::Refilling {
                deadline: now.checked_add(self.config.gap_timeout),
            };
        } else if self.gap == GapState::AwaitingJoin {
            self.gap = GapState::Closed;
        }
        self.maybe_send_ack(now, out);
    }

    pub(super) fn handle_event(
        &mut self,
        position: u64,
        item: T,
        now: Instant,
        out: &mut Outbox<T>,
    ) {
        if position == 0 {
            out.malformed(PositionError::Zero);
            return;
        }
        if position <= self.cursor {
            if self.cursor - position > self.config.max_backwards {
                out.malformed(PositionError::TooFarBack {
                    position,
                    last: self.cursor,
                });
            } else {
                out.stats.duplicates += 1;
            }
            return;
        }
        if position - self.cursor == 1 {
            self.deliver(position, item, out);
            self.release_held(out);
            self.progressed(now, out);
            return;
        }
        // Past a gap: hold it.
        let at = match self.held.binary_search_by_key(&position, |(p, _)| *p) {
            Ok(_) => {
                out.stats.duplicates += 1;
                return;
            }
            Err(at) => at,
        };
        self.horizon = self.horizon.max(position);
        if self.held.len() >= self.config.max_held {
            self.overflow(out);
            return;
        }
        self.held.insert(at, (position, item));
        self.gap_found(now, out);
    }

    pub(super) fn handle_ack_result(
        &mut self,
        upto: u64,
        ok: bool,
        now: Instant,
        out: &mut Outbox<T>,
    ) {
        if self.acks.in_flight != Some(upto) {
            out.stats.stale_answers += 1;
            return;
        }
        self.acks.in_flight = None;
        if ok {
            self.acks.acked = self.acks.acked.max(upto);
        } else {
            // Retried on the next trigger: the interval from now, or
            // `ack_every` more positions.
            out.stats.acks_failed += 1;
            if self.acks.due.is_none() {
                self.acks.due = now.checked_add(self.config.ack_interval);
            }
        }
        self.maybe_send_ack(now, out);
    }

    pub(super) fn handle_replay_result(
        &mut self,
        from: u64,
        result: Result<(), Option<u64>>,
        now: Instant,
        out: &mut Outbox<T>,
    ) {
        match self.gap {
            GapState::Replaying { from: asked, .. } if asked == from => {}
            _ => {
                out.stats.stale_answers += 1;
                return;
            }
        }
        match result {
            // The server re-sends; wait for it until the deadline.
            Ok(()) => {}
            Err(Some(earliest)) if earliest > from => {
                self.settle_through(earliest - 1, now, out);
                if self.gap_open() {
                    // The server holds everything from the new cursor on:
                    // ask again from there (`from` strictly increases).
                    self.request_replay(now, out);
                }
            }
            Err(_) => self.rejoin(RejoinReason::ReplayRefused { from }, out),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant, out: &mut Outbox<T>) {
        match self.gap {
            GapState::Replaying { from, deadline } if due(deadline, now) => {
                self.rejoin(RejoinReason::ReplayTimedOut { from }, out);
            }
            GapState::Refilling { deadline } if due(deadline, now) => {
                self.settle_through(self.horizon, now, out);
            }
            _ => {}
        }
        self.maybe_send_ack(now, out);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let gap = match self.gap {
            GapState::Replaying { deadline, .. } | GapState::Refilling { deadline } => deadline,
            _ => None,
        };
        let ack = if self.can_ack() { self.acks.due } else { None };
        match (gap, ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deliver(&mut self, position: u64, item: T, out: &mut Outbox<T>) {
        self.cursor = position;
        out.deliver(position, item);
    }

    /// Delivers the held events that now follow the cursor.
    fn release_held(&mut self, out: &mut Outbox<T>) {
        while self
            .held
            .front()
            .is_some_and(|&(position, _)| position - self.cursor == 1)
        {
            if let Some((position, item)) = self.held.pop_front() {
                self.deliver(position, item, out);
            }
        }
    }

    /// Settles every position up to `last`: delivers the held ones, reports
    /// the holes lost, then continues with what follows.
    fn settle_through(&mut self, last: u64, now: Instant, out: &mut Outbox<T>) {
        if last <= self.cursor {
            return;
        }
        while self.cursor < last {
            let next = self.cursor + 1;
            match self.held.front() {
                Some(&(position, _)) if position == next => {
                    if let Some((position, item)) = self.held.pop_front() {
                        self.deliver(position, item, out);
                    }
                }
                front => {
                    let to = front.map_or(last, |&(position, _)| last.min(position - 1));
                    out.stats.lost = out.stats.lost.saturating_add(to - next + 1);
                    out.queue.push_back(StreamOutput::Lost { from: next, to });
                    self.cursor = to;
                }
            }
        }
        self.horizon = self.horizon.max(self.cursor);
        self.release_held(out);
        self.progressed(now, out);
    }

    /// The cursor moved: close the gap if it filled, and maybe acknowledge.
    fn progressed(&mut self, now: Instant, out: &mut Outbox<T>) {
        if !self.gap_open() {
            match self.gap {
                // The caller will rejoin anyway; a new gap before it does
                // must not ask twice.
                GapState::RejoinRequested | GapState::Closed => {}
                GapState::AwaitingJoin
                | GapState::Replaying { .. }
                | GapState::Refilling { .. } => {
                    self.gap = GapState::Closed;
                }
            }
        }
        if self.acks.due.is_none() && self.cursor > self.acks.sent_upto {
            self.acks.due = now.checked_add(self.config.ack_interval);
        }
        self.maybe_send_ack(now, out);
    }

    /// A position arrived past a missing one.
    fn gap_found(&mut self, now: Instant, out: &mut Outbox<T>) {
        if self.gap != GapState::Closed {
            return;
        }
        out.stats.gaps += 1;
        if !self.joined {
            self.gap = GapState::AwaitingJoin;
            return;
        }
        match self.config.recovery {
            Recovery::Replay => self.request_replay(now, out),
            Recovery::Rejoin => {
                let from = self.cursor + 1;
                let to = self.held.front().map_or(self.horizon, |&(p, _)| p - 1);
                self.rejoin(RejoinReason::Gap { from, to }, out);
            }
        }
    }

    fn request_replay(&mut self, now: Instant, out: &mut Outbox<T>) {
        let from = self.cursor + 1;
        out.stats.replays += 1;
        out.queue.push_back(StreamOutput::RequestReplay { from });
        self.gap = GapState::Replaying {
            from,
            deadline: now.checked_add(self.config.gap_timeout),
        };
    }

    fn rejoin(&mut self, reason: RejoinReason, out: &mut Outbox<T>) {
        out.stats.rejoins += 1;
        out.queue.push_back(StreamOutput::Rejoin { reason });
        self.gap = GapState::RejoinRequested;
    }

    /// The held buffer is full: drop it (the server replays it) and rejoin.
    fn overflow(&mut self, out: &mut Outbox<T>) {
        let dropped = self.held.len();
        self.held.clear();
        out.stats.overflows += 1;
        match self.gap {
            // A new incarnation is already on its way and replays them.
            GapState::RejoinRequested | GapState::AwaitingJoin => {}
            GapState::Closed | GapState::Replaying { .. } | GapState::Refilling { .. } => {
                self.rejoin(RejoinReason::Overflow { dropped }, out);
            }
        }
    }

    fn can_ack(&self) -> bool {
        self.joined && self.acks.in_flight.is_none() && self.cursor > self.acks.acked
    }

    fn maybe_send_ack(&mut self, now: Instant, out: &mut Outbox<T>) {
        if !self.can_ack() {
            return;
        }
        let by_count = self.cursor - self.acks.sent_upto >= u64::from(self.config.ack_every);
        if by_count || due(self.acks.due, now) {
            let upto = self.cursor;
            self.acks.in_flight = Some(upto);
            self.acks.sent_upto = upto;
            self.acks.due = None;
            out.stats.acks_sent += 1;
            out.queue.push_back(StreamOutput::SendAck { upto });
        }
    }
}

/// Whether a deadline (`None`: never) has passed.
fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|at| at <= now)
}
