//! `letterbox-bench`: a load generator that speaks SMTP to any server, so
//! the very same workload runs against Letterbox and a peer (Postfix).
//!
//! `smtp`: N concurrent connections each send M messages of a size mix to
//! local recipients; reports messages/s and latency percentiles of the
//! final reply to the message data.

mod reply;
mod stats;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rand::{Rng, SeedableRng};
use reply::read_reply;
use stats::Latencies;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(name = "letterbox-bench", about = "Mail server load generator")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// Concurrent SMTP deliveries.
    Smtp(SmtpArgs),
}

#[derive(clap::Args, Debug)]
struct SmtpArgs {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 25)]
    port: u16,
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

fn message(size: usize, n: usize) -> Vec<u8> {
    let mut m =
        format!("From: bench@remote.test\r\nSubject: bench {n}\r\nMessage-ID: <{n}.{size}@bench>\r\n\r\n").into_bytes();
    let line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnop\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m.extend_from_slice(b".\r\n");
    m
}

async fn expect(r: &mut BufReader<tokio::io::ReadHalf<TcpStream>>, class: u16) -> Result<()> {
    let (code, text) = read_reply(r).await?;
    if code / 100 != class {
        bail!("unexpected reply {code} {text}");
    }
    Ok(())
}

async fn smtp_connection(a: &SmtpArgs, id: usize) -> Result<Vec<Duration>> {
    let stream = TcpStream::connect((a.host.as_str(), a.port)).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = tokio::io::split(stream);
    let mut r = BufReader::new(rd);
    expect(&mut r, 2).await?;
    wr.write_all(b"EHLO bench.test\r\n").await?;
    expect(&mut r, 2).await?;
    let mut lat = Vec::with_capacity(a.messages);
    let mut rng = rand::rngs::StdRng::from_entropy();
    for i in 0..a.messages {
        let size = a.sizes[rng.gen_range(0..a.sizes.len())];
        let user = rng.gen_range(1..=a.users);
        let rcpt = a.rcpt.replace("%d", &user.to_string());
        let started = Instant::now();
        // RFC 2920: MAIL and RCPT pipelined, DATA last in the group.
        wr.write_all(format!("MAIL FROM:<{}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n", a.from).as_bytes())
            .await?;
        expect(&mut r, 2).await?;
        expect(&mut r, 2).await?;
        expect(&mut r, 3).await?;
        wr.write_all(&message(size, id * 1_000_000 + i)).await?;
        expect(&mut r, 2).await?;
        lat.push(started.elapsed());
    }
    wr.write_all(b"QUIT\r\n").await?;
    Ok(lat)
}

async fn smtp(a: SmtpArgs) -> Result<()> {
    if a.sizes.is_empty() {
        bail!("--sizes needs at least one size");
    }
    let a = std::sync::Arc::new(a);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..a.connections {
        let a = a.clone();
        tasks.push(tokio::spawn(async move { smtp_connection(&a, id).await }));
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
    let summary = all.summary(elapsed);
    println!("workload   messages  failures  msg/s     p50 ms   p99 ms");
    println!(
        "smtp       {:<9} {:<9} {:<9.1} {:<8.2} {:<8.2}",
        summary.count, failures, summary.per_second, summary.p50_ms, summary.p99_ms
    );
    if let Some(path) = &a.json {
        let v = serde_json::json!({"workload": "smtp", "messages": summary.count, "failures": failures,
            "per_second": summary.per_second, "p50_ms": summary.p50_ms, "p99_ms": summary.p99_ms,
            "connections": a.connections, "seconds": elapsed.as_secs_f64()});
        std::fs::write(path, serde_json::to_string_pretty(&v)?)?;
    }
    if failures > 0 {
        bail!("{failures} connection(s) failed");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().workload {
        Workload::Smtp(a) => smtp(a).await,
    }
}
