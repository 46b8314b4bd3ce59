//! The model: a state that contains the engine under test and its
//! environment, the actions the environment and the application may take, and
//! the checks run on every step.
//!
//! An action calls the engine's real input method, then drains **all** of its
//! outputs: `Join`/`Leave` effects go into the client→server queue, resource
//! effects into the resource ghost state, events into the checks.

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use channel_registry::engine::{Phase, RoomId, TopicStatus};

use crate::out::Output;
use stateright::{Model, Property};

use crate::cfg::ModelCfg;
use crate::checks::Step;
use crate::progress;
use crate::properties::{self, Inv, Milestone};
use crate::registry::{Registry, Setup, TimerKind, TopicView};
use crate::server::{ClientFrame, Net, ServerFrame, TopicIdx};
pub(crate) use crate::state::{sub_bit, sub_id};
pub use crate::state::{Action, Findings, Ghost, Inc, PendingSettle, RoomGhost, State};

/// The stateright model of the registry over engine `E`.
#[derive(Clone, Debug)]
pub struct ChannelModel<E> {
    /// The bounds.
    pub cfg: ModelCfg,
    /// Topic names, indexed by [`TopicIdx`].
    pub topics: Vec<Arc<str>>,
    setup: Setup,
    _engine: PhantomData<fn() -> E>,
}

impl<E: Registry> ChannelModel<E> {
    /// The model of `cfg`.
    pub fn new(cfg: ModelCfg) -> Self {
        let topics = cfg.topic_names();
        assert!(
            usize::from(cfg.subscribers) * topics.len() <= 64,
            "at most 64 subscriber × topic pairs"
        );
        ChannelModel {
            setup: cfg.setup(),
            topics,
            cfg,
            _engine: PhantomData,
        }
    }

    /// The index of a topic name the engine reported.
    pub fn topic_idx(&self, name: &str) -> TopicIdx {
        self.topics
            .iter()
            .position(|t| &**t == name)
            .expect("the engine reported a topic the model never used") as TopicIdx
    }

    /// The name of a topic.
    pub fn name(&self, topic: TopicIdx) -> &str {
        &self.topics[topic as usize]
    }

