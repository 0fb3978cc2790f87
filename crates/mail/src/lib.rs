//! Letterbox message model: everything IMAP needs to know about a stored
//! message, computed once at delivery.
//!
//! Key design decision: [`analyze`] walks the raw RFC 5322 bytes exactly
//! once and produces (a) the finished ENVELOPE, BODY and BODYSTRUCTURE
//! strings, byte for byte what Dovecot 2.3 sends, and (b) a [`Part`] tree
//! whose nodes are byte offsets into the raw message. Both are stored with
//! the message ([`MessageInfo`] is serde-serialisable), so later FETCHes of
//! structure items are a copy, and any `BODY[section]<partial>` or
//! `BINARY[section]` is a slice (or a decode of a slice) of the raw bytes —
//! the message is never parsed again. The offsets only stay valid for the
//! exact bytes that were analysed: the store must keep the message as given
//! (IMAP wire form, CRLF line endings; see [`to_wire`]).
//!
//! The MIME structure parser is our own (boundaries, folding, offsets, line
//! counts); `mail-parser` is only used for RFC 2047 decoding of the header
//! summary used by SEARCH/SORT.

mod address;
mod binary;
mod bodystructure;
mod envelope;
mod header;
mod imap_string;
pub mod mailbox;
mod parse;
mod rfc822;
mod section;
pub mod sort;
mod summary;
mod text;

pub use binary::{binary, decode as decode_transfer, decoded_message, encode_binary_parts, BinaryError};
pub use parse::{Part, MAX_DEPTH, MAX_PARTS};
pub use section::{section, SectionKind, SectionSpec, SectionSpecError};

pub use summary::MAX_REFERENCES;
pub use text::{preview, search_text, SearchText, MAX_TEXT_BYTES, PREVIEW_CHARS};

use serde::{Deserialize, Serialize};

/// Version of what [`analyze`] computes. Stores record it with each stored
/// [`MessageInfo`] and re-analyse messages analysed by an older version, so
/// a changed analyser never serves stale or missing fields. Bump it whenever
/// the output of `analyze` changes.
///
/// 1: IMAP structure and header summary. 2: In-Reply-To, References and
/// the body preview.
pub const ANALYSIS_VERSION: u32 = 2;

/// Computed once at delivery; serialisable (serde) so the store keeps it as
/// a blob.
///
/// `envelope`, `body` and `bodystructure` are raw IMAP protocol bytes, not
/// text: Dovecot passes 8-bit header bytes through unchanged (inside IMAP
/// literals), and those need not be UTF-8. They are written to the client
/// verbatim after `ENVELOPE `, `BODY ` or `BODYSTRUCTURE `. In serialised
/// form they are stored as strings with one char per byte (ISO-8859-1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageInfo {
    /// The ENVELOPE value only, e.g. `("Mon, 1 Jan ..." "subj" ...)`
    /// (RFC 3501 §7.4.2).
    #[serde(with = "latin1")]
    pub envelope: Vec<u8>,
    /// BODY value (no extension data).
    #[serde(with = "latin1")]
    pub body: Vec<u8>,
    /// BODYSTRUCTURE value (with extension data).
    #[serde(with = "latin1")]
    pub bodystructure: Vec<u8>,
    /// Part tree with byte offsets into the raw message.
    pub root: Part,
    /// RFC822.SIZE: the size of the analysed bytes.
    pub size: u64,
    /// Decoded Subject (RFC 2047 decoded, UTF-8) for SEARCH/SORT.
    pub subject: String,
    /// Decoded address headers, `Name <addr>` joined by `, `.
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    /// Message-ID without angle brackets.
    pub message_id: String,
    /// In-Reply-To ids without angle brackets (analysis version 2).
    #[serde(default)]
    pub in_reply_to: Vec<String>,
    /// References ids without angle brackets, oldest first, at most
    /// [`MAX_REFERENCES`] (analysis version 2).
    #[serde(default)]
    pub references: Vec<String>,
    /// The first [`PREVIEW_CHARS`] characters of the decoded body text
    /// (RFC 8970 PREVIEW, JMAP `preview`; analysis version 2).
    #[serde(default)]
    pub preview: String,
    /// Date: header as unix seconds when parseable.
    pub date: Option<i64>,
}

