//! The checks run on every step: stale isolation of each protocol input, the
//! application inputs that must change nothing, every output of the engine
//! against the ghost state, and the invariants of the state after the step
//! (with the quiescent ones when the system is quiescent).

use crate::out::{Effect, Event, Output};
use channel_registry::engine::{FailReason, JoinRef, Phase, RoomId, SubscriberId, TopicStatus};

use crate::harness::{drain, sub_id, ChannelModel, Findings, Inc, PendingSettle, State};
use crate::properties::{Goal, Inv, Milestone};
use crate::registry::{Registry, TopicView};
use crate::server::{ClientFrame, Duplicate, ServerFrame, TopicIdx};
use stateright::Model;

/// What the checks of one step need besides the new state.
pub(crate) struct Step<'a, E> {
    /// The engine before the step (untouched by it).
    pub(crate) before: &'a E,
    /// A `phx_close` sent for a duplicate join, as (topic, join_ref).
    pub(crate) duplicate_close: Option<(TopicIdx, JoinRef)>,
    /// The step dropped every room (close-all).
    pub(crate) rooms_dropped: bool,
    /// Incarnations the server had ended (see [`crate::harness::Inc::ended`])
    /// whose resources the step destroyed, as (topic, wire join_ref): a
    /// `phx_leave` for them later in the step is still a mistake.
    pub(crate) ended_gone: Vec<(TopicIdx, JoinRef)>,
}

impl<'a, E> Step<'a, E> {
    pub(crate) fn new(before: &'a E) -> Self {
        Step {
            before,
            duplicate_close: None,
            rooms_dropped: false,
            ended_gone: Vec::new(),
        }
    }
}

/// A subscriber id the model never uses: unsubscribing it must change nothing.
pub(crate) const PHANTOM: SubscriberId = SubscriberId(u64::MAX);

impl<E: Registry> ChannelModel<E> {
    pub(crate) fn send(&self, n: &mut State<E>, frame: ClientFrame) {
        if let Some(dup) = n.net.send(frame, self.cfg.server_messages) {
            self.check_duplicate(n, dup);
        }
    }

    /// A duplicate join may only replace an incarnation the engine has
    /// already given up (invariant 2): otherwise the old one's `phx_close`
    /// would be taken for its own.
    pub(crate) fn check_duplicate(&self, n: &mut State<E>, Duplicate { topic, old }: Duplicate) {
        if Self::ghost_inc(n, topic).is_some_and(|i| i.wire == old && i.phase != Phase::Destroyed) {
            n.flag(Inv::OneIncarnation, || {
                format!(
                    "a new join of {} replaced channel {old} on the server while the engine still counts on it",
                    self.name(topic)
                )
            });
        }
    }

    /// Inputs of the application that must change nothing, tried on a copy
    /// (invariant 1): unsubscribing a subscriber that never subscribed, and
    /// subscribing again a subscriber that already holds a topic.
    pub(crate) fn side_checks(&self, n: &mut State<E>, topic: TopicIdx, holder: Option<u8>) {
        let name = self.name(topic);
        let mut copy = n.engine.clone();
        let removed = copy.unsubscribe(name, PHANTOM);
        if removed || copy.has_output() || copy != n.engine {
            n.flag(Inv::Refcount, || {
                format!("unsubscribing an unknown subscriber from {name} changed the engine")
            });
        }
        if let Some(sub) = holder {
            if matches!(n.engine.status(name), Some(TopicStatus::Failed(_))) {
                return;
            }
            let mut copy = n.engine.clone();
            let ok = copy.subscribe(name, sub_id(sub)).is_ok();
            if !ok || copy.has_output() || copy != n.engine {
                n.flag(Inv::Refcount, || {
                    format!(
                        "subscribing {} again to {name} changed the engine",
                        sub_id(sub).0
                    )
                });
            }
        }
    }

