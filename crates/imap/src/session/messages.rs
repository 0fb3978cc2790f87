//! Selected-state commands that change messages: STORE (RFC 9051 §6.4.6),
//! EXPUNGE and UID EXPUNGE (§6.4.3, RFC 4315), COPY and MOVE (§6.4.7,
//! §6.4.8, RFC 6851) with COPYUID.

use letterbox_store::FlagOp;

use super::conn::Conn;
use super::{Flow, Session, State};
use crate::proto::{push_flags, Command, SeqSet};

impl Session {
    /// Commands other than IDLE run boxed: a session's task is as big as
    /// its largest in-flight future, and most sessions just sit in IDLE.
    pub(super) async fn selected(&mut self, conn: &mut Conn, tag: &str, cmd: Command) -> Flow {
        match cmd {
            Command::Idle => self.idle(conn, tag).await,
            cmd => Box::pin(self.selected_boxed(conn, tag, cmd)).await,
        }
    }

    async fn selected_boxed(&mut self, conn: &mut Conn, tag: &str, cmd: Command) -> Flow {
        match cmd {
            Command::Close => self.close(conn, tag, true).await,
            Command::Unselect => self.close(conn, tag, false).await,
            Command::Fetch { uid, set, atts } => self.fetch(conn, tag, uid, &set, &atts).await,
            Command::Store {
                uid,
                set,
                op,
                silent,
                flags,
            } => self.store(conn, tag, uid, &set, op, silent, &flags).await,
            Command::Expunge { uids } => self.expunge(conn, tag, uids.as_ref()).await,
            Command::Copy {
                uid,
                set,
                mailbox,
                is_move,
            } => self.copy(conn, tag, uid, &set, &mailbox, is_move).await,
            // RFC 3501 §6.4.1: a checkpoint; our writes are durable when
            // acknowledged, so it only reports pending changes like NOOP.
            Command::Check => {
                if let State::Selected(_, sel) = &mut self.state {
                    if let Err(e) = sel.sync(&self.ctx, conn, true).await {
                        return self.store_error(conn, tag, &e);
                    }
                }
                conn.tagged(tag, "OK", "CHECK completed");
                Flow::Continue
            }
            Command::Search { uid, ret, charset, key } => {
                self.search(conn, tag, uid, ret, charset.as_deref(), &key).await
            }
            other => self.bad(conn, tag, &format!("{} is not supported", other.name())),
        }
    }

