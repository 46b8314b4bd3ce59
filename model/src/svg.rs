//! Pictures of a path: a sequence diagram with one lifeline each for the
//! application, the resources, the client (the engine) and the server; the
//! frames between client and server, the application's calls, resource
//! results, timers and faults as arrows and notes, one numbered step after
//! the other; and after each step the phase of every topic. The Explorer shows
//! it for the path being explored ([`stateright::Model::as_svg`]);
//! `counterexamples --svg-dir` writes one per bug of the reference design.
//!
//! The output is plain SVG 1.1 text with no script and no external resource,
//! so it renders in a browser, inline in HTML, or in a repository viewer.

use std::fmt::Write;

use crate::harness::{Action, ChannelModel, State};
use crate::out::{Effect, Event, Output};
use crate::properties::Inv;
use crate::registry::Registry;
use crate::server::{ClientFrame, ServerFrame};
use crate::trace::{self, short, TraceStep};

/// A lifeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    App,
    Resources,
    Client,
    Server,
}

impl Lane {
    const ALL: [Lane; 4] = [Lane::App, Lane::Resources, Lane::Client, Lane::Server];

    fn title(self) -> &'static str {
        match self {
            Lane::App => "application",
            Lane::Resources => "resources",
            Lane::Client => "client (engine)",
            Lane::Server => "server",
        }
    }

    /// Its x offset from the lanes' origin.
    fn x(self) -> f64 {
        match self {
            Lane::App => 70.0,
            Lane::Resources => 250.0,
            Lane::Client => 440.0,
            Lane::Server => 720.0,
        }
    }
}

/// How something looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tone {
    Plain,
    /// Waits in a queue, or is cancelled.
    Faint,
    /// A fault or a failure.
    Alert,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Plain => "plain",
            Tone::Faint => "faint",
            Tone::Alert => "alert",
        }
    }
}

/// One row of a step.
#[derive(Clone, Debug)]
enum Mark {
    Arrow {
        from: Lane,
        to: Lane,
        label: String,
        tone: Tone,
    },
    Note {
        lane: Lane,
        label: String,
        tone: Tone,
    },
    /// A line across every lifeline (the socket dropping or reconnecting).
    Rule { label: String, tone: Tone },
}

const ROW: f64 = 22.0;
const CHAR: f64 = 7.3;
const HEAD: f64 = 56.0;
/// The lanes' origin.
const LEFT: f64 = 20.0;

/// XML-escapes text for an element or an attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn t<E: Registry>(m: &ChannelModel<E>, topic: u8) -> &str {
    short(m.name(topic))
}

