//! RFC 8620 §7.2 PushSubscription/get and /set. The subscriptions belong to
//! the caller's account (no `accountId` argument); sending is the HTTP
//! edge's [`Pusher`]: the PushVerification at creation, StateChange objects
//! once verified (RFC 8030 with RFC 8291 encryption and RFC 8292 VAPID).

use crate::args::{self, SetArgs};
use crate::{date, one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType, SetError, SetErrorType};
use letterbox_store::{NewPushSubscription, PushSubscription, PushUpdate, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Sends push messages; the HTTP edge implements it.
pub trait Pusher: Send + Sync {
    /// Send `message` (a PushVerification) to a new subscription, now and
    /// without waiting for the answer.
    fn verify(&self, subscription: PushSubscription, message: Value);
    /// Whether `url` may be pushed to (https, or loopback in development).
    fn url_allowed(&self, url: &str) -> bool;
}

/// RFC 8620 §7.2: at least 48 hours, should be 7 days; ours is 7.
pub const MAX_LIFETIME_SECS: i64 = 7 * 24 * 3600;

const PROPERTIES: &[&str] = &["id", "deviceClientId", "verificationCode", "expires", "types"];

fn object(s: &PushSubscription) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(Id::new(IdKind::Push, s.id).to_string()));
    m.insert("deviceClientId".into(), json!(s.device_client_id));
    m.insert(
        "verificationCode".into(),
        if s.verified {
            json!(s.verification_code)
        } else {
            Value::Null
        },
    );
    m.insert("expires".into(), json!(date::utc(s.expires)));
    m.insert("types".into(), json!(s.types));
    m
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetArgs {
    ids: Option<Vec<String>>,
    properties: Option<Vec<String>>,
}

/// RFC 8620 §7.2.1: never the url or keys.
pub(crate) async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    if let Some(p) = &a.properties {
        if p.iter().any(|p| p == "url" || p == "keys") {
            return Err(MethodError::with(
                MethodErrorType::Forbidden,
                "url and keys are never returned",
            ));
        }
    }
    args::check_properties(a.properties.as_deref(), PROPERTIES)?;
    args::check_get_size(call, a.ids.as_ref())?;
    let all = call
        .store()
        .push_subscriptions(call.caller.account)
        .await
        .map_err(args::store_error)?;
    let mut not_found = Vec::new();
    let chosen: Vec<&PushSubscription> = match &a.ids {
        None => all.iter().collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|i| {
                let found = Id::parse(IdKind::Push, i).and_then(|n| all.iter().find(|s| s.id == n));
                if found.is_none() {
                    not_found.push(i.clone());
                }
                found
            })
            .collect(),
    };
    let list: Vec<Value> = chosen
        .into_iter()
        .map(|s| Value::Object(args::select(object(s), a.properties.as_deref())))
        .collect();
    let mut out = Map::new();
    out.insert("list".into(), json!(list));
    out.insert("notFound".into(), json!(not_found));
    one("PushSubscription/get", out)
}

fn expiry(v: Option<&Value>) -> Result<i64, SetError> {
    let now = letterbox_store::unix_now();
    let latest = now + MAX_LIFETIME_SECS;
    match v {
        None | Some(Value::Null) => Ok(latest),
        Some(Value::String(s)) => date::parse(s)
            .map(|t| t.clamp(now + 60, latest))
            .ok_or_else(|| SetError::invalid_properties(&["expires"], "not a UTCDate")),
        _ => Err(SetError::invalid_properties(&["expires"], "not a UTCDate")),
    }
}

fn types(v: Option<&Value>) -> Result<Option<Vec<String>>, SetError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(l)) => l
            .iter()
            .map(|t| {
                t.as_str()
                    .filter(|t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .map(str::to_string)
            })
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| SetError::invalid_properties(&["types"], "a list of type names")),
        _ => Err(SetError::invalid_properties(&["types"], "a list of type names")),
    }
}

fn b64url(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .is_ok_and(|b| len.contains(&b.len()))
}

fn new_subscription(pusher: &dyn Pusher, obj: &Map<String, Value>) -> Result<NewPushSubscription, SetError> {
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "deviceClientId" | "url" | "keys" | "expires" | "types" | "verificationCode"
        ) {
            return Err(SetError::invalid_properties(&[k.as_str()], "not settable"));
        }
    }
    if obj.get("verificationCode").is_some_and(|v| !v.is_null()) {
        return Err(SetError::invalid_properties(&["verificationCode"], "null on create"));
    }
    let device = obj
        .get("deviceClientId")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty() && d.len() <= 255)
        .ok_or_else(|| SetError::invalid_properties(&["deviceClientId"], "required, at most 255 bytes"))?;
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.len() <= 2048 && pusher.url_allowed(u))
        .ok_or_else(|| SetError::invalid_properties(&["url"], "an https:// URL"))?;
    let (p256dh, auth) = match obj.get("keys") {
        None | Some(Value::Null) => (None, None),
        Some(k) => {
            let p = k.get("p256dh").and_then(Value::as_str).filter(|p| b64url(p, 65..=65));
            let a = k.get("auth").and_then(Value::as_str).filter(|a| b64url(a, 16..=16));
            match (p, a) {
                (Some(p), Some(a)) => (Some(p.to_string()), Some(a.to_string())),
                _ => {
                    return Err(SetError::invalid_properties(
                        &["keys"],
                        "p256dh (a P-256 point) and auth (16 bytes), URL-safe base64",
                    ))
                }
            }
        }
    };
    Ok(NewPushSubscription {
        device_client_id: device.to_string(),
        url: url.to_string(),
        p256dh,
        auth,
        verification_code: crate::submission::unique(),
        expires: expiry(obj.get("expires"))?,
        types: types(obj.get("types"))?,
    })
}

