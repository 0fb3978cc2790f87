//! The SQLite engine: one writer thread that group-commits, and a pool of
//! read connections. WAL with `synchronous=FULL` makes every commit durable
//! (the WAL is fsync'd at commit), and batching turns N concurrent writes
//! into one fsync.

use crate::{ChangeEvent, MailboxId, Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// Most jobs one transaction carries; bounds commit latency for the first.
const MAX_BATCH: usize = 256;
/// How long a writer waits for another process (the CLI) to release the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Prepared statements kept per connection (rusqlite's default is 16,
/// fewer than the hot statements of one IMAP session).
const STATEMENT_CACHE: usize = 128;
/// Reads running at once, and so read connections and blocking threads used
/// for reads: a burst of thousands of sessions must queue here, not spawn a
/// thread and a connection (with its page cache) each.
const MAX_READERS: usize = 8;

/// Called once the batch a job ran in has committed (or failed to).
type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A write: runs inside a savepoint of the batch transaction. The flag says
/// whether it succeeded (failed jobs are rolled back alone).
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// Handles shared by every clone of the store.
pub(crate) struct Engine {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    read_slots: tokio::sync::Semaphore,
    path: PathBuf,
    pub(crate) notifier: Arc<Notifier>,
}

/// Sends committed changes to watchers, counting them per mailbox first, so
/// a reader can tell whether a result it cached is still current.
pub(crate) struct Notifier {
    pub(crate) events: broadcast::Sender<ChangeEvent>,
    /// (changes not tied to one mailbox, changes per mailbox).
    counts: Mutex<(u64, HashMap<MailboxId, u64>)>,
}

/// Where a mailbox's change count stood; equal stamps mean no commit
/// touched the mailbox in between.
pub(crate) type Stamp = (u64, u64);

impl Notifier {
    fn announce(&self, e: ChangeEvent) {
        if let Ok(mut c) = self.counts.lock() {
            match e.mailbox_id {
                Some(m) => *c.1.entry(m).or_default() += 1,
                // Outside writes, mailbox create/delete/rename: could be anything.
                None => c.0 += 1,
            }
        }
        let _ = self.events.send(e);
    }

    /// Taken before a read starts: the read then sees every commit counted.
    pub(crate) fn stamp(&self, mailbox: MailboxId) -> Option<Stamp> {
        let c = self.counts.lock().ok()?;
        Some((c.0, c.1.get(&mailbox).copied().unwrap_or(0)))
    }
}

pub(super) fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Without the query planner stability guarantee SQLite marks bound
    // parameters its planner looked at (`LIMIT ?`, equality heuristics) and
    // re-parses the statement whenever one is rebound: a cached statement
    // then costs a full prepare per call (15% of the server's CPU under
    // imaptest). Our plans never depend on the values.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

impl Engine {
    /// Open (creating and migrating as needed) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Arc<Engine>> {
        let mut conn = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!("cannot enable WAL journal (got {mode})")));
        }
        super::schema::migrate(&mut conn)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(4096);
        let notifier = Arc::new(Notifier {
            events,
            counts: Mutex::new((0, HashMap::new())),
        });
        let writer_notifier = notifier.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &writer_notifier))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        Ok(Arc::new(Engine {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(MAX_READERS),
            path: path.to_path_buf(),
            notifier,
        }))
    }

    /// Run `f` in the next group-commit batch; resolves after the commit.
    /// Events are broadcast only once the change is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Vec<ChangeEvent>)> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let notifier = self.notifier.clone();
        let job: Job = Box::new(move |conn| match f(conn) {
            Ok((value, evs)) => (
                true,
                Box::new(move |commit| match commit {
                    Ok(()) => {
                        for e in evs {
                            notifier.announce(e);
                        }
                        let _ = tx.send(Ok(value));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(StoreError::Backend(e)));
                    }
                }),
            ),
            Err(e) => (
                false,
                Box::new(move |_| {
                    let _ = tx.send(Err(e));
                }),
            ),
        });
        {
            let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Run a read on a pooled connection on the blocking thread pool, inside
    /// one read transaction so multi-query reads see one snapshot.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let slot = self.read_slot().await?;
        self.read_in(slot, f).await
    }

    /// Wait for one of the [`MAX_READERS`] read slots.
    pub(crate) async fn read_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.read_slots.acquire().await.map_err(|_| StoreError::Closed)
    }

    /// [`Self::read`] with a slot already taken.
    pub(crate) async fn read_in<T, F>(self: &Arc<Self>, _slot: tokio::sync::SemaphorePermit<'_>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match engine.readers.lock().ok().and_then(|mut p| p.pop()) {
                Some(c) => c,
                None => open_conn(
                    &engine.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?,
            };
            run_cached(&conn, "BEGIN")?;
            let out = f(&conn);
            let end = run_cached(&conn, "COMMIT");
            if end.is_ok() {
                if let Ok(mut pool) = engine.readers.lock() {
                    if pool.len() < MAX_READERS {
                        pool.push(conn);
                    }
                }
            }
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    /// Stop the writer after the queued jobs; later writes fail with `Closed`.
    pub(crate) fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(h) = self.writer_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
        if let Ok(mut r) = self.readers.lock() {
            r.clear();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}

/// Run a statement without results from the connection's statement cache:
/// transaction control runs for every read and write, and parsing it each
/// time showed in profiles.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

/// How often the writer looks for commits made by other processes.
const EXTERNAL_CHECK: Duration = Duration::from_millis(500);
/// How often an idle writer releases bodies of messages expunged longer
/// than the grace period ago (busy writers do it with each expunge).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn sweep_expunged(conn: &Connection) {
    let run = || -> Result<usize> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let now = crate::unix_now();
        let done = super::messages::release_expired(conn, now)
            .and_then(|n| Ok(n + super::messages::compact_changelog(conn, now)?));
        match done {
            Ok(n) => {
                conn.execute_batch("COMMIT")?;
                Ok(n)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    };
    if let Err(e) = run() {
        tracing::warn!(error = %e, "store: releasing expunged bodies failed");
    }
}

/// Announce commits by other processes (the CLI, another server on the same
/// file). `PRAGMA data_version` on the writer's own connection changes only
/// when another connection committed, and this process writes through no
/// other connection, so every change of it is an outside write.
fn check_external(conn: &Connection, last: &mut Option<i64>, notifier: &Notifier) {
    let Ok(v) = conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)) else {
        return;
    };
    if last.is_some_and(|l| l != v) {
        notifier.announce(ChangeEvent {
            account_id: 0,
            mailbox_id: None,
            kind: crate::ChangeKind::External,
        });
    }
    *last = Some(v);
}

