//! Pushes: the per-topic buffer where they wait while their channel is not
//! active, the replies they wait for once sent, and their deadlines.
//!
//! Which join_ref a push is stamped with, and when a buffer is flushed, is
//! the engine's answer ([`Engine::active_join_ref`](crate::engine::Engine::active_join_ref)):
//! this module only keeps the books.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::engine::JoinRef;
use crate::phoenix::client::config::OverflowPolicy;
use crate::phoenix::client::error::PushError;
use crate::phoenix::codec::{Message, Payload, Reply, ReplyStatus};

/// Where a push's outcome goes.
pub(crate) type ReplySender = oneshot::Sender<Result<Reply, PushError>>;

/// A push as the application made it.
pub(crate) struct NewPush {
    pub(crate) event: String,
    pub(crate) payload: Payload,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) reply: ReplySender,
}

struct Pending {
    topic: Arc<str>,
    event: String,
    /// `None` once sent.
    payload: Option<Payload>,
    sent_on: Option<JoinRef>,
    timeout: Duration,
    reply: ReplySender,
}

#[derive(Default)]
struct TopicPushes {
    buffer: VecDeque<u64>,
    in_flight: Vec<u64>,
}

impl TopicPushes {
    fn is_empty(&self) -> bool {
        self.buffer.is_empty() && self.in_flight.is_empty()
    }
}

