//! The stream model's state, actions and steps: every action feeds the real
//! streams and drains all of their outputs, which the client acts on and the
//! checks of [`super::props`] look at.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use channel_registry::session::stream::{
    OrderedStream, Position, Recovery, RejoinReason, ResyncReason, SequencedConfig, StreamConfig,
    StreamOutput, VersionedConfig,
};
use stateright::{Model, Property};

use super::props::{self, Milestone, Prop};
use super::server::{Channel, Frame, Item, SeqLog, Tag};
use super::{epoch, StreamMode, StreamsCfg};

/// How long the stream waits to acknowledge a quiet stream.
const ACK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a gap may stay open.
const GAP_TIMEOUT: Duration = Duration::from_secs(3);

/// One nondeterministic step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The server publishes the next event or patch of a topic.
    Publish(u8),
    /// The client takes the frame at the head of the queue.
    Deliver,
    /// The client takes frame `i` (an event or patch) ahead of the others
    /// (a fault).
    Ahead(usize),
    /// Frame `i` (an event or patch) is lost (a fault).
    Drop(usize),
    /// Frame `i` (an event or patch) arrives twice (a fault).
    Duplicate(usize),
    /// The answer in frame `i` becomes an error or a timeout (a fault).
    Refuse(usize),
    /// The channel of a topic crashes on the server (a fault).
    Crash(u8),
    /// The socket drops; every topic rejoins on the next one (a fault).
    SocketDrop,
    /// The client joins a topic again while its channel is up, as after a
    /// join timeout; the server replaces the old channel (a fault).
    DuplicateJoin(u8),
    /// The server evicts its oldest event, holding more than the window.
    Evict(u8),
    /// The server sends a patch that skips a version (a fault).
    Skip(u8),
    /// The clock jumps to a stream's deadline and its timers fire.
    Tick(u8),
    /// The room switches to the second topic.
    Switch,
}

/// The client's side of one topic, and the server's channel and data for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topic {
    /// The real stream; `None` before the topic is joined and after it is
    /// left.
    pub stream: Option<OrderedStream<Item>>,
    /// The incarnation the client joined last.
    pub inc: u8,
    /// The server's channel.
    pub chan: Channel,
    /// Sequenced: the server's log.
    pub log: SeqLog,
    /// Versioned: the server's version in its current incarnation.
    pub version: u8,
    /// Sequenced: positions sent to the current incarnation and lost on the
    /// wire (bit `p`), which the stream may give up on after `gap_timeout`.
    pub dropped: u16,
    /// What the consumer has seen (from the outputs alone).
    pub ghost: Ghost,
}

/// What a consumer of one stream has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Sequenced: the last position delivered or reported lost. Versioned:
    /// the last version delivered in the current mount.
    pub cursor: u8,
    /// Versioned: the incarnation of the current mount, if mounted.
    pub mount: Option<u8>,
}

/// A room that shows one versioned topic at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Room {
    /// The topic shown (none before the first mount).
    pub shows: Option<u8>,
    /// The topic asked for.
    pub wants: u8,
    /// The last version shown.
    pub version: u8,
}

/// The first message of the first property a path broke. Not part of the
/// state's identity.
#[derive(Clone, Debug, Default)]
pub struct Note(pub Option<String>);

impl Hash for Note {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}
impl PartialEq for Note {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Note {}

/// One state of the stream model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The topics (one sequenced, or the room's two versioned ones).
    pub topics: Vec<Topic>,
    /// Frames on their way to the client, in order.
    pub queue: Vec<Frame>,
    /// The model clock, since the epoch.
    pub now: Duration,
    /// Faults left.
    pub faults: u8,
    /// The next join_ref.
    pub next_inc: u8,
    /// The room (versioned).
    pub room: Option<Room>,
    /// Properties broken on the way here ([`Prop::bit`]).
    pub broken: u16,
    /// Milestones reached by the last step ([`Milestone::bit`]).
    pub reached: u16,
    /// The message of the first property broken.
    pub note: Note,
}

impl State {
    /// Records a broken property with its message.
    pub fn flag(&mut self, prop: Prop, msg: impl FnOnce() -> String) {
        if self.broken & prop.bit() == 0 {
            self.broken |= prop.bit();
            if self.note.0.is_none() {
                self.note.0 = Some(format!("{}: {}", prop.name(), msg()));
            }
        }
    }

