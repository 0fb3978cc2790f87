//! Messages: content-addressed bodies, UIDs, modseqs, flags, quota usage.
//!
//! Invariants kept here: a UID is `uid_next` at insert time and `uid_next`
//! only grows, so UIDs are strictly ascending and never reused within a
//! UIDVALIDITY; every operation that changes a mailbox takes one new modseq
//! from it; expunged UIDs are remembered with their modseq (for QRESYNC).

use super::mailboxes;
use crate::{
    AccountId, Appended, Changes, Copied, DeliveryReport, DeliveryTarget, FlagOp, MailboxId, MessageId, MessageMeta,
    Result, StoreError,
};
use rusqlite::{params, Connection, OptionalExtension};

/// A message body prepared outside the writer thread (hashing and MIME
/// analysis are CPU work that must not hold the write lock).
pub(crate) struct PreparedBody {
    pub hash: String,
    pub raw: Vec<u8>,
    pub info_json: String,
    pub flags: Vec<String>,
    pub internal_date: i64,
}

const SYSTEM_FLAGS: &[&str] = &["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// System flags in canonical case, keywords deduplicated case-insensitively
/// (RFC 9051 §2.3.2: flags are case-insensitive), sorted.
pub fn normalize_flags<S: AsRef<str>>(flags: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in flags {
        let f = f.as_ref().trim();
        if f.is_empty() || f.eq_ignore_ascii_case("\\Recent") {
            continue;
        }
        let canon = SYSTEM_FLAGS
            .iter()
            .find(|s| s.eq_ignore_ascii_case(f))
            .map(|s| s.to_string())
            .unwrap_or_else(|| f.to_string());
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&canon)) {
            out.push(canon);
        }
    }
    out.sort();
    out
}

fn flags_to_text(flags: &[String]) -> String {
    flags.join(" ")
}

fn flags_from_text(t: &str) -> Vec<String> {
    t.split(' ').filter(|f| !f.is_empty()).map(str::to_string).collect()
}

fn meta_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    let flags: String = r.get(3)?;
    Ok(MessageMeta {
        id: r.get(0)?,
        uid: r.get::<_, i64>(1)? as u32,
        modseq: r.get::<_, i64>(2)? as u64,
        flags: flags_from_text(&flags),
        internal_date: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
    })
}

const META: &str = "id, uid, modseq, flags, internal_date, size";

pub(super) fn list(conn: &Connection, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META} FROM messages WHERE mailbox_id = ?1 ORDER BY uid"
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
        "SELECT {META} FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
    ))?;
    let mut out = Vec::new();
    for &(lo, hi) in ranges {
        for m in st.query_map(params![mailbox, lo, hi], meta_row)? {
            out.push(m?);
        }
    }
    Ok(out)
}

pub(super) fn changes(conn: &Connection, mailbox: MailboxId, since: u64) -> Result<Changes> {
    let mb = mailboxes::require(conn, mailbox)?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid"
    ))?;
    let changed = st
        .query_map(params![mailbox, since as i64], meta_row)?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid")?;
    let expunged = st
        .query_map(params![mailbox, since as i64], |r| Ok(r.get::<_, i64>(0)? as u32))?
        .collect::<Result<_, _>>()?;
    Ok(Changes {
        changed,
        expunged,
        highest_modseq: mb.highest_modseq,
    })
}

/// How long an expunged message's body stays readable for sessions that
/// have not been told of the expunge yet.
pub(super) const EXPUNGED_GRACE_SECS: i64 = 30 * 60;

/// A column of a message's blob, also for a recently expunged message.
fn blob_column<T: rusqlite::types::FromSql>(conn: &Connection, id: MessageId, column: &str) -> Result<T> {
    let present = conn
        .prepare_cached(&format!(
            "SELECT b.{column} FROM messages m JOIN blobs b ON b.hash = m.blob WHERE m.id = ?1"
        ))?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if let Some(v) = present {
        return Ok(v);
    }
    conn.prepare_cached(&format!(
        "SELECT b.{column} FROM expunged e JOIN blobs b ON b.hash = e.blob WHERE e.message_id = ?1"
    ))?
    .query_row([id], |r| r.get(0))
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("message {id}")))
}

pub(super) fn raw(conn: &Connection, id: MessageId) -> Result<Vec<u8>> {
    blob_column(conn, id, "data")
}

