//! `BINARY[section]` (RFC 3516, RFC 9051 §6.4.5): part content with the
//! Content-Transfer-Encoding removed.

use crate::section::{resolve, Target};
use crate::MessageInfo;

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

/// Decoded content of the part at `part` (empty path: the whole message's
/// body when it is a single part).
///
/// 7bit/8bit/binary content is returned as is; multiparts and embedded
/// messages are returned raw (they cannot carry another encoding, RFC 2045
/// §6.4).
pub fn binary(raw: &[u8], info: &MessageInfo, part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    let p = if part.is_empty() {
        &info.root
    } else {
        match resolve(&info.root, part).ok_or(BinaryError::NoSuchPart)? {
            Target::Empty => return Ok(Vec::new()),
            Target::Part(p) => p,
        }
    };
    let body = raw.get(p.body_start..p.body_end).ok_or(BinaryError::NoSuchPart)?;
    if p.multipart || p.embedded().is_some() {
        return Ok(body.to_vec());
    }
    decode(&p.encoding, body)
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
