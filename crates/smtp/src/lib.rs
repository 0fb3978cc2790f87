//! The SMTP server: inbound MX (port 25), submission (587 with STARTTLS,
//! 465 with implicit TLS) and local delivery into the store.
//!
//! Key design decision: one session type serves every role; the [`Role`]
//! decides only policy (whether AUTH is offered or required, whether remote
//! recipients are allowed, whether sender addresses are checked). Wire
//! parsing is in `letterbox-smtp-proto`; this crate does I/O and policy.
//! A message is answered `250` only after the store has committed it.

mod auth;
mod envelope;
mod headers;
mod message;
mod session;

pub use session::session;

use letterbox_directory::Authenticator;
use letterbox_net::TlsAcceptor;
use letterbox_store::SharedStore;
use std::time::Duration;

/// Which listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Port 25: mail for local domains, no AUTH (RFC 5321).
    Mx,
    /// Port 587: STARTTLS, AUTH required (RFC 6409).
    Submission,
    /// Port 465: implicit TLS, AUTH required (RFC 8314 §3.3).
    Submissions,
}

impl Role {
    /// Whether this role is message submission (AUTH required, relaying allowed).
    pub fn is_submission(self) -> bool {
        !matches!(self, Role::Mx)
    }
}

/// Limits and policy, all configurable.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Announced in the greeting, EHLO and Received headers.
    pub hostname: String,
    /// Largest message accepted, bytes (RFC 1870 SIZE).
    pub max_message_size: usize,
    /// Message bytes all sessions together may hold in memory while
    /// receiving; a message that would go past it gets 452 4.3.1.
    pub max_buffered_bytes: usize,
    /// Recipients per message (RFC 5321 §4.5.3.1.8 requires at least 100).
    pub max_recipients: usize,
    /// Messages per connection.
    pub max_transactions: u32,
    /// Bad commands before the connection is closed.
    pub max_errors: u32,
    /// Wait for each command or data line (RFC 5321 §4.5.3.2: 5 minutes).
    pub command_timeout: Duration,
    /// Total connection lifetime.
    pub session_timeout: Duration,
    /// Longest text line in DATA, terminator included (RFC 5321 §4.5.3.1.6).
    pub max_data_line: usize,
    /// Allow AUTH without TLS (loopback testing).
    pub allow_plaintext_auth: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: "localhost".into(),
            max_message_size: 50 * 1024 * 1024,
            max_buffered_bytes: 512 * 1024 * 1024,
            max_recipients: 100,
            max_transactions: 100,
            max_errors: 10,
            command_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(3600),
            max_data_line: 1000,
            allow_plaintext_auth: false,
        }
    }
}

/// Signs mail that local users submit (DKIM); the server provides it.
pub trait MessageSigner: Send + Sync {
    /// Header fields to put on top of `message`, sent as `domain`; `None`
    /// when the domain has no keys. Errors are logged, and the message goes
    /// out unsigned rather than being refused.
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Option<String>, String>;
}

/// What every SMTP session shares.
pub struct SmtpCtx {
    pub store: SharedStore,
    pub auth: Authenticator,
    pub tls: TlsAcceptor,
    pub config: SmtpConfig,
    /// DKIM signing of submitted mail, when enabled.
    pub signer: Option<std::sync::Arc<dyn MessageSigner>>,
    /// Told of each message stored for local accounts (the vacation responder).
    pub after_delivery: Option<std::sync::Arc<dyn letterbox_store::AfterDelivery>>,
    /// The server-wide budget of message bytes held while receiving.
    pub buffers: MessageBuffers,
    /// The local-delivery pipeline (authentication, policy, spam, store).
    pub inbound: letterbox_inbound::Inbound,
}

/// A spawned check whose answer is awaited later (SPF from MAIL FROM to
/// the end of DATA, iprev for the whole connection) and then kept for
/// later messages; dropped unanswered, it is cancelled.
pub(crate) enum Pending<T> {
    Running(tokio::task::JoinHandle<Option<T>>),
    Done(Option<T>),
}

impl<T: Clone + Send + 'static> Pending<T> {
    pub(crate) fn spawn(f: impl std::future::Future<Output = Option<T>> + Send + 'static) -> Pending<T> {
        Pending::Running(tokio::spawn(f))
    }

    /// The answer (`None` when there is none or the task failed).
    pub(crate) async fn get(&mut self) -> Option<T> {
        if let Pending::Running(h) = self {
            *self = Pending::Done(h.await.ok().flatten());
        }
        match self {
            Pending::Done(v) => v.clone(),
            Pending::Running(_) => None,
        }
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Pending::Running(h) = self {
            h.abort();
        }
    }
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

/// Issue 18: every session buffers the message it receives; with many
/// connections that is many times the size limit. This budget, shared by
/// all sessions, bounds the total: a session takes room as its message
/// grows (in [`MessageBuffers::STEP`] steps) and gives it back once the
/// message is stored or refused.
#[derive(Debug, Clone)]
pub struct MessageBuffers {
    /// Permits are KiB.
    room: std::sync::Arc<tokio::sync::Semaphore>,
}

impl MessageBuffers {
    /// Room is taken in steps of this many bytes.
    pub const STEP: usize = 64 * 1024;

    pub fn new(max_bytes: usize) -> MessageBuffers {
        let kib = (max_bytes / 1024).clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        MessageBuffers {
            room: std::sync::Arc::new(tokio::sync::Semaphore::new(kib)),
        }
    }

    /// Make `held` cover at least `bytes`; false when the server has no
    /// room left (the message is then refused with 452 4.3.1).
    pub fn cover(&self, held: &mut Option<tokio::sync::OwnedSemaphorePermit>, bytes: usize) -> bool {
        let have = held.as_ref().map_or(0, |p| p.num_permits());
        let want = bytes.div_ceil(Self::STEP) * (Self::STEP / 1024);
        if want <= have {
            return true;
        }
        let Ok(more) = self.room.clone().try_acquire_many_owned((want - have) as u32) else {
            return false;
        };
        match held {
            Some(p) => p.merge(more),
            None => *held = Some(more),
        }
        true
    }
}

/// Longest command line; RFC 5321 §4.5.3.1.4 says 512, RFC 4954 §4 allows
/// longer AUTH lines, and some clients exceed 512 with many parameters.
pub(crate) const MAX_COMMAND_LINE: usize = 4096;
/// RFC 4954 §4: AUTH responses may be up to 12288 octets.
pub(crate) const MAX_AUTH_LINE: usize = 12288;

#[cfg(test)]
mod buffer_tests {
    use super::MessageBuffers;

    #[test]
    fn room_is_taken_in_steps_and_given_back() {
        let b = MessageBuffers::new(200 * 1024);
        let (mut one, mut two) = (None, None);
        assert!(b.cover(&mut one, 1));
        assert_eq!(one.as_ref().map(|p| p.num_permits()), Some(64));
        assert!(b.cover(&mut one, 100 * 1024));
        assert!(!b.cover(&mut two, 100 * 1024), "only 72 KiB left");
        assert!(b.cover(&mut two, 60 * 1024));
        drop(one.take());
        assert!(b.cover(&mut two, 190 * 1024), "room came back");
    }
}
