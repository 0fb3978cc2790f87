//! RFC 4978 COMPRESS=DEFLATE: the connection's stream, raw DEFLATE (RFC
//! 1951) both ways once the client asked for it.
//!
//! Key decisions: output is compressed as it is written and flushed with a
//! sync flush, so every response batch reaches the client whole however
//! the socket accepts it (partial writes resume from `wbuf`). Memory stays
//! bounded per connection: the read side inflates into a fixed-size buffer
//! (a small compressed input cannot expand without bound), and an idling
//! connection gives its zlib states back ([`Deflated::release_idle`]): a
//! new deflater simply starts fresh blocks (valid, since the last flush
//! ended a block on a byte boundary), and a new inflater gets the last 32
//! KiB of input as its preset dictionary, which is all a DEFLATE
//! back-reference can reach.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use letterbox_net::MaybeTls;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How far back a DEFLATE distance reaches (RFC 1951 §3.2.5).
const WINDOW: usize = 32 * 1024;
/// Compressed bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Inflated bytes produced at a time.
const PLAIN_CHUNK: usize = 16 * 1024;
/// Compressed output held before writes wait for the socket.
const MAX_PENDING: usize = 64 * 1024;
/// What a sync (or full) flush ends with: an empty stored block.
const SYNC_MARK: [u8; 4] = [0, 0, 0xff, 0xff];

/// The session's stream: plain (or TLS), or that with COMPRESS on.
pub enum ImapStream {
    Plain(MaybeTls),
    Deflate(Box<Deflated>),
    /// Only while the stream is being rewrapped.
    Gone,
}

impl ImapStream {
    pub fn is_tls(&self) -> bool {
        match self {
            ImapStream::Plain(s) => s.is_tls(),
            ImapStream::Deflate(d) => d.inner.is_tls(),
            ImapStream::Gone => false,
        }
    }

    /// Turn COMPRESS on; false when it already is.
    pub fn start_deflate(&mut self) -> bool {
        match std::mem::replace(self, ImapStream::Gone) {
            ImapStream::Plain(s) => {
                *self = ImapStream::Deflate(Box::new(Deflated::new(s)));
                true
            }
            other => {
                *self = other;
                false
            }
        }
    }
}

fn gone() -> io::Error {
    io::ErrorKind::NotConnected.into()
}

/// A stream with DEFLATE on both directions.
pub struct Deflated {
    inner: MaybeTls,
    /// `None` while released (idle).
    comp: Option<Box<Compress>>,
    decomp: Option<Box<Decompress>>,
    /// The last [`WINDOW`]..2×[`WINDOW`] inflated bytes: the dictionary a
    /// new inflater needs.
    history: Vec<u8>,
    /// Compressed input read but not inflated yet.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Inflated bytes not handed out yet.
    plain: Vec<u8>,
    ppos: usize,
    /// The inflater may hold output it could not place last time.
    more_out: bool,
    /// The last four compressed bytes consumed.
    last4: [u8; 4],
    /// Compressed output not yet written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Written since the last flush.
    dirty: bool,
}

fn new_decompress(history: &[u8]) -> io::Result<Box<Decompress>> {
    let mut d = Box::new(Decompress::new_with_window_bits(false, 15));
    if !history.is_empty() {
        let dict = &history[history.len().saturating_sub(WINDOW)..];
        d.set_dictionary(dict)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    Ok(d)
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("COMPRESS: {e}"))
}

impl Deflated {
    pub fn new(inner: MaybeTls) -> Self {
        Deflated {
            inner,
            comp: None,
            decomp: None,
            history: Vec::new(),
            rbuf: Vec::new(),
            rpos: 0,
            plain: Vec::new(),
            ppos: 0,
            more_out: false,
            last4: [1; 4],
            wbuf: Vec::new(),
            wpos: 0,
            dirty: false,
        }
    }

    /// Give back the zlib states and buffers while the client idles, if
    /// both directions are at a flush point.
    pub fn release_idle(&mut self) {
        if !self.dirty && self.wpos >= self.wbuf.len() {
            self.comp = None;
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
        let drained = self.rpos >= self.rbuf.len() && self.ppos >= self.plain.len() && !self.more_out;
        if drained && self.last4 == SYNC_MARK {
            self.decomp = None;
            self.rbuf = Vec::new();
            self.rpos = 0;
            self.plain = Vec::new();
            self.ppos = 0;
            let keep = self.history.len().saturating_sub(WINDOW);
            self.history.drain(..keep);
            self.history.shrink_to_fit();
        }
    }

    /// Heap bytes held (for tests of the idle budget).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.history.capacity() + self.rbuf.capacity() + self.plain.capacity() + self.wbuf.capacity()
    }

    /// Inflate what `rbuf` holds into `plain`; true when something came out.
    fn inflate(&mut self) -> io::Result<bool> {
        if self.decomp.is_none() {
            self.decomp = Some(new_decompress(&self.history)?);
        }
        let Some(d) = self.decomp.as_mut() else {
            return Err(invalid("no inflater"));
        };
        self.plain.clear();
        self.ppos = 0;
        self.plain.reserve(PLAIN_CHUNK);
        let input = &self.rbuf[self.rpos..];
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(input, &mut self.plain, FlushDecompress::None)
            .map_err(invalid)?;
        let used = (d.total_in() - in0) as usize;
        let made = (d.total_out() - out0) as usize;
        for &b in &input[..used] {
            self.last4 = [self.last4[1], self.last4[2], self.last4[3], b];
        }
        self.rpos += used;
        if self.rpos >= self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        if status == Status::StreamEnd {
            // A final block: the client ended compression, which RFC 4978
            // has no way back from.
            return Err(invalid("the client ended the DEFLATE stream"));
        }
        // A full output buffer may leave more inside the inflater.
        self.more_out = made > 0 && self.plain.len() == self.plain.capacity();
        self.history.extend_from_slice(&self.plain);
        if self.history.len() > 2 * WINDOW {
            let cut = self.history.len() - WINDOW;
            self.history.drain(..cut);
        }
        Ok(made > 0)
    }

