//! `search`: SEARCH over a large mailbox. Fills one mailbox of user 1 up to
//! `--messages` generated messages (MULTIAPPEND batches with LITERAL+,
//! else one APPEND each; deterministic, so every server gets the same
//! mail), then times `UID SEARCH BODY` for a rare and a common word,
//! `UID SEARCH TEXT` for the rare word and `UID SEARCH FROM`, each
//! `--iterations` times on one connection, and checks every server found
//! the same number of messages. Where the server offers them, also
//! `UID SORT (DATE)`, `UID SORT (SUBJECT)`, `UID THREAD REFERENCES` over the
//! whole mailbox, and a QRESYNC resynchronisation (RFC 7162): a client
//! caches the mailbox state and leaves, another session changes flags on
//! 1,000 messages and expunges 100, and the client comes back with
//! `SELECT (QRESYNC ...)`: its time and the bytes it receives.

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::Target;
use crate::imap_proto::{quote, Client};
use crate::stats::{print_table, write_json, Live, OpRow, Ops};

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    target: Target,
    /// Mailbox to fill and search (created when missing).
    #[arg(long, default_value = "bench-search")]
    mailbox: String,
    /// Messages the mailbox should hold.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Messages per MULTIAPPEND command while filling.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Times each search runs.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// A word found in about one message in a thousand.
pub const RARE: &str = "zebracorn";
/// A word found in many messages.
pub const COMMON: &str = "meeting";

static OPS: [&str; 8] = [
    "UID SEARCH BODY rare",
    "UID SEARCH BODY common",
    "UID SEARCH TEXT rare",
    "UID SEARCH FROM",
    "UID SORT (DATE)",
    "UID SORT (SUBJECT)",
    "UID THREAD REFERENCES",
    "QRESYNC resync",
];

const WORDS: &[&str] = &[
    "project", "status", "update", "budget", "review", "meeting", "deadline", "report", "customer", "release",
    "invoice", "schedule", "team", "design", "feedback", "question", "answer", "server", "network", "office", "travel",
    "lunch", "weekend", "contract", "proposal", "draft", "final", "version", "change", "request", "support", "ticket",
    "account", "payment", "order", "delivery", "quality", "testing", "launch", "market",
];

fn pick(rng: &mut rand::rngs::StdRng) -> &'static str {
    WORDS[rng.gen_range(0..WORDS.len())]
}

/// The subject of message `i`'s thread: a reply (every third message)
/// answers the message before it, under that message's subject, so the
/// mailbox has threads of two (what "collapsed by thread" collapses).
fn subject(i: usize) -> String {
    let root = if i % 3 == 1 { i - 1 } else { i };
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::MAX - root as u64);
    (0..4).map(|_| pick(&mut rng)).collect::<Vec<_>>().join(" ")
}

/// Message `i` of the generated mailbox (CRLF, a few KB, every third one a
/// reply to the one before, one in a thousand with the rare word).
pub fn message(i: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
    let mut m = format!(
        "From: Sender {s} <sender{s}@remote.test>\r\nTo: user1@example.test\r\nSubject: {}{}\r\n\
         Date: Mon, 30 Nov 2026 10:{:02}:00 +0000\r\nMessage-ID: <m{i}@remote.test>\r\n",
        if i % 3 == 1 { "Re: " } else { "" },
        subject(i),
        i % 60,
        s = i % 50,
    );
    if i % 3 == 1 && i > 0 {
        m.push_str(&format!("In-Reply-To: <m{}@remote.test>\r\n", i - 1));
    }
    m.push_str("\r\n");
    let words = rng.gen_range(60..400);
    let mut line = 0;
    for w in 0..words {
        let word = if i % 1000 == 7 && w == words / 2 {
            RARE
        } else {
            pick(&mut rng)
        };
        m.push_str(word);
        line += word.len() + 1;
        if line > 70 {
            m.push_str("\r\n");
            line = 0;
        } else {
            m.push(' ');
        }
    }
    m.push_str("\r\n");
    m.into_bytes()
}

/// How many of the first `n` generated messages have the rare word.
pub fn rare_count(n: usize) -> usize {
    (0..n).filter(|i| i % 1000 == 7).count()
}

#[derive(Serialize)]
struct Report {
    messages: usize,
    fill_seconds: f64,
    hits: Vec<(String, usize)>,
    ops: Vec<OpRow>,
    /// Bytes the client received for each QRESYNC SELECT.
    resync_bytes: Vec<usize>,
    /// FETCH and VANISHED lines of the last one.
    resync_fetches: usize,
    resync_vanished: String,
}