    fn reach(&mut self, m: Milestone) {
        self.reached |= m.bit();
    }

    /// Whether a frame of the current incarnation of topic `t` is on its way.
    pub fn awaited(&self, t: u8) -> bool {
        let inc = self.topics[usize::from(t)].inc;
        self.queue.iter().any(|f| f.owner() == (t, inc))
    }
}

/// The stateright model of ordered streams.
#[derive(Clone, Debug)]
pub struct StreamsModel {
    /// The bounds.
    pub cfg: StreamsCfg,
}

impl StreamsModel {
    /// The model of `cfg`.
    pub fn new(cfg: StreamsCfg) -> Self {
        StreamsModel { cfg }
    }

    fn stream_config(&self) -> StreamConfig {
        match self.cfg.mode {
            StreamMode::Sequenced => StreamConfig::Sequenced(SequencedConfig {
                ack_every: u32::from(self.cfg.ack_every),
                ack_interval: ACK_INTERVAL,
                max_held: usize::from(self.cfg.max_held),
                gap_timeout: GAP_TIMEOUT,
                max_backwards: 100,
                recovery: Recovery::Replay,
            }),
            StreamMode::Versioned => StreamConfig::Versioned(VersionedConfig::default()),
        }
    }

    fn new_topic(&self) -> Topic {
        Topic {
            stream: None,
            inc: 0,
            chan: Channel { inc: 0, up: false },
            log: SeqLog::new(),
            version: 0,
            dropped: 0,
            ghost: Ghost::default(),
        }
    }

    /// Whether the last position of a run is in `frame` (never dropped).
    fn last_position(&self, frame: &Frame) -> bool {
        match frame {
            Frame::Event { item, .. } => item.pos >= self.cfg.events,
            Frame::Patch { item, .. } => item.pos >= self.cfg.versions,
            _ => true,
        }
    }

    /// Topic `t` joins a new incarnation, and the server takes the join.
    fn join(&self, s: &mut State, t: u8) {
        let inc = s.next_inc;
        s.next_inc += 1;
        let now = epoch() + s.now;
        let topic = &mut s.topics[usize::from(t)];
        let stream = topic
            .stream
            .get_or_insert_with(|| OrderedStream::new(self.stream_config()).expect("valid"));
        stream.on_join(u64::from(inc), now);
        let resume = stream.resume_position();
        topic.inc = inc;
        topic.dropped = 0;
        topic.ghost.mount = None;
        topic.chan = Channel { inc, up: true };
        match self.cfg.mode {
            StreamMode::Sequenced => {
                let last = resume.map_or(0, |p| u8::try_from(p).unwrap_or(u8::MAX));
                topic.log.join(t, inc, last, &mut s.queue);
            }
            StreamMode::Versioned => {
                topic.version = 1;
                s.queue.push(Frame::JoinOk {
                    topic: t,
                    inc,
                    earliest: None,
                });
                s.queue.push(Frame::Patch {
                    topic: t,
                    base: 0,
                    item: Item {
                        pos: 1,
                        inc,
                        tag: Tag::Live,
                    },
                });
            }
        }
    }

    /// The client takes one frame.
    fn take(&self, s: &mut State, frame: Frame) {
        let (t, inc) = frame.owner();
        let ti = usize::from(t);
        if s.topics[ti].stream.is_none() {
            return; // the topic was left
        }
        if let Frame::Crashed { .. } = frame {
            if inc == s.topics[ti].inc {
                self.join(s, t);
                self.drain(s, t);
            }
            return;
        }
        let now = epoch() + s.now;
        let topic = &mut s.topics[ti];
        let current = topic.inc;
        let Some(stream) = topic.stream.as_mut() else {
            return;
        };
        let ignored = stream.stats().ignored;
        match frame {
            Frame::Event { item, .. } => stream.handle_event(
                u64::from(inc),
                Ok(Position::Seq(u64::from(item.pos))),
                item,
                now,
            ),
            Frame::Patch { base, item, .. } => stream.handle_event(
                u64::from(inc),
                Ok(Position::Version {
                    base: u64::from(base),
                    version: u64::from(item.pos),
                }),
                item,
                now,
            ),
            Frame::JoinOk { earliest, .. } => {
                stream.handle_joined(u64::from(inc), earliest.map(u64::from), now)
            }
            // Answers reach the push they answer, on its own channel: one of
            // an older incarnation never reaches the stream.
            Frame::AckReply { upto, ok, .. } if inc == current => {
                stream.handle_ack_result(u64::from(upto), ok, now)
            }
            Frame::ReplayReply { from, result, .. } if inc == current => stream
                .handle_replay_result(u64::from(from), result.map_err(|e| e.map(u64::from)), now),
            Frame::AckReply { .. } | Frame::ReplayReply { .. } | Frame::Crashed { .. } => {}
        }
        if stream.stats().ignored > ignored && inc != current {
            s.reach(Milestone::StaleIgnored);
        }
        self.drain(s, t);
    }

