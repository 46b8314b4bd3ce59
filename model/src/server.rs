//! One WebSocket and a Phoenix server behind it, following the rules observed
//! on a real Phoenix 1.7 server (DESIGN §6).
//!
//! Frames travel in two FIFO queues, one per direction, as on one TCP
//! connection. Rules:
//! - one channel per topic per socket;
//! - `phx_join` for a topic that already has a channel is a **duplicate
//!   join**: the old channel is killed and the new join runs; the new join's
//!   reply goes out first, then `phx_close` for the **old** join_ref (as
//!   observed);
//! - `phx_leave` → ok reply, then `phx_close` for that join_ref; but a leave
//!   immediately followed by a join of the same topic is never answered (as
//!   observed: 0 of 50), the join then closes the old channel as a duplicate;
//! - a non-join frame whose join_ref is not the topic's channel is dropped
//!   with no reply (recent Phoenix);
//! - a join may be rejected (error reply, no channel); a join of a topic the
//!   server does not route always is ("unmatched topic");
//! - after a join ok the channel may send a push stamped with its join_ref and
//!   a broadcast with a null join_ref;
//! - a crash sends `phx_error`, a server-side stop `phx_close`;
//! - a socket drop loses every frame in flight and every channel.
//!
//! # What is deterministic, and why nothing is lost
//!
//! The server takes a frame **as soon as it is sent**, except a `phx_leave`,
//! which waits in the queue (and holds up whatever is sent after it) until the
//! model lets the server take it. The client cannot observe when the server
//! takes a frame, only what comes back, in order; so taking it later differs
//! only where the server's answer depends on what else happened meanwhile:
//! - on what is queued behind it: that is the leave-then-join rule above, and
//!   is why a leave waits;
//! - on a crash or stop in between: a crash of another channel can equally be
//!   placed before the frame was sent (the channel already existed then, and
//!   the crash's frame is not delivered before the client sends anyway), so
//!   every order of answers the client can see is still produced;
//! - on the server's choice to reject a join: made later, as a fault that turns
//!   the not yet delivered ok reply (and the channel's messages) into an error
//!   reply — the client sees exactly what a rejection at the time would send.
//!
//! Leave replies are not modelled as frames: the engine has no input for them
//! (a leave is fire-and-forget for the registry), so delivering one could
//! change nothing but the queue, and leaving them out removes interleavings
//! that cannot matter.

use std::collections::VecDeque;

use channel_registry::engine::JoinRef;

/// A topic, as an index into the model's topic names.
pub type TopicIdx = u8;

/// A frame from the client to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientFrame {
    /// `phx_join` with `ref = join_ref`.
    Join {
        /// Topic.
        topic: TopicIdx,
        /// The new incarnation.
        join_ref: JoinRef,
    },
    /// `phx_leave` of an incarnation.
    Leave {
        /// Topic.
        topic: TopicIdx,
        /// The incarnation left.
        join_ref: JoinRef,
    },
    /// An application push stamped with a join_ref.
    Push {
        /// Topic.
        topic: TopicIdx,
        /// The join_ref it carries.
        join_ref: JoinRef,
    },
}

/// A frame from the server to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerFrame {
    /// The reply to a join.
    JoinReply {
        /// Topic.
        topic: TopicIdx,
        /// The join it answers.
        join_ref: JoinRef,
        /// `"ok"` or `"error"`.
        ok: bool,
    },
    /// `phx_close` for a join_ref.
    Close {
        /// Topic.
        topic: TopicIdx,
        /// The channel closed.
        join_ref: JoinRef,
        /// Ghost: sent because a duplicate join replaced the channel.
        duplicate: bool,
    },
    /// `phx_error` (the channel crashed).
    Error {
        /// Topic.
        topic: TopicIdx,
        /// The channel that crashed.
        join_ref: JoinRef,
    },
    /// A channel push `[join_ref, null, topic, event, payload]`.
    Push {
        /// Topic.
        topic: TopicIdx,
        /// The sending channel's join_ref, on the wire.
        join_ref: JoinRef,
    },
    /// A broadcast `[null, null, topic, event, payload]`.
    Broadcast {
        /// Topic.
        topic: TopicIdx,
        /// Ghost: the channel that sent it (not on the wire).
        sender: JoinRef,
    },
}

/// A duplicate join: the server replaced channel `old` of `topic`. The
/// harness checks the engine had already given that incarnation up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// Topic.
    pub topic: TopicIdx,
    /// The channel killed.
    pub old: JoinRef,
}

/// The socket's two queues and the server's channels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Net {
    /// Client → server, in order.
    pub c2s: VecDeque<ClientFrame>,
    /// Server → client, in order.
    pub s2c: VecDeque<ServerFrame>,
    /// The server's channel per topic (its join_ref).
    pub channels: Vec<Option<JoinRef>>,
    /// A topic the server does not route: its joins are rejected.
    pub unrouted: Option<TopicIdx>,
}

