//! Generating, storing and loading a domain's DKIM keys.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Sub-directory of the data directory holding the keys.
pub const DKIM_DIR: &str = "dkim";
const ED_FILE: &str = "ed25519.der";
const RSA_FILE: &str = "rsa.der";
/// Key files above this size are refused (a 2048-bit PKCS#8 key is ~1.2 KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Problems with key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {detail}")]
    Bad { path: PathBuf, detail: String },
    #[error("key generation failed")]
    Generate,
    #[error("'{0}' is not a domain name")]
    BadDomain(String),
}

/// The selector names of the two keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selectors {
    pub ed25519: String,
    pub rsa: String,
}

impl Selectors {
    /// `<prefix>-ed25519` and `<prefix>-rsa`.
    pub fn from_prefix(prefix: &str) -> Selectors {
        Selectors {
            ed25519: format!("{prefix}-ed25519"),
            rsa: format!("{prefix}-rsa"),
        }
    }
}

/// A domain's private keys (PKCS#8 DER).
pub struct DkimKeys {
    pub domain: String,
    pub ed25519_pkcs8: Vec<u8>,
    pub rsa_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for DkimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeys")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn domain_dir(data_dir: &Path, domain: &str) -> Result<PathBuf, KeyError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !ok {
        return Err(KeyError::BadDomain(domain.to_string()));
    }
    Ok(data_dir.join(DKIM_DIR).join(d))
}

/// Write `bytes` to `path` readable by the owner only, durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)?;
    Ok(())
}

/// Generate both keys for `domain`, replacing existing ones only with `replace`.
/// Returns false when keys existed and were kept.
pub fn generate(data_dir: &Path, domain: &str, replace: bool) -> Result<bool, KeyError> {
    let dir = domain_dir(data_dir, domain)?;
    if !replace && dir.join(ED_FILE).exists() && dir.join(RSA_FILE).exists() {
        return Ok(false);
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&dir).map_err(|source| KeyError::Write {
        path: dir.clone(),
        source,
    })?;
    let ed = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    let rsa_der = rsa.as_der().map_err(|_| KeyError::Generate)?;
    write_private(&dir.join(ED_FILE), ed.as_ref())?;
    write_private(&dir.join(RSA_FILE), rsa_der.as_ref())?;
    tracing::info!(domain, "generated DKIM keys");
    Ok(true)
}

fn read_key(path: &Path) -> Result<Option<Vec<u8>>, KeyError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::Bad {
            path: path.to_path_buf(),
            detail: "too large for a key".into(),
        });
    }
    fs::read(path).map(Some).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl DkimKeys {
    /// Load a domain's keys; `None` when it has none.
    pub fn load(data_dir: &Path, domain: &str) -> Result<Option<DkimKeys>, KeyError> {
        let dir = domain_dir(data_dir, domain)?;
        let (Some(ed), Some(rsa)) = (read_key(&dir.join(ED_FILE))?, read_key(&dir.join(RSA_FILE))?) else {
            return Ok(None);
        };
        Ok(Some(DkimKeys {
            domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
            ed25519_pkcs8: ed,
            rsa_pkcs8: rsa,
        }))
    }

    /// RFC 8463 §4: the raw 32-byte public key, base64.
    pub fn ed25519_public(&self) -> Result<String, KeyError> {
        let kp = Ed25519KeyPair::from_pkcs8(&self.ed25519_pkcs8).map_err(|e| KeyError::Bad {
            path: PathBuf::from(ED_FILE),
            detail: e.to_string(),
        })?;
        Ok(B64.encode(kp.public_key().as_ref()))
    }

    /// RFC 6376 §3.6.1: the SubjectPublicKeyInfo DER, base64.
    pub fn rsa_public(&self) -> Result<String, KeyError> {
        let bad = |detail: String| KeyError::Bad {
            path: PathBuf::from(RSA_FILE),
            detail,
        };
        let kp = RsaKeyPair::from_pkcs8(&self.rsa_pkcs8).map_err(|e| bad(e.to_string()))?;
        let spki = kp.public_key().as_der().map_err(|e| bad(e.to_string()))?;
        Ok(B64.encode(spki.as_ref()))
    }
}