pub(super) fn info_json(conn: &Connection, id: MessageId) -> Result<String> {
    blob_column(conn, id, "info")
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
    conn.execute(
        "UPDATE expunged SET blob = NULL WHERE blob IS NOT NULL AND at <= ?1",
        [cutoff],
    )?;
    Ok(n)
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
fn put_blob(conn: &Connection, body: &PreparedBody) -> Result<()> {
    conn.execute(
        "INSERT INTO blobs(hash, data, info, refs) VALUES (?1, ?2, ?3, 0) ON CONFLICT(hash) DO NOTHING",
        params![body.hash, body.raw, body.info_json],
    )?;
    Ok(())
}

fn add_ref(conn: &Connection, hash: &str) -> Result<()> {
    conn.execute("UPDATE blobs SET refs = refs + 1 WHERE hash = ?1", [hash])?;
    Ok(())
}

fn release_blob(conn: &Connection, hash: &str) -> Result<()> {
    conn.execute("UPDATE blobs SET refs = refs - 1 WHERE hash = ?1", [hash])?;
    conn.execute("DELETE FROM blobs WHERE hash = ?1 AND refs <= 0", [hash])?;
    Ok(())
}

fn account_of(conn: &Connection, mailbox: MailboxId) -> Result<AccountId> {
    Ok(mailboxes::require(conn, mailbox)?.account_id)
}

/// Check the account can take `count` more messages totalling `bytes`, and
/// charge it. `permanent` in the error means it could never fit.
fn charge(conn: &Connection, account: AccountId, bytes: u64, count: u64) -> Result<()> {
    let (address, qb, qm, ub, um): (String, i64, i64, i64, i64) = conn.query_row(
        "SELECT address, quota_bytes, quota_messages, used_bytes, used_messages FROM accounts WHERE id = ?1",
        [account],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let (qb, qm, ub, um) = (qb as u64, qm as u64, ub as u64, um as u64);
    let over_bytes = qb > 0 && ub.saturating_add(bytes) > qb;
    let over_count = qm > 0 && um.saturating_add(count) > qm;
    if over_bytes || over_count {
        let permanent = (qb > 0 && bytes > qb) || (qm > 0 && count > qm);
        return Err(StoreError::QuotaExceeded {
            account: address,
            permanent,
        });
    }
    conn.execute(
        "UPDATE accounts SET used_bytes = used_bytes + ?1, used_messages = used_messages + ?2 WHERE id = ?3",
        params![bytes as i64, count as i64, account],
    )?;
    Ok(())
}

fn uncharge(conn: &Connection, account: AccountId, bytes: u64, count: u64) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET used_bytes = MAX(0, used_bytes - ?1), used_messages = MAX(0, used_messages - ?2)
         WHERE id = ?3",
        params![bytes as i64, count as i64, account],
    )?;
    Ok(())
}

/// Insert one message row at the mailbox's next UID.
fn insert(
    conn: &Connection,
    mailbox: MailboxId,
    modseq: u64,
    flags: &[String],
    internal_date: i64,
    size: u64,
    hash: &str,
) -> Result<(u32, MessageId)> {
    let uid: i64 = conn.query_row(
        "UPDATE mailboxes SET uid_next = uid_next + 1 WHERE id = ?1 RETURNING uid_next - 1",
        [mailbox],
        |r| r.get(0),
    )?;
    if uid >= u32::MAX as i64 {
        return Err(StoreError::Invalid("mailbox UID space exhausted".into()));
    }
    conn.execute(
        "INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, blob)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            mailbox,
            uid,
            modseq as i64,
            flags_to_text(flags),
            internal_date,
            size as i64,
            hash
        ],
    )?;
    add_ref(conn, hash)?;
    Ok((uid as u32, conn.last_insert_rowid()))
}

pub(super) fn deliver(conn: &Connection, body: &PreparedBody, targets: &[DeliveryTarget]) -> Result<DeliveryReport> {
    put_blob(conn, body)?;
    let size = body.raw.len() as u64;
    let mut report = DeliveryReport::default();
    let mut done: Vec<(AccountId, MailboxId)> = Vec::new();
    for t in targets {
        let mb = match mailboxes::by_name(conn, t.account_id, &t.mailbox)? {
            Some(m) => m,
            None => mailboxes::by_name(conn, t.account_id, "INBOX")?
                .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {}", t.account_id)))?,
        };
        if done.contains(&(t.account_id, mb.id)) || report.over_quota.iter().any(|(a, _)| *a == t.account_id) {
            continue;
        }
        match charge(conn, t.account_id, size, 1) {
            Ok(()) => {}
            Err(StoreError::QuotaExceeded { permanent, .. }) => {
                report.over_quota.push((t.account_id, permanent));
                continue;
            }
            Err(e) => return Err(e),
        }
        let modseq = mailboxes::bump_modseq(conn, mb.id)?;
        let mut flags = body.flags.clone();
        flags.extend(t.flags.iter().cloned());
        let (uid, _) = insert(
            conn,
            mb.id,
            modseq,
            &normalize_flags(&flags),
            body.internal_date,
            size,
            &body.hash,
        )?;
        done.push((t.account_id, mb.id));
        report.delivered.push((t.account_id, mb.id, uid));
    }
    conn.execute("DELETE FROM blobs WHERE hash = ?1 AND refs <= 0", [&body.hash])?;
    Ok(report)
}

pub(super) fn append(conn: &Connection, mailbox: MailboxId, body: &PreparedBody) -> Result<Appended> {
    let mb = mailboxes::require(conn, mailbox)?;
    let size = body.raw.len() as u64;
    charge(conn, mb.account_id, size, 1)?;
    put_blob(conn, body)?;
    let modseq = mailboxes::bump_modseq(conn, mailbox)?;
    let (uid, id) = insert(conn, mailbox, modseq, &body.flags, body.internal_date, size, &body.hash)?;
    Ok(Appended {
        uid_validity: mb.uid_validity,
        uid,
        id,
    })
}

