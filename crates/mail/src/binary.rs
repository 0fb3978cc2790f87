//! `BINARY[section]` (RFC 3516, RFC 9051 §6.4.5): part content with the
//! Content-Transfer-Encoding removed.

use std::ops::Range;

use crate::section::{resolve, Target};
use crate::{MessageInfo, Part};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part does not exist.
    #[error("no such part")]
    NoSuchPart,
    /// RFC 3516 §4.3: `NO [UNKNOWN-CTE]`.
    #[error("unknown Content-Transfer-Encoding {0:?}")]
    UnknownCte(String),
    /// The content is not valid for its encoding (`NO [PARSE]`).
    #[error("invalid {0} data in MIME part")]
    Invalid(&'static str),
}

/// Decoded content of the part at `part`.
///
/// The empty path is the whole message, header included (RFC 3516 §4.2,
/// RFC 9051 §6.4.5 `BINARY[]`), with every leaf part decoded as by
/// [`decoded_message`]. 7bit/8bit/binary content is returned as is;
/// multiparts and embedded messages are returned raw (they cannot carry
/// another encoding, RFC 2045 §6.4).
pub fn binary(raw: &[u8], info: &MessageInfo, part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    if part.is_empty() {
        return decoded_message(raw, &info.root);
    }
    let p = match resolve(&info.root, part).ok_or(BinaryError::NoSuchPart)? {
        Target::Empty => return Ok(Vec::new()),
        Target::Part(p) => p,
    };
    let body = raw.get(p.body_start..p.body_end).ok_or(BinaryError::NoSuchPart)?;
    if p.multipart || p.embedded().is_some() {
        return Ok(body.to_vec());
    }
    decode(&p.encoding, body)
}

/// The whole message with each base64 or quoted-printable leaf part
/// decoded and its Content-Transfer-Encoding field changed to `binary`, so
/// the result is still a correct MIME message (what Dovecot sends for
/// `BINARY[]`). A part whose data is not valid for its encoding is left as
/// it is; an encoding we do not know fails with `UnknownCte` (RFC 3516 §4.3).
pub fn decoded_message(raw: &[u8], root: &Part) -> Result<Vec<u8>, BinaryError> {
    let mut edits = Vec::new();
    for p in leaves(root) {
        if matches!(p.encoding.as_str(), "7bit" | "8bit" | "binary") {
            continue;
        }
        let body = raw.get(p.body_start..p.body_end).ok_or(BinaryError::NoSuchPart)?;
        let data = match decode(&p.encoding, body) {
            Ok(d) => d,
            Err(BinaryError::Invalid(_)) => continue,
            Err(e) => return Err(e),
        };
        edits.extend(cte_edit(raw, p, "binary"));
        edits.push((p.body_start..p.body_end, data));
    }
    Ok(apply(raw, edits))
}

/// RFC 3516 §4.4: a message APPENDed as a `literal8` may carry parts in
/// the `binary` transfer encoding (any bytes, NUL and bare LF included).
/// The server "MAY modify the CTE of the appended data" without losing
/// data; this re-encodes each such leaf part as base64 (76-character lines,
/// CRLF), as Dovecot does, so the stored message is 7-bit clean, its line
/// ends can be made CRLF without touching the content, BODY[] never has to
/// send a NUL (RFC 9051 §4.3), and BINARY[part] gives back the exact bytes.
/// `None` when no part needs it.
pub fn encode_binary_parts(raw: &[u8]) -> Option<Vec<u8>> {
    let root = crate::parse::parse(raw);
    let mut edits = Vec::new();
    for p in leaves(&root) {
        if p.encoding != "binary" {
            continue;
        }
        let body = raw.get(p.body_start..p.body_end)?;
        let mut data = base64_lines(body);
        if p.body_end == raw.len() && !data.is_empty() {
            data.extend_from_slice(b"\r\n");
        }
        edits.extend(cte_edit(raw, p, "base64"));
        edits.push((p.body_start..p.body_end, data));
    }
    (!edits.is_empty()).then(|| apply(raw, edits))
}

