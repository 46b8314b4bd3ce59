//! The properties: every invariant of DESIGN §5 as an `always`, the
//! guarantees that need a run to end as `eventually`, and the behaviours the
//! model must be able to reach as `sometimes`.
//!
//! The checks that need the step (the action, every output of the engine, the
//! state before) run while the step is taken and leave one bit per invariant
//! broken and one bit per milestone reached in the new state; the checks of a
//! state alone run once per distinct state, when the checker evaluates the
//! properties ([`ChannelModel::state_findings`]). Each keeps its first
//! message for the trace.
//!
//! # Liveness, and why it is sound here
//!
//! stateright 0.31 checks `eventually` per path: a path that reaches a
//! *terminal* state (one with no successor at all) without the condition
//! having held is a counterexample. Two things can hide a violation: a cycle
//! (a path that revisits a state is cut there and never reaches a terminal
//! state), and a join of two paths (the second path to a known state is cut,
//! and what had held on the first is taken for both). Neither applies:
//! - [`Inv::Progress`] checks on every step that a well-founded measure of the
//!   state goes down ([`crate::progress`]), so the state graph has no cycle
//!   and every run ends in a terminal state;
//! - each `eventually` condition is "the run has ended, and …" ([`Goal`]),
//!   a function of the terminal state alone, so whatever held earlier on
//!   whichever path cannot stand in for it.
//!
//! On a finite run, "whenever a topic is wanted it is eventually served (or no
//! longer wanted)" holds exactly when it holds at the run's last state, so
//! these are the liveness guarantees themselves, not approximations. The
//! `always (quiescent ⇒ …)` invariants 7 and 8 say more (at every quiescent
//! state, not only at the end) and stay; the `eventually` properties are what
//! survives of them if quiescence were reached only at the end.

use stateright::{Model, Property};

use crate::harness::{ChannelModel, State};
use crate::registry::Registry;

/// One checked invariant. The discriminant is its bit in [`crate::harness::Findings::bits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Inv {
    /// The engine's own bookkeeping agrees with itself (its structural audit).
    Bookkeeping = 0,
    /// 1: subscriber sets equal the live subscriptions; unknown unsubscribe and
    /// repeated subscribe change nothing.
    Refcount = 1,
    /// 2: at most one live incarnation per topic; a duplicate join only
    /// replaces an incarnation the engine already gave up.
    OneIncarnation = 2,
    /// 3: a stale input is reported ignored and changes nothing; anything
    /// reported ignored changed nothing.
    StaleIsolation = 3,
    /// 4: active only after this join_ref's join ok (and its settling).
    ActiveMeansReady = 4,
    /// 5: every phase change is a row of the engine's own table, from the
    /// phase the incarnation was in; destroyed is terminal.
    Table = 5,
    /// 6: resources created and destroyed exactly once per incarnation,
    /// nothing done with them after.
    Resources = 6,
    /// 7: at quiescence a topic nobody wants has no live incarnation and no
    /// server-side channel, and the engine and the server agree on channels.
    NoLeak = 7,
    /// 8: a room keeps showing a live topic and moves only to the latest
    /// requested one once it is active; at quiescence it shows the last
    /// requested topic or reports it failed.
    NoFlicker = 8,
    /// 9: messages reach only the current incarnation's subscribers; pushes
    /// carry only the current joined incarnation's join_ref.
    NoCrossTalk = 9,
    /// 7: at quiescence a topic somebody wants is active or reported failed.
    Served = 10,
    /// The client never sends `phx_leave` for a channel the server has ended
    /// and told it so (join error, `phx_close`, `phx_error`, or the socket it
    /// lived on went down): checked on every frame the engine sends.
    LeaveOnlyHeld = 11,
    /// Timers due together fire in topic-name order, exactly as if fired one
    /// by one in that order: two engines that compare equal behave alike,
    /// whatever order their timers were armed in.
    TimerOrder = 12,
    /// Every step lowers a well-founded measure of the state, so every run
    /// ends (see [`crate::progress`]).
    Progress = 13,
}

impl Inv {
    /// Every invariant, in report order.
    pub const ALL: [Inv; 14] = [
        Inv::Bookkeeping,
        Inv::Refcount,
        Inv::OneIncarnation,
        Inv::StaleIsolation,
        Inv::ActiveMeansReady,
        Inv::Table,
        Inv::Resources,
        Inv::NoLeak,
        Inv::Served,
        Inv::NoFlicker,
        Inv::NoCrossTalk,
        Inv::LeaveOnlyHeld,
        Inv::TimerOrder,
        Inv::Progress,
    ];

