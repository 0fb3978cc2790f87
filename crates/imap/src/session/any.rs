//! Commands valid in any state: CAPABILITY, NOOP, LOGOUT (RFC 9051 §6.1),
//! ID (RFC 2971) and ENABLE (RFC 5161, valid once authenticated).

use super::conn::Conn;
use super::{Flow, Session, State};
use crate::proto::push_string;

impl Session {
    /// RFC 9051 §6.1.1.
    pub(super) fn capability(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        let caps = self.capabilities(conn);
        conn.untagged(&format!("CAPABILITY {caps}"));
        conn.tagged(tag, "OK", "CAPABILITY completed");
        Flow::Continue
    }

    /// RFC 9051 §6.1.2: also the classic poll for mailbox updates.
    pub(super) async fn noop(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        if let State::Selected(_, sel) = &mut self.state {
            if let Err(e) = sel.sync(&self.ctx, conn, true).await {
                return self.store_error(conn, tag, &e);
            }
        }
        conn.tagged(tag, "OK", "NOOP completed");
        Flow::Continue
    }

    /// RFC 9051 §6.1.3.
    pub(super) fn logout(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        conn.untagged("BYE logging out");
        conn.tagged(tag, "OK", "LOGOUT completed");
        Flow::Close
    }

    /// RFC 2971 §3.1: log what the client says, answer with our name.
    pub(super) fn id(&mut self, conn: &mut Conn, tag: &str, fields: &[(String, Option<String>)]) -> Flow {
        let client: Vec<String> = fields
            .iter()
            .take(8)
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
            .collect();
        tracing::info!(client = %client.join(" "), "ID");
        let mut out = b"* ID (".to_vec();
        push_string(&mut out, b"name");
        out.push(b' ');
        push_string(&mut out, b"Letterbox");
        out.push(b' ');
        push_string(&mut out, b"version");
        out.push(b' ');
        push_string(&mut out, env!("CARGO_PKG_VERSION").as_bytes());
        out.extend_from_slice(b")\r\n");
        conn.out.extend_from_slice(&out);
        conn.tagged(tag, "OK", "ID completed");
        Flow::Continue
    }

    /// RFC 5161 §3.1: only after login; unknown capabilities are ignored.
    pub(super) fn enable(&mut self, conn: &mut Conn, tag: &str, caps: &[String]) -> Flow {
        if !matches!(self.state, State::Authenticated(_)) {
            // RFC 5161 §3.1: authenticated state only, so a selected view never changes rules.
            return self.bad(conn, tag, "ENABLE is only valid after login and before SELECT");
        }
        let advertised = self.capabilities(conn);
        let mut enabled = Vec::new();
        for cap in caps {
            // RFC 9051 §2.3.1: only what we advertise can be enabled.
            if !advertised.split(' ').any(|c| c.eq_ignore_ascii_case(cap)) {
                continue;
            }
            let e = &mut self.enabled;
            // RFC 5161 §3.2: ENABLED lists only what this command turned on.
            match cap.as_str() {
                "IMAP4REV2" if !e.rev2 => {
                    e.rev2 = true;
                    enabled.push("IMAP4rev2");
                }
                "CONDSTORE" if !e.condstore => {
                    e.condstore = true;
                    enabled.push("CONDSTORE");
                }
                "UTF8=ACCEPT" if !e.utf8 => {
                    e.utf8 = true;
                    enabled.push("UTF8=ACCEPT");
                }
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                "QRESYNC" if !e.qresync => {
                    e.qresync = true;
                    e.condstore = true;
                    enabled.push("QRESYNC");
                }
                _ => {}
            }
        }
        conn.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
        conn.tagged(tag, "OK", "ENABLE completed");
        Flow::Continue
    }
}
