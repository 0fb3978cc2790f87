//! RFC 8620 §5.4 /copy (Email/copy, RFC 8621 §4.7) and §6.3 Blob/copy.
//!
//! Both copy between two different accounts. A caller sees one account,
//! their own (ARCHITECTURE.md, "Accounts": no sharing yet), so the source
//! is either the destination itself (`invalidArguments`, §5.4: the two MUST
//! differ) or an account the caller cannot see (`fromAccountNotFound`).
//! When shared accounts come, this is where the copying goes.

use crate::{Call, MethodResult};
use letterbox_jmap_proto::{MethodError, MethodErrorType};
use serde_json::{Map, Value};

pub async fn copy(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let Some(Value::String(from)) = a.get("fromAccountId") else {
        return Err(MethodError::invalid_arguments("fromAccountId missing"));
    };
    if *from == call.caller.account_id() {
        return Err(MethodError::invalid_arguments(
            "fromAccountId must differ from accountId",
        ));
    }
    Err(MethodError::new(MethodErrorType::FromAccountNotFound))
}
