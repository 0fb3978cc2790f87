//! MIME structure parser (RFC 2045, RFC 2046 §5.1 multipart, §5.2.1
//! message/rfc822): one pass over the raw bytes producing the [`Part`] tree
//! with byte offsets.
//!
//! Boundary handling follows what Dovecot does with broken input, since the
//! sizes and line counts it reports depend on it:
//! - a line is a boundary line when it starts with `--` followed by the
//!   boundary of the current multipart *or of any enclosing one* (RFC 2046
//!   §5.1.2: an outer boundary ends all inner parts); only the prefix is
//!   compared, trailing text on the line is ignored;
//! - the line break before a boundary line belongs to the boundary
//!   (RFC 2046 §5.1.1), never to the part before it;
//! - a boundary line in the middle of a part's header ends that header.

use crate::header::{self, Header};
use crate::rfc822;
use serde::{Deserialize, Serialize};

/// Nesting limit: deeper parts are not parsed further and are treated as
/// opaque leaves (Dovecot's default is 100 nested MIME parts as well).
pub const MAX_DEPTH: usize = 100;
/// Longest boundary compared (RFC 2046 §5.1.1 allows 1 to 70 characters).
const MAX_BOUNDARY: usize = 70;
/// Total number of parts parsed per message; further ones stay opaque.
pub const MAX_PARTS: usize = 10_000;

/// One node of the MIME tree; every offset indexes the raw message bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Part {
    /// Start of the part's header (for the root: 0).
    pub header_start: usize,
    /// End of the header including the separating empty line, i.e. start of
    /// the body.
    pub body_start: usize,
    /// End of the body (exclusive); the line break before a boundary line
    /// is not part of the body.
    pub body_end: usize,
    /// Content-Type type/subtype as written (case kept); `text`/`plain` when
    /// absent, empty strings when the header is unusable.
    pub content_type: String,
    pub content_subtype: String,
    /// Declared Content-Transfer-Encoding, lower-cased first token, used for
    /// decoding (`BINARY`); `7bit` when absent.
    pub encoding: String,
    /// Number of lines (LF characters) in the body.
    pub lines: u64,
    /// Set when the part is a multipart container (possibly without any
    /// children when no boundary was found).
    pub multipart: bool,
    /// Children of a multipart, in order.
    pub children: Vec<Part>,
    /// The parsed content of a message/rfc822 part (see [`Part::embedded`]).
    pub message: Option<Box<Part>>,
    /// For the root of a message (top level or embedded): true when the
    /// header has neither MIME-Version nor Content-Type, so Content-* headers
    /// do not apply.
    pub mime_ignored: bool,
}

impl Part {
    pub fn header_len(&self) -> usize {
        self.body_start - self.header_start
    }

    pub fn body_len(&self) -> usize {
        self.body_end - self.body_start
    }

    /// The embedded message of a message/rfc822 part, when its content is
    /// not transfer-encoded (an encoded one is opaque: RFC 2046 §5.2.1 only
    /// allows identity encodings).
    pub fn embedded(&self) -> Option<&Part> {
        match self.encoding.as_str() {
            "7bit" | "8bit" | "binary" => self.message.as_deref(),
            _ => None,
        }
    }

    pub fn is_type(&self, t: &str, sub: &str) -> bool {
        self.content_type.eq_ignore_ascii_case(t) && self.content_subtype.eq_ignore_ascii_case(sub)
    }
}

/// How a part (or a multipart's epilogue) ended.
#[derive(Clone, Copy)]
enum End {
    Eof,
    /// A boundary line of the multipart at `level` of the boundary stack,
    /// starting at `line`. `floor` is the lowest offset the ending part may
    /// be cut back to when the line break before `line` is given to the
    /// boundary: a line break that ends a closing boundary line or a header
    /// line is never given away.
    Boundary {
        level: usize,
        line: usize,
        last: bool,
        floor: usize,
    },
}

struct Parser<'a> {
    raw: &'a [u8],
    bounds: Vec<Vec<u8>>,
    parts: usize,
}

/// Parse a whole message.
pub fn parse(raw: &[u8]) -> Part {
    let mut p = Parser {
        raw,
        bounds: Vec::new(),
        parts: 0,
    };
    p.part(0, 0, true, false).0
}

/// Lower-cased first token of a Content-Transfer-Encoding value, the way a
/// decoder reads it (`quoted-printable;` is quoted-printable).
pub fn cte_token(value: &[u8]) -> String {
    let mut lx = rfc822::Lexer::new(value);
    lx.skip_cfws();
    let mut t = Vec::new();
    let _ = lx.token(&mut t);
    String::from_utf8_lossy(&t).to_ascii_lowercase()
}

impl<'a> Parser<'a> {
    /// Does a boundary line of a level below `max_level` start at `pos`?
    /// Innermost boundary first.
    fn boundary_below(&self, pos: usize, max_level: usize) -> Option<(usize, bool)> {
        let rest = self.raw.get(pos..)?;
        let rest = rest.strip_prefix(b"--")?;
        for level in (0..max_level.min(self.bounds.len())).rev() {
            let b = &self.bounds[level];
            if let Some(after) = rest.strip_prefix(b.as_slice()) {
                return Some((level, after.starts_with(b"--")));
            }
        }
        None
    }

    /// Scan lines from `start` until a boundary line of a level below
    /// `max_level` or the end of input. `floor`: see [`End::Boundary`].
    fn scan(&self, start: usize, max_level: usize, floor: usize) -> End {
        let raw = self.raw;
        let mut pos = start;
        while pos < raw.len() {
            if raw[pos] == b'-' {
                if let Some((level, last)) = self.boundary_below(pos, max_level) {
                    return End::Boundary {
                        level,
                        line: pos,
                        last,
                        floor,
                    };
                }
            }
            pos = header::line_end(raw, pos);
        }
        End::Eof
    }