    /// The property name.
    pub const fn name(self) -> &'static str {
        match self {
            Inv::Bookkeeping => "0 engine bookkeeping",
            Inv::Refcount => "1 refcount",
            Inv::OneIncarnation => "2 one incarnation per topic",
            Inv::StaleIsolation => "3 stale isolation",
            Inv::ActiveMeansReady => "4 active means ready",
            Inv::Table => "5 table",
            Inv::Resources => "6 resources",
            Inv::NoLeak => "7 no leak at quiescence",
            Inv::Served => "7 served at quiescence",
            Inv::NoFlicker => "8 no flicker",
            Inv::NoCrossTalk => "9 no cross-talk",
            Inv::LeaveOnlyHeld => "no phx_leave for an ended channel",
            Inv::TimerOrder => "due timers fire in topic order",
            Inv::Progress => "progress: every run ends",
        }
    }

    /// The invariant a violation reported by the engine's own audit belongs to.
    pub fn from_design(number: u8) -> Inv {
        match number {
            1 => Inv::Refcount,
            2 => Inv::OneIncarnation,
            3 => Inv::StaleIsolation,
            4 => Inv::ActiveMeansReady,
            5 => Inv::Table,
            6 => Inv::Resources,
            7 => Inv::NoLeak,
            8 => Inv::NoFlicker,
            9 => Inv::NoCrossTalk,
            _ => Inv::Bookkeeping,
        }
    }

    /// Its bit.
    pub const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A behaviour the model must be able to reach. The discriminant is its bit
/// in [`State::milestones`], set on the step that reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Milestone {
    /// An incarnation became active.
    Active = 0,
    /// A draining incarnation was revived within its grace period.
    Revived = 1,
    /// A room moved from one shown topic to another.
    SwitchCompleted = 2,
    /// A room showed v1, then v2, then v3, and v3 is active.
    SwitchChain = 3,
    /// An incarnation that followed a failed one became active.
    RetryActive = 4,
    /// A topic was reported failed after its last attempt.
    FailedAfterMax = 5,
    /// A `phx_close` sent because a duplicate join replaced an old incarnation
    /// reached the engine and was ignored as stale.
    DuplicateCloseIgnored = 6,
    /// Two or more due timers fired in one `handle_timeout`.
    TimersBatched = 7,
}

impl Milestone {
    /// Every milestone, in report order.
    pub const ALL: [Milestone; 8] = [
        Milestone::Active,
        Milestone::Revived,
        Milestone::SwitchCompleted,
        Milestone::SwitchChain,
        Milestone::RetryActive,
        Milestone::FailedAfterMax,
        Milestone::DuplicateCloseIgnored,
        Milestone::TimersBatched,
    ];

    /// The property name.
    pub const fn name(self) -> &'static str {
        match self {
            Milestone::Active => "topic reaches active",
            Milestone::Revived => "revive within grace",
            Milestone::SwitchCompleted => "room switch completes",
            Milestone::SwitchChain => "switch v1→v2→v3 ends on v3 active",
            Milestone::RetryActive => "retry after failure reaches active",
            Milestone::FailedAfterMax => "topic reported failed after max attempts",
            Milestone::DuplicateCloseIgnored => "duplicate-join close observed and ignored",
            Milestone::TimersBatched => "several due timers fire in one call",
        }
    }

    /// Its bit.
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A guarantee about how every run ends (an `eventually`). The discriminant
/// is its bit in [`crate::harness::Findings::ended`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Goal {
    /// Every topic still wanted (on a server with no fault left to inject)
    /// is active or reported failed.
    Served = 0,
    /// Every room shows the topic it was last switched to, or that topic is
    /// reported failed.
    RoomShowsLast = 1,
    /// No topic is left draining: every grace period ran out and ended its
    /// incarnation (or a holder came back).
    NothingDraining = 2,
}

impl Goal {
    /// Every goal, in report order.
    pub const ALL: [Goal; 3] = [Goal::Served, Goal::RoomShowsLast, Goal::NothingDraining];

    /// The property name.
    pub const fn name(self) -> &'static str {
        match self {
            Goal::Served => "eventually: wanted topics active or failed",
            Goal::RoomShowsLast => "eventually: rooms show the last request",
            Goal::NothingDraining => "eventually: nothing left draining",
        }
    }

    /// Its bit.
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// `fn` pointers cannot capture, so each property is one monomorphic function
/// per invariant; this macro writes them.
macro_rules! always_fns {
    ($($f:ident => $inv:expr),* $(,)?) => {
        $(fn $f<E: Registry>(m: &ChannelModel<E>, s: &State<E>) -> bool {
            m.broken(s) & $inv.bit() == 0
        })*
    };
}