    /// The client takes one frame from the server.
    pub(crate) fn deliver(
        &self,
        n: &mut State<E>,
        frame: ServerFrame,
        step: &mut Step<'_, E>,
    ) -> Vec<Output> {
        let live_wire = |n: &State<E>, topic: TopicIdx, join_ref: JoinRef| {
            n.ghost
                .incs
                .iter()
                .any(|i| i.topic == topic && i.wire == join_ref && i.phase != Phase::Destroyed)
        };
        match frame {
            ServerFrame::JoinReply {
                topic,
                join_ref,
                ok,
            } => {
                if ok {
                    if let Some(i) = n
                        .ghost
                        .incs
                        .iter_mut()
                        .find(|i| i.topic == topic && i.wire == join_ref)
                    {
                        i.acked = true;
                    }
                }
                if !ok {
                    Self::mark_ended(n, topic, join_ref);
                }
                let stale = !live_wire(n, topic, join_ref);
                self.protocol(n, topic, join_ref, stale, step.before, |e, t| {
                    e.join_reply(t, join_ref, ok)
                })
            }
            ServerFrame::Close {
                topic,
                join_ref,
                duplicate,
            } => {
                if duplicate {
                    step.duplicate_close = Some((topic, join_ref));
                }
                Self::mark_ended(n, topic, join_ref);
                let stale = !live_wire(n, topic, join_ref);
                self.protocol(n, topic, join_ref, stale, step.before, |e, t| {
                    e.close(t, join_ref)
                })
            }
            ServerFrame::Error { topic, join_ref } => {
                Self::mark_ended(n, topic, join_ref);
                let stale = !live_wire(n, topic, join_ref);
                self.protocol(n, topic, join_ref, stale, step.before, |e, t| {
                    e.error(t, join_ref)
                })
            }
            // Messages are flushed by `Action::Deliver` before the next frame;
            // their routing is checked in every state they could be delivered
            // in (`check_routing`).
            ServerFrame::Push { .. } | ServerFrame::Broadcast { .. } => Vec::new(),
        }
    }

    /// The client is told that the server no longer holds channel `wire`.
    pub(crate) fn mark_ended(n: &mut State<E>, topic: TopicIdx, wire: JoinRef) {
        for i in n.ghost.incs.iter_mut() {
            if i.topic == topic && i.wire == wire {
                i.ended = true;
            }
        }
    }

    /// A protocol or resource input, checked for stale isolation: a stale one
    /// must be reported ignored, and one reported ignored must change nothing
    /// but the one `Ignored` event.
    pub(crate) fn protocol(
        &self,
        n: &mut State<E>,
        topic: TopicIdx,
        join_ref: JoinRef,
        stale: bool,
        before: &E,
        input: impl FnOnce(&mut E, &str),
    ) -> Vec<Output> {
        let name = self.name(topic);
        input(&mut n.engine, name);
        let outputs = drain(n, &self.topics);
        let ignored = outputs.iter().any(|o| {
            matches!(o, Output::Event(Event::Ignored { topic: t, join_ref: r, .. }) if t.as_deref().is_none_or(|t| t == name) && *r == join_ref)
        });
        if stale && !ignored {
            n.flag(Inv::StaleIsolation, || {
                format!("stale input for {name} {join_ref} was not reported ignored: {outputs:?}")
            });
        }
        if ignored && (outputs.len() != 1 || n.engine != *before) {
            n.flag(Inv::StaleIsolation, || {
                format!("input for {name} {join_ref} reported ignored but changed the engine: {outputs:?}")
            });
        }
        outputs
    }

    // ---- absorbing outputs --------------------------------------------------

    pub(crate) fn absorb(&self, n: &mut State<E>, outputs: &[Output], step: &mut Step<'_, E>) {
        for output in outputs {
            match output {
                Output::Effect(effect) => self.effect(n, effect, step),
                Output::Event(event) => self.event(n, event, step),
            }
        }
    }

