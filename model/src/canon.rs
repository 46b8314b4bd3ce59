//! Canonical state hashing: two states that differ only in timer deadlines or
//! in the numbering of join refs are one state.
//!
//! Join refs are minted from a counter, so two runs that reach the same
//! situation after burning a different number of refs (a retry, a timed-out
//! join, an incarnation before a socket drop) hold different numbers. Neither
//! engine nor model looks at a ref except to compare it for equality and to
//! mint a fresh one (greater than every ref so far), so renaming the refs of a
//! state by any one-to-one map gives a state with the same future, up to that
//! renaming; and every property is stated by comparing refs only. Hashing the
//! refs by order of first appearance in a fixed traversal (engine topics by
//! name, then the server's channels, the queues in order, the ghost) is
//! therefore a sound symmetry reduction, in the sense of stateright's
//! `symmetry`, done in the fingerprint instead of by rebuilding a
//! representative state (which the engine's private fields would not allow).
//!
//! The engine part is [`Registry::hash_canonical`], built from the engine's
//! public queries; it leaves out the ref counter and the jitter generator,
//! which the model never advances (jitter is 0). With
//! [`crate::ModelCfg::canonical_refs`] off, the state hash is the engine's own
//! `hash_untimed` plus the environment as is.

use std::hash::{Hash, Hasher};

use channel_registry::engine::JoinRef;

use crate::harness::{Ghost, State};
use crate::registry::Registry;
use crate::server::{ClientFrame, Net, ServerFrame};

/// A hasher that collects what is written on the stack and hands it to
/// `inner` in a few large writes ([`Buffered::flush`] writes the rest): the
/// engine's part of the fingerprint goes through a `dyn Hasher`, where a
/// dynamic call per small write costs more than the hashing.
pub struct Buffered<'h> {
    inner: &'h mut dyn Hasher,
    buf: [u8; 256],
    len: usize,
}

impl<'h> Buffered<'h> {
    /// An empty buffer in front of `inner`.
    pub fn new(inner: &'h mut dyn Hasher) -> Self {
        Buffered {
            inner,
            buf: [0; 256],
            len: 0,
        }
    }

    /// Writes what is buffered to the inner hasher.
    pub fn flush(&mut self) {
        if self.len > 0 {
            self.inner.write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Hasher for Buffered<'_> {
    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.flush();
            if bytes.len() > self.buf.len() {
                return self.inner.write(bytes);
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Not used for fingerprints: the inner hasher finishes.
    fn finish(&self) -> u64 {
        self.inner.finish()
    }
}

/// Names join refs by order of first appearance.
#[derive(Default)]
pub struct Renamer {
    seen: [u64; 32],
    len: usize,
}

impl Renamer {
    /// The canonical name of `r`.
    pub fn name(&mut self, r: JoinRef) -> u64 {
        let r = r.get();
        if let Some(p) = self.seen[..self.len].iter().position(|&s| s == r) {
            return p as u64 + 1;
        }
        assert!(
            self.len < self.seen.len(),
            "more join refs in one state than the model expects"
        );
        self.seen[self.len] = r;
        self.len += 1;
        self.len as u64
    }
}

/// Hashes `s` canonically (see the module docs).
pub fn hash_state<E: Registry, H: Hasher>(s: &State<E>, h: &mut H) {
    let mut rn = Renamer::default();
    s.engine.hash_canonical(h, &mut |r| rn.name(r));
    hash_net(&s.net, h, &mut rn);
    hash_ghost(&s.ghost, h, &mut rn);
    s.found.bits.hash(h);
    s.milestones.hash(h);
}

fn frame(kind: u64, topic: u8, r: u64, flag: bool) -> u64 {
    kind | u64::from(topic) << 8 | u64::from(flag) << 16 | r << 24
}

fn hash_net<H: Hasher>(net: &Net, h: &mut H, rn: &mut Renamer) {
    for c in &net.channels {
        h.write_u64(c.map_or(0, |r| rn.name(r)));
    }
    h.write_usize(net.c2s.len());
    for f in &net.c2s {
        h.write_u64(match *f {
            ClientFrame::Join { topic, join_ref } => frame(1, topic, rn.name(join_ref), false),
            ClientFrame::Leave { topic, join_ref } => frame(2, topic, rn.name(join_ref), false),
            ClientFrame::Push { topic, join_ref } => frame(3, topic, rn.name(join_ref), false),
        });
    }
    h.write_usize(net.s2c.len());
    for f in &net.s2c {
        h.write_u64(match *f {
            ServerFrame::JoinReply {
                topic,
                join_ref,
                ok,
            } => frame(1, topic, rn.name(join_ref), ok),
            ServerFrame::Close {
                topic,
                join_ref,
                duplicate,
            } => frame(2, topic, rn.name(join_ref), duplicate),
            ServerFrame::Error { topic, join_ref } => frame(3, topic, rn.name(join_ref), false),
            ServerFrame::Push { topic, join_ref } => frame(4, topic, rn.name(join_ref), false),
            ServerFrame::Broadcast { topic, sender } => frame(5, topic, rn.name(sender), false),
        });
    }
}

fn hash_ghost<H: Hasher>(g: &Ghost, h: &mut H, rn: &mut Renamer) {
    h.write_u64(g.subs);
    for r in &g.rooms {
        h.write_u16(u16::from(r.requested.map_or(0xff, |t| t)) | u16::from(r.chain) << 8);
    }
    h.write_usize(g.incs.len());
    for i in &g.incs {
        let flags = u64::from(i.phase as u8)
            | u64::from(i.acked) << 4
            | u64::from(i.settled) << 5
            | u64::from(i.ended) << 6;
        h.write_u64(u64::from(i.topic) | flags << 8 | rn.name(i.id) << 16 | rn.name(i.wire) << 40);
    }
    h.write_usize(g.settles.len());
    for p in &g.settles {
        h.write_u64(frame(0, p.topic, rn.name(p.join_ref), p.aborted));
    }
    // `max_id` is left out: it is at least every ref present and below every
    // ref yet to be minted, whatever its value.
    let budgets = [
        g.ops,
        g.pushes,
        g.faults,
        g.drops,
        g.reconnects,
        u8::from(g.socket_up),
    ];
    h.write(&budgets);
    h.write(&g.used);
}
