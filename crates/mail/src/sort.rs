//! What IMAP SORT and THREAD (RFC 5256) and SORT=DISPLAY (RFC 5957) compare,
//! computed once per message at delivery and kept beside it, so sorting a
//! large mailbox reads a few short strings per message, not its analysis.

use mail_parser::{Addr, Address, MessageParser};

use crate::summary::MAX_REFERENCES;

/// Sort and thread keys of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// RFC 5256 §2.1 base subject (decoded, not case-folded).
    pub subject: String,
    /// The base-subject extraction removed a reply/forward marker (RFC 5256
    /// §3 REFERENCES: "a reply or forward").
    pub reply: bool,
    /// addr-mailbox (local part) of the first From, To and Cc address.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957 §2: display name of the first From/To address, else its
    /// addr-spec.
    pub display_from: String,
    pub display_to: String,
    /// Message-ID without angle brackets (empty when none).
    pub message_id: String,
    /// RFC 5256 §3 REFERENCES: the references to thread by, oldest first
    /// (References, else the first In-Reply-To).
    pub references: Vec<String>,
}

/// Field separator of [`SortKeys::encode`]; never in a decoded header value
/// we keep (control characters are replaced).
const SEP: char = '\u{1f}';
/// Format version of the encoding.
const VERSION: &str = "1";

fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

impl SortKeys {
    /// One line of text for the store.
    pub fn encode(&self) -> String {
        [
            VERSION,
            &clean(&self.subject),
            if self.reply { "r" } else { "" },
            &clean(&self.from),
            &clean(&self.to),
            &clean(&self.cc),
            &clean(&self.display_from),
            &clean(&self.display_to),
            &clean(&self.message_id),
            &self.references.iter().map(|r| clean(r)).collect::<Vec<_>>().join(" "),
        ]
        .join(&SEP.to_string())
    }

    /// The inverse of [`SortKeys::encode`]; `None` for another version.
    pub fn decode(s: &str) -> Option<SortKeys> {
        let f: Vec<&str> = s.split(SEP).collect();
        if f.len() != 10 || f[0] != VERSION {
            return None;
        }
        Some(SortKeys {
            subject: f[1].to_string(),
            reply: f[2] == "r",
            from: f[3].to_string(),
            to: f[4].to_string(),
            cc: f[5].to_string(),
            display_from: f[6].to_string(),
            display_to: f[7].to_string(),
            message_id: f[8].to_string(),
            references: f[9].split(' ').filter(|r| !r.is_empty()).map(str::to_string).collect(),
        })
    }
}

/// [`SortKeys`] read in place from their encoding, without allocating:
/// what sorting 100,000 messages wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SortFields<'a> {
    pub subject: &'a str,
    pub reply: bool,
    pub from: &'a str,
    pub to: &'a str,
    pub cc: &'a str,
    pub display_from: &'a str,
    pub display_to: &'a str,
    pub message_id: &'a str,
    /// Space-separated, oldest first.
    pub references: &'a str,
}

impl<'a> SortFields<'a> {
    /// Read an encoding made by [`SortKeys::encode`]; `None` for another
    /// version.
    pub fn parse(s: &'a str) -> Option<SortFields<'a>> {
        let mut f = s.split(SEP);
        if f.next()? != VERSION {
            return None;
        }
        let mut next = || f.next();
        let out = SortFields {
            subject: next()?,
            reply: next()? == "r",
            from: next()?,
            to: next()?,
            cc: next()?,
            display_from: next()?,
            display_to: next()?,
            message_id: next()?,
            references: next()?,
        };
        next().is_none().then_some(out)
    }

    pub fn references(&self) -> impl Iterator<Item = &'a str> {
        self.references.split(' ').filter(|r| !r.is_empty())
    }
}

/// The sort keys of a message (only its header is parsed).
pub fn sort_keys(raw: &[u8]) -> SortKeys {
    let head = crate::header_section(raw);
    // mail-parser is third-party code: a panic in it leaves empty keys.
    std::panic::catch_unwind(|| inner(head)).unwrap_or_default()
}