    fn effect(&self, n: &mut State<E>, effect: &Effect, step: &mut Step<'_, E>) {
        match effect {
            Effect::Join {
                topic, join_ref, ..
            } => {
                let t = self.topic_idx(topic);
                match n.ghost.incs.iter_mut().find(|i| i.topic == t) {
                    Some(i) => {
                        i.wire = *join_ref;
                        i.ended = false;
                    }
                    None => n.flag(Inv::Resources, || {
                        format!("join of {topic} {join_ref} without resources")
                    }),
                }
                self.send(
                    n,
                    ClientFrame::Join {
                        topic: t,
                        join_ref: *join_ref,
                    },
                );
            }
            Effect::Leave { topic, join_ref } => {
                let t = self.topic_idx(topic);
                let ended = step.ended_gone.contains(&(t, *join_ref))
                    || n.ghost
                        .incs
                        .iter()
                        .any(|i| i.topic == t && i.wire == *join_ref && i.ended);
                if ended {
                    n.flag(Inv::LeaveOnlyHeld, || {
                        format!("phx_leave for {topic} {join_ref}, which the server had already ended (the client was told)")
                    });
                }
                self.send(
                    n,
                    ClientFrame::Leave {
                        topic: t,
                        join_ref: *join_ref,
                    },
                );
            }
            Effect::CreateResources { topic, join_ref } => {
                let t = self.topic_idx(topic);
                if join_ref.get() <= n.ghost.max_id {
                    n.flag(Inv::Resources, || {
                        format!("resources of {topic} {join_ref} created again")
                    });
                }
                if n.ghost.incs.iter().any(|i| i.topic == t) {
                    n.flag(Inv::OneIncarnation, || {
                        format!("second live incarnation {join_ref} of {topic}")
                    });
                }
                n.ghost.max_id = n.ghost.max_id.max(join_ref.get());
                n.ghost.incs.push(Inc {
                    topic: t,
                    id: *join_ref,
                    wire: *join_ref,
                    phase: Phase::Connecting,
                    acked: false,
                    settled: false,
                    ended: false,
                });
            }
            Effect::StartSettling { topic, join_ref } => {
                let t = self.topic_idx(topic);
                if !n
                    .ghost
                    .incs
                    .iter()
                    .any(|i| i.topic == t && i.id == *join_ref)
                {
                    n.flag(Inv::Resources, || {
                        format!("settling started for {topic} {join_ref} without live resources")
                    });
                }
                n.ghost
                    .settles
                    .retain(|p| !(p.topic == t && p.join_ref == *join_ref));
                n.ghost.settles.push(PendingSettle {
                    topic: t,
                    join_ref: *join_ref,
                    aborted: false,
                });
                n.ghost.settles.sort_unstable();
            }
            Effect::AbortSettling { topic, join_ref } => {
                let t = self.topic_idx(topic);
                if !n
                    .ghost
                    .incs
                    .iter()
                    .any(|i| i.topic == t && i.id == *join_ref)
                {
                    n.flag(Inv::Resources, || {
                        format!("settling aborted for {topic} {join_ref} without live resources")
                    });
                }
                for p in n.ghost.settles.iter_mut() {
                    if p.topic == t && p.join_ref == *join_ref {
                        p.aborted = true;
                    }
                }
            }
            Effect::DestroyResources { topic, join_ref } => {
                let t = self.topic_idx(topic);
                match n
                    .ghost
                    .incs
                    .iter()
                    .position(|i| i.topic == t && i.id == *join_ref)
                {
                    Some(pos) if n.ghost.incs[pos].phase == Phase::Destroyed => {
                        let gone = n.ghost.incs.remove(pos);
                        if gone.ended {
                            step.ended_gone.push((gone.topic, gone.wire));
                        }
                    }
                    Some(_) => n.flag(Inv::Resources, || {
                        format!("resources of {topic} {join_ref} destroyed while it lives")
                    }),
                    None => n.flag(Inv::Resources, || {
                        format!("resources of {topic} {join_ref} destroyed twice or never created")
                    }),
                }
            }
        }
    }

