//! The IMAP wire format, without I/O: command parsing ([`parse_command`]),
//! literal markers for the framing layer ([`literal_marker`]) and response
//! encoding.

mod command;
pub mod mutf7;
mod parser;
pub mod response;
mod search;
#[cfg(test)]
mod tests;

pub use command::{
    parse_command, parse_tag, AppendMessage, Command, FetchAtt, ListReturn, ListSelect, Qresync, SortCriterion,
    SortKey, StatusItem, ThreadAlgorithm,
};
pub(crate) use parser::{rfc5322_day, MONTHS};
pub use parser::{SeqNum, SeqSet};
pub use search::{SearchKey, SearchReturn};

/// Why a command could not be parsed; the text goes into `BAD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command {0}")]
    Unknown(String),
    #[error("syntax error: {0}")]
    Syntax(String),
    /// RFC 6154 §3: `NO [USEATTR]`.
    #[error("unsupported special-use attribute")]
    UseAttr,
}

/// A literal announced at the end of a line (RFC 9051 §4.3, RFC 7888).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralMarker {
    pub len: u64,
    /// `{n+}`: the client does not wait for `+` (LITERAL+).
    pub non_sync: bool,
}

/// If `line` ends with `{n}` or `{n+}` (or `~{n}`), the literal it announces.
/// A marker inside a quoted string cannot end a line, so the suffix is enough.
pub fn literal_marker(line: &[u8]) -> Option<LiteralMarker> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let non_sync = digits.last() == Some(&b'+');
    if non_sync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(LiteralMarker { len, non_sync })
}

/// Append an IMAP `string`: quoted when safe, else a literal (RFC 9051 §4.3).
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|&b| (0x20..0x7f).contains(&b));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        push_literal(out, s);
    }
}

/// Append `{n}\r\n` and the bytes.
pub fn push_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Append an `astring`: a bare atom when possible (mailbox names, ID values).
pub fn push_astring(out: &mut Vec<u8>, s: &str) {
    let atom = !s.is_empty()
        && s.bytes()
            .all(|b| b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\'))
        && !s.eq_ignore_ascii_case("NIL");
    if atom {
        out.extend_from_slice(s.as_bytes());
    } else {
        push_string(out, s.as_bytes());
    }
}

/// Append a mailbox name: an atom when it can be, else a quoted string,
/// which may hold UTF-8 (RFC 9051 §9 `quoted`, for IMAP4rev2 names); a
/// literal only for control characters.
pub fn push_mailbox(out: &mut Vec<u8>, name: &str) {
    if name.is_ascii() || name.chars().any(char::is_control) {
        return push_astring(out, name);
    }
    out.push(b'"');
    for b in name.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Append `(flag flag ...)`.
pub fn push_flags<S: AsRef<str>>(out: &mut Vec<u8>, flags: &[S]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_ref().as_bytes());
    }
    out.push(b')');
}

/// RFC 9051 §9 `date-time` for INTERNALDATE, in UTC.
pub fn format_date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Inverse of days_from_civil (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let month = MONTHS.get((m - 1) as usize).copied().unwrap_or("Jan");
    format!(
        "\"{d:02}-{month}-{y:04} {:02}:{:02}:{:02} +0000\"",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
