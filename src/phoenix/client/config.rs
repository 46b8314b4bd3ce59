//! Client settings, with phoenix.js defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Config;
use crate::phoenix::client::error::ClientConfigError;
use crate::phoenix::client::resources::{NoResources, ResourceManager};
use crate::phoenix::codec::DEFAULT_MAX_FRAME_SIZE;

/// What happens when a push arrives while the buffer of its topic is full
/// (pushes wait there while the channel is not active).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Drop the oldest buffered push (its caller gets
    /// [`PushError::BufferOverflow`](super::PushError::BufferOverflow)) and
    /// buffer the new one. The default, as in Supabase realtime-js.
    #[default]
    DropOldest,
    /// Refuse the new push at once with `BufferOverflow`.
    RejectNew,
}

/// Socket params re-read on every (re)connect, e.g. a fresh auth token.
pub(crate) type ParamsProvider = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// How a [`Client`](super::Client) behaves. `ClientConfig::default()` follows
/// phoenix.js: heartbeat every 30 s, reconnect after 10, 50, 100, 150, 200,
/// 250, 500, 1000, 2000 ms then every 5 s (plus up to 10 % jitter), pushes
/// time out after 10 s; the lifecycle timings (join timeout, rejoin ladder,
/// drain grace, limits) are those of the [engine `Config`](Config).
///
/// ```
/// use std::time::Duration;
/// use channel_registry::engine::Config;
/// use channel_registry::phoenix::{ClientConfig, OverflowPolicy};
///
/// let mut engine = Config::default();
/// engine.drain_grace = Duration::from_millis(500);
/// let config = ClientConfig::default()
///     .with_engine(engine)
///     .with_param("token", "s3cr3t")
///     .with_heartbeat_interval(Duration::from_secs(20))
///     .with_push_buffer(50, OverflowPolicy::RejectNew);
/// // Debug output never shows param values (they often carry tokens).
/// assert!(!format!("{config:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) engine: Config,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) params_provider: Option<ParamsProvider>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) reconnect_backoff: Vec<Duration>,
    pub(crate) reconnect_jitter_permille: u16,
    pub(crate) connect_timeout: Duration,
    pub(crate) push_timeout: Duration,
    pub(crate) push_buffer: usize,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) subscriber_capacity: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) resources: Arc<dyn ResourceManager>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            engine: Config::default(),
            params: Vec::new(),
            params_provider: None,
            heartbeat_interval: Duration::from_secs(30),
            reconnect_backoff: [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000]
                .map(Duration::from_millis)
                .to_vec(),
            reconnect_jitter_permille: 100,
            connect_timeout: Duration::from_secs(10),
            push_timeout: Duration::from_secs(10),
            push_buffer: 100,
            overflow: OverflowPolicy::DropOldest,
            subscriber_capacity: 1024,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            resources: Arc::new(NoResources),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Param values often carry auth tokens: show the names only.
        let params: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ClientConfig")
            .field("engine", &self.engine)
            .field("param_names", &params)
            .field("params_provider", &self.params_provider.is_some())
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("reconnect_jitter_permille", &self.reconnect_jitter_permille)
            .field("connect_timeout", &self.connect_timeout)
            .field("push_timeout", &self.push_timeout)
            .field("push_buffer", &self.push_buffer)
            .field("overflow", &self.overflow)
            .field("subscriber_capacity", &self.subscriber_capacity)
            .field("max_frame_size", &self.max_frame_size)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// The lifecycle engine's configuration (join timeout, rejoin ladder,
    /// drain grace, settling, limits).
    #[must_use]
    pub fn with_engine(mut self, engine: Config) -> Self {
        self.engine = engine;
        self
    }

    /// The engine configuration in use.
    pub fn engine(&self) -> &Config {
        &self.engine
    }

    /// Adds a socket param (sent in the connect URL's query), e.g. an auth
    /// token. Values are never logged.
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

    /// How often to send a heartbeat (default 30 s). A heartbeat still
    /// unanswered when the next one is due means the link is dead: the socket
    /// is torn down and reconnected.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Delay before the n-th reconnect attempt in a row; the last one repeats
    /// (default 10, 50, 100, 150, 200, 250, 500, 1000, 2000 ms, then 5 s).
    #[must_use]
    pub fn with_reconnect_backoff(mut self, ladder: Vec<Duration>) -> Self {
        self.reconnect_backoff = ladder;
        self
    }

    /// Random extra delay added to each reconnect, in thousandths of the
    /// delay (default 100 = up to +10 %).
    #[must_use]
    pub fn with_reconnect_jitter(mut self, permille: u16) -> Self {
        self.reconnect_jitter_permille = permille;
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
    /// what happens beyond (default 100, [`OverflowPolicy::DropOldest`], as
    /// Supabase realtime-js). A capacity of 0 refuses pushes while the
    /// channel is not active.
    #[must_use]
    pub fn with_push_buffer(mut self, capacity: usize, policy: OverflowPolicy) -> Self {
        self.push_buffer = capacity;
        self.overflow = policy;
        self
    }

    /// Messages one subscription or room may have waiting unread (default
    /// 1024); beyond that, new messages to it are dropped and counted
    /// ([`Subscription::missed`](super::Subscription::missed)).
    #[must_use]
    pub fn with_subscriber_capacity(mut self, capacity: usize) -> Self {
        self.subscriber_capacity = capacity;
        self
    }

    /// Largest frame accepted from the server (default 8 MiB).
    #[must_use]
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self
    }

    /// The resources created and destroyed with each channel incarnation,
    /// and how they settle (default: none).
    #[must_use]
    pub fn with_resources(mut self, resources: impl ResourceManager) -> Self {
        self.resources = Arc::new(resources);
        self
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), ClientConfigError> {
        self.engine.validate()?;
        if self.heartbeat_interval.is_zero() {
            return Err(ClientConfigError::ZeroHeartbeat);
        }
        if self.reconnect_backoff.is_empty() {
            return Err(ClientConfigError::EmptyReconnectBackoff);
        }
        if self.subscriber_capacity == 0 {
            return Err(ClientConfigError::ZeroSubscriberCapacity);
        }
        if self.reconnect_jitter_permille > 1000 {
            return Err(ClientConfigError::Jitter(self.reconnect_jitter_permille));
        }
        Ok(())
    }

    /// The reconnect delay after `failures` attempts in a row (0-based),
    /// without jitter.
    pub(crate) fn reconnect_delay(&self, failures: u32) -> Duration {
        let last = self.reconnect_backoff.len() - 1;
        let i = usize::try_from(failures).map_or(last, |i| i.min(last));
        self.reconnect_backoff[i]
    }
}