    /// The findings of the checks of `s` alone (computed once per state).
    pub fn state_findings<'s>(&self, s: &'s State<E>) -> &'s Findings {
        s.state_found.get_or_init(|| self.state_checks(s))
    }

    /// Every invariant `s` breaks: by the step into it or by itself.
    pub fn broken(&self, s: &State<E>) -> u16 {
        s.found.bits | self.state_findings(s).bits
    }

    /// The message for an invariant `s` breaks.
    pub fn note<'s>(&self, s: &'s State<E>, inv: Inv) -> Option<&'s str> {
        s.found
            .note(inv)
            .or_else(|| self.state_findings(s).note(inv))
    }

    /// Whether the system can only move if the application acts again: no
    /// frame in flight, no timer armed, no settle result owed, and the socket
    /// up (or no reconnect left).
    pub fn quiescent(&self, s: &State<E>, views: &[TopicView]) -> bool {
        s.net.idle()
            && s.ghost.settles.is_empty()
            && (s.ghost.socket_up || s.ghost.reconnects == 0)
            && views.iter().all(|v| v.timers == 0)
    }

    /// The engine's view of every topic (gathered once per state).
    pub fn views<'s>(&self, s: &'s State<E>) -> &'s [TopicView] {
        s.views.get_or_init(|| {
            let mut views = Vec::with_capacity(self.topics.len());
            s.engine.views(&self.topics, &mut views);
            views.into()
        })
    }

    /// Whether a fresh index is allowed: used ones, or the next unused one.
    /// Subscribers, topics and rooms are interchangeable (the engine treats
    /// them by identity only, and slot order follows first use), so a state in
    /// which a higher index was used before a lower one is a renaming of one
    /// in which they were used in order; exploring only the latter loses no
    /// behaviour and removes the symmetric copies.
    ///
    /// The unrouted topic is not interchangeable with the others and is
    /// always allowed.
    fn fresh_ok(&self, s: &State<E>, kind: usize, idx: u8) -> bool {
        if kind == 1 && self.cfg.unrouted_topic() == Some(idx) {
            // Only as the application's first operation (see `unrouted`).
            return s.ghost.ops == self.cfg.ops;
        }
        idx <= s.ghost.used[kind]
    }

    fn use_idx(&self, s: &mut State<E>, kind: usize, idx: u8) {
        if kind == 1 && self.cfg.unrouted_topic() == Some(idx) {
            return;
        }
        s.ghost.used[kind] = s.ghost.used[kind].max(idx + 1);
    }

    /// Whether the environment may inject a failure now: while the fault
    /// budget lasts, and not while the unrouted topic is on its way to its
    /// verdict (see [`ModelCfg::unrouted`]).
    fn may_fail(&self, s: &State<E>, quiet: bool) -> bool {
        s.ghost.faults > 0 && !quiet
    }

    /// Whether the application waits: while the unrouted topic is on its way
    /// to being reported failed, the application does nothing else, and the
    /// connection stays quiet (no fault, no drop).
    fn app_waits(&self, views: &[TopicView]) -> bool {
        self.cfg.unrouted_topic().is_some_and(|t| {
            views[t as usize]
                .status
                .as_ref()
                .is_some_and(|s| !matches!(s, TopicStatus::Failed(_)))
        })
    }

    pub(crate) fn wanted(&self, s: &State<E>, topic: TopicIdx) -> bool {
        let n = self.topics.len();
        let by_sub = (0..self.cfg.subscribers).any(|sub| s.holds(n, sub, topic));
        let by_room = (0..self.cfg.rooms).any(|r| {
            s.ghost.rooms[r as usize].requested == Some(topic)
                || s.engine
                    .room(RoomId(u64::from(r)))
                    .is_some_and(|v| v.shown.as_deref() == Some(self.name(topic)))
        });
        by_sub || by_room
    }

    pub(crate) fn ghost_inc(s: &State<E>, topic: TopicIdx) -> Option<&Inc> {
        s.ghost.incs.iter().find(|i| i.topic == topic)
    }

    /// Takes one step: the state it leads to and every output the engine
    /// produced on the way (the pictures draw them).
    pub fn step(&self, s: &State<E>, action: Action) -> (State<E>, Vec<Output>) {
        let mut n = s.clone();
        n.milestones = 0;
        n.found = Findings::default();
        n.state_found = OnceLock::new();
        n.views = OnceLock::new();
        let mut step = Step::new(&s.engine);
        let outputs = self.apply(&mut n, action, &mut step);
        self.absorb(&mut n, &outputs, &mut step);
        self.after(&mut n, &step);
        // Views gathered while the step was taken are those of the state before.
        n.views = OnceLock::new();
        // Most states a step leads to were seen before: gather their views
        // for the measure into a reused buffer rather than the state's cache.
        thread_local! {
            static VIEWS: std::cell::RefCell<Vec<TopicView>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        n.rank = VIEWS.with(|views| {
            let mut views = views.borrow_mut();
            n.engine.views(&self.topics, &mut views);
            progress::rank(self, &n, &views)
        });
        if n.rank >= s.rank {
            let (before, after) = (s.rank, n.rank);
            n.flag(Inv::Progress, || {
                format!("{action:?} did not lower the measure: {before:?} → {after:?}")
            });
        }
        (n, outputs)
    }

    /// The armed timers, in topic-name order (then kind order).
    pub fn armed(&self, views: &[TopicView]) -> Vec<(TopicIdx, TimerKind)> {
        let mut armed: Vec<(TopicIdx, TimerKind)> = views
            .iter()
            .enumerate()
            .flat_map(|(t, v)| v.timer_kinds().map(move |k| (t as TopicIdx, k)))
            .collect();
        armed.sort_by(|a, b| self.name(a.0).cmp(self.name(b.0)).then(a.1.cmp(&b.1)));
        armed
    }

    /// Whether every armed timer may fire in one call: two or more are
    /// armed, batches are on, and the failures among them (join and settle
    /// timeouts) fit the fault budget.
    fn batch_ok(&self, s: &State<E>, quiet: bool, views: &[TopicView]) -> bool {
        if !self.cfg.batched_timers {
            return false;
        }
        let armed: u32 = views.iter().map(|v| v.timers.count_ones()).sum();
        if armed < 2 {
            return false;
        }
        let kinds = || views.iter().flat_map(TopicView::timer_kinds);
        let failures = kinds().filter(|k| k.is_failure()).count();
        let joins = kinds().any(|k| k == TimerKind::Join);
        (failures == 0 || (self.may_fail(s, quiet) && failures <= usize::from(s.ghost.faults)))
            && (!joins || self.cfg.join_timeouts)
    }

    /// Every armed timer fires in one `handle_timeout`. The same timers fired
    /// one by one in topic-name order on a copy of the engine must give the
    /// very same outputs.
    fn fire_due(&self, n: &mut State<E>) -> Vec<Output> {
        let armed = self.armed(self.views(n));
        let failures = armed.iter().filter(|(_, k)| k.is_failure()).count();
        n.ghost.faults -= failures as u8;
        let mut one_by_one = n.engine.clone();
        for &(topic, kind) in &armed {
            one_by_one.fire(self.name(topic), kind);
        }
        let mut expected = Vec::new();
        let _ = one_by_one.drain_into(&mut n.audit.clone(), &self.topics, &mut expected);
        if !n.engine.fire_all_due() {
            n.flag(Inv::Bookkeeping, || {
                "timers listed as armed but none was due".to_owned()
            });
        }
        let outputs = drain(n, &self.topics);
        if outputs != expected {
            let names = |o: &[Output]| crate::trace::outputs_text(o);
            let (got, want) = (names(&outputs), names(&expected));
            n.flag(Inv::TimerOrder, || {
                format!("timers due together fired as [{got}], one by one in topic order they give [{want}]")
            });
        }
        n.milestones |= Milestone::TimersBatched.bit();
        outputs
    }

    // ---- applying an action -------------------------------------------------

    fn apply(&self, n: &mut State<E>, action: Action, step: &mut Step<'_, E>) -> Vec<Output> {
        let topics = self.topics.len();
        match action {
            Action::Subscribe { sub, topic } => {
                self.side_checks(n, topic, None);
                n.ghost.ops -= 1;
                self.use_idx(n, 0, sub);
                self.use_idx(n, 1, topic);
                if let Err(e) = n.engine.subscribe(self.name(topic), sub_id(sub)) {
                    n.flag(Inv::Refcount, || format!("subscribe refused: {e}"));
                }
                n.ghost.subs |= sub_bit(topics, sub, topic);
            }
            Action::Unsubscribe { sub, topic } => {
                self.side_checks(n, topic, Some(sub));
                n.ghost.ops -= 1;
                if !n.engine.unsubscribe(self.name(topic), sub_id(sub)) {
                    n.flag(Inv::Refcount, || {
                        format!(
                            "unsubscribe of a live subscription to {} not removed",
                            self.name(topic)
                        )
                    });
                }
                n.ghost.subs &= !sub_bit(topics, sub, topic);
            }
            Action::Switch { room, topic } => {
                self.side_checks(n, topic, None);
                n.ghost.ops -= 1;
                self.use_idx(n, 1, topic);
                self.use_idx(n, 2, room);
                if let Err(e) = n.engine.switch(RoomId(u64::from(room)), self.name(topic)) {
                    n.flag(Inv::NoFlicker, || format!("switch refused: {e}"));
                }
                n.ghost.rooms[room as usize].requested = Some(topic);
            }
            Action::CloseAll => {
                n.ghost.ops -= 1;
                n.engine.close_all();
                n.ghost.subs = 0;
                n.ghost
                    .rooms
                    .iter_mut()
                    .for_each(|r| *r = RoomGhost::default());
                step.rooms_dropped = true;
            }
            Action::Push { topic } => {
                n.ghost.pushes -= 1;
                let join_ref = n
                    .engine
                    .active_join_ref(self.name(topic))
                    .expect("push offered only on an active topic");
                let current = Self::ghost_inc(n, topic)
                    .is_some_and(|i| i.wire == join_ref && i.phase == Phase::Active && i.acked);
                if !current {
                    n.flag(Inv::NoCrossTalk, || {
                        format!("push on {} stamped with {join_ref}, not its current joined incarnation", self.name(topic))
                    });
                }
                self.send(n, ClientFrame::Push { topic, join_ref });
            }
            Action::ServerTake => {
                for dup in n.net.take_leave(self.cfg.server_messages) {
                    self.check_duplicate(n, dup);
                }
            }
            Action::ServerReject { topic } => {
                n.ghost.faults -= 1;
                n.net.reject(topic);
            }
            Action::ServerCrash { topic } => {
                n.ghost.faults -= 1;
                n.net.crash(topic);
            }
            Action::ServerStop { topic } => {
                n.ghost.faults -= 1;
                n.net.stop(topic);
            }
            Action::Deliver => {
                // Channel messages ahead of the next frame are delivered first
                // (their routing was checked in every state they waited in).
                while matches!(
                    n.net.s2c.front(),
                    Some(ServerFrame::Push { .. } | ServerFrame::Broadcast { .. })
                ) {
                    n.net.s2c.pop_front();
                }
                if let Some(frame) = n.net.s2c.pop_front() {
                    return self.deliver(n, frame, step);
                }
            }
            Action::TimersDue => return self.fire_due(n),
            Action::Fire { topic, kind } => {
                if kind.is_failure() {
                    n.ghost.faults -= 1;
                }
                if !n.engine.fire(self.name(topic), kind) {
                    n.flag(Inv::Bookkeeping, || {
                        format!(
                            "{} timer of {} listed but not armed",
                            kind.name(),
                            self.name(topic)
                        )
                    });
                }
            }
            Action::Settle {
                topic,
                join_ref,
                ok,
            } => {
                let pos = n
                    .ghost
                    .settles
                    .iter()
                    .position(|p| p.topic == topic && p.join_ref == join_ref)
                    .expect("settle offered when owed");
                let pending = n.ghost.settles.remove(pos);
                if !ok && !pending.aborted {
                    n.ghost.faults -= 1;
                }
                let live = n
                    .ghost
                    .incs
                    .iter()
                    .position(|i| i.topic == topic && i.id == join_ref);
                if ok && !pending.aborted {
                    if let Some(i) = live {
                        n.ghost.incs[i].settled = true;
                    }
                }
                let stale = pending.aborted || live.is_none();
                return self.protocol(n, topic, join_ref, stale, step.before, |e, t| {
                    e.settle_result(t, join_ref, ok)
                });
            }
            Action::SocketDrop => {
                n.ghost.drops -= 1;
                n.ghost.reconnects += 1;
                n.ghost.socket_up = false;
                n.ghost.incs.iter_mut().for_each(|i| i.ended = true);
                n.net.drop_socket();
                n.engine.socket_down();
            }
            Action::Reconnect => {
                n.ghost.reconnects -= 1;
                n.ghost.socket_up = true;
                n.engine.socket_up();
            }
        }
        drain(n, &self.topics)
    }
}

