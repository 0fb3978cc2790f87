//! RFC 8621 §4 Email: get, changes, query (this file), set, import and
//! parse (`set.rs`), properties from the message (`render.rs`).

pub mod render;
mod set;
pub mod snippet;
mod structure;

pub use set::{import, parse, set};

use crate::args::{self, ChangesArgs};
use crate::{date, keywords, one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType};
use letterbox_store::{DataType, Filter, Query, Sort, SortKey, TextField};
use render::BodyOptions;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetArgs {
    #[allow(dead_code)]
    account_id: String,
    ids: Option<Vec<String>>,
    properties: Option<Vec<String>>,
    body_properties: Option<Vec<String>>,
    #[serde(default)]
    fetch_text_body_values: bool,
    #[serde(default, rename = "fetchHTMLBodyValues")]
    fetch_html_body_values: bool,
    #[serde(default)]
    fetch_all_body_values: bool,
    #[serde(default)]
    max_body_value_bytes: u64,
}

/// The body options of an Email/get or Email/parse.
fn body_options(
    call: &Call<'_>,
    body_properties: Option<Vec<String>>,
    text: bool,
    html: bool,
    all: bool,
    max: u64,
) -> Result<BodyOptions, MethodError> {
    let body_properties =
        body_properties.unwrap_or_else(|| render::DEFAULT_BODY_PROPERTIES.iter().map(|s| s.to_string()).collect());
    if let Some(bad) = body_properties.iter().find(|p| !render::known_body_property(p)) {
        return Err(MethodError::invalid_arguments(format!("unknown body property {bad}")));
    }
    let cap = call.jmap.config.max_body_value_bytes;
    Ok(BodyOptions {
        body_properties,
        fetch_text: text,
        fetch_html: html,
        fetch_all: all,
        max_bytes: if max == 0 { cap } else { (max as usize).min(cap) },
    })
}

fn properties(p: Option<Vec<String>>) -> Result<Vec<String>, MethodError> {
    let p = p.unwrap_or_else(|| render::DEFAULT_PROPERTIES.iter().map(|s| s.to_string()).collect());
    if let Some(bad) = p.iter().find(|p| !render::known_property(p)) {
        return Err(MethodError::invalid_arguments(format!("unknown property {bad}")));
    }
    Ok(p)
}

/// RFC 8621 §4.2.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    let Some(ids) = a.ids else {
        // Listing every email of an account is what Email/query is for.
        return Err(MethodError::with(
            MethodErrorType::RequestTooLarge,
            "Email/get needs ids; use Email/query",
        ));
    };
    args::check_get_size(call, Some(&ids))?;
    let props = properties(a.properties)?;
    let opts = body_options(
        call,
        a.body_properties,
        a.fetch_text_body_values,
        a.fetch_html_body_values,
        a.fetch_all_body_values,
        a.max_body_value_bytes,
    )?;
    let state = args::state(call, DataType::Email).await?;
    let mut not_found = Vec::new();
    let resolved: Vec<String> = ids
        .iter()
        .map(|raw| call.resolve_id(raw).unwrap_or_else(|| raw.clone()))
        .collect();
    let numbers = args::store_ids(IdKind::Email, &resolved, &mut not_found);
    let metas = call
        .store()
        .emails(call.caller.account, &numbers)
        .await
        .map_err(args::store_error)?;
    let by_id: HashMap<i64, &letterbox_store::EmailMeta> = metas.iter().map(|m| (m.id, m)).collect();
    for (raw, n) in ids.iter().zip(&resolved) {
        if Id::parse(IdKind::Email, n).is_some_and(|n| !by_id.contains_key(&n)) {
            not_found.push(raw.clone());
        }
    }
    let needs_raw = props.iter().any(|p| !render::META_PROPERTIES.contains(&p.as_str()));
    let raws = if needs_raw && !metas.is_empty() {
        let ids: Vec<i64> = metas.iter().map(|m| m.id).collect();
        call.store()
            .message_data(&ids, false, true)
            .await
            .map_err(args::store_error)?
    } else {
        HashMap::new()
    };
    // In the order asked, once per email.
    let mut order: Vec<&letterbox_store::EmailMeta> = Vec::new();
    for n in resolved.iter().filter_map(|r| Id::parse(IdKind::Email, r)) {
        if let Some(m) = by_id.get(&n) {
            if !order.iter().any(|o| o.id == n) {
                order.push(m);
            }
        }
    }
    let jobs: Vec<(letterbox_store::EmailMeta, Option<std::sync::Arc<Vec<u8>>>)> = order
        .into_iter()
        .map(|m| ((*m).clone(), raws.get(&m.id).and_then(|d| d.raw.clone())))
        .collect();
    let list = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|(meta, raw)| {
                let mut obj = Map::new();
                render::meta_properties(&meta, &props, &mut obj);
                if needs_raw {
                    if let Some(raw) = raw {
                        render::message_properties(&raw, &meta.blob_id, &props, &opts, &mut obj);
                    }
                }
                Value::Object(obj)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| MethodError::server_fail(e.to_string()))?;
    one("Email/get", args::get_response(call, state, list, not_found))
}