/// What the step's action itself looks like.
fn action_marks<E: Registry>(m: &ChannelModel<E>, step: &TraceStep<E>, marks: &mut Vec<Mark>) {
    let app = |label: String| Mark::Arrow {
        from: Lane::App,
        to: Lane::Client,
        label,
        tone: Tone::Plain,
    };
    let server_note = |label: String, tone| Mark::Note {
        lane: Lane::Server,
        label,
        tone,
    };
    let before = &step.before;
    match step.action {
        Action::Subscribe { sub, topic } => marks.push(app(format!(
            "subscribe {} (subscriber {})",
            t(m, topic),
            sub + 1
        ))),
        Action::Unsubscribe { sub, topic } => marks.push(app(format!(
            "unsubscribe {} (subscriber {})",
            t(m, topic),
            sub + 1
        ))),
        Action::Switch { room, topic } => {
            marks.push(app(format!("room {room} switches to {}", t(m, topic))))
        }
        Action::CloseAll => marks.push(app("close all".to_owned())),
        Action::Push { topic } => marks.push(app(format!("push on {}", t(m, topic)))),
        Action::ServerTake => {
            let taken: Vec<String> = before
                .net
                .c2s
                .iter()
                .enumerate()
                .take_while(|(i, f)| *i == 0 || !matches!(f, ClientFrame::Leave { .. }))
                .map(|(_, f)| trace::client_frame(m, f))
                .collect();
            marks.push(server_note(
                format!("takes {}", taken.join(", ")),
                Tone::Plain,
            ));
        }
        Action::ServerReject { topic } => marks.push(server_note(
            format!("rejects the join of {}", t(m, topic)),
            Tone::Alert,
        )),
        Action::ServerCrash { topic } => {
            marks.push(server_note(format!("{} crashes", t(m, topic)), Tone::Alert))
        }
        Action::ServerStop { topic } => {
            marks.push(server_note(format!("stops {}", t(m, topic)), Tone::Alert))
        }
        Action::Deliver => {
            let mut frames = before.net.s2c.iter();
            for f in frames.by_ref() {
                let message = matches!(f, ServerFrame::Push { .. } | ServerFrame::Broadcast { .. });
                let tone = match f {
                    ServerFrame::JoinReply { ok: false, .. } | ServerFrame::Error { .. } => {
                        Tone::Alert
                    }
                    _ if message => Tone::Faint,
                    _ => Tone::Plain,
                };
                marks.push(Mark::Arrow {
                    from: Lane::Server,
                    to: Lane::Client,
                    label: trace::server_frame(m, f),
                    tone,
                });
                if !message {
                    break;
                }
            }
        }
        Action::TimersDue => {
            let timers: Vec<String> = m
                .armed(m.views(before))
                .into_iter()
                .map(|(topic, k)| format!("{} {}", k.name(), t(m, topic)))
                .collect();
            marks.push(Mark::Note {
                lane: Lane::Client,
                label: format!("timers all due: {}", timers.join(", ")),
                tone: Tone::Plain,
            });
        }
        Action::Fire { topic, kind } => marks.push(Mark::Note {
            lane: Lane::Client,
            label: format!("timer: {} {}", kind.name(), t(m, topic)),
            tone: if kind.is_failure() {
                Tone::Alert
            } else {
                Tone::Plain
            },
        }),
        Action::Settle {
            topic,
            join_ref,
            ok,
        } => marks.push(Mark::Arrow {
            from: Lane::Resources,
            to: Lane::Client,
            label: format!(
                "{} {join_ref} {}",
                t(m, topic),
                if ok { "settled" } else { "failed to settle" }
            ),
            tone: if ok { Tone::Plain } else { Tone::Alert },
        }),
        Action::SocketDrop => marks.push(Mark::Rule {
            label: "socket drops: frames in flight and channels are lost".to_owned(),
            tone: Tone::Alert,
        }),
        Action::Reconnect => marks.push(Mark::Rule {
            label: "socket reconnects".to_owned(),
            tone: Tone::Plain,
        }),
    }
}

