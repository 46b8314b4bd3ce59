//! The full client side by side with phoenix.js: the pure `Session` (codec,
//! routing, lifecycle engine, events) and the official `phoenix` npm client
//! (1.8.x, in Node), each over a fake transport that answers through the
//! client's normal message path, doing the same work in one run at 1 k and
//! 10 k live channels:
//!
//! - `session_lifecycle/{session,phoenix_js}/{n}`: one channel on a fresh
//!   topic: subscribe (`channel` + `join`) -> the join frame out as text ->
//!   its reply in as text -> joined, the application told; unsubscribe
//!   (`leave`) -> (the session's drain grace elapses on the simulated clock)
//!   -> the leave frame out -> the leave reply and `phx_close` in -> removed.
//!   Five frames, every one encoded or decoded as JSON.
//! - `session_message/{session,phoenix_js}/{n}`: a server push
//!   `["<join_ref>",null,"<topic>","update",{"body":"hello","n":42}]` for one
//!   of the live channels, as text -> decoded, routed by topic, handed to the
//!   channel's one handler (the session's `Event::Message` to its one
//!   subscriber; phoenix.js's `on("update")` callback via
//!   `socket.onConnMessage`), which reads `n`.
//!
//! Run: `cargo bench --bench session` (installs the npm package on first
//! use). `SESSION_LIVE=1000,10000` picks the sizes, `SESSION_ROUNDS` (7) and
//! `SESSION_ROUND_MS` (300) the timing; arguments filter the ids by
//! substring, e.g. `cargo bench --bench session -- message`. Without
//! `--bench` (`cargo test --benches`) it runs a short self-check of the
//! session side only.
//!
//! Hand-timed, not criterion: the phoenix.js half runs in a Node process
//! with its own JIT warm-up and clock, and criterion can only time closures
//! in this process; timing the script from criterion would restart Node,
//! rejoin 10 000 channels and warm up the JIT again for every sample. So both
//! halves use one scheme, implemented twice (`session_bench/timing.rs` and
//! `measure` in `session.mjs`): a warm-up, then rounds of a fixed time budget
//! in batches of about a millisecond, and the median round. Every round is
//! timed in wall time and in the process's CPU time (which leaves out time
//! spent waiting for a core); the spread of the rounds is printed too. On a
//! busy machine read the ratios, which both halves see under the same load,
//! and the CPU column, rather than absolute wall times. The session's rounds
//! at the different sizes are taken in turn, so the growth from the smallest
//! to the largest size compares rounds that ran under the same load.

use std::time::Duration;

mod session_bench;
mod workload;

use session_bench::driver::{App, Driver, PAYLOAD_N};
use session_bench::report::{PerOp, Row};
use session_bench::timing::{self, measure, Rounds};
use session_bench::{allocations, id, phoenix_js, report, Scenario, Side};

#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;

/// The session's operation for a scenario.
fn op(scenario: Scenario) -> fn(&mut Driver) {
    match scenario {
        Scenario::Lifecycle => Driver::lifecycle,
        Scenario::Message => Driver::message,
    }
}

/// Panics unless the last `k` operations of `scenario` did their work: `k`
/// joins and closes told to the application, or `k` messages handled.
fn check(scenario: Scenario, prev: &mut App, d: &Driver, k: u64) {
    let now = d.app;
    match scenario {
        Scenario::Lifecycle => assert!(
            now.joined - prev.joined == k && now.closed - prev.closed == k,
            "lifecycle: {k} ops told the application of {} joins and {} closes",
            now.joined - prev.joined,
            now.closed - prev.closed,
        ),
        Scenario::Message => assert!(
            now.messages - prev.messages == k && now.sum - prev.sum == k * PAYLOAD_N,
            "message: {k} frames reached the handler {} times",
            now.messages - prev.messages,
        ),
    }
    *prev = now;
}

/// Frames, outputs, diagnostics and allocations per operation, counted over
/// `ops` untimed operations.
fn per_op(d: &mut Driver, scenario: Scenario, ops: u64) -> PerOp {
    let op = op(scenario);
    let mut prev = d.app;
    let (stats, counts) = (d.session.stats().socket, d.counts);
    let allocations = allocations::count(|| {
        for _ in 0..ops {
            op(d);
        }
    });
    check(scenario, &mut prev, d, ops);
    let after = d.session.stats().socket;
    let frames = (after.frames_in + after.frames_out) - (stats.frames_in + stats.frames_out);
    let per = |x: u64| x as f64 / ops as f64;
    PerOp {
        frames: per(frames),
        outputs: per(d.counts.outputs - counts.outputs),
        diagnostics: per(d.counts.diagnostics - counts.diagnostics),
        allocations: per(allocations),
    }
}