    /// Set the part's end from how it ended: the line break before a
    /// boundary line is the boundary's (RFC 2046 §5.1.1), even when it is
    /// the part's header/body separator (then the header loses it).
    /// Does a boundary line of any open multipart start at `pos`?
    fn boundary_at(&self, pos: usize) -> Option<(usize, bool)> {
        self.boundary_below(pos, self.bounds.len())
    }

    fn finish(&self, part: &mut Part, end: End) {
        let cut = match end {
            End::Eof => self.raw.len(),
            End::Boundary { line, floor, .. } => {
                let floor = floor.max(part.header_start);
                let mut e = line;
                if e > floor && self.raw[e - 1] == b'\n' {
                    e -= 1;
                    if e > floor && self.raw[e - 1] == b'\r' {
                        e -= 1;
                    }
                }
                e
            }
        };
        part.body_start = part.body_start.min(cut);
        part.body_end = cut.max(part.body_start);
        part.lines = count_lf(&self.raw[part.body_start..part.body_end]);
    }

    fn part(&mut self, start: usize, depth: usize, is_root: bool, digest: bool) -> (Part, End) {
        self.parts += 1;
        let raw = self.raw;
        let hdr: Header<'_> = if self.bounds.is_empty() {
            header::parse(raw, start, |_| false)
        } else {
            header::parse(raw, start, |pos| raw[pos] == b'-' && self.boundary_at(pos).is_some())
        };
        let mut part = Part {
            header_start: start,
            body_start: hdr.end,
            body_end: hdr.end,
            encoding: "7bit".into(),
            ..Part::default()
        };
        let ctype = hdr.fields.iter().find(|f| f.is("Content-Type"));
        part.mime_ignored = is_root && ctype.is_none() && !hdr.fields.iter().any(|f| f.is("MIME-Version"));
        if let Some(f) = hdr.fields.iter().find(|f| f.is("Content-Transfer-Encoding")) {
            part.encoding = cte_token(&f.value(raw));
        }
        let mut boundary = None;
        match ctype {
            Some(f) => {
                let t = rfc822::content_type(&f.value(raw));
                part.content_type = String::from_utf8_lossy(&t.main).into_owned();
                part.content_subtype = String::from_utf8_lossy(t.sub.as_deref().unwrap_or(&[])).into_owned();
                boundary = t.params.and_then(|ps| {
                    ps.into_iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(b"boundary"))
                        .map(|(_, v)| v)
                });
            }
            None if digest => {
                part.content_type = "message".into();
                part.content_subtype = "rfc822".into();
            }
            None => {
                part.content_type = "text".into();
                part.content_subtype = "plain".into();
            }
        }
        part.multipart = part.content_type.eq_ignore_ascii_case("multipart");

        // A boundary line inside the header ended the part already; the
        // header keeps its last line break.
        if !hdr.has_separator && hdr.end < raw.len() {
            if let Some((level, last)) = self.boundary_at(hdr.end) {
                let end = End::Boundary {
                    level,
                    line: hdr.end,
                    last,
                    floor: hdr.end,
                };
                self.finish(&mut part, end);
                return (part, end);
            }
        }

        let nested_ok = depth < MAX_DEPTH && self.parts < MAX_PARTS;
        let end = if part.multipart && nested_ok {
            match boundary.filter(|b| !b.is_empty()) {
                Some(b) => self.multipart(&mut part, b, depth),
                None => self.scan(part.body_start, self.bounds.len(), 0),
            }
        } else if part.is_type("message", "rfc822") && nested_ok {
            // Parsed whatever the transfer encoding: where the part ends
            // depends on it (an encoded body reads as one broken header).
            // Only [`Part::embedded`] decides whether it is shown.
            let (msg, end) = self.part(part.body_start, depth + 1, true, false);
            part.message = Some(Box::new(msg));
            end
        } else {
            part.multipart = false;
            self.scan(part.body_start, self.bounds.len(), 0)
        };
        self.finish(&mut part, end);
        (part, end)
    }

    /// Children of a multipart with boundary `b` (RFC 2046 §5.1.1).
    fn multipart(&mut self, part: &mut Part, mut b: Vec<u8>, depth: usize) -> End {
        let my = self.bounds.len();
        // Only the first 70 characters (RFC 2046 §5.1.1 maximum) of a
        // boundary are compared, as Dovecot does with overlong ones.
        b.truncate(MAX_BOUNDARY);
        self.bounds.push(b);
        // Preamble: up to the first boundary line of this or an outer part.
        // A multipart never gives its header's blank line to a boundary.
        let mut end = self.scan(part.body_start, my + 1, part.body_start);
        let digest = part.is_type("multipart", "digest");
        while let End::Boundary { level, line, last, .. } = end {
            if level != my {
                break;
            }
            let next = header::line_end(self.raw, line);
            if last || self.parts >= MAX_PARTS {
                // Epilogue (or too many parts): only an outer boundary
                // ends it.
                // The closing boundary line keeps its line break.
                end = self.scan(next, my, next);
                break;
            }
            let (child, child_end) = self.part(next, depth + 1, false, digest);
            part.children.push(child);
            end = child_end;
        }
        self.bounds.truncate(my);
        end
    }
}

fn count_lf(s: &[u8]) -> u64 {
    s.iter().filter(|&&b| b == b'\n').count() as u64
}
