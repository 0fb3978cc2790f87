//! `imap`: N concurrent clients, for a duration, each looping over one
//! session of a typical mail client: connect, LOGIN, SELECT INBOX, FETCH of
//! all flags/UIDs/sizes, UID FETCH of a few headers and bodies, a flag
//! toggle (restored right after), two UID SEARCHes, APPEND of a small
//! message (deleted again right after: UID EXPUNGE with UIDPLUS, else found
//! by Message-ID and EXPUNGEd), NOOP, LOGOUT. Every command's latency is
//! recorded; `NO`/`BAD` count as errors of that command.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::{Connector, Target};
use crate::imap_proto::{quote, Client, Reply};
use crate::progress::Progress;
use crate::stats::{print_table, write_json, Live, OpRow, Ops};

#[derive(clap::Args, Debug)]
pub struct ImapArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Messages per UID FETCH of headers and of bodies.
    #[arg(long, default_value_t = 3)]
    fetch: usize,
    /// Size in bytes of the message each session APPENDs.
    #[arg(long, default_value_t = 2048)]
    append_size: usize,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const CONNECT: usize = 0;
const LOGIN: usize = 1;
const SELECT: usize = 2;
const FETCH_ALL: usize = 3;
const FETCH_HEADER: usize = 4;
const FETCH_BODY: usize = 5;
const STORE: usize = 6;
const SEARCH_UNSEEN: usize = 7;
const SEARCH_SUBJECT: usize = 8;
const APPEND: usize = 9;
const SEARCH_ID: usize = 10;
const EXPUNGE: usize = 11;
const NOOP: usize = 12;
const LOGOUT: usize = 13;

static OPS: [&str; 14] = [
    "connect",
    "LOGIN",
    "SELECT",
    "FETCH 1:*",
    "UID FETCH HEADER",
    "UID FETCH BODY[]",
    "UID STORE",
    "UID SEARCH UNSEEN",
    "UID SEARCH SUBJECT",
    "APPEND",
    "UID SEARCH HEADER",
    "EXPUNGE",
    "NOOP",
    "LOGOUT",
];

/// A small message with a unique Message-ID, as an APPEND literal.
fn append_message(size: usize, id: &str) -> Vec<u8> {
    let mut m = format!(
        "From: bench@remote.test\r\nTo: bench@example.test\r\nSubject: bench append\r\nMessage-ID: <{id}>\r\n\r\n"
    )
    .into_bytes();
    while m.len() < size {
        m.extend_from_slice(b"The quick brown fox jumps over the lazy dog, then checks its mail again.\r\n");
    }
    m
}

/// One client's state across its sessions.
struct Worker {
    id: usize,
    ops: Ops,
    rng: rand::rngs::StdRng,
    /// Capabilities after login, when the LOGIN response does not say.
    caps: Option<Vec<String>>,
    sessions: u64,
    bytes: u64,
    seq: u64,
}

impl Worker {
    /// Run a command, timing it; `None` for `NO`/`BAD` (counted as errors).
    async fn timed(&mut self, c: &mut Client, op: usize, cmd: &str) -> Result<Option<Reply>> {
        let t = Instant::now();
        let r = match c.command(cmd).await {
            Ok(r) => r,
            Err(e) => {
                self.ops.error(op);
                return Err(e.context(OPS[op]));
            }
        };
        if r.ok() {
            self.ops.record(op, t.elapsed());
            Ok(Some(r))
        } else {
            self.ops.error(op);
            Ok(None)
        }
    }

    async fn session(&mut self, a: &ImapArgs, conn: &Connector, user: &str) -> Result<()> {
        let t = Instant::now();
        let mut c = match async { Client::greet(conn.connect().await?).await }.await {
            Ok(c) => c,
            Err(e) => {
                self.ops.error(CONNECT);
                return Err(e);
            }
        };
        self.ops.record(CONNECT, t.elapsed());

        let gen = c.caps_gen;
        let login = format!("LOGIN {} {}", quote(user)?, quote(&a.target.password)?);
        if self.timed(&mut c, LOGIN, &login).await?.is_none() {
            bail!("LOGIN as {user} refused");
        }
        if c.caps_gen == gen {
            match &self.caps {
                Some(caps) => c.set_caps(caps.clone()),
                None => {
                    c.command("CAPABILITY").await?;
                    self.caps = Some(c.caps().to_vec());
                }
            }
        }

        let Some(sel) = self.timed(&mut c, SELECT, "SELECT INBOX").await? else {
            bail!("SELECT INBOX refused for {user}");
        };
        // An empty mailbox has nothing to fetch (some servers answer BAD
        // to `1:*` then).
        if sel.exists().unwrap_or(0) > 0 {
            if let Some(r) = self
                .timed(&mut c, FETCH_ALL, "FETCH 1:* (FLAGS UID RFC822.SIZE)")
                .await?
            {
                let mut msgs: Vec<(u32, bool)> = r
                    .fetches()
                    .filter_map(|f| Some((f.uid?, f.has_flag("\\Seen"))))
                    .collect();
                msgs.shuffle(&mut self.rng);
                let some: Vec<String> = msgs.iter().take(a.fetch.max(1)).map(|(u, _)| u.to_string()).collect();
                if let Some(&(uid, seen)) = msgs.first() {
                    let set = some.join(",");
                    if let Some(r) = self
                        .timed(&mut c, FETCH_HEADER, &format!("UID FETCH {set} (BODY.PEEK[HEADER])"))
                        .await?
                    {
                        self.bytes += r.literal_bytes() as u64;
                    }
                    if let Some(r) = self
                        .timed(&mut c, FETCH_BODY, &format!("UID FETCH {set} (BODY.PEEK[])"))
                        .await?
                    {
                        self.bytes += r.literal_bytes() as u64;
                    }
                    // Toggle \Seen and put it back as it was.
                    let (first, second) = if seen { ('-', '+') } else { ('+', '-') };
                    self.timed(&mut c, STORE, &format!("UID STORE {uid} {first}FLAGS (\\Seen)"))
                        .await?;
                    self.timed(&mut c, STORE, &format!("UID STORE {uid} {second}FLAGS (\\Seen)"))
                        .await?;
                }
            }
        }
        self.timed(&mut c, SEARCH_UNSEEN, "UID SEARCH UNSEEN").await?;
        self.timed(&mut c, SEARCH_SUBJECT, "UID SEARCH SUBJECT bench").await?;

        self.seq += 1;
        let msgid = format!("{}.{}.{}@bench.invalid", std::process::id(), self.id, self.seq);
        let msg = append_message(a.append_size, &msgid);
        let t = Instant::now();
        let appended = match c.append("INBOX", "", &msg).await {
            Ok(r) if r.ok() => {
                self.ops.record(APPEND, t.elapsed());
                Some(r)
            }
            Ok(_) => {
                self.ops.error(APPEND);
                None
            }
            Err(e) => {
                self.ops.error(APPEND);
                return Err(e.context("APPEND"));
            }
        };
        if let Some(r) = appended {
            self.remove_appended(&mut c, &r, &msgid).await?;
        }

        self.timed(&mut c, NOOP, "NOOP").await?;
        self.timed(&mut c, LOGOUT, "LOGOUT").await?;
        c.shutdown().await;
        self.sessions += 1;
        Ok(())
    }

