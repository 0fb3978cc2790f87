//! Replies: `code SP enhanced-code SP text`, multi-line with `code-`.

use std::fmt::Write;

/// An SMTP reply, RFC 5321 §4.2, with an RFC 3463 enhanced status code
/// (RFC 2034 §3) when one applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code such as `2.1.0`; `None` for greeting/EHLO.
    pub enhanced: Option<&'static str>,
    /// Text lines (at least one).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced code (220 greeting, 250 EHLO lines).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// Positive completion (2yz).
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Wire bytes. CR and LF inside text are replaced so a reply can never
    /// split into extra lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 == n { ' ' } else { '-' };
            let _ = write!(out, "{}{}", self.code, sep);
            if let Some(e) = self.enhanced {
                let _ = write!(out, "{e} ");
            }
            out.extend(text.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }));
            out.push_str("\r\n");
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        assert_eq!(Reply::new(250, "2.1.0", "OK").to_bytes(), b"250 2.1.0 OK\r\n");
        let r = Reply::plain(250, vec!["mx.test".into(), "PIPELINING".into(), "8BITMIME".into()]);
        assert_eq!(r.to_bytes(), b"250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    }

    #[test]
    fn text_cannot_inject_lines() {
        let r = Reply::new(550, "5.1.1", "no such user\r\n250 OK");
        assert_eq!(r.to_bytes(), b"550 5.1.1 no such user  250 OK\r\n");
    }
}