/// Every push not yet answered, by ref.
#[derive(Default)]
pub(crate) struct PushBook {
    pending: HashMap<u64, Pending>,
    topics: HashMap<Arc<str>, TopicPushes>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl PushBook {
    /// Records `push` as sent now on `join_ref`; returns the message to send.
    pub(crate) fn send(
        &mut self,
        msg_ref: u64,
        topic: Arc<str>,
        push: NewPush,
        join_ref: JoinRef,
    ) -> Message {
        let message = Message::push(
            join_ref.to_string(),
            msg_ref.to_string(),
            &*topic,
            push.event.as_str(),
            push.payload,
        );
        self.deadlines.push(Reverse((push.deadline, msg_ref)));
        self.topics
            .entry(Arc::clone(&topic))
            .or_default()
            .in_flight
            .push(msg_ref);
        self.pending.insert(
            msg_ref,
            Pending {
                topic,
                event: push.event,
                payload: None,
                sent_on: Some(join_ref),
                timeout: push.timeout,
                reply: push.reply,
            },
        );
        message
    }

    /// Buffers `push` until its topic is active, applying the overflow policy.
    pub(crate) fn buffer(
        &mut self,
        msg_ref: u64,
        topic: Arc<str>,
        push: NewPush,
        capacity: usize,
        policy: OverflowPolicy,
    ) {
        let overflow = |topic: &Arc<str>| PushError::BufferOverflow {
            topic: Arc::clone(topic),
            capacity,
            policy,
        };
        let queue = self.topics.entry(Arc::clone(&topic)).or_default();
        // Pushes whose caller gave up take no room.
        let pending = &mut self.pending;
        queue.buffer.retain(|r| {
            let cancelled = pending.get(r).is_none_or(|p| p.reply.is_closed());
            if cancelled {
                pending.remove(r);
            }
            !cancelled
        });
        if queue.buffer.len() >= capacity {
            match policy {
                OverflowPolicy::DropOldest if capacity > 0 => {
                    if let Some(oldest) = queue.buffer.pop_front() {
                        if let Some(p) = self.pending.remove(&oldest) {
                            let _ = p.reply.send(Err(overflow(&topic)));
                        }
                    }
                }
                _ => {
                    let _ = push.reply.send(Err(overflow(&topic)));
                    if queue.is_empty() {
                        self.topics.remove(&topic);
                    }
                    return;
                }
            }
        }
        queue.buffer.push_back(msg_ref);
        self.deadlines.push(Reverse((push.deadline, msg_ref)));
        self.pending.insert(
            msg_ref,
            Pending {
                topic,
                event: push.event,
                payload: Some(push.payload),
                sent_on: None,
                timeout: push.timeout,
                reply: push.reply,
            },
        );
    }

    /// Whether pushes wait in the buffer of `topic`.
    pub(crate) fn has_buffered(&self, topic: &str) -> bool {
        self.topics.get(topic).is_some_and(|q| !q.buffer.is_empty())
    }

    /// Moves the buffered pushes of `topic` to in flight on `join_ref`, in
    /// order; returns `(ref, message)` pairs to send. Cancelled pushes are
    /// dropped unsent.
    pub(crate) fn flush(&mut self, topic: &str, join_ref: JoinRef) -> Vec<(u64, Message)> {
        let Some(queue) = self.topics.get_mut(topic) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(queue.buffer.len());
        for msg_ref in std::mem::take(&mut queue.buffer) {
            let Some(p) = self.pending.get_mut(&msg_ref) else {
                continue;
            };
            if p.reply.is_closed() {
                self.pending.remove(&msg_ref);
                continue;
            }
            let Some(payload) = p.payload.take() else {
                continue;
            };
            p.sent_on = Some(join_ref);
            queue.in_flight.push(msg_ref);
            out.push((
                msg_ref,
                Message::push(
                    join_ref.to_string(),
                    msg_ref.to_string(),
                    &*p.topic,
                    p.event.as_str(),
                    payload,
                ),
            ));
        }
        if queue.is_empty() {
            self.topics.remove(topic);
        }
        out
    }

    /// Delivers a reply to the push with its ref. Returns false when no push
    /// waits for that ref (a leave reply, or a push already timed out).
    pub(crate) fn resolve(&mut self, msg_ref: u64, reply: Reply) -> bool {
        let Some(p) = self.pending.get(&msg_ref) else {
            return false;
        };
        if p.sent_on.is_none() || *p.topic != *reply.topic {
            return false;
        }
        let p = self.take(msg_ref).expect("present");
        let outcome = match reply.status {
            ReplyStatus::Error => Err(PushError::Rejected {
                response: reply.response,
            }),
            _ => Ok(reply),
        };
        let _ = p.reply.send(outcome);
        true
    }

    /// Fails one push.
    pub(crate) fn fail(&mut self, msg_ref: u64, error: PushError) {
        if let Some(p) = self.take(msg_ref) {
            let _ = p.reply.send(Err(error));
        }
    }

    /// Fails every buffered push of `topic`.
    pub(crate) fn fail_buffered(&mut self, topic: &str, error: impl Fn() -> PushError) {
        let Some(queue) = self.topics.get_mut(topic) else {
            return;
        };
        for msg_ref in std::mem::take(&mut queue.buffer) {
            if let Some(p) = self.pending.remove(&msg_ref) {
                let _ = p.reply.send(Err(error()));
            }
        }
        if queue.is_empty() {
            self.topics.remove(topic);
        }
    }

    /// Fails every push of `topic` in flight on `join_ref` (the incarnation is
    /// gone, so no reply can come).
    pub(crate) fn fail_in_flight(&mut self, topic: &str, join_ref: JoinRef, error: PushError) {
        let Some(queue) = self.topics.get_mut(topic) else {
            return;
        };
        let pending = &mut self.pending;
        queue.in_flight.retain(|r| {
            let lost = pending.get(r).is_none_or(|p| p.sent_on == Some(join_ref));
            if lost {
                if let Some(p) = pending.remove(r) {
                    let _ = p.reply.send(Err(error.clone()));
                }
            }
            !lost
        });
        if queue.is_empty() {
            self.topics.remove(topic);
        }
    }

    /// Fails every push whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, msg_ref))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(p) = self.take(msg_ref) {
                let _ = p.reply.send(Err(PushError::Timeout { after: p.timeout }));
            }
        }
    }

    /// The earliest deadline of a push still pending.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        // Deadlines of answered pushes stay in the heap until they come up;
        // rebuild it when they outnumber the live ones.
        if self.deadlines.len() > 64 && self.deadlines.len() > 4 * self.pending.len() {
            let pending = &self.pending;
            self.deadlines
                .retain(|Reverse((_, msg_ref))| pending.contains_key(msg_ref));
        }
        while let Some(Reverse((at, msg_ref))) = self.deadlines.peek() {
            if self.pending.contains_key(msg_ref) {
                return Some(*at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Fails every push.
    pub(crate) fn fail_all(&mut self, error: PushError) {
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(error.clone()));
        }
        self.topics.clear();
        self.deadlines.clear();
    }

    /// `(buffered, in flight)` counts.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let in_flight = self
            .pending
            .values()
            .filter(|p| p.sent_on.is_some())
            .count();
        (self.pending.len() - in_flight, in_flight)
    }

    fn take(&mut self, msg_ref: u64) -> Option<Pending> {
        let p = self.pending.remove(&msg_ref)?;
        if let Some(queue) = self.topics.get_mut(&*p.topic) {
            if p.sent_on.is_some() {
                queue.in_flight.retain(|r| *r != msg_ref);
            } else {
                queue.buffer.retain(|r| *r != msg_ref);
            }
            if queue.is_empty() {
                self.topics.remove(&*p.topic);
            }
        }
        Some(p)
    }
}
