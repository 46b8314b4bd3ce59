//! Phoenix Channels protocol plumbing: the V2 wire codec and, behind the `dev-server` feature,
//! a local Phoenix-protocol server for tests, examples and demos.

pub mod codec;
#[cfg(feature = "dev-server")]
pub mod dev_server;
