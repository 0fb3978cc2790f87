//! Content and header rules: pure functions of the message bytes. Each
//! rule has a name (in `X-Spam-Status:`) and a score; the scores are
//! modest, so only several signs together reach the Junk threshold.

use super::Hit;
use mail_parser::{HeaderName, MessageParser, MimeHeaders, PartType};

pub const MISSING_DATE: (&str, f64) = ("MISSING_DATE", 1.0);
pub const MISSING_MESSAGE_ID: (&str, f64) = ("MISSING_MESSAGE_ID", 1.0);
pub const MISSING_FROM: (&str, f64) = ("MISSING_FROM", 2.5);
pub const MULTIPLE_FROM: (&str, f64) = ("MULTIPLE_FROM", 2.0);
pub const MISSING_SUBJECT: (&str, f64) = ("MISSING_SUBJECT", 0.5);
pub const DATE_IN_FUTURE: (&str, f64) = ("DATE_IN_FUTURE", 1.5);
pub const FROM_NAME_OTHER_ADDRESS: (&str, f64) = ("FROM_NAME_OTHER_ADDRESS", 2.0);
pub const SUBJECT_ALL_CAPS: (&str, f64) = ("SUBJECT_ALL_CAPS", 0.5);
pub const HTML_ONLY: (&str, f64) = ("HTML_ONLY", 1.0);
pub const HTML_HIDDEN_TEXT: (&str, f64) = ("HTML_HIDDEN_TEXT", 1.0);
pub const HTML_IMAGE_ONLY: (&str, f64) = ("HTML_IMAGE_ONLY", 1.5);
pub const DANGEROUS_ATTACHMENT: (&str, f64) = ("DANGEROUS_ATTACHMENT", 4.0);
pub const DOUBLE_EXTENSION: (&str, f64) = ("DOUBLE_EXTENSION", 1.5);
pub const URL_LOOKALIKE_DOMAIN: (&str, f64) = ("URL_LOOKALIKE_DOMAIN", 3.0);
pub const LINK_TEXT_MISMATCH: (&str, f64) = ("LINK_TEXT_MISMATCH", 2.0);
pub const URL_NUMERIC_IP: (&str, f64) = ("URL_NUMERIC_IP", 1.5);
pub const URL_BLOCKLISTED: (&str, f64) = ("URL_BLOCKLISTED", 5.0);

/// Attachment types that run code when opened on common systems.
const DANGEROUS_EXTENSIONS: &[&str] = &[
    "exe", "scr", "com", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "cpl", "msi", "msc",
    "jar", "lnk", "ps1", "reg", "iso", "img", "vhd", "vhdx", "appx", "dll",
];

/// Most links looked at per message.
const MAX_LINKS: usize = 500;

fn hit((name, score): (&str, f64)) -> Hit {
    Hit::new(name, score)
}

/// Every content rule that fires for `raw` at time `now` (Unix seconds).
pub fn content(raw: &[u8], url_blocklist: &[String], now: i64) -> Vec<Hit> {
    match MessageParser::default().parse(raw) {
        Some(msg) => content_of(&msg, url_blocklist, now),
        None => vec![hit(MISSING_FROM)],
    }
}

