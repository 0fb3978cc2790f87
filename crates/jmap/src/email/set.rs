//! RFC 8621 §4.6 Email/set, §4.8 Email/import, §4.9 Email/parse.

use super::render;
use crate::args::{self, SetArgs};
use crate::{date, keywords, one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, SetError, SetErrorType};
use letterbox_store::{DataType, EmailPatch, NewMessage, PatchOutcome, StoreError};
use mail_builder::headers::address::Address as BAddress;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;
use serde::Deserialize;
use serde_json::{json, Map, Value};

fn set_error_of(e: StoreError) -> SetError {
    match e {
        StoreError::QuotaExceeded { .. } => SetError::new(SetErrorType::OverQuota, "over quota"),
        StoreError::NotFound(_) => SetError::not_found(),
        StoreError::Invalid(why) => SetError::new(SetErrorType::InvalidProperties, why),
        other => {
            tracing::error!(error = %other, "store error in Email/set");
            SetError::new(SetErrorType::Forbidden, "storage error")
        }
    }
}

/// `mailboxIds` of a create/import: resolved store ids (RFC 8621 §4.1.1).
fn mailbox_ids(call: &Call<'_>, v: Option<&Value>) -> Result<Vec<i64>, SetError> {
    let obj = v
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| SetError::invalid_properties(&["mailboxIds"], "at least one mailbox is required"))?;
    let mut out = Vec::new();
    for (k, v) in obj {
        if v != &Value::Bool(true) {
            return Err(SetError::invalid_properties(&["mailboxIds"], "values must be true"));
        }
        let id = call
            .resolve_id(k)
            .and_then(|s| Id::parse(IdKind::Mailbox, &s))
            .ok_or_else(|| SetError::invalid_properties(&["mailboxIds"], format!("no mailbox {k}")))?;
        out.push(id);
    }
    Ok(out)
}

/// `keywords` of a create/import, as IMAP flags.
fn keyword_flags(v: Option<&Value>) -> Result<Vec<String>, SetError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let obj = v
        .as_object()
        .ok_or_else(|| SetError::invalid_properties(&["keywords"], "keywords is an object"))?;
    obj.iter()
        .map(|(k, v)| {
            if v != &Value::Bool(true) {
                return Err(SetError::invalid_properties(&["keywords"], "values must be true"));
            }
            keywords::to_imap(k).ok_or_else(|| SetError::invalid_properties(&["keywords"], format!("bad keyword {k}")))
        })
        .collect()
}

/// An update patch (RFC 8620 §5.3 PatchObject) as a store patch.
fn patch_of(call: &Call<'_>, patch: &Value) -> Result<EmailPatch, SetError> {
    let obj = patch
        .as_object()
        .ok_or_else(|| SetError::new(SetErrorType::InvalidPatch, "a patch is an object"))?;
    let mut p = EmailPatch::default();
    for (path, v) in obj {
        let bad = || SetError::new(SetErrorType::InvalidPatch, format!("cannot apply {path}"));
        match path.split_once('/') {
            None if path == "keywords" => p.keywords = Some(keyword_flags(Some(v))?),
            None if path == "mailboxIds" => p.mailboxes = Some(mailbox_ids(call, Some(v))?),
            Some(("keywords", k)) => {
                let k = unescape(k);
                let flag = keywords::to_imap(&k).ok_or_else(bad)?;
                match v {
                    Value::Bool(true) => p.add_keywords.push(flag),
                    Value::Null | Value::Bool(false) => p.remove_keywords.push(flag),
                    _ => return Err(bad()),
                }
            }
            Some(("mailboxIds", m)) => {
                let m = unescape(m);
                let id = call
                    .resolve_id(&m)
                    .and_then(|s| Id::parse(IdKind::Mailbox, &s))
                    .ok_or_else(|| SetError::invalid_properties(&["mailboxIds"], format!("no mailbox {m}")))?;
                match v {
                    Value::Bool(true) => p.add_mailboxes.push(id),
                    Value::Null | Value::Bool(false) => p.remove_mailboxes.push(id),
                    _ => return Err(bad()),
                }
            }
            _ => {
                return Err(SetError::invalid_properties(
                    &[path.as_str()],
                    "only keywords and mailboxIds can change (RFC 8621 §4.6)",
                ))
            }
        }
    }
    Ok(p)
}

/// RFC 6901 §4 escapes inside one patch path segment.
fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

#[derive(Debug, Deserialize)]
struct EmailAddress {
    name: Option<String>,
    email: String,
}

