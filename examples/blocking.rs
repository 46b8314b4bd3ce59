//! A blocking Phoenix client in one thread: `std::net` and tungstenite's sync
//! API driving the pure [`Session`], the same session the tokio client runs
//! on. It shows the session embeds in any runtime: the [`Blocking`] driver
//! below only moves bytes and time (it connects when asked, sends what it is
//! given, blocks in `read` until the session's next timer, and reports what
//! the socket did). Every protocol decision — joins and rejoins, heartbeats,
//! the reconnect ladder, refs, push replies and timeouts — is the session's.
//!
//! The program subscribes to `room:lobby`, broadcasts three messages and
//! receives them, pushes `echo` and prints the reply, crashes its channel by
//! pushing an event the channel has no handler for (a Phoenix channel without
//! a matching `handle_in` clause crashes), sees it rejoin under a new
//! join_ref, and leaves cleanly. Run it against the crate's dev server, or any
//! Phoenix app whose `room:*` channel answers `echo` and `broadcast` alike:
//!
//! ```text
//! cargo run --features dev-server --example dev_server   # ws://127.0.0.1:4000/socket
//! cargo run --example blocking -- ws://127.0.0.1:4000/socket
//! ```
//!
//! Plain `ws://` only: for `wss://`, wrap the `TcpStream` in a TLS stream
//! before the handshake. `tests/blocking_client.rs` runs this driver against
//! the dev server.

use std::collections::VecDeque;
use std::error::Error;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use channel_registry::codec::{Frame, FrameRef};
use channel_registry::engine::{JoinRef, SubscriberId};
use channel_registry::session::{
    ConnectRequest, ConnectionId, Disconnect, Event, JoinParams, Output, PushId, PushOptions,
    PushTarget, Session, SessionConfig, SubscriptionEvent,
};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// How long a write may block before the connection counts as broken (a
/// server that stops reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The driver reads the clock; the session never does (time is an input).
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// The open WebSocket and the connection attempt it answers.
struct Open {
    id: ConnectionId,
    ws: WebSocket<TcpStream>,
}

/// A [`Session`] driven with blocking IO on the calling thread.
pub struct Blocking {
    /// The session, for commands and state. What a command asks for (frames
    /// to send) is done on the next [`Blocking::next_event`].
    pub session: Session,
    socket: Option<Open>,
    events: VecDeque<Event>,
}

impl Blocking {
    /// Drives `session` (call [`Session::connect`] on it to start).
    pub fn new(session: Session) -> Blocking {
        Blocking {
            session,
            socket: None,
            events: VecDeque::new(),
        }
    }

