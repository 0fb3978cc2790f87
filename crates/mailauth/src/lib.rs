//! Message authentication: DKIM keys and signing (RFC 6376, RFC 8463), and
//! the inbound checks (`verify`: SPF, iprev, DKIM, ARC, DMARC).
//!
//! Key design decisions: every domain gets two keys, ed25519-sha256 (RFC
//! 8463) and rsa-sha256 2048 (for verifiers without Ed25519), and mail is
//! signed with both. Keys are PKCS#8 DER files in
//! `<data>/dkim/<domain>/{ed25519,rsa}.der`, mode 0600 in a 0700 directory,
//! so backups of the data directory carry them and nothing else can read
//! them. The mail-auth crate does the cryptography; this crate owns files,
//! DNS record text and the choice of signed headers.

pub mod dmarc_report;
pub mod keys;
pub mod sign;
pub mod verify;

pub use keys::{dns_records, generate, DkimKeys, KeyError, Selectors};
pub use sign::DkimSigner;
pub use verify::{AuthReport, Client, DmarcPolicy, Iprev, Outcome, SpfCheck, Verifier};
