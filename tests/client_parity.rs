//! What a production Phoenix client also does, end to end against the dev server on
//! loopback: tenants sharing one socket without cross-talk, presence lists with their join,
//! leave and sync events, event filters, giving up on a server that went away, and the auth
//! token in `Sec-WebSocket-Protocol`.
#![cfg(feature = "dev-server")]

use std::time::Duration;

use channel_registry::phoenix::dev_server::{BuiltinChannel, DevServer, DevServerConfig};
use channel_registry::phoenix::{
    ChannelMessage, Client, ClientConfig, CloseReason, ConnectionState, JoinParams, PresenceEvent,
    PresenceList, PushError, ReconnectPolicy, RoomEvent, SubscribeOptions, Subscription,
    SubscriptionEvent, TenantError,
};
use channel_registry::topic::{ScopeError, TenantId, TopicNameError};
use serde_json::{json, Value};
use tokio::time::timeout;

/// Upper bound for anything a test waits for; reached only when it fails.
const WAIT: Duration = Duration::from_secs(5);
/// No `sync` push unless a test asks for one.
const NO_SYNC: Duration = Duration::from_secs(600);

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_join_timeout(Duration::from_secs(2))
        .with_drain_grace(Duration::from_millis(50))
        .with_heartbeat_interval(Duration::from_secs(2))
        .with_reconnect_backoff(vec![Duration::from_millis(10), Duration::from_millis(20)])
        .with_push_timeout(Duration::from_secs(2))
}

async fn server(config: DevServerConfig) -> DevServer {
    DevServer::start(config.with_sync_delay(NO_SYNC))
        .await
        .expect("dev server starts")
}

async fn connect(server: &DevServer, config: ClientConfig) -> Client {
    within(Client::connect(&server.url(), config))
        .await
        .expect("client connects")
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    timeout(WAIT, future).await.expect("in time")
}

async fn next_message(sub: &mut Subscription) -> ChannelMessage {
    within(sub.recv()).await.expect("a message")
}

fn json_of(message: &ChannelMessage) -> Value {
    message.json().expect("a JSON payload").clone()
}

/// The server has no channel left.
async fn all_left(server: &DevServer) {
    server
        .wait_until(WAIT, |v| v.joined_count() == 0)
        .await
        .expect("every channel left");
}

