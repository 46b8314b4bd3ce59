//! Recording and replaying a session on a simulated clock.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::codec::{Frame, FrameRef};
use crate::session::{Disconnect, JoinParams, Output, PushId, PushTarget, SubscribeOptions};

const SOCKET_SECRET: &str = "s3cret-socket";
const AUTH_SECRET: &str = "s3cret-auth";
const JOIN_SECRET: &str = "s3cret-join";

/// A driver on a simulated clock that records everything it passes through.
struct Tape {
    session: Session,
    recorder: Recorder,
    lines: Vec<String>,
    now: Instant,
    start: Instant,
    /// Text frames sent, in order.
    sent: Vec<Value>,
    connects: Vec<u64>,
}

impl Tape {
    fn new(secrets: bool) -> Tape {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let config =
            SessionConfig::new(format!("ws://localhost:4000/socket?token={SOCKET_SECRET}"))
                .with_param("key", SOCKET_SECRET)
                .with_auth_token(|| AUTH_SECRET.to_owned())
                .with_heartbeat_interval(Duration::from_secs(5))
                .with_push_timeout(Duration::from_secs(3))
                .with_seed(42);
        let session = Session::new(config, start).expect("a valid config");
        let recorder = Recorder::new(&session, start).with_secrets(secrets);
        let lines = vec![recorder.header()];
        Tape {
            session,
            recorder,
            lines,
            now: start,
            start,
            sent: Vec::new(),
            connects: Vec::new(),
        }
    }

    fn record(&mut self, input: Input, outcome: &Outcome, queued: usize) {
        self.lines
            .push(self.recorder.input(&input, outcome, queued, self.now));
        while let Some(output) = self.session.poll_output() {
            self.lines.push(self.recorder.output(&output));
            match output {
                Output::Transmit(Frame::Text(text)) => self
                    .sent
                    .push(serde_json::from_str(&text).expect("JSON frames")),
                Output::Connect(request) => self.connects.push(request.id.0),
                _ => {}
            }
        }
    }

    fn step(&mut self, input: Input) -> Outcome {
        let queued = self.session.queued_outputs();
        let outcome = self.session.apply(&input, self.now);
        self.record(input, &outcome, queued);
        outcome
    }

    fn at(&mut self, after: Duration) -> &mut Tape {
        self.now += after;
        self
    }

    /// Sleeps until the session's next timer and fires it.
    fn timeout(&mut self) {
        self.now = self.session.poll_timeout().expect("a timer");
        self.step(Input::Timeout);
    }

    fn frame(&mut self, frame: Value) {
        self.step(Input::frame(FrameRef::Text(&frame.to_string())));
    }

    /// The last frame sent with `event`.
    fn last(&self, event: &str) -> Value {
        self.sent
            .iter()
            .rev()
            .find(|f| f[3] == event)
            .cloned()
            .expect("a frame with that event")
    }

    fn reply_ok(&mut self, to: &Value, response: Value) {
        let reply =
            json!([to[0], to[1], to[2], "phx_reply", {"status": "ok", "response": response}]);
        self.frame(reply);
    }

    fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Connect, join with secret params, messages, a crash and its rejoin, a
/// push answered and one timed out, a dead link and a reconnect, rooms,
/// close-all and disconnect.
fn scenario(secrets: bool) -> Tape {
    let mut tape = Tape::new(secrets);
    tape.step(Input::Connect);
    let id = *tape.connects.last().expect("a connect request");
    tape.at(Duration::from_millis(3))
        .step(Input::Connected { id });
    let mut recorder = tape.recorder.clone();
    let options = SubscribeOptions::params(json!({"token": JOIN_SECRET})).with_presence(true);
    let subscribe = recorder.subscribe(SubscriberId(1), "room:a", &options);
    assert_eq!(tape.step(subscribe), Outcome::Done);
    let join = tape.last("phx_join");
    tape.at(Duration::from_millis(2))
        .reply_ok(&join, json!({"hello": 1}));
    tape.frame(json!([join[0], null, "room:a", "new_msg", {"body": "hi", "n": 1.5}]));
    tape.frame(
        json!([join[0], null, "room:a", "presence_state", {"u1": {"metas": [{"phx_ref": "p1"}]}}]),
    );
    // The channel crashes; it rejoins after the (jittered) backoff.
    tape.at(Duration::from_millis(10))
        .frame(json!([join[0], join[0], "room:a", "phx_error", {}]));
    tape.timeout();
    let rejoin = tape.last("phx_join");
    assert_ne!(rejoin[0], join[0], "a new incarnation");
    tape.reply_ok(&rejoin, json!({}));
    // A push answered, one left to time out, one refused up front.
    let target = PushTarget::Subscription(SubscriberId(1));
    let payload = crate::codec::Payload::Json(json!({"n": 1, "e": 2.5e-7}));
    tape.step(Input::push(
        PushId(7),
        &target,
        "ping",
        &payload,
        Default::default(),
    ));
    let ping = tape.last("ping");
    tape.at(Duration::from_millis(1))
        .reply_ok(&ping, json!({"pong": true}));
    tape.step(Input::push(
        PushId(8),
        &target,
        "slow",
        &payload,
        Default::default(),
    ));
    let refused = tape.step(Input::push(
        PushId(9),
        &target,
        "phx_join",
        &payload,
        Default::default(),
    ));
    assert!(matches!(refused, Outcome::Refused(_)));
    tape.step(Input::cast(
        &target,
        "bin",
        &crate::codec::Payload::Binary(vec![0, 1, 255]),
    ));
    tape.timeout(); // the push times out
                    // A room follows a second topic.
    tape.step(Input::OpenRoom { id: 3 });
    let mut recorder = tape.recorder.clone();
    let switch = recorder.switch(RoomId(3), "room:b", &JoinParams::none());
    tape.step(switch);
    let join_b = tape.last("phx_join");
    tape.reply_ok(&join_b, json!({}));
    // The heartbeats go unanswered: the link is dead, the socket reconnects.
    for _ in 0..3 {
        if tape.connects.len() > 1 {
            break;
        }
        tape.timeout();
    }
    assert_eq!(tape.connects.len(), 2, "a reconnect");
    let id = tape.connects[1];
    tape.at(Duration::from_millis(1))
        .step(Input::Connected { id });
    let rejoin = tape.last("phx_join");
    tape.reply_ok(&rejoin, json!({}));
    tape.step(Input::Unsubscribe { id: 1 });
    tape.step(Input::Unsubscribe { id: 1 });
    tape.step(Input::CloseAll);
    tape.step(Input::Disconnected {
        id,
        why: Disconnect::Closed {
            code: 1011,
            reason: "oops".into(),
        },
    });
    tape.timeout();
    tape.step(Input::Disconnect);
    tape
}

#[test]
fn a_recorded_scenario_replays_equal() {
    let tape = scenario(false);
    let summary = replay(&tape.text(), tape.start + Duration::from_secs(100)).expect("replays");
    assert_eq!(summary.lines, tape.lines.len());
    assert!(summary.inputs > 25, "{summary:?}");
    assert!(summary.outputs > 40, "{summary:?}");
    assert_eq!(summary.span, tape.now - tape.start);
}

#[test]
fn a_recording_with_secrets_replays_equal_too() {
    let tape = scenario(true);
    replay(&tape.text(), tape.start).expect("replays");
}

#[test]
fn no_secret_appears_in_a_recording() {
    let text = scenario(false).text();
    for secret in [SOCKET_SECRET, AUTH_SECRET, JOIN_SECRET] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    assert!(text.contains(REDACTED));
    // The token's base64 in the protocols is redacted too.
    let encoded = base64::encode(AUTH_SECRET.as_bytes());
    assert!(!text.contains(encoded.trim_end_matches('=')));
    // Opting in keeps them.
    let text = scenario(true).text();
    for secret in [SOCKET_SECRET, JOIN_SECRET] {
        assert!(text.contains(secret), "{secret} kept");
    }
}

#[test]
fn a_changed_output_is_reported_at_its_line() {
    let tape = scenario(false);
    let mut lines = tape.lines.clone();
    let at = lines
        .iter()
        .position(|l| l.contains("new_msg") && l.starts_with("{\"output\""))
        .expect("the message's output line");
    lines[at] = lines[at].replace("hi", "ho");
    match replay(&lines.join("\n"), tape.start) {
        Err(ReplayError::Output {
            line,
            input_line,
            input,
            ..
        }) => {
            assert_eq!(line, at + 1);
            assert!(input_line < line);
            assert_eq!(input, "text frame");
        }
        other => panic!("expected an output mismatch, got {other:?}"),
    }
}

#[test]
fn a_missing_output_is_reported_before_the_next_input() {
    let tape = scenario(false);
    let mut lines = tape.lines.clone();
    let at = lines
        .iter()
        .position(|l| l.contains("new_msg") && l.starts_with("{\"output\""))
        .expect("the message's output line");
    lines.remove(at);
    match replay(&lines.join("\n"), tape.start) {
        Err(ReplayError::Queued { line, .. }) => assert_eq!(line, at + 1),
        other => panic!("expected a queue mismatch, got {other:?}"),
    }
}

#[test]
fn a_changed_outcome_is_reported() {
    let tape = scenario(false);
    let mut lines = tape.lines.clone();
    let at = lines
        .iter()
        .position(|l| l.contains("\"refused\""))
        .expect("a refused push");
    let Ok(Line::Input {
        at_ns,
        queued,
        input,
        ..
    }) = serde_json::from_str(&lines[at])
    else {
        panic!("an input line");
    };
    let changed = Line::Input {
        at_ns,
        queued,
        input,
        outcome: Outcome::Done,
    };
    lines[at] = serde_json::to_string(&changed).expect("serializes");
    match replay(&lines.join("\n"), tape.start) {
        Err(ReplayError::Outcome { line, input, .. }) => {
            assert_eq!(line, at + 1);
            assert_eq!(input, "push");
        }
        other => panic!("expected an outcome mismatch, got {other:?}"),
    }
}

#[test]
fn bad_recordings_are_refused_with_their_line() {
    #[allow(clippy::disallowed_methods)]
    let base = Instant::now();
    assert!(matches!(replay("", base), Err(ReplayError::Empty)));
    let tape = scenario(false);
    assert!(matches!(
        replay(&tape.lines[1..].join("\n"), base),
        Err(ReplayError::MissingHeader)
    ));
    let mut lines = tape.lines.clone();
    lines[4] = "{\"input\":".to_owned();
    assert!(matches!(
        replay(&lines.join("\n"), base),
        Err(ReplayError::Parse { line: 5, .. })
    ));
    let header = tape.lines[0].replace("\"format\":1", "\"format\":99");
    assert!(matches!(
        replay(&header, base),
        Err(ReplayError::Format { found: 99, .. })
    ));
}

#[test]
fn every_input_round_trips_through_json() {
    let payload = RecordedPayload::Json(RawJson::from_value(&json!({"a": [1, 2.5, "x"]})));
    let params = RecordedParams {
        json: Some(RawJson::from_value(&json!({"t": 1}))),
        provider: Some(2),
        settling: Some(true),
    };
    let inputs = vec![
        Input::Connect,
        Input::Reconnect,
        Input::Connected { id: 1 },
        Input::Disconnected {
            id: 1,
            why: Disconnect::Failed {
                error: "reset".into(),
            },
        },
        Input::Text("[\"1\",null,\"t\",\"e\",{}]".into()),
        Input::Binary(base64::encode(&[0, 1, 2])),
        Input::Timeout,
        Input::Subscribe {
            id: 1,
            topic: "t".into(),
            params: params.clone(),
            events: Some(vec!["e".into()]),
            presence: true,
            stream: Some(Box::new(crate::session::StreamOptions::versioned())),
        },
        Input::Unsubscribe { id: 1 },
        Input::OpenRoom { id: 2 },
        Input::Switch {
            id: 2,
            topic: "t".into(),
            params,
        },
        Input::CloseRoom { id: 2 },
        Input::Push {
            id: 3,
            target: RecordedTarget::Topic("t".into()),
            event: "e".into(),
            payload: payload.clone(),
            timeout: Some(Duration::from_millis(1500)),
            settling: true,
        },
        Input::Cast {
            target: RecordedTarget::Room(2),
            event: "e".into(),
            payload: RecordedPayload::Binary(base64::encode(b"bytes")),
        },
        Input::Settled {
            topic: "t".into(),
            join_ref: 4,
            result: Err(Some("no".into())),
        },
        Input::CloseAll,
        Input::Disconnect,
    ];
    for input in inputs {
        let line = Line::Input {
            at_ns: 12,
            queued: 1,
            input: input.clone(),
            outcome: Outcome::Refused("why".into()),
        };
        let text = serde_json::to_string(&line).expect("serializes");
        let back: Line = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, line, "{text}");
    }
    // Payload text is kept as it was.
    let raw: RawJson = serde_json::from_str("{\"b\":1,  \"a\":2}").expect("raw JSON");
    assert_eq!(raw.get(), "{\"b\":1,  \"a\":2}");
}

