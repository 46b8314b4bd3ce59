//! The socket: connection attempts and their ids, the heartbeat and
//! dead-link detection, the reconnect ladder with jitter and give-up, and
//! what a lost socket means for everything else.
//!
//! The ladder counts attempts since the connection was last *healthy* (a
//! heartbeat answered, or a join accepted), not since the last handshake: a
//! server that accepts and then kicks at once walks the client up the
//! ladder instead of holding it at its first, shortest step.

use std::time::{Duration, Instant};

use crate::codec::{websocket_url, Message};
use crate::session::events::{
    CloseReason, CloseRequest, ConnectRequest, ConnectionId, ConnectionState, Diagnostic, Event,
    Output,
};
use crate::session::message::catch;
use crate::session::topics::RefKind;
use crate::session::Session;

/// Why the socket went away, as the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Disconnect {
    /// A close frame arrived (or the handshake was answered with one).
    Closed {
        /// The close code (1005 when the frame had none).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The connection failed: refused, reset, a TLS or handshake error, or
    /// it ended without a close frame.
    Failed {
        /// What went wrong (no secrets: drivers must not put URLs with
        /// queries here).
        error: String,
    },
}

impl Disconnect {
    fn describe(&self) -> String {
        match self {
            Disconnect::Closed { code, reason } if reason.is_empty() => {
                format!("closed by the server with code {code}")
            }
            Disconnect::Closed { code, reason } => {
                format!("closed by the server with code {code} ({reason})")
            }
            Disconnect::Failed { error } => error.clone(),
        }
    }
}

/// The connection as the session sees it.
#[derive(Clone, Debug)]
pub(crate) enum Conn {
    /// Never asked to connect.
    Idle,
    /// An attempt is under way.
    Connecting { id: ConnectionId, deadline: Instant },
    /// Open.
    Open {
        id: ConnectionId,
        heartbeat_at: Instant,
        /// The ref of the heartbeat awaiting its reply.
        pending: Option<u64>,
    },
    /// Waiting to try again.
    Waiting {
        until: Instant,
        delay: Duration,
        reason: String,
    },
    /// Down for good until `reconnect`.
    Down(CloseReason),
}

