//! The model's vocabulary of engine outputs: every effect and event one step
//! at a time, with topics named (the model compares engines by what they do
//! to named topics, and the reference port has no topic handles).
//!
//! The real engine's compact outputs map onto it one to one or one to a
//! few, in order: a join is `CreateResources`, `Join` and the new
//! incarnation's `PhaseChanged`; an end is `Leave` (when it leaves),
//! `DestroyResources`, and `TopicRemoved` when the topic went with it.

use std::sync::Arc;
use std::time::Duration;

use channel_registry::engine::{
    self as engine, FailReason, IgnoreReason, InputKind, JoinRef, Phase, RoomId, Trigger,
};

/// One output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Work for the driver.
    Effect(Effect),
    /// News for the application.
    Event(Event),
}

/// Work for the driver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Effect {
    /// Send `phx_join`.
    Join { topic: Arc<str>, join_ref: JoinRef },
    /// Send `phx_leave`.
    Leave { topic: Arc<str>, join_ref: JoinRef },
    /// Create the incarnation's resources.
    CreateResources { topic: Arc<str>, join_ref: JoinRef },
    /// Start settling.
    StartSettling { topic: Arc<str>, join_ref: JoinRef },
    /// Stop settling.
    AbortSettling { topic: Arc<str>, join_ref: JoinRef },
    /// Destroy the incarnation's resources.
    DestroyResources { topic: Arc<str>, join_ref: JoinRef },
}

/// News for the application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Event {
    /// A phase change; `from` and `trigger` are `None` for a new incarnation.
    PhaseChanged {
        topic: Arc<str>,
        join_ref: JoinRef,
        from: Option<Phase>,
        to: Phase,
        trigger: Option<Trigger>,
    },
    /// A retry is scheduled.
    Retrying {
        topic: Arc<str>,
        attempt: u8,
        delay: Duration,
        reason: FailReason,
    },
    /// The topic gave up.
    TopicFailed { topic: Arc<str>, reason: FailReason },
    /// The topic is no longer managed.
    TopicRemoved { topic: Arc<str> },
    /// A room shows a topic.
    RoomShows { room: RoomId, topic: Arc<str> },
    /// A room's switch failed.
    RoomSwitchFailed {
        room: RoomId,
        topic: Arc<str>,
        reason: FailReason,
    },
    /// An input was ignored (`topic` is `None` for a topic the engine does
    /// not manage).
    Ignored {
        topic: Option<Arc<str>>,
        join_ref: JoinRef,
        input: InputKind,
        reason: IgnoreReason,
    },
}

/// The model's outputs for one output of the real engine, polled just now
/// (so `engine` can still name its topic); `names` are the model's topics,
/// shared instead of copied.
pub fn expand(
    engine: &engine::Engine,
    names: &[Arc<str>],
    o: engine::Output,
    out: &mut Vec<Output>,
) {
    let name = |id| -> Arc<str> {
        let name = engine
            .topic_name(id)
            .expect("an output's topic can be named until the next input");
        names
            .iter()
            .find(|n| &***n == name)
            .cloned()
            .unwrap_or_else(|| Arc::from(name))
    };
    match o {
        engine::Output::Effect(e) => match e {
            engine::Effect::Join { topic, join_ref } => {
                let topic = name(topic);
                out.push(Output::Effect(Effect::CreateResources {
                    topic: topic.clone(),
                    join_ref,
                }));
                out.push(Output::Effect(Effect::Join {
                    topic: topic.clone(),
                    join_ref,
                }));
                out.push(Output::Event(Event::PhaseChanged {
                    topic,
                    join_ref,
                    from: None,
                    to: Phase::Connecting,
                    trigger: None,
                }));
            }
            engine::Effect::StartSettling { topic, join_ref } => {
                out.push(Output::Effect(Effect::StartSettling {
                    topic: name(topic),
                    join_ref,
                }));
            }
            engine::Effect::AbortSettling { topic, join_ref } => {
                out.push(Output::Effect(Effect::AbortSettling {
                    topic: name(topic),
                    join_ref,
                }));
            }
            engine::Effect::End {
                topic,
                join_ref,
                leave,
                removed,
            } => {
                let topic = name(topic);
                if leave {
                    out.push(Output::Effect(Effect::Leave {
                        topic: topic.clone(),
                        join_ref,
                    }));
                }
                out.push(Output::Effect(Effect::DestroyResources {
                    topic: topic.clone(),
                    join_ref,
                }));
                if removed {
                    out.push(Output::Event(Event::TopicRemoved { topic }));
                }
            }
            other => panic!("the model does not know the effect {other:?}"),
        },
        engine::Output::Event(e) => out.push(Output::Event(match e {
            engine::Event::PhaseChanged {
                topic,
                join_ref,
                from,
                to,
                trigger,
            } => Event::PhaseChanged {
                topic: name(topic),
                join_ref,
                from: Some(from),
                to,
                trigger: Some(trigger),
            },
            engine::Event::Retrying {
                topic,
                attempt,
                delay,
                reason,
            } => Event::Retrying {
                topic: name(topic),
                attempt,
                delay,
                reason,
            },
            engine::Event::TopicFailed { topic, reason } => Event::TopicFailed {
                topic: name(topic),
                reason,
            },
            engine::Event::TopicRemoved { topic } => Event::TopicRemoved { topic: name(topic) },
            engine::Event::RoomShows { room, topic } => Event::RoomShows {
                room,
                topic: name(topic),
            },
            engine::Event::RoomSwitchFailed {
                room,
                topic,
                reason,
            } => Event::RoomSwitchFailed {
                room,
                topic: name(topic),
                reason,
            },
            engine::Event::Ignored {
                topic,
                join_ref,
                input,
                reason,
            } => Event::Ignored {
                topic: topic.map(name),
                join_ref,
                input,
                reason,
            },
            other => panic!("the model does not know the event {other:?}"),
        })),
        other => panic!("the model does not know the output {other:?}"),
    }
}