#[test]
fn the_recorded_config_rebuilds_every_knob() {
    let tape = Tape::new(false);
    let recorded = RecordedConfig::new(tape.session.config(), tape.session.seed(), false);
    assert_eq!(
        recorded.params,
        vec![("key".to_owned(), REDACTED.to_owned())]
    );
    assert_eq!(
        recorded.endpoint,
        format!("ws://localhost:4000/socket?token={REDACTED}")
    );
    assert!(recorded.auth_token);
    let rebuilt = RecordedConfig::new(&recorded.to_config(), 42, false);
    assert_eq!(rebuilt, recorded);
}

#[test]
fn an_ordered_stream_replays_equal() {
    use crate::session::stream::SequencedConfig;
    use crate::session::StreamOptions;

    let mut tape = Tape::new(false);
    tape.step(Input::Connect);
    let id = *tape.connects.last().expect("a connect request");
    tape.step(Input::Connected { id });
    let mut recorder = tape.recorder.clone();
    let options =
        SubscribeOptions::default().with_stream(StreamOptions::sequenced(SequencedConfig {
            ack_every: 2,
            ..SequencedConfig::default()
        }));
    let subscribe = recorder.subscribe(SubscriberId(1), "seq:a", &options);
    assert_eq!(tape.step(subscribe), Outcome::Done);
    let join = tape.last("phx_join");
    assert_eq!(join[4]["last_seq"], 0);
    tape.reply_ok(&join, json!({"earliest_seq": 1}));
    tape.frame(json!([join[0], null, "seq:a", "event", {"seq": 1}]));
    tape.frame(json!([join[0], null, "seq:a", "event", {"seq": 3}]));
    let replay_request = tape.last("replay");
    tape.reply_ok(&replay_request, json!({}));
    tape.frame(json!([join[0], null, "seq:a", "event", {"seq": 2}]));
    let ack = tape.last("ack");
    tape.reply_ok(&ack, json!({}));

    let text = tape.text();
    assert!(
        text.contains("\"stream\""),
        "the stream options are recorded"
    );
    let summary = replay(&text, tape.start + Duration::from_secs(100)).expect("replays");
    assert_eq!(summary.lines, tape.lines.len());
}