#[tokio::test]
async fn two_tenants_share_one_socket_and_never_see_each_others_topics() {
    let server =
        server(DevServerConfig::default().route_builtin("tenant:*", BuiltinChannel::Room)).await;
    let client = connect(&server, config()).await;
    let acme = client.tenant(TenantId::new("acme").unwrap());
    let globex = client.tenant(TenantId::new("globex").unwrap());

    let mut a = acme
        .subscribe("broadcast:document:1", JoinParams::none())
        .await
        .expect("acme subscribes");
    let mut g = globex
        .subscribe("broadcast:document:1", JoinParams::none())
        .await
        .expect("globex subscribes");
    assert_eq!(&**a.topic(), "tenant:acme:broadcast:document:1");
    assert_eq!(&**g.topic(), "tenant:globex:broadcast:document:1");
    within(a.wait_active()).await.expect("acme active");
    within(g.wait_active()).await.expect("globex active");
    assert_eq!(server.socket_count(), 1, "both tenants share one socket");
    assert_eq!(server.joined_count(), 2);

    // Each tenant's broadcast reaches its own subscription only: the next message each
    // sees is its own, although the other's was sent first.
    g.push("broadcast", json!({"from": "globex"}))
        .await
        .expect("globex broadcast");
    server.broadcast(
        "tenant:globex:broadcast:document:1",
        "msg",
        json!({"from": "server to globex"}),
    );
    a.push("broadcast", json!({"from": "acme"}))
        .await
        .expect("acme broadcast");
    assert_eq!(
        json_of(&next_message(&mut a).await),
        json!({"from": "acme"})
    );
    assert_eq!(
        json_of(&next_message(&mut g).await),
        json!({"from": "globex"})
    );
    assert_eq!(
        json_of(&next_message(&mut g).await),
        json!({"from": "server to globex"})
    );

    // Another tenant's topic, or one outside the scheme, is refused before anything is sent.
    let refused = acme
        .subscribe("tenant:globex:broadcast:document:2", JoinParams::none())
        .await
        .expect_err("another tenant's topic");
    assert!(
        matches!(
            &refused,
            TenantError::Scope(ScopeError::OtherTenant { found, .. }) if found.as_str() == "globex"
        ),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("that tenant's client"),
        "{refused}"
    );
    assert!(matches!(
        acme.subscribe("room:lobby", JoinParams::none()).await,
        Err(TenantError::Scope(ScopeError::Name(
            TopicNameError::Shape { .. }
        )))
    ));
    assert!(matches!(
        acme.pusher("tenant:globex:broadcast:document:1"),
        Err(ScopeError::OtherTenant { .. })
    ));
    assert_eq!(
        server.inbound_count("tenant:globex:broadcast:document:2", "phx_join"),
        0
    );

    // Rooms switch between the tenant's topics only.
    let mut room = acme.room("editor");
    room.switch("broadcast:document:2", JoinParams::none())
        .await
        .expect("switch");
    within(room.wait_shows("broadcast:document:2"))
        .await
        .expect("shown");
    assert_eq!(
        room.state().shown.as_deref(),
        Some("tenant:acme:broadcast:document:2")
    );
    assert!(matches!(
        room.switch("tenant:globex:broadcast:document:2", JoinParams::none())
            .await,
        Err(TenantError::Scope(ScopeError::OtherTenant { .. }))
    ));
    let pusher = acme.pusher("broadcast:document:2").expect("acme's topic");
    pusher
        .push("broadcast", json!({"in": "room"}))
        .await
        .expect("room broadcast");
    loop {
        match within(room.recv()).await.expect("a room event") {
            RoomEvent::Message(m) => {
                assert_eq!(&**m.topic(), "tenant:acme:broadcast:document:2");
                assert_eq!(json_of(&m), json!({"in": "room"}));
                break;
            }
            RoomEvent::Shows { .. } => {}
            other => panic!("unexpected room event {other:?}"),
        }
    }

    let acme_topics: Vec<String> = acme
        .topics()
        .await
        .iter()
        .map(|t| t.topic.to_string())
        .collect();
    assert_eq!(
        acme_topics,
        [
            "tenant:acme:broadcast:document:1",
            "tenant:acme:broadcast:document:2"
        ]
    );
    let globex_topics = globex.topics().await;
    assert_eq!(globex_topics.len(), 1);

    drop((a, g, room));
    all_left(&server).await;
}

/// Presence events of a subscription, up to and including the next `Sync`.
async fn until_sync(sub: &mut Subscription) -> Vec<PresenceEvent> {
    let mut seen = Vec::new();
    loop {
        match within(sub.next_event()).await.expect("an event") {
            SubscriptionEvent::Presence(PresenceEvent::Sync) => {
                seen.push(PresenceEvent::Sync);
                return seen;
            }
            SubscriptionEvent::Presence(event) => seen.push(event),
            _ => {}
        }
    }
}

fn keys(list: &PresenceList) -> Vec<&str> {
    list.keys().collect()
}

