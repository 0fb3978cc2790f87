//! RFC 8621 §6 Identity: one identity per address the account may send
//! as (its own address and the aliases that deliver to it). They are
//! derived, not stored, so they are read-only here.

use crate::args::{self, ChangesArgs, GetArgs};
use crate::{one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType};
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

/// The identities never change unless aliases do; their state is the
/// number of them and a digest, so a client notices a change.
async fn state(call: &Call<'_>) -> Result<String, MethodError> {
    let ids = identities(call).await?;
    let mut h: u64 = 0;
    for (id, _) in &ids {
        h = h.rotate_left(7)
            ^ id.bytes()
                .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    }
    Ok(format!("i{h:x}"))
}

/// RFC 8621 §6.1.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    args::check_properties(a.properties.as_deref(), PROPERTIES)?;
    let all = identities(call).await?;
    let state = state(call).await?;
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
        .filter_map(|(id, email)| {
            let local = email.split('@').next().unwrap_or_default();
            match json!({"id": id, "name": local, "email": email, "replyTo": null, "bcc": null,
                         "textSignature": "", "htmlSignature": "", "mayDelete": false})
            {
                Value::Object(m) => Some(Value::Object(args::select(m, a.properties.as_deref()))),
                _ => None,
            }
        })
        .collect();
    one("Identity/get", args::get_response(call, state, list, not_found))
}

/// RFC 8621 §6.2: identities are derived, so any older state cannot be
/// answered incrementally.
pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ChangesArgs = args::parse(a)?;
    let current = state(call).await?;
    if a.since_state != current {
        return Err(MethodError::new(MethodErrorType::CannotCalculateChanges));
    }
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("oldState".into(), json!(current));
    out.insert("newState".into(), json!(current));
    out.insert("hasMoreChanges".into(), json!(false));
    for k in ["created", "updated", "destroyed"] {
        out.insert(k.into(), json!([]));
    }
    one("Identity/changes", out)
}
