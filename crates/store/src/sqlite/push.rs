//! Push subscriptions (crate::push).

use crate::push::MAX_PUSH_SUBSCRIPTIONS;
use crate::{AccountId, NewPushSubscription, PushSubscription, PushUpdate, Result, StoreError};
use rusqlite::{params, Connection, Row};

fn types_text(t: &Option<Vec<String>>) -> Option<String> {
    t.as_ref().map(|l| l.join(","))
}

fn row(r: &Row<'_>) -> rusqlite::Result<PushSubscription> {
    let types: Option<String> = r.get(9)?;
    Ok(PushSubscription {
        id: r.get(0)?,
        account_id: r.get(1)?,
        device_client_id: r.get(2)?,
        url: r.get(3)?,
        p256dh: r.get(4)?,
        auth: r.get(5)?,
        verification_code: r.get(6)?,
        verified: r.get(7)?,
        expires: r.get(8)?,
        types: types.map(|t| t.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()),
    })
}

pub(super) fn list(conn: &Connection, account: AccountId, now: i64) -> Result<Vec<PushSubscription>> {
    let mut st = conn.prepare_cached(
        "SELECT id, account_id, device_client_id, url, p256dh, auth, verification_code, verified, expires, types
         FROM push_subscriptions WHERE account_id = ?1 AND expires > ?2 ORDER BY id",
    )?;
    let rows = st.query_map(params![account, now], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn create(
    conn: &Connection,
    account: AccountId,
    n: &NewPushSubscription,
    now: i64,
) -> Result<PushSubscription> {
    // §7.2: expired subscriptions are erased, not kept.
    conn.execute("DELETE FROM push_subscriptions WHERE expires <= ?1", [now])?;
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM push_subscriptions WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )?;
    if count as usize >= MAX_PUSH_SUBSCRIPTIONS {
        return Err(StoreError::Invalid(format!(
            "an account holds at most {MAX_PUSH_SUBSCRIPTIONS} push subscriptions"
        )));
    }
    conn.execute(
        "INSERT INTO push_subscriptions(account_id, device_client_id, url, p256dh, auth, verification_code, expires, types)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            account,
            n.device_client_id,
            n.url,
            n.p256dh,
            n.auth,
            n.verification_code,
            n.expires,
            types_text(&n.types)
        ],
    )?;
    Ok(PushSubscription {
        id: conn.last_insert_rowid(),
        account_id: account,
        device_client_id: n.device_client_id.clone(),
        url: n.url.clone(),
        p256dh: n.p256dh.clone(),
        auth: n.auth.clone(),
        verification_code: n.verification_code.clone(),
        verified: false,
        expires: n.expires,
        types: n.types.clone(),
    })
}

pub(super) fn update(conn: &Connection, account: AccountId, id: i64, u: &PushUpdate) -> Result<bool> {
    let mut changed = conn.execute(
        "UPDATE push_subscriptions SET verified = COALESCE(?3, verified), expires = COALESCE(?4, expires)
         WHERE id = ?1 AND account_id = ?2",
        params![id, account, u.verified, u.expires],
    )?;
    if let Some(types) = &u.types {
        changed = conn.execute(
            "UPDATE push_subscriptions SET types = ?3 WHERE id = ?1 AND account_id = ?2",
            params![id, account, types_text(types)],
        )?;
    }
    Ok(changed > 0)
}

pub(super) fn remove(conn: &Connection, account: AccountId, id: i64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM push_subscriptions WHERE id = ?1 AND account_id = ?2",
        params![id, account],
    )? > 0)
}
