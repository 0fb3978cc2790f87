//! App passwords and OAuth grants/tokens (ARCHITECTURE.md, "Credentials").

use crate::credentials::{MAX_APP_PASSWORDS, MAX_GRANTS};
use crate::{AccountId, AppPassword, Exchange, Grant, NewToken, Result, StoreError, TokenKind, TokenRecord};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn add_app_password(
    conn: &Connection,
    account: AccountId,
    name: &str,
    digest: &str,
    now: i64,
) -> Result<AppPassword> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "app password name: 1 to 100 printable characters".into(),
        ));
    }
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM app_passwords WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )?;
    if count as usize >= MAX_APP_PASSWORDS {
        return Err(StoreError::Invalid(format!(
            "an account holds at most {MAX_APP_PASSWORDS} app passwords"
        )));
    }
    conn.execute(
        "INSERT INTO app_passwords(account_id, name, digest, created) VALUES (?1, ?2, ?3, ?4)",
        params![account, name, digest, now],
    )?;
    Ok(AppPassword {
        id: conn.last_insert_rowid(),
        name: name.to_string(),
        created: now,
    })
}

pub(super) fn app_passwords(conn: &Connection, account: AccountId) -> Result<Vec<AppPassword>> {
    let mut st =
        conn.prepare_cached("SELECT id, name, created FROM app_passwords WHERE account_id = ?1 ORDER BY id")?;
    let rows = st.query_map([account], |r| {
        Ok(AppPassword {
            id: r.get(0)?,
            name: r.get(1)?,
            created: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn remove_app_password(conn: &Connection, account: AccountId, id: i64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM app_passwords WHERE id = ?1 AND account_id = ?2",
        params![id, account],
    )? > 0)
}

pub(super) fn check_app_password(conn: &Connection, account: AccountId, digest: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM app_passwords WHERE account_id = ?1 AND digest = ?2")?
        .query_row(params![account, digest], |_| Ok(()))
        .optional()?
        .is_some())
}

fn insert_tokens(conn: &Connection, grant: i64, tokens: &[NewToken]) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO oauth_tokens(digest, grant_id, kind, expires, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for t in tokens {
        st.execute(params![t.digest, grant, t.kind.as_i64(), t.expires, t.payload])?;
    }
    Ok(())
}

/// Drop expired tokens, then grants left with no live unused token.
fn purge(conn: &Connection, now: i64) -> Result<()> {
    conn.execute("DELETE FROM oauth_tokens WHERE expires <= ?1", [now])?;
    conn.execute(
        "DELETE FROM oauth_tokens WHERE grant_id IN (SELECT g.id FROM oauth_grants g WHERE NOT EXISTS \
         (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = g.id AND t.used = 0))",
        [],
    )?;
    conn.execute(
        "DELETE FROM oauth_grants WHERE NOT EXISTS (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = oauth_grants.id)",
        [],
    )?;
    Ok(())
}

fn delete_grant(conn: &Connection, grant: i64) -> Result<bool> {
    conn.execute("DELETE FROM oauth_tokens WHERE grant_id = ?1", [grant])?;
    Ok(conn.execute("DELETE FROM oauth_grants WHERE id = ?1", [grant])? > 0)
}

pub(super) fn create_grant(
    conn: &Connection,
    account: AccountId,
    client_id: &str,
    scope: &str,
    tokens: &[NewToken],
    now: i64,
) -> Result<Grant> {
    purge(conn, now)?;
    let live: Vec<i64> = conn
        .prepare_cached("SELECT id FROM oauth_grants WHERE account_id = ?1 ORDER BY id")?
        .query_map([account], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if live.len() >= MAX_GRANTS {
        for &old in &live[..=live.len() - MAX_GRANTS] {
            delete_grant(conn, old)?;
        }
    }
    conn.execute(
        "INSERT INTO oauth_grants(account_id, client_id, scope, created) VALUES (?1, ?2, ?3, ?4)",
        params![account, client_id, scope, now],
    )?;
    let id = conn.last_insert_rowid();
    insert_tokens(conn, id, tokens)?;
    Ok(Grant {
        id,
        account_id: account,
        client_id: client_id.to_string(),
        scope: scope.to_string(),
        created: now,
    })
}

pub(super) fn token(conn: &Connection, digest: &str, now: i64) -> Result<Option<TokenRecord>> {
    let row = conn
        .prepare_cached(
            "SELECT g.id, g.account_id, g.client_id, g.scope, g.created, a.address, t.kind, t.expires, t.payload, t.used \
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id JOIN accounts a ON a.id = g.account_id \
             WHERE t.digest = ?1 AND t.expires > ?2",
        )?
        .query_row(params![digest, now], |r| {
            Ok((
                Grant {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    client_id: r.get(2)?,
                    scope: r.get(3)?,
                    created: r.get(4)?,
                },
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, bool>(9)?,
            ))
        })
        .optional()?;
    Ok(row.and_then(|(grant, address, kind, expires, payload, used)| {
        Some(TokenRecord {
            grant,
            address,
            kind: TokenKind::from_i64(kind)?,
            expires,
            payload,
            used,
        })
    }))
}

pub(super) fn exchange_token(
    conn: &Connection,
    digest: &str,
    kind: TokenKind,
    tokens: &[NewToken],
    now: i64,
) -> Result<Exchange> {
    let Some(record) = token(conn, digest, now)?.filter(|t| t.kind == kind) else {
        return Ok(Exchange::NotFound);
    };
    if record.used {
        delete_grant(conn, record.grant.id)?;
        return Ok(Exchange::Replayed);
    }
    conn.execute("UPDATE oauth_tokens SET used = 1 WHERE digest = ?1", [digest])?;
    if kind == TokenKind::Refresh {
        // The access tokens of the old refresh token go with it.
        conn.execute(
            "DELETE FROM oauth_tokens WHERE grant_id = ?1 AND kind = ?2",
            params![record.grant.id, TokenKind::Access.as_i64()],
        )?;
    }
    insert_tokens(conn, record.grant.id, tokens)?;
    Ok(Exchange::Done(record))
}

pub(super) fn revoke_token(conn: &Connection, digest: &str) -> Result<bool> {
    let grant: Option<i64> = conn
        .prepare_cached("SELECT grant_id FROM oauth_tokens WHERE digest = ?1")?
        .query_row([digest], |r| r.get(0))
        .optional()?;
    match grant {
        Some(g) => delete_grant(conn, g),
        None => Ok(false),
    }
}

pub(super) fn grants(conn: &Connection, account: AccountId, now: i64) -> Result<Vec<Grant>> {
    let mut st = conn.prepare_cached(
        "SELECT g.id, g.client_id, g.scope, g.created FROM oauth_grants g WHERE g.account_id = ?1 AND EXISTS \
         (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = g.id AND t.used = 0 AND t.expires > ?2) ORDER BY g.id",
    )?;
    let rows = st.query_map(params![account, now], |r| {
        Ok(Grant {
            id: r.get(0)?,
            account_id: account,
            client_id: r.get(1)?,
            scope: r.get(2)?,
            created: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn revoke_grant(conn: &Connection, account: AccountId, grant: i64) -> Result<bool> {
    let owned: Option<i64> = conn
        .prepare_cached("SELECT id FROM oauth_grants WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![grant, account], |r| r.get(0))
        .optional()?;
    match owned {
        Some(g) => delete_grant(conn, g),
        None => Ok(false),
    }
}

/// Everything an account's password change or removal invalidates.
pub(super) fn revoke_all(conn: &Connection, account: AccountId) -> Result<()> {
    conn.execute(
        "DELETE FROM oauth_tokens WHERE grant_id IN (SELECT id FROM oauth_grants WHERE account_id = ?1)",
        [account],
    )?;
    conn.execute("DELETE FROM oauth_grants WHERE account_id = ?1", [account])?;
    conn.execute("DELETE FROM app_passwords WHERE account_id = ?1", [account])?;
    // RFC 8620 §7.2: subscriptions end with the credentials that made them.
    conn.execute("DELETE FROM push_subscriptions WHERE account_id = ?1", [account])?;
    Ok(())
}
