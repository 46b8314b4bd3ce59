//! The queue behind each subscription and room: unbounded underneath, but
//! capped for messages by a budget in bytes (and a count), so a consumer
//! that stops reading loses messages — and is told how many, with a
//! `Lagged` item before the next one it gets — instead of growing memory
//! without bound. Lifecycle events always get through.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

struct Counters {
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    /// Dropped since the last `Lagged` the consumer saw.
    lag_messages: AtomicU64,
    lag_bytes: AtomicU64,
    /// Dropped over the queue's life.
    missed: AtomicU64,
    capacity: usize,
    budget: usize,
}

/// Limits of one queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Messages waiting at most.
    pub(crate) capacity: usize,
    /// Bytes of messages waiting at most (a single message larger than the
    /// whole budget still gets through an empty queue).
    pub(crate) budget: usize,
}

/// A new queue within `bounds`.
pub(crate) fn inbox<T>(bounds: Bounds) -> (InboxSender<T>, InboxReceiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters {
        queued: AtomicUsize::new(0),
        queued_bytes: AtomicUsize::new(0),
        lag_messages: AtomicU64::new(0),
        lag_bytes: AtomicU64::new(0),
        missed: AtomicU64::new(0),
        capacity: bounds.capacity,
        budget: bounds.budget,
    });
    (
        InboxSender {
            tx,
            counters: Arc::clone(&counters),
        },
        InboxReceiver { rx, counters },
    )
}

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    Queued,
    /// Dropped: the consumer has too many unread.
    Full,
    /// Dropped: the consumer is gone.
    Gone,
}

/// The driver's end.
pub(crate) struct InboxSender<T> {
    tx: mpsc::UnboundedSender<(T, usize)>,
    counters: Arc<Counters>,
}

impl<T> InboxSender<T> {
    /// Queues a message of `size` bytes unless the queue is over its bounds
    /// (then it is dropped and counted for the next `Lagged`).
    pub(crate) fn send_data(&self, item: T, size: usize) -> Sent {
        let c = &self.counters;
        let queued = c.queued.load(Ordering::Relaxed);
        let bytes = c.queued_bytes.load(Ordering::Relaxed);
        if queued >= c.capacity || (queued > 0 && bytes.saturating_add(size) > c.budget) {
            c.lag_messages.fetch_add(1, Ordering::Relaxed);
            c.lag_bytes.fetch_add(size as u64, Ordering::Relaxed);
            c.missed.fetch_add(1, Ordering::Relaxed);
            return Sent::Full;
        }
        self.push(item, size)
    }

    /// Queues an event whatever the queue holds. Returns whether the
    /// consumer still exists.
    pub(crate) fn send_control(&self, item: T) -> bool {
        self.push(item, 0) == Sent::Queued
    }

    fn push(&self, item: T, size: usize) -> Sent {
        let c = &self.counters;
        c.queued.fetch_add(1, Ordering::Relaxed);
        c.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if self.tx.send((item, size)).is_err() {
            c.queued.fetch_sub(1, Ordering::Relaxed);
            c.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            return Sent::Gone;
        }
        Sent::Queued
    }
}

/// What the consumer gets: an item, or how much it missed.
pub(crate) enum Received<T> {
    Item(T),
    Lagged { messages: u64, bytes: u64 },
}

/// The consumer's end.
pub(crate) struct InboxReceiver<T> {
    rx: mpsc::UnboundedReceiver<(T, usize)>,
    counters: Arc<Counters>,
}

impl<T> InboxReceiver<T> {
    /// The next item; a `Lagged` comes first when messages were dropped
    /// since the last one.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Received<T>>> {
        let c = &self.counters;
        let lagged = c.lag_messages.swap(0, Ordering::Relaxed);
        if lagged > 0 {
            let bytes = c.lag_bytes.swap(0, Ordering::Relaxed);
            return Poll::Ready(Some(Received::Lagged {
                messages: lagged,
                bytes,
            }));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some((item, size))) => {
                c.queued.fetch_sub(1, Ordering::Relaxed);
                c.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                Poll::Ready(Some(Received::Item(item)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Messages dropped over the queue's life.
    pub(crate) fn missed(&self) -> u64 {
        self.counters.missed.load(Ordering::Relaxed)
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Bytes of messages waiting.
    pub(crate) fn bytes(&self) -> usize {
        self.counters.queued_bytes.load(Ordering::Relaxed)
    }
}
