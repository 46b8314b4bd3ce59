//! Presence with phoenix.js semantics.
