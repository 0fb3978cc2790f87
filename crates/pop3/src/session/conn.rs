//! The connection of one session: bounded line reads with idle timeout and
//! shutdown, buffered writes flushed before waiting for input (RFC 2449 §6.6),
//! and the STLS upgrade (RFC 2595 §4).

use std::time::Duration;

use letterbox_net::{Line, LineError, LineReader, MaybeTls, Shutdown, TlsAcceptor};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::proto::{self, RespCode};

/// Output is written out once this much is pending, even mid-pipeline, so a
/// long pipeline of RETRs does not pile up in memory.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Time allowed for the final flush and TLS close_notify.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Result of waiting for a line.
pub enum Input {
    Line(Line),
    /// The line exceeded the limit; it has been skipped.
    TooLong,
}

/// Why the session must end while waiting for input. The farewell line, if
/// any, has been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Peer closed or the connection failed.
    Closed,
    /// RFC 1939 §3 autologout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

pub struct Conn {
    reader: LineReader<MaybeTls>,
    /// Responses not yet written.
    pub out: Vec<u8>,
    idle_timeout: Duration,
    shutdown: Shutdown,
}

impl Conn {
    pub fn new(stream: MaybeTls, idle_timeout: Duration, shutdown: Shutdown) -> Self {
        Conn {
            reader: LineReader::new(stream),
            out: Vec::with_capacity(4096),
            idle_timeout,
            shutdown,
        }
    }

    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().is_tls()
    }

    /// Bytes the client sent that no command has consumed yet.
    pub fn pipelined(&self) -> usize {
        self.reader.buffered()
    }

    /// Write pending output, bounded by the idle timeout so a client that
    /// stops reading cannot pin the session.
    pub async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = self.reader.get_mut();
        let write = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.idle_timeout, write).await {
            Ok(Ok(())) => {
                self.out.clear();
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

    /// Flush if the client has nothing more queued (or much output is
    /// pending), then wait for the next line of at most `max` bytes.
    pub async fn read(&mut self, max: usize) -> Result<Input, End> {
        if self.reader.buffered() == 0 || self.out.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        if self.shutdown.is_triggered() {
            return Err(self.farewell(End::Shutdown).await);
        }
        let read = tokio::time::timeout(self.idle_timeout, self.reader.read_line(max));
        let shutdown = self.shutdown.clone();
        let result = tokio::select! {
            r = read => Some(r),
            () = shutdown.wait() => None,
        };
        let Some(result) = result else {
            return Err(self.farewell(End::Shutdown).await);
        };
        match result {
            Ok(Ok(line)) => Ok(Input::Line(line)),
            Ok(Err(LineError::TooLong { len })) => {
                debug!(len, "line too long");
                Ok(Input::TooLong)
            }
            Ok(Err(LineError::Eof)) => Err(End::Closed),
            Ok(Err(LineError::Io(e))) => {
                debug!(error = %e, "read failed");
                Err(End::Closed)
            }
            Err(_) => Err(self.farewell(End::Timeout).await),
        }
    }

    /// Send the last words for an end we decided on, then close.
    async fn farewell(&mut self, end: End) -> End {
        match end {
            End::Timeout => proto::err(&mut self.out, None, "autologout: idle for too long"),
            End::Shutdown => proto::err(&mut self.out, Some(RespCode::SysTemp), "server shutting down"),
            End::Closed => {}
        }
        self.close().await;
        end
    }

    /// Flush what is pending and close the stream (TLS close_notify).
    pub async fn close(&mut self) {
        if self.flush().await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.reader.get_mut().shutdown()).await;
        }
    }

    /// RFC 2595 §4: the handshake starts right after the `+OK` (already in
    /// `out`). `None` when the connection is gone.
    pub async fn start_tls(mut self, acceptor: &TlsAcceptor) -> Option<Conn> {
        self.flush().await.ok()?;
        let Conn {
            reader,
            out,
            idle_timeout,
            shutdown,
        } = self;
        match reader.into_inner().upgrade(acceptor).await {
            Ok(stream) => Some(Conn {
                reader: LineReader::new(stream),
                out,
                idle_timeout,
                shutdown,
            }),
            Err(e) => {
                debug!(error = %e, "STLS handshake failed");
                None
            }
        }
    }
}
