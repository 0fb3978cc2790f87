//! Letterbox POP3 server: RFC 1939 with the CAPA/response-code extensions
//! of RFC 2449, STLS (RFC 2595 §4), SASL AUTH (RFC 5034) and implicit TLS
//! (RFC 8314 §3.1).
//!
//! Key design decisions: [`proto`] is the pure wire format (parsing,
//! formatting, dot-stuffing) and [`session`] the state machine that talks to
//! the [`letterbox_store::Store`] trait only. A session takes a snapshot of
//! INBOX at login, so message numbers and sizes stay fixed (RFC 1939 §5), and
//! removes messages only when QUIT enters the UPDATE state, in one store
//! transaction (RFC 1939 §6). An exclusive per-account maildrop lock, shared
//! by all sessions of the process, refuses a second concurrent POP3 login
//! with `[IN-USE]` (RFC 2449 §8.1.2).

pub mod proto;
pub mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use letterbox_store::AccountId;

pub use session::session;

/// Minimum idle timeout: RFC 1939 §3 says an autologout timer MUST be at
/// least 10 minutes.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Settings of the POP3 service.
#[derive(Debug, Clone)]
pub struct Pop3Config {
    /// Name shown in the greeting.
    pub hostname: String,
    /// Allow USER/PASS and AUTH on connections without TLS (RFC 2595 §2.3).
    pub allow_plaintext_auth: bool,
    /// Inactivity autologout (RFC 1939 §3); also bounds a blocked write.
    /// Values under [`MIN_IDLE_TIMEOUT`] are only for tests.
    pub idle_timeout: Duration,
    /// Bad commands after which the session is closed.
    pub max_errors: u32,
    /// Longest command line accepted, terminator included. RFC 2449 §4 caps
    /// commands at 255 octets; we accept more from sloppy clients.
    pub max_line: usize,
    /// Longest SASL client response line (RFC 5034 §4: may exceed the
    /// command limit).
    pub max_sasl_line: usize,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            hostname: "localhost".into(),
            allow_plaintext_auth: false,
            idle_timeout: MIN_IDLE_TIMEOUT,
            max_errors: 10,
            max_line: 1024,
            max_sasl_line: 16 * 1024,
        }
    }
}

/// What every POP3 session shares.
pub struct Pop3Ctx {
    pub store: letterbox_store::SharedStore,
    pub auth: letterbox_directory::Authenticator,
    pub tls: letterbox_net::TlsAcceptor,
    pub config: Pop3Config,
    locks: MaildropLocks,
}

impl Pop3Ctx {
    pub fn new(
        store: letterbox_store::SharedStore,
        auth: letterbox_directory::Authenticator,
        tls: letterbox_net::TlsAcceptor,
        config: Pop3Config,
    ) -> Self {
        Pop3Ctx {
            store,
            auth,
            tls,
            config,
            locks: MaildropLocks::default(),
        }
    }

    /// Take the exclusive POP3 lock of an account's maildrop (RFC 1939 §4),
    /// `None` if another session holds it.
    pub fn lock_maildrop(&self, account: AccountId) -> Option<MaildropLock> {
        self.locks.try_lock(account)
    }
}

/// Accounts whose maildrop a session holds.
#[derive(Debug, Default, Clone)]
struct MaildropLocks {
    held: Arc<Mutex<HashSet<AccountId>>>,
}

impl MaildropLocks {
    fn try_lock(&self, account: AccountId) -> Option<MaildropLock> {
        // Nothing panics while the set is locked, so a poisoned set is intact.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(account).then(|| MaildropLock {
            locks: self.clone(),
            account,
        })
    }
}

/// An exclusive maildrop lock, released on drop — also when the session
/// task is aborted or the connection drops.
#[derive(Debug)]
pub struct MaildropLock {
    locks: MaildropLocks,
    account: AccountId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildrop_lock_is_exclusive_and_released_on_drop() {
        let locks = MaildropLocks::default();
        let a = locks.try_lock(1).expect("free");
        assert!(locks.try_lock(1).is_none());
        let b = locks.try_lock(2).expect("other account is free");
        drop(a);
        assert!(locks.try_lock(1).is_some());
        drop(b);
        assert!(locks.held.lock().unwrap().is_empty());
    }
}
