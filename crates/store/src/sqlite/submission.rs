//! EmailSubmission records (crate::submission) in SQLite.

use super::messages::Op;
use super::now;
use crate::changes::{ChangeOp, DataType};
use crate::submission::{
    Cancel, Delivered, IdentitySettings, NewSubmission, Submission, SubmissionRecipient, SubmissionRelease, UndoStatus,
    MAX_IDENTITY_NAME, MAX_PENDING_SUBMISSIONS, MAX_SIGNATURE, MAX_SUBMISSION_RECIPIENTS,
};
use crate::{AccountId, ChangeEvent, ChangeKind, RecipientOutcome, RecipientStatus, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str =
    "id, account_id, identity, email_id, thread_id, mail_from, rcpt_to, envelope, send_at, undo_status, queue_id, created";

fn row(r: &Row) -> rusqlite::Result<Submission> {
    let rcpt: String = r.get(6)?;
    Ok(Submission {
        id: r.get(0)?,
        account: r.get(1)?,
        identity: r.get(2)?,
        email_id: r.get(3)?,
        thread_id: r.get(4)?,
        mail_from: r.get(5)?,
        rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
        envelope: r.get(7)?,
        send_at: r.get(8)?,
        undo_status: UndoStatus::parse(&r.get::<_, String>(9)?),
        queue_id: r.get(10)?,
        recipients: Vec::new(),
        created: r.get(11)?,
    })
}

fn event(account: AccountId) -> ChangeEvent {
    ChangeEvent {
        account_id: account,
        mailbox_id: None,
        kind: ChangeKind::Settings,
    }
}

fn fill(conn: &Connection, subs: &mut [Submission]) -> Result<()> {
    let mut st = conn.prepare_cached(
        "SELECT address, delivered, smtp_reply FROM submission_recipients WHERE submission_id = ?1 ORDER BY address",
    )?;
    for s in subs {
        s.recipients = st
            .query_map([s.id], |r| {
                Ok(SubmissionRecipient {
                    address: r.get(0)?,
                    delivered: Delivered::parse(&r.get::<_, String>(1)?),
                    smtp_reply: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(())
}

fn log(conn: &Connection, account: AccountId, id: i64, op: ChangeOp) -> Result<ChangeEvent> {
    Op::new(account).log(conn, DataType::EmailSubmission, id, op)?;
    Ok(event(account))
}

pub(super) fn create(
    conn: &Connection,
    account: AccountId,
    new: &NewSubmission,
) -> Result<(Submission, Vec<ChangeEvent>)> {
    if new.rcpt_to.is_empty() || new.rcpt_to.len() > MAX_SUBMISSION_RECIPIENTS {
        return Err(StoreError::Invalid(format!(
            "a submission has 1 to {MAX_SUBMISSION_RECIPIENTS} recipients"
        )));
    }
    let pending: i64 = conn
        .prepare_cached("SELECT count(*) FROM submissions WHERE account_id = ?1 AND undo_status = 'pending'")?
        .query_row([account], |r| r.get(0))?;
    if pending as usize >= MAX_PENDING_SUBMISSIONS {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_PENDING_SUBMISSIONS} submissions may wait to be sent"
        )));
    }
    let t = now();
    conn.prepare_cached(
        "INSERT INTO submissions(account_id, identity, email_id, thread_id, mail_from, rcpt_to, envelope, send_at,
         undo_status, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
    )?
    .execute(params![
        account,
        new.identity,
        new.email_id,
        new.thread_id,
        new.mail_from,
        serde_json::to_string(&new.rcpt_to)?,
        new.envelope,
        new.send_at,
        t
    ])?;
    let id = conn.last_insert_rowid();
    let ev = log(conn, account, id, ChangeOp::Created)?;
    let sub = get(conn, Some(account), id)?.ok_or_else(|| StoreError::NotFound(format!("submission {id}")))?;
    Ok((sub, vec![ev]))
}

fn get(conn: &Connection, account: Option<AccountId>, id: i64) -> Result<Option<Submission>> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM submissions WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?
        .filter(|s| account.is_none_or(|a| a == s.account));
    Ok(match found {
        Some(s) => {
            let mut v = [s];
            fill(conn, &mut v)?;
            let [s] = v;
            Some(s)
        }
        None => None,
    })
}

pub(super) fn list(conn: &Connection, account: AccountId, ids: Option<&[i64]>) -> Result<Vec<Submission>> {
    let mut out = match ids {
        Some(ids) => {
            let mut v = Vec::with_capacity(ids.len());
            for &id in ids {
                if let Some(s) = get(conn, Some(account), id)? {
                    v.push(s);
                }
            }
            return Ok(v);
        }
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM submissions WHERE account_id = ?1 ORDER BY id"
            ))?
            .query_map([account], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    fill(conn, &mut out)?;
    Ok(out)
}

pub(super) fn cancel(conn: &Connection, account: AccountId, id: i64) -> Result<(Cancel, Vec<ChangeEvent>)> {
    let Some(s) = get(conn, Some(account), id)? else {
        return Ok((Cancel::NotFound, Vec::new()));
    };
    if s.undo_status != UndoStatus::Pending {
        return Ok((Cancel::NotPending, Vec::new()));
    }
    conn.execute(
        "UPDATE submissions SET undo_status = 'canceled' WHERE id = ?1 AND undo_status = 'pending'",
        [id],
    )?;
    Ok((Cancel::Canceled, vec![log(conn, account, id, ChangeOp::Updated)?]))
}

pub(super) fn destroy(conn: &Connection, account: AccountId, id: i64) -> Result<(bool, Vec<ChangeEvent>)> {
    if get(conn, Some(account), id)?.is_none() {
        return Ok((false, Vec::new()));
    }
    remove(conn, id)?;
    Ok((true, vec![log(conn, account, id, ChangeOp::Destroyed)?]))
}

fn remove(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM submission_recipients WHERE submission_id = ?1", [id])?;
    conn.execute("DELETE FROM submissions WHERE id = ?1", [id])?;
    // A queue entry that outlives its record stops reporting to it.
    conn.execute("UPDATE queue SET submission_id = NULL WHERE submission_id = ?1", [id])?;
    Ok(())
}

pub(super) fn due(conn: &Connection, at: i64, limit: usize) -> Result<Vec<Submission>> {
    let mut out = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM submissions WHERE undo_status = 'pending' AND send_at <= ?1
             ORDER BY send_at, id LIMIT ?2"
        ))?
        .query_map(params![at, limit as i64], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    fill(conn, &mut out)?;
    Ok(out)
}