/// Drains the engine's outputs, flagging what its own audit finds in them.
pub(crate) fn drain<E: Registry>(n: &mut State<E>, names: &[Arc<str>]) -> Vec<Output> {
    let mut outputs = Vec::new();
    if let Some(v) = n.engine.drain_into(&mut n.audit, names, &mut outputs) {
        n.flag(Inv::from_design(v.invariant), || {
            format!("engine audit: {}", v.message)
        });
    }
    outputs
}

impl<E: Registry> Model for ChannelModel<E> {
    type State = State<E>;
    type Action = Action;

    fn init_states(&self) -> Vec<State<E>> {
        let mut engine = E::build(self.setup);
        let mut audit = E::Audit::default();
        let mut outputs = Vec::new();
        assert!(
            engine
                .drain_into(&mut audit, &self.topics, &mut outputs)
                .is_none(),
            "a fresh engine emits nothing illegal"
        );
        let mut init = State {
            engine,
            net: Net::new(self.topics.len(), self.cfg.unrouted_topic()),
            ghost: Ghost {
                subs: 0,
                rooms: vec![RoomGhost::default(); self.cfg.rooms as usize],
                incs: Vec::new(),
                settles: Vec::new(),
                max_id: 0,
                ops: self.cfg.ops,
                pushes: self.cfg.pushes,
                faults: self.cfg.faults,
                drops: self.cfg.socket_drops,
                reconnects: 0,
                socket_up: true,
                used: [0; 3],
                canonical_refs: self.cfg.canonical_refs,
            },
            found: Findings::default(),
            state_found: OnceLock::new(),
            milestones: 0,
            audit,
            rank: progress::Rank::default(),
            views: OnceLock::new(),
        };
        init.rank = progress::rank(self, &init, self.views(&init));
        vec![init]
    }