    /// Drains every output of topic `t`'s stream and acts on it.
    fn drain(&self, s: &mut State, t: u8) {
        let ti = usize::from(t);
        let mut leave = None;
        while let Some(out) = s.topics[ti].stream.as_mut().and_then(|x| x.poll_output()) {
            match out {
                StreamOutput::Deliver { position, item } => self.delivered(s, t, position, item),
                StreamOutput::Lost { from, to } => {
                    let log = s.topics[ti].log;
                    if (from..=to).all(|p| u8::try_from(p).is_ok_and(|p| !log.holds(p))) {
                        s.reach(Milestone::LossReported);
                    }
                    props::lost(s, t, from, to, self.cfg.strict_loss);
                }
                StreamOutput::SendAck { upto } => {
                    props::ack(s, t, upto);
                    let topic = &mut s.topics[ti];
                    let inc = topic.inc;
                    let upto = u8::try_from(upto).unwrap_or(u8::MAX);
                    let up = topic.chan.up && topic.chan.inc == inc;
                    if up && topic.log.ack(upto) {
                        s.reach(Milestone::Trimmed);
                    }
                    s.queue.push(Frame::AckReply {
                        topic: t,
                        inc,
                        upto,
                        // A push to a channel that is gone times out.
                        ok: up,
                    });
                }
                StreamOutput::RequestReplay { from } => {
                    let topic = &s.topics[ti];
                    let inc = topic.inc;
                    let from = u8::try_from(from).unwrap_or(u8::MAX);
                    if topic.chan.up && topic.chan.inc == inc {
                        topic.log.replay(t, inc, from, &mut s.queue);
                    } else {
                        s.queue.push(Frame::ReplayReply {
                            topic: t,
                            inc,
                            from,
                            result: Err(None),
                        });
                    }
                }
                StreamOutput::Rejoin { reason } => {
                    if matches!(reason, RejoinReason::Overflow { .. }) {
                        s.reach(Milestone::Overflow);
                    }
                    self.join(s, t);
                }
                StreamOutput::Resync { reason } => {
                    if matches!(reason, ResyncReason::Gap { base, version, .. } if version > base + 1)
                    {
                        s.reach(Milestone::SkipResynced);
                    }
                    s.topics[ti].ghost.mount = None;
                    self.join(s, t);
                }
                StreamOutput::Settled { incarnation } => {
                    let topic = &mut s.topics[ti];
                    let resynced = topic.stream.as_ref().is_some_and(|x| x.stats().resyncs > 0);
                    topic.ghost = Ghost {
                        cursor: 0,
                        mount: Some(u8::try_from(incarnation).unwrap_or(u8::MAX)),
                    };
                    if resynced {
                        s.reach(Milestone::Remounted);
                    }
                    if let Some(room) = s.room.as_mut() {
                        if room.wants == t && room.shows != Some(t) {
                            // The topic switched to mounted: the room moves.
                            if room.shows.is_some() {
                                leave = room.shows;
                                s.reached |= Milestone::Switched.bit();
                            }
                            room.shows = Some(t);
                        }
                        if room.shows == Some(t) {
                            // A new mount of the topic shown starts again.
                            room.version = 0;
                        }
                    }
                }
                StreamOutput::Malformed { error } => {
                    s.flag(Prop::Once, || {
                        format!("a well-formed event was reported malformed: {error}")
                    });
                }
                other => s.flag(Prop::Once, || format!("unexpected output {other:?}")),
            }
        }
        if let Some(old) = leave {
            // The room no longer shows it: the topic is left.
            let topic = &mut s.topics[usize::from(old)];
            topic.stream = None;
            topic.chan.up = false;
            s.queue.retain(|f| f.owner().0 != old);
        }
    }