/// The earliest send time of a pending submission.
pub(super) fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT MIN(send_at) FROM submissions WHERE undo_status = 'pending'")?
        .query_row([], |r| r.get(0))?)
}

fn set_recipient(conn: &Connection, id: i64, address: &str, delivered: Delivered, reply: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO submission_recipients(submission_id, address, delivered, smtp_reply)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, address.to_lowercase(), delivered.as_str(), reply])?;
    Ok(())
}

/// A pending submission that cannot be sent (its email is gone): final,
/// every recipient `no` with `reason`.
pub(super) fn fail(conn: &Connection, id: i64, reason: &str) -> Result<Vec<ChangeEvent>> {
    let Some(s) = get(conn, None, id)? else {
        return Ok(Vec::new());
    };
    let n = conn.execute(
        "UPDATE submissions SET undo_status = 'final' WHERE id = ?1 AND undo_status = 'pending'",
        [id],
    )?;
    if n == 0 {
        return Ok(Vec::new());
    }
    for r in &s.rcpt_to {
        set_recipient(conn, id, r, Delivered::No, reason)?;
    }
    Ok(vec![log(conn, s.account, id, ChangeOp::Updated)?])
}

/// Inside an intake: the pending submission turns final, linked to its
/// queue entry, or the intake fails (canceled, or released elsewhere).
pub(super) fn release(conn: &Connection, rel: &SubmissionRelease, queue_id: Option<i64>) -> Result<ChangeEvent> {
    let account: Option<AccountId> = conn
        .query_row(
            "UPDATE submissions SET undo_status = 'final', queue_id = ?2
             WHERE id = ?1 AND undo_status = 'pending' RETURNING account_id",
            params![rel.id, queue_id],
            |r| r.get(0),
        )
        .optional()?;
    let account = account.ok_or_else(|| StoreError::NotFound(format!("pending submission {}", rel.id)))?;
    for a in &rel.local {
        set_recipient(
            conn,
            rel.id,
            a,
            Delivered::Yes,
            "250 2.1.5 delivered to a local mailbox",
        )?;
    }
    for a in &rel.remote {
        set_recipient(conn, rel.id, a, Delivered::Queued, "250 2.1.5 queued for delivery")?;
    }
    if let Some(q) = queue_id {
        conn.execute("UPDATE queue SET submission_id = ?2 WHERE id = ?1", params![q, rel.id])?;
    }
    log(conn, account, rel.id, ChangeOp::Updated)
}