/// What the engine did in the step.
fn output_marks<E: Registry>(m: &ChannelModel<E>, step: &TraceStep<E>, marks: &mut Vec<Mark>) {
    let topic = |name: &str| short(name).to_owned();
    let to_server = |label: String, tone| Mark::Arrow {
        from: Lane::Client,
        to: Lane::Server,
        label,
        tone,
    };
    let to_resources = |label: String, tone| Mark::Arrow {
        from: Lane::Client,
        to: Lane::Resources,
        label,
        tone,
    };
    let note = |lane, label: String, tone| Mark::Note { lane, label, tone };
    if let Action::Push { topic: p } = step.action {
        if let Some(ClientFrame::Push { join_ref, .. }) = step.after.net.c2s.back().copied() {
            marks.push(to_server(
                format!("push {} ref {join_ref}", t(m, p)),
                Tone::Plain,
            ));
        }
    }
    for o in &step.outputs {
        match o {
            Output::Effect(e) => match e {
                Effect::Join { topic: n, join_ref } => marks.push(to_server(
                    format!("phx_join {} ref {join_ref}", topic(n)),
                    Tone::Plain,
                )),
                Effect::Leave { topic: n, join_ref } => marks.push(to_server(
                    format!("phx_leave {} ref {join_ref} (waits)", topic(n)),
                    Tone::Faint,
                )),
                Effect::CreateResources { topic: n, join_ref } => marks.push(to_resources(
                    format!("create {} {join_ref}", topic(n)),
                    Tone::Faint,
                )),
                Effect::StartSettling { topic: n, join_ref } => marks.push(to_resources(
                    format!("start settling {} {join_ref}", topic(n)),
                    Tone::Plain,
                )),
                Effect::AbortSettling { topic: n, join_ref } => marks.push(to_resources(
                    format!("abort settling {} {join_ref}", topic(n)),
                    Tone::Faint,
                )),
                Effect::DestroyResources { topic: n, join_ref } => marks.push(to_resources(
                    format!("destroy {} {join_ref}", topic(n)),
                    Tone::Faint,
                )),
            },
            Output::Event(e) => match e {
                Event::TopicFailed { topic: n, reason } => marks.push(note(
                    Lane::App,
                    format!("{} failed: {reason:?}", topic(n)),
                    Tone::Alert,
                )),
                Event::Retrying { topic: n, .. } => marks.push(note(
                    Lane::Client,
                    format!("{} will retry", topic(n)),
                    Tone::Plain,
                )),
                Event::RoomShows { room, topic: n } => marks.push(note(
                    Lane::App,
                    format!("room {} shows {}", room.0, topic(n)),
                    Tone::Plain,
                )),
                Event::RoomSwitchFailed { room, topic: n, .. } => marks.push(note(
                    Lane::App,
                    format!("room {} cannot show {}", room.0, topic(n)),
                    Tone::Alert,
                )),
                Event::Ignored {
                    topic: n, join_ref, ..
                } => marks.push(note(
                    Lane::Client,
                    match n {
                        Some(n) => format!("ignores stale {} {join_ref}", short(n)),
                        None => format!("ignores {join_ref}: topic no longer managed"),
                    },
                    Tone::Faint,
                )),
                Event::PhaseChanged { .. } | Event::TopicRemoved { .. } => {}
            },
        }
    }
}

/// The invariants broken in `s`, with their messages.
fn violations<E: Registry>(m: &ChannelModel<E>, s: &State<E>) -> Vec<(Inv, String)> {
    Inv::ALL
        .into_iter()
        .filter_map(|inv| {
            m.note(s, inv)
                .map(|note| (inv, format!("VIOLATED {}: {note}", inv.name())))
        })
        .collect()
}

/// The sequence diagram of the path `actions` from the initial state, under
/// the heading `title`. Each step is a caption (its number and the step in
/// words, the phases after it on the right), then one row per arrow or note;
/// an invariant the step broke follows in red.
pub fn path_svg<E: Registry>(m: &ChannelModel<E>, actions: &[Action], title: &str) -> String {
    let steps = trace::walk(m, actions);
    let mut broken_before = Vec::new();
    let rows: Vec<Row> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut marks = Vec::new();
            action_marks(m, step, &mut marks);
            output_marks(m, step, &mut marks);
            let broken = violations(m, &step.after);
            let new = broken
                .iter()
                .filter(|(inv, _)| !broken_before.contains(inv))
                .map(|(_, line)| line.clone())
                .collect();
            broken_before = broken.into_iter().map(|(inv, _)| inv).collect();
            Row {
                caption: format!("{}. {}", i + 1, step.text),
                marks,
                phases: trace::phases(m, &step.after),
                broken: new,
            }
        })
        .collect();
    draw(title, &rows)
}

/// One step of the picture.
struct Row {
    caption: String,
    marks: Vec<Mark>,
    phases: String,
    /// Invariants the step broke (that the step before did not).
    broken: Vec<String>,
}