always_fns! {
    holds_0 => Inv::Bookkeeping,
    holds_1 => Inv::Refcount,
    holds_2 => Inv::OneIncarnation,
    holds_3 => Inv::StaleIsolation,
    holds_4 => Inv::ActiveMeansReady,
    holds_5 => Inv::Table,
    holds_6 => Inv::Resources,
    holds_7 => Inv::NoLeak,
    holds_7s => Inv::Served,
    holds_8 => Inv::NoFlicker,
    holds_9 => Inv::NoCrossTalk,
    holds_leave => Inv::LeaveOnlyHeld,
    holds_timers => Inv::TimerOrder,
    holds_progress => Inv::Progress,
}

macro_rules! eventually_fns {
    ($($f:ident => $g:expr),* $(,)?) => {
        $(fn $f<E: Registry>(m: &ChannelModel<E>, s: &State<E>) -> bool {
            m.state_findings(s).ended.is_some_and(|met| met & $g.bit() != 0)
        })*
    };
}

eventually_fns! {
    ends_served => Goal::Served,
    ends_rooms => Goal::RoomShowsLast,
    ends_drained => Goal::NothingDraining,
}

macro_rules! sometimes_fns {
    ($($f:ident => $m:expr),* $(,)?) => {
        $(fn $f<E: Registry>(_: &ChannelModel<E>, s: &State<E>) -> bool {
            s.milestones & $m.bit() != 0
        })*
    };
}

sometimes_fns! {
    reached_active => Milestone::Active,
    reached_revive => Milestone::Revived,
    reached_switch => Milestone::SwitchCompleted,
    reached_chain => Milestone::SwitchChain,
    reached_retry => Milestone::RetryActive,
    reached_failed => Milestone::FailedAfterMax,
    reached_dup => Milestone::DuplicateCloseIgnored,
    reached_batch => Milestone::TimersBatched,
}

/// The property list of the model.
pub fn properties<E: Registry>() -> Vec<Property<ChannelModel<E>>> {
    type P<E> = fn(&ChannelModel<E>, &State<E>) -> bool;
    let always: [(Inv, P<E>); 14] = [
        (Inv::Bookkeeping, holds_0::<E>),
        (Inv::Refcount, holds_1::<E>),
        (Inv::OneIncarnation, holds_2::<E>),
        (Inv::StaleIsolation, holds_3::<E>),
        (Inv::ActiveMeansReady, holds_4::<E>),
        (Inv::Table, holds_5::<E>),
        (Inv::Resources, holds_6::<E>),
        (Inv::NoLeak, holds_7::<E>),
        (Inv::Served, holds_7s::<E>),
        (Inv::NoFlicker, holds_8::<E>),
        (Inv::NoCrossTalk, holds_9::<E>),
        (Inv::LeaveOnlyHeld, holds_leave::<E>),
        (Inv::TimerOrder, holds_timers::<E>),
        (Inv::Progress, holds_progress::<E>),
    ];
    let eventually: [(Goal, P<E>); 3] = [
        (Goal::Served, ends_served::<E>),
        (Goal::RoomShowsLast, ends_rooms::<E>),
        (Goal::NothingDraining, ends_drained::<E>),
    ];
    let sometimes: [(Milestone, P<E>); 8] = [
        (Milestone::Active, reached_active::<E>),
        (Milestone::Revived, reached_revive::<E>),
        (Milestone::SwitchCompleted, reached_switch::<E>),
        (Milestone::SwitchChain, reached_chain::<E>),
        (Milestone::RetryActive, reached_retry::<E>),
        (Milestone::FailedAfterMax, reached_failed::<E>),
        (Milestone::DuplicateCloseIgnored, reached_dup::<E>),
        (Milestone::TimersBatched, reached_batch::<E>),
    ];
    let mut props: Vec<Property<ChannelModel<E>>> = always
        .into_iter()
        .map(|(inv, f)| Property::always(inv.name(), f))
        .collect();
    props.extend(
        eventually
            .into_iter()
            .map(|(g, f)| Property::eventually(g.name(), f)),
    );
    props.extend(
        sometimes
            .into_iter()
            .map(|(m, f)| Property::sometimes(m.name(), f)),
    );
    props
}

/// Whether a property is an `always` or an `eventually` (a discovery is a
/// counterexample), as opposed to a `sometimes` (a discovery is an example).
pub fn is_always<E: Registry>(model: &ChannelModel<E>, name: &str) -> bool {
    model
        .properties()
        .iter()
        .any(|p| p.name == name && p.expectation != stateright::Expectation::Sometimes)
}
