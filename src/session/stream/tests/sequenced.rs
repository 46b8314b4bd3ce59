//! Sequenced streams: delivery, gaps, replay, rejoin, loss, acknowledgements.

use super::*;

#[test]
fn delivers_in_order_from_one() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    for p in 1..=3 {
        ev(&mut s, 1, p, t0);
    }
    assert_eq!(drain(&mut s), [d(1), d(2), d(3)]);
    assert_eq!(s.resume_position(), Some(3));
    assert_eq!(s.stats().delivered, 3);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 2, t0);
    ev(&mut s, 1, 2, t0); // the last delivered
    ev(&mut s, 1, 1, t0); // below it
    ev(&mut s, 1, 5, t0); // held
    ev(&mut s, 1, 5, t0); // already held
    let out = drain(&mut s);
    assert_eq!(out[..2], [d(1), d(2)]);
    assert_eq!(out[2..], [StreamOutput::RequestReplay { from: 3 }]);
    let stats = s.stats();
    assert_eq!((stats.duplicates, stats.held, stats.delivered), (3, 1, 2));
}

#[test]
fn a_gap_is_held_and_released_in_order_when_the_replay_fills_it() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 4, t0);
    ev(&mut s, 1, 3, t0);
    assert_eq!(
        drain(&mut s),
        [d(1), StreamOutput::RequestReplay { from: 2 }]
    );
    assert_eq!(s.stats().held, 2);
    assert_eq!(s.stats().gaps, 1);
    assert_eq!(s.poll_timeout(), Some(t0 + 5 * SEC), "waits gap_timeout");

    s.handle_replay_result(2, Ok(()), t0 + SEC);
    for p in 2..=4 {
        ev(&mut s, 1, p, t0 + SEC);
    }
    assert_eq!(drain(&mut s), [d(2), d(3), d(4)]);
    assert_eq!(s.stats().held, 0);
    assert_eq!(s.poll_timeout(), None, "the gap closed");
    s.handle_timeout(t0 + 10 * SEC);
    assert_eq!(drain(&mut s), []);
}

#[test]
fn a_replay_that_does_not_fill_the_gap_in_time_escalates_to_a_rejoin() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    ev(&mut s, 1, 2, t0);
    assert_eq!(drain(&mut s), [StreamOutput::RequestReplay { from: 1 }]);
    s.handle_replay_result(1, Ok(()), t0);

    s.handle_timeout(t0 + 5 * SEC - Duration::from_nanos(1));
    assert_eq!(drain(&mut s), [], "not yet");
    s.handle_timeout(t0 + 5 * SEC);
    let rejoin = StreamOutput::Rejoin {
        reason: RejoinReason::ReplayTimedOut { from: 1 },
    };
    assert_eq!(drain(&mut s), [rejoin]);
    s.handle_timeout(t0 + 5 * SEC);
    assert_eq!(drain(&mut s), [], "handle_timeout is idempotent");
    assert_eq!(s.poll_timeout(), None, "waits for the rejoin");
    assert_eq!(s.stats().rejoins, 1);
}

#[test]
fn a_replay_error_without_earliest_rejoins() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    ev(&mut s, 1, 3, t0);
    assert_eq!(drain(&mut s), [StreamOutput::RequestReplay { from: 1 }]);
    s.handle_replay_result(1, Err(None), t0);
    let rejoin = StreamOutput::Rejoin {
        reason: RejoinReason::ReplayRefused { from: 1 },
    };
    assert_eq!(drain(&mut s), [rejoin]);
}

#[test]
fn a_replay_error_with_earliest_reports_the_rest_lost_and_asks_again() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 3, t0);
    ev(&mut s, 1, 7, t0);
    assert_eq!(
        drain(&mut s),
        [d(1), StreamOutput::RequestReplay { from: 2 }]
    );
    // The server holds 5 on: 2 and 4 are gone, 3 was held, 5 and 6 can come.
    s.handle_replay_result(2, Err(Some(5)), t0);
    assert_eq!(
        drain(&mut s),
        [
            lost(2, 2),
            d(3),
            lost(4, 4),
            StreamOutput::RequestReplay { from: 5 }
        ]
    );
    assert_eq!(s.stats().lost, 2);
    s.handle_replay_result(5, Ok(()), t0);
    ev(&mut s, 1, 5, t0);
    ev(&mut s, 1, 6, t0);
    assert_eq!(drain(&mut s), [d(5), d(6), d(7)]);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn answers_to_nothing_outstanding_are_ignored() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    s.handle_replay_result(1, Err(Some(100)), t0);
    s.handle_ack_result(1, true, t0);
    s.handle_joined(7, Some(100), t0);
    assert_eq!(drain(&mut s), []);
    assert_eq!(s.stats().stale_answers, 3);
    assert_eq!(s.resume_position(), Some(0));
}