/// The queue recorded outcomes for entry `queue_id`: its submission's
/// recipients follow.
pub(super) fn record(conn: &Connection, queue_id: i64, outcomes: &[RecipientOutcome]) -> Result<Vec<ChangeEvent>> {
    let sub: Option<Option<i64>> = conn
        .prepare_cached("SELECT submission_id FROM queue WHERE id = ?1")?
        .query_row([queue_id], |r| r.get(0))
        .optional()?;
    let Some(Some(id)) = sub else {
        return Ok(Vec::new());
    };
    let Some(account) = conn
        .prepare_cached("SELECT account_id FROM submissions WHERE id = ?1")?
        .query_row([id], |r| r.get::<_, AccountId>(0))
        .optional()?
    else {
        return Ok(Vec::new());
    };
    let mut changed = false;
    for o in outcomes {
        let reply = |default: String| o.error.clone().unwrap_or(default);
        let (delivered, reply) = match o.status {
            RecipientStatus::Delivered => (
                Delivered::Yes,
                reply(match &o.remote_mta {
                    Some(mta) => format!("250 2.0.0 accepted by {mta}"),
                    None => "250 2.0.0 accepted by the next server".into(),
                }),
            ),
            RecipientStatus::Failed | RecipientStatus::Bounce => {
                (Delivered::No, reply("550 5.0.0 delivery failed".into()))
            }
            RecipientStatus::Pending => (Delivered::Queued, reply("451 4.0.0 will retry".into())),
        };
        let n = conn
            .prepare_cached(
                "UPDATE submission_recipients SET delivered = ?3, smtp_reply = ?4
                 WHERE submission_id = ?1 AND address = ?2",
            )?
            .execute(params![id, o.address.to_lowercase(), delivered.as_str(), reply])?;
        changed |= n > 0;
    }
    Ok(if changed {
        vec![log(conn, account, id, ChangeOp::Updated)?]
    } else {
        Vec::new()
    })
}

/// Remove finished submissions created before `before`.
pub(super) fn purge(conn: &Connection, before: i64) -> Result<Vec<ChangeEvent>> {
    let old: Vec<(i64, AccountId)> = conn
        .prepare_cached(
            "SELECT id, account_id FROM submissions WHERE undo_status != 'pending' AND created < ?1 LIMIT 1000",
        )?
        .query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut events = Vec::new();
    for (id, account) in old {
        remove(conn, id)?;
        let ev = log(conn, account, id, ChangeOp::Destroyed)?;
        if !events.contains(&ev) {
            events.push(ev);
        }
    }
    Ok(events)
}

pub(super) fn identity_settings(conn: &Connection, account: AccountId) -> Result<Vec<IdentitySettings>> {
    Ok(conn
        .prepare_cached(
            "SELECT address, name, reply_to, bcc, text_signature, html_signature FROM identity_settings
             WHERE account_id = ?1 ORDER BY address",
        )?
        .query_map([account], |r| {
            Ok(IdentitySettings {
                address: r.get(0)?,
                name: r.get(1)?,
                reply_to: r.get(2)?,
                bcc: r.get(3)?,
                text_signature: r.get(4)?,
                html_signature: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

pub(super) fn set_identity(
    conn: &Connection,
    account: AccountId,
    object_id: i64,
    s: &IdentitySettings,
) -> Result<Vec<ChangeEvent>> {
    if s.name.len() > MAX_IDENTITY_NAME || s.name.contains(['\r', '\n']) {
        return Err(StoreError::Invalid(format!(
            "an identity name is one line of at most {MAX_IDENTITY_NAME} bytes"
        )));
    }
    if s.text_signature.len() > MAX_SIGNATURE || s.html_signature.len() > MAX_SIGNATURE {
        return Err(StoreError::Invalid(format!(
            "a signature has at most {MAX_SIGNATURE} bytes"
        )));
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO identity_settings(account_id, address, name, reply_to, bcc, text_signature,
         html_signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        account,
        s.address.to_lowercase(),
        s.name,
        s.reply_to,
        s.bcc,
        s.text_signature,
        s.html_signature
    ])?;
    Op::new(account).log(conn, DataType::Identity, object_id, ChangeOp::Updated)?;
    Ok(vec![event(account)])
}
