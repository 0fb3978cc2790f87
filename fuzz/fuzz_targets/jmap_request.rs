//! JMAP request bodies (RFC 8620 §3.3) and result references (§3.7):
//! parsed, then every call's arguments resolved against the previous
//! calls' arguments as if they were responses.
#![no_main]
use letterbox_jmap_proto::{evaluate_pointer, resolve_references, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = evaluate_pointer(&value, "/methodCalls/*/1/ids");
    let Ok(request) = serde_json::from_value::<Request>(value) else {
        return;
    };
    let mut done = Vec::new();
    for call in request.method_calls.into_iter().take(64) {
        let mut call = call;
        let _ = resolve_references(&mut call.arguments, &done);
        done.push(call);
    }
});
