//! Authenticated-state commands on mailboxes (RFC 9051 §6.3): CREATE,
//! DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (with SPECIAL-USE and
//! CHILDREN attributes), LSUB (rev1), NAMESPACE (RFC 2342), STATUS, APPEND.

use std::collections::BTreeMap;

use letterbox_store::{Mailbox, NewMessage, StoreError, HIERARCHY_DELIMITER};

use super::conn::Conn;
use super::object_id;
use super::{Flow, Session, State, User};
use crate::proto::{push_mailbox, AppendMessage, Command, ListReturn, ListSelect, StatusItem};
use letterbox_jmap_proto::IdKind;

/// A LIST command's arguments.
struct ListArgs {
    reference: String,
    patterns: Vec<String>,
    select: ListSelect,
    ret: ListReturn,
    extended: bool,
}

impl Session {
    pub(super) async fn authenticated(&mut self, conn: &mut Conn, tag: &str, user: &User, cmd: Command) -> Flow {
        let store = self.ctx.store.clone();
        let result = match cmd {
            Command::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                return self
                    .select(conn, tag, user, &mailbox, read_only, condstore, qresync)
                    .await
            }
            Command::Create { mailbox, special_use } => {
                // RFC 9051 §6.3.4: a trailing delimiter only says "will have children".
                let name = mailbox.trim_end_matches(HIERARCHY_DELIMITER);
                if name.is_empty() || name == "INBOX" {
                    conn.tagged(tag, "NO", "[ALREADYEXISTS] cannot create that name");
                    return Flow::Continue;
                }
                return match store.create_mailbox(user.id, name, special_use).await {
                    // RFC 8474 §4.1: the new mailbox's id in the tagged OK.
                    Ok(mb) => {
                        conn.tagged(
                            tag,
                            "OK",
                            &format!("[MAILBOXID ({})] CREATE completed", object_id(IdKind::Mailbox, mb.id)),
                        );
                        Flow::Continue
                    }
                    Err(e) => self.store_error(conn, tag, &e),
                };
            }
            Command::Delete(name) => store.delete_mailbox(user.id, &name).await,
            Command::Rename { from, to } => store.rename_mailbox(user.id, &from, &to).await,
            Command::Subscribe(name) => store.set_subscribed(user.id, &name, true).await,
            Command::Unsubscribe(name) => store.set_subscribed(user.id, &name, false).await,
            Command::List {
                reference,
                patterns,
                select,
                ret,
                extended,
            } => {
                let args = ListArgs {
                    reference,
                    patterns,
                    select,
                    ret,
                    extended,
                };
                return self.list(conn, tag, user, &args).await;
            }
            Command::Lsub { reference, pattern } => return self.lsub(conn, tag, user, &reference, &pattern).await,
            Command::Namespace => {
                // RFC 2342 §5: one personal namespace, no others.
                conn.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                Ok(())
            }
            Command::Status { mailbox, items } => return self.status(conn, tag, user, &mailbox, &items).await,
            Command::GetQuotaRoot(mailbox) => return self.get_quota(conn, tag, user, Some(&mailbox)).await,
            Command::GetQuota(root) if root.is_empty() => return self.get_quota(conn, tag, user, None).await,
            Command::GetQuota(_) => return self.unknown_quota_root(conn, tag),
            Command::SetQuota(_) => {
                conn.tagged(tag, "NO", "[NOPERM] quotas are set by the administrator");
                return Flow::Continue;
            }
            Command::Append { mailbox, messages } => return self.append(conn, tag, user, &mailbox, messages).await,
            _ => Ok(()),
        };
        match result {
            Ok(()) => {
                conn.tagged(tag, "OK", "completed");
                Flow::Continue
            }
            Err(e) => self.store_error(conn, tag, &e),
        }
    }

    /// RFC 9051 §6.3.9 LIST with RFC 5258 LIST-EXTENDED and RFC 5819
    /// LIST-STATUS: `*` matches anything, `%` stops at the delimiter; an
    /// empty pattern asks for the delimiter.
    async fn list(&mut self, conn: &mut Conn, tag: &str, user: &User, a: &ListArgs) -> Flow {
        if a.patterns.len() == 1 && a.patterns[0].is_empty() && !a.extended {
            conn.untagged("LIST (\\Noselect) \"/\" \"\"");
            conn.tagged(tag, "OK", "LIST completed");
            return Flow::Continue;
        }
        let store = &self.ctx.store;
        let want_subs = a.select.subscribed || a.ret.subscribed;
        let (boxes, subs) = match tokio::try_join!(store.list_mailboxes(user.id), async {
            if want_subs {
                store.subscriptions(user.id).await
            } else {
                Ok(Vec::new())
            }
        }) {
            Ok(x) => x,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let names: Vec<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
        let by_name = |n: &str| boxes.iter().find(|b| b.name == n);
        // Name → (the mailbox if it exists, CHILDINFO, parent-only `%` match).
        let mut out: BTreeMap<String, (Option<&Mailbox>, bool, bool)> = BTreeMap::new();
        let fulls: Vec<String> = a
            .patterns
            .iter()
            .map(|p| letterbox_store::normalize_mailbox(&format!("{}{p}", a.reference)))
            .collect();
        for full in &fulls {
            if a.select.subscribed {
                for s in &subs {
                    if matches(full, s) {
                        out.entry(s.clone()).or_insert((by_name(s), false, false));
                    }
                }
                if a.select.recursive_match {
                    // RFC 5258 §3 (b): a parent is returned with CHILDINFO for
                    // a subscribed descendant that no pattern returns itself.
                    for s in subs.iter().filter(|s| !fulls.iter().any(|f| matches(f, s))) {
                        for (i, _) in s.match_indices(HIERARCHY_DELIMITER) {
                            let parent = &s[..i];
                            if matches(full, parent) {
                                out.entry(parent.to_string())
                                    .or_insert((by_name(parent), false, true))
                                    .1 = true;
                            }
                        }
                    }
                }
                continue;
            }
            for b in &boxes {
                if a.select.special_use && b.special_use.is_none() {
                    continue;
                }
                if matches(full, &b.name) {
                    out.entry(b.name.clone()).or_insert((Some(b), false, false));
                }
            }
            // RFC 3501 §6.3.8: a trailing `%` also returns the levels above
            // existing mailboxes, which do not exist themselves.
            if full.ends_with('%') && !a.select.special_use {
                for name in &names {
                    for (i, _) in name.match_indices(HIERARCHY_DELIMITER) {
                        let parent = &name[..i];
                        if !names.contains(&parent) && matches(full, parent) {
                            out.entry(parent.to_string()).or_insert((None, false, true));
                        }
                    }
                }
            }
        }
        let mut entries: Vec<_> = out.into_iter().collect();
        entries.sort_by(|x, y| (x.0 != "INBOX", &x.0).cmp(&(y.0 != "INBOX", &y.0)));
        let nonexistent = if self.enabled.rev2 || a.extended {
            "\\NonExistent"
        } else {
            "\\Noselect"
        };
        for (name, (mailbox, childinfo, parent_only)) in entries {
            let mut attrs: Vec<&str> = match mailbox {
                Some(b) => attributes(b, &names),
                None if parent_only && names.iter().any(|n| n.starts_with(&format!("{name}/"))) => {
                    vec![nonexistent, "\\HasChildren"]
                }
                None => vec![nonexistent],
            };
            if want_subs && subs.contains(&name) {
                attrs.push("\\Subscribed");
            }
            let mut line = format!("* LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
            push_mailbox(&mut line, &self.wire_name(&name));
            if childinfo {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            line.extend_from_slice(b"\r\n");
            conn.out.extend_from_slice(&line);
            if let (Some(items), Some(b)) = (&a.ret.status, mailbox) {
                // RFC 5819 §2: STATUS right after the mailbox's LIST.
                match self.status_line(b, items).await {
                    Ok(l) => conn.out.extend_from_slice(&l),
                    Err(e) => return self.store_error(conn, tag, &e),
                }
            }
        }
        conn.tagged(tag, "OK", "LIST completed");
        Flow::Continue
    }

    /// RFC 3501 §6.3.9 LSUB: subscribed names, `\Noselect` when missing.
    async fn lsub(&mut self, conn: &mut Conn, tag: &str, user: &User, reference: &str, pattern: &str) -> Flow {
        let store = &self.ctx.store;
        let (subs, boxes) = match tokio::try_join!(store.subscriptions(user.id), store.list_mailboxes(user.id)) {
            Ok(x) => x,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let full = letterbox_store::normalize_mailbox(&format!("{reference}{pattern}"));
        // Name → listed only as the parent of a subscribed mailbox.
        let mut out: BTreeMap<&str, bool> = BTreeMap::new();
        for s in &subs {
            if matches(&full, s) {
                out.insert(s, false);
            } else if full.ends_with('%') {
                // RFC 3501 §6.3.9: with `%`, an unsubscribed parent of a
                // subscribed mailbox is returned, flagged \Noselect.
                for (i, _) in s.match_indices(HIERARCHY_DELIMITER) {
                    if matches(&full, &s[..i]) {
                        out.entry(&s[..i]).or_insert(true);
                    }
                }
            }
        }
        for (name, parent_only) in out {
            let attr = if !parent_only && boxes.iter().any(|b| b.name == name) {
                ""
            } else {
                "\\Noselect"
            };
            let mut line = format!("* LSUB ({attr}) \"/\" ").into_bytes();
            push_mailbox(&mut line, &self.wire_name(name));
            line.extend_from_slice(b"\r\n");
            conn.out.extend_from_slice(&line);
        }
        conn.tagged(tag, "OK", "LSUB completed");
        Flow::Continue
    }

    /// RFC 9051 §6.3.11 STATUS.
    async fn status(&mut self, conn: &mut Conn, tag: &str, user: &User, name: &str, items: &[StatusItem]) -> Flow {
        let mailbox = match self.ctx.store.mailbox(user.id, name).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                conn.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
                return Flow::Continue;
            }
            Err(e) => return self.store_error(conn, tag, &e),
        };
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore(conn);
        }
        match self.status_line(&mailbox, items).await {
            Ok(line) => conn.out.extend_from_slice(&line),
            Err(e) => return self.store_error(conn, tag, &e),
        }
        conn.tagged(tag, "OK", "STATUS completed");
        Flow::Continue
    }

    /// The `* STATUS` response for one mailbox.
    async fn status_line(&self, mailbox: &Mailbox, items: &[StatusItem]) -> Result<Vec<u8>, StoreError> {
        // DELETED and RECENT need the message list: read it once, and only then.
        let (deleted, deleted_size, recent) = if items
            .iter()
            .any(|i| matches!(i, StatusItem::Deleted | StatusItem::Recent | StatusItem::DeletedStorage))
        {
            let msgs = self.ctx.store.messages(mailbox.id).await?;
            let deleted = || msgs.iter().filter(|m| m.flags.iter().any(|f| f == "\\Deleted"));
            (
                deleted().count(),
                deleted().map(|m| m.size).sum::<u64>(),
                msgs.iter().filter(|m| m.uid >= mailbox.first_recent_uid).count(),
            )
        } else {
            (0, 0, 0)
        };
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", mailbox.messages),
                StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", mailbox.unseen),
                StatusItem::Deleted => format!("DELETED {deleted}"),
                StatusItem::Size => format!("SIZE {}", mailbox.size),
                StatusItem::Recent => format!("RECENT {recent}"),
                StatusItem::MailboxId => format!("MAILBOXID ({})", object_id(IdKind::Mailbox, mailbox.id)),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", mailbox.highest_modseq),
                StatusItem::DeletedStorage => format!("DELETED-STORAGE {deleted_size}"),
                StatusItem::AppendLimit => format!("APPENDLIMIT {}", self.ctx.config.max_literal),
            });
        }
        let mut line = b"* STATUS ".to_vec();
        push_mailbox(&mut line, &self.wire_name(&mailbox.name));
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(line)
    }

    /// RFC 9051 §6.3.12 APPEND with RFC 4315 APPENDUID; several messages
    /// are stored all or none (RFC 3502 MULTIAPPEND).
    async fn append(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        user: &User,
        name: &str,
        messages: Vec<AppendMessage>,
    ) -> Flow {
        let store = self.ctx.store.clone();
        let mailbox = match store.mailbox(user.id, name).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                // RFC 9051 §6.3.12: TRYCREATE tells the client CREATE may help.
                conn.tagged(tag, "NO", "[TRYCREATE] no such mailbox");
                return Flow::Continue;
            }
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let now = letterbox_store::unix_now();
        let mut new: Vec<NewMessage> = messages
            .into_iter()
            .map(|m| NewMessage {
                // RFC 3516 §4.4: binary parts of a literal8 become base64, so
                // no byte is lost when the store makes line ends CRLF.
                raw: if m.binary {
                    letterbox_mail::encode_binary_parts(&m.message).unwrap_or(m.message)
                } else {
                    m.message
                },
                // \Recent is not a flag a client can set (RFC 3501 §2.3.2).
                flags: m
                    .flags
                    .into_iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .collect(),
                internal_date: m.date.unwrap_or(now),
            })
            .collect();
        let stored = if new.len() == 1 {
            match new.pop() {
                Some(one) => store.append(mailbox.id, one).await.map(|a| vec![a]),
                None => Ok(Vec::new()),
            }
        } else {
            store.append_many(mailbox.id, new).await
        };
        match stored {
            Ok(appended) => {
                if let State::Selected(_, sel) = &mut self.state {
                    if sel.mailbox.id == mailbox.id {
                        if let Err(e) = sel.sync(&self.ctx, conn, true).await {
                            return self.store_error(conn, tag, &e);
                        }
                    }
                }
                let uids: Vec<u32> = appended.iter().map(|a| a.uid).collect();
                conn.tagged(
                    tag,
                    "OK",
                    &format!(
                        "[APPENDUID {} {}] APPEND completed",
                        mailbox.uid_validity,
                        super::messages::uid_set(&uids)
                    ),
                );
                Flow::Continue
            }
            Err(e) => self.store_error(conn, tag, &e),
        }
    }
}

