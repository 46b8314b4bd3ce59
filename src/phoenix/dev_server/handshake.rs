//! Accepting a connection: TLS when configured, then the WebSocket upgrade, whose request
//! is checked as a Phoenix endpoint checks it (path, `vsn`, `reject=1` standing in for a
//! refusing `connect/3`).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
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
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        match check_request(request, missing_vsn) {
            Ok(upgrade) => {
                if let Some(chosen) = upgrade.subprotocol {
                    response
                        .headers_mut()
                        .insert(SUBPROTOCOL_HEADER, HeaderValue::from_static(chosen));
                }
                accepted = Some(upgrade);
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
    let accepted = accepted.unwrap_or(Accepted {
        params: Vec::new(),
        protocol: WireProtocol::V2,
        auth_token: None,
        subprotocol: None,
    });
    super::connection::run(
        shared,
        ws,
        accepted.params,
        accepted.protocol,
        accepted.auth_token,
    )
    .await;
}

/// The request header that carries the subprotocols (and the auth token).
const SUBPROTOCOL_HEADER: &str = "sec-websocket-protocol";
/// The subprotocol a Phoenix 1.8 socket with `auth_token: true` answers with.
const PHOENIX_SUBPROTOCOL: &str = "phoenix";
/// How phoenix.js 1.8 (`authToken`) sends a token among the subprotocols.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// What an accepted upgrade request asked for.
struct Accepted {
    /// Its query parameters.
    params: Vec<(String, String)>,
    /// The wire protocol it speaks.
    protocol: WireProtocol,
    /// The token it sent in `Sec-WebSocket-Protocol`.
    auth_token: Option<String>,
    /// The subprotocol to answer with.
    subprotocol: Option<&'static str>,
}

/// Accept `…/websocket?vsn=2.0.0` (and V1 if the policy falls back to it); refuse `reject=1`
/// with 403 as a refusing `connect/3` does. Subprotocols are read as a Phoenix 1.8 socket
/// mounted with `auth_token: true` reads them (see [`check_subprotocols`]).
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
    let (auth_token, subprotocol) = check_subprotocols(request)?;
    Ok(Accepted {
        params,
        protocol,
        auth_token,
        subprotocol,
    })
}

/// What the subprotocols of an upgrade request carry: the auth token, and the subprotocol
/// to answer with.
type Subprotocols = (Option<String>, Option<&'static str>);

/// The auth token and the subprotocol to answer with, as Phoenix 1.8 with `auth_token: true`
/// does: a `base64url.bearer.phx.TOKEN` entry carries the token (standard base64 without
/// padding, as phoenix.js encodes it), and the server answers with `phoenix`, the subprotocol
/// phoenix.js offers beside it, so that the client's handshake completes. Subprotocols
/// without `phoenix` are refused with 403, as Phoenix refuses them.
fn check_subprotocols(request: &Request) -> Result<Subprotocols, (StatusCode, String)> {
    let offered: Vec<&str> = request
        .headers()
        .get_all(SUBPROTOCOL_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .collect();
    let mut token = None;
    for protocol in &offered {
        if let Some(encoded) = protocol.strip_prefix(AUTH_TOKEN_PREFIX) {
            let decoded = decode_base64(encoded).ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    "the auth token in Sec-WebSocket-Protocol is not base64 without padding"
                        .to_owned(),
                )
            })?;
            token = Some(String::from_utf8_lossy(&decoded).into_owned());
        }
    }
    let others = offered
        .iter()
        .filter(|protocol| !protocol.starts_with(AUTH_TOKEN_PREFIX))
        .count();
    if others == 0 {
        return Ok((token, None));
    }
    if offered.contains(&PHOENIX_SUBPROTOCOL) {
        return Ok((token, Some(PHOENIX_SUBPROTOCOL)));
    }
    Err((
        StatusCode::FORBIDDEN,
        format!("no supported subprotocol offered; this socket speaks {PHOENIX_SUBPROTOCOL:?}"),
    ))
}

/// Standard base64 (`+`, `/`) without padding; `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_without_padding_decodes_as_phoenix_does() {
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64("Zg").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode_base64("Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode_base64("Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decode_base64("MTIzNA").as_deref(), Some(&b"1234"[..]));
        assert_eq!(decode_base64("+/8").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(decode_base64("Zm9v="), None);
        assert_eq!(decode_base64("Z"), None);
        assert_eq!(decode_base64("Zm-v"), None);
    }
}
