//! [`Query`] compiled to SQL: the filter becomes a WHERE clause with bound
//! parameters, the sort an ORDER BY, thread collapsing a window function.

use crate::query::{Filter, Query, QueryResult, SortKey, TextField, MAX_QUERY_LIMIT};
use crate::MailboxId;
use crate::{AccountId, Result, StoreError};
use rusqlite::types::Value;
use rusqlite::Connection;

fn condition(f: &Filter, sql: &mut String, args: &mut Vec<Value>) {
    let list = |v: &[Filter], joiner: &str, empty: &str, sql: &mut String, args: &mut Vec<Value>| {
        if v.is_empty() {
            sql.push_str(empty);
            return;
        }
        sql.push('(');
        for (i, c) in v.iter().enumerate() {
            if i > 0 {
                sql.push_str(joiner);
            }
            condition(c, sql, args);
        }
        sql.push(')');
    };
    match f {
        Filter::And(v) => list(v, " AND ", "1", sql, args),
        Filter::Or(v) => list(v, " OR ", "0", sql, args),
        Filter::Not(v) => {
            sql.push_str("NOT ");
            list(v, " OR ", "0", sql, args);
        }
        Filter::InMailbox(m) => {
            sql.push_str(
                "EXISTS(SELECT 1 FROM email_mailboxes x WHERE x.email_id = e.id AND x.mailbox_id = ? AND NOT x.deleted)",
            );
            args.push(Value::Integer(*m));
        }
        Filter::HasKeyword(k) => {
            sql.push_str("instr(' ' || lower(e.keywords) || ' ', ?) > 0");
            // Stored keywords never contain spaces, so such a keyword matches nothing.
            args.push(Value::Text(format!(" {} ", k.to_lowercase())));
        }
        Filter::Before(t) => {
            sql.push_str("e.received_at < ?");
            args.push(Value::Integer(*t));
        }
        Filter::After(t) => {
            sql.push_str("e.received_at >= ?");
            args.push(Value::Integer(*t));
        }
        Filter::MinSize(n) => {
            sql.push_str("e.size >= ?");
            args.push(Value::Integer(i64::try_from(*n).unwrap_or(i64::MAX)));
        }
        Filter::MaxSize(n) => {
            sql.push_str("e.size < ?");
            args.push(Value::Integer(i64::try_from(*n).unwrap_or(i64::MAX)));
        }
        Filter::IsEmail(id) => {
            sql.push_str("e.id = ?");
            args.push(Value::Integer(*id));
        }
        Filter::InThread(t) => {
            sql.push_str("e.thread_id = ?");
            args.push(Value::Integer(*t));
        }
        Filter::Contains(field, text) => {
            // Emails carry their body's FTS rowid (schema v15); one without
            // it (indexed after the email was stored) is matched by hash.
            // SQLite builds each IN set once, the second only if needed.
            sql.push_str(
                "(e.text_id IN (SELECT rowid FROM email_fts WHERE email_fts MATCH ?)
                  OR (e.text_id IS NULL AND e.blob IN
                      (SELECT t.hash FROM email_fts f JOIN blob_text t ON t.id = f.rowid WHERE email_fts MATCH ?)))",
            );
            let q = fts_query(*field, text);
            args.push(Value::Text(q.clone()));
            args.push(Value::Text(q));
        }
    }
}

/// An FTS5 query for `text` as one phrase (a substring, with trigrams) in
/// the columns of `field`.
fn fts_query(field: TextField, text: &str) -> String {
    let phrase = format!("\"{}\"", text.replace('"', "\"\""));
    let columns = match field {
        TextField::Any => return phrase,
        TextField::Subject => "subject",
        TextField::From => "fromaddr",
        TextField::To => "toaddr",
        TextField::Cc => "ccaddr",
        TextField::Bcc => "bccaddr",
        TextField::Body => "body",
        TextField::AttachmentName => "attachments",
    };
    format!("{{{columns}}} : {phrase}")
}

