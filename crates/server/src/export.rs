//! `letterbox export`: an account's messages on standard output, as an
//! mboxrd file (RFC 4155) or as JSON with the exact stored bytes. Reads
//! through the [`Store`] trait only, so it works on every backend and while
//! the server runs.

use crate::admin::open_store;
use crate::cli::{ExportArgs, ExportFormat};
use crate::config::Config;
use anyhow::{anyhow, bail, Result};
use base64::Engine;
use letterbox_store::{MessageMeta, Store, StoreError};
use std::io::{self, Write};

/// Envelope sender of the `From ` line when a message has no usable
/// Return-Path (RFC 4155 §2 allows any address there).
const UNKNOWN_SENDER: &str = "MAILER-DAEMON";

/// Longest Return-Path address copied into a `From ` line.
const MAX_SENDER_LEN: usize = 256;

pub async fn run(cfg: &Config, args: ExportArgs) -> Result<()> {
    let store = open_store(cfg)?;
    let mut out = io::BufWriter::new(io::stdout());
    let result = match export(&store, &args, &mut out).await {
        Ok(_) => out.flush().map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    store.close();
    match result {
        // The reader went away (`letterbox export ... | head`): not an error.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Write the messages `args` selects to `out`; returns how many.
async fn export(store: &dyn Store, args: &ExportArgs, out: &mut impl Write) -> Result<usize> {
    let address = letterbox_store::normalize_address(&args.address)?;
    let Some(account) = store.account(&address).await? else {
        bail!("account {address} does not exist");
    };
    let mailboxes = match &args.mailbox {
        Some(name) => vec![store
            .mailbox(account.id, name)
            .await?
            .ok_or_else(|| anyhow!("account {address} has no mailbox {name}"))?],
        None => store.list_mailboxes(account.id).await?,
    };
    let mut count = 0;
    if args.format == ExportFormat::Json {
        out.write_all(b"[")?;
    }
    for mailbox in &mailboxes {
        for meta in store.messages(mailbox.id).await? {
            let raw = match store.raw_message(meta.id).await {
                Ok(raw) => raw,
                // Expunged since `messages` listed it.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            match args.format {
                ExportFormat::Mbox => write_mbox(out, meta.internal_date, &raw)?,
                ExportFormat::Json => {
                    out.write_all(if count == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *out, &JsonMessage::new(&mailbox.name, &meta, &raw))?;
                }
            }
            count += 1;
        }
    }
    if args.format == ExportFormat::Json {
        out.write_all(if count == 0 { b"]\n" } else { b"\n]\n" })?;
    }
    Ok(count)
}

/// One element of the JSON export.
#[derive(serde::Serialize)]
struct JsonMessage<'a> {
    mailbox: &'a str,
    uid: u32,
    flags: &'a [String],
    internal_date: i64,
    raw_base64: String,
}

impl<'a> JsonMessage<'a> {
    fn new(mailbox: &'a str, meta: &'a MessageMeta, raw: &[u8]) -> Self {
        JsonMessage {
            mailbox,
            uid: meta.uid,
            flags: &meta.flags,
            internal_date: meta.internal_date,
            raw_base64: base64::engine::general_purpose::STANDARD.encode(raw),
        }
    }
}

/// One mboxrd entry: the `From ` line, the message with CRLF turned into LF
/// and `>*From ` lines quoted with one more `>`, a final newline if the
/// message lacks one, and the empty line that separates entries.
fn write_mbox(out: &mut impl Write, internal_date: i64, raw: &[u8]) -> io::Result<()> {
    writeln!(out, "From {} {}", envelope_sender(raw), asctime(internal_date))?;
    if !raw.is_empty() {
        let text = raw.strip_suffix(b"\n").unwrap_or(raw);
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if is_from_line(line) {
                out.write_all(b">")?;
            }
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
    }
    out.write_all(b"\n")
}

/// RFC 4155 mboxrd: a line of zero or more `>` followed by `From `.
fn is_from_line(line: &[u8]) -> bool {
    let unquoted = &line[line.iter().take_while(|&&b| b == b'>').count()..];
    unquoted.starts_with(b"From ")
}

/// The address of the message's Return-Path header (added at final
/// delivery), or [`UNKNOWN_SENDER`] for `<>`, none, or one unfit for a
/// `From ` line.
fn envelope_sender(raw: &[u8]) -> String {
    const NAME: &[u8] = b"return-path:";
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() < NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            continue;
        }
        let value = line[NAME.len()..].trim_ascii();
        let address = value
            .strip_prefix(b"<")
            .and_then(|v| v.strip_suffix(b">"))
            .unwrap_or(value);
        let usable = !address.is_empty()
            && address.len() <= MAX_SENDER_LEN
            && address.iter().all(|&b| b > b' ' && b != 0x7f && b != b'<' && b != b'>');
        return match (usable, std::str::from_utf8(address)) {
            (true, Ok(address)) => address.to_string(),
            _ => UNKNOWN_SENDER.to_string(),
        };
    }
    UNKNOWN_SENDER.to_string()
}

