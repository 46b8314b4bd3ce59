//! Phoenix Channels protocol plumbing: the V2 wire codec, the tokio [`client`] driven
//! by the lifecycle engine and, behind the `dev-server` feature, a local Phoenix-protocol
//! server for tests, examples and demos.

pub mod client;
pub mod codec;
#[cfg(feature = "dev-server")]
pub mod dev_server;

pub use client::{
    ChannelMessage, Client, ClientConfig, ClientConfigError, ClientStats, ConnectError,
    ConnectionState, JoinParams, NoResources, OverflowPolicy, PushError, ResourceManager, Room,
    RoomEvent, RoomState, SettleError, SettleFuture, SettleOnEvent, SocketStats, SubscribeError,
    Subscription, TopicState,
};
