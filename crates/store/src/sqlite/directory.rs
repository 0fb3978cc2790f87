//! Domains, accounts and aliases.

use super::{mailboxes, now};
use crate::{
    normalize_address, normalize_domain, Account, AccountId, Alias, ChangeEvent, ChangeKind, Domain, Quota, Recipient,
    Result, StoreError, Usage, DEFAULT_MAILBOXES,
};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn add_domain(conn: &Connection, name: &str) -> Result<()> {
    let name = normalize_domain(name)?;
    if domain_exists(conn, &name)? {
        return Err(StoreError::AlreadyExists(format!("domain {name}")));
    }
    conn.execute(
        "INSERT INTO domains(name, created) VALUES (?1, ?2)",
        params![name, now()],
    )?;
    Ok(())
}

pub(super) fn domain_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn list_domains(conn: &Connection) -> Result<Vec<Domain>> {
    let mut st = conn.prepare("SELECT name, created FROM domains ORDER BY name")?;
    let rows = st.query_map([], |r| {
        Ok(Domain {
            name: r.get(0)?,
            created: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn remove_domain(conn: &Connection, name: &str) -> Result<()> {
    let name = normalize_domain(name)?;
    if !domain_exists(conn, &name)? {
        return Err(StoreError::NotFound(format!("domain {name}")));
    }
    let users: i64 = conn.query_row("SELECT COUNT(*) FROM accounts WHERE domain = ?1", [&name], |r| r.get(0))?;
    let aliases: i64 = conn.query_row("SELECT COUNT(*) FROM aliases WHERE domain = ?1", [&name], |r| r.get(0))?;
    if users > 0 || aliases > 0 {
        return Err(StoreError::Invalid(format!(
            "domain {name} still has {users} account(s) and {aliases} alias(es); remove them first"
        )));
    }
    conn.execute("DELETE FROM domains WHERE name = ?1", [&name])?;
    Ok(())
}

const ACCOUNT_COLUMNS: &str = "id, address, password_hash, quota_bytes, quota_messages, used_bytes, used_messages";

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        address: r.get(1)?,
        password_hash: r.get(2)?,
        quota: Quota {
            bytes: r.get::<_, i64>(3)? as u64,
            messages: r.get::<_, i64>(4)? as u64,
        },
        usage: Usage {
            bytes: r.get::<_, i64>(5)? as u64,
            messages: r.get::<_, i64>(6)? as u64,
        },
    })
}

pub(super) fn add_account(conn: &Connection, address: &str, hash: &str, quota: Quota) -> Result<AccountId> {
    let address = normalize_address(address)?;
    let domain = address.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    if !domain_exists(conn, &domain)? {
        return Err(StoreError::NotFound(format!("domain {domain} (add it first)")));
    }
    if account(conn, &address)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("account {address}")));
    }
    if conn
        .query_row("SELECT 1 FROM aliases WHERE source = ?1", [&address], |_| Ok(()))
        .optional()?
        .is_some()
    {
        return Err(StoreError::AlreadyExists(format!("alias {address}")));
    }
    conn.execute(
        "INSERT INTO accounts(address, domain, password_hash, quota_bytes, quota_messages, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![address, domain, hash, quota.bytes as i64, quota.messages as i64, now()],
    )?;
    let id = conn.last_insert_rowid();
    for (name, special) in DEFAULT_MAILBOXES {
        mailboxes::create(conn, id, name, *special)?;
        mailboxes::set_subscribed(conn, id, name, true)?;
    }
    Ok(id)
}

pub(super) fn account(conn: &Connection, address: &str) -> Result<Option<Account>> {
    let address = address.trim().to_lowercase();
    Ok(conn
        .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?1"))?
        .query_row([address], account_row)
        .optional()?)
}

pub(super) fn account_by_id(conn: &Connection, id: AccountId) -> Result<Option<Account>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"))?
        .query_row([id], account_row)
        .optional()?)
}

