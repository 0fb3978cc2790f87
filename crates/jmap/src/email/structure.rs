//! RFC 8621 §4.6: an Email/set create's `bodyStructure`, a tree of
//! EmailBodyPart objects (§4.1.4), into MIME parts. Leaves take their
//! content from `bodyValues` (`partId`) or from a blob (`blobId`).

use letterbox_jmap_proto::SetError;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Deeper trees or more parts are refused: real mail nests a few levels.
const MAX_DEPTH: usize = 16;
const MAX_PARTS: usize = 256;

const PROP: &str = "bodyStructure";

fn invalid(why: impl Into<String>) -> SetError {
    SetError::invalid_properties(&[PROP], why)
}

fn text<'v>(part: &'v Map<String, Value>, key: &str) -> Result<Option<&'v str>, SetError> {
    match part.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.contains(['\r', '\n']) => Ok(Some(s)),
        _ => Err(invalid(format!("{key} must be a string without line breaks"))),
    }
}

/// RFC 2045 §5.1 `type "/" subtype`, without parameters: JMAP keeps those
/// in their own properties.
fn media_type(t: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!(t.split_once('/'), Some((a, b)) if token(a) && token(b))
}

/// Every blob the tree refers to, so the caller can read them before the
/// (synchronous) build; also checks depth and part count.
pub(super) fn blob_ids(v: &Value) -> Result<Vec<String>, SetError> {
    fn walk(v: &Value, depth: usize, count: &mut usize, out: &mut Vec<String>) -> Result<(), SetError> {
        *count += 1;
        if depth > MAX_DEPTH || *count > MAX_PARTS {
            return Err(invalid("body structure too deep or too many parts"));
        }
        let part = v.as_object().ok_or_else(|| invalid("a part must be an object"))?;
        if let Some(id) = part.get("blobId").and_then(Value::as_str) {
            out.push(id.to_string());
        }
        if let Some(subs) = part.get("subParts").and_then(Value::as_array) {
            for s in subs {
                walk(s, depth + 1, count, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(v, 0, &mut 0, &mut out)?;
    Ok(out)
}

/// Build the MIME tree; `blobs` holds the content of every id `blob_ids`
/// returned.
pub(super) fn build(
    v: &Value,
    values: &Map<String, Value>,
    blobs: &HashMap<String, Vec<u8>>,
) -> Result<MimePart<'static>, SetError> {
    let part = v.as_object().ok_or_else(|| invalid("a part must be an object"))?;
    let subs = part.get("subParts").filter(|s| !s.is_null());
    let part_id = text(part, "partId")?;
    let blob_id = text(part, "blobId")?;
    let given_type = text(part, "type")?;
    if given_type.is_some_and(|t| !media_type(t)) {
        return Err(invalid("type must be a media type without parameters"));
    }
    let mut mime = match (subs, part_id, blob_id) {
        (Some(subs), None, None) => {
            let subs = subs.as_array().ok_or_else(|| invalid("subParts must be a list"))?;
            let ctype = given_type.unwrap_or("multipart/mixed");
            if !ctype.to_ascii_lowercase().starts_with("multipart/") {
                return Err(invalid("a part with subParts must be multipart/*"));
            }
            let children = subs
                .iter()
                .map(|s| build(s, values, blobs))
                .collect::<Result<Vec<_>, _>>()?;
            MimePart::new(ContentType::new(ctype.to_string()), BodyPart::Multipart(children))
        }
        (None, Some(pid), None) => {
            let ctype = given_type.unwrap_or("text/plain");
            if !ctype.to_ascii_lowercase().starts_with("text/") {
                return Err(invalid("a part with partId must be text/*"));
            }
            // §4.6: the server chooses the charset of bodyValues parts.
            if text(part, "charset")?.is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
                return Err(invalid("charset of a bodyValues part is utf-8"));
            }
            let value = values
                .get(pid)
                .and_then(|v| v.get("value"))
                .and_then(Value::as_str)
                .ok_or_else(|| SetError::invalid_properties(&["bodyValues"], format!("no value for part {pid}")))?;
            MimePart::new(
                ContentType::new(ctype.to_string()),
                BodyPart::Text(value.to_string().into()),
            )
        }
        (None, None, Some(bid)) => {
            let data = blobs.get(bid).cloned().ok_or_else(|| SetError::blob_not_found(bid))?;
            let mut ctype = ContentType::new(given_type.unwrap_or("application/octet-stream").to_string());
            if let Some(cs) = text(part, "charset")? {
                ctype = ctype.attribute("charset", cs.to_string());
            }
            MimePart::new(ctype, BodyPart::Binary(data.into()))
        }
        _ => return Err(invalid("a part has exactly one of subParts, partId and blobId")),
    };
    let name = text(part, "name")?;
    let disposition = text(part, "disposition")?.or(name.map(|_| "attachment"));
    if let Some(d) = disposition {
        let mut cd = ContentType::new(d.to_string());
        if let Some(n) = name {
            cd = cd.attribute("filename", n.to_string());
        }
        mime.headers.push(("Content-Disposition".into(), cd.into()));
    }
    if let Some(cid) = text(part, "cid")? {
        mime = mime.cid(cid.trim_start_matches('<').trim_end_matches('>').to_string());
    }
    if let Some(loc) = text(part, "location")? {
        mime = mime.location(loc.to_string());
    }
    match part.get("language") {
        None | Some(Value::Null) => {}
        Some(Value::Array(l)) => {
            let tags: Option<Vec<&str>> = l.iter().map(Value::as_str).collect();
            let tags = tags
                .filter(|t| t.iter().all(|t| media_type(&format!("{t}/x"))))
                .ok_or_else(|| invalid("language must be a list of language tags"))?;
            mime = mime.language(tags.join(", "));
        }
        Some(_) => return Err(invalid("language must be a list")),
    }
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(h) = part.get("headers").filter(|h| !h.is_null()) {
        for e in h.as_array().ok_or_else(|| invalid("headers must be a list"))? {
            let name = e.get("name").and_then(Value::as_str);
            let value = e.get("value").and_then(Value::as_str);
            match (name, value) {
                (Some(n), Some(v)) => extra.push((n.to_string(), v.to_string())),
                _ => return Err(invalid("a header needs name and value")),
            }
        }
    }
    for (k, v) in part.iter().filter(|(k, _)| k.starts_with("header:")) {
        let name = &k["header:".len()..];
        if name.contains(':') {
            return Err(invalid("only raw header:Name properties are settable"));
        }
        let v = v.as_str().ok_or_else(|| invalid(format!("{k} must be a string")))?;
        extra.push((name.to_string(), v.to_string()));
    }
    for (name, value) in extra {
        let lower = name.to_ascii_lowercase();
        // §4.6: the server picks the encoding; the other properties own
        // these headers.
        if lower.starts_with("content-") && lower != "content-description" {
            return Err(invalid(format!("{name} is set by the part's properties")));
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') || value.contains(['\r', '\n']) {
            return Err(invalid("bad header"));
        }
        mime = mime.header(name, Raw::new(value));
    }
    Ok(mime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(v: Value, values: Value, blobs: &[(&str, &[u8])]) -> Result<String, SetError> {
        let blobs = blobs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
        let part = build(&v, values.as_object().unwrap(), &blobs)?;
        let mut out = Vec::new();
        part.write_part(&mut out);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn multipart_with_text_and_blob() {
        let s = render(
            json!({"type": "multipart/mixed", "subParts": [
                {"partId": "1", "type": "text/plain"},
                {"blobId": "b1", "type": "application/pdf", "name": "r.pdf"},
            ]}),
            json!({"1": {"value": "hello"}}),
            &[("b1", b"%PDF-1.4")],
        )
        .unwrap();
        assert!(s.contains("multipart/mixed"), "{s}");
        assert!(s.contains("hello"));
        assert!(
            s.contains("application/pdf") && s.contains("filename=\"r.pdf\"") || s.contains("filename=r.pdf"),
            "{s}"
        );
    }

    #[test]
    fn refuses_mixed_leaf_and_bad_types() {
        let vals = json!({"1": {"value": "x"}});
        assert!(render(json!({"partId": "1", "blobId": "b"}), vals.clone(), &[]).is_err());
        assert!(render(json!({"partId": "1", "type": "image/png"}), vals.clone(), &[]).is_err());
        assert!(render(
            json!({"partId": "1", "type": "text/plain; charset=x"}),
            vals.clone(),
            &[]
        )
        .is_err());
        assert!(render(json!({"subParts": [], "type": "text/plain"}), vals.clone(), &[]).is_err());
        assert!(render(json!({"partId": "2"}), vals.clone(), &[]).is_err());
        let e = render(json!({"blobId": "missing"}), vals.clone(), &[]).unwrap_err();
        assert_eq!(e.kind, letterbox_jmap_proto::SetErrorType::BlobNotFound);
        let cte = json!({"partId": "1", "header:Content-Transfer-Encoding": "binary"});
        assert!(render(cte, vals, &[]).is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = json!({"partId": "1"});
        for _ in 0..40 {
            v = json!({"subParts": [v]});
        }
        assert!(blob_ids(&v).is_err());
    }
}
