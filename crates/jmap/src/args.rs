//! Arguments shared by the standard methods (RFC 8620 §5) and the helpers
//! every method uses: typed parsing, account checks, property selection,
//! state strings and `/changes`.

use crate::Call;
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType};
use letterbox_store::{DataType, StoreError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Parse a method's arguments; anything that does not fit is
/// `invalidArguments` (RFC 8620 §3.6.2).
/// serde default for booleans that default to true (RFC 8620 §5.5 `isAscending`).
pub fn yes() -> bool {
    true
}

pub fn parse<T: DeserializeOwned>(args: Map<String, Value>) -> Result<T, MethodError> {
    serde_json::from_value(Value::Object(args)).map_err(|e| MethodError::invalid_arguments(e.to_string()))
}

/// RFC 8620 §3.6.2 `accountNotFound` unless `accountId` is the caller's.
pub fn check_account(caller: &crate::Caller, args: &Map<String, Value>) -> Result<(), MethodError> {
    match args.get("accountId") {
        Some(Value::String(id)) if *id == caller.account_id() => Ok(()),
        Some(Value::String(_)) => Err(MethodError::new(MethodErrorType::AccountNotFound)),
        _ => Err(MethodError::invalid_arguments("accountId missing")),
    }
}

/// A store failure as a method error.
pub fn store_error(e: StoreError) -> MethodError {
    tracing::error!(error = %e, "store error in a JMAP method");
    MethodError::with(MethodErrorType::ServerFail, "storage error")
}

/// RFC 8620 §5.1 /get arguments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetArgs {
    #[allow(dead_code)]
    pub account_id: String,
    pub ids: Option<Vec<String>>,
    pub properties: Option<Vec<String>>,
}

/// RFC 8620 §5.2 /changes arguments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangesArgs {
    #[allow(dead_code)]
    pub account_id: String,
    pub since_state: String,
    pub max_changes: Option<u64>,
}

/// RFC 8620 §5.3 /set arguments (the shape; each type parses objects itself).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetArgs {
    #[allow(dead_code)]
    pub account_id: String,
    pub if_in_state: Option<String>,
    pub create: Option<Map<String, Value>>,
    pub update: Option<Map<String, Value>>,
    pub destroy: Option<Vec<String>>,
}

impl SetArgs {
    pub fn count(&self) -> usize {
        self.create.as_ref().map_or(0, Map::len)
            + self.update.as_ref().map_or(0, Map::len)
            + self.destroy.as_ref().map_or(0, Vec::len)
    }
}

/// The /get `ids` argument, bounded by `maxObjectsInGet` (§5.1: requestTooLarge).
pub fn check_get_size(call: &Call<'_>, ids: Option<&Vec<String>>) -> Result<(), MethodError> {
    let max = call.jmap.config.limits.max_objects_in_get as usize;
    if ids.is_some_and(|ids| ids.len() > max) {
        return Err(MethodError::new(MethodErrorType::RequestTooLarge));
    }
    Ok(())
}

/// A /set bounded by `maxObjectsInSet` (§5.3).
pub fn check_set_size(call: &Call<'_>, set: &SetArgs) -> Result<(), MethodError> {
    if set.count() > call.jmap.config.limits.max_objects_in_set as usize {
        return Err(MethodError::new(MethodErrorType::RequestTooLarge));
    }
    Ok(())
}

/// Keep only the requested properties (`id` always, RFC 8620 §5.1).
pub fn select(mut obj: Map<String, Value>, properties: Option<&[String]>) -> Map<String, Value> {
    if let Some(props) = properties {
        obj.retain(|k, _| k == "id" || props.iter().any(|p| p == k));
    }
    obj
}

/// Properties asked for that the type does not have: invalidArguments.
pub fn check_properties(properties: Option<&[String]>, known: &[&str]) -> Result<(), MethodError> {
    if let Some(bad) = properties
        .unwrap_or_default()
        .iter()
        .find(|p| !known.contains(&p.as_str()))
    {
        return Err(MethodError::invalid_arguments(format!("unknown property {bad}")));
    }
    Ok(())
}