    /// Drives the session until it has news for the application, or until
    /// `deadline` passes (`None`).
    pub fn next_event(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            self.perform();
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if now() >= deadline {
                return None;
            }
            self.wait(deadline);
        }
    }

    /// Drives the session until `pick` takes an event, for at most `timeout`.
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Option<T> {
        let deadline = now() + timeout;
        while let Some(event) = self.next_event(deadline) {
            if let Some(picked) = pick(event) {
                return Some(picked);
            }
        }
        None
    }

    /// Does everything the session asked for, in order.
    fn perform(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(frame) => self.transmit(frame),
                Output::Connect(request) => self.connect(&request),
                Output::Close(request) => {
                    if let Some(open) = self.socket.take_if(|open| open.id == request.id) {
                        close(open, request.code, request.reason);
                    }
                }
                Output::Event(event) => self.events.push_back(event),
                Output::Diagnostic(diagnostic) => eprintln!("diagnostic: {diagnostic:?}"),
                // Resource calls come only with `SessionConfig::with_resources`.
                _ => {}
            }
        }
    }

    /// Connects at once: the thread blocks for up to the attempt's timeout.
    fn connect(&mut self, request: &ConnectRequest) {
        self.socket = None;
        match open(request, self.session.config().max_frame_size()) {
            Ok(ws) => {
                self.socket = Some(Open { id: request.id, ws });
                self.session.handle_connected(request.id, now());
            }
            Err(error) => {
                let why = Disconnect::Failed { error };
                self.session.handle_disconnected(request.id, why, now());
            }
        }
    }

    fn transmit(&mut self, frame: Frame) {
        let Some(open) = self.socket.as_mut() else {
            return;
        };
        let message = match frame {
            Frame::Text(text) => Message::text(text),
            Frame::Binary(bytes) => Message::binary(bytes),
            _ => return, // no other kind of frame exists
        };
        if let Err(error) = open.ws.send(message) {
            let error = format!("the connection broke while writing: {}", describe(&error));
            self.lose(Disconnect::Failed { error });
        }
    }

    /// Blocks until a frame arrives, the socket ends, or the session's next
    /// timer (or `deadline`) is due, and tells the session.
    fn wait(&mut self, deadline: Instant) {
        let wake = self
            .session
            .poll_timeout()
            .map_or(deadline, |t| t.min(deadline));
        let timeout = wake.saturating_duration_since(now());
        if self.socket.is_none() {
            // Nothing to read: nothing can happen before the timer.
            thread::sleep(timeout);
        } else if !timeout.is_zero() {
            self.read(timeout);
        }
        let at = now();
        if self.session.poll_timeout().is_some_and(|t| t <= at) {
            self.session.handle_timeout(at);
        }
    }

    fn read(&mut self, timeout: Duration) {
        let Some(open) = self.socket.as_mut() else {
            return;
        };
        // Never zero (checked by `wait`), so this cannot fail.
        let _ = open.ws.get_ref().set_read_timeout(Some(timeout));
        match open.ws.read() {
            Ok(Message::Text(text)) => self.session.handle_frame(FrameRef::Text(&text), now()),
            Ok(Message::Binary(bytes)) => {
                self.session.handle_frame(FrameRef::Binary(&bytes), now())
            }
            // tungstenite queued the pong; a flush sends it.
            Ok(Message::Ping(_)) => {
                let _ = open.ws.flush();
            }
            Ok(Message::Close(frame)) => {
                // Send the close reply tungstenite queued, then let go.
                let _ = open.ws.flush();
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.as_str().to_owned())
                });
                self.lose(Disconnect::Closed { code, reason });
            }
            Ok(_) => {}
            // The timer is due: nothing arrived.
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(error) => self.lose(Disconnect::Failed {
                error: describe(&error),
            }),
        }
    }

    /// The socket is gone: drop it and tell the session why.
    fn lose(&mut self, why: Disconnect) {
        if let Some(open) = self.socket.take() {
            self.session.handle_disconnected(open.id, why, now());
        }
    }
}

/// Opens the WebSocket `request` asks for (its URL, its protocols header)
/// within its timeout (name resolution aside). Errors never show the URL's
/// query: it may hold secrets.
fn open(request: &ConnectRequest, max_frame_size: usize) -> Result<WebSocket<TcpStream>, String> {
    let deadline = now() + request.timeout;
    let failed = |what: &dyn std::fmt::Display| format!("{}: {what}", request.endpoint());
    let mut http = request
        .url()
        .into_client_request()
        .map_err(|e| failed(&e))?;
    let protocols = HeaderValue::from_str(&request.protocols().join(", "))
        .map_err(|_| failed(&"the auth token is not a valid header value"))?;
    if !request.protocols().is_empty() {
        http.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols);
    }
    let uri = http.uri();
    if uri.scheme_str() != Some("ws") {
        return Err(failed(&"this client speaks ws:// only"));
    }
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let unreachable = |e: std::io::Error| failed(&format!("{e}; check that the server is up"));
    let addrs = (host, uri.port_u16().unwrap_or(80)).to_socket_addrs();
    let addr = addrs
        .map_err(unreachable)?
        .next()
        .ok_or(failed(&"no address"))?;
    let stream = TcpStream::connect_timeout(&addr, request.timeout).map_err(unreachable)?;
    // The handshake gets what is left of the attempt's time.
    let left = deadline
        .saturating_duration_since(now())
        .max(Duration::from_millis(1));
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(left));
    let _ = stream.set_write_timeout(Some(left));
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_frame_size))
        .max_frame_size(Some(max_frame_size));
    let (ws, _) = tungstenite::client::client_with_config(http, stream, Some(config)).map_err(
        |e| match e {
            HandshakeError::Failure(error) => failed(&describe(&error)),
            HandshakeError::Interrupted(_) => failed(&"no WebSocket handshake in time"),
        },
    )?;
    let _ = ws.get_ref().set_write_timeout(Some(WRITE_TIMEOUT));
    Ok(ws)
}

