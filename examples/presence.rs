//! Who is online, with the client's presence tracking: two users join a
//! `presence:*` channel of the local dev server, one leaves, and the other
//! sees the joins, the leave and the list after every sync — phoenix.js's
//! `onJoin`, `onLeave` and `onSync`, as events of the subscription stream.
//! Exits by itself.
//!
//! ```text
//! cargo run --example presence --features dev-server
//! ```

use std::error::Error;
use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{
    Client, ClientConfig, JoinParams, PresenceEvent, SubscribeOptions, Subscription,
    SubscriptionEvent,
};
use serde_json::json;
use tokio::time::timeout;

/// Prints the presence events of `sub` until the next sync, then the list.
async fn show_until_sync(name: &str, sub: &mut Subscription) -> Result<(), Box<dyn Error>> {
    loop {
        let event = timeout(Duration::from_secs(5), sub.next_event())
            .await?
            .ok_or("the subscription ended")?;
        match event {
            SubscriptionEvent::Presence(PresenceEvent::Join { key, current, .. }) => {
                let new = if current.is_none() { " (new)" } else { "" };
                println!("{name} sees {key} join{new}");
            }
            SubscriptionEvent::Presence(PresenceEvent::Leave { key, current, .. }) => {
                let gone = if current.metas().is_empty() {
                    " (gone)"
                } else {
                    ""
                };
                println!("{name} sees {key} leave{gone}");
            }
            SubscriptionEvent::Presence(PresenceEvent::Sync) => {
                let list = sub.presence().unwrap_or_default();
                let online: Vec<String> = list
                    .iter()
                    .map(|(key, entry)| format!("{key} ×{}", entry.metas().len()))
                    .collect();
                println!("{name}'s list after sync: [{}]", online.join(", "));
                return Ok(());
            }
            _ => {}
        }
    }
}

fn presence_of(user: &str) -> SubscribeOptions {
    // The dev server's `presence:*` channel tracks `params.user`.
    SubscribeOptions::params(JoinParams::json(json!({ "user": user }))).with_presence(true)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = DevServer::start(DevServerConfig::default()).await?;
    let config = ClientConfig::default().with_drain_grace(Duration::from_millis(50));
    let alice_client = Client::connect(&server.url(), config.clone()).await?;
    let bob_client = Client::connect(&server.url(), config).await?;

    let mut alice = alice_client
        .subscribe("presence:lobby", presence_of("alice"))
        .await?;
    show_until_sync("alice", &mut alice).await?;

    let bob = bob_client
        .subscribe("presence:lobby", presence_of("bob"))
        .await?;
    show_until_sync("alice", &mut alice).await?;

    // Dropping bob's subscription leaves the channel (after the drain grace).
    drop(bob);
    show_until_sync("alice", &mut alice).await?;

    alice_client.disconnect().await;
    bob_client.disconnect().await;
    Ok(())
}
