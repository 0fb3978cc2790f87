//! RFC 9007 (JMAP for MDN): MDN/send and MDN/parse. We had no copy of RFC
//! 9007 to read; this follows the published text as we know it
//! (§2 the MDN object, §3.1 MDN/send, §3.2 MDN/parse) and RFC 8098 for the
//! report itself (§3: `multipart/report; report-type=disposition-notification`
//! with a human part, the `message/disposition-notification` fields, and
//! the original message or its header).
//!
//! A sent MDN goes the way of every submission (`submission::send`: DKIM,
//! local copies and queue entry in one transaction) to the address in the
//! email's `Disposition-Notification-To:`, and the email gets `$mdnsent`
//! (RFC 3503 §2) so no second MDN goes out for it.

use crate::args;
use crate::submission::{addresses_of, storage as storage_set_error, NotReleased};
use crate::{headers, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, SetError, SetErrorType};
use letterbox_store::{EmailPatch, PatchOutcome};
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;
use mail_parser::MimeHeaders;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// RFC 3503 §2: an MDN was sent for this message.
pub const MDN_SENT: &str = "$mdnsent";
/// Longest subject, text and extension value accepted.
const MAX_TEXT: usize = 64 * 1024;
/// Most MDNs one call sends.
const MAX_SEND: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Disposition {
    action_mode: String,
    sending_mode: String,
    #[serde(rename = "type")]
    kind: String,
}

/// RFC 9007 §2. Server-set properties (`mdnGateway`, `originalRecipient`,
/// `originalMessageId`) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Mdn {
    for_email_id: String,
    subject: Option<String>,
    text_body: Option<String>,
    #[serde(default)]
    include_original_message: bool,
    reporting_ua: Option<String>,
    disposition: Disposition,
    #[allow(dead_code)]
    mdn_gateway: Option<String>,
    #[allow(dead_code)]
    original_recipient: Option<String>,
    final_recipient: Option<String>,
    #[allow(dead_code)]
    original_message_id: Option<String>,
    error: Option<Vec<String>>,
    extension_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendArgs {
    #[allow(dead_code)]
    account_id: String,
    identity_id: String,
    send: Map<String, Value>,
    on_success_update_email: Option<Map<String, Value>>,
}

fn one_line(s: &str) -> bool {
    !s.contains(['\r', '\n']) && s.len() <= MAX_TEXT
}

/// RFC 8098 §3.2.6: the disposition, checked.
fn disposition(d: &Disposition) -> Result<String, SetError> {
    let bad = || SetError::invalid_properties(&["disposition"], "unknown actionMode, sendingMode or type");
    if !matches!(d.action_mode.as_str(), "manual-action" | "automatic-action")
        || !matches!(d.sending_mode.as_str(), "mdn-sent-manually" | "mdn-sent-automatically")
        || !matches!(d.kind.as_str(), "deleted" | "dispatched" | "displayed" | "processed")
    {
        return Err(bad());
    }
    Ok(format!(
        "{}/{}; {}",
        d.action_mode,
        d.sending_mode.replace("mdn-", "MDN-"),
        d.kind
    ))
}