/// A TXT value as zone-file strings of at most 255 bytes (RFC 1035 §3.3).
fn txt_strings(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every record `domain` should publish, as zone-file lines with comments.
pub fn dns_records(
    domain: &str,
    hostname: &str,
    keys: Option<&DkimKeys>,
    selectors: &Selectors,
) -> Result<String, KeyError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let h = hostname.trim_end_matches('.');
    let mut z = String::new();
    z.push_str(&format!("; DNS records for {d}, served by {h}\n"));
    z.push_str(&format!(
        "; {h} itself needs A/AAAA records and a matching PTR (reverse DNS).\n\n"
    ));
    z.push_str("; Mail for the domain goes to this server (RFC 5321 §5.1).\n");
    z.push_str(&format!("{d}.\tIN\tMX\t10 {h}.\n\n"));
    z.push_str("; SPF (RFC 7208): only the MX hosts send for the domain.\n");
    z.push_str(&format!("{d}.\tIN\tTXT\t\"v=spf1 mx -all\"\n\n"));
    match keys {
        Some(k) => {
            z.push_str("; DKIM public keys (RFC 6376, RFC 8463); mail is signed with both.\n");
            z.push_str(&format!(
                "{}._domainkey.{d}.\tIN\tTXT\t{}\n",
                selectors.ed25519,
                txt_strings(&format!("v=DKIM1; k=ed25519; p={}", k.ed25519_public()?))
            ));
            z.push_str(&format!(
                "{}._domainkey.{d}.\tIN\tTXT\t{}\n\n",
                selectors.rsa,
                txt_strings(&format!("v=DKIM1; k=rsa; p={}", k.rsa_public()?))
            ));
        }
        None => z.push_str(&format!("; No DKIM keys yet: run `letterbox dkim generate {d}`.\n\n")),
    }
    z.push_str("; DMARC (RFC 7489): quarantine what fails, aggregate reports to postmaster.\n");
    z.push_str(&format!(
        "_dmarc.{d}.\tIN\tTXT\t\"v=DMARC1; p=quarantine; rua=mailto:postmaster@{d}\"\n\n"
    ));
    z.push_str("; Client configuration discovery (RFC 6186, RFC 8314 §5.1).\n");
    for (service, port) in [
        ("_submissions._tcp", 465),
        ("_submission._tcp", 587),
        ("_imaps._tcp", 993),
        ("_imap._tcp", 143),
        ("_pop3s._tcp", 995),
        ("_pop3._tcp", 110),
    ] {
        z.push_str(&format!("{service}.{d}.\tIN\tSRV\t0 1 {port} {h}.\n"));
    }
    z.push_str(&format!("autoconfig.{d}.\tIN\tCNAME\t{h}.\n"));
    z.push_str(&format!("autodiscover.{d}.\tIN\tCNAME\t{h}.\n"));
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_publish() {
        let dir = tempfile::tempdir().unwrap();
        assert!(generate(dir.path(), "Example.TEST", false).unwrap());
        assert!(
            !generate(dir.path(), "example.test", false).unwrap(),
            "kept existing keys"
        );
        let keys = DkimKeys::load(dir.path(), "example.test").unwrap().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join("dkim/example.test/rsa.der");
            assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(B64.decode(keys.ed25519_public().unwrap()).unwrap().len(), 32);
        let z = dns_records(
            "example.test",
            "mx.example.test",
            Some(&keys),
            &Selectors::from_prefix("lb"),
        )
        .unwrap();
        assert!(z.contains("lb-ed25519._domainkey.example.test.\tIN\tTXT\t\"v=DKIM1; k=ed25519; p="));
        let rsa_line = z.lines().find(|l| l.starts_with("lb-rsa._domainkey")).unwrap();
        // A 2048-bit key does not fit one 255-byte string.
        assert!(rsa_line.matches('"').count() >= 4, "{rsa_line}");
        assert!(z.contains("example.test.\tIN\tMX\t10 mx.example.test."));
        assert!(DkimKeys::load(dir.path(), "other.test").unwrap().is_none());
        assert!(generate(dir.path(), "../etc", false).is_err());
    }
}
