//! A stateright model of the channel registry.
//!
//! The model's state contains the **real** lifecycle engine
//! ([`channel_registry::engine::Engine`]) together with its environment: one
//! WebSocket (a FIFO queue per direction), a server that follows Phoenix's
//! rules ([`server`]), the resources' settle results, timers, one socket drop,
//! and an application that subscribes, unsubscribes, switches rooms and closes
//! everything within an operation budget. Every action calls the engine's own
//! input method and drains all of its outputs; every invariant of the design
//! (DESIGN §5) is checked on every step ([`properties`]), every step is shown
//! to bring its run closer to an end ([`progress`]), which makes the liveness
//! properties sound, and any path can be drawn as a sequence diagram
//! ([`svg`]).
//!
//! The same harness runs a faithful port of the reference design
//! ([`mod@reference`]) through the same [`registry::Registry`] trait, and finds a
//! counterexample for each of its four known bugs ([`bugs`]), while the real
//! engine, under the same configurations, has none.
//!
//! A second, independent model ([`streams`]) checks the ordered streams of
//! the session layer (DESIGN §5, invariant 10): the real `OrderedStream`
//! against a sequenced log with a replay window and a room over two
//! versioned topics, under crashes, socket drops, duplicate joins, lost,
//! duplicated and reordered frames, and skipped versions.
//!
//! # Keeping the space small without losing behaviours
//!
//! The CI configuration ([`ModelCfg::ci`]) is checked exhaustively,
//! depth-first, with no depth bound. What makes that affordable, each
//! explained where it is done:
//! - states that differ only in timer deadlines or in the numbering of join
//!   refs are one state ([`canon`]); the engine's slot layout is not part of
//!   the state (its behaviour does not depend on it: bulk operations and
//!   simultaneous timers follow topic names, which `engine_findings` pins);
//! - subscribers, topics and rooms are taken fresh in index order (a
//!   symmetry reduction, [`ChannelModel`]'s `fresh_ok`);
//! - the server takes every frame but a leave as soon as it is sent, and
//!   decides a rejection later ([`server`]): the client cannot tell;
//! - channel messages and pushes change nothing the registry sees, so where
//!   they could be delivered or sent is checked in every state instead of
//!   being interleaved step by step ([`properties`], [`harness`]);
//! - failures are bounded per run ([`ModelCfg::faults`]); the unrouted topic
//!   reaches "reported failed after max attempts" without spending that
//!   budget ([`ModelCfg::unrouted`]);
//! - the checks of a state alone run once per distinct state.
#![warn(missing_docs)]

pub mod bugs;
pub mod canon;
pub mod cfg;
mod checks;
pub mod harness;
pub mod out;
pub mod progress;
pub mod properties;
pub mod reference;
pub mod registry;
pub mod report;
pub mod server;
pub mod state;
pub mod streams;
pub mod svg;
pub mod trace;

pub use cfg::ModelCfg;
pub use harness::{Action, ChannelModel, State};
pub use reference::Reference;
pub use registry::Registry;
