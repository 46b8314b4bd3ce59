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

/// A handle to a topic the engine manages: what outputs carry, and what
/// inputs accept next to the topic's name, so only the first call for a topic
/// hashes its name. `Copy`, 8 bytes.
///
/// A handle is valid while the topic is managed; once the engine removed the
/// topic ([`Event::TopicRemoved`](crate::engine::Event::TopicRemoved), or an
/// [`Effect::End`](crate::engine::Effect::End) with `removed`), inputs with
/// it are ignored as for an unknown topic, and the slot it names is reused
/// under a new generation. Its name stays readable with
/// [`Engine::topic_name`](crate::engine::Engine::topic_name) until the
/// outputs that name it have been polled.
///
/// [`TopicId::index`] is dense (slots are reused), so a driver can keep its
/// own per-topic state in a `Vec` indexed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId {
    slot: u32,
    generation: u32,
}

impl TopicId {
    pub(crate) const fn new(slot: u32, generation: u32) -> TopicId {
        TopicId { slot, generation }
    }

    pub(crate) const fn slot(self) -> u32 {
        self.slot
    }

    pub(crate) const fn generation(self) -> u32 {
        self.generation
    }

    /// A small dense number for side tables: no two topics managed at the
    /// same time share it (a topic created later may reuse it).
    pub const fn index(self) -> usize {
        self.slot as usize
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

/// A topic named in an input: by its name, or by the [`TopicId`] an output or
/// a subscribe returned (which skips hashing the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TopicRef<'a> {
    /// By name.
    Name(&'a str),
    /// By handle.
    Id(TopicId),
}

impl<'a> From<&'a str> for TopicRef<'a> {
    fn from(name: &'a str) -> Self {
        TopicRef::Name(name)
    }
}

impl<'a> From<&'a String> for TopicRef<'a> {
    fn from(name: &'a String) -> Self {
        TopicRef::Name(name)
    }
}

impl<'a> From<&'a std::sync::Arc<str>> for TopicRef<'a> {
    fn from(name: &'a std::sync::Arc<str>) -> Self {
        TopicRef::Name(name)
    }
}

impl From<TopicId> for TopicRef<'_> {
    fn from(id: TopicId) -> Self {
        TopicRef::Id(id)
    }
}

impl From<&TopicId> for TopicRef<'_> {
    fn from(id: &TopicId) -> Self {
        TopicRef::Id(*id)
    }
}
