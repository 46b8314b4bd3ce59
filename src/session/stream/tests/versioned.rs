//! Versioned streams: mounts, duplicates, resyncs.

use super::*;

fn versioned() -> OrderedStream<u64> {
    OrderedStream::new(StreamConfig::Versioned(VersionedConfig::default())).expect("valid")
}

fn patch(s: &mut OrderedStream<u64>, incarnation: u64, base: u64, version: u64) {
    s.handle_event(
        incarnation,
        Ok(Position::Version { base, version }),
        version,
        start(),
    );
}

#[test]
fn a_mount_settles_then_patches_follow_in_order() {
    let t0 = start();
    let mut s = versioned();
    s.on_join(7, t0);
    assert_eq!(s.resume_position(), None);
    s.handle_joined(7, None, t0);
    patch(&mut s, 7, 0, 1);
    patch(&mut s, 7, 1, 2);
    patch(&mut s, 7, 1, 2); // duplicate
    patch(&mut s, 7, 0, 1); // duplicate of the mount
    patch(&mut s, 7, 2, 3);
    assert_eq!(
        drain(&mut s),
        [StreamOutput::Settled { incarnation: 7 }, d(1), d(2), d(3)]
    );
    let stats = s.stats();
    assert_eq!((stats.position, stats.duplicates, stats.mounts), (3, 2, 1));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_first_envelope_that_is_not_the_mount_resyncs() {
    let t0 = start();
    let mut s = versioned();
    s.on_join(1, t0);
    patch(&mut s, 1, 4, 5);
    patch(&mut s, 1, 0, 1); // too late: this incarnation is done
    let resync = StreamOutput::Resync {
        reason: ResyncReason::BadMount {
            base: 4,
            version: 5,
        },
    };
    assert_eq!(drain(&mut s), [resync]);
    s.on_join(2, t0);
    patch(&mut s, 2, 0, 1);
    assert_eq!(
        drain(&mut s),
        [StreamOutput::Settled { incarnation: 2 }, d(1)]
    );
}

#[test]
fn a_gap_or_a_base_mismatch_resyncs_and_nothing_follows_until_the_next_mount() {
    for (base, version) in [(2, 4), (1, 3), (3, 4)] {
        let t0 = start();
        let mut s = versioned();
        s.on_join(1, t0);
        patch(&mut s, 1, 0, 1);
        patch(&mut s, 1, 1, 2);
        let _ = drain(&mut s);
        patch(&mut s, 1, base, version);
        let resync = StreamOutput::Resync {
            reason: ResyncReason::Gap {
                current: 2,
                base,
                version,
            },
        };
        assert_eq!(drain(&mut s), [resync]);
        patch(&mut s, 1, 2, 3);
        assert_eq!(drain(&mut s), [], "the broken incarnation delivers nothing");
        assert_eq!(s.stats().position, 0);
        s.on_join(2, t0);
        patch(&mut s, 2, 3, 4);
        assert_eq!(
            drain(&mut s).len(),
            1,
            "the next incarnation must mount first"
        );
        assert_eq!(s.stats().resyncs, 2);
    }
}

#[test]
fn every_incarnation_mounts_afresh() {
    let t0 = start();
    let mut s = versioned();
    s.on_join(1, t0);
    patch(&mut s, 1, 0, 1);
    patch(&mut s, 1, 1, 2);
    s.on_join(2, t0);
    patch(&mut s, 1, 2, 3); // late, of the old incarnation
    patch(&mut s, 2, 0, 1);
    assert_eq!(
        drain(&mut s),
        [
            StreamOutput::Settled { incarnation: 1 },
            d(1),
            d(2),
            StreamOutput::Settled { incarnation: 2 },
            d(1)
        ]
    );
    assert_eq!(s.stats().ignored, 1);
}

#[test]
fn malformed_envelopes_are_reported() {
    let t0 = start();
    let mut s = versioned();
    s.on_join(1, t0);
    patch(&mut s, 1, 3, 3);
    s.handle_event(1, Ok(Position::Seq(1)), 0, t0);
    s.handle_event(1, Err(PositionError::NotAnInteger), 0, t0);
    patch(&mut s, 1, 0, 1);
    let malformed = |error| StreamOutput::Malformed { error };
    assert_eq!(
        drain(&mut s),
        [
            malformed(PositionError::VersionNotAfterBase {
                base: 3,
                version: 3
            }),
            malformed(PositionError::UnexpectedSeq),
            malformed(PositionError::NotAnInteger),
            StreamOutput::Settled { incarnation: 1 },
            d(1),
        ]
    );
    s.handle_ack_result(1, true, t0);
    s.handle_replay_result(1, Ok(()), t0);
    s.handle_timeout(t0);
    assert_eq!(drain(&mut s), []);
    assert_eq!(s.stats().stale_answers, 2);
}
