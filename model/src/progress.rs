//! A measure of how far a state is from the end of its run, which every step
//! must lower ([`crate::properties::Inv::Progress`]). A measure that goes
//! down on every edge of a finite graph proves the graph has no cycle: every
//! run of the model ends, in a terminal state, which is what makes the
//! `eventually` properties sound (see [`crate::properties`]). It also catches
//! an engine that could retry, rejoin or re-arm forever without being asked
//! to: such a loop would be a step that does not lower the measure.
//!
//! The measure is a tuple, compared lexicographically:
//! 1. application operations left, 2. socket drops left, 3. reconnects owed,
//!    4. pushes left: each action of the application or of the socket spends
//!    one of these, and may start any amount of work;
//! 5. faults: twice the fault budget plus the *fault frames* in flight (a
//!    `phx_error`, a `phx_close` or a join error of a routed topic, for a
//!    channel the client still counts on: delivering one starts a retry).
//!    Injecting a fault spends two and adds at most one frame; delivering the
//!    frame spends it;
//! 6. work: what is left without spending any budget, weighted so that each
//!    step that needs no budget lowers it:
//!    - per topic, [`TOPIC`] times its potential ([`potential`]): a retry
//!      counts down the attempts left, and every phase change the engine makes
//!      on its own goes towards active, draining, gone;
//!    - per frame the client sent that the server has not taken, [`TO_SERVER`]
//!      (taking a join answers it with at most four frames);
//!    - per frame to the client, [`JOIN_OK`] for a join ok (delivering it may
//!      arm a settle timer and start settling), [`TO_CLIENT`] otherwise;
//!    - per armed timer, [`TIMER`] ([`REJOIN`] for phoenix.js's rejoin timer
//!      in the reference design, whose firing sends a join);
//!    - per settle result owed, [`SETTLE`].
//!
//! The weights are constraints, not tuning; each comes from one kind of step
//! that needs no budget (the check names the step if one does not hold):
//! - a room completing its switch arms the old topic's grace timer as that
//!   topic goes from active to draining: `TOPIC > TIMER`;
//! - a grace period ending sends a leave: `TOPIC + TIMER > TO_SERVER`;
//! - a retry sends a join: `2·TOPIC > TO_SERVER`;
//! - the server answers a join with a reply, a push, a broadcast and maybe a
//!   duplicate-join close: `TO_SERVER > JOIN_OK + 3·TO_CLIENT`;
//! - in the reference design a join ok runs its hooks again on a rejoin,
//!   arming a settle timer and starting settling: `JOIN_OK > TIMER + SETTLE`;
//! - phoenix.js's rejoin timer sends a join: `REJOIN > TO_SERVER`.

use channel_registry::engine::{Phase, TopicStatus};

use crate::harness::{ChannelModel, State};
use crate::registry::{Registry, TimerKind, TopicView};
use crate::server::{ServerFrame, TopicIdx};

/// The measure: budgets, then faults, then work (see the module docs).
pub type Rank = [u32; 6];

/// Weight of one unit of a topic's [`potential`].
pub const TOPIC: u32 = 10;
/// Weight of an armed timer.
pub const TIMER: u32 = 6;
/// Weight of phoenix.js's rejoin timer (reference design only).
pub const REJOIN: u32 = 20;
/// Weight of a frame waiting for the server.
pub const TO_SERVER: u32 = 12;
/// Weight of a join ok on its way to the client.
pub const JOIN_OK: u32 = 8;
/// Weight of any other frame on its way to the client.
pub const TO_CLIENT: u32 = 1;
/// Weight of a settle result owed.
pub const SETTLE: u32 = 1;

// The constraints of the module docs, checked when the crate compiles.
const _: () = {
    assert!(TOPIC > TIMER);
    assert!(TOPIC + TIMER > TO_SERVER);
    assert!(2 * TOPIC > TO_SERVER);
    assert!(TO_SERVER > JOIN_OK + 3 * TO_CLIENT);
    assert!(JOIN_OK > TIMER + SETTLE);
    assert!(REJOIN > TO_SERVER);
};

