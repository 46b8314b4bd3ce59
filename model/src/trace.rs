//! Readable traces: one line per action, with the phase of every topic after
//! it, so a counterexample reads like a log of the race it found.

use std::fmt::Write;

use channel_registry::engine::{RoomId, TopicStatus};
use stateright::Model;

use crate::harness::{Action, ChannelModel, State};
use crate::out::{Effect, Event, Output};
use crate::properties::Inv;
use crate::registry::Registry;
use crate::server::{ClientFrame, ServerFrame};

/// An action without context.
pub fn action_text<E: Registry>(m: &ChannelModel<E>, a: &Action) -> String {
    match *a {
        Action::Subscribe { sub, topic } => {
            format!("app: subscriber {} subscribes {}", sub + 1, m.name(topic))
        }
        Action::Unsubscribe { sub, topic } => {
            format!("app: subscriber {} unsubscribes {}", sub + 1, m.name(topic))
        }
        Action::Switch { room, topic } => format!("app: room {room} switches to {}", m.name(topic)),
        Action::CloseAll => "app: close all".to_owned(),
        Action::Push { topic } => format!("app: push on {}", m.name(topic)),
        Action::ServerTake => "server: takes the waiting phx_leave".to_owned(),
        Action::ServerReject { topic } => format!("server: rejects the join of {}", m.name(topic)),
        Action::ServerCrash { topic } => format!("server: channel {} crashes", m.name(topic)),
        Action::ServerStop { topic } => format!("server: stops channel {}", m.name(topic)),
        Action::Deliver => "client: takes next frame".to_owned(),
        Action::TimersDue => "clock: every armed timer is due, one handle_timeout".to_owned(),
        Action::Fire { topic, kind } => {
            format!("timer: {} of {} fires", kind.name(), m.name(topic))
        }
        Action::Settle {
            topic,
            join_ref,
            ok,
        } => format!(
            "resources: {} {join_ref} {}",
            m.name(topic),
            if ok { "settled" } else { "failed to settle" }
        ),
        Action::SocketDrop => "socket: drops".to_owned(),
        Action::Reconnect => "socket: reconnects".to_owned(),
    }
}

/// Outputs on one line, for messages: effects and phase changes, with topics
/// shortened (`doc:1:v2` → `v2`).
pub fn outputs_text(outputs: &[Output]) -> String {
    let words: Vec<String> = outputs
        .iter()
        .map(|o| match o {
            Output::Effect(e) => match e {
                Effect::Join { topic, join_ref } => format!("join {} {join_ref}", short(topic)),
                Effect::Leave { topic, join_ref } => format!("leave {} {join_ref}", short(topic)),
                Effect::CreateResources { topic, join_ref } => {
                    format!("create {} {join_ref}", short(topic))
                }
                Effect::StartSettling { topic, join_ref } => {
                    format!("settle {} {join_ref}", short(topic))
                }
                Effect::AbortSettling { topic, join_ref } => {
                    format!("abort settling {} {join_ref}", short(topic))
                }
                Effect::DestroyResources { topic, join_ref } => {
                    format!("destroy {} {join_ref}", short(topic))
                }
            },
            Output::Event(e) => match e {
                Event::PhaseChanged {
                    topic,
                    join_ref,
                    to,
                    ..
                } => format!("{} {join_ref} {to}", short(topic)),
                Event::Retrying { topic, .. } => format!("{} retrying", short(topic)),
                Event::TopicFailed { topic, .. } => format!("{} failed", short(topic)),
                Event::TopicRemoved { topic } => format!("{} removed", short(topic)),
                Event::RoomShows { room, topic } => {
                    format!("room {} shows {}", room.0, short(topic))
                }
                Event::RoomSwitchFailed { room, topic, .. } => {
                    format!("room {} switch to {} failed", room.0, short(topic))
                }
                Event::Ignored {
                    topic, join_ref, ..
                } => format!("{} {join_ref} ignored", topic.as_deref().map_or("?", short)),
            },
        })
        .collect();
    words.join(", ")
}

/// A topic's short name: `doc:1:v2` → `v2`, `missing:1` → `missing`.
pub fn short(name: &str) -> &str {
    let parts: Vec<&str> = name.split(':').collect();
    if parts.len() == 3 {
        parts[2]
    } else {
        parts[0]
    }
}