/// [`content`] of a parsed message (delivery parses once for every step).
pub fn content_of(msg: &mail_parser::Message<'_>, url_blocklist: &[String], now: i64) -> Vec<Hit> {
    let mut hits = Vec::new();
    let root = msg.root_part();
    let count = |n: HeaderName| root.headers().iter().filter(|h| h.name == n).count();
    match count(HeaderName::From) {
        0 => hits.push(hit(MISSING_FROM)),
        1 => {}
        _ => hits.push(hit(MULTIPLE_FROM)),
    }
    if count(HeaderName::MessageId) == 0 {
        hits.push(hit(MISSING_MESSAGE_ID));
    }
    // A date is compared with when the message reached the hop before us
    // (its newest Received: field, as SpamAssassin does), else with now.
    let reference = root
        .headers()
        .iter()
        .find(|h| h.name == HeaderName::Received)
        .and_then(|h| h.value.as_received())
        .and_then(|r| r.date())
        .map_or(now, |d| d.to_timestamp());
    match msg.date() {
        None => hits.push(hit(MISSING_DATE)),
        Some(d) => {
            let (t, now) = (d.to_timestamp(), reference);
            // (Dates far in the past are as common in ham as in spam:
            // wrong clocks, digests; not a rule.)
            if t > now + 24 * 3600 {
                hits.push(hit(DATE_IN_FUTURE));
            }
        }
    }
    match msg.subject() {
        None => hits.push(hit(MISSING_SUBJECT)),
        Some(s) => {
            let letters: Vec<char> = s.chars().filter(|c| c.is_alphabetic()).collect();
            if letters.len() >= 12 && letters.iter().all(|c| c.is_uppercase()) {
                hits.push(hit(SUBJECT_ALL_CAPS));
            }
        }
    }
    if let Some(from) = msg.from().and_then(|a| a.first()) {
        let address = from.address().unwrap_or_default().to_ascii_lowercase();
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        if let Some(name) = from.name() {
            // "service@bank.test" <someone@elsewhere.test>
            let named = name
                .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | ','))
                .filter_map(|w| {
                    w.rsplit_once('@')
                        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
                })
                .any(|d| d.contains('.') && d != domain);
            if named {
                hits.push(hit(FROM_NAME_OTHER_ADDRESS));
            }
        }
    }

    let (mut has_text, mut has_html) = (false, false);
    let mut html = String::new();
    let mut dangerous = false;
    let mut double = false;
    for part in &msg.parts {
        match &part.body {
            PartType::Text(_) if !part.is_attachment_like() => has_text = true,
            PartType::Html(h) if !part.is_attachment_like() => {
                has_html = true;
                if html.len() < 1 << 20 {
                    html.push_str(h);
                }
            }
            _ => {}
        }
        if let Some(name) = part.attachment_name() {
            let lower = name.to_ascii_lowercase();
            let mut exts = lower.rsplit('.');
            let last = exts.next().unwrap_or_default();
            if lower.contains('.') && DANGEROUS_EXTENSIONS.contains(&last) {
                dangerous = true;
                if exts
                    .next()
                    .is_some_and(|e| matches!(e, "pdf" | "doc" | "docx" | "xls" | "xlsx" | "jpg" | "png" | "txt"))
                    && lower.matches('.').count() >= 2
                {
                    double = true;
                }
            }
        }
    }
    if dangerous {
        hits.push(hit(DANGEROUS_ATTACHMENT));
    }
    if double {
        hits.push(hit(DOUBLE_EXTENSION));
    }
    if has_html && !has_text {
        hits.push(hit(HTML_ONLY));
    }
    if has_html {
        let lower = html.to_ascii_lowercase();
        let squeezed: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
        let hidden = squeezed.matches("display:none").count() + squeezed.matches("visibility:hidden").count();
        if squeezed.contains("font-size:0") || squeezed.contains("font-size:1px") || hidden >= 3 {
            hits.push(hit(HTML_HIDDEN_TEXT));
        }
        let text_len = visible_text_len(&lower);
        if lower.contains("<img") && text_len < 100 {
            hits.push(hit(HTML_IMAGE_ONLY));
        }
        hits.extend(link_hits(&lower, url_blocklist));
    }
    hits
}

/// The first From: address of a header section, lower case, parsing only
/// the header (cheap enough for the async side).
pub fn from_header_address(raw: &[u8]) -> Option<String> {
    let head = letterbox_mail::header_section(raw);
    let msg = MessageParser::new().with_address_headers().parse_headers(head)?;
    from_address(&msg)
}

/// The first From: address, lower case.
pub fn from_address(msg: &mail_parser::Message<'_>) -> Option<String> {
    let from = msg.from()?.first()?;
    from.address().map(str::to_lowercase)
}

trait AttachmentLike {
    fn is_attachment_like(&self) -> bool;
}

impl AttachmentLike for mail_parser::MessagePart<'_> {
    fn is_attachment_like(&self) -> bool {
        self.content_disposition().is_some_and(|d| d.is_attachment())
    }
}

/// Characters of text outside tags (roughly what a reader sees).
fn visible_text_len(html: &str) -> usize {
    let mut in_tag = false;
    let mut n = 0;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && !c.is_whitespace() => n += 1,
            _ => {}
        }
    }
    n
}

/// Rules on the links of an HTML body (lower-cased).
fn link_hits(html: &str, blocklist: &[String]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let (mut lookalike, mut mismatch, mut numeric, mut blocked) = (false, false, false, false);
    let mut rest = html;
    for _ in 0..MAX_LINKS {
        let Some(i) = rest.find("href") else { break };
        rest = &rest[i + 4..];
        let Some(value) = attribute_value(rest) else { continue };
        let Some(host) = url_host(value) else { continue };
        if host.parse::<std::net::Ipv4Addr>().is_ok() {
            numeric = true;
        }
        if is_lookalike(&host) {
            lookalike = true;
        }
        if blocklist.iter().any(|b| host == *b || host.ends_with(&format!(".{b}"))) {
            blocked = true;
        }
        // The anchor's visible text, when it names a host itself.
        if let Some(gt) = rest.find('>') {
            let after = &rest[gt + 1..];
            let text_end = after.find("</a").unwrap_or(after.len()).min(300);
            let text = strip_tags(&after[..text_end.min(after.len())]);
            let text = text.trim();
            if !text.contains(' ') && text.contains('.') {
                if let Some(shown) = url_host(text).or_else(|| url_host(&format!("http://{text}"))) {
                    if shown.contains('.') && registrable(&shown) != registrable(&host) && shown.parse::<f64>().is_err()
                    {
                        mismatch = true;
                    }
                }
            }
        }
    }
    for (fired, rule) in [
        (lookalike, URL_LOOKALIKE_DOMAIN),
        (mismatch, LINK_TEXT_MISMATCH),
        (numeric, URL_NUMERIC_IP),
        (blocked, URL_BLOCKLISTED),
    ] {
        if fired {
            hits.push(hit(rule));
        }
    }
    hits
}