    fn event(&self, n: &mut State<E>, event: &Event, step: &Step<'_, E>) {
        match event {
            Event::PhaseChanged {
                topic,
                join_ref,
                from,
                to,
                trigger,
            } => {
                let t = self.topic_idx(topic);
                let Some(pos) = n
                    .ghost
                    .incs
                    .iter()
                    .position(|i| i.topic == t && i.id == *join_ref)
                else {
                    return n.flag(Inv::Table, || format!("{topic} {join_ref} changed phase after destroyed (or unknown): {event:?}"));
                };
                let inc = n.ghost.incs[pos];
                let (Some(from), Some(trigger)) = (from, trigger) else {
                    if !(*to == Phase::Connecting && inc.phase == Phase::Connecting) {
                        n.flag(Inv::Table, || format!("malformed phase change {event:?}"));
                    }
                    return;
                };
                if *from != inc.phase {
                    n.flag(Inv::Table, || {
                        format!("{topic} {join_ref} left {from} but was {}", inc.phase)
                    });
                }
                if !E::table_allows(*from, *trigger, *to) {
                    n.flag(Inv::Table, || format!("{topic} {join_ref}: {from} --{trigger:?}--> {to} is not a row of the table"));
                }
                if *to == Phase::Active {
                    n.milestones |= Milestone::Active.bit();
                    if !inc.acked {
                        n.flag(Inv::ActiveMeansReady, || {
                            format!("{topic} {join_ref} active without a join ok for it")
                        });
                    }
                    if self.cfg.settling && !inc.settled {
                        n.flag(Inv::ActiveMeansReady, || {
                            format!("{topic} {join_ref} active without settling")
                        });
                    }
                    if *from == Phase::Draining {
                        n.milestones |= Milestone::Revived.bit();
                    } else if step.before.attempts(topic) >= 2 {
                        n.milestones |= Milestone::RetryActive.bit();
                    }
                }
                n.ghost.incs[pos].phase = *to;
            }
            // Only the retry path reports these; a server close fails at once.
            Event::TopicFailed { reason, .. } if *reason != FailReason::ClosedByServer => {
                n.milestones |= Milestone::FailedAfterMax.bit();
            }
            Event::Ignored {
                topic, join_ref, ..
            } if step.duplicate_close.is_some_and(|(t, r)| {
                // An unknown topic is not named (join refs are unique anyway).
                r == *join_ref
                    && topic
                        .as_deref()
                        .is_none_or(|name| self.topic_idx(name) == t)
            }) =>
            {
                n.milestones |= Milestone::DuplicateCloseIgnored.bit();
            }
            _ => {}
        }
    }

    // ---- checks after the step ---------------------------------------------

    /// Invariant 9 for the channel messages at the head of the server's
    /// queue. Delivering a message changes nothing but the queue, so rather
    /// than a step per message (whose interleavings would multiply the space
    /// for nothing), the model checks, in every state, where each message
    /// that could be delivered next would go, routed as a client must (by the
    /// engine's `route`): only to the subscribers of the incarnation that
    /// sent it, and that one current and active. Those are exactly the states
    /// in which a step-per-message model could deliver it.
    fn check_routing(&self, n: &State<E>, f: &mut Findings) {
        for frame in &n.net.s2c {
            let (topic, stamped, sender) = match *frame {
                ServerFrame::Push { topic, join_ref } => (topic, Some(join_ref), join_ref),
                ServerFrame::Broadcast { topic, sender } => (topic, None, sender),
                _ => break,
            };
            let name = self.name(topic);
            let Some(to) = n.engine.route(name, stamped) else {
                continue;
            };
            let current =
                Self::ghost_inc(n, topic).is_some_and(|i| i.wire == to && i.phase == Phase::Active);
            let agrees = n.engine.active_join_ref(name) == Some(to);
            if to != sender || !current || !agrees {
                let what = if stamped.is_some() {
                    "push"
                } else {
                    "broadcast"
                };
                let message = format!(
                    "{what} sent by {name} {sender} would reach subscribers of incarnation {to} \
                     (current and active: {current}; active_join_ref agrees: {agrees})"
                );
                f.flag(Inv::NoCrossTalk, || message);
                return;
            }
        }
    }

