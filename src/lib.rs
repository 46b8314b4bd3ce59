//! Lifecycle management for Phoenix channels shared by many consumers that
//! switch between versions of a document faster than the network answers.
//!
//! The heart is [`engine::Engine`], a pure state machine (no IO, no clock, no
//! async runtime) that owns reference counting, the phase table
//! (`connecting → settling → active → draining → destroyed`), version
//! switching with handover ([rooms](engine::Engine::switch)), retries and
//! resources. A driver feeds it inputs and performs its outputs; the
//! `phoenix` feature (on by default) provides one for tokio over real Phoenix
//! channels.
//!
//! # The drive loop
//!
//! Every input takes `now`; after each input, drain [`engine::Engine::poll_output`]
//! until it is empty, and sleep until [`engine::Engine::poll_timeout`]. Here the
//! "server" answers every join at once and the clock is simulated:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use channel_registry::engine::{
//!     Config, Effect, Engine, Event, JoinOptions, JoinReply, Output, Phase, SubscriberId,
//! };
//!
//! let mut now = Instant::now();
//! let mut engine = Engine::new(Config::default(), now)?;
//! engine.handle_socket_up(now);
//! engine.subscribe("doc:42:v1", SubscriberId(1), &JoinOptions::default(), now)?;
//!
//! let mut sent = Vec::new();
//! for _ in 0..3 {
//!     // Drain everything the last input produced. Outputs name topics by a
//!     // `Copy` handle; `topic_name` reads the name until the next input.
//!     while let Some(output) = engine.poll_output() {
//!         match output {
//!             Output::Effect(Effect::Join { topic, join_ref }) => {
//!                 let name = engine.topic_name(topic).unwrap();
//!                 sent.push(format!("join {name} ref {join_ref}"));
//!                 // A real driver sends a frame; this server says ok at once.
//!                 engine.handle_join_reply(topic, join_ref, JoinReply::Ok, now);
//!             }
//!             Output::Effect(Effect::End { topic, leave: true, .. }) => {
//!                 sent.push(format!("leave {}", engine.topic_name(topic).unwrap()));
//!             }
//!             Output::Event(Event::PhaseChanged { to, .. }) => println!("now {to}"),
//!             _ => {}
//!         }
//!     }
//!     if engine.topic("doc:42:v1").is_some_and(|t| t.status.phase() == Some(Phase::Active)) {
//!         engine.unsubscribe("doc:42:v1", SubscriberId(1), now);
//!     }
//!     // Sleep until the next timer (here: jump the simulated clock).
//!     if let Some(deadline) = engine.poll_timeout() {
//!         now = deadline;
//!         engine.handle_timeout(now);
//!     }
//! }
//! assert_eq!(sent, ["join doc:42:v1 ref 1", "leave doc:42:v1"]);
//! assert!(engine.stats().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod codec;
pub mod engine;
pub mod session;
pub mod topic;

#[cfg(feature = "phoenix")]
pub mod phoenix;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "phoenix"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
