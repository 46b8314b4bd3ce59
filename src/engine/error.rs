//! Typed errors for API misuse. Each message says what to do about it.

use std::sync::Arc;

/// Why a subscribe, switch or other request was refused. Nothing the
/// registry already held changes when one of these is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topic string is not acceptable.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The registry manages as many topics as it may.
    #[error(
        "the registry already manages {limit} topics: unsubscribe from one first, \
         or raise Limits::max_topics (the server may refuse more channels per socket)"
    )]
    TooManyTopics {
        /// The configured limit.
        limit: usize,
    },
    /// The topic has as many holders as it may.
    #[error(
        "topic {topic:?} already has {limit} holders: share one subscription, \
         or raise Limits::max_holders_per_topic"
    )]
    TooManyHolders {
        /// The topic.
        topic: Arc<str>,
        /// The configured limit.
        limit: usize,
    },
    /// A subscriber or room id too large to store (ids must be below 2^63).
    #[error(
        "id {id} is too large: subscriber and room ids must be below 2^63; use a counter \
         or a smaller hash"
    )]
    IdOutOfRange {
        /// The id.
        id: u64,
    },
    /// A second holder asked for the topic with other join options.
    #[error(
        "topic {topic:?} is already joined with other join params or settling: \
         one channel per topic has one set of params; subscribe with the same ones, \
         or unsubscribe everyone first"
    )]
    ParamsConflict {
        /// The topic.
        topic: Arc<str>,
    },
}

/// Why a topic string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The empty string.
    #[error("topic is empty: pass a Phoenix topic such as \"room:42\"")]
    Empty,
    /// Leading or trailing whitespace.
    #[error("topic {0:?} starts or ends with whitespace: trim it first")]
    Padded(String),
    /// A control character.
    #[error("topic {topic:?} has a control character at byte {at}: topics must be printable")]
    ControlChar {
        /// The topic.
        topic: String,
        /// Byte offset of the character.
        at: usize,
    },
    /// An invisible formatting character (zero-width, bidirectional override
    /// or isolate, byte-order mark): two topics that print alike must be the
    /// same topic, and logs must show what a topic really is.
    #[error(
        "topic {topic:?} has the invisible character U+{code:04X} at byte {at}: remove it \
         (zero-width and bidirectional control characters make topics that look alike differ)"
    )]
    InvisibleChar {
        /// The topic.
        topic: String,
        /// Byte offset of the character.
        at: usize,
        /// The character's code point.
        code: u32,
    },
    /// Longer than the limit.
    #[error("topic is {len} bytes long, over the limit of {max}: shorten it or raise Limits::max_topic_len")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
}

/// Why a [`Config`](crate::engine::Config) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_attempts` is zero.
    #[error("max_attempts is 0: a topic needs at least one join attempt; use 1 or more")]
    ZeroAttempts,
    /// `rejoin_backoff` is empty.
    #[error("rejoin_backoff is empty: give at least one delay, e.g. [1 s]")]
    EmptyBackoff,
    /// A limit is zero.
    #[error("a limit is 0: every limit must allow at least one")]
    ZeroLimit,
    /// Jitter over 100 %.
    #[error("jitter_permille is {0}: use 0 to 1000 (thousandths of the retry delay)")]
    Jitter(u16),
}

/// Checks a topic string. The usual printable-ASCII topic is checked in one
/// branch-free pass; anything else takes the careful path.
pub(crate) fn validate_topic(topic: &str, max_len: usize) -> Result<(), TopicError> {
    let bytes = topic.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(TopicError::Empty);
    };
    if topic.len() > max_len {
        return Err(TopicError::TooLong {
            len: topic.len(),
            max: max_len,
        });
    }
    // Printable ASCII is 0x20..=0x7e: `b - 0x20` below 0x5f. No early exit,
    // so the loop vectorises.
    let outside = bytes
        .iter()
        .fold(0u8, |acc, &b| acc | u8::from(b.wrapping_sub(0x20) >= 0x5f));
    if outside == 0 && first != b' ' && last != b' ' {
        return Ok(());
    }
    if topic.starts_with(char::is_whitespace) || topic.ends_with(char::is_whitespace) {
        return Err(TopicError::Padded(topic.to_owned()));
    }
    for (at, c) in topic.char_indices() {
        if c.is_control() {
            return Err(TopicError::ControlChar {
                topic: topic.to_owned(),
                at,
            });
        }
        if is_invisible(c) {
            return Err(TopicError::InvisibleChar {
                topic: topic.to_owned(),
                at,
                code: u32::from(c),
            });
        }
    }
    Ok(())
}

/// Zero-width characters, bidirectional embeddings, overrides, isolates and
/// marks, and the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}
