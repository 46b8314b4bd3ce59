//! The crate's Phoenix-protocol dev server on its own, for clients in other
//! processes (the `blocking` example, phoenix.js, a browser): it serves the
//! built-in channels (`room:*` joins ok, answers `echo` and `broadcast`, and
//! crashes on events it has no handler for) until the process is stopped.
//!
//! ```text
//! cargo run --features dev-server --example dev_server          # port 4000
//! cargo run --features dev-server --example dev_server -- 4001
//! ```

use std::error::Error;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse().map_err(|_| "the port must be a number")?,
        None => 4000,
    };
    let server = DevServer::start(DevServerConfig::default().with_port(port)).await?;
    println!("serving {} (stop with Ctrl-C)", server.url());
    std::future::pending::<()>().await;
    Ok(())
}