impl Net {
    /// An idle socket to a server with no channel.
    pub fn new(topics: usize, unrouted: Option<TopicIdx>) -> Net {
        Net {
            c2s: VecDeque::new(),
            s2c: VecDeque::new(),
            channels: vec![None; topics],
            unrouted,
        }
    }

    /// Whether no frame is in flight.
    pub fn idle(&self) -> bool {
        self.c2s.is_empty() && self.s2c.is_empty()
    }

    /// The client sends a frame; the server takes it at once unless a leave
    /// waits ahead of it. Returns the duplicate join it caused, if any.
    pub fn send(&mut self, frame: ClientFrame, messages: bool) -> Option<Duplicate> {
        if !self.c2s.is_empty() || matches!(frame, ClientFrame::Leave { .. }) {
            self.c2s.push_back(frame);
            return None;
        }
        self.take(frame, messages)
    }

    /// The server takes the leave at the head of its queue and then every
    /// frame behind it up to the next leave. Returns the duplicate joins.
    pub fn take_leave(&mut self, messages: bool) -> Vec<Duplicate> {
        let mut served = Vec::new();
        let Some(frame) = self.c2s.pop_front() else {
            return served;
        };
        served.extend(self.take(frame, messages));
        while let Some(&frame) = self.c2s.front() {
            if matches!(frame, ClientFrame::Leave { .. }) {
                break;
            }
            self.c2s.pop_front();
            served.extend(self.take(frame, messages));
        }
        served
    }

    fn take(&mut self, frame: ClientFrame, messages: bool) -> Option<Duplicate> {
        match frame {
            ClientFrame::Join { topic, join_ref } if self.unrouted == Some(topic) => {
                // "unmatched topic": an error reply, no channel.
                self.s2c.push_back(ServerFrame::JoinReply {
                    topic,
                    join_ref,
                    ok: false,
                });
                None
            }
            ClientFrame::Join { topic, join_ref } => {
                let old = self.channels[topic as usize].replace(join_ref);
                self.s2c.push_back(ServerFrame::JoinReply {
                    topic,
                    join_ref,
                    ok: true,
                });
                if messages {
                    self.s2c.push_back(ServerFrame::Push { topic, join_ref });
                    self.s2c.push_back(ServerFrame::Broadcast {
                        topic,
                        sender: join_ref,
                    });
                }
                let old = old?;
                self.s2c.push_back(ServerFrame::Close {
                    topic,
                    join_ref: old,
                    duplicate: true,
                });
                Some(Duplicate { topic, old })
            }
            ClientFrame::Leave { topic, join_ref } => {
                if self.channels[topic as usize] != Some(join_ref) {
                    return None;
                }
                let rejoin_next = matches!(self.c2s.front(), Some(ClientFrame::Join { topic: t, .. }) if *t == topic);
                if !rejoin_next {
                    self.channels[topic as usize] = None;
                    self.s2c.push_back(ServerFrame::Close {
                        topic,
                        join_ref,
                        duplicate: false,
                    });
                }
                None
            }
            // Handled by the channel, or dropped as stale: either way nothing
            // comes back that the registry sees.
            ClientFrame::Push { .. } => None,
        }
    }

    /// Whether the join of `topic`'s channel can still be rejected: its ok
    /// reply is not delivered yet and nothing else ended the channel.
    pub fn can_reject(&self, topic: TopicIdx) -> bool {
        let Some(channel) = self.channels[topic as usize] else {
            return false;
        };
        self.s2c.iter().any(
            |f| matches!(*f, ServerFrame::JoinReply { topic: t, join_ref, ok: true } if t == topic && join_ref == channel),
        )
    }

    /// The server rejects the join of `topic`'s channel (see the module docs).
    pub fn reject(&mut self, topic: TopicIdx) {
        let Some(channel) = self.channels[topic as usize].take() else {
            return;
        };
        self.s2c.retain(|f| match *f {
            ServerFrame::Push { topic: t, join_ref } => !(t == topic && join_ref == channel),
            ServerFrame::Broadcast { topic: t, sender } => !(t == topic && sender == channel),
            _ => true,
        });
        for f in self.s2c.iter_mut() {
            if let ServerFrame::JoinReply {
                topic: t,
                join_ref,
                ok,
            } = f
            {
                if *t == topic && *join_ref == channel {
                    *ok = false;
                }
            }
        }
    }

    /// The channel of `topic` crashes.
    pub fn crash(&mut self, topic: TopicIdx) {
        if let Some(join_ref) = self.channels[topic as usize].take() {
            self.s2c.push_back(ServerFrame::Error { topic, join_ref });
        }
    }

    /// The server stops the channel of `topic`.
    pub fn stop(&mut self, topic: TopicIdx) {
        if let Some(join_ref) = self.channels[topic as usize].take() {
            self.s2c.push_back(ServerFrame::Close {
                topic,
                join_ref,
                duplicate: false,
            });
        }
    }

