//! TLS for `wss://` endpoints: rustls with the ring provider, the web's root
//! certificates (webpki-roots) plus any the application adds, and errors
//! that name what the certificate check found and what to do.

use std::fmt;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::phoenix::client::error::ConnectError;
use crate::phoenix::client::socket::Ws;

/// Trust settings for `wss://`: the built-in web roots plus these.
#[derive(Clone, Default)]
pub(crate) struct TlsConfig {
    /// Extra trusted root certificates, PEM.
    pub(crate) extra_roots: Vec<Vec<u8>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

/// Opens the WebSocket, through TLS for `wss://`.
pub(crate) async fn connect<R: IntoClientRequest + Unpin>(
    request: R,
    config: WebSocketConfig,
    tls: &TlsConfig,
    secure: bool,
    endpoint: &str,
) -> Result<Ws, ConnectError> {
    #[cfg(feature = "tls")]
    {
        let connector = if secure {
            Some(rustls_connector(tls).map_err(|reason| ConnectError::Tls {
                endpoint: endpoint.to_owned(),
                reason,
            })?)
        } else {
            None
        };
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| classify(endpoint, &e))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        if secure {
            return Err(ConnectError::Tls {
                endpoint: endpoint.to_owned(),
                reason: "this build has no TLS support: enable the `tls` feature of \
                         channel-registry (on by default)"
                    .to_owned(),
            });
        }
        tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| classify(endpoint, &e))
    }
}

#[cfg(feature = "tls")]
fn rustls_connector(tls: &TlsConfig) -> Result<tokio_tungstenite::Connector, String> {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in &tls.extra_roots {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                format!("a root certificate given to with_root_certificate is not valid PEM ({e}); pass the CA certificate's PEM text")
            })?;
            roots.add(cert).map_err(|e| {
                format!("a root certificate given to with_root_certificate was refused ({e}); pass a CA certificate")
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(
                "a root certificate given to with_root_certificate holds no certificate; \
                 pass PEM text with a -----BEGIN CERTIFICATE----- block"
                    .to_owned(),
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
}

/// A connection error as a typed error that names the cause, without the
/// URL's query.
pub(crate) fn classify(endpoint: &str, error: &WsError) -> ConnectError {
    #[cfg(feature = "tls")]
    if let Some(reason) = certificate_problem(error) {
        return ConnectError::Tls {
            endpoint: endpoint.to_owned(),
            reason,
        };
    }
    ConnectError::Connect {
        endpoint: endpoint.to_owned(),
        reason: crate::phoenix::client::socket::describe(error),
    }
}

#[cfg(feature = "tls")]
fn certificate_problem(error: &WsError) -> Option<String> {
    use rustls::CertificateError;

    let rustls_error = match error {
        WsError::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        WsError::Tls(tokio_tungstenite::tungstenite::error::TlsError::Rustls(e)) => e,
        _ => return None,
    };
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's TLS certificate is not signed by a trusted root (self-signed or a \
             private CA?): add the CA's certificate with ClientConfig::with_root_certificate"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's TLS certificate is not for this host name: connect with a name the \
              certificate lists, or get a certificate for this one"
            .to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's TLS certificate has expired: renew it on the server".to_owned(),
        rustls::Error::InvalidCertificate(other) => {
            format!("the server's TLS certificate was refused ({other:?}): check it on the server")
        }
        other => format!(
            "the TLS handshake failed ({other}): check that the server speaks TLS on this port"
        ),
    })
}
