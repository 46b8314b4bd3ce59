//! The session driven the way a driver drives it, no more and no less: after
//! every input it drains every output (frames go to the fake server, events
//! to the application's handlers) and asks `poll_timeout`; it sleeps by
//! moving the simulated clock to the instant `poll_timeout` named, and it
//! delivers the server's frames one at a time as text.

use std::hint::black_box;
use std::time::{Duration, Instant};

use channel_registry::codec::{Frame, FrameRef};
use channel_registry::engine::{Config, JoinRef, Limits, SubscriberId};
use channel_registry::session::{
    Diagnostic, Event, JoinParams, Output, Recipient, Session, SessionConfig, SubscriptionEvent,
};

use super::fake_server::FakeServer;
use super::{EVENT, FRESH, STRIDE};

/// The payload of every inbound message, as `session.mjs` sends it.
const PAYLOAD: &str = r#"{"body":"hello","n":42}"#;
/// Its `n`, which the message handler adds up.
pub const PAYLOAD_N: u64 = 42;

/// What the application's handlers saw: one counter per hook of
/// `session.mjs`, so both sides prove the same work was done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct App {
    pub joined: u64,
    pub closed: u64,
    pub messages: u64,
    pub sum: u64,
    pub last_joined: Option<(SubscriberId, JoinRef)>,
}

impl App {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Message { message, to } => {
                for recipient in &to {
                    let Recipient::Subscription(_) = recipient else {
                        panic!("a message for {recipient:?}: the benchmark opens no rooms");
                    };
                    // The handler: read the payload's `n`.
                    let n = message.json().and_then(|v| v.get("n")?.as_u64());
                    self.messages += 1;
                    self.sum += n.expect("the payload has a numeric `n`");
                }
            }
            Event::Subscription {
                id,
                event: SubscriptionEvent::Joined { join_ref, .. },
            } => {
                self.joined += 1;
                self.last_joined = Some((id, join_ref));
            }
            Event::Subscription {
                event: SubscriptionEvent::Closed { .. },
                ..
            } => self.closed += 1,
            other => {
                black_box(other);
            }
        }
    }
}

/// Counts of what the session put out, for the per-op columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub outputs: u64,
    pub diagnostics: u64,
}

/// One session with `n` live subscriptions (one per topic, all active), its
/// fake server and its application.
pub struct Driver {
    pub session: Session,
    pub now: Instant,
    pub app: App,
    pub counts: Counts,
    /// The last diagnostic, to say what the diagnostics column counts.
    pub last_diagnostic: Option<Diagnostic>,
    server: FakeServer,
    /// The inbound message frame of each live channel.
    frames: Vec<String>,
    cursor: usize,
    fresh: Vec<String>,
    next_fresh: usize,
    next_id: u64,
}

/// The session's configuration: the defaults (phoenix.js's timings), a
/// fixed jitter seed, no topic limit, and a 1 ms drain grace. The grace's
/// length costs nothing; a short one keeps the simulated clock close to wall
/// time, so the 30 s heartbeat falls due about as rarely as it would for
/// phoenix.js (once per 30 000 lifecycles).
fn config() -> SessionConfig {
    let engine = Config {
        limits: Limits {
            max_topics: usize::MAX,
            ..Limits::default()
        },
        ..Config::default()
    };
    SessionConfig::new("ws://phoenix.test/socket")
        .with_seed(7)
        .with_engine(engine)
        .with_drain_grace(Duration::from_millis(1))
}

