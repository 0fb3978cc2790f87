//! End-to-end tests of `serve`, TLS and STARTTLS over loopback.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use letterbox_net::tls::{client_config, load_chain};
use letterbox_net::{load_or_generate, serve, ConnInfo, LineReader, ListenerLimits, MaybeTls, Shutdown, TlsAcceptor};
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

const REFUSE: &[u8] = b"421 4.7.0 Too many connections\r\n";
const STEP: Duration = Duration::from_secs(10);

fn limits(max_connections: usize, max_per_ip: usize) -> ListenerLimits {
    ListenerLimits {
        max_connections,
        max_per_ip,
        refuse_line: REFUSE,
    }
}

fn connector(data_dir: &Path) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in load_chain(&data_dir.join("tls/cert.pem")).unwrap() {
        roots.add(cert).unwrap();
    }
    TlsConnector::from(client_config(roots).unwrap())
}

fn acceptor(data_dir: &Path) -> TlsAcceptor {
    TlsAcceptor::from(load_or_generate("mail.test.example", None, data_dir).unwrap())
}

async fn start<H, F>(
    limits: ListenerLimits,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: Shutdown,
) -> (std::net::SocketAddr, JoinHandle<()>)
where
    H: Fn(MaybeTls, ConnInfo, Shutdown) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve(listener, "test", limits, tls, handler, shutdown));
    (addr, task)
}

async fn line<R: AsyncRead + Unpin>(r: &mut LineReader<R>) -> String {
    let l = tokio::time::timeout(STEP, r.read_line(1000))
        .await
        .expect("timed out")
        .expect("read_line");
    String::from_utf8(l.into_bytes()).unwrap()
}

/// Greets with "hello", then echoes lines until EOF or shutdown.
async fn echo(stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    let mut r = LineReader::new(stream);
    let greeting = match r.get_ref().tls_info() {
        Some(t) => format!("hello {} {} {}\r\n", info.implicit_tls, t.version, t.cipher),
        None => format!("hello {}\r\n", info.implicit_tls),
    };
    if r.get_mut().write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    loop {
        let l = tokio::select! {
            _ = shutdown.wait() => {
                let _ = r.get_mut().write_all(b"421 shutting down\r\n").await;
                let _ = r.get_mut().flush().await;
                return;
            }
            l = r.read_line(1000) => l,
        };
        let Ok(l) = l else { return };
        if l.as_bytes() == b"PANIC" {
            panic!("handler panic requested");
        }
        let mut out = l.into_bytes();
        out.extend_from_slice(b"\r\n");
        if r.get_mut().write_all(&out).await.is_err() || r.get_mut().flush().await.is_err() {
            return;
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) {
    w.write_all(data).await.unwrap();
    w.flush().await.unwrap();
}

#[tokio::test]
async fn implicit_tls_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = Shutdown::new(STEP);
    let (addr, task) = start(limits(10, 10), Some(acceptor(dir.path())), echo, shutdown.clone()).await;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector(dir.path())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut r = LineReader::new(tls);
    assert_eq!(line(&mut r).await, "hello true TLSv1.3 TLS13_AES_256_GCM_SHA384");
    write(r.get_mut(), b"ping \xff bytes\r\n").await;
    let l = tokio::time::timeout(STEP, r.read_line(100)).await.unwrap().unwrap();
    assert_eq!(l.as_bytes(), b"ping \xff bytes");

    // The generated certificate also covers 127.0.0.1.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let ip = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector(dir.path()).connect(ip, tcp).await.unwrap();
    let mut r2 = LineReader::new(tls);
    assert!(line(&mut r2).await.starts_with("hello true"));

    shutdown.trigger();
    assert_eq!(line(&mut r).await, "421 shutting down");
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn failed_handshake_does_not_hurt_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = Shutdown::new(STEP);
    let (addr, task) = start(limits(10, 10), Some(acceptor(dir.path())), echo, shutdown.clone()).await;
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"EHLO not tls\r\n").await.unwrap();
    let mut sink = Vec::new();
    // The server drops the connection; any alert bytes are fine.
    let _ = tokio::time::timeout(STEP, plain.read_to_end(&mut sink)).await.unwrap();

    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("mail.test.example").unwrap();
    let tls = connector(dir.path()).connect(name, tcp).await.unwrap();
    let mut r = LineReader::new(tls);
    assert!(line(&mut r).await.starts_with("hello true"));
    shutdown.trigger();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}

