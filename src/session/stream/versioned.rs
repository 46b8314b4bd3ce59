//! Versioned streams: patch envelopes `base → version`, mounted by `0 → 1`
//! once per incarnation; any gap drops the state and remounts.

use super::output::{PositionError, ResyncReason, StreamOutput};
use super::Outbox;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mount {
    /// Waiting for the incarnation's `0 → 1`.
    Unmounted,
    /// At this version.
    Mounted(u64),
    /// Resynced: nothing of this incarnation counts any more; waiting for the
    /// next one.
    Broken,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Versioned {
    mount: Mount,
}

impl Versioned {
    pub(super) fn new() -> Self {
        Versioned {
            mount: Mount::Unmounted,
        }
    }

    /// The current version, 0 when unmounted.
    pub(super) fn version(&self) -> u64 {
        match self.mount {
            Mount::Mounted(version) => version,
            Mount::Unmounted | Mount::Broken => 0,
        }
    }

    pub(super) fn on_join(&mut self) {
        self.mount = Mount::Unmounted;
    }

    pub(super) fn handle_event<T>(
        &mut self,
        incarnation: u64,
        base: u64,
        version: u64,
        item: T,
        out: &mut Outbox<T>,
    ) {
        if self.mount == Mount::Broken {
            out.stats.ignored += 1;
            return;
        }
        if version <= base {
            out.malformed(PositionError::VersionNotAfterBase { base, version });
            return;
        }
        let Mount::Mounted(current) = self.mount else {
            // Unmounted: only the `0 → 1` mount may come first.
            if base == 0 && version == 1 {
                self.mount = Mount::Mounted(1);
                out.stats.mounts += 1;
                out.queue.push_back(StreamOutput::Settled { incarnation });
                out.deliver(1, item);
            } else {
                self.resync(ResyncReason::BadMount { base, version }, out);
            }
            return;
        };
        if version <= current {
            out.stats.duplicates += 1;
        } else if base == current && version - current == 1 {
            self.mount = Mount::Mounted(version);
            out.deliver(version, item);
        } else {
            let reason = ResyncReason::Gap {
                current,
                base,
                version,
            };
            self.resync(reason, out);
        }
    }

    fn resync<T>(&mut self, reason: ResyncReason, out: &mut Outbox<T>) {
        self.mount = Mount::Broken;
        out.stats.resyncs += 1;
        out.queue.push_back(StreamOutput::Resync { reason });
    }
}
