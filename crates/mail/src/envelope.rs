//! ENVELOPE (RFC 3501 §7.4.2, RFC 9051 §7.5.2).

use crate::address::{self, Address};
use crate::header::Header;
use crate::imap_string::{push_human, push_nstring, push_string};

/// Build the parenthesised ENVELOPE value from a message header.
///
/// Date, Subject, Message-ID and In-Reply-To: the last field wins and its
/// unfolded raw value is used. Address fields: all occurrences are
/// concatenated. Sender and Reply-To default to From (RFC 3501 §7.4.2).
pub fn envelope(raw: &[u8], hdr: &Header<'_>) -> Vec<u8> {
    let text = |name: &str| hdr.last(name).map(|f| f.value(raw));
    let addrs = |name: &str| -> Option<Vec<Address>> {
        let mut list = Vec::new();
        let mut seen = false;
        for f in hdr.fields.iter().filter(|f| f.is(name)) {
            seen = true;
            address::parse_list(&f.value(raw), &mut list);
        }
        (seen && !list.is_empty()).then_some(list)
    };
    let from = addrs("From");
    let sender = addrs("Sender").or_else(|| from.clone());
    let reply_to = addrs("Reply-To").or_else(|| from.clone());

    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    push_nstring(&mut out, text("Date").as_deref());
    out.push(b' ');
    match hdr.last("Subject") {
        Some(f) => push_human(&mut out, f.raw_value(raw)),
        None => out.extend_from_slice(b"NIL"),
    }
    for list in [&from, &sender, &reply_to, &addrs("To"), &addrs("Cc"), &addrs("Bcc")] {
        out.push(b' ');
        push_addresses(&mut out, list.as_deref());
    }
    out.push(b' ');
    push_nstring(&mut out, text("In-Reply-To").as_deref());
    out.push(b' ');
    push_nstring(&mut out, text("Message-ID").as_deref());
    out.push(b')');
    out
}

/// The all-NIL envelope of a message that could not be parsed (e.g. a
/// base64-encoded message/rfc822 body).
pub const EMPTY: &[u8] = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";

fn push_addresses(out: &mut Vec<u8>, list: Option<&[Address]>) {
    let Some(list) = list else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for a in list {
        out.push(b'(');
        match &a.name {
            Some(n) => push_human(out, n),
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        push_nstring(out, a.route.as_deref());
        out.push(b' ');
        push_nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        match &a.host {
            Some(h) => push_string(out, h),
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}
