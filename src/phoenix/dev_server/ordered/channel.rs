//! The channel handlers of ordered topics: a join subscribes the incarnation to its topic's
//! log and pushes what it is owed; the subscription ends when the incarnation does (the
//! handler is dropped with its channel, whatever ended it).

use std::sync::Arc;

use serde_json::{json, Value};

use super::fanout::Subscriber;
use super::{OrderedKind, OrderedTopics, SequencedFormat};
use crate::phoenix::codec::Payload;
use crate::phoenix::dev_server::handler::{
    ChannelContext, ChannelHandler, HandleOutcome, HandlerFactory, JoinOutcome,
};
use crate::phoenix::dev_server::registry::Shared;

/// The factory of an ordered route.
pub(crate) fn factory(kind: OrderedKind) -> HandlerFactory {
    Arc::new(move |_topic: &str| -> Box<dyn ChannelHandler> {
        Box::new(OrderedChannel {
            kind: kind.clone(),
            subscription: None,
        })
    })
}

/// One incarnation of an ordered topic.
struct OrderedChannel {
    kind: OrderedKind,
    subscription: Option<Subscription>,
}

/// A subscription to a topic's log, ended when dropped, like a PubSub subscription ends
/// with its process.
struct Subscription {
    server: Arc<Shared>,
    topic: String,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let (topic, id) = (&self.topic, self.id);
        self.server
            .ordered_update(|topics: &mut OrderedTopics| topics.unsubscribe(topic, id));
    }
}

impl ChannelHandler for OrderedChannel {
    fn join(&mut self, ctx: &mut ChannelContext<'_>, params: &Payload) -> JoinOutcome {
        let topic = ctx.topic().to_owned();
        let subscriber = Subscriber {
            id: 0,
            socket: ctx.socket(),
            join_ref: ctx.join_ref().to_owned(),
            incarnation: ctx.incarnation,
            commands: ctx.commands.clone(),
            version: 0,
        };
        let server = Arc::clone(ctx.server);
        match &self.kind {
            OrderedKind::Sequenced(format) => {
                let name = &format.last_seq_param;
                let last_seq = match params.as_json().and_then(|params| params.get(name)) {
                    None | Some(Value::Null) => 0,
                    Some(value) => match value.as_u64() {
                        Some(last_seq) => last_seq,
                        None => return JoinOutcome::Error(not_a_number(name, value)),
                    },
                };
                let (id, earliest, replay) = server.ordered_update(|topics| {
                    topics.join_sequenced(&topic, format, subscriber, last_seq)
                });
                for event in replay {
                    ctx.push(format.event.as_str(), event);
                }
                self.subscription = Some(Subscription { server, topic, id });
                JoinOutcome::Ok(json!({ format.earliest_field.as_str(): earliest }))
            }
            OrderedKind::Versioned(format) => {
                let (id, mount) =
                    server.ordered_update(|topics| topics.mount(&topic, format, subscriber));
                ctx.push(format.event.as_str(), mount);
                self.subscription = Some(Subscription { server, topic, id });
                JoinOutcome::Ok(json!({}))
            }
        }
    }

    fn handle_in(
        &mut self,
        ctx: &mut ChannelContext<'_>,
        event: &str,
        payload: Payload,
    ) -> HandleOutcome {
        match &self.kind {
            OrderedKind::Sequenced(format) if event == format.ack_event => {
                ack(ctx, format, &payload)
            }
            OrderedKind::Sequenced(format) if event == format.replay_event => {
                replay(ctx, format, &payload)
            }
            // No `handle_in` clause matches: the channel process raises.
            OrderedKind::Sequenced(_) | OrderedKind::Versioned(_) => HandleOutcome::Crash,
        }
    }
}

fn ack(
    ctx: &mut ChannelContext<'_>,
    format: &Arc<SequencedFormat>,
    payload: &Payload,
) -> HandleOutcome {
    let name = &format.ack_field;
    let seq = match number_field(payload, name) {
        Ok(seq) => seq,
        Err(response) => return HandleOutcome::error(response),
    };
    let (topic, socket) = (ctx.topic(), ctx.socket());
    match ctx
        .server
        .ordered_update(|topics| topics.ack(topic, format, socket, seq))
    {
        Ok(()) => HandleOutcome::ok(json!({})),
        Err(beyond) => HandleOutcome::error(json!({
            "reason": format!(
                "{name} {seq} is beyond the last event, {}: acknowledge only what was received",
                beyond.last
            ),
            "last_seq": beyond.last,
        })),
    }
}

fn replay(
    ctx: &mut ChannelContext<'_>,
    format: &Arc<SequencedFormat>,
    payload: &Payload,
) -> HandleOutcome {
    let from = match number_field(payload, &format.replay_from_field) {
        Ok(from) => from,
        Err(response) => return HandleOutcome::error(response),
    };
    let topic = ctx.topic().to_owned();
    match ctx
        .server
        .ordered_update(|topics| topics.replay(&topic, format, from))
    {
        Ok(events) => {
            for event in events {
                ctx.push(format.event.as_str(), event);
            }
            HandleOutcome::ok(json!({}))
        }
        Err(gap) => HandleOutcome::error(json!({ format.earliest_field.as_str(): gap.earliest })),
    }
}

/// The non-negative integer field `name` of a push's payload, or the error response.
fn number_field(payload: &Payload, name: &str) -> Result<u64, Value> {
    match payload.as_json().and_then(|payload| payload.get(name)) {
        Some(value) => value.as_u64().ok_or_else(|| not_a_number(name, value)),
        None => {
            Err(json!({"reason": format!("the payload needs \"{name}\", a non-negative integer")}))
        }
    }
}

fn not_a_number(name: &str, value: &Value) -> Value {
    json!({"reason": format!("\"{name}\" must be a non-negative integer, not {value}")})
}
