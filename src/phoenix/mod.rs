//! The tokio adapter: [`Client`] drives the pure [`session`](crate::session)
//! over a real WebSocket, and, behind the `dev-server` feature, a local
//! Phoenix-protocol server for tests, examples and demos.
//!
//! Everything an application needs is re-exported here, so one `use` is
//! enough:
//!
//! ```
//! use channel_registry::phoenix::{Client, ClientConfig, JoinParams, RoomEvent, SubscriptionEvent};
//! ```

pub mod client;
/// The V2 codec; see [`crate::codec`].
pub mod codec {
    pub use crate::codec::*;
}
#[cfg(feature = "dev-server")]
pub mod dev_server;

pub use crate::codec::{Payload, Reply, ReplyStatus};
pub use crate::engine::{Config, FailReason, JoinRef, Phase, Switched, TopicStatus};
pub use crate::session::presence::{PresenceEntry, PresenceEvent, PresenceList, PresenceMeta};
pub use crate::session::{
    ChannelMessage, CloseReason, ConnectionState, JoinParams, LostReason, OverflowPolicy,
    PushError, ReconnectPolicy, RoomEvent, RoomState, SessionStats, ShownStatus, SocketStats,
    SubscribeError, SubscribeOptions, SubscriptionEvent, SubscriptionState, TopicListing,
};
pub use client::{
    Client, ClientConfig, ClientConfigError, ConnectError, NoResources, Pusher, ResourceManager,
    Room, SettleContext, SettleError, SettleFuture, SettleOnEvent, Subscription, TenantClient,
    TenantError, TenantRoom,
};
