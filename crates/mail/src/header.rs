//! Header block parsing (RFC 5322 §2.2, §2.2.3 folding) that keeps byte
//! offsets of every field line so sections can be cut from the raw message.

/// One header field as found in the raw message.
#[derive(Debug, Clone)]
pub struct Field<'a> {
    /// Field name without trailing whitespace; a line without a colon is a
    /// field whose name is the whole line and whose value is empty.
    pub name: &'a [u8],
    /// Byte range of the field's lines (continuations and their line
    /// terminators included) in the raw message.
    pub start: usize,
    pub end: usize,
    /// Whether the line had a colon at all.
    pub has_colon: bool,
    /// Offset of the first value byte (after the colon and any leading
    /// blanks) in the raw message.
    pub value_start: usize,
}

impl Field<'_> {
    /// Unfolded value: CR and LF of line terminators deleted, everything else
    /// (including a continuation line's leading blanks) kept, as RFC 5322 §2.2.3
    /// describes unfolding.
    pub fn value(&self, raw: &[u8]) -> Vec<u8> {
        let v = raw.get(self.value_start..self.end).unwrap_or(&[]);
        let mut out = Vec::with_capacity(v.len());
        let mut i = 0;
        while i < v.len() {
            let b = v[i];
            if b == b'\n' {
                i += 1;
                continue;
            }
            // Only a CR that ends a line is part of the terminator.
            if b == b'\r' && v.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(b);
            i += 1;
        }
        out
    }

    /// The value as it stands in the message, folding line breaks
    /// included, without the final line terminator.
    pub fn raw_value<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        trim_eol(raw.get(self.value_start..self.end).unwrap_or(&[]))
    }

    pub fn is(&self, name: &str) -> bool {
        self.has_colon && self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// Parsed header block.
#[derive(Debug, Clone, Default)]
pub struct Header<'a> {
    pub fields: Vec<Field<'a>>,
    /// Offset just past the header, including the empty separator line when
    /// there is one.
    pub end: usize,
    /// Whether the header was ended by an empty line (as opposed to the end
    /// of input or a MIME boundary line).
    pub has_separator: bool,
}

impl<'a> Header<'a> {
    /// Last field with this name (case-insensitive).
    pub fn last(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().rev().find(|f| f.is(name))
    }
}

/// End of the line starting at `pos`: index just past its LF, or the end.
pub fn line_end(raw: &[u8], pos: usize) -> usize {
    match raw.get(pos..).and_then(|r| r.iter().position(|&b| b == b'\n')) {
        Some(i) => pos + i + 1,
        None => raw.len(),
    }
}

/// Parse a header block starting at `start`. `is_boundary` is asked about
/// every line that begins a new field; when it says yes, the header ends
/// before that line (a MIME boundary inside a part's header ends the part).
pub fn parse<'a>(raw: &'a [u8], start: usize, mut is_boundary: impl FnMut(usize) -> bool) -> Header<'a> {
    let mut fields: Vec<Field<'a>> = Vec::new();
    let mut pos = start;
    while pos < raw.len() {
        let end = line_end(raw, pos);
        let line = &raw[pos..end];
        if line == b"\n" || line == b"\r\n" {
            return Header {
                fields,
                end,
                has_separator: true,
            };
        }
        let first = line[0];
        if (first == b' ' || first == b'\t') && !fields.is_empty() {
            if let Some(last) = fields.last_mut() {
                last.end = end;
            }
            pos = end;
            continue;
        }
        if is_boundary(pos) {
            return Header {
                fields,
                end: pos,
                has_separator: false,
            };
        }
        let content = trim_eol(line);
        match content.iter().position(|&b| b == b':') {
            Some(colon) => {
                let name = trim_end_blank(&content[..colon]);
                let mut v = pos + colon + 1;
                let content_end = pos + content.len();
                while v < content_end && (raw[v] == b' ' || raw[v] == b'\t') {
                    v += 1;
                }
                fields.push(Field {
                    name,
                    start: pos,
                    end,
                    has_colon: true,
                    value_start: v,
                });
            }
            None => fields.push(Field {
                name: content,
                start: pos,
                end,
                has_colon: false,
                value_start: pos + content.len(),
            }),
        }
        pos = end;
    }
    Header {
        fields,
        end: raw.len().max(start),
        has_separator: false,
    }
}

pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_end_blank(s: &[u8]) -> &[u8] {
    let mut e = s.len();
    while e > 0 && (s[e - 1] == b' ' || s[e - 1] == b'\t') {
        e -= 1;
    }
    &s[..e]
}
