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

/// WAL size past which the checkpointer copies it back into the database.
/// SQLite's default (1,000 pages) made the writer itself checkpoint
/// about twice a second under imaptest, each time copying and fsyncing
/// the same hot pages; a larger WAL coalesces them, and the copy runs on
/// its own thread beside the writer.
const CHECKPOINT_BYTES: u64 = 32 << 20;
/// WAL size, in multiples of [`CHECKPOINT_BYTES`], past which the
/// checkpointer waits for readers so that the WAL can start over.
const CHECKPOINT_FORCE_FACTOR: i64 = 4;
/// Page cache of the writer's connection (KiB; SQLite's default is 2 MB,
/// so the writer re-read index pages it had just written).
const WRITER_CACHE_KIB: i64 = 64 << 10;

/// Called once the batch a job ran in has committed (or failed to).
type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A write: runs inside a savepoint of the batch transaction. The flag says
/// whether it succeeded (failed jobs are rolled back alone).
type Work = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// A write and whether its commit must be on disk before it completes.
struct Job {
    work: Work,
    durable: bool,
}

/// How long a commit that did not need to be durable (a flag change, an
/// expunge) may stay in the WAL without an fsync: the writer syncs once
/// this long after the first such commit, so a crash loses at most this
/// window of them, and only them (the WAL is sequential: every durable
/// commit makes all earlier ones durable too).
const LAZY_SYNC: Duration = Duration::from_millis(100);

