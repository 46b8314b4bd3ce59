//! The properties of the stream model, from the consumer's side: what the
//! stream outputs, compared with what the server published and still holds.
//! None of them repeats a rule of the stream.
//!
//! The checks of an output run while the step is taken and leave a bit in
//! [`State::broken`]; the checks of a quiet state run after every step. The
//! milestones are the `sometimes` properties: each shows a fault really
//! happens and is recovered from.

use stateright::Property;

use super::harness::{State, StreamsModel};
use super::server::Item;
use super::StreamMode;

/// One checked property; its discriminant is its bit in [`State::broken`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Prop {
    /// Sequenced: every position is delivered or reported lost exactly once,
    /// in increasing order, none skipped; nothing well-formed is reported
    /// malformed.
    Once = 0,
    /// Sequenced: a position is reported lost only once the server no
    /// longer holds it (while it holds it, it is delivered).
    LostOnlyGone = 1,
    /// Sequenced: at quiescence every published position was delivered or
    /// reported lost (a loss is never silent).
    NothingSilent = 2,
    /// Sequenced: an acknowledgement never exceeds what was delivered or
    /// reported lost.
    AckDelivered = 3,
    /// Versioned: after a resync (or any new incarnation) nothing is
    /// delivered before the mount's version 1.
    MountFirst = 4,
    /// Versioned: within a mount, versions are delivered one after the
    /// other, each from the mount's incarnation.
    Consecutive = 5,
    /// Versioned: at quiescence every stream shows the server's current
    /// version, and the room the topic it was switched to.
    CaughtUp = 6,
    /// A room never shows versions out of order: they increase, and restart
    /// only at a mount of the topic it shows.
    RoomInOrder = 7,
}

impl Prop {
    /// The properties of a mode, in report order.
    pub fn of(mode: StreamMode) -> &'static [Prop] {
        match mode {
            StreamMode::Sequenced => &[
                Prop::Once,
                Prop::LostOnlyGone,
                Prop::NothingSilent,
                Prop::AckDelivered,
            ],
            StreamMode::Versioned => &[
                Prop::MountFirst,
                Prop::Consecutive,
                Prop::CaughtUp,
                Prop::RoomInOrder,
            ],
        }
    }

    /// The property name.
    pub const fn name(self) -> &'static str {
        match self {
            Prop::Once => "each position exactly once, in order",
            Prop::LostOnlyGone => "lost only once the server no longer holds it",
            Prop::NothingSilent => "quiet: every published position delivered or lost",
            Prop::AckDelivered => "an ack never exceeds what was delivered",
            Prop::MountFirst => "after a resync nothing before version 1",
            Prop::Consecutive => "versions of a mount consecutive",
            Prop::CaughtUp => "quiet: every stream at the server's version",
            Prop::RoomInOrder => "a room never shows versions out of order",
        }
    }

    /// Its bit.
    pub const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A behaviour the model must reach; its discriminant is its bit in
/// [`State::reached`], set by the step that reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Milestone {
    /// A position re-sent for a replay request was delivered.
    ReplayRecovered = 0,
    /// A position replayed after a rejoin was delivered.
    JoinReplayed = 1,
    /// A loss was reported.
    LossReported = 2,
    /// The held events overflowed and the stream rejoined.
    Overflow = 3,
    /// An acknowledgement trimmed the server's log.
    Trimmed = 4,
    /// An event or patch of an older incarnation arrived and was ignored.
    StaleIgnored = 5,
    /// A stream that had resynced mounted again.
    Remounted = 6,
    /// A skipped version made the stream resync.
    SkipResynced = 7,
    /// The room moved from the first topic to the second.
    Switched = 8,
}

