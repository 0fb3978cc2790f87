//! RFC 8621 §4.1 Email properties from the raw message, parsed with
//! mail-parser. CPU work: callers run it on a blocking thread.

use crate::date;
use crate::headers::{self, HeaderProperty};
use crate::keywords;
use letterbox_jmap_proto::{Id, IdKind};
use letterbox_store::EmailMeta;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde_json::{json, Map, Value};

/// RFC 8621 §4.2: the properties returned when the client names none.
pub const DEFAULT_PROPERTIES: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// Properties served from the store's metadata alone.
pub const META_PROPERTIES: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
];

const OTHER_PROPERTIES: &[&str] = &["headers", "bodyStructure"];

/// RFC 8621 §4.2: default `bodyProperties`.
pub const DEFAULT_BODY_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
];

const BODY_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "headers",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
    "subParts",
];

/// Whether `p` is an Email property this server knows.
pub fn known_property(p: &str) -> bool {
    DEFAULT_PROPERTIES.contains(&p) || OTHER_PROPERTIES.contains(&p) || HeaderProperty::parse(p).is_some()
}

/// Whether `p` is an EmailBodyPart property this server knows.
pub fn known_body_property(p: &str) -> bool {
    BODY_PROPERTIES.contains(&p) || HeaderProperty::parse(p).is_some_and(|h| !h.name.is_empty())
}

/// What an Email/get asks for besides properties.
#[derive(Debug, Clone, Default)]
pub struct BodyOptions {
    pub body_properties: Vec<String>,
    pub fetch_text: bool,
    pub fetch_html: bool,
    pub fetch_all: bool,
    pub max_bytes: usize,
}

/// The blob id of part `n` of the message stored as `blob` (ARCHITECTURE.md, "Wire ids").
pub fn part_blob_id(blob: &str, n: usize) -> String {
    format!("{blob}_{n}")
}

/// Split a part blob id into the message blob and the part number.
pub fn split_part_blob_id(id: &str) -> Option<(&str, usize)> {
    let (blob, n) = id.split_once('_')?;
    Some((blob, n.parse().ok()?))
}

/// Parse a message; mail-parser is third-party, so a panic in it is caught.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .ok()
        .flatten()
}

/// The transfer-decoded bytes of a part (its blob's content).
pub fn part_bytes(msg: &Message<'_>, n: usize) -> Option<Vec<u8>> {
    let part = msg.parts.get(n)?;
    match &part.body {
        PartType::Multipart(_) => None,
        PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.to_vec()),
        PartType::Message(_) => Some(raw_body(msg, part).to_vec()),
        PartType::Text(_) | PartType::Html(_) => {
            let body = raw_body(msg, part);
            let cte = part
                .content_transfer_encoding()
                .map(|c| c.trim().to_ascii_lowercase())
                .unwrap_or_default();
            Some(letterbox_mail::decode_transfer(&cte, body).unwrap_or_else(|_| body.to_vec()))
        }
    }
}

fn raw_body<'m>(msg: &'m Message<'_>, part: &MessagePart<'_>) -> &'m [u8] {
    let raw = msg.raw_message();
    let (s, e) = (part.offset_body as usize, part.offset_end as usize);
    raw.get(s.min(e)..e.min(raw.len())).unwrap_or_default()
}

/// The content type of a part, lowercased, with RFC 2045 §5.2's default.
pub fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "text/plain".into(),
    }
}

fn body_part(msg: &Message<'_>, blob: &str, n: usize, props: &[String], depth: usize) -> Value {
    let Some(part) = msg.parts.get(n) else {
        return Value::Null;
    };
    let want = |p: &str| props.iter().any(|x| x == p);
    let mut obj = Map::new();
    let is_multi = matches!(part.body, PartType::Multipart(_));
    let ctype = content_type(part);
    if want("partId") {
        obj.insert(
            "partId".into(),
            if is_multi { Value::Null } else { json!(n.to_string()) },
        );
    }
    if want("blobId") {
        obj.insert(
            "blobId".into(),
            if is_multi {
                Value::Null
            } else {
                json!(part_blob_id(blob, n))
            },
        );
    }
    if want("size") {
        let size = if is_multi {
            0
        } else {
            part_bytes(msg, n).map_or(0, |b| b.len())
        };
        obj.insert("size".into(), json!(size));
    }
    let raw = msg.raw_message();
    let head = raw
        .get(part.offset_header as usize..(part.offset_body as usize).min(raw.len()))
        .unwrap_or_default();
    let fields = headers::fields(head);
    if want("headers") {
        obj.insert("headers".into(), headers::all(&fields));
    }
    for p in props.iter().filter(|p| p.starts_with("header:")) {
        if let Some(h) = HeaderProperty::parse(p) {
            obj.insert(p.clone(), headers::value(&fields, &h));
        }
    }
    if want("name") {
        obj.insert("name".into(), json!(part.attachment_name()));
    }
    if want("type") {
        obj.insert("type".into(), json!(ctype));
    }
    if want("charset") {
        let cs = part
            .content_type()
            .and_then(|c| c.attribute("charset"))
            .map(str::to_ascii_lowercase)
            .or_else(|| ctype.starts_with("text/").then(|| "us-ascii".to_string()));
        obj.insert("charset".into(), json!(cs));
    }
    if want("disposition") {
        obj.insert(
            "disposition".into(),
            json!(part.content_disposition().map(|d| d.ctype().to_ascii_lowercase())),
        );
    }
    if want("cid") {
        obj.insert(
            "cid".into(),
            json!(part
                .content_id()
                .map(|c| c.trim().trim_start_matches('<').trim_end_matches('>').to_string())),
        );
    }
    if want("language") {
        let langs: Option<Vec<String>> = match part.content_language() {
            mail_parser::HeaderValue::Text(t) => Some(vec![t.to_string()]),
            mail_parser::HeaderValue::TextList(l) => Some(l.iter().map(|s| s.to_string()).collect()),
            _ => None,
        };
        obj.insert("language".into(), json!(langs));
    }
    if want("location") {
        obj.insert("location".into(), json!(part.content_location()));
    }
    if want("subParts") {
        let sub = match &part.body {
            // Depth is bounded by mail-parser's own nesting limit; this guards it anyway.
            PartType::Multipart(children) if depth < 64 => Value::Array(
                children
                    .iter()
                    .map(|&c| body_part(msg, blob, c as usize, props, depth + 1))
                    .collect(),
            ),
            _ => Value::Null,
        };
        obj.insert("subParts".into(), sub);
    }
    Value::Object(obj)
}