/// An action in the context of the state it is taken from (names the frame
/// a delivery carries).
pub fn step_text<E: Registry>(m: &ChannelModel<E>, before: &State<E>, a: &Action) -> String {
    match a {
        Action::ServerTake => match before.net.c2s.front() {
            Some(f) => format!("server ← {}", client_frame(m, f)),
            None => action_text(m, a),
        },
        Action::Deliver => {
            let is_message = |f: &&ServerFrame| {
                matches!(f, ServerFrame::Push { .. } | ServerFrame::Broadcast { .. })
            };
            let messages: Vec<String> = before
                .net
                .s2c
                .iter()
                .take_while(is_message)
                .map(|f| server_frame(m, f))
                .collect();
            let next = before.net.s2c.iter().find(|f| !is_message(f));
            match (messages.is_empty(), next) {
                (true, Some(f)) => format!("client ← {}", server_frame(m, f)),
                (false, Some(f)) => format!(
                    "client ← {}, then {}",
                    messages.join(", "),
                    server_frame(m, f)
                ),
                (false, None) => format!("client ← {}", messages.join(", ")),
                (true, None) => action_text(m, a),
            }
        }
        Action::TimersDue => {
            let timers: Vec<String> = m
                .armed(m.views(before))
                .into_iter()
                .map(|(t, k)| format!("{} of {}", k.name(), m.name(t)))
                .collect();
            format!(
                "clock: passes every deadline, one handle_timeout fires {}",
                timers.join(", ")
            )
        }
        _ => action_text(m, a),
    }
}

/// A frame from the client, for traces.
pub fn client_frame<E: Registry>(m: &ChannelModel<E>, f: &ClientFrame) -> String {
    match *f {
        ClientFrame::Join { topic, join_ref } => {
            format!("phx_join {} ref {join_ref}", m.name(topic))
        }
        ClientFrame::Leave { topic, join_ref } => {
            format!("phx_leave {} ref {join_ref}", m.name(topic))
        }
        ClientFrame::Push { topic, join_ref } => format!("push {} ref {join_ref}", m.name(topic)),
    }
}

/// A frame from the server, for traces.
pub fn server_frame<E: Registry>(m: &ChannelModel<E>, f: &ServerFrame) -> String {
    match *f {
        ServerFrame::JoinReply {
            topic,
            join_ref,
            ok,
        } => format!(
            "join {} {} ref {join_ref}",
            if ok { "ok" } else { "error" },
            m.name(topic)
        ),
        ServerFrame::Close {
            topic,
            join_ref,
            duplicate,
        } => format!(
            "phx_close {} ref {join_ref}{}",
            m.name(topic),
            if duplicate { " (duplicate join)" } else { "" }
        ),
        ServerFrame::Error { topic, join_ref } => {
            format!("phx_error {} ref {join_ref}", m.name(topic))
        }
        ServerFrame::Push { topic, join_ref } => format!("push {} ref {join_ref}", m.name(topic)),
        ServerFrame::Broadcast { topic, sender } => {
            format!("broadcast {} (sent by {sender})", m.name(topic))
        }
    }
}

/// The phase of every topic and what every room shows, on one line.
pub fn phases<E: Registry>(m: &ChannelModel<E>, s: &State<E>) -> String {
    let mut out = String::new();
    for name in &m.topics {
        let status = match s.engine.status(name) {
            None => "-".to_owned(),
            Some(TopicStatus::Live { join_ref, phase }) => format!("{phase}({join_ref})"),
            Some(TopicStatus::Retrying) => "retrying".to_owned(),
            Some(TopicStatus::Offline) => "offline".to_owned(),
            Some(TopicStatus::Failed(_)) => "failed".to_owned(),
            Some(other) => format!("{other:?}"),
        };
        let _ = write!(out, "{}={status} ", short(name));
    }
    for r in 0..m.cfg.rooms {
        if let Some(v) = s.engine.room(RoomId(u64::from(r))) {
            let name = |t: &Option<std::sync::Arc<str>>| t.as_deref().map_or("-", short).to_owned();
            let _ = write!(out, "room{r}={}", name(&v.shown));
            if v.pending.is_some() {
                let _ = write!(out, "→{}", name(&v.pending));
            }
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

/// A whole state in a few lines, for the Explorer: phases and rooms, what
/// the application holds, both queues, the server's channels, timers and
/// settle results owed, the budgets left, and any invariant broken.
pub fn state_text<E: Registry>(m: &ChannelModel<E>, s: &State<E>) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "—".to_owned()
        } else {
            items.join(", ")
        }
    };
    let views = m.views(s);
    let g = &s.ghost;
    let mut out = format!("phases          {}\n", phases(m, s));
    let subs = (0..m.cfg.subscribers)
        .map(|sub| {
            let held: Vec<&str> = (0..m.topics.len() as u8)
                .filter(|&t| s.holds(m.topics.len(), sub, t))
                .map(|t| short(m.name(t)))
                .collect();
            format!(
                "{}: {}",
                sub + 1,
                if held.is_empty() {
                    "—".to_owned()
                } else {
                    held.join(" ")
                }
            )
        })
        .collect();
    let _ = writeln!(out, "subscribers     {}", list(subs));
    let rooms = g
        .rooms
        .iter()
        .enumerate()
        .filter_map(|(r, ghost)| {
            ghost
                .requested
                .map(|t| format!("room {r} asked for {}", short(m.name(t))))
        })
        .collect();
    let _ = writeln!(out, "rooms           {}", list(rooms));
    let c2s = s.net.c2s.iter().map(|f| client_frame(m, f)).collect();
    let _ = writeln!(out, "client → server {}", list(c2s));
    let s2c = s.net.s2c.iter().map(|f| server_frame(m, f)).collect();
    let _ = writeln!(out, "server → client {}", list(s2c));
    let channels = s
        .net
        .channels
        .iter()
        .enumerate()
        .filter_map(|(t, c)| c.map(|r| format!("{}={r}", short(m.name(t as u8)))))
        .collect();
    let _ = writeln!(out, "server channels {}", list(channels));
    let timers = m
        .armed(views)
        .into_iter()
        .map(|(t, k)| format!("{} of {}", k.name(), short(m.name(t))))
        .collect();
    let _ = writeln!(out, "timers armed    {}", list(timers));
    let settles = g
        .settles
        .iter()
        .map(|p| {
            format!(
                "{} {}{}",
                short(m.name(p.topic)),
                p.join_ref,
                if p.aborted { " (aborted)" } else { "" }
            )
        })
        .collect();
    let _ = writeln!(out, "settles owed    {}", list(settles));
    let _ = writeln!(
        out,
        "budgets         ops {}, faults {}, drops {}, reconnects {}, pushes {}; socket {}",
        g.ops,
        g.faults,
        g.drops,
        g.reconnects,
        g.pushes,
        if g.socket_up { "up" } else { "down" }
    );
    for inv in Inv::ALL {
        if let Some(note) = m.note(s, inv) {
            let _ = writeln!(out, "VIOLATED {}: {note}", inv.name());
        }
    }
    out
}

