//! Differential test of `session::presence` against the official phoenix.js `Presence`
//! (the version pinned in `tests/js/package.json`).
//!
//! Proptest generates message sequences — several keys (numeric ones included, which
//! JavaScript orders first), several metas per key, overlapping joins and leaves, leaves of
//! unknown refs, states that replace everything, diffs before the state, new joins midway,
//! stale join_refs, custom event names. All cases go to one JSON file; one run of
//! `tests/js/presence_replay.mjs` replays them through phoenix.js and prints the list, the
//! join/leave/sync callbacks and the sync status after every step; ours must match at every
//! step. If a case differs, the cases are generated again from the same seed and replayed one
//! node run each, so that proptest can shrink the failure and record it in
//! `proptest-regressions/presence_differential.txt`.
//!
//! Needs Node.js and npm; the pinned client is installed on first run
//! (`npm ci --prefix tests/js`). Without node the test is skipped with a message, except
//! when the `CI` environment variable is set: then it fails.

use std::cell::RefCell;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use channel_registry::session::presence::{Presence, PresenceConfig, PresenceEvent};
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Generated sequences per run; one node run replays them all in well under a second.
const CASES: u32 = 256;
const TOPIC: &str = "presence:replay";
const REGRESSIONS: &str = "proptest-regressions/presence_differential.txt";

/// Keys most steps draw from, so that joins and leaves meet.
const COMMON_KEYS: &[&str] = &["alice", "bob", "1", "10"];
/// Keys whose place in a JavaScript object is special, or that name `Object.prototype`
/// properties.
const ODD_KEYS: &[&str] = &[
    "9",
    "0",
    "007",
    "-1",
    "4294967294",
    "4294967295",
    "__proto__",
    "constructor",
    "toString",
    "",
    "a/b",
    "zoë",
];
const REFS: &[&str] = &["r1", "r2", "r3", "r4", "r5", "r6"];
const JOIN_REFS: &[&str] = &["1", "2", "3"];

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// One sequence, as both sides replay it.
#[derive(Clone, Debug, Serialize)]
struct Case {
    /// Custom event names, or `null` for phoenix.js's defaults.
    events: Option<EventNames>,
    steps: Vec<Step>,
}

#[derive(Clone, Debug, Serialize)]
struct EventNames {
    state: String,
    diff: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
enum Step {
    /// The channel sent a `phx_join` with this ref.
    Join { join: String },
    /// A text frame from the server.
    Frame {
        frame: String,
        #[serde(skip)]
        join_ref: Option<String>,
        #[serde(skip)]
        event: String,
        #[serde(skip)]
        payload: Value,
    },
}

/// Which join_ref a frame carries, chosen before the joins are known.
#[derive(Clone, Debug)]
enum RefPick {
    /// `null`, as on broadcasts.
    Null,
    /// The ref of the latest join.
    Current,
    /// A fixed ref, usually another join's.
    Fixed(&'static str),
}

#[derive(Clone, Debug)]
enum Kind {
    State,
    Diff,
    /// A state or diff sent under phoenix.js's default name (unrelated under custom names).
    DefaultState,
    DefaultDiff,
    Unrelated,
}

#[derive(Clone, Debug)]
enum RawStep {
    Join(&'static str),
    Message {
        join_ref: RefPick,
        kind: Kind,
        payload: Value,
    },
}

fn key() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => prop::sample::select(COMMON_KEYS),
        1 => prop::sample::select(ODD_KEYS),
    ]
}

fn meta() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(REFS),
        prop::option::of(0..3i64),
        prop::option::weighted(0.2, prop::sample::select(REFS)),
    )
        .prop_map(|(phx_ref, n, prev)| {
            let mut meta = Map::new();
            meta.insert("phx_ref".into(), json!(phx_ref));
            if let Some(n) = n {
                meta.insert("n".into(), json!(n));
            }
            if let Some(prev) = prev {
                meta.insert("phx_ref_prev".into(), json!(prev));
            }
            Value::Object(meta)
        })
}

fn entry() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(meta(), 0..4),
        prop::option::weighted(0.2, prop::sample::select(&["A", "B"][..])),
    )
        .prop_map(|(metas, name)| {
            let mut entry = json!({ "metas": metas });
            if let Some(name) = name {
                entry["user"] = json!({ "name": name });
            }
            entry
        })
}

fn presences(max: usize) -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), entry()), 0..max).prop_map(|entries| {
        Value::Object(
            entries
                .into_iter()
                .map(|(key, entry)| (key.to_owned(), entry))
                .collect(),
        )
    })
}

fn diff() -> impl Strategy<Value = Value> {
    (presences(4), presences(4))
        .prop_map(|(joins, leaves)| json!({ "joins": joins, "leaves": leaves }))
}