/// Leaf parts in message order: neither multipart containers nor
/// message/rfc822 parts whose content is parsed.
fn leaves(root: &Part) -> Vec<&Part> {
    fn walk<'p>(p: &'p Part, out: &mut Vec<&'p Part>) {
        if p.multipart {
            p.children.iter().for_each(|c| walk(c, out));
        } else if let Some(m) = p.embedded() {
            walk(m, out);
        } else {
            out.push(p);
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// Replace the part's (first, the one that counts) Content-Transfer-Encoding
/// field by one naming `encoding`.
fn cte_edit(raw: &[u8], p: &Part, encoding: &str) -> Option<(Range<usize>, Vec<u8>)> {
    let head = raw.get(..p.body_start)?;
    let hdr = crate::header::parse(head, p.header_start, |_| false);
    let f = hdr.fields.iter().find(|f| f.is("Content-Transfer-Encoding"))?;
    Some((
        f.start..f.end,
        format!("Content-Transfer-Encoding: {encoding}\r\n").into_bytes(),
    ))
}

/// Apply non-overlapping edits given in ascending order.
fn apply(raw: &[u8], edits: Vec<(Range<usize>, Vec<u8>)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for (range, with) in edits {
        if range.start < pos || range.end > raw.len() {
            continue;
        }
        out.extend_from_slice(&raw[pos..range.start]);
        out.extend_from_slice(&with);
        pos = range.end;
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

/// RFC 2045 §6.8 base64, lines of 76 characters joined by CRLF (no final
/// line break).
fn base64_lines(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() / 57 * 78 + 80);
    for (i, line) in data.chunks(57).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        for c in line.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]);
                } else {
                    out.push(b'=');
                }
            }
        }
    }
    out
}

/// Decode `body` given a lower-cased transfer encoding name.
pub fn decode(encoding: &str, body: &[u8]) -> Result<Vec<u8>, BinaryError> {
    match encoding {
        "7bit" | "8bit" | "binary" => Ok(body.to_vec()),
        "base64" => base64(body),
        "quoted-printable" => quoted_printable(body),
        other => Err(BinaryError::UnknownCte(other.to_string())),
    }
}

fn b64_value(b: u8) -> Option<u8> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// RFC 2045 §6.8. Line breaks and blanks are skipped; anything after the
/// `=` padding is ignored. Other bytes outside the alphabet are an error
/// (RFC 2045 allows ignoring them, but such data is almost always not
/// base64 at all, and refusing lets the client fall back to BODY[]).
fn base64(body: &[u8]) -> Result<Vec<u8>, BinaryError> {
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let mut acc = 0u32;
    let mut n = 0u8;
    for &b in body {
        match b {
            b'\r' | b'\n' | b' ' | b'\t' => continue,
            b'=' => break,
            _ => {}
        }
        let v = b64_value(b).ok_or(BinaryError::Invalid("base64"))?;
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        0 => {}
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return Err(BinaryError::Invalid("base64")),
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// RFC 2045 §6.7: `=XX` escapes, `=` at the end of a line is a soft line
/// break, trailing blanks on a line are dropped (rule 3). Hard line breaks
/// are output as CRLF.
fn quoted_printable(body: &[u8]) -> Result<Vec<u8>, BinaryError> {
    let mut out = Vec::with_capacity(body.len());
    // Whether the previous line ended in a hard line break still to output.
    let mut hard_break = false;
    for line in body.split(|&b| b == b'\n') {
        if hard_break {
            out.extend_from_slice(b"\r\n");
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut end = line.len();
        while end > 0 && (line[end - 1] == b' ' || line[end - 1] == b'\t') {
            end -= 1;
        }
        let line = &line[..end];
        hard_break = true;
        let mut j = 0;
        while j < line.len() {
            let b = line[j];
            if b != b'=' {
                out.push(b);
                j += 1;
                continue;
            }
            if j + 1 == line.len() {
                hard_break = false;
                break;
            }
            let hi = line.get(j + 1).copied().and_then(hex);
            let lo = line.get(j + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    j += 3;
                }
                _ => return Err(BinaryError::Invalid("quoted-printable")),
            }
        }
    }
    Ok(out)
}
