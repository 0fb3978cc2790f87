//! Decoded header summary for SEARCH and SORT (RFC 2047 encoded words and
//! charsets decoded by `mail-parser`, output UTF-8).

use mail_parser::{Addr, Address, MessageParser};

#[derive(Default)]
pub struct Summary {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub date: Option<i64>,
}

/// Most message ids kept from one References header: threading needs the
/// nearest ancestors, and a hostile header must not cost unbounded work.
pub const MAX_REFERENCES: usize = 100;

fn id_list(v: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    let all = v.as_text_list().unwrap_or_default();
    let skip = all.len().saturating_sub(MAX_REFERENCES);
    all.iter()
        .skip(skip)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 998)
        .collect()
}

/// Summarise a header block (only the header is handed to mail-parser, so
/// its cost does not depend on the body).
pub fn summary(head: &[u8]) -> Summary {
    // mail-parser is third-party code: a panic in it must not take the
    // delivery down, the summary is then simply empty.
    std::panic::catch_unwind(|| inner(head)).unwrap_or_default()
}

fn inner(head: &[u8]) -> Summary {
    let Some(msg) = MessageParser::new().parse_headers(head) else {
        return Summary::default();
    };
    Summary {
        subject: msg.subject().unwrap_or_default().to_string(),
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        bcc: addresses(msg.bcc()),
        message_id: msg.message_id().unwrap_or_default().to_string(),
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        date: msg.date().map(|d| d.to_timestamp()),
    }
}

/// Addresses as searchable text; group names are kept (`team: a@x, b@x;`)
/// so SEARCH TO can find a group by its name, as Dovecot does.
fn addresses(a: Option<&Address<'_>>) -> String {
    fn one(addr: &Addr<'_>) -> String {
        let email = addr.address().unwrap_or_default();
        match addr.name() {
            Some(n) if !email.is_empty() => format!("{n} <{email}>"),
            Some(n) => n.to_string(),
            None => email.to_string(),
        }
    }
    fn list(addrs: &[Addr<'_>]) -> String {
        addrs.iter().map(one).collect::<Vec<_>>().join(", ")
    }
    match a {
        None => String::new(),
        Some(Address::List(addrs)) => list(addrs),
        Some(Address::Group(groups)) => groups
            .iter()
            .map(|g| match &g.name {
                Some(name) => format!("{name}: {};", list(&g.addresses)),
                None => list(&g.addresses),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words() {
        let s = summary(
            b"Subject: =?utf-8?q?caf=C3=A9?=\r\nFrom: =?iso-8859-1?q?J=F6rg?= <j@x.de>\r\n\
              Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\n",
        );
        assert_eq!(s.subject, "café");
        assert_eq!(s.from, "Jörg <j@x.de>");
        assert_eq!(s.message_id, "a@b");
        assert_eq!(s.date, Some(1_704_067_200));
    }

    #[test]
    fn keeps_group_names() {
        let s = summary(b"To: team: a@x.test, Bo <b@x.test>;, other: c@x.test;\r\nCc: d@x.test\r\n\r\n");
        assert_eq!(s.to, "team: a@x.test, Bo <b@x.test>;, other: c@x.test;");
        assert_eq!(s.cc, "d@x.test");
    }

    #[test]
    fn reads_reply_ids() {
        let s = summary(b"In-Reply-To: <p@x>\r\nReferences: <r1@x>\r\n <r2@x>  <p@x>\r\nMessage-ID: <m@x>\r\n\r\n");
        assert_eq!(s.in_reply_to, vec!["p@x"]);
        assert_eq!(s.references, vec!["r1@x", "r2@x", "p@x"]);
        let many: String = (0..150).map(|i| format!("<{i}@x> ")).collect();
        let s = summary(format!("References: {many}\r\n\r\n").as_bytes());
        assert_eq!(s.references.len(), MAX_REFERENCES);
        assert_eq!(s.references.last().map(String::as_str), Some("149@x"));
    }
}
