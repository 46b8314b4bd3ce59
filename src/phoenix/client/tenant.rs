//! A view of a [`Client`] bound to one tenant: every topic it subscribes,
//! switches to or pushes on is that tenant's
//! (`tenant:TENANT_ID:TYPE:ENTITY_TYPE:ENTITY_ID`, see [`crate::topic`]).
//!
//! Several tenants share one socket this way without sharing anything else:
//! a topic is named with its tenant before it reaches the session, so a
//! subscription of one tenant is a subscriber of that tenant's topic only,
//! and the session delivers a message only to subscribers of its exact
//! topic. A name of another tenant is refused before anything is sent.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;

use crate::codec::{Payload, Reply};
use crate::engine::{RoomId, Switched};
use crate::phoenix::client::{Client, Pusher, Room, Subscription};
use crate::session::{
    JoinParams, PushError, RoomEvent, RoomState, SubscribeError, SubscribeOptions, TopicListing,
};
use crate::topic::{EntityTopic, ScopeError, TenantId};

/// Why a tenant's request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// The topic is not of the naming scheme, or is another tenant's.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// The client refused the subscribe or switch.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
}

impl Client {
    /// A view of this client bound to `tenant`: it scopes every topic to the
    /// tenant and refuses other tenants' topics
    /// ([`ScopeError::OtherTenant`]). It shares the client's socket; make
    /// one per tenant.
    ///
    /// ```no_run
    /// # async fn run(client: channel_registry::phoenix::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use channel_registry::phoenix::JoinParams;
    /// use channel_registry::topic::TenantId;
    ///
    /// let acme = client.tenant(TenantId::new("acme")?);
    /// let contact = acme.subscribe("presence:contact:123", JoinParams::none()).await?;
    /// assert_eq!(&**contact.topic(), "tenant:acme:presence:contact:123");
    /// // Another tenant's topic is refused before anything is sent.
    /// assert!(acme.subscribe("tenant:globex:presence:contact:123", JoinParams::none()).await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn tenant(&self, tenant: TenantId) -> TenantClient {
        TenantClient {
            client: self.clone(),
            tenant,
        }
    }
}

/// A [`Client`] bound to one tenant, made by [`Client::tenant`]. Cheap to
/// clone. Its subscriptions and rooms are the client's own types, on the
/// tenant's topics; they see only the tenant's messages.
#[derive(Clone)]
pub struct TenantClient {
    client: Client,
    tenant: TenantId,
}

impl fmt::Debug for TenantClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantClient")
            .field("tenant", &self.tenant)
            .field("client", &self.client)
            .finish()
    }
}

impl TenantClient {
    /// The tenant.
    pub fn id(&self) -> &TenantId {
        &self.tenant
    }

    /// The tenant's topic for `topic` (see [`TenantId::scope`]): an unscoped
    /// `TYPE:ENTITY_TYPE:ENTITY_ID` gets the tenant's prefix.
    pub fn topic(&self, topic: &str) -> Result<EntityTopic, ScopeError> {
        self.tenant.scope(topic)
    }

    fn scoped(&self, topic: &str) -> Result<String, ScopeError> {
        Ok(self.topic(topic)?.to_topic()?)
    }

    /// Subscribes to the tenant's `topic` (see [`Client::subscribe`]).
    pub async fn subscribe(
        &self,
        topic: &str,
        options: impl Into<SubscribeOptions>,
    ) -> Result<Subscription, TenantError> {
        let topic = self.scoped(topic)?;
        Ok(self.client.subscribe(&topic, options).await?)
    }

    /// A new room that switches between the tenant's topics only.
    pub fn room(&self, name: &str) -> TenantRoom {
        TenantRoom {
            room: self.client.room(name),
            tenant: self.clone(),
        }
    }

    /// A push handle for the tenant's `topic` (held through one of the
    /// tenant's subscriptions or rooms).
    pub fn pusher(&self, topic: &str) -> Result<Pusher, ScopeError> {
        Ok(self.client.pusher(&self.scoped(topic)?))
    }

    /// The tenant's topics the client holds, in name order (see
    /// [`Client::topics`]).
    pub async fn topics(&self) -> Vec<TopicListing> {
        let mut topics = self.client.topics().await;
        topics.retain(|listing| self.tenant.owns(&listing.topic));
        topics
    }
}

/// A [`Room`] of one tenant, made by [`TenantClient::room`]: it switches
/// only between the tenant's topics. It is a [`Stream`] of [`RoomEvent`]s,
/// like the room it wraps; dropping it releases its topics.
pub struct TenantRoom {
    room: Room,
    tenant: TenantClient,
}

impl fmt::Debug for TenantRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantRoom")
            .field("tenant", self.tenant.id())
            .field("room", &self.room)
            .finish()
    }
}

impl TenantRoom {
    /// The room's id (unique within its client).
    pub fn id(&self) -> RoomId {
        self.room.id()
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        self.room.name()
    }

    /// Switches to the tenant's `topic` (see [`Room::switch`]).
    pub async fn switch(
        &self,
        topic: &str,
        params: impl Into<JoinParams>,
    ) -> Result<Switched, TenantError> {
        let topic = self.tenant.scoped(topic)?;
        Ok(self.room.switch(&topic, params).await?)
    }

    /// Waits until the room shows the tenant's `topic` (see
    /// [`Room::wait_shows`]).
    pub async fn wait_shows(&mut self, topic: &str) -> Result<(), TenantError> {
        let topic = self.tenant.scoped(topic)?;
        Ok(self.room.wait_shows(&topic).await?)
    }

    /// What the room shows and waits for now.
    pub fn state(&self) -> RoomState {
        self.room.state()
    }

    /// A receiver of the room's state changes.
    pub fn state_watch(&self) -> watch::Receiver<RoomState> {
        self.room.state_watch()
    }

    /// The next event, or `None` once the room is closed.
    pub async fn recv(&mut self) -> Option<RoomEvent> {
        self.room.recv().await
    }

    /// Messages dropped because the room had too many unread.
    pub fn missed(&self) -> u64 {
        self.room.missed()
    }

    /// Pushes to the shown topic (see [`Room::push`]).
    pub async fn push(&self, event: &str, payload: impl Into<Payload>) -> Result<Reply, PushError> {
        self.room.push(event, payload).await
    }

    /// [`TenantRoom::push`] with its own timeout.
    pub async fn push_with_timeout(
        &self,
        event: &str,
        payload: impl Into<Payload>,
        timeout: Duration,
    ) -> Result<Reply, PushError> {
        self.room.push_with_timeout(event, payload, timeout).await
    }

    /// A cloneable push handle for the shown topic.
    pub fn pusher(&self) -> Pusher {
        self.room.pusher()
    }
}

impl Stream for TenantRoom {
    type Item = RoomEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        Pin::new(&mut self.get_mut().room).poll_next(cx)
    }
}
