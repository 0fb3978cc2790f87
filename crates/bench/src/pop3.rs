//! `pop3`: N concurrent clients, each looping over sessions: connect,
//! USER/PASS, STAT, LIST, UIDL, RETR of every message, QUIT. Nothing is
//! deleted, so mailboxes stay as they are. Runs for `--duration` seconds,
//! or `--rounds` sessions per client, whichever ends first.

use anyhow::{bail, Result};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::{Connector, Target};
use crate::pop3_proto::{parse_listing, parse_stat, Client};
use crate::progress::{bar, Progress};
use crate::stats::{print_table, write_json, Live, OpRow, Ops, Summary};

#[derive(clap::Args, Debug)]
pub struct Pop3Args {
    #[command(flatten)]
    target: Target,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// How long to run, in seconds [default: 10 unless --rounds is given].
    #[arg(long)]
    duration: Option<u64>,
    /// Sessions per client.
    #[arg(long)]
    rounds: Option<u64>,
    /// RETR at most this many messages per session (0 = all).
    #[arg(long, default_value_t = 0)]
    max_retr: usize,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_size: usize,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const CONNECT: usize = 0;
const USER: usize = 1;
const PASS: usize = 2;
const STAT: usize = 3;
const LIST: usize = 4;
const UIDL: usize = 5;
const RETR: usize = 6;
const QUIT: usize = 7;

static OPS: [&str; 8] = ["connect", "USER", "PASS", "STAT", "LIST", "UIDL", "RETR", "QUIT"];

/// Longest LIST/UIDL listing accepted.
const MAX_LISTING: usize = 64 << 20;

struct Worker {
    ops: Ops,
    sessions: u64,
    messages: u64,
    bytes: u64,
}

impl Worker {
    /// A command with a status line answer; fails the session on `-ERR`.
    async fn simple(&mut self, c: &mut Client, op: usize, cmd: &str) -> Result<String> {
        let t = Instant::now();
        match c.command(cmd).await {
            Ok(s) if s.ok => {
                self.ops.record(op, t.elapsed());
                Ok(s.text)
            }
            Ok(s) => {
                self.ops.error(op);
                bail!("{}: -ERR {}", OPS[op], s.text)
            }
            Err(e) => {
                self.ops.error(op);
                Err(e.context(OPS[op]))
            }
        }
    }

    /// A command with a multi-line answer; `None` on `-ERR`.
    async fn multi(&mut self, c: &mut Client, op: usize, cmd: &str, max: usize) -> Result<Option<Vec<u8>>> {
        let t = Instant::now();
        match c.multiline(cmd, max).await {
            Ok((_, Some(d))) => {
                self.ops.record(op, t.elapsed());
                Ok(Some(d))
            }
            Ok((_, None)) => {
                self.ops.error(op);
                Ok(None)
            }
            Err(e) => {
                self.ops.error(op);
                Err(e.context(OPS[op]))
            }
        }
    }

    async fn session(&mut self, a: &Pop3Args, conn: &Connector, user: &str, live: &Live2) -> Result<()> {
        let t = Instant::now();
        let mut c = match async { Client::greet(conn.connect().await?).await }.await {
            Ok(c) => c,
            Err(e) => {
                self.ops.error(CONNECT);
                return Err(e);
            }
        };
        self.ops.record(CONNECT, t.elapsed());
        if user.contains(['\r', '\n']) || a.target.password.contains(['\r', '\n']) {
            bail!("user names and passwords cannot hold CR/LF");
        }
        self.simple(&mut c, USER, &format!("USER {user}")).await?;
        self.simple(&mut c, PASS, &format!("PASS {}", a.target.password))
            .await?;
        let stat = self.simple(&mut c, STAT, "STAT").await?;
        let Some((count, _)) = parse_stat(&stat) else {
            bail!("malformed STAT answer {stat:?}")
        };
        let Some(list) = self.multi(&mut c, LIST, "LIST", MAX_LISTING).await? else {
            bail!("LIST refused")
        };
        let list = parse_listing(&list)?;
        if list.len() != count as usize {
            bail!("STAT says {count} messages, LIST lists {}", list.len());
        }
        self.multi(&mut c, UIDL, "UIDL", MAX_LISTING).await?;
        let n = if a.max_retr == 0 {
            list.len()
        } else {
            list.len().min(a.max_retr)
        };
        for (num, _) in &list[..n] {
            if let Some(m) = self.multi(&mut c, RETR, &format!("RETR {num}"), a.max_size).await? {
                self.messages += 1;
                self.bytes += m.len() as u64;
                live.messages.fetch_add(1, Ordering::Relaxed);
                live.bytes.fetch_add(m.len() as u64, Ordering::Relaxed);
            }
        }
        self.simple(&mut c, QUIT, "QUIT").await?;
        self.sessions += 1;
        Ok(())
    }
}

/// Counters for the progress line beyond operations.
#[derive(Default)]
struct Live2 {
    messages: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Serialize)]
