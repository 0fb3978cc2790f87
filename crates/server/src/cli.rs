//! Command-line interface (clap). Management commands open the same store
//! as a running server; SQLite's locking lets both work at once and the
//! server reads accounts from the store on every login, so changes apply
//! immediately.

use crate::config::{self, Config, Overrides};
use crate::{admin, export, queue_cmd, serve};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "letterbox",
    version,
    about = "A complete email service in one binary: SMTP, IMAP, POP3"
)]
pub struct Cli {
    /// Configuration file (default: ./letterbox.toml, then /etc/letterbox/letterbox.toml, if present).
    #[arg(long, global = true, env = "LETTERBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config; also from LETTERBOX_DATA).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Development mode: loopback high ports, plaintext auth allowed, demo account.
    #[arg(long, global = true)]
    pub dev: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the mail server.
    Serve,
    /// Manage local domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage aliases (`user@domain` or catch-all `@domain`).
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// Spam allow and block lists (README, "Inbound trust").
    #[command(subcommand)]
    Spam(SpamCmd),
    /// DMARC aggregate reports (RFC 7489 §7.2).
    #[command(subcommand)]
    Dmarc(DmarcCmd),
    /// Print the DNS records a domain should publish: MX, SPF, DKIM, DMARC,
    /// and the SRV/autoconfig records mail clients use to find the server.
    Dns { domain: String },
    /// Inspect and manage the outbound queue (works while the server runs).
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Deliver one RFC 5322 message, read from standard input, to a local
    /// address (account, alias or catch-all), e.g. to import mail or to be
    /// called as a local delivery agent. Bare LF line ends become CRLF.
    /// All or nothing: every receiving account and the queue entry for the
    /// alias's remote forwards, or nothing (exit status 75, EX_TEMPFAIL,
    /// when retrying may help: a mailbox full for now, a storage error).
    /// Works while the server runs; POP3 sessions see it at their next login.
    Deliver(DeliverArgs),
    /// Write an account's messages to standard output: every mailbox (by
    /// name, each by UID) or only the one given. Works while the server runs.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    /// Recipient address.
    pub address: String,
    /// Target mailbox of each receiving account (missing ones fall back to INBOX).
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Envelope sender of the copies forwarded to remote addresses (their
    /// bounces go there); without it they go out with the null sender.
    #[arg(long)]
    pub sender: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Account address.
    pub address: String,
    /// Export only this mailbox.
    #[arg(long)]
    pub mailbox: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Mbox)]
    pub format: ExportFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// mboxrd (RFC 4155): a "From " line before each message, LF line ends,
    /// one more ">" before every line matching /^>*From /.
    Mbox,
    /// A JSON array of {"mailbox", "uid", "flags", "internal_date" (unix
    /// seconds), "raw_base64" (the exact stored bytes)}.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum DomainCmd {
    /// Add a domain this server receives mail for.
    Add { name: String },
    /// List domains.
    List,
    /// Remove a domain (it must have no accounts or aliases).
    Remove { name: String },
}

