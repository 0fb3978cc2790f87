//! One POP3 session: the AUTHORIZATION → TRANSACTION → UPDATE state machine
//! of RFC 1939 §3. Commands of each state live in their own module;
//! UPDATE is entered only by QUIT in TRANSACTION ([`transaction`]).

mod authorization;
mod conn;
mod transaction;

use std::sync::Arc;

use letterbox_net::{ConnInfo, MaybeTls, Shutdown};
use tracing::{debug, info};

use crate::proto::{self, Command, ParseError, RespCode};
use crate::Pop3Ctx;
use conn::{Conn, Input};
use transaction::Maildrop;

/// RFC 1939 §3 session states. UPDATE is transient (inside QUIT), so it has
/// no variant: after it the session is over.
enum State {
    /// RFC 1939 §4; `user` is the name from a preceding USER command.
    Authorization { user: Option<String> },
    /// RFC 1939 §5: logged in, maildrop locked and snapshotted.
    Transaction(Maildrop),
}

/// What the command loop does after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Flush and close the connection.
    Close,
    /// `+OK` to STLS is queued: flush and start the TLS handshake.
    StartTls,
}

struct Session {
    ctx: Arc<Pop3Ctx>,
    info: ConnInfo,
    state: State,
    /// Bad commands so far (RFC 1939 does not limit them; we do).
    errors: u32,
}

/// Serve one POP3 connection until QUIT, disconnect, autologout or shutdown.
pub async fn session(ctx: Arc<Pop3Ctx>, stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    // Logs carry the listener's `session` span (listener, session_id, peer).
    run(ctx, stream, info, shutdown).await;
}

async fn run(ctx: Arc<Pop3Ctx>, stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    let mut conn = Conn::new(stream, ctx.config.idle_timeout, shutdown);
    let mut s = Session {
        ctx,
        info,
        state: State::Authorization { user: None },
        errors: 0,
    };
    // RFC 1939 §4 greeting; no APOP timestamp since APOP is not offered.
    proto::ok(
        &mut conn.out,
        &format!("{} Letterbox POP3 server ready", s.ctx.config.hostname),
    );
    loop {
        let max = s.ctx.config.max_line;
        let flow = match conn.read(max).await {
            Err(end) => {
                debug!(?end, "session over");
                break;
            }
            Ok(Input::TooLong) => s.bad(&mut conn, &format!("line too long (limit {max} octets)")),
            Ok(Input::Line(line)) => match proto::parse_command(line.as_bytes()) {
                Ok(cmd) => s.dispatch(&mut conn, cmd).await,
                Err(e) => {
                    let text = match e {
                        ParseError::Unknown => format!("unknown command {}", keyword(line.as_bytes())),
                        other => other.to_string(),
                    };
                    s.bad(&mut conn, &text)
                }
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => {
                conn.close().await;
                break;
            }
            Flow::StartTls => {
                let Some(upgraded) = conn.start_tls(&s.ctx.tls).await else {
                    break;
                };
                conn = upgraded;
                debug!("STLS: TLS established");
            }
        }
    }
    if let State::Transaction(m) = &s.state {
        info!(account = %m.address, "connection ended without QUIT; nothing deleted");
    }
}

/// The keyword of a line, for error texts (bounded: it is client input).
fn keyword(line: &[u8]) -> String {
    let word = line.split(|&b| b == b' ').next().unwrap_or_default();
    let word = &word[..word.len().min(16)];
    String::from_utf8_lossy(word).into_owned()
}

impl Session {
    async fn dispatch(&mut self, conn: &mut Conn, cmd: Command) -> Flow {
        debug!(command = cmd.name(), "command");
        let _timer = letterbox_net::metrics::CommandTimer::start("pop3", cmd.name());
        match cmd {
            Command::Capa => {
                self.capa(conn);
                Flow::Continue
            }
            Command::Noop if matches!(self.state, State::Transaction(_)) => {
                proto::ok(&mut conn.out, "");
                Flow::Continue
            }
            Command::Quit => self.quit(conn).await,
            Command::User(_) | Command::Pass(_) | Command::Auth(_) | Command::Stls => match self.state {
                State::Authorization { .. } => self.authorization(conn, cmd).await,
                State::Transaction(_) => self.bad(conn, "already authenticated"),
            },
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => {
                let result = match &mut self.state {
                    State::Transaction(m) => transaction::command(&self.ctx, m, conn, cmd).await,
                    State::Authorization { .. } => Err("not authenticated yet".to_string()),
                };
                match result {
                    Ok(()) => Flow::Continue,
                    Err(text) => self.bad(conn, &text),
                }
            }
        }
    }

    /// RFC 2449 §5 CAPA. USER and SASL only where a password may be sent
    /// (RFC 2595 §2.3, RFC 5034 §4); STLS only in AUTHORIZATION without TLS
    /// (RFC 2595 §4).
    fn capa(&self, conn: &mut Conn) {
        let authorization = matches!(self.state, State::Authorization { .. });
        let sasl_caps = format!("SASL {}", letterbox_directory::Mechanism::listing());
        let mut caps = vec!["TOP"];
        if authorization && self.plaintext_ok(conn) {
            caps.push("USER");
            caps.push(sasl_caps.as_str());
        }
        caps.extend([
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "LOGIN-DELAY 0",
        ]);
        if authorization && !conn.is_tls() {
            caps.push("STLS");
        }
        caps.push("IMPLEMENTATION Letterbox");
        proto::ok(&mut conn.out, "capability list follows");
        proto::multiline(&mut conn.out, caps);
    }

    /// Passwords may travel on this connection (RFC 2595 §2.3).
    fn plaintext_ok(&self, conn: &Conn) -> bool {
        conn.is_tls() || self.ctx.config.allow_plaintext_auth
    }

    /// RFC 1939 §4 QUIT (sign off) and §6 (UPDATE state).
    async fn quit(&mut self, conn: &mut Conn) -> Flow {
        match &self.state {
            State::Authorization { .. } => {
                proto::ok(&mut conn.out, &format!("{} signing off", self.ctx.config.hostname));
            }
            State::Transaction(m) => transaction::update(&self.ctx, m, conn).await,
        }
        Flow::Close
    }

    /// Answer `-ERR text` for a bad command, closing the connection once
    /// `max_errors` is reached.
    fn bad(&mut self, conn: &mut Conn, text: &str) -> Flow {
        self.fail(conn, None, text)
    }

    /// Like [`Self::bad`], with a response code (RFC 2449 §8).
    fn fail(&mut self, conn: &mut Conn, code: Option<RespCode>, text: &str) -> Flow {
        self.errors += 1;
        if self.errors >= self.ctx.config.max_errors {
            info!(errors = self.errors, "too many errors; closing");
            proto::err(
                &mut conn.out,
                code,
                &format!("{text}; too many errors, closing connection"),
            );
            Flow::Close
        } else {
            proto::err(&mut conn.out, code, text);
            Flow::Continue
        }
    }
}