impl Milestone {
    /// The milestones of a mode, in report order.
    pub fn of(mode: StreamMode) -> &'static [Milestone] {
        match mode {
            StreamMode::Sequenced => &[
                Milestone::ReplayRecovered,
                Milestone::JoinReplayed,
                Milestone::LossReported,
                Milestone::Overflow,
                Milestone::Trimmed,
                Milestone::StaleIgnored,
            ],
            StreamMode::Versioned => &[
                Milestone::Remounted,
                Milestone::SkipResynced,
                Milestone::Switched,
                Milestone::StaleIgnored,
            ],
        }
    }

    /// The property name.
    pub const fn name(self) -> &'static str {
        match self {
            Milestone::ReplayRecovered => "a gap is recovered by a replay request",
            Milestone::JoinReplayed => "a rejoin replays what was missed",
            Milestone::LossReported => "a loss beyond the window is reported",
            Milestone::Overflow => "held events overflow, the stream rejoins",
            Milestone::Trimmed => "an ack trims the server's log",
            Milestone::StaleIgnored => "an old incarnation's event is ignored",
            Milestone::Remounted => "a resync, then a remount",
            Milestone::SkipResynced => "a skipped version resyncs",
            Milestone::Switched => "the room switches topics",
        }
    }

    /// Its bit.
    pub const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A sequenced delivery.
pub(crate) fn delivered_seq(s: &mut State, t: u8, position: u64, item: Item) {
    let ghost = s.topics[usize::from(t)].ghost;
    let next = u64::from(ghost.cursor) + 1;
    if position != next || u64::from(item.pos) != position {
        s.flag(Prop::Once, || {
            format!(
                "delivered position {position} (the server's {}) after {}",
                item.pos, ghost.cursor
            )
        });
    }
    s.topics[usize::from(t)].ghost.cursor = item.pos;
}

/// A sequenced loss report. Without `strict`, a position the server still
/// holds may be reported lost if its frame to the current incarnation was
/// lost on the wire (the stream gives up on it after `gap_timeout`).
pub(crate) fn lost(s: &mut State, t: u8, from: u64, to: u64, strict: bool) {
    let topic = &s.topics[usize::from(t)];
    let cursor = topic.ghost.cursor;
    let log = topic.log;
    let excused = if strict { 0 } else { topic.dropped };
    if from != u64::from(cursor) + 1 || to < from {
        s.flag(Prop::Once, || {
            format!("reported {from}..={to} lost after position {cursor}")
        });
    }
    let held = (from..=to)
        .find(|&p| u8::try_from(p).is_ok_and(|p| log.holds(p) && excused & (1 << p) == 0));
    if let Some(held) = held {
        s.flag(Prop::LostOnlyGone, || {
            format!(
                "reported {from}..={to} lost while the server holds {held} (it holds {}..={})",
                log.earliest, log.published
            )
        });
    }
    if to > u64::from(log.published) {
        s.flag(Prop::Once, || {
            format!(
                "reported {from}..={to} lost, past the last published {}",
                log.published
            )
        });
    }
    s.topics[usize::from(t)].ghost.cursor = u8::try_from(to).unwrap_or(u8::MAX);
}

/// An acknowledgement about to be sent.
pub(crate) fn ack(s: &mut State, t: u8, upto: u64) {
    let cursor = s.topics[usize::from(t)].ghost.cursor;
    if upto > u64::from(cursor) {
        s.flag(Prop::AckDelivered, || {
            format!("acknowledged up to {upto} with only {cursor} delivered or reported lost")
        });
    }
}

/// A versioned delivery.
pub(crate) fn delivered_version(s: &mut State, t: u8, position: u64, item: Item) {
    let ghost = s.topics[usize::from(t)].ghost;
    match ghost.mount {
        None => s.flag(Prop::MountFirst, || {
            format!("version {position} delivered with no mount since the last resync or join")
        }),
        Some(mount) => {
            if position != u64::from(ghost.cursor) + 1
                || u64::from(item.pos) != position
                || item.inc != mount
            {
                s.flag(Prop::Consecutive, || {
                    format!(
                        "version {position} (the server's {} of incarnation {}) delivered after {} of mount {mount}",
                        item.pos, item.inc, ghost.cursor
                    )
                });
            }
        }
    }
    s.topics[usize::from(t)].ghost.cursor = item.pos;
    if let Some(room) = s.room.as_mut() {
        if room.shows == Some(t) {
            let shown = room.version;
            room.version = item.pos;
            if u64::from(shown) >= position {
                s.flag(Prop::RoomInOrder, || {
                    format!("the room showed version {shown} of topic {t}, then {position}")
                });
            }
        }
    }
}