    /// RFC 9051 §6.4.6 STORE; FETCH responses for every addressed message
    /// unless `.SILENT`. Expunges stay held back (§7.5.1).
    #[allow(clippy::too_many_arguments)]
    async fn store(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        op: FlagOp,
        silent: bool,
        flags: &[String],
    ) -> Flow {
        let State::Selected(_, sel) = &mut self.state else {
            return Flow::Continue;
        };
        if sel.read_only {
            conn.tagged(tag, "NO", "[READ-ONLY] mailbox is read-only");
            return Flow::Continue;
        }
        let idx = match sel.resolve(set, uid) {
            Ok(i) => i,
            Err(text) => return self.bad(conn, tag, &text),
        };
        let flags: Vec<String> = flags
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .cloned()
            .collect();
        let uids: Vec<u32> = idx.iter().map(|&i| sel.view.uid(i)).collect();
        let changed = match self.ctx.store.store_flags(sel.mailbox.id, &uids, op, &flags).await {
            Ok(c) => c,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        // Like Dovecot, a keyword a STORE names joins FLAGS even when no
        // message ends up carrying it (e.g. -FLAGS of an unused keyword).
        sel.announce_keywords(conn, &flags);
        sel.apply(conn, &changed);
        if let Err(e) = sel.sync(&self.ctx, conn, false).await {
            return self.store_error(conn, tag, &e);
        }
        if !silent {
            for i in idx {
                let mut line = format!("* {} FETCH (", i + 1).into_bytes();
                if uid {
                    line.extend_from_slice(format!("UID {} ", sel.view.uid(i)).as_bytes());
                }
                line.extend_from_slice(b"FLAGS ");
                push_flags(&mut line, &sel.shown_flags(i));
                line.extend_from_slice(b")\r\n");
                conn.out.extend_from_slice(&line);
            }
        }
        conn.tagged(tag, "OK", "STORE completed");
        Flow::Continue
    }

    /// RFC 9051 §6.4.3 EXPUNGE; with `uids`, RFC 4315 §2.1 UID EXPUNGE.
    async fn expunge(&mut self, conn: &mut Conn, tag: &str, uids: Option<&SeqSet>) -> Flow {
        let State::Selected(_, sel) = &mut self.state else {
            return Flow::Continue;
        };
        if sel.read_only {
            conn.tagged(tag, "NO", "[READ-ONLY] mailbox is read-only");
            return Flow::Continue;
        }
        let only: Option<Vec<u32>> = match uids {
            Some(set) => match sel.resolve(set, true) {
                Ok(idx) => Some(idx.iter().map(|&i| sel.view.uid(i)).collect()),
                Err(text) => return self.bad(conn, tag, &text),
            },
            None => None,
        };
        if let Err(e) = self.ctx.store.expunge(sel.mailbox.id, only.as_deref()).await {
            return self.store_error(conn, tag, &e);
        }
        if let Err(e) = sel.sync(&self.ctx, conn, true).await {
            return self.store_error(conn, tag, &e);
        }
        conn.tagged(tag, "OK", "EXPUNGE completed");
        Flow::Continue
    }

    /// COPY / MOVE and their UID forms, answering with COPYUID.
    async fn copy(&mut self, conn: &mut Conn, tag: &str, uid: bool, set: &SeqSet, target: &str, is_move: bool) -> Flow {
        let State::Selected(user, sel) = &mut self.state else {
            return Flow::Continue;
        };
        if is_move && sel.read_only {
            conn.tagged(tag, "NO", "[READ-ONLY] mailbox is read-only");
            return Flow::Continue;
        }
        let idx = match sel.resolve(set, uid) {
            Ok(i) => i,
            Err(text) => return self.bad(conn, tag, &text),
        };
        let store = self.ctx.store.clone();
        let dest = match store.mailbox(user.id, target).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                conn.tagged(tag, "NO", "[TRYCREATE] no such mailbox");
                return Flow::Continue;
            }
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let uids: Vec<u32> = idx.iter().map(|&i| sel.view.uid(i)).collect();
        let result = if is_move {
            store.move_messages(sel.mailbox.id, &uids, dest.id).await
        } else {
            store.copy(sel.mailbox.id, &uids, dest.id).await
        };
        let copied = match result {
            Ok(c) => c,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let code = if copied.uids.is_empty() {
            String::new()
        } else {
            let src: Vec<u32> = copied.uids.iter().map(|p| p.0).collect();
            let dst: Vec<u32> = copied.uids.iter().map(|p| p.1).collect();
            format!("[COPYUID {} {} {}] ", copied.uid_validity, uid_set(&src), uid_set(&dst))
        };
        if is_move {
            // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
            if !code.is_empty() {
                conn.untagged(&format!("OK {code}moved"));
            }
            if let Err(e) = sel.sync(&self.ctx, conn, true).await {
                return self.store_error(conn, tag, &e);
            }
            conn.tagged(tag, "OK", "MOVE completed");
        } else {
            if let Err(e) = sel.sync(&self.ctx, conn, true).await {
                return self.store_error(conn, tag, &e);
            }
            conn.tagged(tag, "OK", &format!("{code}COPY completed"));
        }
        Flow::Continue
    }
}

/// Compact `uid-set` for COPYUID (RFC 4315 §3): runs become ranges; order
/// is kept, since source and destination sets correspond pairwise.
pub fn uid_set(uids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut j = i;
        while j + 1 < uids.len() && uids[j + 1] == uids[j].wrapping_add(1) {
            j += 1;
        }
        parts.push(if j > i {
            format!("{start}:{}", uids[j])
        } else {
            start.to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets() {
        assert_eq!(super::uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(super::uid_set(&[4]), "4");
        assert_eq!(super::uid_set(&[]), "");
    }
}