fn mailbox_of(a: &Addr<'_>) -> String {
    let addr = a.address().unwrap_or_default();
    match addr.rfind('@') {
        Some(at) => addr[..at].to_string(),
        None => addr.to_string(),
    }
}

fn display_of(a: &Addr<'_>) -> String {
    match a.name() {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => a.address().unwrap_or_default().to_string(),
    }
}

/// The first address of a header as (addr-mailbox, display): for a group,
/// its name is both, as in the IMAP envelope where a group starts with
/// `(NIL NIL "name" NIL)` (Dovecot sorts so too).
fn first_addr(a: Option<&Address<'_>>) -> Option<(String, String)> {
    match a? {
        Address::List(l) => l.first().map(|a| (mailbox_of(a), display_of(a))),
        Address::Group(g) => {
            let g = g.first()?;
            match g.name.as_deref() {
                Some(name) if !name.trim().is_empty() => Some((name.trim().to_string(), name.trim().to_string())),
                _ => g.addresses.first().map(|a| (mailbox_of(a), display_of(a))),
            }
        }
    }
}

fn inner(head: &[u8]) -> SortKeys {
    let Some(msg) = MessageParser::new().parse_headers(head) else {
        return SortKeys::default();
    };
    let (subject, reply) = base_subject(msg.subject().unwrap_or_default());
    let ids = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        v.as_text_list()
            .unwrap_or_default()
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.len() <= 998 && !s.contains(char::is_whitespace))
            .collect()
    };
    let mut references = ids(msg.references());
    if references.is_empty() {
        references = ids(msg.in_reply_to()).into_iter().take(1).collect();
    }
    let skip = references.len().saturating_sub(MAX_REFERENCES);
    let (from, display_from) = first_addr(msg.from()).unwrap_or_default();
    let (to, display_to) = first_addr(msg.to()).unwrap_or_default();
    SortKeys {
        subject,
        reply,
        from,
        to,
        cc: first_addr(msg.cc()).map(|a| a.0).unwrap_or_default(),
        display_from,
        display_to,
        message_id: msg.message_id().unwrap_or_default().trim().to_string(),
        references: references.split_off(skip),
    }
}

/// Length of a `subj-blob` (`"[" *BLOBCHAR "]" *WSP`) at the start of `s`.
fn blob_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find(['[', ']'])?;
    if !rest[close..].starts_with(']') {
        return None;
    }
    let after = 1 + close + 1;
    Some(after + s[after..].len() - s[after..].trim_start_matches(' ').len())
}

/// Length of a `subj-refwd` (`("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`)
/// after any number of blobs, at the start of `s`.
fn leader_len(s: &str) -> Option<usize> {
    let mut pos = 0;
    while let Some(n) = blob_len(&s[pos..]) {
        pos += n;
    }
    let rest = &s[pos..];
    let lower = rest.get(..3).unwrap_or(rest).to_ascii_lowercase();
    let word = if lower.starts_with("fwd") {
        3
    } else if lower.starts_with("fw") || lower.starts_with("re") {
        2
    } else {
        return None;
    };
    pos += word;
    pos += s[pos..].len() - s[pos..].trim_start_matches(' ').len();
    if let Some(n) = blob_len(&s[pos..]) {
        pos += n;
    }
    s[pos..].starts_with(':').then_some(pos + 1)
}

