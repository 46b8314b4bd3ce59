//! Accepting a connection: TLS when configured, then the WebSocket upgrade, whose request
//! is checked as a Phoenix endpoint checks it (path, `vsn`, `reject=1` standing in for a
//! refusing `connect/3`), and whose `Sec-WebSocket-Protocol` may carry an auth token as
//! Phoenix ≥ 1.8 reads it (`phoenix, base64url.bearer.phx.<token in base64>`).

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

/// The subprotocol phoenix.js 1.8 offers next to an auth token, which the server answers.
const PHOENIX_SUBPROTOCOL: &str = "phoenix";

/// The subprotocol prefix of phoenix.js 1.8's `authToken`: the token follows in base64.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

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
            Ok(upgrade) => {
                let mut response = response;
                if upgrade.answer_phoenix {
                    response.headers_mut().insert(
                        "Sec-WebSocket-Protocol",
                        HeaderValue::from_static(PHOENIX_SUBPROTOCOL),
                    );
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
        answer_phoenix: false,
    });
    super::connection::run(shared, ws, accepted).await;
}

/// What an accepted upgrade request asked for.
#[derive(Debug)]
pub(super) struct Accepted {
    /// Its decoded query parameters (`vsn` included).
    pub(super) params: Vec<(String, String)>,
    /// The protocol it speaks.
    pub(super) protocol: WireProtocol,
    /// The auth token from `Sec-WebSocket-Protocol`, decoded.
    pub(super) auth_token: Option<String>,
    /// Whether it offered the `phoenix` subprotocol, which the response then names.
    answer_phoenix: bool,
}

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
    let (auth_token, answer_phoenix) = auth_token(request)?;
    Ok(Accepted {
        params,
        protocol,
        auth_token,
        answer_phoenix,
    })
}

/// The auth token of a request, and whether it offered the `phoenix` subprotocol.
fn auth_token(request: &Request) -> Result<(Option<String>, bool), (StatusCode, String)> {
    let mut offered = Vec::new();
    for value in request.headers().get_all("Sec-WebSocket-Protocol") {
        let value = value.to_str().map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Protocol is not ASCII".to_owned(),
            )
        })?;
        offered.extend(value.split(',').map(str::trim).filter(|p| !p.is_empty()));
    }
    let answer_phoenix = offered.contains(&PHOENIX_SUBPROTOCOL);
    let Some(encoded) = offered
        .iter()
        .find_map(|p| p.strip_prefix(AUTH_TOKEN_PREFIX))
    else {
        return Ok((None, answer_phoenix));
    };
    let token = decode_base64(encoded)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "the auth token after {AUTH_TOKEN_PREFIX} is not base64 of UTF-8 text; \
                     encode it as phoenix.js does (btoa, padding removed)"
                ),
            )
        })?;
    Ok((Some(token), answer_phoenix))
}

/// Base64 as phoenix.js writes it (standard alphabet, padding stripped); padding and the
/// URL-safe alphabet are accepted too. `None` when it is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut bits = 0u32;
    let mut count = 0u32;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = bits << 6 | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // One leftover character (6 bits) cannot end a base64 text.
    (count < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_as_phoenix_js_writes_it() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(decode_base64("+/8").unwrap(), b"\xfb\xff");
        assert_eq!(decode_base64("-_8").unwrap(), b"\xfb\xff");
        assert_eq!(decode_base64("Z"), None);
        assert_eq!(decode_base64("Zm9v!"), None);
    }
}
