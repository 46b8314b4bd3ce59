//! Faults of ordered topics: armed through the handle, each spoils the next live item
//! published on a matching topic, so a client's ordering logic meets every way a real server
//! or network gets order wrong.

use std::collections::VecDeque;

use crate::phoenix::dev_server::{SocketId, TopicPattern};

/// A fault for the next live item of an ordered topic, armed with
/// [`DevServerHandle::arm_ordered_fault`](crate::phoenix::dev_server::DevServerHandle::arm_ordered_fault).
///
/// Faults touch live pushes only: what a join or a replay request re-sends comes from the
/// topic's log as it is, so a client can always recover what a fault spoiled.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OrderedFault {
    /// The next item is pushed twice to every subscriber.
    Duplicate,
    /// The next two items are swapped: the second is pushed first, then the first. The held
    /// item waits for the next one to be published.
    Reorder,
    /// The next item is never pushed live to subscribers on `socket` (to any subscriber when
    /// `None`). A sequenced event stays held for replay; a versioned subscriber's version
    /// moves on as if it had been sent, so its next patch does not start where it is.
    Drop {
        /// The socket that misses it, or `None` for every socket.
        socket: Option<SocketId>,
    },
    /// Versioned topics only: the next patch goes out as `base → base + 2`, and the
    /// subscriber's version is `base + 2` from then on.
    SkipVersion,
}

impl OrderedFault {
    /// Whether the fault can spoil an item of a versioned (`true`) or sequenced topic.
    fn applies_to(&self, versioned: bool) -> bool {
        !matches!(self, OrderedFault::SkipVersion) || versioned
    }
}

/// Faults armed and not yet spent, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ArmedFaults {
    armed: VecDeque<(TopicPattern, OrderedFault)>,
}

impl ArmedFaults {
    pub(crate) fn arm(&mut self, pattern: TopicPattern, fault: OrderedFault) {
        self.armed.push_back((pattern, fault));
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }

    /// Spend the oldest fault armed for `topic` that can spoil an item of its kind.
    pub(crate) fn take(&mut self, topic: &str, versioned: bool) -> Option<OrderedFault> {
        let index = self
            .armed
            .iter()
            .position(|(pattern, fault)| pattern.matches(topic) && fault.applies_to(versioned))?;
        self.armed.remove(index).map(|(_, fault)| fault)
    }
}
