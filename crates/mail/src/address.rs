//! Address lists (RFC 5322 §3.4) parsed leniently into the four-field form
//! of the IMAP ENVELOPE (RFC 3501 §7.4.2), with Dovecot's placeholders for
//! missing pieces so that every address still has a mailbox and a host.

use crate::rfc822::{Lexer, Step};

/// One ENVELOPE address. Group start: `mailbox` = group name, `host` = None;
/// group end: everything None.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";
const SYNTAX_ERROR: &[u8] = b"SYNTAX_ERROR";

#[derive(Default)]
struct Mailbox {
    name: Option<Vec<u8>>,
    route: Option<Vec<u8>>,
    mailbox: Option<Vec<u8>>,
    /// `Some(empty)` when a domain was expected but absent.
    domain: Option<Vec<u8>>,
    invalid: bool,
}

impl Mailbox {
    fn finish(self) -> Address {
        let mailbox = match self.mailbox {
            Some(m) if !m.is_empty() => m,
            _ => MISSING_MAILBOX.to_vec(),
        };
        let host = match self.domain {
            Some(d) if !d.is_empty() => d,
            Some(_) if self.invalid => SYNTAX_ERROR.to_vec(),
            _ => MISSING_DOMAIN.to_vec(),
        };
        Address {
            name: self.name,
            route: self.route,
            mailbox: Some(mailbox),
            host: Some(host),
        }
    }
}

/// Parse an address-list header value. Never fails: what cannot be parsed
/// ends the list, as with Dovecot.
pub fn parse_list(value: &[u8], out: &mut Vec<Address>) {
    let mut lx = Lexer::new(value);
    if lx.skip_cfws() != Step::More {
        return;
    }
    loop {
        if !parse_address(&mut lx, out) {
            return;
        }
        if lx.peek() != Some(b',') {
            return;
        }
        lx.pos += 1;
        if lx.skip_cfws() != Step::More {
            return;
        }
    }
}

/// `address = mailbox / group`. Returns false when the list cannot go on.
fn parse_address(lx: &mut Lexer<'_>, out: &mut Vec<Address>) -> bool {
    let start = lx.pos;
    let mut name = Vec::new();
    if lx.phrase(&mut name) == Step::More && lx.peek() == Some(b':') {
        lx.pos += 1;
        out.push(Address {
            mailbox: Some(name),
            ..Address::default()
        });
        let ok = parse_group_members(lx, out);
        out.push(Address::default());
        return ok;
    }
    lx.pos = start;
    out.push(parse_mailbox(lx).finish());
    true
}

/// Members after `group-name:` up to `;` (RFC 5322 §3.4 group).
fn parse_group_members(lx: &mut Lexer<'_>, out: &mut Vec<Address>) -> bool {
    if lx.skip_cfws() != Step::More {
        return false;
    }
    loop {
        match lx.peek() {
            Some(b';') => {
                lx.pos += 1;
                return lx.skip_cfws().ok();
            }
            Some(b',') => {
                lx.pos += 1;
                if lx.skip_cfws() != Step::More {
                    return false;
                }
                continue;
            }
            None => return false,
            _ => {}
        }
        let before = lx.pos;
        out.push(parse_mailbox(lx).finish());
        if lx.pos == before || !matches!(lx.peek(), Some(b',' | b';')) {
            return false;
        }
    }
}

/// `mailbox = name-addr / addr-spec`.
fn parse_mailbox(lx: &mut Lexer<'_>) -> Mailbox {
    let start = lx.pos;
    let mut mb = Mailbox::default();
    if let Some(r) = parse_name_addr(lx, &mut mb) {
        mb.invalid = r == Step::Err;
        return mb;
    }
    lx.pos = start;
    let mut mb = Mailbox::default();
    mb.invalid = parse_addr_spec(lx, &mut mb, true) == Step::Err;
    mb
}

/// `[display-name] "<" [route ":"] addr-spec ">"`. None when this is not a
/// name-addr at all (no `<` after the phrase), so the caller can retry as
/// an addr-spec.
fn parse_name_addr(lx: &mut Lexer<'_>, mb: &mut Mailbox) -> Option<Step> {
    let mut name = Vec::new();
    if lx.peek() != Some(b'<') {
        if lx.phrase(&mut name) != Step::More || lx.peek() != Some(b'<') {
            return None;
        }
        mb.name = Some(name);
    }
    lx.pos += 1;
    if lx.skip_cfws() != Step::More {
        return Some(Step::Err);
    }
    if lx.peek() == Some(b'@') {
        let mut route = Vec::new();
        if parse_route(lx, &mut route) != Step::More || lx.peek() != Some(b':') {
            mb.route = Some(route);
            return Some(Step::Err);
        }
        mb.route = Some(route);
        lx.pos += 1;
        if lx.skip_cfws() != Step::More {
            return Some(Step::Err);
        }
    }
    let r = parse_addr_spec(lx, mb, false);
    if r == Step::Err {
        return Some(Step::Err);
    }
    if lx.peek() != Some(b'>') {
        return Some(Step::Err);
    }
    lx.pos += 1;
    Some(lx.skip_cfws())
}

