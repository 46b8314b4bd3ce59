//! The engine driven by a plain loop — no async runtime — to show it embeds in
//! any event loop (a game loop, a GUI toolkit, another language's runtime).
//!
//! A simulated server runs on its own thread and talks to the loop over std
//! channels: it answers joins after a little latency (one of them slowly),
//! acknowledges leaves, and crashes one channel. The loop does what every
//! driver does: feed inputs with the time, drain outputs, and sleep until the
//! next deadline or the next message, whichever comes first.
//!
//! ```text
//! cargo run --example plain_loop
//! ```

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use channel_registry::engine::{
    Config, Effect, Engine, Event, JoinOptions, JoinRef, JoinReply, Output, RoomId, SubscriberId,
};

/// What the loop sends to the server.
enum ToServer {
    Join { topic: Arc<str>, join_ref: JoinRef },
    Leave { topic: Arc<str>, join_ref: JoinRef },
    Stop,
}

/// What the server sends back.
enum FromServer {
    JoinOk { topic: Arc<str>, join_ref: JoinRef },
    Crashed { topic: Arc<str>, join_ref: JoinRef },
}

/// The driver reads the clock; the engine never does (time is an input).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// A server with 5 ms of latency whose `doc:1:v2` joins take 150 ms, and
/// which crashes `chat:1` once, 200 ms after its first join. Returns how many
/// channels it still holds when it stops.
fn server(inbox: Receiver<ToServer>, outbox: Sender<FromServer>) -> usize {
    let mut crashed = false;
    let mut joined = HashSet::new();
    while let Ok(message) = inbox.recv() {
        match message {
            ToServer::Join { topic, join_ref } => {
                let latency = if &*topic == "doc:1:v2" { 150 } else { 5 };
                thread::sleep(Duration::from_millis(latency));
                joined.insert((Arc::clone(&topic), join_ref));
                let _ = outbox.send(FromServer::JoinOk {
                    topic: Arc::clone(&topic),
                    join_ref,
                });
                if &*topic == "chat:1" && !crashed {
                    crashed = true;
                    joined.remove(&(Arc::clone(&topic), join_ref));
                    let outbox = outbox.clone();
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(200));
                        let _ = outbox.send(FromServer::Crashed { topic, join_ref });
                    });
                }
            }
            ToServer::Leave { topic, join_ref } => {
                joined.remove(&(topic, join_ref));
            }
            ToServer::Stop => break,
        }
    }
    joined.len()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (to_server, server_inbox) = mpsc::channel();
    let (server_outbox, from_server) = mpsc::channel();
    let server = thread::spawn(move || server(server_inbox, server_outbox));

    let start = now();
    let ms = |at: Instant| at.duration_since(start).as_secs_f64() * 1000.0;
    let config = Config {
        drain_grace: Duration::from_millis(100),
        rejoin_backoff: vec![Duration::from_millis(50)],
        ..Config::default()
    };
    let mut engine = Engine::new(config, start)?;
    engine.handle_socket_up(start);

    // What the application does, and when (ms after start).
    let editor = RoomId(1);
    let alice = SubscriberId(1);
    let mut script: Vec<(u64, &str)> = vec![
        (0, "subscribe chat:1"),
        (0, "show doc:1:v1"),
        (60, "show doc:1:v2"),
        (70, "show doc:1:v3"),
        (500, "unsubscribe chat:1"),
        (520, "close the editor"),
    ];
    script.reverse();

    loop {
        let t = now();
        // 1. Application actions that are due.
        while script
            .last()
            .is_some_and(|(at, _)| start + Duration::from_millis(*at) <= t)
        {
            let (_, action) = script.pop().expect("checked");
            println!("{:>6.1} ms  app: {action}", ms(t));
            let options = JoinOptions::default();
            match action {
                "subscribe chat:1" => {
                    engine.subscribe("chat:1", alice, &options, t)?;
                }
                "show doc:1:v1" => {
                    engine.switch(editor, "doc:1:v1", &options, t)?;
                }
                "show doc:1:v2" => {
                    engine.switch(editor, "doc:1:v2", &options, t)?;
                }
                "show doc:1:v3" => {
                    engine.switch(editor, "doc:1:v3", &options, t)?;
                }
                "unsubscribe chat:1" => {
                    engine.unsubscribe("chat:1", alice, t);
                }
                _ => {
                    engine.close_room(editor, t);
                }
            }
        }
        // 2. Drain every output: effects become messages, events are news.
        while let Some(output) = engine.poll_output() {
            // Outputs name topics by handle; the name stays readable until the
            // next input.
            let name = |id| -> Arc<str> { Arc::from(engine.topic_name(id).unwrap_or_default()) };
            match output {
                Output::Effect(Effect::Join { topic, join_ref }) => {
                    let topic = name(topic);
                    println!("{:>6.1} ms  -> join {topic} (join_ref {join_ref})", ms(t));
                    to_server.send(ToServer::Join { topic, join_ref })?;
                }
                Output::Effect(Effect::End {
                    topic,
                    join_ref,
                    leave: true,
                    ..
                }) => {
                    let topic = name(topic);
                    println!("{:>6.1} ms  -> leave {topic} (join_ref {join_ref})", ms(t));
                    to_server.send(ToServer::Leave { topic, join_ref })?;
                }
                Output::Event(Event::PhaseChanged {
                    topic,
                    join_ref,
                    to,
                    ..
                }) => println!("{:>6.1} ms     {} #{join_ref} is {to}", ms(t), name(topic)),
                Output::Event(Event::RoomShows { topic, .. }) => {
                    println!("{:>6.1} ms     the editor shows {}", ms(t), name(topic))
                }
                Output::Event(Event::Retrying { topic, delay, .. }) => {
                    println!("{:>6.1} ms     {} retries in {delay:?}", ms(t), name(topic))
                }
                Output::Event(Event::Ignored { join_ref, .. }) => {
                    println!("{:>6.1} ms     stale input for #{join_ref} ignored", ms(t))
                }
                _ => {}
            }
        }
        if script.is_empty() && engine.stats().is_empty() {
            break;
        }
        // 3. Sleep until the next deadline (engine timer or script), or a message.
        let next_action = script
            .last()
            .map(|(at, _)| start + Duration::from_millis(*at));
        let wake = [engine.poll_timeout(), next_action]
            .into_iter()
            .flatten()
            .min();
        let wait = wake.map_or(Duration::from_secs(1), |at| at.saturating_duration_since(t));
        match from_server.recv_timeout(wait) {
            Ok(FromServer::JoinOk { topic, join_ref }) => {
                engine.handle_join_reply(&topic, join_ref, JoinReply::Ok, now());
            }
            Ok(FromServer::Crashed { topic, join_ref }) => {
                println!("{:>6.1} ms  <- {topic} #{join_ref} crashed", ms(now()));
                engine.handle_error(&topic, join_ref, now());
            }
            Err(RecvTimeoutError::Timeout) => engine.handle_timeout(now()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    println!("{:>6.1} ms  nothing left: no topic, no timer", ms(now()));
    to_server.send(ToServer::Stop)?;
    let held = server.join().map_err(|_| "the server thread panicked")?;
    println!("           the server holds {held} channels");
    Ok(())
}
