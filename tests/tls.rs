//! The tokio client over `wss://` against the dev server serving TLS, with certificates made
//! at test time: a private CA the client adds with `with_root_certificate` works; a server
//! certificate the client cannot trust, one for another name, or one that expired is a
//! `ConnectError::Tls` that names the cause and says what to do.
#![cfg(all(feature = "dev-server", feature = "tls"))]

use std::time::Duration;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig};
use channel_registry::phoenix::{Client, ClientConfig, ConnectError, JoinParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;
use tokio::time::timeout;

/// Upper bound for anything a test waits for; reached only when it fails.
const WAIT: Duration = Duration::from_secs(5);

/// A private certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "channel-registry test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("a CA key");
    let cert = params.self_signed(&key).expect("a CA certificate");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for `names` signed by `ca`, as PEM, with its key.
fn server_cert(ca: &Ca, names: &[&str], expired: bool) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("server params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().expect("a server key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

async fn tls_server(cert: &str, key: &str) -> DevServer {
    DevServer::start(
        DevServerConfig::default()
            .with_tls(cert, key)
            .with_sync_delay(Duration::from_secs(600)),
    )
    .await
    .expect("a TLS dev server starts")
}

fn config() -> ClientConfig {
    ClientConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_push_timeout(Duration::from_secs(2))
}

async fn connect_error(url: &str, config: ClientConfig) -> ConnectError {
    timeout(WAIT, Client::connect(url, config))
        .await
        .expect("in time")
        .expect_err("the connection is refused")
}

#[tokio::test]
async fn a_client_that_adds_the_private_ca_joins_over_wss() {
    let ca = ca();
    let (cert, key) = server_cert(&ca, &["localhost", "127.0.0.1"], false);
    let server = tls_server(&cert, &key).await;
    let url = server.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let by_name = url.replace("127.0.0.1", "localhost");

    for endpoint in [url, by_name] {
        let client = timeout(
            WAIT,
            Client::connect(&endpoint, config().with_root_certificate(ca.pem.clone())),
        )
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("connects to {endpoint}: {e}"));
        let mut sub = client
            .subscribe("room:tls", JoinParams::none())
            .await
            .expect("subscribe");
        timeout(WAIT, sub.wait_active())
            .await
            .expect("in time")
            .expect("joined over wss");
        let reply = sub
            .push("echo", json!({"over": "tls"}))
            .await
            .expect("echo");
        assert_eq!(reply.response, json!({"over": "tls"}).into());
        client.disconnect().await;
    }
    assert_eq!(server.view(|v| v.malformed_count()), 0);
}

#[tokio::test]
async fn a_certificate_without_a_trusted_root_is_a_tls_error_that_says_what_to_do() {
    let ca = ca();
    let (cert, key) = server_cert(&ca, &["localhost", "127.0.0.1"], false);
    let server = tls_server(&cert, &key).await;

    let error = connect_error(&server.url(), config()).await;
    assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("not signed by a trusted root"),
        "{message}"
    );
    assert!(message.contains("with_root_certificate"), "{message}");

    // Another CA does not help either.
    let error = connect_error(
        &server.url(),
        config().with_root_certificate(self::ca().pem),
    )
    .await;
    assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");

    // The server goes on serving clients that trust it.
    let client = Client::connect(&server.url(), config().with_root_certificate(ca.pem))
        .await
        .expect("a trusting client connects");
    client.disconnect().await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_tls_error_that_says_what_to_do() {
    let ca = ca();
    let (cert, key) = server_cert(&ca, &["phoenix.example.com"], false);
    let server = tls_server(&cert, &key).await;

    let error = connect_error(&server.url(), config().with_root_certificate(ca.pem)).await;
    assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("not for this host name"), "{message}");
    assert!(
        message.contains("connect with a name the certificate lists"),
        "{message}"
    );
    assert!(
        message.contains(&server.url()),
        "the message names the endpoint: {message}"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_a_tls_error_that_says_what_to_do() {
    let ca = ca();
    let (cert, key) = server_cert(&ca, &["localhost", "127.0.0.1"], true);
    let server = tls_server(&cert, &key).await;

    let error = connect_error(&server.url(), config().with_root_certificate(ca.pem)).await;
    assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
    assert!(error.to_string().contains("has expired"), "{error}");
}

#[tokio::test]
async fn a_root_that_is_not_a_certificate_is_refused_with_what_to_pass() {
    let ca = ca();
    let (cert, key) = server_cert(&ca, &["127.0.0.1"], false);
    let server = tls_server(&cert, &key).await;

    let error = connect_error(
        &server.url(),
        config().with_root_certificate("not a certificate"),
    )
    .await;
    assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
    assert!(error.to_string().contains("BEGIN CERTIFICATE"), "{error}");
}
