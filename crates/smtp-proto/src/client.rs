//! The client's side of the wire: reading replies, EHLO capabilities and
//! dot-stuffing. Used by the outbound queue and the load generator.

use std::fmt;

/// Longest reply line a client accepts (RFC 5321 §4.5.3.1.5 says 512; peers exceed it).
pub const MAX_REPLY_LINE: usize = 8192;
/// Most lines in one multi-line reply a client accepts.
pub const MAX_REPLY_LINES: usize = 200;

/// Parse one reply line (RFC 5321 §4.2): `(code, is_last, text)`.
pub fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let code: u16 = line.get(..3)?.parse().ok()?;
    if !(100..600).contains(&code) {
        return None;
    }
    match line.as_bytes().get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

/// A complete reply as a client received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// Three-digit code.
    pub code: u16,
    /// Text of each line, without code and separator.
    pub lines: Vec<String>,
}

impl ServerReply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    /// 5xx: do not try again.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The RFC 3463 enhanced status code at the start of the first line, if any.
    pub fn enhanced_status(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let word = first.split(' ').next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let ok = matches!(class, "2" | "4" | "5")
            && parts.clone().count() == 2
            && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then_some(word)
    }
}

impl fmt::Display for ServerReply {
    /// `550 5.1.1 text` with the lines of a multi-line reply joined by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for l in &self.lines {
            write!(f, " {}", l.trim())?;
        }
        Ok(())
    }
}

/// Accumulates reply lines until the reply is complete.
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    code: Option<u16>,
    lines: Vec<String>,
}

/// Why a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line that is not `NNN[ -]text`.
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    /// Lines of one reply with different codes.
    #[error("reply lines with different codes")]
    MixedCodes,
    /// More than [`MAX_REPLY_LINES`] lines.
    #[error("reply too long")]
    TooLong,
}

impl ReplyAssembler {
    /// Feed one line; returns the reply once its last line arrived.
    pub fn push(&mut self, line: &str) -> Result<Option<ServerReply>, ReplyError> {
        let (code, last, text) =
            parse_reply_line(line).ok_or_else(|| ReplyError::Malformed(line.chars().take(100).collect()))?;
        if *self.code.get_or_insert(code) != code {
            return Err(ReplyError::MixedCodes);
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooLong);
        }
        self.lines.push(text.to_string());
        if !last {
            return Ok(None);
        }
        self.code = None;
        Ok(Some(ServerReply {
            code,
            lines: std::mem::take(&mut self.lines),
        }))
    }
}

/// What an EHLO reply says the server supports (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870: `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3461.
    pub dsn: bool,
    /// RFC 3030.
    pub chunking: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
    /// RFC 4954 mechanisms, upper-case.
    pub auth: Vec<String>,
}

impl Capabilities {
    /// Read the lines of a 250 EHLO reply (the first is the greeting name).
    pub fn parse(reply: &ServerReply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => caps.size = Some(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "CHUNKING" => caps.chunking = true,
                "STARTTLS" => caps.starttls = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "AUTH" => caps.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
                _ => {}
            }
        }
        caps
    }
}

/// Dot-stuff a message for DATA (RFC 5321 §4.5.2) and append the
/// terminating `.` line; a missing final CRLF is added first.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// RFC 3461 §4 xtext: `+XX` for `+`, `=`, controls, space and non-ASCII.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(lines: &[&str]) -> Result<Option<ServerReply>, ReplyError> {
        let mut a = ReplyAssembler::default();
        let mut last = None;
        for l in lines {
            last = a.push(l)?;
        }
        Ok(last)
    }

    #[test]
    fn reply_lines() {
        assert_eq!(parse_reply_line("250 2.0.0 OK\r\n"), Some((250, true, "2.0.0 OK")));
        assert_eq!(parse_reply_line("250-PIPELINING\r\n"), Some((250, false, "PIPELINING")));
        assert_eq!(parse_reply_line("354\r\n"), Some((354, true, "")));
        assert_eq!(parse_reply_line("25x OK"), None);
        assert_eq!(parse_reply_line("250:OK"), None);
        assert_eq!(parse_reply_line("999 nope"), None);
    }

    #[test]
    fn multi_line_and_capabilities() {
        let r = assemble(&[
            "250-mx.test greets you",
            "250-PIPELINING",
            "250-SIZE 1000",
            "250-8BITMIME",
            "250-auth plain login",
            "250 CHUNKING",
        ])
        .unwrap()
        .unwrap();
        let c = Capabilities::parse(&r);
        assert!(c.pipelining && c.chunking && c.eight_bit_mime);
        assert!(!c.smtputf8 && !c.starttls && !c.dsn);
        assert_eq!(c.size, Some(1000));
        assert_eq!(c.auth, vec!["PLAIN", "LOGIN"]);
        assert_eq!(assemble(&["250-a", "251 b"]), Err(ReplyError::MixedCodes));
        assert!(matches!(assemble(&["hello"]), Err(ReplyError::Malformed(_))));
        assert_eq!(assemble(&["250-a"]), Ok(None));
    }

    #[test]
    fn reply_display_and_status() {
        let r = assemble(&["550-5.1.1 no such", "550 5.1.1 user"]).unwrap().unwrap();
        assert_eq!(r.to_string(), "550 5.1.1 no such 5.1.1 user");
        assert_eq!(r.enhanced_status(), Some("5.1.1"));
        assert!(r.is_permanent());
        let r = assemble(&["421 try later"]).unwrap().unwrap();
        assert_eq!(r.enhanced_status(), None);
        assert!(r.is_transient());
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn xtext_encoding() {
        assert_eq!(xtext("rfc822;a+b=c@x"), "rfc822;a+2Bb+3Dc@x");
        assert_eq!(xtext("é"), "+C3+A9");
    }
}
