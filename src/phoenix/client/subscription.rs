//! A subscription (one holder of one topic) and the push handle.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;

use crate::codec::{Payload, Reply};
use crate::engine::{JoinRef, SubscriberId};
use crate::phoenix::client::inbox::{InboxReceiver, Received};
use crate::phoenix::client::ClientInner;
use crate::session::presence::PresenceList;
use crate::session::{
    ChannelMessage, CloseReason, PushError, PushOptions, PushTarget, SubscribeError,
    SubscriptionEvent, SubscriptionState,
};

/// One subscriber of a topic, made by [`Client::subscribe`](super::Client::subscribe).
///
/// It is a [`Stream`] of [`SubscriptionEvent`]s — joined, lost, rejoining,
/// failed, closed, lagged, presence, and the topic's messages, in order —
/// that ends after `Failed` or `Closed`. [`Subscription::recv`] yields the
/// messages alone. Its state is observable with [`Subscription::state`].
/// Dropping it unsubscribes: the channel is left when its last holder is
/// gone (after the drain grace). Two subscriptions of one topic share one
/// channel and one does not end it for the other.
pub struct Subscription {
    inner: Arc<ClientInner>,
    topic: Arc<str>,
    id: SubscriberId,
    events: InboxReceiver<SubscriptionEvent>,
    state: watch::Receiver<SubscriptionState>,
    presence: Option<watch::Receiver<PresenceList>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("state", &self.state())
            .field("queued", &self.events.len())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        inner: Arc<ClientInner>,
        topic: Arc<str>,
        id: SubscriberId,
        events: InboxReceiver<SubscriptionEvent>,
        state: watch::Receiver<SubscriptionState>,
    ) -> Self {
        Subscription {
            inner,
            topic,
            id,
            events,
            state,
            presence: None,
        }
    }

    /// The subscription with its presence list's watch.
    pub(crate) fn with_presence(mut self, presence: Option<watch::Receiver<PresenceList>>) -> Self {
        self.presence = presence;
        self
    }

    /// Who is on the topic now, for a subscription made with
    /// [`SubscribeOptions::with_presence`](crate::session::SubscribeOptions::with_presence)
    /// (`None` otherwise): the list as of the latest
    /// [`PresenceEvent::Sync`](crate::session::presence::PresenceEvent::Sync)
    /// the client handled, which may be ahead of the events this stream has
    /// yielded so far. Cheap: a shared snapshot, no round trip to the
    /// client's task. Empty and not [synced](PresenceList::is_synced) until
    /// the first `presence_state` of the current join.
    pub fn presence(&self) -> Option<PresenceList> {
        self.presence.as_ref().map(|watch| watch.borrow().clone())
    }

    /// A receiver that wakes on every presence sync (`None` for a
    /// subscription without presence): for a task that renders the list.
    pub fn presence_watch(&self) -> Option<watch::Receiver<PresenceList>> {
        self.presence.clone()
    }

    /// The topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// This subscriber's id (unique within its client).
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// Where the subscription stands now (updated with every event). Once
    /// the client's task has ended, a subscription that was not already
    /// closed says [`SubscriptionState::Closed`].
    pub fn state(&self) -> SubscriptionState {
        let state = self.state.borrow().clone();
        if !state.is_terminal() && self.state.has_changed().is_err() {
            return SubscriptionState::Closed(self.inner.ended());
        }
        state
    }

    /// A receiver of the subscription's state changes.
    pub fn state_watch(&self) -> watch::Receiver<SubscriptionState> {
        self.state.clone()
    }

    /// Waits until the topic is active and returns its join_ref; fails when
    /// the topic failed (after its retries) or the subscription closed. Wrap
    /// it in [`tokio::time::timeout`] to bound the wait.
    pub async fn wait_active(&mut self) -> Result<JoinRef, SubscribeError> {
        let topic = Arc::clone(&self.topic);
        let state = match self
            .state
            .wait_for(|s| s.is_active() || s.is_terminal())
            .await
        {
            Ok(state) => state.clone(),
            Err(_) => SubscriptionState::Closed(self.inner.ended()),
        };
        // The last state of a task that died says nothing about now.
        let state = if !state.is_terminal() && self.state.has_changed().is_err() {
            SubscriptionState::Closed(self.inner.ended())
        } else {
            state
        };
        match state {
            SubscriptionState::Failed { reason, detail } => Err(SubscribeError::Failed {
                topic,
                reason,
                detail,
            }),
            SubscriptionState::Closed(reason) => Err(SubscribeError::Closed { reason }),
            active => active.join_ref().ok_or(SubscribeError::Closed {
                reason: CloseReason::Stopped,
            }),
        }
    }

    /// The next event (messages included), or `None` once the subscription
    /// ended and everything before was read.
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The next message, skipping lifecycle events, or `None` once the
    /// subscription ended ([`Subscription::state`] says why).
    pub async fn recv(&mut self) -> Option<ChannelMessage> {
        loop {
            match self.next_event().await? {
                SubscriptionEvent::Message(message) => return Some(message),
                _ => continue,
            }
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SubscriptionEvent>> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(Received::Item(event))) => Poll::Ready(Some(event)),
            Poll::Ready(Some(Received::Lagged { messages, bytes })) => {
                Poll::Ready(Some(SubscriptionEvent::Lagged { messages, bytes }))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Messages dropped because this subscription had too many unread (see
    /// [`ClientConfig::with_subscriber_budget`](super::ClientConfig::with_subscriber_budget)).
    pub fn missed(&self) -> u64 {
        self.events.missed()
    }

    /// Bytes of messages waiting to be read.
    pub fn queued_bytes(&self) -> usize {
        self.events.bytes()
    }

    /// Sends `event` with `payload` (a JSON object, or bytes for a binary
    /// frame) and waits for the reply, within the client's push timeout.
    ///
    /// While the topic is not active the push waits in the topic's buffer;
    /// it is sent, stamped with the active incarnation's join_ref, once the
    /// topic is active. An `error` reply is [`PushError::Rejected`].
    pub async fn push(&self, event: &str, payload: impl Into<Payload>) -> Result<Reply, PushError> {
        self.push_with_timeout(event, payload, self.inner.push_timeout)
            .await
    }

    /// [`Subscription::push`] with its own timeout, counted from now.
    pub async fn push_with_timeout(
        &self,
        event: &str,
        payload: impl Into<Payload>,
        timeout: Duration,
    ) -> Result<Reply, PushError> {
        self.ended()?;
        let options = PushOptions {
            timeout: Some(timeout),
            ..PushOptions::default()
        };
        self.inner
            .push(
                PushTarget::Subscription(self.id),
                event,
                payload.into(),
                options,
            )
            .await
    }

    /// The error for a push on a subscription that ended, if it did.
    fn ended(&self) -> Result<(), PushError> {
        match self.state() {
            SubscriptionState::Failed { reason, detail } => Err(PushError::TopicFailed {
                topic: Arc::clone(&self.topic),
                reason,
                detail,
            }),
            SubscriptionState::Closed(
                reason @ (CloseReason::CloseAll
                | CloseReason::Unsubscribed
                | CloseReason::TopicFailed
                | CloseReason::RoomClosed),
            ) => Err(PushError::Closed { reason }),
            SubscriptionState::Closed(reason) => Err(PushError::Disconnected { reason }),
            _ => Ok(()),
        }
    }

    /// Sends `event` without waiting for a reply (buffered until the topic
    /// is active, within the push timeout). Returns once the client took it.
    pub async fn cast(&self, event: &str, payload: impl Into<Payload>) -> Result<(), PushError> {
        self.ended()?;
        self.inner
            .cast(PushTarget::Subscription(self.id), event, payload.into())
            .await
    }

    /// A cloneable push handle for this subscription's topic, usable while
    /// another task reads the stream.
    pub fn pusher(&self) -> Pusher {
        Pusher::new(Arc::downgrade(&self.inner)).for_target(PushTarget::Subscription(self.id))
    }
}

impl Stream for Subscription {
    type Item = SubscriptionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner
            .send(crate::phoenix::client::driver::Command::Unsubscribe { id: self.id });
    }
}

/// Pushes and casts to one topic from any task: cheap to clone, and it does
/// not keep the client alive (once the client is gone, pushes fail with
/// [`PushError::Disconnected`]).
#[derive(Clone)]
pub struct Pusher {
    inner: Weak<ClientInner>,
    target: Option<PushTarget>,
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("target", &self.target)
            .finish()
    }
}

