//! When the client's task dies with its runtime, every handle says so instead
//! of showing the last state; a panicking join params provider is reported
//! and the client keeps running.
#![cfg(feature = "dev-server")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{
    Client, ClientConfig, CloseReason, ConnectionState, JoinParams, PushError, SubscribeError,
    SubscriptionEvent, SubscriptionState,
};
use channel_registry::session::ParamsError;
use serde_json::json;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_rejoin_backoff(vec![Duration::from_millis(20)])
        .with_reconnect_backoff(vec![Duration::from_millis(10)])
        .with_push_timeout(Duration::from_secs(2))
}

#[test]
fn every_handle_sees_that_the_runtime_of_the_client_shut_down() {
    let outer = tokio::runtime::Runtime::new().expect("runtime");
    let server = outer
        .block_on(DevServer::start(DevServerConfig::default()))
        .expect("dev server starts");
    let inner = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (client, mut sub) = inner.block_on(async {
        let client = timeout(WAIT, Client::connect(&server.url(), config()))
            .await
            .expect("in time")
            .expect("connects");
        let mut sub = client
            .subscribe("room:doomed", JoinParams::none())
            .await
            .expect("accepted");
        timeout(WAIT, sub.wait_active())
            .await
            .expect("in time")
            .expect("joined");
        (client, sub)
    });
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    drop(inner);

    outer.block_on(async {
        assert_eq!(
            client.connection_state(),
            ConnectionState::Disconnected(CloseReason::Stopped)
        );
        assert!(sub.state().is_terminal(), "{:?}", sub.state());
        assert_eq!(sub.state(), SubscriptionState::Closed(CloseReason::Stopped));
        let waited = timeout(WAIT, sub.wait_active()).await.expect("at once");
        assert!(
            matches!(waited, Err(SubscribeError::Closed { .. })),
            "{waited:?}"
        );
        let pushed = timeout(WAIT, sub.push("echo", json!({})))
            .await
            .expect("at once");
        assert!(
            matches!(pushed, Err(PushError::Disconnected { .. })),
            "{pushed:?}"
        );
        assert!(client.stats().await.is_none());
        assert!(matches!(
            client.subscribe("room:other", JoinParams::none()).await,
            Err(SubscribeError::Closed { .. })
        ));
        // The server sees the socket go.
        server
            .wait_until(WAIT, |v| v.socket_count() == 0)
            .await
            .expect("socket closed");
    });
}

#[tokio::test]
async fn a_panicking_join_params_provider_is_reported_and_the_join_retried() {
    let server = DevServer::start(DevServerConfig::default())
        .await
        .expect("dev server starts");
    let client = timeout(WAIT, Client::connect(&server.url(), config()))
        .await
        .expect("in time")
        .expect("connects");

    // Panicking at subscribe: a typed error, and the client carries on.
    let refused = client
        .subscribe(
            "room:refused",
            JoinParams::provider(|| panic!("provider bug")),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(SubscribeError::Params(ParamsError::ProviderPanicked { .. }))
        ),
        "{refused:?}"
    );

    // Panicking at a rejoin: reported on the subscription, retried.
    let panicking = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&panicking);
    let params = JoinParams::provider(move || {
        if flag.load(Ordering::Relaxed) {
            panic!("provider bug");
        }
        json!({"ok": true})
    });
    let mut sub = client
        .subscribe("room:panicky", params)
        .await
        .expect("accepted");
    timeout(WAIT, sub.wait_active())
        .await
        .expect("in time")
        .expect("joined");
    panicking.store(true, Ordering::Relaxed);
    server.crash_channels("room:panicky");
    let rejoined = timeout(WAIT, async {
        let mut reported = false;
        while let Some(event) = sub.next_event().await {
            match event {
                SubscriptionEvent::Rejoining {
                    detail: Some(detail),
                    ..
                } if detail.contains("panicked") => {
                    reported = true;
                    panicking.store(false, Ordering::Relaxed);
                }
                SubscriptionEvent::Joined { rejoin: true, .. } => return reported,
                SubscriptionEvent::Failed { .. } => return false,
                _ => {}
            }
        }
        false
    })
    .await
    .expect("in time");
    assert!(rejoined, "reported, then joined again");
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    sub.push("echo", json!({})).await.expect("the client runs");
}
