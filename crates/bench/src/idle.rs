//! `idle`: hold N IMAP connections in IDLE (or, with `--eventsource`, N
//! JMAP EventSource streams, RFC 8620 §7.3), measure what they cost the
//! server in memory, and how fast a delivery reaches an idling client.
//!
//! 1. Connections are opened `--open-parallel` at a time (RLIMIT_NOFILE is
//!    raised as needed); each does LOGIN, SELECT INBOX and IDLE, and counts
//!    as held once the server's `+` continuation arrived. Connection `i`
//!    logs in as user `i % users + 1`.
//! 2. Server memory: the resident set (VmRSS of /proc/PID/status) summed
//!    over a set of processes, read before the first connection and once
//!    all are held. The set is `--pid PID`, plus with `--pid-children` every
//!    process whose parent chain leads to PID, plus every process whose
//!    name (/proc/N/comm, as `pgrep -x` matches) is given with
//!    `--process-name` (repeatable). For a single-process server (Letterbox)
//!    `--pid` is enough; for Dovecot, which forks an `imap` process per
//!    session, use `--pid <master> --pid-children` or `--process-name imap`.
//!    RSS counts pages shared between processes once per process, so the
//!    proportional set size (Pss of /proc/N/smaps_rollup) is reported too
//!    when readable. Per connection = (after - before) / connections held.
//! 3. Notification latency: `--samples` times, one message is delivered
//!    over SMTP to the next user holding connections (`--rcpt` pattern,
//!    same numbering as `--user`), and the time from the end of the message
//!    data being written to the first of that user's connections receiving
//!    `* N EXISTS` is taken (and to the last of them, when a user holds
//!    several). With `--eventsource` the connections are
//!    `GET /jmap/eventsource?types=Email` with Basic auth on `--port`, and a
//!    `StateChange` event counts as the notification.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

use crate::conn::{expand, Connector, Target};
use crate::imap_proto::{exists, quote, Client, Response};
use crate::progress::{bar, Progress};
use crate::smtp;
use crate::stats::{write_json, Latencies, Summary};

#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    target: Target,
    /// IDLE connections to hold.
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 200)]
    open_parallel: usize,
    /// The server's process id, for its memory use.
    #[arg(long)]
    pid: Option<u32>,
    /// Also count every descendant of --pid.
    #[arg(long, requires = "pid")]
    pid_children: bool,
    /// Also count every process of this name (/proc/N/comm); repeatable.
    #[arg(long)]
    process_name: Vec<String>,
    /// Deliveries whose notification delay is measured (0 = none).
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Pause between samples, in milliseconds.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Give up on a notification after this many seconds.
    #[arg(long, default_value_t = 10)]
    sample_timeout: u64,
    /// SMTP host for the deliveries [default: --host].
    #[arg(long)]
    smtp_host: Option<String>,
    /// SMTP port for the deliveries.
    #[arg(long, default_value_t = 25)]
    smtp_port: u16,
    /// Implicit TLS for SMTP.
    #[arg(long)]
    smtp_tls: bool,
    /// Recipient pattern of the deliveries; `%d` as in --user.
    #[arg(long, default_value = "user%d@example.test")]
    rcpt: String,
    /// Sender of the deliveries.
    #[arg(long, default_value = "bench@remote.test")]
    from: String,
    /// Size in bytes of the delivered messages.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Keep the connections open this many seconds after measuring.
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Hold JMAP EventSource streams over HTTP instead of IMAP IDLE.
    #[arg(long)]
    eventsource: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

// ---- process memory -------------------------------------------------------

/// `(pid, comm, ppid)` from the text of /proc/N/stat; the name is in
/// parentheses and may itself hold spaces and parentheses.
pub fn parse_proc_stat(s: &str) -> Option<(u32, String, u32)> {
    let (pid, rest) = s.split_once(" (")?;
    let close = rest.rfind(')')?;
    let comm = &rest[..close];
    let mut fields = rest[close + 1..].split_ascii_whitespace();
    fields.next()?; // state
    Some((pid.trim().parse().ok()?, comm.to_string(), fields.next()?.parse().ok()?))
}

