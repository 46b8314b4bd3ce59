//! A simulated driver for the pure session: the session, a simulated Phoenix
//! server ([`server`]), a clock that only jumps to the session's deadlines,
//! and a drain loop that carries frames both ways after every input. Every
//! output is logged and checked against the session's observable contract
//! ([`contract`]).
#![allow(dead_code, unreachable_pub)]

pub mod contract;
pub mod server;

use std::time::{Duration, Instant};

use channel_registry::codec::FrameRef;
use channel_registry::engine::audit::check_structure;
use channel_registry::engine::{RoomId, SubscriberId};
use channel_registry::session::{
    ConnectionId, ConnectionState, Disconnect, Event, JoinParams, Output, PushError, PushId,
    PushOptions, PushTarget, Session, SessionConfig, SubscribeError, SubscribeOptions,
    SubscriptionEvent,
};
use serde_json::Value;

use contract::Contract;
use server::Server;

/// What the simulated network does with a connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connects {
    /// The socket opens at once.
    Accept,
    /// The attempt fails at once (connection refused).
    Refuse,
    /// Nothing answers: the session's connect timeout decides.
    Hang,
    /// The socket opens, the session's first frames reach the server, then
    /// the server closes it with this code.
    Kick(u16),
}

#[allow(clippy::disallowed_methods)] // the simulated clock needs one base instant; nothing reads the clock after
fn base_instant() -> Instant {
    Instant::now()
}

