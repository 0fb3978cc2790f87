//! The `letterbox` binary: command line, configuration, and the server
//! runtime that wires listeners to protocol sessions. Library crates hold
//! the logic; this crate is glue and the only place `anyhow` is used.

mod admin;
mod cli;
mod config;
mod export;
mod protocols;
mod queue_cmd;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Serve) {
        // A command's output piped into `head` ends quietly, as Unix tools
        // do, instead of panicking on the closed pipe (Rust ignores SIGPIPE).
        // SAFETY: restores the default disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<admin::TempFail>()) {
                // sysexits.h EX_TEMPFAIL: a calling MTA defers and retries.
                ExitCode::from(75)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