fn draw(title: &str, rows: &[Row]) -> String {
    let chars = |s: &str| s.chars().count() as f64 * CHAR;
    let lane = |l: Lane| LEFT + l.x();
    let phases_x = lane(Lane::Server) + 150.0;
    let widest = rows
        .iter()
        .flat_map(|r| {
            let caption = chars(&r.caption) + 8.0;
            let phases = phases_x + chars(&r.phases);
            let broken = r.broken.iter().map(|b| 8.0 + chars(b));
            [caption, phases].into_iter().chain(broken)
        })
        .fold(chars(title) + 8.0, f64::max);
    let width = (widest + 16.0).ceil();
    let lines: usize = rows
        .iter()
        .map(|r| 1 + r.marks.len() + r.broken.len())
        .sum();
    let height = (HEAD + lines as f64 * ROW + 16.0).ceil();

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="ui-monospace, Menlo, Consolas, monospace" font-size="12">
<style>
.plain {{ stroke: #333; fill: #222; }}
.faint {{ stroke: #999; fill: #777; stroke-dasharray: 4 3; }}
.alert {{ stroke: #c0392b; fill: #c0392b; }}
text {{ stroke: none; }}
.life {{ stroke: #bbb; stroke-width: 1; }}
.caption {{ fill: #eef2f6; stroke: none; }}
.head {{ font-weight: bold; fill: #222; }}
.phase {{ fill: #1f5f8b; }}
</style>
<defs>
<marker id="tip-plain" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>
<marker id="tip-faint" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker>
<marker id="tip-alert" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#c0392b"/></marker>
</defs>
<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>
<text class="head" x="8" y="18">{}</text>
"##,
        escape(title)
    );
    let bottom = height - 8.0;
    for l in Lane::ALL {
        let x = lane(l);
        let _ = writeln!(
            svg,
            r#"<text class="head" x="{x}" y="44" text-anchor="middle">{}</text><line class="life" x1="{x}" y1="50" x2="{x}" y2="{bottom}"/>"#,
            l.title()
        );
    }
    let _ = writeln!(
        svg,
        r#"<text class="head" x="{phases_x}" y="44">phases after the step</text>"#
    );
    let mut y = HEAD;
    for row in rows {
        let base = y + ROW * 0.7;
        let _ = writeln!(
            svg,
            r#"<rect class="caption" x="0" y="{}" width="{width}" height="{}"/><text x="8" y="{base}">{}</text><text class="phase" x="{phases_x}" y="{base}">{}</text>"#,
            y + 1.0,
            ROW - 2.0,
            escape(&row.caption),
            escape(&row.phases)
        );
        y += ROW;
        for mark in &row.marks {
            draw_mark(&mut svg, mark, y);
            y += ROW;
        }
        for line in &row.broken {
            let _ = writeln!(
                svg,
                r#"<text class="alert" x="8" y="{}">{}</text>"#,
                y + ROW * 0.7,
                escape(line)
            );
            y += ROW;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_mark(svg: &mut String, mark: &Mark, y: f64) {
    let lane = |l: Lane| LEFT + l.x();
    let mid = y + ROW * 0.5;
    match mark {
        Mark::Arrow {
            from,
            to,
            label,
            tone,
        } => {
            let (x1, x2) = (lane(*from), lane(*to));
            let _ = writeln!(
                svg,
                r#"<g class="{c}"><line x1="{x1}" y1="{mid}" x2="{x2}" y2="{mid}" marker-end="url(#tip-{c})"/><text x="{}" y="{}" text-anchor="middle">{}</text></g>"#,
                (x1 + x2) / 2.0,
                mid - 4.0,
                escape(label),
                c = tone.class(),
            );
        }
        Mark::Note {
            lane: l,
            label,
            tone,
        } => {
            let x = lane(*l);
            let w = label.chars().count() as f64 * CHAR + 10.0;
            let _ = writeln!(
                svg,
                r##"<g class="{}"><rect x="{}" y="{}" width="{w}" height="{}" rx="3" fill="#fffbe6"/><text x="{x}" y="{}">{}</text></g>"##,
                tone.class(),
                x - 5.0,
                y + 3.0,
                ROW - 6.0,
                mid + 4.0,
                escape(label)
            );
        }
        Mark::Rule { label, tone } => {
            let (x1, x2) = (lane(Lane::App) - 40.0, lane(Lane::Server) + 40.0);
            let _ = writeln!(
                svg,
                r#"<g class="{}"><line x1="{x1}" y1="{mid}" x2="{x2}" y2="{mid}" stroke-dasharray="8 4" stroke-width="2"/><text x="{}" y="{}" text-anchor="middle">{}</text></g>"#,
                tone.class(),
                (x1 + x2) / 2.0,
                mid - 5.0,
                escape(label)
            );
        }
    }
}