#[tokio::test]
async fn presence_lists_follow_joins_and_leaves_with_their_events() {
    let server = server(DevServerConfig::default()).await;
    let alice_client = connect(&server, config()).await;
    let bob_client = connect(&server, config()).await;
    let options = |user: &str| {
        SubscribeOptions::params(JoinParams::json(json!({"user": user}))).with_presence(true)
    };

    let mut alice = alice_client
        .subscribe("presence:lobby", options("alice"))
        .await
        .expect("alice subscribes");
    assert_eq!(alice.presence(), Some(PresenceList::default()));
    // The state pushed on join lists alice herself (the diff announcing her, sent before
    // the state, is applied right after it, as phoenix.js does).
    let first = until_sync(&mut alice).await;
    assert!(
        matches!(first.first(), Some(PresenceEvent::Join { key, current: None, .. }) if key == "alice"),
        "{first:?}"
    );
    assert!(
        first[1..first.len() - 1].iter().all(
            |e| matches!(e, PresenceEvent::Join { key, current: Some(_), .. } if key == "alice")
        ),
        "{first:?}"
    );
    let list = alice.presence().expect("tracked");
    assert!(list.is_synced());
    assert_eq!(keys(&list), ["alice"]);
    let meta = &list.get("alice").expect("alice listed").metas()[0];
    assert!(!meta.phx_ref().is_empty() && meta.get("online_at").is_some());

    let bob = bob_client
        .subscribe("presence:lobby", options("bob"))
        .await
        .expect("bob subscribes");
    let joined = until_sync(&mut alice).await;
    assert!(
        matches!(joined.as_slice(), [PresenceEvent::Join { key, current: None, joined }, PresenceEvent::Sync]
            if key == "bob" && joined.metas().len() == 1),
        "{joined:?}"
    );
    assert_eq!(keys(&alice.presence().unwrap()), ["alice", "bob"]);

    // A second presence subscription of the topic starts from the current list.
    let mut again = alice_client
        .subscribe("presence:lobby", options("alice"))
        .await
        .expect("second subscription");
    assert_eq!(keys(&again.presence().unwrap()), ["alice", "bob"]);
    // One without presence has no list.
    let plain = alice_client
        .subscribe("presence:lobby", JoinParams::json(json!({"user": "alice"})))
        .await
        .expect("plain subscription");
    assert_eq!(plain.presence(), None);

    let mut watch = alice.presence_watch().expect("tracked");
    watch.borrow_and_update();
    drop(bob);
    let left = until_sync(&mut alice).await;
    assert!(
        matches!(left.as_slice(), [PresenceEvent::Leave { key, current, .. }, PresenceEvent::Sync]
            if key == "bob" && current.metas().is_empty()),
        "{left:?}"
    );
    within(watch.changed()).await.expect("the watch wakes");
    assert_eq!(keys(&watch.borrow()), ["alice"]);
    assert_eq!(keys(&alice.presence().unwrap()), ["alice"]);
    let _ = until_sync(&mut again).await;

    drop((alice, again, plain));
    all_left(&server).await;
}

#[tokio::test]
async fn an_event_filter_passes_only_its_events_and_other_subscriptions_see_all() {
    let server = server(DevServerConfig::default()).await;
    let client = connect(&server, config()).await;
    let mut only_a = client
        .subscribe(
            "room:filter",
            SubscribeOptions::params(JoinParams::none()).with_events(["a"]),
        )
        .await
        .expect("filtered subscription");
    let mut all = client
        .subscribe("room:filter", JoinParams::none())
        .await
        .expect("plain subscription");
    within(only_a.wait_active()).await.expect("active");
    within(all.wait_active()).await.expect("active");

    for (n, event) in ["a", "b", "a", "c", "a"].into_iter().enumerate() {
        assert_eq!(server.push("room:filter", event, json!({"n": n})), 1);
    }
    let mut seen_by_all = Vec::new();
    for _ in 0..5 {
        let m = next_message(&mut all).await;
        seen_by_all.push((m.event().to_owned(), json_of(&m)["n"].clone()));
    }
    assert_eq!(
        seen_by_all,
        [
            ("a".to_owned(), json!(0)),
            ("b".to_owned(), json!(1)),
            ("a".to_owned(), json!(2)),
            ("c".to_owned(), json!(3)),
            ("a".to_owned(), json!(4)),
        ]
    );
    // The filtered one sees the three `a`s in order: the `b` and `c` between them never
    // reached it.
    for n in [0, 2, 4] {
        let m = next_message(&mut only_a).await;
        assert_eq!((m.event(), json_of(&m)), ("a", json!({"n": n})));
    }
    // Replies to its own pushes are not events: they still come back.
    assert_eq!(
        only_a
            .push("echo", json!({"x": 1}))
            .await
            .expect("echo")
            .response,
        json!({"x": 1}).into()
    );
    let stats = client.stats().await.expect("alive");
    assert_eq!(stats.subscriptions, 2);
    drop((only_a, all));
    all_left(&server).await;
}

