//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2), written from
//! the part tree and the parts' raw headers.

use crate::envelope;
use crate::header::{self, Header};
use crate::imap_string::{push_nstring, push_string};
use crate::parse::Part;
use crate::rfc822::{self, Lexer, Step};

/// Write the BODY (`ext == false`) or BODYSTRUCTURE (`ext == true`) value.
pub fn write(out: &mut Vec<u8>, raw: &[u8], part: &Part, ext: bool) {
    // The header of a part never extends past its body start.
    let head = raw.get(..part.body_start).unwrap_or(raw);
    let hdr = header::parse(head, part.header_start, |_| false);
    let fields = Fields {
        raw,
        hdr: &hdr,
        mime_ignored: part.mime_ignored,
    };
    out.push(b'(');
    if part.multipart {
        if part.children.is_empty() {
            // A multipart without any part is shown with one empty text part.
            out.extend_from_slice(EMPTY_TEXT);
            if ext {
                out.extend_from_slice(b" NIL NIL NIL NIL");
            }
            out.push(b')');
        }
        for c in &part.children {
            write(out, raw, c, ext);
        }
        out.push(b' ');
        push_string(out, part.content_subtype.as_bytes());
        if ext {
            out.push(b' ');
            let params = fields
                .get("Content-Type")
                .map(|v| rfc822::content_type(&v).params.unwrap_or_default())
                .unwrap_or_default();
            push_params(out, &params);
            fields.push_extensions(out);
        }
    } else {
        let ct = fields.get("Content-Type").map(|v| rfc822::content_type(&v));
        if part.is_type("message", "rfc822") {
            // Dovecot spells this one type in lower case whatever was written.
            out.extend_from_slice(b"\"message\" \"rfc822\" ");
        } else {
            push_string(out, part.content_type.as_bytes());
            out.push(b' ');
            push_string(out, part.content_subtype.as_bytes());
            out.push(b' ');
        }
        let is_text = part.content_type.eq_ignore_ascii_case("text");
        let mut params = ct.and_then(|t| t.params).unwrap_or_default();
        if is_text && !params.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"charset")) {
            params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
        }
        push_params(out, &params);
        out.push(b' ');
        push_nstring(out, fields.get("Content-ID").as_deref());
        out.push(b' ');
        push_nstring(out, fields.get("Content-Description").as_deref());
        out.push(b' ');
        let enc = fields
            .get("Content-Transfer-Encoding")
            .and_then(|v| single_token(&v))
            .unwrap_or_else(|| b"7bit".to_vec());
        push_string(out, &enc);
        out.extend_from_slice(format!(" {}", part.body_len()).as_bytes());
        if is_text {
            out.extend_from_slice(format!(" {}", part.lines).as_bytes());
        } else if part.is_type("message", "rfc822") {
            out.push(b' ');
            match part.embedded() {
                Some(m) => {
                    let mhead = raw.get(..m.body_start).unwrap_or(raw);
                    let mhdr = header::parse(mhead, m.header_start, |_| false);
                    out.extend_from_slice(&envelope::envelope(raw, &mhdr));
                    out.push(b' ');
                    write(out, raw, m, ext);
                }
                None => {
                    out.extend_from_slice(envelope::EMPTY);
                    out.push(b' ');
                    out.extend_from_slice(EMPTY_TEXT);
                    if ext {
                        out.extend_from_slice(b" NIL NIL NIL NIL");
                    }
                    out.push(b')');
                }
            }
            out.extend_from_slice(format!(" {}", part.lines).as_bytes());
        }
        if ext {
            out.push(b' ');
            push_nstring(out, fields.get("Content-MD5").as_deref());
            fields.push_extensions(out);
        }
    }
    out.push(b')');
}

/// Opening of the empty text/plain part Dovecot shows for missing bodies
/// (without the closing parenthesis, so extension data can follow).
const EMPTY_TEXT: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";

struct Fields<'a, 'r> {
    raw: &'r [u8],
    hdr: &'a Header<'r>,
    mime_ignored: bool,
}

impl Fields<'_, '_> {
    /// Unfolded value of the first field of this name, if Content-* headers
    /// apply to this part.
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        if self.mime_ignored {
            return None;
        }
        self.hdr.fields.iter().find(|f| f.is(name)).map(|f| f.value(self.raw))
    }

    /// body-fld-dsp, body-fld-lang, body-fld-loc (RFC 3501 §9).
    fn push_extensions(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        match self.get("Content-Disposition") {
            Some(v) => {
                let d = rfc822::disposition(&v);
                out.push(b'(');
                push_string(out, &d.main);
                out.push(b' ');
                push_params(out, &d.params.unwrap_or_default());
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        let langs = self.get("Content-Language").map(|v| languages(&v));
        match langs {
            Some(l) if !l.is_empty() => {
                out.push(b'(');
                for (i, t) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    push_string(out, t);
                }
                out.push(b')');
            }
            _ => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        push_nstring(out, self.get("Content-Location").as_deref());
    }
}

fn push_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push_string(out, n);
        out.push(b' ');
        push_string(out, v);
    }
    out.push(b')');
}

/// Content-Transfer-Encoding as written when it is exactly one token
/// (RFC 2045 §6.1), else None.
fn single_token(v: &[u8]) -> Option<Vec<u8>> {
    let mut lx = Lexer::new(v);
    lx.skip_cfws();
    let mut t = Vec::new();
    match lx.token(&mut t) {
        Step::End => Some(t),
        _ => None,
    }
}

/// Content-Language (RFC 3282 §2): comma-separated language tags.
fn languages(v: &[u8]) -> Vec<Vec<u8>> {
    let mut lx = Lexer::new(v);
    let mut out = Vec::new();
    if lx.skip_cfws() != Step::More {
        return out;
    }
    loop {
        let mut t = Vec::new();
        let r = lx.token(&mut t);
        if r == Step::Err {
            break;
        }
        out.push(t);
        if r == Step::End || lx.peek() != Some(b',') {
            break;
        }
        lx.pos += 1;
        if lx.skip_cfws() != Step::More {
            break;
        }
    }
    out
}
