//! The client's session, optionally recorded: every input the driver gives
//! the session and every output it takes, written as JSON lines to a file
//! ([`ClientConfig::with_recording`](super::ClientConfig::with_recording)).
//! The lines are the pure [`Recorder`]'s; only the file is here.
//!
//! Writes go through a buffer flushed whenever the driver has drained the
//! session's outputs; they block the client's task for as long as the file
//! system takes, so record to local disk, for debugging.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::{FrameRef, Payload};
use crate::engine::{JoinRef, RoomId, SubscriberId, Switched};
use crate::phoenix::client::error::ConnectError;
use crate::session::record::{Input, Outcome, Recorder};
use crate::session::{
    ConnectionId, Disconnect, JoinParams, Output, PushError, PushId, PushOptions, PushTarget,
    Session, SubscribeError, SubscribeOptions,
};

/// The session with its recording, if one was asked for. Reads go to the
/// session itself (`Deref`); inputs and polled outputs are recorded.
pub(crate) struct RecordedSession {
    session: Session,
    tape: Option<Tape>,
}

struct Tape {
    recorder: Recorder,
    file: BufWriter<File>,
}

impl Tape {
    fn write(&mut self, line: &str) -> std::io::Result<()> {
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")
    }
}

impl Deref for RecordedSession {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl RecordedSession {
    /// `session`, started at `start`, recorded to `path` (created or
    /// truncated) when given, secrets kept only when `secrets`.
    pub(crate) fn new(
        session: Session,
        start: Instant,
        path: Option<&Path>,
        secrets: bool,
    ) -> Result<RecordedSession, ConnectError> {
        let tape = match path {
            None => None,
            Some(path) => {
                let failed = |error| ConnectError::Recording {
                    path: path.to_owned(),
                    error,
                };
                let recorder = Recorder::new(&session, start).with_secrets(secrets);
                let mut tape = Tape {
                    file: BufWriter::new(File::create(path).map_err(failed)?),
                    recorder,
                };
                let header = tape.recorder.header();
                tape.write(&header)
                    .and_then(|()| tape.file.flush())
                    .map_err(failed)?;
                Some(tape)
            }
        };
        Ok(RecordedSession { session, tape })
    }

    /// The input about to be applied and the outputs still queued, when
    /// recording.
    fn begin(&mut self, input: impl FnOnce(&mut Recorder) -> Input) -> Option<(Input, usize)> {
        let tape = self.tape.as_mut()?;
        Some((input(&mut tape.recorder), self.session.queued_outputs()))
    }

    /// Records an input applied at `now` with its outcome.
    fn end(
        &mut self,
        begun: Option<(Input, usize)>,
        outcome: impl FnOnce() -> Outcome,
        now: Instant,
    ) {
        let (Some(tape), Some((input, queued))) = (self.tape.as_mut(), begun) else {
            return;
        };
        let line = tape.recorder.input(&input, &outcome(), queued, now);
        if let Err(error) = tape.write(&line) {
            self.stop(&error);
        }
    }

    /// An input that returns nothing.
    fn plain(&mut self, input: Input, now: Instant, call: impl FnOnce(&mut Session)) {
        let begun = self.begin(|_| input);
        call(&mut self.session);
        self.end(begun, || Outcome::Done, now);
    }

    fn stop(&mut self, error: &std::io::Error) {
        tracing::error!(%error, "could not write the recording; recording stops");
        self.tape = None;
    }

    pub(crate) fn connect(&mut self, now: Instant) {
        self.plain(Input::Connect, now, |s| s.connect(now));
    }

    pub(crate) fn reconnect(&mut self, now: Instant) {
        self.plain(Input::Reconnect, now, |s| s.reconnect(now));
    }

    pub(crate) fn handle_connected(&mut self, id: ConnectionId, now: Instant) {
        self.plain(Input::Connected { id: id.0 }, now, |s| {
            s.handle_connected(id, now)
        });
    }

