//! The session's observable contract, checked output by output from what the
//! driver knows: which frames the session sent, which frames it was told,
//! and which server incarnation sent each of them. Nothing here reads the
//! session's internals.
//!
//! - a push frame carries the join_ref of the topic's last join sent on this
//!   connection, after its ok reply was delivered, before any
//!   `phx_close`/`phx_error` of it was delivered and before its leave;
//! - join refs are fresh, leaves name a join sent for the topic;
//! - every push gets exactly one outcome, refused pushes and casts none;
//! - subscription events follow the grammar (`Joined` only while the
//!   incarnation is joined on the server and known joined, `Lost` only after
//!   `Joined`, `Failed` right before `Closed{TopicFailed}`, nothing after
//!   `Closed`);
//! - messages reach only subscriptions and rooms of the incarnation that sent
//!   them, on that exact topic.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, HashSet};

use channel_registry::codec::Message;
use channel_registry::engine::{JoinRef, RoomId, SubscriberId};
use channel_registry::session::{
    CloseReason, Event, Output, PushId, Recipient, RoomEvent, SubscriptionEvent,
};
use serde_json::Value;

use super::server::{Server, Source};

/// Where a subscription stands in its event grammar.
#[derive(Clone, Debug, PartialEq)]
pub enum SubTrack {
    /// Not joined (yet, or since it was lost); `joined_before` says whether a
    /// `Joined` came earlier.
    Waiting { joined_before: bool },
    /// Joined on this incarnation.
    Joined { join_ref: JoinRef },
    /// `Failed` came: `Closed{TopicFailed}` must follow at once.
    Failed,
    /// Ended; nothing more may come.
    Closed(CloseReason),
}

/// One subscription as the contract follows it.
#[derive(Clone, Debug)]
pub struct SubInfo {
    pub topic: String,
    pub state: SubTrack,
    /// Every event it got, in order.
    pub events: Vec<SubscriptionEvent>,
}

/// One room as the contract follows it.
#[derive(Clone, Debug, Default)]
pub struct RoomInfo {
    /// The topic shown and its incarnation, once a switch completed.
    pub shown: Option<(String, JoinRef)>,
    /// Whether the shown incarnation is joined.
    pub live: bool,
    pub closed: Option<CloseReason>,
    pub events: Vec<RoomEvent>,
}

/// What the contract knows of one push.
#[derive(Clone, Debug, Default)]
pub struct PushInfo {
    pub accepted: bool,
    pub outcomes: Vec<Result<(), String>>,
}

/// The contract tracker. Feed it every client frame the session sent, every
/// server frame delivered to it, and every output it produced.
#[derive(Default)]
pub struct Contract {
    pub violations: Vec<String>,
    pub subs: BTreeMap<SubscriberId, SubInfo>,
    pub rooms: BTreeMap<RoomId, RoomInfo>,
    pub pushes: BTreeMap<PushId, PushInfo>,
    /// Per topic, the last join sent: (connection, join_ref).
    last_join: HashMap<String, (u64, String)>,
    /// Join refs sent, with their topics.
    joins: HashMap<String, String>,
    /// (topic, join_ref) whose ok reply was delivered.
    told_ok: HashSet<(String, String)>,
    /// (topic, join_ref) whose `phx_close`/`phx_error` was delivered.
    told_end: HashSet<(String, String)>,
    /// (topic, join_ref) the session sent a leave for.
    left: HashSet<(String, String)>,
    /// The frame being delivered, while its outputs are polled.
    pub delivering: Option<Source>,
    /// The event that settles an incarnation, when topics settle: a push
    /// frame may then go out before that event only if it is marked as part
    /// of the settling handshake by `"settling": true` in its payload.
    pub settle_event: Option<String>,
    /// (topic, join_ref) whose settle event was delivered.
    told_settled: HashSet<(String, String)>,
}

impl Contract {
    fn violation(&mut self, message: String) {
        self.violations.push(message);
    }

    /// A subscription was made (with a fresh or reused id).
    pub fn subscribed(&mut self, id: SubscriberId, topic: &str) {
        self.subs.insert(
            id,
            SubInfo {
                topic: topic.to_owned(),
                state: SubTrack::Waiting {
                    joined_before: false,
                },
                events: Vec::new(),
            },
        );
    }

    pub fn room_opened(&mut self, id: RoomId) {
        self.rooms.insert(id, RoomInfo::default());
    }

