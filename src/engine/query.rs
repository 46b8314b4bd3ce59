//! Read-only views: one topic, every topic, rooms, routing, and counts by phase.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::ids::{Holder, JoinRef, RoomId, TopicId, TopicRef};
use crate::engine::output::FailReason;
use crate::engine::phase::Phase;
use crate::engine::store::{Status, TopicEntry};
use crate::engine::Engine;

/// Where a topic stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TopicStatus {
    /// An incarnation exists, in this phase.
    Live {
        /// The incarnation.
        join_ref: JoinRef,
        /// Its phase.
        phase: Phase,
    },
    /// Waiting to retry after a failure.
    Retrying,
    /// Waiting for the socket.
    Offline,
    /// Gave up with this error; subscribe again (or reconnect) to retry.
    Failed(FailReason),
}

impl TopicStatus {
    pub(crate) fn of(status: &Status) -> TopicStatus {
        match *status {
            Status::Live { join_ref, phase } => TopicStatus::Live { join_ref, phase },
            Status::Backoff => TopicStatus::Retrying,
            Status::Offline => TopicStatus::Offline,
            Status::Failed(r) => TopicStatus::Failed(r),
        }
    }

    /// The phase, when an incarnation exists.
    pub fn phase(&self) -> Option<Phase> {
        match self {
            TopicStatus::Live { phase, .. } => Some(*phase),
            _ => None,
        }
    }

    /// The incarnation, when one exists.
    pub fn join_ref(&self) -> Option<JoinRef> {
        match self {
            TopicStatus::Live { join_ref, .. } => Some(*join_ref),
            _ => None,
        }
    }
}

/// Where an inbound channel message goes ([`Engine::route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// To the subscribers (and resources) of the current, active incarnation.
    Deliver {
        /// The topic.
        topic: TopicId,
        /// The incarnation it belongs to.
        join_ref: JoinRef,
    },
    /// To the current incarnation's resources only: it is not active.
    ResourcesOnly {
        /// The topic.
        topic: TopicId,
        /// The incarnation it belongs to.
        join_ref: JoinRef,
    },
    /// Nowhere: no current incarnation it belongs to.
    Drop,
}

/// A view of one topic.
#[derive(Clone, Debug)]
pub struct TopicInfo<'a> {
    /// The topic's handle.
    pub id: TopicId,
    /// The topic.
    pub topic: &'a str,
    /// Where it stands.
    pub status: TopicStatus,
    /// Joins in a row that have not reached active.
    pub attempts: u8,
    /// The armed timer's deadline, if any.
    pub deadline: Option<Instant>,
    /// The join params (JSON object text; `None` for `{}`).
    pub params: Option<&'a Arc<str>>,
    entry: &'a TopicEntry,
}

impl<'a> TopicInfo<'a> {
    /// Who holds it, in canonical order.
    pub fn holders(&self) -> impl Iterator<Item = Holder> + 'a {
        self.entry.holders()
    }

    /// How many hold it.
    pub fn holder_count(&self) -> usize {
        self.entry.holders.len()
    }
}

impl PartialEq for TopicInfo<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.topic == other.topic
            && self.status == other.status
            && self.attempts == other.attempts
            && self.deadline == other.deadline
            && self.params == other.params
            && self.entry.holders == other.entry.holders
    }
}

/// What a room shows and waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomInfo<'a> {
    /// The topic shown (none before the first switch completes).
    pub shown: Option<&'a str>,
    /// The topic being switched to.
    pub pending: Option<&'a str>,
    /// The shown topic's handle.
    pub shown_id: Option<TopicId>,
    /// The pending topic's handle.
    pub pending_id: Option<TopicId>,
}

/// Counts for dashboards and leak checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Topics managed.
    pub topics: usize,
    /// Incarnations connecting.
    pub connecting: usize,
    /// Incarnations settling.
    pub settling: usize,
    /// Incarnations active.
    pub active: usize,
    /// Incarnations draining.
    pub draining: usize,
    /// Topics waiting to retry.
    pub retrying: usize,
    /// Topics waiting for the socket.
    pub offline: usize,
    /// Topics reported failed.
    pub failed: usize,
    /// Holders over all topics.
    pub holders: usize,
    /// Rooms.
    pub rooms: usize,
    /// Armed timers.
    pub timers: usize,
    /// Outputs not yet polled.
    pub queued_outputs: usize,
}

impl Stats {
    /// Whether nothing at all is left: no topic, room, timer or queued output.
    pub fn is_empty(&self) -> bool {
        *self == Stats::default()
    }
}

