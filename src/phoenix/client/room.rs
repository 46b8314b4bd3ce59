//! Rooms: a handle that follows one topic at a time and switches versions
//! without flicker.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{oneshot, watch};

use crate::engine::{FailReason, RoomId, Switched};
use crate::phoenix::client::driver::{Command, PushTarget};
use crate::phoenix::client::error::{PushError, SubscribeError};
use crate::phoenix::client::inbox::InboxReceiver;
use crate::phoenix::client::subscription::push;
use crate::phoenix::client::{ChannelMessage, ClientInner, JoinParams};
use crate::phoenix::codec::{Payload, Reply};

/// What a room shows and waits for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomState {
    /// The topic shown (none before the first switch completes).
    pub shown: Option<Arc<str>>,
    /// The topic being switched to.
    pub pending: Option<Arc<str>>,
    /// The last switch that failed, with its error, until the next switch or
    /// the next topic shown.
    pub failed: Option<(Arc<str>, FailReason)>,
    /// The room was closed (`close_all`, `disconnect`, or the client shut
    /// down).
    pub closed: bool,
}

/// What a room yields, in order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// A message of the topic the room shows.
    Message(ChannelMessage),
    /// The room shows `topic` from now on: its switch completed, the topic is
    /// active. Every later message is of this topic.
    Shows {
        /// The topic now shown.
        topic: Arc<str>,
    },
    /// The topic the room was switching to failed; the room keeps showing
    /// what it showed.
    SwitchFailed {
        /// The topic that failed.
        topic: Arc<str>,
        /// The last error.
        reason: FailReason,
    },
}

/// A handle that follows one topic at a time, made by
/// [`Client::room`](super::Client::room): switch it from `doc:42:v1` to
/// `doc:42:v2` and it keeps showing v1 — its messages keep coming — until v2
/// is active; then it yields [`RoomEvent::Shows`] and v2's messages, and v1
/// is released (left after the drain grace unless someone else holds it).
/// Switching again before that abandons the pending topic at once.
///
/// It is a [`Stream`] of [`RoomEvent`]s; dropping it releases its topics.
///
/// ```no_run
/// # async fn run(client: channel_registry::phoenix::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use channel_registry::phoenix::{JoinParams, RoomEvent};
/// use futures_util::StreamExt;
///
/// let mut doc = client.room("editor");
/// doc.switch("doc:42:v1", JoinParams::none()).await?;
/// doc.wait_shows("doc:42:v1").await?;
/// doc.switch("doc:42:v2", JoinParams::none()).await?; // still shows v1
/// while let Some(event) = doc.next().await {
///     match event {
///         RoomEvent::Shows { topic } => println!("now showing {topic}"),
///         RoomEvent::Message(m) => println!("{}: {}", m.topic, m.event),
///         RoomEvent::SwitchFailed { topic, reason } => println!("{topic} failed: {reason:?}"),
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
            .field("state", &*self.state.borrow())
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
        let params = params.into();
        let options = params.options()?;
        let (reply, answer) = oneshot::channel();
        let sent = self.inner.send(Command::Switch {
            room: self.id,
            topic: Arc::from(topic),
            params,
            options,
            reply,
        });
        if !sent {
            return Err(SubscribeError::Closed);
        }
        answer.await.map_err(|_| SubscribeError::Closed)?
    }

    /// What the room shows and waits for now.
    pub fn state(&self) -> RoomState {
        self.state.borrow().clone()
    }

    /// A receiver of the room's state changes.
    pub fn state_watch(&self) -> watch::Receiver<RoomState> {
        self.state.clone()
    }

    /// Waits until the room shows `topic`; fails if the switch to it failed
    /// or the room was closed.
    pub async fn wait_shows(&mut self, topic: &str) -> Result<(), SubscribeError> {
        let state = self
            .state
            .wait_for(|s| {
                s.shown.as_deref() == Some(topic)
                    || s.closed
                    || s.failed.as_ref().is_some_and(|(t, _)| &**t == topic)
            })
            .await
            .map_err(|_| SubscribeError::Closed)?;
        if state.shown.as_deref() == Some(topic) {
            return Ok(());
        }
        match &state.failed {
            Some((failed, reason)) if &**failed == topic => Err(SubscribeError::Failed {
                topic: Arc::clone(failed),
                reason: reason.clone(),
            }),
            _ => Err(SubscribeError::Closed),
        }
    }

    /// The next event, or `None` once the room is closed.
    pub async fn recv(&mut self) -> Option<RoomEvent> {
        std::future::poll_fn(|cx| self.events.poll_recv(cx)).await
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
        push(
            &self.inner,
            PushTarget::Room(self.id),
            event,
            payload.into(),
            timeout,
        )
        .await
    }
}

impl Stream for Room {
    type Item = RoomEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        self.get_mut().events.poll_recv(cx)
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.inner.send(Command::CloseRoom { room: self.id });
    }
}