    fn delivered(&self, s: &mut State, t: u8, position: u64, item: Item) {
        match item.tag {
            Tag::Requested => s.reach(Milestone::ReplayRecovered),
            Tag::JoinReplay => s.reach(Milestone::JoinReplayed),
            Tag::Live => {}
        }
        match self.cfg.mode {
            StreamMode::Sequenced => props::delivered_seq(s, t, position, item),
            StreamMode::Versioned => props::delivered_version(s, t, position, item),
        }
    }

    /// Whether topic `t`'s server may publish now.
    fn can_publish(&self, s: &State, t: u8) -> bool {
        let topic = &s.topics[usize::from(t)];
        if s.queue.len() >= usize::from(self.cfg.in_flight) {
            return false;
        }
        match self.cfg.mode {
            // The log takes events whether or not a channel is up.
            StreamMode::Sequenced => topic.log.published < self.cfg.events,
            StreamMode::Versioned => {
                topic.chan.up && topic.version >= 1 && topic.version < self.cfg.versions
            }
        }
    }

    /// Whether nothing is left to happen but faults: no frame on the way, no
    /// timer armed, nothing left to publish, no switch pending.
    pub fn quiet(&self, s: &State) -> bool {
        s.queue.is_empty()
            && (0..s.topics.len() as u8).all(|t| {
                let topic = &s.topics[usize::from(t)];
                !self.can_publish(s, t)
                    && topic
                        .stream
                        .as_ref()
                        .is_none_or(|x| x.poll_timeout().is_none())
            })
            && s.room.is_none_or(|r| r.shows == Some(r.wants))
    }
}