/// How much a topic may still do on its own: nothing once it is gone,
/// offline or failed; 1 draining; 2 active; above that, four per join it may
/// still make (`max_attempts` minus the joins made in a row) plus its place in
/// one attempt: waiting to retry 1, settling 2, connecting 3. A retry moves
/// from "waiting" to "connecting" with one join fewer left, which is lower.
pub fn potential(view: &TopicView, max_attempts: u8) -> u32 {
    let left = u32::from(max_attempts.saturating_sub(view.attempts));
    let attempt = |place: u32| 3 + 4 * left + place;
    match view.status {
        None | Some(TopicStatus::Offline) | Some(TopicStatus::Failed(_)) => 0,
        Some(TopicStatus::Retrying) => attempt(1),
        Some(TopicStatus::Live { phase, .. }) => match phase {
            Phase::Draining => 1,
            Phase::Active => 2,
            Phase::Settling => attempt(2),
            Phase::Connecting => attempt(3),
            _ => 0,
        },
        Some(_) => 0,
    }
}

/// The measure of `s`, whose topic views are `views`.
pub fn rank<E: Registry>(m: &ChannelModel<E>, s: &State<E>, views: &[TopicView]) -> Rank {
    let g = &s.ghost;
    let counted_on = |topic: TopicIdx, wire| {
        g.incs
            .iter()
            .any(|i| i.topic == topic && i.wire == wire && i.phase != Phase::Destroyed)
    };
    let unrouted = m.cfg.unrouted_topic();
    let mut fault_frames = 0;
    let mut work = 0;
    for f in &s.net.s2c {
        match *f {
            ServerFrame::Error { topic, join_ref }
            | ServerFrame::Close {
                topic, join_ref, ..
            } if counted_on(topic, join_ref) => fault_frames += 1,
            ServerFrame::JoinReply {
                topic,
                join_ref,
                ok: false,
            } if unrouted != Some(topic) && counted_on(topic, join_ref) => fault_frames += 1,
            ServerFrame::JoinReply { ok: true, .. } => work += JOIN_OK,
            _ => work += TO_CLIENT,
        }
    }
    work += TO_SERVER * s.net.c2s.len() as u32;
    work += SETTLE * g.settles.len() as u32;
    for v in views {
        work += TOPIC * potential(v, m.cfg.max_attempts);
        for k in v.timer_kinds() {
            work += if k == TimerKind::Rejoin {
                REJOIN
            } else {
                TIMER
            };
        }
    }
    [
        u32::from(g.ops),
        u32::from(g.drops),
        u32::from(g.reconnects),
        u32::from(g.pushes),
        2 * u32::from(g.faults) + fault_frames,
        work,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel_registry::engine::JoinRef;

    fn view(status: TopicStatus, attempts: u8) -> TopicView {
        TopicView {
            status: Some(status),
            attempts,
            ..TopicView::default()
        }
    }

    fn live(phase: Phase) -> TopicStatus {
        TopicStatus::Live {
            join_ref: JoinRef::new(1).unwrap(),
            phase,
        }
    }

    #[test]
    fn each_attempt_ranks_below_the_one_before() {
        let m = 3;
        let p = |s, a| potential(&view(s, a), m);
        for a in 1..=m {
            // connecting → waiting to retry → connecting again with one join
            // fewer left (a topic that made its last join fails instead)
            assert!(p(live(Phase::Connecting), a) > p(TopicStatus::Retrying, a));
            if a < m {
                assert!(p(TopicStatus::Retrying, a) > p(live(Phase::Connecting), a + 1));
            }
            assert!(p(live(Phase::Connecting), a) > p(live(Phase::Settling), a));
            assert!(p(live(Phase::Settling), a) > p(live(Phase::Active), 0));
        }
        assert!(p(live(Phase::Active), 0) > p(live(Phase::Draining), 0));
        assert!(p(live(Phase::Draining), 0) > 0);
    }
}
