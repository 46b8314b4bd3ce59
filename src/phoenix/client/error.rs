//! Typed errors of the tokio client. Each message says what to do about it.
//! (Subscribe and push errors are the session's:
//! [`SubscribeError`](crate::session::SubscribeError),
//! [`PushError`](crate::session::PushError).)

use std::time::Duration;

use crate::codec::UrlError;
use crate::session::SessionConfigError;

/// Why [`Client::connect`](super::Client::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint or the socket params do not make a socket URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The configuration is not usable.
    #[error("invalid client configuration: {0}")]
    Config(#[from] ClientConfigError),
    /// The WebSocket connection or handshake failed.
    #[error("could not connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint, without its query (which may carry a token).
        endpoint: String,
        /// What went wrong, and what to do about it.
        reason: String,
    },
    /// The server's TLS certificate is not trusted, or not for this host.
    #[error("could not connect to {endpoint}: {reason}")]
    Tls {
        /// The endpoint, without its query.
        endpoint: String,
        /// What the certificate check said, and what to do about it.
        reason: String,
    },
    /// The connection did not complete in time.
    #[error(
        "no connection to {endpoint} within {after:?}: check the endpoint, or raise \
         ClientConfig::with_connect_timeout"
    )]
    Timeout {
        /// The endpoint, without its query.
        endpoint: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The client's task ended before the first connection completed.
    #[error("{0}")]
    TaskEnded(&'static str),
    /// The recording file asked for could not be created or written.
    #[error(
        "could not write the recording {}: {error}; check that its folder exists and is \
         writable, or drop ClientConfig::with_recording",
        path.display()
    )]
    Recording {
        /// The file.
        path: std::path::PathBuf,
        /// What the file system said.
        error: std::io::Error,
    },
}

/// Why a [`ClientConfig`](super::ClientConfig) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The session's configuration is not valid.
    #[error(transparent)]
    Session(#[from] SessionConfigError),
    /// A queue bound of zero.
    #[error(
        "{what} is zero: each subscription needs room for at least one message, and the \
         socket for at least one frame; use the default or a positive value"
    )]
    ZeroBound {
        /// Which bound.
        what: &'static str,
    },
}
