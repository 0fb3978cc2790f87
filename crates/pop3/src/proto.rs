//! The POP3 wire format without I/O: command parsing, status lines,
//! multi-line responses with dot-stuffing (RFC 1939 §3), and TOP's
//! header/body split (RFC 1939 §7).

use std::fmt;

/// A parsed client command. Message numbers are 1-based as on the wire;
/// numbers too large for `u32` saturate (they can never be in range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// RFC 1939 §7 `USER name`.
    User(String),
    /// RFC 1939 §7 `PASS string`; the whole rest of the line, spaces included.
    Pass(String),
    /// RFC 5034 §4 `AUTH [mechanism [initial-response]]`; no argument lists
    /// the mechanisms (the RFC 1734 era probe many clients still send).
    Auth(Option<AuthArgs>),
    /// RFC 2449 §5.
    Capa,
    /// RFC 2595 §4.
    Stls,
    /// RFC 1939 §4 / §6.
    Quit,
    /// RFC 1939 §5.
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    /// RFC 1939 §7 `TOP msg n`.
    Top(u32, u64),
    /// RFC 1939 §7.
    Uidl(Option<u32>),
}

/// Arguments of `AUTH mechanism [initial-response]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthArgs {
    pub mechanism: String,
    /// Still base64 (or `=` for empty), decoded by the SASL layer.
    pub initial: Option<String>,
}

impl Command {
    /// Keyword for logs; never includes arguments (passwords).
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth(_) => "AUTH",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top(..) => "TOP",
            Command::Uidl(_) => "UIDL",
        }
    }
}

/// Why a line is not a valid command; `Display` is the `-ERR` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command")]
    Empty,
    #[error("command is not valid UTF-8")]
    NotUtf8,
    #[error("unknown command")]
    Unknown,
    #[error("syntax: {0}")]
    Syntax(&'static str),
}

/// Parse one command line (terminator already removed). Keywords are
/// case-insensitive (RFC 1939 §3); arguments are separated by spaces.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, r),
        None => (line, ""),
    };
    if keyword.is_empty() {
        return Err(ParseError::Empty);
    }
    let keyword = keyword.to_ascii_uppercase();
    // PASS keeps its argument verbatim: RFC 1939 §7 lets a password contain spaces.
    if keyword == "PASS" {
        return if rest.is_empty() {
            Err(ParseError::Syntax("PASS password"))
        } else {
            Ok(Command::Pass(rest.to_string()))
        };
    }
    let args: Vec<&str> = rest.split_ascii_whitespace().collect();
    let cmd = match (keyword.as_str(), args.as_slice()) {
        ("USER", [name]) => Command::User((*name).to_string()),
        ("USER", _) => return Err(ParseError::Syntax("USER name")),
        ("AUTH", []) => Command::Auth(None),
        ("AUTH", [mech]) | ("AUTH", [mech, _]) => Command::Auth(Some(AuthArgs {
            mechanism: (*mech).to_string(),
            initial: args.get(1).map(|s| (*s).to_string()),
        })),
        ("AUTH", _) => return Err(ParseError::Syntax("AUTH [mechanism [initial-response]]")),
        ("CAPA", []) => Command::Capa,
        ("STLS", []) => Command::Stls,
        ("QUIT", []) => Command::Quit,
        ("STAT", []) => Command::Stat,
        ("NOOP", []) => Command::Noop,
        ("RSET", []) => Command::Rset,
        ("LIST", []) => Command::List(None),
        ("LIST", [n]) => Command::List(Some(msg_number(n)?)),
        ("UIDL", []) => Command::Uidl(None),
        ("UIDL", [n]) => Command::Uidl(Some(msg_number(n)?)),
        ("RETR", [n]) => Command::Retr(msg_number(n)?),
        ("DELE", [n]) => Command::Dele(msg_number(n)?),
        ("TOP", [n, l]) => Command::Top(msg_number(n)?, line_count(l)?),
        ("CAPA" | "STLS" | "QUIT" | "STAT" | "NOOP" | "RSET", _) => {
            return Err(ParseError::Syntax("this command takes no arguments"))
        }
        ("LIST" | "UIDL", _) => return Err(ParseError::Syntax("expected at most one message number")),
        ("RETR" | "DELE", _) => return Err(ParseError::Syntax("expected one message number")),
        ("TOP", _) => return Err(ParseError::Syntax("TOP msg lines")),
        _ => return Err(ParseError::Unknown),
    };
    Ok(cmd)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 1939 §3: message numbers are decimal, starting at 1.
fn msg_number(s: &str) -> Result<u32, ParseError> {
    if !digits(s) {
        return Err(ParseError::Syntax("message numbers are decimal digits"));
    }
    Ok(s.parse::<u32>().unwrap_or(u32::MAX))
}