fn addresses(v: Option<&Value>, prop: &str) -> Result<Option<Vec<EmailAddress>>, SetError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        // An empty list is no header at all (not an empty `Cc:`).
        Some(v) => serde_json::from_value::<Vec<EmailAddress>>(v.clone())
            .map(|l| (!l.is_empty()).then_some(l))
            .map_err(|_| SetError::invalid_properties(&[prop], "not a list of EmailAddress")),
    }
}

fn builder_address(list: Vec<EmailAddress>) -> BAddress<'static> {
    BAddress::new_list(
        list.into_iter()
            .map(|a| match a.name {
                Some(n) => BAddress::from((n, a.email)),
                None => BAddress::from(a.email),
            })
            .collect(),
    )
}

fn no_crlf(s: &str) -> bool {
    !s.contains(['\r', '\n'])
}

/// Build the RFC 5322 message of an Email/set create (RFC 8621 §4.6):
/// header properties, `textBody`/`htmlBody` with their `bodyValues`, and
/// `attachments` from uploaded or existing blobs.
async fn build(call: &Call<'_>, obj: &Map<String, Value>) -> Result<Vec<u8>, SetError> {
    for k in obj.keys() {
        let known = matches!(
            k.as_str(),
            "mailboxIds"
                | "keywords"
                | "receivedAt"
                | "messageId"
                | "inReplyTo"
                | "references"
                | "sender"
                | "from"
                | "to"
                | "cc"
                | "bcc"
                | "replyTo"
                | "subject"
                | "sentAt"
                | "textBody"
                | "htmlBody"
                | "attachments"
                | "bodyValues"
                | "bodyStructure"
        ) || (k.starts_with("header:") && k.split(':').count() == 2);
        if !known {
            return Err(SetError::invalid_properties(&[k.as_str()], "not settable on create"));
        }
    }
    let mut b = MessageBuilder::new();
    for (prop, setter) in [
        ("from", 0),
        ("to", 1),
        ("cc", 2),
        ("bcc", 3),
        ("replyTo", 4),
        ("sender", 5),
    ] {
        if let Some(list) = addresses(obj.get(prop), prop)? {
            if list
                .iter()
                .any(|a| !no_crlf(&a.email) || a.name.as_deref().is_some_and(|n| !no_crlf(n)))
            {
                return Err(SetError::invalid_properties(&[prop], "line breaks in an address"));
            }
            let a = builder_address(list);
            b = match setter {
                0 => b.from(a),
                1 => b.to(a),
                2 => b.cc(a),
                3 => b.bcc(a),
                4 => b.reply_to(a),
                _ => b.sender(a),
            };
        }
    }
    if let Some(s) = obj.get("subject").and_then(Value::as_str) {
        b = b.subject(s.to_string());
    }
    let ids = |prop: &str| -> Result<Option<Vec<String>>, SetError> {
        match obj.get(prop) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let l: Vec<String> = serde_json::from_value(v.clone())
                    .map_err(|_| SetError::invalid_properties(&[prop], "not a list of ids"))?;
                if l.iter().any(|i| !no_crlf(i) || i.contains(['<', '>', ' '])) {
                    return Err(SetError::invalid_properties(&[prop], "bad message id"));
                }
                Ok(Some(l))
            }
        }
    };
    match ids("messageId")? {
        Some(l) if !l.is_empty() => b = b.message_id(l[0].clone()),
        _ => b = b.message_id(format!("{}@{}", crate::submission::unique(), call.jmap.config.hostname)),
    }
    if let Some(l) = ids("inReplyTo")? {
        b = b.in_reply_to(l);
    }
    if let Some(l) = ids("references")? {
        b = b.references(l);
    }
    let sent = match obj.get("sentAt") {
        Some(Value::String(s)) => {
            date::parse(s).ok_or_else(|| SetError::invalid_properties(&["sentAt"], "not a date"))?
        }
        _ => letterbox_store::unix_now(),
    };
    b = b.date(sent);
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("header:")) {
        let name = &k["header:".len()..];
        let value = v
            .as_str()
            .filter(|s| no_crlf(s))
            .ok_or_else(|| SetError::invalid_properties(&[k.as_str()], "a raw header value without line breaks"))?;
        b = b.header(name.to_string(), Raw::new(value.to_string()));
    }
    let values = obj
        .get("bodyValues")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let body_text = |prop: &str| -> Result<Option<String>, SetError> {
        let Some(parts) = obj.get(prop).and_then(Value::as_array) else {
            return Ok(None);
        };
        let Some(part) = parts.first() else { return Ok(None) };
        if parts.len() > 1 {
            return Err(SetError::invalid_properties(&[prop], "one part only"));
        }
        let pid = part
            .get("partId")
            .and_then(Value::as_str)
            .ok_or_else(|| SetError::invalid_properties(&[prop], "partId required"))?;
        let text = values
            .get(pid)
            .and_then(|v| v.get("value"))
            .and_then(Value::as_str)
            .ok_or_else(|| SetError::invalid_properties(&["bodyValues"], format!("no value for part {pid}")))?;
        Ok(Some(text.to_string()))
    };
    if let Some(tree) = obj.get("bodyStructure").filter(|v| !v.is_null()) {
        // §4.6: bodyStructure replaces the three convenience lists.
        if ["textBody", "htmlBody", "attachments"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            return Err(SetError::invalid_properties(
                &["bodyStructure"],
                "bodyStructure excludes textBody, htmlBody and attachments",
            ));
        }
        let mut blobs = std::collections::HashMap::new();
        for id in super::structure::blob_ids(tree)? {
            if blobs.contains_key(&id) {
                continue;
            }
            let data = crate::blob::read(call, &id)
                .await
                .map_err(|_| SetError::blob_not_found(&id))?;
            blobs.insert(id, data);
        }
        b = b.body(super::structure::build(tree, &values, &blobs)?);
        return b
            .write_to_vec()
            .map_err(|e| SetError::new(SetErrorType::InvalidEmail, e.to_string()));
    }
    if let Some(t) = body_text("textBody")? {
        b = b.text_body(t);
    }
    if let Some(h) = body_text("htmlBody")? {
        b = b.html_body(h);
    }
    for att in obj
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let blob_id = att
            .get("blobId")
            .and_then(Value::as_str)
            .ok_or_else(|| SetError::invalid_properties(&["attachments"], "blobId required"))?;
        let data = crate::blob::read(call, blob_id)
            .await
            .map_err(|_| SetError::blob_not_found(blob_id))?;
        let ctype = att
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| no_crlf(t))
            .unwrap_or("application/octet-stream")
            .to_string();
        let name = att
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| no_crlf(n))
            .map(str::to_string);
        let cid = att
            .get("cid")
            .and_then(Value::as_str)
            .filter(|c| no_crlf(c))
            .map(str::to_string);
        let inline = att.get("disposition").and_then(Value::as_str) == Some("inline");
        b = match (inline, cid) {
            (true, Some(cid)) => b.inline(ctype, cid, data),
            _ => {
                // RFC 2046 §5.2.1: message/rfc822 takes no base64; sent as
                // 8bit when its lines allow (else base64, the only safe form).
                let eightbit = ctype.to_ascii_lowercase().starts_with("message/")
                    && !data.contains(&0)
                    && data.split(|&b| b == b'\n').all(|l| l.len() <= 998);
                let part = MimePart::new(ctype, data);
                let part = if eightbit { part.transfer_encoding("8bit") } else { part };
                b.attachment_part(part, name)
            }
        };
    }
    b.write_to_vec()
        .map_err(|e| SetError::new(SetErrorType::InvalidEmail, e.to_string()))
}

