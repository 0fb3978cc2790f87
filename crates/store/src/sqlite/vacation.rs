//! Vacation settings and replies (crate::vacation).

use crate::changes::{ChangeOp, DataType};
use crate::vacation::{MAX_VACATION_SENDERS, MAX_VACATION_TEXT};
use crate::{AccountId, ChangeEvent, ChangeKind, Result, StoreError, Vacation};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn get(conn: &Connection, account: AccountId) -> Result<Vacation> {
    Ok(conn
        .prepare_cached(
            "SELECT enabled, from_date, to_date, subject, text_body, html_body FROM vacation WHERE account_id = ?1",
        )?
        .query_row([account], |r| {
            Ok(Vacation {
                enabled: r.get(0)?,
                from_date: r.get(1)?,
                to_date: r.get(2)?,
                subject: r.get(3)?,
                text_body: r.get(4)?,
                html_body: r.get(5)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

pub(super) fn set(conn: &Connection, account: AccountId, v: &Vacation) -> Result<Vec<ChangeEvent>> {
    let texts = [&v.subject, &v.text_body, &v.html_body];
    if texts
        .iter()
        .any(|t| t.as_ref().is_some_and(|t| t.len() > MAX_VACATION_TEXT))
    {
        return Err(StoreError::Invalid(format!(
            "vacation subject and bodies: at most {MAX_VACATION_TEXT} bytes each"
        )));
    }
    if v.subject.as_ref().is_some_and(|s| s.contains(['\r', '\n'])) {
        return Err(StoreError::Invalid("vacation subject: one line".into()));
    }
    let mut op = super::messages::Op::new(account);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO vacation(account_id, enabled, from_date, to_date, subject, text_body, html_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        account,
        v.enabled,
        v.from_date,
        v.to_date,
        v.subject,
        v.text_body,
        v.html_body
    ])?;
    conn.execute("DELETE FROM vacation_replies WHERE account_id = ?1", [account])?;
    op.log(conn, DataType::VacationResponse, 1, ChangeOp::Updated)?;
    Ok(vec![ChangeEvent {
        account_id: account,
        mailbox_id: None,
        kind: ChangeKind::Settings,
    }])
}

pub(super) fn reply_due(conn: &Connection, account: AccountId, sender: &str, now: i64, period: i64) -> Result<bool> {
    let sender = sender.to_ascii_lowercase();
    let last: Option<i64> = conn
        .prepare_cached("SELECT sent_at FROM vacation_replies WHERE account_id = ?1 AND sender = ?2")?
        .query_row(params![account, sender], |r| r.get(0))
        .optional()?;
    if last.is_some_and(|t| now - t < period && t <= now) {
        return Ok(false);
    }
    conn.prepare_cached("INSERT OR REPLACE INTO vacation_replies(account_id, sender, sent_at) VALUES (?1, ?2, ?3)")?
        .execute(params![account, sender, now])?;
    // Bounded memory: forget the longest-ago senders past the cap.
    conn.prepare_cached(
        "DELETE FROM vacation_replies WHERE account_id = ?1 AND sender IN (
             SELECT sender FROM vacation_replies WHERE account_id = ?1
             ORDER BY sent_at DESC LIMIT -1 OFFSET ?2)",
    )?
    .execute(params![account, MAX_VACATION_SENDERS])?;
    Ok(true)
}