    /// A push or its refusal.
    pub fn pushed(&mut self, id: PushId, accepted: bool) {
        let info = self.pushes.entry(id).or_default();
        if accepted && info.accepted && info.outcomes.is_empty() {
            self.violations
                .push(format!("push id {id:?} accepted twice while in use"));
        }
        if accepted {
            *info = PushInfo {
                accepted: true,
                outcomes: Vec::new(),
            };
        }
    }

    /// The session sent this frame on connection `conn`.
    pub fn on_transmit(&mut self, conn: u64, m: &Message) {
        let topic = m.topic.clone();
        let join_ref = m.join_ref.clone().unwrap_or_default();
        match m.event.as_str() {
            "heartbeat" if topic == "phoenix" => {
                if m.join_ref.is_some() {
                    self.violation(format!("heartbeat with a join_ref: {m:?}"));
                }
            }
            "phx_join" => {
                if m.msg_ref.as_deref() != Some(join_ref.as_str()) {
                    self.violation(format!("join whose ref is not its join_ref: {m:?}"));
                }
                if self.joins.insert(join_ref.clone(), topic.clone()).is_some() {
                    self.violation(format!("join_ref {join_ref} reused: {m:?}"));
                }
                self.last_join.insert(topic, (conn, join_ref));
            }
            "phx_leave" => {
                if self.joins.get(&join_ref) != Some(&topic) {
                    self.violation(format!("leave of an incarnation never joined: {m:?}"));
                }
                self.left.insert((topic, join_ref));
            }
            _ => {
                let key = (topic.clone(), join_ref.clone());
                let last = self.last_join.get(&topic).cloned();
                let ok = last.as_ref() == Some(&(conn, join_ref.clone()))
                    && self.told_ok.contains(&key)
                    && !self.told_end.contains(&key)
                    && !self.left.contains(&key);
                let marked = m
                    .payload
                    .as_json()
                    .and_then(|p| p.get("settling"))
                    .and_then(Value::as_bool)
                    == Some(true);
                if self.settle_event.is_some() && !self.told_settled.contains(&key) && !marked {
                    self.violation(format!(
                        "push {:?} on {topic:?} went out before {join_ref} settled: {m:?}",
                        m.event
                    ));
                }
                if !ok {
                    let why = format!(
                        "last join {last:?} on connection {conn}, ok told {}, end told {}, left {}",
                        self.told_ok.contains(&key),
                        self.told_end.contains(&key),
                        self.left.contains(&key)
                    );
                    self.violation(format!(
                        "push {:?} on {topic:?} stamped {join_ref:?}: {why}",
                        m.event
                    ));
                }
            }
        }
    }

    /// A server frame is about to be handed to the session.
    pub fn on_deliver(&mut self, text: &str, source: &Source) {
        self.delivering = Some(source.clone());
        let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let field = |i: usize| parts.get(i).and_then(Value::as_str).map(str::to_owned);
        let (Some(topic), Some(event)) = (field(2), field(3)) else {
            return;
        };
        match event.as_str() {
            "phx_reply" => {
                let ok = parts
                    .get(4)
                    .and_then(|p| p.get("status"))
                    .and_then(Value::as_str)
                    == Some("ok");
                if let Some(msg_ref) = field(1) {
                    if ok && self.joins.get(&msg_ref) == Some(&topic) {
                        self.told_ok.insert((topic, msg_ref));
                    }
                }
            }
            "phx_close" | "phx_error" => {
                if let Some(join_ref) = field(0) {
                    self.told_end.insert((topic, join_ref));
                }
            }
            _ => {
                if self.settle_event.as_deref() == Some(event.as_str()) {
                    if let Source::Channel { topic, join_ref } = source {
                        self.told_settled.insert((topic.clone(), join_ref.clone()));
                    }
                }
            }
        }
    }

    /// The frame's outputs were all polled.
    pub fn delivered(&mut self) {
        self.delivering = None;
    }

