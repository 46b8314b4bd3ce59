//! The reference design's four bugs (DESIGN §4), each with the smallest
//! configuration that exposes it and the invariant it breaks, and a
//! breadth-first hunt for its shortest counterexample.

use std::collections::BTreeSet;

use stateright::{Checker, HasDiscoveries, Model};

use crate::cfg::ModelCfg;
use crate::harness::{Action, ChannelModel};
use crate::properties::Inv;
use crate::registry::Registry;

/// A bug of the reference design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// (a) The last subscriber leaves while the join is in flight: the entry
    /// drains only from `active`, so it joins anyway and stays joined with
    /// nobody listening.
    LeaveWhileConnecting,
    /// (b) A subscriber returns within the grace period: `subscribe` cancels
    /// the cleanup and asks for `draining → active`, which the table refuses;
    /// the entry never becomes active again and is never cleaned up.
    ReviveWithinGrace,
    /// (c) A room switches while its current entry is still connecting:
    /// `migrateToRoom` drains only an `active` entry, so the old one is never
    /// released and two versions stay live.
    SwitchWhileConnecting,
    /// (d) Settling times out: the entry is destroyed while subscribers still
    /// hold it, with no retry and no failure reported.
    SettleTimeout,
}

impl Bug {
    /// Every bug, in DESIGN order.
    pub const ALL: [Bug; 4] = [
        Bug::LeaveWhileConnecting,
        Bug::ReviveWithinGrace,
        Bug::SwitchWhileConnecting,
        Bug::SettleTimeout,
    ];

    /// One line about the bug.
    pub const fn title(self) -> &'static str {
        match self {
            Bug::LeaveWhileConnecting => "(a) leave while connecting leaks a joined channel",
            Bug::ReviveWithinGrace => {
                "(b) resubscribe within grace: revive refused by its own table"
            }
            Bug::SwitchWhileConnecting => {
                "(c) switch while the current entry is connecting leaks the old one"
            }
            Bug::SettleTimeout => "(d) settle timeout strands subscribers with no retry",
        }
    }

    /// A file name for its picture (no extension).
    pub const fn slug(self) -> &'static str {
        match self {
            Bug::LeaveWhileConnecting => "a-leave-while-connecting",
            Bug::ReviveWithinGrace => "b-revive-within-grace",
            Bug::SwitchWhileConnecting => "c-switch-while-connecting",
            Bug::SettleTimeout => "d-settle-timeout",
        }
    }

    /// The invariant it breaks.
    pub const fn invariant(self) -> Inv {
        match self {
            Bug::LeaveWhileConnecting | Bug::SwitchWhileConnecting => Inv::NoLeak,
            Bug::ReviveWithinGrace | Bug::SettleTimeout => Inv::Served,
        }
    }

    /// The smallest configuration that shows it: one subscriber (or one room),
    /// no socket drop, just the operations the bug needs, and no failure but
    /// the one the bug is about (a settle timeout for (d)).
    pub fn cfg(self) -> ModelCfg {
        let base = ModelCfg::minimal();
        match self {
            Bug::LeaveWhileConnecting => ModelCfg { ops: 2, ..base },
            Bug::ReviveWithinGrace => ModelCfg { ops: 3, ..base },
            Bug::SwitchWhileConnecting => ModelCfg {
                subscribers: 0,
                rooms: 1,
                versions: 2,
                ops: 2,
                ..base
            },
            Bug::SettleTimeout => ModelCfg {
                settling: true,
                faults: 1,
                server_faults: false,
                join_timeouts: false,
                ..base
            },
        }
    }

    /// The shortest path to a state that breaks [`Bug::invariant`] under
    /// engine `E`, or `None` when there is none (checked exhaustively).
    ///
    /// Breadth-first and single-threaded, so the first discovery is at the
    /// least depth. The checker keeps the *last* path it saw for a property
    /// and checks states in blocks, so a deeper path of the same block could
    /// replace the first one; a second run bounded just below the found depth
    /// confirms there is no shorter one (and is repeated if there is).
    pub fn hunt<E: Registry>(self) -> Option<Vec<Action>> {
        shortest(self.cfg().into_model::<E>(), self.invariant().name())
    }
}

/// The shortest path to a discovery of `property`, by breadth-first search.
pub fn shortest<E: Registry>(
    model: ChannelModel<E>,
    property: &'static str,
) -> Option<Vec<Action>> {
    let run = |depth: Option<usize>| {
        let mut builder = model
            .clone()
            .checker()
            .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])));
        if let Some(d) = depth {
            builder = builder.target_max_depth(d);
        }
        builder
            .spawn_bfs()
            .join()
            .discovery(property)
            .map(|p| p.into_actions())
    };
    let mut best = run(None)?;
    // A path of n actions ends at depth n + 1 (the initial state is depth 1);
    // `target_max_depth(d)` checks states of depth < d, i.e. paths shorter
    // than `d - 1` actions: `best.len() + 1` admits only strictly shorter ones.
    while let Some(shorter) = run(Some(best.len() + 1)) {
        if shorter.len() >= best.len() {
            break;
        }
        best = shorter;
    }
    Some(best)
}
