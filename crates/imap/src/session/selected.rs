//! The selected mailbox: SELECT/EXAMINE, CLOSE, UNSELECT (RFC 9051
//! §6.3.2, §6.3.3, §6.4.1, §6.4.2) and the message-number map that is kept
//! in step with the store.
//!
//! Key decision: the session holds the UIDs and flags it has told the
//! client about. `sync` asks the store what changed since the modseq it last
//! saw and reports it as EXISTS / FETCH / EXPUNGE. Expunges by others are
//! held back (`gone`) while `allow_expunge` is false — during FETCH, STORE
//! and SEARCH, RFC 9051 §7.5.1 — so message numbers never shift under a
//! command the client has pipelined.

use std::collections::BTreeSet;

use letterbox_store::{Mailbox, MessageMeta, Result as StoreResult};

use super::conn::Conn;
use super::view::View;
use super::{Flow, Session, State, User};
use crate::proto::response::{FetchResponse, Untagged};
use crate::proto::{push_flags, Command, Qresync, SearchKey, SeqSet};
use crate::ImapCtx;

/// System flags, the FLAGS list of every mailbox (RFC 9051 §2.3.2).
pub const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

pub struct Selected {
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// What the client knows, by ascending UID; sequence number = index + 1.
    pub view: View,
    /// UIDs expunged elsewhere, not yet reported to the client.
    pub gone: BTreeSet<u32>,
    /// The store modseq our view reflects.
    pub modseq: u64,
    /// RFC 5182 saved search result, as UIDs.
    pub saved: Vec<u32>,
    /// RFC 3501 §2.3.2: UIDs this session holds \Recent for.
    pub recent: BTreeSet<u32>,
    /// Show \Recent (IMAP4rev1 only; RFC 9051 dropped it).
    pub show_recent: bool,
    /// Keywords the client was told about in FLAGS, sorted.
    pub keywords: Vec<String>,
    /// RFC 7162 §3.1: MODSEQ in every untagged FETCH.
    pub condstore: bool,
    /// RFC 7162 §3.2.10: VANISHED instead of EXPUNGE.
    pub qresync: bool,
}

impl Selected {
    /// The flags of message `i` as this client sees them (with \Recent for rev1).
    pub fn shown_flags(&self, i: usize) -> Vec<String> {
        let mut flags: Vec<String> = self.view.flags(i).into_iter().map(str::to_string).collect();
        if self.show_recent && self.recent.contains(&self.view.uid(i)) {
            flags.push("\\Recent".into());
        }
        flags
    }

    /// How many present messages are \Recent to this session.
    /// `recent` only holds UIDs of the view: they enter with the view's
    /// new messages and leave with its expunges, so no walk of the view
    /// (which made every EXISTS update O(mailbox)).
    pub fn recent_count(&self) -> usize {
        debug_assert!(self.recent.iter().all(|u| self.view.index_of_uid(*u).is_some()));
        self.recent.len()
    }

    pub fn index_of_uid(&self, uid: u32) -> Option<usize> {
        self.view.index_of_uid(uid)
    }

    /// Take the flags the store reports after a change this session made.
    pub fn apply(&mut self, conn: &mut Conn, changed: &[MessageMeta]) {
        for m in changed {
            if let Some(i) = self.view.index_of_uid(m.uid) {
                self.announce_keywords(conn, &m.flags);
                self.view.set_flags(i, &m.flags, m.modseq);
            }
        }
    }

    /// An untagged FETCH telling the client about message `i`'s flags:
    /// with its UID and, once CONDSTORE is on, its MODSEQ (RFC 7162 §3.1,
    /// §3.2.4).
    pub fn flags_fetch(&self, i: usize) -> Vec<u8> {
        let mut f = FetchResponse::new(i + 1);
        f.uid(self.view.uid(i)).flags(&self.shown_flags(i));
        if self.condstore {
            f.modseq(self.view.modseq(i));
        }
        f.finish()
    }

