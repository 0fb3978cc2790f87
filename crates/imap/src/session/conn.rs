//! The connection of one session: command framing with literals (RFC 9051
//! §4.3, §7.5; RFC 7888 LITERAL+), idle timeout, shutdown, buffered output
//! and the STARTTLS upgrade (RFC 9051 §6.2.1).

use std::time::Duration;

use letterbox_net::{Line, LineError, LineReader, MaybeTls, Shutdown, TlsAcceptor};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::deflate::ImapStream;
use crate::proto::{literal_marker, parse_tag};
use crate::ImapConfig;

/// Output is written once this much is pending, even mid-pipeline.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Time allowed for the final flush and TLS close_notify.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A complete command, or why none could be read.
pub enum Input {
    /// One command, literals inlined as `{n}\r\n<bytes>`.
    Command(Vec<u8>),
    /// The command was refused during framing; answer with `BAD`/`NO` and
    /// go on. `tag` is known when the first line had one.
    Refused {
        tag: Option<String>,
        text: String,
        toobig: bool,
    },
}

/// Why the session must end while reading. The farewell, if any, is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Closed,
    /// RFC 9051 §5.4 autologout.
    Timeout,
    Shutdown,
}

pub struct Conn {
    reader: LineReader<ImapStream>,
    /// Responses not yet written.
    pub out: Vec<u8>,
    idle_timeout: Duration,
    /// Before authentication: when the connection ends however busy the
    /// client keeps it (commands would otherwise restart the timer).
    deadline: Option<tokio::time::Instant>,
    pub shutdown: Shutdown,
}

impl Conn {
    pub fn new(stream: MaybeTls, idle_timeout: Duration, shutdown: Shutdown) -> Self {
        Conn {
            reader: LineReader::new(ImapStream::Plain(stream)),
            out: Vec::new(),
            idle_timeout,
            deadline: None,
            shutdown,
        }
    }

    /// End the connection `within` from now unless it authenticates.
    pub fn set_deadline(&mut self, within: Duration) {
        self.deadline = Some(tokio::time::Instant::now() + within);
    }