    /// The socket drops: frames in flight and channels are gone.
    pub fn drop_socket(&mut self) {
        self.c2s.clear();
        self.s2c.clear();
        self.channels.iter_mut().for_each(|c| *c = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u64) -> JoinRef {
        JoinRef::new(n).unwrap()
    }

    #[test]
    fn a_leave_immediately_followed_by_a_join_is_answered_as_a_duplicate_join() {
        let mut net = Net::new(1, None);
        assert_eq!(
            net.send(
                ClientFrame::Join {
                    topic: 0,
                    join_ref: r(1)
                },
                false
            ),
            None
        );
        net.s2c.clear();
        assert_eq!(
            net.send(
                ClientFrame::Leave {
                    topic: 0,
                    join_ref: r(1)
                },
                false
            ),
            None
        );
        assert_eq!(
            net.send(
                ClientFrame::Join {
                    topic: 0,
                    join_ref: r(2)
                },
                false
            ),
            None
        );
        assert_eq!(
            net.take_leave(false),
            vec![Duplicate {
                topic: 0,
                old: r(1)
            }]
        );
        // The new join's reply first, then the old channel's close; no leave reply.
        assert_eq!(
            net.s2c,
            [
                ServerFrame::JoinReply {
                    topic: 0,
                    join_ref: r(2),
                    ok: true
                },
                ServerFrame::Close {
                    topic: 0,
                    join_ref: r(1),
                    duplicate: true
                },
            ]
        );
        assert_eq!(net.channels, [Some(r(2))]);
    }

    #[test]
    fn a_leave_on_its_own_closes_the_channel() {
        let mut net = Net::new(1, None);
        net.send(
            ClientFrame::Join {
                topic: 0,
                join_ref: r(1),
            },
            true,
        );
        net.s2c.clear();
        net.send(
            ClientFrame::Leave {
                topic: 0,
                join_ref: r(1),
            },
            true,
        );
        assert!(net.take_leave(true).is_empty());
        assert_eq!(
            net.s2c,
            [ServerFrame::Close {
                topic: 0,
                join_ref: r(1),
                duplicate: false
            }]
        );
        assert_eq!(net.channels, [None]);
    }

    #[test]
    fn frames_with_a_stale_join_ref_get_no_reply() {
        let mut net = Net::new(1, None);
        net.send(
            ClientFrame::Join {
                topic: 0,
                join_ref: r(2),
            },
            false,
        );
        net.s2c.clear();
        net.send(
            ClientFrame::Push {
                topic: 0,
                join_ref: r(1),
            },
            false,
        );
        net.send(
            ClientFrame::Leave {
                topic: 0,
                join_ref: r(1),
            },
            false,
        );
        net.take_leave(false);
        assert!(net.s2c.is_empty());
        assert_eq!(net.channels, [Some(r(2))]);
    }

    #[test]
    fn a_rejection_replaces_the_undelivered_ok_and_the_channel_messages() {
        let mut net = Net::new(2, None);
        net.send(
            ClientFrame::Join {
                topic: 0,
                join_ref: r(1),
            },
            true,
        );
        net.send(
            ClientFrame::Join {
                topic: 1,
                join_ref: r(2),
            },
            true,
        );
        assert!(net.can_reject(0));
        net.reject(0);
        assert!(!net.can_reject(0));
        assert_eq!(net.channels, [None, Some(r(2))]);
        assert_eq!(
            net.s2c[0],
            ServerFrame::JoinReply {
                topic: 0,
                join_ref: r(1),
                ok: false
            }
        );
        assert!(net.s2c.iter().skip(1).all(|f| !matches!(
            f,
            ServerFrame::Push { topic: 0, .. } | ServerFrame::Broadcast { topic: 0, .. }
        )));
        assert_eq!(net.s2c.len(), 4);
    }

    #[test]
    fn an_unrouted_topic_is_rejected() {
        let mut net = Net::new(1, Some(0));
        net.send(
            ClientFrame::Join {
                topic: 0,
                join_ref: r(1),
            },
            true,
        );
        assert_eq!(
            net.s2c,
            [ServerFrame::JoinReply {
                topic: 0,
                join_ref: r(1),
                ok: false
            }]
        );
        assert_eq!(net.channels, [None]);
    }

    #[test]
    fn crash_stop_and_drop() {
        let mut net = Net::new(2, None);
        net.send(
            ClientFrame::Join {
                topic: 0,
                join_ref: r(1),
            },
            false,
        );
        net.send(
            ClientFrame::Join {
                topic: 1,
                join_ref: r(2),
            },
            false,
        );
        net.s2c.clear();
        net.crash(0);
        net.stop(1);
        assert_eq!(
            net.s2c,
            [
                ServerFrame::Error {
                    topic: 0,
                    join_ref: r(1)
                },
                ServerFrame::Close {
                    topic: 1,
                    join_ref: r(2),
                    duplicate: false
                },
            ]
        );
        net.send(
            ClientFrame::Leave {
                topic: 0,
                join_ref: r(1),
            },
            false,
        );
        net.drop_socket();
        assert!(net.idle() && net.channels.iter().all(Option::is_none));
    }
}