pub(super) fn store_flags(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[u32],
    op: FlagOp,
    flags: &[String],
) -> Result<Vec<MessageMeta>> {
    let flags = normalize_flags(flags);
    let mut changed = Vec::new();
    let mut modseq: Option<u64> = None;
    let mut get = conn.prepare_cached(&format!(
        "SELECT {META} FROM messages WHERE mailbox_id = ?1 AND uid = ?2"
    ))?;
    for &uid in uids {
        let Some(mut meta) = get.query_row(params![mailbox, uid as i64], meta_row).optional()? else {
            continue;
        };
        let new = match op {
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
        let ms = match modseq {
            Some(m) => m,
            None => {
                let m = mailboxes::bump_modseq(conn, mailbox)?;
                modseq = Some(m);
                m
            }
        };
        conn.execute(
            "UPDATE messages SET flags = ?1, modseq = ?2 WHERE id = ?3",
            params![flags_to_text(&new), ms as i64, meta.id],
        )?;
        meta.flags = new;
        meta.modseq = ms;
        changed.push(meta);
    }
    Ok(changed)
}

/// Remove messages by UID, remembering them as expunged. Returns the UIDs
/// that existed, ascending.
pub(super) fn remove_uids(conn: &Connection, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>> {
    let account = account_of(conn, mailbox)?;
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut removed = Vec::new();
    let mut modseq: Option<u64> = None;
    let (mut bytes, mut count) = (0u64, 0u64);
    let now = crate::unix_now();
    for uid in sorted {
        let row: Option<(MessageId, i64, String)> = conn
            .query_row(
                "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING id, size, blob",
                params![mailbox, uid as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, size, blob)) = row else { continue };
        let ms = match modseq {
            Some(m) => m,
            None => {
                let m = mailboxes::bump_modseq(conn, mailbox)?;
                modseq = Some(m);
                m
            }
        };
        // The tombstone keeps the blob's reference until the grace period ends.
        conn.execute(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq, message_id, blob, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![mailbox, uid as i64, ms as i64, id, blob, now],
        )?;
        bytes += size as u64;
        count += 1;
        removed.push(uid);
    }
    uncharge(conn, account, bytes, count)?;
    release_expired(conn, now)?;
    Ok(removed)
}

pub(super) fn expunge(conn: &Connection, mailbox: MailboxId, only: Option<&[u32]>) -> Result<Vec<u32>> {
    let only: Option<std::collections::HashSet<u32>> = only.map(|set| set.iter().copied().collect());
    let deleted: Vec<u32> = list(conn, mailbox)?
        .into_iter()
        .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
        .map(|m| m.uid)
        .filter(|uid| only.as_ref().is_none_or(|set| set.contains(uid)))
        .collect();
    remove_uids(conn, mailbox, &deleted)
}

pub(super) fn delete_ids(conn: &Connection, mailbox: MailboxId, ids: &[MessageId]) -> Result<Vec<u32>> {
    let mut st = conn.prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 AND id = ?2")?;
    let mut uids = Vec::new();
    for id in ids {
        if let Some(uid) = st.query_row(params![mailbox, id], |r| r.get::<_, i64>(0)).optional()? {
            uids.push(uid as u32);
        }
    }
    remove_uids(conn, mailbox, &uids)
}

pub(super) fn copy(conn: &Connection, from: MailboxId, uids: &[u32], to: MailboxId) -> Result<Copied> {
    let src = mailboxes::require(conn, from)?;
    let dst = mailboxes::require(conn, to)?;
    if src.account_id != dst.account_id {
        return Err(StoreError::Invalid("cannot copy between accounts".into()));
    }
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut get = conn
        .prepare_cached("SELECT flags, internal_date, size, blob FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
    let mut rows = Vec::new();
    for uid in sorted {
        if let Some(r) = get
            .query_row(params![from, uid as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()?
        {
            rows.push((uid, r));
        }
    }
    let mut out = Copied {
        uid_validity: dst.uid_validity,
        uids: Vec::new(),
    };
    if rows.is_empty() {
        return Ok(out);
    }
    let total: u64 = rows.iter().map(|(_, r)| r.2 as u64).sum();
    charge(conn, dst.account_id, total, rows.len() as u64)?;
    let modseq = mailboxes::bump_modseq(conn, to)?;
    for (uid, (flags, date, size, blob)) in rows {
        let (new_uid, _) = insert(conn, to, modseq, &flags_from_text(&flags), date, size as u64, &blob)?;
        out.uids.push((uid, new_uid));
    }
    Ok(out)
}

/// Remove every message of a mailbox without recording expunges (the
/// mailbox itself is going away).
pub(super) fn remove_all(conn: &Connection, mailbox: MailboxId) -> Result<()> {
    let uids: Vec<u32> = list(conn, mailbox)?.iter().map(|m| m.uid).collect();
    remove_uids(conn, mailbox, &uids)?;
    Ok(())
}
