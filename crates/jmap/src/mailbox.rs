//! RFC 8621 §2 Mailbox: get, changes, query, set. The store keeps full
//! IMAP paths; the tree is derived (ARCHITECTURE.md, "Mailbox tree").

use crate::args::{self, ChangesArgs, GetArgs, SetArgs};
use crate::{one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType, SetError, SetErrorType};
use letterbox_store::{DataType, Mailbox, MailboxCounts, SpecialUse, StoreError, HIERARCHY_DELIMITER};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Deepest mailbox tree accepted by Mailbox/set (RFC 8621 §1.3.1).
pub const MAX_DEPTH: usize = 32;
/// Longest mailbox name (one level) in bytes (RFC 8621 §1.3.1).
pub const MAX_NAME_BYTES: usize = 255;

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
];

/// RFC 8621 §2: role names (IANA "IMAP Mailbox Name Attributes", lowercased).
fn role(mb: &Mailbox) -> Option<&'static str> {
    if mb.name == "INBOX" {
        return Some("inbox");
    }
    Some(match mb.special_use? {
        SpecialUse::All => "all",
        SpecialUse::Archive => "archive",
        SpecialUse::Drafts => "drafts",
        SpecialUse::Flagged => "flagged",
        SpecialUse::Junk => "junk",
        SpecialUse::Sent => "sent",
        SpecialUse::Trash => "trash",
    })
}

fn special_use_of_role(role: &str) -> Option<SpecialUse> {
    Some(match role {
        "all" => SpecialUse::All,
        "archive" => SpecialUse::Archive,
        "drafts" => SpecialUse::Drafts,
        "flagged" => SpecialUse::Flagged,
        "junk" => SpecialUse::Junk,
        "sent" => SpecialUse::Sent,
        "trash" => SpecialUse::Trash,
        _ => return None,
    })
}

/// The account's mailboxes with their tree position.
pub(crate) struct Tree {
    pub boxes: Vec<Mailbox>,
    by_name: HashMap<String, usize>,
}

impl Tree {
    pub async fn load(call: &Call<'_>) -> Result<Tree, MethodError> {
        let boxes = call
            .store()
            .list_mailboxes(call.caller.account)
            .await
            .map_err(args::store_error)?;
        let by_name = boxes.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
        Ok(Tree { boxes, by_name })
    }

    pub fn by_id(&self, id: i64) -> Option<&Mailbox> {
        self.boxes.iter().find(|m| m.id == id)
    }

    pub fn by_role(&self, role_name: &str) -> Option<&Mailbox> {
        self.boxes.iter().find(|m| role(m) == Some(role_name))
    }

    /// (parent, leaf name): the longest existing ancestor path.
    pub fn parent_and_name<'m>(&self, mb: &'m Mailbox) -> (Option<&Mailbox>, &'m str) {
        let name = mb.name.as_str();
        let mut end = name.len();
        while let Some(pos) = name[..end].rfind(HIERARCHY_DELIMITER) {
            if let Some(&i) = self.by_name.get(&name[..pos]) {
                return (Some(&self.boxes[i]), &name[pos + 1..]);
            }
            end = pos;
        }
        (None, name)
    }

    fn has_children(&self, mb: &Mailbox) -> bool {
        let prefix = format!("{}{HIERARCHY_DELIMITER}", mb.name);
        self.boxes.iter().any(|m| m.name.starts_with(&prefix))
    }
}

