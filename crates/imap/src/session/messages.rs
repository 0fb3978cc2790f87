//! Selected-state commands that change messages: STORE (RFC 9051 §6.4.6),
//! EXPUNGE and UID EXPUNGE (§6.4.3, RFC 4315), COPY and MOVE (§6.4.7,
//! §6.4.8, RFC 6851) with COPYUID.

use letterbox_store::FlagOp;

use super::conn::Conn;
use super::{Flow, Session, State};
use crate::proto::response::{FetchResponse, Untagged};
use crate::proto::{Command, SeqSet};

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
            Command::Fetch {
                uid,
                set,
                atts,
                changed_since,
                vanished,
            } => self.fetch(conn, tag, uid, &set, &atts, changed_since, vanished).await,
            Command::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            } => {
                self.store(conn, tag, uid, &set, unchanged_since, op, silent, &flags)
                    .await
            }
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
            Command::Sort {
                uid,
                ret,
                criteria,
                charset,
                key,
            } => self.sort(conn, tag, uid, ret, &criteria, &charset, &key).await,
            Command::Thread {
                uid,
                algorithm,
                charset,
                key,
            } => self.thread(conn, tag, uid, algorithm, &charset, &key).await,
            other => self.bad(conn, tag, &format!("{} is not supported", other.name())),
        }
    }

    /// RFC 9051 §6.4.6 STORE; FETCH responses for every addressed message
    /// unless `.SILENT`. Expunges stay held back (§7.5.1). RFC 7162
    /// §3.1.3: with UNCHANGEDSINCE only messages not changed since are
    /// touched, the others are named in `[MODIFIED]`; a CONDSTORE client
    /// gets MODSEQ for every message changed, `.SILENT` or not.
    #[allow(clippy::too_many_arguments)]
    async fn store(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        unchanged_since: Option<u64>,
        op: FlagOp,
        silent: bool,
        flags: &[String],
    ) -> Flow {
        if unchanged_since.is_some() {
            self.enable_condstore(conn);
        }
        let qresync = self.enabled.qresync;
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
        let done = match self
            .ctx
            .store
            .store_flags_if(sel.mailbox.id, &uids, op, &flags, unchanged_since)
            .await
        {
            Ok(c) => c,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        // Like Dovecot, a keyword a STORE names joins FLAGS even when no
        // message ends up carrying it (e.g. -FLAGS of an unused keyword).
        sel.announce_keywords(conn, &flags);
        sel.apply(conn, &done.changed);
        // RFC 7162 §3.2.10.2: VANISHED may go out during a UID STORE.
        let held = match sel.sync(&self.ctx, conn, uid && qresync).await {
            Ok(h) => h,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let changed: Vec<u32> = done.changed.iter().map(|m| m.uid).collect();
        for i in idx {
            let u = sel.view.uid(i);
            // `modified` ascends, as `uids` (from `idx`) did.
            if done.modified.binary_search(&u).is_ok() {
                // Examples 6 and 10 of RFC 7162 §3.1.3: tell the client
                // the current flags, so it need not ask before retrying.
                if sel.condstore {
                    let line = sel.flags_fetch(i);
                    conn.out.extend_from_slice(&line);
                }
                continue;
            }
            let report_modseq = sel.condstore && changed.binary_search(&u).is_ok();
            if silent && !report_modseq {
                continue;
            }
            let mut line = FetchResponse::new(i + 1);
            if uid || sel.qresync {
                line.uid(u);
            }
            if !silent {
                line.flags(&sel.shown_flags(i));
            }
            if sel.condstore {
                line.modseq(sel.view.modseq(i));
            }
            conn.out.extend_from_slice(&line.finish());
        }
        if held {
            // RFC 7162 §3.2: expunges are pending that this client may not
            // be told of yet; the MODSEQs above must not count as caught up.
            Untagged::HighestModSeq(sel.modseq).encode(&mut conn.out);
        }
        if done.modified.is_empty() {
            conn.tagged(tag, "OK", "STORE completed");
        } else {
            let set = if uid {
                SeqSet::from_numbers(&done.modified)
            } else {
                let seqs: Vec<u32> = done
                    .modified
                    .iter()
                    .filter_map(|u| sel.index_of_uid(*u))
                    .map(|i| i as u32 + 1)
                    .collect();
                SeqSet::from_numbers(&seqs)
            };
            conn.tagged(
                tag,
                "OK",
                &format!(
                    "[MODIFIED {}] conditional STORE failed for some messages",
                    set.to_text()
                ),
            );
        }
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
        let expunged = match self.ctx.store.expunge(sel.mailbox.id, only.as_deref()).await {
            Ok(e) => e,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        if let Err(e) = sel.sync(&self.ctx, conn, true).await {
            return self.store_error(conn, tag, &e);
        }
        if sel.qresync && !expunged.is_empty() {
            // RFC 7162 §3.2.7 / §3.2.9.
            let text = format!("[HIGHESTMODSEQ {}] EXPUNGE completed", sel.modseq);
            conn.tagged(tag, "OK", &text);
        } else {
            conn.tagged(tag, "OK", "EXPUNGE completed");
        }
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
