//! Replay: a recording re-run through a fresh session, audited after every
//! step, every output compared with the recorded one.

use std::time::{Duration, Instant};

use crate::engine::audit::{check_structure, Violation};
use crate::session::record::{Input, Line, Outcome, RecordedOutput, FORMAT_VERSION};
use crate::session::{Session, SessionConfigError};

/// Why a replay stopped. Lines are numbered from 1, as editors show them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The recording has no header line.
    #[error("the recording is empty: it must start with its header line")]
    Empty,
    /// A line is not a recording line.
    #[error("line {line} is not a recording line ({error}); was the file cut or edited?")]
    Parse {
        /// The line.
        line: usize,
        /// What was wrong.
        error: String,
    },
    /// The first line is not a header.
    #[error("line 1 is not a header: a recording starts with the session's configuration")]
    MissingHeader,
    /// A header where only inputs and outputs may be.
    #[error("line {line} is a second header: split concatenated recordings and replay each")]
    SecondHeader {
        /// The line.
        line: usize,
    },
    /// The recording's format is not this crate's.
    #[error(
        "the recording has format {found}, this crate replays format {expected}: replay it \
         with the crate version that wrote it ({crate_version})"
    )]
    Format {
        /// The recording's format.
        found: u32,
        /// This crate's format.
        expected: u32,
        /// The crate version that wrote it.
        crate_version: String,
    },
    /// The recorded configuration is refused.
    #[error("the recorded configuration is refused: {0}")]
    Config(#[from] SessionConfigError),
    /// The engine's bookkeeping broke after an input: a bug reproduced.
    #[error("after line {line} ({input}) the engine's bookkeeping broke: {violation}")]
    Audit {
        /// The input's line.
        line: usize,
        /// The input.
        input: &'static str,
        /// What broke.
        violation: Violation,
    },
    /// An input returned something else than when it was recorded.
    #[error("line {line} ({input}) returned {replayed:?}, the recording says {recorded:?}")]
    Outcome {
        /// The input's line.
        line: usize,
        /// The input.
        input: &'static str,
        /// What the recording says.
        recorded: Outcome,
        /// What the replay returned.
        replayed: Outcome,
    },
    /// Before an input, a different number of outputs waited to be polled:
    /// the replay produced outputs the recording does not have, or lacks
    /// some.
    #[error(
        "before line {line} ({input}) {replayed} outputs waited in the replay, {recorded} in \
         the recording"
    )]
    Queued {
        /// The input's line.
        line: usize,
        /// The input.
        input: &'static str,
        /// Outputs waiting in the recording.
        recorded: usize,
        /// Outputs waiting in the replay.
        replayed: usize,
    },
    /// An output differs from the recorded one (both normalized).
    #[error(
        "line {line}: after line {input_line} ({input}) the recording has {recorded:?}, the \
         replay {replayed:?}"
    )]
    Output {
        /// The output's line.
        line: usize,
        /// The line of the input it followed.
        input_line: usize,
        /// That input.
        input: &'static str,
        /// The recorded output, normalized.
        recorded: Box<RecordedOutput>,
        /// The replay's output, normalized (`None`: the replay had none).
        replayed: Option<Box<RecordedOutput>>,
    },
}

/// What a replay went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// Lines read, the header included.
    pub lines: usize,
    /// Inputs applied.
    pub inputs: usize,
    /// Outputs compared.
    pub outputs: usize,
    /// The recording's span: the time of its last input.
    pub span: Duration,
}

/// A replay in progress, fed one line at a time (for progress reports on
/// long recordings). [`replay`] does it all at once.
#[derive(Debug)]
pub struct Replayer {
    session: Session,
    base: Instant,
    summary: ReplaySummary,
    /// The last input's line and name.
    last_input: (usize, &'static str),
}

impl Replayer {
    /// Starts a replay from the recording's header line; `base` stands for
    /// the instant the recorded session started (any instant will do).
    pub fn new(header: &str, base: Instant) -> Result<Replayer, ReplayError> {
        let Line::Header {
            format,
            crate_version,
            config,
        } = parse(1, header)?
        else {
            return Err(ReplayError::MissingHeader);
        };
        if format != FORMAT_VERSION {
            return Err(ReplayError::Format {
                found: format,
                expected: FORMAT_VERSION,
                crate_version,
            });
        }
        let session = Session::new(config.to_config(), base)?;
        Ok(Replayer {
            session,
            base,
            summary: ReplaySummary {
                lines: 1,
                ..ReplaySummary::default()
            },
            last_input: (1, "header"),
        })
    }

    /// Replays the next line (numbered `line` from 1: the header is line 1).
    /// Blank lines are skipped.
    pub fn line(&mut self, line: usize, text: &str) -> Result<(), ReplayError> {
        self.summary.lines = line;
        if text.trim().is_empty() {
            return Ok(());
        }
        match parse(line, text)? {
            Line::Header { .. } => Err(ReplayError::SecondHeader { line }),
            Line::Input {
                at_ns,
                queued,
                input,
                outcome,
            } => self.input(line, at_ns, queued, &input, outcome),
            Line::Output(recorded) => self.output(line, &recorded),
        }
    }

    fn input(
        &mut self,
        line: usize,
        at_ns: u64,
        queued: usize,
        input: &Input,
        recorded: Outcome,
    ) -> Result<(), ReplayError> {
        let name = input.name();
        self.last_input = (line, name);
        let replayed_queue = self.session.queued_outputs();
        if replayed_queue != queued {
            return Err(ReplayError::Queued {
                line,
                input: name,
                recorded: queued,
                replayed: replayed_queue,
            });
        }
        let at = Duration::from_nanos(at_ns);
        let now = self.base.checked_add(at).unwrap_or(self.base);
        let replayed = self.session.apply(input, now);
        self.summary.inputs += 1;
        self.summary.span = self.summary.span.max(at);
        check_structure(self.session.engine()).map_err(|violation| ReplayError::Audit {
            line,
            input: name,
            violation,
        })?;
        if replayed != recorded {
            return Err(ReplayError::Outcome {
                line,
                input: name,
                recorded,
                replayed,
            });
        }
        Ok(())
    }

    fn output(&mut self, line: usize, recorded: &RecordedOutput) -> Result<(), ReplayError> {
        let recorded = recorded.normalized();
        let replayed = self
            .session
            .poll_output()
            .map(|o| RecordedOutput::new(&o, false).normalized());
        self.summary.outputs += 1;
        if replayed.as_ref() == Some(&recorded) {
            return Ok(());
        }
        let (input_line, input) = self.last_input;
        Err(ReplayError::Output {
            line,
            input_line,
            input,
            recorded: Box::new(recorded),
            replayed: replayed.map(Box::new),
        })
    }

    /// What the replay went through so far.
    pub fn summary(&self) -> ReplaySummary {
        self.summary
    }

    /// The session being replayed (for inspection after a mismatch).
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// Replays a whole recording (`text`: its lines), `base` standing for the
/// instant the recorded session started. Stops at the first mismatch.
pub fn replay(text: &str, base: Instant) -> Result<ReplaySummary, ReplayError> {
    let mut lines = text.lines();
    let header = lines.next().ok_or(ReplayError::Empty)?;
    let mut replayer = Replayer::new(header, base)?;
    for (i, line) in lines.enumerate() {
        replayer.line(i + 2, line)?;
    }
    Ok(replayer.summary())
}

fn parse(line: usize, text: &str) -> Result<Line, ReplayError> {
    serde_json::from_str(text).map_err(|e| ReplayError::Parse {
        line,
        error: e.to_string(),
    })
}
