//! Letterbox IMAP server: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501).
//!
//! Key design decisions: [`proto`] is the pure wire format (command parser,
//! literal markers, response encoding) with no I/O; [`session`] is the RFC
//! 9051 §3 state machine and talks only to the [`letterbox_store::Store`]
//! trait. The framing layer reads a line, and for every literal announced at
//! its end reads exactly that many bytes (bounded by
//! [`ImapConfig::max_literal`]) before reading the rest, so a whole command,
//! literals inlined, is parsed at once and nothing is buffered without
//! bound. A selected mailbox is a UID list kept in step with the store by
//! `Store::changes(mailbox, modseq)`, so updates from other sessions reach
//! the client only at the points RFC 9051 §7.5.1 allows.

pub mod proto;
pub mod session;

use std::time::Duration;

pub use session::session;

/// RFC 9051 §5.4: the autologout timer must be at least 30 minutes.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Settings of the IMAP service.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Name shown in the greeting.
    pub hostname: String,
    /// Allow LOGIN/AUTHENTICATE without TLS (RFC 9051 §11.1 / LOGINDISABLED).
    pub allow_plaintext_auth: bool,
    /// Autologout (RFC 9051 §5.4); also bounds a blocked write.
    pub idle_timeout: Duration,
    /// Autologout before authentication (RFC 9051 §5.4 allows a shorter one).
    pub preauth_timeout: Duration,
    /// Bad commands after which the session says BYE.
    pub max_errors: u32,
    /// Longest line between literals, terminator included.
    pub max_line: usize,
    /// Largest literal accepted (APPEND); bigger ones get `NO [TOOBIG]`.
    pub max_literal: u64,
    /// Largest total of literals in one non-APPEND command.
    pub max_small_literals: u64,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".into(),
            allow_plaintext_auth: false,
            idle_timeout: MIN_IDLE_TIMEOUT,
            preauth_timeout: Duration::from_secs(60),
            max_errors: 10,
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_small_literals: 64 * 1024,
        }
    }
}

/// What every IMAP session shares.
pub struct ImapCtx {
    pub store: letterbox_store::SharedStore,
    pub auth: letterbox_directory::Authenticator,
    pub tls: letterbox_net::TlsAcceptor,
    pub config: ImapConfig,
}