/// Sends a close frame and lets the connection go.
fn close(mut open: Open, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = open.ws.close(Some(frame));
    let _ = open.ws.flush();
}

/// A tungstenite error in words that say what to do.
fn describe(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Io(e) => format!("{e}; check that the server is up"),
        tungstenite::Error::Http(response) => format!(
            "the server refused the WebSocket upgrade with HTTP {}; check the endpoint's path",
            response.status()
        ),
        other => other.to_string(),
    }
}

/// The walk-through of the module docs against the socket endpoint `url`.
pub fn run(url: &str) -> Result<(), Box<dyn Error>> {
    const WAIT: Duration = Duration::from_secs(5);
    let config = SessionConfig::new(url).with_rejoin_backoff(vec![Duration::from_millis(100)]);
    let mut client = Blocking::new(Session::new(config, now())?);
    let (lobby, at) = (SubscriberId(1), now());
    client.session.connect(at);
    client
        .session
        .subscribe(lobby, "room:lobby", JoinParams::none(), at)?;
    let first = client
        .wait_for(WAIT, joined)
        .ok_or("room:lobby did not join")?;
    println!("joined room:lobby (join_ref {first})");

    let lobby = PushTarget::Subscription(lobby);
    for n in 1..=3 {
        let payload = json!({ "n": n }).into();
        client
            .session
            .cast(lobby.clone(), "broadcast", &payload, now())?;
    }
    for _ in 0..3 {
        let message = client.wait_for(WAIT, |event| match event {
            Event::Message { message, .. } if message.event() == "msg" => Some(message),
            _ => None,
        });
        let message = message.ok_or("a broadcast did not come back")?;
        println!("received msg {}", message.json().unwrap_or(&Value::Null));
    }

    let hello = json!({ "hello": "from a blocking client" }).into();
    let options = PushOptions::default();
    client
        .session
        .push(PushId(1), lobby.clone(), "echo", &hello, options, now())?;
    let reply = client.wait_for(WAIT, |event| match event {
        Event::Push {
            id: PushId(1),
            outcome,
        } => Some(outcome),
        _ => None,
    });
    let reply = reply.ok_or("no echo reply")??;
    println!(
        "echo replied {}",
        reply.response.as_json().unwrap_or(&Value::Null)
    );

    // No handler for this event: the server crashes the channel.
    let empty = json!({}).into();
    client.session.cast(lobby, "no_such_event", &empty, now())?;
    let rejoined = client.wait_for(WAIT, |event| {
        if let Event::Subscription { event, .. } = &event {
            println!("room:lobby: {event:?}");
        }
        joined(event)
    });
    let second = rejoined.ok_or("room:lobby did not rejoin")?;
    println!("the channel crashed and rejoined: join_ref {first} -> {second}");

    // Leave every channel and close the socket (1000); the loop sends it all.
    client.session.disconnect(now());
    while let Some(event) = client.next_event(now()) {
        match event {
            Event::Subscription { event, .. } => println!("room:lobby: {event:?}"),
            Event::Connection(state) => println!("connection: {state:?}"),
            _ => {}
        }
    }
    Ok(())
}

/// The join_ref of a `Joined` event.
fn joined(event: Event) -> Option<JoinRef> {
    match event {
        Event::Subscription {
            event: SubscriptionEvent::Joined { join_ref, .. },
            ..
        } => Some(join_ref),
        _ => None,
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args().nth(1);
    run(url.as_deref().unwrap_or("ws://127.0.0.1:4000/socket"))
}
