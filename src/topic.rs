//! Typed topic names for multi-tenant applications:
//! `[tenant:TENANT_ID:]TYPE:ENTITY_TYPE:ENTITY_ID`.
//!
//! Many applications name one channel per entity and per kind of traffic —
//! `presence:contact:123`, `broadcast:document:789` — and, when several
//! tenants share a server, put the tenant in front:
//! `tenant:abc:presence:contact:123`. Built by hand, such names drift
//! (`presence:contact:123` next to `presence:contact: 123`), collide across
//! tenants, or let one tenant's input name another tenant's channel.
//! [`EntityTopic`] builds and parses them with every part validated, so a
//! name either follows the scheme exactly or is refused with a
//! [`TopicNameError`] that says what is wrong; [`TenantId::scope`] decides
//! whether a topic belongs to a tenant.
//!
//! Pure: no IO, nothing but strings.
//!
//! ```
//! use channel_registry::topic::{ChannelKind, EntityTopic, ScopeError, TenantId};
//!
//! let tenant = TenantId::new("abc")?;
//! let topic = EntityTopic::presence("contact", "123")?.in_tenant(tenant.clone());
//! assert_eq!(topic.to_string(), "tenant:abc:presence:contact:123");
//!
//! // Parsing gives back the same parts.
//! let parsed: EntityTopic = "tenant:abc:presence:contact:123".parse()?;
//! assert_eq!(parsed, topic);
//! assert_eq!(parsed.kind(), &ChannelKind::Presence);
//! assert_eq!(parsed.entity_id().as_str(), "123");
//!
//! // A tenant scopes unscoped names and refuses other tenants' names.
//! assert_eq!(tenant.scope("broadcast:document:9")?.to_string(), "tenant:abc:broadcast:document:9");
//! assert!(matches!(
//!     tenant.scope("tenant:xyz:presence:contact:123"),
//!     Err(ScopeError::OtherTenant { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// The word that starts a tenant-scoped topic.
pub const TENANT_PREFIX: &str = "tenant";

/// Longest part of a topic, in bytes.
pub const MAX_PART_LEN: usize = 64;

/// Longest whole topic, in bytes: the engine's default topic limit, and the
/// most a binary frame can carry.
pub const MAX_TOPIC_LEN: usize = 255;

/// Which part of a topic name an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// `TENANT_ID`.
    Tenant,
    /// `TYPE` (presence, subscription, broadcast, …).
    Kind,
    /// `ENTITY_TYPE`.
    EntityType,
    /// `ENTITY_ID`.
    EntityId,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Tenant => "tenant id",
            Part::Kind => "channel type",
            Part::EntityType => "entity type",
            Part::EntityId => "entity id",
        })
    }
}

/// Why a topic name or one of its parts was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicNameError {
    /// A part is empty.
    #[error("the {part} is empty: every part of a topic name needs at least one character")]
    Empty {
        /// The part.
        part: Part,
    },
    /// A part holds a character other than visible ASCII, or a colon.
    #[error(
        "the {part} {value:?} has {found:?} at byte {at}: parts are visible ASCII without ':' \
         (the separator), so that names that print alike are the same name; encode the value \
         (e.g. as hex or a slug) first"
    )]
    BadChar {
        /// The part.
        part: Part,
        /// The part as given.
        value: String,
        /// The character refused.
        found: char,
        /// Its byte offset in the part.
        at: usize,
    },
    /// A part is longer than [`MAX_PART_LEN`].
    #[error("the {part} is {len} bytes long, over the limit of {max}: use a shorter id")]
    PartTooLong {
        /// The part.
        part: Part,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The whole name is longer than [`MAX_TOPIC_LEN`].
    #[error("the topic is {len} bytes long, over the limit of {max}: use shorter parts")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `tenant` used as a channel type: it would make the name ambiguous.
    #[error(
        "\"tenant\" cannot be a channel type: it starts tenant-scoped names; pick another type"
    )]
    ReservedKind,
    /// The name does not have the scheme's parts.
    #[error(
        "topic {topic:?} does not follow TYPE:ENTITY_TYPE:ENTITY_ID or \
         tenant:TENANT_ID:TYPE:ENTITY_TYPE:ENTITY_ID (it has {parts} parts): build it with \
         EntityTopic instead of by hand"
    )]
    Shape {
        /// The name as given.
        topic: String,
        /// How many `:`-separated parts it has.
        parts: usize,
    },
}

