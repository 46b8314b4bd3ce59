//! The bounds of a model run, in the style of stateright's examples: a plain
//! struct of small numbers with [`ModelCfg::into_model`].

use std::sync::Arc;

use crate::harness::ChannelModel;
use crate::registry::{Registry, Setup};

/// Bounds and switches of one model.
///
/// Every budget is consumed by the action it names, which keeps the state
/// space finite; the environment actions that need no budget (delivering a
/// frame, firing an armed timer, answering a settle) are finite on their own
/// because each consumes a frame, a timer or a pending settle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelCfg {
    /// Application subscribers (ids 1..=n).
    pub subscribers: u8,
    /// Rooms (version-switching handles, ids 0..n).
    pub rooms: u8,
    /// Documents; each has `versions` topics `doc:<d>:v<n>`.
    pub documents: u8,
    /// Versions per document.
    pub versions: u8,
    /// Application operations, shared by all subscribers and rooms:
    /// subscribe, unsubscribe, room switch, close-all.
    pub ops: u8,
    /// Pushes the application sends on an active topic.
    pub pushes: u8,
    /// Socket drops (each followed by a reconnect the model may perform).
    pub socket_drops: u8,
    /// Failures the environment may inject along one run: a join rejected,
    /// a join or settle timing out, a settle failing, a channel crash
    /// (`phx_error`) or a server-initiated `phx_close`. Bounding failures per
    /// run (as stateright's actor models bound crashes) keeps the space small
    /// while every kind of failure, and every race a failure starts, stays in
    /// it.
    pub faults: u8,
    /// Topics settle before they become active.
    pub settling: bool,
    /// Settling may fail (besides succeeding or timing out).
    pub settle_failures: bool,
    /// The server may reject a join, crash a channel or stop it (faults).
    pub server_faults: bool,
    /// A join may time out (a fault).
    pub join_timeouts: bool,
    /// After a join ok the server sends a push stamped with the join_ref and a
    /// broadcast (null join_ref), which the client must route.
    pub server_messages: bool,
    /// Add a topic the server does not route: every join of it is rejected
    /// with "unmatched topic", as Phoenix does, so it is reported failed
    /// after its last attempt without spending the fault budget (a second
    /// fault anywhere would multiply the space by more than ten). A
    /// subscriber may take it only as the application's first operation, and
    /// the application waits for its verdict on a quiet connection (no fault,
    /// no drop) before doing anything else: its retry path then runs once, in
    /// front of everything else, instead of interleaving with every later
    /// operation. Every failure kind of routed topics stays nondeterministic
    /// under the fault budget.
    pub unrouted: bool,
    /// When two or more timers are armed, the clock may also jump past all
    /// their deadlines at once: the engine fires them in one
    /// `handle_timeout` ([`crate::Action::TimersDue`]), which must give the
    /// same outputs as firing them one by one in topic-name order.
    pub batched_timers: bool,
    /// Joins in a row before the real engine reports a topic failed.
    pub max_attempts: u8,
    /// States that differ only in the numbering of join refs are one state
    /// (see [`crate::canon`]).
    pub canonical_refs: bool,
}

impl ModelCfg {
    /// The configuration CI checks exhaustively: two subscribers, one room,
    /// three versions of one document, settling on, one socket drop, one
    /// fault, server messages, the unrouted topic, and three operations:
    /// enough for the room to show v1 and switch twice, for a subscriber to
    /// leave and return within the grace period, or for two subscribers to
    /// share a topic that one of them leaves. Every property holds and every
    /// behaviour the model must reach is reached, and every mistake
    /// `model/tests/mutants.rs` wraps around the engine is caught here. No
    /// `Push` action: the stamp a push would carry is checked in every
    /// state. Timers due together may fire in one call.
    ///
    /// One operation fewer than [`ModelCfg::full`] makes the space about
    /// fourteen times smaller, which keeps the check to seconds.
    pub fn ci() -> ModelCfg {
        ModelCfg {
            ops: 3,
            ..ModelCfg::full()
        }
    }

