//! Delivery status notifications: RFC 3464 `multipart/report` messages
//! (RFC 6522) telling the sender what happened to some recipients.

use mail_parser::DateTime;

/// RFC 3464 §2.3.3 actions we report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// Passed to a server without DSN support (the last report we can give).
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient's part of a report.
#[derive(Debug, Clone)]
pub struct ReportRecipient {
    pub address: String,
    /// RFC 3461 ORCPT as given (`rfc822;addr`).
    pub orcpt: Option<String>,
    pub action: Action,
    /// The reply or reason: `550 5.1.1 text` or `4.4.1 text`.
    pub error: Option<String>,
    /// Host that gave `error`, when it came from one.
    pub remote_mta: Option<String>,
}

/// The message a report is about.
pub struct Original<'a> {
    pub envid: Option<&'a str>,
    /// Unix seconds it was queued.
    pub arrival: i64,
    /// Whole message; the header is returned, or all of it with RET=FULL.
    pub raw: &'a [u8],
    pub ret_full: bool,
}

/// RFC 3463 status for a failure text: the enhanced code when the text has
/// one, otherwise the reply class with `.0.0`.
pub fn status_of(error: Option<&str>, action: Action) -> String {
    let fallback = match action {
        Action::Failed => "5.0.0",
        Action::Delayed => "4.0.0",
        Action::Relayed => "2.0.0",
    };
    let Some(text) = error else {
        return fallback.to_string();
    };
    let mut words = text.split_ascii_whitespace();
    let first = words.next().unwrap_or("");
    let is_code = first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit());
    let candidate = if is_code { words.next().unwrap_or("") } else { first };
    if is_status(candidate) {
        return candidate.to_string();
    }
    if is_code {
        return format!("{}.0.0", &first[..1]);
    }
    fallback.to_string()
}

fn is_status(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn date(unix: i64) -> String {
    DateTime::from_timestamp(unix).to_rfc822()
}

/// Keep header fields on one line and free of CR/LF injection.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Build the report to `to` (the original envelope sender). The result is
/// sent with the null reverse-path so it can never cause another bounce.
pub fn build_report(
    hostname: &str,
    to: &str,
    original: &Original<'_>,
    recipients: &[ReportRecipient],
    now: i64,
    will_retry_until: Option<i64>,
    unique: &str,
) -> Vec<u8> {
    let boundary = format!("=_report_{unique}");
    let any_failed = recipients.iter().any(|r| r.action == Action::Failed);
    let subject = if any_failed {
        "Undelivered Mail Returned to Sender"
    } else if recipients.iter().any(|r| r.action == Action::Delayed) {
        "Delayed Mail (still being retried)"
    } else {
        "Delivery Status Notification"
    };
    let mut m = String::new();
    m.push_str(&format!("From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"));
    m.push_str(&format!("To: <{}>\r\n", one_line(to)));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {}\r\n", date(now)));
    m.push_str(&format!("Message-ID: <{unique}@{hostname}>\r\n"));
    // RFC 3834 §5: automatic responses must not trigger more of them.
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");

    // Human-readable part.
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    m.push_str(&format!("This is the mail system at {hostname}.\r\n\r\n"));
    for (action, intro) in [
        (
            Action::Failed,
            "Your message could not be delivered to the following recipients, and no further attempts will be made:",
        ),
        (
            Action::Delayed,
            "Your message has not been delivered yet to the following recipients; delivery will be retried:",
        ),
        (
            Action::Relayed,
            "Your message was passed on to the following recipients' mail systems, which send no further notices:",
        ),
    ] {
        let list: Vec<&ReportRecipient> = recipients.iter().filter(|r| r.action == action).collect();
        if list.is_empty() {
            continue;
        }
        m.push_str(intro);
        m.push_str("\r\n\r\n");
        for r in list {
            m.push_str(&format!("  <{}>", one_line(&r.address)));
            if let Some(e) = &r.error {
                match &r.remote_mta {
                    Some(h) => m.push_str(&format!(": host {} said: {}", one_line(h), one_line(e))),
                    None => m.push_str(&format!(": {}", one_line(e))),
                }
            }
            m.push_str("\r\n");
        }
        m.push_str("\r\n");
    }

    // RFC 3464 §2.2 per-message and §2.3 per-recipient fields.
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    if let Some(envid) = original.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", one_line(envid)));
    }
    m.push_str(&format!("Arrival-Date: {}\r\n", date(original.arrival)));
    for r in recipients {
        m.push_str("\r\n");
        if let Some(o) = &r.orcpt {
            m.push_str(&format!("Original-Recipient: {}\r\n", one_line(o)));
        }
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", one_line(&r.address)));
        m.push_str(&format!("Action: {}\r\n", r.action.as_str()));
        m.push_str(&format!("Status: {}\r\n", status_of(r.error.as_deref(), r.action)));
        if let Some(h) = &r.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {}\r\n", one_line(h)));
        }
        if let Some(e) = &r.error {
            let from_smtp = e.len() >= 3 && e.as_bytes()[..3].iter().all(u8::is_ascii_digit);
            if from_smtp && r.remote_mta.is_some() {
                m.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", one_line(e)));
            }
        }
        m.push_str(&format!("Last-Attempt-Date: {}\r\n", date(now)));
        if let (Action::Delayed, Some(until)) = (r.action, will_retry_until) {
            m.push_str(&format!("Will-Retry-Until: {}\r\n", date(until)));
        }
    }
    m.push_str("\r\n");

    // The original: its header (RFC 3462 text/rfc822-headers) or all of it.
    let mut out = m.into_bytes();
    if original.ret_full {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes());
        out.extend_from_slice(original.raw);
        if !original.raw.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    } else {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").as_bytes());
        out.extend_from_slice(letterbox_mail::header_section(original.raw));
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(status_of(Some("550 5.1.1 no such user"), Action::Failed), "5.1.1");
        assert_eq!(status_of(Some("550 no such user"), Action::Failed), "5.0.0");
        assert_eq!(status_of(Some("451 later"), Action::Delayed), "4.0.0");
        assert_eq!(status_of(Some("5.1.10 null MX"), Action::Failed), "5.1.10");
        assert_eq!(status_of(Some("connection refused"), Action::Delayed), "4.0.0");
        assert_eq!(status_of(None, Action::Failed), "5.0.0");
    }

    #[test]
    fn report_parses_as_multipart_report() {
        use mail_parser::MimeHeaders;
        let raw = b"From: a@x.test\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let report = build_report(
            "mx.x.test",
            "a@x.test",
            &Original {
                envid: Some("E1"),
                arrival: 1_700_000_000,
                raw,
                ret_full: false,
            },
            &[ReportRecipient {
                address: "b@y.test".into(),
                orcpt: Some("rfc822;B@y.test".into()),
                action: Action::Failed,
                error: Some("550 5.1.1 unknown user".into()),
                remote_mta: Some("mx.y.test".into()),
            }],
            1_700_000_100,
            None,
            "abc",
        );
        let msg = mail_parser::MessageParser::default().parse(&report).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.c_type, "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        let text = String::from_utf8_lossy(&report);
        for needle in [
            "Reporting-MTA: dns; mx.x.test",
            "Original-Envelope-Id: E1",
            "Original-Recipient: rfc822;B@y.test",
            "Final-Recipient: rfc822; b@y.test",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; mx.y.test",
            "Diagnostic-Code: smtp; 550 5.1.1 unknown user",
            "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@x.test\r\nSubject: hello\r\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("secret body"), "RET=HDRS must not return the body");
    }
}
