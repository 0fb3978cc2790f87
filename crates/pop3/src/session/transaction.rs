//! TRANSACTION state (RFC 1939 §5, §7) and UPDATE state (§6).

use letterbox_store::{AccountId, MailboxId, MessageId, StoreError};
use tracing::{info, warn};

use super::conn::Conn;
use crate::proto::{self, Command, RespCode};
use crate::{MaildropLock, Pop3Ctx};

/// One message of the login-time snapshot.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: MessageId,
    pub size: u64,
    /// Marked by DELE; removed only in UPDATE.
    pub deleted: bool,
}

/// The locked maildrop (the account's INBOX) as seen at login. Message
/// numbers index `messages` and never change during the session; mail that
/// arrives later shows up at the next login (RFC 1939 §5).
pub struct Maildrop {
    pub account: AccountId,
    pub address: String,
    pub mailbox: MailboxId,
    pub messages: Vec<Entry>,
    pub _lock: MaildropLock,
}

impl Maildrop {
    /// The visible message with number `n`, or the `-ERR` text.
    fn get(&self, n: u32) -> Result<&Entry, String> {
        let entry = n
            .checked_sub(1)
            .and_then(|i| self.messages.get(i as usize))
            .ok_or_else(|| format!("no such message: {n} (maildrop has {})", self.messages.len()))?;
        if entry.deleted {
            return Err(format!("message {n} already deleted"));
        }
        Ok(entry)
    }

    /// Visible messages with their numbers.
    fn visible(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    /// RFC 1939 §5 STAT figures: count and total size of visible messages.
    pub fn stat(&self) -> (usize, u64) {
        self.visible().fold((0, 0), |(n, size), (_, e)| (n + 1, size + e.size))
    }
}

/// Run a TRANSACTION command. `Err` is the text of a `-ERR` for bad input
/// (counted against the client); store failures are answered here.
pub async fn command(ctx: &Pop3Ctx, m: &mut Maildrop, conn: &mut Conn, cmd: Command) -> Result<(), String> {
    let out = &mut conn.out;
    match cmd {
        Command::Stat => {
            let (n, size) = m.stat();
            proto::ok(out, &format!("{n} {size}"));
        }
        Command::List(None) => {
            let (n, size) = m.stat();
            proto::ok(out, &format!("{n} messages ({size} octets)"));
            proto::multiline(out, m.visible().map(|(i, e)| format!("{i} {}", e.size)));
        }
        Command::List(Some(n)) => {
            let e = m.get(n)?;
            proto::ok(out, &format!("{n} {}", e.size));
        }
        Command::Uidl(None) => {
            proto::ok(out, "unique-id listing follows");
            proto::multiline(out, m.visible().map(|(i, e)| format!("{i} {}", proto::unique_id(e.id))));
        }
        Command::Uidl(Some(n)) => {
            let e = m.get(n)?;
            proto::ok(out, &format!("{n} {}", proto::unique_id(e.id)));
        }
        Command::Retr(n) => send_message(ctx, m, conn, n, None).await?,
        Command::Top(n, lines) => send_message(ctx, m, conn, n, Some(lines)).await?,
        Command::Dele(n) => {
            m.get(n)?;
            if let Some(e) = m.messages.get_mut(n as usize - 1) {
                e.deleted = true;
            }
            proto::ok(out, &format!("message {n} deleted"));
        }
        Command::Rset => {
            for e in &mut m.messages {
                e.deleted = false;
            }
            let (n, size) = m.stat();
            proto::ok(out, &format!("maildrop has {n} messages ({size} octets)"));
        }
        Command::Noop => proto::ok(out, ""),
        other => return Err(format!("{} is not allowed after login", other.name())),
    }
    Ok(())
}

/// RETR (RFC 1939 §5) or TOP (§7) with `body_lines`.
async fn send_message(
    ctx: &Pop3Ctx,
    m: &Maildrop,
    conn: &mut Conn,
    n: u32,
    body_lines: Option<u64>,
) -> Result<(), String> {
    let id = m.get(n)?.id;
    match ctx.store.raw_message(id).await {
        Ok(raw) => {
            match body_lines {
                None => proto::ok(&mut conn.out, &format!("{} octets", raw.len())),
                Some(_) => proto::ok(&mut conn.out, "top of message follows"),
            }
            proto::message(&mut conn.out, &raw, body_lines);
        }
        Err(StoreError::NotFound(_)) => {
            // Removed by another protocol (IMAP EXPUNGE) since login.
            proto::err(&mut conn.out, None, &format!("message {n} is no longer available"));
        }
        Err(e) => {
            warn!(error = %e, message_id = id, "cannot read message");
            proto::err(&mut conn.out, Some(RespCode::SysTemp), "cannot read the message now");
        }
    }
    Ok(())
}

/// RFC 1939 §6 UPDATE: remove the messages marked by DELE, all in one store
/// transaction, then sign off. On failure nothing is removed and the client
/// is told so.
pub async fn update(ctx: &Pop3Ctx, m: &Maildrop, conn: &mut Conn) {
    let ids: Vec<MessageId> = m.messages.iter().filter(|e| e.deleted).map(|e| e.id).collect();
    let host = &ctx.config.hostname;
    if ids.is_empty() {
        info!(account = %m.address, deleted = 0, "POP3 logout");
        proto::ok(&mut conn.out, &format!("{host} signing off"));
        return;
    }
    match ctx.store.delete_messages(m.mailbox, &ids).await {
        Ok(gone) => {
            info!(account = %m.address, deleted = gone.len(), "POP3 logout");
            proto::ok(
                &mut conn.out,
                &format!("{host} signing off ({} messages deleted)", ids.len()),
            );
        }
        Err(e) => {
            warn!(account = %m.address, error = %e, "UPDATE failed; nothing deleted");
            proto::err(
                &mut conn.out,
                Some(RespCode::SysTemp),
                "some deleted messages not removed; try again later",
            );
        }
    }
}
