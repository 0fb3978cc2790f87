//! RFC 8621 §7 EmailSubmission: sending an Email. A submission checks the
//! From: against the identity, derives the envelope (§7.5), signs with DKIM
//! like SMTP submission, and commits local copies and the queue entry in one
//! store transaction (`Store::accept`) before it answers.
//!
//! Submissions are not kept as objects: once accepted they are in the queue,
//! so EmailSubmission/get finds none and undoStatus is always `final`.

use crate::args::{self, SetArgs};
use crate::{headers, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType, SetError, SetErrorType};
use letterbox_store::{
    inbox_targets, Intake, NewMessage, OutboundMessage, OutboundRecipient, OverQuota, Recipient, StoreError,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Most recipients one submission may have (as SMTP's default).
pub const MAX_RECIPIENTS: usize = 100;

/// A unique token for Message-IDs and submission ids.
pub(crate) fn unique() -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}

const STATE: &str = "0";

/// RFC 8621 §7.1: nothing is kept, so every id is not found.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: args::GetArgs = args::parse(a)?;
    let not_found = a.ids.unwrap_or_default();
    crate::one(
        "EmailSubmission/get",
        args::get_response(call, STATE.into(), Vec::new(), not_found),
    )
}

pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: args::ChangesArgs = args::parse(a)?;
    if a.since_state != STATE {
        return Err(MethodError::new(MethodErrorType::CannotCalculateChanges));
    }
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("oldState".into(), json!(STATE));
    out.insert("newState".into(), json!(STATE));
    out.insert("hasMoreChanges".into(), json!(false));
    for k in ["created", "updated", "destroyed"] {
        out.insert(k.into(), json!([]));
    }
    crate::one("EmailSubmission/changes", out)
}