pub(super) fn list_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let mut st = conn.prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address"))?;
    let rows = st.query_map([], account_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn require_account(conn: &Connection, address: &str) -> Result<Account> {
    account(conn, address)?.ok_or_else(|| StoreError::NotFound(format!("account {}", address.trim().to_lowercase())))
}

pub(super) fn set_password(conn: &Connection, address: &str, hash: &str) -> Result<()> {
    let a = require_account(conn, address)?;
    conn.execute(
        "UPDATE accounts SET password_hash = ?1 WHERE id = ?2",
        params![hash, a.id],
    )?;
    // A new password ends every login made with the old one's help.
    super::credentials::revoke_all(conn, a.id)?;
    Ok(())
}

pub(super) fn set_quota(conn: &Connection, address: &str, quota: Quota) -> Result<()> {
    let a = require_account(conn, address)?;
    conn.execute(
        "UPDATE accounts SET quota_bytes = ?1, quota_messages = ?2 WHERE id = ?3",
        params![quota.bytes as i64, quota.messages as i64, a.id],
    )?;
    Ok(())
}

pub(super) fn remove_account(conn: &Connection, address: &str) -> Result<Vec<ChangeEvent>> {
    let a = require_account(conn, address)?;
    let boxes: Vec<i64> = {
        let mut st = conn.prepare("SELECT id FROM mailboxes WHERE account_id = ?1")?;
        let rows = st.query_map([a.id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for b in boxes {
        mailboxes::remove(conn, a.id, b)?;
    }
    for table in [
        "subscriptions",
        "thread_refs",
        "threads",
        "changelog",
        "emails",
        "uploads",
        "vacation",
        "vacation_replies",
        "push_subscriptions",
        "bayes_tokens",
        "bayes_totals",
        "bayes_trained",
        "spam_training",
        "correspondents",
        "spam_lists",
    ] {
        conn.execute(&format!("DELETE FROM {table} WHERE account_id = ?1"), [a.id])?;
    }
    super::credentials::revoke_all(conn, a.id)?;
    conn.execute("DELETE FROM accounts WHERE id = ?1", [a.id])?;
    Ok(vec![ChangeEvent {
        account_id: a.id,
        mailbox_id: None,
        kind: ChangeKind::AccountRemoved,
    }])
}

/// Alias sources are an address or `@domain` (catch-all).
fn normalize_alias_source(source: &str) -> Result<(String, String)> {
    let s = source.trim().to_lowercase();
    if let Some(domain) = s.strip_prefix('@') {
        let d = normalize_domain(domain)?;
        return Ok((format!("@{d}"), d));
    }
    let a = normalize_address(&s)?;
    let d = a.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    Ok((a, d))
}

pub(super) fn add_alias(conn: &Connection, source: &str, targets: &[String]) -> Result<()> {
    let (source, domain) = normalize_alias_source(source)?;
    if !domain_exists(conn, &domain)? {
        return Err(StoreError::NotFound(format!("domain {domain} (add it first)")));
    }
    if targets.is_empty() {
        return Err(StoreError::Invalid("an alias needs at least one target".into()));
    }
    let targets = targets
        .iter()
        .map(|t| normalize_address(t))
        .collect::<Result<Vec<_>>>()?;
    if account(conn, &source)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("account {source}")));
    }
    if conn
        .query_row("SELECT 1 FROM aliases WHERE source = ?1", [&source], |_| Ok(()))
        .optional()?
        .is_some()
    {
        return Err(StoreError::AlreadyExists(format!("alias {source}")));
    }
    conn.execute(
        "INSERT INTO aliases(source, domain, targets) VALUES (?1, ?2, ?3)",
        params![source, domain, targets.join(",")],
    )?;
    Ok(())
}

pub(super) fn remove_alias(conn: &Connection, source: &str) -> Result<()> {
    let (source, _) = normalize_alias_source(source)?;
    if conn.execute("DELETE FROM aliases WHERE source = ?1", [&source])? == 0 {
        return Err(StoreError::NotFound(format!("alias {source}")));
    }
    Ok(())
}

pub(super) fn list_aliases(conn: &Connection) -> Result<Vec<Alias>> {
    let mut st = conn.prepare("SELECT source, targets FROM aliases ORDER BY source")?;
    let rows = st.query_map([], |r| {
        let targets: String = r.get(1)?;
        Ok(Alias {
            source: r.get(0)?,
            targets: targets
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn alias_targets(conn: &Connection, source: &str) -> Result<Option<Vec<String>>> {
    let t: Option<String> = conn
        .prepare_cached("SELECT targets FROM aliases WHERE source = ?1")?
        .query_row([source], |r| r.get(0))
        .optional()?;
    Ok(t.map(|t| t.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()))
}

fn account_id(conn: &Connection, address: &str) -> Result<Option<AccountId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM accounts WHERE address = ?1")?
        .query_row([address], |r| r.get(0))
        .optional()?)
}

/// The lookups of the backend-neutral resolver, answered from SQLite.
struct Lookups<'a>(&'a Connection);

impl crate::resolve::Directory for Lookups<'_> {
    fn domain_exists(&self, domain: &str) -> Result<bool> {
        domain_exists(self.0, domain)
    }
    fn account_id(&self, address: &str) -> Result<Option<AccountId>> {
        account_id(self.0, address)
    }
    fn alias_targets(&self, source: &str) -> Result<Option<Vec<String>>> {
        alias_targets(self.0, source)
    }
}

pub(super) fn resolve_recipient(conn: &Connection, address: &str) -> Result<Recipient> {
    crate::resolve::resolve_recipient(&Lookups(conn), address)
}

pub(super) fn sender_addresses(conn: &Connection, account: AccountId) -> Result<Vec<String>> {
    let Some(a) = account_by_id(conn, account)? else {
        return Ok(Vec::new());
    };
    let mut out = vec![a.address.clone()];
    for alias in list_aliases(conn)? {
        if alias.targets.contains(&a.address) && !alias.source.starts_with('@') {
            out.push(alias.source);
        }
    }
    Ok(out)
}
