//! Rooms: a handle that follows one topic at a time and switches versions
//! without flicker.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{oneshot, watch};

use crate::codec::{Payload, Reply};
use crate::engine::{RoomId, Switched};
use crate::phoenix::client::driver::Command;
use crate::phoenix::client::inbox::{InboxReceiver, Received};
use crate::phoenix::client::{ClientInner, Pusher};
use crate::session::{
    JoinParams, PushError, PushOptions, PushTarget, RoomEvent, RoomState, ShownStatus,
    SubscribeError,
};

/// A handle that follows one topic at a time, made by
/// [`Client::room`](super::Client::room): switch it from `doc:42:v1` to
/// `doc:42:v2` and it keeps showing v1 — its messages keep coming — until v2
/// is active; then it yields [`RoomEvent::Shows`] and v2's messages, and v1
/// is released (left after the drain grace unless someone else holds it).
/// Switching again before that abandons the pending topic at once.
///
/// It is a [`Stream`] of [`RoomEvent`]s that ends once the room is closed;
/// the shown topic's losses, rejoins and failures are events too, and
/// [`Room::state`] is accurate after each. Dropping it releases its topics.
///
/// ```no_run
/// # async fn run(client: channel_registry::phoenix::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use channel_registry::phoenix::RoomEvent;
/// use channel_registry::session::JoinParams;
/// use futures_util::StreamExt;
///
/// let mut doc = client.room("editor");
/// doc.switch("doc:42:v1", JoinParams::none()).await?;
/// doc.wait_shows("doc:42:v1").await?;
/// doc.switch("doc:42:v2", JoinParams::none()).await?; // still shows v1
/// while let Some(event) = doc.next().await {
///     match event {
///         RoomEvent::Shows { topic, .. } => println!("now showing {topic}"),
///         RoomEvent::Message(m) => println!("{}: {}", m.topic(), m.event()),
///         RoomEvent::ShownLost { topic, .. } => println!("{topic} lost, rejoining"),
///         RoomEvent::ShownRejoined { topic, .. } => println!("{topic} back: resync"),
///         RoomEvent::SwitchFailed { topic, reason, .. } => println!("{topic} failed: {reason:?}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Room {
    inner: Arc<ClientInner>,
    id: RoomId,
    name: Arc<str>,
    events: InboxReceiver<RoomEvent>,
    state: watch::Receiver<RoomState>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}

impl Room {
    pub(crate) fn new(
        inner: Arc<ClientInner>,
        id: RoomId,
        name: Arc<str>,
        events: InboxReceiver<RoomEvent>,
        state: watch::Receiver<RoomState>,
    ) -> Self {
        Room {
            inner,
            id,
            name,
            events,
            state,
        }
    }

    /// The room's id (unique within its client).
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Switches to `topic`. Returns once the registry took the request:
    /// [`Switched::Pending`] while the topic joins (the room keeps showing
    /// its current topic), [`Switched::Shown`] when it was already active.
    pub async fn switch(
        &self,
        topic: &str,
        params: impl Into<JoinParams>,
    ) -> Result<Switched, SubscribeError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.inner.send(Command::Switch {
            room: self.id,
            topic: Arc::from(topic),
            params: params.into(),
            reply,
        });
        let gone = || SubscribeError::Closed {
            reason: self.inner.ended(),
        };
        if !sent {
            return Err(gone());
        }
        answer.await.map_err(|_| gone())?
    }

    /// What the room shows and waits for now. Once the client's task has
    /// ended, the room says it is closed.
    pub fn state(&self) -> RoomState {
        let mut state = self.state.borrow().clone();
        if state.closed.is_none() && self.state.has_changed().is_err() {
            state.closed = Some(self.inner.ended());
        }
        state
    }

    /// A receiver of the room's state changes.
    pub fn state_watch(&self) -> watch::Receiver<RoomState> {
        self.state.clone()
    }

    /// Waits until the room shows `topic` (active); fails if the switch to it
    /// failed or the room was closed.
    pub async fn wait_shows(&mut self, topic: &str) -> Result<(), SubscribeError> {
        let shows = |s: &RoomState| {
            s.shown.as_deref() == Some(topic) && s.shown_status == ShownStatus::Live
        };
        let state = match self
            .state
            .wait_for(|s| {
                shows(s)
                    || s.closed.is_some()
                    || s.failed.as_ref().is_some_and(|(t, _)| &**t == topic)
            })
            .await
        {
            Ok(state) => state.clone(),
            Err(_) => RoomState {
                closed: Some(self.inner.ended()),
                ..RoomState::default()
            },
        };
        // The last state of a task that died says nothing about now.
        let state = if state.closed.is_none() && self.state.has_changed().is_err() {
            RoomState {
                closed: Some(self.inner.ended()),
                ..RoomState::default()
            }
        } else {
            state
        };
        if shows(&state) {
            return Ok(());
        }
        match (&state.failed, state.closed) {
            (Some((failed, reason)), _) if &**failed == topic => Err(SubscribeError::Failed {
                topic: Arc::clone(failed),
                reason: *reason,
                detail: None,
            }),
            (_, Some(reason)) => Err(SubscribeError::Closed { reason }),
            _ => Err(SubscribeError::Closed {
                reason: crate::session::CloseReason::Stopped,
            }),
        }
    }

    /// The next event, or `None` once the room is closed and everything
    /// before was read.
    pub async fn recv(&mut self) -> Option<RoomEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(Received::Item(event))) => Poll::Ready(Some(event)),
            Poll::Ready(Some(Received::Lagged { messages, bytes })) => {
                Poll::Ready(Some(RoomEvent::Lagged { messages, bytes }))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Messages dropped because this room had too many unread.
    pub fn missed(&self) -> u64 {
        self.events.missed()
    }

    /// Pushes to the topic the room shows when the push reaches the client's
    /// task ([`PushError::NothingShown`] before the first switch completes),
    /// within the client's push timeout.
    pub async fn push(&self, event: &str, payload: impl Into<Payload>) -> Result<Reply, PushError> {
        self.push_with_timeout(event, payload, self.inner.push_timeout)
            .await
    }

    /// [`Room::push`] with its own timeout.
    pub async fn push_with_timeout(
        &self,
        event: &str,
        payload: impl Into<Payload>,
        timeout: Duration,
    ) -> Result<Reply, PushError> {
        let options = PushOptions {
            timeout: Some(timeout),
            ..PushOptions::default()
        };
        self.inner
            .push(PushTarget::Room(self.id), event, payload.into(), options)
            .await
    }

    /// A cloneable push handle for whatever this room shows.
    pub fn pusher(&self) -> Pusher {
        Pusher::new(Arc::downgrade(&self.inner)).for_target(PushTarget::Room(self.id))
    }
}

impl Stream for Room {
    type Item = RoomEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.inner.send(Command::CloseRoom { room: self.id });
    }
}
