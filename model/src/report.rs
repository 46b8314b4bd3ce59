//! Running a full check and reporting it: progress while it runs, a table of
//! every property at the end.

use std::io::Write;
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, Model};

use crate::harness::{Action, ChannelModel};
use crate::registry::Registry;

/// How one property came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<A = Action> {
    /// An `always` with no counterexample.
    Held,
    /// An `always` with a counterexample (its actions).
    Violated(Vec<A>),
    /// A `sometimes` with an example (its length).
    Found(usize),
    /// A `sometimes` with no example.
    NotFound,
}

/// The result of a full check (of any model whose actions are `A`).
#[derive(Clone, Debug)]
pub struct Outcome<A = Action> {
    /// Every property, in model order.
    pub properties: Vec<(&'static str, Verdict<A>)>,
    /// States generated (with repeats).
    pub generated: usize,
    /// Unique states.
    pub unique: usize,
    /// Deepest state reached.
    pub max_depth: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether every reachable state was visited.
    pub complete: bool,
}

impl<A> Outcome<A> {
    /// Whether every `always` held and every `sometimes` was found.
    pub fn all_good(&self) -> bool {
        self.complete
            && self
                .properties
                .iter()
                .all(|(_, v)| matches!(v, Verdict::Held | Verdict::Found(_)))
    }

    /// Generated states per second.
    pub fn rate(&self) -> f64 {
        self.generated as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The final table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let width = self
            .properties
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, verdict) in &self.properties {
            let v = match verdict {
                Verdict::Held => "held".to_owned(),
                Verdict::Violated(p) => format!("VIOLATED ({} steps)", p.len()),
                Verdict::Found(n) => format!("example found ({n} steps)"),
                Verdict::NotFound => "NO EXAMPLE".to_owned(),
            };
            let pad = width - name.chars().count();
            out.push_str(&format!("  {name}{} : {v}\n", " ".repeat(pad)));
        }
        out.push_str(&format!(
            "  states generated {}, unique {}, max depth {}, {:.1} s, {:.0} states/s{}\n",
            self.generated,
            self.unique,
            self.max_depth,
            self.elapsed.as_secs_f64(),
            self.rate(),
            if self.complete { "" } else { " (INCOMPLETE)" }
        ));
        out
    }
}

/// Checks `model` exhaustively, depth-first on `threads` threads. With
/// `progress`, prints states, unique states and depth every second to stderr.
#[allow(clippy::disallowed_methods)] // wall time of the check itself, for the report
pub fn check<E: Registry>(model: ChannelModel<E>, threads: usize, progress: bool) -> Outcome {
    let props = model.properties();
    let start = Instant::now();
    let checker = model.checker().threads(threads).spawn_dfs();
    let mut last = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(50));
        if progress && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!(
                "  {:>5.1} s  states {:>11}  unique {:>10}  depth {:>3}",
                start.elapsed().as_secs_f64(),
                checker.state_count(),
                checker.unique_state_count(),
                checker.max_depth()
            );
            let _ = std::io::stderr().flush();
        }
    }
    let checker = checker.join();
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