pub(super) fn search_uids(conn: &Connection, mailbox: MailboxId, filter: &Filter) -> Result<Vec<u32>> {
    filter.check().map_err(StoreError::Invalid)?;
    let mut sql = String::from(
        "SELECT m.uid FROM email_mailboxes m JOIN emails e ON e.id = m.email_id WHERE m.mailbox_id = ? AND ",
    );
    let mut args = vec![Value::Integer(mailbox)];
    condition(filter, &mut sql, &mut args);
    sql.push_str(" ORDER BY m.uid");
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(r.get::<_, i64>(0)? as u32)
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// ORDER BY over columns named `{p}received_at` etc.; ties end on the id,
/// in the direction of the first key (newest first when there is none).
fn order(q: &Query, p: &str) -> String {
    let dir = |ascending: bool| if ascending { "ASC" } else { "DESC" };
    let mut keys: Vec<String> = q
        .sort
        .iter()
        .map(|s| {
            let col = match s.key {
                SortKey::ReceivedAt => format!("{p}received_at"),
                SortKey::SentAt => format!("COALESCE({p}sent_at, {p}received_at)"),
                SortKey::Size => format!("{p}size"),
            };
            format!("{col} {}", dir(s.ascending))
        })
        .collect();
    if keys.is_empty() {
        keys.push(format!("{p}received_at DESC"));
    }
    let first_ascending = q.sort.first().is_some_and(|s| s.ascending);
    keys.push(format!("{p}id {}", dir(first_ascending)));
    keys.join(", ")
}

/// The total of a query, when it asks for one.
fn count(conn: &Connection, q: &Query, sql: &str, args: &[Value]) -> Result<i64> {
    if !q.count_total {
        return Ok(0);
    }
    Ok(conn
        .prepare_cached(sql)?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?)
}

/// The ids of a page query ending in `LIMIT ? OFFSET ?`.
fn page_ids(conn: &Connection, sql: &str, mut args: Vec<Value>, limit: usize, offset: Value) -> Result<Vec<i64>> {
    args.push(Value::Integer(limit as i64));
    args.push(offset);
    Ok(conn
        .prepare_cached(sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

pub(super) fn query_emails(conn: &Connection, account: AccountId, q: &Query) -> Result<QueryResult> {
    if let Some(f) = &q.filter {
        f.check().map_err(StoreError::Invalid)?;
    }
    let mut sql = String::from(
        "SELECT e.id, e.thread_id, e.received_at, e.sent_at, e.size FROM emails e WHERE e.account_id = ?
           AND EXISTS(SELECT 1 FROM email_mailboxes v WHERE v.email_id = e.id AND NOT v.deleted)",
    );
    let mut args = vec![Value::Integer(account)];
    if let Some(f) = &q.filter {
        sql.push_str(" AND ");
        condition(f, &mut sql, &mut args);
    }
    let limit = q.limit.min(MAX_QUERY_LIMIT);
    let offset = Value::Integer(i64::try_from(q.position).unwrap_or(i64::MAX));
    let by_received = q.sort.len() <= 1 && q.sort.iter().all(|s| s.key == SortKey::ReceivedAt);
    let (total, ids): (i64, Vec<i64>) = if q.collapse_threads && by_received {
        // A thread's representative is its first matching email in sort
        // order: no earlier one exists. Walking emails in index order with
        // that check stops after the page, instead of ranking every email
        // of every thread (the window function below) on each query.
        let asc = q.sort.first().is_some_and(|s| s.ascending);
        let (cmp, dir) = if asc { ("<", "ASC") } else { (">", "DESC") };
        let mut inner = String::from(
            "SELECT 1 FROM emails e WHERE e.thread_id = m.thread_id AND e.account_id = ?
               AND EXISTS(SELECT 1 FROM email_mailboxes v WHERE v.email_id = e.id AND NOT v.deleted)",
        );
        let mut inner_args = vec![Value::Integer(account)];
        if let Some(f) = &q.filter {
            inner.push_str(" AND ");
            condition(f, &mut inner, &mut inner_args);
        }
        inner.push_str(&format!(
            " AND (e.received_at {cmp} m.received_at OR (e.received_at = m.received_at AND e.id {cmp} m.id))"
        ));
        let total = count(
            conn,
            q,
            &format!("SELECT COUNT(DISTINCT thread_id) FROM ({sql})"),
            &args,
        )?;
        let page = format!(
            "SELECT m.id FROM ({sql}) m WHERE NOT EXISTS ({inner})
             ORDER BY m.received_at {dir}, m.id {dir} LIMIT ? OFFSET ?"
        );
        let mut page_args = args.clone();
        page_args.extend(inner_args);
        (total, page_ids(conn, &page, page_args, limit, offset)?)
    } else {
        let matches = if q.collapse_threads {
            format!(
                "SELECT * FROM (SELECT m.*, ROW_NUMBER() OVER (PARTITION BY m.thread_id ORDER BY {}) AS rn
                   FROM ({sql}) m) WHERE rn = 1",
                order(q, "m.")
            )
        } else {
            sql
        };
        let total = count(conn, q, &format!("SELECT COUNT(*) FROM ({matches})"), &args)?;
        let page = format!(
            "SELECT r.id FROM ({matches}) r ORDER BY {} LIMIT ? OFFSET ?",
            order(q, "r.")
        );
        (total, page_ids(conn, &page, args, limit, offset)?)
    };
    Ok(QueryResult {
        ids,
        total: total as usize,
        position: q.position,
    })
}
