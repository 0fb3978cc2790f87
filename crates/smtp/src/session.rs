//! The session loop: greeting, command dispatch, pipelining-aware output,
//! timeouts, error counting, STARTTLS, shutdown.

use crate::envelope::Transaction;
use crate::{Role, SmtpCtx, MAX_COMMAND_LINE};
use letterbox_directory::Authenticated;
use letterbox_net::{ConnInfo, LineError, LineReader, MaybeTls, Shutdown, TlsInfo};
use letterbox_smtp_proto::{parse_command, Command, CommandError, Reply};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

pub(crate) type Reader = LineReader<MaybeTls>;

/// What the loop does after a command.
pub(crate) enum Flow {
    Continue,
    Close,
}

/// Why reading from the client stopped.
pub(crate) enum ReadError {
    /// Connection closed or broken.
    Gone,
    /// Command or session timer ran out.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// Per-connection state.
pub(crate) struct Session {
    pub ctx: Arc<SmtpCtx>,
    pub role: Role,
    pub info: ConnInfo,
    pub shutdown: Shutdown,
    /// Replies not yet written; flushed when the client's input is drained
    /// (RFC 2920 §3: batch replies to pipelined commands).
    pub out: Vec<u8>,
    /// Domain from EHLO/HELO.
    pub helo: Option<String>,
    /// Whether the client used EHLO (extensions allowed).
    pub esmtp: bool,
    pub user: Option<Authenticated>,
    pub tx: Option<Transaction>,
    pub transactions: u32,
    pub errors: u32,
    pub deadline: Instant,
    pub tls: Option<TlsInfo>,
    /// Forward-confirmed reverse DNS of the client, looked up at connect.
    pub iprev: Option<crate::Pending<letterbox_mailauth::Iprev>>,
}

impl Session {
    pub fn reply(&mut self, r: Reply) {
        self.out.extend_from_slice(&r.to_bytes());
    }

    pub fn say(&mut self, code: u16, enhanced: &'static str, text: impl Into<String>) {
        self.reply(Reply::new(code, enhanced, text));
    }

    pub async fn flush(&mut self, reader: &mut Reader) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let out = std::mem::take(&mut self.out);
        let w = reader.get_mut();
        matches!(
            tokio::time::timeout(self.ctx.config.command_timeout, async {
                w.write_all(&out).await?;
                w.flush().await
            })
            .await,
            Ok(Ok(()))
        )
    }

    /// Read one line under the command timeout, the session deadline and shutdown.
    pub async fn read_line(
        &mut self,
        reader: &mut Reader,
        max: usize,
    ) -> Result<Result<letterbox_net::Line, usize>, ReadError> {
        if reader.buffered() == 0 && !self.flush(reader).await {
            return Err(ReadError::Gone);
        }
        let limit = self
            .ctx
            .config
            .command_timeout
            .min(self.deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            r = tokio::time::timeout(limit, reader.read_line(max)) => match r {
                Ok(Ok(line)) => Ok(Ok(line)),
                Ok(Err(LineError::TooLong { len })) => Ok(Err(len)),
                Ok(Err(_)) => Err(ReadError::Gone),
                Err(_) => Err(ReadError::Timeout),
            },
            _ = self.shutdown.wait() => Err(ReadError::Shutdown),
        }
    }

