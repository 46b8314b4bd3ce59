//! The built-in channels, mirroring the server the protocol transcripts were recorded against:
//!
//! | pattern | join | events |
//! |---|---|---|
//! | `room:*` | ok `{"joined": topic, "params": params}`, pushes `sync {"seq":1}` after a delay | common |
//! | `fail:*` | error `{"reason": "unauthorized"}` | — |
//! | `crash:*` | ok `{"joined": topic}` | `boom` crashes (`phx_error`); common |
//! | `close:*` | ok `{"joined": topic}` | `stop` closes; `stop_reply` replies, then closes; common |
//! | `slow:*` | sleeps `params.delay_ms` (default 1500 ms), ok `{"joined", "slept_ms"}` | common |
//! | `presence:*` | ok `{"joined", "user"}`, tracks `params.user`, pushes `presence_state` | common |
//! | `silent:*` | ok `{"joined": topic}` | never replies |
//!
//! The common events: `echo` replies ok with the payload (binary stays binary); `broadcast`
//! broadcasts `msg` with the payload to every member, sender included, then replies ok `{}`.
//! Any other event has no handler: the channel crashes (`phx_error`, no reply), as a Phoenix
//! channel without a matching `handle_in` clause does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::handler::{ChannelContext, ChannelHandler, HandleOutcome, HandlerFactory, JoinOutcome};
use crate::phoenix::codec::{Payload, ReplyStatus};

/// Longest `delay_ms` a `slow:*` join honours, so a typo cannot wedge a test for hours.
const MAX_SLOW_JOIN: Duration = Duration::from_secs(60);

/// A built-in channel behaviour, to mount on any topic pattern with
/// [`DevServerConfig::route_builtin`](super::DevServerConfig::route_builtin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuiltinChannel {
    /// Joins ok, pushes `sync {"seq":1}` after the configured delay, echoes and broadcasts.
    Room,
    /// Refuses every join with `{"reason": "unauthorized"}`.
    Fail,
    /// Crashes on `boom`.
    Crash,
    /// Stops on `stop`; replies then stops on `stop_reply`.
    Close,
    /// Sleeps in its join (`params.delay_ms`, default from the config), blocking the socket.
    Slow,
    /// Tracks the joiner's presence under `params.user`.
    Presence,
    /// Joins ok and never replies to anything.
    Silent,
}

/// Timings the built-in channels take from the server configuration.
#[derive(Clone, Copy, Debug)]
pub(super) struct BuiltinTimings {
    pub(super) sync_delay: Duration,
    pub(super) slow_join: Duration,
}

impl BuiltinChannel {
    /// The default routes: each behaviour on its own prefix.
    pub(super) const DEFAULT_ROUTES: [(&'static str, BuiltinChannel); 7] = [
        ("room:*", BuiltinChannel::Room),
        ("fail:*", BuiltinChannel::Fail),
        ("crash:*", BuiltinChannel::Crash),
        ("close:*", BuiltinChannel::Close),
        ("slow:*", BuiltinChannel::Slow),
        ("presence:*", BuiltinChannel::Presence),
        ("silent:*", BuiltinChannel::Silent),
    ];

    pub(super) fn factory(self, timings: BuiltinTimings) -> HandlerFactory {
        std::sync::Arc::new(move |_topic: &str| -> Box<dyn ChannelHandler> {
            Box::new(Builtin {
                kind: self,
                timings,
            })
        })
    }
}

struct Builtin {
    kind: BuiltinChannel,
    timings: BuiltinTimings,
}

impl ChannelHandler for Builtin {
    fn join(&mut self, ctx: &mut ChannelContext<'_>, params: &Payload) -> JoinOutcome {
        let topic = ctx.topic().to_owned();
        let params = params.as_json().cloned().unwrap_or_else(|| json!({}));
        match self.kind {
            BuiltinChannel::Room => {
                ctx.push_after(self.timings.sync_delay, "sync", json!({"seq": 1}));
                JoinOutcome::Ok(json!({"joined": topic, "params": params}))
            }
            BuiltinChannel::Fail => JoinOutcome::Error(json!({"reason": "unauthorized"})),
            BuiltinChannel::Crash | BuiltinChannel::Close | BuiltinChannel::Silent => {
                JoinOutcome::Ok(json!({"joined": topic}))
            }
            BuiltinChannel::Slow => {
                let delay = params
                    .get("delay_ms")
                    .and_then(Value::as_u64)
                    .map_or(self.timings.slow_join, Duration::from_millis)
                    .min(MAX_SLOW_JOIN);
                ctx.block_for(delay);
                let slept_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                JoinOutcome::Ok(json!({"joined": topic, "slept_ms": slept_ms}))
            }
            BuiltinChannel::Presence => match params.get("user").and_then(Value::as_str) {
                Some(user) => {
                    let mut meta = Map::new();
                    meta.insert("online_at".to_owned(), json!(unix_seconds()));
                    ctx.track_presence(user, meta);
                    ctx.push_presence_state();
                    JoinOutcome::Ok(json!({"joined": topic, "user": user}))
                }
                None => JoinOutcome::Error(json!({"reason": "params.user is required"})),
            },
        }
    }

    fn handle_in(
        &mut self,
        ctx: &mut ChannelContext<'_>,
        event: &str,
        payload: Payload,
    ) -> HandleOutcome {
        match (self.kind, event) {
            (BuiltinChannel::Silent, _) => HandleOutcome::NoReply,
            (BuiltinChannel::Crash, "boom") => HandleOutcome::Crash,
            (BuiltinChannel::Close, "stop") => HandleOutcome::Stop { reply: None },
            (BuiltinChannel::Close, "stop_reply") => HandleOutcome::Stop {
                reply: Some((ReplyStatus::Ok, payload)),
            },
            (_, "echo") => HandleOutcome::ok(payload),
            (_, "broadcast") => {
                ctx.broadcast("msg", payload);
                HandleOutcome::ok(json!({}))
            }
            // No `handle_in` clause matches: the channel process raises.
            (_, _) => HandleOutcome::Crash,
        }
    }
}

/// Presence metadata carries wall-clock time (Phoenix apps put unix seconds in `online_at`);
/// it is data for the client, never an input to any timing.
#[allow(clippy::disallowed_methods)]
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