/// Why a topic cannot be used by a tenant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The topic is not a valid name of the scheme.
    #[error(transparent)]
    Name(#[from] TopicNameError),
    /// The topic belongs to another tenant.
    #[error(
        "topic {topic:?} belongs to tenant {found:?}, not to {expected:?}: a tenant's client \
         only reaches its own topics; use that tenant's client, or pass the name without its \
         tenant prefix"
    )]
    OtherTenant {
        /// The topic as given.
        topic: String,
        /// The tenant it names.
        found: TenantId,
        /// The tenant asked.
        expected: TenantId,
    },
}

/// One validated part of a topic name: 1 to [`MAX_PART_LEN`] bytes of
/// visible ASCII (`!` to `~`) without `:`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPart(Box<str>);

impl TopicPart {
    /// A part for the entity type or id, checked.
    pub fn new(value: impl AsRef<str>) -> Result<TopicPart, TopicNameError> {
        TopicPart::checked(value.as_ref(), Part::EntityId)
    }

    fn checked(value: &str, part: Part) -> Result<TopicPart, TopicNameError> {
        if value.is_empty() {
            return Err(TopicNameError::Empty { part });
        }
        if let Some((at, found)) = value
            .char_indices()
            .find(|&(_, c)| !c.is_ascii_graphic() || c == ':')
        {
            return Err(TopicNameError::BadChar {
                part,
                value: value.to_owned(),
                found,
                at,
            });
        }
        if value.len() > MAX_PART_LEN {
            return Err(TopicNameError::PartTooLong {
                part,
                len: value.len(),
                max: MAX_PART_LEN,
            });
        }
        Ok(TopicPart(value.into()))
    }

    /// The part as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TopicPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicPart {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicPart {
    type Err = TopicNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicPart::new(s)
    }
}

/// A tenant's id: the `TENANT_ID` of `tenant:TENANT_ID:…`, validated like
/// every [`TopicPart`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(TopicPart);

impl TenantId {
    /// A tenant id, checked.
    pub fn new(id: impl AsRef<str>) -> Result<TenantId, TopicNameError> {
        TopicPart::checked(id.as_ref(), Part::Tenant).map(TenantId)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The prefix of this tenant's topics, `tenant:ID:`.
    pub fn prefix(&self) -> String {
        format!("{TENANT_PREFIX}:{}:", self.0)
    }

    /// Whether `topic` is one of this tenant's (checked by prefix only).
    pub fn owns(&self, topic: &str) -> bool {
        topic
            .strip_prefix(TENANT_PREFIX)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.strip_prefix(self.as_str()))
            .is_some_and(|rest| rest.starts_with(':'))
    }

    /// This tenant's topic for `topic`: an unscoped name
    /// (`TYPE:ENTITY_TYPE:ENTITY_ID`) gets the tenant's prefix, a name of this
    /// tenant is kept, a name of another tenant or one outside the scheme is
    /// refused.
    pub fn scope(&self, topic: &str) -> Result<EntityTopic, ScopeError> {
        let parsed = EntityTopic::parse(topic)?;
        match parsed.tenant() {
            None => Ok(parsed.in_tenant(self.clone())),
            Some(found) if found == self => Ok(parsed),
            Some(found) => Err(ScopeError::OtherTenant {
                topic: topic.to_owned(),
                found: found.clone(),
                expected: self.clone(),
            }),
        }
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for TenantId {
    type Err = TopicNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::new(s)
    }
}

impl TryFrom<&str> for TenantId {
    type Error = TopicNameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        TenantId::new(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = TopicNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        TenantId::new(s)
    }
}

/// The `TYPE` of a topic: what kind of traffic its channel carries. The
/// three of the naming scheme, or another name of the application's.
///
/// Two kinds are equal when their names are: `Custom` never holds one of the
/// named kinds (the constructors map `"presence"` to [`ChannelKind::Presence`]).
#[derive(Clone, Debug, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ChannelKind {
    /// `presence`: who is on an entity.
    Presence,
    /// `subscription`: changes of an entity.
    Subscription,
    /// `broadcast`: messages between clients about an entity.
    Broadcast,
    /// Another type (never `tenant`).
    Custom(TopicPart),
}

