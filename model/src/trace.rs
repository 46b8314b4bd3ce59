//! Readable traces: one line per action, with the phase of every topic after
//! it, so a counterexample reads like a log of the race it found.

use std::fmt::Write;

use channel_registry::engine::{RoomId, TopicStatus};
use stateright::Model;

use crate::harness::{Action, ChannelModel, State};
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
        _ => action_text(m, a),
    }
}

fn client_frame<E: Registry>(m: &ChannelModel<E>, f: &ClientFrame) -> String {
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

fn server_frame<E: Registry>(m: &ChannelModel<E>, f: &ServerFrame) -> String {
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
        // `doc:1:v2` → `v2`, `missing:1` → `missing`.
        let parts: Vec<&str> = name.split(':').collect();
        let short = if parts.len() == 3 { parts[2] } else { parts[0] };
        let status = match s.engine.status(name) {
            None => "-".to_owned(),
            Some(TopicStatus::Live { join_ref, phase }) => format!("{phase}({join_ref})"),
            Some(TopicStatus::Retrying) => "retrying".to_owned(),
            Some(TopicStatus::Offline) => "offline".to_owned(),
            Some(TopicStatus::Failed(_)) => "failed".to_owned(),
            Some(other) => format!("{other:?}"),
        };
        let _ = write!(out, "{short}={status} ");
    }
    for r in 0..m.cfg.rooms {
        if let Some(v) = s.engine.room(RoomId(u64::from(r))) {
            let short = |t: &Option<std::sync::Arc<str>>| {
                t.as_deref().map_or("-".to_owned(), |n| {
                    n.rsplit(':').next().unwrap_or(n).to_owned()
                })
            };
            let _ = write!(out, "room{r}={}", short(&v.shown));
            if v.pending.is_some() {
                let _ = write!(out, "→{}", short(&v.pending));
            }
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

/// A whole state, for Explorer.
pub fn state_text<E: Registry>(m: &ChannelModel<E>, s: &State<E>) -> String {
    let mut out = format!("phases: {}\n", phases(m, s));
    let _ = writeln!(out, "client→server: {:?}", s.net.c2s);
    let _ = writeln!(out, "server→client: {:?}", s.net.s2c);
    let _ = writeln!(out, "server channels: {:?}", s.net.channels);
    let _ = writeln!(out, "ghost: {:?}", s.ghost);
    for inv in Inv::ALL {
        if let Some(note) = m.note(s, inv) {
            let _ = writeln!(out, "VIOLATED {}: {note}", inv.name());
        }
    }
    let _ = write!(out, "engine: {:#?}", s.engine);
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

/// A path as numbered lines: the action, then the phases after it.
pub fn path_lines<E: Registry>(m: &ChannelModel<E>, actions: &[Action]) -> Vec<String> {
    let mut state = m.init_states().remove(0);
    let mut lines = Vec::new();
    let mut steps = Vec::new();
    for a in actions {
        let next = m
            .next_state(&state, *a)
            .expect("every action changes the state");
        let text = format!("{}{}", step_text(m, &state, a), answers(m, &state, &next));
        steps.push((text, phases(m, &next)));
        state = next;
    }
    let width = steps
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0);
    for (i, (text, phases)) in steps.into_iter().enumerate() {
        let pad = width - text.chars().count();
        lines.push(format!(
            "{:>3}. {text}{} | {phases}",
            i + 1,
            " ".repeat(pad)
        ));
    }
    lines
}

/// The state a path ends in.
pub fn replay<E: Registry>(m: &ChannelModel<E>, actions: &[Action]) -> State<E> {
    actions.iter().fold(m.init_states().remove(0), |s, a| {
        m.next_state(&s, *a)
            .expect("every action changes the state")
    })
}
