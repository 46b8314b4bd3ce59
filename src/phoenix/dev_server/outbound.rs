//! The outbound side of one connection: a queue bounded in bytes, drained by a writer task of
//! its own. The connection task only enqueues, so a client that stops reading never stops the
//! server from reading and handling that client's frames (heartbeats included); once the
//! client has left more than the bound unread, the connection closes it instead of growing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// What one queued frame costs besides its bytes (the queue node and the message itself), so
/// a flood of tiny frames is bounded as well as a few large ones.
const FRAME_OVERHEAD: usize = 64;

/// Frames written before one flush, so many small frames cost one flush and a large backlog
/// is still released in steps.
const BATCH_BYTES: usize = 256 * 1024;

/// Bytes a connection holds for its client: enqueued, not yet flushed to the socket, each
/// frame counted with [`FRAME_OVERHEAD`].
#[derive(Debug, Default)]
pub(super) struct OutboundGauge {
    queued: AtomicUsize,
    peak: AtomicUsize,
    /// Set when the connection gives up on the client: queued frames are dropped unsent.
    discarding: AtomicBool,
}

impl OutboundGauge {
    /// Bytes enqueued and not yet flushed.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The most bytes ever enqueued at once.
    pub(super) fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    fn release(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A frame that would take the queue past its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Overflow {
    /// Bytes already queued.
    pub(super) queued: usize,
    /// Size of the refused frame, overhead included.
    pub(super) frame: usize,
    /// The bound.
    pub(super) limit: usize,
}

/// Why a frame was not enqueued.
#[derive(Debug)]
pub(super) enum Refused {
    /// The client has left too much unread.
    Overflow(Overflow),
    /// The writer is gone: the transport failed.
    WriterGone,
}

enum Item {
    Frame { message: WsMessage, bytes: usize },
    Close(CloseFrame),
}

type Sink<S> = SplitSink<WebSocketStream<S>, WsMessage>;

/// The connection's handle on its writer task.
pub(super) struct Outbound<S> {
    items: Option<mpsc::UnboundedSender<Item>>,
    gauge: Arc<OutboundGauge>,
    limit: usize,
    abandon: Option<oneshot::Sender<()>>,
    writer: JoinHandle<Sink<S>>,
}

impl<S> Outbound<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Start the writer task on `sink`, allowing `limit` unflushed bytes.
    pub(super) fn start(sink: Sink<S>, limit: usize, gauge: Arc<OutboundGauge>) -> Self {
        let (items, queue) = mpsc::unbounded_channel();
        let (abandon, abandoned) = oneshot::channel();
        let writer = tokio::spawn(write_loop(sink, queue, Arc::clone(&gauge), abandoned));
        Outbound {
            items: Some(items),
            gauge,
            limit,
            abandon: Some(abandon),
            writer,
        }
    }

    /// Enqueue a data frame behind the ones already queued.
    pub(super) fn send(&self, message: WsMessage) -> Result<(), Refused> {
        let Some(items) = &self.items else {
            return Err(Refused::WriterGone);
        };
        let bytes = message.len() + FRAME_OVERHEAD;
        // Only this task adds; the writer only subtracts, so the check cannot be outrun.
        let queued = self.gauge.queued();
        if queued.saturating_add(bytes) > self.limit {
            return Err(Refused::Overflow(Overflow {
                queued,
                frame: bytes,
                limit: self.limit,
            }));
        }
        let now = self.gauge.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.gauge.peak.fetch_max(now, Ordering::AcqRel);
        items.send(Item::Frame { message, bytes }).map_err(|_| {
            self.gauge.release(bytes);
            Refused::WriterGone
        })
    }

    /// Drop every queued frame unsent (a client that stopped reading will not get them).
    pub(super) fn discard_pending(&self) {
        self.gauge.discarding.store(true, Ordering::Release);
    }

    /// Send a close frame after the queued frames; nothing can be enqueued after it.
    pub(super) fn close(&mut self, frame: CloseFrame) {
        if let Some(items) = self.items.take() {
            let _ = items.send(Item::Close(frame));
        }
    }

    /// Wait up to `within` for the writer to write what it was given, then stop it. Returns
    /// the sink if the writer stopped cleanly, and whether it finished on its own.
    pub(super) async fn finish(mut self, within: Duration) -> (Option<Sink<S>>, bool) {
        self.items = None;
        let mut writer = self.writer;
        if let Ok(joined) = tokio::time::timeout(within, &mut writer).await {
            return (joined.ok(), true);
        }
        if let Some(abandon) = self.abandon.take() {
            let _ = abandon.send(());
        }
        (writer.await.ok(), false)
    }
}

async fn write_loop<S>(
    mut sink: Sink<S>,
    mut queue: mpsc::UnboundedReceiver<Item>,
    gauge: Arc<OutboundGauge>,
    abandoned: oneshot::Receiver<()>,
) -> Sink<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        biased;
        _ = abandoned => {}
        () = pump(&mut sink, &mut queue, &gauge) => {}
    }
    // Frames never written no longer count.
    queue.close();
    while let Ok(item) = queue.try_recv() {
        if let Item::Frame { bytes, .. } = item {
            gauge.release(bytes);
        }
    }
    sink
}

/// Write queued frames in batches until the queue ends, a close frame is sent or the
/// transport fails.
async fn pump<S>(
    sink: &mut Sink<S>,
    queue: &mut mpsc::UnboundedReceiver<Item>,
    gauge: &OutboundGauge,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let Some(first) = queue.recv().await else {
            let _ = sink.flush().await;
            return;
        };
        let mut batch = 0;
        let mut item = Some(first);
        while let Some(current) = item.take() {
            match current {
                Item::Frame { message, bytes } => {
                    batch += bytes;
                    let discard = gauge.discarding.load(Ordering::Acquire);
                    if !discard && sink.feed(message).await.is_err() {
                        gauge.release(batch);
                        return;
                    }
                }
                Item::Close(frame) => {
                    // Written after the batch so far; the close ends the writer.
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    gauge.release(batch);
                    return;
                }
            }
            if batch < BATCH_BYTES {
                item = queue.try_recv().ok();
            }
        }
        let flushed = sink.flush().await;
        gauge.release(batch);
        if flushed.is_err() {
            return;
        }
    }
}
