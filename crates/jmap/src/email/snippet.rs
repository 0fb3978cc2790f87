//! RFC 8621 §5 SearchSnippet/get: the subject and a stretch of body text
//! of each email with the filter's search terms marked up (`<mark>`), as
//! HTML-escaped text.

use super::render;
use crate::args;
use crate::{one, Call, MethodResult};
use letterbox_jmap_proto::{Id, IdKind, MethodError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Characters of body text around the first match.
const PREVIEW_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[allow(dead_code)]
    account_id: String,
    filter: Option<Value>,
    email_ids: Vec<String>,
}

/// The text terms of a filter (`text`, `subject`, `body`, ...), NOT excluded.
fn terms(filter: &Value, negated: bool, out: &mut Vec<String>, depth: usize) {
    let Some(obj) = filter.as_object() else { return };
    if depth > letterbox_store::query::MAX_FILTER_DEPTH {
        return;
    }
    if let Some(conds) = obj.get("conditions").and_then(Value::as_array) {
        let neg = negated ^ (obj.get("operator").and_then(Value::as_str) == Some("NOT"));
        for c in conds {
            terms(c, neg, out, depth + 1);
        }
        return;
    }
    if negated {
        return;
    }
    for key in ["text", "subject", "body"] {
        if let Some(t) = obj.get(key).and_then(Value::as_str) {
            let t = t.trim().to_lowercase();
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
    }
}

use letterbox_mail::escape_html as escape;

/// Byte ranges of the terms in `text`, case-insensitively, not overlapping.
fn matches(text: &str, terms: &[String]) -> Vec<(usize, usize)> {
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths; only mark when it did not.
    if lower.len() != text.len() {
        return Vec::new();
    }
    let mut found: Vec<(usize, usize)> = Vec::new();
    for t in terms {
        let mut from = 0;
        while let Some(p) = lower[from..].find(t.as_str()) {
            let s = from + p;
            found.push((s, s + t.len()));
            from = s + t.len().max(1);
        }
    }
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in found {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn highlight(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &(s, e) in ranges {
        out.push_str(&escape(&text[at..s]));
        out.push_str("<mark>");
        out.push_str(&escape(&text[s..e]));
        out.push_str("</mark>");
        at = e;
    }
    out.push_str(&escape(&text[at..]));
    out
}

fn snippet(raw: &[u8], terms: &[String]) -> (Option<String>, Option<String>) {
    let Some(msg) = render::parse(raw) else {
        return (None, None);
    };
    let subject = msg.subject().unwrap_or_default().to_string();
    let sm = matches(&subject, terms);
    let subject = (!sm.is_empty()).then(|| highlight(&subject, &sm));
    let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut body = squeeze(
        &(0..msg.text_body.len())
            .filter_map(|i| msg.body_text(i))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let mut bm = matches(&body, terms);
    if bm.is_empty() {
        // The match may be where the index looked and the text body is
        // not: an attached message, an attachment's name.
        let all = letterbox_mail::search_text(raw);
        body = squeeze(&format!("{} {}", all.body, all.attachments));
        bm = matches(&body, terms);
    }
    let preview = bm.first().map(|&(s, _)| {
        let mut start = s.saturating_sub(PREVIEW_CHARS / 4);
        while !body.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + PREVIEW_CHARS).min(body.len());
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        let window = &body[start..end];
        let ranges: Vec<(usize, usize)> = bm
            .iter()
            .filter(|&&(a, b)| a >= start && b <= end)
            .map(|&(a, b)| (a - start, b - start))
            .collect();
        highlight(window, &ranges)
    });
    (subject, preview)
}

/// RFC 8621 §5.1.
pub async fn get(call: &mut Call<'_>, a: Map<String, Value>) -> MethodResult {
    let a: Args = args::parse(a)?;
    args::check_get_size(call, Some(&a.email_ids))?;
    let mut t = Vec::new();
    if let Some(f) = &a.filter {
        terms(f, false, &mut t, 1);
    }
    let mut not_found = Vec::new();
    let resolved: Vec<String> = a
        .email_ids
        .iter()
        .map(|r| call.resolve_id(r).unwrap_or_else(|| r.clone()))
        .collect();
    let ids = args::store_ids(IdKind::Email, &resolved, &mut not_found);
    let metas = call
        .store()
        .emails(call.caller.account, &ids)
        .await
        .map_err(args::store_error)?;
    for (raw, r) in a.email_ids.iter().zip(&resolved) {
        if Id::parse(IdKind::Email, r).is_some_and(|n| !metas.iter().any(|m| m.id == n)) {
            not_found.push(raw.clone());
        }
    }
    let present: Vec<i64> = metas.iter().map(|m| m.id).collect();
    let data = call
        .store()
        .message_data(&present, false, true)
        .await
        .map_err(args::store_error)?;
    let jobs: Vec<(i64, Option<std::sync::Arc<Vec<u8>>>)> = present
        .iter()
        .map(|id| (*id, data.get(id).and_then(|d| d.raw.clone())))
        .collect();
    let list = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|(id, raw)| {
                let (subject, preview) = raw.map_or((None, None), |r| snippet(&r, &t));
                json!({"emailId": Id::new(IdKind::Email, id).to_string(), "subject": subject, "preview": preview})
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| MethodError::server_fail(e.to_string()))?;
    let mut out = Map::new();
    out.insert("accountId".into(), json!(call.caller.account_id()));
    out.insert("list".into(), Value::Array(list));
    out.insert("notFound".into(), args::json_or_null(not_found));
    one("SearchSnippet/get", out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_inside_an_attached_message_is_shown() {
        let raw = b"From: a@x\r\nSubject: Fwd: Zoo trip\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: Zoo trip\r\n\r\nWe saw a zebra.\r\n--b--\r\n";
        let (_, preview) = snippet(raw, &["zebra".to_string()]);
        assert!(preview.is_some_and(|p| p.contains("<mark>zebra</mark>")));
    }

    #[test]
    fn terms_are_marked_and_escaped() {
        let raw = b"Subject: Lunch <at> noon\r\n\r\nWe could meet for LUNCH at the caf\xc3\xa9 & talk.\r\n";
        let (s, p) = snippet(raw, &["lunch".into()]);
        assert_eq!(s.as_deref(), Some("<mark>Lunch</mark> &lt;at&gt; noon"));
        assert_eq!(
            p.as_deref(),
            Some("We could meet for <mark>LUNCH</mark> at the café &amp; talk.")
        );
        let (s, p) = snippet(raw, &["absent".into()]);
        assert_eq!((s, p), (None, None));
        let mut t = Vec::new();
        terms(
            &json!({"operator": "AND", "conditions": [{"text": "A"}, {"operator": "NOT", "conditions": [{"body": "b"}]}]}),
            false,
            &mut t,
            1,
        );
        assert_eq!(t, vec!["a".to_string()]);
    }
}
