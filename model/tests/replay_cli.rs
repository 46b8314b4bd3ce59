//! The `replay` command: a clean recording replays with a summary and exit
//! 0; a tampered one exits non-zero naming its line.

use std::process::Command;
use std::time::{Duration, Instant};

use channel_registry::codec::FrameRef;
use channel_registry::session::record::{Input, Recorder};
use channel_registry::session::{Session, SessionConfig, SubscribeOptions};

/// A short recording: connect, join, the reply, a message.
fn recording() -> String {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let config = SessionConfig::new("ws://localhost:4000/socket").with_seed(1);
    let mut session = Session::new(config, start).expect("a valid config");
    let mut recorder = Recorder::new(&session, start);
    let mut lines = vec![recorder.header()];
    let subscribe = recorder.subscribe(
        channel_registry::engine::SubscriberId(1),
        "room:a",
        &SubscribeOptions::default(),
    );
    let reply = r#"["1","1","room:a","phx_reply",{"status":"ok","response":{}}]"#;
    let message = r#"["1",null,"room:a","news",{"n":1}]"#;
    let inputs = [
        Input::Connect,
        Input::Connected { id: 1 },
        subscribe,
        Input::frame(FrameRef::Text(reply)),
        Input::frame(FrameRef::Text(message)),
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        let now = start + Duration::from_millis(i as u64);
        let queued = session.queued_outputs();
        let outcome = session.apply(&input, now);
        lines.push(recorder.input(&input, &outcome, queued, now));
        while let Some(output) = session.poll_output() {
            lines.push(recorder.output(&output));
        }
    }
    lines.join("\n")
}

fn run(text: &str, name: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("replay-cli-{}-{name}.jsonl", std::process::id()));
    std::fs::write(&path, text).expect("a temp file");
    let output = Command::new(env!("CARGO_BIN_EXE_channel-registry-model"))
        .arg("replay")
        .arg(&path)
        .output()
        .expect("the model CLI runs");
    let _ = std::fs::remove_file(&path);
    output
}

#[test]
fn replay_reports_a_clean_recording_and_a_tampered_one() {
    let text = recording();
    let clean = run(&text, "clean");
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{clean:?}");
    assert!(stdout.contains("5 inputs"), "{stdout}");
    assert!(stdout.contains("all equal"), "{stdout}");

    let tampered_line = text
        .lines()
        .position(|l| l.starts_with("{\"output\"") && l.contains("news"))
        .expect("the message's output")
        + 1;
    let tampered = text.replace("\\\"n\\\": Number(1)", "\\\"n\\\": Number(2)");
    assert_ne!(tampered, text);
    let failed = run(&tampered, "tampered");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{failed:?}");
    assert!(
        stderr.contains(&format!("line {tampered_line}:")),
        "{stderr}"
    );
}