    /// Count a client error; true when the client has used up its allowance.
    pub fn error(&mut self) -> bool {
        self.errors += 1;
        self.errors >= self.ctx.config.max_errors
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether AUTH may be used now (RFC 4954 §4: only over TLS unless allowed).
    pub fn auth_allowed(&self) -> bool {
        self.role.is_submission() && (self.is_tls() || self.ctx.config.allow_plaintext_auth)
    }
}

/// Serve one SMTP connection.
pub async fn session(ctx: Arc<SmtpCtx>, role: Role, stream: MaybeTls, info: ConnInfo, shutdown: Shutdown) {
    let deadline = Instant::now() + ctx.config.session_timeout;
    let tls = stream.tls_info();
    let mut s = Session {
        ctx,
        role,
        info,
        shutdown,
        out: Vec::new(),
        helo: None,
        esmtp: false,
        user: None,
        tx: None,
        transactions: 0,
        errors: 0,
        deadline,
        tls,
        iprev: None,
    };
    if !role.is_submission() && s.ctx.inbound.checks(s.info.peer.ip()) {
        let (inbound, ip) = (s.ctx.inbound.clone(), s.info.peer.ip());
        s.iprev = Some(crate::Pending::spawn(async move { inbound.iprev(ip).await }));
    }
    let mut reader = LineReader::new(stream);
    // RFC 5321 §4.3.1: the client waits for the greeting. Spam software
    // often does not; a short pause before it catches them (port 25 only).
    let pause = if role.is_submission() {
        std::time::Duration::ZERO
    } else {
        s.ctx.inbound.greet_pause(s.info.peer.ip())
    };
    if !pause.is_zero() {
        match tokio::time::timeout(pause, reader.wait_for_data()).await {
            Err(_) => {}
            Ok(Ok(n)) if n > 0 => {
                let r = letterbox_inbound::reputation::Reputation::early_talker();
                tracing::info!(session = s.info.session_id, peer = %s.info.peer, "early talker refused");
                s.say(r.code, r.status, r.text);
                s.flush(&mut reader).await;
                return;
            }
            Ok(_) => return,
        }
    }
    let greeting = format!("{} ESMTP Letterbox", s.ctx.config.hostname);
    s.reply(Reply::plain(220, vec![greeting]));
    loop {
        let line = match s.read_line(&mut reader, MAX_COMMAND_LINE).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => {
                // RFC 5321 §4.5.3.1.4 / §4.2.2: line too long is a 500.
                s.say(500, "5.5.2", "Line too long");
                if s.error() {
                    s.say(421, "4.7.0", "Too many errors, closing connection");
                    break;
                }
                continue;
            }
            Err(ReadError::Gone) => return,
            Err(ReadError::Timeout) => {
                s.say(
                    421,
                    "4.4.2",
                    format!("{} Timeout, closing connection", s.ctx.config.hostname),
                );
                break;
            }
            Err(ReadError::Shutdown) => {
                s.say(421, "4.3.2", format!("{} Service shutting down", s.ctx.config.hostname));
                break;
            }
        };
        let Ok(text) = std::str::from_utf8(&line.content) else {
            s.say(500, "5.5.2", "Command is not valid UTF-8");
            if s.error() {
                s.say(421, "4.7.0", "Too many errors, closing connection");
                break;
            }
            continue;
        };
        let cmd = match parse_command(text) {
            Ok(c) => c,
            Err(e) => {
                let (code, enh) = match e {
                    CommandError::Unknown => (500, "5.5.2"),
                    CommandError::Syntax(_) => (501, "5.5.4"),
                    CommandError::TooLong => (501, "5.1.3"),
                    CommandError::UnknownParameter(_) => (555, "5.5.4"),
                };
                s.say(code, enh, capitalise(&e.to_string()));
                if s.error() {
                    s.say(421, "4.7.0", "Too many errors, closing connection");
                    break;
                }
                continue;
            }
        };
        tracing::debug!(session = s.info.session_id, peer = %s.info.peer, command = ?redact(&cmd), "smtp command");
        let flow = match cmd {
            Command::StartTls => match starttls(&mut s, reader).await {
                Some(r) => {
                    reader = r;
                    Flow::Continue
                }
                None => return,
            },
            other => s.dispatch(other, &mut reader).await,
        };
        if let Flow::Close = flow {
            break;
        }
    }
    let _ = s.flush(&mut reader).await;
    let _ = reader.get_mut().shutdown().await;
}