/// The checks of the state a step reached.
pub(crate) fn after_step(m: &StreamsModel, s: &mut State) {
    if !m.quiet(s) {
        return;
    }
    match m.cfg.mode {
        StreamMode::Sequenced => {
            for t in 0..s.topics.len() {
                let topic = &s.topics[t];
                let (cursor, published) = (topic.ghost.cursor, topic.log.published);
                if cursor != published {
                    s.flag(Prop::NothingSilent, || {
                        format!("quiet with {published} published and only {cursor} delivered or reported lost")
                    });
                }
            }
        }
        StreamMode::Versioned => {
            for t in 0..s.topics.len() {
                let topic = &s.topics[t];
                if topic.stream.is_none() {
                    continue;
                }
                let (ghost, inc, version) = (topic.ghost, topic.inc, topic.version);
                if ghost.mount != Some(inc) || ghost.cursor != version {
                    s.flag(Prop::CaughtUp, || {
                        format!(
                            "quiet with topic {t} at version {} of mount {:?}, the server at {version} of {inc}",
                            ghost.cursor, ghost.mount
                        )
                    });
                }
            }
        }
    }
}

macro_rules! prop_fns {
    ($($f:ident => $p:expr),* $(,)?) => {
        $(fn $f(_: &StreamsModel, s: &State) -> bool {
            s.broken & $p.bit() == 0
        })*
    };
}

prop_fns! {
    holds_once => Prop::Once,
    holds_lost => Prop::LostOnlyGone,
    holds_silent => Prop::NothingSilent,
    holds_ack => Prop::AckDelivered,
    holds_mount => Prop::MountFirst,
    holds_consecutive => Prop::Consecutive,
    holds_caught_up => Prop::CaughtUp,
    holds_room => Prop::RoomInOrder,
}

macro_rules! milestone_fns {
    ($($f:ident => $m:expr),* $(,)?) => {
        $(fn $f(_: &StreamsModel, s: &State) -> bool {
            s.reached & $m.bit() != 0
        })*
    };
}

milestone_fns! {
    reached_replay => Milestone::ReplayRecovered,
    reached_join_replay => Milestone::JoinReplayed,
    reached_lost => Milestone::LossReported,
    reached_overflow => Milestone::Overflow,
    reached_trim => Milestone::Trimmed,
    reached_stale => Milestone::StaleIgnored,
    reached_remount => Milestone::Remounted,
    reached_skip => Milestone::SkipResynced,
    reached_switch => Milestone::Switched,
}

type Check = fn(&StreamsModel, &State) -> bool;

fn prop_fn(p: Prop) -> Check {
    match p {
        Prop::Once => holds_once,
        Prop::LostOnlyGone => holds_lost,
        Prop::NothingSilent => holds_silent,
        Prop::AckDelivered => holds_ack,
        Prop::MountFirst => holds_mount,
        Prop::Consecutive => holds_consecutive,
        Prop::CaughtUp => holds_caught_up,
        Prop::RoomInOrder => holds_room,
    }
}

fn milestone_fn(m: Milestone) -> Check {
    match m {
        Milestone::ReplayRecovered => reached_replay,
        Milestone::JoinReplayed => reached_join_replay,
        Milestone::LossReported => reached_lost,
        Milestone::Overflow => reached_overflow,
        Milestone::Trimmed => reached_trim,
        Milestone::StaleIgnored => reached_stale,
        Milestone::Remounted => reached_remount,
        Milestone::SkipResynced => reached_skip,
        Milestone::Switched => reached_switch,
    }
}

/// The property list of a mode: its invariants as `always`, its milestones
/// as `sometimes`.
pub fn properties(mode: StreamMode) -> Vec<Property<StreamsModel>> {
    let mut props: Vec<_> = Prop::of(mode)
        .iter()
        .map(|&p| Property::always(p.name(), prop_fn(p)))
        .collect();
    props.extend(
        Milestone::of(mode)
            .iter()
            .map(|&m| Property::sometimes(m.name(), milestone_fn(m))),
    );
    props
}
