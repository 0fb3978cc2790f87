//! AUTH, RFC 4954, with the PLAIN (RFC 4616), LOGIN, OAUTHBEARER (RFC 7628)
//! and XOAUTH2 mechanisms.

use crate::session::{Flow, Reader, Session};
use crate::MAX_AUTH_LINE;
use letterbox_directory::sasl::is_cancel;
use letterbox_directory::{
    bearer_failure_challenge, AuthError, Credentials, Mechanism, SaslError, SaslServer, SaslStep,
};
use letterbox_smtp_proto::Reply;

impl Session {
    /// RFC 4954 §4: `AUTH mechanism [initial-response]`.
    pub(crate) async fn auth(&mut self, reader: &mut Reader, mechanism: String, initial: Option<String>) -> Flow {
        if !self.role.is_submission() {
            self.say(
                503,
                "5.5.1",
                "AUTH is not available on this port; use submission (587/465)",
            );
            return Flow::Continue;
        }
        if !self.auth_allowed() {
            // RFC 4954 §6: 538 when the mechanism needs an encrypted channel.
            self.say(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism; use STARTTLS",
            );
            return Flow::Continue;
        }
        if self.user.is_some() {
            self.say(503, "5.5.1", "Already authenticated");
            return Flow::Continue;
        }
        if self.tx.is_some() {
            self.say(503, "5.5.1", "AUTH is not allowed during a mail transaction");
            return Flow::Continue;
        }
        let Some(mech) = Mechanism::from_name(&mechanism) else {
            self.say(504, "5.5.4", "Unrecognized authentication mechanism");
            return Flow::Continue;
        };
        let creds = match self.exchange(reader, mech, initial).await {
            Ok(c) => c,
            Err(Some(SaslError::Cancelled)) => {
                self.say(501, "5.0.0", "Authentication cancelled");
                return Flow::Continue;
            }
            Err(Some(_)) => {
                self.say(501, "5.5.2", "Malformed authentication response");
                return if self.error() {
                    self.too_many_errors()
                } else {
                    Flow::Continue
                };
            }
            Err(None) => return Flow::Close,
        };
        let result = self.ctx.auth.verify(&creds, self.info.peer.ip()).await;
        if result.is_err() && mech.is_bearer() {
            // RFC 7628 §3.2.2: the error as a challenge, the client's dummy
            // answer, then the failure.
            if let Err(None) = self.challenge(reader, &bearer_failure_challenge()).await {
                return Flow::Close;
            }
        }
        match result {
            Ok(user) => {
                tracing::info!(session = self.info.session_id, peer = %self.info.peer, user = %user.address, "smtp login");
                self.user = Some(user);
                self.say(235, "2.7.0", "Authentication successful");
            }
            Err(AuthError::InvalidCredentials) => {
                self.say(535, "5.7.8", "Authentication credentials invalid");
                if self.error() {
                    return self.too_many_errors();
                }
            }
            Err(AuthError::RateLimited) => {
                self.say(454, "4.7.0", "Too many failed logins; try again later");
                if self.error() {
                    return self.too_many_errors();
                }
            }
            Err(AuthError::Temporary(_)) => self.say(454, "4.7.0", "Temporary authentication failure"),
        }
        Flow::Continue
    }

    pub(crate) fn too_many_errors(&mut self) -> Flow {
        self.say(421, "4.7.0", "Too many errors, closing connection");
        Flow::Close
    }

    /// Send a `334` challenge and read the client's line. `Err(None)`: connection gone.
    async fn challenge(&mut self, reader: &mut Reader, text: &str) -> Result<Vec<u8>, Option<SaslError>> {
        self.reply(Reply::plain(334, vec![text.to_string()]));
        match self.read_line(reader, MAX_AUTH_LINE).await {
            Ok(Ok(line)) => Ok(line.content),
            Ok(Err(_)) => Err(Some(SaslError::Malformed("response too long"))),
            Err(_) => Err(None),
        }
    }

    /// Run the SASL exchange with `334` challenges. `Err(None)`: connection gone.
    async fn exchange(
        &mut self,
        reader: &mut Reader,
        mech: Mechanism,
        initial: Option<String>,
    ) -> Result<Credentials, Option<SaslError>> {
        let (mut server, mut step) = SaslServer::start(mech, initial.as_deref().map(str::as_bytes)).map_err(Some)?;
        loop {
            match step {
                SaslStep::Done(creds) => return Ok(creds),
                SaslStep::Challenge(c) => {
                    let response = self.challenge(reader, &c).await?;
                    if is_cancel(&response) {
                        return Err(Some(SaslError::Cancelled));
                    }
                    step = server.step(&response).map_err(Some)?;
                }
            }
        }
    }
}