impl Driver {
    /// A connected session holding `n` live subscriptions; `live(i)` and
    /// `fresh(i)` name the live topics and the ring of fresh ones.
    pub fn new(n: usize, live: impl Fn(u64) -> String, fresh: impl Fn(u64) -> String) -> Driver {
        // The one base instant; the session never reads a clock.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let session = Session::new(config(), now).expect("valid session config");
        let mut d = Driver {
            session,
            now,
            app: App::default(),
            counts: Counts::default(),
            last_diagnostic: None,
            server: FakeServer::default(),
            frames: Vec::with_capacity(n),
            cursor: 0,
            fresh: (0..FRESH as u64).map(fresh).collect(),
            next_fresh: 0,
            next_id: n as u64,
        };
        d.session.connect(now);
        while let Some(output) = d.session.poll_output() {
            if let Output::Connect(request) = output {
                d.session.handle_connected(request.id, now);
            }
        }
        for i in 0..n as u64 {
            let topic = live(i);
            let id = SubscriberId(i);
            d.session
                .subscribe(id, &topic, JoinParams::none(), now)
                .expect("subscribe");
            d.settle();
            let Some((joined, join_ref)) = d.app.last_joined else {
                panic!("live topic {topic} did not join");
            };
            assert_eq!(joined, id, "live topic {topic} did not join");
            d.frames.push(
                serde_json::to_string(&(
                    join_ref.to_string(),
                    None::<&str>,
                    &topic,
                    EVENT,
                    serde_json::value::RawValue::from_string(PAYLOAD.to_owned())
                        .expect("valid JSON"),
                ))
                .expect("a message frame"),
            );
        }
        d.app = App::default();
        d.counts = Counts::default();
        d
    }

    /// Live subscriptions.
    pub fn live(&self) -> usize {
        self.frames.len()
    }

    /// One channel lifecycle on a fresh topic: subscribe -> the join frame
    /// out, its reply in -> joined; unsubscribe; the drain grace elapses ->
    /// the leave frame out, its reply and `phx_close` in -> removed.
    pub fn lifecycle(&mut self) {
        let id = SubscriberId(self.next_id);
        self.next_id += 1;
        let fresh = self.next_fresh;
        self.next_fresh = if fresh + 1 == FRESH { 0 } else { fresh + 1 };
        self.session
            .subscribe(id, &self.fresh[fresh], JoinParams::none(), self.now)
            .expect("subscribe");
        self.settle();
        if self.app.last_joined.map(|(s, _)| s) != Some(id) {
            panic!("lifecycle: {} did not join", self.fresh[fresh]);
        }
        assert!(self.session.unsubscribe(id, self.now), "unsubscribe");
        self.settle();
        // Sleep until the session's next timer, as many times as it takes
        // for the grace to elapse and the channel to be left.
        while self.session.engine().topic(&*self.fresh[fresh]).is_some() {
            let due = self
                .session
                .poll_timeout()
                .expect("lifecycle: the drain timer is armed");
            self.now = self.now.max(due);
            self.session.handle_timeout(self.now);
            self.settle();
        }
    }

    /// One server push for a live channel, in a text frame: decoded, routed,
    /// its `Event::Message` handed to the one subscriber. Channels are
    /// visited with a fixed stride, as in `session.mjs`.
    pub fn message(&mut self) {
        let frame = &self.frames[self.cursor];
        self.cursor = (self.cursor + STRIDE) % self.frames.len();
        self.session.handle_frame(FrameRef::Text(frame), self.now);
        self.settle();
    }

    /// Drains the outputs of the last input, then delivers what the server
    /// queued, one frame at a time, draining after each (frames sent while
    /// delivering join the queue and go in the same pass).
    fn settle(&mut self) {
        self.drain();
        let mut i = 0;
        while i < self.server.inbox.len() {
            let frame = std::mem::take(&mut self.server.inbox[i]);
            self.session.handle_frame(FrameRef::Text(&frame), self.now);
            self.drain();
            i += 1;
        }
        self.server.inbox.clear();
    }

    /// Every output of the last input, handled as a driver handles it; then
    /// the instant to sleep until.
    fn drain(&mut self) {
        while let Some(output) = self.session.poll_output() {
            self.counts.outputs += 1;
            match output {
                Output::Transmit(Frame::Text(text)) => self.server.receive(&text),
                Output::Event(event) => self.app.on_event(event),
                Output::Diagnostic(diagnostic) => {
                    self.counts.diagnostics += 1;
                    self.last_diagnostic = Some(diagnostic);
                }
                other => panic!("the benchmark expects no {other:?}"),
            }
        }
        black_box(self.session.poll_timeout());
    }
}
