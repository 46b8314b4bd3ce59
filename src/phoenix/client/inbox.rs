//! The queue behind each subscription and room: unbounded underneath, but
//! capped for data by a counter, so a consumer that stops reading loses
//! messages (counted) instead of growing memory without bound, while control
//! events (a room's switch completing) always get through.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

struct Counters {
    queued: AtomicUsize,
    missed: AtomicU64,
    capacity: usize,
}

/// A new queue holding up to `capacity` data items.
pub(crate) fn inbox<T>(capacity: usize) -> (InboxSender<T>, InboxReceiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters {
        queued: AtomicUsize::new(0),
        missed: AtomicU64::new(0),
        capacity,
    });
    (
        InboxSender {
            tx,
            counters: Arc::clone(&counters),
        },
        InboxReceiver { rx, counters },
    )
}

/// What became of a data item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    Queued,
    /// Dropped: the consumer has too many unread.
    Full,
    /// Dropped: the consumer is gone.
    Gone,
}

impl Sent {
    pub(crate) fn is_full(self) -> bool {
        self == Sent::Full
    }
}

/// The driver's end.
pub(crate) struct InboxSender<T> {
    tx: mpsc::UnboundedSender<T>,
    counters: Arc<Counters>,
}

impl<T> InboxSender<T> {
    /// Queues a data item unless the queue is full (then the item is dropped
    /// and counted as missed).
    pub(crate) fn send_data(&self, item: T) -> Sent {
        if self.counters.queued.load(Ordering::Relaxed) >= self.counters.capacity {
            self.counters.missed.fetch_add(1, Ordering::Relaxed);
            return Sent::Full;
        }
        if self.send_control(item) {
            Sent::Queued
        } else {
            Sent::Gone
        }
    }

    /// Queues a control item whatever the queue holds. Returns whether the
    /// receiver still exists.
    pub(crate) fn send_control(&self, item: T) -> bool {
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(item).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// The consumer's end.
pub(crate) struct InboxReceiver<T> {
    rx: mpsc::UnboundedReceiver<T>,
    counters: Arc<Counters>,
}

impl<T> InboxReceiver<T> {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
        }
        polled
    }

    /// Data items dropped because the queue was full.
    pub(crate) fn missed(&self) -> u64 {
        self.counters.missed.load(Ordering::Relaxed)
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.counters.queued.load(Ordering::Relaxed)
    }
}