fn header_value(fields: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| {
        String::from_utf8_lossy(v)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// What one MDN/send creation does; the server-set properties on success.
async fn send_one(call: &Call<'_>, identity: &str, value: Value) -> Result<(Value, i64), SetError> {
    let mdn: Mdn =
        serde_json::from_value(value).map_err(|e| SetError::new(SetErrorType::InvalidProperties, e.to_string()))?;
    let disp = disposition(&mdn.disposition)?;
    let texts = [&mdn.subject, &mdn.reporting_ua, &mdn.final_recipient];
    if texts.iter().any(|t| t.as_deref().is_some_and(|t| !one_line(t)))
        || mdn.text_body.as_ref().is_some_and(|t| t.len() > MAX_TEXT)
        || mdn
            .error
            .as_ref()
            .is_some_and(|e| e.len() > 20 || e.iter().any(|l| !one_line(l)))
    {
        return Err(SetError::new(
            SetErrorType::InvalidProperties,
            "a text is too long or has line breaks",
        ));
    }
    let email_id = call
        .resolve_id(&mdn.for_email_id)
        .and_then(|s| Id::parse(IdKind::Email, &s))
        .ok_or_else(|| SetError::invalid_properties(&["forEmailId"], "no such email"))?;
    let metas = call
        .store()
        .emails(call.caller.account, &[email_id])
        .await
        .map_err(storage_set_error)?;
    let meta = metas
        .first()
        .ok_or_else(|| SetError::invalid_properties(&["forEmailId"], "no such email"))?;
    if meta.keywords.iter().any(|k| k.eq_ignore_ascii_case(MDN_SENT)) {
        return Err(SetError::new(
            SetErrorType::MdnAlreadySent,
            "an MDN was sent for this email",
        ));
    }
    let raw = call.store().raw_message(meta.id).await.map_err(storage_set_error)?;
    let head = letterbox_mail::header_section(&raw);
    let fields = headers::fields(head);
    let Some(to) = addresses_of(&fields, "Disposition-Notification-To").into_iter().next() else {
        return Err(SetError::invalid_properties(
            &["forEmailId"],
            "the email asks for no MDN (no Disposition-Notification-To)",
        ));
    };
    let original_id = header_value(&fields, "Message-ID");
    let original_rcpt = header_value(&fields, "Original-Recipient");
    let final_rcpt = mdn
        .final_recipient
        .clone()
        .unwrap_or_else(|| format!("rfc822; {identity}"));
    let ua = mdn
        .reporting_ua
        .clone()
        .unwrap_or_else(|| format!("{}; Letterbox", call.jmap.config.hostname));

    // RFC 8098 §3.1: the machine-readable part.
    let mut report = format!("Reporting-UA: {ua}\r\n");
    if let Some(r) = &original_rcpt {
        report.push_str(&format!("Original-Recipient: {r}\r\n"));
    }
    report.push_str(&format!("Final-Recipient: {final_rcpt}\r\n"));
    if let Some(id) = &original_id {
        report.push_str(&format!("Original-Message-ID: {id}\r\n"));
    }
    report.push_str(&format!("Disposition: {disp}\r\n"));
    for e in mdn.error.iter().flatten() {
        report.push_str(&format!("Error: {e}\r\n"));
    }
    for (k, v) in mdn.extension_fields.iter().flatten() {
        let ok_name = !k.is_empty() && k.len() <= 76 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let Some(v) = v.as_str().filter(|v| one_line(v)) else {
            return Err(SetError::invalid_properties(
                &["extensionFields"],
                "values are one-line strings",
            ));
        };
        if !ok_name {
            return Err(SetError::invalid_properties(&["extensionFields"], "bad field name"));
        }
        report.push_str(&format!("{k}: {v}\r\n"));
    }
    let subject = header_value(&fields, "Subject").unwrap_or_default();
    let text = mdn.text_body.clone().unwrap_or_else(|| {
        format!(
            "This is a receipt for the mail you sent to {identity}\r\nwith the subject \"{subject}\".\r\n\r\n\
             It shows the message was {} on the recipient's computer. There is no\r\n\
             guarantee that it was read or understood.\r\n",
            mdn.disposition.kind
        )
    });
    let original = if mdn.include_original_message {
        MimePart::new("message/rfc822", raw.to_vec()).transfer_encoding("8bit")
    } else {
        MimePart::new("text/rfc822-headers", head.to_vec()).transfer_encoding("8bit")
    };
    let body = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "disposition-notification"),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new("message/disposition-notification", report.into_bytes()).transfer_encoding("7bit"),
            original,
        ],
    );
    let mut b = MessageBuilder::new()
        .from(identity.to_string())
        .to(to.clone())
        .subject(mdn.subject.clone().unwrap_or_else(|| format!("Read: {subject}")))
        .message_id(format!("{}@{}", crate::submission::unique(), call.jmap.config.hostname))
        .date(letterbox_store::unix_now())
        .body(body);
    if let Some(id) = &original_id {
        let bare = id.trim().trim_start_matches('<').trim_end_matches('>').to_string();
        b = b.in_reply_to(bare.clone()).references(bare);
    }
    if mdn.disposition.sending_mode == "mdn-sent-automatically" {
        // RFC 3834 §5: keeps responders from answering it.
        b = b.header("Auto-Submitted", Raw::new("auto-replied"));
    }
    let message = b
        .write_to_vec()
        .map_err(|e| SetError::new(SetErrorType::InvalidProperties, e.to_string()))?;
    match crate::submission::send(call.jmap, identity, &[to], &message, None).await {
        Ok(_) => {}
        Err(NotReleased::Failed(e)) => return Err(e),
        Err(NotReleased::Gone) => return Err(SetError::new(SetErrorType::Forbidden, "not sent")),
        Err(NotReleased::Temporary(e)) => return Err(storage_set_error(e)),
    }
    let patch = EmailPatch {
        add_keywords: vec![MDN_SENT.to_string()],
        ..EmailPatch::default()
    };
    match call
        .store()
        .update_emails(call.caller.account, vec![(email_id, patch)])
        .await
    {
        Ok(r) if r.first().is_some_and(|o| *o == PatchOutcome::Updated) => {}
        Ok(_) => tracing::warn!(email = email_id, "MDN sent; could not mark the email $mdnsent"),
        Err(e) => tracing::warn!(error = %e, "MDN sent; could not mark the email $mdnsent"),
    }
    Ok((
        json!({
            "finalRecipient": final_rcpt,
            "originalRecipient": original_rcpt,
            "originalMessageId": original_id,
            "reportingUA": ua,
            "mdnGateway": null,
        }),
        email_id,
    ))
}

