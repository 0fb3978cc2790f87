//! A lean HTTP/1.1 path for EventSource push streams (RFC 8620 §7.3).
//!
//! hyper keeps a read buffer and a header write buffer of 8 KiB each for
//! as long as a connection lives: for a stream that lasts hours and sends a
//! few hundred bytes now and then, that was most of its memory (10,000
//! streams took 227 MB). So when a connection's first request is
//! `GET /jmap/eventsource` with no body, it is answered here instead: the
//! head is parsed with httparse, the request goes through the same axum
//! router (authentication, CORS, limits and counting are the same code),
//! and the response is written with the chunked transfer coding
//! (RFC 9112 §7.1), after which the connection closes. Every other
//! connection goes to hyper unchanged, with the bytes read so far put back
//! in front of the stream ([`Prefixed`]).

use crate::conn::Peer;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tower::ServiceExt;

/// What a request line must start with to be served here.
const TARGET: &[u8] = b"GET /jmap/eventsource";
/// Longest request head taken on this path (a longer one goes to hyper,
/// which has its own limit and error).
const HEAD_MAX: usize = 8 * 1024;
/// Headers parsed on this path (more: hyper's turn).
const MAX_HEADERS: usize = 48;
/// A client that stops reading is dropped after this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes a client may send after its request before it is dropped (it
/// may not pipeline a second request on a stream that never ends).
const MAX_TRAILING_INPUT: usize = 4096;

/// What the first bytes of a connection turned out to be.
pub(crate) enum First {
    /// A push stream request, parsed.
    Stream(Box<http::Request<Body>>),
    /// Anything else: these bytes were read and belong to hyper.
    Other(Vec<u8>),
    /// The client closed before sending anything.
    Closed,
}

/// Read the start of a connection until it is clear whether it is a push
/// stream request. Stops at the first byte that differs from [`TARGET`],
/// so other requests (and HTTP/2's preface) cost one read.
pub(crate) async fn first_request<S: AsyncRead + Unpin>(stream: &mut S, peer: &Peer) -> io::Result<First> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if buf.len() >= HEAD_MAX {
            return Ok(First::Other(buf));
        }
        let want = (HEAD_MAX - buf.len()).min(1024);
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = stream.read(&mut buf[start..]).await?;
        buf.truncate(start + n);
        if n == 0 {
            return Ok(if buf.is_empty() {
                First::Closed
            } else {
                First::Other(buf)
            });
        }
        let k = buf.len().min(TARGET.len());
        if buf[..k] != TARGET[..k] {
            return Ok(First::Other(buf));
        }
        // `/jmap/eventsource` itself, not a longer path that starts so.
        match buf.get(TARGET.len()) {
            None => continue,
            Some(b' ' | b'?') => {}
            Some(_) => return Ok(First::Other(buf)),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                // Pipelined bytes or a body: leave the framing to hyper.
                if len != buf.len() {
                    return Ok(First::Other(buf));
                }
                return Ok(match build(&req, peer) {
                    Some(r) => First::Stream(Box::new(r)),
                    None => First::Other(buf),
                });
            }
            Ok(httparse::Status::Partial) => continue,
            // hyper answers malformed requests.
            Err(_) => return Ok(First::Other(buf)),
        }
    }
}

/// The parsed head as an `http::Request`, when this path can serve it:
/// HTTP/1.0 or 1.1, no body.
fn build(req: &httparse::Request<'_, '_>, peer: &Peer) -> Option<http::Request<Body>> {
    let version = match req.version? {
        0 => http::Version::HTTP_10,
        1 => http::Version::HTTP_11,
        _ => return None,
    };
    let mut out = http::Request::builder()
        .method(http::Method::GET)
        .uri(req.path?)
        .version(version);
    for h in req.headers.iter() {
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == http::header::TRANSFER_ENCODING
            || (name == http::header::CONTENT_LENGTH && h.value.iter().any(|&b| b != b'0'))
        {
            return None;
        }
        out = out.header(name, http::HeaderValue::from_bytes(h.value).ok()?);
    }
    let mut r = out.body(Body::empty()).ok()?;
    r.extensions_mut().insert(peer.clone());
    Some(r)
}

/// Serve one push stream request through `router`, write the response,
/// and end the connection when the body ends, the client leaves or the
/// server stops.
pub(crate) async fn serve<S, F>(mut stream: S, router: axum::Router, req: http::Request<Body>, stop: F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: std::future::Future<Output = ()>,
{
    let http10 = req.version() == http::Version::HTTP_10;
    let Ok(resp) = router.oneshot(req).await;
    let (parts, body) = resp.into_parts();
    let length = body_length(&parts, &body);
    // HTTP/1.0 has no chunked coding: the body ends with the connection.
    let chunked = length.is_none() && !http10;
    let head = response_head(&parts, length, chunked);
    if write(&mut stream, &head).await.is_err() {
        return;
    }
    let mut body = std::pin::pin!(body);
    let mut stop = std::pin::pin!(stop);
    let mut probe = [0u8; 64];
    let mut trailing = 0usize;
    enum Step {
        Data(Bytes),
        End,
        Gone,
        Input(usize),
    }
    loop {
        let step = tokio::select! {
            frame = body.frame() => match frame {
                None => Step::End,
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => Step::Data(d),
                    // Trailers: not sent on this path.
                    Err(_) => Step::Data(Bytes::new()),
                },
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "push stream body failed");
                    Step::Gone
                }
            },
            r = stream.read(&mut probe) => match r {
                Ok(0) | Err(_) => Step::Gone,
                Ok(n) => Step::Input(n),
            },
            _ = &mut stop => Step::End,
        };
        match step {
            Step::Data(d) if d.is_empty() => {}
            Step::Data(d) => {
                let ok = if chunked {
                    let size = format!("{:x}\r\n", d.len());
                    write_parts(&mut stream, &[size.as_bytes(), &d, b"\r\n"]).await
                } else {
                    write(&mut stream, &d).await
                };
                if ok.is_err() {
                    return;
                }
            }
            Step::Input(n) => {
                trailing += n;
                if trailing > MAX_TRAILING_INPUT {
                    return;
                }
            }
            Step::Gone => return,
            Step::End => {
                if chunked {
                    let _ = write(&mut stream, b"0\r\n\r\n").await;
                }
                let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                return;
            }
        }
    }
}