fn body_value(msg: &Message<'_>, n: usize, max: usize) -> Option<Value> {
    let part = msg.parts.get(n)?;
    let text = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_ref(),
        _ => return None,
    };
    let truncated = text.len() > max;
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(json!({
        "value": &text[..end],
        "isEncodingProblem": part.is_encoding_problem,
        "isTruncated": truncated,
    }))
}

/// The metadata properties of an email.
pub fn meta_properties(meta: &EmailMeta, props: &[String], out: &mut Map<String, Value>) {
    let want = |p: &str| props.iter().any(|x| x == p);
    out.insert("id".into(), json!(Id::new(IdKind::Email, meta.id).to_string()));
    if want("blobId") {
        out.insert("blobId".into(), json!(meta.blob_id));
    }
    if want("threadId") {
        out.insert(
            "threadId".into(),
            json!(Id::new(IdKind::Thread, meta.thread_id).to_string()),
        );
    }
    if want("mailboxIds") {
        let m: Map<String, Value> = meta
            .mailboxes
            .iter()
            .map(|&b| (Id::new(IdKind::Mailbox, b).to_string(), Value::Bool(true)))
            .collect();
        out.insert("mailboxIds".into(), Value::Object(m));
    }
    if want("keywords") {
        let k: Map<String, Value> = meta
            .keywords
            .iter()
            .filter_map(|f| keywords::from_imap(f))
            .map(|k| (k, Value::Bool(true)))
            .collect();
        out.insert("keywords".into(), Value::Object(k));
    }
    if want("size") {
        out.insert("size".into(), json!(meta.size));
    }
    if want("receivedAt") {
        out.insert("receivedAt".into(), json!(date::utc(meta.received_at)));
    }
}

