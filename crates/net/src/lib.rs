//! Network plumbing shared by the SMTP, IMAP and POP3 servers: TLS setup,
//! the accept loop with connection limits, a stream type that can be upgraded
//! in place, and a bounded line reader.
//!
//! Key design decision: everything here is protocol-agnostic and the session
//! owns its byte stream. [`serve`] hands each session a [`MaybeTls`] that it
//! wraps in a [`LineReader`]; for STARTTLS/STLS the session takes the stream
//! back with [`LineReader::into_inner`], calls [`MaybeTls::upgrade`] and wraps
//! the result in a fresh reader. Because the reader exposes
//! [`LineReader::buffered`], the protocol can refuse plaintext that was
//! pipelined after the STARTTLS command (RFC 3207 §4.2, RFC 2595 §3.1 / §4)
//! instead of it silently leaking into the encrypted session. Connection caps,
//! panic isolation and graceful shutdown live in [`serve`] so the three
//! protocols cannot disagree on them.

pub mod line;
pub mod listener;
pub mod metrics;
pub mod stream;
pub mod tls;

pub use line::{Line, LineEnding, LineError, LineReader};
pub use listener::{serve, ConnInfo, ListenerLimits, Shutdown};
pub use stream::{MaybeTls, TlsInfo};
pub use tls::{
    install_crypto_provider, load_or_generate, opportunistic_client_config, system_client_config, TlsError, TlsFiles,
};

/// Re-exported so callers need not depend on tokio-rustls directly.
pub use tokio_rustls::TlsAcceptor;
