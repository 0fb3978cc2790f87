//! `smtp`: N concurrent connections each send M messages of a size mix to
//! local recipients; also the SMTP session the `idle` workload delivers
//! its probe messages with.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncWriteExt};

use crate::conn::{expand, Connector, Stream};
use crate::progress::{bar, Progress};
use crate::reply::read_reply;
use crate::stats::{write_json, Latencies, Summary};

#[derive(clap::Args, Debug)]
pub struct SmtpArgs {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 25)]
    port: u16,
    /// Implicit TLS (certificate not verified).
    #[arg(long)]
    tls: bool,
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// Messages per connection.
    #[arg(long, short = 'm', default_value_t = 100)]
    messages: usize,
    /// Recipient pattern; `%d` is replaced by a number in 1..=users.
    #[arg(long, default_value = "user%d@example.test")]
    rcpt: String,
    /// How many users the pattern spans.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Sender address.
    #[arg(long, default_value = "bench@remote.test")]
    from: String,
    /// Message sizes in bytes to mix, comma-separated.
    #[arg(long, default_value = "1024,4096,16384,65536,1048576", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// A message of about `size` bytes, dot-terminated for DATA.
pub fn message(size: usize, n: usize) -> Vec<u8> {
    let mut m =
        format!("From: bench@remote.test\r\nSubject: bench {n}\r\nMessage-ID: <{n}.{size}@bench>\r\n\r\n").into_bytes();
    let line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnop\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m.extend_from_slice(b".\r\n");
    m
}

async fn expect<R: AsyncBufRead + Unpin>(r: &mut R, class: u16) -> Result<()> {
    let (code, text) = read_reply(r).await?;
    if code / 100 != class {
        bail!("unexpected reply {code} {text}");
    }
    Ok(())
}

/// An SMTP session after EHLO.
pub struct Session {
    io: Stream,
}

impl Session {
    pub async fn open(c: &Connector) -> Result<Session> {
        let mut io = c.connect().await?;
        expect(&mut io, 2).await?;
        io.write_all(b"EHLO bench.test\r\n").await?;
        io.flush().await?;
        expect(&mut io, 2).await?;
        Ok(Session { io })
    }

    /// MAIL, RCPT and DATA pipelined (RFC 2920, DATA last in the group).
    pub async fn envelope(&mut self, from: &str, rcpt: &str) -> Result<()> {
        self.io
            .write_all(format!("MAIL FROM:<{from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes())
            .await?;
        self.io.flush().await?;
        expect(&mut self.io, 2).await?;
        expect(&mut self.io, 2).await?;
        expect(&mut self.io, 3).await
    }

    /// Send the (dot-terminated) message; returns when it is written.
    pub async fn data(&mut self, message: &[u8]) -> Result<Instant> {
        self.io.write_all(message).await?;
        self.io.flush().await?;
        Ok(Instant::now())
    }

    /// The reply to the message data.
    pub async fn data_reply(&mut self) -> Result<()> {
        expect(&mut self.io, 2).await
    }

    pub async fn quit(mut self) {
        let _ = self.io.write_all(b"QUIT\r\n").await;
        let _ = self.io.flush().await;
    }
}

async fn smtp_connection(a: &SmtpArgs, c: &Connector, id: usize, done: &AtomicU64) -> Result<Vec<Duration>> {
    let mut s = Session::open(c).await?;
    let mut lat = Vec::with_capacity(a.messages);
    let mut rng = rand::rngs::StdRng::from_entropy();
    for i in 0..a.messages {
        let size = a.sizes[rng.gen_range(0..a.sizes.len())];
        let rcpt = expand(&a.rcpt, rng.gen_range(1..=a.users));
        let started = Instant::now();
        s.envelope(&a.from, &rcpt).await?;
        s.data(&message(size, id * 1_000_000 + i)).await?;
        s.data_reply().await?;
        lat.push(started.elapsed());
        done.fetch_add(1, Ordering::Relaxed);
    }
    s.quit().await;
    Ok(lat)
}

#[derive(Serialize)]
struct Report {
    workload: &'static str,
    connections: usize,
    seconds: f64,
    failures: usize,
    messages: usize,
    #[serde(flatten)]
    summary: Summary,
}

pub async fn run(a: SmtpArgs) -> Result<()> {
    if a.sizes.is_empty() {
        bail!("--sizes needs at least one size");
    }
    if a.users == 0 {
        bail!("--users must be at least 1");
    }
    let c = Connector::new(&a.host, a.port, a.tls, 8192)?;
    let a = Arc::new(a);
    let done = Arc::new(AtomicU64::new(0));
    let total = (a.connections * a.messages) as f64;
    let d = done.clone();
    let progress = Progress::start(move |el| {
        let n = d.load(Ordering::Relaxed);
        format!(
            "smtp {} {n}/{total} messages, {:.1}s, {:.0} msg/s",
            bar(n as f64, total, 30),
            el.as_secs_f64(),
            n as f64 / el.as_secs_f64().max(1e-9)
        )
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..a.connections {
        let (a, c, done) = (a.clone(), c.clone(), done.clone());
        tasks.push(tokio::spawn(async move { smtp_connection(&a, &c, id, &done).await }));
    }
    let mut all = Latencies::default();
    let mut failures = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => all.extend(l),
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("connection failed: {e:#}");
            }
            Err(e) => {
                failures += 1;
                eprintln!("task failed: {e}");
            }
        }
    }
    let elapsed = started.elapsed();
    progress.finish().await;
    let summary = all.summary(elapsed);
    println!("workload   messages  failures  msg/s     p50 ms   p90 ms   p99 ms   max ms");
    println!(
        "smtp       {:<9} {:<9} {:<9.1} {:<8.2} {:<8.2} {:<8.2} {:<8.2}",
        summary.count, failures, summary.per_second, summary.p50_ms, summary.p90_ms, summary.p99_ms, summary.max_ms
    );
    if let Some(path) = &a.json {
        let r = Report {
            workload: "smtp",
            connections: a.connections,
            seconds: elapsed.as_secs_f64(),
            failures,
            messages: summary.count,
            summary,
        };
        write_json(path, &r)?;
    }
    if failures > 0 {
        bail!("{failures} connection(s) failed");
    }
    Ok(())
}
