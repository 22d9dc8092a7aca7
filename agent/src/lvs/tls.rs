//! TLS for SSL_GET: rustls (ring provider) on the checker's connection.
//!
//! keepalived's SSL_GET does not verify the real server's certificate
//! unless a CA is configured (keepalived.conf(5), `SSL` block), and real
//! servers behind a load balancer usually carry the service's name, not
//! their own address: so the handshake accepts any certificate, while the
//! handshake signatures are still checked (a peer must hold the key of the
//! certificate it shows). The server name sent is the `virtualhost` when
//! it is a DNS name; an address sends none (RFC 6066 3: no IP literals in
//! SNI).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Accepts any certificate chain; checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One client configuration for every SSL_GET of the process.
fn connector() -> Result<TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Arc::new(config))
    });
    config.clone().map(TlsConnector::from)
}

/// The TLS handshake on `stream`, naming `host` (a `virtualhost`, or an
/// `ADDRESS:PORT` Host header) when it is a DNS name.
pub async fn handshake(stream: TcpStream, host: &str) -> Result<TlsStream<TcpStream>, String> {
    let peer = stream.peer_addr().map_err(|e| format!("tls: {e}"))?.ip();
    let bare = host
        .rsplit_once(':')
        .filter(|(_, port)| port.parse::<u16>().is_ok())
        .map_or(host, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = match ServerName::try_from(bare.to_owned()) {
        Ok(name @ ServerName::DnsName(_)) => name,
        _ => ServerName::IpAddress(peer.into()),
    };
    connector()?
        .connect(name, stream)
        .await
        .map_err(|e| format!("tls handshake: {e}"))
}