/// The message-derived properties (everything but the metadata ones).
pub fn message_properties(raw: &[u8], blob: &str, props: &[String], opts: &BodyOptions, out: &mut Map<String, Value>) {
    let want = |p: &str| props.iter().any(|x| x == p);
    let Some(msg) = parse(raw) else {
        for p in props.iter().filter(|p| !META_PROPERTIES.contains(&p.as_str())) {
            out.insert(p.clone(), Value::Null);
        }
        return;
    };
    let root = msg.parts.first();
    let head_end = root.map_or(0, |p| p.offset_body as usize).min(raw.len());
    let fields = headers::fields(&raw[..head_end]);
    let hv = |name: &str, form: headers::Form| {
        headers::value(
            &fields,
            &HeaderProperty {
                name: name.into(),
                form,
                all: false,
            },
        )
    };
    use headers::Form;
    for (prop, header, form) in [
        ("messageId", "Message-ID", Form::MessageIds),
        ("inReplyTo", "In-Reply-To", Form::MessageIds),
        ("references", "References", Form::MessageIds),
        ("sender", "Sender", Form::Addresses),
        ("from", "From", Form::Addresses),
        ("to", "To", Form::Addresses),
        ("cc", "Cc", Form::Addresses),
        ("bcc", "Bcc", Form::Addresses),
        ("replyTo", "Reply-To", Form::Addresses),
        ("subject", "Subject", Form::Text),
        ("sentAt", "Date", Form::Date),
    ] {
        if want(prop) {
            let v = hv(header, form);
            // RFC 8621 §4.1.3: an absent header is null.
            let v = if matches!(&v, Value::Array(a) if a.is_empty()) {
                Value::Null
            } else {
                v
            };
            out.insert(prop.into(), v);
        }
    }
    if want("headers") {
        out.insert("headers".into(), headers::all(&fields));
    }
    for p in props.iter().filter(|p| p.starts_with("header:")) {
        if let Some(h) = HeaderProperty::parse(p) {
            out.insert(p.clone(), headers::value(&fields, &h));
        }
    }
    let bp = &opts.body_properties;
    let list = |ids: &[u32]| -> Value {
        Value::Array(ids.iter().map(|&i| body_part(&msg, blob, i as usize, bp, 0)).collect())
    };
    if want("bodyStructure") {
        out.insert("bodyStructure".into(), body_part(&msg, blob, 0, bp, 0));
    }
    if want("textBody") {
        out.insert("textBody".into(), list(&msg.text_body));
    }
    if want("htmlBody") {
        out.insert("htmlBody".into(), list(&msg.html_body));
    }
    if want("attachments") {
        out.insert("attachments".into(), list(&msg.attachments));
    }
    if want("hasAttachment") {
        let has = msg.attachments.iter().any(|&i| {
            msg.parts
                .get(i as usize)
                .is_some_and(|p| p.content_disposition().is_none_or(|d| !d.is_inline()) || p.content_id().is_none())
        });
        out.insert("hasAttachment".into(), json!(has));
    }
    if want("preview") {
        out.insert(
            "preview".into(),
            json!(msg
                .body_preview(256)
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))),
        );
    }
    if want("bodyValues") {
        let mut values = Map::new();
        let mut add = |ids: &[u32]| {
            for &i in ids {
                if let Some(v) = body_value(&msg, i as usize, opts.max_bytes) {
                    values.insert(i.to_string(), v);
                }
            }
        };
        if opts.fetch_all || opts.fetch_text {
            add(&msg.text_body);
        }
        if opts.fetch_all || opts.fetch_html {
            add(&msg.html_body);
        }
        if opts.fetch_all {
            let all: Vec<u32> = (0..msg.parts.len() as u32).collect();
            add(&all);
        }
        out.insert("bodyValues".into(), Value::Object(values));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Ann <ann@x.test>\r\nTo: bob@y.test\r\nSubject: Hello\r\nMessage-ID: <m1@x.test>\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait\r\n--b1\r\nContent-Type: application/pdf; name=doc.pdf\r\nContent-Disposition: attachment; filename=doc.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";

    fn all_props() -> Vec<String> {
        DEFAULT_PROPERTIES
            .iter()
            .map(|s| s.to_string())
            .chain(["bodyStructure".to_string()])
            .collect()
    }

    #[test]
    fn a_multipart_message_renders_per_rfc_8621() {
        let opts = BodyOptions {
            body_properties: BODY_PROPERTIES.iter().map(|s| s.to_string()).collect(),
            fetch_text: true,
            max_bytes: 1000,
            ..BodyOptions::default()
        };
        let mut out = Map::new();
        message_properties(MSG, "Gabc", &all_props(), &opts, &mut out);
        assert_eq!(out["subject"], "Hello");
        assert_eq!(out["from"], json!([{"name": "Ann", "email": "ann@x.test"}]));
        assert_eq!(out["to"], json!([{"name": null, "email": "bob@y.test"}]));
        assert_eq!(out["messageId"], json!(["m1@x.test"]));
        assert_eq!(out["inReplyTo"], Value::Null);
        assert_eq!(out["sentAt"], "2003-07-01T10:52:37+02:00");
        assert_eq!(out["hasAttachment"], true);
        let text = &out["textBody"][0];
        assert_eq!(text["type"], "text/plain");
        assert_eq!(text["charset"], "utf-8");
        let pid = text["partId"].as_str().unwrap();
        assert_eq!(out["bodyValues"][pid]["value"], "café au lait");
        let att = &out["attachments"][0];
        assert_eq!(att["name"], "doc.pdf");
        assert_eq!(att["type"], "application/pdf");
        assert_eq!(att["disposition"], "attachment");
        assert_eq!(att["size"], 9);
        let (blob, n) = split_part_blob_id(att["blobId"].as_str().unwrap()).unwrap();
        assert_eq!(blob, "Gabc");
        assert_eq!(part_bytes(&parse(MSG).unwrap(), n).unwrap(), b"%PDF-1.4\n");
        assert_eq!(out["bodyStructure"]["type"], "multipart/mixed");
        assert_eq!(out["bodyStructure"]["subParts"].as_array().unwrap().len(), 2);
        assert_eq!(out["preview"], "café au lait");
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let opts = BodyOptions {
            body_properties: vec!["partId".into()],
            fetch_text: true,
            max_bytes: 4,
            ..BodyOptions::default()
        };
        let mut out = Map::new();
        message_properties(
            MSG,
            "Gabc",
            &["bodyValues".to_string(), "textBody".to_string()],
            &opts,
            &mut out,
        );
        let pid = out["textBody"][0]["partId"].as_str().unwrap().to_string();
        assert_eq!(out["bodyValues"][&pid]["value"], "caf");
        assert_eq!(out["bodyValues"][&pid]["isTruncated"], true);
    }
}