    /// Flag the APPENDed message \Deleted and expunge it, so mailboxes
    /// stay the size they were.
    async fn remove_appended(&mut self, c: &mut Client, r: &Reply, msgid: &str) -> Result<()> {
        let uidplus = c.has_cap("UIDPLUS");
        let uids = match crate::imap_proto::appenduid(&r.text) {
            Some(uid) => vec![uid],
            None => match self
                .timed(c, SEARCH_ID, &format!("UID SEARCH HEADER Message-ID {}", quote(msgid)?))
                .await?
            {
                Some(r) => r.search(),
                None => Vec::new(),
            },
        };
        if uids.is_empty() {
            return Ok(());
        }
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        self.timed(c, STORE, &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))
            .await?;
        if uidplus {
            self.timed(c, EXPUNGE, &format!("UID EXPUNGE {set}")).await?;
        } else {
            // Also removes any other message flagged \Deleted in INBOX.
            self.timed(c, EXPUNGE, "EXPUNGE").await?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct Report {
    workload: &'static str,
    connections: usize,
    seconds: f64,
    sessions: u64,
    session_failures: u64,
    fetched_bytes: u64,
    operations: Vec<OpRow>,
}

pub async fn run(a: ImapArgs) -> Result<()> {
    let conn = a.target.connector(143, 993, 64 * 1024)?;
    let a = Arc::new(a);
    let live = Arc::new(Live::default());
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.duration);
    let progress = Progress::timed("imap", "ops", live.clone(), a.duration as f64);
    let mut tasks = Vec::new();
    for id in 0..a.connections {
        let (a, conn, live, failures) = (a.clone(), conn.clone(), live.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let mut w = Worker {
                id,
                ops: Ops::new(&OPS, live),
                rng: rand::rngs::StdRng::from_entropy(),
                caps: None,
                sessions: 0,
                bytes: 0,
                seq: 0,
            };
            let mut round = 0;
            while Instant::now() < deadline {
                // Spread the clients over all users, round after round.
                let user = a.target.user_name(id + round * a.connections);
                round += 1;
                if let Err(e) = w.session(&a, &conn, &user).await {
                    if failures.fetch_add(1, Ordering::Relaxed) < 10 {
                        eprintln!("\nsession of client {id} as {user} failed: {e:#}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            w
        }));
    }
    let mut ops = Ops::new(&OPS, Arc::new(Live::default()));
    let (mut sessions, mut bytes) = (0, 0);
    for t in tasks {
        let w = t.await?;
        sessions += w.sessions;
        bytes += w.bytes;
        ops.merge(w.ops);
    }
    let elapsed = started.elapsed();
    progress.finish().await;
    let rows = ops.rows(elapsed);
    let failures = failures.load(Ordering::Relaxed);
    println!(
        "imap: {} clients, {:.1}s, {sessions} sessions ({:.1}/s), {failures} failed sessions, {:.2} MB fetched",
        a.connections,
        elapsed.as_secs_f64(),
        sessions as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6
    );
    print_table(&rows);
    if let Some(path) = &a.json {
        let r = Report {
            workload: "imap",
            connections: a.connections,
            seconds: elapsed.as_secs_f64(),
            sessions,
            session_failures: failures,
            fetched_bytes: bytes,
            operations: rows,
        };
        write_json(path, &r)?;
    }
    if sessions == 0 {
        bail!("no session completed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_message() {
        let m = append_message(500, "x@y");
        assert!(m.len() >= 500);
        assert!(m.starts_with(b"From: "));
        assert!(std::str::from_utf8(&m)
            .unwrap()
            .contains("\r\nMessage-ID: <x@y>\r\n\r\n"));
        assert_eq!(OPS.len(), LOGOUT + 1);
    }
}