#[test]
fn the_rejoin_strategy_rejoins_and_the_join_replays() {
    let t0 = start();
    let config = SequencedConfig {
        recovery: Recovery::Rejoin,
        ..no_acks()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 4, t0);
    let rejoin = StreamOutput::Rejoin {
        reason: RejoinReason::Gap { from: 2, to: 3 },
    };
    assert_eq!(drain(&mut s), [d(1), rejoin]);
    ev(&mut s, 1, 6, t0);
    assert_eq!(drain(&mut s), [], "one rejoin per gap");

    s.on_join(2, t0);
    assert_eq!(s.resume_position(), Some(1));
    ev(&mut s, 1, 2, t0);
    assert_eq!(drain(&mut s), [], "the old incarnation no longer counts");
    assert_eq!(s.stats().ignored, 1);
    s.handle_joined(2, Some(1), t0);
    for p in 2..=6 {
        ev(&mut s, 2, p, t0);
    }
    assert_eq!(drain(&mut s), [d(2), d(3), d(4), d(5), d(6)]);
    assert_eq!(s.stats().duplicates, 2, "4 and 6 were held");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_rejoin_that_leaves_the_gap_open_reports_it_lost_after_gap_timeout() {
    let t0 = start();
    let config = SequencedConfig {
        recovery: Recovery::Rejoin,
        ..no_acks()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, 3, t0);
    ev(&mut s, 1, 6, t0);
    let _ = drain(&mut s);
    s.on_join(2, t0 + SEC);
    assert_eq!(
        s.poll_timeout(),
        None,
        "no timer before the join is answered"
    );
    s.handle_joined(2, None, t0 + 2 * SEC);
    assert_eq!(s.poll_timeout(), Some(t0 + 7 * SEC));
    ev(&mut s, 2, 1, t0 + 2 * SEC);
    assert_eq!(drain(&mut s), [d(1)]);
    s.handle_timeout(t0 + 6 * SEC);
    assert_eq!(drain(&mut s), [], "nothing is lost before the deadline");
    s.handle_timeout(t0 + 7 * SEC);
    assert_eq!(drain(&mut s), [lost(2, 2), d(3), lost(4, 5), d(6)]);
    assert_eq!(s.stats().lost, 3);
    assert_eq!(s.poll_timeout(), None);
    ev(&mut s, 2, 7, t0 + 7 * SEC);
    assert_eq!(drain(&mut s), [d(7)], "delivery continues after the loss");
}

#[test]
fn the_join_reply_earliest_reports_what_the_server_no_longer_holds() {
    let t0 = start();
    let mut s = joined(no_acks(), t0);
    for p in 1..=10 {
        ev(&mut s, 1, p, t0);
    }
    ev(&mut s, 1, 12, t0);
    let _ = drain(&mut s);
    s.on_join(2, t0);
    assert_eq!(s.resume_position(), Some(10));
    // The server kept only 15 on: 11, 13 and 14 are gone; 12 was held.
    s.handle_joined(2, Some(15), t0);
    assert_eq!(drain(&mut s), [lost(11, 11), d(12), lost(13, 14)]);
    assert_eq!(s.poll_timeout(), None, "nothing else is missing");
    ev(&mut s, 2, 15, t0);
    assert_eq!(drain(&mut s), [d(15)]);
}

#[test]
fn a_fresh_stream_reports_what_the_server_dropped_before_it_joined() {
    let t0 = start();
    let mut s = sequenced(no_acks());
    s.on_join(1, t0);
    s.handle_joined(1, Some(4), t0);
    assert_eq!(drain(&mut s), [lost(1, 3)]);
    ev(&mut s, 1, 4, t0);
    assert_eq!(drain(&mut s), [d(4)]);
}

#[test]
fn an_overflowing_hold_is_dropped_and_rejoined() {
    let t0 = start();
    let config = SequencedConfig {
        max_held: 3,
        ..no_acks()
    };
    let mut s = joined(config, t0);
    for p in 2..=4 {
        ev(&mut s, 1, p, t0);
    }
    assert_eq!(drain(&mut s), [StreamOutput::RequestReplay { from: 1 }]);
    ev(&mut s, 1, 5, t0);
    let rejoin = StreamOutput::Rejoin {
        reason: RejoinReason::Overflow { dropped: 3 },
    };
    assert_eq!(drain(&mut s), [rejoin]);
    assert_eq!((s.stats().held, s.stats().overflows), (0, 1));
    for p in 6..=10 {
        ev(&mut s, 1, p, t0);
    }
    assert_eq!(drain(&mut s), [], "no second rejoin while one is pending");
    assert_eq!(s.stats().overflows, 2);

    s.on_join(2, t0);
    s.handle_joined(2, None, t0);
    for p in 1..=10 {
        ev(&mut s, 2, p, t0);
    }
    assert_eq!(drain(&mut s), (1..=10).map(d).collect::<Vec<_>>());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn positions_dropped_on_overflow_are_reported_if_the_rejoin_does_not_bring_them() {
    let t0 = start();
    let config = SequencedConfig {
        max_held: 1,
        ..no_acks()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, 2, t0);
    ev(&mut s, 1, 3, t0);
    let _ = drain(&mut s);
    s.on_join(2, t0);
    s.handle_joined(2, None, t0);
    ev(&mut s, 2, 1, t0);
    s.handle_timeout(t0 + 5 * SEC);
    assert_eq!(drain(&mut s), [d(1), lost(2, 3)]);
}

#[test]
fn acknowledgements_are_batched_by_count_one_at_a_time() {
    let t0 = start();
    let config = SequencedConfig {
        ack_every: 3,
        ack_interval: Duration::MAX,
        ..SequencedConfig::default()
    };
    let mut s = joined(config, t0);
    for p in 1..=3 {
        ev(&mut s, 1, p, t0);
    }
    assert_eq!(drain(&mut s)[3..], [StreamOutput::SendAck { upto: 3 }]);
    for p in 4..=7 {
        ev(&mut s, 1, p, t0);
    }
    assert_eq!(drain(&mut s).len(), 4, "no second ack in flight");
    s.handle_ack_result(3, true, t0);
    assert_eq!(drain(&mut s), [StreamOutput::SendAck { upto: 7 }]);
    assert_eq!(s.stats().acked, 3);
    s.handle_ack_result(7, true, t0);
    assert_eq!(s.stats().acked, 7);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn acknowledgements_go_out_after_the_interval_at_the_latest() {
    let t0 = start();
    let config = SequencedConfig {
        ack_every: 100,
        ack_interval: SEC,
        ..SequencedConfig::default()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 2, t0 + SEC / 2);
    assert_eq!(drain(&mut s), [d(1), d(2)]);
    assert_eq!(s.poll_timeout(), Some(t0 + SEC), "counted from the first");
    s.handle_timeout(t0 + SEC);
    assert_eq!(drain(&mut s), [StreamOutput::SendAck { upto: 2 }]);
    assert_eq!(s.poll_timeout(), None, "in flight");
    ev(&mut s, 1, 3, t0 + 2 * SEC);
    assert_eq!(s.poll_timeout(), None, "one ack in flight at a time");
    s.handle_ack_result(2, true, t0 + 2 * SEC);
    assert_eq!(s.poll_timeout(), Some(t0 + 3 * SEC));
}

#[test]
fn a_failed_acknowledgement_is_retried_on_the_next_trigger() {
    let t0 = start();
    let config = SequencedConfig {
        ack_every: 2,
        ack_interval: SEC,
        ..SequencedConfig::default()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 2, t0);
    assert_eq!(drain(&mut s)[2..], [StreamOutput::SendAck { upto: 2 }]);
    s.handle_ack_result(2, false, t0);
    assert_eq!(drain(&mut s), [], "not at once");
    assert_eq!(s.poll_timeout(), Some(t0 + SEC));
    s.handle_timeout(t0 + SEC);
    assert_eq!(drain(&mut s), [StreamOutput::SendAck { upto: 2 }]);
    s.handle_ack_result(2, true, t0 + SEC);
    let stats = s.stats();
    assert_eq!((stats.acks_sent, stats.acks_failed, stats.acked), (2, 1, 2));
}

#[test]
fn nothing_is_pushed_before_the_join_is_answered() {
    let t0 = start();
    let config = SequencedConfig {
        ack_every: 1,
        ..SequencedConfig::default()
    };
    let mut s = sequenced(config);
    s.on_join(1, t0);
    ev(&mut s, 1, 1, t0);
    ev(&mut s, 1, 3, t0);
    assert_eq!(drain(&mut s), [d(1)], "no ack, no replay request yet");
    assert_eq!(s.poll_timeout(), None);
    s.handle_joined(1, None, t0);
    assert_eq!(drain(&mut s), [StreamOutput::SendAck { upto: 1 }]);
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 5 * SEC),
        "the join replays the gap"
    );
}

#[test]
fn an_acknowledgement_lost_with_its_incarnation_is_sent_again_on_the_next() {
    let t0 = start();
    let config = SequencedConfig {
        ack_every: 1,
        ..SequencedConfig::default()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, 1, t0);
    assert_eq!(drain(&mut s)[1..], [StreamOutput::SendAck { upto: 1 }]);
    s.on_join(2, t0);
    s.handle_ack_result(1, false, t0);
    assert_eq!(s.stats().stale_answers, 1, "the old channel's push is gone");
    s.handle_joined(2, None, t0);
    assert_eq!(drain(&mut s), [StreamOutput::SendAck { upto: 1 }]);
}

#[test]
fn malformed_positions_are_reported_and_counted() {
    let t0 = start();
    let config = SequencedConfig {
        max_backwards: 5,
        ..no_acks()
    };
    let mut s = joined(config, t0);
    for p in 1..=10 {
        ev(&mut s, 1, p, t0);
    }
    let _ = drain(&mut s);
    s.handle_event(1, Err(PositionError::Missing), 0, t0);
    s.handle_event(1, Err(PositionError::Negative), 0, t0);
    ev(&mut s, 1, 0, t0);
    ev(&mut s, 1, 5, t0); // 5 below: a duplicate
    ev(&mut s, 1, 4, t0); // 6 below: too far
    let envelope = Ok(Position::Version {
        base: 0,
        version: 1,
    });
    s.handle_event(1, envelope, 0, t0);
    ev(&mut s, 1, 11, t0);
    let malformed = |error| StreamOutput::Malformed { error };
    assert_eq!(
        drain(&mut s),
        [
            malformed(PositionError::Missing),
            malformed(PositionError::Negative),
            malformed(PositionError::Zero),
            malformed(PositionError::TooFarBack {
                position: 4,
                last: 10
            }),
            malformed(PositionError::UnexpectedVersion),
            d(11),
        ]
    );
    assert_eq!((s.stats().malformed, s.stats().duplicates), (5, 1));
}

#[test]
fn events_of_other_incarnations_are_ignored() {
    let t0 = start();
    let mut s = sequenced(no_acks());
    ev(&mut s, 1, 1, t0);
    assert_eq!(drain(&mut s), [], "before any join");
    s.on_join(1, t0);
    ev(&mut s, 2, 1, t0);
    assert_eq!(drain(&mut s), []);
    assert_eq!(s.stats().ignored, 2);
}

#[test]
fn extreme_durations_and_positions_do_not_overflow() {
    let t0 = start();
    let config = SequencedConfig {
        ack_every: 1,
        ack_interval: Duration::MAX,
        gap_timeout: Duration::MAX,
        max_backwards: u64::MAX,
        ..SequencedConfig::default()
    };
    let mut s = joined(config, t0);
    ev(&mut s, 1, u64::MAX, t0);
    assert_eq!(drain(&mut s), [StreamOutput::RequestReplay { from: 1 }]);
    assert_eq!(
        s.poll_timeout(),
        None,
        "a gap timeout of Duration::MAX never fires"
    );
    s.handle_replay_result(1, Err(Some(u64::MAX)), t0);
    assert_eq!(
        drain(&mut s),
        [
            lost(1, u64::MAX - 1),
            d(u64::MAX),
            StreamOutput::SendAck { upto: u64::MAX }
        ]
    );
    ev(&mut s, 1, u64::MAX, t0);
    ev(&mut s, 1, 1, t0);
    assert_eq!(s.stats().duplicates, 2);
    assert_eq!(s.stats().lost, u64::MAX - 1);
    s.handle_ack_result(u64::MAX, false, t0);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + Duration::from_secs(1 << 40));
    s.on_join(2, t0);
    s.handle_joined(2, Some(u64::MAX), t0);
    assert_eq!(drain(&mut s), [StreamOutput::SendAck { upto: u64::MAX }]);
}