/// Group commit: take every job waiting (up to [`MAX_BATCH`]), run each in
/// its own savepoint, commit once, then complete them all.
fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, notifier: &Notifier) {
    let mut version = None;
    let mut checked = std::time::Instant::now();
    let mut swept = std::time::Instant::now();
    check_external(&conn, &mut version, notifier);
    loop {
        let first = match rx.recv_timeout(EXTERNAL_CHECK) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                check_external(&conn, &mut version, notifier);
                checked = std::time::Instant::now();
                if swept.elapsed() >= SWEEP_EVERY {
                    sweep_expunged(&conn);
                    swept = std::time::Instant::now();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if checked.elapsed() >= EXTERNAL_CHECK {
            check_external(&conn, &mut version, notifier);
            checked = std::time::Instant::now();
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = run_cached(&conn, "BEGIN IMMEDIATE") {
            let msg = e.to_string();
            tracing::error!(error = %msg, "store: cannot begin write transaction");
            // Run nothing; report the failure to every waiter.
            for job in batch {
                fail_job(job, &msg);
            }
            continue;
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut lost = false;
        for job in batch {
            if lost {
                fail_job(job, "the batch transaction was rolled back");
                continue;
            }
            if let Err(e) = run_cached(&conn, "SAVEPOINT job") {
                let msg = e.to_string();
                fail_job(job, &msg);
                continue;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| job(&conn)));
            let ok = matches!(outcome, Ok((true, _)));
            let end = if ok {
                run_cached(&conn, "RELEASE job")
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "store: savepoint cleanup failed");
            }
            match outcome {
                Ok((_, completion)) => completions.push(completion),
                Err(_) => tracing::error!("store: a write job panicked; it was rolled back"),
            }
            // SQLITE_FULL and I/O errors may roll back the whole transaction
            // (https://sqlite.org/lang_transaction.html): the jobs before are
            // gone, and later ones would each commit on their own in
            // autocommit mode. Fail the batch: nobody is told "done" for a
            // write that is not there, and nothing commits outside it.
            if conn.is_autocommit() {
                lost = true;
            }
        }
        if lost {
            let msg = "write transaction rolled back by the database (disk full or I/O error)".to_string();
            tracing::error!(error = %msg, "store: batch lost");
            for c in completions {
                c(Err(msg.clone()));
            }
            continue;
        }
        let commit = run_cached(&conn, "COMMIT").map_err(|e| e.to_string());
        if let Err(e) = &commit {
            tracing::error!(error = %e, "store: commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for c in completions {
            c(commit.clone());
        }
    }
    // Checkpoint so a clean shutdown leaves a compact database.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

/// A job that cannot run is dropped: its waiter sees the channel close and
/// gets an error, and nothing of it was written.
fn fail_job(job: Job, msg: &str) {
    tracing::error!(error = %msg, "store: write job dropped");
    drop(job);
}