/// Bytes of a reply as received (near enough: text, CRLFs, literals).
fn reply_bytes(r: &crate::imap_proto::Reply) -> usize {
    r.untagged
        .iter()
        .map(|(t, l)| t.len() + 4 + l.iter().map(Vec::len).sum::<usize>())
        .sum::<usize>()
        + r.text.len()
        + 8
}

/// A response code's number, e.g. `[HIGHESTMODSEQ 123]`.
fn code_number(r: &crate::imap_proto::Reply, code: &str) -> Option<u64> {
    r.untagged.iter().find_map(|(t, _)| {
        let at = t.find(&format!("[{code} "))? + code.len() + 2;
        t[at..].split(']').next()?.trim().parse().ok()
    })
}

async fn fill(c: &mut Client, a: &SearchArgs, from: usize) -> Result<()> {
    let mut i = from;
    while i < a.messages {
        let end = (i + a.batch.max(1)).min(a.messages);
        if c.has_cap("MULTIAPPEND") && c.has_cap("LITERAL+") {
            let msgs: Vec<Vec<u8>> = (i..end).map(message).collect();
            let r = c.multiappend(&a.mailbox, &msgs).await?;
            if !r.ok() {
                bail!("MULTIAPPEND refused: {}", r.text);
            }
        } else {
            for k in i..end {
                let r = c.append(&a.mailbox, "", &message(k)).await?;
                if !r.ok() {
                    bail!("APPEND refused: {}", r.text);
                }
            }
        }
        i = end;
        eprint!("\rfilling {i}/{}", a.messages);
    }
    eprintln!();
    Ok(())
}

pub async fn run(a: SearchArgs) -> Result<()> {
    let conn = a.target.connector(143, 993, 1 << 16)?;
    let mut c = Client::greet(conn.connect().await?).await?;
    let user = a.target.user_name(0);
    let r = c
        .command(&format!("LOGIN {} {}", quote(&user)?, quote(&a.target.password)?))
        .await?;
    if !r.ok() {
        bail!("LOGIN as {user} refused");
    }
    c.command("CAPABILITY").await?;
    c.command(&format!("CREATE {}", quote(&a.mailbox)?)).await?;
    let sel = c.command(&format!("SELECT {}", quote(&a.mailbox)?)).await?;
    let have = sel.exists().context("no EXISTS in the SELECT answer")? as usize;
    let t = Instant::now();
    if have < a.messages {
        fill(&mut c, &a, have).await?;
        c.command(&format!("SELECT {}", quote(&a.mailbox)?)).await?;
    }
    let fill_seconds = t.elapsed().as_secs_f64();
    let live = Arc::new(Live::default());
    let mut ops = Ops::new(&OPS, live);
    // What each answers and how its matches are counted; the sorts and
    // threading (RFC 5256) only where offered.
    let sorted = |r: &crate::imap_proto::Reply| -> usize {
        r.untagged
            .iter()
            .filter(|(t, _)| t.starts_with("SORT") || t.starts_with("THREAD"))
            .map(|(t, _)| {
                t.split(|ch: char| !ch.is_ascii_digit())
                    .filter(|w| !w.is_empty())
                    .count()
            })
            .sum()
    };
    let searched = |r: &crate::imap_proto::Reply| r.search().len();
    type Counter<'a> = &'a dyn Fn(&crate::imap_proto::Reply) -> usize;
    let commands: [(Option<&str>, String, Counter); 7] = [
        (None, format!("UID SEARCH BODY {RARE}"), &searched),
        (None, format!("UID SEARCH BODY {COMMON}"), &searched),
        (None, format!("UID SEARCH TEXT {RARE}"), &searched),
        (None, "UID SEARCH FROM sender7@".to_string(), &searched),
        (Some("SORT"), "UID SORT (DATE) UTF-8 ALL".to_string(), &sorted),
        (Some("SORT"), "UID SORT (SUBJECT) UTF-8 ALL".to_string(), &sorted),
        (
            Some("THREAD=REFERENCES"),
            "UID THREAD REFERENCES UTF-8 ALL".to_string(),
            &sorted,
        ),
    ];
    let mut hits = Vec::new();
    let started = Instant::now();
    for (op, (cap, cmd, count)) in commands.iter().enumerate() {
        if cap.is_some_and(|cap| !c.has_cap(cap)) {
            continue;
        }
        let mut found = 0;
        for _ in 0..a.iterations.max(1) {
            let t = Instant::now();
            let r = c.command(cmd).await?;
            if r.ok() {
                ops.record(op, t.elapsed());
                found = count(&r);
            } else {
                ops.error(op);
            }
        }
        hits.push((cmd.clone(), found));
    }
    let mut resync_bytes = Vec::new();
    let (mut resync_fetches, mut resync_vanished) = (0, String::new());
    if c.has_cap("QRESYNC") {
        for k in 0..a.iterations.max(1) {
            let (b, f, v) = resync_once(&a, &conn, &user, &mut ops, k).await?;
            resync_bytes.push(b);
            resync_fetches = f;
            resync_vanished = v;
        }
        c.command(&format!("SELECT {}", quote(&a.mailbox)?)).await?;
    }
    let rows = ops.rows(started.elapsed().max(Duration::from_millis(1)));
    print_table(&rows);
    for (cmd, n) in &hits {
        println!("{cmd}: {n} messages");
    }
    let expect = rare_count(a.messages);
    if hits[0].1 != expect {
        eprintln!("warning: BODY {RARE} found {} messages, expected {expect}", hits[0].1);
    }
    if let Some(path) = &a.json {
        write_json(
            path,
            &Report {
                messages: a.messages,
                fill_seconds,
                hits,
                ops: rows,
                resync_bytes,
                resync_fetches,
                resync_vanished,
            },
        )?;
    }
    c.command("LOGOUT").await.ok();
    Ok(())
}

