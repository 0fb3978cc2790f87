//! Not-authenticated state: STARTTLS, LOGIN and AUTHENTICATE (RFC 9051
//! §6.2) with SASL PLAIN/LOGIN/OAUTHBEARER/XOAUTH2 and SASL-IR (RFC 4959). Every password goes
//! through the shared [`letterbox_directory::Authenticator`].

use letterbox_directory::sasl::is_cancel;
use letterbox_directory::{
    bearer_failure_challenge, AuthError, Authenticated, Credentials, Mechanism, SaslError, SaslServer, SaslStep,
};
use tracing::{info, warn};

use super::conn::Conn;
use super::{Flow, Session, State, User};
use crate::proto::Command;

/// Longest SASL response line (RFC 9051 §6.2.2 allows more than a command).
const MAX_SASL_LINE: usize = 16 * 1024;

impl Session {
    pub(super) async fn not_authenticated(&mut self, conn: &mut Conn, tag: &str, cmd: Command) -> Flow {
        match cmd {
            Command::StartTls => self.starttls(conn, tag),
            Command::Login { user, password } => {
                if !self.plaintext_ok(conn) {
                    // RFC 9051 §6.2.3: LOGINDISABLED means NO.
                    conn.tagged(tag, "NO", "[PRIVACYREQUIRED] use STARTTLS first");
                    return Flow::Continue;
                }
                self.login(conn, tag, &user, &password).await
            }
            Command::Authenticate { mechanism, initial } => {
                if !self.plaintext_ok(conn) {
                    conn.tagged(tag, "NO", "[PRIVACYREQUIRED] use STARTTLS first");
                    return Flow::Continue;
                }
                match self.sasl(conn, &mechanism, initial).await {
                    Ok((mech, creds)) => {
                        let ip = self.info.peer.ip();
                        let result = self.ctx.auth.verify(&creds, ip).await;
                        if result.is_err() && mech.is_bearer() {
                            // RFC 7628 §3.2.2: the error as a challenge, the client's
                            // dummy answer, then the failure.
                            challenge(conn, &bearer_failure_challenge());
                            if let Err(SaslEnd::Connection) = read_response(conn).await {
                                return Flow::Close;
                            }
                        }
                        self.logged_in(conn, tag, result)
                    }
                    Err(SaslEnd::Bad(text)) => self.bad(conn, tag, &text),
                    Err(SaslEnd::No(text)) => {
                        conn.tagged(tag, "NO", &text);
                        Flow::Continue
                    }
                    Err(SaslEnd::Connection) => Flow::Close,
                }
            }
            _ => Flow::Continue,
        }
    }

    /// RFC 9051 §6.2.1.
    fn starttls(&mut self, conn: &mut Conn, tag: &str) -> Flow {
        if conn.is_tls() {
            return self.bad(conn, tag, "TLS is already active");
        }
        if conn.pipelined() > 0 {
            // Plaintext after STARTTLS must not leak into the TLS session.
            warn!("client pipelined data after STARTTLS; closing");
            conn.tagged(tag, "BAD", "no commands may follow STARTTLS before the handshake");
            conn.untagged("BYE protocol violation");
            return Flow::Close;
        }
        conn.tagged(tag, "OK", "begin TLS negotiation now");
        Flow::StartTls
    }

    /// Run the SASL exchange (RFC 9051 §6.2.2): `+ challenge` lines, `*` cancels.
    async fn sasl(
        &mut self,
        conn: &mut Conn,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Result<(Mechanism, Credentials), SaslEnd> {
        let Some(mech) = Mechanism::from_name(mechanism) else {
            return Err(SaslEnd::No(format!("unsupported SASL mechanism {mechanism}")));
        };
        let (mut server, mut step) = SaslServer::start(mech, initial.as_deref()).map_err(SaslEnd::from)?;
        loop {
            match step {
                SaslStep::Done(creds) => return Ok((mech, creds)),
                SaslStep::Challenge(c) => {
                    challenge(conn, &c);
                    let response = read_response(conn).await?;
                    step = server.step(&response).map_err(SaslEnd::from)?;
                }
            }
        }
    }

    /// Check the password; on success enter the authenticated state.
    async fn login(&mut self, conn: &mut Conn, tag: &str, user: &str, password: &str) -> Flow {
        let result = self.ctx.auth.authenticate(user, password, self.info.peer.ip()).await;
        self.logged_in(conn, tag, result)
    }

    fn logged_in(&mut self, conn: &mut Conn, tag: &str, result: Result<Authenticated, AuthError>) -> Flow {
        match result {
            Ok(a) => {
                info!(account = %a.address, account_id = a.account_id, "IMAP login");
                conn.set_idle_timeout(self.ctx.config.idle_timeout);
                self.state = State::Authenticated(User {
                    id: a.account_id,
                    address: a.address,
                });
                // RFC 9051 §7.1: the capabilities may change after login.
                let caps = self.capabilities(conn);
                conn.tagged(tag, "OK", &format!("[CAPABILITY {caps}] logged in"));
            }
            // RFC 5530 §3 response codes.
            Err(AuthError::InvalidCredentials) => {
                conn.tagged(tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials");
            }
            Err(e @ (AuthError::RateLimited | AuthError::Temporary(_))) => {
                conn.tagged(tag, "NO", &format!("[UNAVAILABLE] {e}"));
            }
        }
        Flow::Continue
    }
}

fn challenge(conn: &mut Conn, c: &str) {
    conn.out.extend_from_slice(format!("+ {c}\r\n").as_bytes());
}

/// Why an AUTHENTICATE ended without credentials.
enum SaslEnd {
    /// Tagged BAD (malformed or cancelled, RFC 9051 §6.2.2).
    Bad(String),
    /// Tagged NO.
    No(String),
    Connection,
}

impl From<SaslError> for SaslEnd {
    fn from(e: SaslError) -> Self {
        match e {
            SaslError::Cancelled => SaslEnd::Bad("authentication cancelled".into()),
            other => SaslEnd::Bad(format!("authentication failed: {other}")),
        }
    }
}

/// One client line of a SASL exchange.
async fn read_response(conn: &mut Conn) -> Result<Vec<u8>, SaslEnd> {
    match conn.read_line(MAX_SASL_LINE).await {
        Ok(Ok(line)) if is_cancel(line.as_bytes()) => Err(SaslError::Cancelled.into()),
        Ok(Ok(line)) => Ok(line.into_bytes()),
        Ok(Err(_)) => Err(SaslEnd::Bad("SASL response too long".into())),
        Err(_) => Err(SaslEnd::Connection),
    }
}