#[tokio::test]
async fn a_server_that_went_away_ends_in_give_up_and_every_stream_ends() {
    let server = server(DevServerConfig::default()).await;
    let client = connect(
        &server,
        config().with_reconnect(ReconnectPolicy {
            backoff: vec![Duration::from_millis(10), Duration::from_millis(20)],
            max_attempts: Some(3),
            ..ReconnectPolicy::default()
        }),
    )
    .await;
    let mut sub = client
        .subscribe("room:gone", JoinParams::none())
        .await
        .expect("subscribe");
    within(sub.wait_active()).await.expect("active");
    let mut room = client.room("gone");
    room.switch("room:gone2", JoinParams::none())
        .await
        .expect("switch");
    within(room.wait_shows("room:gone2")).await.expect("shown");

    // The server goes away for good: its sockets close (1001) and its port refuses.
    server.shutdown().await;

    let mut connection = client.connection();
    let state = within(connection.wait_for(|c| matches!(c, ConnectionState::Disconnected(_))))
        .await
        .expect("alive")
        .clone();
    let ConnectionState::Disconnected(CloseReason::GaveUp { attempts, reason }) = state else {
        panic!("expected a give-up, got {state:?}");
    };
    assert_eq!(attempts, 3);
    assert!(!reason.is_empty());

    // Every subscription and room stream ends, saying why.
    let mut last = None;
    while let Some(event) = within(sub.next_event()).await {
        last = Some(event);
    }
    assert!(
        matches!(
            last,
            Some(SubscriptionEvent::Closed {
                reason: CloseReason::GaveUp { attempts: 3, .. }
            })
        ),
        "{last:?}"
    );
    let mut last = None;
    while let Some(event) = within(room.recv()).await {
        last = Some(event);
    }
    assert!(
        matches!(
            last,
            Some(RoomEvent::Closed {
                reason: CloseReason::GaveUp { .. }
            })
        ),
        "{last:?}"
    );
    assert!(matches!(
        sub.push("echo", json!({})).await,
        Err(PushError::Disconnected {
            reason: CloseReason::GaveUp { .. }
        })
    ));
}

#[tokio::test]
async fn the_auth_token_travels_in_the_websocket_protocol_header_not_the_url() {
    let server = server(DevServerConfig::default()).await;
    let token = "t0k3n/é+=";
    let client = connect(
        &server,
        config()
            .with_param("room", "1")
            .with_auth_token(move || token.to_owned()),
    )
    .await;
    let mut sub = client
        .subscribe("room:auth", JoinParams::none())
        .await
        .expect("subscribe");
    within(sub.wait_active()).await.expect("active");
    let sockets = server.sockets();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].auth_token.as_deref(), Some(token));
    assert!(
        sockets[0].params.iter().all(|(_, value)| value != token),
        "the token is not in the URL: {:?}",
        sockets[0].params
    );
    assert!(sockets[0]
        .params
        .contains(&("room".to_owned(), "1".to_owned())));

    // A client without a token gets none on the server.
    let plain = connect(&server, config()).await;
    let mut other = plain
        .subscribe("room:auth", JoinParams::none())
        .await
        .expect("subscribe");
    within(other.wait_active()).await.expect("active");
    assert_eq!(
        server
            .sockets()
            .iter()
            .filter(|s| s.auth_token.is_none())
            .count(),
        1
    );
    drop((sub, other));
    all_left(&server).await;
}
