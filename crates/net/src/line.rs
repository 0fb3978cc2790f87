//! Bounded line reader for line-based protocols (SMTP, IMAP, POP3).
//!
//! Memory is bounded by the caller's `max` plus one read chunk: an overlong
//! line is skipped up to its terminator rather than buffered. Timeouts are the
//! caller's business (wrap calls in `tokio::time::timeout`); after a timeout
//! the reader may have consumed part of a line, so the connection should be
//! closed rather than reused.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes requested from the underlying stream per read.
pub const READ_CHUNK: usize = 8 * 1024;

/// How a line was terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// CR LF, the only terminator the mail RFCs allow (RFC 5321 §2.3.8).
    CrLf,
    /// A LF without a preceding CR. SMTP must treat these with suspicion:
    /// accepting them in DATA enables SMTP smuggling.
    BareLf,
}

/// One line, without its terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Line content; any CR other than the one in a final CRLF is kept.
    pub content: Vec<u8>,
    pub ending: LineEnding,
}

impl Line {
    pub fn is_crlf(&self) -> bool {
        self.ending == LineEnding::CrLf
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.content
    }

    /// The content as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.content).ok()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.content
    }

    /// Length on the wire, terminator included.
    pub fn wire_len(&self) -> usize {
        self.content.len()
            + match self.ending {
                LineEnding::CrLf => 2,
                LineEnding::BareLf => 1,
            }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line (terminator included) exceeded the limit. It has been
    /// consumed up to and including its LF; the next read starts afresh.
    #[error("line too long ({len} bytes including terminator)")]
    TooLong { len: usize },
    /// The peer closed the connection. An unterminated trailing fragment, if
    /// any, is discarded.
    #[error("connection closed by peer")]
    Eof,
    #[error("read error: {0}")]
    Io(#[from] io::Error),
}

/// Buffered reader splitting a byte stream into LF-terminated lines.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    /// Unconsumed data is `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes the next read may take. Starts small and doubles while reads
    /// fill it, so an idle connection holds a few hundred bytes, not a full
    /// chunk (what lets a server keep tens of thousands of IDLE clients).
    next_read: usize,
}