    /// RFC 9051 §7.3.5: a keyword new to the mailbox is announced in FLAGS
    /// (and PERMANENTFLAGS) before any FETCH shows it.
    pub fn announce_keywords(&mut self, conn: &mut Conn, flags: &[String]) {
        let mut new = false;
        for f in flags.iter().filter(|f| !f.starts_with('\\')) {
            if let Err(at) = self.keywords.binary_search(f) {
                self.keywords.insert(at, f.clone());
                new = true;
            }
        }
        if new {
            self.send_flags(conn);
        }
    }

    /// The untagged FLAGS and PERMANENTFLAGS responses.
    fn send_flags(&self, conn: &mut Conn) {
        conn.untagged(&self.flags_response());
        conn.untagged(&self.permanent_flags_response());
    }

    fn all_flags(&self) -> Vec<&str> {
        SYSTEM_FLAGS
            .iter()
            .copied()
            .chain(self.keywords.iter().map(String::as_str))
            .collect()
    }

    fn flags_response(&self) -> String {
        let mut line = b"FLAGS ".to_vec();
        push_flags(&mut line, &self.all_flags());
        String::from_utf8_lossy(&line).into_owned()
    }

    fn permanent_flags_response(&self) -> String {
        let mut perm = b"OK [PERMANENTFLAGS ".to_vec();
        if self.read_only {
            perm.extend_from_slice(b"()");
        } else {
            let mut all = self.all_flags();
            all.push("\\*");
            push_flags(&mut perm, &all);
        }
        perm.extend_from_slice(b"] flags permitted");
        String::from_utf8_lossy(&perm).into_owned()
    }

