//! A raw WebSocket client for dev-server tests: it sends frames exactly as written and hands
//! back what the server sent, so a test checks the wire, not a client library's view of it.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for a frame a test expects; reached only when the test fails.
pub const EXPECT: Duration = Duration::from_secs(3);
/// Window in which a frame a test forbids would have arrived.
pub const QUIET: Duration = Duration::from_millis(150);

pub struct RawClient<S = MaybeTlsStream<TcpStream>> {
    pub ws: WebSocketStream<S>,
}

impl RawClient {
    pub async fn connect(url: &str) -> RawClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("client connects");
        RawClient { ws }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    pub fn over(ws: WebSocketStream<S>) -> Self {
        RawClient { ws }
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(WsMessage::text(text)).await.expect("send");
    }

    /// Queue frames and write them in one go, so the server receives them together.
    pub async fn send_together(&mut self, frames: &[Value]) {
        for frame in frames {
            self.ws
                .feed(WsMessage::text(frame.to_string()))
                .await
                .expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    /// The next frame other than ping and pong, or `None` when the connection ended.
    pub async fn next_ws(&mut self) -> Option<Result<WsMessage, tungstenite::Error>> {
        timeout(EXPECT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("a frame within the expected time")
    }

    pub async fn next_json(&mut self) -> Value {
        match self.next_ws().await {
            Some(Ok(WsMessage::Text(text))) => {
                serde_json::from_str(&text).expect("server sends JSON")
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Assert nothing arrives for a short while.
    pub async fn expect_quiet(&mut self) {
        self.expect_quiet_for(QUIET).await;
    }

    pub async fn expect_quiet_for(&mut self, window: Duration) {
        if let Ok(frame) = timeout(window, self.ws.next()).await {
            panic!("expected no frame, got {frame:?}");
        }
    }

    /// Wait for the connection to end; returns the close frame if there was one.
    pub async fn closed(&mut self) -> Result<Option<CloseFrame>, String> {
        match self.next_ws().await {
            Some(Ok(WsMessage::Close(frame))) => Ok(frame),
            Some(Ok(other)) => panic!("expected the connection to close, got {other:?}"),
            Some(Err(error)) => Err(error.to_string()),
            None => Ok(None),
        }
    }

    /// The close code the server ended the connection with.
    pub async fn close_code(&mut self) -> u16 {
        let frame = self
            .closed()
            .await
            .expect("a clean close")
            .expect("a close frame");
        u16::from(frame.code)
    }

    pub async fn join(&mut self, join_ref: &str, topic: &str, params: Value) -> Value {
        self.send_json(json!([join_ref, join_ref, topic, "phx_join", params]))
            .await;
        self.next_json().await
    }
}

pub fn ok_reply(join_ref: Value, msg_ref: Value, topic: Value, response: Value) -> Value {
    json!([join_ref, msg_ref, topic, "phx_reply", {"status": "ok", "response": response}])
}

pub fn error_reply(join_ref: Value, msg_ref: Value, topic: Value, response: Value) -> Value {
    json!([join_ref, msg_ref, topic, "phx_reply", {"status": "error", "response": response}])
}
