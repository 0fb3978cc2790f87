//! Accept loop with connection caps, panic isolation and graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::stream::{MaybeTls, TLS_HANDSHAKE_TIMEOUT};

/// How long we try to deliver the refusal line to an over-cap client.
pub const REFUSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Refusals in flight at once; beyond this, over-cap sockets are just closed
/// so a connection flood cannot pile up refusal tasks.
pub const MAX_PENDING_REFUSALS: usize = 64;
/// How long a connection over its address's cap waits for a slot before
/// it is refused. A client that closes a connection and opens the next one
/// at once (login churn, a client reconnecting after LOGOUT) is usually
/// faster than the server noticing the close, so the old session still
/// holds its slot when the new connection arrives; the slot is freed the
/// moment that session sees its socket closed, and the waiting connection
/// takes it.
pub const PER_IP_GRACE: Duration = Duration::from_millis(500);
/// Pause after a failed accept (typically EMFILE) to avoid a hot loop.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Connection caps of one listener.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// Concurrent sessions on this listener.
    pub max_connections: usize,
    /// Concurrent sessions from one client address.
    pub max_per_ip: usize,
    /// Written (best effort) to refused plaintext connections, e.g.
    /// `b"421 4.7.0 Too many connections\r\n"`. Implicit-TLS listeners close
    /// refused sockets silently: a plaintext line would be garbage to a TLS
    /// client, and a handshake is exactly the work we are shedding.
    pub refuse_line: &'static [u8],
}

/// What a session learns about its connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Unique within the process, across all listeners; for log correlation.
    pub session_id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The connection arrived on an implicit-TLS port (RFC 8314 §3).
    pub implicit_tls: bool,
}

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// Cloneable shutdown signal shared by listeners and sessions.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug)]
struct ShutdownInner {
    tx: watch::Sender<bool>,
    drain_timeout: Duration,
}

impl Shutdown {
    /// Default grace period for sessions to finish after [`Self::trigger`].
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

    /// `drain_timeout`: how long [`serve`] waits for sessions to end after
    /// the trigger before aborting them.
    pub fn new(drain_timeout: Duration) -> Self {
        let (tx, _) = watch::channel(false);
        Shutdown {
            inner: Arc::new(ShutdownInner { tx, drain_timeout }),
        }
    }

    pub fn trigger(&self) {
        self.inner.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.inner.tx.borrow()
    }

    /// Resolves once triggered (immediately if it already was). Cancel-safe,
    /// so sessions can `select!` on it next to their reads.
    pub async fn wait(&self) {
        let mut rx = self.inner.tx.subscribe();
        // Err means the sender is gone, impossible while `self` holds it.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }

    pub fn drain_timeout(&self) -> Duration {
        self.inner.drain_timeout
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new(Self::DEFAULT_DRAIN_TIMEOUT)
    }
}

/// Live connection counts per client address; entries vanish at zero.
#[derive(Debug, Default)]
struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
    /// Woken whenever a slot is released.
    freed: Notify,
}

/// Holds one per-IP slot; releases it on drop (including during a panic).
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn try_acquire(table: &Arc<PerIp>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        // The lock is never held across anything that can panic, so a
        // poisoned map is still consistent.
        let mut counts = table.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: Arc::clone(table),
            ip,
        })
    }

    /// [`Self::try_acquire`], waiting up to `grace` for a slot of `ip` to be
    /// released.
    async fn acquire_within(table: &Arc<PerIp>, ip: IpAddr, max: usize, grace: Duration) -> Option<IpSlot> {
        let wait = async {
            loop {
                // Registered before the check, so a release in between wakes us.
                let freed = table.freed.notified();
                tokio::pin!(freed);
                freed.as_mut().enable();
                if let Some(slot) = PerIp::try_acquire(table, ip, max) {
                    return slot;
                }
                freed.await;
            }
        };
        tokio::time::timeout(grace, wait).await.ok()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
        drop(counts);
        self.table.freed.notify_waiters();
    }
}

/// Run the accept loop of one listener until `shutdown` triggers.
///
/// Each accepted connection gets its own task (so a panicking session only
/// loses itself) inside a `session` tracing span. Connections beyond
/// `limits` are refused without calling `handler`. With `implicit_tls`, the
/// handshake (bounded by [`TLS_HANDSHAKE_TIMEOUT`]) happens before `handler`.
/// After shutdown, returns once every session ended or
/// [`Shutdown::drain_timeout`] passed, in which case the rest are aborted.
pub async fn serve<H, F>(
    listener: TcpListener,
    name: &'static str,
    limits: ListenerLimits,
    implicit_tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: Shutdown,
) where
    H: Fn(MaybeTls, ConnInfo, Shutdown) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_PENDING_REFUSALS));
    let per_ip = Arc::new(PerIp::default());
    let mut tasks = JoinSet::new();
    match listener.local_addr() {
        Ok(addr) => info!(listener = name, %addr, "listening"),
        Err(e) => info!(listener = name, error = %e, "listening"),
    }

    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(name, done),
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                let ip = peer.ip().to_canonical();
                let line = (implicit_tls.is_none()).then_some(limits.refuse_line);
                let Ok(permit) = Arc::clone(&total).try_acquire_owned() else {
                    info!(listener = name, %peer, "connection limit reached; refusing");
                    crate::metrics::refused(name);
                    if let Ok(ticket) = Arc::clone(&refusals).try_acquire_owned() {
                        tasks.spawn(refuse(tcp, line, ticket));
                    }
                    continue;
                };
                let handler = Arc::clone(&handler);
                let shutdown = shutdown.clone();
                let session_id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
                let span = info_span!("session", listener = name, session_id, %peer);
                let tls = implicit_tls.clone();
                let start = move |tcp, slot| {
                    let session = Session {
                        listener: name,
                        tcp,
                        peer,
                        implicit_tls: tls,
                        permit,
                        slot,
                    };
                    run_session(session, session_id, handler, shutdown).instrument(span)
                };
                if let Some(slot) = PerIp::try_acquire(&per_ip, ip, limits.max_per_ip) {
                    tasks.spawn(start(tcp, slot));
                    continue;
                }
                // Over the address's cap: wait (bounded in time and in
                // number, like refusals) for one of its sessions to end.
                let Ok(ticket) = Arc::clone(&refusals).try_acquire_owned() else {
                    info!(listener = name, %peer, "per-address connection limit reached; refusing");
                    crate::metrics::refused(name);
                    continue;
                };
                let per_ip = Arc::clone(&per_ip);
                let max = limits.max_per_ip;
                tasks.spawn(async move {
                    match PerIp::acquire_within(&per_ip, ip, max, PER_IP_GRACE).await {
                        Some(slot) => {
                            drop(ticket);
                            start(tcp, slot).await;
                        }
                        None => {
                            info!(listener = name, %peer, "per-address connection limit reached; refusing");
                            crate::metrics::refused(name);
                            refuse(tcp, line, ticket).await;
                        }
                    }
                });
            }
        }
    }

    drop(listener);
    drain(name, &mut tasks, shutdown.drain_timeout()).await;
    info!(listener = name, "stopped");
}