/// The value in kB of a `Key:   123 kB` line of /proc status-like files.
pub fn parse_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// The pids selected from `(pid, comm, ppid)` triples: `root` (if alive),
/// its descendants when `children`, and processes named in `names`.
pub fn select_pids(procs: &[(u32, String, u32)], root: Option<u32>, children: bool, names: &[String]) -> Vec<u32> {
    let mut set: HashSet<u32> = HashSet::new();
    if let Some(root) = root {
        if procs.iter().any(|p| p.0 == root) {
            set.insert(root);
        }
        if children {
            let parent: HashMap<u32, u32> = procs.iter().map(|p| (p.0, p.2)).collect();
            for p in procs {
                let mut cur = p.2;
                // Bounded walk, in case of a (racy) loop.
                for _ in 0..64 {
                    if cur == root {
                        set.insert(p.0);
                        break;
                    }
                    match parent.get(&cur) {
                        Some(&pp) if pp != cur && cur > 1 => cur = pp,
                        _ => break,
                    }
                }
            }
        }
    }
    for p in procs {
        if names.contains(&p.1) {
            set.insert(p.0);
        }
    }
    let mut v: Vec<u32> = set.into_iter().collect();
    v.sort_unstable();
    v
}

fn all_processes() -> Vec<(u32, String, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_proc_stat(&s))
        .collect()
}

/// Memory of a set of processes.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub processes: usize,
    pub rss_kb: u64,
    /// `None` when some smaps_rollup could not be read.
    pub pss_kb: Option<u64>,
}

fn measure(a: &IdleArgs) -> Option<Memory> {
    if a.pid.is_none() && a.process_name.is_empty() {
        return None;
    }
    let pids = select_pids(&all_processes(), a.pid, a.pid_children, &a.process_name);
    let mut m = Memory {
        processes: 0,
        rss_kb: 0,
        pss_kb: Some(0),
    };
    for pid in pids {
        // Processes may exit meanwhile; skip those.
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        m.processes += 1;
        m.rss_kb += parse_kb(&status, "VmRSS").unwrap_or(0);
        let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|s| parse_kb(&s, "Pss"));
        m.pss_kb = m.pss_kb.zip(pss).map(|(a, b)| a + b);
    }
    Some(m)
}

/// Raise the soft RLIMIT_NOFILE to `want` if possible; returns the limit.
fn raise_nofile(want: u64) -> Result<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    if r.rlim_cur >= want {
        return Ok(r.rlim_cur);
    }
    if r.rlim_max < want {
        // Raising the hard limit works with CAP_SYS_RESOURCE.
        let up = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &up) } == 0 {
            return Ok(want);
        }
    }
    let new = libc::rlimit {
        rlim_cur: want.min(r.rlim_max),
        rlim_max: r.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        bail!("setrlimit: {}", std::io::Error::last_os_error());
    }
    Ok(new.rlim_cur)
}

// ---- connections ----------------------------------------------------------

/// What the idle connections tell the sampler.
enum Event {
    /// Connection `i` received `* N EXISTS`.
    Exists(usize, Instant),
    /// Connection `i` ended.
    Closed(usize),
}

/// One held connection.
enum Held {
    Imap(Client),
    Events(crate::conn::Stream),
}

/// RFC 8620 §7.3: an EventSource stream of Email changes, past its headers.
async fn open_events(a: &IdleArgs, conn: &Connector, i: usize) -> Result<crate::conn::Stream> {
    use base64::Engine;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut s = conn.connect().await?;
    let user = a.target.user_name(i);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", a.target.password));
    let req = format!(
        "GET /jmap/eventsource?types=Email&closeafter=no&ping=0 HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Basic {auth}\r\nAccept: text/event-stream\r\n\r\n",
        conn.addr()
    );
    s.get_mut().write_all(req.as_bytes()).await?;
    let mut line = String::new();
    s.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("EventSource for {user} refused: {}", line.trim());
    }
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            bail!("EventSource for {user} closed in its header");
        }
        if line == "\r\n" || line == "\n" {
            return Ok(s);
        }
    }
}

async fn open_one(a: &IdleArgs, conn: &Connector, i: usize) -> Result<Held> {
    if a.eventsource {
        return Ok(Held::Events(open_events(a, conn, i).await?));
    }
    let mut c = Client::greet(conn.connect().await?).await?;
    let user = a.target.user_name(i);
    let r = c
        .command(&format!("LOGIN {} {}", quote(&user)?, quote(&a.target.password)?))
        .await?;
    if !r.ok() {
        bail!("LOGIN as {user} refused: {}", r.text);
    }
    let r = c.command("SELECT INBOX").await?;
    if !r.ok() {
        bail!("SELECT INBOX refused for {user}: {}", r.text);
    }
    c.idle().await?;
    Ok(Held::Imap(c))
}