#[test]
fn recorded_json_debugs_as_its_exact_text() {
    let raw = input::RawJson::from_value(&json!({ "a": [1, 2.5, "x"] }));
    assert_eq!(format!("{raw:?}"), r#"{"a":[1,2.5,"x"]}"#);
    assert_eq!(raw.to_value(), json!({ "a": [1, 2.5, "x"] }));
}

#[test]
fn a_join_frame_is_kept_with_its_params_redacted_and_other_frames_as_sent() {
    let text = |t: &str| output::RecordedOutput::Text(t.to_owned());
    let parsed = |o: output::RecordedOutput| match o {
        output::RecordedOutput::Text(t) => serde_json::from_str::<Value>(&t).unwrap(),
        other => panic!("a text frame: {other:?}"),
    };
    let join = r#"["1","1","room:a","phx_join",{"token":"s3cret","n":3}]"#;
    assert_eq!(
        parsed(text(join).redacted()),
        json!(["1", "1", "room:a", "phx_join", {"token": REDACTED, "n": REDACTED}])
    );
    assert_eq!(
        parsed(text(join).normalized()),
        json!(["1", "1", "room:a", "phx_join", REDACTED])
    );
    let push = r#"["1","2","room:a","echo",{"token":"kept"}]"#;
    assert_eq!(text(push).redacted(), text(push));
    assert_eq!(text(push).normalized(), text(push));
}