    /// The wait allowed for the next read or write.
    fn limit(&self) -> Duration {
        self.deadline.map_or(self.idle_timeout, |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
                .min(self.idle_timeout)
        })
    }

    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().is_tls()
    }

    /// RFC 4978: from now on DEFLATE both ways (the OK already flushed,
    /// nothing pipelined); false when it already was.
    pub fn start_compress(&mut self) -> bool {
        self.reader.buffered() == 0 && self.reader.get_mut().start_deflate()
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self.reader.get_ref(), ImapStream::Deflate(_))
    }

    /// An idling client: give back what compression holds (see `deflate`).
    pub fn release_idle(&mut self) {
        if let ImapStream::Deflate(d) = self.reader.get_mut() {
            d.release_idle();
        }
    }

    /// Change the inactivity limit (shorter before authentication).
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
        self.deadline = None;
    }

    /// Bytes received that no command has consumed yet.
    pub fn pipelined(&self) -> usize {
        self.reader.buffered()
    }

    /// Queue an untagged response line (`* ` and CRLF added).
    pub fn untagged(&mut self, text: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Queue a tagged status response.
    pub fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        self.out
            .extend_from_slice(format!("{tag} {status} {}\r\n", resp_text(text)).as_bytes());
    }

    /// Write pending output, bounded by the idle timeout.
    pub async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let limit = self.limit();
        let stream = self.reader.get_mut();
        let write = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => {
                // A big FETCH must not leave its buffer behind on an idle connection.
                if self.out.capacity() > 4096 {
                    self.out = Vec::new();
                } else {
                    self.out.clear();
                }
                Ok(())
            }
            Ok(Err(e)) => {
                debug!(error = %e, "write failed");
                Err(End::Closed)
            }
            Err(_) => {
                debug!("write timed out");
                Err(End::Closed)
            }
        }
    }

    /// Wait for the next line (flushing first when the client has nothing
    /// queued), with autologout and shutdown.
    pub async fn read_line(&mut self, max: usize) -> Result<Result<Line, usize>, End> {
        if self.reader.buffered() == 0 || self.out.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        if self.shutdown.is_triggered() {
            return Err(Box::pin(self.farewell(End::Shutdown)).await);
        }
        let read = tokio::time::timeout(self.limit(), self.reader.read_line(max));
        let shutdown = self.shutdown.clone();
        let result = tokio::select! {
            r = read => Some(r),
            () = shutdown.wait() => None,
        };
        match result {
            None => Err(Box::pin(self.farewell(End::Shutdown)).await),
            Some(Ok(Ok(line))) => Ok(Ok(line)),
            Some(Ok(Err(LineError::TooLong { len }))) => Ok(Err(len)),
            Some(Ok(Err(LineError::Eof))) => Err(End::Closed),
            Some(Ok(Err(LineError::Io(e)))) => {
                debug!(error = %e, "read failed");
                Err(End::Closed)
            }
            Some(Err(_)) => Err(Box::pin(self.farewell(End::Timeout)).await),
        }
    }

    /// Read one command with its literals. A synchronising literal gets
    /// `+ Ready` first; one over the limit is refused before the client
    /// sends it. A non-synchronising one over the limit is already on its
    /// way, so the session ends (RFC 7888 §4) instead of buffering it.
    pub async fn read_command(&mut self, cfg: &ImapConfig, authenticated: bool) -> Result<Input, End> {
        let mut buf = Vec::new();
        let mut literals = 0u64;
        loop {
            let line = match self.read_line(cfg.max_line).await? {
                Ok(line) => line,
                Err(len) => {
                    debug!(len, "line too long");
                    return Ok(Input::Refused {
                        tag: parse_tag(&buf),
                        text: format!("line too long (limit {} octets)", cfg.max_line),
                        toobig: false,
                    });
                }
            };
            buf.extend_from_slice(&line.content);
            let Some(marker) = literal_marker(&line.content) else {
                return Ok(Input::Command(buf));
            };
            // Only APPEND carries messages; other literals are small, and
            // before login only what LOGIN needs is taken (RFC 7888 §9).
            let limit = if !authenticated {
                cfg.max_small_literals.min(PREAUTH_LITERALS)
            } else if is_append(&buf) {
                cfg.max_literal
            } else {
                cfg.max_small_literals
            };
            literals = literals.saturating_add(marker.len);
            let too_big = literals > limit || buf.len() as u64 > limit + cfg.max_line as u64;
            if too_big {
                let tag = parse_tag(&buf);
                if marker.non_sync {
                    let t = tag.as_deref().unwrap_or("*");
                    self.tagged(t, "BAD", "[TOOBIG] literal too large");
                    self.untagged("BYE [TOOBIG] literal too large; closing");
                    self.close().await;
                    return Err(End::Closed);
                }
                return Ok(Input::Refused {
                    tag,
                    text: format!("[TOOBIG] literal too large (limit {limit} octets)"),
                    toobig: true,
                });
            }
            if !marker.non_sync {
                self.out.extend_from_slice(b"+ Ready\r\n");
                self.flush().await?;
            }
            buf.extend_from_slice(b"\r\n");
            let n = usize::try_from(marker.len).map_err(|_| End::Closed)?;
            let limit = self.limit();
            let read = self.reader.read_exact_into(n, &mut buf);
            match tokio::time::timeout(limit, read).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(End::Closed),
                Err(_) => return Err(Box::pin(self.farewell(End::Timeout)).await),
            }
        }
    }

    /// Send the last words for an end we decided on, then close.
    pub async fn farewell(&mut self, end: End) -> End {
        match end {
            End::Timeout => self.untagged("BYE autologout; idle for too long"),
            End::Shutdown => self.untagged("BYE [UNAVAILABLE] server shutting down"),
            End::Closed => {}
        }
        self.close().await;
        end
    }

    /// Flush and close the stream (TLS close_notify).
    pub async fn close(&mut self) {
        if self.flush().await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.reader.get_mut().shutdown()).await;
        }
    }

    /// RFC 9051 §6.2.1: the handshake starts after the tagged OK (already
    /// queued). `None` when the connection is gone.
    pub async fn start_tls(mut self, acceptor: &TlsAcceptor) -> Option<Conn> {
        self.flush().await.ok()?;
        let Conn {
            reader,
            out,
            idle_timeout,
            deadline,
            shutdown,
        } = self;
        let ImapStream::Plain(plain) = reader.into_inner() else {
            return None;
        };
        match plain.upgrade(acceptor).await {
            Ok(stream) => Some(Conn {
                reader: LineReader::new(ImapStream::Plain(stream)),
                out,
                idle_timeout,
                deadline,
                shutdown,
            }),
            Err(e) => {
                debug!(error = %e, "STARTTLS handshake failed");
                None
            }
        }
    }
}

/// Is the command being framed an APPEND (second word)?
fn is_append(buf: &[u8]) -> bool {
    let mut words = buf.split(|&b| b == b' ');
    words.next();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

/// Most literal octets in one command before authentication.
pub const PREAUTH_LITERALS: u64 = 8 * 1024;

/// RFC 9051 §9 `text`: no CR, LF or other controls. Error texts may quote
/// what a client sent (a mailbox name from a literal); a line break in it
/// would let the client forge response lines into its own session.
pub fn resp_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod text_tests {
    #[test]
    fn response_texts_carry_no_line_breaks() {
        assert_eq!(super::resp_text("plain text"), "plain text");
        assert_eq!(super::resp_text("no\r\n* OK [ALERT] forged"), "no  * OK [ALERT] forged");
        assert_eq!(super::resp_text("tab\tnul\0"), "tab nul ");
    }
}