    /// Whether the session may believe `(topic, join_ref)` is joined: its
    /// join is the topic's last on this connection, its ok reply was
    /// delivered, its end was not, and the server accepted it.
    fn joined_now(
        &self,
        conn: u64,
        topic: &str,
        join_ref: JoinRef,
        server: &Server,
    ) -> Result<(), String> {
        let jr = join_ref.to_string();
        let key = (topic.to_owned(), jr.clone());
        let last = self.last_join.get(topic);
        if last != Some(&(conn, jr.clone())) {
            return Err(format!(
                "the last join of {topic:?} is {last:?}, not {jr} on connection {conn}"
            ));
        }
        if !self.told_ok.contains(&key) {
            return Err(format!("no ok reply for {jr} on {topic:?} was delivered"));
        }
        if self.told_end.contains(&key) || self.left.contains(&key) {
            return Err(format!("{jr} on {topic:?} already ended"));
        }
        if !server.open || server.conn != conn || !server.accepted(topic, &jr) {
            return Err(format!(
                "the server never accepted {jr} on {topic:?} on connection {conn}"
            ));
        }
        Ok(())
    }

    /// Checks one output of the session.
    pub fn on_output(&mut self, conn: u64, output: &Output, server: &Server) {
        let Output::Event(event) = output else {
            return;
        };
        match event {
            Event::Subscription { id, event } => self.on_sub_event(conn, *id, event, server),
            Event::SubscriptionStatus { id, status } => match self.subs.get(id).map(|s| &s.state) {
                None => {
                    self.violation(format!("status {status:?} for unknown subscription {id:?}"))
                }
                Some(SubTrack::Closed(_)) => {
                    self.violation(format!("status {status:?} for {id:?} after Closed"))
                }
                Some(_) => {}
            },
            Event::Room { id, event } => self.on_room_event(conn, *id, event, server),
            Event::Message { message, to } => {
                let source = self.delivering.clone();
                let Some(Source::Channel { topic, join_ref }) = source else {
                    return self.violation(format!(
                        "message {message:?} delivered outside a channel frame ({source:?})"
                    ));
                };
                if **message.topic() != *topic {
                    self.violation(format!(
                        "message of {topic:?} delivered as {:?}",
                        message.topic()
                    ));
                }
                if let Some(stamp) = message.join_ref() {
                    if stamp.to_string() != join_ref {
                        self.violation(format!("message of {join_ref} delivered as {stamp}"));
                    }
                }
                for recipient in to {
                    match recipient {
                        Recipient::Subscription(id) => {
                            let info = self.subs.get(id);
                            let fine = info.is_some_and(|s| {
                                s.topic == topic
                                    && matches!(s.state, SubTrack::Joined { join_ref: j } if j.to_string() == join_ref)
                            });
                            if !fine {
                                let state = info.map(|s| (&s.topic, &s.state));
                                self.violations.push(format!(
                                    "message of {topic:?}/{join_ref} reached {id:?} in {state:?}"
                                ));
                            }
                        }
                        Recipient::Room(id) => {
                            let info = self.rooms.get(id);
                            let fine = info.is_some_and(|r| {
                                r.live
                                    && r.closed.is_none()
                                    && r.shown.as_ref().is_some_and(|(t, j)| {
                                        *t == topic && j.to_string() == join_ref
                                    })
                            });
                            if !fine {
                                let state = info.map(|r| (&r.shown, r.live, &r.closed));
                                self.violations.push(format!(
                                    "message of {topic:?}/{join_ref} reached {id:?} in {state:?}"
                                ));
                            }
                        }
                        other => self.violations.push(format!("unknown recipient {other:?}")),
                    }
                }
            }
            Event::Push { id, outcome } => {
                let info = self.pushes.entry(*id).or_default();
                info.outcomes
                    .push(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
                if !info.accepted {
                    self.violations.push(format!(
                        "outcome {outcome:?} for push {id:?}, never accepted"
                    ));
                } else if info.outcomes.len() > 1 {
                    self.violations
                        .push(format!("push {id:?} got a second outcome {outcome:?}"));
                }
            }
            _ => {}
        }
    }

    fn on_sub_event(
        &mut self,
        conn: u64,
        id: SubscriberId,
        event: &SubscriptionEvent,
        server: &Server,
    ) {
        let Some(info) = self.subs.get(&id) else {
            return self.violation(format!("{event:?} for unknown subscription {id:?}"));
        };
        let topic = info.topic.clone();
        let state = info.state.clone();
        let next = match (&state, event) {
            (SubTrack::Closed(_), _) => {
                self.violation(format!("{id:?} got {event:?} after Closed"));
                state.clone()
            }
            (
                SubTrack::Failed,
                SubscriptionEvent::Closed {
                    reason: CloseReason::TopicFailed,
                },
            ) => SubTrack::Closed(CloseReason::TopicFailed),
            (SubTrack::Failed, _) => {
                self.violation(format!(
                    "{id:?} got {event:?} after Failed, not Closed{{TopicFailed}}"
                ));
                state.clone()
            }
            (_, SubscriptionEvent::Closed { reason }) => SubTrack::Closed(reason.clone()),
            (
                SubTrack::Waiting { joined_before },
                SubscriptionEvent::Joined {
                    join_ref, rejoin, ..
                },
            ) => {
                if let Err(why) = self.joined_now(conn, &topic, *join_ref, server) {
                    self.violation(format!("{id:?} Joined {join_ref} on {topic:?}: {why}"));
                }
                if *joined_before && !rejoin {
                    self.violation(format!("{id:?} joined again without rejoin: true"));
                }
                SubTrack::Joined {
                    join_ref: *join_ref,
                }
            }
            (SubTrack::Joined { .. }, SubscriptionEvent::Joined { .. }) => {
                self.violation(format!("{id:?} Joined twice without Lost: {event:?}"));
                state.clone()
            }
            (SubTrack::Joined { .. }, SubscriptionEvent::Lost { .. }) => SubTrack::Waiting {
                joined_before: true,
            },
            (SubTrack::Waiting { .. }, SubscriptionEvent::Lost { .. }) => {
                self.violation(format!("{id:?} Lost while not joined"));
                state.clone()
            }
            (SubTrack::Waiting { .. }, SubscriptionEvent::Rejoining { .. }) => state.clone(),
            (SubTrack::Joined { .. }, SubscriptionEvent::Rejoining { .. }) => {
                self.violation(format!("{id:?} Rejoining while joined (no Lost first)"));
                state.clone()
            }
            (SubTrack::Waiting { .. }, SubscriptionEvent::Failed { .. }) => SubTrack::Failed,
            (SubTrack::Joined { .. }, SubscriptionEvent::Failed { .. }) => {
                self.violation(format!("{id:?} Failed while joined (no Lost first)"));
                SubTrack::Failed
            }
            (_, SubscriptionEvent::Message(m)) => {
                self.violation(format!(
                    "the session emitted a per-subscription message {m:?}"
                ));
                state.clone()
            }
            _ => state.clone(),
        };
        if let Some(info) = self.subs.get_mut(&id) {
            info.state = next;
            info.events.push(event.clone());
        }
    }

    fn on_room_event(&mut self, conn: u64, id: RoomId, event: &RoomEvent, server: &Server) {
        let Some(info) = self.rooms.get(&id).cloned() else {
            return self.violation(format!("{event:?} for unknown room {id:?}"));
        };
        if info.closed.is_some() {
            self.violation(format!("{id:?} got {event:?} after Closed"));
        }
        let mut next = info;
        match event {
            RoomEvent::Shows {
                topic, join_ref, ..
            } => {
                if let Err(why) = self.joined_now(conn, topic, *join_ref, server) {
                    self.violation(format!("{id:?} Shows {topic:?}/{join_ref}: {why}"));
                }
                next.shown = Some((topic.to_string(), *join_ref));
                next.live = true;
            }
            RoomEvent::ShownLost { topic, .. } => {
                if next.shown.as_ref().map(|(t, _)| t.as_str()) != Some(&**topic) || !next.live {
                    self.violation(format!(
                        "{id:?} ShownLost {topic:?} while showing {:?} (live {})",
                        next.shown, next.live
                    ));
                }
                next.live = false;
            }
            RoomEvent::ShownRejoined {
                topic, join_ref, ..
            } => {
                if next.shown.as_ref().map(|(t, _)| t.as_str()) != Some(&**topic) || next.live {
                    self.violation(format!(
                        "{id:?} ShownRejoined {topic:?} while showing {:?} (live {})",
                        next.shown, next.live
                    ));
                }
                if let Err(why) = self.joined_now(conn, topic, *join_ref, server) {
                    self.violation(format!("{id:?} ShownRejoined {topic:?}/{join_ref}: {why}"));
                }
                next.shown = Some((topic.to_string(), *join_ref));
                next.live = true;
            }
            RoomEvent::ShownFailed { topic, .. } => {
                if next.shown.as_ref().map(|(t, _)| t.as_str()) != Some(&**topic) {
                    self.violation(format!(
                        "{id:?} ShownFailed {topic:?} while showing {:?}",
                        next.shown
                    ));
                }
                next.live = false;
            }
            RoomEvent::Closed { reason } => next.closed = Some(reason.clone()),
            _ => {}
        }
        next.events.push(event.clone());
        self.rooms.insert(id, next);
    }
}
