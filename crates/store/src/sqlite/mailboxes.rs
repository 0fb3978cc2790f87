//! Mailboxes: creation with never-reused UIDVALIDITY, rename, delete,
//! subscriptions.

use super::messages::{self, Op};
use super::now;
use crate::{
    normalize_mailbox, AccountId, ChangeEvent, ChangeKind, ChangeOp, DataType, Mailbox, MailboxId, Result, SpecialUse,
    StoreError, HIERARCHY_DELIMITER,
};
use rusqlite::{params, Connection, OptionalExtension};

/// Longest mailbox name accepted, in bytes.
const MAX_NAME_LEN: usize = 1000;
/// Deepest hierarchy accepted.
const MAX_DEPTH: usize = 32;

const COLUMNS: &str = "m.id, m.account_id, m.name, m.uid_validity, m.uid_next, m.highest_modseq, m.special_use,
    EXISTS(SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name),
    m.n_messages, m.n_unseen, m.n_bytes, m.recent_uid";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    let special: Option<String> = r.get(6)?;
    Ok(Mailbox {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        uid_validity: r.get::<_, i64>(3)? as u32,
        uid_next: r.get::<_, i64>(4)? as u32,
        highest_modseq: r.get::<_, i64>(5)? as u64,
        special_use: special.as_deref().and_then(SpecialUse::parse),
        subscribed: r.get(7)?,
        messages: r.get::<_, i64>(8)? as u32,
        unseen: r.get::<_, i64>(9)? as u32,
        size: r.get::<_, i64>(10)? as u64,
        first_recent_uid: r.get::<_, i64>(11)? as u32,
    })
}

/// Raise the mailbox's \Recent mark to `up_to`; returns the mark before,
/// so the caller owns \Recent for UIDs in `[before, up_to)`.
pub(super) fn claim_recent(conn: &Connection, mailbox: MailboxId, up_to: u32) -> Result<u32> {
    let before: i64 = conn
        .query_row("SELECT recent_uid FROM mailboxes WHERE id = ?1", [mailbox], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    if i64::from(up_to) > before {
        conn.execute(
            "UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1",
            params![mailbox, i64::from(up_to)],
        )?;
    }
    Ok(before as u32)
}

pub(super) fn list(conn: &Connection, account: AccountId) -> Result<Vec<Mailbox>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM mailboxes m WHERE m.account_id = ?1 ORDER BY m.name"
    ))?;
    let rows = st.query_map([account], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn by_name(conn: &Connection, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
    let name = normalize_mailbox(name);
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM mailboxes m WHERE m.account_id = ?1 AND m.name = ?2"
        ))?
        .query_row(params![account, name], row)
        .optional()?)
}

pub(super) fn by_id(conn: &Connection, id: MailboxId) -> Result<Option<Mailbox>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM mailboxes m WHERE m.id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

pub(super) fn require(conn: &Connection, id: MailboxId) -> Result<Mailbox> {
    by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
}

/// A mailbox's id by name, without counting its messages (write paths).
pub(super) fn id_by_name(conn: &Connection, account: AccountId, name: &str) -> Result<Option<MailboxId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2")?
        .query_row(params![account, normalize_mailbox(name)], |r| r.get(0))
        .optional()?)
}

/// The account's first mailbox with this special use (RFC 6154), if any.
pub(super) fn id_by_special_use(conn: &Connection, account: AccountId, use_: SpecialUse) -> Result<Option<MailboxId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND special_use = ?2 ORDER BY id LIMIT 1")?
        .query_row(params![account, use_.as_str()], |r| r.get(0))
        .optional()?)
}

/// The owner and UIDVALIDITY of a mailbox, without counting its messages.
pub(super) fn account_and_validity(conn: &Connection, id: MailboxId) -> Result<(AccountId, u32)> {
    conn.prepare_cached("SELECT account_id, uid_validity FROM mailboxes WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u32)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
}

/// The owner of a mailbox.
pub(super) fn account_of(conn: &Connection, id: MailboxId) -> Result<AccountId> {
    Ok(account_and_validity(conn, id)?.0)
}

/// RFC 9051 §2.3.1.1: a UIDVALIDITY must never repeat for a name, so they
/// come from one store-wide counter seeded by the clock.
fn next_uid_validity(conn: &Connection) -> Result<u32> {
    let last: i64 = conn
        .query_row("SELECT value FROM counters WHERE name = 'uid_validity'", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    let clock = now().clamp(1, u32::MAX as i64);
    let next = if last >= clock { last + 1 } else { clock };
    if next > u32::MAX as i64 {
        return Err(StoreError::Backend("UIDVALIDITY space exhausted".into()));
    }
    conn.execute(
        "INSERT INTO counters(name, value) VALUES ('uid_validity', ?1)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        [next],
    )?;
    Ok(next as u32)
}

fn validate_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.starts_with(HIERARCHY_DELIMITER)
        || name.ends_with(HIERARCHY_DELIMITER)
        || name.contains("//")
        || name.split(HIERARCHY_DELIMITER).count() > MAX_DEPTH
        || name.chars().any(|c| c.is_control() || c == '*' || c == '%');
    if bad {
        return Err(StoreError::Invalid(format!("invalid mailbox name '{name}'")));
    }
    Ok(())
}

pub(super) fn create(
    conn: &Connection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<Mailbox> {
    let name = normalize_mailbox(name);
    validate_name(&name)?;
    if by_name(conn, account, &name)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("mailbox {name}")));
    }
    let uv = next_uid_validity(conn)?;
    let mut op = Op::new(account);
    let ms = op.modseq(conn)?;
    conn.execute(
        "INSERT INTO mailboxes(account_id, name, uid_validity, uid_next, highest_modseq, special_use)
         VALUES (?1, ?2, ?3, 1, ?5, ?4)",
        params![account, name, uv, special_use.map(|s| s.as_str()), ms as i64],
    )?;
    let id = conn.last_insert_rowid();
    op.log(conn, DataType::Mailbox, id, ChangeOp::Created)?;
    require(conn, id)
}