    pub(crate) fn handle_disconnected(&mut self, id: ConnectionId, why: Disconnect, now: Instant) {
        let begun = self.begin(|_| Input::Disconnected {
            id: id.0,
            why: why.clone(),
        });
        self.session.handle_disconnected(id, why, now);
        self.end(begun, || Outcome::Done, now);
    }

    pub(crate) fn handle_frame(&mut self, frame: FrameRef<'_>, now: Instant) {
        let begun = self.begin(|_| Input::frame(frame));
        self.session.handle_frame(frame, now);
        self.end(begun, || Outcome::Done, now);
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.plain(Input::Timeout, now, |s| s.handle_timeout(now));
    }

    pub(crate) fn subscribe(
        &mut self,
        id: SubscriberId,
        topic: &str,
        options: SubscribeOptions,
        now: Instant,
    ) -> Result<(), SubscribeError> {
        let begun = self.begin(|r| r.subscribe(id, topic, &options));
        let result = self.session.subscribe(id, topic, options, now);
        self.end(begun, || Outcome::of(&result), now);
        result
    }

    pub(crate) fn unsubscribe(&mut self, id: SubscriberId, now: Instant) -> bool {
        let begun = self.begin(|_| Input::Unsubscribe { id: id.0 });
        let found = self.session.unsubscribe(id, now);
        self.end(begun, || Outcome::found(found), now);
        found
    }

    pub(crate) fn open_room(&mut self, id: RoomId, now: Instant) -> Result<(), SubscribeError> {
        let begun = self.begin(|_| Input::OpenRoom { id: id.0 });
        let result = self.session.open_room(id);
        self.end(begun, || Outcome::of(&result), now);
        result
    }

    pub(crate) fn switch(
        &mut self,
        id: RoomId,
        topic: &str,
        params: JoinParams,
        now: Instant,
    ) -> Result<Switched, SubscribeError> {
        let begun = self.begin(|r| r.switch(id, topic, &params));
        let result = self.session.switch(id, topic, params, now);
        self.end(begun, || Outcome::of(&result), now);
        result
    }

    pub(crate) fn close_room(&mut self, id: RoomId, now: Instant) -> bool {
        let begun = self.begin(|_| Input::CloseRoom { id: id.0 });
        let found = self.session.close_room(id, now);
        self.end(begun, || Outcome::found(found), now);
        found
    }

    pub(crate) fn push(
        &mut self,
        id: PushId,
        target: PushTarget,
        event: &str,
        payload: &Payload,
        options: PushOptions,
        now: Instant,
    ) -> Result<(), PushError> {
        let begun = self.begin(|_| Input::push(id, &target, event, payload, options));
        let result = self.session.push(id, target, event, payload, options, now);
        self.end(begun, || Outcome::of(&result), now);
        result
    }

    pub(crate) fn cast(
        &mut self,
        target: PushTarget,
        event: &str,
        payload: &Payload,
        now: Instant,
    ) -> Result<(), PushError> {
        let begun = self.begin(|_| Input::cast(&target, event, payload));
        let result = self.session.cast(target, event, payload, now);
        self.end(begun, || Outcome::of(&result), now);
        result
    }

    pub(crate) fn handle_settled(
        &mut self,
        topic: &str,
        join_ref: JoinRef,
        result: Result<(), Option<Arc<str>>>,
        now: Instant,
    ) {
        let begun = self.begin(|_| Input::settled(topic, join_ref, &result));
        self.session.handle_settled(topic, join_ref, result, now);
        self.end(begun, || Outcome::Done, now);
    }

    pub(crate) fn close_all(&mut self, now: Instant) {
        self.plain(Input::CloseAll, now, |s| s.close_all(now));
    }

    pub(crate) fn disconnect(&mut self, now: Instant) {
        self.plain(Input::Disconnect, now, |s| s.disconnect(now));
    }

    /// The next output, recorded; the file is flushed once none is left.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        let output = self.session.poll_output();
        if let Some(tape) = self.tape.as_mut() {
            let written = match &output {
                Some(output) => {
                    let line = tape.recorder.output(output);
                    tape.write(&line)
                }
                None => tape.file.flush(),
            };
            if let Err(error) = written {
                self.stop(&error);
            }
        }
        output
    }
}
