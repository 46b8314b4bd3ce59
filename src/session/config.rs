//! How a session behaves: the socket's timings, the reconnect policy, pushes,
//! limits, and the lifecycle engine's own configuration. Defaults follow
//! phoenix.js and the Phoenix server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{websocket_url, UrlError, DEFAULT_MAX_FRAME_SIZE};
use crate::engine::{Config as EngineConfig, ConfigError};

/// What happens when a push arrives while the buffer of its topic is full
/// (pushes wait there while the channel is not active).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Drop the oldest buffered push (it fails with
    /// [`PushError::BufferOverflow`](super::PushError::BufferOverflow)) and
    /// buffer the new one. The default, as in Supabase realtime-js.
    #[default]
    DropOldest,
    /// Refuse the new push at once with `BufferOverflow`.
    RejectNew,
}

/// When the socket reconnects, and when it gives up.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ReconnectPolicy {
    /// Delay before the n-th attempt in a row since the connection was last
    /// healthy; the last entry repeats. Default: phoenix.js's 10, 50, 100,
    /// 150, 200, 250, 500, 1000, 2000 ms, then 5 s.
    pub backoff: Vec<Duration>,
    /// Random extra delay, in thousandths of the delay (default 100: up to
    /// +10 %), so that many clients do not reconnect in lockstep.
    pub jitter_permille: u16,
    /// Give up after this many attempts in a row without a healthy
    /// connection (`None`, the default: never, as phoenix.js).
    pub max_attempts: Option<u32>,
    /// Give up when no connection has been healthy for this long (`None`,
    /// the default: never).
    pub max_duration: Option<Duration>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            backoff: [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000]
                .map(Duration::from_millis)
                .to_vec(),
            jitter_permille: 100,
            max_attempts: None,
            max_duration: None,
        }
    }
}

impl ReconnectPolicy {
    /// The delay before attempt `attempt` (0-based) without jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let last = self.backoff.len().saturating_sub(1);
        let i = usize::try_from(attempt).map_or(last, |i| i.min(last));
        self.backoff.get(i).copied().unwrap_or_default()
    }

    /// The largest jitter added to a delay `d` (saturating).
    pub fn max_jitter(&self, d: Duration) -> Duration {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let jitter = u128::from(nanos) * u128::from(self.jitter_permille) / 1000;
        Duration::from_nanos(u64::try_from(jitter).unwrap_or(u64::MAX))
    }
}

/// Socket params computed on every (re)connect, e.g. a fresh auth token.
pub type SocketParamsProvider = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// An auth token computed on every (re)connect, sent in the
/// `Sec-WebSocket-Protocol` header as phoenix.js 1.8 does (`authToken`),
/// which keeps it out of URLs and request logs. Phoenix ≥ 1.8 reads it.
pub type AuthTokenProvider = Arc<dyn Fn() -> String + Send + Sync>;

/// The smallest frame limit accepted: a frame must hold at least a join reply.
pub const MIN_FRAME_SIZE: usize = 1024;

/// How a [`Session`](super::Session) behaves. `SessionConfig::new(endpoint)`
/// follows phoenix.js: heartbeat every 30 s, the phoenix.js reconnect ladder
/// with up to 10 % jitter, pushes time out after 10 s and wait in a buffer of
/// 100 per topic while their channel is not active; the lifecycle timings
/// (join timeout, rejoin ladder, drain grace, limits) are those of the
/// [engine `Config`](EngineConfig).
///
/// Param values and tokens are secrets: `Debug` shows their names only, and
/// the session never puts them in an event.
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) endpoint: String,
    pub(crate) engine: EngineConfig,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) params_provider: Option<SocketParamsProvider>,
    pub(crate) auth_token: Option<AuthTokenProvider>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) push_timeout: Duration,
    pub(crate) push_buffer: usize,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) max_frame_size: usize,
    pub(crate) settle_on_event: Option<String>,
    pub(crate) resources: bool,
    pub(crate) seed: Option<u64>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SessionConfig")
            .field("endpoint", &redact_query(&self.endpoint))
            .field("engine", &self.engine)
            .field("param_names", &params)
            .field("params_provider", &self.params_provider.is_some())
            .field("auth_token", &self.auth_token.is_some())
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("push_timeout", &self.push_timeout)
            .field("push_buffer", &self.push_buffer)
            .field("overflow", &self.overflow)
            .field("max_frame_size", &self.max_frame_size)
            .field("settle_on_event", &self.settle_on_event)
            .field("resources", &self.resources)
            .field("seed", &self.seed)
            .finish()
    }
}

