//! TLS server configuration: load the operator's certificate or fall back to a
//! self-signed one kept in the data directory.
//!
//! The crypto provider is always aws-lc-rs and is passed explicitly to every
//! config we build, so nothing here depends on a process-wide default having
//! been installed first.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{info, warn};

/// PEM files larger than this are refused: a certificate chain plus key is a
/// few KiB, so anything bigger is a misconfiguration (e.g. pointing at a log).
pub const MAX_PEM_FILE_SIZE: u64 = 1024 * 1024;

/// Sub-directory of the data directory that holds the generated certificate.
pub const GENERATED_DIR: &str = "tls";
/// File name of the generated certificate inside [`GENERATED_DIR`].
pub const GENERATED_CERT: &str = "cert.pem";
/// File name of the generated private key inside [`GENERATED_DIR`].
pub const GENERATED_KEY: &str = "key.pem";

/// Operator-supplied certificate chain and private key (both PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a TLS configuration could not be built. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is larger than {MAX_PEM_FILE_SIZE} bytes; is this really a PEM file?")]
    TooLarge { path: PathBuf },
    #[error("{path}: invalid PEM: {detail}")]
    Pem { path: PathBuf, detail: String },
    #[error("{path}: no CERTIFICATE block found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM block)")]
    NoPrivateKey { path: PathBuf },
    #[error("{cert} exists but its key {key} is missing")]
    MissingKey { cert: PathBuf, key: PathBuf },
    #[error("certificate {cert} / key {key} rejected: {source}")]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("cannot generate a self-signed certificate for {hostname:?}: {source}")]
    Generate { hostname: String, source: rcgen::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Install aws-lc-rs as the process-wide rustls provider. Idempotent: later
/// calls (or a provider installed by someone else) are left alone.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = aws_lc_rs::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// Build the server TLS config.
///
/// With `configured` files, those are loaded. Otherwise
/// `data_dir/tls/{cert,key}.pem` are used, being generated first (self-signed
/// for `hostname`, plus `localhost` and `127.0.0.1`) when absent.
/// The result allows TLS 1.2 and 1.3 only, no client authentication, no ALPN.
pub fn load_or_generate(
    hostname: &str,
    configured: Option<&TlsFiles>,
    data_dir: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let files = match configured {
        Some(files) => files.clone(),
        None => ensure_generated(hostname, data_dir)?,
    };
    let chain = load_chain(&files.cert)?;
    let key = load_key(&files.key)?;
    let config = server_config(chain, key).map_err(|source| TlsError::Rejected {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })?;
    info!(cert = %files.cert.display(), "TLS certificate loaded");
    Ok(Arc::new(config))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    // with_single_cert also verifies that the key matches the leaf certificate.
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
}

/// Client config trusting only `roots` (TLS 1.2/1.3, aws-lc-rs). Meant for
/// tests and for talking to our own listeners; it never disables verification.
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Client config for opportunistic TLS between mail servers (RFC 7435,
/// RFC 3207 §4.1): encrypt, but accept any certificate, because an MTA that
/// cannot authenticate the peer would otherwise send in plaintext. Policies
/// that authenticate the peer (MTA-STS, DANE, smarthost) use
/// [`system_client_config`] instead.
pub fn opportunistic_client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Client config verifying peers against the system's trust store (and
/// `extra` PEM roots, if given).
pub fn system_client_config(extra: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        warn!(error = %e, "cannot load a system CA certificate");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra {
        for cert in load_chain(path)? {
            roots.add(cert).map_err(|e| TlsError::Pem {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
    }
    client_config(roots).map_err(|e| TlsError::Pem {
        path: extra.map(Path::to_path_buf).unwrap_or_default(),
        detail: e.to_string(),
    })
}

/// Accepts every server certificate but still checks handshake signatures,
/// so the session key really belongs to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Read a whole PEM file, refusing absurd sizes before allocating.
fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_err = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_PEM_FILE_SIZE {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    fs::read(path).map_err(read_err)
}

fn pem_error(path: &Path, err: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        detail: err.to_string(),
    }
}

/// Load every CERTIFICATE block of `path`, in order (leaf first).
pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// Load the first private key block of `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_pem_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        other => pem_error(path, other),
    })
}

/// Return the generated certificate's paths, creating the files if needed.
fn ensure_generated(hostname: &str, data_dir: &Path) -> Result<TlsFiles, TlsError> {
    let dir = data_dir.join(GENERATED_DIR);
    let files = TlsFiles {
        cert: dir.join(GENERATED_CERT),
        key: dir.join(GENERATED_KEY),
    };
    // The key is written before the certificate, so a certificate without a
    // key was not made by us: refuse rather than overwrite it. A key without
    // a certificate is a generation interrupted midway and is replaced.
    if files.cert.exists() {
        if !files.key.exists() {
            return Err(TlsError::MissingKey {
                cert: files.cert,
                key: files.key,
            });
        }
        return Ok(files);
    }
    warn!(
        hostname,
        dir = %dir.display(),
        "no TLS certificate configured; generating a self-signed one"
    );
    let (cert_pem, key_pem) = generate_self_signed(hostname)?;
    create_private_dir(&dir)?;
    write_file_durably(&files.key, key_pem.as_bytes(), true)?;
    write_file_durably(&files.cert, cert_pem.as_bytes(), false)?;
    sync_dir(&dir)?;
    Ok(files)
}

/// Subject alternative names for a generated certificate: the hostname, and
/// `localhost` / `127.0.0.1` so local clients and tests can verify it too.
fn subject_alt_names(hostname: &str) -> Vec<String> {
    let mut names = vec![hostname.to_string()];
    for extra in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(extra)) {
            names.push(extra.to_string());
        }
    }
    names
}

