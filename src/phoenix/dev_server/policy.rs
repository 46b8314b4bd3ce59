//! Points where Phoenix versions differ, as knobs, so a client can be tested against each.

/// What a socket does with a push (any event but join and leave) whose join_ref is not the
/// one its topic's channel was joined with — a push a client stamped with an old join_ref.
///
/// A leave with an old join_ref is ignored under both policies, as in every Phoenix version
/// (the client raced a close the server has already sent). A channel joined with a null
/// join_ref accepts every join_ref, as in Phoenix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StalePushPolicy {
    /// Phoenix 1.7 (recorded on 1.7.24): the socket routes by topic only, so the push is
    /// handled by the topic's current channel, and its reply carries the *current* join_ref.
    /// The default, because it is what the recorded transcripts show.
    #[default]
    HandToCurrent,
    /// Newer Phoenix: the push is dropped without a reply (logged as
    /// [`ServerEventKind::DroppedStale`](super::ServerEventKind::DroppedStale)).
    Drop,
}

/// What a connection without `vsn=2.0.0` in its query gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissingVsnPolicy {
    /// Refuse the upgrade with HTTP 400 and a reason that says to add `vsn=2.0.0`: the
    /// clearest signal for a client that forgot it. The default.
    #[default]
    Refuse,
    /// What Phoenix does: without `vsn` (or with `vsn=1.0.0`) the upgrade succeeds and the
    /// socket speaks V1 (JSON objects); the first V2 array frame then gets the socket closed
    /// with 1011. Other versions are still refused with 400.
    FallBackToV1,
}
