//! Identities: who holds a topic, and which join an input belongs to.

use std::fmt;
use std::num::NonZeroU64;

/// An opaque id of one consumer of topics, chosen by the application.
///
/// Subscribing the same id twice to one topic is idempotent (set semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(pub u64);

/// The name of a [room](crate::engine::Engine::switch): a handle that follows
/// one topic at a time and hands over between versions without flicker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

/// Something that keeps a topic alive: a subscriber, or a room that shows the
/// topic or is switching to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Holder {
    /// A subscriber of the application.
    Subscriber(SubscriberId),
    /// A room.
    Room(RoomId),
}

/// The ref of the `phx_join` that created an incarnation. Minted by the engine
/// from a counter, never reused, so a reply for an older join is always
/// recognisable as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinRef(NonZeroU64);

impl JoinRef {
    /// The numeric value (what goes on the wire as a decimal string).
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// A join ref from its numeric value; `None` for zero, which is never minted.
    pub const fn new(value: u64) -> Option<JoinRef> {
        match NonZeroU64::new(value) {
            Some(v) => Some(JoinRef(v)),
            None => None,
        }
    }

    /// Parses the wire form (a decimal string). Anything else is `None`: such a
    /// ref was not minted by this engine and so is stale by definition.
    pub fn parse(text: &str) -> Option<JoinRef> {
        text.parse::<u64>().ok().and_then(JoinRef::new)
    }
}

impl fmt::Display for JoinRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
