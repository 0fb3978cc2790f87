//! Decoded text for full-text search and previews. The walk is over our
//! own part tree (depth and part count bounded by [`crate::parse`]); only
//! leaf headers, charset decoders and HTML-to-text come from `mail-parser`,
//! whose full parser recurses without a bound on deeply nested input.

use crate::parse::{self, Part};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::{MessageParser, MimeHeaders};

/// Most body text indexed per message; past this a message is searchable
/// by its beginning only. Trigram indexing runs in the delivery
/// transaction on the store's one writer thread, so this bounds the work
/// each delivery adds there (1 MiB made SMTP intake several times slower
/// on 200 KB text messages; mail text is rarely longer than this).
pub const MAX_TEXT_BYTES: usize = 32 << 10;
/// Length of a preview in characters (RFC 8970 suggests up to 256; JMAP
/// `preview` is at most 256).
pub const PREVIEW_CHARS: usize = 256;

/// What full-text search looks at besides the decoded header summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    /// Text of the body parts (text/plain as is, text/html as text),
    /// decoded, joined by newlines, at most [`MAX_TEXT_BYTES`].
    pub body: String,
    /// File names of the attachments, one per line.
    pub attachments: String,
}

/// Decoded text of a message. Never panics; any input gives some answer.
pub fn search_text(raw: &[u8]) -> SearchText {
    let root = parse::parse(raw);
    std::panic::catch_unwind(|| {
        let mut out = SearchText::default();
        walk(raw, &root, &mut out);
        out
    })
    .unwrap_or_default()
}

fn walk(raw: &[u8], part: &Part, out: &mut SearchText) {
    if out.body.len() >= MAX_TEXT_BYTES {
        return;
    }
    if part.multipart {
        for c in &part.children {
            walk(raw, c, out);
        }
        return;
    }
    if let Some(inner) = part.embedded() {
        walk(raw, inner, out);
        return;
    }
    let head = raw.get(part.header_start..part.body_start).unwrap_or_default();
    let body = raw.get(part.body_start..part.body_end).unwrap_or_default();
    // Headers only: mail-parser does not look at the body here.
    let headers = MessageParser::new().parse_headers(head);
    let name = headers.as_ref().and_then(|h| h.attachment_name().map(str::to_string));
    let attachment = headers
        .as_ref()
        .and_then(|h| h.content_disposition())
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    if let Some(n) = name {
        if !out.attachments.is_empty() {
            out.attachments.push('\n');
        }
        out.attachments.push_str(&n);
    }
    let is_text = part.mime_ignored || part.is_type("text", "plain") || part.is_type("text", "html");
    if attachment || !is_text {
        return;
    }
    let decoded = crate::binary::decode(&part.encoding, body).unwrap_or_else(|_| body.to_vec());
    let charset = headers
        .as_ref()
        .and_then(|h| h.content_type())
        .and_then(|ct| ct.attribute("charset"))
        .map(str::to_string);
    let text = match charset.as_deref().and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decode) => decode(&decoded),
        None => String::from_utf8_lossy(&decoded).into_owned(),
    };
    let text = if part.is_type("text", "html") {
        html_to_text(&text)
    } else {
        text
    };
    if !out.body.is_empty() {
        out.body.push('\n');
    }
    push_bounded(&mut out.body, &text);
}

fn push_bounded(out: &mut String, s: &str) {
    let room = MAX_TEXT_BYTES.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&s[..end]);
    }
}

/// A preview of the body: the first [`PREVIEW_CHARS`] characters of its
/// text with runs of whitespace collapsed (RFC 8970 §3).
pub fn preview(text: &SearchText) -> String {
    let mut out = String::new();
    let mut n = 0;
    for word in text.body.split_whitespace() {
        if n > 0 {
            out.push(' ');
            n += 1;
        }
        for c in word.chars() {
            if n >= PREVIEW_CHARS {
                return out;
            }
            out.push(c);
            n += 1;
        }
        if n >= PREVIEW_CHARS {
            break;
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_qp_base64_charsets_and_html() {
        let raw = b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            caf=E9 cr=E8me\r\n\
            --b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            PHA+SGVsbG8gPGI+d29ybGQ8L2I+PC9wPg==\r\n\
            --b\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            JVBERi0=\r\n--b--\r\n";
        let t = search_text(raw);
        assert!(t.body.contains("café crème"), "{:?}", t.body);
        assert!(t.body.contains("Hello world"), "{:?}", t.body);
        assert_eq!(t.attachments, "report.pdf");
        assert!(preview(&t).starts_with("café crème"));
    }

    #[test]
    fn previews_are_bounded_and_collapsed() {
        let t = SearchText {
            body: format!("a\r\n\r\n  b {}", "x".repeat(400)),
            attachments: String::new(),
        };
        let p = preview(&t);
        assert!(p.starts_with("a b xxx"));
        assert_eq!(p.chars().count(), PREVIEW_CHARS);
    }
}
