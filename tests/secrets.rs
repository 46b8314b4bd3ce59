//! No secret reaches a log: every record at trace level — the client's
//! `tracing` events and spans, and dependencies' `log` records — is captured
//! through connect, a join with secret params, a push with a secret payload,
//! a join error, URL and connection errors and a reconnect, and searched for
//! the secrets. The WebSocket library logs its handshake request and frames at
//! trace level; the README gives the filter that silences it, and this test
//! applies that filter. The auth token (`ClientConfig::with_auth_token`)
//! never appears in the request line (URL), filtered or not.
#![cfg(feature = "dev-server")]

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig};
use serde_json::json;
use tokio::time::timeout;
use tracing::field::{Field, Visit};
use tracing::span;

const PARAM: &str = "param-secret-4f1c";
const AUTH: &str = "auth-secret-9a2e";
const JOIN: &str = "join-secret-77b0";
const PAYLOAD: &str = "payload-secret-c3d5";
const URL_SECRET: &str = "url-secret-1e8f";

const WAIT: Duration = Duration::from_secs(5);

/// Every record seen: `target level text`.
static RECORDS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn keep(target: &str, text: String) {
    RECORDS
        .lock()
        .expect("lock")
        .push((target.to_owned(), text));
}

/// Dependencies' `log` records.
struct LogCapture;

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        keep(
            record.target(),
            format!("{} {}", record.level(), record.args()),
        );
    }

    fn flush(&self) {}
}

static LOGGER: LogCapture = LogCapture;

/// `tracing` events and span fields.
struct TracingCapture {
    next_span: AtomicU64,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for TracingCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        keep(span.metadata().target(), fields.0);
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &span::Id, values: &span::Record<'_>) {
        let mut fields = Fields("record".to_owned());
        values.record(&mut fields);
        keep("span", fields.0);
    }

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(event.metadata().level().to_string());
        event.record(&mut fields);
        keep(event.metadata().target(), fields.0);
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// What `RUST_LOG=trace,tungstenite=off,tokio_tungstenite=off` keeps; the dev
/// server (the test's peer, not the client) is left out too.
fn kept_by_the_readme_filter(target: &str) -> bool {
    !(target.starts_with("tungstenite")
        || target.starts_with("tokio_tungstenite")
        || target.contains("dev_server"))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

// One test: the `log` logger is global, and every step runs on this thread so
// that the thread's `tracing` subscriber sees the client's task too.
#[tokio::test]
async fn no_token_param_or_payload_reaches_a_log_or_an_error() {
    log::set_logger(&LOGGER).expect("the only logger");
    log::set_max_level(log::LevelFilter::Trace);
    let _subscriber = tracing::subscriber::set_default(TracingCapture {
        next_span: AtomicU64::new(1),
    });

    let server = DevServer::start(DevServerConfig::default())
        .await
        .expect("dev server starts");
    let config = ClientConfig::default()
        .with_param("token", PARAM)
        .with_auth_token(|| AUTH.to_owned())
        .with_reconnect_backoff(vec![Duration::from_millis(10)])
        .with_rejoin_backoff(vec![Duration::from_millis(10)])
        .with_push_timeout(Duration::from_secs(2));
    let client = timeout(WAIT, Client::connect(&server.url(), config.clone()))
        .await
        .expect("in time")
        .expect("connects");

    // The token travelled in the header, decoded by the server, not in the URL.
    let socket = server.sockets().remove(0);
    assert_eq!(socket.auth_token.as_deref(), Some(AUTH));
    assert!(!socket.params.iter().any(|(_, v)| v.contains(AUTH)));

    let mut sub = client
        .subscribe("room:secret", json!({ "password": JOIN }))
        .await
        .expect("accepted");
    let join_ref = timeout(WAIT, sub.wait_active())
        .await
        .expect("in time")
        .expect("joined");
    let reply = sub
        .push("echo", json!({ "card": PAYLOAD }))
        .await
        .expect("echoed");
    assert!(format!("{reply:?}").contains(PAYLOAD), "the echo came back");

    let mut failing = client
        .subscribe("fail:secret", json!({ "password": JOIN }))
        .await
        .expect("accepted");
    let error = timeout(WAIT, failing.wait_active())
        .await
        .expect("in time")
        .expect_err("rejected");
    let mut errors = vec![error.to_string(), format!("{error:?}")];

    // A reconnect: every provider is called again and every topic rejoins.
    server.drop_all_sockets();
    let mut state = sub.state_watch();
    timeout(
        WAIT,
        state.wait_for(|s| s.is_active() && s.join_ref() != Some(join_ref)),
    )
    .await
    .expect("in time")
    .expect("rejoined");

    // URL and connection errors show the endpoint without its query.
    for endpoint in [
        format!("ws://bad host/socket?token={URL_SECRET}"),
        format!("http://localhost/socket?token={URL_SECRET}"),
        format!("ws://127.0.0.1:1/socket?token={URL_SECRET}"),
    ] {
        let error = timeout(WAIT, Client::connect(&endpoint, config.clone()))
            .await
            .expect("in time")
            .expect_err("cannot connect");
        errors.push(error.to_string());
        errors.push(format!("{error:?}"));
    }
    errors.push(format!("{config:?}"));
    errors.push(format!("{client:?}"));
    drop((sub, failing));
    client.disconnect().await;

    let auth_b64 = base64(AUTH.as_bytes());
    let secrets = [PARAM, AUTH, &auth_b64, JOIN, PAYLOAD, URL_SECRET];
    for error in &errors {
        for secret in secrets {
            assert!(!error.contains(secret), "{secret} in an error: {error}");
        }
    }

    let records = RECORDS.lock().expect("lock").clone();
    assert!(
        records
            .iter()
            .any(|(t, _)| t.starts_with("channel_registry")),
        "the client's events were captured"
    );
    assert!(
        records.iter().any(|(t, _)| t.starts_with("tungstenite")),
        "the WebSocket library's records were captured"
    );
    let mut kept = 0;
    for (target, text) in &records {
        if let Some(at) = text.find("GET /") {
            // The request line, whoever logs it, never has the auth token
            // (the WebSocket library logs the header after it, unfiltered).
            let line = text[at..].split("HTTP/1.1").next().unwrap_or_default();
            assert!(line.contains("/websocket?"), "{line}");
            assert!(!line.contains(AUTH) && !line.contains(&auth_b64), "{line}");
        }
        if !kept_by_the_readme_filter(target) {
            continue;
        }
        kept += 1;
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret} logged by {target}: {text}"
            );
        }
    }
    eprintln!(
        "{} records captured, {kept} kept by the filter, none with a secret",
        records.len()
    );
}
