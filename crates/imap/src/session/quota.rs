//! QUOTA (RFC 9208) and UNAUTHENTICATE (RFC 8437).
//!
//! Key decision: an account has one quota root, `""`, covering every
//! mailbox (limits are per account in the store), with the STORAGE
//! (units of 1024 octets, §5.1) and MESSAGE (§5.2) resources. Limits are
//! the administrator's (`letterbox user quota`), so SETQUOTA is refused and
//! QUOTASET not advertised.

use letterbox_store::Account;

use super::conn::Conn;
use super::{Enabled, Flow, Session, State, User};
use crate::proto::push_string;

/// The one quota root of an account.
const ROOT: &str = "";

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`; a resource
/// without a limit is left out (0 means unlimited in the store).
fn quota_line(account: &Account) -> Vec<u8> {
    let mut out = b"* QUOTA ".to_vec();
    push_string(&mut out, ROOT.as_bytes());
    let mut res = Vec::new();
    if account.quota.bytes > 0 {
        res.push(format!(
            "STORAGE {} {}",
            account.usage.bytes.div_ceil(1024),
            account.quota.bytes / 1024
        ));
    }
    if account.quota.messages > 0 {
        res.push(format!("MESSAGE {} {}", account.usage.messages, account.quota.messages));
    }
    out.extend_from_slice(format!(" ({})\r\n", res.join(" ")).as_bytes());
    out
}

impl Session {
    /// RFC 9208 §4.1.1 GETQUOTA and §4.1.2 GETQUOTAROOT.
    pub(super) async fn get_quota(&mut self, conn: &mut Conn, tag: &str, user: &User, mailbox: Option<&str>) -> Flow {
        let store = self.ctx.store.clone();
        if let Some(name) = mailbox {
            // §4.1.2: the mailbox need not exist; ours all share the root.
            let mut line = b"* QUOTAROOT ".to_vec();
            crate::proto::push_mailbox(&mut line, &self.wire_name(name));
            line.push(b' ');
            push_string(&mut line, ROOT.as_bytes());
            line.extend_from_slice(b"\r\n");
            conn.out.extend_from_slice(&line);
        }
        match store.account_by_id(user.id).await {
            Ok(Some(account)) => {
                conn.out.extend_from_slice(&quota_line(&account));
                conn.tagged(tag, "OK", "quota reported");
                Flow::Continue
            }
            Ok(None) => {
                conn.tagged(tag, "NO", "[NONEXISTENT] no such quota root");
                Flow::Continue
            }
            Err(e) => self.store_error(conn, tag, &e),
        }
    }

    /// GETQUOTA of a root other than ours.
    pub(super) fn unknown_quota_root(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        conn.tagged(tag, "NO", "[NONEXISTENT] no such quota root");
        Flow::Continue
    }

    /// RFC 8437 §3: back to the not-authenticated state, no expunges, every
    /// extension the client enabled forgotten; never NO.
    pub(super) fn unauthenticate(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        if matches!(self.state, State::NotAuthenticated) {
            return self.bad(conn, tag, "not logged in");
        }
        self.state = State::NotAuthenticated;
        self.enabled = Enabled::default();
        // The shorter pre-login timers apply again (issue 18).
        conn.set_idle_timeout(self.ctx.config.idle_timeout.min(self.ctx.config.preauth_timeout));
        conn.set_deadline(self.ctx.config.preauth_timeout.saturating_mul(3));
        conn.tagged(tag, "OK", "UNAUTHENTICATE completed");
        Flow::Continue
    }
}
