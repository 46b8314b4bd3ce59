//! The session's configuration as a recording keeps it: every knob and the
//! jitter seed, with socket params, the auth token and the endpoint's query
//! redacted unless the recording keeps secrets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Config as EngineConfig;
use crate::session::record::REDACTED;
use crate::session::{OverflowPolicy, ReconnectPolicy, SessionConfig};

/// Every knob of a [`SessionConfig`] plus the seed in use, serializable.
/// Providers (socket params, auth token) are code: a recording says only
/// whether there was one, and a replay puts a provider of redacted values
/// in its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedConfig {
    /// The endpoint; its query values are redacted unless secrets are kept.
    pub endpoint: String,
    /// The lifecycle engine's configuration.
    pub engine: EngineConfig,
    /// Fixed socket params; values redacted unless secrets are kept.
    pub params: Vec<(String, String)>,
    /// Whether socket params came from a provider too.
    pub params_provider: bool,
    /// Whether an auth token was sent.
    pub auth_token: bool,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// The reconnect policy.
    pub reconnect: ReconnectPolicy,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Push timeout.
    pub push_timeout: Duration,
    /// Push buffer capacity per topic.
    pub push_buffer: usize,
    /// What a full push buffer does.
    pub overflow: OverflowPolicy,
    /// Frame limit.
    pub max_frame_size: usize,
    /// The event that settles an incarnation, if any.
    pub settle_on_event: Option<String>,
    /// Whether resource outputs are on.
    pub resources: bool,
    /// The jitter seed the session used (always recorded: replay needs it).
    pub seed: u64,
    /// Whether the values above (and the recording's params) are real.
    pub secrets: bool,
}

impl RecordedConfig {
    /// What a recording keeps of `config` for a session that uses `seed`.
    pub fn new(config: &SessionConfig, seed: u64, secrets: bool) -> RecordedConfig {
        let value = |v: &str| {
            if secrets {
                v.to_owned()
            } else {
                REDACTED.to_owned()
            }
        };
        RecordedConfig {
            endpoint: if secrets {
                config.endpoint.clone()
            } else {
                redact_url(&config.endpoint)
            },
            engine: config.engine.clone(),
            params: config
                .params
                .iter()
                .map(|(name, v)| (name.clone(), value(v)))
                .collect(),
            params_provider: config.params_provider.is_some(),
            auth_token: config.auth_token.is_some(),
            heartbeat_interval: config.heartbeat_interval,
            reconnect: config.reconnect.clone(),
            connect_timeout: config.connect_timeout,
            push_timeout: config.push_timeout,
            push_buffer: config.push_buffer,
            overflow: config.overflow,
            max_frame_size: config.max_frame_size,
            settle_on_event: config.settle_on_event.clone(),
            resources: config.resources,
            seed,
            secrets,
        }
    }

    /// A configuration that behaves as the recorded one: same knobs, same
    /// seed; providers give redacted values.
    pub fn to_config(&self) -> SessionConfig {
        let mut config = SessionConfig::new(self.endpoint.clone())
            .with_engine(self.engine.clone())
            .with_heartbeat_interval(self.heartbeat_interval)
            .with_reconnect(self.reconnect.clone())
            .with_connect_timeout(self.connect_timeout)
            .with_push_timeout(self.push_timeout)
            .with_push_buffer(self.push_buffer, self.overflow)
            .with_max_frame_size(self.max_frame_size)
            .with_resources(self.resources)
            .with_seed(self.seed);
        for (name, value) in &self.params {
            config = config.with_param(name.clone(), value.clone());
        }
        if self.params_provider {
            config = config.with_params_provider(Vec::new);
        }
        if self.auth_token {
            config = config.with_auth_token(|| REDACTED.to_owned());
        }
        if let Some(event) = &self.settle_on_event {
            config = config.with_settle_on_event(event.clone());
        }
        config
    }
}

/// `url` with every query value but `vsn` replaced by the redaction mark.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("vsn", v)) => format!("vsn={v}"),
            Some((name, _)) => format!("{name}={REDACTED}"),
            None => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}
