//! The outbound queue's storage.
//!
//! A worker claims due entries with a lease (owner + expiry) so that several
//! workers, or several nodes on a shared database, never send one entry at
//! the same time; an expired lease (a crashed worker) makes the entry
//! claimable again. Recipient outcomes are written as they happen, so a crash
//! resends only what was in flight.

use super::now;
use crate::{
    AttemptEnd, ChangeEvent, OutboundMessage, OutboundRecipient, QueueEntry, QueueRecipient, RecipientOutcome,
    RecipientStatus, Result, StoreError,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) fn enqueue(conn: &Connection, m: &OutboundMessage) -> Result<i64> {
    insert(conn, m, &[])
}

/// Queue `m` for its remote recipients plus `bounces`: recipients that
/// failed before the queue saw them (address, reason), in
/// [`RecipientStatus::Bounce`], each with its NOTIFY and ORCPT, whose
/// report the worker sends at its first attempt.
pub(super) fn insert(conn: &Connection, m: &OutboundMessage, bounces: &[(OutboundRecipient, &str)]) -> Result<i64> {
    if m.recipients.is_empty() && bounces.is_empty() {
        return Err(StoreError::Invalid("an outbound message needs recipients".into()));
    }
    let t = now();
    conn.execute(
        "INSERT INTO queue(sender, raw, envid, ret, created, next_attempt) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![m.sender, m.raw, m.envid, m.ret, t],
    )?;
    let id = conn.last_insert_rowid();
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO queue_recipients(queue_id, address, notify, orcpt, updated) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for r in &m.recipients {
        st.execute(params![id, r.address, r.notify, r.orcpt, t])?;
    }
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO queue_recipients(queue_id, address, notify, orcpt, updated, status, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, 'bounce', ?6)",
    )?;
    for (r, reason) in bounces {
        st.execute(params![id, r.address, r.notify, r.orcpt, t, reason])?;
    }
    Ok(id)
}

const ENTRY_COLUMNS: &str =
    "id, sender, envid, ret, length(raw), created, attempts, next_attempt, warned, lease_owner, lease_until";

fn entry_row(r: &Row) -> rusqlite::Result<QueueEntry> {
    Ok(QueueEntry {
        id: r.get(0)?,
        sender: r.get(1)?,
        envid: r.get(2)?,
        ret: r.get(3)?,
        recipients: Vec::new(),
        size: r.get::<_, i64>(4)? as u64,
        created: r.get(5)?,
        attempts: r.get::<_, i64>(6)? as u32,
        next_attempt: r.get(7)?,
        warned: r.get::<_, i64>(8)? != 0,
        lease_owner: r.get(9)?,
        lease_until: r.get(10)?,
    })
}

