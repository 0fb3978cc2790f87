//! Signing submitted mail with each domain's keys.

use crate::keys::{DkimKeys, KeyError, Selectors};
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner as Signer};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Header fields signed (RFC 6376 §5.4.1's recommendations). Fields listed
/// but absent are signed as absent, so nobody can add them in transit.
const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "Reply-To",
    "Sender",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Signs with the keys in the data directory, loading each domain's keys
/// on first use (and again after a miss, so keys made by `letterbox dkim
/// generate` while the server runs are picked up).
pub struct DkimSigner {
    data_dir: PathBuf,
    selectors: Selectors,
    cache: Mutex<HashMap<String, Arc<DkimKeys>>>,
}

impl DkimSigner {
    pub fn new(data_dir: PathBuf, selectors: Selectors) -> DkimSigner {
        DkimSigner {
            data_dir,
            selectors,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self, domain: &str) -> Result<Option<Arc<DkimKeys>>, KeyError> {
        let domain = domain.to_ascii_lowercase();
        if let Some(k) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&domain) {
            return Ok(Some(k.clone()));
        }
        let Some(k) = DkimKeys::load(&self.data_dir, &domain)? else {
            return Ok(None);
        };
        let k = Arc::new(k);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(domain, k.clone());
        Ok(Some(k))
    }

    /// `DKIM-Signature` fields (ed25519 then rsa) for `message` signed as
    /// `domain`, CRLF-terminated; `None` when the domain has no keys.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Option<String>, String> {
        let Some(keys) = self.keys(domain).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let ed = Ed25519Key::from_pkcs8_der(&keys.ed25519_pkcs8).map_err(|e| format!("ed25519 key: {e}"))?;
        let rsa =
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(keys.rsa_pkcs8.clone())))
                .map_err(|e| format!("rsa key: {e}"))?;
        let ed_sig = self.sign_with(DkimKey::from(ed), &keys.domain, &self.selectors.ed25519, message)?;
        let rsa_sig = self.sign_with(DkimKey::from(rsa), &keys.domain, &self.selectors.rsa, message)?;
        Ok(Some(format!("{ed_sig}{rsa_sig}")))
    }

    /// One `DKIM-Signature` field, relaxed/relaxed.
    fn sign_with(&self, key: DkimKey, domain: &str, selector: &str, message: &[u8]) -> Result<String, String> {
        Signer::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .sign(message)
            .map(|sig| sig.to_header())
            .map_err(|e| format!("signing with {selector}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_both_keys() {
        let dir = tempfile::tempdir().unwrap();
        crate::keys::generate(dir.path(), "a.test", false).unwrap();
        let s = DkimSigner::new(dir.path().to_path_buf(), Selectors::from_prefix("lb"));
        let msg = b"From: x@a.test\r\nTo: y@b.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let h = s.sign("A.test", msg).unwrap().unwrap();
        assert!(h.starts_with("DKIM-Signature: "), "{h}");
        assert_eq!(h.matches("DKIM-Signature:").count(), 2);
        assert!(h.contains("a=ed25519-sha256") && h.contains("a=rsa-sha256"));
        assert!(h.contains("s=lb-ed25519") && h.contains("s=lb-rsa") && h.contains("d=a.test"));
        assert!(h.contains("c=relaxed/relaxed"));
        assert!(h.ends_with("\r\n"));
        assert!(s.sign("nokeys.test", msg).unwrap().is_none());
    }
}
