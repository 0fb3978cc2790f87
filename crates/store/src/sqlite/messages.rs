//! Emails, their mailbox memberships, blobs, threads and the change log.
//!
//! Invariants kept here (ARCHITECTURE.md, "Store v2 data model"): a UID is
//! the mailbox's `uid_next` at insert and `uid_next` only grows; every write
//! operation takes one account modseq ([`Op`]), which the memberships it
//! changes carry and its change-log rows record; an email holds one
//! reference on its blob and each expunge tombstone another; quota counts
//! emails, not memberships.

use super::mailboxes;
use crate::changes::{ChangeOp, DataType, LogRow, ObjectChanges};
use crate::flags::{imap_flags, keywords_to_text, normalize_flags, split_flags};
use crate::prepare::PreparedBody;
use crate::thread::ThreadKeys;
use crate::{
    AccountId, Appended, ChangeEvent, ChangeKind, Changes, ConditionalStore, Copied, DeliveryReport, DeliveryTarget,
    EmailId, EmailMeta, FlagOp, MailboxId, MessageId, MessageMeta, Result, SortRow, StoreError, ThreadId,
};
use letterbox_mail::MessageInfo;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeSet;

/// How long an expunged message's body stays readable for sessions that
/// have not been told of the expunge yet (RFC 2180 §4.1.1).
pub(super) const EXPUNGED_GRACE_SECS: i64 = 30 * 60;
/// How long change-log rows are kept: a JMAP client offline for longer
/// gets `cannotCalculateChanges` and resynchronises in full.
pub(super) const CHANGELOG_HORIZON_SECS: i64 = 30 * 24 * 3600;
/// Most change-log rows one `/changes` call reads; past this it answers
/// with an intermediate state.
const MAX_LOG_ROWS: usize = 50_000;

/// One write operation on an account: it takes one modseq, lazily (an
/// operation that changes nothing takes none), and collects the mailboxes
/// it touched for the change events.
pub(super) struct Op {
    pub account: AccountId,
    modseq: Option<u64>,
    touched: Vec<(MailboxId, ChangeKind)>,
}

impl Op {
    pub fn new(account: AccountId) -> Op {
        Op {
            account,
            modseq: None,
            touched: Vec::new(),
        }
    }

    /// The operation's modseq, allocated from the account counter on first use.
    pub fn modseq(&mut self, conn: &Connection) -> Result<u64> {
        if let Some(m) = self.modseq {
            return Ok(m);
        }
        let m: i64 = conn
            .query_row(
                "UPDATE accounts SET modseq = modseq + 1 WHERE id = ?1 RETURNING modseq",
                [self.account],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("account {}", self.account)))?;
        self.modseq = Some(m as u64);
        Ok(m as u64)
    }

    /// Record a change-log row.
    pub fn log(&mut self, conn: &Connection, data: DataType, id: i64, op: ChangeOp) -> Result<()> {
        let ms = self.modseq(conn)?;
        // Within one operation: created + updated stays created; anything
        // followed by destroyed is destroyed.
        conn.prepare_cached(
            "INSERT INTO changelog(account_id, type, modseq, object_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO UPDATE SET op = CASE WHEN excluded.op = 3 THEN 3 ELSE op END",
        )?
        .execute(params![
            self.account,
            data.code(),
            ms as i64,
            id,
            op.code(),
            crate::unix_now()
        ])?;
        Ok(())
    }

    /// Note that a mailbox changed: its HIGHESTMODSEQ rises to this
    /// operation's modseq, JMAP sees the Mailbox (counts) updated, and
    /// watchers get an event of `kind` after commit.
    pub fn touch(&mut self, conn: &Connection, mailbox: MailboxId, kind: ChangeKind) -> Result<()> {
        let ms = self.modseq(conn)?;
        conn.prepare_cached("UPDATE mailboxes SET highest_modseq = ?2 WHERE id = ?1 AND highest_modseq < ?2")?
            .execute(params![mailbox, ms as i64])?;
        if !self.touched.contains(&(mailbox, kind)) {
            self.touched.push((mailbox, kind));
            self.log(conn, DataType::Mailbox, mailbox, ChangeOp::Updated)?;
        }
        Ok(())
    }

    /// Change events for the commit.
    pub fn events(&self) -> Vec<ChangeEvent> {
        self.touched
            .iter()
            .map(|&(m, kind)| ChangeEvent {
                account_id: self.account,
                mailbox_id: Some(m),
                kind,
            })
            .collect()
    }
}

/// Columns of [`meta_row`]: a membership joined with its email.
const META: &str = "e.id, e.thread_id, m.uid, m.modseq, e.keywords, m.deleted, e.received_at, e.size";
const META_FROM: &str = "email_mailboxes m JOIN emails e ON e.id = m.email_id";

fn meta_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    let keywords: String = r.get(4)?;
    Ok(MessageMeta {
        id: r.get(0)?,
        thread_id: r.get(1)?,
        uid: r.get::<_, i64>(2)? as u32,
        modseq: r.get::<_, i64>(3)? as u64,
        flags: imap_flags(&keywords, r.get(5)?),
        internal_date: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
    })
}