    /// Compress `data` (or, with `flush`, finish the pending block).
    fn deflate(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        let c = self
            .comp
            .get_or_insert_with(|| Box::new(Compress::new_with_window_bits(Compression::new(6), false, 15)));
        let mut rest = data;
        loop {
            self.wbuf.reserve(rest.len() / 2 + 256);
            let (in0, out0) = (c.total_in(), c.total_out());
            c.compress_vec(rest, &mut self.wbuf, flush).map_err(invalid)?;
            rest = &rest[(c.total_in() - in0) as usize..];
            let made = (c.total_out() - out0) as usize;
            // Done when all input is taken and the output had room to spare.
            if rest.is_empty() && self.wbuf.len() < self.wbuf.capacity() {
                return Ok(());
            }
            if made == 0 && rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Write `wbuf` out.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Deflated {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.ppos < me.plain.len() {
                let n = (me.plain.len() - me.ppos).min(buf.remaining());
                buf.put_slice(&me.plain[me.ppos..me.ppos + n]);
                me.ppos += n;
                return Poll::Ready(Ok(()));
            }
            if me.rpos < me.rbuf.len() || me.more_out {
                if me.inflate()? {
                    continue;
                }
                if me.rpos < me.rbuf.len() {
                    // Input the inflater would not take and no output: a
                    // broken stream (it takes partial blocks otherwise).
                    return Poll::Ready(Err(invalid("no progress")));
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Ok(())); // EOF
            }
            me.rbuf.extend_from_slice(rb.filled());
        }
    }
}

impl AsyncWrite for Deflated {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.wbuf.len() - me.wpos >= MAX_PENDING {
            ready!(me.poll_drain(cx))?;
        }
        me.deflate(data, FlushCompress::None)?;
        me.dirty = true;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.dirty {
            me.deflate(&[], FlushCompress::Sync)?;
            me.dirty = false;
        }
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Deflate(d) => Pin::new(&mut **d).poll_read(cx, buf),
            ImapStream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, data),
            ImapStream::Deflate(d) => Pin::new(&mut **d).poll_write(cx, data),
            ImapStream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Deflate(d) => Pin::new(&mut **d).poll_flush(cx),
            ImapStream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Deflate(d) => Pin::new(&mut **d).poll_shutdown(cx),
            ImapStream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Deflated, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (Deflated::new(MaybeTls::Plain(server)), client)
    }

    /// What a client sends: raw DEFLATE with a sync flush.
    fn client_send(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out
    }

    async fn client_read(sock: &mut TcpStream, d: &mut Decompress, want: usize) -> Vec<u8> {
        let mut plain = Vec::with_capacity(want + 1024);
        let mut buf = vec![0u8; 64 * 1024];
        while plain.len() < want {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "server closed");
            let mut input = &buf[..n];
            while !input.is_empty() {
                plain.reserve(64 * 1024);
                let before = d.total_in();
                d.decompress_vec(input, &mut plain, FlushDecompress::Sync).unwrap();
                input = &input[(d.total_in() - before) as usize..];
            }
        }
        plain
    }

    async fn server_read(s: &mut Deflated, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        s.read_exact(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn both_ways_across_an_idle_release() {
        let (mut server, mut client) = pair().await;
        let mut cc = Compress::new(Compression::default(), false);
        let mut cd = Decompress::new(false);
        client.write_all(&client_send(&mut cc, b"a1 NOOP\r\n")).await.unwrap();
        assert_eq!(server_read(&mut server, 9).await, b"a1 NOOP\r\n");
        server.write_all(b"* OK hello hello hello\r\n").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(
            client_read(&mut client, &mut cd, 24).await,
            b"* OK hello hello hello\r\n"
        );
        // Idle: the zlib states go, a few bytes of history stay.
        server.release_idle();
        assert!(server.comp.is_none() && server.decomp.is_none());
        assert!(server.held() < 64, "{}", server.held());
        // The client's next command refers back into what it sent before
        // (same text): the preset dictionary makes that decodable.
        let again = client_send(&mut cc, b"a1 NOOP\r\n");
        let fresh = client_send(&mut Compress::new(Compression::default(), false), b"a1 NOOP\r\n");
        assert!(again.len() < fresh.len(), "expected a back-reference: {again:?}");
        client.write_all(&again).await.unwrap();
        assert_eq!(server_read(&mut server, 9).await, b"a1 NOOP\r\n");
        // A fresh deflater continues the stream the client decodes.
        server.write_all(b"* OK hello again\r\n").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(client_read(&mut client, &mut cd, 18).await, b"* OK hello again\r\n");
    }

    #[tokio::test]
    async fn large_responses_go_out_whole() {
        let (mut server, mut client) = pair().await;
        let text: Vec<u8> = (0..400_000u32)
            .map(|i| b"abcdefghij\r\n"[(i % 12) as usize] ^ (i % 7) as u8)
            .collect();
        let expect = text.clone();
        let writer = tokio::spawn(async move {
            server.write_all(&text).await.unwrap();
            server.flush().await.unwrap();
            server
        });
        let mut cd = Decompress::new(false);
        let got = client_read(&mut client, &mut cd, expect.len()).await;
        assert_eq!(got, expect);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_input_is_an_error_not_a_hang() {
        let (mut server, mut client) = pair().await;
        client.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 16];
        assert!(server.read(&mut buf).await.is_err());
    }
}
