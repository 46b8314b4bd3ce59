//! Server settings: timings, limits, the knobs where Phoenix versions differ, TLS and routes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::builtin::{BuiltinChannel, BuiltinTimings};
use super::handler::{ChannelHandler, HandlerFactory, TopicPattern};
use super::ordered::{self, OrderedKind, SequencedFormat, VersionedFormat, DEFAULT_REPLAY_WINDOW};
use super::registry::Route;
#[cfg(feature = "tls")]
use super::tls;
#[cfg(doc)]
use super::{DevServerError, DevServerHandle, ServerEventKind};
use super::{MissingVsnPolicy, StalePushPolicy};
use crate::phoenix::codec::DEFAULT_MAX_FRAME_SIZE;

/// A route as configured: a custom handler, a built-in behaviour or an ordered topic.
#[derive(Clone)]
enum RouteSpec {
    Handler(TopicPattern, HandlerFactory),
    Builtin(TopicPattern, BuiltinChannel),
    Ordered(TopicPattern, OrderedKind),
}

/// The ordered routes among the defaults, after the built-in channels.
fn default_ordered_routes() -> [RouteSpec; 2] {
    [
        RouteSpec::Ordered(
            TopicPattern::new("seq:*"),
            OrderedKind::Sequenced(Arc::new(SequencedFormat::default())),
        ),
        RouteSpec::Ordered(
            TopicPattern::new("doc:*"),
            OrderedKind::Versioned(Arc::new(VersionedFormat::default())),
        ),
    ]
}

/// Server settings. Defaults mirror Phoenix (100 channels per socket, 60 s idle timeout, the
/// 1.7 answers to stale pushes) and the transcript server (sync push 50 ms after a `room:*`
/// join, 1500 ms `slow:*` joins); tests shorten the timings they exercise. The
/// [module docs](super#configuration) list every knob.
#[derive(Clone)]
pub struct DevServerConfig {
    pub(super) port: u16,
    pub(super) sync_delay: Duration,
    pub(super) slow_join: Duration,
    pub(super) max_channels_per_socket: usize,
    pub(super) idle_timeout: Duration,
    pub(super) max_clients_per_topic: usize,
    pub(super) session_grace: Duration,
    pub(super) session_idle_timeout: Option<Duration>,
    pub(super) leave_delay: Duration,
    pub(super) max_frame_size: usize,
    pub(super) max_outbound_bytes: usize,
    pub(super) handshake_timeout: Duration,
    pub(super) event_log_capacity: usize,
    pub(super) replay_window: u64,
    pub(super) stale_pushes: StalePushPolicy,
    pub(super) missing_vsn: MissingVsnPolicy,
    builtin_routes: bool,
    routes: Vec<RouteSpec>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<tls::TlsIdentity>,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        DevServerConfig {
            port: 0,
            sync_delay: Duration::from_millis(50),
            slow_join: Duration::from_millis(1500),
            max_channels_per_socket: 100,
            idle_timeout: Duration::from_secs(60),
            max_clients_per_topic: 1000,
            session_grace: Duration::from_secs(1),
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            leave_delay: Duration::ZERO,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_outbound_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
            handshake_timeout: Duration::from_secs(10),
            event_log_capacity: 10_000,
            replay_window: DEFAULT_REPLAY_WINDOW,
            stale_pushes: StalePushPolicy::default(),
            missing_vsn: MissingVsnPolicy::default(),
            builtin_routes: true,
            routes: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl fmt::Debug for DevServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|route| match route {
                RouteSpec::Handler(pattern, _) => format!("{pattern} => custom"),
                RouteSpec::Builtin(pattern, builtin) => format!("{pattern} => {builtin:?}"),
                RouteSpec::Ordered(pattern, kind) => format!("{pattern} => {kind:?}"),
            })
            .collect();
        f.debug_struct("DevServerConfig")
            .field("port", &self.port)
            .field("sync_delay", &self.sync_delay)
            .field("slow_join", &self.slow_join)
            .field("max_channels_per_socket", &self.max_channels_per_socket)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_clients_per_topic", &self.max_clients_per_topic)
            .field("session_grace", &self.session_grace)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("leave_delay", &self.leave_delay)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_outbound_bytes", &self.max_outbound_bytes)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("event_log_capacity", &self.event_log_capacity)
            .field("replay_window", &self.replay_window)
            .field("stale_pushes", &self.stale_pushes)
            .field("missing_vsn", &self.missing_vsn)
            .field("builtin_routes", &self.builtin_routes)
            .field("routes", &routes)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl DevServerConfig {
    /// Listen on this port of 127.0.0.1 instead of a free one (for demos with a fixed URL).
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Delay of the `sync {"seq":1}` push after a `room:*` join (default 50 ms).
    #[must_use]
    pub fn with_sync_delay(mut self, delay: Duration) -> Self {
        self.sync_delay = delay;
        self
    }

    /// Sleep of a `slow:*` join without `delay_ms` (default 1500 ms).
    #[must_use]
    pub fn with_slow_join(mut self, delay: Duration) -> Self {
        self.slow_join = delay;
        self
    }

    /// Channels one socket may have joined (default 100); beyond it joins get
    /// `{"reason": "too many channels joined"}`.
    #[must_use]
    pub fn with_max_channels_per_socket(mut self, max: usize) -> Self {
        self.max_channels_per_socket = max;
        self
    }

    /// Close a socket (code 1000, "idle timeout") after this long without an inbound frame
    /// (default 60 s).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Members one topic session accepts over all sockets (default 1000); beyond it joins get
    /// `{"reason": "max_clients_reached"}`.
    #[must_use]
    pub fn with_max_clients_per_topic(mut self, max: usize) -> Self {
        self.max_clients_per_topic = max;
        self
    }

    /// How long an empty topic session lingers before it ends (default 1 s).
    #[must_use]
    pub fn with_session_grace(mut self, grace: Duration) -> Self {
        self.session_grace = grace;
        self
    }

    /// Close every member of a topic without inbound traffic for this long (default 30 min);
    /// `None` disables it.
    #[must_use]
    pub fn with_session_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.session_idle_timeout = timeout;
        self
    }

