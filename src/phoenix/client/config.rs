//! Client settings: the session's (protocol timings, reconnect policy, push
//! buffers, limits — see [`SessionConfig`]) plus what only the tokio driver
//! has: the queues in front of each subscription, the resources, the write
//! buffer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Config;
use crate::phoenix::client::error::ClientConfigError;
use crate::phoenix::client::resources::ResourceManager;
use crate::session::{OverflowPolicy, ReconnectPolicy, SessionConfig};

/// How a [`Client`](super::Client) behaves. `ClientConfig::default()`
/// follows phoenix.js: heartbeat every 30 s, reconnect after 10, 50, 100,
/// 150, 200, 250, 500, 1000, 2000 ms then every 5 s (plus up to 10 %
/// jitter, seeded per process), pushes time out after 10 s; joins time out
/// after 10 s and rejoin after 1, 2, 5, 10 s.
///
/// ```
/// use std::time::Duration;
/// use channel_registry::phoenix::{ClientConfig, OverflowPolicy};
///
/// let config = ClientConfig::default()
///     .with_param("token", "s3cr3t")
///     .with_join_timeout(Duration::from_secs(5))
///     .with_drain_grace(Duration::from_millis(500))
///     .with_heartbeat_interval(Duration::from_secs(20))
///     .with_push_buffer(50, OverflowPolicy::RejectNew);
/// // Debug output never shows param values (they often carry tokens).
/// assert!(!format!("{config:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) session: SessionConfig,
    pub(crate) subscriber_capacity: usize,
    pub(crate) subscriber_budget: usize,
    pub(crate) write_buffer: usize,
    pub(crate) resources: Option<Arc<dyn ResourceManager>>,
    pub(crate) tls: crate::phoenix::client::tls::TlsConfig,
    pub(crate) recording: Option<std::path::PathBuf>,
    pub(crate) recording_secrets: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            session: SessionConfig::new(""),
            subscriber_capacity: 1024,
            subscriber_budget: 16 * 1024 * 1024,
            write_buffer: 64 * 1024 * 1024,
            resources: None,
            tls: Default::default(),
            recording: None,
            recording_secrets: false,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("session", &self.session)
            .field("subscriber_capacity", &self.subscriber_capacity)
            .field("subscriber_budget", &self.subscriber_budget)
            .field("write_buffer", &self.write_buffer)
            .field("resources", &self.resources.is_some())
            .field("tls", &self.tls)
            .field("recording", &self.recording)
            .field("recording_secrets", &self.recording_secrets)
            .finish()
    }
}

impl ClientConfig {
    fn map(mut self, f: impl FnOnce(SessionConfig) -> SessionConfig) -> Self {
        self.session = f(self.session);
        self
    }

    /// The lifecycle engine's configuration (join timeout, rejoin ladder,
    /// drain grace, settling, limits) in one piece.
    #[must_use]
    pub fn with_engine(self, engine: Config) -> Self {
        self.map(|s| s.with_engine(engine))
    }

    /// The engine configuration in use.
    pub fn engine(&self) -> &Config {
        self.session.engine()
    }

    /// Records every input the client gives its session and every output it
    /// takes, as JSON lines in the file `path` (created or truncated at
    /// connect), for [replay](crate::session::record) through the pure
    /// session: a run that hit a bug becomes a file that reproduces it.
    /// Socket params, the auth token and join params are redacted unless
    /// [`ClientConfig::with_recording_secrets`] says otherwise. Writing
    /// blocks the client's task for as long as the disk takes: for
    /// debugging, on local disk.
    #[must_use]
    pub fn with_recording(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.recording = Some(path.into());
        self
    }

    /// Keep secrets (socket params, the auth token, join params) in the
    /// recording instead of redacting them (default: redacted).
    #[must_use]
    pub fn with_recording_secrets(mut self, keep: bool) -> Self {
        self.recording_secrets = keep;
        self
    }

    /// The session configuration in use (the endpoint is set at connect).
    pub fn session(&self) -> &SessionConfig {
        &self.session
    }

    /// How long a join may wait for its reply (default 10 s).
    #[must_use]
    pub fn with_join_timeout(self, timeout: Duration) -> Self {
        self.map(|s| s.with_join_timeout(timeout))
    }

    /// Delays before each rejoin of a failed channel; the last repeats
    /// (default 1, 2, 5, 10 s).
    #[must_use]
    pub fn with_rejoin_backoff(self, ladder: Vec<Duration>) -> Self {
        self.map(|s| s.with_rejoin_backoff(ladder))
    }

    /// How long a channel stays joined after its last subscriber left
    /// (default 2 s).
    #[must_use]
    pub fn with_drain_grace(self, grace: Duration) -> Self {
        self.map(|s| s.with_drain_grace(grace))
    }

    /// Whether topics settle before they are active (default off).
    #[must_use]
    pub fn with_settling(self, settling: bool) -> Self {
        self.map(|s| s.with_settling(settling))
    }

    /// Settle each incarnation on its first message with this event (e.g. a
    /// `sync`), without a resource manager.
    #[must_use]
    pub fn with_settle_on_event(self, event: impl Into<String>) -> Self {
        self.map(|s| s.with_settle_on_event(event))
    }