/// The body's length when it is known in advance (an error answer).
fn body_length(parts: &http::response::Parts, body: &Body) -> Option<u64> {
    use axum::body::HttpBody as _;
    if parts.status == http::StatusCode::NO_CONTENT || parts.status == http::StatusCode::NOT_MODIFIED {
        return Some(0);
    }
    body.size_hint().exact()
}

/// RFC 9112 §4 status line and the response's header fields, with our own
/// framing fields (the connection closes after this response).
fn response_head(parts: &http::response::Parts, length: Option<u64>, chunked: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut field = |name: &[u8], value: &[u8]| {
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    for (name, value) in &parts.headers {
        use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
        if name == CONNECTION || name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name.as_str() == "keep-alive" {
            continue;
        }
        field(name.as_str().as_bytes(), value.as_bytes());
    }
    if !parts.headers.contains_key(http::header::DATE) {
        // RFC 9110 §6.6.1: an origin server with a clock sends Date.
        field(
            b"date",
            httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
        );
    }
    if let Some(n) = length {
        field(b"content-length", n.to_string().as_bytes());
    } else if chunked {
        field(b"transfer-encoding", b"chunked");
    }
    field(b"connection", b"close");
    head.extend_from_slice(b"\r\n");
    head
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    write_parts(stream, &[bytes]).await
}

/// Write and flush, within [`WRITE_TIMEOUT`].
async fn write_parts<S: AsyncWrite + Unpin>(stream: &mut S, parts: &[&[u8]]) -> io::Result<()> {
    let all = async {
        for p in parts {
            stream.write_all(p).await?;
        }
        stream.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, all).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")),
    }
}

/// A stream with bytes already read from it put back in front: what
/// [`first_request`] read, for hyper to read again.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed { prefix, pos: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                // Given back whole: free it for the connection's lifetime.
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer {
            info: letterbox_net::ConnInfo {
                session_id: 1,
                peer: "127.0.0.1:1".parse().unwrap(),
                local: "127.0.0.1:2".parse().unwrap(),
                implicit_tls: false,
            },
            tls: false,
        }
    }

    async fn first(input: &[u8]) -> First {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(input).await.unwrap();
        drop(client);
        first_request(&mut server, &peer()).await.unwrap()
    }

    #[tokio::test]
    async fn only_a_bodiless_push_request_takes_this_path() {
        let req = b"GET /jmap/eventsource?types=*&ping=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic eA==\r\n\r\n";
        match first(req).await {
            First::Stream(r) => {
                assert_eq!(r.uri().path(), "/jmap/eventsource");
                assert_eq!(r.uri().query(), Some("types=*&ping=0"));
                assert_eq!(r.headers()["authorization"], "Basic eA==");
                assert!(r.extensions().get::<Peer>().is_some());
            }
            _ => panic!("not taken"),
        }
        for other in [
            &b"GET /jmap/session HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /jmap/eventsourcex HTTP/1.1\r\n\r\n",
            b"GET /jmap/eventsource HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /jmap/eventsource HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /jmap/eventsource HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET /jmap/eventsource HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET /jmap/event",
        ] {
            match first(other).await {
                First::Other(bytes) => assert_eq!(bytes, other, "{}", String::from_utf8_lossy(other)),
                _ => panic!("taken: {}", String::from_utf8_lossy(other)),
            }
        }
        assert!(matches!(first(b"").await, First::Closed));
    }

    #[tokio::test]
    async fn put_back_bytes_are_read_first() {
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b" world").await.unwrap();
        drop(client);
        let mut p = Prefixed::new(b"hello".to_vec(), server);
        let mut out = String::new();
        p.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn the_response_head_frames_the_body_itself() {
        let (mut parts, ()) = http::Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .header("content-length", "7")
            .header("connection", "keep-alive")
            .body(())
            .unwrap()
            .into_parts();
        let head = String::from_utf8(response_head(&parts, None, true)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: text/event-stream\r\n"), "{head}");
        assert!(head.contains("\r\ntransfer-encoding: chunked\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(
            !head.contains("keep-alive") && !head.contains("content-length"),
            "{head}"
        );
        assert!(head.ends_with("\r\n\r\n"));
        parts.status = http::StatusCode::UNAUTHORIZED;
        let head = String::from_utf8(response_head(&parts, Some(12), false)).unwrap();
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-length: 12\r\n") && !head.contains("chunked"),
            "{head}"
        );
    }
}