/// The live channels' invariants: all still there, all active.
fn check_live(d: &Driver, context: &str) {
    let stats = d.session.engine().stats();
    assert!(
        stats.topics == d.live() && stats.active == d.live(),
        "{context}: {} topics, {} active, expected {}",
        stats.topics,
        stats.active,
        d.live()
    );
}

/// A driver over `live` channels. Topics are `workflow:<uuid>:v<n>`, 48
/// bytes, as `session.mjs` makes them; fresh ones never collide with live
/// ones.
fn driver(live: usize) -> Driver {
    Driver::new(
        live,
        |i| workload::topic(i, 1),
        |i| workload::topic((1 << 40) + i, 2),
    )
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// Without `--bench`: the session side at 100 channels, briefly, with every
/// check, and the frames per operation exactly as the scenarios say.
fn self_check() {
    let mut d = driver(100);
    for scenario in Scenario::ALL {
        let mut prev = d.app;
        let rounds = measure(
            &mut d,
            op(scenario),
            |d, k| check(scenario, &mut prev, d, k),
            1,
            Duration::from_millis(20),
        );
        let per = per_op(&mut d, scenario, 200);
        assert_eq!(per.frames, scenario.frames(), "{scenario:?}: frames per op");
        check_live(&d, scenario.name());
        println!(
            "{}: {:.0} ns/op, {:.1} outputs/op, {:.2} diagnostics/op (last: {:?}) (self-check)",
            id(scenario, Side::Session, 100),
            rounds.median(),
            per.outputs,
            per.diagnostics,
            d.last_diagnostic.take(),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes = env_list("SESSION_LIVE", "1000,10000");
    if args.iter().any(|a| a == "--list") {
        for &n in &sizes {
            for scenario in Scenario::ALL {
                for side in Side::ALL {
                    println!("{}: benchmark", id(scenario, side, n));
                }
            }
        }
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        return self_check();
    }
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let wanted = |scenario: Scenario, side: Side, n: usize| {
        let id = id(scenario, side, n);
        filters.is_empty() || filters.iter().any(|f| id.contains(f))
    };
    let rounds = usize::try_from(env_number("SESSION_ROUNDS", 7)).unwrap_or(7);
    let round_ms = env_number("SESSION_ROUND_MS", 300);
    let budget = Duration::from_millis(round_ms);

    let mut rows = Vec::new();
    for &n in &sizes {
        let js: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|&s| wanted(s, Side::PhoenixJs, n))
            .collect();
        if js.is_empty() {
            continue;
        }
        eprintln!("phoenix.js at {n} live channels ...");
        let measured = phoenix_js::run(n, &js, rounds, round_ms).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1);
        });
        rows.extend(measured.into_iter().map(|(scenario, rounds)| Row {
            scenario,
            side: Side::PhoenixJs,
            live: n,
            rounds,
            per_op: None,
        }));
    }

    // The session at every size at once, its rounds taken in turn, so that
    // round i of every size ran under the same load.
    let ours: Vec<usize> = sizes
        .iter()
        .copied()
        .filter(|&n| Scenario::ALL.iter().any(|&s| wanted(s, Side::Session, n)))
        .collect();
    let mut drivers: Vec<Driver> = ours
        .iter()
        .map(|&n| {
            eprintln!("session at {n} live channels ...");
            driver(n)
        })
        .collect();
    for scenario in Scenario::ALL {
        let run: Vec<usize> = (0..ours.len())
            .filter(|&i| wanted(scenario, Side::Session, ours[i]))
            .collect();
        let mut prev: Vec<App> = drivers.iter().map(|d| d.app).collect();
        let mut checks: Vec<_> = prev
            .iter_mut()
            .map(|prev| move |d: &mut Driver, k| check(scenario, prev, d, k))
            .collect();
        let batches: Vec<_> = run
            .iter()
            .map(|&i| timing::warm_up(&mut drivers[i], op(scenario), &mut checks[i], budget))
            .collect();
        let mut timed = vec![Rounds::default(); run.len()];
        for _ in 0..rounds {
            for (k, &i) in run.iter().enumerate() {
                timing::round(
                    &mut drivers[i],
                    op(scenario),
                    &mut checks[i],
                    batches[k],
                    budget,
                    &mut timed[k],
                );
            }
        }
        for (&i, rounds) in run.iter().zip(timed) {
            let d = &mut drivers[i];
            let per = per_op(d, scenario, 2_000);
            check_live(d, scenario.name());
            rows.push(Row {
                scenario,
                side: Side::Session,
                live: ours[i],
                rounds,
                per_op: Some(per),
            });
        }
    }
    let version = phoenix_js::version().unwrap_or_else(|| "-".into());
    report::print(&rows, rounds, round_ms, &version);
}