    /// Extra delay before a `phx_leave` is answered (default none: it is answered once the
    /// frames already received are handled, so a leave immediately followed by a join of
    /// the same topic gets no leave reply, as on a real server).
    #[must_use]
    pub fn with_leave_delay(mut self, delay: Duration) -> Self {
        self.leave_delay = delay;
        self
    }

    /// Largest inbound frame accepted (default 8 MiB).
    #[must_use]
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self
    }

    /// Bytes a socket may hold for its client and not yet have written to the socket
    /// (default [`DEFAULT_MAX_OUTBOUND_BYTES`], 64 MiB; each frame counts its size plus
    /// 64 bytes of bookkeeping). A client that stops reading makes them pile up; a frame that
    /// would take them past this bound gets the socket closed with 1008 instead, the queued
    /// frames dropped and [`ServerEventKind::OutboundOverflow`] logged. Meanwhile the socket
    /// keeps reading and handling that client's frames. Keep it above the largest frame sent.
    #[must_use]
    pub fn with_max_outbound_bytes(mut self, max: usize) -> Self {
        self.max_outbound_bytes = max;
        self
    }

    /// What a push with a join_ref other than its channel's gets (default
    /// [`StalePushPolicy::HandToCurrent`], as on Phoenix 1.7; newer Phoenix drops it).
    #[must_use]
    pub fn with_stale_push_policy(mut self, policy: StalePushPolicy) -> Self {
        self.stale_pushes = policy;
        self
    }

    /// What a connection without `vsn=2.0.0` gets (default [`MissingVsnPolicy::Refuse`]:
    /// HTTP 400; [`MissingVsnPolicy::FallBackToV1`] is what Phoenix does).
    #[must_use]
    pub fn with_missing_vsn_policy(mut self, policy: MissingVsnPolicy) -> Self {
        self.missing_vsn = policy;
        self
    }

    /// How long a connection may take to complete the TLS and WebSocket handshakes, together
    /// (default 10 s).
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Events kept in the log; older ones are dropped first (default 10 000; 0 disables it).
    #[must_use]
    pub fn with_event_log_capacity(mut self, capacity: usize) -> Self {
        self.event_log_capacity = capacity;
        self
    }

    /// How many of the latest events a sequenced topic holds for replay whatever the
    /// acknowledgements (default [`DEFAULT_REPLAY_WINDOW`], 1 000): acknowledged events
    /// older than that are forgotten, so a subscriber that is further behind than any other
    /// finds a gap when it rejoins. See [ordered topics](super::ordered).
    #[must_use]
    pub fn with_replay_window(mut self, window: u64) -> Self {
        self.replay_window = window;
        self
    }

    /// Serve `wss://` with this certificate chain and private key; [`DevServerHandle::url`]
    /// then returns a `wss://` URL. Each may be PEM (any number of certificates, the leaf
    /// first) or DER (one certificate; a PKCS#8, PKCS#1 or SEC1 key). They are checked when
    /// the server starts ([`DevServerError::Tls`]). The certificate must name the host
    /// clients connect to (`127.0.0.1`, or `localhost`).
    ///
    /// ```no_run
    /// # async fn demo(cert_pem: &str, key_pem: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
    ///
    /// let config = DevServerConfig::default().with_tls(cert_pem, key_pem);
    /// let server = DevServer::start(config).await?;
    /// assert!(server.url().starts_with("wss://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.tls = Some(tls::TlsIdentity::new(cert_chain.as_ref(), key.as_ref()));
        self
    }

    /// Whether the server serves `wss://`.
    pub(super) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Leave out the built-in routes (`room:*`, `fail:*`, …, `seq:*`, `doc:*`); only
    /// configured routes remain.
    #[must_use]
    pub fn without_builtin_routes(mut self) -> Self {
        self.builtin_routes = false;
        self
    }

    /// Route topics matching `pattern` to handlers made by `factory`. Configured routes are
    /// tried in order, before the built-in ones.
    #[must_use]
    pub fn route<F>(mut self, pattern: impl Into<TopicPattern>, factory: F) -> Self
    where
        F: Fn(&str) -> Box<dyn ChannelHandler> + Send + Sync + 'static,
    {
        self.routes
            .push(RouteSpec::Handler(pattern.into(), Arc::new(factory)));
        self
    }

    /// Route topics matching `pattern` to a built-in behaviour, e.g. `chat:*` to
    /// [`BuiltinChannel::Room`].
    #[must_use]
    pub fn route_builtin(
        mut self,
        pattern: impl Into<TopicPattern>,
        channel: BuiltinChannel,
    ) -> Self {
        self.routes
            .push(RouteSpec::Builtin(pattern.into(), channel));
        self
    }

    /// Serve topics matching `pattern` as [sequenced topics](super::ordered#sequenced-topics)
    /// speaking `format` (the default routes serve `seq:*` with the default names).
    #[must_use]
    pub fn route_sequenced(
        mut self,
        pattern: impl Into<TopicPattern>,
        format: SequencedFormat,
    ) -> Self {
        let kind = OrderedKind::Sequenced(Arc::new(format));
        self.routes.push(RouteSpec::Ordered(pattern.into(), kind));
        self
    }

    /// Serve topics matching `pattern` as [versioned topics](super::ordered#versioned-topics)
    /// speaking `format` (the default routes serve `doc:*` with the default names).
    #[must_use]
    pub fn route_versioned(
        mut self,
        pattern: impl Into<TopicPattern>,
        format: VersionedFormat,
    ) -> Self {
        let kind = OrderedKind::Versioned(Arc::new(format));
        self.routes.push(RouteSpec::Ordered(pattern.into(), kind));
        self
    }

    pub(super) fn resolve_routes(&self) -> Vec<Route> {
        let timings = BuiltinTimings {
            sync_delay: self.sync_delay,
            slow_join: self.slow_join,
        };
        let builtin = self
            .builtin_routes
            .then_some(BuiltinChannel::DEFAULT_ROUTES.iter())
            .into_iter()
            .flatten()
            .map(|(pattern, channel)| RouteSpec::Builtin(TopicPattern::new(pattern), *channel))
            .chain(
                self.builtin_routes
                    .then(default_ordered_routes)
                    .into_iter()
                    .flatten(),
            );
        self.routes
            .iter()
            .cloned()
            .chain(builtin)
            .map(|spec| match spec {
                RouteSpec::Handler(pattern, factory) => Route {
                    pattern,
                    factory,
                    ordered: None,
                },
                RouteSpec::Builtin(pattern, channel) => Route {
                    pattern,
                    factory: channel.factory(timings),
                    ordered: None,
                },
                RouteSpec::Ordered(pattern, kind) => Route {
                    pattern,
                    factory: ordered::factory(kind.clone()),
                    ordered: Some(kind),
                },
            })
            .collect()
    }
}

/// Default of [`DevServerConfig::with_max_outbound_bytes`]: 64 MiB.
pub const DEFAULT_MAX_OUTBOUND_BYTES: usize = 64 * 1024 * 1024;