pub(super) fn list(conn: &Connection, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META} FROM {META_FROM} WHERE m.mailbox_id = ?1 ORDER BY m.uid"
    ))?;
    let rows = st.query_map([mailbox], meta_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ascending UIDs as inclusive runs, so a set like `1:5000` is one query.
pub(super) fn uid_ranges(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match out.last_mut() {
            Some((_, hi)) if u.checked_sub(1) == Some(*hi) || u == *hi => *hi = u,
            _ => out.push((u, u)),
        }
    }
    out
}

pub(super) fn list_ranges(conn: &Connection, mailbox: MailboxId, ranges: &[(u32, u32)]) -> Result<Vec<MessageMeta>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META} FROM {META_FROM} WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid"
    ))?;
    let mut out = Vec::new();
    for &(lo, hi) in ranges {
        for m in st.query_map(params![mailbox, lo, hi], meta_row)? {
            out.push(m?);
        }
    }
    Ok(out)
}

fn one(conn: &Connection, mailbox: MailboxId, uid: u32) -> Result<Option<MessageMeta>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {META} FROM {META_FROM} WHERE m.mailbox_id = ?1 AND m.uid = ?2"
        ))?
        .query_row(params![mailbox, uid as i64], meta_row)
        .optional()?)
}

pub(super) fn changes(conn: &Connection, mailbox: MailboxId, since: u64) -> Result<Changes> {
    let highest: i64 = conn
        .prepare_cached("SELECT highest_modseq FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META} FROM {META_FROM} WHERE m.mailbox_id = ?1 AND m.modseq > ?2 ORDER BY m.uid"
    ))?;
    let changed = st
        .query_map(params![mailbox, since as i64], meta_row)?
        .collect::<Result<_, _>>()?;
    let expunged = expunged_since(conn, mailbox, since)?;
    Ok(Changes {
        changed,
        expunged,
        highest_modseq: highest as u64,
    })
}

/// The blob hash of an email, also of one expunged less than the grace
/// period ago.
fn blob_of(conn: &Connection, id: EmailId) -> Result<String> {
    let present = conn
        .prepare_cached("SELECT blob FROM emails WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if let Some(v) = present {
        return Ok(v);
    }
    conn.prepare_cached("SELECT blob FROM expunged WHERE message_id = ?1 AND blob IS NOT NULL LIMIT 1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("message {id}")))
}

pub(super) fn raw(conn: &Connection, id: EmailId) -> Result<Vec<u8>> {
    let hash = blob_of(conn, id)?;
    blob_data(conn, &hash)
}

pub(super) fn blob_data(conn: &Connection, hash: &str) -> Result<Vec<u8>> {
    conn.prepare_cached("SELECT data FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("blob {hash}")))
}

/// The stored analysis of an email's body: (blob hash, JSON, analyser version).
pub(super) fn info_json(conn: &Connection, id: EmailId) -> Result<(String, String, u32)> {
    let hash = blob_of(conn, id)?;
    let (json, version): (String, i64) = conn
        .prepare_cached("SELECT info, info_version FROM blobs WHERE hash = ?1")?
        .query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("blob {hash}")))?;
    Ok((hash, json, version as u32))
}

/// What [`data`] read of one email: its analysis when current (`None`
/// when stale or undecodable: the caller redoes it), and its raw bytes.
pub(super) struct Data {
    pub info: Option<Option<MessageInfo>>,
    pub raw: Option<Vec<u8>>,
}

