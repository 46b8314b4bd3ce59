//! A subscription: one holder of one topic.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::engine::{JoinRef, SubscriberId};
use crate::phoenix::client::driver::{Command, PushTarget};
use crate::phoenix::client::error::{PushError, SubscribeError};
use crate::phoenix::client::inbox::InboxReceiver;
use crate::phoenix::client::push::NewPush;
use crate::phoenix::client::{json_type, ChannelMessage, ClientInner, TopicState};
use crate::phoenix::codec::{EncodeError, Payload, Reply};

/// One subscriber of a topic, made by [`Client::subscribe`](super::Client::subscribe).
///
/// It is a [`Stream`] of the messages of the topic's current active
/// incarnation (and [`Subscription::recv`] for the same without
/// `StreamExt`). Its state is observable with [`Subscription::state`] and
/// [`Subscription::state_watch`]. Dropping it unsubscribes: the channel is
/// left when its last holder is gone (after the drain grace). Every
/// subscription is a holder of its own, so two subscriptions of one topic
/// share one channel and one does not end it for the other.
///
/// The stream ends when the topic is no longer managed (`close_all`,
/// `disconnect`, or the client shut down).
pub struct Subscription {
    inner: Arc<ClientInner>,
    topic: Arc<str>,
    id: SubscriberId,
    messages: InboxReceiver<ChannelMessage>,
    state: watch::Receiver<TopicState>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("state", &*self.state.borrow())
            .field("queued", &self.messages.len())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        inner: Arc<ClientInner>,
        topic: Arc<str>,
        id: SubscriberId,
        messages: InboxReceiver<ChannelMessage>,
        state: watch::Receiver<TopicState>,
    ) -> Self {
        Subscription {
            inner,
            topic,
            id,
            messages,
            state,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// This subscriber's id (unique within its client).
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// Where the topic stands now.
    pub fn state(&self) -> TopicState {
        self.state.borrow().clone()
    }

    /// A receiver of the topic's state changes (phase, retries, failure).
    pub fn state_watch(&self) -> watch::Receiver<TopicState> {
        self.state.clone()
    }

    /// Waits until the topic is active and returns its join_ref; fails when
    /// the topic is reported failed (after its retries) or closed. Wrap it in
    /// [`tokio::time::timeout`] to bound the wait.
    pub async fn wait_active(&mut self) -> Result<JoinRef, SubscribeError> {
        let topic = Arc::clone(&self.topic);
        let state = self
            .state
            .wait_for(|s| s.is_active() || s.failure().is_some() || s.is_closed())
            .await
            .map_err(|_| SubscribeError::Closed)?;
        if let Some(reason) = state.failure() {
            return Err(SubscribeError::Failed {
                topic,
                reason: reason.clone(),
            });
        }
        state.join_ref().ok_or(SubscribeError::Closed)
    }

    /// The next message, or `None` once the topic is no longer managed.
    pub async fn recv(&mut self) -> Option<ChannelMessage> {
        std::future::poll_fn(|cx| self.messages.poll_recv(cx)).await
    }

    /// Messages dropped because this subscription had too many unread (see
    /// [`ClientConfig::with_subscriber_capacity`](super::ClientConfig::with_subscriber_capacity)).
    pub fn missed(&self) -> u64 {
        self.messages.missed()
    }

    /// Sends `event` with `payload` (a JSON object, or bytes for a binary
    /// frame) and waits for the reply, within the client's push timeout.
    ///
    /// While the topic is not active the push waits in the topic's buffer;
    /// it is sent, stamped with the active incarnation's join_ref, once the
    /// topic is active. An `error` reply is [`PushError::Rejected`]; any
    /// other status is returned as the `Reply`. Dropping the future before
    /// the push is sent cancels it.
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
        push(
            &self.inner,
            PushTarget::Topic(Arc::clone(&self.topic)),
            event,
            payload.into(),
            timeout,
        )
        .await
    }
}

/// Hands a push to the client's task and waits for its outcome.
pub(crate) async fn push(
    inner: &ClientInner,
    target: PushTarget,
    event: &str,
    payload: Payload,
    timeout: Duration,
) -> Result<Reply, PushError> {
    if let Payload::Json(value) = &payload {
        if !value.is_object() {
            return Err(PushError::Encode(EncodeError::PayloadNotObject {
                found: json_type(value),
            }));
        }
    }
    let (reply, answer) = oneshot::channel();
    let now = Instant::now();
    let deadline = now.checked_add(timeout).unwrap_or_else(|| far_future(now));
    let sent = inner.send(Command::Push {
        target,
        push: NewPush {
            event: event.to_owned(),
            payload,
            deadline,
            timeout,
            reply,
        },
    });
    if !sent {
        return Err(PushError::Closed);
    }
    answer.await.unwrap_or(Err(PushError::Closed))
}

fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(60 * 60 * 24 * 365)
}

impl Stream for Subscription {
    type Item = ChannelMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChannelMessage>> {
        self.get_mut().messages.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner.send(Command::Unsubscribe {
            topic: Arc::clone(&self.topic),
            id: self.id,
        });
    }
}
