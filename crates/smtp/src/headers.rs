//! Trace and submission headers: Return-Path and Received (RFC 5321 §4.4),
//! Message-ID and Date added by the MSA when missing (RFC 6409 §8.2, §8.3),
//! and the From: addresses a submitted message claims.

use mail_parser::{DateTime, MessageParser};
use rand::Rng;

/// Current time as an RFC 5322 date.
pub(crate) fn rfc5322_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    DateTime::from_timestamp(now).to_rfc822()
}

/// A fresh unique id (queue id in Received, local part of Message-IDs).
pub(crate) fn new_id() -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}

/// What a Received header says about the session.
pub(crate) struct Trace<'a> {
    pub helo: &'a str,
    pub peer_ip: String,
    pub hostname: &'a str,
    /// RFC 3848 / RFC 6531 §3.7.3 protocol: ESMTP, ESMTPSA, UTF8SMTPS…
    pub with: String,
    pub id: &'a str,
    pub tls: Option<(String, String)>,
    pub user: Option<&'a str>,
    /// Only given when there is exactly one recipient (RFC 5321 §7.2).
    pub for_rcpt: Option<&'a str>,
}

/// RFC 3848 protocol name.
pub(crate) fn with_protocol(esmtp: bool, utf8: bool, tls: bool, auth: bool) -> String {
    if !esmtp {
        return "SMTP".into();
    }
    let mut s = String::from(if utf8 { "UTF8SMTP" } else { "ESMTP" });
    if tls {
        s.push('S');
    }
    if auth {
        s.push('A');
    }
    s
}

/// Strip characters that would break a header out of client-given text.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '(' && *c != ')')
        .collect()
}

/// `Return-Path:`, added only at final delivery (RFC 5321 §4.4).
pub(crate) fn return_path(sender: &str) -> String {
    format!("Return-Path: <{}>\r\n", clean(sender))
}

/// The `Received:` header, CRLF-terminated, to prepend.
pub(crate) fn received(t: &Trace<'_>) -> String {
    let mut h = format!("Received: from {} ([{}])\r\n", clean(t.helo), t.peer_ip);
    if let Some((version, cipher)) = &t.tls {
        h.push_str(&format!("\t(using {version} with cipher {cipher})\r\n"));
    }
    h.push_str(&format!("\tby {} (Letterbox) with {} id {}", t.hostname, t.with, t.id));
    if let Some(user) = t.user {
        h.push_str(&format!("\r\n\t(authenticated as {})", clean(user)));
    }
    if let Some(rcpt) = t.for_rcpt {
        h.push_str(&format!("\r\n\tfor <{}>", clean(rcpt)));
    }
    h.push_str(&format!(";\r\n\t{}\r\n", rfc5322_now()));
    h
}

/// Facts about a message's header the MSA needs.
pub(crate) struct HeaderFacts {
    pub from: Vec<String>,
    pub has_message_id: bool,
    pub has_date: bool,
}

/// Parse only the header block.
pub(crate) fn header_facts(raw: &[u8]) -> HeaderFacts {
    let parsed = MessageParser::default().parse_headers(raw);
    let Some(m) = parsed else {
        return HeaderFacts {
            from: vec![],
            has_message_id: false,
            has_date: false,
        };
    };
    let from = m
        .from()
        .map(|a| a.iter().filter_map(|x| x.address()).map(|s| s.to_lowercase()).collect())
        .unwrap_or_default();
    HeaderFacts {
        from,
        has_message_id: m.header_raw("Message-ID").is_some(),
        has_date: m.header_raw("Date").is_some(),
    }
}

/// Headers an MSA adds to a submitted message that lacks them.
pub(crate) fn submission_additions(facts: &HeaderFacts, hostname: &str) -> String {
    let mut h = String::new();
    if !facts.has_message_id {
        h.push_str(&format!("Message-ID: <{}@{}>\r\n", new_id(), hostname));
    }
    if !facts.has_date {
        h.push_str(&format!("Date: {}\r\n", rfc5322_now()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(with_protocol(true, false, true, true), "ESMTPSA");
        assert_eq!(with_protocol(true, true, true, false), "UTF8SMTPS");
        assert_eq!(with_protocol(false, false, true, true), "SMTP");
    }

    #[test]
    fn received_header_shape() {
        let t = Trace {
            helo: "client.test",
            peer_ip: "127.0.0.1".into(),
            hostname: "mx.test",
            with: "ESMTPS".into(),
            id: "abc",
            tls: Some(("TLSv1.3".into(), "TLS13_AES_128_GCM_SHA256".into())),
            user: None,
            for_rcpt: Some("a@b.test"),
        };
        assert_eq!(return_path("x@y.test"), "Return-Path: <x@y.test>\r\n");
        let h = received(&t);
        assert!(h.starts_with("Received: from client.test ([127.0.0.1])\r\n"));
        assert!(h.contains("(using TLSv1.3 with cipher TLS13_AES_128_GCM_SHA256)"));
        assert!(h.contains("by mx.test (Letterbox) with ESMTPS id abc\r\n\tfor <a@b.test>;\r\n\t"));
        assert!(h.ends_with("\r\n"));
        // Hostile EHLO text cannot break out of the header.
        let t2 = Trace {
            helo: "evil\r\nX-Injected: 1",
            ..t
        };
        assert!(!received(&t2).contains("\r\nX-Injected"));
    }

    #[test]
    fn facts_and_additions() {
        let f = header_facts(b"From: \"A\" <Alice@Example.test>, b@x.test\r\nSubject: s\r\n\r\nbody\r\n");
        assert_eq!(f.from, vec!["alice@example.test".to_string(), "b@x.test".to_string()]);
        assert!(!f.has_message_id && !f.has_date);
        let add = submission_additions(&f, "mx.test");
        assert!(add.starts_with("Message-ID: <") && add.contains("@mx.test>\r\nDate: "));
        let f = header_facts(b"Message-ID: <1@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n");
        assert_eq!(submission_additions(&f, "mx.test"), "");
    }
}