/// Read responses until the connection ends, reporting EXISTS (or a
/// JMAP StateChange).
async fn watch(held: Held, i: usize, events: mpsc::UnboundedSender<Event>) {
    let mut c = match held {
        Held::Imap(c) => c,
        Held::Events(mut s) => {
            use tokio::io::AsyncBufReadExt;
            let mut line = String::new();
            loop {
                line.clear();
                match s.read_line(&mut line).await {
                    Ok(n) if n > 0 => {
                        if line.starts_with("data:")
                            && line.contains("StateChange")
                            && events.send(Event::Exists(i, Instant::now())).is_err()
                        {
                            return;
                        }
                    }
                    _ => {
                        let _ = events.send(Event::Closed(i));
                        return;
                    }
                }
            }
        }
    };
    loop {
        match c.read().await {
            Ok(Response::Untagged { text, .. }) => {
                if exists(&text).is_some() && events.send(Event::Exists(i, Instant::now())).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => {
                let _ = events.send(Event::Closed(i));
                return;
            }
        }
    }
}

#[derive(Serialize)]
struct Report {
    workload: &'static str,
    connections_requested: usize,
    connections_held: usize,
    connections_failed: usize,
    connections_alive_at_end: usize,
    open_seconds: f64,
    opened_per_second: f64,
    memory_before: Option<Memory>,
    memory_after: Option<Memory>,
    rss_mb: Option<f64>,
    rss_per_connection_kb: Option<f64>,
    pss_per_connection_kb: Option<f64>,
    samples: usize,
    samples_missed: usize,
    /// From the end of the message data to the first notified connection.
    notify_first: Delays,
    /// ... to the last connection of that user notified.
    notify_all: Delays,
}

/// Delay percentiles (a [`Summary`] without the meaningless rate).
#[derive(Serialize)]
struct Delays {
    count: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl From<Summary> for Delays {
    fn from(s: Summary) -> Delays {
        Delays {
            count: s.count,
            p50_ms: s.p50_ms,
            p90_ms: s.p90_ms,
            p99_ms: s.p99_ms,
            max_ms: s.max_ms,
        }
    }
}

pub async fn run(a: IdleArgs) -> Result<()> {
    let conn = if a.eventsource {
        a.target.connector(8080, 8443, 4096)?
    } else {
        a.target.connector(143, 993, 4096)?
    };
    let smtp_conn = Connector::new(
        a.smtp_host.as_deref().unwrap_or(&a.target.host),
        a.smtp_port,
        a.smtp_tls,
        4096,
    )?;
    let want = a.connections as u64 + 256;
    let limit = raise_nofile(want)?;
    if limit < want {
        eprintln!(
            "warning: open files limited to {limit}; fewer than {} connections may open",
            a.connections
        );
    }
    let a = Arc::new(a);
    let before = measure(&a);

    // Open the connections.
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(a.open_parallel.max(1)));
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<(usize, Result<()>)>();
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (o, f, total) = (opened.clone(), failed.clone(), a.connections as f64);
    let progress = Progress::start(move |el| {
        let n = o.load(Ordering::Relaxed);
        format!(
            "idle {} {n}/{total} connections idling, {} failed, {:.1}s",
            bar(n as f64, total, 30),
            f.load(Ordering::Relaxed),
            el.as_secs_f64()
        )
    });
    let mut tasks = Vec::with_capacity(a.connections);
    for i in 0..a.connections {
        let (a, conn, sem, ev_tx, ready_tx) = (a.clone(), conn.clone(), sem.clone(), ev_tx.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let opened = {
                let Ok(_permit) = sem.acquire().await else { return };
                open_one(&a, &conn, i).await
            };
            match opened {
                Ok(c) => {
                    let _ = ready_tx.send((i, Ok(())));
                    drop(ready_tx);
                    watch(c, i, ev_tx).await;
                }
                Err(e) => {
                    let _ = ready_tx.send((i, Err(e)));
                }
            }
        }));
    }
    drop(ready_tx);
    let mut held: Vec<bool> = vec![false; a.connections];
    while let Some((i, r)) = ready_rx.recv().await {
        match r {
            Ok(()) => {
                held[i] = true;
                opened.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if failed.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("\nconnection {i} failed: {e:#}");
                }
            }
        }
    }
    let open_time = started.elapsed();
    progress.finish().await;
    let n_held = held.iter().filter(|&&h| h).count();
    let n_failed = a.connections - n_held;
    eprintln!(
        "{n_held} connections idling after {:.1}s ({n_failed} failed)",
        open_time.as_secs_f64()
    );
    if n_held == 0 {
        bail!("no connection could be opened");
    }
    // Let the server settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = measure(&a);

    // Notification latency.
    let users = a.target.users.min(a.connections);
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); users];
    for (i, _) in held.iter().enumerate().filter(|(_, &h)| h) {
        by_user[i % a.target.users].push(i);
    }
    let mut first = Latencies::default();
    let mut all = Latencies::default();
    let mut missed = 0;
    if a.samples > 0 {
        let mut smtp = smtp::Session::open(&smtp_conn)
            .await
            .with_context(|| format!("SMTP to {}", smtp_conn.addr()))?;
        let done = Arc::new(AtomicU64::new(0));
        let (d, total) = (done.clone(), a.samples as f64);
        let progress = Progress::start(move |el| {
            let n = d.load(Ordering::Relaxed);
            format!(
                "idle {} {n}/{total} notification samples, {:.1}s",
                bar(n as f64, total, 30),
                el.as_secs_f64()
            )
        });
        let candidates: Vec<usize> = (0..users).filter(|&u| !by_user[u].is_empty()).collect();
        for k in 0..a.samples {
            let u = candidates[k % candidates.len()];
            // Forget anything that arrived between samples.
            while let Ok(ev) = ev_rx.try_recv() {
                if let Event::Closed(i) = ev {
                    held[i] = false;
                    by_user[i % a.target.users].retain(|&j| j != i);
                }
            }
            let mut waiting: HashSet<usize> = by_user[u].iter().copied().collect();
            if waiting.is_empty() {
                missed += 1;
                continue;
            }
            let rcpt = expand(&a.rcpt, u + 1);
            smtp.envelope(&a.from, &rcpt)
                .await
                .with_context(|| format!("SMTP envelope to {rcpt}"))?;
            let t0 = smtp.data(&smtp::message(a.size, 900_000_000 + k)).await?;
            let collect = async {
                let timeout = tokio::time::sleep(Duration::from_secs(a.sample_timeout));
                tokio::pin!(timeout);
                let mut got_first = None;
                let mut got_last = None;
                while !waiting.is_empty() {
                    tokio::select! {
                        ev = ev_rx.recv() => match ev {
                            Some(Event::Exists(i, t)) if waiting.remove(&i) => {
                                let d = t.saturating_duration_since(t0);
                                got_first.get_or_insert(d);
                                got_last = Some(d);
                            }
                            Some(Event::Closed(i)) => {
                                held[i] = false;
                                waiting.remove(&i);
                                by_user[i % a.target.users].retain(|&j| j != i);
                            }
                            Some(_) => {}
                            None => break,
                        },
                        () = &mut timeout => break,
                    }
                }
                Ok::<_, anyhow::Error>((got_first, got_last, waiting.is_empty()))
            };
            let (_, (f, l, complete)) = tokio::try_join!(
                async {
                    smtp.data_reply()
                        .await
                        .with_context(|| format!("SMTP delivery to {rcpt}"))
                },
                collect
            )?;
            match f {
                Some(f) => first.push(f),
                None => missed += 1,
            }
            if let (Some(l), true) = (l, complete) {
                all.push(l);
            }
            done.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
        }
        progress.finish().await;
        smtp.quit().await;
    }
    // Connections that dropped meanwhile.
    while let Ok(ev) = ev_rx.try_recv() {
        if let Event::Closed(i) = ev {
            held[i] = false;
        }
    }
    let alive = held.iter().filter(|&&h| h).count();

    // Only the percentiles are used; the rate is meaningless here.
    let one = Duration::from_secs(1);
    let per_conn = |f: fn(&Memory) -> Option<u64>| -> Option<f64> {
        let (b, af) = (f(before.as_ref()?)?, f(after.as_ref()?)?);
        Some((af as f64 - b as f64) / n_held as f64)
    };
    let r = Report {
        workload: if a.eventsource { "eventsource" } else { "idle" },
        connections_requested: a.connections,
        connections_held: n_held,
        connections_failed: n_failed,
        connections_alive_at_end: alive,
        open_seconds: open_time.as_secs_f64(),
        opened_per_second: n_held as f64 / open_time.as_secs_f64().max(1e-9),
        rss_mb: after.as_ref().map(|m| m.rss_kb as f64 / 1024.0),
        rss_per_connection_kb: per_conn(|m| Some(m.rss_kb)),
        pss_per_connection_kb: per_conn(|m| m.pss_kb),
        memory_before: before,
        memory_after: after,
        samples: first.len(),
        samples_missed: missed,
        notify_first: first.summary(one).into(),
        notify_all: all.summary(one).into(),
    };
    println!(
        "idle: {} of {} connections held ({} failed), opened in {:.1}s ({:.0}/s), {} alive at the end",
        r.connections_held,
        r.connections_requested,
        r.connections_failed,
        r.open_seconds,
        r.opened_per_second,
        r.connections_alive_at_end
    );
    match (&r.memory_before, &r.memory_after) {
        (Some(b), Some(m)) => {
            println!(
                "server memory: {} process(es), RSS {:.1} MB (was {:.1} MB before), {:.1} KB per connection",
                m.processes,
                m.rss_kb as f64 / 1024.0,
                b.rss_kb as f64 / 1024.0,
                r.rss_per_connection_kb.unwrap_or(0.0)
            );
            if let (Some(p), Some(pb), Some(pc)) = (m.pss_kb, b.pss_kb, r.pss_per_connection_kb) {
                println!(
                    "               PSS {:.1} MB (was {:.1} MB before), {pc:.1} KB per connection",
                    p as f64 / 1024.0,
                    pb as f64 / 1024.0
                );
            }
        }
        _ => println!("server memory: not measured (give --pid or --process-name)"),
    }
    if a.samples > 0 {
        println!("notification delay (end of DATA sent -> * N EXISTS received):");
        println!(
            "{:<22} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "", "samples", "missed", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (name, s, m) in [
            ("first connection", &r.notify_first, missed),
            ("all of the user's", &r.notify_all, 0),
        ] {
            println!(
                "{name:<22} {:>7} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                s.count, m, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
    }
    if let Some(path) = &a.json {
        write_json(path, &r)?;
    }
    if a.hold > 0 {
        eprintln!("holding the connections for {}s", a.hold);
        tokio::time::sleep(Duration::from_secs(a.hold)).await;
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_lines() {
        assert_eq!(
            parse_proc_stat("4242 (imap) S 17 4242 4242 0 -1 4194560 1 0 0 0"),
            Some((4242, "imap".to_string(), 17))
        );
        // Names may hold spaces and parentheses.
        assert_eq!(
            parse_proc_stat("7 (a (b) c) R 1 7 7"),
            Some((7, "a (b) c".to_string(), 1))
        );
        assert_eq!(parse_proc_stat("7 imap S 1"), None);
        assert_eq!(parse_proc_stat("7 (imap) S"), None);
    }

    #[test]
    fn kb_values() {
        let status = "Name:\tletterbox\nVmPeak:\t  900 kB\nVmRSS:\t   51234 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_kb(status, "VmRSS"), Some(51234));
        assert_eq!(parse_kb(status, "VmPeak"), Some(900));
        assert_eq!(parse_kb(status, "Pss"), None);
        assert_eq!(parse_kb("Rss:  10 kB\nPss:  7 kB\nPss_Anon: 3 kB\n", "Pss"), Some(7));
    }

    #[test]
    fn process_selection() {
        let procs: Vec<(u32, String, u32)> = [
            (1, "init", 0),
            (100, "dovecot", 1),
            (101, "imap-login", 100),
            (102, "imap", 100),
            (103, "imap", 100),
            (104, "helper", 102),
            (200, "imap", 1),
            (300, "other", 1),
        ]
        .iter()
        .map(|&(p, n, pp)| (p, n.to_string(), pp))
        .collect();
        assert_eq!(select_pids(&procs, Some(100), false, &[]), vec![100]);
        assert_eq!(select_pids(&procs, Some(100), true, &[]), vec![100, 101, 102, 103, 104]);
        assert_eq!(
            select_pids(&procs, None, false, &["imap".to_string()]),
            vec![102, 103, 200]
        );
        assert_eq!(
            select_pids(&procs, Some(300), false, &["imap".to_string()]),
            vec![102, 103, 200, 300]
        );
        assert!(select_pids(&procs, Some(999), true, &[]).is_empty());
    }

    #[test]
    fn nofile_limit() {
        let cur = raise_nofile(0).unwrap();
        assert!(cur > 0);
        assert!(raise_nofile(cur).unwrap() >= cur);
    }

    #[test]
    fn own_memory_is_measured() {
        let procs = all_processes();
        let me = std::process::id();
        assert!(procs.iter().any(|p| p.0 == me));
        let status = std::fs::read_to_string(format!("/proc/{me}/status")).unwrap();
        assert!(parse_kb(&status, "VmRSS").unwrap() > 0);
    }
}