/// obs-route domain list `@a,@b` (RFC 5322 §4.4).
fn parse_route(lx: &mut Lexer<'_>, out: &mut Vec<u8>) -> Step {
    loop {
        if lx.peek() != Some(b'@') {
            return Step::Err;
        }
        lx.pos += 1;
        out.push(b'@');
        if lx.skip_cfws() != Step::More {
            return Step::Err;
        }
        let r = parse_domain(lx, out);
        if r != Step::More {
            return r;
        }
        if lx.peek() != Some(b',') {
            return Step::More;
        }
        // Empty elements between commas are allowed by obs-domain-list.
        while lx.peek() == Some(b',') {
            lx.pos += 1;
            if lx.skip_cfws() != Step::More {
                return Step::Err;
            }
        }
        out.push(b',');
    }
}

fn parse_domain(lx: &mut Lexer<'_>, out: &mut Vec<u8>) -> Step {
    if lx.peek() == Some(b'[') {
        lx.domain_literal(out)
    } else {
        lx.dot_atom(out)
    }
}

/// `local-part "@" domain`, with Dovecot's recovery for a bare word: a
/// comment after it becomes the display name, further words make the whole
/// thing a display name without mailbox.
fn parse_addr_spec(lx: &mut Lexer<'_>, mb: &mut Mailbox, bare: bool) -> Step {
    lx.last_comment.clear();
    let mut local = Vec::new();
    let mut r = parse_local_part(lx, &mut local);
    if r == Step::Err {
        if !local.is_empty() {
            mb.mailbox = Some(local);
        }
        return Step::Err;
    }
    mb.mailbox = Some(local);
    let mut domain_tried = false;
    if r == Step::More && lx.peek() == Some(b'@') {
        domain_tried = true;
        lx.pos += 1;
        let mut domain = Vec::new();
        let d = if lx.skip_cfws() == Step::More {
            parse_domain(lx, &mut domain)
        } else {
            Step::Err
        };
        mb.domain = Some(domain);
        r = d;
    }
    if bare && !lx.last_comment.is_empty() {
        // `user@host (Name)`: the comment is the only name there is. Inside
        // <...> comments are never names.
        mb.name = Some(std::mem::take(&mut lx.last_comment));
    } else if !domain_tried && r != Step::Err && !bare {
        mb.domain = Some(Vec::new());
    } else if !domain_tried && r != Step::Err {
        let mut words = Vec::new();
        let save = lx.pos;
        let _ = lx.phrase(&mut words);
        if !words.is_empty() {
            let mut name = mb.mailbox.take().unwrap_or_default();
            name.push(b' ');
            name.extend_from_slice(&words);
            mb.name = Some(name);
        } else {
            lx.pos = save;
            mb.domain = Some(Vec::new());
        }
    }
    r
}

/// `local-part = dot-atom / quoted-string / obs-local-part`: words and
/// quoted strings separated by dots.
fn parse_local_part(lx: &mut Lexer<'_>, out: &mut Vec<u8>) -> Step {
    loop {
        let r = if lx.peek() == Some(b'"') {
            lx.quoted_string(out)
        } else {
            lx.atom(out)
        };
        if r != Step::More || lx.peek() != Some(b'.') {
            return r;
        }
        out.push(b'.');
        lx.pos += 1;
        let r = lx.skip_cfws();
        if r != Step::More {
            return r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Vec<Address> {
        let mut out = Vec::new();
        parse_list(v.as_bytes(), &mut out);
        out
    }

    fn a(name: Option<&str>, mb: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| n.as_bytes().to_vec()),
            route: None,
            mailbox: Some(mb.as_bytes().to_vec()),
            host: Some(host.as_bytes().to_vec()),
        }
    }

    #[test]
    fn basics() {
        assert_eq!(one("a@b"), vec![a(None, "a", "b")]);
        assert_eq!(one("Joe Q. Public <j@x.y>"), vec![a(Some("Joe Q. Public"), "j", "x.y")]);
        assert_eq!(one("Whomever"), vec![a(None, "Whomever", "MISSING_DOMAIN")]);
        assert_eq!(
            one("nsb (Nathaniel Borenstein)"),
            vec![a(Some("Nathaniel Borenstein"), "nsb", "MISSING_DOMAIN")]
        );
        assert_eq!(
            one("Big Bug bb@bug.com"),
            vec![a(Some("Big Bug bb"), "MISSING_MAILBOX", "MISSING_DOMAIN")]
        );
        assert_eq!(
            one("<Undisclosed-Recipient:@mailman.enron.com;>"),
            vec![a(None, "Undisclosed-Recipient", "SYNTAX_ERROR")]
        );
        assert_eq!(one("a@b, , c@d").len(), 3,);
    }
}
