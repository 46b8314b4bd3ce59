//! The dev server serving `wss://` with a certificate generated at test time, reached by a
//! raw WebSocket client over rustls that trusts exactly that certificate.
#![cfg(all(feature = "dev-server", feature = "tls"))]

mod raw_client;

use std::sync::Arc;

use channel_registry::phoenix::dev_server::{DevServer, DevServerConfig, DevServerError};
use raw_client::{ok_reply, RawClient};
use rcgen::CertifiedKey;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

fn certificate() -> CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("a self-signed certificate")
}

fn connector(trusted: &[CertificateDer<'static>]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone()).expect("a valid root");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    server: &DevServer,
    connector: &TlsConnector,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(server.addr()).await?;
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    connector.connect(name, tcp).await
}

async fn wss_client(
    server: &DevServer,
    connector: &TlsConnector,
    name: &str,
) -> RawClient<TlsStream<TcpStream>> {
    let tls = tls_connect(server, connector, name)
        .await
        .expect("the TLS handshake succeeds");
    let (ws, _) = tokio_tungstenite::client_async(server.websocket_url(), tls)
        .await
        .expect("the WebSocket upgrade succeeds");
    RawClient::over(ws)
}

#[tokio::test]
async fn a_client_trusting_the_generated_certificate_joins_over_wss() {
    let CertifiedKey { cert, signing_key } = certificate();
    let config = DevServerConfig::default().with_tls(cert.pem(), signing_key.serialize_pem());
    let server = DevServer::start(config)
        .await
        .expect("a TLS dev server starts");
    assert!(
        server.url().starts_with("wss://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert!(server.websocket_url().starts_with("wss://"));

    let trusted = connector(&[cert.der().clone()]);
    for name in ["127.0.0.1", "localhost"] {
        let mut c = wss_client(&server, &trusted, name).await;
        assert_eq!(
            c.join("1", "room:tls", json!({})).await,
            ok_reply(
                json!("1"),
                json!("1"),
                json!("room:tls"),
                json!({"joined": "room:tls", "params": {}})
            )
        );
        c.send_json(json!([null, "2", "phoenix", "heartbeat", {}]))
            .await;
        assert_eq!(
            c.next_json().await,
            ok_reply(Value::Null, json!("2"), json!("phoenix"), json!({}))
        );
    }

    // A client that trusts another certificate does not get through, and the server goes on.
    let CertifiedKey { cert: other, .. } = certificate();
    let untrusting = connector(&[other.der().clone()]);
    assert!(tls_connect(&server, &untrusting, "127.0.0.1")
        .await
        .is_err());
    let mut c = wss_client(&server, &trusted, "127.0.0.1").await;
    c.send_json(json!([null, "3", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(c.next_json().await[1], "3");
}

#[tokio::test]
async fn der_material_is_accepted_and_unusable_material_is_refused_at_start() {
    let CertifiedKey { cert, signing_key } = certificate();
    let config = DevServerConfig::default().with_tls(cert.der(), signing_key.serialize_der());
    let server = DevServer::start(config).await.expect("DER works too");
    let mut c = wss_client(&server, &connector(&[cert.der().clone()]), "localhost").await;
    c.send_json(json!([null, "1", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(c.next_json().await[1], "1");

    let unusable = [
        (cert.pem(), "not a key".to_owned()),
        (
            "-----BEGIN NOTHING-----\n-----END NOTHING-----\n".to_owned(),
            signing_key.serialize_pem(),
        ),
        (String::new(), signing_key.serialize_pem()),
    ];
    for (chain, key) in unusable {
        let error = DevServer::start(DevServerConfig::default().with_tls(&chain, &key))
            .await
            .expect_err("unusable TLS material is refused");
        assert!(matches!(error, DevServerError::Tls { .. }), "{error:?}");
        assert!(error.to_string().starts_with("cannot serve TLS"), "{error}");
    }
    // A key that is not the certificate's.
    let CertifiedKey {
        signing_key: other, ..
    } = certificate();
    let error =
        DevServer::start(DevServerConfig::default().with_tls(cert.pem(), other.serialize_pem()))
            .await
            .expect_err("a mismatched key is refused");
    assert!(error.to_string().contains("first certificate"), "{error}");
}
