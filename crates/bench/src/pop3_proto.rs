//! POP3 client side (RFC 1939): `+OK`/`-ERR` status lines, multi-line
//! responses ended by `.` with dot-unstuffing, and the listings of STAT,
//! LIST and UIDL.

use anyhow::{bail, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::conn::Stream;

/// Longest line accepted from a server (RFC 1939 allows 512 octets; the
/// lines of a message's body may be longer).
pub const MAX_LINE: usize = 1 << 20;

/// A status line: `+OK text` (`ok`) or `-ERR text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub ok: bool,
    pub text: String,
}

/// Read one line, CRLF (or LF) stripped.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let n = (&mut *r).take(MAX_LINE as u64).read_until(b'\n', buf).await?;
    if n == 0 {
        bail!("connection closed");
    }
    if buf.last() != Some(&b'\n') {
        if n >= MAX_LINE {
            bail!("line too long");
        }
        bail!("connection closed in the middle of a line");
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(())
}

/// Read a status line.
pub async fn read_status<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Status> {
    let mut buf = Vec::new();
    read_line(r, &mut buf).await?;
    let line = String::from_utf8_lossy(&buf);
    let (word, text) = line.split_once(' ').unwrap_or((&line, ""));
    let ok = match word {
        "+OK" => true,
        "-ERR" => false,
        _ => bail!(
            "malformed status line: {:?}",
            line.chars().take(200).collect::<String>()
        ),
    };
    Ok(Status {
        ok,
        text: text.to_string(),
    })
}

/// Read the body of a multi-line response, up to the `.` line, undoing the
/// dot-stuffing; every line ends in CRLF in the result. Fails beyond `max`
/// bytes.
pub async fn read_multiline<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        read_line(r, &mut line).await?;
        let data = match line.strip_prefix(b".") {
            Some([]) => return Ok(out),
            Some(rest) => rest,
            None => &line[..],
        };
        if out.len() + data.len() + 2 > max {
            bail!("multi-line response larger than {max} bytes");
        }
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

/// `STAT` text `count size`.
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    let mut w = text.split_ascii_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

/// Lines `n value` of a LIST or UIDL listing.
pub fn parse_listing(data: &[u8]) -> Result<Vec<(u32, String)>> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace();
        let (Some(n), Some(v)) = (w.next().and_then(|n| n.parse().ok()), w.next()) else {
            bail!("malformed listing line {line:?}");
        };
        out.push((n, v.to_string()));
    }
    Ok(out)
}

/// A POP3 connection.
pub struct Client {
    io: Stream,
}

impl Client {
    /// Read the greeting.
    pub async fn greet(mut io: Stream) -> Result<Client> {
        let s = read_status(&mut io).await?;
        if !s.ok {
            bail!("server refused the connection: {}", s.text);
        }
        Ok(Client { io })
    }

    /// Send a command and read its status line.
    pub async fn command(&mut self, line: &str) -> Result<Status> {
        self.io.write_all(format!("{line}\r\n").as_bytes()).await?;
        self.io.flush().await?;
        read_status(&mut self.io).await
    }

    /// Send a command with a multi-line answer; `None` on `-ERR`.
    pub async fn multiline(&mut self, line: &str, max: usize) -> Result<(Status, Option<Vec<u8>>)> {
        let s = self.command(line).await?;
        if !s.ok {
            return Ok((s, None));
        }
        let data = read_multiline(&mut self.io, max).await?;
        Ok((s, Some(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_lines() {
        let mut input: &[u8] = b"+OK ready\r\n-ERR no such message\r\n+OK\r\n* nonsense\r\n";
        assert_eq!(
            read_status(&mut input).await.unwrap(),
            Status {
                ok: true,
                text: "ready".into()
            }
        );
        assert_eq!(
            read_status(&mut input).await.unwrap(),
            Status {
                ok: false,
                text: "no such message".into()
            }
        );
        assert_eq!(
            read_status(&mut input).await.unwrap(),
            Status {
                ok: true,
                text: "".into()
            }
        );
        assert!(read_status(&mut input).await.is_err());
        assert!(read_status(&mut input).await.is_err());
    }

    #[tokio::test]
    async fn multiline_unstuffs() {
        let mut input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n...\r\n.x\r\nend\r\n.\r\n+OK next\r\n";
        let body = read_multiline(&mut input, 1000).await.unwrap();
        assert_eq!(body, b"Subject: x\r\n\r\n.leading dot\r\n..\r\nx\r\nend\r\n");
        // The terminator was consumed, nothing more.
        assert!(read_status(&mut input).await.unwrap().ok);
    }

    #[tokio::test]
    async fn multiline_limits() {
        let mut input: &[u8] = b"line one\r\nline two\r\n";
        assert!(read_multiline(&mut input, 1000).await.is_err(), "no terminator");
        let mut input: &[u8] = b"0123456789\r\n.\r\n";
        assert!(read_multiline(&mut input, 8).await.is_err(), "too large");
        let mut input: &[u8] = b".\r\n";
        assert_eq!(read_multiline(&mut input, 8).await.unwrap(), b"");
    }

    #[test]
    fn listings() {
        assert_eq!(parse_stat("2 320"), Some((2, 320)));
        assert_eq!(parse_stat("2"), None);
        assert_eq!(parse_stat("x 3"), None);
        assert_eq!(
            parse_listing(b"1 120\r\n2 200\r\n").unwrap(),
            vec![(1, "120".to_string()), (2, "200".to_string())]
        );
        assert_eq!(
            parse_listing(b"1 whqtswO00WBw418f9t5JxYwZ\r\n").unwrap()[0].1,
            "whqtswO00WBw418f9t5JxYwZ"
        );
        assert!(parse_listing(b"1\r\n").is_err());
        assert!(parse_listing(b"").unwrap().is_empty());
    }
}
