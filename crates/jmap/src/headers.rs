//! RFC 8621 §4.1.2–4.1.3 header fields and their parsed forms: Raw, Text,
//! Addresses, GroupedAddresses, MessageIds, Date, URLs.

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};
use serde_json::{json, Value};

/// A parsed form (RFC 8621 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Raw,
    Text,
    Addresses,
    GroupedAddresses,
    MessageIds,
    Date,
    Urls,
}

/// A `header:{name}[:as{form}][:all]` property (RFC 8621 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProperty {
    pub name: String,
    pub form: Form,
    pub all: bool,
}

impl HeaderProperty {
    pub fn parse(property: &str) -> Option<HeaderProperty> {
        let rest = property.strip_prefix("header:")?;
        let mut parts = rest.split(':');
        let name = parts
            .next()
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b > 32 && b < 127 && b != b':'))?;
        let mut form = Form::Raw;
        let mut all = false;
        for (i, p) in parts.enumerate() {
            match p {
                "all" => all = true,
                _ if i == 0 && !all => {
                    form = match p {
                        "asRaw" => Form::Raw,
                        "asText" => Form::Text,
                        "asAddresses" => Form::Addresses,
                        "asGroupedAddresses" => Form::GroupedAddresses,
                        "asMessageIds" => Form::MessageIds,
                        "asDate" => Form::Date,
                        "asURLs" => Form::Urls,
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Some(HeaderProperty {
            name: name.to_string(),
            form,
            all,
        })
    }
}

/// The raw header fields of a header block, in order: (name, raw value
/// after the colon, unfolded nothing, CRLF kept out).
pub fn fields(head: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < head.len() {
        let line_end = |from: usize| {
            head[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(head.len(), |p| from + p + 1)
        };
        let mut end = line_end(pos);
        if head[pos..end].iter().all(|b| matches!(b, b'\r' | b'\n')) {
            break;
        }
        while end < head.len() && matches!(head[end], b' ' | b'\t') {
            end = line_end(end);
        }
        let field = &head[pos..end];
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&field[..colon]).trim().to_string();
            let mut value = field[colon + 1..].to_vec();
            while value.last().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
                value.pop();
            }
            if !name.is_empty() {
                out.push((name, value));
            }
        }
        pos = end;
    }
    out
}

fn with_eol(raw: &[u8]) -> Vec<u8> {
    let mut v = raw.to_vec();
    v.extend_from_slice(b"\r\n");
    v
}

fn addr_json(name: Option<&str>, email: Option<&str>) -> Value {
    json!({"name": name.map(str::trim).filter(|n| !n.is_empty()), "email": email.unwrap_or_default()})
}

/// RFC 8621 §4.1.2.3 Addresses.
pub fn addresses(raw: &[u8]) -> Value {
    let data = with_eol(raw);
    let v = MessageStream::new(&data).parse_address();
    let mut out = Vec::new();
    if let HeaderValue::Address(a) = &v {
        match a {
            Address::List(list) => out.extend(list.iter().map(|x| addr_json(x.name(), x.address()))),
            Address::Group(groups) => {
                for g in groups {
                    out.extend(g.addresses.iter().map(|x| addr_json(x.name(), x.address())));
                }
            }
        }
    }
    Value::Array(out)
}

/// RFC 8621 §4.1.2.4 GroupedAddresses.
pub fn grouped_addresses(raw: &[u8]) -> Value {
    let data = with_eol(raw);
    let v = MessageStream::new(&data).parse_address();
    let mut out = Vec::new();
    if let HeaderValue::Address(a) = &v {
        match a {
            Address::List(list) => out.push(json!({
                "name": null,
                "addresses": list.iter().map(|x| addr_json(x.name(), x.address())).collect::<Vec<_>>(),
            })),
            Address::Group(groups) => {
                for g in groups {
                    out.push(json!({
                        "name": g.name.as_deref(),
                        "addresses": g.addresses.iter().map(|x| addr_json(x.name(), x.address())).collect::<Vec<_>>(),
                    }));
                }
            }
        }
    }
    Value::Array(out)
}

/// RFC 8621 §4.1.2.2 Text: unfolded, encoded words decoded, trimmed.
pub fn text(raw: &[u8]) -> Value {
    let data = with_eol(raw);
    match MessageStream::new(&data).parse_unstructured() {
        HeaderValue::Text(t) => json!(t.trim()),
        HeaderValue::TextList(l) => json!(l.join(" ").trim()),
        _ => json!(""),
    }
}

