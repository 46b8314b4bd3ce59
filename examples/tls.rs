//! `wss://` with a private certificate authority: the client trusts the web's
//! roots plus the CA added with `ClientConfig::with_root_certificate`.
//!
//! With no arguments, it makes a CA and a server certificate for
//! `localhost`/`127.0.0.1`, serves the dev server over TLS with them, and
//! joins a channel through it. With arguments, it connects to your server:
//!
//! ```text
//! cargo run --example tls --features dev-server
//! cargo run --example tls --features dev-server -- wss://phoenix.internal/socket ca.pem room:lobby
//! ```

use std::error::Error;
use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, JoinParams};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;
use tokio::time::timeout;

/// A CA, and a certificate for this machine's loopback names signed by it:
/// `(ca_pem, server_cert_pem, server_key_pem)`.
fn local_certificates() -> Result<(String, String, String), rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let ca = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let server_cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
        .signed_by(&server_key, &ca)?;
    Ok((ca_pem, server_cert.pem(), server_key.serialize_pem()))
}

async fn join(endpoint: &str, ca_pem: Vec<u8>, topic: &str) -> Result<(), Box<dyn Error>> {
    let config = ClientConfig::default().with_root_certificate(ca_pem);
    // A certificate the client cannot trust, or one for another host, is a
    // `ConnectError::Tls` whose message says which and what to do.
    let client = Client::connect(endpoint, config).await?;
    println!("connected to {}", client.endpoint());
    let mut sub = client.subscribe(topic, JoinParams::none()).await?;
    let join_ref = timeout(Duration::from_secs(10), sub.wait_active()).await??;
    println!("joined {topic} over TLS (join_ref {join_ref})");
    if let Ok(reply) = sub.push("echo", json!({"over": "tls"})).await {
        println!("echo replied {:?}", reply.response);
    }
    client.disconnect().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [endpoint, ca_path, rest @ ..] = args.as_slice() {
        let topic = rest.first().map_or("room:lobby", String::as_str);
        let ca_pem = std::fs::read(ca_path)
            .map_err(|e| format!("cannot read the CA certificate {ca_path}: {e}"))?;
        return join(endpoint, ca_pem, topic).await;
    }

    let (ca_pem, cert_pem, key_pem) = local_certificates()?;
    let server = DevServer::start(DevServerConfig::default().with_tls(cert_pem, key_pem)).await?;
    println!("serving {}", server.url());
    join(&server.url(), ca_pem.into_bytes(), "room:lobby").await
}