/// An endpoint without its query (which may carry a token): what logs and
/// errors show.
pub fn redact_query(endpoint: &str) -> &str {
    endpoint.split(['?', '#']).next().unwrap_or_default()
}

impl SessionConfig {
    /// The defaults for `endpoint`, a Phoenix socket URL such as
    /// `ws://localhost:4000/socket` (`/socket/websocket`, `http(s)://` and a
    /// `vsn=2.0.0` query are accepted too).
    pub fn new(endpoint: impl Into<String>) -> Self {
        SessionConfig {
            endpoint: endpoint.into(),
            engine: EngineConfig::default(),
            params: Vec::new(),
            params_provider: None,
            auth_token: None,
            heartbeat_interval: Duration::from_secs(30),
            reconnect: ReconnectPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            push_timeout: Duration::from_secs(10),
            push_buffer: 100,
            overflow: OverflowPolicy::DropOldest,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            settle_on_event: None,
            resources: false,
            seed: None,
        }
    }

    /// The endpoint as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The lifecycle engine's configuration (join timeout, rejoin ladder,
    /// drain grace, settling, limits).
    #[must_use]
    pub fn with_engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// The engine configuration in use.
    pub fn engine(&self) -> &EngineConfig {
        &self.engine
    }

    /// How long a join may wait for its reply (default 10 s).
    #[must_use]
    pub fn with_join_timeout(mut self, timeout: Duration) -> Self {
        self.engine.join_timeout = timeout;
        self
    }

    /// The delays before each rejoin of a channel that failed; the last one
    /// repeats (default 1, 2, 5, 10 s).
    #[must_use]
    pub fn with_rejoin_backoff(mut self, ladder: Vec<Duration>) -> Self {
        self.engine.rejoin_backoff = ladder;
        self
    }

    /// How long an active channel stays joined after its last subscriber left
    /// (default 2 s): a subscriber that comes back within it needs no rejoin.
    #[must_use]
    pub fn with_drain_grace(mut self, grace: Duration) -> Self {
        self.engine.drain_grace = grace;
        self
    }

    /// Whether topics settle before they are active (default off).
    #[must_use]
    pub fn with_settling(mut self, settling: bool) -> Self {
        self.engine.settling = settling;
        self
    }

    /// Adds a socket param (sent in the connect URL's query). Values are
    /// never logged; prefer [`SessionConfig::with_auth_token`] for tokens.
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Socket params computed on every (re)connect, after the fixed ones, as
    /// phoenix.js re-reads a params closure: use it for tokens that expire.
    #[must_use]
    pub fn with_params_provider<F>(mut self, provider: F) -> Self
    where
        F: Fn() -> Vec<(String, String)> + Send + Sync + 'static,
    {
        self.params_provider = Some(Arc::new(provider));
        self
    }

    /// An auth token sent in the `Sec-WebSocket-Protocol` header (phoenix.js
    /// 1.8 `authToken`, read by Phoenix ≥ 1.8), computed on every (re)connect.
    #[must_use]
    pub fn with_auth_token<F>(mut self, token: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.auth_token = Some(Arc::new(token));
        self
    }

    /// How often to send a heartbeat (default 30 s). A heartbeat still
    /// unanswered when the next one is due means the link is dead: the socket
    /// is closed and reconnected.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// The reconnect ladder (see [`ReconnectPolicy::backoff`]).
    #[must_use]
    pub fn with_reconnect_backoff(mut self, ladder: Vec<Duration>) -> Self {
        self.reconnect.backoff = ladder;
        self
    }

    /// The whole reconnect policy, give-up limits included.
    #[must_use]
    pub fn with_reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// How long one connection attempt may take (default 10 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a push may wait for its reply, counted from when it is made
    /// (default 10 s, as phoenix.js).
    #[must_use]
    pub fn with_push_timeout(mut self, timeout: Duration) -> Self {
        self.push_timeout = timeout;
        self
    }

