//! Checking a stream model exhaustively and reporting it, in the format of
//! [`crate::report`].

use std::time::Instant;

use stateright::{Checker, Expectation, Model};

use super::harness::{Action, State, StreamsModel};

/// How one property came out (the engine model's report, with this model's
/// actions).
pub type Verdict = crate::report::Verdict<Action>;

/// The result of a full check of one stream configuration.
pub type Outcome = crate::report::Outcome<Action>;

/// Checks `model` exhaustively, depth-first on `threads` threads.
#[allow(clippy::disallowed_methods)] // wall time of the check itself, for the report
pub fn check(model: StreamsModel, threads: usize) -> Outcome {
    let props = model.properties();
    let start = Instant::now();
    let checker = model.checker().threads(threads).spawn_dfs().join();
    let elapsed = start.elapsed();
    let discoveries = checker.discoveries();
    // The depth-first checker stops early only once every property has a
    // discovery; otherwise it has visited every reachable state.
    let complete = discoveries.len() < props.len();
    let properties = props
        .iter()
        .map(|p| {
            let found = discoveries
                .get(p.name)
                .map(|path| path.clone().into_actions());
            let verdict = match (p.expectation.clone(), found) {
                (Expectation::Sometimes, Some(a)) => Verdict::Found(a.len()),
                (Expectation::Sometimes, None) => Verdict::NotFound,
                (_, Some(a)) => Verdict::Violated(a),
                (_, None) => Verdict::Held,
            };
            (p.name, verdict)
        })
        .collect();
    Outcome {
        properties,
        generated: checker.state_count(),
        unique: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        complete,
    }
}

/// The states along `actions` from the initial state, one line per step,
/// with the message of the first property broken at the end.
pub fn trace(model: &StreamsModel, actions: &[Action]) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(mut s) = model.init_states().into_iter().next() else {
        return lines;
    };
    lines.push(format!("  start: {}", summary(&s)));
    for (i, &a) in actions.iter().enumerate() {
        match model.next_state(&s, a) {
            Some(next) => s = next,
            None => {
                lines.push(format!("  {:>2}. {a:?}: not possible", i + 1));
                return lines;
            }
        }
        lines.push(format!("  {:>2}. {a:?} → {}", i + 1, summary(&s)));
    }
    if let Some(note) = &s.note.0 {
        lines.push(format!("  => {note}"));
    }
    lines
}

fn summary(s: &State) -> String {
    let topics: Vec<String> = s
        .topics
        .iter()
        .map(|t| {
            let stats = t.stream.as_ref().map(|x| x.stats());
            format!(
                "[inc {} chan {}{} log {}..={} v{} seen {}/{:?} stream pos {:?}]",
                t.inc,
                t.chan.inc,
                if t.chan.up { "" } else { " down" },
                t.log.earliest,
                t.log.published,
                t.version,
                t.ghost.cursor,
                t.ghost.mount,
                stats.map(|x| x.position)
            )
        })
        .collect();
    format!(
        "{} queue {:?} t={}s faults {}",
        topics.join(" "),
        s.queue,
        s.now.as_secs(),
        s.faults
    )
}