    /// Application operations first (within the budgets, fresh indices in
    /// order), then the server, the client, timers, settle results and the
    /// socket. The order is deterministic for a given state.
    fn actions(&self, s: &State<E>, actions: &mut Vec<Action>) {
        let topics = self.topics.len() as u8;
        let g = &s.ghost;
        let views = self.views(s);
        let quiet = self.app_waits(views);
        if g.ops > 0 && !quiet {
            for sub in 0..self.cfg.subscribers {
                if !self.fresh_ok(s, 0, sub) {
                    continue;
                }
                for topic in 0..topics {
                    if !self.fresh_ok(s, 1, topic) {
                        continue;
                    }
                    if s.holds(topics as usize, sub, topic) {
                        actions.push(Action::Unsubscribe { sub, topic });
                        if views[topic as usize].failed()
                            && self.cfg.unrouted_topic() != Some(topic)
                        {
                            actions.push(Action::Subscribe { sub, topic });
                        }
                    } else {
                        actions.push(Action::Subscribe { sub, topic });
                    }
                }
            }
            for room in 0..self.cfg.rooms {
                if !self.fresh_ok(s, 2, room) {
                    continue;
                }
                for topic in 0..topics {
                    if self.fresh_ok(s, 1, topic)
                        && g.rooms[room as usize].requested != Some(topic)
                        && self.cfg.unrouted_topic() != Some(topic)
                    {
                        actions.push(Action::Switch { room, topic });
                    }
                }
            }
            if g.subs != 0 || g.rooms.iter().any(|r| r.requested.is_some()) {
                actions.push(Action::CloseAll);
            }
        }
        if g.pushes > 0 {
            for topic in 0..topics {
                let held =
                    (0..self.cfg.subscribers).any(|sub| s.holds(topics as usize, sub, topic));
                if held && views[topic as usize].active().is_some() {
                    actions.push(Action::Push { topic });
                }
            }
        }
        if !s.net.c2s.is_empty() {
            actions.push(Action::ServerTake);
        }
        for (topic, channel) in s.net.channels.iter().enumerate() {
            let topic = topic as TopicIdx;
            if channel.is_some() && self.cfg.server_faults && self.may_fail(s, quiet) {
                if s.net.can_reject(topic) {
                    actions.push(Action::ServerReject { topic });
                }
                actions.push(Action::ServerCrash { topic });
                actions.push(Action::ServerStop { topic });
            }
        }
        if !s.net.s2c.is_empty() {
            actions.push(Action::Deliver);
        }
        if self.batch_ok(s, quiet, views) {
            actions.push(Action::TimersDue);
        }
        for (topic, view) in views.iter().enumerate() {
            for kind in view.timer_kinds() {
                if kind.is_failure() && !self.may_fail(s, quiet) {
                    continue;
                }
                if kind == TimerKind::Join && !self.cfg.join_timeouts {
                    continue;
                }
                actions.push(Action::Fire {
                    topic: topic as TopicIdx,
                    kind,
                });
            }
        }
        for p in &g.settles {
            actions.push(Action::Settle {
                topic: p.topic,
                join_ref: p.join_ref,
                ok: true,
            });
            // A result racing in after the abort is stale either way: one
            // action covers it.
            if self.cfg.settle_failures && !p.aborted && self.may_fail(s, quiet) {
                actions.push(Action::Settle {
                    topic: p.topic,
                    join_ref: p.join_ref,
                    ok: false,
                });
            }
        }
        if g.socket_up && g.drops > 0 && !quiet {
            actions.push(Action::SocketDrop);
        }
        if !g.socket_up && g.reconnects > 0 {
            actions.push(Action::Reconnect);
        }
    }

    fn next_state(&self, s: &State<E>, action: Action) -> Option<State<E>> {
        Some(self.step(s, action).0)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::properties()
    }

    fn format_action(&self, action: &Action) -> String {
        crate::trace::action_text(self, action)
    }

    /// The step in words, then the state it leads to in a few lines
    /// ([`crate::trace::state_text`]) rather than a `Debug` dump.
    fn format_step(&self, last: &State<E>, action: Action) -> Option<String> {
        let next = self.next_state(last, action)?;
        Some(format!(
            "{}\n\n{}",
            crate::trace::step_text(self, last, &action),
            crate::trace::state_text(self, &next)
        ))
    }

    /// The path as a sequence diagram ([`crate::svg`]).
    fn as_svg(&self, path: stateright::Path<State<E>, Action>) -> Option<String> {
        let actions = path.into_actions();
        let title = format!("{}: {} steps", E::NAME, actions.len());
        Some(crate::svg::path_svg(self, &actions, &title))
    }
}
