//! The WebSocket itself: connecting (with TLS for `wss://`), and a writer
//! task per connection so that a blocked write never stops reading or
//! serving the application.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::codec::Frame;
use crate::phoenix::client::error::ConnectError;
use crate::phoenix::client::tls::TlsConfig;
use crate::session::ConnectRequest;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the WebSocket a [`ConnectRequest`] asks for, within its timeout.
/// Errors never carry the URL's query (it may hold a token).
pub(crate) async fn open(
    request: ConnectRequest,
    max_frame_size: usize,
    tls: TlsConfig,
) -> Result<Ws, ConnectError> {
    let endpoint = request.endpoint().to_owned();
    let mut http = request
        .url()
        .into_client_request()
        .map_err(|e| ConnectError::Connect {
            endpoint: endpoint.clone(),
            reason: describe(&e),
        })?;
    if !request.protocols().is_empty() {
        let value = HeaderValue::from_str(&request.protocols().join(", ")).map_err(|_| {
            ConnectError::Connect {
                endpoint: endpoint.clone(),
                reason: "the auth token is not a valid header value: use printable ASCII"
                    .to_owned(),
            }
        })?;
        http.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(max_frame_size))
        .max_frame_size(Some(max_frame_size));
    let secure = request.url().starts_with("wss://");
    let connect = crate::phoenix::client::tls::connect(http, ws_config, &tls, secure, &endpoint);
    match tokio::time::timeout(request.timeout, connect).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout {
            endpoint,
            after: request.timeout,
        }),
    }
}

/// A connection error in words that say what to do, without the URL.
pub(crate) fn describe(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Io(e) => format!("{e}; check that the server is up and the endpoint is right"),
        Error::Http(response) => format!(
            "the server refused the WebSocket upgrade with HTTP {}; check the endpoint's path \
             (e.g. /socket) and the socket params",
            response.status()
        ),
        Error::Url(e) => format!("{e}"),
        Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => format!(
            "the server sent a frame of {size} bytes, over the frame limit of {max_size}; raise \
             ClientConfig::with_max_frame_size if the server means to send frames this large"
        ),
        Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => format!(
            "{e}: a server that reads the auth token answers with the `phoenix` subprotocol \
             (Phoenix 1.8 or later); use a socket param for older servers"
        ),
        other => format!("{other}"),
    }
}

/// What the writer task is told.
pub(crate) enum WriterCommand {
    Frame(WsMessage, usize),
    Flush,
    Close(u16, &'static str),
}

/// The writing half of an open connection, behind a queue.
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<WriterCommand>,
    queued: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the writer task of `sink`.
    pub(crate) fn spawn(sink: SplitSink<Ws, WsMessage>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write(sink, rx, Arc::clone(&queued)));
        Writer { tx, queued }
    }

    /// Queues a frame; false when the writer is gone (the connection broke).
    pub(crate) fn send(&self, frame: Frame) -> bool {
        let len = frame.len();
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.tx
            .send(WriterCommand::Frame(frame.into_ws_message(), len))
            .is_ok()
    }

    /// Asks for a flush (a pong tungstenite queued on read goes out).
    pub(crate) fn flush(&self) {
        let _ = self.tx.send(WriterCommand::Flush);
    }

    /// Sends a close frame after what is queued, then stops.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        let _ = self.tx.send(WriterCommand::Close(code, reason));
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

async fn write(
    mut sink: SplitSink<Ws, WsMessage>,
    mut rx: mpsc::UnboundedReceiver<WriterCommand>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(command) = rx.recv().await {
        let result = match command {
            WriterCommand::Frame(message, len) => {
                let fed = sink.feed(message).await;
                queued.fetch_sub(len, Ordering::Relaxed);
                match fed {
                    Ok(()) if rx.is_empty() => sink.flush().await,
                    other => other,
                }
            }
            WriterCommand::Flush => sink.flush().await,
            WriterCommand::Close(code, reason) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let closing = sink.send(WsMessage::Close(Some(frame)));
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), closing).await;
                return;
            }
        };
        if result.is_err() {
            // The connection broke; the reader sees it too and says so.
            return;
        }
    }
}

/// The reading half.
pub(crate) type Reader = SplitStream<Ws>;