/// An email's analysis and/or raw bytes; `None` once it is gone.
pub(super) fn data(conn: &Connection, id: EmailId, info: bool, raw: bool) -> Result<Option<Data>> {
    let hash = match blob_of(conn, id) {
        Ok(h) => h,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let info = if info {
        let row: Option<(String, i64)> = conn
            .prepare_cached("SELECT info, info_version FROM blobs WHERE hash = ?1")?
            .query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((json, version)) = row else { return Ok(None) };
        Some(
            (version == i64::from(letterbox_mail::ANALYSIS_VERSION))
                .then(|| serde_json::from_str::<MessageInfo>(&json).ok())
                .flatten(),
        )
    } else {
        None
    };
    let raw = if raw {
        match blob_data(conn, &hash) {
            Ok(b) => Some(b),
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(Some(Data { info, raw }))
}

/// Store a re-analysis (made by a newer analyser than the stored one).
pub(super) fn update_info(conn: &Connection, hash: &str, json: &str, version: u32) -> Result<()> {
    conn.execute(
        "UPDATE blobs SET info = ?2, info_version = ?3 WHERE hash = ?1 AND info_version < ?3",
        params![hash, json, version as i64],
    )?;
    Ok(())
}

/// Ids of expunged messages whose bodies are still held, by UID.
pub(super) fn expunged_ids(conn: &Connection, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageId)>> {
    let mut st =
        conn.prepare_cached("SELECT message_id FROM expunged WHERE mailbox_id = ?1 AND uid = ?2 AND blob IS NOT NULL")?;
    let mut out = Vec::new();
    for &uid in uids {
        if let Some(id) = st.query_row(params![mailbox, uid], |r| r.get(0)).optional()? {
            out.push((uid, id));
        }
    }
    Ok(out)
}

/// Drop the blob references of tombstones older than the grace period.
pub(super) fn release_expired(conn: &Connection, now: i64) -> Result<usize> {
    let cutoff = now - EXPUNGED_GRACE_SECS;
    let n = release_held(conn, "blob IS NOT NULL AND at <= ?1", cutoff)?;
    conn.prepare_cached("UPDATE expunged SET blob = NULL WHERE blob IS NOT NULL AND at <= ?1")?
        .execute([cutoff])?;
    Ok(n)
}

/// Compact the change log: rows older than the horizon go, and each
/// account's floor rises to the newest modseq removed (states below it can
/// no longer be answered). Returns the rows removed.
pub(super) fn compact_changelog(conn: &Connection, now: i64) -> Result<usize> {
    let cutoff = now - CHANGELOG_HORIZON_SECS;
    conn.execute(
        "UPDATE accounts SET changelog_floor = MAX(changelog_floor,
             (SELECT MAX(modseq) FROM changelog c WHERE c.account_id = accounts.id AND c.at <= ?1))
         WHERE id IN (SELECT DISTINCT account_id FROM changelog WHERE at <= ?1)",
        [cutoff],
    )?;
    Ok(conn.execute(
        "DELETE FROM changelog WHERE modseq <= (SELECT changelog_floor FROM accounts a WHERE a.id = changelog.account_id)",
        [],
    )?)
}

/// Forget a mailbox's expunge records (it is being deleted), releasing the
/// bodies they still hold.
pub(super) fn drop_tombstones(conn: &Connection, mailbox: MailboxId) -> Result<()> {
    release_held(conn, "mailbox_id = ?1 AND blob IS NOT NULL", mailbox)?;
    conn.execute("DELETE FROM expunged WHERE mailbox_id = ?1", [mailbox])?;
    Ok(())
}

/// Release the blob references held by the tombstones matching `filter`
/// (one `?1` parameter); returns how many.
fn release_held(conn: &Connection, filter: &str, param: i64) -> Result<usize> {
    let blobs: Vec<String> = conn
        .prepare_cached(&format!("SELECT blob FROM expunged WHERE {filter}"))?
        .query_map([param], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for b in &blobs {
        release_blob(conn, b)?;
    }
    Ok(blobs.len())
}

/// Add a body (or find it) with zero references; callers add references.
/// A new body is added to the full-text index.
pub(super) fn put_blob(conn: &Connection, body: &PreparedBody) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO blobs(hash, data, info, refs, info_version) VALUES (?1, ?2, ?3, 0, ?4)
         ON CONFLICT(hash) DO UPDATE SET info = excluded.info, info_version = excluded.info_version
         WHERE blobs.info_version < excluded.info_version",
    )?
    .execute(params![body.hash, body.raw, body.info_json, body.info_version as i64])?;
    index_blob(conn, &body.hash, &body.text)
}

/// Compute the missing sort keys of emails (the v12 upgrade), once per
/// blob; returns how many blobs were read.
pub(super) fn fill_sort_keys(conn: &Connection) -> Result<usize> {
    let rows: Vec<(EmailId, String)> = conn
        .prepare("SELECT id, blob FROM emails WHERE sort_keys IS NULL ORDER BY blob")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut set = conn.prepare("UPDATE emails SET sort_keys = ?2 WHERE id = ?1")?;
    let mut blobs = 0;
    let mut last: Option<(String, String)> = None;
    for (id, hash) in rows {
        let keys = match &last {
            Some((h, k)) if *h == hash => k.clone(),
            _ => {
                blobs += 1;
                let k = letterbox_mail::sort::sort_keys(&blob_data(conn, &hash)?).encode();
                last = Some((hash, k.clone()));
                k
            }
        };
        set.execute(params![id, keys])?;
    }
    Ok(blobs)
}

/// RFC 5256 sort and thread keys of every message in a mailbox, by UID.
pub(super) fn sort_rows(conn: &Connection, mailbox: MailboxId) -> Result<Vec<SortRow>> {
    let mut st = conn.prepare_cached(
        // On the (short) email rows: a column after the message bytes in
        // `blobs` would make SQLite walk every message's overflow pages,
        // a table keyed by blob hash costs a deep lookup per message.
        "SELECT m.uid, e.sent_at, e.sort_keys, e.blob FROM email_mailboxes m
         JOIN emails e ON e.id = m.email_id
         WHERE m.mailbox_id = ?1 ORDER BY m.uid",
    )?;
    let rows: Vec<(i64, Option<i64>, Option<String>, String)> = st
        .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (uid, sent_at, keys, hash) in rows {
        let keys = match keys {
            Some(k) => k,
            // Not computed (cannot happen after the v12 upgrade): from the bytes.
            None => letterbox_mail::sort::sort_keys(&blob_data(conn, &hash)?).encode(),
        };
        out.push(SortRow {
            uid: uid as u32,
            sent_at,
            keys,
        });
    }
    Ok(out)
}

/// Index a blob's text unless it is indexed already.
pub(super) fn index_blob(conn: &Connection, hash: &str, doc: &crate::prepare::SearchDoc) -> Result<()> {
    let id: Option<i64> = conn
        .prepare_cached("INSERT INTO blob_text(hash) VALUES (?1) ON CONFLICT(hash) DO NOTHING RETURNING id")?
        .query_row([hash], |r| r.get(0))
        .optional()?;
    if let Some(id) = id {
        conn.prepare_cached(
            "INSERT INTO email_fts(rowid, subject, fromaddr, toaddr, ccaddr, bccaddr, headers, body, attachments)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            id,
            doc.subject,
            doc.from,
            doc.to,
            doc.cc,
            doc.bcc,
            doc.headers,
            doc.body,
            doc.attachments
        ])?;
    }
    Ok(())
}

