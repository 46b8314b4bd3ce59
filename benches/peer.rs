//! Side by side with the client users would otherwise pick: the official
//! `phoenix` npm client (1.8.x, in Node, over a fake transport that answers
//! through the client's normal message path) and this engine do the same
//! churn at 1 k and 10 k live channels, in one run, and the ratio is printed.
//!
//! Run: `cargo bench --bench peer` (installs the npm package on first use;
//! set `PEER_LIVE=1000,10000` to pick sizes).

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod workload;
use workload::Workload;

/// Times `op` for about `budget`, after a warm-up; returns ns per op.
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
fn time_op(w: &mut Workload, op: fn(&mut Workload), budget: Duration) -> f64 {
    for _ in 0..10_000 {
        op(w);
    }
    let mut ops = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            op(black_box(&mut *w));
        }
        ops += 1_000;
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// `"key":value` from one flat JSON line (the script's own output format).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}'])?;
    Some(rest[..end].trim_matches('"'))
}

fn run_phoenix_js(live: &str) -> Result<Vec<(String, usize, f64)>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/phoenix-js");
    if !dir.join("node_modules/phoenix").exists() {
        eprintln!("installing the phoenix npm package (npm ci) ...");
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run npm ({e}): install Node.js 20+ and npm"))?
            .success();
        if !ok {
            return Err(format!("npm ci failed in {}", dir.display()));
        }
    }
    let out = Command::new("node")
        .arg(dir.join("churn.mjs"))
        .args(["--live", live])
        .output()
        .map_err(|e| format!("cannot run node ({e}): install Node.js 20+"))?;
    if !out.status.success() {
        return Err(format!(
            "churn.mjs failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = text
        .lines()
        .filter_map(|l| {
            Some((
                field(l, "scenario")?.to_string(),
                field(l, "live")?.parse().ok()?,
                field(l, "ns_per_op")?.parse().ok()?,
            ))
        })
        .collect::<Vec<_>>();
    if rows.is_empty() {
        return Err(format!("churn.mjs printed no measurement:\n{text}"));
    }
    Ok(rows)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery
    }
    let live = std::env::var("PEER_LIVE").unwrap_or_else(|_| "1000,10000".into());
    let sizes: Vec<usize> = live
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    eprintln!("phoenix.js churn at {live} live channels ...");
    let js = match run_phoenix_js(&live) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    type Op = fn(&mut Workload);
    let ops: [(&str, &str, Op); 3] = [
        ("lifecycle", "lifecycle", Workload::lifecycle),
        ("switch", "switch", Workload::switch),
        ("subunsub", "sub_unsub", Workload::sub_unsub),
    ];
    println!(
        "{:<10} {:>7} {:>16} {:>16} {:>10}",
        "scenario", "live", "phoenix.js ns/op", "engine ns/op", "ratio"
    );
    for &n in &sizes {
        eprintln!("engine churn at {n} live topics ...");
        let mut w = Workload::new(n, false);
        for (js_name, name, op) in ops {
            let ours = time_op(&mut w, op, Duration::from_millis(1500));
            let theirs = js
                .iter()
                .find(|(s, l, _)| s == js_name && *l == n)
                .map(|r| r.2);
            match theirs {
                Some(t) => println!(
                    "{name:<10} {n:>7} {t:>16.1} {ours:>16.1} {:>9.2}x",
                    t / ours
                ),
                None => println!("{name:<10} {n:>7} {:>16} {ours:>16.1} {:>10}", "-", "-"),
            }
        }
    }
}
