//! Serving `wss://`: the certificate and key a dev server presents, and the rustls acceptor
//! made from them (ring provider, TLS 1.2 and 1.3).

use std::fmt;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::DevServerError;

/// A certificate chain and its private key, as given to
/// [`DevServerConfig::with_tls`](super::DevServerConfig::with_tls): PEM, or DER for a single
/// certificate and a PKCS#8, PKCS#1 or SEC1 key. Parsed when the server starts.
#[derive(Clone)]
pub(super) struct TlsIdentity {
    cert_chain: Arc<[u8]>,
    key: Arc<[u8]>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("TlsIdentity")
            .field("cert_chain_bytes", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    pub(super) fn new(cert_chain: &[u8], key: &[u8]) -> Self {
        TlsIdentity {
            cert_chain: cert_chain.into(),
            key: key.into(),
        }
    }

    /// The acceptor serving this identity.
    pub(super) fn acceptor(&self) -> Result<TlsAcceptor, DevServerError> {
        let certs = parse_certs(&self.cert_chain)?;
        let key = parse_key(&self.key)?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|error| DevServerError::Tls {
                detail: format!(
                    "{error}; the key must belong to the first certificate of the chain"
                ),
            })?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

fn parse_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, DevServerError> {
    if !is_pem(bytes) {
        if bytes.is_empty() {
            return Err(DevServerError::Tls {
                detail: "the certificate chain is empty; pass PEM or a DER certificate".into(),
            });
        }
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| DevServerError::Tls {
            detail: format!("the certificate chain is not valid PEM: {error}"),
        })?;
    if certs.is_empty() {
        return Err(DevServerError::Tls {
            detail: "the certificate chain holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn parse_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, DevServerError> {
    if is_pem(bytes) {
        PrivateKeyDer::from_pem_slice(bytes).map_err(|error| DevServerError::Tls {
            detail: format!("the key is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {error}"),
        })
    } else {
        PrivateKeyDer::try_from(bytes.to_vec()).map_err(|error| DevServerError::Tls {
            detail: format!("the key is not a DER private key (PKCS#8, PKCS#1 or SEC1): {error}"),
        })
    }
}