#[derive(Args, Debug)]
pub struct QuotaArgs {
    /// Storage quota in bytes (0 = unlimited; default from [quota] in the config).
    #[arg(long)]
    pub quota_bytes: Option<u64>,
    /// Message-count quota (0 = unlimited; default from [quota] in the config).
    #[arg(long)]
    pub quota_messages: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add an account. The password is read from a prompt, or one line of
    /// standard input when it is not a terminal.
    Add {
        address: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List accounts with usage and quota.
    List {
        /// Print JSON: address, quota and usage (bytes, messages; a quota of
        /// 0 is unlimited) and password_scheme, the algorithm of the stored
        /// hash (e.g. "argon2id"; never the hash itself).
        #[arg(long)]
        json: bool,
    },
    /// Change an account's password (prompt or standard input).
    Passwd { address: String },
    /// Change an account's quota.
    Quota {
        address: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// Remove an account and all its mail.
    Remove { address: String },
    /// App passwords: extra passwords for one device or program each,
    /// usable on every protocol, revocable one by one.
    #[command(name = "app-password", subcommand)]
    AppPassword(AppPasswordCmd),
}

#[derive(Subcommand, Debug)]
pub enum AppPasswordCmd {
    /// Create one and print it (it is shown only this once).
    Add { address: String, name: String },
    /// List an account's app passwords (names and ids, never the secrets).
    List { address: String },
    /// Revoke one by its id.
    Remove { address: String, id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum AliasCmd {
    /// Add an alias delivering to one or more addresses.
    Add {
        source: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases.
    List,
    /// Remove an alias.
    Remove { source: String },
}

#[derive(Subcommand, Debug)]
pub enum DmarcCmd {
    /// Send the reports of every result recorded so far now (the server
    /// does it daily when `[inbound] dmarc_reports` is on).
    Send,
    /// Show the aggregate reports other domains sent to ADDRESS.
    Report {
        address: String,
        /// The mailbox holding them (default INBOX).
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SpamCmd {
    /// Always deliver mail from ENTRY (an address or @domain) to the
    /// inbox, when it is authenticated (DMARC pass).
    Allow {
        entry: String,
        /// For this account only (default: for every account).
        #[arg(long)]
        user: Option<String>,
    },
    /// Always put mail from ENTRY (an address or @domain) in Junk.
    Block {
        entry: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove an allow or block entry.
    Remove {
        entry: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// List the entries (of one account with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Teach the classifier messages from files (RFC 5322, e.g. a corpus),
    /// as spam or ham: one account's model with --user (and the site-wide
    /// one), else the site-wide model only.
    Learn {
        #[arg(long)]
        user: Option<String>,
        /// The files are spam.
        #[arg(long, conflicts_with = "ham", required_unless_present = "ham")]
        spam: bool,
        /// The files are ham.
        #[arg(long)]
        ham: bool,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Judge messages from files as delivery would (content rules and the
    /// classifier; no SMTP-level checks): a line per file with the score,
    /// the Junk decision and the rules that fired.
    Check {
        #[arg(long)]
        user: Option<String>,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// How many messages the classifier learnt as spam and as ham (one
    /// account's model with --user, else the site-wide one).
    Stats {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DkimCmd {
    /// Create a domain's keys (ed25519 and rsa 2048); `domain add` does this too.
    Generate {
        domain: String,
        /// Replace existing keys (publish the new DNS records first!).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// List queued messages with their recipients' state.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one queued message: envelope, schedule, each recipient's state and last error.
    Show { id: i64 },
    /// Make a message due now (or every message with --all).
    Retry {
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Remove a message from the queue without delivering or bouncing it.
    Delete { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Validate the configuration without starting anything.
    Check,
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    if let Some(p) = &cli.config {
        return Some(p.clone());
    }
    ["letterbox.toml", "/etc/letterbox/letterbox.toml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn load_config(cli: &Cli) -> Result<Config> {
    let overrides = Overrides {
        data_dir: cli.data.clone(),
        data_env: std::env::var_os(config::DATA_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        dev: cli.dev,
    };
    let path = config_path(cli);
    config::load(path.as_deref(), &overrides).context("invalid configuration")
}

/// Execute a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let cfg = load_config(&cli)?;
    match cli.command {
        Command::Serve => serve::run(cfg).await,
        Command::Config(ConfigCmd::Check) => {
            println!(
                "configuration OK ({})",
                config_path(&cli)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "defaults".into())
            );
            if let Some((cert, key)) = &cfg.tls_files {
                letterbox_net::tls::load_chain(cert).context("tls.cert")?;
                letterbox_net::tls::load_key(key).context("tls.key")?;
                println!("TLS certificate and key: OK");
            }
            println!("data directory: {}", cfg.data_dir.display());
            for (s, a) in &cfg.listeners {
                println!("listener {:<12} {a}", s.name());
            }
            Ok(())
        }
        Command::Domain(c) => admin::domain(&cfg, c).await,
        Command::User(c) => admin::user(&cfg, c).await,
        Command::Alias(c) => admin::alias(&cfg, c).await,
        Command::Deliver(a) => admin::deliver(&cfg, a).await,
        Command::Export(a) => export::run(&cfg, a).await,
        Command::Queue(c) => queue_cmd::run(&cfg, c).await,
        Command::Dkim(c) => admin::dkim(&cfg, c),
        Command::Spam(c) => admin::spam(&cfg, c).await,
        Command::Dmarc(c) => admin::dmarc(&cfg, c).await,
        Command::Dns { domain } => admin::dns(&cfg, &domain).await,
    }
}
