//! The pure Phoenix session layer: everything a Phoenix client does besides
//! IO, one value per socket, in the engine's style (`handle_*` inputs that
//! take `now`, `poll_*` outputs, no clock, no IO, no async runtime).
//!
//! Parts that stand on their own:
//! - [`presence`]: phoenix.js `Presence` semantics (state and diffs keyed by
//!   `phx_ref`, diffs buffered until the state of the current join).
//! - [`stream`]: ordered, gap-free delivery across rejoins (numbered events
//!   with acks and replay; versioned patch streams with gap recovery).

pub mod presence;
pub mod stream;
