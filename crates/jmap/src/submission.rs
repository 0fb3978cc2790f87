//! RFC 8621 §7 EmailSubmission: sending an Email. A submission checks the
//! From: against the identity, derives the envelope (§7.5), and is stored
//! `pending` with its send time: now, or later with RFC 4865 FUTURERELEASE
//! (`HOLDFOR`/`HOLDUNTIL` in `envelope.mailFrom.parameters`), which is what
//! "undo send" needs. Releasing it signs it with DKIM like SMTP submission
//! and commits the local copies, the queue entry and `undoStatus: final`
//! in one store transaction (`Store::accept` with a `SubmissionRelease`),
//! so a canceled submission is never sent and a released one is sent once.
//! Immediate sends are released before the method answers; held ones by
//! [`run_releaser`]. `deliveryStatus` follows the queue's outcomes.

use crate::args::{self, ChangesArgs, GetArgs, SetArgs};
use crate::{headers, Call, Jmap, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError, MethodErrorType, SetError, SetErrorType};
use letterbox_store::submission::{MAX_HOLD_SECS, SUBMISSION_RETENTION_SECS};
use letterbox_store::{
    inbox_targets, Cancel, DataType, NewSubmission, OutboundMessage, OutboundRecipient, OverQuota, Recipient,
    StoreError, Submission, SubmissionRelease, UndoStatus,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Most recipients one submission may have (as SMTP's default).
pub const MAX_RECIPIENTS: usize = letterbox_store::submission::MAX_SUBMISSION_RECIPIENTS;
/// How often the releaser looks for due submissions when nothing wakes it
/// (another node may have created them).
const RELEASE_POLL: Duration = Duration::from_secs(30);

/// A unique token for Message-IDs and verification codes.
pub(crate) fn unique() -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}

const PROPERTIES: &[&str] = &[
    "id",
    "identityId",
    "emailId",
    "threadId",
    "envelope",
    "sendAt",
    "undoStatus",
    "deliveryStatus",
    "dsnBlobIds",
    "mdnBlobIds",
];

fn wire(kind: IdKind, v: i64) -> String {
    Id::new(kind, v).to_string()
}

fn object(s: &Submission) -> Map<String, Value> {
    let envelope: Value = serde_json::from_str(&s.envelope).unwrap_or(Value::Null);
    let mut status = Map::new();
    for r in &s.recipients {
        status.insert(
            r.address.clone(),
            json!({"smtpReply": r.smtp_reply, "delivered": r.delivered.as_str(), "displayed": "unknown"}),
        );
    }
    let delivery = if s.undo_status == UndoStatus::Final || !status.is_empty() {
        Value::Object(status)
    } else {
        Value::Null
    };
    match json!({
        "id": wire(IdKind::Submission, s.id),
        "identityId": s.identity,
        "emailId": wire(IdKind::Email, s.email_id),
        "threadId": wire(IdKind::Thread, s.thread_id),
        "envelope": envelope,
        "sendAt": crate::date::utc(s.send_at),
        "undoStatus": s.undo_status.as_str(),
        "deliveryStatus": delivery,
        "dsnBlobIds": [],
        "mdnBlobIds": [],
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// RFC 8621 §7.1.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: GetArgs = args::parse(a)?;
    args::check_properties(a.properties.as_deref(), PROPERTIES)?;
    let state = args::state(call, DataType::EmailSubmission).await?;
    let mut not_found = Vec::new();
    let ids = a
        .ids
        .as_ref()
        .map(|ids| args::store_ids(IdKind::Submission, ids, &mut not_found));
    if let Some(ids) = &ids {
        if ids.len() + not_found.len() > call.jmap.config.limits.max_objects_in_get as usize {
            return Err(MethodError::new(MethodErrorType::RequestTooLarge));
        }
    }
    let found = call
        .store()
        .submissions(call.caller.account, ids.clone())
        .await
        .map_err(args::store_error)?;
    if let Some(ids) = &ids {
        for id in ids {
            if !found.iter().any(|s| s.id == *id) {
                not_found.push(wire(IdKind::Submission, *id));
            }
        }
    }
    let list = found
        .iter()
        .map(|s| Value::Object(args::select(object(s), a.properties.as_deref())))
        .collect();
    crate::one("EmailSubmission/get", args::get_response(call, state, list, not_found))
}

/// RFC 8621 §7.2.
pub async fn changes(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: ChangesArgs = args::parse(a)?;
    crate::one(
        "EmailSubmission/changes",
        args::changes(call, DataType::EmailSubmission, IdKind::Submission, a).await?,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueryFilter {
    identity_ids: Option<Vec<String>>,
    email_ids: Option<Vec<String>>,
    thread_ids: Option<Vec<String>>,
    undo_status: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuerySort {
    property: String,
    #[serde(default = "yes")]
    is_ascending: bool,
    #[allow(dead_code)]
    collation: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueryArgs {
    #[allow(dead_code)]
    account_id: String,
    filter: Option<QueryFilter>,
    sort: Option<Vec<QuerySort>>,
    #[serde(default)]
    position: i64,
    limit: Option<u64>,
    #[serde(default)]
    calculate_total: bool,
    anchor: Option<String>,
    #[serde(default)]
    anchor_offset: i64,
}

fn matches(s: &Submission, f: &QueryFilter) -> Result<bool, MethodError> {
    let has = |ids: &Option<Vec<String>>, kind: IdKind, v: i64| {
        ids.as_ref()
            .is_none_or(|ids| ids.iter().any(|i| Id::parse(kind, i) == Some(v)))
    };
    let when = |d: &Option<String>| -> Result<Option<i64>, MethodError> {
        d.as_deref()
            .map(|d| crate::date::parse(d).ok_or_else(|| MethodError::invalid_arguments("dates are UTCDate")))
            .transpose()
    };
    Ok(f.identity_ids.as_ref().is_none_or(|ids| ids.contains(&s.identity))
        && has(&f.email_ids, IdKind::Email, s.email_id)
        && has(&f.thread_ids, IdKind::Thread, s.thread_id)
        && f.undo_status.as_deref().is_none_or(|u| u == s.undo_status.as_str())
        && when(&f.before)?.is_none_or(|b| s.send_at < b)
        && when(&f.after)?.is_none_or(|a| s.send_at >= a))
}

/// RFC 8621 §7.3, over the account's submissions (a bounded set: pending
/// ones are capped and finished ones expire).
pub async fn query(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let q: QueryArgs = args::parse(a)?;
    let state = args::state(call, DataType::EmailSubmission).await?;
    let mut subs = call
        .store()
        .submissions(call.caller.account, None)
        .await
        .map_err(args::store_error)?;
    let filter = q.filter.unwrap_or_default();
    let mut kept = Vec::with_capacity(subs.len());
    for s in subs.drain(..) {
        if matches(&s, &filter)? {
            kept.push(s);
        }
    }
    for sort in q.sort.unwrap_or_default().iter().rev() {
        let key = |s: &Submission| match sort.property.as_str() {
            "emailId" => s.email_id,
            "threadId" => s.thread_id,
            _ => s.send_at,
        };
        if !["emailId", "threadId", "sentAt"].contains(&sort.property.as_str()) {
            return Err(MethodError::new(MethodErrorType::UnsupportedSort));
        }
        kept.sort_by(|x, y| {
            let o = key(x).cmp(&key(y));
            if sort.is_ascending {
                o
            } else {
                o.reverse()
            }
        });
    }
    let ids: Vec<String> = kept.iter().map(|s| wire(IdKind::Submission, s.id)).collect();
    let total = ids.len() as i64;
    let mut start = if q.position < 0 {
        (total + q.position).max(0)
    } else {
        q.position.min(total)
    };
    if let Some(anchor) = &q.anchor {
        let Some(i) = ids.iter().position(|i| i == anchor) else {
            return Err(MethodError::new(MethodErrorType::AnchorNotFound));
        };
        start = (i as i64 + q.anchor_offset).clamp(0, total);
    }
    let limit = q.limit.map_or(usize::MAX, |l| l as usize);
    let page: Vec<&String> = ids.iter().skip(start as usize).take(limit).collect();
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("queryState".into(), json!(state));
    out.insert("canCalculateChanges".into(), json!(false));
    out.insert("position".into(), json!(start));
    out.insert("ids".into(), json!(page));
    if q.calculate_total {
        out.insert("total".into(), json!(total));
    }
    crate::one("EmailSubmission/query", out)
}

pub(crate) fn addresses_of(fields: &[(String, Vec<u8>)], name: &str) -> Vec<String> {
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Address {
    email: String,
    parameters: Option<Map<String, Value>>,
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

/// RFC 4865 §3 (FUTURERELEASE, whose parameters RFC 8621 §7 carries in
/// `mailFrom.parameters`): when to send. `HOLDFOR` is seconds from now,
/// `HOLDUNTIL` a date-time; both at most [`MAX_HOLD_SECS`] ahead.
fn send_time(params: Option<&Map<String, Value>>, now: i64) -> Result<i64, SetError> {
    let bad = |why: &str| SetError::invalid_properties(&["envelope"], why);
    let Some(p) = params else { return Ok(now) };
    let get = |name: &str| {
        p.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    };
    let at = match (get("HOLDFOR"), get("HOLDUNTIL")) {
        (Some(_), Some(_)) => return Err(bad("HOLDFOR and HOLDUNTIL exclude each other")),
        (Some(secs), None) => {
            let secs: i64 = secs
                .parse()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| bad("HOLDFOR is a number of seconds"))?;
            now.saturating_add(secs)
        }
        (None, Some(when)) => crate::date::parse(&when)
            .ok_or_else(|| bad("HOLDUNTIL is a date-time"))?
            .max(now),
        (None, None) => now,
    };
    if at - now > MAX_HOLD_SECS {
        return Err(bad("the hold is longer than maxDelayedSend"));
    }
    Ok(at)
}

pub(crate) fn storage(e: StoreError) -> SetError {
    tracing::error!(error = %e, "store error on submission");
    SetError::new(SetErrorType::Forbidden, "storage error")
}

/// Everything §7.5 checks before a submission is stored: the identity,
/// the email, From: and the envelope sender are the caller's, and every
/// recipient is valid.
async fn check(call: &Call<'_>, c: Create) -> Result<NewSubmission, SetError> {
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
        .map_err(storage)?;
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
        .map_err(storage)?;
    let mine = |a: &str| own.iter().any(|o| o.eq_ignore_ascii_case(a)) || a.eq_ignore_ascii_case(&call.caller.address);
    let from = addresses_of(&fields, "From");
    if from.is_empty() {
        return Err(SetError::new(
            SetErrorType::InvalidEmail,
            "the email has no From: address",
        ));
    }
    if fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case("From")).count() > 1 {
        // RFC 5322 §3.6: one From: field; readers show different ones.
        return Err(SetError::new(SetErrorType::InvalidEmail, "more than one From: field"));
    }
    let mut authors = from.clone();
    for field in ["Sender", "Resent-From", "Resent-Sender"] {
        authors.extend(addresses_of(&fields, field));
    }
    if let Some(bad) = authors.iter().find(|f| !mine(f)) {
        return Err(SetError::new(
            SetErrorType::ForbiddenFrom,
            format!("{bad} is not yours"),
        ));
    }
    let now = letterbox_store::unix_now();
    let (mail_from, params, rcpts) = match c.envelope {
        Some(env) => (
            env.mail_from.email.to_lowercase(),
            env.mail_from.parameters,
            env.rcpt_to.into_iter().map(|a| a.email.to_lowercase()).collect(),
        ),
        None => {
            let mut r = addresses_of(&fields, "To");
            r.extend(addresses_of(&fields, "Cc"));
            r.extend(addresses_of(&fields, "Bcc"));
            (identity.to_lowercase(), None, r)
        }
    };
    if !mine(&mail_from) {
        return Err(SetError::new(
            SetErrorType::ForbiddenMailFrom,
            "envelope sender is not yours",
        ));
    }
    let send_at = send_time(params.as_ref(), now)?;
    let mut rcpts: Vec<String> = rcpts;
    rcpts.sort();
    rcpts.dedup();
    if rcpts.is_empty() {
        return Err(SetError::new(SetErrorType::NoRecipients, "no recipients"));
    }
    if rcpts.len() > MAX_RECIPIENTS {
        return Err(SetError::new(SetErrorType::TooManyRecipients, "too many recipients"));
    }
    resolve(call.jmap, &rcpts).await?;
    let envelope = json!({
        "mailFrom": {"email": mail_from, "parameters": params},
        "rcptTo": rcpts.iter().map(|r| json!({"email": r, "parameters": null})).collect::<Vec<_>>(),
    });
    Ok(NewSubmission {
        identity: identity_id,
        email_id,
        thread_id: meta.thread_id,
        mail_from,
        rcpt_to: rcpts,
        envelope: envelope.to_string(),
        send_at,
    })
}

/// Where the recipients are: local accounts, remote addresses, and which
/// envelope recipients were local.
struct Resolved {
    accounts: Vec<letterbox_store::AccountId>,
    remote: Vec<OutboundRecipient>,
    local_rcpts: Vec<String>,
}

async fn resolve(jmap: &Jmap, rcpts: &[String]) -> Result<Resolved, SetError> {
    let mut out = Resolved {
        accounts: Vec::new(),
        remote: Vec::new(),
        local_rcpts: Vec::new(),
    };
    let mut invalid = Vec::new();
    for r in rcpts {
        if letterbox_store::normalize_address(r).is_err() {
            invalid.push(r.clone());
            continue;
        }
        match jmap.store.resolve_recipient(r).await.map_err(storage)? {
            Recipient::Local(res) => {
                out.accounts.extend(res.accounts);
                out.remote
                    .extend(res.external.into_iter().map(OutboundRecipient::plain));
                out.local_rcpts.push(r.clone());
            }
            Recipient::NotLocal => out.remote.push(OutboundRecipient::plain(r.clone())),
            Recipient::Unknown => invalid.push(r.clone()),
        }
    }
    if !invalid.is_empty() {
        let mut e = SetError::new(SetErrorType::InvalidRecipients, "unknown or invalid recipients");
        e.properties = Some(invalid);
        return Err(e);
    }
    out.accounts.sort_unstable();
    out.accounts.dedup();
    Ok(out)
}

/// Why a message was not sent.
pub(crate) enum NotReleased {
    /// Canceled, or released by another node meanwhile.
    Gone,
    /// It can never be sent.
    Failed(SetError),
    /// Try again later.
    Temporary(StoreError),
}

/// Send a pending submission: local copies, queue entry and `final` in
/// one transaction. Returns the queue entry, if any remote recipient.
async fn release(jmap: &Jmap, sub: &Submission) -> Result<Option<i64>, NotReleased> {
    let metas = jmap
        .store
        .emails(sub.account, &[sub.email_id])
        .await
        .map_err(NotReleased::Temporary)?;
    let Some(meta) = metas.first() else {
        return Err(NotReleased::Failed(SetError::invalid_properties(
            &["emailId"],
            "the email no longer exists",
        )));
    };
    let raw = jmap.store.raw_message(meta.id).await.map_err(NotReleased::Temporary)?;
    let queue_id = send(jmap, &sub.mail_from, &sub.rcpt_to, &raw, Some(sub.id)).await?;
    // People one writes to are trusted senders (the spam verdict, issue 15).
    if let Err(e) = jmap.store.note_correspondents(sub.account, &sub.rcpt_to).await {
        tracing::warn!(account = sub.account, error = %e, "cannot record correspondents");
    }
    tracing::info!(
        account = sub.account,
        submission = sub.id,
        queue_id,
        "JMAP submission sent"
    );
    Ok(queue_id)
}

/// Send `raw` from `mail_from` to `rcpts` as a submission does: Bcc:
/// removed, DKIM-signed as its From: domain, local copies and the queue
/// entry committed together (and the pending `submission` released in
/// the same transaction, when given).
pub(crate) async fn send(
    jmap: &Jmap,
    mail_from: &str,
    rcpts: &[String],
    raw: &[u8],
    submission: Option<i64>,
) -> Result<Option<i64>, NotReleased> {
    let fields = headers::fields(letterbox_mail::header_section(raw));
    let from = addresses_of(&fields, "From");
    let resolved = match resolve(jmap, rcpts).await {
        Ok(r) => r,
        Err(e) if e.kind == SetErrorType::Forbidden => {
            return Err(NotReleased::Temporary(StoreError::Backend(
                "recipient lookup failed".into(),
            )))
        }
        Err(e) => return Err(NotReleased::Failed(e)),
    };
    let mut message = without_bcc(raw);
    if let (Some(signer), Some(domain)) = (
        &jmap.signer,
        from.first()
            .and_then(|f| f.rsplit_once('@'))
            .map(|(_, d)| d.to_string()),
    ) {
        // Hashing the whole message and an RSA signature: CPU work off the
        // async workers (issue 18).
        let (s, d) = (signer.clone(), domain.clone());
        let (result, unsigned) = tokio::task::spawn_blocking(move || (s.sign(&d, &message), message))
            .await
            .map_err(|e| NotReleased::Temporary(StoreError::Backend(e.to_string())))?;
        message = unsigned;
        match result {
            Ok(Some(fields)) => {
                let mut signed = fields.into_bytes();
                signed.extend_from_slice(&message);
                message = signed;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(domain, error = %e, "DKIM signing failed"),
        }
    }
    let remote_addresses = resolved.remote.iter().map(|r| r.address.clone()).collect();
    let head = Arc::new(letterbox_mail::header_section(&message).to_vec());
    // Local copies go through the delivery pipeline like every delivery
    // (a submission: not checked, not judged).
    let arrival = letterbox_inbound::Arrival {
        origin: letterbox_inbound::Origin::Submission,
        message: message.clone(),
        trace: format!("Return-Path: <{mail_from}>\r\n"),
        targets: inbox_targets(&resolved.accounts),
        local_dsn: Vec::new(),
        outbound: OutboundMessage {
            sender: mail_from.to_string(),
            recipients: resolved.remote,
            raw: message,
            envid: None,
            ret: None,
        },
        over_quota: OverQuota::Bounce,
        submission: submission.map(|id| SubmissionRelease {
            id,
            local: resolved.local_rcpts,
            remote: remote_addresses,
        }),
    };
    match jmap.inbound.deliver(arrival).await {
        Ok(letterbox_inbound::Delivery::Refused(r)) => Err(NotReleased::Failed(SetError::new(
            SetErrorType::Forbidden,
            format!("{} {} {}", r.code, r.status, r.text),
        ))),
        Ok(letterbox_inbound::Delivery::Accepted { accepted, .. }) => {
            if let Some(hook) = &jmap.after_delivery {
                hook.delivered(mail_from, head, accepted.delivered.iter().map(|d| d.0).collect());
            }
            Ok(accepted.queue_id)
        }
        Err(StoreError::NotFound(_)) => Err(NotReleased::Gone),
        Err(StoreError::QuotaExceeded { .. }) => Err(NotReleased::Failed(SetError::new(
            SetErrorType::OverQuota,
            "recipients over quota",
        ))),
        Err(e) => Err(NotReleased::Temporary(e)),
    }
}

/// Sends held submissions when their time comes (RFC 4865 FUTURERELEASE),
/// and removes finished ones past [`SUBMISSION_RETENTION_SECS`]. Woken
/// early when a held submission is created here; polls for those other
/// nodes create. Runs until `stop` completes.
pub async fn run_releaser(jmap: Arc<Jmap>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut next_purge = tokio::time::Instant::now();
    loop {
        let mut retry_soon = false;
        match jmap.store.due_submissions(letterbox_store::unix_now(), 50).await {
            Ok(due) => {
                for sub in &due {
                    match release(&jmap, sub).await {
                        Ok(_) | Err(NotReleased::Gone) => {}
                        Err(NotReleased::Failed(e)) => {
                            let reason = format!("550 5.0.0 {}", e.description.as_deref().unwrap_or("cannot be sent"));
                            tracing::warn!(submission = sub.id, reason, "held submission failed");
                            if let Err(e) = jmap.store.fail_submission(sub.id, &reason).await {
                                tracing::warn!(error = %e, "cannot record a failed submission");
                            }
                        }
                        Err(NotReleased::Temporary(e)) => {
                            tracing::warn!(submission = sub.id, error = %e, "releasing a submission failed; retrying");
                            retry_soon = true;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due submissions");
                retry_soon = true;
            }
        }
        if tokio::time::Instant::now() >= next_purge {
            let before = letterbox_store::unix_now() - SUBMISSION_RETENTION_SECS;
            if let Err(e) = jmap.store.purge_submissions(before).await {
                tracing::warn!(error = %e, "cannot purge old submissions");
            }
            next_purge = tokio::time::Instant::now() + Duration::from_secs(3600);
        }
        let wait = match jmap.store.next_submission_due().await {
            Ok(Some(t)) => Duration::from_secs((t - letterbox_store::unix_now()).max(0) as u64).min(RELEASE_POLL),
            _ => RELEASE_POLL,
        };
        // Something due but not sent: do not spin on it.
        let wait = if retry_soon || wait.is_zero() {
            wait.max(Duration::from_secs(1))
        } else {
            wait
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = jmap.releaser_wake.notified() => {}
            _ = &mut stop => return,
        }
    }
}

/// The email of a submission, for the implicit Email/set.
async fn email_of(call: &Call<'_>, id: i64) -> Option<String> {
    let subs = call
        .store()
        .submissions(call.caller.account, Some(vec![id]))
        .await
        .ok()?;
    subs.first().map(|s| wire(IdKind::Email, s.email_id))
}

/// RFC 8621 §7.5, with `onSuccessUpdateEmail`/`onSuccessDestroyEmail`
/// run as an implicit Email/set afterwards.
pub async fn set(call: &mut Call<'_>, mut a: Map<String, Value>) -> MethodResult {
    let on_update = a.remove("onSuccessUpdateEmail");
    let on_destroy = a.remove("onSuccessDestroyEmail");
    let s: SetArgs = args::parse(a)?;
    args::check_set_size(call, &s)?;
    let old_state = args::check_state(call, DataType::EmailSubmission, s.if_in_state.as_deref()).await?;
    let mut o = args::SetOutcome::default();
    // (key in onSuccess…: "#creationId" or submission id, email id)
    let mut emails: Vec<(String, String)> = Vec::new();
    let mut held = false;
    for (cid, value) in s.create.unwrap_or_default() {
        let checked = match serde_json::from_value::<Create>(value) {
            Ok(c) => check(call, c).await,
            Err(e) => Err(SetError::new(SetErrorType::InvalidProperties, e.to_string())),
        };
        let new = match checked {
            Ok(n) => n,
            Err(e) => {
                o.not_created.insert(cid, json!(e));
                continue;
            }
        };
        let sub = match call.store().create_submission(call.caller.account, new).await {
            Ok(s) => s,
            Err(StoreError::Invalid(why)) => {
                o.not_created
                    .insert(cid, json!(SetError::new(SetErrorType::Forbidden, why)));
                continue;
            }
            Err(e) => {
                o.not_created.insert(cid, json!(storage(e)));
                continue;
            }
        };
        let mut undo = UndoStatus::Pending;
        if sub.send_at <= letterbox_store::unix_now() {
            let failed = match release(call.jmap, &sub).await {
                Ok(_) => None,
                Err(NotReleased::Gone) => Some(SetError::new(SetErrorType::Forbidden, "canceled")),
                Err(NotReleased::Failed(e)) => Some(e),
                Err(NotReleased::Temporary(e)) => Some(storage(e)),
            };
            if let Some(e) = failed {
                // Nothing was sent: the record goes too.
                let _ = call.store().destroy_submission(call.caller.account, sub.id).await;
                o.not_created.insert(cid, json!(e));
                continue;
            }
            undo = UndoStatus::Final;
        } else {
            held = true;
        }
        let id = wire(IdKind::Submission, sub.id);
        call.created.insert(cid.clone(), id.clone());
        emails.push((format!("#{cid}"), wire(IdKind::Email, sub.email_id)));
        o.created.insert(
            cid,
            json!({
                "id": id,
                "threadId": wire(IdKind::Thread, sub.thread_id),
                "undoStatus": undo.as_str(),
                "sendAt": crate::date::utc(sub.send_at),
            }),
        );
    }
    if held {
        call.jmap.releaser_wake.notify_one();
    }
    for (wid, patch) in s.update.unwrap_or_default() {
        let id = call.resolve_id(&wid).and_then(|w| Id::parse(IdKind::Submission, &w));
        let Some(id) = id else {
            o.not_updated.insert(wid, json!(SetError::not_found()));
            continue;
        };
        let cancel = patch
            .as_object()
            .is_some_and(|p| p.len() == 1 && p.get("undoStatus").and_then(Value::as_str) == Some("canceled"));
        if !cancel {
            o.not_updated.insert(
                wid,
                json!(SetError::invalid_properties(
                    &["undoStatus"],
                    "only undoStatus may change, to canceled"
                )),
            );
            continue;
        }
        match call.store().cancel_submission(call.caller.account, id).await {
            Ok(Cancel::Canceled) => {
                if let Some(email) = email_of(call, id).await {
                    emails.push((wid.clone(), email));
                }
                o.updated.insert(wid, Value::Null);
            }
            Ok(Cancel::NotPending) => {
                o.not_updated.insert(
                    wid,
                    json!(SetError::new(SetErrorType::CannotUnsend, "it has been sent")),
                );
            }
            Ok(Cancel::NotFound) => {
                o.not_updated.insert(wid, json!(SetError::not_found()));
            }
            Err(e) => {
                o.not_updated.insert(wid, json!(storage(e)));
            }
        }
    }
    for wid in s.destroy.unwrap_or_default() {
        let id = call.resolve_id(&wid).and_then(|w| Id::parse(IdKind::Submission, &w));
        let Some(id) = id else {
            o.not_destroyed.insert(wid, json!(SetError::not_found()));
            continue;
        };
        let email = email_of(call, id).await;
        match call.store().destroy_submission(call.caller.account, id).await {
            Ok(true) => {
                if let Some(email) = email {
                    emails.push((wid.clone(), email));
                }
                o.destroyed.push(wid);
            }
            Ok(false) => {
                o.not_destroyed.insert(wid, json!(SetError::not_found()));
            }
            Err(e) => {
                o.not_destroyed.insert(wid, json!(storage(e)));
            }
        }
    }
    let new_state = args::state(call, DataType::EmailSubmission).await?;
    let mut results = vec![(
        "EmailSubmission/set".to_string(),
        o.response(call, old_state, new_state),
    )];
    // RFC 8621 §7.5: keys are "#creationId" or ids of submissions this
    // call changed.
    let email_for = |k: &str| emails.iter().find(|(c, _)| c == k).map(|(_, e)| e.clone());
    let mut update = Map::new();
    if let Some(Value::Object(u)) = on_update {
        for (k, patch) in u {
            if let Some(email) = email_for(&k) {
                update.insert(email, patch);
            }
        }
    }
    let mut destroy = Vec::new();
    if let Some(Value::Array(d)) = on_destroy {
        for k in d.iter().filter_map(Value::as_str) {
            if let Some(email) = email_for(k) {
                destroy.push(Value::String(email));
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
    fn holds_follow_rfc_4865() {
        let p = |v: Value| v.as_object().cloned();
        let now = 1_000_000;
        assert_eq!(send_time(None, now).ok(), Some(now));
        assert_eq!(
            send_time(p(json!({"HOLDFOR": "10"})).as_ref(), now).ok(),
            Some(now + 10)
        );
        assert_eq!(send_time(p(json!({"holdfor": 5})).as_ref(), now).ok(), Some(now + 5));
        assert_eq!(
            send_time(p(json!({"HOLDUNTIL": "1970-01-12T13:46:50Z"})).as_ref(), now).ok(),
            Some(1_000_010)
        );
        // A time in the past means now.
        assert_eq!(
            send_time(p(json!({"HOLDUNTIL": "1970-01-01T00:00:00Z"})).as_ref(), now).ok(),
            Some(now)
        );
        for bad in [
            json!({"HOLDFOR": "-1"}),
            json!({"HOLDFOR": "soon"}),
            json!({"HOLDFOR": (MAX_HOLD_SECS + 1).to_string()}),
            json!({"HOLDUNTIL": "tomorrow"}),
            json!({"HOLDFOR": "1", "HOLDUNTIL": "1970-01-12T13:46:50Z"}),
        ] {
            assert!(send_time(p(bad.clone()).as_ref(), now).is_err(), "{bad}");
        }
    }

    #[test]
    fn bcc_is_removed_with_its_continuation_lines() {
        let m = b"From: a@x\r\nBcc: secret@y,\r\n  other@z\r\nTo: b@y\r\n\r\nBcc: in the body stays\r\n";
        assert_eq!(
            without_bcc(m),
            b"From: a@x\r\nTo: b@y\r\n\r\nBcc: in the body stays\r\n".to_vec()
        );
    }
}
