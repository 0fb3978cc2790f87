//! RFC 8621 §6 Identity: one identity per address the account may send
//! as (its own address and the aliases that deliver to it). The set of
//! identities follows the addresses (create and destroy are forbidden);
//! what a user sets on one (name, replyTo, bcc, signatures) is stored.

use crate::args::{self, ChangesArgs, GetArgs, SetArgs};
use crate::{one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType, SetError, SetErrorType};
use letterbox_store::{DataType, IdentitySettings, StoreError};
use serde_json::{json, Map, Value};

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "email",
    "replyTo",
    "bcc",
    "textSignature",
    "htmlSignature",
    "mayDelete",
];

/// The addresses the caller may send as, with stable ids: the identity id
/// is a hash of the address, so it survives alias reordering.
pub(crate) async fn identities(call: &Call<'_>) -> Result<Vec<(String, String)>, MethodError> {
    let mut addrs = call
        .store()
        .sender_addresses(call.caller.account)
        .await
        .map_err(args::store_error)?;
    if !addrs.iter().any(|a| a.eq_ignore_ascii_case(&call.caller.address)) {
        addrs.insert(0, call.caller.address.clone());
    }
    Ok(addrs
        .into_iter()
        .map(|a| (Id::new(IdKind::Identity, identity_number(&a)).to_string(), a))
        .collect())
}

fn identity_number(address: &str) -> i64 {
    // FNV-1a, kept positive: a stable number per address.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in address.to_ascii_lowercase().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 2) as i64 + 1
}

/// The addresses' digest and the settings' change state: `i{digest}.{modseq}`.
/// A changed address list cannot be answered incrementally; settings
/// changes can, from the change log.
async fn state(call: &Call<'_>) -> Result<String, MethodError> {
    let ids = identities(call).await?;
    let mut h: u64 = 0;
    for (id, _) in &ids {
        h = h.rotate_left(7)
            ^ id.bytes()
                .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    }
    let modseq = args::state(call, DataType::Identity).await?;
    Ok(format!("i{h:x}.{modseq}"))
}

async fn settings(call: &Call<'_>) -> Result<Vec<IdentitySettings>, MethodError> {
    call.store()
        .identity_settings(call.caller.account)
        .await
        .map_err(args::store_error)
}

fn object(id: &str, email: &str, set: Option<&IdentitySettings>) -> Map<String, Value> {
    let local = email.split('@').next().unwrap_or_default();
    let list = |v: Option<&String>| {
        v.and_then(|j| serde_json::from_str::<Value>(j).ok())
            .unwrap_or(Value::Null)
    };
    match json!({
        "id": id,
        "name": set.map_or(local, |s| s.name.as_str()),
        "email": email,
        "replyTo": list(set.and_then(|s| s.reply_to.as_ref())),
        "bcc": list(set.and_then(|s| s.bcc.as_ref())),
        "textSignature": set.map_or("", |s| s.text_signature.as_str()),
        "htmlSignature": set.map_or("", |s| s.html_signature.as_str()),
        "mayDelete": false,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// RFC 8621 §6.1.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    args::check_properties(a.properties.as_deref(), PROPERTIES)?;
    let all = identities(call).await?;
    let state = state(call).await?;
    let stored = settings(call).await?;
    let mut not_found = Vec::new();
    let chosen: Vec<&(String, String)> = match &a.ids {
        None => all.iter().collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|i| {
                let f = all.iter().find(|(id, _)| id == i);
                if f.is_none() {
                    not_found.push(i.clone());
                }
                f
            })
            .collect(),
    };
    let list = chosen
        .into_iter()
        .map(|(id, email)| {
            let set = stored.iter().find(|s| s.address.eq_ignore_ascii_case(email));
            Value::Object(args::select(object(id, email, set), a.properties.as_deref()))
        })
        .collect();
    one("Identity/get", args::get_response(call, state, list, not_found))
}

/// RFC 8621 §6.2: settings changes from the change log while the address
/// list stays the same.
pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ChangesArgs = args::parse(a)?;
    let current = state(call).await?;
    let (digest, _) = current.split_once('.').unwrap_or((&current, ""));
    let Some((since_digest, since_modseq)) = a.since_state.split_once('.') else {
        return Err(MethodError::new(MethodErrorType::CannotCalculateChanges));
    };
    if since_digest != digest {
        return Err(MethodError::new(MethodErrorType::CannotCalculateChanges));
    }
    let inner = ChangesArgs {
        since_state: since_modseq.to_string(),
        ..a
    };
    let mut out = args::changes(call, DataType::Identity, IdKind::Identity, inner).await?;
    for k in ["oldState", "newState"] {
        if let Some(Value::String(s)) = out.get(k).cloned() {
            out.insert(k.into(), json!(format!("{digest}.{s}")));
        }
    }
    one("Identity/changes", out)
}