    /// Message indexes a set addresses, ascending. Sequence numbers beyond
    /// the mailbox are an error (RFC 9051 §9 `seq-number`); UIDs that do not
    /// exist are ignored.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Result<Vec<usize>, String> {
        if set.0.is_empty() {
            // An empty `$` (RFC 5182 §2.1): nothing to do, not an error.
            return Ok(Vec::new());
        }
        if uid {
            let star = self.view.last_uid().unwrap_or(0);
            return Ok((0..self.view.len())
                .filter(|&i| set.contains(self.view.uid(i), star))
                .collect());
        }
        let n = u32::try_from(self.view.len()).unwrap_or(u32::MAX);
        let too_big = set.0.iter().any(|&(a, b)| {
            [a, b]
                .iter()
                .any(|s| matches!(s, crate::proto::SeqNum::Num(x) if *x > n))
        });
        if too_big || n == 0 {
            return Err("invalid message sequence number".into());
        }
        Ok((0..self.view.len())
            .filter(|&i| set.contains(i as u32 + 1, n))
            .collect())
    }

    /// RFC 5182: the saved result as a set of UIDs, or of the sequence
    /// numbers of the saved messages still present.
    pub fn saved_set(&self, as_uids: bool) -> SeqSet {
        if as_uids {
            return SeqSet::from_numbers(&self.saved);
        }
        let seqs: Vec<u32> = self
            .saved
            .iter()
            .filter_map(|u| self.index_of_uid(*u))
            .map(|i| i as u32 + 1)
            .collect();
        SeqSet::from_numbers(&seqs)
    }

    /// Replace every `$` in a selected-state command by the saved result.
    pub fn expand_saved(&self, cmd: &mut Command) {
        let fix = |set: &mut SeqSet, uid: bool| {
            if set.is_saved() {
                *set = self.saved_set(uid);
            }
        };
        match cmd {
            Command::Fetch { uid, set, .. } | Command::Store { uid, set, .. } | Command::Copy { uid, set, .. } => {
                fix(set, *uid)
            }
            Command::Expunge { uids: Some(set) } => fix(set, true),
            Command::Search { key, .. } | Command::Sort { key, .. } | Command::Thread { key, .. } => {
                self.expand_in_key(key)
            }
            _ => {}
        }
    }

    fn expand_in_key(&self, key: &mut SearchKey) {
        match key {
            SearchKey::Uid(set) if set.is_saved() => *set = self.saved_set(true),
            SearchKey::Seq(set) if set.is_saved() => *set = self.saved_set(false),
            SearchKey::Not(k) => self.expand_in_key(k),
            SearchKey::Or(a, b) => {
                self.expand_in_key(a);
                self.expand_in_key(b);
            }
            SearchKey::And(ks) => ks.iter_mut().for_each(|k| self.expand_in_key(k)),
            _ => {}
        }
    }

    /// Report changes made elsewhere (RFC 9051 §7.5.1). Expunges are sent
    /// only when `allow_expunge`, and then before the new messages' EXISTS:
    /// a MOVE into the selected mailbox itself answers EXPUNGE, then EXISTS
    /// (RFC 6851 §3.3 example, as Dovecot does), and either order leaves
    /// the client's sequence numbers right.
    ///
    /// Returns true when, for a CONDSTORE client, the update was held back
    /// whole because expunges may not be sent yet: were newer MODSEQs
    /// reported before those expunges, a client that loses the connection
    /// would resynchronise past them (RFC 7162 §3.2).
    pub async fn sync(&mut self, ctx: &ImapCtx, conn: &mut Conn, allow_expunge: bool) -> StoreResult<bool> {
        let ch = ctx.store.changes(self.mailbox.id, self.modseq).await?;
        if self.condstore
            && !allow_expunge
            && (!self.gone.is_empty() || ch.expunged.iter().any(|&u| self.index_of_uid(u).is_some()))
        {
            return Ok(true);
        }
        for &uid in &ch.expunged {
            if self.index_of_uid(uid).is_some() {
                self.gone.insert(uid);
            }
        }
        if allow_expunge {
            self.flush_expunges(conn);
        }
        let before = self.view.len();
        for m in ch.changed {
            self.announce_keywords(conn, &m.flags);
            match self.view.search_uid(m.uid) {
                Ok(i) => {
                    let old_modseq = self.view.modseq(i);
                    let flags_changed = self.view.set_flags(i, &m.flags, m.modseq);
                    let report = flags_changed || (self.condstore && m.modseq != old_modseq);
                    if report && !self.gone.contains(&m.uid) {
                        let line = self.flags_fetch(i);
                        conn.out.extend_from_slice(&line);
                    }
                }
                // New UIDs are always above the ones we know (an expunged
                // one, just removed, is not new).
                Err(i) if i == self.view.len() && ch.expunged.binary_search(&m.uid).is_err() => self.view.push(&m),
                // Added and expunged before we looked: never seen.
                Err(_) => {}
            }
        }
        if self.view.len() != before {
            Untagged::Exists(self.view.len()).encode(&mut conn.out);
            if !self.read_only {
                // The first session to see new mail owns its \Recent.
                let up_to = self.view.last_uid().map_or(0, |u| u.saturating_add(1));
                let from = ctx.store.claim_recent(self.mailbox.id, up_to).await?;
                let new: Vec<u32> = (before..self.view.len()).map(|i| self.view.uid(i)).collect();
                self.recent.extend(new.into_iter().filter(|u| *u >= from));
            }
            if self.show_recent {
                Untagged::Recent(self.recent_count()).encode(&mut conn.out);
            }
        }
        self.modseq = self.modseq.max(ch.highest_modseq);
        Ok(false)
    }

    /// Report held-back expunges, highest first so numbers stay valid.
    /// RFC 3501 §7.3.2: the mailbox size changed, so a changed \Recent
    /// count is reported too.
    /// With QRESYNC, one VANISHED names them all (RFC 7162 §3.2.10.2).
    fn flush_expunges(&mut self, conn: &mut Conn) {
        let mut recent_gone = false;
        let mut vanished = Vec::new();
        while let Some(uid) = self.gone.pop_last() {
            if let Some(i) = self.index_of_uid(uid) {
                self.view.remove(i);
                if self.qresync {
                    vanished.push(uid);
                } else {
                    Untagged::Expunge(i + 1).encode(&mut conn.out);
                }
                recent_gone |= self.recent.remove(&uid);
            }
        }
        vanished.reverse();
        Untagged::Vanished {
            earlier: false,
            uids: &vanished,
        }
        .encode(&mut conn.out);
        if recent_gone && self.show_recent {
            Untagged::Recent(self.recent_count()).encode(&mut conn.out);
        }
    }

    /// RFC 7162 §3.2.5.1 / §3.2.6: `VANISHED (EARLIER)` for the UIDs of
    /// `known` expunged after `since`. Messages still in the view are left
    /// to the ordinary updates (VANISHED without EARLIER), so the two
    /// never overlap.
    pub async fn vanished_earlier(
        &self,
        ctx: &ImapCtx,
        conn: &mut Conn,
        known: &SeqSet,
        since: u64,
    ) -> StoreResult<()> {
        let star = self
            .view
            .last_uid()
            .unwrap_or(0)
            .max(self.mailbox.uid_next.saturating_sub(1));
        let vanished: Vec<u32> = ctx
            .store
            .expunged_since(self.mailbox.id, since)
            .await?
            .into_iter()
            .filter(|&u| known.contains(u, star) && self.index_of_uid(u).is_none())
            .collect();
        Untagged::Vanished {
            earlier: true,
            uids: &vanished,
        }
        .encode(&mut conn.out);
        Ok(())
    }

    /// RFC 7162 §3.2.5.1 SELECT (QRESYNC ...): what a
    /// `UID FETCH known (FLAGS) (CHANGEDSINCE since VANISHED)` answers.
    pub async fn resync(&self, ctx: &ImapCtx, conn: &mut Conn, known: &SeqSet, since: u64) -> StoreResult<()> {
        self.vanished_earlier(ctx, conn, known, since).await?;
        let star = self.view.last_uid().unwrap_or(0);
        for i in 0..self.view.len() {
            if self.view.modseq(i) > since && known.contains(self.view.uid(i), star) {
                let line = self.flags_fetch(i);
                conn.out.extend_from_slice(&line);
            }
        }
        Ok(())
    }

    /// Keywords in use, sorted.
    fn keywords_in_use(&self) -> Vec<String> {
        let mut keywords = BTreeSet::new();
        for k in self.view.keywords() {
            keywords.insert(k.to_string());
        }
        keywords.into_iter().collect()
    }
}

