//! `BODY[section]` resolution (RFC 9051 §6.4.5, RFC 3501 §6.4.5) over the
//! stored part tree: a slice of the raw message, no re-parsing.

use crate::header;
use crate::parse::Part;
use crate::MessageInfo;

/// What of the addressed part is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    /// The part's content (or the whole message for the empty path).
    Full,
    /// RFC 5322 header of the message (or of a message/rfc822 part).
    Header,
    /// Only the named header fields.
    HeaderFields(Vec<String>),
    /// All header fields but the named ones.
    HeaderFieldsNot(Vec<String>),
    /// Body of the message (or of a message/rfc822 part), without header.
    Text,
    /// MIME header of a part (`n.MIME`).
    Mime,
}

/// A parsed section specifier: part path plus what to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSpec {
    pub part: Vec<u32>,
    pub kind: SectionKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionSpecError {
    #[error("invalid part number in section")]
    BadPartNumber,
    #[error("unknown section text {0:?}")]
    UnknownText(String),
    #[error("malformed header field list")]
    BadFieldList,
    #[error("MIME is only valid after a part number")]
    MimeWithoutPart,
}

impl SectionSpec {
    /// Parse the text between `[` and `]` of a FETCH item, e.g. `1.2.MIME`
    /// or `HEADER.FIELDS (From Subject)` (RFC 9051 §9 `section-spec`).
    pub fn parse(s: &str) -> Result<Self, SectionSpecError> {
        let mut part = Vec::new();
        let mut rest = s.trim();
        loop {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                break;
            }
            let n: u32 = rest[..digits].parse().map_err(|_| SectionSpecError::BadPartNumber)?;
            if n == 0 {
                return Err(SectionSpecError::BadPartNumber);
            }
            part.push(n);
            rest = &rest[digits..];
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None if rest.is_empty() => break,
                None => return Err(SectionSpecError::BadPartNumber),
            }
            if rest.is_empty() {
                return Err(SectionSpecError::BadPartNumber);
            }
        }
        let upper = rest.to_ascii_uppercase();
        let kind = if upper.is_empty() {
            SectionKind::Full
        } else if upper == "HEADER" {
            SectionKind::Header
        } else if upper == "TEXT" {
            SectionKind::Text
        } else if upper == "MIME" {
            if part.is_empty() {
                return Err(SectionSpecError::MimeWithoutPart);
            }
            SectionKind::Mime
        } else if let Some(list) = upper.strip_prefix("HEADER.FIELDS.NOT") {
            SectionKind::HeaderFieldsNot(field_list(&rest[rest.len() - list.len()..])?)
        } else if let Some(list) = upper.strip_prefix("HEADER.FIELDS") {
            SectionKind::HeaderFields(field_list(&rest[rest.len() - list.len()..])?)
        } else {
            return Err(SectionSpecError::UnknownText(rest.to_string()));
        };
        Ok(SectionSpec { part, kind })
    }
}

/// ` (A B "C")`: header names, atoms or quoted strings (RFC 9051 §9
/// `header-list`).
fn field_list(s: &str) -> Result<Vec<String>, SectionSpecError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or(SectionSpecError::BadFieldList)?;
    let mut out = Vec::new();
    for w in inner.split_ascii_whitespace() {
        let w = match w.strip_prefix('"') {
            Some(q) => q.strip_suffix('"').ok_or(SectionSpecError::BadFieldList)?,
            None => w,
        };
        if w.is_empty() {
            return Err(SectionSpecError::BadFieldList);
        }
        out.push(w.to_string());
    }
    if out.is_empty() {
        return Err(SectionSpecError::BadFieldList);
    }
    Ok(out)
}

/// What a part path points at.
pub(crate) enum Target<'p> {
    Part(&'p Part),
    /// The empty text part shown for a multipart without parts.
    Empty,
}

/// Follow a part path (RFC 9051 §6.4.5): multipart children are numbered
/// from 1; part 1 of a non-multipart message is its body; the parts of a
/// message/rfc822 part are those of the embedded message.
pub(crate) fn resolve<'p>(root: &'p Part, path: &[u32]) -> Option<Target<'p>> {
    let mut cur = root;
    // True while `cur` is a message (root or embedded) whose body is about
    // to be numbered; false once `cur` is a part inside one.
    let mut at_message = true;
    for (i, &n) in path.iter().enumerate() {
        let idx = usize::try_from(n).ok()?.checked_sub(1)?;
        if !at_message && !cur.multipart {
            // Only a message/rfc822 part has numbered parts below it.
            cur = cur.embedded()?;
        }
        if cur.multipart {
            if cur.children.is_empty() {
                return (idx == 0 && i + 1 == path.len()).then_some(Target::Empty);
            }
            cur = cur.children.get(idx)?;
        } else if idx != 0 {
            return None;
        }
        at_message = false;
    }
    Some(Target::Part(cur))
}

/// Resolve a section to the bytes IMAP returns for it. `None` when the
/// section does not exist (e.g. part 3 of a two-part message, or
/// `1.HEADER` when part 1 is not a message/rfc822).
pub fn section(raw: &[u8], info: &MessageInfo, spec: &SectionSpec) -> Option<Vec<u8>> {
    let root = &info.root;
    let slice = |a: usize, b: usize| raw.get(a..b).map(<[u8]>::to_vec);
    if spec.part.is_empty() {
        return match &spec.kind {
            SectionKind::Full => Some(raw.to_vec()),
            SectionKind::Mime => None,
            kind => message_section(raw, root, kind),
        };
    }
    let target = resolve(root, &spec.part)?;
    let part = match target {
        Target::Empty => return matches!(spec.kind, SectionKind::Full | SectionKind::Mime).then(Vec::new),
        Target::Part(p) => p,
    };
    match &spec.kind {
        SectionKind::Full => slice(part.body_start, part.body_end),
        SectionKind::Mime => slice(part.header_start, part.body_start),
        kind => {
            // HEADER/TEXT/HEADER.FIELDS after a part number address the
            // message inside a message/rfc822 part only.
            let m = part.embedded()?;
            if !part.is_type("message", "rfc822") {
                return None;
            }
            message_section(raw, m, kind)
        }
    }
}

/// HEADER, TEXT and HEADER.FIELDS(.NOT) of a message (root or embedded).
fn message_section(raw: &[u8], msg: &Part, kind: &SectionKind) -> Option<Vec<u8>> {
    match kind {
        SectionKind::Header => raw.get(msg.header_start..msg.body_start).map(<[u8]>::to_vec),
        SectionKind::Text => raw.get(msg.body_start..msg.body_end).map(<[u8]>::to_vec),
        SectionKind::HeaderFields(names) => Some(header_fields(raw, msg, names, false)),
        SectionKind::HeaderFieldsNot(names) => Some(header_fields(raw, msg, names, true)),
        SectionKind::Full | SectionKind::Mime => None,
    }
}

/// The header lines (with their folding, in message order) whose names
/// match (or, with `not`, do not match) the list case-insensitively,
/// followed by the empty line (RFC 9051 §6.4.5).
fn header_fields(raw: &[u8], msg: &Part, names: &[String], not: bool) -> Vec<u8> {
    let head = raw.get(..msg.body_start).unwrap_or(raw);
    let hdr = header::parse(head, msg.header_start, |_| false);
    let mut out = Vec::new();
    for f in &hdr.fields {
        let hit = f.has_colon && names.iter().any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()));
        if hit != not {
            out.extend_from_slice(&raw[f.start..f.end]);
        }
    }
    // The blank line ends the result even when the header had none.
    out.extend_from_slice(b"\r\n");
    out
}
