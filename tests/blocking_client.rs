//! The blocking example's driver (one thread, `std::net`, tungstenite's sync
//! API) against the dev server on loopback: the pure session runs the same
//! under blocking IO as under tokio. Joins, messages, push replies, a crashed
//! channel rejoined under a new join_ref, a dropped socket reconnected, a
//! normal close by the server, refused connections and a clean shutdown that
//! leaves the server holding nothing. The server runs on a tokio runtime of
//! its own; the client never touches it.
#![cfg(feature = "dev-server")]

#[allow(dead_code)]
#[path = "../examples/blocking.rs"]
mod blocking;

use std::time::Duration;

use blocking::{now, Blocking};
use channel_registry::codec::{Payload, Reply};
use channel_registry::engine::{JoinRef, SubscriberId};
use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig, ServerView};
use channel_registry::session::{
    CloseReason, ConnectionState, Event, JoinParams, LostReason, PushError, PushId, PushOptions,
    PushTarget, Recipient, ReconnectPolicy, Session, SessionConfig, SubscriptionEvent,
};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

/// Upper bound for anything a test waits for; reached only when it fails.
const WAIT: Duration = Duration::from_secs(5);
const LOBBY: SubscriberId = SubscriberId(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The dev server, served by a runtime of its own (one worker thread).
struct Server {
    runtime: Runtime,
    server: DevServer,
}

impl Server {
    fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let config = DevServerConfig::default().with_sync_delay(ms(10));
        let server = runtime
            .block_on(DevServer::start(config))
            .expect("the dev server starts");
        Server { runtime, server }
    }

    fn wait_until(&self, condition: impl FnMut(&ServerView<'_>) -> bool) {
        let waited = self.server.wait_until(WAIT, condition);
        if let Err(timeout) = self.runtime.block_on(waited) {
            panic!("{timeout}");
        }
    }

    /// Waits until the client left `room:lobby` (`phx_leave`) and the server
    /// holds no channel and no socket, and stops it.
    fn assert_left_clean(self) {
        self.wait_until(|s| {
            s.inbound_count("room:lobby", "phx_leave") == 1
                && s.joined_count() == 0
                && s.socket_count() == 0
        });
        self.runtime.block_on(self.server.shutdown());
    }
}

/// Short timings, so that every recovery takes milliseconds.
fn config(url: &str) -> SessionConfig {
    SessionConfig::new(url)
        .with_seed(7)
        .with_param("token", "blocking-test")
        .with_heartbeat_interval(ms(100))
        .with_reconnect_backoff(vec![ms(10), ms(20)])
        .with_rejoin_backoff(vec![ms(10), ms(20)])
        .with_connect_timeout(Duration::from_secs(1))
        .with_push_timeout(Duration::from_secs(2))
}

/// A client connecting to `url`, subscribed to `room:lobby`.
fn subscribed(config: SessionConfig) -> Blocking {
    let mut client = Blocking::new(Session::new(config, now()).expect("a valid config"));
    client.session.connect(now());
    client
        .session
        .subscribe(LOBBY, "room:lobby", JoinParams::none(), now())
        .expect("subscribed");
    client
}

/// Drives the client until `pick` takes an event; fails the test after [`WAIT`].
fn expect<T>(client: &mut Blocking, what: &str, pick: impl FnMut(Event) -> Option<T>) -> T {
    client
        .wait_for(WAIT, pick)
        .unwrap_or_else(|| panic!("no {what} within {WAIT:?}"))
}

/// Drives the client, its events unread, until `done` holds; fails the test
/// after [`WAIT`].
fn drive_until(client: &mut Blocking, what: &str, mut done: impl FnMut(&Session) -> bool) {
    let deadline = now() + WAIT;
    while !done(&client.session) {
        assert!(now() < deadline, "{what}: not within {WAIT:?}");
        let _ = client.next_event(now() + ms(5));
    }
}

fn joined(client: &mut Blocking, rejoin: bool) -> JoinRef {
    expect(client, "join", |event| match event {
        Event::Subscription {
            id: LOBBY,
            event:
                SubscriptionEvent::Joined {
                    join_ref,
                    rejoin: r,
                    ..
                },
        } if r == rejoin => Some(join_ref),
        _ => None,
    })
}

fn lost(client: &mut Blocking, reason: LostReason) {
    expect(client, "loss", |event| match event {
        Event::Subscription {
            id: LOBBY,
            event: SubscriptionEvent::Lost { reason: r },
        } if r == reason => Some(()),
        _ => None,
    })
}

/// A message with `event` for the lobby subscription; its payload.
fn message(client: &mut Blocking, event: &str) -> Value {
    expect(client, event, |e| match e {
        Event::Message { message, to }
            if message.event() == event && to.contains(&Recipient::Subscription(LOBBY)) =>
        {
            message.json().cloned()
        }
        _ => None,
    })
}

fn push(client: &mut Blocking, id: u64, event: &str, payload: Value) -> PushId {
    let id = PushId(id);
    let payload = Payload::from(payload);
    let target = PushTarget::Subscription(LOBBY);
    client
        .session
        .push(id, target, event, &payload, PushOptions::default(), now())
        .expect("the push is accepted");
    id
}

fn outcome(client: &mut Blocking, push: PushId) -> Result<Reply, PushError> {
    expect(client, "push outcome", |event| match event {
        Event::Push { id, outcome } if id == push => Some(outcome),
        _ => None,
    })
}

fn echo(client: &mut Blocking, id: u64) {
    let payload = json!({"echo": id});
    let pushed = push(client, id, "echo", payload.clone());
    let reply = outcome(client, pushed).expect("echo replies ok");
    assert_eq!(reply.response.as_json(), Some(&payload));
}

/// Disconnects the client and drives it until the subscription has closed
/// and the connection is down (its leave and close frames sent).
fn disconnect(client: &mut Blocking) {
    client.session.disconnect(now());
    let closed = expect(client, "subscription closed", |event| match event {
        Event::Subscription {
            id: LOBBY,
            event: SubscriptionEvent::Closed { reason },
        } => Some(reason),
        _ => None,
    });
    assert_eq!(closed, CloseReason::Disconnected);
    let down = expect(client, "disconnected", |event| match event {
        Event::Connection(ConnectionState::Disconnected(reason)) => Some(reason),
        _ => None,
    });
    assert_eq!(down, CloseReason::Disconnected);
}

#[test]
fn joins_pushes_and_recovers_from_a_crash_and_a_dropped_socket() {
    let server = Server::start();
    let mut client = subscribed(config(&server.server.url()));

    // Join: the server holds the channel under the join_ref the client saw,
    // on a socket that connected with the session's URL (params and vsn).
    let first = joined(&mut client, false);
    let sockets = server.server.sockets();
    assert_eq!(sockets.len(), 1);
    let params = &sockets[0].params;
    assert!(params.contains(&("token".to_owned(), "blocking-test".to_owned())));
    assert!(params.contains(&("vsn".to_owned(), "2.0.0".to_owned())));
    assert_eq!(
        server.server.view(|s| s.join_refs("room:lobby")),
        [first.to_string()]
    );

    // Messages: the channel's own push, a server broadcast, a client broadcast.
    assert_eq!(message(&mut client, "sync"), json!({"seq": 1}));
    assert_eq!(
        server
            .server
            .broadcast("room:lobby", "news", json!({"k": 1})),
        1
    );
    assert_eq!(message(&mut client, "news"), json!({"k": 1}));
    let pushed = push(&mut client, 1, "broadcast", json!({"n": 1}));
    assert_eq!(message(&mut client, "msg"), json!({"n": 1}));
    assert!(outcome(&mut client, pushed).is_ok());
    echo(&mut client, 2);

    // Time: heartbeats go out while the driver blocks in `read`, and come back.
    drive_until(&mut client, "a heartbeat answered", |session| {
        session.stats().socket.last_heartbeat_rtt.is_some()
    });

    // A crash on the server: the channel rejoins under a new join_ref, and
    // pushes go to the new incarnation.
    assert_eq!(server.server.crash_channels("room:lobby"), 1);
    lost(&mut client, LostReason::Crashed);
    let second = joined(&mut client, true);
    assert_ne!(second, first);
    assert_eq!(
        server.server.view(|s| s.join_refs("room:lobby")),
        [second.to_string()]
    );
    echo(&mut client, 3);

    // The socket reset without a close frame: reconnect, rejoin, carry on.
    assert_eq!(server.server.drop_all_sockets(), 1);
    lost(&mut client, LostReason::SocketDown);
    let third = joined(&mut client, true);
    assert_ne!(third, second);
    assert_eq!(client.session.stats().socket.reconnects, 1);
    server.wait_until(|s| s.socket_count() == 1);
    echo(&mut client, 4);

    // A clean exit: the subscription ends, the channel is left, the socket
    // closed, and the server holds nothing.
    disconnect(&mut client);
    assert_eq!(client.session.stats().socket.decode_errors, 0);
    server.assert_left_clean();
}

#[test]
fn a_normal_close_by_the_server_waits_for_reconnect() {
    let server = Server::start();
    let mut client = subscribed(config(&server.server.url()));
    let first = joined(&mut client, false);

    // Code 1000: no reconnect on the ladder (as phoenix.js); the topic waits.
    assert_eq!(server.server.close_all_sockets(1000, "maintenance"), 1);
    let reason = expect(&mut client, "disconnect", |event| match event {
        Event::Connection(ConnectionState::Disconnected(reason)) => Some(reason),
        _ => None,
    });
    let expected = CloseReason::ServerClosed {
        code: 1000,
        reason: "maintenance".to_owned(),
    };
    assert_eq!(reason, expected);
    assert!(client.wait_for(ms(50), |_| None::<()>).is_none());
    assert_eq!(client.session.stats().socket.connects, 1);
    server.wait_until(|s| s.socket_count() == 0);

    // The application asks: connect again, and the topic rejoins.
    client.session.reconnect(now());
    let second = joined(&mut client, true);
    assert_ne!(second, first);
    echo(&mut client, 1);
    disconnect(&mut client);
    server.assert_left_clean();
}

#[test]
fn refused_connections_walk_the_ladder_then_give_up() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let policy = ReconnectPolicy {
        backoff: vec![ms(10)],
        max_attempts: Some(2),
        ..ReconnectPolicy::default()
    };
    let url = format!("ws://127.0.0.1:{port}/socket");
    let mut client = subscribed(config(&url).with_reconnect(policy));

    // Every attempt fails with words that say what to do; after the last one
    // the subscription ends, then the connection is down for good.
    let mut retries = Vec::new();
    let closed = expect(&mut client, "subscription closed", |event| match event {
        Event::Connection(ConnectionState::Reconnecting { reason, .. }) => {
            retries.push(reason);
            None
        }
        Event::Subscription {
            id: LOBBY,
            event: SubscriptionEvent::Closed { reason },
        } => Some(reason),
        _ => None,
    });
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(
        retries
            .iter()
            .all(|r| r.contains("check that the server is up")),
        "{retries:?}"
    );
    assert!(matches!(closed, CloseReason::GaveUp { attempts: 2, .. }));
    let down = expect(&mut client, "give-up", |event| match event {
        Event::Connection(ConnectionState::Disconnected(reason)) => Some(reason),
        _ => None,
    });
    assert_eq!(down, closed);
    assert_eq!(client.session.stats().socket.connect_failures, 3);
}

#[test]
fn the_example_walk_through_runs() {
    let server = Server::start();
    blocking::run(&server.server.url()).expect("the example runs to the end");
    server.assert_left_clean();
}
