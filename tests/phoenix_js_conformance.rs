//! The official phoenix.js client, run in Node, against the dev server: `tests/js/conformance.mjs`
//! asserts joins, errors, replies, push timeouts, broadcasts, duplicate topics, crash and
//! rejoin, presence, binary frames and heartbeats.
//!
//! Needs Node.js and npm; the pinned client is installed on first run (`npm ci --prefix tests/js`).
#![cfg(feature = "dev-server")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};

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
    let run = tokio::task::spawn_blocking(move || run_node(&script, &url));
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

/// Run `node script url`; returns the exit code (None if killed) and the captured output.
fn run_node(script: &Path, url: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new("node")
        .arg(script)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("could not start `node` ({error}); install Node.js 18 or newer")
        });
    let mut stdout_pipe = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let stdout_reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout_pipe.read_to_string(&mut out);
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