/// Minimal STARTTLS server: refuses data pipelined after the command.
async fn starttls(stream: MaybeTls, _info: ConnInfo, _shutdown: Shutdown, acceptor: TlsAcceptor) {
    let mut r = LineReader::new(stream);
    let _ = r.get_mut().write_all(b"220 ready\r\n").await;
    let Ok(cmd) = r.read_line(512).await else {
        return;
    };
    assert_eq!(cmd.as_bytes(), b"STARTTLS");
    if r.buffered() > 0 {
        let _ = r.get_mut().write_all(b"501 no pipelining after STARTTLS\r\n").await;
        return;
    }
    let _ = r.get_mut().write_all(b"220 go ahead\r\n").await;
    let Ok(tls) = r.into_inner().upgrade(&acceptor).await else {
        return;
    };
    let info = tls.tls_info().unwrap();
    let mut r = LineReader::new(tls);
    let Ok(l) = r.read_line(512).await else {
        return;
    };
    let reply = format!("tls {} {}\r\n", info.version, l.as_str().unwrap_or("?"));
    let _ = r.get_mut().write_all(reply.as_bytes()).await;
    let _ = r.get_mut().flush().await;
    // Upgrading twice is refused.
    let again = r.into_inner().upgrade(&acceptor).await;
    assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn starttls_upgrade_and_pipelining_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let acc = acceptor(dir.path());
    let shutdown = Shutdown::new(STEP);
    let handler = move |s, i, sd| starttls(s, i, sd, acc.clone());
    let (addr, task) = start(limits(10, 10), None, handler, shutdown.clone()).await;

    let mut r = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut r).await, "220 ready");
    write(r.get_mut(), b"STARTTLS\r\n").await;
    assert_eq!(line(&mut r).await, "220 go ahead");
    assert_eq!(r.buffered(), 0);
    let name = ServerName::try_from("mail.test.example").unwrap();
    let tls = connector(dir.path()).connect(name, r.into_inner()).await.unwrap();
    let mut r = LineReader::new(tls);
    write(r.get_mut(), b"EHLO client\r\n").await;
    assert_eq!(line(&mut r).await, "tls TLSv1.3 EHLO client");

    let mut r = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut r).await, "220 ready");
    write(r.get_mut(), b"STARTTLS\r\nEHLO smuggled\r\n").await;
    assert_eq!(line(&mut r).await, "501 no pipelining after STARTTLS");

    shutdown.trigger();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn per_ip_cap_refuses_with_line_and_frees_slots() {
    let shutdown = Shutdown::new(STEP);
    let (addr, task) = start(limits(10, 2), None, echo, shutdown.clone()).await;
    let mut a = LineReader::new(TcpStream::connect(addr).await.unwrap());
    let mut b = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut a).await, "hello false");
    assert_eq!(line(&mut b).await, "hello false");

    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(STEP, c.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, REFUSE);

    // Closing one session frees its slot (poll: the server notices EOF async).
    drop(a);
    let mut admitted = false;
    for _ in 0..100 {
        let mut d = LineReader::new(TcpStream::connect(addr).await.unwrap());
        if line(&mut d).await == "hello false" {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "slot was never released");
    write(b.get_mut(), b"still here\r\n").await;
    assert_eq!(line(&mut b).await, "still here");
    shutdown.trigger();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn total_cap_refuses() {
    let shutdown = Shutdown::new(STEP);
    let (addr, task) = start(limits(1, 5), None, echo, shutdown.clone()).await;
    let mut a = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut a).await, "hello false");
    let mut b = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut b).await, "421 4.7.0 Too many connections");
    shutdown.trigger();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn panicking_session_does_not_stop_the_server() {
    let shutdown = Shutdown::new(STEP);
    let (addr, task) = start(limits(10, 10), None, echo, shutdown.clone()).await;
    let mut a = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut a).await, "hello false");
    write(a.get_mut(), b"PANIC\r\n").await;
    assert!(matches!(
        tokio::time::timeout(STEP, a.read_line(100)).await.unwrap(),
        Err(letterbox_net::LineError::Eof | letterbox_net::LineError::Io(_))
    ));
    let mut b = LineReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(line(&mut b).await, "hello false");
    shutdown.trigger();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_aborts_stuck_sessions_after_drain_deadline() {
    let shutdown = Shutdown::new(Duration::from_millis(200));
    let started = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&started);
    let handler = move |_s: MaybeTls, _i: ConnInfo, _sd: Shutdown| {
        let notify = Arc::clone(&notify);
        async move {
            notify.notify_one();
            // Ignores shutdown on purpose.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    };
    let (addr, task) = start(limits(10, 10), None, handler, shutdown.clone()).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(STEP, started.notified()).await.unwrap();

    let before = std::time::Instant::now();
    shutdown.trigger();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
    assert!(before.elapsed() >= Duration::from_millis(150));
    // The aborted session's socket is closed.
    let mut buf = Vec::new();
    let n = tokio::time::timeout(STEP, conn.read_to_end(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    // The listener socket is closed too.
    assert!(TcpStream::connect(addr).await.is_err());
}