trait AttachmentPart<'x> {
    fn attachment_part(self, part: MimePart<'x>, name: Option<String>) -> Self;
}

impl<'x> AttachmentPart<'x> for MessageBuilder<'x> {
    fn attachment_part(mut self, part: MimePart<'x>, name: Option<String>) -> Self {
        let part = match name {
            Some(n) => part.attachment(n),
            None => part.header("Content-Disposition", Raw::new("attachment")),
        };
        self.attachments.get_or_insert_with(Vec::new).push(part);
        self
    }
}

fn received_at(obj: &Map<String, Value>) -> Result<i64, SetError> {
    match obj.get("receivedAt") {
        None | Some(Value::Null) => Ok(letterbox_store::unix_now()),
        Some(Value::String(s)) => {
            date::parse(s).ok_or_else(|| SetError::invalid_properties(&["receivedAt"], "not a UTCDate"))
        }
        _ => Err(SetError::invalid_properties(&["receivedAt"], "not a UTCDate")),
    }
}

fn created_object(meta: &letterbox_store::EmailMeta) -> Value {
    json!({
        "id": Id::new(IdKind::Email, meta.id).to_string(),
        "blobId": meta.blob_id,
        "threadId": Id::new(IdKind::Thread, meta.thread_id).to_string(),
        "size": meta.size,
    })
}