impl ChannelKind {
    /// The kind named `name`: one of the three, or a custom one.
    pub fn new(name: &str) -> Result<ChannelKind, TopicNameError> {
        Ok(match name {
            "presence" => ChannelKind::Presence,
            "subscription" => ChannelKind::Subscription,
            "broadcast" => ChannelKind::Broadcast,
            TENANT_PREFIX => return Err(TopicNameError::ReservedKind),
            other => ChannelKind::Custom(TopicPart::checked(other, Part::Kind)?),
        })
    }

    /// The kind's name, as it appears in topics.
    pub fn as_str(&self) -> &str {
        match self {
            ChannelKind::Presence => "presence",
            ChannelKind::Subscription => "subscription",
            ChannelKind::Broadcast => "broadcast",
            ChannelKind::Custom(part) => part.as_str(),
        }
    }
}

impl PartialEq for ChannelKind {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ChannelKind {}

impl std::hash::Hash for ChannelKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = TopicNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::new(s)
    }
}

/// A topic of the scheme `[tenant:TENANT_ID:]TYPE:ENTITY_TYPE:ENTITY_ID`,
/// every part validated. `Display` writes the topic; `FromStr` reads it back
/// into equal parts. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityTopic {
    tenant: Option<TenantId>,
    kind: ChannelKind,
    entity_type: TopicPart,
    entity_id: TopicPart,
}

impl EntityTopic {
    /// `KIND:ENTITY_TYPE:ENTITY_ID`, without a tenant.
    pub fn new(
        kind: ChannelKind,
        entity_type: impl AsRef<str>,
        entity_id: impl AsRef<str>,
    ) -> Result<EntityTopic, TopicNameError> {
        Ok(EntityTopic {
            tenant: None,
            kind,
            entity_type: TopicPart::checked(entity_type.as_ref(), Part::EntityType)?,
            entity_id: TopicPart::checked(entity_id.as_ref(), Part::EntityId)?,
        })
    }

    /// `presence:ENTITY_TYPE:ENTITY_ID`.
    pub fn presence(
        entity_type: impl AsRef<str>,
        entity_id: impl AsRef<str>,
    ) -> Result<EntityTopic, TopicNameError> {
        EntityTopic::new(ChannelKind::Presence, entity_type, entity_id)
    }

    /// `subscription:ENTITY_TYPE:ENTITY_ID`.
    pub fn subscription(
        entity_type: impl AsRef<str>,
        entity_id: impl AsRef<str>,
    ) -> Result<EntityTopic, TopicNameError> {
        EntityTopic::new(ChannelKind::Subscription, entity_type, entity_id)
    }

    /// `broadcast:ENTITY_TYPE:ENTITY_ID`.
    pub fn broadcast(
        entity_type: impl AsRef<str>,
        entity_id: impl AsRef<str>,
    ) -> Result<EntityTopic, TopicNameError> {
        EntityTopic::new(ChannelKind::Broadcast, entity_type, entity_id)
    }

    /// The same topic in `tenant` (replacing any tenant it had).
    #[must_use]
    pub fn in_tenant(mut self, tenant: TenantId) -> EntityTopic {
        self.tenant = Some(tenant);
        self
    }

    /// The same topic without a tenant.
    #[must_use]
    pub fn without_tenant(mut self) -> EntityTopic {
        self.tenant = None;
        self
    }