fn add_ref(conn: &Connection, hash: &str) -> Result<()> {
    conn.prepare_cached("UPDATE blobs SET refs = refs + 1 WHERE hash = ?1")?
        .execute([hash])?;
    Ok(())
}

fn release_blob(conn: &Connection, hash: &str) -> Result<()> {
    conn.prepare_cached("UPDATE blobs SET refs = refs - 1 WHERE hash = ?1")?
        .execute([hash])?;
    drop_unreferenced(conn, hash)
}

fn drop_unreferenced(conn: &Connection, hash: &str) -> Result<()> {
    let gone = conn
        .prepare_cached("DELETE FROM blobs WHERE hash = ?1 AND refs <= 0")?
        .execute([hash])?;
    if gone > 0 {
        let id: Option<i64> = conn
            .prepare_cached("DELETE FROM blob_text WHERE hash = ?1 RETURNING id")?
            .query_row([hash], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            conn.prepare_cached("DELETE FROM email_fts WHERE rowid = ?1")?
                .execute([id])?;
        }
    }
    Ok(())
}

/// Check the account can take `count` more messages totalling `bytes`, and
/// charge it. `permanent` in the error means it could never fit.
pub(super) fn charge(conn: &Connection, account: AccountId, bytes: u64, count: u64) -> Result<()> {
    let (address, qb, qm, ub, um): (String, i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT address, quota_bytes, quota_messages, used_bytes, used_messages FROM accounts WHERE id = ?1",
        )?
        .query_row([account], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let (qb, qm, ub, um) = (qb as u64, qm as u64, ub as u64, um as u64);
    if qb > 0 {
        // Issue 18: bodies expunged in the last half hour are still held
        // (for sessions that saw them) but no longer charged. Counted
        // against the quota, they are let go first when space is short, so
        // expunge-and-append cannot grow an account past its quota.
        let held: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(length(b.data)), 0) FROM expunged e JOIN blobs b ON b.hash = e.blob
                 WHERE e.blob IS NOT NULL AND e.mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
            )?
            .query_row([account], |r| r.get(0))?;
        if held > 0 && ub.saturating_add(held as u64).saturating_add(bytes) > qb {
            let filter = "blob IS NOT NULL AND mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)";
            release_held(conn, filter, account)?;
            conn.prepare_cached(&format!("UPDATE expunged SET blob = NULL WHERE {filter}"))?
                .execute([account])?;
        }
    }
    let over_bytes = qb > 0 && ub.saturating_add(bytes) > qb;
    let over_count = qm > 0 && um.saturating_add(count) > qm;
    if over_bytes || over_count {
        let permanent = (qb > 0 && bytes > qb) || (qm > 0 && count > qm);
        return Err(StoreError::QuotaExceeded {
            account: address,
            permanent,
        });
    }
    conn.prepare_cached(
        "UPDATE accounts SET used_bytes = used_bytes + ?1, used_messages = used_messages + ?2 WHERE id = ?3",
    )?
    .execute(params![bytes as i64, count as i64, account])?;
    Ok(())
}

fn uncharge(conn: &Connection, account: AccountId, bytes: u64, count: u64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE accounts SET used_bytes = MAX(0, used_bytes - ?1), used_messages = MAX(0, used_messages - ?2)
         WHERE id = ?3",
    )?
    .execute(params![bytes as i64, count as i64, account])?;
    Ok(())
}

/// The thread an email with `keys` joins (ARCHITECTURE.md, "Threads at
/// delivery"): the oldest thread one of its ids is recorded for whose base
/// subject is the same, else a new one. Records its ids for that thread.
/// Returns the thread and whether it is new.
pub(super) fn assign_thread(conn: &Connection, account: AccountId, keys: &ThreadKeys) -> Result<(ThreadId, bool)> {
    let mut best: Option<ThreadId> = None;
    {
        let mut find = conn.prepare_cached(
            "SELECT r.thread_id FROM thread_refs r JOIN threads t ON t.id = r.thread_id
             WHERE r.account_id = ?1 AND r.msgid = ?2 AND t.subject = ?3",
        )?;
        for id in keys.all() {
            for t in find.query_map(params![account, id, keys.subject], |r| r.get::<_, i64>(0))? {
                let t = t?;
                if best.is_none_or(|b| t < b) {
                    best = Some(t);
                }
            }
        }
    }
    let (thread, new) = match best {
        Some(t) => (t, false),
        None => {
            conn.prepare_cached("INSERT INTO threads(account_id, subject) VALUES (?1, ?2)")?
                .execute(params![account, keys.subject])?;
            (conn.last_insert_rowid(), true)
        }
    };
    let mut put =
        conn.prepare_cached("INSERT OR IGNORE INTO thread_refs(account_id, msgid, thread_id) VALUES (?1, ?2, ?3)")?;
    for id in keys.all() {
        put.execute(params![account, id, thread])?;
    }
    Ok((thread, new))
}

/// What a new email is made of.
struct EmailSource<'a> {
    hash: &'a str,
    size: u64,
    received_at: i64,
    sent_at: Option<i64>,
    keywords: &'a [String],
    /// Encoded `letterbox_mail::sort::SortKeys`; `None` leaves them to
    /// be computed (`fill_sort_keys`).
    sort_keys: Option<&'a str>,
}