/// RFC 5256 §2.1 base subject, and whether a reply/forward marker (a
/// subj-refwd, a "(fwd)" trailer, or a [fwd: ...] wrapper) was removed.
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) Tabs and line breaks become spaces; runs of spaces one.
    let mut s = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if c == '\t' || c == '\r' || c == '\n' { ' ' } else { c };
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    let mut reply = false;
    loop {
        // (2) Trailing "(fwd)" and spaces.
        loop {
            if s.ends_with(' ') {
                s.pop();
            } else if s
                .get(s.len().saturating_sub(5)..)
                .is_some_and(|t| t.eq_ignore_ascii_case("(fwd)"))
            {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // (3)–(5) Leading spaces, re:/fw:/fwd: leaders, and blobs that do
        // not make up the whole rest.
        loop {
            let before = s.len();
            if s.starts_with(' ') {
                s.remove(0);
            } else if let Some(n) = leader_len(&s) {
                s.drain(..n);
                reply = true;
            }
            if let Some(n) = blob_len(&s) {
                if s[n..].chars().any(|c| c != ' ') {
                    s.drain(..n);
                }
            }
            if s.len() == before {
                break;
            }
        }
        // (6) A "[fwd: ...]" wrapper.
        if s.len() >= 6 && s.get(..5).is_some_and(|t| t.eq_ignore_ascii_case("[fwd:")) && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        let b = |s: &str| base_subject(s);
        assert_eq!(b("Hello"), ("Hello".into(), false));
        assert_eq!(b("Re: Hello"), ("Hello".into(), true));
        assert_eq!(b("RE:  re: Fwd:hello  "), ("hello".into(), true));
        assert_eq!(b("Re [foo]: x"), ("x".into(), true));
        assert_eq!(b("[list] Re: topic"), ("topic".into(), true));
        assert_eq!(b("[list] topic"), ("topic".into(), false));
        // A blob that is all there is stays.
        assert_eq!(b("[only]"), ("[only]".into(), false));
        assert_eq!(b("topic (fwd)"), ("topic".into(), true));
        assert_eq!(b("[Fwd: Re: topic]"), ("topic".into(), true));
        assert_eq!(b("\tmany\t  spaces\r\n here"), ("many spaces here".into(), false));
        assert_eq!(b("Reply"), ("Reply".into(), false));
        assert_eq!(b("re:"), ("".into(), true));
        assert_eq!(b(""), ("".into(), false));
        assert_eq!(b("[a][b] re: [c] fw: d"), ("d".into(), true));
        // Multi-byte characters next to every marker position.
        for t in [
            "Grüße",
            "ß",
            "éé",
            "[é] ü",
            "ü(fwd)",
            "[fwd: ü]",
            "ré: x",
            "fwü",
            "日本語 (fwd)",
        ] {
            let _ = b(t);
        }
        assert_eq!(b("日本語 (fwd)"), ("日本語".into(), true));
    }

    #[test]
    fn keys_from_a_header() {
        let raw = b"From: \"Smith, Jo\" <jo@example.test>\r\nTo: team: a@x.test, b@x.test;\r\n\
Cc: <c@x.test>\r\nSubject: =?UTF-8?Q?Re=3A_Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m3@x>\r\n\
References: <m1@x> <m2@x>\r\nIn-Reply-To: <m2@x>\r\n\r\nbody";
        let k = sort_keys(raw);
        assert_eq!(k.subject, "Grüße");
        assert!(k.reply);
        // A group's name stands for it, as in the envelope.
        assert_eq!((k.from.as_str(), k.to.as_str(), k.cc.as_str()), ("jo", "team", "c"));
        assert_eq!((k.display_from.as_str(), k.display_to.as_str()), ("Smith, Jo", "team"));
        assert_eq!(k.message_id, "m3@x");
        assert_eq!(k.references, vec!["m1@x", "m2@x"]);
        assert_eq!(SortKeys::decode(&k.encode()), Some(k.clone()));
        let enc = k.encode();
        let f = SortFields::parse(&enc).unwrap();
        assert_eq!(
            (f.subject, f.reply, f.to, f.message_id),
            ("Grüße", true, "team", "m3@x")
        );
        assert_eq!(f.references().collect::<Vec<_>>(), vec!["m1@x", "m2@x"]);
        assert_eq!(SortFields::parse("1\u{1f}x"), None);
        let k = sort_keys(b"In-Reply-To: <p@x> <q@x>\r\nSubject: x\r\n\r\n");
        assert_eq!(k.references, vec!["p@x"]);
        assert_eq!(SortKeys::decode(&k.encode()), Some(k));
        assert_eq!(sort_keys(b""), SortKeys::default());
        assert_eq!(SortKeys::decode("2\u{1f}x"), None);
    }
}