    /// How many pushes per topic may wait for the channel to be active, and
    /// what happens beyond (default 100, [`OverflowPolicy::DropOldest`]). A
    /// capacity of 0 refuses pushes while the channel is not active.
    #[must_use]
    pub fn with_push_buffer(mut self, capacity: usize, policy: OverflowPolicy) -> Self {
        self.push_buffer = capacity;
        self.overflow = policy;
        self
    }

    /// Largest frame accepted from the server and sent to it (default
    /// 8 MiB). A push whose frame would be larger is refused up front.
    #[must_use]
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self
    }

    /// The frame limit in use: a driver sets its WebSocket's limits to it, so
    /// an oversized frame is refused before it is buffered whole.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Settle each incarnation on its first message with this event (e.g.
    /// the `sync` a server pushes once a document is loaded), without a
    /// resource manager. Only topics that settle wait for it.
    #[must_use]
    pub fn with_settle_on_event(mut self, event: impl Into<String>) -> Self {
        self.settle_on_event = Some(event.into());
        self
    }

    /// Whether the application has per-incarnation resources: the session
    /// then asks for them ([`Output::Resource`](super::Output::Resource):
    /// create, settle, abort, destroy, and every message of a current
    /// incarnation, settling ones included). Default off: no resource output.
    #[must_use]
    pub fn with_resources(mut self, on: bool) -> Self {
        self.resources = on;
        self
    }

    /// A fixed seed for the reconnect and rejoin jitter, for reproducible
    /// runs. Default: a seed drawn from the OS per session, so that many
    /// processes do not retry at the same instants.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The fixed jitter seed, if one is set.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), SessionConfigError> {
        self.engine.validate()?;
        websocket_url(&self.endpoint, self.params.iter().map(|(k, v)| (k, v)))?;
        if self.heartbeat_interval.is_zero() {
            return Err(SessionConfigError::ZeroHeartbeat);
        }
        if self.reconnect.backoff.is_empty() {
            return Err(SessionConfigError::EmptyReconnectBackoff);
        }
        if self.reconnect.jitter_permille > 1000 {
            return Err(SessionConfigError::Jitter(self.reconnect.jitter_permille));
        }
        if self.reconnect.max_attempts == Some(0) {
            return Err(SessionConfigError::ZeroReconnectAttempts);
        }
        if self.connect_timeout.is_zero() || self.push_timeout.is_zero() {
            return Err(SessionConfigError::ZeroTimeout);
        }
        if self.max_frame_size < MIN_FRAME_SIZE {
            return Err(SessionConfigError::FrameLimit {
                max: self.max_frame_size,
            });
        }
        Ok(())
    }
}

/// Why a [`SessionConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionConfigError {
    /// The engine configuration is not valid.
    #[error(transparent)]
    Engine(#[from] ConfigError),
    /// The endpoint or the socket params do not make a socket URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The heartbeat interval is zero.
    #[error(
        "heartbeat_interval is zero: use a positive interval well below the server's idle \
         timeout (60 s by default), e.g. 30 s"
    )]
    ZeroHeartbeat,
    /// The reconnect ladder is empty.
    #[error("the reconnect backoff is empty: give at least one delay, e.g. [1 s]")]
    EmptyReconnectBackoff,
    /// Reconnect jitter over 100 %.
    #[error("reconnect jitter is {0} permille: use 0 to 1000 (thousandths of the delay)")]
    Jitter(u16),
    /// A reconnect give-up after zero attempts.
    #[error(
        "max_attempts is 0: the socket would never connect; use None (never give up) or 1 or more"
    )]
    ZeroReconnectAttempts,
    /// A zero connect or push timeout.
    #[error("a connect or push timeout is zero: use a positive duration, e.g. 10 s")]
    ZeroTimeout,
    /// A frame limit too small for any Phoenix message.
    #[error(
        "max_frame_size is {max} bytes: every frame would be refused; use at least 1024 \
         (the default is 8 MiB)"
    )]
    FrameLimit {
        /// The limit given.
        max: usize,
    },
}