/// A state string (ARCHITECTURE.md: decimal account modseq).
pub fn state_string(modseq: u64) -> String {
    modseq.to_string()
}

pub async fn state(call: &Call<'_>, data: DataType) -> Result<String, MethodError> {
    call.store()
        .state(call.caller.account, data)
        .await
        .map(state_string)
        .map_err(store_error)
}

/// `ifInState` (§5.3): `stateMismatch` unless it is the current state.
pub async fn check_state(call: &Call<'_>, data: DataType, if_in_state: Option<&str>) -> Result<String, MethodError> {
    let current = state(call, data).await?;
    match if_in_state {
        Some(s) if s != current => Err(MethodError::new(MethodErrorType::StateMismatch)),
        _ => Ok(current),
    }
}

/// Most changes one /changes returns when the client sets no lower bound.
pub const MAX_CHANGES: usize = 5_000;

/// RFC 8620 §5.2 /changes for a type whose objects have ids of `kind`.
pub async fn changes(
    call: &Call<'_>,
    data: DataType,
    kind: IdKind,
    args: ChangesArgs,
) -> Result<Map<String, Value>, MethodError> {
    let Ok(since) = args.since_state.parse::<u64>() else {
        return Err(MethodError::new(MethodErrorType::CannotCalculateChanges));
    };
    let max = match args.max_changes {
        Some(0) => return Err(MethodError::invalid_arguments("maxChanges must be positive")),
        Some(n) => (n as usize).min(MAX_CHANGES),
        None => MAX_CHANGES,
    };
    let ch = match call.store().object_changes(call.caller.account, data, since, max).await {
        Ok(c) => c,
        Err(StoreError::CannotCalculateChanges) => {
            return Err(MethodError::new(MethodErrorType::CannotCalculateChanges))
        }
        Err(e) => return Err(store_error(e)),
    };
    let ids = |v: &[i64]| -> Vec<String> { v.iter().map(|&i| Id::new(kind, i).to_string()).collect() };
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("oldState".into(), json!(state_string(ch.old_state)));
    out.insert("newState".into(), json!(state_string(ch.new_state)));
    out.insert("hasMoreChanges".into(), json!(ch.has_more));
    out.insert("created".into(), json!(ids(&ch.created)));
    out.insert("updated".into(), json!(ids(&ch.updated)));
    out.insert("destroyed".into(), json!(ids(&ch.destroyed)));
    Ok(out)
}

/// The store ids of wire ids of `kind`; ids that name nothing go to `not_found`.
pub fn store_ids(kind: IdKind, ids: &[String], not_found: &mut Vec<String>) -> Vec<i64> {
    let mut out = Vec::new();
    for id in ids {
        match Id::parse(kind, id) {
            Some(n) => out.push(n),
            None => not_found.push(id.clone()),
        }
    }
    out
}

/// The standard /get response.
pub fn get_response(call: &Call<'_>, state: String, list: Vec<Value>, not_found: Vec<String>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("state".into(), json!(state));
    out.insert("list".into(), Value::Array(list));
    out.insert("notFound".into(), json!(not_found));
    out
}

/// The outcome lists of a /set (RFC 8620 §5.3).
#[derive(Default)]
pub struct SetOutcome {
    pub created: Map<String, Value>,
    pub not_created: Map<String, Value>,
    pub updated: Map<String, Value>,
    pub not_updated: Map<String, Value>,
    pub destroyed: Vec<String>,
    pub not_destroyed: Map<String, Value>,
}

impl SetOutcome {
    pub fn response(self, call: &Call<'_>, old_state: String, new_state: String) -> Map<String, Value> {
        let obj = object_or_null;
        let mut out = Map::new();
        out.insert("accountId".into(), json!(call.caller.account_id()));
        out.insert("oldState".into(), json!(old_state));
        out.insert("newState".into(), json!(new_state));
        out.insert("created".into(), obj(self.created));
        out.insert("updated".into(), obj(self.updated));
        out.insert(
            "destroyed".into(),
            if self.destroyed.is_empty() {
                Value::Null
            } else {
                json!(self.destroyed)
            },
        );
        out.insert("notCreated".into(), obj(self.not_created));
        out.insert("notUpdated".into(), obj(self.not_updated));
        out.insert("notDestroyed".into(), obj(self.not_destroyed));
        out
    }
}