fn fill_recipients(conn: &Connection, entries: &mut [QueueEntry]) -> Result<()> {
    let mut rs = conn.prepare_cached(
        "SELECT address, notify, orcpt, status, last_error, remote_mta FROM queue_recipients
         WHERE queue_id = ?1 ORDER BY address",
    )?;
    for e in entries {
        e.recipients = rs
            .query_map([e.id], |r| {
                Ok(QueueRecipient {
                    address: r.get(0)?,
                    notify: r.get(1)?,
                    orcpt: r.get(2)?,
                    status: RecipientStatus::parse(&r.get::<_, String>(3)?),
                    last_error: r.get(4)?,
                    remote_mta: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

pub(super) fn list(conn: &Connection) -> Result<Vec<QueueEntry>> {
    let mut st = conn.prepare(&format!("SELECT {ENTRY_COLUMNS} FROM queue ORDER BY id"))?;
    let mut entries: Vec<QueueEntry> = st.query_map([], entry_row)?.collect::<Result<_, _>>()?;
    fill_recipients(conn, &mut entries)?;
    Ok(entries)
}

pub(super) fn get(conn: &Connection, id: i64) -> Result<Option<QueueEntry>> {
    let entry = conn
        .query_row(
            &format!("SELECT {ENTRY_COLUMNS} FROM queue WHERE id = ?1"),
            [id],
            entry_row,
        )
        .optional()?;
    Ok(match entry {
        Some(e) => {
            let mut v = [e];
            fill_recipients(conn, &mut v)?;
            let [e] = v;
            Some(e)
        }
        None => None,
    })
}

pub(super) fn raw(conn: &Connection, id: i64) -> Result<Vec<u8>> {
    conn.query_row("SELECT raw FROM queue WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("queue entry {id}")))
}

/// Lease up to `limit` due entries to `owner` until `now + lease_secs`.
pub(super) fn claim(conn: &Connection, owner: &str, at: i64, lease_secs: i64, limit: usize) -> Result<Vec<QueueEntry>> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM queue WHERE next_attempt <= ?1 AND (lease_owner IS NULL OR lease_until <= ?1)
             ORDER BY next_attempt, id LIMIT ?2",
        )?
        .query_map(params![at, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        conn.execute(
            "UPDATE queue SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
            params![id, owner, at + lease_secs],
        )?;
        if let Some(e) = get(conn, id)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Write recipient outcomes; only pending recipients change, and a
/// recipient owed a bounce only to failed (its report went out) or stays,
/// so a late report can never undo a final state.
pub(super) fn record(conn: &Connection, id: i64, outcomes: &[RecipientOutcome]) -> Result<Vec<ChangeEvent>> {
    let mut st = conn.prepare_cached(
        "UPDATE queue_recipients SET status = ?3, last_error = COALESCE(?4, last_error),
         remote_mta = COALESCE(?5, remote_mta), updated = ?6
         WHERE queue_id = ?1 AND address = ?2
           AND (status = 'pending' OR (status = 'bounce' AND ?3 IN ('failed', 'bounce')))",
    )?;
    let t = now();
    for o in outcomes {
        st.execute(params![id, o.address, o.status.as_str(), o.error, o.remote_mta, t])?;
    }
    super::submission::record(conn, id, outcomes)
}

/// Finish an attempt: record outcomes, then either remove the entry (nothing
/// pending, no bounce owed) or schedule the next attempt and release the lease. Returns
/// whether the entry was removed. Ignored when `owner` no longer holds the lease.
pub(super) fn finish(conn: &Connection, id: i64, owner: &str, end: &AttemptEnd) -> Result<(bool, Vec<ChangeEvent>)> {
    let held: Option<Option<String>> = conn
        .query_row("SELECT lease_owner FROM queue WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    match held {
        None => return Ok((true, Vec::new())),
        Some(Some(o)) if o == owner => {}
        Some(_) => return Ok((false, Vec::new())),
    }
    let events = record(conn, id, &end.outcomes)?;
    let pending: i64 = conn.query_row(
        "SELECT count(*) FROM queue_recipients WHERE queue_id = ?1 AND status IN ('pending', 'bounce')",
        [id],
        |r| r.get(0),
    )?;
    if pending == 0 {
        delete(conn, id)?;
        return Ok((true, events));
    }
    conn.execute(
        "UPDATE queue SET attempts = attempts + 1, next_attempt = ?2, warned = warned OR ?3,
         lease_owner = NULL, lease_until = 0 WHERE id = ?1",
        params![id, end.next_attempt, end.warned],
    )?;
    Ok((false, events))
}

pub(super) fn delete(conn: &Connection, id: i64) -> Result<bool> {
    // A submission's recipients still waiting will never hear more.
    conn.execute(
        "UPDATE submission_recipients SET delivered = 'unknown'
         WHERE delivered = 'queued' AND submission_id = (SELECT submission_id FROM queue WHERE id = ?1)",
        [id],
    )?;
    conn.execute("DELETE FROM queue_recipients WHERE queue_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM queue WHERE id = ?1", [id])? > 0)
}

/// Make entries due now (one, or all with `None`). Returns how many.
pub(super) fn retry(conn: &Connection, id: Option<i64>) -> Result<usize> {
    let t = now();
    Ok(match id {
        Some(id) => conn.execute("UPDATE queue SET next_attempt = ?2 WHERE id = ?1", params![id, t])?,
        None => conn.execute("UPDATE queue SET next_attempt = ?1", [t])?,
    })
}

/// Drop every lease `owner` holds: after a restart its old work is not running.
pub(super) fn release(conn: &Connection, owner: &str) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE queue SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?1",
        [owner],
    )?)
}
