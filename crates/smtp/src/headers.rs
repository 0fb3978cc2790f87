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

/// The EHLO/HELO name as it may appear in `Received: from` (RFC 5321
/// §4.4 Extended-Domain: a domain or an address literal). Anything else a
/// client sent (`;` that would end the clause early, U+2028, spaces) is
/// replaced, so the trace header parses as the client cannot choose.
fn clean_domain(s: &str) -> String {
    let out: String = s
        .chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_:[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

/// `Return-Path:`, added only at final delivery (RFC 5321 §4.4).
pub(crate) fn return_path(sender: &str) -> String {
    format!("Return-Path: <{}>\r\n", clean(sender))
}

/// The `Received:` header, CRLF-terminated, to prepend.
pub(crate) fn received(t: &Trace<'_>) -> String {
    let mut h = format!("Received: from {} ([{}])\r\n", clean_domain(t.helo), t.peer_ip);
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
    /// The addresses of every From: field.
    pub from: Vec<String>,
    /// How many From: fields there are (RFC 5322 §3.6: exactly one).
    pub from_fields: usize,
    /// Every address that names an author or sender: From:, Sender:,
    /// Resent-From:, Resent-Sender:, and address-like display names in them
    /// (`"ceo@bank.example" <me@ours>` shows the bank's address).
    pub authors: Vec<String>,
    pub has_message_id: bool,
    pub has_date: bool,
}

/// Address-like words of a display name.
fn addresses_in_name(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(|c: char| c.is_whitespace() || "<>()[]\",;:'\"".contains(c))
        .filter(|w| {
            w.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'))
        })
        .map(str::to_lowercase)
}

/// Parse only the header block.
pub(crate) fn header_facts(raw: &[u8]) -> HeaderFacts {
    use mail_parser::{HeaderName, HeaderValue};
    let mut facts = HeaderFacts {
        from: vec![],
        from_fields: 0,
        authors: vec![],
        has_message_id: false,
        has_date: false,
    };
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return facts;
    };
    for h in m.headers() {
        let is_from = matches!(h.name, HeaderName::From);
        let author = is_from
            || matches!(
                h.name,
                HeaderName::Sender | HeaderName::ResentFrom | HeaderName::ResentSender
            );
        match h.name {
            HeaderName::MessageId => facts.has_message_id = true,
            HeaderName::Date => facts.has_date = true,
            _ => {}
        }
        if !author {
            continue;
        }
        if is_from {
            facts.from_fields += 1;
        }
        let addrs: Vec<&mail_parser::Addr> = match &h.value {
            HeaderValue::Address(a) => a.iter().collect(),
            _ => Vec::new(),
        };
        for a in addrs {
            if let Some(addr) = a.address() {
                let addr = addr.to_lowercase();
                if is_from {
                    facts.from.push(addr.clone());
                }
                facts.authors.push(addr);
            }
            if let Some(name) = a.name() {
                facts.authors.extend(addresses_in_name(name));
            }
        }
    }
    facts
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

    /// Issue 18: an EHLO name cannot reshape the Received: header.
    #[test]
    fn helo_names_are_domains_in_received() {
        assert_eq!(clean_domain("mail.example.org"), "mail.example.org");
        assert_eq!(clean_domain("[192.0.2.1]"), "[192.0.2.1]");
        assert_eq!(clean_domain("x; by evil"), "x__by_evil");
        assert_eq!(clean_domain("a\u{2028}b"), "a_b");
        assert_eq!(clean_domain(""), "unknown");
    }

    /// Issue 18: every field that names an author is seen, and counted.
    #[test]
    fn every_author_field_is_seen() {
        let f = header_facts(b"From: demo@x.test\r\nFrom: a@x.test\r\n\r\n");
        assert_eq!(f.from_fields, 2);
        assert!(f.authors.contains(&"demo@x.test".to_string()));
        let f =
            header_facts(b"From: \"ceo@bank.example\" <a@x.test>\r\nSender: s@y.test\r\nResent-From: r@z.test\r\n\r\n");
        assert_eq!(f.from_fields, 1);
        assert_eq!(f.from, vec!["a@x.test".to_string()]);
        for a in ["ceo@bank.example", "a@x.test", "s@y.test", "r@z.test"] {
            assert!(f.authors.contains(&a.to_string()), "{a} in {:?}", f.authors);
        }
        let f = header_facts(b"From: \"Alice at home\" <a@x.test>\r\n\r\n");
        assert_eq!(f.authors, vec!["a@x.test".to_string()]);
    }
}
