//! The parts of `benches/session.rs`: the session's driver and fake server,
//! the phoenix.js runner, the timing scheme both sides share, the report,
//! and an allocation counter.

pub mod allocations;
pub mod driver;
pub mod fake_server;
pub mod phoenix_js;
pub mod report;
pub mod timing;

/// The event of every inbound message (`EVENT` in `session.mjs`).
pub const EVENT: &str = "update";

/// Messages visit live channel `i`, then `i + STRIDE` modulo their number:
/// all of them, spread over the table, in the same order on both sides
/// (7919 is prime, so every count below it and not a multiple of it works).
pub const STRIDE: usize = 7919;

/// Fresh topic names cycled through by lifecycles (`FRESH` in `session.mjs`).
pub const FRESH: usize = 4096;

/// What is measured, named as both halves name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One channel's whole life on a fresh topic.
    Lifecycle,
    /// One inbound message for a live channel.
    Message,
}

impl Scenario {
    pub const ALL: [Scenario; 2] = [Scenario::Lifecycle, Scenario::Message];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Lifecycle => "lifecycle",
            Scenario::Message => "message",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The frames one operation exchanges: a lifecycle sends the join and
    /// the leave and receives their replies and `phx_close`; a message is
    /// one frame.
    pub fn frames(self) -> f64 {
        match self {
            Scenario::Lifecycle => 5.0,
            Scenario::Message => 1.0,
        }
    }
}

/// Which client is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Session,
    PhoenixJs,
}

impl Side {
    pub const ALL: [Side; 2] = [Side::Session, Side::PhoenixJs];

    pub fn name(self) -> &'static str {
        match self {
            Side::Session => "session",
            Side::PhoenixJs => "phoenix_js",
        }
    }
}

/// The benchmark id, e.g. `session_message/phoenix_js/10000`.
pub fn id(scenario: Scenario, side: Side, live: usize) -> String {
    format!("session_{}/{}/{live}", scenario.name(), side.name())
}