/// TOP's line count: non-negative; huge values just mean "all".
fn line_count(s: &str) -> Result<u64, ParseError> {
    if !digits(s) {
        return Err(ParseError::Syntax("the line count is decimal digits"));
    }
    Ok(s.parse::<u64>().unwrap_or(u64::MAX))
}

/// Extended response codes: RFC 2449 §8 (IN-USE), RFC 3206 §4 (SYS/TEMP,
/// SYS/PERM) and §5 (AUTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    InUse,
    Auth,
    SysTemp,
    SysPerm,
}

impl fmt::Display for RespCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RespCode::InUse => "[IN-USE]",
            RespCode::Auth => "[AUTH]",
            RespCode::SysTemp => "[SYS/TEMP]",
            RespCode::SysPerm => "[SYS/PERM]",
        })
    }
}

/// Status texts may quote client input; control characters would let a
/// client forge extra response lines, so they become `?`.
fn sanitize(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().map(|c| if c.is_control() { '?' } else { c })
}

/// `+OK text` (RFC 1939 §3).
pub fn ok(out: &mut Vec<u8>, text: &str) {
    status(out, "+OK", None, text);
}

/// `-ERR [CODE] text` (RFC 1939 §3, RFC 2449 §8).
pub fn err(out: &mut Vec<u8>, code: Option<RespCode>, text: &str) {
    status(out, "-ERR", code, text);
}

fn status(out: &mut Vec<u8>, indicator: &str, code: Option<RespCode>, text: &str) {
    let mut line = String::from(indicator);
    if let Some(code) = code {
        line.push(' ');
        line.push_str(&code.to_string());
    }
    if !text.is_empty() {
        line.push(' ');
        line.extend(sanitize(text));
    }
    line.push_str("\r\n");
    out.extend_from_slice(line.as_bytes());
}

