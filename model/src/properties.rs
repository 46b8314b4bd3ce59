//! The properties: every invariant of DESIGN §5 as an `always`, and the
//! behaviours the model must be able to reach as `sometimes`.
//!
//! The checks that need the step (the action, every output of the engine, the
//! state before) run while the step is taken and leave one bit per invariant
//! broken and one bit per milestone reached in the new state; the checks of a
//! state alone run once per distinct state, when the checker evaluates the
//! properties ([`ChannelModel::state_findings`]). Each keeps its first
//! message for the trace.
//!
//! There is no `eventually`: stateright's `eventually` misses paths that end in
//! a cycle. "Nothing leaks" and "the room ends on what was asked" are instead
//! stated at quiescence (no frame in flight, no timer armed, no settle
//! pending, socket up or no reconnect left), where the system can move only if
//! the application acts again, so `always(quiescent ⇒ …)` says the same.

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
}

impl Inv {
    /// Every invariant, in report order.
    pub const ALL: [Inv; 11] = [
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
}

impl Milestone {
    /// Every milestone, in report order.
    pub const ALL: [Milestone; 7] = [
        Milestone::Active,
        Milestone::Revived,
        Milestone::SwitchCompleted,
        Milestone::SwitchChain,
        Milestone::RetryActive,
        Milestone::FailedAfterMax,
        Milestone::DuplicateCloseIgnored,
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
}

/// The property list of the model.
pub fn properties<E: Registry>() -> Vec<Property<ChannelModel<E>>> {
    type P<E> = fn(&ChannelModel<E>, &State<E>) -> bool;
    let always: [(Inv, P<E>); 11] = [
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
    ];
    let sometimes: [(Milestone, P<E>); 7] = [
        (Milestone::Active, reached_active::<E>),
        (Milestone::Revived, reached_revive::<E>),
        (Milestone::SwitchCompleted, reached_switch::<E>),
        (Milestone::SwitchChain, reached_chain::<E>),
        (Milestone::RetryActive, reached_retry::<E>),
        (Milestone::FailedAfterMax, reached_failed::<E>),
        (Milestone::DuplicateCloseIgnored, reached_dup::<E>),
    ];
    let mut props: Vec<Property<ChannelModel<E>>> = always
        .into_iter()
        .map(|(inv, f)| Property::always(inv.name(), f))
        .collect();
    props.extend(
        sometimes
            .into_iter()
            .map(|(m, f)| Property::sometimes(m.name(), f)),
    );
    props
}

/// Whether a property is an `always` (as opposed to a `sometimes`).
pub fn is_always<E: Registry>(model: &ChannelModel<E>, name: &str) -> bool {
    model
        .properties()
        .iter()
        .any(|p| p.name == name && p.expectation == stateright::Expectation::Always)
}
