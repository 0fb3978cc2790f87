//! IDLE, RFC 2177 / RFC 9051 §6.3.13: push mailbox changes until `DONE`.
//!
//! Changes committed in this process arrive on the store's broadcast, and
//! so does the store's notice that another process (the CLI) wrote, so an
//! idling session does no work at all until something may have changed:
//! that is what lets one server hold tens of thousands of IDLE connections.

use letterbox_store::ChangeKind;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::conn::Conn;
use super::{Flow, Session, State};

/// Longest line accepted while idling (`DONE`).
const MAX_IDLE_LINE: usize = 1024;

impl Session {
    /// Run one IDLE command; returns after `DONE`, a bad line, or the end
    /// of the connection.
    pub(super) async fn idle(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        let ctx = self.ctx.clone();
        let State::Selected(user, sel) = &mut self.state else {
            return self.bad(conn, tag, "IDLE needs a selected mailbox");
        };
        let account = user.id;
        let mut events = ctx.store.subscribe();
        // Boxed, like everything but the wait itself: see `Session::selected`.
        if Box::pin(sel.sync(&ctx, conn, true)).await.is_err() {
            conn.tagged(tag, "NO", "[UNAVAILABLE] cannot read the mailbox");
            return Flow::Continue;
        }
        conn.out.extend_from_slice(b"+ idling\r\n");
        if conn.flush().await.is_err() {
            return Flow::Close;
        }
        // Thousands of clients sit here for hours: no zlib state meanwhile.
        conn.release_idle();
        // RFC 9051 §5.4: the autologout timer keeps running while idling.
        let deadline = Instant::now() + ctx.config.idle_timeout;
        loop {
            let mut changed = false;
            tokio::select! {
                line = conn.read_line(MAX_IDLE_LINE) => {
                    return match line {
                        Ok(Ok(l)) if l.as_bytes().trim_ascii().eq_ignore_ascii_case(b"DONE") => {
                            conn.tagged(tag, "OK", "IDLE terminated");
                            Flow::Continue
                        }
                        Ok(_) => self.bad(conn, tag, "expected DONE"),
                        // The farewell (BYE) was already sent where due.
                        Err(_) => Flow::Close,
                    };
                }
                ev = events.recv() => match ev {
                    Ok(e) => changed = e.kind == ChangeKind::External
                        || (e.account_id == account && e.mailbox_id.is_none_or(|m| m == sel.mailbox.id)),
                    Err(RecvError::Lagged(_)) => changed = true,
                    Err(RecvError::Closed) => {}
                },
                () = tokio::time::sleep_until(deadline) => {
                    conn.untagged("BYE autologout; idle for too long");
                    return Flow::Close;
                }
            }
            if changed {
                if Box::pin(sel.sync(&ctx, conn, true)).await.is_err() {
                    conn.untagged("BYE [UNAVAILABLE] cannot read the mailbox");
                    return Flow::Close;
                }
                if conn.flush().await.is_err() {
                    return Flow::Close;
                }
                conn.release_idle();
            }
        }
    }
}
