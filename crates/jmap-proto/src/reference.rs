//! RFC 8620 §3.7 result references: an argument `#name` whose value is
//! `{resultOf, name, path}` takes the value at `path` (a JSON Pointer,
//! RFC 6901, extended with `*` over arrays) in an earlier response.

use crate::error::{MethodError, MethodErrorType};
use crate::request::Invocation;
use serde_json::{Map, Value};

/// Longest path evaluated: a pointer is a list of tokens, and `*` fans out,
/// so a bound keeps one request from building huge intermediate arrays.
pub const MAX_POINTER_TOKENS: usize = 32;

fn invalid(description: impl Into<String>) -> MethodError {
    MethodError::with(MethodErrorType::InvalidResultReference, description)
}

/// Replace every `#name` argument by the value it references in `previous`.
/// Both `name` and `#name` present is `invalidArguments` (§3.7).
pub fn resolve_references(arguments: &mut Map<String, Value>, previous: &[Invocation]) -> Result<(), MethodError> {
    let refs: Vec<String> = arguments.keys().filter(|k| k.starts_with('#')).cloned().collect();
    for key in refs {
        let plain = &key[1..];
        if arguments.contains_key(plain) {
            return Err(MethodError::invalid_arguments(format!(
                "both {plain} and #{plain} given"
            )));
        }
        let Some(reference) = arguments.remove(&key) else {
            continue;
        };
        let obj = reference
            .as_object()
            .ok_or_else(|| invalid(format!("#{plain} is not a ResultReference")))?;
        let field = |f: &str| {
            obj.get(f)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("#{plain}: {f} missing")))
        };
        let (result_of, name, path) = (field("resultOf")?, field("name")?, field("path")?);
        let source = previous
            .iter()
            .find(|r| r.call_id == result_of)
            .ok_or_else(|| invalid(format!("no response with call id {result_of}")))?;
        if source.name != name {
            return Err(invalid(format!("response {result_of} is {}, not {name}", source.name)));
        }
        let root = Value::Object(source.arguments.clone());
        let value = evaluate_pointer(&root, path).ok_or_else(|| invalid(format!("path {path} not found")))?;
        arguments.insert(plain.to_string(), value);
    }
    Ok(())
}

/// Evaluate a JSON Pointer with the `*` extension: `*` applied to an
/// array maps the rest of the pointer over its items, flattening items
/// that are arrays themselves (RFC 8620 §3.7).
pub fn evaluate_pointer(root: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(root.clone());
    }
    let rest = path.strip_prefix('/')?;
    let tokens: Vec<String> = rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    if tokens.len() > MAX_POINTER_TOKENS {
        return None;
    }
    walk(root, &tokens)
}

fn walk(value: &Value, tokens: &[String]) -> Option<Value> {
    let Some((first, rest)) = tokens.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Array(items) if first == "*" => {
            let mut out = Vec::new();
            for item in items {
                match walk(item, rest)? {
                    Value::Array(inner) => out.extend(inner),
                    v => out.push(v),
                }
            }
            Some(Value::Array(out))
        }
        Value::Array(items) => {
            if first.len() > 1 && first.starts_with('0') {
                return None;
            }
            let i: usize = first.parse().ok()?;
            walk(items.get(i)?, rest)
        }
        Value::Object(map) => walk(map.get(first.as_str())?, rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn responses() -> Vec<Invocation> {
        let args = json!({
            "accountId": "A1",
            "ids": ["E1", "E2"],
            "list": [
                {"id": "T1", "emailIds": ["E1", "E3"]},
                {"id": "T2", "emailIds": ["E2"]}
            ],
            "a/b": {"m~n": 5}
        });
        vec![Invocation::new("Email/query", args.as_object().unwrap().clone(), "t0")]
    }

    #[test]
    fn pointers_with_wildcards_flatten() {
        let root = Value::Object(responses()[0].arguments.clone());
        assert_eq!(evaluate_pointer(&root, "/ids"), Some(json!(["E1", "E2"])));
        assert_eq!(
            evaluate_pointer(&root, "/list/*/emailIds"),
            Some(json!(["E1", "E3", "E2"]))
        );
        assert_eq!(evaluate_pointer(&root, "/list/1/id"), Some(json!("T2")));
        assert_eq!(evaluate_pointer(&root, "/a~1b/m~0n"), Some(json!(5)));
        assert_eq!(evaluate_pointer(&root, "/list/01/id"), None);
        assert_eq!(evaluate_pointer(&root, "/missing"), None);
        assert_eq!(evaluate_pointer(&root, "ids"), None);
    }

    #[test]
    fn references_resolve_or_fail_as_the_rfc_says() {
        let prev = responses();
        let mut args = json!({"#ids": {"resultOf": "t0", "name": "Email/query", "path": "/ids"}})
            .as_object()
            .unwrap()
            .clone();
        resolve_references(&mut args, &prev).unwrap();
        assert_eq!(args["ids"], json!(["E1", "E2"]));

        let mut wrong_name = json!({"#ids": {"resultOf": "t0", "name": "Email/get", "path": "/ids"}})
            .as_object()
            .unwrap()
            .clone();
        let e = resolve_references(&mut wrong_name, &prev).unwrap_err();
        assert_eq!(e.kind, MethodErrorType::InvalidResultReference);

        let mut both = json!({"ids": [], "#ids": {"resultOf": "t0", "name": "Email/query", "path": "/ids"}})
            .as_object()
            .unwrap()
            .clone();
        let e = resolve_references(&mut both, &prev).unwrap_err();
        assert_eq!(e.kind, MethodErrorType::InvalidArguments);

        let mut unknown = json!({"#ids": {"resultOf": "nope", "name": "Email/query", "path": "/ids"}})
            .as_object()
            .unwrap()
            .clone();
        assert!(resolve_references(&mut unknown, &prev).is_err());
    }
}
