//! AUTHORIZATION state: USER/PASS (RFC 1939 §7), AUTH (RFC 5034 §4) and
//! STLS (RFC 2595 §4). Every password goes through the shared
//! [`letterbox_directory::Authenticator`], so throttling is common to all
//! protocols.

use letterbox_directory::sasl::is_cancel;
use letterbox_directory::{
    bearer_failure_challenge, AuthError, Authenticated, Credentials, Mechanism, SaslError, SaslServer, SaslStep,
};
use tracing::{info, warn};

use super::conn::{Conn, Input};
use super::transaction::{Entry, Maildrop};
use super::{Flow, Session, State};
use crate::proto::{self, AuthArgs, Command, RespCode};

const PLAINTEXT_REFUSED: &str = "plaintext authentication is disabled; use STLS first";

impl Session {
    /// USER, PASS, AUTH or STLS, in AUTHORIZATION state.
    pub(super) async fn authorization(&mut self, conn: &mut Conn, cmd: Command) -> Flow {
        match cmd {
            Command::Stls => self.stls(conn),
            Command::User(name) => {
                if !self.plaintext_ok(conn) {
                    return self.fail(conn, Some(RespCode::Auth), PLAINTEXT_REFUSED);
                }
                self.state = State::Authorization { user: Some(name) };
                proto::ok(&mut conn.out, "send PASS");
                Flow::Continue
            }
            Command::Pass(password) => {
                let State::Authorization { user } = &mut self.state else {
                    return self.bad(conn, "already authenticated");
                };
                // RFC 1939 §7: PASS only directly after a successful USER.
                let Some(user) = user.take() else {
                    return self.bad(conn, "send USER first");
                };
                if !self.plaintext_ok(conn) {
                    return self.fail(conn, Some(RespCode::Auth), PLAINTEXT_REFUSED);
                }
                self.login(conn, &user, &password).await
            }
            Command::Auth(None) => {
                // Mechanism listing (RFC 1734 style), empty when no password
                // may be sent here.
                proto::ok(&mut conn.out, "SASL mechanisms follow");
                let mechs: Vec<&str> = if self.plaintext_ok(conn) {
                    Mechanism::ALL.iter().map(|m| m.name()).collect()
                } else {
                    Vec::new()
                };
                proto::multiline(&mut conn.out, mechs);
                Flow::Continue
            }
            Command::Auth(Some(args)) => {
                self.state = State::Authorization { user: None };
                if !self.plaintext_ok(conn) {
                    return self.fail(conn, Some(RespCode::Auth), PLAINTEXT_REFUSED);
                }
                match self.sasl(conn, args).await {
                    Ok((mech, creds)) => {
                        let result = self.ctx.auth.verify(&creds, self.info.peer.ip()).await;
                        if result.is_err() && mech.is_bearer() {
                            // RFC 7628 §3.2.2: the error as a challenge, the
                            // client's dummy answer, then the failure.
                            proto::challenge(&mut conn.out, &bearer_failure_challenge());
                            if let Err(SaslEnd::Connection) = read_response(conn, self.ctx.config.max_sasl_line).await {
                                return Flow::Close;
                            }
                        }
                        self.open_maildrop(conn, result).await
                    }
                    Err(SaslEnd::Failed(text)) => self.bad(conn, &text),
                    Err(SaslEnd::Connection) => Flow::Close,
                }
            }
            other => self.bad(conn, &format!("{} is not allowed before login", other.name())),
        }
    }

    /// RFC 2595 §4 STLS.
    fn stls(&mut self, conn: &mut Conn) -> Flow {
        if conn.is_tls() {
            return self.bad(conn, "command not permitted when TLS active");
        }
        if conn.pipelined() > 0 {
            // Plaintext sent after STLS must not leak into the TLS session
            // (RFC 2595 §4: no commands until the handshake is done).
            warn!("client pipelined data after STLS; closing");
            proto::err(&mut conn.out, None, "no commands may follow STLS before the handshake");
            return Flow::Close;
        }
        // Forget USER given in plaintext: the server MUST discard knowledge
        // obtained before TLS.
        self.state = State::Authorization { user: None };
        proto::ok(&mut conn.out, "begin TLS negotiation");
        Flow::StartTls
    }