/// `now + d`, saturating where `Instant` ends.
fn later(now: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

/// The session, the simulated server and the simulated clock.
pub struct Sim {
    pub session: Session,
    pub server: Server,
    pub start: Instant,
    pub now: Instant,
    /// The open connection, as the driver sees it.
    pub conn: Option<ConnectionId>,
    /// An attempt nobody answers.
    pub hanging: Option<ConnectionId>,
    pub connects: Connects,
    kick: Option<(ConnectionId, u16)>,
    /// Every output, with the simulated time it came at.
    pub log: Vec<(Duration, Output)>,
    /// Every server frame delivered to the session, with its time.
    pub delivered: Vec<(Duration, server::ServerFrame)>,
    pub contract: Contract,
    /// Check the engine's structure after every drain.
    pub audit: bool,
}

impl Sim {
    /// A session with `config`, not connected yet.
    pub fn new(config: SessionConfig) -> Sim {
        Sim::try_new(config).expect("a valid config")
    }

    /// A session with `config`, or the session's refusal of it.
    pub fn try_new(
        config: SessionConfig,
    ) -> Result<Sim, channel_registry::session::SessionConfigError> {
        let start = base_instant();
        Ok(Sim {
            session: Session::new(config, start)?,
            server: Server::new(),
            start,
            now: start,
            conn: None,
            hanging: None,
            connects: Connects::Accept,
            kick: None,
            log: Vec::new(),
            delivered: Vec::new(),
            contract: Contract::default(),
            audit: true,
        })
    }

    /// A session with `config`, connected.
    pub fn connected(config: SessionConfig) -> Sim {
        let mut sim = Sim::new(config);
        sim.connect();
        assert_eq!(sim.session.connection_state(), ConnectionState::Connected);
        sim
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    // --- the drain loop ------------------------------------------------------------------

    /// Carries everything both ways until nothing moves: the session's
    /// outputs are handled, the server processes what it received (unless
    /// paused), and its frames are delivered one by one.
    pub fn drain(&mut self) {
        loop {
            while let Some(output) = self.session.poll_output() {
                self.handle_output(output);
            }
            if let Some((id, code)) = self.kick.take() {
                self.server_gone(
                    id,
                    Disconnect::Closed {
                        code,
                        reason: String::new(),
                    },
                );
                continue;
            }
            if let Some(frame) = self.server.pop_outbox() {
                if self.conn.is_some() {
                    self.delivered.push((self.elapsed(), frame.clone()));
                    self.contract.on_deliver(&frame.text, &frame.source);
                    self.session
                        .handle_frame(FrameRef::Text(&frame.text), self.now);
                    while let Some(output) = self.session.poll_output() {
                        self.handle_output(output);
                    }
                    self.contract.delivered();
                }
                continue;
            }
            if !self.server.paused && self.server.inbox_len() > 0 {
                self.server.process();
                continue;
            }
            break;
        }
        if self.audit {
            if let Err(v) = check_structure(self.session.engine()) {
                self.contract
                    .violations
                    .push(format!("engine structure: {v}"));
            }
        }
    }

    fn conn_number(&self) -> u64 {
        if self.conn.is_some() {
            self.server.conn
        } else {
            0
        }
    }

    fn handle_output(&mut self, output: Output) {
        let conn = self.conn_number();
        self.contract.on_output(conn, &output, &self.server);
        self.log.push((self.elapsed(), output.clone()));
        match output {
            Output::Transmit(frame) => {
                if self.conn.is_none() {
                    self.contract
                        .violations
                        .push(format!("frame sent with no socket open: {frame:?}"));
                    return;
                }
                if let Some(m) = self.server.decode(frame.as_frame_ref()) {
                    self.contract.on_transmit(conn, &m);
                }
                self.server.receive(&frame);
            }
            Output::Connect(request) => match self.connects {
                Connects::Accept | Connects::Kick(_) => {
                    self.server.accept();
                    self.conn = Some(request.id);
                    if let Connects::Kick(code) = self.connects {
                        self.kick = Some((request.id, code));
                    }
                    self.session.handle_connected(request.id, self.now);
                }
                Connects::Refuse => {
                    let why = Disconnect::Failed {
                        error: "connection refused".to_owned(),
                    };
                    self.session.handle_disconnected(request.id, why, self.now);
                }
                Connects::Hang => self.hanging = Some(request.id),
            },
            Output::Close(request) => {
                if self.conn == Some(request.id) {
                    self.conn = None;
                    self.server.forget_socket();
                }
                if self.hanging == Some(request.id) {
                    self.hanging = None;
                }
            }
            _ => {}
        }
    }

    /// The server side ends the connection `id` (if still open) with `why`;
    /// the caller drains.
    fn server_gone(&mut self, id: ConnectionId, why: Disconnect) {
        if self.conn != Some(id) {
            return;
        }
        self.conn = None;
        self.server.forget_socket();
        self.session.handle_disconnected(id, why, self.now);
    }

    // --- time ------------------------------------------------------------------------------

    /// Jumps to the session's next deadline and fires it. Returns false when
    /// nothing waits for time.
    pub fn next_deadline(&mut self) -> bool {
        let Some(at) = self.session.poll_timeout() else {
            return false;
        };
        self.now = self.now.max(at);
        self.fire();
        true
    }

    /// Calls `handle_timeout(now)` twice, checking the second call does
    /// nothing, then drains.
    fn fire(&mut self) {
        self.session.handle_timeout(self.now);
        let queued = self.session.queued_outputs();
        let next = self.session.poll_timeout();
        self.session.handle_timeout(self.now);
        if self.session.queued_outputs() != queued || self.session.poll_timeout() != next {
            self.contract.violations.push(format!(
                "handle_timeout at {:?} did something the second time",
                self.elapsed()
            ));
        }
        self.drain();
    }

    /// Lets `d` of simulated time pass, firing every deadline on the way.
    pub fn advance(&mut self, d: Duration) {
        let until = later(self.now, d);
        let mut fired = 0;
        while let Some(at) = self.session.poll_timeout() {
            if at > until {
                break;
            }
            fired += 1;
            if fired > 100_000 {
                self.contract
                    .violations
                    .push(format!("the deadline {at:?} keeps firing without moving"));
                break;
            }
            self.now = self.now.max(at);
            self.fire();
        }
        self.now = until;
    }

    // --- the application -----------------------------------------------------------------

    pub fn connect(&mut self) {
        self.session.connect(self.now);
        self.drain();
    }

    pub fn reconnect(&mut self) {
        self.session.reconnect(self.now);
        self.drain();
    }

    pub fn subscribe(&mut self, id: u64, topic: &str) -> Result<(), SubscribeError> {
        self.subscribe_with(id, topic, SubscribeOptions::default())
    }

    pub fn subscribe_with(
        &mut self,
        id: u64,
        topic: &str,
        options: impl Into<SubscribeOptions>,
    ) -> Result<(), SubscribeError> {
        let id = SubscriberId(id);
        let in_use = self.session.subscription_state(id).is_some();
        let result = self.session.subscribe(id, topic, options, self.now);
        if result.is_ok() && !in_use {
            self.contract.subscribed(id, topic);
        }
        self.drain();
        result
    }

    pub fn unsubscribe(&mut self, id: u64) -> bool {
        let done = self.session.unsubscribe(SubscriberId(id), self.now);
        self.drain();
        done
    }

    pub fn open_room(&mut self, id: u64) -> Result<(), SubscribeError> {
        let result = self.session.open_room(RoomId(id));
        if result.is_ok() {
            self.contract.room_opened(RoomId(id));
        }
        self.drain();
        result
    }

    pub fn switch(&mut self, room: u64, topic: &str) -> Result<(), SubscribeError> {
        let result = self
            .session
            .switch(RoomId(room), topic, JoinParams::none(), self.now)
            .map(|_| ());
        self.drain();
        result
    }

    pub fn close_room(&mut self, room: u64) -> bool {
        let done = self.session.close_room(RoomId(room), self.now);
        self.drain();
        done
    }

    pub fn push(
        &mut self,
        id: u64,
        target: PushTarget,
        event: &str,
        payload: Value,
    ) -> Result<(), PushError> {
        self.push_with(id, target, event, payload, PushOptions::default())
    }

    pub fn push_with(
        &mut self,
        id: u64,
        target: PushTarget,
        event: &str,
        payload: Value,
        options: PushOptions,
    ) -> Result<(), PushError> {
        let payload = payload.into();
        let result = self
            .session
            .push(PushId(id), target, event, &payload, options, self.now);
        self.contract.pushed(PushId(id), result.is_ok());
        self.drain();
        result
    }

    pub fn cast(
        &mut self,
        target: PushTarget,
        event: &str,
        payload: Value,
    ) -> Result<(), PushError> {
        let result = self.session.cast(target, event, &payload.into(), self.now);
        self.drain();
        result
    }

    pub fn close_all(&mut self) {
        self.session.close_all(self.now);
        self.drain();
    }

    // --- the server and the network --------------------------------------------------------

    /// Runs `f` on the server, then carries its frames.
    pub fn on_server<R>(&mut self, f: impl FnOnce(&mut Server) -> R) -> R {
        let r = f(&mut self.server);
        self.drain();
        r
    }

    /// The attempt nobody answered so far opens now (if the session still
    /// waits for it).
    pub fn open_hanging(&mut self) {
        if let Some(id) = self.hanging.take() {
            if matches!(
                self.session.connection_state(),
                ConnectionState::Connecting { .. }
            ) {
                self.server.accept();
                self.conn = Some(id);
                self.session.handle_connected(id, self.now);
                self.drain();
            }
        }
    }

    /// The connection drops without a close frame.
    pub fn drop_socket(&mut self) {
        if let Some(id) = self.conn {
            let why = Disconnect::Failed {
                error: "connection reset".to_owned(),
            };
            self.server_gone(id, why);
            self.drain();
        }
    }

    /// The server closes the socket with `code`.
    pub fn server_close(&mut self, code: u16) {
        if let Some(id) = self.conn {
            let why = Disconnect::Closed {
                code,
                reason: String::new(),
            };
            self.server_gone(id, why);
            self.drain();
        }
    }

    // --- reading the log -------------------------------------------------------------------

    /// Every application event, in order.
    pub fn events(&self) -> Vec<Event> {
        self.log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    /// The events of subscription `id`, in order.
    pub fn sub_events(&self, id: u64) -> Vec<SubscriptionEvent> {
        self.log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Event(Event::Subscription { id: s, event }) if s.0 == id => {
                    Some(event.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The events of subscription `id` other than messages and presence, as
    /// short names (`Joined`, `Lost`, …) — the grammar at a glance.
    pub fn sub_story(&self, id: u64) -> Vec<String> {
        self.sub_events(id)
            .iter()
            .filter(|e| !matches!(e, SubscriptionEvent::Presence(_)))
            .map(|e| {
                let text = format!("{e:?}");
                text.split([' ', '(', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// Every push outcome, in order.
    pub fn push_outcomes(&self) -> Vec<(u64, Result<Value, PushError>)> {
        self.log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Event(Event::Push { id, outcome }) => Some((
                    id.0,
                    outcome
                        .clone()
                        .map(|r| r.response.as_json().cloned().unwrap_or(Value::Null)),
                )),
                _ => None,
            })
            .collect()
    }

    /// The connection states reported, in order.
    pub fn connection_events(&self) -> Vec<ConnectionState> {
        self.log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Event(Event::Connection(state)) => Some(state.clone()),
                _ => None,
            })
            .collect()
    }

    /// The delays of every `Reconnecting` reported, with their attempt.
    pub fn reconnect_delays(&self) -> Vec<(u32, Duration)> {
        self.connection_events()
            .into_iter()
            .filter_map(|s| match s {
                ConnectionState::Reconnecting { attempt, delay, .. } => Some((attempt, delay)),
                _ => None,
            })
            .collect()
    }

    /// When each connection attempt was asked for.
    pub fn connect_times(&self) -> Vec<Duration> {
        self.log
            .iter()
            .filter_map(|(at, o)| matches!(o, Output::Connect(_)).then_some(*at))
            .collect()
    }

    /// When each frame with `event` went out, with its decoded message.
    pub fn sent(&self, event: &str) -> Vec<(Duration, channel_registry::codec::Message)> {
        self.log
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Transmit(frame) => self
                    .server
                    .decode(frame.as_frame_ref())
                    .filter(|m| m.event == event)
                    .map(|m| (*at, m)),
                _ => None,
            })
            .collect()
    }

    /// The server frames delivered so far that are not replies, as
    /// (join_ref, event, payload).
    pub fn delivered_messages(&self) -> Vec<(Option<String>, String, Value)> {
        self.delivered
            .iter()
            .filter_map(
                |(_, f)| match serde_json::from_str::<Value>(&f.text).ok()? {
                    Value::Array(parts) if parts.len() == 5 => {
                        let event = parts[3].as_str()?.to_owned();
                        let join_ref = parts[0].as_str().map(str::to_owned);
                        (event != "phx_reply").then(|| (join_ref, event, parts[4].clone()))
                    }
                    _ => None,
                },
            )
            .collect()
    }

    /// Forgets the logs (not the contract's books).
    pub fn clear_log(&mut self) {
        self.log.clear();
        self.delivered.clear();
    }

    /// Panics with the contract's and the server's violations, if any.
    pub fn assert_contract(&self) {
        let all: Vec<&String> = self
            .contract
            .violations
            .iter()
            .chain(&self.server.violations)
            .collect();
        assert!(all.is_empty(), "contract violations:\n{all:#?}");
    }
}