impl Conn {
    /// When the connection needs the session next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Conn::Connecting { deadline, .. } => Some(*deadline),
            Conn::Open { heartbeat_at, .. } => Some(*heartbeat_at),
            Conn::Waiting { until, .. } => Some(*until),
            Conn::Idle | Conn::Down(_) => None,
        }
    }

    pub(crate) fn state(&self, attempts: u32) -> ConnectionState {
        match self {
            Conn::Idle => ConnectionState::Idle,
            Conn::Connecting { .. } => ConnectionState::Connecting { attempt: attempts },
            Conn::Open { .. } => ConnectionState::Connected,
            Conn::Waiting { delay, reason, .. } => ConnectionState::Reconnecting {
                attempt: attempts,
                delay: *delay,
                reason: reason.clone(),
            },
            Conn::Down(reason) => ConnectionState::Disconnected(reason.clone()),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Conn::Open { .. })
    }

    fn id(&self) -> Option<ConnectionId> {
        match self {
            Conn::Connecting { id, .. } | Conn::Open { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// `Sec-WebSocket-Protocol` prefix of phoenix.js 1.8's `authToken`.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// Standard base64 without padding, as phoenix.js (`btoa`, `=` stripped).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

impl Session {
    /// Starts connecting (the first time, or after a normal close by the
    /// server, a `disconnect`, or a give-up). Does nothing while connected or
    /// connecting; skips the rest of a reconnect delay.
    pub fn connect(&mut self, now: Instant) {
        match self.conn {
            Conn::Connecting { .. } | Conn::Open { .. } => {}
            Conn::Down(_) => {
                self.attempts = 0;
                self.healthy_at = now;
                self.start_attempt(now);
            }
            Conn::Idle | Conn::Waiting { .. } => self.start_attempt(now),
        }
    }

    /// Connects now if the socket is down, starting the ladder over.
    pub fn reconnect(&mut self, now: Instant) {
        if matches!(self.conn, Conn::Waiting { .. }) {
            self.attempts = 0;
            self.healthy_at = now;
        }
        self.connect(now);
    }

    /// The socket of attempt `id` is open (the WebSocket handshake
    /// completed). An answer about an attempt the session gave up on is
    /// answered with a close request.
    pub fn handle_connected(&mut self, id: ConnectionId, now: Instant) {
        if !matches!(self.conn, Conn::Connecting { id: current, .. } if current == id) {
            self.outputs.push_back(Output::Close(CloseRequest {
                id,
                code: 1000,
                reason: "superseded",
            }));
            return;
        }
        self.conn = Conn::Open {
            id,
            heartbeat_at: after(now, self.config.heartbeat_interval),
            pending: None,
        };
        self.stats.connects += 1;
        if self.stats.connects > 1 {
            self.stats.reconnects += 1;
        }
        self.emit(Event::Connection(ConnectionState::Connected));
        self.engine.handle_socket_up(now);
        self.pump(now);
    }

    /// The connection (or the attempt) `id` ended. After a normal close by
    /// the server (code 1000) the session does not reconnect on its own (as
    /// phoenix.js): its topics wait, offline, for [`Session::reconnect`], and
    /// pushes fail at once. Anything else reconnects on the ladder.
    pub fn handle_disconnected(&mut self, id: ConnectionId, why: Disconnect, now: Instant) {
        if self.conn.id() != Some(id) {
            return;
        }
        match self.conn {
            Conn::Connecting { .. } => {
                self.stats.connect_failures += 1;
                self.schedule_reconnect(why.describe(), now);
            }
            Conn::Open { .. } => {
                self.lose_socket(now);
                match why {
                    Disconnect::Closed { code: 1000, reason } => {
                        let reason = CloseReason::ServerClosed { code: 1000, reason };
                        self.conn = Conn::Down(reason.clone());
                        self.fail_all_pushes(&reason);
                        self.emit(Event::Connection(ConnectionState::Disconnected(reason)));
                    }
                    other => self.schedule_reconnect(other.describe(), now),
                }
            }
            _ => {}
        }
    }

    /// Heartbeats, connect deadlines and reconnect delays.
    pub(crate) fn socket_timers(&mut self, now: Instant) {
        match self.conn {
            Conn::Connecting { id, deadline } if deadline <= now => {
                self.outputs.push_back(Output::Close(CloseRequest {
                    id,
                    code: 1000,
                    reason: "connect timeout",
                }));
                self.stats.connect_failures += 1;
                let timeout = self.config.connect_timeout;
                self.schedule_reconnect(format!("no connection within {timeout:?}"), now);
            }
            Conn::Open {
                id,
                heartbeat_at,
                pending,
            } if heartbeat_at <= now => {
                if pending.is_some() {
                    self.stats.heartbeat_timeouts += 1;
                    self.diagnose(Diagnostic::HeartbeatTimeout);
                    // As phoenix.js: close normally, then reconnect on our own.
                    self.outputs.push_back(Output::Close(CloseRequest {
                        id,
                        code: 1000,
                        reason: "heartbeat timeout",
                    }));
                    self.lose_socket(now);
                    self.schedule_reconnect("heartbeat timeout: the link is dead".to_owned(), now);
                    return;
                }
                let msg_ref = self.engine.mint_ref();
                self.refs.insert(msg_ref, RefKind::Heartbeat { sent: now });
                self.stats.heartbeats += 1;
                self.conn = Conn::Open {
                    id,
                    heartbeat_at: after(now, self.config.heartbeat_interval),
                    pending: Some(msg_ref),
                };
                self.transmit(&Message::heartbeat(msg_ref.to_string()));
            }
            Conn::Waiting { until, .. } if until <= now => self.start_attempt(now),
            _ => {}
        }
    }

    /// A heartbeat reply arrived.
    pub(crate) fn heartbeat_answered(&mut self, msg_ref: u64, sent: Instant, now: Instant) {
        if let Conn::Open { pending, .. } = &mut self.conn {
            if *pending == Some(msg_ref) {
                *pending = None;
            }
        }
        self.stats.last_heartbeat_rtt = Some(now.saturating_duration_since(sent));
        self.mark_healthy(now);
    }

    /// The connection proved healthy: the ladder starts over.
    pub(crate) fn mark_healthy(&mut self, now: Instant) {
        if self.conn.is_open() {
            self.attempts = 0;
            self.healthy_at = now;
        }
    }

    fn start_attempt(&mut self, now: Instant) {
        self.connections += 1;
        let id = ConnectionId(self.connections);
        let request = match self.connect_request(id) {
            Ok(request) => request,
            Err(reason) => {
                self.stats.connect_failures += 1;
                self.schedule_reconnect(reason, now);
                return;
            }
        };
        self.conn = Conn::Connecting {
            id,
            deadline: after(now, self.config.connect_timeout),
        };
        self.outputs.push_back(Output::Connect(request));
        self.emit(Event::Connection(ConnectionState::Connecting {
            attempt: self.attempts,
        }));
    }

    /// The URL and protocols of an attempt, providers called (a panicking
    /// provider fails the attempt and is reported, never the session).
    fn connect_request(&mut self, id: ConnectionId) -> Result<ConnectRequest, String> {
        let mut params = self.config.params.clone();
        if let Some(provider) = self.config.params_provider.clone() {
            match catch(|| provider()) {
                Ok(more) => params.extend(more),
                Err(message) => {
                    self.diagnose(Diagnostic::CallbackPanicked {
                        what: "socket params provider",
                        message,
                    });
                    return Err("the socket params provider panicked".to_owned());
                }
            }
        }
        let url = websocket_url(&self.config.endpoint, params.iter().map(|(k, v)| (k, v)))
            .map_err(|e| e.to_string())?;
        let mut protocols = Vec::new();
        if let Some(token) = self.config.auth_token.clone() {
            match catch(|| token()) {
                Ok(token) => {
                    protocols.push("phoenix".to_owned());
                    protocols.push(format!("{AUTH_TOKEN_PREFIX}{}", base64(token.as_bytes())));
                }
                Err(message) => {
                    self.diagnose(Diagnostic::CallbackPanicked {
                        what: "auth token provider",
                        message,
                    });
                    return Err("the auth token provider panicked".to_owned());
                }
            }
        }
        Ok(ConnectRequest {
            id,
            attempt: self.attempts,
            timeout: self.config.connect_timeout,
            url,
            protocols,
        })
    }

    /// Waits for the next attempt on the ladder, or gives up.
    fn schedule_reconnect(&mut self, reason: String, now: Instant) {
        let policy = &self.config.reconnect;
        let attempts = self.attempts.saturating_add(1);
        let out_of_attempts = policy.max_attempts.is_some_and(|max| attempts > max);
        let out_of_time = policy
            .max_duration
            .is_some_and(|max| now.saturating_duration_since(self.healthy_at) >= max);
        if out_of_attempts || out_of_time {
            return self.go_down(
                CloseReason::GaveUp {
                    attempts: self.attempts,
                    reason,
                },
                now,
            );
        }
        let base = policy.delay(self.attempts);
        let jitter = u64::try_from(policy.max_jitter(base).as_nanos()).unwrap_or(u64::MAX);
        let jitter = match jitter {
            0 => 0,
            max => self.next_random() % max.saturating_add(1).max(1),
        };
        let delay = base.saturating_add(Duration::from_nanos(jitter));
        self.attempts = attempts;
        self.conn = Conn::Waiting {
            until: after(now, delay),
            delay,
            reason: reason.clone(),
        };
        self.emit(Event::Connection(ConnectionState::Reconnecting {
            attempt: attempts,
            delay,
            reason,
        }));
    }

    /// The open socket is gone: every incarnation ends (the server forgets
    /// them too), and no reply can come for anything sent on it.
    pub(crate) fn lose_socket(&mut self, now: Instant) {
        self.conn = Conn::Idle;
        self.refs.clear();
        self.ended_joins.clear();
        self.engine.handle_socket_down(now);
        self.pump(now);
    }

    /// Down for good (the reconnect policy gave up): every subscription and
    /// room ends with `reason`, every push fails.
    pub(crate) fn go_down(&mut self, reason: CloseReason, now: Instant) {
        self.conn = Conn::Down(reason.clone());
        self.close_everything(reason.clone(), now);
        self.emit(Event::Connection(ConnectionState::Disconnected(reason)));
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| {
        let mut d = d.min(Duration::from_secs(u64::from(u32::MAX)));
        loop {
            if let Some(t) = now.checked_add(d) {
                return t;
            }
            d /= 2;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::base64;
    use crate::session::mix;

    #[test]
    fn jitter_draws_follow_splitmix64() {
        // SplitMix64's published outputs for seed 0: a state stepping by the
        // golden gamma, each step mixed.
        let gamma = 0x9E37_79B9_7F4A_7C15_u64;
        let outputs: Vec<u64> = (0..3).map(|i| mix(gamma.wrapping_mul(i))).collect();
        assert_eq!(
            outputs,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
    }

    #[test]
    fn base64_matches_btoa_without_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg");
        assert_eq!(base64(b"fo"), "Zm8");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg");
        assert_eq!(base64(b"\xfb\xff"), "+/8");
    }
}