/// RFC 8621 §4.1.2.5 MessageIds (`null` when unparseable).
pub fn message_ids(raw: &[u8]) -> Value {
    let data = with_eol(raw);
    match MessageStream::new(&data).parse_id() {
        HeaderValue::Text(t) => json!([t]),
        HeaderValue::TextList(l) => json!(l),
        _ => Value::Null,
    }
}

/// RFC 8621 §4.1.2.6 Date (RFC 3339, the original offset kept).
pub fn date(raw: &[u8]) -> Value {
    let data = with_eol(raw);
    match MessageStream::new(&data).parse_date() {
        HeaderValue::DateTime(d) => json!(d.to_rfc3339()),
        _ => Value::Null,
    }
}

/// RFC 8621 §4.1.2.7 URLs: the `<...>` items of a list header.
pub fn urls(raw: &[u8]) -> Value {
    let s = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    let mut rest = s.as_ref();
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start + 1..].find('>') else { break };
        let u: String = rest[start + 1..start + 1 + len]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push(Value::String(u));
        rest = &rest[start + 1 + len + 1..];
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Array(out)
    }
}

/// RFC 8621 §4.1.2.1 Raw.
pub fn raw(raw: &[u8]) -> Value {
    json!(String::from_utf8_lossy(raw))
}

/// A header property's value over a header block.
pub fn value(fields: &[(String, Vec<u8>)], prop: &HeaderProperty) -> Value {
    let conv = |v: &[u8]| match prop.form {
        Form::Raw => raw(v),
        Form::Text => text(v),
        Form::Addresses => addresses(v),
        Form::GroupedAddresses => grouped_addresses(v),
        Form::MessageIds => message_ids(v),
        Form::Date => date(v),
        Form::Urls => urls(v),
    };
    let mut matching = fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&prop.name));
    if prop.all {
        Value::Array(matching.map(|(_, v)| conv(v)).collect())
    } else {
        matching.next_back().map_or(Value::Null, |(_, v)| conv(v))
    }
}

/// RFC 8621 §4.1.2 `headers`: every field, raw.
pub fn all(fields: &[(String, Vec<u8>)]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|(n, v)| json!({"name": n, "value": String::from_utf8_lossy(v)}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"From: \"Joe Q. Public\" <joe@example.com>\r\nTo: team: a@x.test, B <b@x.test>;, c@y.test\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n  folded\r\nMessage-ID: <id1@x>\r\nReferences: <a@x> <b@x>\r\nDate: Thu, 13 Feb 1969 23:32:54 -0330\r\nList-Post: <mailto:list@x.test>, <https://x.test/post>\r\nX-Dup: one\r\nX-Dup: two\r\n\r\nbody";

    #[test]
    fn fields_and_forms() {
        let f = fields(HEAD);
        assert_eq!(f.len(), 9);
        assert_eq!(f[2].0, "Subject");
        let p = |s: &str| HeaderProperty::parse(s).unwrap();
        assert_eq!(value(&f, &p("header:Subject:asText")), json!("café folded"));
        assert_eq!(
            value(&f, &p("header:From:asAddresses")),
            json!([{"name": "Joe Q. Public", "email": "joe@example.com"}])
        );
        let to = value(&f, &p("header:to:asAddresses"));
        assert_eq!(to.as_array().unwrap().len(), 3);
        let grouped = value(&f, &p("header:To:asGroupedAddresses"));
        assert_eq!(grouped[0]["name"], "team");
        assert_eq!(value(&f, &p("header:References:asMessageIds")), json!(["a@x", "b@x"]));
        assert_eq!(value(&f, &p("header:Date:asDate")), json!("1969-02-13T23:32:54-03:30"));
        assert_eq!(
            value(&f, &p("header:List-Post:asURLs")),
            json!(["mailto:list@x.test", "https://x.test/post"])
        );
        assert_eq!(value(&f, &p("header:X-Dup:all")), json!([" one", " two"]));
        assert_eq!(value(&f, &p("header:X-Dup")), json!(" two"));
        assert_eq!(value(&f, &p("header:Missing")), Value::Null);
        assert!(HeaderProperty::parse("header:X:asNothing").is_none());
        assert!(HeaderProperty::parse("header::asText").is_none());
        assert_eq!(p("header:X:all").form, Form::Raw);
    }
}
