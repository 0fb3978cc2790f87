//! Versioned schema migrations, run at open. `PRAGMA user_version` records
//! the version reached; each step runs in its own transaction.

use crate::Result;
use rusqlite::{params, Connection};

/// One migration step: SQL, or a function for what SQL alone cannot do
/// (re-analysing messages). Either runs inside the step's transaction.
enum Step {
    Sql(&'static str),
    Code(fn(&Connection) -> Result<()>),
}

/// Migration steps; index + 1 is the version a step brings the schema to.
/// Never edit a released step: append a new one.
const MIGRATIONS: &[Step] = &[
    // 1: directory, mailboxes, messages, content-addressed bodies.
    Step::Sql(
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
    ),
    // 2: outbound queue (delivery state is added by the delivery work).
    Step::Sql(
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
    ),
    // 3: delivery state: schedule, lease (which worker holds the entry, until
    // when), per-recipient outcome.
    Step::Sql(
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
    ),
    // 4: IMAP \Recent (RFC 3501 §2.3.2): UIDs at or above this mark have
    // not been seen by any session that selected the mailbox.
    Step::Sql(
        r#"
    ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
    "#,
    ),
    // 5: an expunged message's body stays readable for a grace period
    // (RFC 2180 §4.1.1): sessions not yet told of the expunge may FETCH it.
    // The tombstone holds a reference on the blob until then.
    Step::Sql(
        r#"
    ALTER TABLE expunged ADD COLUMN message_id INTEGER;
    ALTER TABLE expunged ADD COLUMN blob TEXT;
    ALTER TABLE expunged ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX expunged_by_message ON expunged(message_id);
    CREATE INDEX expunged_holding ON expunged(at) WHERE blob IS NOT NULL;
    "#,
    ),
    // 6: Store v2 (ARCHITECTURE.md, "Store v2 data model"): one email per
    // message an account holds, mailbox memberships with the UIDs, threads,
    // the account-wide modseq and change log, versioned analyses.
    Step::Code(to_v6),
    // 7: JMAP uploads (RFC 8620 §6.1), per account, expiring.
    Step::Sql(
        r#"
    CREATE TABLE uploads(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        data BLOB NOT NULL,
        size INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY(account_id, hash)
    );
    CREATE INDEX uploads_expiry ON uploads(expires);
    "#,
    ),
    // 8: app passwords and OAuth grants (ARCHITECTURE.md, "Credentials"),
    // secrets kept as SHA-256 digests.
    Step::Sql(
        r#"
    CREATE TABLE app_passwords(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX app_passwords_account ON app_passwords(account_id, digest);
    CREATE TABLE oauth_grants(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        client_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX oauth_grants_account ON oauth_grants(account_id);
    CREATE TABLE oauth_tokens(
        digest TEXT PRIMARY KEY,
        grant_id INTEGER NOT NULL REFERENCES oauth_grants(id),
        kind INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    CREATE INDEX oauth_tokens_grant ON oauth_tokens(grant_id);
    CREATE INDEX oauth_tokens_expiry ON oauth_tokens(expires);
    "#,
    ),
    // 9: the vacation responder (RFC 8621 §8) and whom it answered (RFC
    // 3834 §2); JMAP push subscriptions (RFC 8620 §7.2); the readiness
    // probe's row.
    Step::Sql(
        r#"
    CREATE TABLE vacation(
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
        enabled INTEGER NOT NULL,
        from_date INTEGER,
        to_date INTEGER,
        subject TEXT,
        text_body TEXT,
        html_body TEXT
    );
    CREATE TABLE vacation_replies(
        account_id INTEGER NOT NULL,
        sender TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY(account_id, sender)
    ) WITHOUT ROWID;
    CREATE TABLE push_subscriptions(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        device_client_id TEXT NOT NULL,
        url TEXT NOT NULL,
        p256dh TEXT,
        auth TEXT,
        verification_code TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        expires INTEGER NOT NULL,
        types TEXT
    );
    CREATE INDEX push_by_account ON push_subscriptions(account_id);
    -- One row that readiness probes rewrite: proof that a durable commit works.
    CREATE TABLE health(id INTEGER PRIMARY KEY, checked INTEGER NOT NULL);
    "#,
    ),
    // 10: JMAP EmailSubmission objects (RFC 8621 §7), held until their
    // send time (FUTURERELEASE), and each recipient's delivery status,
    // which the queue entry they became keeps up to date; Identity
    // settings (names, signatures).
    Step::Sql(
        r#"
    CREATE TABLE submissions(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        identity TEXT NOT NULL,
        email_id INTEGER NOT NULL,
        thread_id INTEGER NOT NULL,
        mail_from TEXT NOT NULL,
        rcpt_to TEXT NOT NULL,
        envelope TEXT NOT NULL,
        send_at INTEGER NOT NULL,
        undo_status TEXT NOT NULL,
        queue_id INTEGER,
        created INTEGER NOT NULL
    );
    CREATE INDEX submissions_by_account ON submissions(account_id);
    CREATE INDEX submissions_pending ON submissions(send_at) WHERE undo_status = 'pending';
    CREATE TABLE submission_recipients(
        submission_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        delivered TEXT NOT NULL,
        smtp_reply TEXT NOT NULL,
        PRIMARY KEY(submission_id, address)
    ) WITHOUT ROWID;
    ALTER TABLE queue ADD COLUMN submission_id INTEGER;
    -- What a user set on an Identity (RFC 8621 §6); the identities
    -- themselves follow the addresses the account may send as.
    CREATE TABLE identity_settings(
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        address TEXT NOT NULL,
        name TEXT NOT NULL,
        reply_to TEXT,
        bcc TEXT,
        text_signature TEXT NOT NULL,
        html_signature TEXT NOT NULL,
        PRIMARY KEY(account_id, address)
    ) WITHOUT ROWID;
    "#,
    ),
    // 11: per-mailbox counts kept by triggers (messages, unseen, bytes),
    // so SELECT, STATUS, APPEND and Mailbox/get need no scan of the
    // mailbox (a 100,000-message mailbox made each APPEND take ~1 s).
    Step::Sql(
        r#"
    ALTER TABLE mailboxes ADD COLUMN n_messages INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE mailboxes ADD COLUMN n_unseen INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE mailboxes ADD COLUMN n_bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE mailboxes SET
        n_messages = (SELECT COUNT(*) FROM email_mailboxes x WHERE x.mailbox_id = mailboxes.id),
        n_unseen = (SELECT COUNT(*) FROM email_mailboxes x JOIN emails e ON e.id = x.email_id
                    WHERE x.mailbox_id = mailboxes.id AND instr(' ' || e.keywords || ' ', ' \Seen ') = 0),
        n_bytes = (SELECT COALESCE(SUM(e.size), 0) FROM email_mailboxes x JOIN emails e ON e.id = x.email_id
                   WHERE x.mailbox_id = mailboxes.id);
    CREATE TRIGGER mailbox_counts_add AFTER INSERT ON email_mailboxes BEGIN
        UPDATE mailboxes SET
            n_messages = n_messages + 1,
            n_bytes = n_bytes + COALESCE((SELECT size FROM emails WHERE id = NEW.email_id), 0),
            n_unseen = n_unseen + COALESCE((SELECT instr(' ' || keywords || ' ', ' \Seen ') = 0
                                            FROM emails WHERE id = NEW.email_id), 0)
        WHERE id = NEW.mailbox_id;
    END;
    CREATE TRIGGER mailbox_counts_remove AFTER DELETE ON email_mailboxes BEGIN
        UPDATE mailboxes SET
            n_messages = MAX(0, n_messages - 1),
            n_bytes = MAX(0, n_bytes - COALESCE((SELECT size FROM emails WHERE id = OLD.email_id), 0)),
            n_unseen = MAX(0, n_unseen - COALESCE((SELECT instr(' ' || keywords || ' ', ' \Seen ') = 0
                                                   FROM emails WHERE id = OLD.email_id), 0))
        WHERE id = OLD.mailbox_id;
    END;
    CREATE TRIGGER mailbox_counts_seen AFTER UPDATE OF keywords ON emails
    WHEN (instr(' ' || OLD.keywords || ' ', ' \Seen ') = 0) != (instr(' ' || NEW.keywords || ' ', ' \Seen ') = 0)
    BEGIN
        UPDATE mailboxes SET
            n_unseen = MAX(0, n_unseen + CASE WHEN instr(' ' || NEW.keywords || ' ', ' \Seen ') = 0 THEN 1 ELSE -1 END)
        WHERE id IN (SELECT mailbox_id FROM email_mailboxes WHERE email_id = NEW.id);
    END;
    "#,
    ),
    // 12: IMAP SORT/THREAD keys per blob (letterbox_mail::sort), so a
    // sort of a large mailbox reads short strings, not analyses (on the
    // email rows: short, no message bytes to step over).
    Step::Code(to_v12),
    // 13: spam learning (issue 15). Bayes token counts per account and
    // site-wide (account 0, no account row), what each email was trained
    // as, training events recorded by the moves that cause them, the
    // addresses each account wrote to, and allow/block lists.
    Step::Sql(
        r#"
    CREATE TABLE bayes_tokens(
        account_id INTEGER NOT NULL,
        token INTEGER NOT NULL,
        spam INTEGER NOT NULL DEFAULT 0,
        ham INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(account_id, token)
    ) WITHOUT ROWID;
    CREATE TABLE bayes_totals(
        account_id INTEGER PRIMARY KEY,
        spam INTEGER NOT NULL DEFAULT 0,
        ham INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE bayes_trained(
        account_id INTEGER NOT NULL,
        email_id INTEGER NOT NULL,
        spam INTEGER NOT NULL,
        PRIMARY KEY(account_id, email_id)
    ) WITHOUT ROWID;
    CREATE TABLE spam_training(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL,
        email_id INTEGER NOT NULL,
        spam INTEGER NOT NULL
    );
    CREATE TABLE correspondents(
        account_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        last_sent INTEGER NOT NULL,
        PRIMARY KEY(account_id, address)
    ) WITHOUT ROWID;
    CREATE TABLE spam_lists(
        account_id INTEGER NOT NULL,
        entry TEXT NOT NULL,
        allow INTEGER NOT NULL,
        PRIMARY KEY(account_id, entry)
    ) WITHOUT ROWID;
"#,
    ),
    // 14: DMARC results of arriving mail, for aggregate reports (RFC 7489
    // §7.2): one row per message, kept until reported.
    Step::Sql(
        r#"
    CREATE TABLE dmarc_records(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        policy TEXT NOT NULL,
        record TEXT NOT NULL,
        rua TEXT NOT NULL
    );
    CREATE INDEX dmarc_records_time ON dmarc_records(received_at);
"#,
    ),
    // 15: the full-text row of an email's body on the email itself, so a
    // text search matches emails against a set of integers (FTS5 rowids)
    // instead of a set of 64-character blob hashes: a word found in most
    // of a 100,000-message mailbox took 250 ms, most of it building and
    // probing that string set. NULL (older rows, a body not indexed)
    // falls back to the hash join; see `query::condition`.
    Step::Sql(
        r#"
    ALTER TABLE emails ADD COLUMN text_id INTEGER;
    UPDATE emails SET text_id = (SELECT id FROM blob_text WHERE hash = emails.blob);
"#,
    ),
];

/// Schema v12: the sort-key column of emails, filled from every stored message.
fn to_v12(conn: &Connection) -> Result<()> {
    conn.execute_batch("ALTER TABLE emails ADD COLUMN sort_keys TEXT")?;
    super::messages::fill_sort_keys(conn)?;
    Ok(())
}

const V6_SQL: &str = r#"
    ALTER TABLE accounts ADD COLUMN modseq INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE accounts ADD COLUMN changelog_floor INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE blobs ADD COLUMN info_version INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE threads(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        subject TEXT NOT NULL
    );
    CREATE TABLE thread_refs(
        account_id INTEGER NOT NULL,
        msgid TEXT NOT NULL,
        thread_id INTEGER NOT NULL,
        PRIMARY KEY(account_id, msgid, thread_id)
    ) WITHOUT ROWID;
    CREATE INDEX thread_refs_by_thread ON thread_refs(thread_id);
    CREATE TABLE emails(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        thread_id INTEGER NOT NULL,
        blob TEXT NOT NULL REFERENCES blobs(hash),
        size INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        sent_at INTEGER,
        keywords TEXT NOT NULL
    );
    CREATE INDEX emails_by_thread ON emails(thread_id);
    CREATE INDEX emails_by_account ON emails(account_id, received_at);
    CREATE TABLE email_mailboxes(
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
        uid INTEGER NOT NULL,
        email_id INTEGER NOT NULL REFERENCES emails(id),
        modseq INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(mailbox_id, uid)
    );
    CREATE INDEX memberships_by_email ON email_mailboxes(email_id);
    CREATE INDEX memberships_by_modseq ON email_mailboxes(mailbox_id, modseq);
    CREATE INDEX expunged_by_modseq ON expunged(mailbox_id, modseq);
    CREATE TABLE changelog(
        account_id INTEGER NOT NULL,
        type INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        object_id INTEGER NOT NULL,
        op INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY(account_id, type, modseq, object_id)
    ) WITHOUT ROWID;
    CREATE INDEX changelog_by_age ON changelog(at);
    -- Full-text index, one row per blob (a body delivered to many accounts
    -- is indexed once; queries join through the account's emails).
    -- Trigrams give IMAP's case-insensitive substring semantics exactly
    -- for terms of three characters or more.
    CREATE TABLE blob_text(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hash TEXT NOT NULL UNIQUE
    );
    CREATE VIRTUAL TABLE email_fts USING fts5(
        subject, fromaddr, toaddr, ccaddr, bccaddr, headers, body, attachments,
        tokenize = 'trigram', content = '', contentless_delete = 1
    );

    -- Each message row becomes an email with the same id (POP3 UIDLs and
    -- tombstone ids stay valid) and one membership with the same UID.
    INSERT INTO emails(id, account_id, thread_id, blob, size, received_at, keywords)
        SELECT m.id, mb.account_id, 0, m.blob, m.size, m.internal_date,
               trim(replace(replace(' ' || m.flags || ' ', ' \Deleted ', ' '), '  ', ' '))
        FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id;
    INSERT INTO email_mailboxes(mailbox_id, uid, email_id, modseq, deleted)
        SELECT mailbox_id, uid, id, modseq, instr(' ' || flags || ' ', ' \Deleted ') > 0 FROM messages;
    -- Ids of messages expunged before the upgrade are never reused either.
    INSERT INTO sqlite_sequence(name, seq)
        SELECT 'emails', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'emails');
    UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0))
        WHERE name = 'emails';
    DROP TABLE messages;
    UPDATE accounts SET modseq = MAX(1, COALESCE(
        (SELECT MAX(highest_modseq) FROM mailboxes WHERE account_id = accounts.id), 1));
    UPDATE accounts SET changelog_floor = modseq;
"#;

/// Schema v6: the structural change, then threads and fresh analyses
/// computed from every stored message in arrival order.
fn to_v6(conn: &Connection) -> Result<()> {
    conn.execute_batch(V6_SQL)?;
    let emails: Vec<(i64, i64, String)> = conn
        .prepare("SELECT id, account_id, blob FROM emails ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut raw = conn.prepare("SELECT data, info_version FROM blobs WHERE hash = ?1")?;
    let mut set = conn.prepare("UPDATE emails SET thread_id = ?2, sent_at = ?3 WHERE id = ?1")?;
    let mut info = conn.prepare("UPDATE blobs SET info = ?2, info_version = ?3 WHERE hash = ?1")?;
    for (id, account, hash) in emails {
        let (data, version): (Vec<u8>, i64) = raw.query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (analysis, text) = letterbox_mail::analyze_with_text(&data);
        if version < i64::from(letterbox_mail::ANALYSIS_VERSION) {
            info.execute(params![
                hash,
                crate::prepare::info_json(&analysis),
                letterbox_mail::ANALYSIS_VERSION
            ])?;
            // First time this blob is seen in the loop: index it.
            let doc = crate::prepare::SearchDoc::of(&data, &analysis, text);
            super::messages::index_blob(conn, &hash, &doc)?;
        }
        let keys = crate::thread::ThreadKeys::of(&analysis);
        let (thread, _) = super::messages::assign_thread(conn, account, &keys)?;
        set.execute(params![id, thread, analysis.date])?;
    }
    Ok(())
}

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
    for (i, step) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        // One transaction per step: a crash in the middle leaves the
        // previous version, and the next open runs the step again.
        let tx = conn.transaction()?;
        match step {
            Step::Sql(sql) => tx.execute_batch(sql)?,
            Step::Code(f) => f(&tx)?,
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema-v5 database with two messages in one mailbox (one a reply
    /// to the other, one flagged `\Deleted`) and an expunged one.
    fn v5() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..5] {
            let Step::Sql(sql) = step else { panic!("v1-v5 are SQL") };
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO domains VALUES ('example.test', 0);
            INSERT INTO accounts(id, address, domain, password_hash, created) VALUES (1, 'a@example.test', 'example.test', 'h', 0);
            INSERT INTO mailboxes(id, account_id, name, uid_validity, uid_next, highest_modseq) VALUES (1, 1, 'INBOX', 77, 4, 9);
            INSERT INTO blobs VALUES ('h1', CAST('Subject: Hi' || char(13,10) || 'Message-ID: <p@x>' || char(13,10,13,10) || 'x' AS BLOB), '{}', 1);
            INSERT INTO blobs VALUES ('h2', CAST('Subject: Re: Hi' || char(13,10) || 'In-Reply-To: <p@x>' || char(13,10,13,10) || 'y' AS BLOB), '{}', 1);
            INSERT INTO messages(id, mailbox_id, uid, modseq, flags, internal_date, size, blob) VALUES (4, 1, 1, 5, '\Seen', 10, 30, 'h1');
            INSERT INTO messages(id, mailbox_id, uid, modseq, flags, internal_date, size, blob) VALUES (6, 1, 3, 9, '$x \Deleted \Seen', 11, 30, 'h2');
            UPDATE sqlite_sequence SET seq = 7 WHERE name = 'messages';
            INSERT INTO expunged(mailbox_id, uid, modseq, message_id, blob, at) VALUES (1, 2, 8, 7, NULL, 0);
            "#,
        )
        .unwrap();
        conn
    }

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn an_aborted_upgrade_leaves_v5_and_the_next_one_completes() {
        let mut conn = v5();
        {
            // The upgrade runs, then the process dies before COMMIT.
            let tx = conn.transaction().unwrap();
            to_v6(&tx).unwrap();
        }
        assert_eq!(version(&conn), 5);
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);

        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), SCHEMA_VERSION);
        let rows: Vec<(i64, i64, String, bool, i64)> = conn
            .prepare(
                "SELECT e.id, m.uid, e.keywords, m.deleted, e.thread_id FROM emails e
                 JOIN email_mailboxes m ON m.email_id = e.id ORDER BY m.uid",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].0, rows[0].1, rows[0].2.as_str(), rows[0].3),
            (4, 1, "\\Seen", false)
        );
        assert_eq!(
            (rows[1].0, rows[1].1, rows[1].2.as_str(), rows[1].3),
            (6, 3, "$x \\Seen", true)
        );
        // The reply joined its parent's thread.
        assert_eq!(rows[0].4, rows[1].4);
        // The account counter continues above every mailbox modseq; no
        // JMAP state older than the upgrade can be answered.
        let (modseq, floor): (i64, i64) = conn
            .query_row("SELECT modseq, changelog_floor FROM accounts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((modseq, floor), (9, 9));
        // Ids are never reused: the next email gets 8, past the expunged 7.
        let seq: i64 = conn
            .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'emails'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(seq, 7);
        let v: i64 = conn
            .query_row("SELECT MIN(info_version) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, i64::from(letterbox_mail::ANALYSIS_VERSION));
    }
}
