//! Pluggable per-incarnation resources: what the reference design calls
//! resource managers (a CRDT document, a presence cache, a buffer).
//!
//! The engine decides when resources are created, when they start settling,
//! when settling is abandoned and when they are destroyed; the client calls a
//! [`ResourceManager`] for each of those effects and feeds settling results
//! back to the engine.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::codec::{Payload, Reply};
use crate::engine::JoinRef;
use crate::phoenix::client::Pusher;
use crate::session::{ChannelMessage, PushError};

/// The future [`ResourceManager::wait_for_settled`] returns.
pub type SettleFuture = Pin<Box<dyn Future<Output = Result<(), SettleError>> + Send + 'static>>;

/// Settling failed; the incarnation is ended and retried like a failed join.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("settling failed{}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
pub struct SettleError {
    reason: Option<Arc<str>>,
}

impl SettleError {
    /// A failure with a reason (reported to subscribers if the topic gives up).
    pub fn new(reason: impl Into<Arc<str>>) -> Self {
        SettleError {
            reason: Some(reason.into()),
        }
    }

    /// A failure without a reason.
    pub fn unexplained() -> Self {
        SettleError { reason: None }
    }

    /// The reason, if one was given.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    pub(crate) fn into_reason(self) -> Option<Arc<str>> {
        self.reason
    }
}

/// The resources of each channel incarnation. Every method has a default
/// that does nothing, so an implementation picks what it needs.
///
/// Calls come from the client's task, in the order the engine decided them:
/// for one incarnation (`join_ref`), `create` once, then possibly
/// `wait_for_settled` (when settling is configured), then `destroy` exactly
/// once. Keep `create`, `destroy` and `on_message` quick; do slow work in the
/// settling future or in your own tasks.
///
/// ```
/// use std::sync::Arc;
/// use channel_registry::engine::JoinRef;
/// use channel_registry::phoenix::{ChannelMessage, ResourceManager};
///
/// /// Counts live documents.
/// #[derive(Default)]
/// struct Docs(std::sync::atomic::AtomicUsize);
///
/// impl ResourceManager for Docs {
///     fn create(&self, _topic: &Arc<str>, _join_ref: JoinRef) {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///     }
///     fn destroy(&self, _topic: &Arc<str>, _join_ref: JoinRef) {
///         self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
///     }
///     fn on_message(&self, _join_ref: JoinRef, message: &ChannelMessage) {
///         // apply message.payload to the document of this incarnation
///         let _ = message;
///     }
/// }
/// ```
pub trait ResourceManager: Send + Sync + 'static {
    /// Create the resources of a new incarnation (its join was just sent).
    fn create(&self, _topic: &Arc<str>, _join_ref: JoinRef) {}

    /// Destroy the resources of an incarnation. Called exactly once per
    /// `create`; nothing refers to them afterwards.
    fn destroy(&self, _topic: &Arc<str>, _join_ref: JoinRef) {}

    /// A message of the topic's current incarnation `join_ref` (broadcasts
    /// included), from its join on: while it settles too, before subscribers
    /// see anything. This is how a resource learns about its first sync.
    fn on_message(&self, _join_ref: JoinRef, _message: &ChannelMessage) {}

    /// Resolves when the resources of `join_ref` are ready (first sync), or
    /// fails. Called only for topics that settle. The future is dropped
    /// (cancelled) when the engine abandons settling: the incarnation ended,
    /// or the settle timeout passed. The default is ready at once.
    fn wait_for_settled(&self, _topic: Arc<str>, _join_ref: JoinRef) -> SettleFuture {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Like [`ResourceManager::wait_for_settled`], with a [`SettleContext`]
    /// that can push while the topic settles (a handshake where the client
    /// speaks first, such as Yjs sync step 1). The default calls
    /// `wait_for_settled`.
    fn settle(&self, context: SettleContext) -> SettleFuture {
        self.wait_for_settled(context.topic, context.join_ref)
    }
}

/// What a settling incarnation's resources get: the topic, the incarnation,
/// and pushes that go out during settling, stamped with its join_ref.
#[derive(Clone, Debug)]
pub struct SettleContext {
    /// The topic.
    pub topic: Arc<str>,
    /// The incarnation that settles.
    pub join_ref: JoinRef,
    pub(crate) pusher: Pusher,
}

impl SettleContext {
    /// Pushes `event` as part of settling: it goes out now, while the topic
    /// settles, and its reply resolves the returned future.
    pub async fn push(&self, event: &str, payload: impl Into<Payload>) -> Result<Reply, PushError> {
        self.pusher.push_settling(event, payload.into()).await
    }
}

/// No resources: every method does nothing, settling completes at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResources;

impl ResourceManager for NoResources {}

enum Slot {
    /// The event arrived (before or after settling started).
    Seen,
    /// Settling waits for the event.
    Waiting(oneshot::Sender<()>),
}

/// Settles each incarnation when its first message with a given event
/// arrives, e.g. the `sync` a server pushes once a document is loaded: with
/// settling on, subscribers and rooms see a topic only once it has data, so
/// a version switch never shows an empty document.
///
/// ```
/// use channel_registry::engine::Config;
/// use channel_registry::phoenix::{ClientConfig, SettleOnEvent};
///
/// let mut engine = Config::default();
/// engine.settling = true;
/// let config = ClientConfig::default()
///     .with_engine(engine)
///     .with_resources(SettleOnEvent::new("sync"));
/// # let _ = config;
/// ```
pub struct SettleOnEvent {
    event: String,
    slots: Mutex<HashMap<JoinRef, Slot>>,
}

impl std::fmt::Debug for SettleOnEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettleOnEvent")
            .field("event", &self.event)
            .field("incarnations", &self.slots().len())
            .finish()
    }
}

impl SettleOnEvent {
    /// Settle on the first message whose event is `event`.
    pub fn new(event: impl Into<String>) -> Self {
        SettleOnEvent {
            event: event.into(),
            slots: Mutex::default(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<JoinRef, Slot>> {
        // A panic elsewhere cannot leave the map inconsistent: keep going.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ResourceManager for SettleOnEvent {
    fn destroy(&self, _topic: &Arc<str>, join_ref: JoinRef) {
        self.slots().remove(&join_ref);
    }

    fn on_message(&self, join_ref: JoinRef, message: &ChannelMessage) {
        if message.event() != self.event {
            return;
        }
        let mut slots = self.slots();
        match slots.entry(join_ref) {
            Entry::Vacant(vacant) => {
                vacant.insert(Slot::Seen);
            }
            Entry::Occupied(mut occupied) => {
                if let Slot::Waiting(_) = occupied.get() {
                    if let Slot::Waiting(waiter) = occupied.insert(Slot::Seen) {
                        let _ = waiter.send(());
                    }
                }
            }
        }
    }

    fn wait_for_settled(&self, _topic: Arc<str>, join_ref: JoinRef) -> SettleFuture {
        let mut slots = self.slots();
        if let Some(Slot::Seen) = slots.get(&join_ref) {
            return Box::pin(std::future::ready(Ok(())));
        }
        let (tx, rx) = oneshot::channel();
        slots.insert(join_ref, Slot::Waiting(tx));
        Box::pin(async move {
            rx.await
                .map_err(|_| SettleError::new("the incarnation ended before its first sync"))
        })
    }
}