/// §7.2.2: /set without accountId and ifInState.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushSetArgs {
    create: Option<Map<String, Value>>,
    update: Option<Map<String, Value>>,
    destroy: Option<Vec<String>>,
}

/// RFC 8620 §7.2.2.
pub(crate) async fn set(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let s: PushSetArgs = args::parse(a)?;
    let s = SetArgs {
        account_id: String::new(),
        if_in_state: None,
        create: s.create,
        update: s.update,
        destroy: s.destroy,
    };
    args::check_set_size(call, &s)?;
    let Some(pusher) = call.jmap.pusher.clone() else {
        return Err(MethodError::with(MethodErrorType::Forbidden, "push is not available"));
    };
    let account = call.caller.account;
    let mut o = args::SetOutcome::default();
    for (cid, value) in s.create.unwrap_or_default() {
        let outcome = match value.as_object() {
            Some(obj) => new_subscription(pusher.as_ref(), obj),
            None => Err(SetError::new(SetErrorType::InvalidProperties, "not an object")),
        };
        let created = match outcome {
            Ok(new) => call
                .store()
                .create_push_subscription(account, new)
                .await
                .map_err(|e| match e {
                    StoreError::Invalid(why) => SetError::new(SetErrorType::OverQuota, why),
                    e => {
                        tracing::error!(error = %e, "store error in PushSubscription/set");
                        SetError::new(SetErrorType::Forbidden, "storage error")
                    }
                }),
            Err(e) => Err(e),
        };
        match created {
            Ok(sub) => {
                let id = Id::new(IdKind::Push, sub.id).to_string();
                call.created.insert(cid.clone(), id.clone());
                o.created.insert(
                    cid,
                    json!({"id": id, "expires": date::utc(sub.expires), "verificationCode": null}),
                );
                let message = json!({"@type": "PushVerification", "pushSubscriptionId": id,
                                     "verificationCode": sub.verification_code});
                pusher.verify(sub, message);
            }
            Err(e) => {
                o.not_created.insert(cid, json!(e));
            }
        }
    }
    let current = call
        .store()
        .push_subscriptions(account)
        .await
        .map_err(args::store_error)?;
    for (raw, patch) in s.update.unwrap_or_default() {
        let found = call
            .resolve_id(&raw)
            .and_then(|i| Id::parse(IdKind::Push, &i))
            .and_then(|n| current.iter().find(|s| s.id == n));
        let Some(sub) = found else {
            o.not_updated.insert(raw, json!(SetError::not_found()));
            continue;
        };
        let outcome = (|| {
            let patch = patch
                .as_object()
                .ok_or_else(|| SetError::new(SetErrorType::InvalidPatch, "not an object"))?;
            let mut u = PushUpdate::default();
            let mut answer = Map::new();
            for (k, v) in patch {
                match k.as_str() {
                    "verificationCode" => match v.as_str() {
                        Some(code) if code == sub.verification_code => u.verified = Some(true),
                        _ => return Err(SetError::invalid_properties(&["verificationCode"], "wrong code")),
                    },
                    "expires" => {
                        let t = expiry(Some(v))?;
                        u.expires = Some(t);
                        answer.insert("expires".into(), json!(date::utc(t)));
                    }
                    "types" => u.types = Some(types(Some(v))?),
                    _ => return Err(SetError::invalid_properties(&[k.as_str()], "immutable")),
                }
            }
            Ok((u, answer))
        })();
        match outcome {
            Ok((u, answer)) => match call.store().update_push_subscription(account, sub.id, u).await {
                Ok(true) => {
                    o.updated.insert(raw, args::object_or_null(answer));
                }
                Ok(false) => {
                    o.not_updated.insert(raw, json!(SetError::not_found()));
                }
                Err(e) => return Err(args::store_error(e)),
            },
            Err(e) => {
                o.not_updated.insert(raw, json!(e));
            }
        }
    }
    for raw in s.destroy.unwrap_or_default() {
        let removed = match call.resolve_id(&raw).and_then(|i| Id::parse(IdKind::Push, &i)) {
            Some(n) => call
                .store()
                .remove_push_subscription(account, n)
                .await
                .map_err(args::store_error)?,
            None => false,
        };
        if removed {
            o.destroyed.push(raw);
        } else {
            o.not_destroyed.insert(raw, json!(SetError::not_found()));
        }
    }
    let mut out = o.response(call, String::new(), String::new());
    // §7.2.2: no accountId, oldState or newState.
    for k in ["accountId", "oldState", "newState"] {
        out.remove(k);
    }
    one("PushSubscription/set", out)
}