impl Session {
    /// RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE.
    /// With RFC 7162 §3.1.8 CONDSTORE and §3.2.5 QRESYNC parameters.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn select(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        user: &User,
        name: &str,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    ) -> Flow {
        if qresync.is_some() && !self.enabled.qresync {
            // RFC 7162 §3.2.5.
            return self.bad(conn, tag, "QRESYNC parameter without ENABLE QRESYNC");
        }
        if condstore {
            self.enabled.condstore = true;
        }
        if matches!(self.state, State::Selected(..)) {
            // Leaving the old mailbox happens even if the new one fails.
            self.state = State::Authenticated(user.clone());
            // RFC 7162 §3.2.11: always, since CONDSTORE is advertised.
            conn.untagged("OK [CLOSED] previous mailbox closed");
        }
        let store = &self.ctx.store;
        let opened = async {
            let Some(mailbox) = store.mailbox(user.id, name).await? else {
                return Ok(None);
            };
            let msgs = store.messages(mailbox.id).await?;
            Ok(Some((mailbox, msgs)))
        };
        let (mailbox, msgs) = match opened.await {
            Ok(Some(x)) => x,
            Ok(None) => {
                conn.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
                return Flow::Continue;
            }
            Err(e) => return self.store_error(conn, tag, &e),
        };
        // SELECT claims \Recent for what no session has seen; EXAMINE only looks.
        let first_recent = if read_only {
            mailbox.first_recent_uid
        } else {
            let up_to = msgs.last().map_or(0, |m| m.uid.saturating_add(1));
            match store.claim_recent(mailbox.id, up_to).await {
                Ok(from) => from,
                Err(e) => return self.store_error(conn, tag, &e),
            }
        };
        let recent = msgs.iter().map(|m| m.uid).filter(|u| *u >= first_recent).collect();
        let list_attrs = if self.enabled.rev2 {
            // RFC 9051 §6.3.2 requires a LIST response for the mailbox.
            match store.list_mailboxes(user.id).await {
                Ok(all) => {
                    let names: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
                    Some(super::mailboxes::attributes(&mailbox, &names).join(" "))
                }
                Err(e) => return self.store_error(conn, tag, &e),
            }
        } else {
            None
        };
        let mut sel = Selected {
            modseq: mailbox.highest_modseq,
            mailbox,
            read_only,
            view: View::new(&msgs),
            gone: BTreeSet::new(),
            saved: Vec::new(),
            recent,
            show_recent: !self.enabled.rev2,
            keywords: Vec::new(),
            condstore: self.enabled.condstore,
            qresync: self.enabled.qresync,
        };
        sel.keywords = sel.keywords_in_use();
        conn.untagged(&sel.flags_response());
        Untagged::Exists(sel.view.len()).encode(&mut conn.out);
        if let Some(attrs) = list_attrs {
            let mut line = format!("* LIST ({attrs}) \"/\" ").into_bytes();
            crate::proto::push_mailbox(&mut line, &sel.mailbox.name);
            line.extend_from_slice(b"\r\n");
            conn.out.extend_from_slice(&line);
        }
        if !self.enabled.rev2 {
            Untagged::Recent(sel.recent_count()).encode(&mut conn.out);
            if let Some(i) = (0..sel.view.len()).find(|&i| !sel.view.has_flag(i, "\\Seen")) {
                conn.untagged(&format!("OK [UNSEEN {}] first unseen", i + 1));
            }
        }
        conn.untagged(&sel.permanent_flags_response());
        conn.untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", sel.mailbox.uid_validity));
        let uid_next = sel
            .view
            .last_uid()
            .map_or(sel.mailbox.uid_next, |u| sel.mailbox.uid_next.max(u.saturating_add(1)));
        conn.untagged(&format!("OK [UIDNEXT {uid_next}] predicted next UID"));
        // RFC 8474 §4.2.
        conn.untagged(&format!(
            "OK [MAILBOXID ({})] mailbox id",
            super::object_id(letterbox_jmap_proto::IdKind::Mailbox, sel.mailbox.id)
        ));
        // RFC 7162 §3.1.2.1: every mailbox keeps mod-sequences, so every
        // SELECT says HIGHESTMODSEQ, CONDSTORE client or not (as Dovecot).
        Untagged::HighestModSeq(sel.modseq).encode(&mut conn.out);
        // RFC 7162 §3.2.5: a UIDVALIDITY that changed means "start over".
        if let Some(q) = qresync.filter(|q| q.uid_validity == sel.mailbox.uid_validity) {
            let known = q
                .known_uids
                .unwrap_or_else(|| SeqSet::from_range(1, uid_next.saturating_sub(1)));
            if let Err(e) = sel.resync(&self.ctx, conn, &known, q.modseq).await {
                return self.store_error(conn, tag, &e);
            }
        }
        let (code, cmd) = if read_only {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        conn.tagged(tag, "OK", &format!("[{code}] {cmd} completed"));
        self.state = State::Selected(user.clone(), Box::new(sel));
        Flow::Continue
    }

    /// RFC 9051 §6.4.1 CLOSE (silent expunge) and RFC 3691 UNSELECT.
    pub(super) async fn close(&mut self, conn: &mut Conn, tag: &str, expunge: bool) -> Flow {
        let State::Selected(user, sel) = &self.state else {
            return Flow::Continue;
        };
        if expunge && !sel.read_only {
            if let Err(e) = self.ctx.store.expunge(sel.mailbox.id, None).await {
                return self.store_error(conn, tag, &e);
            }
        }
        self.state = State::Authenticated(user.clone());
        let name = if expunge { "CLOSE" } else { "UNSELECT" };
        conn.tagged(tag, "OK", &format!("{name} completed"));
        Flow::Continue
    }
}
