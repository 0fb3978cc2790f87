//! `letterbox queue …`: the outbound queue as an operator sees it.

use crate::admin::open_store;
use crate::cli::QueueCmd;
use crate::config::Config;
use anyhow::{bail, Result};
use letterbox_store::{QueueEntry, RecipientStatus, Store};

use letterbox_store::unix_now as now;

/// `3d4h`, `5m`, `12s`: the largest two units.
fn span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let text = if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    };
    if secs < 0 {
        format!("-{text}")
    } else {
        text
    }
}

fn date(unix: i64) -> String {
    mail_parser::DateTime::from_timestamp(unix).to_rfc822()
}

fn next_attempt(e: &QueueEntry, t: i64) -> String {
    if e.lease_owner.is_some() && e.lease_until > t {
        "sending now".into()
    } else if e.next_attempt <= t {
        "due".into()
    } else {
        format!("in {}", span(e.next_attempt - t))
    }
}

pub async fn run(cfg: &Config, cmd: QueueCmd) -> Result<()> {
    let store = open_store(cfg)?;
    let result = run_on(&store, cmd).await;
    store.close();
    result
}

async fn run_on(store: &dyn Store, cmd: QueueCmd) -> Result<()> {
    let t = now();
    match cmd {
        QueueCmd::List { json } => {
            let entries = store.list_queue().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            if entries.is_empty() {
                println!("the queue is empty");
                return Ok(());
            }
            println!(
                "{:>6}  {:>7}  {:>8}  {:>3}  {:<14}  {:<30}  RECIPIENTS (pending/all)",
                "ID", "AGE", "SIZE", "TRY", "NEXT", "SENDER"
            );
            for e in &entries {
                let pending = e
                    .recipients
                    .iter()
                    .filter(|r| r.status == RecipientStatus::Pending)
                    .count();
                let first = e.recipients.first().map(|r| r.address.as_str()).unwrap_or("");
                let more = if e.recipients.len() > 1 {
                    format!(" +{}", e.recipients.len() - 1)
                } else {
                    String::new()
                };
                let sender = if e.sender.is_empty() { "<>" } else { &e.sender };
                println!(
                    "{:>6}  {:>7}  {:>8}  {:>3}  {:<14}  {:<30}  {pending}/{} {first}{more}",
                    e.id,
                    span(t - e.created),
                    e.size,
                    e.attempts,
                    next_attempt(e, t),
                    sender,
                    e.recipients.len(),
                );
                if let Some(err) = e.recipients.iter().filter_map(|r| r.last_error.as_deref()).next() {
                    println!("{:>8}last error: {err}", "");
                }
            }
            println!("{} message(s)", entries.len());
        }
        QueueCmd::Show { id } => {
            let Some(e) = store.queue_entry(id).await? else {
                bail!("no queue entry {id}");
            };
            println!("id:           {}", e.id);
            println!("sender:       <{}>", e.sender);
            println!("size:         {} bytes", e.size);
            println!("queued:       {} ({} ago)", date(e.created), span(t - e.created));
            println!("attempts:     {}", e.attempts);
            println!("next attempt: {} ({})", date(e.next_attempt), next_attempt(&e, t));
            if let Some(envid) = &e.envid {
                println!("envid:        {envid}");
            }
            if let Some(ret) = &e.ret {
                println!("ret:          {ret}");
            }
            if e.warned {
                println!("delay warning sent");
            }
            println!("recipients:");
            for r in &e.recipients {
                print!("  {:<9} <{}>", r.status.as_str(), r.address);
                if let Some(n) = &r.notify {
                    print!(" notify={n}");
                }
                println!();
                if let Some(err) = &r.last_error {
                    match &r.remote_mta {
                        Some(h) => println!("            last error from {h}: {err}"),
                        None => println!("            last error: {err}"),
                    }
                }
            }
        }
        QueueCmd::Retry { id, all } => {
            let n = store.retry_queue(if all { None } else { id }).await?;
            if n == 0 {
                if let Some(id) = id {
                    bail!("no queue entry {id}");
                }
            }
            println!("{n} message(s) due now");
        }
        QueueCmd::Delete { id } => {
            if !store.delete_queued(id).await? {
                bail!("no queue entry {id}");
            }
            println!("queue entry {id} deleted");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans() {
        assert_eq!(span(5), "5s");
        assert_eq!(span(65), "1m5s");
        assert_eq!(span(3 * 3600 + 120), "3h2m");
        assert_eq!(span(2 * 86_400 + 3600), "2d1h");
        assert_eq!(span(-30), "-30s");
    }
}
