//! Versioned schema migrations, run at open. `PRAGMA user_version` records
//! the version reached; each step runs in its own transaction.

use crate::Result;
use rusqlite::Connection;

/// Migration steps; index + 1 is the version a step brings the schema to.
/// Never edit a released step: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: directory, mailboxes, messages, content-addressed bodies.
    r#"
    CREATE TABLE domains(
        name TEXT PRIMARY KEY,
        created INTEGER NOT NULL
    );
    CREATE TABLE accounts(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL UNIQUE,
        domain TEXT NOT NULL REFERENCES domains(name),
        password_hash TEXT NOT NULL,
        quota_bytes INTEGER NOT NULL DEFAULT 0,
        quota_messages INTEGER NOT NULL DEFAULT 0,
        used_bytes INTEGER NOT NULL DEFAULT 0,
        used_messages INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
    );
    CREATE TABLE aliases(
        source TEXT PRIMARY KEY,
        domain TEXT NOT NULL REFERENCES domains(name),
        targets TEXT NOT NULL
    );
    CREATE TABLE mailboxes(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        uid_validity INTEGER NOT NULL,
        uid_next INTEGER NOT NULL,
        highest_modseq INTEGER NOT NULL,
        special_use TEXT,
        UNIQUE(account_id, name)
    );
    CREATE TABLE subscriptions(
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        PRIMARY KEY(account_id, name)
    );
    CREATE TABLE blobs(
        hash TEXT PRIMARY KEY,
        data BLOB NOT NULL,
        info TEXT NOT NULL,
        refs INTEGER NOT NULL
    );
    CREATE TABLE messages(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags TEXT NOT NULL,
        internal_date INTEGER NOT NULL,
        size INTEGER NOT NULL,
        blob TEXT NOT NULL REFERENCES blobs(hash),
        UNIQUE(mailbox_id, uid)
    );
    CREATE INDEX messages_by_modseq ON messages(mailbox_id, modseq);
    CREATE TABLE expunged(
        mailbox_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY(mailbox_id, uid)
    );
    CREATE TABLE counters(
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    "#,
    // 2: outbound queue (delivery state is added by the delivery work).
    r#"
    CREATE TABLE queue(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender TEXT NOT NULL,
        raw BLOB NOT NULL,
        envid TEXT,
        ret TEXT,
        created INTEGER NOT NULL
    );
    CREATE TABLE queue_recipients(
        queue_id INTEGER NOT NULL REFERENCES queue(id),
        address TEXT NOT NULL,
        notify TEXT,
        orcpt TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        PRIMARY KEY(queue_id, address)
    );
    "#,
    // 3: delivery state: schedule, lease (which worker holds the entry, until
    // when), per-recipient outcome.
    r#"
    ALTER TABLE queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue ADD COLUMN next_attempt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue ADD COLUMN lease_owner TEXT;
    ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue_recipients ADD COLUMN last_error TEXT;
    ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT;
    ALTER TABLE queue_recipients ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX queue_due ON queue(next_attempt);
    "#,
    // 4: IMAP \Recent (RFC 3501 §2.3.2): UIDs at or above this mark have
    // not been seen by any session that selected the mailbox.
    r#"
    ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: an expunged message's body stays readable for a grace period
    // (RFC 2180 §4.1.1): sessions not yet told of the expunge may FETCH it.
    // The tombstone holds a reference on the blob until then.
    r#"
    ALTER TABLE expunged ADD COLUMN message_id INTEGER;
    ALTER TABLE expunged ADD COLUMN blob TEXT;
    ALTER TABLE expunged ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX expunged_by_message ON expunged(message_id);
    CREATE INDEX expunged_holding ON expunged(at) WHERE blob IS NOT NULL;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database up to [`SCHEMA_VERSION`]; refuse a newer database.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(crate::StoreError::Invalid(format!(
            "database schema version {current} is newer than this build supports ({SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}