fn mailbox_object(tree: &Tree, mb: &Mailbox, counts: Option<&MailboxCounts>) -> Map<String, Value> {
    let (parent, name) = tree.parent_and_name(mb);
    let is_inbox = mb.name == "INBOX";
    let n = |f: fn(&MailboxCounts) -> u64| counts.map_or(0, f);
    let obj = json!({
        "id": Id::new(IdKind::Mailbox, mb.id).to_string(),
        "name": name,
        "parentId": parent.map(|p| Id::new(IdKind::Mailbox, p.id).to_string()),
        "role": role(mb),
        "sortOrder": if is_inbox { 0 } else { 1 },
        "totalEmails": n(|c| c.total_emails),
        "unreadEmails": n(|c| c.unread_emails),
        "totalThreads": n(|c| c.total_threads),
        "unreadThreads": n(|c| c.unread_threads),
        "myRights": {
            "mayReadItems": true, "mayAddItems": true, "mayRemoveItems": true,
            "maySetSeen": true, "maySetKeywords": true, "mayCreateChild": true,
            "mayRename": !is_inbox, "mayDelete": !is_inbox, "maySubmit": true,
        },
        "isSubscribed": mb.subscribed,
    });
    match obj {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn counts(call: &Call<'_>) -> Result<HashMap<i64, MailboxCounts>, MethodError> {
    Ok(call
        .store()
        .mailbox_counts(call.caller.account)
        .await
        .map_err(args::store_error)?
        .into_iter()
        .map(|c| (c.mailbox, c))
        .collect())
}

/// RFC 8621 §2.1 (RFC 8620 §5.1).
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    args::check_get_size(call, a.ids.as_ref())?;
    args::check_properties(a.properties.as_deref(), PROPERTIES)?;
    let state = args::state(call, DataType::Mailbox).await?;
    let tree = Tree::load(call).await?;
    let counts = counts(call).await?;
    let mut not_found = Vec::new();
    let wanted: Vec<&Mailbox> = match &a.ids {
        None => tree.boxes.iter().collect(),
        Some(ids) => {
            let mut out = Vec::new();
            for raw in ids {
                let found = call
                    .resolve_id(raw)
                    .and_then(|id| Id::parse(IdKind::Mailbox, &id))
                    .and_then(|n| tree.by_id(n));
                match found {
                    Some(m) => out.push(m),
                    None => not_found.push(raw.clone()),
                }
            }
            out
        }
    };
    let list = wanted
        .into_iter()
        .map(|mb| {
            Value::Object(args::select(
                mailbox_object(&tree, mb, counts.get(&mb.id)),
                a.properties.as_deref(),
            ))
        })
        .collect();
    one("Mailbox/get", args::get_response(call, state, list, not_found))
}

/// RFC 8621 §2.2.
pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ChangesArgs = args::parse(a)?;
    let mut out = args::changes(call, DataType::Mailbox, IdKind::Mailbox, a).await?;
    out.insert("updatedProperties".into(), Value::Null);
    one("Mailbox/changes", out)
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MailboxFilter {
    #[serde(default, deserialize_with = "nullable")]
    parent_id: Option<Option<String>>,
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    role: Option<Option<String>>,
    has_any_role: Option<bool>,
    is_subscribed: Option<bool>,
}

/// Tell an absent property (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Comparator {
    property: String,
    #[serde(default = "crate::args::yes")]
    is_ascending: bool,
    #[allow(dead_code)]
    collation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueryArgs {
    #[allow(dead_code)]
    account_id: String,
    filter: Option<MailboxFilter>,
    sort: Option<Vec<Comparator>>,
    #[serde(default)]
    position: i64,
    limit: Option<u64>,
    #[serde(default)]
    calculate_total: bool,
    #[serde(default)]
    sort_as_tree: bool,
    #[serde(default)]
    filter_as_tree: bool,
    #[allow(dead_code)]
    anchor: Option<String>,
    #[allow(dead_code)]
    anchor_offset: Option<i64>,
}

/// The mailboxes a Mailbox/query selects, in its order (RFC 8621 §2.3:
/// filters are AND-ed FilterConditions).
fn results<'t>(tree: &'t Tree, a: &QueryArgs) -> Result<Vec<&'t Mailbox>, MethodError> {
    let f = a.filter.clone().unwrap_or_default();
    let matches = |mb: &Mailbox| {
        let (parent, name) = tree.parent_and_name(mb);
        let parent_id = parent.map(|p| Id::new(IdKind::Mailbox, p.id).to_string());
        f.parent_id.as_ref().is_none_or(|want| *want == parent_id)
            && f.name
                .as_ref()
                .is_none_or(|n| name.to_lowercase().contains(&n.to_lowercase()))
            && f.role.as_ref().is_none_or(|r| r.as_deref() == role(mb))
            && f.has_any_role.is_none_or(|h| h == role(mb).is_some())
            && f.is_subscribed.is_none_or(|s| s == mb.subscribed)
    };
    let mut list: Vec<&Mailbox> = tree.boxes.iter().filter(|m| matches(m)).collect();
    if a.filter_as_tree {
        // §2.3: a mailbox matches only if its ancestors all match too.
        let ok: Vec<i64> = list.iter().map(|m| m.id).collect();
        list.retain(|m| {
            let mut cur = tree.parent_and_name(m).0;
            while let Some(p) = cur {
                if !ok.contains(&p.id) {
                    return false;
                }
                cur = tree.parent_and_name(p).0;
            }
            true
        });
    }
    let sort = a.sort.as_deref().unwrap_or_default();
    for c in sort {
        if c.property != "name" && c.property != "sortOrder" {
            return Err(MethodError::new(MethodErrorType::UnsupportedSort));
        }
    }
    let key = |m: &Mailbox| {
        let (_, name) = tree.parent_and_name(m);
        (if m.name == "INBOX" { 0 } else { 1 }, name.to_lowercase())
    };
    list.sort_by(|x, y| {
        for c in sort {
            let o = if c.property == "name" {
                key(x).1.cmp(&key(y).1)
            } else {
                key(x).0.cmp(&key(y).0)
            };
            let o = if c.is_ascending { o } else { o.reverse() };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    if a.sort_as_tree {
        // Full paths sort parents before children, siblings by name.
        list.sort_by_key(|m| m.name.to_lowercase());
    }
    Ok(list)
}

/// RFC 8621 §2.3 (RFC 8620 §5.5).
pub async fn query(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: QueryArgs = args::parse(a)?;
    let tree = Tree::load(call).await?;
    let state = args::state(call, DataType::Mailbox).await?;
    let list = results(&tree, &a)?;
    let total = list.len();
    let start = if a.position < 0 {
        total.saturating_sub(a.position.unsigned_abs() as usize)
    } else {
        (a.position as usize).min(total)
    };
    let end = a.limit.map_or(total, |l| (start + l as usize).min(total));
    let ids: Vec<String> = list[start..end]
        .iter()
        .map(|m| Id::new(IdKind::Mailbox, m.id).to_string())
        .collect();
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("queryState".into(), json!(state));
    out.insert("canCalculateChanges".into(), json!(true));
    out.insert("position".into(), json!(start));
    out.insert("ids".into(), json!(ids));
    if a.calculate_total {
        out.insert("total".into(), json!(total));
    }
    one("Mailbox/query", out)
}

/// RFC 8621 §2.4 (RFC 8620 §5.6).
pub async fn query_changes(call: &mut Call<'_>, mut a: Map<String, Value>) -> MethodResult {
    let qc = args::QueryChangesArgs::split(&mut a)?;
    let a: QueryArgs = args::parse(a)?;
    let state = args::state(call, DataType::Mailbox).await?;
    let changed = args::changed_since(call, DataType::Mailbox, &qc.since_query_state, qc.max_changes).await?;
    let tree = Tree::load(call).await?;
    let current: Vec<i64> = results(&tree, &a)?.iter().map(|m| m.id).collect();
    let out = args::query_changes_response(
        call,
        IdKind::Mailbox,
        &qc.since_query_state,
        state,
        &current,
        &changed,
        qc.calculate_total,
    );
    one("Mailbox/queryChanges", out)
}

/// A mailbox object's settable properties (RFC 8621 §2.5).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailboxCreate {
    name: Option<String>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    is_subscribed: Option<bool>,
    #[serde(default)]
    sort_order: Option<u32>,
}

fn check_leaf(name: &str) -> Result<(), SetError> {
    if name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.contains(HIERARCHY_DELIMITER)
        || name.chars().any(char::is_control)
    {
        return Err(SetError::invalid_properties(
            &["name"],
            format!("a name is 1–{MAX_NAME_BYTES} bytes without '{HIERARCHY_DELIMITER}' or control characters"),
        ));
    }
    Ok(())
}

fn store_set_error(e: StoreError) -> SetError {
    match e {
        StoreError::AlreadyExists(what) => SetError::new(SetErrorType::AlreadyExists, format!("{what} already exists")),
        StoreError::NotFound(_) => SetError::not_found(),
        StoreError::Invalid(why) => SetError::new(SetErrorType::InvalidProperties, why),
        other => {
            tracing::error!(error = %other, "store error in Mailbox/set");
            SetError::new(SetErrorType::Forbidden, "storage error")
        }
    }
}

/// The full path for `name` under the mailbox named by `parent` (a wire id
/// or creation reference), checked for depth.
fn full_path(call: &Call<'_>, tree: &Tree, parent: Option<&str>, name: &str) -> Result<String, SetError> {
    check_leaf(name)?;
    let path = match parent {
        None => name.to_string(),
        Some(raw) => {
            let p = call
                .resolve_id(raw)
                .and_then(|id| Id::parse(IdKind::Mailbox, &id))
                .and_then(|n| tree.by_id(n))
                .ok_or_else(|| SetError::invalid_properties(&["parentId"], "no such parent mailbox"))?;
            format!("{}{HIERARCHY_DELIMITER}{name}", p.name)
        }
    };
    if path.split(HIERARCHY_DELIMITER).count() > MAX_DEPTH {
        return Err(SetError::invalid_properties(&["parentId"], "mailbox tree too deep"));
    }
    if path.eq_ignore_ascii_case("INBOX") {
        return Err(SetError::new(SetErrorType::AlreadyExists, "INBOX exists"));
    }
    Ok(path)
}

/// RFC 8621 §2.5 (RFC 8620 §5.3).
pub async fn set(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let remove_emails = a.get("onDestroyRemoveEmails").and_then(Value::as_bool).unwrap_or(false);
    let mut a = a;
    a.remove("onDestroyRemoveEmails");
    let s: SetArgs = args::parse(a)?;
    args::check_set_size(call, &s)?;
    let old_state = args::check_state(call, DataType::Mailbox, s.if_in_state.as_deref()).await?;
    let account = call.caller.account;
    let mut o = args::SetOutcome::default();

    for (cid, value) in s.create.unwrap_or_default() {
        let tree = Tree::load(call).await?;
        let outcome = async {
            let c: MailboxCreate = serde_json::from_value(value)
                .map_err(|e| SetError::new(SetErrorType::InvalidProperties, e.to_string()))?;
            let name = c
                .name
                .ok_or_else(|| SetError::invalid_properties(&["name"], "name is required"))?;
            let path = full_path(call, &tree, c.parent_id.as_deref(), &name)?;
            let special = match c.role.as_deref() {
                None => None,
                Some(r) => {
                    let su = special_use_of_role(r)
                        .ok_or_else(|| SetError::invalid_properties(&["role"], "unknown or reserved role"))?;
                    if tree.by_role(r).is_some() {
                        return Err(SetError::invalid_properties(&["role"], "another mailbox has this role"));
                    }
                    Some(su)
                }
            };
            let _ = c.sort_order;
            let mb = call
                .store()
                .create_mailbox(account, &path, special)
                .await
                .map_err(store_set_error)?;
            if c.is_subscribed.unwrap_or(false) {
                call.store()
                    .set_subscribed(account, &path, true)
                    .await
                    .map_err(store_set_error)?;
            }
            Ok(mb)
        }
        .await;
        match outcome {
            Ok(mb) => {
                let id = Id::new(IdKind::Mailbox, mb.id).to_string();
                call.created.insert(cid.clone(), id.clone());
                o.created.insert(
                    cid,
                    json!({"id": id, "sortOrder": 1, "totalEmails": 0, "unreadEmails": 0,
                           "totalThreads": 0, "unreadThreads": 0, "isSubscribed": mb.subscribed}),
                );
            }
            Err(e) => {
                o.not_created.insert(cid, json!(e));
            }
        }
    }

    for (raw_id, patch) in s.update.unwrap_or_default() {
        let tree = Tree::load(call).await?;
        let outcome = async {
            let mb = call
                .resolve_id(&raw_id)
                .and_then(|id| Id::parse(IdKind::Mailbox, &id))
                .and_then(|n| tree.by_id(n))
                .cloned()
                .ok_or_else(SetError::not_found)?;
            let patch = patch
                .as_object()
                .cloned()
                .ok_or_else(|| SetError::new(SetErrorType::InvalidPatch, "not an object"))?;
            let (parent, leaf) = tree.parent_and_name(&mb);
            let mut new_name = leaf.to_string();
            let mut new_parent = parent.map(|p| Id::new(IdKind::Mailbox, p.id).to_string());
            let mut subscribe = None;
            for (k, v) in &patch {
                match (k.as_str(), v) {
                    ("name", Value::String(n)) => new_name = n.clone(),
                    ("parentId", Value::String(p)) => new_parent = Some(p.clone()),
                    ("parentId", Value::Null) => new_parent = None,
                    ("isSubscribed", Value::Bool(b)) => subscribe = Some(*b),
                    ("sortOrder", Value::Number(_)) => {}
                    ("role", r) if r.as_str() == role(&mb) => {}
                    ("role", _) => return Err(SetError::invalid_properties(&["role"], "roles cannot be changed")),
                    _ => {
                        return Err(SetError::invalid_properties(
                            &[k.as_str()],
                            "not settable or wrong type",
                        ))
                    }
                }
            }
            let path = full_path(call, &tree, new_parent.as_deref(), &new_name)?;
            if path != mb.name {
                if mb.name == "INBOX" {
                    return Err(SetError::new(SetErrorType::Forbidden, "INBOX cannot be renamed"));
                }
                call.store()
                    .rename_mailbox(account, &mb.name, &path)
                    .await
                    .map_err(store_set_error)?;
            }
            if let Some(b) = subscribe {
                call.store()
                    .set_subscribed(account, &path, b)
                    .await
                    .map_err(store_set_error)?;
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                o.updated.insert(raw_id, Value::Null);
            }
            Err(e) => {
                o.not_updated.insert(raw_id, json!(e));
            }
        }
    }

    for raw_id in s.destroy.unwrap_or_default() {
        let tree = Tree::load(call).await?;
        let counts = counts(call).await?;
        let outcome = async {
            let mb = call
                .resolve_id(&raw_id)
                .and_then(|id| Id::parse(IdKind::Mailbox, &id))
                .and_then(|n| tree.by_id(n))
                .ok_or_else(SetError::not_found)?;
            if mb.name == "INBOX" {
                return Err(SetError::new(SetErrorType::Forbidden, "INBOX cannot be destroyed"));
            }
            if tree.has_children(mb) {
                return Err(SetError::new(SetErrorType::MailboxHasChild, "the mailbox has children"));
            }
            let holds = counts.get(&mb.id).is_some_and(|c| c.total_emails > 0) || mb.messages > 0;
            if holds && !remove_emails {
                return Err(SetError::new(SetErrorType::MailboxHasEmail, "the mailbox holds emails"));
            }
            call.store()
                .delete_mailbox(account, &mb.name)
                .await
                .map_err(store_set_error)
        }
        .await;
        match outcome {
            Ok(()) => o.destroyed.push(raw_id),
            Err(e) => {
                o.not_destroyed.insert(raw_id, json!(e));
            }
        }
    }

    let new_state = args::state(call, DataType::Mailbox).await?;
    one("Mailbox/set", o.response(call, old_state, new_state))
}