    /// Invariant 9 for pushes: the join_ref a subscriber would stamp a push
    /// with (the engine's `active_join_ref`) must be the topic's current,
    /// joined incarnation. A push changes nothing the registry sees (the
    /// server answers nothing the engine takes), so checking the stamp in
    /// every state covers every moment a push could be sent; the `Push`
    /// action (`pushes` budget) also sends one.
    fn check_push_stamps(&self, n: &State<E>, f: &mut Findings, views: &[TopicView]) {
        for (t, view) in views.iter().enumerate() {
            let Some(stamp) = view.active() else { continue };
            let current = Self::ghost_inc(n, t as TopicIdx)
                .is_some_and(|i| i.wire == stamp && i.phase == Phase::Active && i.acked);
            let agrees = n.engine.active_join_ref(self.name(t as TopicIdx)) == Some(stamp);
            if !current || !agrees {
                let name = self.name(t as TopicIdx);
                let message = format!("a push on {name} would be stamped with {stamp}, not its current joined incarnation");
                f.flag(Inv::NoCrossTalk, || message);
            }
        }
    }

    /// The checks that depend on the step (not only on the state it ends in).
    pub(crate) fn after(&self, n: &mut State<E>, step: &Step<'_, E>) {
        self.check_rooms(n, step);
    }

    /// The checks of a state alone. The checker calls them through the
    /// properties once per distinct state (a state is generated several times
    /// on average; checking it once is cheaper).
    pub(crate) fn state_checks(&self, n: &State<E>) -> Findings {
        let mut f = Findings::default();
        let views = self.views(n);
        self.check_routing(n, &mut f);
        self.check_push_stamps(n, &mut f, views);
        if let Err(v) = n.engine.audit_state(&n.audit) {
            f.flag(Inv::from_design(v.invariant), || {
                format!("engine self-check: {}", v.message)
            });
        }
        self.check_refcount(n, &mut f, views);
        if let Some(i) = n.ghost.incs.iter().find(|i| i.phase == Phase::Destroyed) {
            let (t, r) = (self.name(i.topic).to_owned(), i.id);
            f.flag(Inv::Resources, || {
                format!("{t} {r} destroyed but its resources were not")
            });
        }
        if self.quiescent(n, views) {
            self.check_quiescent(n, &mut f, views);
            if self.terminal(n) {
                f.ended = Some(self.goals_met(n, views));
            }
        }
        f
    }

    /// Whether the run has ended: no action is possible (checked only at
    /// quiescence, which every terminal state is).
    fn terminal(&self, n: &State<E>) -> bool {
        let mut actions = Vec::new();
        self.actions(n, &mut actions);
        actions.is_empty()
    }

    /// The [`Goal`]s a terminal state meets.
    fn goals_met(&self, n: &State<E>, views: &[TopicView]) -> u8 {
        let served = (0..self.topics.len() as TopicIdx).all(|t| {
            let v = &views[t as usize];
            !self.wanted(n, t) || v.active().is_some() || v.failed()
        });
        let rooms = (0..self.cfg.rooms).all(|r| {
            let Some(want) = n.ghost.rooms[r as usize].requested else {
                return true;
            };
            let shown = n.engine.room(RoomId(u64::from(r))).and_then(|v| v.shown);
            shown.as_deref() == Some(self.name(want)) || views[want as usize].failed()
        });
        let drained = views.iter().all(|v| {
            !matches!(
                v.status,
                Some(TopicStatus::Live {
                    phase: Phase::Draining,
                    ..
                })
            )
        });
        [
            (served, Goal::Served),
            (rooms, Goal::RoomShowsLast),
            (drained, Goal::NothingDraining),
        ]
        .into_iter()
        .filter(|(met, _)| *met)
        .fold(0, |bits, (_, g)| bits | g.bit())
    }

    fn check_refcount(&self, n: &State<E>, f: &mut Findings, views: &[TopicView]) {
        let topics = self.topics.len();
        for (t, view) in views.iter().enumerate() {
            let want = (0..self.cfg.subscribers)
                .filter(|&s| n.holds(topics, s, t as TopicIdx))
                .fold(0u64, |m, s| m | 1 << s);
            if view.subscribers != want {
                let bits = |m: u64| {
                    (0..64)
                        .filter(|b| m & 1 << b != 0)
                        .map(|b| b + 1)
                        .collect::<Vec<u64>>()
                };
                let name = self.name(t as TopicIdx);
                let (got, want) = (bits(view.subscribers), bits(want));
                f.flag(Inv::Refcount, || {
                    format!(
                        "{name}: engine has subscribers {got:?}, live subscriptions are {want:?}"
                    )
                });
            }
        }
    }