/// Analyse a message. Never panics; any input gives some answer.
pub fn analyze(raw: &[u8]) -> MessageInfo {
    analyze_with_text(raw).0
}

/// [`analyze`], also returning the decoded text it read for the preview
/// (what a full-text index needs), so the message is parsed once.
pub fn analyze_with_text(raw: &[u8]) -> (MessageInfo, SearchText) {
    let text = search_text(raw);
    let mut info = analyze_structure(raw);
    info.preview = preview(&text);
    (info, text)
}

fn analyze_structure(raw: &[u8]) -> MessageInfo {
    let root = parse::parse(raw);
    let head = raw.get(..root.body_start).unwrap_or(raw);
    let hdr = header::parse(head, 0, |_| false);
    let envelope = envelope::envelope(raw, &hdr);
    let mut body = Vec::new();
    bodystructure::write(&mut body, raw, &root, false);
    let mut bodystructure = Vec::new();
    bodystructure::write(&mut bodystructure, raw, &root, true);
    let s = summary::summary(head);
    MessageInfo {
        envelope,
        body,
        bodystructure,
        root,
        size: raw.len() as u64,
        subject: s.subject,
        from: s.from,
        to: s.to,
        cc: s.cc,
        bcc: s.bcc,
        message_id: s.message_id,
        in_reply_to: s.in_reply_to,
        references: s.references,
        preview: String::new(),
        date: s.date,
    }
}

/// The header section of a raw message, through the line end of its last
/// field (without the blank line); the whole input when there is no body.
/// Bare-LF input (before [`to_wire`]) is understood too.
/// The header fields of `raw`, each with its folded lines and line ends,
/// up to (not including) the empty line that ends the header.
pub fn header_fields(raw: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let (mut start, mut pos) = (0, 0);
    while pos < raw.len() {
        let line_end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) && pos > start {
            fields.push(&raw[start..pos]);
            start = pos;
        }
        pos = line_end;
    }
    if pos > start {
        fields.push(&raw[start..pos]);
    }
    fields
}

/// Whether header field `field` (as [`header_fields`] gives it) is named
/// `name`, case-insensitively.
pub fn field_is(field: &[u8], name: &str) -> bool {
    field.len() > name.len()
        && field[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && field[name.len()..].iter().position(|&b| b == b':').is_some_and(|c| {
            field[name.len()..name.len() + c]
                .iter()
                .all(|b| matches!(b, b' ' | b'\t'))
        })
}

pub fn header_section(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// Convert a message to IMAP wire form the way it is APPENDed: every LF not
/// preceded by CR becomes CRLF; nothing else changes (RFC 3501 §2.2 lines
/// end in CRLF). Analyse and store the result of this, not the original.
pub fn to_wire(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Serde for protocol bytes: a string with one char (U+0000..U+00FF) per
/// byte, compact in JSON and lossless.
mod latin1 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = v.iter().map(|&b| char::from(b)).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Text made safe inside HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod field_tests {
    #[test]
    fn fields_with_folding() {
        let raw = b"A: 1\r\nB: 2\r\n 3\r\nC : 4\r\n\r\nbody\r\nD: 5\r\n";
        let f = super::header_fields(raw);
        assert_eq!(f, vec![&b"A: 1\r\n"[..], b"B: 2\r\n 3\r\n", b"C : 4\r\n"]);
        assert!(super::field_is(f[2], "c") && !super::field_is(f[0], "AB") && !super::field_is(f[0], "B"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_roundtrip_keeps_8bit() {
        let info = analyze(&to_wire(b"Subject: caf\xe9\n\nbody\n"));
        assert!(info.envelope.contains(&0xe9));
        let json = serde_json::to_string(&info).unwrap();
        let back: MessageInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn wire_conversion() {
        assert_eq!(to_wire(b"a\nb\r\nc\r"), b"a\r\nb\r\nc\r");
    }
}
