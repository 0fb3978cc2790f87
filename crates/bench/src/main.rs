//! `letterbox-bench`: a load generator that speaks SMTP, IMAP and POP3 to
//! any server, so the very same workload runs against Letterbox and its
//! peers (Postfix, Dovecot). Every workload shows a progress line on stderr
//! while it runs, prints a summary table on stdout at the end, and writes
//! the same figures as JSON with `--json FILE`. IMAP and POP3 workloads
//! take `--host`, `--port`, `--tls` (implicit TLS; certificates are not
//! verified, benchmark servers use self-signed ones), `--user` (a pattern,
//! `%d` numbering the users 1..=`--users`) and `--password`.
//!
//! - `smtp`: N concurrent connections each send M messages of a size mix
//!   to local recipients; reports messages/s and latency percentiles of
//!   the final reply to the message data.
//! - `imap`: N concurrent clients loop for `--duration` seconds over a mail
//!   client's session (LOGIN, SELECT, FETCH, UID FETCH of headers and
//!   bodies, UID STORE, UID SEARCH, APPEND and its removal, NOOP, LOGOUT);
//!   reports operations/s and latency percentiles per command and overall.
//! - `pop3`: N concurrent clients loop over USER/PASS, STAT, LIST, UIDL,
//!   RETR of every message and QUIT (nothing deleted); reports sessions/s,
//!   messages/s, MB/s and RETR latency percentiles.
//! - `idle`: holds N IMAP connections in IDLE, reads the server's memory
//!   use from /proc before and after (`--pid`, `--pid-children`,
//!   `--process-name`), then measures how long a message delivered over
//!   SMTP takes to show up as `* N EXISTS` on an idling connection.
//! - `search`: fills one mailbox with `--messages` generated messages and
//!   times UID SEARCH BODY (rare and common word), TEXT and FROM over it.
//! - `jmap`: N clients over keep-alive HTTP/1.1 or HTTP/2 loop over a
//!   webmail's list view (Email/query of the 50 newest with
//!   collapseThreads + Email/get) and keyword changes (Email/set) on the
//!   mailbox `search` filled; reports requests/s and latency percentiles.

mod conn;
mod idle;
mod imap;
mod imap_proto;
mod jmap;
mod pop3;
mod pop3_proto;
mod progress;
mod reply;
mod search;
mod smtp;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "letterbox-bench", about = "Mail server load generator")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// Concurrent SMTP deliveries.
    Smtp(smtp::SmtpArgs),
    /// Concurrent IMAP client sessions.
    Imap(imap::ImapArgs),
    /// Concurrent POP3 sessions downloading whole mailboxes.
    Pop3(pop3::Pop3Args),
    /// Many idling IMAP connections: server memory and notification delay.
    Idle(idle::IdleArgs),
    /// SEARCH BODY/TEXT/FROM over a large generated mailbox.
    Search(search::SearchArgs),
    /// JMAP list view (query + get, threads) and keyword changes over HTTP/1.1 or HTTP/2.
    Jmap(jmap::JmapArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().workload {
        Workload::Smtp(a) => smtp::run(a).await,
        Workload::Imap(a) => imap::run(a).await,
        Workload::Pop3(a) => pop3::run(a).await,
        Workload::Idle(a) => idle::run(a).await,
        Workload::Search(a) => search::run(a).await,
        Workload::Jmap(a) => jmap::run(a).await,
    }
}