    fn check_rooms(&self, n: &mut State<E>, step: &Step<'_, E>) {
        if step.rooms_dropped {
            return;
        }
        for r in 0..self.cfg.rooms {
            let id = RoomId(u64::from(r));
            let shown_before = step.before.shown_idx(id, &self.topics);
            let shown = n.engine.shown_idx(id, &self.topics);
            if let (Some(before), None) = (shown_before, shown) {
                n.flag(Inv::NoFlicker, || {
                    format!("room {r} stopped showing {}", self.topics[before])
                });
                continue;
            }
            let Some(t) = shown else { continue };
            let name = &*self.topics[t];
            if n.engine.status(name).is_none() {
                n.flag(Inv::NoFlicker, || {
                    format!("room {r} shows {name}, which the engine no longer manages")
                });
            }
            if shown_before == Some(t) {
                continue;
            }
            let t = t as TopicIdx;
            let ghost = &mut n.ghost.rooms[r as usize];
            let latest = ghost.requested == Some(t);
            if t == ghost.chain && usize::from(t) < usize::from(self.cfg.versions) {
                ghost.chain += 1;
            }
            let chain = ghost.chain;
            if !latest {
                n.flag(Inv::NoFlicker, || {
                    format!("room {r} moved to {name}, which is not the latest topic requested")
                });
            }
            if n.engine.active_join_ref(name).is_none() {
                n.flag(Inv::NoFlicker, || {
                    format!("room {r} moved to {name} before it is active")
                });
            }
            if shown_before.is_some() {
                n.milestones |= Milestone::SwitchCompleted.bit();
            }
            if chain == 3 && t == 2 && latest {
                n.milestones |= Milestone::SwitchChain.bit();
            }
        }
    }

    fn check_quiescent(&self, n: &State<E>, f: &mut Findings, views: &[TopicView]) {
        if let Err(v) = n.engine.audit_quiescent() {
            f.flag(Inv::from_design(v.invariant), || {
                format!("engine quiescence check: {}", v.message)
            });
        }
        for (t, name) in self.topics.iter().enumerate() {
            let status = views[t].status;
            let t = t as TopicIdx;
            let live = match &status {
                Some(TopicStatus::Live { join_ref, phase }) if *phase != Phase::Destroyed => {
                    Some(*join_ref)
                }
                _ => None,
            };
            let channel = n.net.channels[t as usize];
            if !self.wanted(n, t) {
                if live.is_some() || channel.is_some() {
                    f.flag(Inv::NoLeak, || {
                        format!("quiescent: nobody wants {name}, yet the engine has {status:?} and the server channel {channel:?}")
                    });
                }
            } else {
                let served = matches!(
                    status,
                    Some(TopicStatus::Live {
                        phase: Phase::Active,
                        ..
                    }) | Some(TopicStatus::Failed(_))
                );
                if !served {
                    f.flag(Inv::Served, || format!("quiescent: {name} is wanted but {status:?} (neither active nor reported failed)"));
                }
            }
            if live != channel {
                f.flag(Inv::NoLeak, || {
                    format!("quiescent: engine incarnation {live:?} of {name} but server channel {channel:?}")
                });
            }
        }
        for r in 0..self.cfg.rooms {
            let Some(want) = n.ghost.rooms[r as usize].requested else {
                continue;
            };
            let name = self.name(want);
            let shown = n.engine.room(RoomId(u64::from(r))).and_then(|v| v.shown);
            let failed = views[want as usize].failed();
            if shown.as_deref() != Some(name) && !failed {
                f.flag(Inv::NoFlicker, || {
                    format!("quiescent: room {r} shows {shown:?}, not the requested {name} (which is not reported failed)")
                });
            }
        }
    }
}
