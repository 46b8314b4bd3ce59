//! The lifecycle table: phases, triggers and the one function that says which
//! phase change a trigger causes. Every phase change the engine makes is looked
//! up here, so a change that is not a row of [`TRANSITIONS`] cannot happen.

use std::fmt;

/// The lifecycle phase of one incarnation (one join) of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Phase {
    /// `phx_join` sent, reply not yet received.
    Connecting,
    /// Joined; waiting for the resources to report the first sync.
    Settling,
    /// Joined and ready: subscribers are served.
    Active,
    /// No holder left; kept joined for the grace period so a quick return
    /// needs no rejoin.
    Draining,
    /// Terminal. The engine forgets the incarnation; any later input carrying
    /// its join_ref is stale.
    Destroyed,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 5] = [
        Phase::Connecting,
        Phase::Settling,
        Phase::Active,
        Phase::Draining,
        Phase::Destroyed,
    ];

    /// The lowercase name used in docs and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Settling => "settling",
            Phase::Active => "active",
            Phase::Draining => "draining",
            Phase::Destroyed => "destroyed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What caused a phase change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Trigger {
    /// Join ok for this join_ref, topic without settling.
    JoinOk,
    /// Join ok for this join_ref, topic with settling.
    JoinOkSettling,
    /// The server rejected the join.
    JoinError,
    /// No join reply within the join timeout.
    JoinTimeout,
    /// The resources reported settled for this incarnation.
    Settled,
    /// The resources reported that settling failed.
    SettleFailed,
    /// Settling did not finish within the settle timeout.
    SettleTimeout,
    /// The last holder unsubscribed.
    LastHolderLeft,
    /// A room switched away from the topic and nobody else holds it.
    Superseded,
    /// A holder arrived within the drain grace period.
    Revive,
    /// The drain grace period elapsed.
    GraceElapsed,
    /// A draining incarnation was closed early to make room under the topic limit.
    Evicted,
    /// The socket went down.
    SocketDown,
    /// The server closed the channel (`phx_close`).
    ServerClose,
    /// The channel crashed on the server (`phx_error`).
    ServerError,
    /// The application closed every topic (logout).
    CloseAll,
    /// The driver found the incarnation's stream broken (a version gap, or
    /// positions only a rejoin can replay): it is left and a new one joined
    /// at once.
    Resync,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 17] = [
        Trigger::JoinOk,
        Trigger::JoinOkSettling,
        Trigger::JoinError,
        Trigger::JoinTimeout,
        Trigger::Settled,
        Trigger::SettleFailed,
        Trigger::SettleTimeout,
        Trigger::LastHolderLeft,
        Trigger::Superseded,
        Trigger::Revive,
        Trigger::GraceElapsed,
        Trigger::Evicted,
        Trigger::SocketDown,
        Trigger::ServerClose,
        Trigger::ServerError,
        Trigger::CloseAll,
        Trigger::Resync,
    ];

    /// Whether destroying an incarnation for this reason must tell the server
    /// with a `phx_leave`: only when the server may still hold the channel and
    /// we are the ones ending it. A join timeout sends one, as phoenix.js does.
    pub const fn sends_leave(self) -> bool {
        !matches!(
            self,
            Trigger::JoinError | Trigger::SocketDown | Trigger::ServerClose | Trigger::ServerError
        )
    }
}

use Phase::*;
use Trigger::*;

/// The table, as data: `(from, trigger, to)`. [`next`] agrees with it (a test
/// enumerates every pair); docs and the model read it from here.
pub const TRANSITIONS: &[(Phase, Trigger, Phase)] = &[
    (Connecting, JoinOkSettling, Settling),
    (Connecting, JoinOk, Active),
    (Connecting, JoinError, Destroyed),
    (Connecting, JoinTimeout, Destroyed),
    (Connecting, SocketDown, Destroyed),
    (Connecting, ServerClose, Destroyed),
    (Connecting, ServerError, Destroyed),
    (Connecting, LastHolderLeft, Destroyed),
    (Connecting, Superseded, Destroyed),
    (Connecting, CloseAll, Destroyed),
    (Settling, Settled, Active),
    (Settling, SettleFailed, Destroyed),
    (Settling, SettleTimeout, Destroyed),
    (Settling, SocketDown, Destroyed),
    (Settling, ServerClose, Destroyed),
    (Settling, ServerError, Destroyed),
    (Settling, LastHolderLeft, Destroyed),
    (Settling, Superseded, Destroyed),
    (Settling, CloseAll, Destroyed),
    (Settling, Resync, Destroyed),
    (Active, LastHolderLeft, Draining),
    (Active, Superseded, Draining),
    (Active, SocketDown, Destroyed),
    (Active, ServerClose, Destroyed),
    (Active, ServerError, Destroyed),
    (Active, CloseAll, Destroyed),
    (Active, Resync, Destroyed),
    (Draining, Revive, Active),
    (Draining, GraceElapsed, Destroyed),
    (Draining, Evicted, Destroyed),
    (Draining, SocketDown, Destroyed),
    (Draining, ServerClose, Destroyed),
    (Draining, ServerError, Destroyed),
    (Draining, CloseAll, Destroyed),
];

/// The phase `trigger` moves an incarnation in `from` to, or `None` when the
/// pair is not a row of the table (the input is then rejected and reported).
pub const fn next(from: Phase, trigger: Trigger) -> Option<Phase> {
    Some(match (from, trigger) {
        (Connecting, JoinOkSettling) => Settling,
        (Connecting, JoinOk) => Active,
        (
            Connecting,
            JoinError | JoinTimeout | SocketDown | ServerClose | ServerError | LastHolderLeft
            | Superseded | CloseAll,
        ) => Destroyed,
        (Settling, Settled) => Active,
        (
            Settling,
            SettleFailed | SettleTimeout | SocketDown | ServerClose | ServerError | LastHolderLeft
            | Superseded | CloseAll | Resync,
        ) => Destroyed,
        (Active, LastHolderLeft | Superseded) => Draining,
        (Active, SocketDown | ServerClose | ServerError | CloseAll | Resync) => Destroyed,
        (Draining, Revive) => Active,
        (Draining, GraceElapsed | Evicted | SocketDown | ServerClose | ServerError | CloseAll) => {
            Destroyed
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_agrees_with_the_table_on_every_pair() {
        for from in Phase::ALL {
            for trigger in Trigger::ALL {
                let row = TRANSITIONS
                    .iter()
                    .find(|(f, t, _)| *f == from && *t == trigger)
                    .map(|(_, _, to)| *to);
                assert_eq!(next(from, trigger), row, "{from} on {trigger:?}");
            }
        }
    }

    #[test]
    fn table_has_no_duplicate_pairs_and_destroyed_is_terminal() {
        for (i, (f, t, _)) in TRANSITIONS.iter().enumerate() {
            assert!(TRANSITIONS[i + 1..]
                .iter()
                .all(|(f2, t2, _)| (f2, t2) != (f, t)));
            assert_ne!(*f, Destroyed);
        }
        for trigger in Trigger::ALL {
            assert_eq!(next(Destroyed, trigger), None);
        }
    }
}
