//! The account-wide writes JMAP needs (RFC 8621 §4.6 Email/set updates
//! and destroys, §4.8 import, RFC 8620 §6 uploads), on the same `Op`
//! machinery as IMAP's writes: one modseq per call, change-log rows for
//! Email, Mailbox and Thread, and events for IMAP sessions.

use super::mailboxes;
use super::messages::{self, Op};
use crate::changes::{ChangeOp, DataType};
use crate::flags::{imap_flags, normalize_flags, DELETED};
use crate::prepare::PreparedBody;
use crate::{
    AccountId, ChangeEvent, ChangeKind, EmailId, EmailMeta, EmailPatch, MailboxCounts, MailboxId, PatchOutcome, Result,
    StoreError, UploadedBlob,
};
use rusqlite::{params, Connection, OptionalExtension};

/// How long an upload stays readable (RFC 8620 §6.1 asks for at least an hour).
pub const UPLOAD_TTL_SECS: i64 = 24 * 3600;
/// Most bytes of unexpired uploads one account may hold.
pub const MAX_UPLOAD_BYTES_PER_ACCOUNT: i64 = 1 << 30;

fn check_mailboxes(
    conn: &Connection,
    account: AccountId,
    ids: &[MailboxId],
) -> Result<std::result::Result<(), String>> {
    for &m in ids {
        match mailboxes::account_of(conn, m) {
            Ok(a) if a == account => {}
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(Err(format!("no mailbox {m}"))),
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// One patch inside the caller's transaction.
fn patch_one(conn: &Connection, op: &mut Op, id: EmailId, p: &EmailPatch) -> Result<PatchOutcome> {
    let account = op.account;
    let Some(keywords) = conn
        .prepare_cached("SELECT keywords FROM emails WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![id, account], |r| r.get::<_, String>(0))
        .optional()?
    else {
        return Ok(PatchOutcome::NotFound);
    };
    // (mailbox, uid, deleted) of every membership.
    let members: Vec<(MailboxId, u32, bool)> = conn
        .prepare_cached("SELECT mailbox_id, uid, deleted FROM email_mailboxes WHERE email_id = ?1")?
        .query_map([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u32, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let visible: Vec<MailboxId> = members.iter().filter(|m| !m.2).map(|m| m.0).collect();
    if visible.is_empty() {
        // Only \Deleted memberships: invisible to JMAP.
        return Ok(PatchOutcome::NotFound);
    }
    let all_flags: Vec<&String> = p
        .keywords
        .iter()
        .flatten()
        .chain(&p.add_keywords)
        .chain(&p.remove_keywords)
        .collect();
    if all_flags.iter().any(|f| same(f, DELETED) || same(f, "\\Recent")) {
        return Ok(PatchOutcome::Invalid("\\Deleted is not a keyword".into()));
    }
    let named: Vec<MailboxId> = p
        .mailboxes
        .iter()
        .flatten()
        .chain(&p.add_mailboxes)
        .chain(&p.remove_mailboxes)
        .copied()
        .collect();
    if let Err(why) = check_mailboxes(conn, account, &named)? {
        return Ok(PatchOutcome::Invalid(why));
    }
    // Keywords.
    let current = imap_flags(&keywords, false);
    let mut next: Vec<String> = p.keywords.clone().unwrap_or_else(|| current.clone());
    next.extend(p.add_keywords.iter().cloned());
    next.retain(|k| !p.remove_keywords.iter().any(|r| same(r, k)));
    let next = normalize_flags(&next);
    // Mailboxes.
    let mut target: Vec<MailboxId> = p.mailboxes.clone().unwrap_or_else(|| visible.clone());
    target.extend(p.add_mailboxes.iter().copied());
    target.retain(|m| !p.remove_mailboxes.contains(m));
    target.sort_unstable();
    target.dedup();
    if target.is_empty() {
        return Ok(PatchOutcome::Invalid("an email must be in at least one mailbox".into()));
    }
    if next != current {
        messages::set_keywords(conn, op, id, &next)?;
    }
    let added: Vec<MailboxId> = target.iter().filter(|m| !visible.contains(m)).copied().collect();
    let removed: Vec<MailboxId> = visible.iter().filter(|m| !target.contains(m)).copied().collect();
    super::spam::learn_from_move(conn, op.account, id, &removed, &added)?;
    let mut changed = false;
    // Add first, so removing never empties the email.
    for &m in target.iter().filter(|m| !visible.contains(m)) {
        if let Some(&(_, uid, _)) = members.iter().find(|x| x.0 == m) {
            // A \Deleted membership there becomes visible again.
            let ms = op.modseq(conn)?;
            conn.prepare_cached(
                "UPDATE email_mailboxes SET deleted = 0, modseq = ?3 WHERE mailbox_id = ?1 AND uid = ?2",
            )?
            .execute(params![m, uid as i64, ms as i64])?;
            op.touch(conn, m, ChangeKind::Flags)?;
        } else {
            messages::add_membership(conn, op, m, id, false)?;
        }
        changed = true;
    }
    for &(m, uid, _) in members.iter().filter(|x| !x.2 && !target.contains(&x.0)) {
        messages::remove_uids(conn, op, m, &[uid])?;
        changed = true;
    }
    if changed {
        op.log(conn, DataType::Email, id, ChangeOp::Updated)?;
        let thread: i64 = conn
            .prepare_cached("SELECT thread_id FROM emails WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        op.log(conn, DataType::Thread, thread, ChangeOp::Updated)?;
    }
    Ok(PatchOutcome::Updated)
}

pub(super) fn update_emails(
    conn: &Connection,
    account: AccountId,
    patches: &[(EmailId, EmailPatch)],
) -> Result<(Vec<PatchOutcome>, Vec<ChangeEvent>)> {
    let mut op = Op::new(account);
    let mut out = Vec::with_capacity(patches.len());
    for (id, p) in patches {
        out.push(patch_one(conn, &mut op, *id, p)?);
    }
    Ok((out, op.events()))
}

pub(super) fn destroy_emails(
    conn: &Connection,
    account: AccountId,
    ids: &[EmailId],
) -> Result<(Vec<bool>, Vec<ChangeEvent>)> {
    let mut op = Op::new(account);
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let owned = conn
            .prepare_cached("SELECT 1 FROM emails WHERE id = ?1 AND account_id = ?2")?
            .query_row(params![id, account], |_| Ok(()))
            .optional()?
            .is_some();
        let members: Vec<(MailboxId, u32, bool)> = if owned {
            conn.prepare_cached("SELECT mailbox_id, uid, deleted FROM email_mailboxes WHERE email_id = ?1")?
                .query_map([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u32, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            Vec::new()
        };
        // An email only in \Deleted memberships does not exist for JMAP.
        if members.iter().all(|m| m.2) {
            out.push(false);
            continue;
        }
        for (m, uid, _) in members {
            messages::remove_uids(conn, &mut op, m, &[uid])?;
        }
        out.push(true);
    }
    Ok((out, op.events()))
}

pub(super) fn import_email(
    conn: &Connection,
    account: AccountId,
    boxes: &[MailboxId],
    body: &PreparedBody,
) -> Result<(EmailMeta, Vec<ChangeEvent>)> {
    let mut boxes = boxes.to_vec();
    boxes.sort_unstable();
    boxes.dedup();
    let Some((&first, rest)) = boxes.split_first() else {
        return Err(StoreError::Invalid("an email must be in at least one mailbox".into()));
    };
    if let Err(why) = check_mailboxes(conn, account, &boxes)? {
        return Err(StoreError::Invalid(why));
    }
    messages::charge(conn, account, body.raw.len() as u64, 1)?;
    messages::put_blob(conn, body)?;
    let mut op = Op::new(account);
    let (id, _) = messages::new_email_in(conn, &mut op, body, &body.flags, first)?;
    let (_, deleted) = crate::flags::split_flags(&body.flags);
    for &m in rest {
        messages::add_membership(conn, &mut op, m, id, deleted)?;
    }
    let meta = messages::emails(conn, account, &[id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("email {id}")))?;
    Ok((meta, op.events()))
}

/// RFC 8621 §2: per-mailbox counts of what JMAP sees (memberships marked
/// `\Deleted` excluded). An email is unread without `$seen`; a thread is
/// unread when one of its emails in the mailbox is unread (RFC 8621 §2
/// "unreadThreads").
pub(super) fn mailbox_counts(conn: &Connection, account: AccountId) -> Result<Vec<MailboxCounts>> {
    let rows: Vec<(MailboxId, i64, i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT b.id,
                    COUNT(m.email_id),
                    COUNT(m.email_id) FILTER (WHERE instr(' ' || e.keywords || ' ', ' \\Seen ') = 0),
                    COUNT(DISTINCT e.thread_id),
                    COUNT(DISTINCT e.thread_id) FILTER (WHERE instr(' ' || e.keywords || ' ', ' \\Seen ') = 0)
             FROM mailboxes b
             LEFT JOIN email_mailboxes m ON m.mailbox_id = b.id AND NOT m.deleted
             LEFT JOIN emails e ON e.id = m.email_id
             WHERE b.account_id = ?1
             GROUP BY b.id",
        )?
        .query_map([account], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .map(|(mailbox, t, u, tt, ut)| MailboxCounts {
            mailbox,
            total_emails: t as u64,
            unread_emails: u as u64,
            total_threads: tt as u64,
            unread_threads: ut as u64,
        })
        .collect())
}

pub(super) fn upload(conn: &Connection, account: AccountId, hash: &str, data: &[u8], now: i64) -> Result<UploadedBlob> {
    conn.prepare_cached("DELETE FROM uploads WHERE expires <= ?1")?
        .execute([now])?;
    let held: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM uploads WHERE account_id = ?1")?
        .query_row([account], |r| r.get(0))?;
    if held + data.len() as i64 > MAX_UPLOAD_BYTES_PER_ACCOUNT {
        return Err(StoreError::QuotaExceeded {
            account: account.to_string(),
            permanent: false,
        });
    }
    let expires = now + UPLOAD_TTL_SECS;
    conn.prepare_cached(
        "INSERT INTO uploads(account_id, hash, data, size, expires) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(account_id, hash) DO UPDATE SET expires = excluded.expires",
    )?
    .execute(params![account, hash, data, data.len() as i64, expires])?;
    Ok(UploadedBlob {
        blob_id: crate::blob_id(hash),
        size: data.len() as u64,
        expires,
    })
}

/// The bytes of a blob the account may read: one of its emails holds it,
/// or its own unexpired upload.
pub(super) fn blob(conn: &Connection, account: AccountId, hash: &str, now: i64) -> Result<Option<Vec<u8>>> {
    let owned = conn
        .prepare_cached("SELECT 1 FROM emails WHERE account_id = ?1 AND blob = ?2 LIMIT 1")?
        .query_row(params![account, hash], |_| Ok(()))
        .optional()?
        .is_some();
    if owned {
        return messages::blob_data(conn, hash).map(Some);
    }
    Ok(conn
        .prepare_cached("SELECT data FROM uploads WHERE account_id = ?1 AND hash = ?2 AND expires > ?3")?
        .query_row(params![account, hash, now], |r| r.get(0))
        .optional()?)
}
