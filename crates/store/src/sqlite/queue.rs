//! The outbound queue's storage.

use super::now;
use crate::{OutboundMessage, OutboundRecipient, QueueEntry, Result, StoreError};
use rusqlite::{params, Connection};

pub(super) fn enqueue(conn: &Connection, m: &OutboundMessage) -> Result<i64> {
    if m.recipients.is_empty() {
        return Err(StoreError::Invalid("an outbound message needs recipients".into()));
    }
    conn.execute(
        "INSERT INTO queue(sender, raw, envid, ret, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![m.sender, m.raw, m.envid, m.ret, now()],
    )?;
    let id = conn.last_insert_rowid();
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO queue_recipients(queue_id, address, notify, orcpt) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in &m.recipients {
        st.execute(params![id, r.address, r.notify, r.orcpt])?;
    }
    Ok(id)
}

pub(super) fn list(conn: &Connection) -> Result<Vec<QueueEntry>> {
    let mut st = conn.prepare("SELECT id, sender, length(raw), created FROM queue ORDER BY id")?;
    let mut entries: Vec<QueueEntry> = st
        .query_map([], |r| {
            Ok(QueueEntry {
                id: r.get(0)?,
                sender: r.get(1)?,
                recipients: Vec::new(),
                size: r.get::<_, i64>(2)? as u64,
                created: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut rs = conn
        .prepare_cached("SELECT address, notify, orcpt FROM queue_recipients WHERE queue_id = ?1 ORDER BY address")?;
    for e in &mut entries {
        e.recipients = rs
            .query_map([e.id], |r| {
                Ok(OutboundRecipient {
                    address: r.get(0)?,
                    notify: r.get(1)?,
                    orcpt: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(entries)
}
