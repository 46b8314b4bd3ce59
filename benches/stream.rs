//! Per-event cost of the ordered stream: in-order delivery with batched
//! acknowledgements, a gap of 1 000 held then filled, and versioned patches.
//! Run: `cargo bench --bench stream`.
//!
//! Each iteration feeds a batch of events and drains every output (answering
//! acknowledgements and replay requests at once, as a fast server would), so
//! the figure is the whole cost per event, output handling included. Items
//! are `u64`: the figure is the stream's own work, not moving payloads.

use std::hint::black_box;
use std::time::{Duration, Instant};

use channel_registry::session::stream::{
    OrderedStream, Position, SequencedConfig, StreamConfig, StreamOutput, VersionedConfig,
};
use criterion::{Criterion, Throughput};

const BATCH: u64 = 1_000;

#[allow(clippy::disallowed_methods)] // one base instant; the stream never reads a clock
fn start() -> Instant {
    Instant::now()
}

/// Drains the outputs, answering what a server would answer.
fn drain(stream: &mut OrderedStream<u64>, now: Instant) -> u64 {
    let mut delivered = 0;
    while let Some(output) = stream.poll_output() {
        match output {
            StreamOutput::Deliver { item, .. } => delivered += black_box(item) & 1,
            StreamOutput::SendAck { upto } => stream.handle_ack_result(upto, true, now),
            StreamOutput::RequestReplay { from } => stream.handle_replay_result(from, Ok(()), now),
            StreamOutput::Settled { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    delivered
}

fn sequenced(now: Instant) -> OrderedStream<u64> {
    let config = StreamConfig::Sequenced(SequencedConfig::default());
    let mut stream = OrderedStream::new(config).expect("valid config");
    stream.on_join(1, now);
    stream.handle_joined(1, None, now);
    stream
}

fn bench(c: &mut Criterion) {
    let now = start();
    let mut g = c.benchmark_group("stream");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    // In order, acknowledged every 100 (the default).
    let mut stream = sequenced(now);
    let mut next = 1;
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("sequenced_steady", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                stream.handle_event(1, Ok(Position::Seq(next)), next, now);
                next += 1;
                drain(&mut stream, now);
            }
        })
    });
    assert_eq!(stream.stats().position, next - 1);
    assert!(
        next == 1 || stream.stats().acks_sent > 0,
        "acks were batched"
    );

    // One missing position, 1 000 held behind it, then the replay fills it.
    let mut stream = sequenced(now);
    let mut next = 1;
    g.throughput(Throughput::Elements(BATCH + 1));
    g.bench_function("sequenced_replay", |b| {
        b.iter(|| {
            for p in next + 1..=next + BATCH {
                stream.handle_event(1, Ok(Position::Seq(p)), p, now);
                drain(&mut stream, now);
            }
            stream.handle_event(1, Ok(Position::Seq(next)), next, now);
            drain(&mut stream, now);
            next += BATCH + 1;
        })
    });
    let stats = stream.stats();
    assert_eq!((stats.position, stats.held), (next - 1, 0));
    assert_eq!(stats.replays, stats.gaps);

    // Patches after the mount.
    let config = StreamConfig::Versioned(VersionedConfig::default());
    let mut stream = OrderedStream::new(config).expect("valid config");
    stream.on_join(1, now);
    stream.handle_joined(1, None, now);
    let mut version = 0;
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("versioned_steady", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let position = Position::Version {
                    base: version,
                    version: version + 1,
                };
                stream.handle_event(1, Ok(position), version + 1, now);
                version += 1;
                drain(&mut stream, now);
            }
        })
    });
    assert_eq!(stream.stats().position, version);
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
