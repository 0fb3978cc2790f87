//! Connections shared by all workloads: plain TCP or implicit TLS (the
//! server's certificate is not checked, benchmark servers use self-signed
//! ones), and the target options every IMAP/POP3 workload takes.

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Anything a session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A buffered connection; tokio's `BufReader` passes writes through.
pub type Stream = BufReader<Box<dyn Io>>;

/// Where and how to connect, plus the account options (IMAP/POP3 workloads).
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port [default: the protocol's standard port, TLS or not].
    #[arg(long)]
    pub port: Option<u16>,
    /// Implicit TLS (certificate not verified).
    #[arg(long)]
    pub tls: bool,
    /// Login name pattern; `%d` is replaced by a number in 1..=users.
    #[arg(long, default_value = "user%d@example.test")]
    pub user: String,
    /// How many users the pattern spans.
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Password of every user.
    #[arg(long, default_value = "password", env = "BENCH_PASSWORD")]
    pub password: String,
}

impl Target {
    /// The login name of user `n` (0-based; the pattern counts from 1).
    pub fn user_name(&self, n: usize) -> String {
        expand(&self.user, n % self.users.max(1) + 1)
    }

    /// The connector for this target; `plain`/`tls` are the default ports.
    pub fn connector(&self, plain: u16, tls: u16, buffer: usize) -> Result<Connector> {
        if self.users == 0 {
            bail!("--users must be at least 1");
        }
        let port = self.port.unwrap_or(if self.tls { tls } else { plain });
        Connector::new(&self.host, port, self.tls, buffer)
    }
}

/// Replace `%d` in a pattern by `n`.
pub fn expand(pattern: &str, n: usize) -> String {
    pattern.replace("%d", &n.to_string())
}

/// Accepts any certificate, but still checks the handshake signatures
/// made with it (so the connection is at least consistent).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens connections to one server.
#[derive(Clone)]
pub struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    buffer: usize,
}

impl Connector {
    /// `buffer` is the read buffer size per connection.
    pub fn new(host: &str, port: u16, tls: bool, buffer: usize) -> Result<Self> {
        let tls = if tls {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .context("TLS protocol versions")?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth();
            let name = ServerName::try_from(host.to_string()).with_context(|| format!("TLS server name {host:?}"))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Connector {
            host: host.to_string(),
            port,
            tls,
            buffer,
        })
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Connect (and handshake, with TLS).
    pub async fn connect(&self) -> Result<Stream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connect to {}", self.addr()))?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((c, name)) => Box::new(c.connect(name.clone(), tcp).await.context("TLS handshake")?),
        };
        Ok(BufReader::with_capacity(self.buffer, io))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        let t = Target {
            host: "h".into(),
            port: None,
            tls: false,
            user: "u%d@x.test".into(),
            users: 3,
            password: "p".into(),
        };
        assert_eq!(t.user_name(0), "u1@x.test");
        assert_eq!(t.user_name(2), "u3@x.test");
        assert_eq!(t.user_name(3), "u1@x.test");
        assert_eq!(expand("plain", 4), "plain");
    }

    #[test]
    fn tls_connector_builds() {
        assert!(Connector::new("localhost", 993, true, 1024).is_ok());
        assert!(Connector::new("127.0.0.1", 993, true, 1024).is_ok());
    }
}