/// One QRESYNC round trip after 1,000 flag changes and 100 expunges
/// (of 100 extra messages appended first, so the searched mail stays).
/// Returns (bytes received, FETCH lines, the VANISHED set).
async fn resync_once(
    a: &SearchArgs,
    conn: &crate::conn::Connector,
    user: &str,
    ops: &mut Ops,
    k: usize,
) -> Result<(usize, usize, String)> {
    let login_cmd = format!("LOGIN {} {}", quote(user)?, quote(&a.target.password)?);
    let mbox = quote(&a.mailbox)?;
    let mut other = Client::greet(conn.connect().await?).await?;
    other.command(&login_cmd).await?;
    other.command(&format!("SELECT {mbox}")).await?;
    let extra: Vec<Vec<u8>> = (0..100).map(|i| message(a.messages + i)).collect();
    for m in &extra {
        other.append(&a.mailbox, "", m).await?;
    }
    // The phone: caches the state, then goes away.
    let mut phone = Client::greet(conn.connect().await?).await?;
    phone.command(&login_cmd).await?;
    phone.command("ENABLE QRESYNC").await?;
    let sel = phone.command(&format!("SELECT {mbox}")).await?;
    let uv = code_number(&sel, "UIDVALIDITY").context("no UIDVALIDITY")?;
    let modseq = code_number(&sel, "HIGHESTMODSEQ").context("no HIGHESTMODSEQ")?;
    let total = sel.exists().unwrap_or(0) as usize;
    phone.command("LOGOUT").await.ok();
    // Meanwhile: 1,000 flag changes, 100 expunges.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    other
        .command(&format!("STORE 1:1000 +FLAGS.SILENT ($b{stamp}x{k})"))
        .await?;
    other
        .command(&format!(
            "STORE {}:* +FLAGS.SILENT (\\Deleted)",
            total.saturating_sub(99).max(1)
        ))
        .await?;
    other.command("EXPUNGE").await?;
    other.command("LOGOUT").await.ok();
    // Back: one SELECT with QRESYNC.
    let mut phone = Client::greet(conn.connect().await?).await?;
    phone.command(&login_cmd).await?;
    phone.command("ENABLE QRESYNC").await?;
    let t = Instant::now();
    let r = phone
        .command(&format!("SELECT {mbox} (QRESYNC ({uv} {modseq}))"))
        .await?;
    if r.ok() {
        ops.record(7, t.elapsed());
    } else {
        ops.error(7);
    }
    let fetches = r.untagged.iter().filter(|(t, _)| t.contains(" FETCH ")).count();
    let vanished = r
        .untagged
        .iter()
        .find(|(t, _)| t.starts_with("VANISHED"))
        .map(|(t, _)| t.clone())
        .unwrap_or_default();
    phone.command("LOGOUT").await.ok();
    Ok((reply_bytes(&r), fetches, vanished))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_mail_is_deterministic_and_marked() {
        assert_eq!(message(5), message(5));
        assert_ne!(message(5), message(6));
        let m = String::from_utf8(message(1007)).unwrap();
        assert!(m.contains(RARE));
        assert!(!String::from_utf8(message(1008)).unwrap().contains(RARE));
        assert!(String::from_utf8(message(4))
            .unwrap()
            .contains("In-Reply-To: <m3@remote.test>"));
        assert_eq!(rare_count(100_000), 100);
    }
}
