//! Optional TLS: a throw-away CA and a serving certificate for 127.0.0.1 and localhost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Errors of setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating certificates")]
    Generate(#[source] rcgen::Error),
    #[error("building the TLS server configuration")]
    Config(#[source] rustls::Error),
}

/// The CA clients must trust and the server configuration.
pub struct Identity {
    /// PEM of the CA certificate (for `certificate-authority-data`).
    pub ca_pem: String,
    /// DER of the CA certificate (for kube-rs `root_cert`).
    pub ca_der: Vec<u8>,
    pub server: Arc<rustls::ServerConfig>,
}

/// Generates a CA and a serving certificate signed by it.
pub fn identity() -> Result<Identity, TlsError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-sim CA");
    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let ca = ca_params.self_signed(&ca_key).map_err(TlsError::Generate)?;
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(TlsError::Generate)?;
    let key = KeyPair::generate().map_err(TlsError::Generate)?;
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(TlsError::Generate)?;
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(TlsError::Config)?;
    Ok(Identity {
        ca_pem: ca.pem(),
        ca_der: CertificateDer::clone(ca.der()).to_vec(),
        server: Arc::new(server),
    })
}

/// A TCP listener that completes the TLS handshake before handing out connections.
pub struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => return (stream, addr),
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