    /// Run the SASL exchange of `AUTH mechanism [initial-response]`.
    async fn sasl(&mut self, conn: &mut Conn, args: AuthArgs) -> Result<(Mechanism, Credentials), SaslEnd> {
        let Some(mech) = Mechanism::from_name(&args.mechanism) else {
            return Err(SaslEnd::Failed(format!(
                "unsupported SASL mechanism {}",
                args.mechanism
            )));
        };
        let limit = self.ctx.config.max_sasl_line;
        let (mut server, mut step) =
            SaslServer::start(mech, args.initial.as_deref().map(str::as_bytes)).map_err(SaslEnd::from)?;
        loop {
            match step {
                SaslStep::Done(creds) => return Ok((mech, creds)),
                SaslStep::Challenge(c) => {
                    // RFC 5034 §4: an empty challenge is "+ ".
                    proto::challenge(&mut conn.out, &c);
                    let response = read_response(conn, limit).await?;
                    step = server.step(&response).map_err(SaslEnd::from)?;
                }
            }
        }
    }

    async fn login(&mut self, conn: &mut Conn, user: &str, password: &str) -> Flow {
        let result = self.ctx.auth.authenticate(user, password, self.info.peer.ip()).await;
        self.open_maildrop(conn, result).await
    }

    /// Check credentials, lock the maildrop and take the snapshot; on
    /// success the session enters TRANSACTION (RFC 1939 §4).
    async fn open_maildrop(&mut self, conn: &mut Conn, result: Result<Authenticated, AuthError>) -> Flow {
        let authed = match result {
            Ok(a) => a,
            // RFC 3206 §5 / AUTH-RESP-CODE: a credentials problem.
            Err(AuthError::InvalidCredentials) => {
                return self.fail(conn, Some(RespCode::Auth), "invalid user name or password")
            }
            // RFC 3206 §4: temporary, retrying later may work.
            Err(e @ (AuthError::RateLimited | AuthError::Temporary(_))) => {
                return self.fail(conn, Some(RespCode::SysTemp), &e.to_string())
            }
        };
        // RFC 2449 §8.1.2: the maildrop is exclusively ours or refused.
        let Some(lock) = self.ctx.lock_maildrop(authed.account_id) else {
            info!(account = %authed.address, "maildrop in use");
            proto::err(
                &mut conn.out,
                Some(RespCode::InUse),
                "maildrop is locked by another POP3 session",
            );
            return Flow::Continue;
        };
        let store = &self.ctx.store;
        let snapshot = async {
            let Some(mailbox) = store.mailbox(authed.account_id, "INBOX").await? else {
                return Err(letterbox_store::StoreError::NotFound("INBOX".into()));
            };
            let metas = store.messages(mailbox.id).await?;
            Ok((mailbox.id, metas))
        };
        let (mailbox, metas) = match snapshot.await {
            Ok(found) => found,
            Err(e) => {
                warn!(account = %authed.address, error = %e, "cannot open maildrop");
                proto::err(&mut conn.out, Some(RespCode::SysTemp), "cannot open the maildrop now");
                return Flow::Continue;
            }
        };
        let maildrop = Maildrop {
            account: authed.account_id,
            address: authed.address,
            mailbox,
            messages: metas
                .into_iter()
                .map(|meta| Entry {
                    id: meta.id,
                    size: meta.size,
                    deleted: false,
                })
                .collect(),
            _lock: lock,
        };
        let (n, size) = maildrop.stat();
        info!(account = %maildrop.address, account_id = maildrop.account, messages = n, "POP3 login");
        proto::ok(&mut conn.out, &format!("maildrop has {n} messages ({size} octets)"));
        self.state = State::Transaction(maildrop);
        Flow::Continue
    }
}

/// Why an AUTH exchange ended without credentials.
enum SaslEnd {
    /// Answer `-ERR text` and stay in AUTHORIZATION (RFC 5034 §4).
    Failed(String),
    /// The connection ended meanwhile.
    Connection,
}

impl From<SaslError> for SaslEnd {
    fn from(e: SaslError) -> Self {
        SaslEnd::Failed(match e {
            SaslError::Cancelled => "authentication cancelled".into(),
            other => format!("authentication failed: {other}"),
        })
    }
}

/// One client line of a SASL exchange; `*` cancels (RFC 5034 §4).
async fn read_response(conn: &mut Conn, limit: usize) -> Result<Vec<u8>, SaslEnd> {
    match conn.read(limit).await {
        Ok(Input::Line(line)) if is_cancel(line.as_bytes()) => Err(SaslError::Cancelled.into()),
        Ok(Input::Line(line)) => Ok(line.into_bytes()),
        Ok(Input::TooLong) => Err(SaslEnd::Failed("SASL response too long".into())),
        Err(_) => Err(SaslEnd::Connection),
    }
}
