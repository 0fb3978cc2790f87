//! One HTTP connection: hyper's HTTP/1.1 or HTTP/2 (by ALPN on TLS, by
//! preface on plain) serving the router, with header timeouts and a
//! graceful end on shutdown.

use crate::Http;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use letterbox_net::{ConnInfo, MaybeTls, Shutdown};
use std::sync::Arc;
use tower::ServiceExt;

/// What a handler knows about its connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub info: ConnInfo,
    pub tls: bool,
}

/// Serve one accepted connection until the client closes it or shutdown.
pub async fn session(http: Arc<Http>, mut stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    let tls = stream.is_tls();
    let router = if tls { http.api.clone() } else { http.plain.clone() };
    let peer = Peer {
        info: info.clone(),
        tls,
    };
    // A push stream as the first request skips hyper's per-connection
    // buffers (stream_conn.rs); anything else gets what was read back.
    let timeout = http.ctx.config.header_timeout;
    let prefix = match tokio::time::timeout(timeout, crate::stream_conn::first_request(&mut stream, &peer)).await {
        Ok(Ok(crate::stream_conn::First::Stream(req))) => {
            crate::stream_conn::serve(stream, router, *req, shutdown.wait()).await;
            return;
        }
        Ok(Ok(crate::stream_conn::First::Other(bytes))) => bytes,
        Ok(Ok(crate::stream_conn::First::Closed)) => return,
        Ok(Err(e)) => {
            tracing::debug!(session = info.session_id, peer = %info.peer, error = %e, "HTTP connection failed before a request");
            return;
        }
        Err(_) => {
            tracing::debug!(session = info.session_id, peer = %info.peer, "no HTTP request within the header timeout; closing");
            return;
        }
    };
    let stream = crate::stream_conn::Prefixed::new(prefix, stream);
    // Issue 18: hyper's header timeout starts with a request's first byte,
    // so a client that connects and sends nothing would hold the slot
    // forever; the first request must come within the header timeout.
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = started.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        seen.store(true, std::sync::atomic::Ordering::Relaxed);
        req.extensions_mut().insert(peer.clone());
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.ctx.config.header_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(32)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(std::time::Duration::from_secs(60)));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let first_request = tokio::time::sleep(http.ctx.config.header_timeout);
    tokio::pin!(first_request);
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(session = info.session_id, peer = %info.peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = &mut first_request, if !started.load(std::sync::atomic::Ordering::Relaxed) => {
                if !started.load(std::sync::atomic::Ordering::Relaxed) {
                    tracing::debug!(session = info.session_id, peer = %info.peer, "no HTTP request within the header timeout; closing");
                    return;
                }
            }
            _ = &mut stop => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(shutdown.drain_timeout(), conn).await;
                return;
            }
        }
    }
}
