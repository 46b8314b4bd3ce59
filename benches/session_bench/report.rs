//! The results: one row per benchmark id, the phoenix.js / session ratios,
//! and how the cost of an operation (so of a frame: each scenario exchanges
//! a fixed number) grows from the smallest to the largest size.

use super::timing::{paired_growth, Rounds};
use super::{id, Scenario, Side};

/// What one operation of the session costs besides time, counted over an
/// untimed pass.
#[derive(Clone, Copy, Debug)]
pub struct PerOp {
    pub frames: f64,
    pub outputs: f64,
    pub diagnostics: f64,
    pub allocations: f64,
}

/// One measured benchmark id.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: Scenario,
    pub side: Side,
    pub live: usize,
    pub rounds: Rounds,
    /// Counted for the session only.
    pub per_op: Option<PerOp>,
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// Prints the three tables.
pub fn print(rows: &[Row], rounds: usize, round_ms: u64, version: &str) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    println!(
        "phoenix.js {version} in Node vs the pure session; median of {rounds} rounds of \
         {round_ms} ms; load average {load}"
    );
    println!(
        "{:<34} {:>11} {:>23} {:>11} {:>9} {:>9} {:>10} {:>11} {:>9}",
        "id",
        "wall ns/op",
        "rounds min..max",
        "cpu ns/op",
        "frames/op",
        "ns/frame",
        "outputs/op",
        "diagnostics",
        "allocs/op"
    );
    for r in rows {
        // The session's frames are counted; phoenix.js exchanges the same.
        let frames = r.per_op.map_or(r.scenario.frames(), |p| p.frames);
        let median = r.rounds.median();
        let counted = r.per_op.map_or_else(
            || format!("{:>10} {:>11} {:>9}", "-", "-", "-"),
            |p| {
                format!(
                    "{:>10.1} {:>11.2} {:>9.1}",
                    p.outputs, p.diagnostics, p.allocations
                )
            },
        );
        println!(
            "{:<34} {median:>11.1} {:>23} {:>11} {frames:>9.2} {:>9.1} {counted}",
            id(r.scenario, r.side, r.live),
            format!("{:.1}..{:.1}", r.rounds.min(), r.rounds.max()),
            cell(r.rounds.cpu_median()),
            median / frames,
        );
    }

    let find = |scenario: Scenario, side: Side, live: usize| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.side == side && r.live == live)
            .map(|r| &r.rounds)
    };
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.live).collect();
    sizes.sort_unstable();
    sizes.dedup();
    println!();
    println!(
        "{:<10} {:>7} {:>15} {:>15} {:>9} {:>15} {:>15} {:>9}",
        "scenario",
        "live",
        "phoenix.js wall",
        "session wall",
        "ratio",
        "phoenix.js cpu",
        "session cpu",
        "ratio"
    );
    for scenario in Scenario::ALL {
        for &n in &sizes {
            let js = find(scenario, Side::PhoenixJs, n);
            let ours = find(scenario, Side::Session, n);
            if js.is_none() && ours.is_none() {
                continue;
            }
            let wall = (js.map(Rounds::median), ours.map(Rounds::median));
            let cpu = (
                js.and_then(Rounds::cpu_median),
                ours.and_then(Rounds::cpu_median),
            );
            println!(
                "{:<10} {n:>7} {:>15} {:>15} {:>9} {:>15} {:>15} {:>9}",
                scenario.name(),
                cell(wall.0),
                cell(wall.1),
                ratio(wall.0, wall.1),
                cell(cpu.0),
                cell(cpu.1),
                ratio(cpu.0, cpu.1),
            );
        }
    }

    let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) else {
        return;
    };
    if small == large {
        return;
    }
    println!();
    println!(
        "cost per frame at {large} vs {small} live channels (wall, cpu; the session's from \
         paired rounds):"
    );
    for side in Side::ALL {
        let growth: Vec<String> = Scenario::ALL
            .into_iter()
            .filter_map(|s| {
                let (a, b) = (find(s, side, small)?, find(s, side, large)?);
                let (wall, cpu) = match side {
                    Side::Session => paired_growth(a, b),
                    Side::PhoenixJs => (
                        b.median() / a.median(),
                        b.cpu_median().zip(a.cpu_median()).map(|(b, a)| b / a),
                    ),
                };
                let cpu = cpu.map_or_else(|| "-".into(), |c| format!("{c:.2}x"));
                Some(format!("{} {wall:.2}x, {cpu}", s.name()))
            })
            .collect();
        if !growth.is_empty() {
            println!("  {:<10} {}", side.name(), growth.join("; "));
        }
    }
}
