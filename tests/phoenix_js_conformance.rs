//! The official phoenix.js client, run in Node, against the dev server: `tests/js/conformance.mjs`
//! asserts joins, errors, replies, push timeouts, broadcasts, duplicate topics, crash and
//! rejoin, presence (list and join, leave and sync callbacks), `channel.on` filtering, binary
//! frames, heartbeats, the `authToken` subprotocol, and reconnecting after close codes.
//!
//! The script steers the server through this runner: it prints `@@steer {json}` and reads
//! the answer, one JSON line, on its stdin (see [`steer`]).
//!
//! Needs Node.js and npm; the pinned client is installed on first run (`npm ci --prefix tests/js`).
#![cfg(feature = "dev-server")]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig, DevServerHandle};
use serde_json::{json, Value};

/// Upper bound for the whole script; it normally takes well under a second.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the runner checks whether node has exited.
const POLL: Duration = Duration::from_millis(20);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("js")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phoenix_js_client_conforms() {
    let dir = js_dir();
    let installed = |p: &str| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .is_file()
    };
    if !(installed("phoenix") && installed("ws")) {
        // First run on a fresh checkout: install the pinned packages (lockfile).
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs (install Node.js 20+ and npm)");
        assert!(status.success(), "npm ci --prefix tests/js failed");
    }
    for package in ["phoenix", "ws"] {
        assert!(
            dir.join("node_modules").join(package).join("package.json").is_file(),
            "the phoenix.js conformance test needs its Node packages: run `npm ci --prefix tests/js`"
        );
    }

    let server =
        DevServer::start(DevServerConfig::default().with_sync_delay(Duration::from_millis(10)))
            .await
            .expect("dev server starts");
    let url = server.url();
    let script = dir.join("conformance.mjs");
    let handle = server.handle();
    let run = tokio::task::spawn_blocking(move || run_node(&script, &url, &handle));
    let (status, stdout, stderr) = run.await.expect("the node runner does not panic");

    println!("{stdout}");
    assert!(
        status == Some(0),
        "conformance.mjs failed (exit status {status:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let passed = summary
        .strip_suffix(" passed, 0 failed")
        .and_then(|count| count.parse::<u32>().ok());
    assert!(
        passed.is_some_and(|count| count > 0),
        "unexpected summary line {summary:?}\n{stdout}"
    );
    assert_eq!(
        server.view(|s| s.malformed_count()),
        0,
        "phoenix.js sent frames the server could not decode"
    );
}

/// What the script asks of the server: `{"op": ...}` with the op's arguments. Answers are
/// JSON objects; an unknown op or bad arguments answer `{"error": ...}`.
///
/// - `close_all_sockets {code, reason}`: close every socket with a close frame.
/// - `push {topic, event, payload}`: push to every member incarnation of `topic`.
/// - `sockets`: the connected sockets' auth tokens and params.
fn steer(server: &DevServerHandle, request: &Value) -> Value {
    let text = |field: &str| request[field].as_str().unwrap_or_default().to_owned();
    match request["op"].as_str() {
        Some("close_all_sockets") => {
            let code = request["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(1000);
            json!({"addressed": server.close_all_sockets(code, &text("reason"))})
        }
        Some("push") => {
            let payload = request["payload"].clone();
            json!({"addressed": server.push(&text("topic"), &text("event"), payload)})
        }
        Some("sockets") => {
            let sockets: Vec<Value> = server
                .sockets()
                .iter()
                .map(|s| json!({"auth_token": s.auth_token, "params": s.params}))
                .collect();
            json!({"sockets": sockets})
        }
        _ => json!({"error": format!("unknown steer request {request}")}),
    }
}

/// Marks a line of the script as a request to [`steer`].
const STEER: &str = "@@steer ";

/// Run `node script url`, answering its steer requests; returns the exit code (None if
/// killed) and the captured output (steer requests left out).
fn run_node(script: &Path, url: &str, server: &DevServerHandle) -> (Option<i32>, String, String) {
    let mut child = Command::new("node")
        .arg(script)
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("could not start `node` ({error}); install Node.js 18 or newer")
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout_pipe = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let server = server.clone();
    let stdout_reader = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(stdout_pipe).lines() {
            let Ok(line) = line else { break };
            match line.strip_prefix(STEER) {
                Some(request) => {
                    let answer = match serde_json::from_str::<Value>(request) {
                        Ok(request) => steer(&server, &request),
                        Err(error) => json!({"error": format!("not JSON: {error}")}),
                    };
                    // The script may have exited; then nobody needs the answer.
                    let _ = writeln!(stdin, "{answer}").and_then(|()| stdin.flush());
                }
                None => {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
        out
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr_pipe.read_to_string(&mut out);
        out
    });
    // Poll a bounded number of times rather than reading a clock.
    let mut polls_left = SCRIPT_TIMEOUT.as_millis() / POLL.as_millis();
    let status = loop {
        match child.try_wait().expect("waiting for node") {
            Some(status) => break status.code(),
            None if polls_left == 0 => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => {
                polls_left -= 1;
                std::thread::sleep(POLL);
            }
        }
    };
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    (status, stdout, stderr)
}
