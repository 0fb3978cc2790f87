//! RFC 8620 §3.2–3.4: the Request and Response objects and invocations.

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// RFC 8620 §3.2: `[name, arguments, method call id]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub name: String,
    pub arguments: Map<String, Value>,
    pub call_id: String,
}

impl Invocation {
    pub fn new(name: impl Into<String>, arguments: Map<String, Value>, call_id: impl Into<String>) -> Self {
        Invocation {
            name: name.into(),
            arguments,
            call_id: call_id.into(),
        }
    }
}

impl Serialize for Invocation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.name)?;
        t.serialize_element(&self.arguments)?;
        t.serialize_element(&self.call_id)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Invocation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Invocation;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an invocation: [name, arguments, call id]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Invocation, A::Error> {
                let name: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let arguments: Map<String, Value> =
                    seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let call_id: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(2, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(Invocation {
                    name,
                    arguments,
                    call_id,
                })
            }
        }
        d.deserialize_seq(V)
    }
}

/// RFC 8620 §3.3.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub using: Vec<String>,
    pub method_calls: Vec<Invocation>,
    #[serde(default)]
    pub created_ids: Option<BTreeMap<String, String>>,
}

/// RFC 8620 §3.4.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub method_responses: Vec<Invocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_ids: Option<BTreeMap<String, String>>,
    pub session_state: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_of_the_rfc_example() {
        // RFC 8620 §3.3.1
        let text = r#"{
          "using": [ "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail" ],
          "methodCalls": [
            [ "method1", { "arg1": "arg1data", "arg2": "arg2data" }, "c1" ],
            [ "method2", { "arg1": "arg1data" }, "c2" ],
            [ "method3", {}, "c3" ]
          ]
        }"#;
        let r: Request = serde_json::from_str(text).unwrap();
        assert_eq!(r.method_calls.len(), 3);
        assert_eq!(r.method_calls[1].name, "method2");
        assert_eq!(r.method_calls[2].call_id, "c3");
        let out = serde_json::to_value(&r.method_calls[0]).unwrap();
        assert_eq!(
            out,
            serde_json::json!(["method1", {"arg1": "arg1data", "arg2": "arg2data"}, "c1"])
        );
    }

    #[test]
    fn malformed_invocations_are_refused() {
        for bad in [
            r#"{"using":[],"methodCalls":[["a",{}]]}"#,
            r#"{"using":[],"methodCalls":[["a",{},"c","extra"]]}"#,
            r#"{"using":[],"methodCalls":[["a",[],"c"]]}"#,
            r#"{"using":[],"methodCalls":[],"other":1}"#,
            r#"{"methodCalls":[]}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