fn ref_pick(null: u32, current: u32, fixed: u32) -> impl Strategy<Value = RefPick> {
    prop_oneof![
        null => Just(RefPick::Null),
        current => Just(RefPick::Current),
        fixed => prop::sample::select(&["1", "2", "3", ""][..]).prop_map(RefPick::Fixed),
    ]
}

fn raw_step() -> impl Strategy<Value = RawStep> {
    let message = |join_ref, kind: Kind, payload| RawStep::Message {
        join_ref,
        kind,
        payload,
    };
    prop_oneof![
        2 => prop::sample::select(JOIN_REFS).prop_map(RawStep::Join),
        1 => Just(RawStep::Join("")),
        6 => (ref_pick(1, 8, 1), presences(6)).prop_map(move |(r, p)| message(r, Kind::State, p)),
        12 => (ref_pick(8, 1, 1), diff()).prop_map(move |(r, p)| message(r, Kind::Diff, p)),
        1 => (ref_pick(1, 8, 1), presences(3)).prop_map(move |(r, p)| message(r, Kind::DefaultState, p)),
        1 => (ref_pick(8, 1, 1), diff()).prop_map(move |(r, p)| message(r, Kind::DefaultDiff, p)),
        1 => ref_pick(1, 1, 1).prop_map(move |r| message(r, Kind::Unrelated, json!({"body": "hi"}))),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::bool::weighted(0.2),
        prop::collection::vec(raw_step(), 1..30),
    )
        .prop_map(|(custom, raw)| {
            let events = custom.then(|| EventNames {
                state: "state".to_owned(),
                diff: "diff".to_owned(),
            });
            resolve(events, raw)
        })
}

/// Turns picks into concrete join_refs, event names and frames.
fn resolve(events: Option<EventNames>, raw: Vec<RawStep>) -> Case {
    let mut current: Option<&str> = None;
    let mut steps = Vec::with_capacity(raw.len());
    for step in raw {
        match step {
            RawStep::Join(join_ref) => {
                current = Some(join_ref);
                steps.push(Step::Join {
                    join: join_ref.to_owned(),
                });
            }
            RawStep::Message {
                join_ref,
                kind,
                payload,
            } => {
                let join_ref = match join_ref {
                    RefPick::Null => None,
                    RefPick::Current => current,
                    RefPick::Fixed(join_ref) => Some(join_ref),
                };
                let (state, diff) = events
                    .as_ref()
                    .map_or(("presence_state", "presence_diff"), |e| {
                        (e.state.as_str(), e.diff.as_str())
                    });
                let event = match kind {
                    Kind::State => state,
                    Kind::Diff => diff,
                    Kind::DefaultState => "presence_state",
                    Kind::DefaultDiff => "presence_diff",
                    Kind::Unrelated => "new_msg",
                };
                let frame = json!([join_ref, null, TOPIC, event, payload]).to_string();
                steps.push(Step::Frame {
                    frame,
                    join_ref: join_ref.map(str::to_owned),
                    event: event.to_owned(),
                    payload,
                });
            }
        }
    }
    Case { events, steps }
}

// ---------------------------------------------------------------------------------------------
// Our side
// ---------------------------------------------------------------------------------------------

/// What the Rust tracker shows after every step, in the script's JSON shape.
fn replay(case: &Case) -> Vec<Value> {
    let config = case
        .events
        .as_ref()
        .map_or_else(PresenceConfig::default, |e| {
            PresenceConfig::with_events(&e.state, &e.diff)
        });
    let mut presence = Presence::new(config);
    case.steps
        .iter()
        .map(|step| {
            match step {
                Step::Join { join } => presence.handle_join(join.as_str()),
                Step::Frame {
                    join_ref,
                    event,
                    payload,
                    ..
                } => {
                    if let Err(error) = presence.handle_message(join_ref.as_deref(), event, payload)
                    {
                        panic!("generated payloads are well formed, yet: {error}");
                    }
                }
            }
            let events: Vec<Value> = std::iter::from_fn(|| presence.poll_event())
                .map(|event| match event {
                    PresenceEvent::Join {
                        key,
                        current,
                        joined,
                    } => json!([
                        "join",
                        key,
                        current.map(|c| c.to_value()),
                        joined.to_value()
                    ]),
                    PresenceEvent::Leave { key, current, left } => {
                        json!(["leave", key, current.to_value(), left.to_value()])
                    }
                    PresenceEvent::Sync => json!(["sync"]),
                    other => panic!("an event phoenix.js has no callback for: {other:?}"),
                })
                .collect();
            json!({
                "list": presence.list_by(|key, entry| json!([key, entry.to_value()])),
                "events": events,
                "synced": presence.is_synced(),
            })
        })
        .collect()
}