/// The arguments RFC 8620 §5.6 /queryChanges adds to a /query's `filter`
/// and `sort`; taken out of the map so the rest parses as the type's query
/// arguments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryChangesArgs {
    pub since_query_state: String,
    pub max_changes: Option<u64>,
    /// §5.6 lets the server ignore it; mutable sorts (keywords) would make
    /// it unsafe to use anyway.
    #[allow(dead_code)]
    pub up_to_id: Option<String>,
    #[serde(default)]
    pub calculate_total: bool,
}

impl QueryChangesArgs {
    pub fn split(a: &mut Map<String, Value>) -> Result<QueryChangesArgs, MethodError> {
        let mut own = Map::new();
        for k in ["sinceQueryState", "maxChanges", "upToId", "calculateTotal"] {
            if let Some(v) = a.remove(k) {
                own.insert(k.to_string(), v);
            }
        }
        parse(own)
    }
}

/// Ids changed since `since` (created, updated or destroyed, in one list),
/// for /queryChanges. `tooManyChanges` when more than the client's
/// `maxChanges`, `cannotCalculateChanges` when the log no longer reaches
/// back or there are too many to consider.
pub async fn changed_since(
    call: &Call<'_>,
    data: DataType,
    since: &str,
    max_changes: Option<u64>,
) -> Result<Vec<i64>, MethodError> {
    let since: u64 = since
        .parse()
        .map_err(|_| MethodError::new(MethodErrorType::CannotCalculateChanges))?;
    let ch = match call
        .store()
        .object_changes(call.caller.account, data, since, MAX_CHANGES)
        .await
    {
        Ok(c) => c,
        Err(StoreError::CannotCalculateChanges) => {
            return Err(MethodError::new(MethodErrorType::CannotCalculateChanges))
        }
        Err(e) => return Err(store_error(e)),
    };
    let mut ids = ch.created;
    ids.extend(ch.updated);
    ids.extend(ch.destroyed);
    ids.sort_unstable();
    ids.dedup();
    let too_many = max_changes.is_some_and(|m| ids.len() as u64 > m);
    if too_many || (ch.has_more && max_changes.is_some()) {
        return Err(MethodError::new(MethodErrorType::TooManyChanges));
    }
    if ch.has_more {
        return Err(MethodError::new(MethodErrorType::CannotCalculateChanges));
    }
    Ok(ids)
}

/// RFC 8620 §5.6 response from the complete current results and every id
/// that changed since the old state. Each changed id is `removed` (it may
/// have been in the old results: the RFC allows extra ids there) and, when
/// it is in the results now, `added` at its index, so a client that
/// applies removed-then-added ends with exactly the current list.
pub fn query_changes_response(
    call: &Call<'_>,
    kind: IdKind,
    old_state: &str,
    new_state: String,
    current: &[i64],
    changed: &[i64],
    calculate_total: bool,
) -> Map<String, Value> {
    let changed_set: std::collections::HashSet<i64> = changed.iter().copied().collect();
    let wire = |i: i64| Id::new(kind, i).to_string();
    let added: Vec<Value> = current
        .iter()
        .enumerate()
        .filter(|(_, id)| changed_set.contains(id))
        .map(|(index, &id)| json!({"id": wire(id), "index": index}))
        .collect();
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("oldQueryState".into(), json!(old_state));
    out.insert("newQueryState".into(), json!(new_state));
    out.insert(
        "removed".into(),
        json!(changed.iter().map(|&i| wire(i)).collect::<Vec<_>>()),
    );
    out.insert("added".into(), json!(added));
    if calculate_total {
        out.insert("total".into(), json!(current.len()));
    }
    out
}

/// An object, or `null` when it is empty (RFC 8620 `…|null` results).
pub fn object_or_null(m: Map<String, Value>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// A list as JSON, or `null` when it is empty.
pub fn json_or_null<T: serde::Serialize>(v: Vec<T>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}