/// LIST attributes: special use and CHILDREN (RFC 6154, RFC 3348).
pub(super) fn attributes<'a>(b: &'a Mailbox, names: &[&str]) -> Vec<&'a str> {
    let prefix = format!("{}{HIERARCHY_DELIMITER}", b.name);
    let children = names.iter().any(|n| n.starts_with(&prefix));
    let mut attrs = vec![if children { "\\HasChildren" } else { "\\HasNoChildren" }];
    if let Some(u) = b.special_use {
        attrs.push(u.as_str());
    }
    attrs
}

/// Longest LIST pattern matched; longer ones match nothing.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// Match a LIST pattern (RFC 9051 §6.3.9: `*` anything, `%` anything but
/// the delimiter) in O(pattern × name) time, with no backtracking: the
/// set of name prefixes each pattern prefix can match is carried along.
pub fn matches(pattern: &str, name: &str) -> bool {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return false;
    }
    let n: Vec<char> = name.chars().collect();
    // reach[j]: the pattern so far matches n[..j].
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    let mut next = vec![false; n.len() + 1];
    for c in pattern.chars() {
        match c {
            '*' => {
                let mut any = false;
                for j in 0..=n.len() {
                    any |= reach[j];
                    next[j] = any;
                }
            }
            '%' => {
                let mut any = false;
                for j in 0..=n.len() {
                    // A span crossing the delimiter cannot be `%`.
                    if j > 0 && n[j - 1] == HIERARCHY_DELIMITER {
                        any = false;
                    }
                    any |= reach[j];
                    next[j] = any;
                }
            }
            c => {
                next[0] = false;
                for j in 1..=n.len() {
                    next[j] = reach[j - 1] && n[j - 1] == c;
                }
            }
        }
        std::mem::swap(&mut reach, &mut next);
        if !reach.iter().any(|&r| r) {
            return false;
        }
    }
    reach[n.len()]
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn list_patterns() {
        let cases = [
            ("*", "a/b/c", true),
            ("%", "a", true),
            ("%", "a/b", false),
            ("a/%", "a/b", true),
            ("a/%", "a/b/c", false),
            ("a*", "a/b/c", true),
            ("INBOX", "INBOX", true),
            ("In%", "INBOX", false),
            ("%/%", "a/b", true),
            ("*c", "a/b/c", true),
            ("", "", true),
            ("", "a", false),
            ("a%b", "axxb", true),
            ("a%b", "ax/xb", false),
            ("a*b", "ax/xb", true),
            ("%%", "ab", true),
            ("*/%", "a/b/c", true),
            ("%/*", "a/b/c", true),
            ("a%", "a", true),
            ("*a*a*b", "aab", true),
            ("*a*a*b", "ab", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(matches(p, n), want, "{p} vs {n}");
        }
    }

    /// Issue 18: this pattern took over 48 s with backtracking.
    #[test]
    fn adversarial_patterns_take_linear_time() {
        let name = "a".repeat(40);
        let pattern = format!("{}b", "*a".repeat(11));
        let many = "*a".repeat(500);
        let long_name = "a/".repeat(2000);
        let t = std::time::Instant::now();
        assert!(!matches(&pattern, &name));
        assert!(!matches(&format!("{many}b"), &name));
        assert!(matches(&"%/".repeat(500), &"a/".repeat(500)));
        assert!(!matches(&format!("{}x", "%*".repeat(500)), &long_name));
        assert!(
            !matches(&"*".repeat(super::MAX_PATTERN_CHARS + 1), "a"),
            "too long: no match"
        );
        // Generous bound: the old matcher took seconds on the first alone.
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
