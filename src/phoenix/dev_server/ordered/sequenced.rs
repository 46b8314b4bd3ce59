//! A sequenced topic's log: topic-wide numbering, the events held for replay, the
//! acknowledgements, and the live subscribers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::fanout::{Fanout, Item, Subscriber};
use super::faults::OrderedFault;
use super::SequencedFormat;
use crate::phoenix::dev_server::SocketId;

/// Why an acknowledgement is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AckBeyondLast {
    pub(crate) last: u64,
}

/// Why a replay request is refused: what it asks for is no longer held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplayGap {
    pub(crate) earliest: u64,
}

/// One sequenced topic, for the server's lifetime (like a GenServer that outlives the
/// channels it feeds).
#[derive(Debug)]
pub(crate) struct SequencedLog {
    pub(crate) format: Arc<SequencedFormat>,
    /// The number the next event gets; every event of the topic got one, from 1.
    pub(crate) next_seq: u64,
    /// The events held for replay, oldest first, with their payloads as pushed.
    held: VecDeque<(u64, Value)>,
    /// The highest acknowledgement of each socket.
    pub(crate) acked: BTreeMap<SocketId, u64>,
    /// The highest acknowledgement of any socket: what the log may forget, outside the window.
    ack_floor: u64,
    pub(crate) subscribers: Vec<Subscriber>,
    fanout: Fanout,
}

impl SequencedLog {
    pub(crate) fn new(format: Arc<SequencedFormat>) -> Self {
        SequencedLog {
            format,
            next_seq: 1,
            held: VecDeque::new(),
            acked: BTreeMap::new(),
            ack_floor: 0,
            subscribers: Vec::new(),
            fanout: Fanout::default(),
        }
    }

    /// The oldest sequence number held, or the next one when none is.
    pub(crate) fn earliest(&self) -> u64 {
        self.held.front().map_or(self.next_seq, |(seq, _)| *seq)
    }

    /// The last sequence number given out (0 before the first event).
    pub(crate) fn last(&self) -> u64 {
        self.next_seq - 1
    }

    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn reordering(&self) -> bool {
        self.fanout.reordering()
    }

    /// Whether a fault may be spent on the next event (not while a reorder is completing).
    pub(crate) fn takes_fault(&self) -> bool {
        !self.fanout.reordering()
    }

    /// Subscribe a new incarnation that holds everything up to `last_seq`: returns the
    /// earliest sequence number held and the held events after `last_seq`, to push after the
    /// join reply. Later events reach it live.
    pub(crate) fn join(&mut self, subscriber: Subscriber, last_seq: u64) -> (u64, Vec<Value>) {
        self.subscribers.push(subscriber);
        (self.earliest(), self.held_from(last_seq.saturating_add(1)))
    }

    /// The held events from `from` on, to re-send; refused when `from` is no longer held.
    pub(crate) fn replay(&self, from: u64) -> Result<Vec<Value>, ReplayGap> {
        let earliest = self.earliest();
        if from < earliest {
            return Err(ReplayGap { earliest });
        }
        Ok(self.held_from(from))
    }

    fn held_from(&self, from: u64) -> Vec<Value> {
        // Held sequence numbers are consecutive, so the position is an offset.
        let skip = usize::try_from(from.saturating_sub(self.earliest())).unwrap_or(usize::MAX);
        self.held
            .iter()
            .skip(skip)
            .map(|(_, payload)| payload.clone())
            .collect()
    }

    /// Record a cumulative acknowledgement from `socket`, then forget what it allows.
    pub(crate) fn ack(
        &mut self,
        socket: SocketId,
        seq: u64,
        window: u64,
    ) -> Result<(), AckBeyondLast> {
        if seq > self.last() {
            return Err(AckBeyondLast { last: self.last() });
        }
        let acked = self.acked.entry(socket).or_default();
        *acked = (*acked).max(seq);
        self.ack_floor = self.ack_floor.max(seq);
        self.trim(window);
        Ok(())
    }

    /// Number and push one event with `body` (an object; its seq field is overwritten);
    /// returns its sequence number.
    pub(crate) fn publish(
        &mut self,
        topic: &str,
        mut body: Map<String, Value>,
        fault: Option<&OrderedFault>,
        window: u64,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        body.insert(self.format.seq_field.clone(), Value::from(seq));
        let payload = Value::Object(body);
        let item = Item::to_all(&self.subscribers, &payload);
        self.held.push_back((seq, payload));
        self.fanout
            .send(&self.subscribers, topic, &self.format.event, item, fault);
        self.trim(window);
        seq
    }

    /// Forget acknowledged events outside the last `window`.
    fn trim(&mut self, window: u64) {
        let limit = self.ack_floor.min(self.last().saturating_sub(window));
        self.forget_through(limit);
    }

    /// Forget every event outside the last `window`, acknowledged or not; returns how many.
    pub(crate) fn overflow(&mut self, window: u64) -> usize {
        self.forget_through(self.last().saturating_sub(window))
    }

    fn forget_through(&mut self, limit: u64) -> usize {
        let before = self.held.len();
        while self.held.front().is_some_and(|(seq, _)| *seq <= limit) {
            self.held.pop_front();
        }
        before - self.held.len()
    }

    pub(crate) fn unsubscribe(&mut self, id: u64) {
        self.subscribers.retain(|subscriber| subscriber.id != id);
    }
}
