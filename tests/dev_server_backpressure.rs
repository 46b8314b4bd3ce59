//! A client that stops reading must not stop the dev server from reading it: frames keep
//! being handled while writes are pending, and what is queued for the client is bounded in
//! bytes. Real sockets on loopback, raw clients.
#![cfg(feature = "dev-server")]

mod raw_client;

use std::time::Duration;

use channel_registry::phoenix::codec::{Codec, FrameRef, Message, Payload, ServerMessage};
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig, ServerEventKind};
use futures_util::{SinkExt, StreamExt};
use raw_client::{RawClient, EXPECT};
use serde_json::json;
use tokio::time::timeout;

/// Longer than any test here needs when the server keeps reading; reached only on a stall.
const STALL: Duration = Duration::from_secs(10);

async fn start(config: DevServerConfig) -> DevServer {
    DevServer::start(config.with_sync_delay(Duration::from_secs(600)))
        .await
        .expect("dev server starts")
}

fn echo(msg_ref: usize, size: usize) -> Message {
    let payload = Payload::Binary(vec![u8::try_from(msg_ref % 251).unwrap_or(0); size]);
    Message::push("1", msg_ref.to_string(), "room:big", "echo", payload)
}

async fn send(c: &mut RawClient, msg: &Message) -> Result<(), String> {
    let frame = Codec::new().encode_client_message(msg).expect("encodes");
    timeout(STALL, c.ws.send(frame.into_ws_message()))
        .await
        .map_err(|_| "the send stalled: the server stopped reading".to_owned())?
        .map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_echoes_sent_without_reading_are_all_answered_and_heartbeats_still_handled() {
    const PUSHES: usize = 24;
    const SIZE: usize = 1024 * 1024;
    let server = start(DevServerConfig::default()).await;
    let mut c = RawClient::connect(&server.websocket_url()).await;
    c.join("1", "room:big", json!({})).await;

    // Everything is sent before anything is read: a server that waits for its writes before
    // reading on stalls here, both sides blocked on a full socket buffer.
    for msg_ref in 2..2 + PUSHES {
        send(&mut c, &echo(msg_ref, SIZE))
            .await
            .unwrap_or_else(|error| panic!("push {msg_ref}: {error}"));
    }
    send(&mut c, &Message::heartbeat("hb"))
        .await
        .expect("heartbeat sent");

    // The heartbeat was read and handled while replies were still waiting to be written.
    let id = server.view(|s| s.socket_ids()[0]);
    server
        .wait_until(EXPECT, |s| s.inbound_count("phoenix", "heartbeat") == 1)
        .await
        .expect("the heartbeat is handled while writes are pending");
    let pending = server.view(|s| s.outbound_bytes(id));
    assert!(
        pending > 0,
        "the replies should still be queued while the client is not reading"
    );
    let info = server.sockets().remove(0);
    assert!(info.outbound_peak_bytes >= pending);
    assert!(
        info.outbound_peak_bytes
            <= channel_registry::phoenix::dev_server::DEFAULT_MAX_OUTBOUND_BYTES
    );

    // Now read: every push is answered, in order, then the heartbeat.
    for msg_ref in 2..2 + PUSHES {
        let frame = c.next_ws().await.expect("a frame").expect("no error");
        let data = FrameRef::from_ws_message(&frame).expect("a data frame");
        let ServerMessage::Reply(reply) = Codec::new().decode_server_frame(data).expect("decodes")
        else {
            panic!("expected the reply to push {msg_ref}");
        };
        assert_eq!(reply.msg_ref.as_deref(), Some(msg_ref.to_string().as_str()));
        assert!(reply.is_ok());
        assert_eq!(reply.response.as_binary().map(<[u8]>::len), Some(SIZE));
    }
    let heartbeat = c.next_json().await;
    assert_eq!(heartbeat[1], "hb");
    server
        .wait_until(EXPECT, |s| s.outbound_bytes(id) == 0)
        .await
        .expect("the queue drains once the client reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_once_the_byte_bound_is_exceeded() {
    const LIMIT: usize = 2 * 1024 * 1024;
    const SIZE: usize = 256 * 1024;
    /// Far more than the bound plus every socket buffer on the way.
    const MAX_PUSHES: usize = 1000;
    let server = start(DevServerConfig::default().with_max_outbound_bytes(LIMIT)).await;
    let mut c = RawClient::connect(&server.websocket_url()).await;
    c.join("1", "room:big", json!({})).await;

    let overflowed = |server: &DevServer| {
        server.view(|s| {
            s.events()
                .any(|e| matches!(e.kind, ServerEventKind::OutboundOverflow { .. }))
        })
    };
    for msg_ref in 2..2 + MAX_PUSHES {
        if send(&mut c, &echo(msg_ref, SIZE)).await.is_err() || overflowed(&server) {
            break; // the server gave up on this client
        }
    }
    server
        .wait_until(EXPECT, |s| s.socket_count() == 0)
        .await
        .expect("the server closes a client that does not read");

    let (queued, frame, limit, handled) = server.view(|s| {
        let overflow = s
            .events()
            .find_map(|e| match e.kind {
                ServerEventKind::OutboundOverflow {
                    queued_bytes,
                    frame_bytes,
                    limit,
                } => Some((queued_bytes, frame_bytes, limit)),
                _ => None,
            })
            .expect("the overflow is logged");
        (
            overflow.0,
            overflow.1,
            overflow.2,
            s.inbound_count("room:big", "echo"),
        )
    });
    assert_eq!(limit, LIMIT);
    assert!(queued <= LIMIT, "queued {queued} bytes, bound {LIMIT}");
    assert!(queued + frame > LIMIT);
    // Pushes kept being read and handled while their replies waited unwritten: every
    // queued reply, and the one that did not fit, answers a push handled meanwhile.
    assert!(
        handled > queued / frame,
        "{handled} pushes handled, {queued} bytes of replies queued"
    );

    // The client's side of the connection ends (a 1008 close if it got through, else a reset).
    timeout(STALL, async {
        loop {
            match c.ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                    if let Some(frame) = frame {
                        assert_eq!(u16::from(frame.code), 1008);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    })
    .await
    .expect("the connection ends");
}