/// The first step where we differ from phoenix.js, described.
fn compare(case: &Case, theirs: &Value) -> Result<(), String> {
    let ours = replay(case);
    let theirs = theirs
        .as_array()
        .ok_or_else(|| format!("phoenix.js returned {theirs} for a case, not an array of steps"))?;
    if theirs.len() != ours.len() {
        return Err(format!(
            "phoenix.js reported {} steps, we replayed {}",
            theirs.len(),
            ours.len()
        ));
    }
    match ours.iter().zip(theirs).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(at) => Err(format!(
            "step {at} differs\n  step:       {}\n  phoenix.js: {}\n  ours:       {}\nsteps so far:\n{}",
            serde_json::to_string(&case.steps[at]).unwrap_or_default(),
            theirs[at],
            ours[at],
            case.steps[..=at]
                .iter()
                .map(|s| format!("  {}", serde_json::to_string(s).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Their side
// ---------------------------------------------------------------------------------------------

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("js")
}

/// Whether node can run the script; installs the pinned packages on first use.
fn node_ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        let message = "the phoenix.js presence differential test needs Node.js 18+ (`node`)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}, and CI must run it"
        );
        eprintln!("SKIPPED: {message}; install it to compare with phoenix.js");
        return false;
    }
    let dir = js_dir();
    let installed = || dir.join("node_modules/phoenix/package.json").is_file();
    if !installed() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs (install npm alongside Node.js)");
        assert!(status.success(), "npm ci --prefix tests/js failed");
    }
    assert!(
        installed(),
        "the differential test needs the pinned phoenix package: run `npm ci --prefix tests/js`"
    );
    true
}

/// Replays `cases` through phoenix.js in one node run: per case, per step, what it showed.
fn run_phoenix_js(cases: &[Case]) -> Vec<Value> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "presence-cases-{}-{}.json",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let json = serde_json::to_vec(cases).expect("cases serialize");
    std::fs::write(&file, json).expect("the cases file can be written");
    let output = Command::new("node")
        .arg(js_dir().join("presence_replay.mjs"))
        .arg(&file)
        .output()
        .expect("node runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "presence_replay.mjs failed ({})\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> =
        serde_json::from_slice(&output.stdout).expect("presence_replay.mjs prints JSON");
    assert_eq!(results.len(), cases.len(), "one result per case");
    results
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

fn runner(seed: [u8; 32]) -> TestRunner {
    let config = Config {
        cases: CASES,
        max_shrink_iters: 1000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// A fresh seed per run, or `PRESENCE_DIFF_SEED` (64 hex digits) to repeat one.
fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Ok(hex) = std::env::var("PRESENCE_DIFF_SEED") {
        for (byte, pair) in seed.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).unwrap_or("00");
            *byte = u8::from_str_radix(pair, 16).expect("PRESENCE_DIFF_SEED is hex");
        }
        return seed;
    }
    let state = RandomState::new();
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&state.hash_one(i).to_le_bytes());
    }
    seed
}

#[test]
fn presence_matches_phoenix_js() {
    if !node_ready() {
        return;
    }
    let seed = seed();
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();

    // Generate every case (stored regressions first), then replay all in one node run.
    let cases = RefCell::new(Vec::new());
    runner(seed)
        .run(&case(), |case| {
            cases.borrow_mut().push(case);
            Ok(())
        })
        .expect("collecting cases cannot fail");
    let cases = cases.into_inner();
    let results = run_phoenix_js(&cases);
    let failures: Vec<(usize, String)> = cases
        .iter()
        .zip(&results)
        .enumerate()
        .filter_map(|(i, (case, theirs))| compare(case, theirs).err().map(|e| (i, e)))
        .collect();
    let steps: usize = cases.iter().map(|case| case.steps.len()).sum();
    println!(
        "{} cases, {steps} steps: {} differ from phoenix.js (seed {hex})",
        cases.len(),
        failures.len()
    );
    let Some((first, report)) = failures.first() else {
        return;
    };

    // Same seed, same cases: now one node run per case, so proptest can shrink and record.
    let outcome = runner(seed).run(&case(), |case| {
        let theirs = run_phoenix_js(std::slice::from_ref(&case));
        compare(&case, &theirs[0]).map_err(TestCaseError::fail)
    });
    match outcome {
        Err(TestError::Fail(reason, minimal)) => panic!(
            "presence differs from phoenix.js (seed {hex}); minimal case:\n{}\n{reason}",
            serde_json::to_string_pretty(&minimal).unwrap_or_default()
        ),
        other => panic!(
            "case {first} differs from phoenix.js (seed {hex}), but not when replayed alone \
             ({other:?}):\n{report}"
        ),
    }
}