    /// Reads a topic name back into its parts.
    pub fn parse(topic: &str) -> Result<EntityTopic, TopicNameError> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicNameError::TooLong {
                len: topic.len(),
                max: MAX_TOPIC_LEN,
            });
        }
        let parts: Vec<&str> = topic.split(':').collect();
        match parts.as_slice() {
            [TENANT_PREFIX, tenant, kind, entity_type, entity_id] => {
                let tenant = TenantId::new(tenant)?;
                Ok(
                    EntityTopic::new(ChannelKind::new(kind)?, entity_type, entity_id)?
                        .in_tenant(tenant),
                )
            }
            [kind, entity_type, entity_id] => {
                EntityTopic::new(ChannelKind::new(kind)?, entity_type, entity_id)
            }
            _ => Err(TopicNameError::Shape {
                topic: topic.to_owned(),
                parts: parts.len(),
            }),
        }
    }

    /// The tenant, if the topic is scoped to one.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// The channel type.
    pub fn kind(&self) -> &ChannelKind {
        &self.kind
    }

    /// The entity type.
    pub fn entity_type(&self) -> &TopicPart {
        &self.entity_type
    }

    /// The entity id.
    pub fn entity_id(&self) -> &TopicPart {
        &self.entity_id
    }

    /// The topic string; fails only when it would be longer than
    /// [`MAX_TOPIC_LEN`] (a tenant prefix on parts near their limit).
    pub fn to_topic(&self) -> Result<String, TopicNameError> {
        let topic = self.to_string();
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicNameError::TooLong {
                len: topic.len(),
                max: MAX_TOPIC_LEN,
            });
        }
        Ok(topic)
    }
}

impl fmt::Display for EntityTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tenant) = &self.tenant {
            write!(f, "{TENANT_PREFIX}:{tenant}:")?;
        }
        write!(f, "{}:{}:{}", self.kind, self.entity_type, self.entity_id)
    }
}

impl FromStr for EntityTopic {
    type Err = TopicNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityTopic::parse(s)
    }
}