pub(super) fn delete(conn: &Connection, account: AccountId, name: &str) -> Result<MailboxId> {
    let name = normalize_mailbox(name);
    if name == "INBOX" {
        return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
    }
    let mb = by_name(conn, account, &name)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
    remove(conn, account, mb.id)?;
    Ok(mb.id)
}

/// Remove a mailbox with its memberships (emails in no other mailbox are
/// destroyed) and tombstones.
pub(super) fn remove(conn: &Connection, account: AccountId, mailbox: MailboxId) -> Result<()> {
    let mut op = Op::new(account);
    messages::remove_all(conn, &mut op, mailbox)?;
    messages::drop_tombstones(conn, mailbox)?;
    conn.execute("DELETE FROM mailboxes WHERE id = ?1", [mailbox])?;
    op.log(conn, DataType::Mailbox, mailbox, ChangeOp::Destroyed)
}

pub(super) fn rename(conn: &Connection, account: AccountId, from: &str, to: &str) -> Result<Vec<ChangeEvent>> {
    let from = normalize_mailbox(from);
    let to = normalize_mailbox(to);
    validate_name(&to)?;
    let src = by_name(conn, account, &from)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {from}")))?;
    if by_name(conn, account, &to)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("mailbox {to}")));
    }
    let prefix = format!("{from}{HIERARCHY_DELIMITER}");
    if to.starts_with(&prefix) {
        return Err(StoreError::Invalid("cannot rename a mailbox into its own child".into()));
    }
    let mut events = vec![ChangeEvent {
        account_id: account,
        mailbox_id: Some(src.id),
        kind: ChangeKind::Mailboxes,
    }];
    if from == "INBOX" {
        // RFC 9051 §6.3.6: INBOX's messages move to the new name; INBOX stays, empty.
        let dst = create(conn, account, &to, None)?;
        let uids: Vec<u32> = messages::list(conn, src.id)?.iter().map(|m| m.uid).collect();
        let mut op = Op::new(account);
        messages::copy(conn, &mut op, src.id, &uids, dst.id)?;
        messages::remove_uids(conn, &mut op, src.id, &uids)?;
        events.push(ChangeEvent {
            account_id: account,
            mailbox_id: Some(src.id),
            kind: ChangeKind::Expunged,
        });
        return Ok(events);
    }
    // Children move with their parent (RFC 9051 §6.3.6).
    let children: Vec<(i64, String)> = list(conn, account)?
        .into_iter()
        .filter(|m| m.name.starts_with(&prefix))
        .map(|m| (m.id, m.name))
        .collect();
    for (id, child) in &children {
        let new_name = format!("{to}{}", child.get(from.len()..).unwrap_or_default());
        if by_name(conn, account, &new_name)?.is_some() {
            return Err(StoreError::AlreadyExists(format!("mailbox {new_name}")));
        }
        conn.execute("UPDATE mailboxes SET name = ?1 WHERE id = ?2", params![new_name, id])?;
    }
    conn.execute("UPDATE mailboxes SET name = ?1 WHERE id = ?2", params![to, src.id])?;
    let mut op = Op::new(account);
    for id in children.iter().map(|(id, _)| *id).chain([src.id]) {
        op.log(conn, DataType::Mailbox, id, ChangeOp::Updated)?;
    }
    // Subscriptions follow the rename, as in Dovecot.
    conn.execute(
        "UPDATE subscriptions SET name = ?1 WHERE account_id = ?2 AND name = ?3",
        params![to, account, from],
    )?;
    Ok(events)
}

pub(super) fn set_subscribed(conn: &Connection, account: AccountId, name: &str, on: bool) -> Result<()> {
    let name = normalize_mailbox(name);
    if let Some(mb) = by_name(conn, account, &name)? {
        // JMAP isSubscribed is a Mailbox property.
        Op::new(account).log(conn, DataType::Mailbox, mb.id, ChangeOp::Updated)?;
    }
    if on {
        validate_name(&name)?;
        conn.execute(
            "INSERT OR IGNORE INTO subscriptions(account_id, name) VALUES (?1, ?2)",
            params![account, name],
        )?;
    } else {
        conn.execute(
            "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
            params![account, name],
        )?;
    }
    Ok(())
}

pub(super) fn subscriptions(conn: &Connection, account: AccountId) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached("SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name")?;
    let rows = st.query_map([account], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