/// `Thu Nov 24 18:22:48 1986`: asctime(3) of a unix time, in UTC.
fn asctime(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = mail_parser::DateTime::from_timestamp(unix);
    let weekday = DAYS.get(usize::from(t.day_of_week())).unwrap_or(&"Sun");
    let month = MONTHS.get(usize::from(t.month).wrapping_sub(1)).unwrap_or(&"Jan");
    format!(
        "{weekday} {month} {:>2} {:02}:{:02}:{:02} {}",
        t.day, t.hour, t.minute, t.second, t.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbox(internal_date: i64, raw: &[u8]) -> String {
        let mut out = Vec::new();
        write_mbox(&mut out, internal_date, raw).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mboxrd_quotes_from_lines_and_uses_lf() {
        let raw = b"Return-Path: <alice@example.test>\r\nSubject: s\r\n\r\n\
From the start\r\n>From once\r\n>>From twice\r\nFrom\r\n From indented\r\nfrom lower\r\nlast";
        assert_eq!(
            mbox(0, raw),
            "From alice@example.test Thu Jan  1 00:00:00 1970\n\
             Return-Path: <alice@example.test>\nSubject: s\n\n\
             >From the start\n>>From once\n>>>From twice\nFrom\n From indented\nfrom lower\nlast\n\n"
        );
    }

    #[test]
    fn mbox_from_line_sender_and_date() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(
            mbox(t, b"Subject: x\r\n\r\nbody\r\n"),
            "From MAILER-DAEMON Thu Feb 29 13:05:09 2024\nSubject: x\n\nbody\n\n"
        );
        assert!(mbox(t, b"return-path:   <>\r\n\r\n").starts_with("From MAILER-DAEMON Thu"));
        assert!(mbox(t, b"Return-Path: <a b@c>\r\n\r\n").starts_with("From MAILER-DAEMON Thu"));
        assert!(
            mbox(t, b"Return-Path: <j\xc3\xb6rg@example.test>\r\n\r\n").starts_with("From j\u{f6}rg@example.test Thu")
        );
        // Only the header section counts.
        assert!(mbox(t, b"Subject: x\r\n\r\nReturn-Path: <b@c.test>\r\n").starts_with("From MAILER-DAEMON"));
        assert_eq!(mbox(t, b""), "From MAILER-DAEMON Thu Feb 29 13:05:09 2024\n\n");
        assert_eq!(asctime(1_000_000_000), "Sun Sep  9 01:46:40 2001");
    }

    #[test]
    fn json_round_trips_every_byte() {
        let raw: Vec<u8> = (0..=255u8).chain(*b"\r\n\n\r").collect();
        let meta = JsonMessage {
            mailbox: "Archive/2024",
            uid: 7,
            flags: &["\\Seen".to_string(), "$label".to_string()],
            internal_date: 1_709_211_909,
            raw_base64: base64::engine::general_purpose::STANDARD.encode(&raw),
        };
        let v: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&meta).unwrap()).unwrap();
        assert_eq!(v["mailbox"], "Archive/2024");
        assert_eq!(v["uid"], 7);
        assert_eq!(v["flags"], serde_json::json!(["\\Seen", "$label"]));
        assert_eq!(v["internal_date"], 1_709_211_909);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v["raw_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, raw);
    }
}