/// RFC 9007 §3.1.
pub async fn send(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: SendArgs = args::parse(a)?;
    if a.send.len() > MAX_SEND {
        return Err(MethodError::new(letterbox_jmap_proto::MethodErrorType::RequestTooLarge));
    }
    let identities = crate::identity::identities(call).await?;
    let identity_id = call.resolve_id(&a.identity_id).unwrap_or_default();
    let Some((_, identity)) = identities.iter().find(|(id, _)| *id == identity_id).cloned() else {
        return Err(MethodError::invalid_arguments("no such identity"));
    };
    let mut sent = Map::new();
    let mut not_sent = Map::new();
    let mut emails = Vec::new();
    for (cid, value) in a.send {
        match send_one(call, &identity, value).await {
            Ok((props, email)) => {
                emails.push((format!("#{cid}"), Id::new(IdKind::Email, email).to_string()));
                sent.insert(cid, props);
            }
            Err(e) => {
                not_sent.insert(cid, json!(e));
            }
        }
    }
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("sent".into(), args::object_or_null(sent));
    out.insert("notSent".into(), args::object_or_null(not_sent));
    let mut results = vec![("MDN/send".to_string(), out)];
    let mut update = Map::new();
    for (k, patch) in a.on_success_update_email.unwrap_or_default() {
        if let Some((_, email)) = emails.iter().find(|(c, _)| *c == k) {
            update.insert(email.clone(), patch);
        }
    }
    if !update.is_empty() {
        let mut args = Map::new();
        args.insert("accountId".into(), json!(call.caller.account_id()));
        args.insert("update".into(), Value::Object(update));
        results.extend(crate::email::set(call, args).await?);
    }
    Ok(results)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ParseArgs {
    #[allow(dead_code)]
    account_id: String,
    blob_ids: Vec<String>,
}

/// The MDN object of a report message, if it is one (RFC 8098 §3).
fn parse_report(raw: &[u8]) -> Option<Map<String, Value>> {
    let msg = crate::email::render::parse(raw)?;
    let ct = |p: &mail_parser::MessagePart| {
        p.content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let report = msg.parts.iter().find(|p| ct(p) == "message/disposition-notification")?;
    let fields = headers::fields(report.contents());
    let get = |n: &str| header_value(&fields, n);
    let disp = get("Disposition")?;
    let (modes, kind) = disp.split_once(';')?;
    let (action, sending) = modes.trim().split_once('/')?;
    let kind = kind.trim().split('/').next().unwrap_or_default().to_ascii_lowercase();
    let text = msg
        .parts
        .iter()
        .find(|p| ct(p) == "text/plain")
        .map(|p| String::from_utf8_lossy(p.contents()).to_string());
    let errors: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Error"))
        .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
        .collect();
    let known = [
        "reporting-ua",
        "mdn-gateway",
        "original-recipient",
        "final-recipient",
        "original-message-id",
        "disposition",
        "error",
    ];
    let extension: Map<String, Value> = fields
        .iter()
        .filter(|(n, _)| !known.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| (n.clone(), json!(String::from_utf8_lossy(v).trim())))
        .collect();
    let included = msg.parts.iter().any(|p| ct(p) == "message/rfc822");
    match json!({
        "forEmailId": null,
        "subject": msg.subject(),
        "textBody": text,
        "includeOriginalMessage": included,
        "reportingUA": get("Reporting-UA"),
        "disposition": {
            "actionMode": action.trim().to_ascii_lowercase(),
            "sendingMode": sending.trim().to_ascii_lowercase(),
            "type": kind,
        },
        "mdnGateway": get("MDN-Gateway"),
        "originalRecipient": get("Original-Recipient"),
        "finalRecipient": get("Final-Recipient"),
        "originalMessageId": get("Original-Message-ID"),
        "error": args::json_or_null(errors),
        "extensionFields": args::object_or_null(extension),
    }) {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// RFC 9007 §3.2.
pub async fn parse(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ParseArgs = args::parse(a)?;
    args::check_get_size(call, Some(&a.blob_ids))?;
    let mut parsed = Map::new();
    let mut not_parsable = Vec::new();
    let mut not_found = Vec::new();
    for blob_id in a.blob_ids {
        let Ok(raw) = crate::blob::read(call, &blob_id).await else {
            not_found.push(blob_id);
            continue;
        };
        match tokio::task::spawn_blocking(move || parse_report(&raw)).await {
            Ok(Some(m)) => {
                parsed.insert(blob_id, Value::Object(m));
            }
            _ => not_parsable.push(blob_id),
        }
    }
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("parsed".into(), args::object_or_null(parsed));
    out.insert("notParsable".into(), args::json_or_null(not_parsable));
    out.insert("notFound".into(), args::json_or_null(not_found));
    crate::one("MDN/parse", out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_follow_rfc_8098() {
        let d = |a: &str, s: &str, t: &str| Disposition {
            action_mode: a.into(),
            sending_mode: s.into(),
            kind: t.into(),
        };
        assert_eq!(
            disposition(&d("manual-action", "mdn-sent-manually", "displayed"))
                .ok()
                .as_deref(),
            Some("manual-action/MDN-sent-manually; displayed")
        );
        assert!(disposition(&d("manual-action", "mdn-sent-manually", "read")).is_err());
        assert!(disposition(&d("by-hand", "mdn-sent-manually", "displayed")).is_err());
    }

    #[test]
    fn a_report_parses_back() {
        let raw = b"From: a@x\r\nSubject: Read: hi\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nreceipt\r\n\
--b\r\nContent-Type: message/disposition-notification\r\n\r\n\
Reporting-UA: x; y\r\nFinal-Recipient: rfc822; a@x\r\nOriginal-Message-ID: <m@x>\r\n\
Disposition: manual-action/MDN-sent-manually; displayed\r\nX-Extra: 1\r\n\r\n--b--\r\n";
        let m = parse_report(raw).expect("parsed");
        assert_eq!(m["disposition"]["type"], "displayed");
        assert_eq!(m["disposition"]["sendingMode"], "mdn-sent-manually");
        assert_eq!(m["finalRecipient"], "rfc822; a@x");
        assert_eq!(m["originalMessageId"], "<m@x>");
        assert_eq!(m["extensionFields"]["X-Extra"], "1");
        assert_eq!(m["includeOriginalMessage"], false);
        assert!(parse_report(b"Subject: plain\r\n\r\nno report\r\n").is_none());
    }
}