/// Store a new email with the mailboxIds, keywords and receivedAt of `obj`
/// (Email/set create, Email/import).
async fn store_new(
    call: &Call<'_>,
    obj: &Map<String, Value>,
    raw: Vec<u8>,
) -> Result<letterbox_store::EmailMeta, SetError> {
    let boxes = mailbox_ids(call, obj.get("mailboxIds"))?;
    let message = NewMessage {
        raw,
        flags: keyword_flags(obj.get("keywords"))?,
        internal_date: received_at(obj)?,
    };
    call.store()
        .import_email(call.caller.account, &boxes, message)
        .await
        .map_err(set_error_of)
}

/// File one creation's outcome, and its id for `#cid` references (RFC 8620 §5.3).
fn note_created(
    call: &mut Call<'_>,
    cid: String,
    outcome: Result<letterbox_store::EmailMeta, SetError>,
    created: &mut Map<String, Value>,
    not_created: &mut Map<String, Value>,
) {
    match outcome {
        Ok(meta) => {
            call.created
                .insert(cid.clone(), Id::new(IdKind::Email, meta.id).to_string());
            created.insert(cid, created_object(&meta));
        }
        Err(e) => {
            not_created.insert(cid, json!(e));
        }
    }
}

/// RFC 8621 §4.6.
pub async fn set(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let s: SetArgs = args::parse(a)?;
    args::check_set_size(call, &s)?;
    let old_state = args::check_state(call, DataType::Email, s.if_in_state.as_deref()).await?;
    let account = call.caller.account;
    let mut o = args::SetOutcome::default();

    for (cid, value) in s.create.unwrap_or_default() {
        let outcome = async {
            let obj = value
                .as_object()
                .ok_or_else(|| SetError::new(SetErrorType::InvalidProperties, "not an object"))?;
            let raw = build(call, obj).await?;
            if raw.len() as u64 > call.jmap.config.limits.max_size_upload {
                return Err(SetError::new(SetErrorType::TooLarge, "message too large"));
            }
            store_new(call, obj, raw).await
        }
        .await;
        note_created(call, cid, outcome, &mut o.created, &mut o.not_created);
    }

    let mut patches = Vec::new();
    let mut patch_ids = Vec::new();
    for (raw_id, patch) in s.update.unwrap_or_default() {
        let Some(id) = call.resolve_id(&raw_id).and_then(|s| Id::parse(IdKind::Email, &s)) else {
            o.not_updated.insert(raw_id, json!(SetError::not_found()));
            continue;
        };
        match patch_of(call, &patch) {
            Ok(p) => {
                patches.push((id, p));
                patch_ids.push(raw_id);
            }
            Err(e) => {
                o.not_updated.insert(raw_id, json!(e));
            }
        }
    }
    if !patches.is_empty() {
        let outcomes = call
            .store()
            .update_emails(account, patches)
            .await
            .map_err(args::store_error)?;
        for (raw_id, outcome) in patch_ids.into_iter().zip(outcomes) {
            match outcome {
                PatchOutcome::Updated => {
                    o.updated.insert(raw_id, Value::Null);
                }
                PatchOutcome::NotFound => {
                    o.not_updated.insert(raw_id, json!(SetError::not_found()));
                }
                PatchOutcome::Invalid(why) => {
                    o.not_updated
                        .insert(raw_id, json!(SetError::new(SetErrorType::InvalidProperties, why)));
                }
            }
        }
    }

    let destroy = s.destroy.unwrap_or_default();
    if !destroy.is_empty() {
        let mut ids = Vec::new();
        let mut raw_ids = Vec::new();
        for raw_id in destroy {
            match call.resolve_id(&raw_id).and_then(|s| Id::parse(IdKind::Email, &s)) {
                Some(id) => {
                    ids.push(id);
                    raw_ids.push(raw_id);
                }
                None => {
                    o.not_destroyed.insert(raw_id, json!(SetError::not_found()));
                }
            }
        }
        let existed = call
            .store()
            .destroy_emails(account, &ids)
            .await
            .map_err(args::store_error)?;
        for (raw_id, ok) in raw_ids.into_iter().zip(existed) {
            if ok {
                o.destroyed.push(raw_id);
            } else {
                o.not_destroyed.insert(raw_id, json!(SetError::not_found()));
            }
        }
    }
    let new_state = args::state(call, DataType::Email).await?;
    one("Email/set", o.response(call, old_state, new_state))
}

