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
    pub date: Option<i64>,
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
}