impl TryFrom<&str> for EntityTopic {
    type Error = TopicNameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        EntityTopic::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).expect("a valid tenant id")
    }

    #[test]
    fn the_seed_examples_parse_and_print_back() {
        for name in [
            "presence:contact:123",
            "subscription:project:456",
            "broadcast:document:789",
            "tenant:abc:presence:contact:123",
            "doc:workflow:6f1c2a7e-0b7e-4c59",
        ] {
            let topic = EntityTopic::parse(name).expect(name);
            assert_eq!(topic.to_string(), name);
            assert_eq!(topic.to_topic().as_deref(), Ok(name));
        }
        let scoped = EntityTopic::parse("tenant:abc:presence:contact:123").unwrap();
        assert_eq!(scoped.tenant(), Some(&tenant("abc")));
        assert_eq!(scoped.kind(), &ChannelKind::Presence);
        assert_eq!(scoped.entity_type().as_str(), "contact");
        assert_eq!(scoped.entity_id().as_str(), "123");
        assert_eq!(
            scoped.clone().without_tenant().to_string(),
            "presence:contact:123"
        );
    }

    #[test]
    fn kinds_are_equal_by_name() {
        let custom = ChannelKind::Custom(TopicPart::new("presence").unwrap());
        assert_eq!(custom, ChannelKind::Presence);
        assert_eq!(ChannelKind::new("presence"), Ok(ChannelKind::Presence));
        assert_eq!(ChannelKind::new("doc").unwrap().as_str(), "doc");
        assert_eq!(
            ChannelKind::new("tenant"),
            Err(TopicNameError::ReservedKind)
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_part_at_fault() {
        let cases: [(&str, TopicNameError); 7] = [
            (
                "presence:contact:",
                TopicNameError::Empty {
                    part: Part::EntityId,
                },
            ),
            (
                "tenant::presence:contact:1",
                TopicNameError::Empty { part: Part::Tenant },
            ),
            (
                "presence:con tact:1",
                TopicNameError::BadChar {
                    part: Part::EntityType,
                    value: "con tact".to_owned(),
                    found: ' ',
                    at: 3,
                },
            ),
            (
                "presence:contact:é",
                TopicNameError::BadChar {
                    part: Part::EntityId,
                    value: "é".to_owned(),
                    found: 'é',
                    at: 0,
                },
            ),
            ("tenant:contact:1", TopicNameError::ReservedKind),
            (
                "presence:contact",
                TopicNameError::Shape {
                    topic: "presence:contact".to_owned(),
                    parts: 2,
                },
            ),
            (
                "other:abc:presence:contact:1",
                TopicNameError::Shape {
                    topic: "other:abc:presence:contact:1".to_owned(),
                    parts: 5,
                },
            ),
        ];
        for (name, error) in cases {
            assert_eq!(EntityTopic::parse(name), Err(error), "{name}");
        }
        let long = "x".repeat(MAX_PART_LEN + 1);
        assert_eq!(
            EntityTopic::presence("contact", &long),
            Err(TopicNameError::PartTooLong {
                part: Part::EntityId,
                len: MAX_PART_LEN + 1,
                max: MAX_PART_LEN,
            })
        );
        assert!(matches!(
            EntityTopic::parse(&"x:".repeat(200)),
            Err(TopicNameError::TooLong { .. })
        ));
        let wide = "y".repeat(MAX_PART_LEN);
        let topic = EntityTopic::new(ChannelKind::new(&wide).unwrap(), &wide, &wide)
            .unwrap()
            .in_tenant(tenant(&wide));
        assert!(matches!(
            topic.to_topic(),
            Err(TopicNameError::TooLong { .. })
        ));
        let message = TopicNameError::Shape {
            topic: "a:b".to_owned(),
            parts: 2,
        }
        .to_string();
        assert!(message.contains("EntityTopic"), "{message}");
    }

    #[test]
    fn a_tenant_scopes_its_names_and_refuses_others() {
        let abc = tenant("abc");
        assert_eq!(abc.prefix(), "tenant:abc:");
        assert_eq!(
            abc.scope("presence:contact:1").unwrap().to_string(),
            "tenant:abc:presence:contact:1"
        );
        assert_eq!(
            abc.scope("tenant:abc:presence:contact:1")
                .unwrap()
                .to_string(),
            "tenant:abc:presence:contact:1"
        );
        assert_eq!(
            abc.scope("tenant:abcd:presence:contact:1"),
            Err(ScopeError::OtherTenant {
                topic: "tenant:abcd:presence:contact:1".to_owned(),
                found: tenant("abcd"),
                expected: abc.clone(),
            })
        );
        assert!(matches!(
            abc.scope("room:lobby"),
            Err(ScopeError::Name(TopicNameError::Shape { .. }))
        ));
        assert!(abc.owns("tenant:abc:presence:contact:1"));
        assert!(!abc.owns("tenant:abcd:presence:contact:1"));
        assert!(!abc.owns("tenant:ab:presence:contact:1"));
        assert!(!abc.owns("presence:contact:1"));
        assert!(TenantId::new("a:b").is_err());
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn part() -> impl Strategy<Value = String> {
        "[!-9;-~]{1,20}"
    }

    proptest! {
        #[test]
        fn built_names_print_and_parse_back(
            tenant in proptest::option::of(part()),
            kind in part(),
            entity_type in part(),
            entity_id in part(),
        ) {
            prop_assume!(kind != TENANT_PREFIX);
            let kind = ChannelKind::new(&kind).unwrap();
            let mut topic = EntityTopic::new(kind, &entity_type, &entity_id).unwrap();
            if let Some(tenant) = &tenant {
                topic = topic.in_tenant(TenantId::new(tenant).unwrap());
            }
            let name = topic.to_topic().unwrap();
            prop_assert_eq!(EntityTopic::parse(&name), Ok(topic));
        }

        #[test]
        fn any_string_parses_to_itself_or_is_refused(name in "[a-c:é ]{0,24}") {
            if let Ok(topic) = EntityTopic::parse(&name) {
                prop_assert_eq!(topic.to_string(), name);
            }
        }
    }
}