/// RFC 8621 §4.3.
pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ChangesArgs = args::parse(a)?;
    one(
        "Email/changes",
        args::changes(call, DataType::Email, IdKind::Email, a).await?,
    )
}

/// RFC 8621 §4.4.1 FilterCondition, and RFC 8620 §5.5 FilterOperator.
fn filter(call: &Call<'_>, v: &Value, depth: usize) -> Result<Filter, MethodError> {
    let bad = |why: &str| MethodError::with(MethodErrorType::UnsupportedFilter, why.to_string());
    if depth > letterbox_store::query::MAX_FILTER_DEPTH {
        return Err(bad("filter nested too deeply"));
    }
    let obj = v.as_object().ok_or_else(|| bad("a filter is an object"))?;
    if let Some(op) = obj.get("operator") {
        let conds = obj
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("an operator needs conditions"))?;
        let inner = conds
            .iter()
            .map(|c| filter(call, c, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return match op.as_str() {
            Some("AND") => Ok(Filter::And(inner)),
            Some("OR") => Ok(Filter::Or(inner)),
            Some("NOT") => Ok(Filter::Not(inner)),
            _ => Err(bad("operator is AND, OR or NOT")),
        };
    }
    let mut all = Vec::new();
    let mailbox = |v: &Value| -> Result<i64, MethodError> {
        v.as_str()
            .and_then(|s| call.resolve_id(s))
            .and_then(|s| Id::parse(IdKind::Mailbox, &s))
            // An id that names nothing matches nothing.
            .map_or(Ok(0), Ok)
    };
    for (k, v) in obj {
        let text = |field: TextField| -> Result<Filter, MethodError> {
            let s = v.as_str().ok_or_else(|| bad("text filters take strings"))?;
            Ok(Filter::Contains(field, s.to_string()))
        };
        let time = || -> Result<i64, MethodError> {
            v.as_str()
                .and_then(date::parse)
                .ok_or_else(|| MethodError::invalid_arguments(format!("{k}: not a UTCDate")))
        };
        let size = || -> Result<u64, MethodError> {
            v.as_u64()
                .ok_or_else(|| MethodError::invalid_arguments(format!("{k}: not an unsigned integer")))
        };
        let keyword = || -> Result<String, MethodError> {
            v.as_str()
                .and_then(keywords::to_imap)
                .ok_or_else(|| MethodError::invalid_arguments(format!("{k}: not a keyword")))
        };
        all.push(match k.as_str() {
            "inMailbox" => Filter::InMailbox(mailbox(v)?),
            "inMailboxOtherThan" => {
                let ids = v.as_array().ok_or_else(|| bad("inMailboxOtherThan takes ids"))?;
                let ids = ids.iter().map(mailbox).collect::<Result<Vec<_>, _>>()?;
                Filter::Not(vec![Filter::Or(ids.into_iter().map(Filter::InMailbox).collect())])
            }
            "before" => Filter::Before(time()?),
            "after" => Filter::After(time()?),
            "minSize" => Filter::MinSize(size()?),
            "maxSize" => Filter::MaxSize(size()?),
            "hasKeyword" => Filter::HasKeyword(keyword()?),
            "notKeyword" => Filter::Not(vec![Filter::HasKeyword(keyword()?)]),
            "text" => text(TextField::Any)?,
            "from" => text(TextField::From)?,
            "to" => text(TextField::To)?,
            "cc" => text(TextField::Cc)?,
            "bcc" => text(TextField::Bcc)?,
            "subject" => text(TextField::Subject)?,
            "body" => text(TextField::Body)?,
            other => return Err(bad(&format!("filter {other} is not supported"))),
        });
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Filter::And(all)
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Comparator {
    property: String,
    #[serde(default = "crate::args::yes")]
    is_ascending: bool,
    #[allow(dead_code)]
    collation: Option<String>,
    #[allow(dead_code)]
    keyword: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueryArgs {
    #[allow(dead_code)]
    account_id: String,
    filter: Option<Value>,
    sort: Option<Vec<Comparator>>,
    #[serde(default)]
    position: i64,
    anchor: Option<String>,
    #[serde(default)]
    anchor_offset: i64,
    limit: Option<u64>,
    #[serde(default)]
    calculate_total: bool,
    #[serde(default)]
    collapse_threads: bool,
}

/// Most ids one Email/query returns (RFC 8620 §5.5: the server may cap `limit`).
pub const MAX_QUERY_IDS: usize = 1_000;

/// The store query of an Email/query or /queryChanges, without the window.
fn plan(call: &Call<'_>, a: &QueryArgs) -> Result<Query, MethodError> {
    let filter = match &a.filter {
        None | Some(Value::Null) => None,
        Some(f) => Some(filter(call, f, 1)?),
    };
    if let Some(f) = &filter {
        f.check()
            .map_err(|e| MethodError::with(MethodErrorType::UnsupportedFilter, e))?;
    }
    let mut sort = Vec::new();
    for c in a.sort.as_deref().unwrap_or_default() {
        let key = match c.property.as_str() {
            "receivedAt" => SortKey::ReceivedAt,
            "sentAt" => SortKey::SentAt,
            "size" => SortKey::Size,
            _ => return Err(MethodError::new(MethodErrorType::UnsupportedSort)),
        };
        sort.push(Sort {
            key,
            ascending: c.is_ascending,
        });
    }
    if sort.is_empty() {
        // RFC 8621 §4.4.2 leaves the default to the server: newest first, as every client shows.
        sort.push(Sort {
            key: SortKey::ReceivedAt,
            ascending: false,
        });
    }
    Ok(Query {
        filter,
        sort,
        collapse_threads: a.collapse_threads,
        position: 0,
        limit: letterbox_store::query::MAX_QUERY_LIMIT,
        count_total: a.calculate_total,
    })
}

/// The query state of an Email/query: the Email state, and for collapsed
/// threads also the Thread state, since a thread's representative changes
/// when another of its emails comes or goes (RFC 8620 §5.5: opaque).
async fn query_state(call: &Call<'_>, collapse_threads: bool) -> Result<String, MethodError> {
    let email = args::state(call, DataType::Email).await?;
    if !collapse_threads {
        return Ok(email);
    }
    Ok(format!("{email}.{}", args::state(call, DataType::Thread).await?))
}

/// RFC 8621 §4.4 (RFC 8620 §5.5).
pub async fn query(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: QueryArgs = args::parse(a)?;
    let plan = plan(call, &a)?;
    let limit = a.limit.map_or(MAX_QUERY_IDS, |l| (l as usize).min(MAX_QUERY_IDS));
    let state = query_state(call, a.collapse_threads).await?;
    let run = |position: usize, limit: usize| Query {
        position,
        limit,
        ..plan.clone()
    };
    let (ids, total, position) = if let Some(anchor) = &a.anchor {
        let anchor_id = call
            .resolve_id(anchor)
            .and_then(|s| Id::parse(IdKind::Email, &s))
            .ok_or_else(|| MethodError::new(MethodErrorType::AnchorNotFound))?;
        let all = call
            .store()
            .query_emails(call.caller.account, run(0, letterbox_store::query::MAX_QUERY_LIMIT))
            .await
            .map_err(args::store_error)?;
        let at = all
            .ids
            .iter()
            .position(|&i| i == anchor_id)
            .ok_or_else(|| MethodError::new(MethodErrorType::AnchorNotFound))?;
        let start = (at as i64 + a.anchor_offset).clamp(0, all.ids.len() as i64) as usize;
        let end = (start + limit).min(all.ids.len());
        (all.ids[start..end].to_vec(), all.total, start)
    } else {
        let position = if a.position < 0 {
            let count = Query {
                count_total: true,
                ..run(0, 0)
            };
            let total = call
                .store()
                .query_emails(call.caller.account, count)
                .await
                .map_err(args::store_error)?
                .total;
            total.saturating_sub(a.position.unsigned_abs() as usize)
        } else {
            a.position as usize
        };
        let r = call
            .store()
            .query_emails(call.caller.account, run(position, limit))
            .await
            .map_err(args::store_error)?;
        (r.ids, r.total, r.position)
    };
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("queryState".into(), json!(state));
    out.insert("canCalculateChanges".into(), json!(true));
    out.insert("position".into(), json!(position));
    out.insert(
        "ids".into(),
        json!(ids
            .iter()
            .map(|&i| Id::new(IdKind::Email, i).to_string())
            .collect::<Vec<_>>()),
    );
    if a.calculate_total {
        out.insert("total".into(), json!(total));
    }
    if a.limit.is_some_and(|l| l as usize > MAX_QUERY_IDS) {
        out.insert("limit".into(), json!(MAX_QUERY_IDS));
    }
    one("Email/query", out)
}

/// RFC 8621 §4.5 (RFC 8620 §5.6). Every email changed since the old state
/// counts as changed; with collapsed threads so does every email of a
/// thread that changed, because its representative may have.
pub async fn query_changes(call: &mut Call<'_>, mut a: Map<String, Value>) -> MethodResult {
    let qc = args::QueryChangesArgs::split(&mut a)?;
    let a: QueryArgs = args::parse(a)?;
    if a.anchor.is_some() || a.position != 0 || a.limit.is_some() {
        return Err(MethodError::invalid_arguments("queryChanges takes no window"));
    }
    let plan = plan(call, &a)?;
    let new_state = query_state(call, a.collapse_threads).await?;
    let (email_since, thread_since) = match qc.since_query_state.split_once('.') {
        Some((e, t)) if a.collapse_threads => (e, Some(t)),
        None if !a.collapse_threads => (qc.since_query_state.as_str(), None),
        _ => return Err(MethodError::new(MethodErrorType::CannotCalculateChanges)),
    };
    let mut changed = args::changed_since(call, DataType::Email, email_since, qc.max_changes).await?;
    if let Some(t) = thread_since {
        for thread in args::changed_since(call, DataType::Thread, t, None).await? {
            let members = call
                .store()
                .thread(call.caller.account, thread)
                .await
                .map_err(args::store_error)?;
            changed.extend(members);
        }
        changed.sort_unstable();
        changed.dedup();
        if qc.max_changes.is_some_and(|m| changed.len() as u64 > m) {
            return Err(MethodError::new(MethodErrorType::TooManyChanges));
        }
    }
    let current = call
        .store()
        .query_emails(call.caller.account, plan)
        .await
        .map_err(args::store_error)?;
    let out = args::query_changes_response(
        call,
        IdKind::Email,
        &qc.since_query_state,
        new_state,
        &current.ids,
        &changed,
        qc.calculate_total,
    );
    one("Email/queryChanges", out)
}