/// Checks an `EmailAddress[]|null` property.
fn addresses(v: &Value, prop: &str) -> Result<Option<String>, SetError> {
    match v {
        Value::Null => Ok(None),
        Value::Array(list)
            if list.len() <= 20
                && list.iter().all(|a| {
                    a.get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.contains('@') && e.len() <= 320)
                        && a.get("name")
                            .is_none_or(|n| n.is_null() || n.as_str().is_some_and(|n| n.len() <= 256))
                }) =>
        {
            Ok(Some(v.to_string()))
        }
        _ => Err(SetError::invalid_properties(
            &[prop],
            "a list of up to 20 {name, email}",
        )),
    }
}

fn patched(mut s: IdentitySettings, patch: &Value) -> Result<IdentitySettings, SetError> {
    let patch = patch
        .as_object()
        .ok_or_else(|| SetError::new(SetErrorType::InvalidPatch, "not an object"))?;
    for (k, v) in patch {
        let text = || {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| SetError::invalid_properties(&[k.as_str()], "a string"))
        };
        match k.as_str() {
            "name" => s.name = text()?,
            "textSignature" => s.text_signature = text()?,
            "htmlSignature" => s.html_signature = text()?,
            "replyTo" => s.reply_to = addresses(v, "replyTo")?,
            "bcc" => s.bcc = addresses(v, "bcc")?,
            other => return Err(SetError::invalid_properties(&[other], "read-only")),
        }
    }
    Ok(s)
}

/// RFC 8621 §6.3: updates only.
pub async fn set(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let s: SetArgs = args::parse(a)?;
    args::check_set_size(call, &s)?;
    let old_state = state(call).await?;
    if s.if_in_state.as_deref().is_some_and(|st| st != old_state) {
        return Err(MethodError::new(MethodErrorType::StateMismatch));
    }
    let all = identities(call).await?;
    let stored = settings(call).await?;
    let mut o = args::SetOutcome::default();
    for cid in s.create.unwrap_or_default().keys() {
        o.not_created.insert(
            cid.clone(),
            json!(SetError::new(
                SetErrorType::Forbidden,
                "identities follow the addresses of the account"
            )),
        );
    }
    for (id, patch) in s.update.unwrap_or_default() {
        let Some((_, email)) = all.iter().find(|(i, _)| *i == id) else {
            o.not_updated.insert(id, json!(SetError::not_found()));
            continue;
        };
        let current = stored
            .iter()
            .find(|s| s.address.eq_ignore_ascii_case(email))
            .cloned()
            .unwrap_or_else(|| IdentitySettings {
                address: email.to_lowercase(),
                name: email.split('@').next().unwrap_or_default().to_string(),
                ..IdentitySettings::default()
            });
        let new = match patched(current, &patch) {
            Ok(n) => n,
            Err(e) => {
                o.not_updated.insert(id, json!(e));
                continue;
            }
        };
        match call
            .store()
            .set_identity(call.caller.account, identity_number(email), new)
            .await
        {
            Ok(()) => {
                o.updated.insert(id, Value::Null);
            }
            Err(StoreError::Invalid(why)) => {
                o.not_updated
                    .insert(id, json!(SetError::new(SetErrorType::InvalidProperties, why)));
            }
            Err(e) => return Err(args::store_error(e)),
        }
    }
    for id in s.destroy.unwrap_or_default() {
        let e = if all.iter().any(|(i, _)| *i == id) {
            SetError::new(SetErrorType::Forbidden, "mayDelete is false")
        } else {
            SetError::not_found()
        };
        o.not_destroyed.insert(id, json!(e));
    }
    let new_state = state(call).await?;
    one("Identity/set", o.response(call, old_state, new_state))
}
