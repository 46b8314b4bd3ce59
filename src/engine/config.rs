//! Configuration: timings, retry policy and limits, with phoenix.js defaults.

use std::time::Duration;

use crate::engine::error::ConfigError;

/// How the engine behaves. `Config::default()` follows phoenix.js and the
/// Phoenix server defaults; see each field.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// Whether topics settle (wait for their resources' first sync) before
    /// becoming active, unless a topic says otherwise. Default: off.
    pub settling: bool,
    /// How long a join may wait for its reply. Default 10 s (phoenix.js).
    pub join_timeout: Duration,
    /// How long settling may take. Default 10 s.
    pub settle_timeout: Duration,
    /// How long an active topic stays joined after its last holder left.
    /// Default 2 s.
    pub drain_grace: Duration,
    /// Delay before the n-th retry after a failure; the last entry repeats.
    /// Default 1, 2, 5, 10 s (phoenix.js `rejoinAfterMs`).
    pub rejoin_backoff: Vec<Duration>,
    /// Random extra delay added to each retry, in thousandths of the delay
    /// (100 = up to +10 %), so that many clients do not retry in lockstep.
    /// Drawn from a deterministic generator seeded by [`Config::seed`].
    pub jitter_permille: u16,
    /// How many joins a topic gets in a row without reaching active before it
    /// is reported failed. Default 5.
    pub max_attempts: u8,
    /// Whether a server `phx_close` of the current incarnation is retried like
    /// a crash. Default false: as in phoenix.js, it ends the topic (reported).
    pub rejoin_on_server_close: bool,
    /// Limits on what the application may ask for.
    pub limits: Limits,
    /// Whether every phase change is reported ([`Event::PhaseChanged`](crate::engine::Event::PhaseChanged)).
    /// Default on. A driver that needs only the effects, failures and room
    /// news may switch it off to save the queue traffic.
    pub phase_events: bool,
    /// Seed of the jitter generator (runs are reproducible for a given seed).
    pub seed: u64,
}

/// Limits checked on every subscribe and switch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Topics the registry manages at once. Default 100, the Phoenix per-socket
    /// channel limit. A draining topic is closed early to make room.
    pub max_topics: usize,
    /// Holders of one topic. Default 10 000.
    pub max_holders_per_topic: usize,
    /// Longest topic in bytes. Default 255, the most a V2 binary frame can carry.
    pub max_topic_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_topics: 100,
            max_holders_per_topic: 10_000,
            max_topic_len: 255,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            settling: false,
            join_timeout: Duration::from_secs(10),
            settle_timeout: Duration::from_secs(10),
            drain_grace: Duration::from_secs(2),
            rejoin_backoff: [1, 2, 5, 10].map(Duration::from_secs).to_vec(),
            jitter_permille: 100,
            max_attempts: 5,
            rejoin_on_server_close: false,
            limits: Limits::default(),
            phase_events: true,
            seed: 0x5eed_c4a2_2e15_7e57,
        }
    }
}

impl Config {
    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        if self.rejoin_backoff.is_empty() {
            return Err(ConfigError::EmptyBackoff);
        }
        if self.limits.max_topics == 0 || self.limits.max_holders_per_topic == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        if self.limits.max_topic_len == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        if self.jitter_permille > 1000 {
            return Err(ConfigError::Jitter(self.jitter_permille));
        }
        Ok(())
    }

    /// The delay before retry number `failures` (1-based), without jitter.
    pub fn backoff(&self, failures: u8) -> Duration {
        let i = usize::from(failures.max(1)) - 1;
        self.rejoin_backoff
            .get(i.min(self.rejoin_backoff.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    /// The largest jitter added to a delay `d`: `d * jitter_permille / 1000`,
    /// saturating (any `Duration`, even `Duration::MAX`, is safe).
    pub fn max_jitter(&self, d: Duration) -> Duration {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let jitter = u128::from(nanos) * u128::from(self.jitter_permille) / 1000;
        Duration::from_nanos(u64::try_from(jitter).unwrap_or(u64::MAX))
    }
}