impl Pusher {
    pub(crate) fn new(inner: Weak<ClientInner>) -> Pusher {
        Pusher {
            inner,
            target: None,
        }
    }

    pub(crate) fn for_target(mut self, target: PushTarget) -> Pusher {
        self.target = Some(target);
        self
    }

    pub(crate) fn for_topic(self, topic: Arc<str>) -> Pusher {
        self.for_target(PushTarget::Topic(topic))
    }

    fn parts(&self) -> Result<(Arc<ClientInner>, PushTarget), PushError> {
        let gone = PushError::Disconnected {
            reason: CloseReason::Stopped,
        };
        let inner = self.inner.upgrade().ok_or(gone.clone())?;
        let target = self.target.clone().ok_or(gone)?;
        Ok((inner, target))
    }

    /// Sends `event` and waits for the reply, within the client's push
    /// timeout.
    pub async fn push(&self, event: &str, payload: impl Into<Payload>) -> Result<Reply, PushError> {
        let (inner, target) = self.parts()?;
        let options = PushOptions {
            timeout: Some(inner.push_timeout),
            ..PushOptions::default()
        };
        inner.push(target, event, payload.into(), options).await
    }

    /// Sends `event` without waiting for a reply.
    pub async fn cast(&self, event: &str, payload: impl Into<Payload>) -> Result<(), PushError> {
        let (inner, target) = self.parts()?;
        inner.cast(target, event, payload.into()).await
    }

    /// A push that goes out while the topic settles (see
    /// [`SettleContext::push`](super::SettleContext::push)).
    pub(crate) async fn push_settling(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<Reply, PushError> {
        let (inner, target) = self.parts()?;
        let options = PushOptions {
            timeout: Some(inner.push_timeout),
            settling: true,
        };
        inner.push(target, event, payload, options).await
    }
}
