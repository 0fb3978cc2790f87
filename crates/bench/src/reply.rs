//! Reading SMTP replies (RFC 5321 §4.2): `code-text` lines until `code text`.

use anyhow::{bail, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use letterbox_smtp_proto::client::{ReplyAssembler, MAX_REPLY_LINE};

/// Read a complete (possibly multi-line) reply: code and its lines joined by `\n`.
pub async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<(u16, String)> {
    let mut assembler = ReplyAssembler::default();
    loop {
        let mut line = String::new();
        let n = (&mut *r).take(MAX_REPLY_LINE as u64).read_line(&mut line).await?;
        if n == 0 {
            bail!("connection closed");
        }
        if !line.ends_with('\n') {
            bail!("reply line too long or cut off");
        }
        if let Some(reply) = assembler.push(&line)? {
            return Ok((reply.code, reply.lines.join("\n")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use letterbox_smtp_proto::client::parse_reply_line as parse_line;

    #[test]
    fn lines() {
        assert_eq!(parse_line("250 2.0.0 OK\r\n"), Some((250, true, "2.0.0 OK")));
        assert_eq!(parse_line("250-PIPELINING\r\n"), Some((250, false, "PIPELINING")));
        assert_eq!(parse_line("354\r\n"), Some((354, true, "")));
        assert_eq!(parse_line("25x OK"), None);
        assert_eq!(parse_line("250:OK"), None);
        assert_eq!(parse_line("999 nope"), None);
    }

    #[tokio::test]
    async fn multi_line_reply() {
        let mut input: &[u8] = b"250-mx.test\r\n250-SIZE 10\r\n250 HELP\r\n220 next\r\n";
        let (code, text) = read_reply(&mut input).await.unwrap();
        assert_eq!(code, 250);
        assert_eq!(text, "mx.test\nSIZE 10\nHELP");
        assert_eq!(read_reply(&mut input).await.unwrap().0, 220);
        assert!(read_reply(&mut input).await.is_err());
    }
}