/// The value after `=` of an attribute (quoted or not).
fn attribute_value(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('=')?.trim_start();
    match s.chars().next()? {
        q @ ('"' | '\'') => {
            let body = &s[1..];
            body.find(q).map(|e| &body[..e])
        }
        _ => Some(&s[..s.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(s.len())]),
    }
}

/// The host of an http(s) URL, lower case, without port or credentials.
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next().unwrap_or_default().trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_lowercase())
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The last two labels: close enough to "the same site" for comparing a
/// link's text with its target (no public suffix list here).
fn registrable(host: &str) -> String {
    let labels: Vec<&str> = host.trim_start_matches("www.").rsplit('.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// A host label that mixes Latin letters with Cyrillic or Greek ones
/// (`pаypal` with a Cyrillic а), written directly or as punycode.
fn is_lookalike(host: &str) -> bool {
    let (unicode, _) = idna::domain_to_unicode(host);
    unicode.split('.').any(|label| {
        let latin = label.chars().any(|c| c.is_ascii_alphabetic());
        let other = label.chars().any(|c| matches!(c as u32, 0x0370..=0x052F)); // Greek, Cyrillic, Cyrillic Supplement
        latin && other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn names(raw: &str) -> Vec<String> {
        content(raw.as_bytes(), &["bad.test".to_string()], NOW)
            .into_iter()
            .map(|h| h.name)
            .collect()
    }

    #[test]
    fn well_formed_mail_fires_nothing() {
        let raw = "From: A <a@a.test>\r\nTo: b@b.test\r\nSubject: Lunch tomorrow?\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@a.test>\r\n\r\nShall we?\r\n";
        assert!(names(raw).is_empty(), "{:?}", names(raw));
    }

    #[test]
    fn header_anomalies() {
        let n = names("To: b@b.test\r\n\r\nhi\r\n");
        for r in ["MISSING_FROM", "MISSING_MESSAGE_ID", "MISSING_DATE", "MISSING_SUBJECT"] {
            assert!(n.contains(&r.to_string()), "{r} in {n:?}");
        }
        let n = names(
            "From: \"support@bank.test\" <x@evil.test>\r\nSubject: URGENT ACCOUNT NOTICE\r\n\
Date: Tue, 14 Nov 2030 22:13:20 +0000\r\nMessage-ID: <1@a>\r\n\r\nhi\r\n",
        );
        assert!(n.contains(&"FROM_NAME_OTHER_ADDRESS".to_string()), "{n:?}");
        assert!(n.contains(&"SUBJECT_ALL_CAPS".to_string()), "{n:?}");
        assert!(n.contains(&"DATE_IN_FUTURE".to_string()), "{n:?}");
    }

    #[test]
    fn html_links_and_attachments() {
        let raw = "From: a@a.test\r\nSubject: s\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@a>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n\
<p style=\"font-size:0\">x</p><a href=\"http://192.0.2.1/login\">https://www.paypal.com</a>\
<a href='https://xn--pypal-4ve.com/'>here</a><a href=http://sub.bad.test/>x</a>\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nMZ\r\n--b--\r\n";
        let n = names(raw);
        for r in [
            "HTML_ONLY",
            "HTML_HIDDEN_TEXT",
            "URL_NUMERIC_IP",
            "LINK_TEXT_MISMATCH",
            "URL_LOOKALIKE_DOMAIN",
            "URL_BLOCKLISTED",
            "DANGEROUS_ATTACHMENT",
            "DOUBLE_EXTENSION",
        ] {
            assert!(n.contains(&r.to_string()), "{r} in {n:?}");
        }
    }

    #[test]
    fn honest_links_do_not_fire() {
        let raw = "From: a@a.test\r\nSubject: s\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@a>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee www.example.com\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<a href=\"https://www.example.com/a\">www.example.com</a> and <a href=\"https://example.com\">Example</a> \
plenty of ordinary words so the message is not image-only, plenty of words, plenty of words, plenty.\r\n--b--\r\n";
        assert!(names(raw).is_empty(), "{:?}", names(raw));
        assert!(!is_lookalike("xn--mnchen-3ya.de"), "a real IDN");
        assert!(is_lookalike("pаypal.com"));
    }
}
