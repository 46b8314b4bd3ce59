//! One test per rule, on a simulated clock.

mod sequenced;
mod versioned;

use std::time::{Duration, Instant};

use super::*;

type Out = StreamOutput<u64>;

#[allow(clippy::disallowed_methods)] // one base instant for a simulated clock
fn start() -> Instant {
    Instant::now()
}

/// Acknowledgements out of the way, so that a test sees only what it is about.
fn no_acks() -> SequencedConfig {
    SequencedConfig {
        ack_every: u32::MAX,
        ack_interval: Duration::MAX,
        ..SequencedConfig::default()
    }
}

fn sequenced(config: SequencedConfig) -> OrderedStream<u64> {
    OrderedStream::new(StreamConfig::Sequenced(config)).expect("valid config")
}

/// A sequenced stream whose incarnation 1 is joined.
fn joined(config: SequencedConfig, now: Instant) -> OrderedStream<u64> {
    let mut s = sequenced(config);
    s.on_join(1, now);
    s.handle_joined(1, None, now);
    assert_eq!(drain(&mut s), []);
    s
}

/// An event whose item is its own position.
fn ev(s: &mut OrderedStream<u64>, incarnation: u64, seq: u64, now: Instant) {
    s.handle_event(incarnation, Ok(Position::Seq(seq)), seq, now);
}

fn drain(s: &mut OrderedStream<u64>) -> Vec<Out> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn d(position: u64) -> Out {
    StreamOutput::Deliver {
        position,
        item: position,
    }
}

fn lost(from: u64, to: u64) -> Out {
    StreamOutput::Lost { from, to }
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn streams_are_values() {
    let t0 = start();
    let mut a = joined(no_acks(), t0);
    ev(&mut a, 1, 2, t0);
    let b = a.clone();
    assert_eq!(a, b);
    assert!(format!("{b:?}").contains("held"));
}