    /// The second configuration CI checks: [`ModelCfg::ci`] with a fourth
    /// operation but no injected failure (the socket drop and the unrouted
    /// topic stay). It keeps the application's longer stories in CI at a
    /// half the cost of `ci`: the room shows v1, switches twice and comes
    /// back, or a subscriber leaves and returns within the grace period while
    /// the room switches. Without a failure no retry can reach active; every
    /// other behaviour is reached.
    pub fn ci_four_ops() -> ModelCfg {
        ModelCfg {
            ops: 4,
            faults: 0,
            ..ModelCfg::ci()
        }
    }

    /// The CI configuration with a fourth operation, for a nightly or manual
    /// run (minutes on two cores, 7.4 million distinct states): enough for
    /// the room to show v1, switch twice and come back, or for a subscriber
    /// to leave and return within the grace period while the room switches.
    pub fn full() -> ModelCfg {
        ModelCfg {
            subscribers: 2,
            rooms: 1,
            documents: 1,
            versions: 3,
            ops: 4,
            pushes: 0,
            socket_drops: 1,
            faults: 1,
            settling: true,
            settle_failures: true,
            server_faults: true,
            join_timeouts: true,
            server_messages: true,
            unrouted: true,
            batched_timers: true,
            max_attempts: 2,
            canonical_refs: true,
        }
    }

    /// A larger configuration to run by hand (84 million distinct states):
    /// one more application operation than [`ModelCfg::full`].
    pub fn large() -> ModelCfg {
        ModelCfg {
            ops: 5,
            ..ModelCfg::full()
        }
    }

    /// A minimal configuration that the bug hunts start from: one
    /// subscriber, no room, nothing optional.
    pub fn minimal() -> ModelCfg {
        ModelCfg {
            subscribers: 1,
            rooms: 0,
            documents: 1,
            versions: 1,
            ops: 1,
            pushes: 0,
            socket_drops: 0,
            faults: 0,
            settling: false,
            settle_failures: false,
            server_faults: true,
            join_timeouts: true,
            server_messages: false,
            unrouted: false,
            batched_timers: false,
            max_attempts: 2,
            canonical_refs: true,
        }
    }

    /// Overrides one field by name (`ops=6`, `settling=off`), for runs by hand.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let num = || {
            value
                .parse::<u8>()
                .map_err(|_| format!("{key} needs a number, not {value:?}"))
        };
        let flag = || match value {
            "on" | "true" | "1" => Ok(true),
            "off" | "false" | "0" => Ok(false),
            _ => Err(format!("{key} needs on or off, not {value:?}")),
        };
        match key {
            "subscribers" => self.subscribers = num()?,
            "rooms" => self.rooms = num()?,
            "documents" => self.documents = num()?,
            "versions" => self.versions = num()?,
            "ops" => self.ops = num()?,
            "pushes" => self.pushes = num()?,
            "socket_drops" => self.socket_drops = num()?,
            "faults" => self.faults = num()?,
            "max_attempts" => self.max_attempts = num()?.max(1),
            "settling" => self.settling = flag()?,
            "settle_failures" => self.settle_failures = flag()?,
            "server_faults" => self.server_faults = flag()?,
            "join_timeouts" => self.join_timeouts = flag()?,
            "server_messages" => self.server_messages = flag()?,
            "canonical_refs" => self.canonical_refs = flag()?,
            "unrouted" => self.unrouted = flag()?,
            "batched_timers" => self.batched_timers = flag()?,
            _ => return Err(format!("unknown configuration field {key:?}")),
        }
        Ok(())
    }

    /// The engine setup both engines are built with.
    pub fn setup(&self) -> Setup {
        Setup {
            settling: self.settling,
            max_attempts: self.max_attempts,
        }
    }

    /// The topic names, document-major: `doc:1:v1, doc:1:v2, …`, then the
    /// unrouted topic `missing:1` if there is one.
    pub fn topic_names(&self) -> Vec<Arc<str>> {
        let mut names = Vec::new();
        for d in 1..=self.documents {
            for v in 1..=self.versions {
                names.push(Arc::from(format!("doc:{d}:v{v}")));
            }
        }
        if self.unrouted {
            names.push(Arc::from("missing:1"));
        }
        names
    }

    /// The index of the unrouted topic, if any.
    pub fn unrouted_topic(&self) -> Option<u8> {
        self.unrouted.then(|| self.documents * self.versions)
    }

    /// The model of this configuration over engine `E`.
    pub fn into_model<E: Registry>(self) -> ChannelModel<E> {
        ChannelModel::new(self)
    }
}