/// The frames a step added to the server's queue (its answers), appended
/// to the step's text; the server takes every frame but a leave at once, so
/// this is where a join's reply shows up.
fn answers<E: Registry>(m: &ChannelModel<E>, before: &State<E>, after: &State<E>) -> String {
    let (b, a) = (&before.net.s2c, &after.net.s2c);
    let kept = (0..=b.len())
        .find(|&k| b.iter().skip(k).eq(a.iter().take(b.len() - k)))
        .unwrap_or(b.len());
    let new: Vec<String> = a
        .iter()
        .skip(b.len() - kept)
        .filter(|f| !matches!(f, ServerFrame::Push { .. } | ServerFrame::Broadcast { .. }))
        .map(|f| server_frame(m, f))
        .collect();
    if new.is_empty() {
        String::new()
    } else {
        format!(" ⇒ server sends {}", new.join(", "))
    }
}

/// One step of a path, with everything a trace or a picture shows of it.
pub struct TraceStep<E: Registry> {
    /// The action taken.
    pub action: Action,
    /// The state it was taken from.
    pub before: State<E>,
    /// The state it led to.
    pub after: State<E>,
    /// Every output of the engine during the step, in order.
    pub outputs: Vec<Output>,
    /// The step in words, with the server's answers.
    pub text: String,
}

/// Replays `actions` from the initial state.
pub fn walk<E: Registry>(m: &ChannelModel<E>, actions: &[Action]) -> Vec<TraceStep<E>> {
    let mut state = m.init_states().remove(0);
    let mut steps = Vec::with_capacity(actions.len());
    for &action in actions {
        let (after, outputs) = m.step(&state, action);
        let text = format!(
            "{}{}",
            step_text(m, &state, &action),
            answers(m, &state, &after)
        );
        let before = std::mem::replace(&mut state, after.clone());
        steps.push(TraceStep {
            action,
            before,
            after,
            outputs,
            text,
        });
    }
    steps
}

/// A path as numbered lines: the action, then the phases after it.
pub fn path_lines<E: Registry>(m: &ChannelModel<E>, actions: &[Action]) -> Vec<String> {
    let steps: Vec<(String, String)> = walk(m, actions)
        .into_iter()
        .map(|s| {
            let phases = phases(m, &s.after);
            (s.text, phases)
        })
        .collect();
    let width = steps
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0);
    steps
        .into_iter()
        .enumerate()
        .map(|(i, (text, phases))| {
            let pad = width - text.chars().count();
            format!("{:>3}. {text}{} | {phases}", i + 1, " ".repeat(pad))
        })
        .collect()
}

/// The state a path ends in.
pub fn replay<E: Registry>(m: &ChannelModel<E>, actions: &[Action]) -> State<E> {
    actions.iter().fold(m.init_states().remove(0), |s, a| {
        m.next_state(&s, *a)
            .expect("every action changes the state")
    })
}
