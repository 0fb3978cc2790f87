//! RFC 8621 §3 Thread: get and changes.

use crate::args::{self, ChangesArgs, GetArgs};
use crate::{one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind};
use letterbox_store::DataType;
use serde_json::{json, Map, Value};

/// RFC 8621 §3.1: a thread's emails, oldest first (received date).
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    args::check_get_size(call, a.ids.as_ref())?;
    args::check_properties(a.properties.as_deref(), &["id", "emailIds"])?;
    let state = args::state(call, DataType::Thread).await?;
    let Some(ids) = a.ids else {
        return Err(letterbox_jmap_proto::MethodError::new(
            letterbox_jmap_proto::MethodErrorType::RequestTooLarge,
        ));
    };
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for raw in ids {
        let Some(tid) = call.resolve_id(&raw).and_then(|id| Id::parse(IdKind::Thread, &id)) else {
            not_found.push(raw);
            continue;
        };
        let emails = call
            .store()
            .thread(call.caller.account, tid)
            .await
            .map_err(args::store_error)?;
        if emails.is_empty() {
            not_found.push(raw);
            continue;
        }
        let ids: Vec<String> = emails.iter().map(|&e| Id::new(IdKind::Email, e).to_string()).collect();
        let obj = json!({"id": Id::new(IdKind::Thread, tid).to_string(), "emailIds": ids});
        if let Value::Object(m) = obj {
            list.push(Value::Object(args::select(m, a.properties.as_deref())));
        }
    }
    one("Thread/get", args::get_response(call, state, list, not_found))
}

/// RFC 8621 §3.2.
pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ChangesArgs = args::parse(a)?;
    one(
        "Thread/changes",
        args::changes(call, DataType::Thread, IdKind::Thread, a).await?,
    )
}