impl Engine {
    /// One topic, if the registry manages it.
    pub fn topic<'a>(&self, topic: impl Into<TopicRef<'a>>) -> Option<TopicInfo<'_>> {
        self.locate(topic.into()).map(|idx| self.info(idx))
    }

    /// The handle of a managed topic.
    pub fn topic_id(&self, topic: &str) -> Option<TopicId> {
        self.store.find(topic).map(|idx| self.store.id(idx))
    }

    /// The name of a topic: a managed one, or one removed by an input whose
    /// outputs have not all been polled yet (so a driver can always name the
    /// topic of an output it holds). `None` for an older handle.
    pub fn topic_name(&self, topic: TopicId) -> Option<&str> {
        self.store.name_of(topic)
    }

    /// The join params of a managed topic (JSON object text; `None` for `{}`).
    pub fn params<'a>(&self, topic: impl Into<TopicRef<'a>>) -> Option<&Arc<str>> {
        let idx = self.locate(topic.into())?;
        self.store.params.get(self.store.get(idx).params)
    }

    /// Every topic, in no particular order.
    pub fn topics(&self) -> impl Iterator<Item = TopicInfo<'_>> + '_ {
        self.store.iter().map(|(idx, _)| self.info(idx))
    }

    /// The current incarnation of `topic` when it is active: the only join_ref
    /// a push may be stamped with, and the only one whose messages reach
    /// subscribers.
    pub fn active_join_ref<'a>(&self, topic: impl Into<TopicRef<'a>>) -> Option<JoinRef> {
        let entry = self.store.get(self.locate(topic.into())?);
        match entry.status {
            Status::Live {
                join_ref,
                phase: Phase::Active,
            } => Some(join_ref),
            _ => None,
        }
    }

    /// Where a message from the server for `topic`, stamped with `join_ref`
    /// (`None` for broadcasts), goes: to subscribers only when the topic is
    /// active and the message belongs to its current incarnation (or is a
    /// broadcast); to the incarnation's resources alone while it is joining,
    /// settling or draining (settling waits for exactly such a first sync);
    /// nowhere otherwise (cross-talk from an old incarnation).
    pub fn route<'a>(&self, topic: impl Into<TopicRef<'a>>, join_ref: Option<JoinRef>) -> Route {
        let Some(idx) = self.locate(topic.into()) else {
            return Route::Drop;
        };
        match self.store.get(idx).status {
            Status::Live {
                join_ref: current,
                phase,
            } if join_ref.is_none_or(|r| r == current) => {
                let topic = self.store.id(idx);
                match phase {
                    Phase::Active => Route::Deliver {
                        topic,
                        join_ref: current,
                    },
                    _ => Route::ResourcesOnly {
                        topic,
                        join_ref: current,
                    },
                }
            }
            _ => Route::Drop,
        }
    }

    /// Whether a message for `topic` stamped with `join_ref` reaches
    /// subscribers (see [`Engine::route`]).
    pub fn accepts<'a>(&self, topic: impl Into<TopicRef<'a>>, join_ref: Option<JoinRef>) -> bool {
        matches!(self.route(topic, join_ref), Route::Deliver { .. })
    }

    /// The current incarnation of `topic`, in whatever phase.
    pub fn current_join_ref<'a>(&self, topic: impl Into<TopicRef<'a>>) -> Option<JoinRef> {
        self.store.get(self.locate(topic.into())?).join_ref()
    }

    /// A room, if it exists.
    pub fn room(&self, room: RoomId) -> Option<RoomInfo<'_>> {
        self.rooms.get(&room).map(|r| RoomInfo {
            shown: r.shown.and_then(|t| self.store.name_of(t)),
            pending: r.pending.and_then(|t| self.store.name_of(t)),
            shown_id: r.shown,
            pending_id: r.pending,
        })
    }

    /// Every room id, in order.
    pub fn room_ids(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.rooms.keys().copied()
    }

    /// Counts by phase and status.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            topics: self.store.len(),
            rooms: self.rooms.len(),
            timers: self.store.timer_count(),
            queued_outputs: self.outputs.len(),
            ..Stats::default()
        };
        for (_, e) in self.store.iter() {
            s.holders += e.holders.len();
            match e.status {
                Status::Live { phase, .. } => match phase {
                    Phase::Connecting => s.connecting += 1,
                    Phase::Settling => s.settling += 1,
                    Phase::Active => s.active += 1,
                    Phase::Draining => s.draining += 1,
                    Phase::Destroyed => {}
                },
                Status::Backoff => s.retrying += 1,
                Status::Offline => s.offline += 1,
                Status::Failed(_) => s.failed += 1,
            }
        }
        s
    }

    fn info(&self, idx: u32) -> TopicInfo<'_> {
        let e = self.store.get(idx);
        TopicInfo {
            id: self.store.id(idx),
            topic: e.name(),
            status: TopicStatus::of(&e.status),
            attempts: e.attempts,
            deadline: e.deadline().map(|at| self.instant(at)),
            params: self.store.params.get(e.params),
            entry: e,
        }
    }
}