/// Insert an email (quota already charged) in `thread`.
fn insert_email(conn: &Connection, op: &mut Op, src: &EmailSource<'_>, thread: (ThreadId, bool)) -> Result<EmailId> {
    conn.prepare_cached(
        // text_id: the body is indexed (put_blob) before its emails exist.
        "INSERT INTO emails(account_id, thread_id, blob, size, received_at, sent_at, keywords, sort_keys, text_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, (SELECT id FROM blob_text WHERE hash = ?3))",
    )?
    .execute(params![
        op.account,
        thread.0,
        src.hash,
        src.size as i64,
        src.received_at,
        src.sent_at,
        keywords_to_text(src.keywords),
        src.sort_keys
    ])?;
    let id = conn.last_insert_rowid();
    add_ref(conn, src.hash)?;
    op.log(conn, DataType::Email, id, ChangeOp::Created)?;
    let thread_op = if thread.1 { ChangeOp::Created } else { ChangeOp::Updated };
    op.log(conn, DataType::Thread, thread.0, thread_op)?;
    Ok(id)
}

/// Add an email to a mailbox at its next UID.
pub(super) fn add_membership(
    conn: &Connection,
    op: &mut Op,
    mailbox: MailboxId,
    email: EmailId,
    deleted: bool,
) -> Result<u32> {
    let ms = op.modseq(conn)?;
    let uid: i64 = conn
        .prepare_cached("UPDATE mailboxes SET uid_next = uid_next + 1 WHERE id = ?1 RETURNING uid_next - 1")?
        .query_row([mailbox], |r| r.get(0))?;
    if uid >= u32::MAX as i64 {
        return Err(StoreError::Invalid("mailbox UID space exhausted".into()));
    }
    conn.prepare_cached(
        "INSERT INTO email_mailboxes(mailbox_id, uid, email_id, modseq, deleted) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![mailbox, uid, email, ms as i64, deleted])?;
    op.touch(conn, mailbox, ChangeKind::Added)?;
    Ok(uid as u32)
}

/// A new email from a prepared body, in one mailbox.
pub(super) fn new_email_in(
    conn: &Connection,
    op: &mut Op,
    body: &PreparedBody,
    flags: &[String],
    mailbox: MailboxId,
) -> Result<(EmailId, u32)> {
    let (keywords, deleted) = split_flags(flags);
    let thread = assign_thread(conn, op.account, &body.thread)?;
    let src = EmailSource {
        hash: &body.hash,
        size: body.raw.len() as u64,
        received_at: body.internal_date,
        sent_at: body.sent_at,
        keywords: &keywords,
        sort_keys: Some(&body.sort_keys),
    };
    let id = insert_email(conn, op, &src, thread)?;
    let uid = add_membership(conn, op, mailbox, id, deleted)?;
    Ok((id, uid))
}

pub(super) fn deliver(
    conn: &Connection,
    body: &PreparedBody,
    targets: &[DeliveryTarget],
) -> Result<(DeliveryReport, Vec<ChangeEvent>)> {
    put_blob(conn, body)?;
    let size = body.raw.len() as u64;
    let mut report = DeliveryReport::default();
    let mut events = Vec::new();
    // One email per account, one membership per distinct target mailbox.
    let mut accounts: Vec<(AccountId, EmailId, Op)> = Vec::new();
    for t in targets {
        let by_use = match t.special_use {
            Some(u) => mailboxes::id_by_special_use(conn, t.account_id, u)?,
            None => None,
        };
        let mb = match by_use {
            Some(m) => m,
            None => match mailboxes::id_by_name(conn, t.account_id, &t.mailbox)? {
                Some(m) => m,
                None => mailboxes::id_by_name(conn, t.account_id, "INBOX")?
                    .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {}", t.account_id)))?,
            },
        };
        if report.delivered.iter().any(|(a, m, _)| (*a, *m) == (t.account_id, mb))
            || report.over_quota.iter().any(|(a, _)| *a == t.account_id)
        {
            continue;
        }
        let flags = normalize_flags(&[body.flags.clone(), t.flags.clone()].concat());
        let uid = match accounts.iter_mut().find(|(a, _, _)| *a == t.account_id) {
            Some((_, email, op)) => {
                let (keywords, deleted) = split_flags(&flags);
                add_keywords(conn, op, *email, &keywords)?;
                add_membership(conn, op, mb, *email, deleted)?
            }
            None => {
                match charge(conn, t.account_id, size, 1) {
                    Ok(()) => {}
                    Err(StoreError::QuotaExceeded { permanent, .. }) => {
                        report.over_quota.push((t.account_id, permanent));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                let mut op = Op::new(t.account_id);
                let (email, uid) = new_email_in(conn, &mut op, body, &flags, mb)?;
                accounts.push((t.account_id, email, op));
                uid
            }
        };
        report.delivered.push((t.account_id, mb, uid));
    }
    for (_, _, op) in &accounts {
        events.extend(op.events());
    }
    drop_unreferenced(conn, &body.hash)?;
    Ok((report, events))
}

/// Add keywords to an email (a second delivery target with flags of its own).
fn add_keywords(conn: &Connection, op: &mut Op, email: EmailId, add: &[String]) -> Result<()> {
    if add.is_empty() {
        return Ok(());
    }
    let current: String = conn
        .prepare_cached("SELECT keywords FROM emails WHERE id = ?1")?
        .query_row([email], |r| r.get(0))?;
    let mut all = imap_flags(&current, false);
    all.extend(add.iter().cloned());
    set_keywords(conn, op, email, &normalize_flags(&all))
}

/// Replace an email's keywords: every membership takes the operation's
/// modseq, so sessions on every mailbox holding it see the change.
pub(super) fn set_keywords(conn: &Connection, op: &mut Op, email: EmailId, keywords: &[String]) -> Result<()> {
    super::spam::learn_from_keywords(conn, op.account, email, keywords)?;
    let ms = op.modseq(conn)?;
    conn.prepare_cached("UPDATE emails SET keywords = ?2 WHERE id = ?1")?
        .execute(params![email, keywords_to_text(keywords)])?;
    let boxes: Vec<MailboxId> = conn
        .prepare_cached("UPDATE email_mailboxes SET modseq = ?2 WHERE email_id = ?1 RETURNING mailbox_id")?
        .query_map(params![email, ms as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for b in boxes {
        op.touch(conn, b, ChangeKind::Flags)?;
    }
    op.log(conn, DataType::Email, email, ChangeOp::Updated)
}

pub(super) fn append(
    conn: &Connection,
    mailbox: MailboxId,
    body: &PreparedBody,
) -> Result<(Appended, Vec<ChangeEvent>)> {
    let (account, uid_validity) = mailboxes::account_and_validity(conn, mailbox)?;
    charge(conn, account, body.raw.len() as u64, 1)?;
    put_blob(conn, body)?;
    let mut op = Op::new(account);
    let (id, uid) = new_email_in(conn, &mut op, body, &body.flags, mailbox)?;
    Ok((Appended { uid_validity, uid, id }, op.events()))
}

pub(super) fn store_flags(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[u32],
    flag_op: FlagOp,
    flags: &[String],
    unchanged_since: Option<u64>,
) -> Result<(ConditionalStore, Vec<ChangeEvent>)> {
    let account = mailboxes::account_of(conn, mailbox)?;
    let flags = normalize_flags(flags);
    let mut op = Op::new(account);
    let mut changed_ids = Vec::new();
    let mut modified = Vec::new();
    for &uid in uids {
        let Some(meta) = one(conn, mailbox, uid)? else { continue };
        // RFC 7162 §3.1.3: checked in the writer, so no change can slip in
        // between the test and the update.
        if unchanged_since.is_some_and(|n| meta.modseq > n) {
            modified.push(uid);
            continue;
        }
        let new = match flag_op {
            FlagOp::Replace => flags.clone(),
            FlagOp::Add => normalize_flags(&[meta.flags.clone(), flags.clone()].concat()),
            FlagOp::Remove => meta
                .flags
                .iter()
                .filter(|f| !flags.iter().any(|r| r.eq_ignore_ascii_case(f)))
                .cloned()
                .collect(),
        };
        if new == meta.flags {
            continue;
        }
        let (keywords, deleted) = split_flags(&new);
        let (old_keywords, was_deleted) = split_flags(&meta.flags);
        if keywords != old_keywords {
            set_keywords(conn, &mut op, meta.id, &keywords)?;
        }
        if deleted != was_deleted {
            let ms = op.modseq(conn)?;
            conn.prepare_cached(
                "UPDATE email_mailboxes SET deleted = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
            )?
            .execute(params![mailbox, uid as i64, deleted, ms as i64])?;
            op.touch(conn, mailbox, ChangeKind::Flags)?;
            // JMAP does not see memberships marked \Deleted: mailboxIds changed.
            op.log(conn, DataType::Email, meta.id, ChangeOp::Updated)?;
        }
        changed_ids.push(uid);
    }
    let mut changed = Vec::with_capacity(changed_ids.len());
    for uid in changed_ids {
        changed.extend(one(conn, mailbox, uid)?);
    }
    Ok((ConditionalStore { changed, modified }, op.events()))
}

/// UIDs expunged from `mailbox` at a modseq above `since`, ascending.
pub(super) fn expunged_since(conn: &Connection, mailbox: MailboxId, since: u64) -> Result<Vec<u32>> {
    let mut st = conn.prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid")?;
    let uids = st
        .query_map(params![mailbox, since as i64], |r| Ok(r.get::<_, i64>(0)? as u32))?
        .collect::<Result<_, _>>()?;
    Ok(uids)
}

/// Remove memberships by UID, leaving expunge tombstones; an email in no
/// mailbox any more is destroyed. Returns the UIDs that existed, ascending.
pub(super) fn remove_uids(conn: &Connection, op: &mut Op, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut removed = Vec::new();
    let now = crate::unix_now();
    for uid in sorted {
        let row: Option<EmailId> = conn
            .prepare_cached("DELETE FROM email_mailboxes WHERE mailbox_id = ?1 AND uid = ?2 RETURNING email_id")?
            .query_row(params![mailbox, uid as i64], |r| r.get(0))
            .optional()?;
        let Some(email) = row else { continue };
        let ms = op.modseq(conn)?;
        let (blob, size, thread): (String, i64, ThreadId) = conn
            .prepare_cached("SELECT blob, size, thread_id FROM emails WHERE id = ?1")?
            .query_row([email], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        // The tombstone keeps a reference on the blob for the grace period.
        conn.prepare_cached(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq, message_id, blob, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![mailbox, uid as i64, ms as i64, email, blob, now])?;
        add_ref(conn, &blob)?;
        let remaining: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM email_mailboxes WHERE email_id = ?1")?
            .query_row([email], |r| r.get(0))?;
        if remaining == 0 {
            destroy_email(conn, op, email, &blob, size as u64, thread)?;
        } else {
            op.log(conn, DataType::Email, email, ChangeOp::Updated)?;
        }
        removed.push(uid);
    }
    if !removed.is_empty() {
        op.touch(conn, mailbox, ChangeKind::Expunged)?;
        release_expired(conn, now)?;
    }
    Ok(removed)
}

fn destroy_email(
    conn: &Connection,
    op: &mut Op,
    email: EmailId,
    blob: &str,
    size: u64,
    thread: ThreadId,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM emails WHERE id = ?1")?
        .execute([email])?;
    release_blob(conn, blob)?;
    uncharge(conn, op.account, size, 1)?;
    op.log(conn, DataType::Email, email, ChangeOp::Destroyed)?;
    let left: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM emails WHERE thread_id = ?1")?
        .query_row([thread], |r| r.get(0))?;
    if left == 0 {
        // An empty thread is gone for good: its ids must not pull a later
        // email into a thread JMAP clients were told was destroyed.
        conn.prepare_cached("DELETE FROM thread_refs WHERE account_id = ?1 AND thread_id = ?2")?
            .execute(params![op.account, thread])?;
        conn.prepare_cached("DELETE FROM threads WHERE id = ?1")?
            .execute([thread])?;
        op.log(conn, DataType::Thread, thread, ChangeOp::Destroyed)
    } else {
        op.log(conn, DataType::Thread, thread, ChangeOp::Updated)
    }
}

pub(super) fn expunge(
    conn: &Connection,
    mailbox: MailboxId,
    only: Option<&[u32]>,
) -> Result<(Vec<u32>, Vec<ChangeEvent>)> {
    let only: Option<std::collections::HashSet<u32>> = only.map(|set| set.iter().copied().collect());
    let deleted: Vec<u32> = conn
        .prepare_cached("SELECT uid FROM email_mailboxes WHERE mailbox_id = ?1 AND deleted ORDER BY uid")?
        .query_map([mailbox], |r| Ok(r.get::<_, i64>(0)? as u32))?
        .collect::<rusqlite::Result<Vec<u32>>>()?
        .into_iter()
        .filter(|uid| only.as_ref().is_none_or(|set| set.contains(uid)))
        .collect();
    let mut op = Op::new(mailboxes::account_of(conn, mailbox)?);
    let gone = remove_uids(conn, &mut op, mailbox, &deleted)?;
    Ok((gone, op.events()))
}

pub(super) fn delete_ids(
    conn: &Connection,
    mailbox: MailboxId,
    ids: &[MessageId],
) -> Result<(Vec<u32>, Vec<ChangeEvent>)> {
    let mut st = conn.prepare_cached("SELECT uid FROM email_mailboxes WHERE mailbox_id = ?1 AND email_id = ?2")?;
    let mut uids = Vec::new();
    for id in ids {
        if let Some(uid) = st.query_row(params![mailbox, id], |r| r.get::<_, i64>(0)).optional()? {
            uids.push(uid as u32);
        }
    }
    let mut op = Op::new(mailboxes::account_of(conn, mailbox)?);
    let gone = remove_uids(conn, &mut op, mailbox, &uids)?;
    Ok((gone, op.events()))
}

/// IMAP COPY within an account (ARCHITECTURE.md, "COPY adds a membership"):
/// the email joins `to`; if `to` holds it already, a new email with the
/// same body and keywords is made (charged to the quota).
pub(super) fn copy(conn: &Connection, op: &mut Op, from: MailboxId, uids: &[u32], to: MailboxId) -> Result<Copied> {
    let (src_account, _) = mailboxes::account_and_validity(conn, from)?;
    let (dst_account, uid_validity) = mailboxes::account_and_validity(conn, to)?;
    if src_account != dst_account || op.account != dst_account {
        return Err(StoreError::Invalid("cannot copy between accounts".into()));
    }
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Copied {
        uid_validity,
        uids: Vec::new(),
    };
    let mut held = conn.prepare_cached("SELECT 1 FROM email_mailboxes WHERE mailbox_id = ?1 AND email_id = ?2")?;
    for uid in sorted {
        let Some(meta) = one(conn, from, uid)? else { continue };
        let (keywords, deleted) = split_flags(&meta.flags);
        let already = held.query_row(params![to, meta.id], |_| Ok(())).optional()?.is_some();
        let email = if already {
            let (hash, sent_at, keys): (String, Option<i64>, Option<String>) = conn
                .prepare_cached("SELECT blob, sent_at, sort_keys FROM emails WHERE id = ?1")?
                .query_row([meta.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            charge(conn, op.account, meta.size, 1)?;
            let src = EmailSource {
                hash: &hash,
                size: meta.size,
                received_at: meta.internal_date,
                sent_at,
                keywords: &keywords,
                sort_keys: keys.as_deref(),
            };
            insert_email(conn, op, &src, (meta.thread_id, false))?
        } else {
            op.log(conn, DataType::Email, meta.id, ChangeOp::Updated)?;
            meta.id
        };
        let new_uid = add_membership(conn, op, to, email, deleted)?;
        super::spam::learn_from_move(conn, op.account, email, &[from], &[to])?;
        out.uids.push((uid, new_uid));
    }
    Ok(out)
}

/// Remove every membership of a mailbox without recording expunges (the
/// mailbox itself is going away).
pub(super) fn remove_all(conn: &Connection, op: &mut Op, mailbox: MailboxId) -> Result<()> {
    let uids: Vec<u32> = conn
        .prepare_cached("SELECT uid FROM email_mailboxes WHERE mailbox_id = ?1")?
        .query_map([mailbox], |r| Ok(r.get::<_, i64>(0)? as u32))?
        .collect::<rusqlite::Result<_>>()?;
    remove_uids(conn, op, mailbox, &uids)?;
    Ok(())
}

// ---- account-wide reads ----

pub(super) fn state(conn: &Connection, account: AccountId, data: DataType) -> Result<u64> {
    let (floor, last): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT a.changelog_floor,
                    (SELECT MAX(modseq) FROM changelog c WHERE c.account_id = a.id AND c.type = ?2)
             FROM accounts a WHERE a.id = ?1",
        )?
        .query_row(params![account, data.code()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    Ok(last.unwrap_or(floor).max(floor) as u64)
}

pub(super) fn object_changes(
    conn: &Connection,
    account: AccountId,
    data: DataType,
    since: u64,
    max: usize,
) -> Result<ObjectChanges> {
    let current = state(conn, account, data)?;
    if since == current {
        return Ok(ObjectChanges {
            old_state: since,
            new_state: since,
            ..ObjectChanges::default()
        });
    }
    let floor: i64 = conn
        .prepare_cached("SELECT changelog_floor FROM accounts WHERE id = ?1")?
        .query_row([account], |r| r.get(0))?;
    if since < floor as u64 || since > current {
        return Err(StoreError::CannotCalculateChanges);
    }
    let mut rows: Vec<LogRow> = conn
        .prepare_cached(
            "SELECT modseq, object_id, op FROM changelog WHERE account_id = ?1 AND type = ?2 AND modseq > ?3
             ORDER BY modseq, object_id LIMIT ?4",
        )?
        .query_map(
            params![account, data.code(), since as i64, (MAX_LOG_ROWS + 1) as i64],
            |r| {
                Ok(LogRow {
                    modseq: r.get::<_, i64>(0)? as u64,
                    id: r.get(1)?,
                    op: ChangeOp::from_code(r.get(2)?),
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    let truncated = rows.len() > MAX_LOG_ROWS;
    let mut upto = current;
    if truncated {
        // Keep whole modseqs only.
        let last = rows[MAX_LOG_ROWS].modseq;
        rows.retain(|r| r.modseq < last);
        upto = rows.last().map_or(since, |r| r.modseq);
    }
    let mut out = crate::changes::collapse(since, &rows, max, upto).ok_or(StoreError::CannotCalculateChanges)?;
    if truncated {
        out.has_more = true;
    }
    Ok(out)
}

pub(super) fn emails(conn: &Connection, account: AccountId, ids: &[EmailId]) -> Result<Vec<EmailMeta>> {
    let mut get = conn.prepare_cached(
        "SELECT id, thread_id, blob, keywords, size, received_at, sent_at FROM emails WHERE id = ?1 AND account_id = ?2",
    )?;
    let mut boxes = conn.prepare_cached(
        "SELECT mailbox_id FROM email_mailboxes WHERE email_id = ?1 AND NOT deleted ORDER BY mailbox_id",
    )?;
    let mut out = Vec::new();
    let unique: BTreeSet<EmailId> = ids.iter().copied().collect();
    for id in unique {
        let Some(mut e) = get
            .query_row(params![id, account], |r| {
                let keywords: String = r.get(3)?;
                let hash: String = r.get(2)?;
                Ok(EmailMeta {
                    id: r.get(0)?,
                    thread_id: r.get(1)?,
                    blob_id: crate::blob_id(&hash),
                    mailboxes: Vec::new(),
                    keywords: imap_flags(&keywords, false),
                    size: r.get::<_, i64>(4)? as u64,
                    received_at: r.get(5)?,
                    sent_at: r.get(6)?,
                })
            })
            .optional()?
        else {
            continue;
        };
        e.mailboxes = boxes.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        if !e.mailboxes.is_empty() {
            out.push(e);
        }
    }
    Ok(out)
}

pub(super) fn thread(conn: &Connection, account: AccountId, thread: ThreadId) -> Result<Vec<EmailId>> {
    Ok(conn
        .prepare_cached(
            // By the thread index: left to itself the planner walked the
            // account's (account, received_at) index for the ORDER BY, a
            // scan of every email of the account per thread (7 ms at 100k).
            "SELECT e.id FROM emails e INDEXED BY emails_by_thread WHERE e.thread_id = ?1 AND e.account_id = ?2
               AND EXISTS(SELECT 1 FROM email_mailboxes m WHERE m.email_id = e.id AND NOT m.deleted)
             ORDER BY e.received_at, e.id",
        )?
        .query_map(params![thread, account], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}
