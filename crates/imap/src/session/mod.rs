//! One IMAP session: the state machine of RFC 9051 §3. Commands live in one
//! module per group: [`any`] (any state), [`auth`] (not authenticated),
//! [`mailboxes`] (authenticated), [`selected`] (mailbox state and sync),
//! [`fetch`] and [`messages`] (selected).

mod any;
mod auth;
mod conn;
mod deflate;
mod fetch;
mod idle;
mod mailboxes;
mod messages;
mod quota;
mod search;
mod selected;
mod sort;
mod thread;
mod view;

use std::sync::Arc;

use letterbox_net::{ConnInfo, MaybeTls, Shutdown};
use letterbox_store::{AccountId, StoreError};
use tracing::{debug, info, warn};

use crate::proto::{parse_command, parse_tag, Command, ParseError};
use crate::ImapCtx;
use conn::{Conn, Input};
use selected::Selected;

/// The logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: AccountId,
    pub address: String,
}

/// RFC 9051 §3 states. Logout has no variant: the loop ends with it.
enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Box<Selected>),
}

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Flush and close (LOGOUT, too many errors).
    Close,
    /// The tagged OK to STARTTLS is queued: flush and handshake.
    StartTls,
    /// The tagged OK to COMPRESS is queued: flush, then DEFLATE.
    Compress,
}

struct Session {
    ctx: Arc<ImapCtx>,
    info: ConnInfo,
    state: State,
    errors: u32,
    /// Extensions this client turned on.
    enabled: Enabled,
}

/// Extensions a client turns on for the rest of the connection: with
/// ENABLE (RFC 5161) or, for CONDSTORE, any of its enabling commands
/// (RFC 7162 §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    /// RFC 9051 IMAP4rev2 rules (UTF-8 names, ESEARCH, no \Recent).
    pub rev2: bool,
    /// RFC 7162 §3.1: MODSEQ in every untagged FETCH.
    pub condstore: bool,
    /// RFC 7162 §3.2: also VANISHED instead of EXPUNGE, UIDs in FETCH.
    pub qresync: bool,
    /// RFC 6855 UTF8=ACCEPT: UTF-8 mailbox names and quoted strings.
    pub utf8: bool,
}

impl Enabled {
    /// Mailbox names travel as UTF-8, not modified UTF-7 (RFC 9051 §5.1,
    /// RFC 6855 §3).
    pub fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8
    }
}

/// Serve one IMAP connection until LOGOUT, disconnect, autologout or shutdown.
pub async fn session(ctx: Arc<ImapCtx>, stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    // Logs carry the listener's `session` span (listener, session_id, peer).
    run(ctx, stream, info, shutdown).await;
}