/// Handles shared by every clone of the store.
pub(crate) struct Engine {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    read_slots: tokio::sync::Semaphore,
    pub(crate) path: PathBuf,
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
    // Statement journals (one per savepoint of a batch) in memory rather
    // than spilled to temporary files; they are small and short-lived.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
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
        // The checkpointer thread checkpoints; the writer never does.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let (ckpt_tx, ckpt_rx) = mpsc::sync_channel::<()>(1);
        let ckpt_conn = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        ckpt_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // After every commit SQLite tells the hook how many pages the WAL
        // holds (0 again once a complete checkpoint let it restart).
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let threshold = (CHECKPOINT_BYTES / page_size.max(512) as u64) as i32;
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages >= threshold {
                // Full: one is already asked for.
                let _ = ckpt_tx.try_send(());
            }
            Ok(())
        }))?;
        let checkpointer = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoint_loop(ckpt_conn, ckpt_rx, i64::from(threshold)))
            .map_err(|e| StoreError::Backend(format!("cannot start checkpoint thread: {e}")))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(4096);
        let notifier = Arc::new(Notifier {
            events,
            counts: Mutex::new((0, HashMap::new())),
        });
        let writer_notifier = notifier.clone();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &writer_notifier, &wal))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        Ok(Arc::new(Engine {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            checkpointer: Mutex::new(Some(checkpointer)),
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(MAX_READERS),
            path: path.to_path_buf(),
            notifier,
        }))
    }

    /// Run `f` in the next group-commit batch; resolves after the commit,
    /// which is on disk (fsync'd) by then. Events are broadcast only once
    /// the change is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Vec<ChangeEvent>)> + Send + 'static,
    {
        self.submit(f, true).await
    }

    /// [`Self::write`] for changes a crash may undo without harm: flags,
    /// expunges, `\Recent` marks (what Dovecot's `mail_fsync=optimized`
    /// does not fsync either). Such a commit is visible at once and on
    /// disk within [`LAZY_SYNC`], or earlier with the next durable commit.
    /// Never for writes that create messages or allocate UIDs, UIDVALIDITY
    /// or queue entries: those must not be lost once acknowledged.
    pub(crate) async fn write_lazy<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Vec<ChangeEvent>)> + Send + 'static,
    {
        self.submit(f, false).await
    }

    async fn submit<T, F>(&self, f: F, durable: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Vec<ChangeEvent>)> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let notifier = self.notifier.clone();
        let work: Work = Box::new(move |conn| match f(conn) {
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
            sender.send(Job { work, durable }).map_err(|_| StoreError::Closed)?;
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
        // The writer has dropped its end of the checkpoint channel.
        if let Some(h) = self.checkpointer.lock().ok().and_then(|mut t| t.take()) {
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
fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, notifier: &Notifier, wal: &Path) {
    let mut version = None;
    let mut checked = std::time::Instant::now();
    let mut swept = std::time::Instant::now();
    let mut sync = SyncState::default();
    check_external(&conn, &mut version, notifier);
    loop {
        sync.flush_if_due(wal);
        let first = match rx.recv_timeout(sync.wait(EXTERNAL_CHECK)) {
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
        let durable = batch.iter().any(|j| j.durable);
        // Names as in letterbox_net::metrics (the store does not depend on net).
        metrics::histogram!("letterbox_store_commit_batch_size").record(batch.len() as f64);
        let started = std::time::Instant::now();
        let timed = |_: ()| {
            metrics::histogram!("letterbox_store_commit_duration_seconds").record(started.elapsed().as_secs_f64())
        };
        sync.set_mode(&conn, durable);
        if let Err(e) = run_cached(&conn, "BEGIN IMMEDIATE") {
            let msg = e.to_string();
            tracing::error!(error = %msg, "store: cannot begin write transaction");
            // Run nothing; report the failure to every waiter.
            for job in batch {
                fail_job(job, &msg);
            }
            continue;
        }
        if batch.len() == 1 {
            // Alone in its transaction, a job needs no savepoint (whose
            // statement journal copies every page the job touches): a
            // failure rolls the whole transaction back.
            if let Some(job) = batch.pop() {
                if run_alone(&conn, job) {
                    sync.committed(durable);
                    timed(());
                }
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
            let outcome = catch_unwind(AssertUnwindSafe(|| (job.work)(&conn)));
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
        match &commit {
            Ok(()) => {
                sync.committed(durable);
                timed(());
            }
            Err(e) => {
                tracing::error!(error = %e, "store: commit failed");
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        for c in completions {
            c(commit.clone());
        }
    }
    sync.flush(wal);
    // Drops the hook, and with it the checkpointer's channel: it ends.
    let mut conn = conn;
    let _ = conn.wal_hook(None::<fn(&mut rusqlite::hooks::Wal, std::ffi::c_int) -> rusqlite::Result<()>>);
    // Checkpoint so a clean shutdown leaves a compact database.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

/// Copies the WAL back into the database when the writer asks, without
/// blocking it (PASSIVE: readers and the writer go on; the WAL restarts
/// from its beginning at the next write once all of it is copied).
///
/// A WAL can restart only when no reader still uses its frames; under a
/// steady stream of overlapping reads PASSIVE never gets that chance and
/// the WAL would grow without bound. Past [`CHECKPOINT_FORCE_FACTOR`] times
/// the threshold a RESTART checkpoint waits for the readers of the moment
/// (they are short) and holds new writes back meanwhile, then the WAL
/// starts over.
fn checkpoint_loop(conn: Connection, asks: mpsc::Receiver<()>, threshold_frames: i64) {
    let checkpoint = |mode: &str| {
        let started = std::time::Instant::now();
        let r = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match &r {
            Ok((frames, copied)) => tracing::debug!(
                mode,
                frames,
                copied,
                ms = started.elapsed().as_millis() as u64,
                "store: checkpoint"
            ),
            Err(e) => tracing::warn!(mode, error = %e, "store: checkpoint failed"),
        }
        r.ok()
    };
    while asks.recv().is_ok() {
        if let Some((frames, _)) = checkpoint("PASSIVE") {
            if frames >= threshold_frames.saturating_mul(CHECKPOINT_FORCE_FACTOR) {
                checkpoint("RESTART");
            }
        }
    }
}

/// The writer's fsync policy: commits with a durable job use
/// `synchronous=FULL` (the WAL is fsync'd before the commit returns);
/// commits of lazy jobs only (see [`Engine::write_lazy`]) use `NORMAL` and
/// are fsync'd together within [`LAZY_SYNC`].
#[derive(Default)]
struct SyncState {
    /// `synchronous=NORMAL` is in effect (the connection opens with FULL).
    normal: bool,
    /// When the oldest commit not yet fsync'd was made.
    unsynced_since: Option<std::time::Instant>,
}

impl SyncState {
    fn set_mode(&mut self, conn: &Connection, durable: bool) {
        if self.normal != durable {
            return;
        }
        let sql = if durable {
            "PRAGMA synchronous=FULL"
        } else {
            "PRAGMA synchronous=NORMAL"
        };
        match conn.execute_batch(sql) {
            Ok(()) => self.normal = !durable,
            // Staying in FULL is always safe.
            Err(e) => tracing::warn!(error = %e, "store: cannot change synchronous mode"),
        }
    }

    fn committed(&mut self, durable: bool) {
        if durable {
            // The WAL was fsync'd: that covers every earlier frame too.
            self.unsynced_since = None;
        } else if self.normal {
            self.unsynced_since.get_or_insert_with(std::time::Instant::now);
        }
    }

    /// How long the writer may wait for the next job.
    fn wait(&self, idle: Duration) -> Duration {
        match self.unsynced_since {
            Some(t) => LAZY_SYNC.saturating_sub(t.elapsed()).min(idle),
            None => idle,
        }
    }

    fn flush_if_due(&mut self, wal: &Path) {
        if self.unsynced_since.is_some_and(|t| t.elapsed() >= LAZY_SYNC) {
            self.flush(wal);
        }
    }

    /// fsync the WAL file (any descriptor of it flushes its data).
    fn flush(&mut self, wal: &Path) {
        if self.unsynced_since.take().is_none() {
            return;
        }
        let done = std::fs::File::open(wal).and_then(|f| f.sync_data());
        if let Err(e) = done {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(error = %e, "store: fsync of the WAL failed");
            }
        }
    }
}

/// Run one job as the whole transaction (BEGIN already done): commit if
/// it succeeded, roll back otherwise. True when something was committed.
fn run_alone(conn: &Connection, job: Job) -> bool {
    let outcome = catch_unwind(AssertUnwindSafe(|| (job.work)(conn)));
    let (ok, completion) = match outcome {
        Ok((ok, completion)) => (ok, Some(completion)),
        Err(_) => {
            tracing::error!("store: a write job panicked; it was rolled back");
            (false, None)
        }
    };
    let result = if ok {
        let commit = run_cached(conn, "COMMIT").map_err(|e| e.to_string());
        if let Err(e) = &commit {
            tracing::error!(error = %e, "store: commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        commit
    } else {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "store: rollback failed");
        }
        Err("the write failed and was rolled back".to_string())
    };
    let committed = result.is_ok();
    if let Some(c) = completion {
        c(result);
    }
    committed
}

/// A job that cannot run is dropped: its waiter sees the channel close and
/// gets an error, and nothing of it was written.
fn fail_job(job: Job, msg: &str) {
    tracing::error!(error = %msg, "store: write job dropped");
    drop(job);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_commits_are_synced_within_the_window_and_by_durable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = open_conn(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE).unwrap();
        let mode = |c: &Connection| c.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0)).unwrap();
        let mut sync = SyncState::default();
        assert_eq!(mode(&conn), 2, "connections open in FULL");
        // A durable commit in FULL mode leaves nothing to sync.
        sync.set_mode(&conn, true);
        sync.committed(true);
        assert!(sync.unsynced_since.is_none());
        assert_eq!(sync.wait(EXTERNAL_CHECK), EXTERNAL_CHECK);
        // A lazy one switches to NORMAL and must be synced within LAZY_SYNC.
        sync.set_mode(&conn, false);
        assert_eq!(mode(&conn), 1);
        sync.committed(false);
        let first = sync.unsynced_since.unwrap();
        assert!(sync.wait(EXTERNAL_CHECK) <= LAZY_SYNC);
        // Later lazy commits keep the oldest time: the window never slides.
        sync.committed(false);
        assert_eq!(sync.unsynced_since, Some(first));
        sync.flush_if_due(&path);
        assert!(sync.unsynced_since.is_some(), "not due yet");
        std::thread::sleep(LAZY_SYNC);
        assert_eq!(sync.wait(EXTERNAL_CHECK), Duration::ZERO);
        sync.flush_if_due(&path);
        assert!(sync.unsynced_since.is_none());
        // A durable commit after lazy ones covers them.
        sync.committed(false);
        sync.set_mode(&conn, true);
        assert_eq!(mode(&conn), 2);
        sync.committed(true);
        assert!(sync.unsynced_since.is_none());
    }
}