/// Passwords must not reach the logs.
fn redact(cmd: &Command) -> Command {
    match cmd {
        Command::Auth { mechanism, initial } => Command::Auth {
            mechanism: mechanism.clone(),
            initial: initial.as_ref().map(|_| "***".into()),
        },
        c => c.clone(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// RFC 3207 §4: answer 220, handshake, then forget everything learnt in
/// plaintext (§4.2). Pipelined input after STARTTLS is refused: it would
/// be plaintext injected into the TLS session.
async fn starttls(s: &mut Session, mut reader: Reader) -> Option<Reader> {
    if s.is_tls() {
        s.say(503, "5.5.1", "Already using TLS");
        return Some(reader);
    }
    if s.role == Role::Submissions {
        s.say(503, "5.5.1", "TLS is already in use");
        return Some(reader);
    }
    if reader.buffered() > 0 {
        s.say(554, "5.5.1", "Commands pipelined after STARTTLS; closing connection");
        let _ = s.flush(&mut reader).await;
        return None;
    }
    s.say(220, "2.0.0", "Ready to start TLS");
    if !s.flush(&mut reader).await {
        return None;
    }
    let stream = reader.into_inner();
    match stream.upgrade(&s.ctx.tls).await {
        Ok(tls) => {
            s.tls = tls.tls_info();
            s.helo = None;
            s.esmtp = false;
            s.user = None;
            s.tx = None;
            Some(LineReader::new(tls))
        }
        Err(e) => {
            tracing::debug!(session = s.info.session_id, peer = %s.info.peer, error = %e, "STARTTLS handshake failed");
            None
        }
    }
}

impl Session {
    async fn dispatch(&mut self, cmd: Command, reader: &mut Reader) -> Flow {
        let _timer = letterbox_net::metrics::CommandTimer::start("smtp", cmd.name());
        match cmd {
            Command::Ehlo(domain) => self.ehlo(domain, true),
            Command::Helo(domain) => self.ehlo(domain, false),
            Command::Mail(path, params) => return self.mail(path, params).await,
            Command::Rcpt(path, params) => return self.rcpt(path, params).await,
            Command::Data => return self.data(reader).await,
            Command::Bdat { size, last } => return self.bdat(reader, size, last).await,
            Command::Rset => {
                self.tx = None;
                self.say(250, "2.0.0", "OK");
            }
            Command::Noop => self.say(250, "2.0.0", "OK"),
            Command::Quit => {
                self.say(221, "2.0.0", format!("{} closing connection", self.ctx.config.hostname));
                return Flow::Close;
            }
            Command::Help => self.say(
                214,
                "2.0.0",
                "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT",
            ),
            // RFC 5321 §3.5.3: 252 neither confirms nor denies (no account probing).
            Command::Vrfy(_) | Command::Expn(_) => self.say(
                252,
                "2.5.0",
                "Cannot verify the user, but will accept the message and attempt delivery",
            ),
            Command::Auth { mechanism, initial } => return self.auth(reader, mechanism, initial).await,
            Command::StartTls => self.say(503, "5.5.1", "Bad sequence of commands"),
        }
        Flow::Continue
    }

    fn ehlo(&mut self, domain: String, esmtp: bool) {
        // RFC 5321 §4.1.4: EHLO/HELO reset any transaction.
        self.tx = None;
        self.helo = Some(domain);
        self.esmtp = esmtp;
        let host = self.ctx.config.hostname.clone();
        if !esmtp {
            self.reply(Reply::plain(250, vec![host]));
            return;
        }
        let mut lines = vec![
            format!("{host} Hello {}", self.info.peer.ip()),
            "PIPELINING".into(),
            format!("SIZE {}", self.ctx.config.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if !self.is_tls() && self.role != Role::Submissions {
            lines.push("STARTTLS".into());
        }
        if self.auth_allowed() && self.user.is_none() {
            lines.push(format!("AUTH {}", letterbox_directory::Mechanism::listing()));
        }
        lines.push("HELP".into());
        self.reply(Reply::plain(250, lines));
    }
}
