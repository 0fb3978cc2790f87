//! Spam learning (issue 15): Bayes token counts, training events, trusted
//! correspondents and allow/block lists. Account 0 is the site-wide model.

use crate::{
    AccountId, BayesCounts, DmarcRecord, EmailId, MailboxId, Result, SpamListEntry, SpecialUse, TrainingEvent,
};
use rusqlite::{params, Connection, OptionalExtension};

/// The site-wide model's account id.
pub(super) const SITE: AccountId = 0;

fn special_use(conn: &Connection, mailbox: MailboxId) -> Result<Option<SpecialUse>> {
    let s: Option<Option<String>> = conn
        .prepare_cached("SELECT special_use FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?;
    Ok(s.flatten().as_deref().and_then(SpecialUse::parse))
}

/// Record what a user's move teaches: into Junk is spam; out of Junk to
/// anywhere but Trash (or Junk again) is ham (ARCHITECTURE.md, "Inbound
/// trust"). Called in the transaction that moves the email.
pub(super) fn learn_from_move(
    conn: &Connection,
    account: AccountId,
    email: EmailId,
    from: &[MailboxId],
    to: &[MailboxId],
) -> Result<()> {
    if to.is_empty() {
        return Ok(());
    }
    let mut to_junk = false;
    let mut to_kept = false;
    for &m in to {
        match special_use(conn, m)? {
            Some(SpecialUse::Junk) => to_junk = true,
            Some(SpecialUse::Trash) => {}
            _ => to_kept = true,
        }
    }
    let class = if to_junk {
        Some(true)
    } else if to_kept {
        let mut from_junk = false;
        for &m in from {
            from_junk |= special_use(conn, m)? == Some(SpecialUse::Junk);
        }
        from_junk.then_some(false)
    } else {
        None
    };
    if let Some(spam) = class {
        note(conn, account, email, spam)?;
    }
    Ok(())
}

/// Record what keywords teach (RFC 5788 registry: `$Junk`, `$NotJunk`, set
/// by Thunderbird and Apple Mail), when one of them is newly set.
pub(super) fn learn_from_keywords(
    conn: &Connection,
    account: AccountId,
    email: EmailId,
    next: &[String],
) -> Result<()> {
    let has = |ks: &[String], k: &str| ks.iter().any(|x| x.eq_ignore_ascii_case(k));
    let (junk, notjunk) = (has(next, "$Junk"), has(next, "$NotJunk"));
    if !junk && !notjunk {
        return Ok(());
    }
    let old: String = conn
        .prepare_cached("SELECT keywords FROM emails WHERE id = ?1")?
        .query_row([email], |r| r.get(0))?;
    let old: Vec<String> = old.split_whitespace().map(str::to_string).collect();
    if junk && !has(&old, "$Junk") {
        note(conn, account, email, true)?;
    } else if notjunk && !junk && !has(&old, "$NotJunk") {
        note(conn, account, email, false)?;
    }
    Ok(())
}

fn note(conn: &Connection, account: AccountId, email: EmailId, spam: bool) -> Result<()> {
    conn.prepare_cached("INSERT INTO spam_training(account_id, email_id, spam) VALUES (?1, ?2, ?3)")?
        .execute(params![account, email, spam])?;
    Ok(())
}

pub(super) fn events(conn: &Connection, limit: usize) -> Result<Vec<TrainingEvent>> {
    let mut st =
        conn.prepare_cached("SELECT id, account_id, email_id, spam FROM spam_training ORDER BY id LIMIT ?1")?;
    let rows = st
        .query_map([limit as i64], |r| {
            Ok(TrainingEvent {
                id: r.get(0)?,
                account_id: r.get(1)?,
                email_id: r.get(2)?,
                spam: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub(super) fn events_done(conn: &Connection, ids: &[i64]) -> Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM spam_training WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

pub(super) fn counts(conn: &Connection, account: AccountId, tokens: &[u64]) -> Result<BayesCounts> {
    let (spam, ham): (i64, i64) = conn
        .prepare_cached("SELECT spam, ham FROM bayes_totals WHERE account_id = ?1")?
        .query_row([account], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0));
    let mut out = BayesCounts {
        spam_messages: spam.max(0) as u64,
        ham_messages: ham.max(0) as u64,
        tokens: Vec::new(),
    };
    if spam == 0 && ham == 0 {
        return Ok(out);
    }
    let mut st = conn.prepare_cached("SELECT spam, ham FROM bayes_tokens WHERE account_id = ?1 AND token = ?2")?;
    for &t in tokens {
        if let Some((s, h)) = st
            .query_row(params![account, t as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
        {
            out.tokens.push((t, s.max(0) as u32, h.max(0) as u32));
        }
    }
    Ok(out)
}

/// Train `email` as spam or ham for `account` and the site-wide model.
/// A message counts once per model: trained the same way again, nothing
/// changes; trained the other way, its old counts are taken back first.
/// True when the account's model changed.
pub(super) fn train(conn: &Connection, account: AccountId, email: EmailId, spam: bool, tokens: &[u64]) -> Result<bool> {
    let mut changed = false;
    for model in [account, SITE] {
        let prev: Option<bool> = conn
            .prepare_cached("SELECT spam FROM bayes_trained WHERE account_id = ?1 AND email_id = ?2")?
            .query_row(params![model, email], |r| r.get(0))
            .optional()?;
        if prev == Some(spam) {
            continue;
        }
        if let Some(was) = prev {
            add(conn, model, tokens, was, -1)?;
        }
        add(conn, model, tokens, spam, 1)?;
        conn.prepare_cached(
            "INSERT INTO bayes_trained(account_id, email_id, spam) VALUES (?1, ?2, ?3)
             ON CONFLICT(account_id, email_id) DO UPDATE SET spam = excluded.spam",
        )?
        .execute(params![model, email, spam])?;
        changed |= model == account;
    }
    Ok(changed)
}

fn add(conn: &Connection, model: AccountId, tokens: &[u64], spam: bool, delta: i64) -> Result<()> {
    let (ds, dh) = if spam { (delta, 0) } else { (0, delta) };
    conn.prepare_cached(
        "INSERT INTO bayes_totals(account_id, spam, ham) VALUES (?1, MAX(0, ?2), MAX(0, ?3))
         ON CONFLICT(account_id) DO UPDATE SET spam = MAX(0, spam + ?2), ham = MAX(0, ham + ?3)",
    )?
    .execute(params![model, ds, dh])?;
    let mut st = conn.prepare_cached(
        "INSERT INTO bayes_tokens(account_id, token, spam, ham) VALUES (?1, ?2, MAX(0, ?3), MAX(0, ?4))
         ON CONFLICT(account_id, token) DO UPDATE SET spam = MAX(0, spam + ?3), ham = MAX(0, ham + ?4)",
    )?;
    for &t in tokens {
        st.execute(params![model, t as i64, ds, dh])?;
    }
    if delta < 0 {
        conn.prepare_cached("DELETE FROM bayes_tokens WHERE account_id = ?1 AND spam = 0 AND ham = 0")?
            .execute([model])?;
    }
    Ok(())
}

pub(super) fn note_correspondents(conn: &Connection, account: AccountId, addresses: &[String], now: i64) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO correspondents(account_id, address, last_sent) VALUES (?1, ?2, ?3)
         ON CONFLICT(account_id, address) DO UPDATE SET last_sent = excluded.last_sent",
    )?;
    for a in addresses {
        st.execute(params![account, a.to_lowercase(), now])?;
    }
    Ok(())
}

pub(super) fn is_correspondent(conn: &Connection, account: AccountId, address: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM correspondents WHERE account_id = ?1 AND address = ?2")?
        .query_row(params![account, address.to_lowercase()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Set (`Some`) or remove (`None`) an allow/block entry: an address, or
/// `@domain` for a whole domain.
pub(super) fn set_list(conn: &Connection, account: AccountId, entry: &str, allow: Option<bool>) -> Result<bool> {
    let entry = entry.trim().to_lowercase();
    let n = match allow {
        Some(a) => conn
            .prepare_cached(
                "INSERT INTO spam_lists(account_id, entry, allow) VALUES (?1, ?2, ?3)
                 ON CONFLICT(account_id, entry) DO UPDATE SET allow = excluded.allow",
            )?
            .execute(params![account, entry, a])?,
        None => conn
            .prepare_cached("DELETE FROM spam_lists WHERE account_id = ?1 AND entry = ?2")?
            .execute(params![account, entry])?,
    };
    Ok(n > 0)
}

pub(super) fn lists(conn: &Connection, account: Option<AccountId>) -> Result<Vec<SpamListEntry>> {
    let mut st = conn.prepare_cached(
        "SELECT account_id, entry, allow FROM spam_lists WHERE ?1 IS NULL OR account_id = ?1 ORDER BY account_id, entry",
    )?;
    let rows = st
        .query_map([account], |r| {
            Ok(SpamListEntry {
                account_id: r.get(0)?,
                entry: r.get(1)?,
                allow: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The entry that decides for `address` sent to `account`: the account's
/// own before the site-wide (account 0), an address before its domain.
pub(super) fn list_match(conn: &Connection, account: AccountId, address: &str) -> Result<Option<SpamListEntry>> {
    let address = address.to_lowercase();
    let domain = address.rsplit_once('@').map(|(_, d)| format!("@{d}"));
    let mut st = conn.prepare_cached("SELECT allow FROM spam_lists WHERE account_id = ?1 AND entry = ?2")?;
    for owner in [account, SITE] {
        for entry in std::iter::once(address.clone()).chain(domain.clone()) {
            if let Some(allow) = st.query_row(params![owner, entry], |r| r.get(0)).optional()? {
                return Ok(Some(SpamListEntry {
                    account_id: owner,
                    entry,
                    allow,
                }));
            }
        }
    }
    Ok(None)
}

pub(super) fn record_dmarc(conn: &Connection, r: &DmarcRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO dmarc_records(domain, received_at, policy, record, rua) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        r.domain.to_lowercase(),
        r.received_at,
        r.policy,
        r.record,
        r.rua.join(" ")
    ])?;
    Ok(())
}

pub(super) fn dmarc_records(conn: &Connection, before: i64, limit: usize) -> Result<Vec<DmarcRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT id, domain, received_at, policy, record, rua FROM dmarc_records
         WHERE received_at < ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![before, limit as i64], |r| {
            let rua: String = r.get(5)?;
            Ok(DmarcRecord {
                id: r.get(0)?,
                domain: r.get(1)?,
                received_at: r.get(2)?,
                policy: r.get(3)?,
                record: r.get(4)?,
                rua: rua.split_whitespace().map(str::to_string).collect(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub(super) fn delete_dmarc_records(conn: &Connection, ids: &[i64]) -> Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM dmarc_records WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}