/// RFC 5322 §2.2: a message starts with a header field (`name:`, the
/// name printable ASCII without colon).
fn looks_like_message(raw: &[u8]) -> bool {
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let first = &raw[..line_end];
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => first[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImportArgs {
    #[allow(dead_code)]
    account_id: String,
    if_in_state: Option<String>,
    emails: Map<String, Value>,
}

/// RFC 8621 §4.8.
pub async fn import(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ImportArgs = args::parse(a)?;
    if a.emails.len() > call.jmap.config.limits.max_objects_in_set as usize {
        return Err(MethodError::new(letterbox_jmap_proto::MethodErrorType::RequestTooLarge));
    }
    let old_state = args::check_state(call, DataType::Email, a.if_in_state.as_deref()).await?;
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, value) in a.emails {
        let outcome = async {
            let obj = value
                .as_object()
                .ok_or_else(|| SetError::new(SetErrorType::InvalidProperties, "not an object"))?;
            for k in obj.keys() {
                if !matches!(k.as_str(), "blobId" | "mailboxIds" | "keywords" | "receivedAt") {
                    return Err(SetError::invalid_properties(
                        &[k.as_str()],
                        "unknown EmailImport property",
                    ));
                }
            }
            let blob_id = obj
                .get("blobId")
                .and_then(Value::as_str)
                .ok_or_else(|| SetError::invalid_properties(&["blobId"], "blobId required"))?;
            // Checked before the blob is read.
            mailbox_ids(call, obj.get("mailboxIds"))?;
            keyword_flags(obj.get("keywords"))?;
            received_at(obj)?;
            let raw = crate::blob::read(call, blob_id)
                .await
                .map_err(|_| SetError::blob_not_found(blob_id))?;
            if !looks_like_message(&raw) {
                return Err(SetError::new(
                    SetErrorType::InvalidEmail,
                    "the blob is not an RFC 5322 message",
                ));
            }
            store_new(call, obj, raw).await
        }
        .await;
        note_created(call, cid, outcome, &mut created, &mut not_created);
    }
    let new_state = args::state(call, DataType::Email).await?;
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("oldState".into(), json!(old_state));
    out.insert("newState".into(), json!(new_state));
    out.insert("created".into(), args::object_or_null(created));
    out.insert("notCreated".into(), args::object_or_null(not_created));
    one("Email/import", out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ParseArgs {
    #[allow(dead_code)]
    account_id: String,
    blob_ids: Vec<String>,
    properties: Option<Vec<String>>,
    body_properties: Option<Vec<String>>,
    #[serde(default)]
    fetch_text_body_values: bool,
    #[serde(default, rename = "fetchHTMLBodyValues")]
    fetch_html_body_values: bool,
    #[serde(default)]
    fetch_all_body_values: bool,
    #[serde(default)]
    max_body_value_bytes: u64,
}

/// RFC 8621 §4.9: an Email from any blob (e.g. an attached message).
pub async fn parse(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ParseArgs = args::parse(a)?;
    args::check_get_size(call, Some(&a.blob_ids))?;
    let mut props = a.properties.unwrap_or_else(|| {
        render::DEFAULT_PROPERTIES
            .iter()
            .filter(|p| !matches!(**p, "id" | "mailboxIds" | "keywords" | "receivedAt" | "threadId"))
            .map(|s| s.to_string())
            .collect()
    });
    props.retain(|p| render::known_property(p));
    let opts = super::body_options(
        call,
        a.body_properties,
        a.fetch_text_body_values,
        a.fetch_html_body_values,
        a.fetch_all_body_values,
        a.max_body_value_bytes,
    )?;
    let mut parsed = Map::new();
    let mut not_parsable = Vec::new();
    let mut not_found = Vec::new();
    for blob_id in a.blob_ids {
        let Ok(raw) = crate::blob::read(call, &blob_id).await else {
            not_found.push(blob_id);
            continue;
        };
        let (props, opts, id) = (props.clone(), opts.clone(), blob_id.clone());
        let obj = tokio::task::spawn_blocking(move || {
            render::parse(&raw)?;
            let mut obj = Map::new();
            render::message_properties(&raw, &id, &props, &opts, &mut obj);
            if props.iter().any(|p| p == "blobId") {
                obj.insert("blobId".into(), json!(id));
            }
            if props.iter().any(|p| p == "size") {
                obj.insert("size".into(), json!(raw.len()));
            }
            Some(obj)
        })
        .await
        .map_err(|e| MethodError::server_fail(e.to_string()))?;
        match obj {
            Some(o) => {
                parsed.insert(blob_id, Value::Object(o));
            }
            None => not_parsable.push(blob_id),
        }
    }
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("parsed".into(), args::object_or_null(parsed));
    out.insert("notParsable".into(), json!(not_parsable));
    out.insert("notFound".into(), json!(not_found));
    one("Email/parse", out)
}
