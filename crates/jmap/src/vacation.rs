//! RFC 8621 §8 VacationResponse: one object per account, id `singleton`;
//! the replies themselves are sent by the delivery side
//! (`letterbox_delivery::vacation`, RFC 3834).

use crate::args::{self, GetArgs, SetArgs};
use crate::{date, one, Call, MethodResult};
use letterbox_jmap_proto::{SetError, SetErrorType};
use letterbox_store::{DataType, StoreError, Vacation};
use serde_json::{json, Map, Value};

pub const ID: &str = "singleton";

const PROPERTIES: &[&str] = &[
    "id",
    "isEnabled",
    "fromDate",
    "toDate",
    "subject",
    "textBody",
    "htmlBody",
];

fn object(v: &Vacation) -> Map<String, Value> {
    let d = |t: Option<i64>| t.map(date::utc);
    match json!({
        "id": ID,
        "isEnabled": v.enabled,
        "fromDate": d(v.from_date),
        "toDate": d(v.to_date),
        "subject": v.subject,
        "textBody": v.text_body,
        "htmlBody": v.html_body,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// RFC 8621 §8.1.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    args::check_properties(a.properties.as_deref(), PROPERTIES)?;
    let state = args::state(call, DataType::VacationResponse).await?;
    let v = call
        .store()
        .vacation(call.caller.account)
        .await
        .map_err(args::store_error)?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let wanted = a.ids.unwrap_or_else(|| vec![ID.to_string()]);
    for id in wanted {
        if id == ID {
            list.push(Value::Object(args::select(object(&v), a.properties.as_deref())));
        } else {
            not_found.push(id);
        }
    }
    one("VacationResponse/get", args::get_response(call, state, list, not_found))
}

/// Apply one update (RFC 8620 §5.3: a PatchObject of plain properties).
fn patched(mut v: Vacation, patch: &Value) -> Result<Vacation, SetError> {
    let patch = patch
        .as_object()
        .ok_or_else(|| SetError::new(SetErrorType::InvalidPatch, "not an object"))?;
    for (k, val) in patch {
        let bad = || SetError::invalid_properties(&[k.as_str()], "wrong type");
        let text = || match val {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad()),
        };
        let when = || match val {
            Value::Null => Ok(None),
            Value::String(s) => date::parse(s).map(Some).ok_or_else(bad),
            _ => Err(bad()),
        };
        match k.as_str() {
            "id" if val.as_str() == Some(ID) => {}
            "isEnabled" => v.enabled = val.as_bool().ok_or_else(bad)?,
            "fromDate" => v.from_date = when()?,
            "toDate" => v.to_date = when()?,
            "subject" => v.subject = text()?,
            "textBody" => v.text_body = text()?,
            "htmlBody" => v.html_body = text()?,
            _ => return Err(SetError::invalid_properties(&[k.as_str()], "not a settable property")),
        }
    }
    Ok(v)
}

/// RFC 8621 §8.2: only `singleton` exists; creating another or destroying
/// it is a `singleton` error.
pub async fn set(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let s: SetArgs = args::parse(a)?;
    let old_state = args::check_state(call, DataType::VacationResponse, s.if_in_state.as_deref()).await?;
    let mut o = args::SetOutcome::default();
    let singleton = || SetError::new(SetErrorType::Singleton, "there is exactly one VacationResponse");
    for cid in s.create.unwrap_or_default().keys() {
        o.not_created.insert(cid.clone(), json!(singleton()));
    }
    for id in s.destroy.unwrap_or_default() {
        o.not_destroyed.insert(id, json!(singleton()));
    }
    for (id, patch) in s.update.unwrap_or_default() {
        if id != ID {
            o.not_updated.insert(id, json!(SetError::not_found()));
            continue;
        }
        let current = call
            .store()
            .vacation(call.caller.account)
            .await
            .map_err(args::store_error)?;
        let outcome = match patched(current, &patch) {
            Ok(v) => match call.store().set_vacation(call.caller.account, v).await {
                Ok(()) => Ok(()),
                Err(StoreError::Invalid(why)) => Err(SetError::new(SetErrorType::InvalidProperties, why)),
                Err(e) => return Err(args::store_error(e)),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                o.updated.insert(id, Value::Null);
            }
            Err(e) => {
                o.not_updated.insert(id, json!(e));
            }
        }
    }
    let new_state = args::state(call, DataType::VacationResponse).await?;
    one("VacationResponse/set", o.response(call, old_state, new_state))
}