/// First read size of an empty buffer.
const MIN_READ: usize = 512;

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            pos: 0,
            next_read: MIN_READ,
        }
    }

    /// Bytes received but not yet returned. Non-zero right after a STARTTLS
    /// command means the client pipelined plaintext past it (RFC 3207 §4.2).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Give the stream back, dropping buffered bytes (see [`Self::buffered`]).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The stream, e.g. to write replies. Reading from it directly bypasses
    /// the buffer.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Wait until the peer sends something (or closes), keeping it
    /// buffered: the number of bytes that arrived, 0 at end of stream.
    /// Cancel-safe (an SMTP server's early-talker test runs it under a
    /// timeout).
    pub async fn wait_for_data(&mut self) -> io::Result<usize> {
        if self.buffered() > 0 {
            return Ok(self.buffered());
        }
        self.fill().await
    }

    /// Read one line of at most `max` bytes including its terminator.
    pub async fn read_line(&mut self, max: usize) -> Result<Line, LineError> {
        let mut scanned = 0;
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(i) = pending[scanned..].iter().position(|&b| b == b'\n') {
                let len = scanned + i + 1;
                let start = self.pos;
                self.pos += len;
                if len > max {
                    self.compact();
                    return Err(LineError::TooLong { len });
                }
                let mut content = self.buf[start..start + len - 1].to_vec();
                let ending = if content.last() == Some(&b'\r') {
                    content.pop();
                    LineEnding::CrLf
                } else {
                    LineEnding::BareLf
                };
                self.compact();
                return Ok(Line { content, ending });
            }
            scanned = pending.len();
            if scanned >= max {
                // Even if the next byte is the LF, the line is over the limit.
                return self.skip_rest_of_line().await;
            }
            if self.fill().await? == 0 {
                self.buf.clear();
                self.pos = 0;
                return Err(LineError::Eof);
            }
        }
    }

    /// Append exactly `n` bytes to `out` (IMAP literals, BDAT chunks), taking
    /// buffered bytes first. Fails with [`LineError::Eof`] if the stream ends
    /// early; `out` then holds what was received.
    pub async fn read_exact_into(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), LineError> {
        let from_buf = n.min(self.buffered());
        out.extend_from_slice(&self.buf[self.pos..self.pos + from_buf]);
        self.pos += from_buf;
        self.compact();
        let mut remaining = n - from_buf;
        while remaining > 0 {
            // Straight into `out`; read_buf is cancel-safe (bytes land only when read).
            out.reserve(remaining.min(READ_CHUNK * 8));
            let got = (&mut self.inner).take(remaining as u64).read_buf(out).await?;
            if got == 0 {
                return Err(LineError::Eof);
            }
            remaining -= got;
        }
        Ok(())
    }

    /// Discard the rest of an overlong line, through its LF.
    async fn skip_rest_of_line(&mut self) -> Result<Line, LineError> {
        let mut len = self.buffered();
        self.buf.clear();
        self.pos = 0;
        loop {
            if self.fill().await? == 0 {
                return Err(LineError::Eof);
            }
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    len += i + 1;
                    self.pos = i + 1;
                    self.compact();
                    return Err(LineError::TooLong { len });
                }
                None => {
                    len += self.buf.len();
                    self.buf.clear();
                }
            }
        }
    }

    /// One read from the stream into the buffer; returns bytes read (0 = EOF).
    /// `read_buf` is cancel-safe: bytes are appended only by a completed read.
    async fn fill(&mut self) -> io::Result<usize> {
        let want = self.next_read;
        self.buf.reserve(want);
        let got = (&mut self.inner).take(want as u64).read_buf(&mut self.buf).await?;
        self.next_read = if got == want {
            (want * 2).min(READ_CHUNK * 8)
        } else {
            (want / 2).max(MIN_READ)
        };
        Ok(got)
    }

    /// Drop consumed bytes once they dominate the buffer, keeping it small
    /// without shifting data on every line.
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            // Give a large buffer back once drained: idle connections stay small.
            if self.buf.capacity() > READ_CHUNK {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.pos = 0;
        } else if self.pos >= READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Yields its data a few bytes per read, to exercise buffer boundaries.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let end = (self.pos + self.step)
                .min(self.data.len())
                .min(self.pos + buf.remaining());
            let chunk = self.data[self.pos..end].to_vec();
            buf.put_slice(&chunk);
            self.pos = end;
            Poll::Ready(Ok(()))
        }
    }

    fn trickle(data: &[u8], step: usize) -> LineReader<Trickle> {
        LineReader::new(Trickle {
            data: data.to_vec(),
            pos: 0,
            step,
        })
    }

    #[tokio::test]
    async fn crlf_and_bare_lf_are_distinguished() {
        let mut r = LineReader::new(&b"EHLO a\r\nbare\nx\ry\r\n"[..]);
        let l = r.read_line(100).await.unwrap();
        assert_eq!((l.as_bytes(), l.ending), (&b"EHLO a"[..], LineEnding::CrLf));
        let l = r.read_line(100).await.unwrap();
        assert_eq!((l.as_bytes(), l.ending), (&b"bare"[..], LineEnding::BareLf));
        let l = r.read_line(100).await.unwrap();
        assert_eq!(l.as_bytes(), b"x\ry", "inner CR must be kept");
        assert!(l.is_crlf());
        assert!(matches!(r.read_line(100).await, Err(LineError::Eof)));
    }

    #[tokio::test]
    async fn limit_counts_the_terminator() {
        let mut r = LineReader::new(&b"abc\r\nabc\r\n"[..]);
        assert_eq!(r.read_line(5).await.unwrap().wire_len(), 5);
        assert!(matches!(r.read_line(4).await, Err(LineError::TooLong { len: 5 })));
    }

    #[tokio::test]
    async fn overlong_line_is_drained_and_reading_resumes() {
        for step in [1, 3, 7, 64, READ_CHUNK] {
            let mut data = vec![b'x'; 50_000];
            data.extend_from_slice(b"\r\nNOOP\r\n");
            let mut r = trickle(&data, step);
            match r.read_line(512).await {
                Err(LineError::TooLong { len }) => assert_eq!(len, 50_002, "step {step}"),
                other => panic!("step {step}: {other:?}"),
            }
            // Buffer never held the whole line.
            assert!(r.buf.capacity() <= 2 * READ_CHUNK + 512, "step {step}");
            let l = r.read_line(512).await.unwrap();
            assert_eq!(l.as_bytes(), b"NOOP", "step {step}");
        }
    }

    #[tokio::test]
    async fn eof_mid_line_and_mid_drain() {
        let mut r = LineReader::new(&b"partial"[..]);
        assert!(matches!(r.read_line(100).await, Err(LineError::Eof)));
        let mut r = LineReader::new(&b"0123456789"[..]);
        assert!(matches!(r.read_line(4).await, Err(LineError::Eof)));
    }

    #[tokio::test]
    async fn buffered_reports_pipelined_bytes() {
        let mut r = trickle(b"STARTTLS\r\nEHLO evil\r\n", 100);
        let l = r.read_line(100).await.unwrap();
        assert_eq!(l.as_bytes(), b"STARTTLS");
        assert_eq!(r.buffered(), b"EHLO evil\r\n".len());
        let mut r = trickle(b"STARTTLS\r\n", 100);
        r.read_line(100).await.unwrap();
        assert_eq!(r.buffered(), 0);
    }

    #[tokio::test]
    async fn read_exact_uses_buffer_then_stream() {
        let mut r = trickle(b"A1 APPEND {5}\r\nhello world\r\nnext\r\n", 20);
        r.read_line(100).await.unwrap();
        let mut out = b"pre:".to_vec();
        r.read_exact_into(11, &mut out).await.unwrap();
        assert_eq!(out, b"pre:hello world");
        assert_eq!(r.read_line(100).await.unwrap().as_bytes(), b"");
        assert_eq!(r.read_line(100).await.unwrap().as_bytes(), b"next");
        let mut out = Vec::new();
        assert!(matches!(r.read_exact_into(1, &mut out).await, Err(LineError::Eof)));
    }

    #[tokio::test]
    async fn many_lines_across_chunks() {
        let mut data = Vec::new();
        for i in 0..5000 {
            data.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        let mut r = trickle(&data, 997);
        for i in 0..5000 {
            let l = r.read_line(100).await.unwrap();
            assert_eq!(l.as_str(), Some(format!("line {i}").as_str()));
        }
        assert!(matches!(r.read_line(100).await, Err(LineError::Eof)));
    }
}