struct Report {
    workload: &'static str,
    connections: usize,
    seconds: f64,
    sessions: u64,
    session_failures: u64,
    sessions_per_second: f64,
    messages: u64,
    messages_per_second: f64,
    megabytes_per_second: f64,
    retr: Summary,
    operations: Vec<OpRow>,
}

pub async fn run(a: Pop3Args) -> Result<()> {
    let conn = a.target.connector(110, 995, 64 * 1024)?;
    let duration = match (a.duration, a.rounds) {
        (Some(d), _) => Some(Duration::from_secs(d)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let rounds = a.rounds.unwrap_or(u64::MAX);
    let a = Arc::new(a);
    let live = Arc::new(Live::default());
    let live2 = Arc::new(Live2::default());
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let (l, l2) = (live.clone(), live2.clone());
    let progress = Progress::start(move |el| {
        let s = el.as_secs_f64();
        let head = match duration {
            Some(d) => format!("{} {s:.1}/{}s", bar(s, d.as_secs_f64(), 30), d.as_secs()),
            None => format!("{s:.1}s"),
        };
        let (m, b) = (l2.messages.load(Ordering::Relaxed), l2.bytes.load(Ordering::Relaxed));
        format!(
            "pop3 {head}, {} ops, {m} messages ({:.0}/s, {:.1} MB/s), {} errors",
            l.ops(),
            m as f64 / s.max(1e-9),
            b as f64 / 1e6 / s.max(1e-9),
            l.errors()
        )
    });
    let mut tasks = Vec::new();
    for id in 0..a.connections {
        let (a, conn, live, live2, failures) = (a.clone(), conn.clone(), live.clone(), live2.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let mut w = Worker {
                ops: Ops::new(&OPS, live),
                sessions: 0,
                messages: 0,
                bytes: 0,
            };
            for round in 0..rounds {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let user = a.target.user_name(id + round as usize * a.connections);
                if let Err(e) = w.session(&a, &conn, &user, &live2).await {
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
    let (mut sessions, mut messages, mut bytes) = (0, 0, 0);
    for t in tasks {
        let w = t.await?;
        sessions += w.sessions;
        messages += w.messages;
        bytes += w.bytes;
        ops.merge(w.ops);
    }
    let elapsed = started.elapsed();
    progress.finish().await;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let retr = ops.summary(RETR, elapsed);
    let failures = failures.load(Ordering::Relaxed);
    let r = Report {
        workload: "pop3",
        connections: a.connections,
        seconds: elapsed.as_secs_f64(),
        sessions,
        session_failures: failures,
        sessions_per_second: sessions as f64 / secs,
        messages,
        messages_per_second: messages as f64 / secs,
        megabytes_per_second: bytes as f64 / 1e6 / secs,
        retr,
        operations: ops.rows(elapsed),
    };
    println!(
        "pop3: {} clients, {:.1}s, {sessions} sessions ({:.1}/s), {failures} failed sessions",
        a.connections, r.seconds, r.sessions_per_second
    );
    println!(
        "      {messages} messages retrieved ({:.1}/s), {:.2} MB ({:.2} MB/s); RETR p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.messages_per_second,
        bytes as f64 / 1e6,
        r.megabytes_per_second,
        r.retr.p50_ms,
        r.retr.p90_ms,
        r.retr.p99_ms,
        r.retr.max_ms
    );
    print_table(&r.operations);
    if let Some(path) = &a.json {
        write_json(path, &r)?;
    }
    if sessions == 0 {
        bail!("no session completed");
    }
    Ok(())
}