impl Model for StreamsModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let topics = match self.cfg.mode {
            StreamMode::Sequenced => 1,
            StreamMode::Versioned => 2,
        };
        let mut s = State {
            topics: (0..topics).map(|_| self.new_topic()).collect(),
            queue: Vec::new(),
            now: Duration::ZERO,
            faults: self.cfg.faults,
            next_inc: 1,
            room: (self.cfg.mode == StreamMode::Versioned).then_some(Room {
                shows: None,
                wants: 0,
                version: 0,
            }),
            broken: 0,
            reached: 0,
            note: Note::default(),
        };
        self.join(&mut s, 0);
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.broken != 0 {
            return; // the path is a counterexample already
        }
        let n = s.topics.len() as u8;
        let fault = s.faults > 0;
        for t in 0..n {
            if self.can_publish(s, t) {
                actions.push(Action::Publish(t));
            }
        }
        if !s.queue.is_empty() {
            actions.push(Action::Deliver);
        }
        if fault {
            for (i, f) in s.queue.iter().enumerate() {
                if !f.is_data() {
                    if f.refused().is_some() {
                        actions.push(Action::Refuse(i));
                    }
                    continue;
                }
                // A channel's pushes never overtake its join reply (the
                // channel process sends the reply first, on one socket).
                let (t, inc) = f.owner();
                let behind_join = s.queue[..i].iter().any(
                    |g| matches!(*g, Frame::JoinOk { topic, inc: j, .. } if (topic, j) == (t, inc)),
                );
                if i > 0 && !behind_join {
                    actions.push(Action::Ahead(i));
                }
                if !self.last_position(f) {
                    actions.push(Action::Drop(i));
                }
                if s.queue.len() < usize::from(self.cfg.in_flight) {
                    actions.push(Action::Duplicate(i));
                }
            }
        }
        for t in 0..n {
            let topic = &s.topics[usize::from(t)];
            let Some(stream) = topic.stream.as_ref() else {
                continue;
            };
            let live = topic.chan.up && topic.chan.inc == topic.inc;
            if fault && live {
                actions.push(Action::Crash(t));
                actions.push(Action::DuplicateJoin(t));
                if self.cfg.mode == StreamMode::Versioned
                    && topic.version >= 1
                    && topic.version + 2 <= self.cfg.versions
                    && s.queue.len() < usize::from(self.cfg.in_flight)
                {
                    actions.push(Action::Skip(t));
                }
            }
            if self.cfg.mode == StreamMode::Sequenced && topic.log.held() > self.cfg.window {
                actions.push(Action::Evict(t));
            }
            if stream.poll_timeout().is_some() && !s.awaited(t) {
                actions.push(Action::Tick(t));
            }
        }
        if fault && s.topics.iter().any(|t| t.chan.up) {
            actions.push(Action::SocketDrop);
        }
        if let Some(room) = s.room {
            if room.wants == 0 && room.shows == Some(0) && n > 1 {
                actions.push(Action::Switch);
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        s.reached = 0;
        match action {
            Action::Publish(t) => {
                let topic = &mut s.topics[usize::from(t)];
                match self.cfg.mode {
                    StreamMode::Sequenced => {
                        topic.log.published += 1;
                        let pos = topic.log.published;
                        if topic.chan.up {
                            let inc = topic.chan.inc;
                            s.queue.push(Frame::Event {
                                topic: t,
                                item: Item {
                                    pos,
                                    inc,
                                    tag: Tag::Live,
                                },
                            });
                        }
                    }
                    StreamMode::Versioned => {
                        let base = topic.version;
                        topic.version += 1;
                        let item = Item {
                            pos: topic.version,
                            inc: topic.chan.inc,
                            tag: Tag::Live,
                        };
                        s.queue.push(Frame::Patch {
                            topic: t,
                            base,
                            item,
                        });
                    }
                }
            }
            Action::Deliver => {
                let frame = s.queue.remove(0);
                self.take(&mut s, frame);
            }
            Action::Ahead(i) => {
                s.faults -= 1;
                let frame = s.queue.remove(i);
                self.take(&mut s, frame);
            }
            Action::Drop(i) => {
                s.faults -= 1;
                if let Frame::Event { topic, item } = s.queue.remove(i) {
                    let topic = &mut s.topics[usize::from(topic)];
                    if item.inc == topic.inc {
                        topic.dropped |= 1 << item.pos;
                    }
                }
            }
            Action::Duplicate(i) => {
                s.faults -= 1;
                let frame = s.queue[i];
                s.queue.push(frame);
            }
            Action::Refuse(i) => {
                s.faults -= 1;
                s.queue[i] = s.queue[i].refused()?;
            }
            Action::Crash(t) => {
                s.faults -= 1;
                let topic = &mut s.topics[usize::from(t)];
                topic.chan.up = false;
                let inc = topic.chan.inc;
                s.queue.push(Frame::Crashed { topic: t, inc });
            }
            Action::SocketDrop => {
                s.faults -= 1;
                s.queue.clear();
                for t in 0..s.topics.len() as u8 {
                    let topic = &mut s.topics[usize::from(t)];
                    topic.chan.up = false;
                    if topic.stream.is_some() {
                        self.join(&mut s, t);
                        self.drain(&mut s, t);
                    }
                }
            }
            Action::DuplicateJoin(t) => {
                s.faults -= 1;
                self.join(&mut s, t);
                self.drain(&mut s, t);
            }
            Action::Evict(t) => s.topics[usize::from(t)].log.earliest += 1,
            Action::Skip(t) => {
                s.faults -= 1;
                let topic = &mut s.topics[usize::from(t)];
                let base = topic.version;
                topic.version += 2;
                let item = Item {
                    pos: topic.version,
                    inc: topic.chan.inc,
                    tag: Tag::Live,
                };
                s.queue.push(Frame::Patch {
                    topic: t,
                    base,
                    item,
                });
            }
            Action::Tick(t) => {
                let topic = &mut s.topics[usize::from(t)];
                let stream = topic.stream.as_mut()?;
                let at = stream.poll_timeout()?;
                s.now = s.now.max(at.saturating_duration_since(epoch()));
                stream.handle_timeout(epoch() + s.now);
                self.drain(&mut s, t);
            }
            Action::Switch => {
                if let Some(room) = s.room.as_mut() {
                    room.wants = 1;
                }
                self.join(&mut s, 1);
                self.drain(&mut s, 1);
            }
        }
        props::after_step(self, &mut s);
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        props::properties(self.cfg.mode)
    }

    fn format_action(&self, action: &Action) -> String {
        format!("{action:?}")
    }
}
