//! Accepting a connection: TLS when configured, then the WebSocket upgrade, whose request
//! is checked as a Phoenix endpoint checks it (path, `vsn`, `reject=1` standing in for a
//! refusing `connect/3`).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::registry::Shared;
use super::{MissingVsnPolicy, ServerEventKind, WireProtocol};
use crate::phoenix::codec::{parse_query, PROTOCOL_VSN};

/// The V1 protocol version a socket may fall back to.
const V1_VSN: &str = "1.0.0";

/// A byte stream a connection can be served over.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP stream underneath, to reset it.
    fn tcp(&self) -> &TcpStream;
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

#[cfg(feature = "tls")]
impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Accept one TCP connection: TLS if configured, the upgrade, then serve it until it ends.
pub(super) async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let deadline = super::deadline_after(Instant::now(), shared.config.handshake_timeout);
    #[cfg(feature = "tls")]
    if let Some(acceptor) = shared.tls.clone() {
        match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => upgrade(shared, stream, deadline).await,
            Ok(Err(error)) => tracing::debug!(%error, "dev server: TLS handshake failed"),
            Err(_) => tracing::debug!("dev server: TLS handshake timed out"),
        }
        return;
    }
    upgrade(shared, tcp, deadline).await;
}

/// Upgrade to a WebSocket, then serve it.
// The handshake callback's error type is fixed by tungstenite.
#[allow(clippy::result_large_err)]
async fn upgrade<S: Transport>(shared: Arc<Shared>, stream: S, deadline: Instant) {
    let mut accepted = None;
    let mut refusal = None;
    let missing_vsn = shared.config.missing_vsn;
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match check_request(request, missing_vsn) {
            Ok(params) => {
                accepted = Some(params);
                Ok(response)
            }
            Err((status, reason)) => {
                refusal = Some((status, reason.clone()));
                let mut error = ErrorResponse::new(Some(reason));
                *error.status_mut() = status;
                Err(error)
            }
        }
    };
    let max = shared.config.max_frame_size;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config));
    let ws = match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            if let Some((status, reason)) = refusal {
                shared.record(
                    None,
                    ServerEventKind::Refused {
                        status: status.as_u16(),
                        reason,
                    },
                );
            } else {
                tracing::debug!(%error, "dev server: WebSocket handshake failed");
            }
            return;
        }
        Err(_) => {
            tracing::debug!("dev server: WebSocket handshake timed out");
            return;
        }
    };
    let (params, protocol) = accepted.unwrap_or((Vec::new(), WireProtocol::V2));
    super::connection::run(shared, ws, params, protocol).await;
}

/// What an accepted upgrade request asked for: its query parameters and protocol.
type Accepted = (Vec<(String, String)>, WireProtocol);

/// Accept `…/websocket?vsn=2.0.0` (and V1 if the policy falls back to it); refuse `reject=1`
/// with 403 as a refusing `connect/3` does.
fn check_request(
    request: &Request,
    missing_vsn: MissingVsnPolicy,
) -> Result<Accepted, (StatusCode, String)> {
    let path = request.uri().path();
    if !path.ends_with("/websocket") {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no socket at {path}; the path must end in /websocket"),
        ));
    }
    let params = parse_query(request.uri().query().unwrap_or(""));
    let vsn = params
        .iter()
        .find(|(name, _)| name == "vsn")
        .map(|(_, value)| value.as_str());
    let protocol = match (vsn, missing_vsn) {
        (Some(PROTOCOL_VSN), _) => WireProtocol::V2,
        (None | Some(V1_VSN), MissingVsnPolicy::FallBackToV1) => WireProtocol::V1,
        (None, _) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "this server speaks only the V2 protocol; add vsn={PROTOCOL_VSN} to the query"
                ),
            ))
        }
        (Some(other), _) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("unsupported vsn={other}; this server speaks vsn={PROTOCOL_VSN}"),
            ))
        }
    };
    if params
        .iter()
        .any(|(name, value)| name == "reject" && value == "1")
    {
        return Err((
            StatusCode::FORBIDDEN,
            "connection refused by connect (reject=1)".to_owned(),
        ));
    }
    Ok((params, protocol))
}