    /// Adds a socket param (sent in the connect URL's query). Values are
    /// never logged; prefer [`ClientConfig::with_auth_token`] for tokens.
    #[must_use]
    pub fn with_param(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.map(|s| s.with_param(name, value))
    }

    /// Socket params computed on every (re)connect, after the fixed ones.
    #[must_use]
    pub fn with_params_provider<F>(self, provider: F) -> Self
    where
        F: Fn() -> Vec<(String, String)> + Send + Sync + 'static,
    {
        self.map(|s| s.with_params_provider(provider))
    }

    /// An auth token sent in the `Sec-WebSocket-Protocol` header, as
    /// phoenix.js 1.8 `authToken` (read by Phoenix ≥ 1.8): it never appears
    /// in a URL. Computed on every (re)connect.
    #[must_use]
    pub fn with_auth_token<F>(self, token: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.map(|s| s.with_auth_token(token))
    }

    /// How often to send a heartbeat (default 30 s).
    #[must_use]
    pub fn with_heartbeat_interval(self, interval: Duration) -> Self {
        self.map(|s| s.with_heartbeat_interval(interval))
    }

    /// The reconnect ladder; the last delay repeats.
    #[must_use]
    pub fn with_reconnect_backoff(self, ladder: Vec<Duration>) -> Self {
        self.map(|s| s.with_reconnect_backoff(ladder))
    }

    /// Random extra reconnect delay, in thousandths of the delay (default
    /// 100).
    #[must_use]
    pub fn with_reconnect_jitter(mut self, permille: u16) -> Self {
        let mut policy = self.session.reconnect.clone();
        policy.jitter_permille = permille;
        self.session = self.session.with_reconnect(policy);
        self
    }

    /// The whole reconnect policy, give-up limits included.
    #[must_use]
    pub fn with_reconnect(self, policy: ReconnectPolicy) -> Self {
        self.map(|s| s.with_reconnect(policy))
    }

    /// How long one connection attempt may take (default 10 s).
    #[must_use]
    pub fn with_connect_timeout(self, timeout: Duration) -> Self {
        self.map(|s| s.with_connect_timeout(timeout))
    }

    /// How long a push may wait for its reply (default 10 s).
    #[must_use]
    pub fn with_push_timeout(self, timeout: Duration) -> Self {
        self.map(|s| s.with_push_timeout(timeout))
    }

    /// Pushes per topic that may wait for the channel, and what happens
    /// beyond (default 100, drop the oldest).
    #[must_use]
    pub fn with_push_buffer(self, capacity: usize, policy: OverflowPolicy) -> Self {
        self.map(|s| s.with_push_buffer(capacity, policy))
    }

    /// Largest frame accepted from the server and sent to it (default 8 MiB).
    #[must_use]
    pub fn with_max_frame_size(self, max: usize) -> Self {
        self.map(|s| s.with_max_frame_size(max))
    }

    /// A fixed jitter seed (default: drawn from the OS per client).
    #[must_use]
    pub fn with_seed(self, seed: u64) -> Self {
        self.map(|s| s.with_seed(seed))
    }

    /// Messages one subscription or room may have waiting unread (default
    /// 1024); beyond that, new messages to it are dropped, and it gets a
    /// `Lagged` event saying how many before its next message.
    #[must_use]
    pub fn with_subscriber_capacity(mut self, capacity: usize) -> Self {
        self.subscriber_capacity = capacity;
        self
    }

    /// Bytes of messages one subscription or room may have waiting unread
    /// (default 16 MiB); beyond that, as for the capacity. Every subscriber
    /// shares the message it gets with the others (no copy per subscriber).
    #[must_use]
    pub fn with_subscriber_budget(mut self, bytes: usize) -> Self {
        self.subscriber_budget = bytes;
        self
    }

    /// Bytes that may wait to be written to the socket (default 64 MiB). A
    /// server that stops reading for that long makes the connection fail and
    /// reconnect, instead of growing memory; reading never stops meanwhile.
    #[must_use]
    pub fn with_write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }

    /// The resources created and destroyed with each channel incarnation,
    /// and how they settle (default: none).
    #[must_use]
    pub fn with_resources(mut self, resources: impl ResourceManager) -> Self {
        self.resources = Some(Arc::new(resources));
        self
    }

    /// Adds a trusted root certificate (PEM) for `wss://`, next to the
    /// built-in web roots: for servers with a private CA or a self-signed
    /// certificate.
    #[must_use]
    pub fn with_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.extra_roots.push(pem.into());
        self
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), ClientConfigError> {
        let mut session = self.session.clone();
        session.endpoint = "ws://localhost/socket".to_owned();
        session.validate()?;
        for (what, value) in [
            ("subscriber_capacity", self.subscriber_capacity),
            ("subscriber_budget", self.subscriber_budget),
            ("write_buffer", self.write_buffer),
        ] {
            if value == 0 {
                return Err(ClientConfigError::ZeroBound { what });
            }
        }
        Ok(())
    }

    /// The session's configuration for `endpoint`.
    pub(crate) fn for_endpoint(&self, endpoint: &str) -> SessionConfig {
        let mut session = self.session.clone();
        session.endpoint = endpoint.to_owned();
        session.resources = self.resources.is_some();
        session
    }
}