async fn run(ctx: Arc<ImapCtx>, stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    // Issue 18: an unauthenticated connection gets a minute, not the
    // 30-minute autologout of a logged-in one.
    let mut conn = Conn::new(
        stream,
        ctx.config.idle_timeout.min(ctx.config.preauth_timeout),
        shutdown,
    );
    // Busy is not authenticated: three idle periods at most in all.
    conn.set_deadline(ctx.config.preauth_timeout.saturating_mul(3));
    let mut s = Session {
        ctx,
        info,
        state: State::NotAuthenticated,
        errors: 0,
        enabled: Enabled::default(),
    };
    // RFC 9051 §7.1.1 greeting with the capabilities, saving a round trip.
    let caps = s.capabilities(&conn);
    conn.untagged(&format!(
        "OK [CAPABILITY {caps}] {} Letterbox IMAP ready",
        s.ctx.config.hostname
    ));
    loop {
        let authenticated = !matches!(s.state, State::NotAuthenticated);
        let flow = match conn.read_command(&s.ctx.config, authenticated).await {
            Err(end) => {
                debug!(?end, "session over");
                break;
            }
            Ok(Input::Refused { tag, text, toobig }) => {
                let tag = tag.unwrap_or_else(|| "*".into());
                if toobig {
                    // RFC 9051 §7.1: a literal we will not take is a NO.
                    conn.tagged(&tag, "NO", &text);
                    Flow::Continue
                } else {
                    s.bad(&mut conn, &tag, &text)
                }
            }
            Ok(Input::Command(line)) => match parse_command(&line) {
                Ok((tag, cmd)) => s.dispatch(&mut conn, &tag, cmd).await,
                Err(ParseError::UseAttr) => {
                    let tag = parse_tag(&line).unwrap_or_else(|| "*".into());
                    conn.tagged(&tag, "NO", "[USEATTR] unsupported special-use attribute");
                    Flow::Continue
                }
                Err(e) => {
                    let tag = parse_tag(&line).unwrap_or_else(|| "*".into());
                    s.bad(&mut conn, &tag, &e.to_string())
                }
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => {
                conn.close().await;
                break;
            }
            Flow::Compress => {
                if conn.flush().await.is_err() || !conn.start_compress() {
                    break;
                }
                debug!("COMPRESS: DEFLATE on");
            }
            Flow::StartTls => {
                let Some(upgraded) = Box::pin(conn.start_tls(&s.ctx.tls)).await else {
                    break;
                };
                conn = upgraded;
                debug!("STARTTLS: TLS established");
            }
        }
    }
}

impl Session {
    async fn dispatch(&mut self, conn: &mut Conn, tag: &str, cmd: Command) -> Flow {
        debug!(command = cmd.name(), "command");
        let _timer = letterbox_net::metrics::CommandTimer::start("imap", cmd.name());
        let mut cmd = cmd;
        if !self.enabled.utf8_names() {
            match decode_mailbox_names(&mut cmd) {
                Ok(Names::Decoded) => {}
                Ok(Names::MatchNothing) => {
                    // Dovecot's answer too: no name can match such a pattern.
                    let done = if matches!(cmd, Command::Lsub { .. }) {
                        "LSUB completed"
                    } else {
                        "LIST completed"
                    };
                    conn.tagged(tag, "OK", done);
                    return Flow::Continue;
                }
                Err(name) => {
                    conn.tagged(
                        tag,
                        "NO",
                        &format!("[CANNOT] mailbox name {name:?} is not valid modified UTF-7"),
                    );
                    return Flow::Continue;
                }
            }
        }
        match cmd {
            Command::Capability => self.capability(conn, tag),
            Command::Noop => Box::pin(self.noop(conn, tag)).await,
            Command::Logout => self.logout(conn, tag),
            Command::Id(fields) => self.id(conn, tag, &fields),
            Command::StartTls | Command::Login { .. } | Command::Authenticate { .. } => {
                if !matches!(self.state, State::NotAuthenticated) {
                    return self.bad(conn, tag, &format!("{} is only valid before login", cmd.name()));
                }
                Box::pin(self.not_authenticated(conn, tag, cmd)).await
            }
            Command::Enable(caps) => self.enable(conn, tag, &caps),
            Command::Unauthenticate => self.unauthenticate(conn, tag),
            Command::Compress(mechanism) => self.compress(conn, tag, &mechanism),
            Command::Select { .. }
            | Command::Create { .. }
            | Command::Delete(_)
            | Command::Rename { .. }
            | Command::Subscribe(_)
            | Command::Unsubscribe(_)
            | Command::List { .. }
            | Command::Lsub { .. }
            | Command::Namespace
            | Command::GetQuota(_)
            | Command::GetQuotaRoot(_)
            | Command::SetQuota(_)
            | Command::Status { .. }
            | Command::Append { .. } => {
                let user = match &self.state {
                    State::NotAuthenticated => return self.bad(conn, tag, "log in first"),
                    State::Authenticated(u) | State::Selected(u, _) => u.clone(),
                };
                Box::pin(self.authenticated(conn, tag, &user, cmd)).await
            }
            Command::Idle
            | Command::Check
            | Command::Search { .. }
            | Command::Sort { .. }
            | Command::Thread { .. }
            | Command::Close
            | Command::Unselect
            | Command::Expunge { .. }
            | Command::Fetch { .. }
            | Command::Store { .. }
            | Command::Copy { .. } => {
                let State::Selected(_, sel) = &self.state else {
                    return self.bad(conn, tag, &format!("{} needs a selected mailbox", cmd.name()));
                };
                sel.expand_saved(&mut cmd);
                self.selected(conn, tag, cmd).await
            }
        }
    }

    /// RFC 9051 §7.2.2 capability list for the current state.
    /// (OBJECTID, RFC 8474, after login: ids are per account.)
    fn capabilities(&self, conn: &Conn) -> String {
        let mut caps = vec!["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE"];
        match self.state {
            State::NotAuthenticated => {
                if !conn.is_tls() {
                    caps.push("STARTTLS");
                }
                if conn.is_tls() || self.ctx.config.allow_plaintext_auth {
                    caps.extend(["AUTH=PLAIN", "AUTH=LOGIN", "AUTH=OAUTHBEARER", "AUTH=XOAUTH2"]);
                } else {
                    // RFC 9051 §6.2.3: no LOGIN/AUTHENTICATE until STARTTLS.
                    caps.push("LOGINDISABLED");
                }
            }
            _ => caps.extend([
                "NAMESPACE",
                "UNSELECT",
                "CHILDREN",
                "SPECIAL-USE",
                "CREATE-SPECIAL-USE",
                "UIDPLUS",
                "MULTIAPPEND",
                "MOVE",
                "IDLE",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "ESEARCH",
                "SEARCHRES",
                "STATUS=SIZE",
                "BINARY",
                "OBJECTID",
                "CONDSTORE",
                "QRESYNC",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "QUOTA=RES-MESSAGE",
                "PREVIEW",
                "UNAUTHENTICATE",
                "UTF8=ACCEPT",
                "SORT",
                "SORT=DISPLAY",
                "ESORT",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
                "COMPRESS=DEFLATE",
            ]),
        }
        let mut caps = caps.join(" ");
        if !matches!(self.state, State::NotAuthenticated) {
            // RFC 7889 §2: one limit for every mailbox.
            caps.push_str(&format!(" APPENDLIMIT={}", self.ctx.config.max_literal));
        }
        caps
    }

    /// RFC 7162 §3.1: a CONDSTORE enabling command other than ENABLE. The
    /// first one with a mailbox selected reports its HIGHESTMODSEQ.
    fn enable_condstore(&mut self, conn: &mut Conn) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        if let State::Selected(_, sel) = &mut self.state {
            sel.condstore = true;
            crate::proto::response::Untagged::HighestModSeq(sel.modseq).encode(&mut conn.out);
        }
    }

    /// RFC 4978 §3 COMPRESS, after login.
    fn compress(&mut self, conn: &mut Conn, tag: &str, mechanism: &str) -> Flow {
        if matches!(self.state, State::NotAuthenticated) {
            return self.bad(conn, tag, "log in first");
        }
        if conn.is_compressed() {
            conn.tagged(tag, "NO", "[COMPRESSIONACTIVE] DEFLATE is already on");
            return Flow::Continue;
        }
        if mechanism != "DEFLATE" {
            return self.bad(conn, tag, "unknown compression mechanism");
        }
        if conn.pipelined() > 0 {
            // What follows the command would already be compressed.
            return self.bad(conn, tag, "COMPRESS must be the last command sent");
        }
        conn.tagged(tag, "OK", "DEFLATE active");
        Flow::Compress
    }

    /// A mailbox name as this client reads it: UTF-8 for IMAP4rev2,
    /// modified UTF-7 for IMAP4rev1 (RFC 3501 §5.1.3).
    fn wire_name(&self, name: &str) -> String {
        if self.enabled.utf8_names() {
            name.to_string()
        } else {
            crate::proto::mutf7::encode(name)
        }
    }

    /// Passwords may travel on this connection (RFC 9051 §11.1).
    fn plaintext_ok(&self, conn: &Conn) -> bool {
        conn.is_tls() || self.ctx.config.allow_plaintext_auth
    }

    /// `BAD` for a malformed or misplaced command; BYE after too many.
    fn bad(&mut self, conn: &mut Conn, tag: &str, text: &str) -> Flow {
        self.errors += 1;
        conn.tagged(tag, "BAD", text);
        if self.errors >= self.ctx.config.max_errors {
            info!(errors = self.errors, "too many bad commands; closing");
            conn.untagged("BYE too many invalid commands");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// `NO` with a response code for a store failure (RFC 5530).
    fn store_error(&self, conn: &mut Conn, tag: &str, e: &StoreError) -> Flow {
        let (code, text) = match e {
            StoreError::NotFound(_) => ("NONEXISTENT", e.to_string()),
            StoreError::AlreadyExists(_) => ("ALREADYEXISTS", e.to_string()),
            StoreError::QuotaExceeded { .. } => ("OVERQUOTA", e.to_string()),
            StoreError::Invalid(_) | StoreError::CannotCalculateChanges => ("CANNOT", e.to_string()),
            // Issue 18: the backend's own words (SQL errors) stay in the log.
            StoreError::Backend(_) | StoreError::Closed => {
                warn!(error = %e, "store failure");
                ("UNAVAILABLE", "temporary server failure, try again".to_string())
            }
        };
        conn.tagged(tag, "NO", &format!("[{code}] {text}"));
        Flow::Continue
    }
}

/// What [`decode_mailbox_names`] made of a command's names.
#[derive(Debug, PartialEq, Eq)]
enum Names {
    /// Every name is now UTF-8 (or there were none).
    Decoded,
    /// A LIST/LSUB whose reference or every pattern is not valid modified
    /// UTF-7: it matches no mailbox, so it succeeds with no answers.
    MatchNothing,
}

/// IMAP4rev1 clients send mailbox names in modified UTF-7 (RFC 3501
/// §5.1.3); decode them to the UTF-8 the store keeps. `Err` names the bad
/// one. LIST and LSUB patterns are not names (RFC 3501 §6.3.8): one that is
/// not valid modified UTF-7 matches nothing, so it is dropped, and a LIST
/// left without patterns is answered OK with no matches, as Dovecot does.
fn decode_mailbox_names(cmd: &mut Command) -> Result<Names, String> {
    let fix = |name: &mut String| -> Result<(), String> {
        if name.is_ascii() && !name.contains('&') {
            return Ok(());
        }
        let decoded = crate::proto::mutf7::decode(name).ok_or_else(|| name.clone())?;
        *name = letterbox_store::normalize_mailbox(&decoded);
        Ok(())
    };
    match cmd {
        Command::Select { mailbox, .. }
        | Command::Create { mailbox, .. }
        | Command::Status { mailbox, .. }
        | Command::Append { mailbox, .. }
        | Command::Copy { mailbox, .. }
        | Command::Delete(mailbox)
        | Command::Subscribe(mailbox)
        | Command::Unsubscribe(mailbox) => fix(mailbox)?,
        Command::Rename { from, to } => fix(from).and_then(|_| fix(to))?,
        Command::List {
            reference, patterns, ..
        } => {
            if fix(reference).is_err() {
                return Ok(Names::MatchNothing);
            }
            patterns.retain_mut(|p| fix(p).is_ok());
            if patterns.is_empty() {
                return Ok(Names::MatchNothing);
            }
        }
        Command::Lsub { reference, pattern } => {
            let ok = fix(reference).and_then(|_| fix(pattern)).is_ok();
            return Ok(if ok { Names::Decoded } else { Names::MatchNothing });
        }
        _ => {}
    }
    Ok(Names::Decoded)
}

/// RFC 8474 §4–5 object ids: the same strings JMAP uses (ARCHITECTURE.md, "Wire ids").
pub(crate) fn object_id(kind: letterbox_jmap_proto::IdKind, id: i64) -> String {
    letterbox_jmap_proto::Id::new(kind, id).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(line: &str) -> (Result<Names, String>, Command) {
        let (_, mut cmd) = parse_command(line.as_bytes()).unwrap();
        (decode_mailbox_names(&mut cmd), cmd)
    }

    #[test]
    fn list_patterns_that_are_not_modified_utf7_match_nothing() {
        let (r, _) = decoded("a LIST \"\" !#&'+,-.%*");
        assert_eq!(r, Ok(Names::MatchNothing));
        let (r, _) = decoded("a LSUB \"&\" *");
        assert_eq!(r, Ok(Names::MatchNothing));
        // Only the bad pattern is dropped.
        let (r, cmd) = decoded("a LIST \"\" (\"&Jjo-*\" \"&bad\")");
        assert_eq!(r, Ok(Names::Decoded));
        let Command::List { patterns, .. } = cmd else { panic!() };
        assert_eq!(patterns, vec!["\u{263a}*".to_string()]);
        // A mailbox name that is not valid stays an error.
        let (r, _) = decoded("a SELECT &bad");
        assert_eq!(r, Err("&bad".to_string()));
    }
}