/// Everything a session task owns; dropping it frees the connection slots.
struct Session {
    listener: &'static str,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: Option<TlsAcceptor>,
    permit: OwnedSemaphorePermit,
    slot: IpSlot,
}

async fn run_session<H, F>(session: Session, session_id: u64, handler: Arc<H>, shutdown: Shutdown)
where
    H: Fn(MaybeTls, ConnInfo, Shutdown) -> F,
    F: Future<Output = ()>,
{
    let Session {
        listener,
        tcp,
        peer,
        implicit_tls,
        permit: _permit,
        slot: _slot,
    } = session;
    let _active = crate::metrics::ActiveConnection::open(listener);
    let local = match tcp.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            debug!(error = %e, "connection gone before start");
            return;
        }
    };
    // Small replies must not wait for Nagle; failure only costs latency.
    let _ = tcp.set_nodelay(true);
    let info = ConnInfo {
        session_id,
        peer,
        local,
        implicit_tls: implicit_tls.is_some(),
    };
    let stream = match implicit_tls {
        None => MaybeTls::Plain(tcp),
        // Boxed: the handshake state is large and only lives this long.
        Some(acceptor) => match Box::pin(tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))).await {
            Ok(Ok(tls)) => MaybeTls::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!("TLS handshake timed out");
                return;
            }
        },
    };
    debug!(local = %local, tls = stream.is_tls(), "session start");
    handler(stream, info, shutdown).await;
    debug!("session end");
}

/// Best-effort refusal: write the line (if any) with a short timeout, close.
async fn refuse(mut tcp: TcpStream, line: Option<&'static [u8]>, _ticket: OwnedSemaphorePermit) {
    if let Some(line) = line {
        let write = async {
            tcp.write_all(line).await?;
            tcp.shutdown().await
        };
        if let Err(e) = tokio::time::timeout(REFUSE_WRITE_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        {
            debug!(error = %e, "could not deliver refusal");
        }
    }
}

fn log_task_end(name: &'static str, done: Result<(), JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            error!(listener = name, "session task panicked; connection dropped");
        }
    }
}

/// Wait for sessions to finish, aborting whatever is left at the deadline.
async fn drain(name: &'static str, tasks: &mut JoinSet<()>, timeout: Duration) {
    if !tasks.is_empty() {
        info!(listener = name, sessions = tasks.len(), "waiting for sessions to end");
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(done)) => log_task_end(name, done),
            Ok(None) => return,
            Err(_) => {
                warn!(
                    listener = name,
                    sessions = tasks.len(),
                    "drain deadline passed; aborting sessions"
                );
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_counted_and_removed_at_zero() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = PerIp::try_acquire(&table, ip, 2).unwrap();
        let b = PerIp::try_acquire(&table, ip, 2).unwrap();
        assert!(PerIp::try_acquire(&table, ip, 2).is_none());
        let other = PerIp::try_acquire(&table, "192.0.2.2".parse().unwrap(), 2).unwrap();
        drop(a);
        let c = PerIp::try_acquire(&table, ip, 2).unwrap();
        drop((b, c, other));
        assert_eq!(table.len(), 0);
        assert!(PerIp::try_acquire(&table, ip, 0).is_none());
        assert_eq!(table.len(), 0, "refusal must not leave an entry");
    }

    #[tokio::test]
    async fn over_cap_connection_gets_a_slot_released_within_the_grace() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let held = PerIp::try_acquire(&table, ip, 1).unwrap();
        // Nothing released: refused after the grace.
        let t0 = tokio::time::Instant::now();
        assert!(PerIp::acquire_within(&table, ip, 1, Duration::from_millis(50))
            .await
            .is_none());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // Released while waiting (the old session saw its socket close).
        let waiter = tokio::spawn({
            let table = Arc::clone(&table);
            async move { PerIp::acquire_within(&table, ip, 1, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        let slot = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(slot.is_some());
        assert!(
            PerIp::try_acquire(&table, ip, 1).is_none(),
            "the waiter holds the only slot"
        );
        drop(slot);
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn shutdown_wait_resolves_after_trigger() {
        let s = Shutdown::new(Duration::from_secs(1));
        assert!(!s.is_triggered());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        s.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(s.is_triggered());
        // Already triggered: resolves at once.
        tokio::time::timeout(Duration::from_millis(100), s.wait())
            .await
            .unwrap();
    }
}