/// Returns (certificate PEM, private key PEM).
fn generate_self_signed(hostname: &str) -> Result<(String, String), TlsError> {
    let gen_err = |source| TlsError::Generate {
        hostname: hostname.to_string(),
        source,
    };
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let mut params = rcgen::CertificateParams::new(subject_alt_names(hostname)).map_err(gen_err)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, hostname);
    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Write via a temporary file + fsync + rename so a crash never leaves a
/// truncated PEM behind. `private` files get mode 0600 from creation on.
fn write_file_durably(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let write_err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(write_err)?;
    file.write_all(contents).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_err)
}

/// Make the renames themselves durable.
fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    #[cfg(unix)]
    {
        let dir_file = fs::File::open(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        dir_file.sync_all().map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_include_localhost_once() {
        assert_eq!(
            subject_alt_names("mail.example.org"),
            ["mail.example.org", "localhost", "127.0.0.1"]
        );
        assert_eq!(subject_alt_names("localhost"), ["localhost", "127.0.0.1"]);
        assert_eq!(subject_alt_names("127.0.0.1"), ["127.0.0.1", "localhost"]);
    }

    #[test]
    fn generated_files_are_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_generate("mail.example.org", None, dir.path()).unwrap();
        let cert_path = dir.path().join("tls/cert.pem");
        let first = fs::read(&cert_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key_mode = fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(key_mode & 0o777, 0o600);
            let dir_mode = fs::metadata(dir.path().join("tls")).unwrap().permissions().mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        load_or_generate("mail.example.org", None, dir.path()).unwrap();
        assert_eq!(first, fs::read(&cert_path).unwrap(), "certificate regenerated");
        assert!(!dir.path().join("tls/key.pem.tmp").exists());
    }

    #[test]
    fn missing_file_error_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("nope-cert.pem"),
            key: dir.path().join("nope-key.pem"),
        };
        let err = load_or_generate("h", Some(&files), dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("nope-cert.pem"), "{err}");
    }

    #[test]
    fn garbage_pem_is_reported_per_file() {
        let dir = tempfile::tempdir().unwrap();
        load_or_generate("h.example", None, dir.path()).unwrap();
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, b"this is not pem\n").unwrap();
        let good_cert = dir.path().join("tls/cert.pem");
        let good_key = dir.path().join("tls/key.pem");

        let err = load_or_generate(
            "h",
            Some(&TlsFiles {
                cert: garbage.clone(),
                key: good_key.clone(),
            }),
            dir.path(),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("garbage.pem"), "{err}");

        // A certificate where the key should be: no key block in that file.
        let err = load_or_generate(
            "h",
            Some(&TlsFiles {
                cert: good_cert.clone(),
                key: good_cert.clone(),
            }),
            dir.path(),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
        assert!(err.to_string().contains("cert.pem"), "{err}");
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        load_or_generate("a.example", None, a.path()).unwrap();
        load_or_generate("b.example", None, b.path()).unwrap();
        let files = TlsFiles {
            cert: a.path().join("tls/cert.pem"),
            key: b.path().join("tls/key.pem"),
        };
        let err = load_or_generate("h", Some(&files), a.path()).unwrap_err();
        assert!(matches!(err, TlsError::Rejected { .. }), "{err:?}");
    }

    #[test]
    fn cert_without_key_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("tls")).unwrap();
        fs::write(dir.path().join("tls/cert.pem"), b"operator's").unwrap();
        let err = load_or_generate("h", None, dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::MissingKey { .. }), "{err:?}");
        assert_eq!(fs::read(dir.path().join("tls/cert.pem")).unwrap(), b"operator's");
    }

    #[test]
    fn invalid_hostname_fails_generation() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_or_generate("b\u{e4}d.example", None, dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::Generate { .. }), "{err:?}");
    }
}