pub async fn query(call: &mut Call<'_>, _a: Map<String, Value>) -> MethodResult {
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("queryState".into(), json!(STATE));
    out.insert("canCalculateChanges".into(), json!(false));
    out.insert("position".into(), json!(0));
    out.insert("ids".into(), json!([]));
    out.insert("total".into(), json!(0));
    crate::one("EmailSubmission/query", out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Address {
    email: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    mail_from: Address,
    rcpt_to: Vec<Address>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Create {
    identity_id: String,
    email_id: String,
    envelope: Option<Envelope>,
}

fn addresses_of(fields: &[(String, Vec<u8>)], name: &str) -> Vec<String> {
    let prop = headers::HeaderProperty {
        name: name.into(),
        form: headers::Form::Addresses,
        all: true,
    };
    headers::value(fields, &prop)
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.get("email").and_then(Value::as_str).map(str::to_lowercase))
        .filter(|e| !e.is_empty())
        .collect()
}

/// Remove Bcc: fields from the copy that is sent (RFC 5322 §3.6.3).
fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let head_end = letterbox_mail::header_section(raw).len();
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    let mut skipping = false;
    while pos < head_end {
        let end = raw[pos..head_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head_end, |p| pos + p + 1);
        let line = &raw[pos..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
        pos = end;
    }
    out.extend_from_slice(&raw[head_end..]);
    out
}

async fn submit(call: &Call<'_>, c: Create) -> Result<(String, i64), SetError> {
    let identities = crate::identity::identities(call)
        .await
        .map_err(|_| SetError::new(SetErrorType::Forbidden, "storage error"))?;
    let identity_id = call.resolve_id(&c.identity_id).unwrap_or_default();
    let (_, identity) = identities
        .iter()
        .find(|(id, _)| *id == identity_id)
        .ok_or_else(|| SetError::invalid_properties(&["identityId"], "no such identity"))?;
    let email_id = call
        .resolve_id(&c.email_id)
        .and_then(|s| Id::parse(IdKind::Email, &s))
        .ok_or_else(|| SetError::invalid_properties(&["emailId"], "no such email"))?;
    let metas = call
        .store()
        .emails(call.caller.account, &[email_id])
        .await
        .map_err(|_| SetError::new(SetErrorType::Forbidden, "storage error"))?;
    let meta = metas
        .first()
        .ok_or_else(|| SetError::invalid_properties(&["emailId"], "no such email"))?;
    let raw = call
        .store()
        .raw_message(meta.id)
        .await
        .map_err(|_| SetError::invalid_properties(&["emailId"], "no such email"))?;
    let fields = headers::fields(letterbox_mail::header_section(&raw));
    let own = call
        .store()
        .sender_addresses(call.caller.account)
        .await
        .map_err(|_| SetError::new(SetErrorType::Forbidden, "storage error"))?;
    let from = addresses_of(&fields, "From");
    if from.is_empty() {
        return Err(SetError::new(
            SetErrorType::InvalidEmail,
            "the email has no From: address",
        ));
    }
    if let Some(bad) = from
        .iter()
        .find(|f| !own.iter().any(|o| o.eq_ignore_ascii_case(f)) && !f.eq_ignore_ascii_case(&call.caller.address))
    {
        return Err(SetError::new(
            SetErrorType::ForbiddenFrom,
            format!("{bad} is not yours"),
        ));
    }
    let (mail_from, rcpts) = match c.envelope {
        Some(env) => (
            env.mail_from.email.to_lowercase(),
            env.rcpt_to.into_iter().map(|a| a.email.to_lowercase()).collect(),
        ),
        None => {
            let mut r = addresses_of(&fields, "To");
            r.extend(addresses_of(&fields, "Cc"));
            r.extend(addresses_of(&fields, "Bcc"));
            (identity.to_lowercase(), r)
        }
    };
    if !own.iter().any(|o| o.eq_ignore_ascii_case(&mail_from)) && !mail_from.eq_ignore_ascii_case(&call.caller.address)
    {
        return Err(SetError::new(
            SetErrorType::ForbiddenMailFrom,
            "envelope sender is not yours",
        ));
    }
    let mut rcpts: Vec<String> = rcpts;
    rcpts.sort();
    rcpts.dedup();
    if rcpts.is_empty() {
        return Err(SetError::new(SetErrorType::NoRecipients, "no recipients"));
    }
    if rcpts.len() > MAX_RECIPIENTS {
        return Err(SetError::new(SetErrorType::TooManyRecipients, "too many recipients"));
    }
    let mut accounts = Vec::new();
    let mut remote = Vec::new();
    let mut invalid = Vec::new();
    for r in &rcpts {
        if letterbox_store::normalize_address(r).is_err() {
            invalid.push(r.clone());
            continue;
        }
        match call.store().resolve_recipient(r).await {
            Ok(Recipient::Local(res)) => {
                accounts.extend(res.accounts);
                remote.extend(res.external.into_iter().map(OutboundRecipient::plain));
            }
            Ok(Recipient::NotLocal) => remote.push(OutboundRecipient::plain(r.clone())),
            Ok(Recipient::Unknown) => invalid.push(r.clone()),
            Err(_) => return Err(SetError::new(SetErrorType::Forbidden, "storage error")),
        }
    }
    if !invalid.is_empty() {
        let mut e = SetError::new(SetErrorType::InvalidRecipients, "unknown or invalid recipients");
        e.properties = Some(invalid);
        return Err(e);
    }
    accounts.sort_unstable();
    accounts.dedup();
    let mut message = without_bcc(&raw);
    if let (Some(signer), Some(domain)) = (
        &call.jmap.signer,
        from.first()
            .and_then(|f| f.rsplit_once('@'))
            .map(|(_, d)| d.to_string()),
    ) {
        match signer.sign(&domain, &message) {
            Ok(Some(fields)) => {
                let mut signed = fields.into_bytes();
                signed.extend_from_slice(&message);
                message = signed;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(domain, error = %e, "DKIM signing failed"),
        }
    }
    let mut local = format!("Return-Path: <{mail_from}>\r\n").into_bytes();
    local.extend_from_slice(&message);
    let intake = Intake {
        local: NewMessage {
            raw: local,
            flags: vec![],
            internal_date: letterbox_store::unix_now(),
        },
        targets: inbox_targets(&accounts),
        local_dsn: Vec::new(),
        outbound: OutboundMessage {
            sender: mail_from,
            recipients: remote,
            raw: message,
            envid: None,
            ret: None,
        },
        over_quota: OverQuota::Bounce,
    };
    let sender = intake.outbound.sender.clone();
    let head = std::sync::Arc::new(letterbox_mail::header_section(&intake.outbound.raw).to_vec());
    match call.store().accept(intake).await {
        Ok(accepted) => {
            if let Some(hook) = &call.jmap.after_delivery {
                hook.delivered(&sender, head, accepted.delivered.iter().map(|d| d.0).collect());
            }
            Ok((unique(), accepted.queue_id.unwrap_or(0)))
        }
        Err(StoreError::QuotaExceeded { .. }) => Err(SetError::new(SetErrorType::OverQuota, "recipients over quota")),
        Err(e) => {
            tracing::error!(error = %e, "store error on submission");
            Err(SetError::new(SetErrorType::Forbidden, "storage error"))
        }
    }
}

/// RFC 8621 §7.5, with `onSuccessUpdateEmail`/`onSuccessDestroyEmail`
/// run as an implicit Email/set afterwards.
pub async fn set(call: &mut Call<'_>, mut a: Map<String, Value>) -> MethodResult {
    let on_update = a.remove("onSuccessUpdateEmail");
    let on_destroy = a.remove("onSuccessDestroyEmail");
    let s: SetArgs = args::parse(a)?;
    args::check_set_size(call, &s)?;
    if s.if_in_state.as_deref().is_some_and(|st| st != STATE) {
        return Err(MethodError::new(MethodErrorType::StateMismatch));
    }
    let mut o = args::SetOutcome::default();
    let mut email_of: Vec<(String, String)> = Vec::new();
    for (cid, value) in s.create.unwrap_or_default() {
        let outcome = match serde_json::from_value::<Create>(value) {
            Ok(c) => {
                let email = c.email_id.clone();
                submit(call, c).await.map(|r| (r, email))
            }
            Err(e) => Err(SetError::new(SetErrorType::InvalidProperties, e.to_string())),
        };
        match outcome {
            Ok(((token, queue_id), email)) => {
                let id = format!("S{token}");
                tracing::info!(account = call.caller.account, queue_id, "JMAP submission accepted");
                call.created.insert(cid.clone(), id.clone());
                email_of.push((format!("#{cid}"), call.resolve_id(&email).unwrap_or(email)));
                o.created.insert(
                    cid,
                    json!({"id": id, "undoStatus": "final", "sendAt": crate::date::utc(letterbox_store::unix_now())}),
                );
            }
            Err(e) => {
                o.not_created.insert(cid, json!(e));
            }
        }
    }
    for id in s.update.unwrap_or_default().keys() {
        o.not_updated.insert(
            id.clone(),
            json!(SetError::new(SetErrorType::CannotUnsend, "sent mail cannot be changed")),
        );
    }
    for id in s.destroy.unwrap_or_default() {
        o.not_destroyed.insert(id, json!(SetError::not_found()));
    }
    let mut results = vec![(
        "EmailSubmission/set".to_string(),
        o.response(call, STATE.into(), STATE.into()),
    )];
    // RFC 8621 §7.5: keys are "#creationId" of a submission created now.
    let mut update = Map::new();
    if let Some(Value::Object(u)) = on_update {
        for (k, patch) in u {
            if let Some((_, email)) = email_of.iter().find(|(c, _)| *c == k) {
                update.insert(email.clone(), patch);
            }
        }
    }
    let mut destroy = Vec::new();
    if let Some(Value::Array(d)) = on_destroy {
        for k in d.iter().filter_map(Value::as_str) {
            if let Some((_, email)) = email_of.iter().find(|(c, _)| c == k) {
                destroy.push(Value::String(email.clone()));
            }
        }
    }
    if !update.is_empty() || !destroy.is_empty() {
        let mut args = Map::new();
        args.insert("accountId".into(), json!(call.caller.account_id()));
        if !update.is_empty() {
            args.insert("update".into(), Value::Object(update));
        }
        if !destroy.is_empty() {
            args.insert("destroy".into(), Value::Array(destroy));
        }
        results.extend(crate::email::set(call, args).await?);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_is_removed_with_its_continuation_lines() {
        let m = b"From: a@x\r\nBcc: secret@y,\r\n  other@z\r\nTo: b@y\r\n\r\nBcc: in the body stays\r\n";
        assert_eq!(
            without_bcc(m),
            b"From: a@x\r\nTo: b@y\r\n\r\nBcc: in the body stays\r\n".to_vec()
        );
    }
}