/// A SASL challenge line: `+ base64` (RFC 5034 §4; empty challenge is `+ `).
pub fn challenge(out: &mut Vec<u8>, base64: &str) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(base64.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Append lines (without terminators) as a multi-line body, dot-stuffed,
/// plus the terminating `.` line (RFC 1939 §3).
pub fn multiline<I, S>(out: &mut Vec<u8>, lines: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    for line in lines {
        let line = line.as_ref();
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// Append a message as a multi-line body (RETR, TOP): dot-stuffed, every line
/// CRLF-terminated — including a last line without one and bare-LF lines —
/// and the `.` terminator. `body_lines` limits the lines after the header's
/// blank line (TOP, RFC 1939 §7); `None` sends everything. CRLF messages come
/// out byte-exact apart from the stuffing.
pub fn message(out: &mut Vec<u8>, raw: &[u8], body_lines: Option<u64>) {
    out.reserve(raw.len() + raw.len() / 64 + 5);
    let mut in_body = false;
    let mut sent_body_lines = 0u64;
    for line in split_lines(raw) {
        if in_body {
            if body_lines.is_some_and(|max| sent_body_lines >= max) {
                break;
            }
            sent_body_lines += 1;
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        if !in_body && line.is_empty() {
            in_body = true;
        }
    }
    out.extend_from_slice(b".\r\n");
}

/// Lines of a message without their terminators (CRLF or bare LF). A final
/// fragment without terminator is a line; a trailing terminator does not
/// start an extra empty line.
fn split_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let empty = raw.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// RFC 1939 §7 / RFC 2449 §6.8: a unique-id is 1–70 characters in
/// 0x21–0x7E. The store's message id is never reused, so its decimal form is
/// stable for the message's lifetime.
pub fn unique_id(id: i64) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse_command(s.as_bytes())
    }

    #[test]
    fn parses_every_command_case_insensitively() {
        assert_eq!(p("user Bob@x.test"), Ok(Command::User("Bob@x.test".into())));
        assert_eq!(
            p("PASS with spaces  inside"),
            Ok(Command::Pass("with spaces  inside".into()))
        );
        assert_eq!(p("capa"), Ok(Command::Capa));
        assert_eq!(p("StLs"), Ok(Command::Stls));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
        assert_eq!(p("STAT"), Ok(Command::Stat));
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(p("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(p("DELE 2"), Ok(Command::Dele(2)));
        assert_eq!(p("NOOP"), Ok(Command::Noop));
        assert_eq!(p("RSET"), Ok(Command::Rset));
        assert_eq!(p("TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(p("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(p("uidl 7"), Ok(Command::Uidl(Some(7))));
        assert_eq!(p("AUTH"), Ok(Command::Auth(None)));
        assert_eq!(
            p("AUTH plain AGEAYg=="),
            Ok(Command::Auth(Some(AuthArgs {
                mechanism: "plain".into(),
                initial: Some("AGEAYg==".into())
            })))
        );
        assert_eq!(
            p("AUTH LOGIN"),
            Ok(Command::Auth(Some(AuthArgs {
                mechanism: "LOGIN".into(),
                initial: None
            })))
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(p(""), Err(ParseError::Empty));
        assert_eq!(p(" NOOP"), Err(ParseError::Empty));
        assert_eq!(p("APOP a b"), Err(ParseError::Unknown));
        assert_eq!(p("XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse_command(b"USER \xff"), Err(ParseError::NotUtf8));
        assert!(matches!(p("PASS"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("USER"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("USER a b"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("RETR"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("RETR x"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("RETR -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("RETR +1"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("RETR 1 2"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("TOP 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("TOP 1 -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("STAT 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("LIST 1 2"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("AUTH a b c"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn huge_numbers_saturate() {
        assert_eq!(p("RETR 99999999999999"), Ok(Command::Retr(u32::MAX)));
        assert_eq!(p("TOP 1 99999999999999999999999"), Ok(Command::Top(1, u64::MAX)));
        assert_eq!(p("RETR 0"), Ok(Command::Retr(0)));
    }

    #[test]
    fn status_lines_carry_codes_and_no_injected_lines() {
        let mut out = Vec::new();
        ok(&mut out, "2 320");
        err(&mut out, Some(RespCode::InUse), "locked");
        err(&mut out, Some(RespCode::SysTemp), "");
        err(&mut out, None, "bad\r\n+OK fake");
        assert_eq!(
            out,
            b"+OK 2 320\r\n-ERR [IN-USE] locked\r\n-ERR [SYS/TEMP]\r\n-ERR bad??+OK fake\r\n"
        );
        let mut out = Vec::new();
        challenge(&mut out, "");
        challenge(&mut out, "VXNlcm5hbWU6");
        assert_eq!(out, b"+ \r\n+ VXNlcm5hbWU6\r\n");
    }

    #[test]
    fn multiline_stuffs_dots() {
        let mut out = Vec::new();
        multiline(&mut out, ["TOP", ".hidden", "USER"]);
        assert_eq!(out, b"TOP\r\n..hidden\r\nUSER\r\n.\r\n");
        let mut out = Vec::new();
        multiline(&mut out, Vec::<&str>::new());
        assert_eq!(out, b".\r\n");
    }

    #[test]
    fn message_is_byte_exact_with_stuffing() {
        let raw = b"Subject: x\r\n\r\n.line\r\n..two\r\n\xc3\xa9t\xe9\r\n.\r\nend\r\n";
        let mut out = Vec::new();
        message(&mut out, raw, None);
        assert_eq!(
            out,
            b"Subject: x\r\n\r\n..line\r\n...two\r\n\xc3\xa9t\xe9\r\n..\r\nend\r\n.\r\n".to_vec()
        );
    }

    #[test]
    fn message_without_final_crlf_gets_one() {
        let mut out = Vec::new();
        message(&mut out, b"A: b\r\n\r\nno newline", None);
        assert_eq!(out, b"A: b\r\n\r\nno newline\r\n.\r\n");
        let mut out = Vec::new();
        message(&mut out, b"bare\nlf\n", None);
        assert_eq!(out, b"bare\r\nlf\r\n.\r\n");
        let mut out = Vec::new();
        message(&mut out, b"", None);
        assert_eq!(out, b".\r\n");
        let mut out = Vec::new();
        message(&mut out, b"A: b\r\n\r\n", None);
        assert_eq!(out, b"A: b\r\n\r\n.\r\n");
    }

    #[test]
    fn top_sends_headers_blank_line_and_n_body_lines() {
        let raw = b"A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n";
        let mut out = Vec::new();
        message(&mut out, raw, Some(0));
        assert_eq!(out, b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        let mut out = Vec::new();
        message(&mut out, raw, Some(2));
        assert_eq!(out, b"A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n");
        let mut out = Vec::new();
        message(&mut out, raw, Some(u64::MAX));
        assert_eq!(out, b"A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
        // No body separator at all: everything is header.
        let mut out = Vec::new();
        message(&mut out, b"A: 1\r\nB: 2", Some(0));
        assert_eq!(out, b"A: 1\r\nB: 2\r\n.\r\n");
    }

    #[test]
    fn unique_ids_use_allowed_characters() {
        for id in [1, 42, i64::MAX] {
            let u = unique_id(id);
            assert!(!u.is_empty() && u.len() <= 70);
            assert!(u.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
    }
}
