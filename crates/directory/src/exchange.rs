//! The server side of one SASL exchange (RFC 4422 §3), for every mechanism
//! we offer. Protocols frame the challenges (`334`, `+`) and read the lines;
//! everything the mechanisms mean is here, so IMAP, SMTP and POP3 behave
//! alike.

use crate::sasl::{
    decode_base64, decode_plain, encode_base64, utf8_field, LoginExchange, LoginStep, Mechanism, PlainCreds, SaslError,
    Secret,
};

/// What a client proved it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An address and the account password or an app password.
    Password(PlainCreds),
    /// An OAuth 2.0 access token (RFC 6750 §2.1 `Bearer`), with the user
    /// the client named, if any (it must be the token's account).
    Bearer { user: Option<String>, token: Secret },
}

impl Credentials {
    /// The login name given, for logs.
    pub fn user(&self) -> Option<&str> {
        match self {
            Credentials::Password(p) => Some(&p.authcid),
            Credentials::Bearer { user, .. } => user.as_deref(),
        }
    }
}

/// What to do after feeding the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this (already base64) challenge and feed the answer to `step`.
    Challenge(String),
    Done(Credentials),
}

#[derive(Debug)]
enum State {
    Plain,
    Login(LoginExchange),
    Bearer(Mechanism),
    Finished,
}

/// One exchange: [`SaslServer::start`] with the initial response if the
/// client sent one (RFC 4954 §4, RFC 4959, RFC 5034 §4), then `step` with
/// each client line. A client line of `*` is the protocol's to catch.
#[derive(Debug)]
pub struct SaslServer {
    mechanism: Mechanism,
    state: State,
}

impl SaslServer {
    pub fn start(mechanism: Mechanism, initial: Option<&[u8]>) -> Result<(SaslServer, SaslStep), SaslError> {
        let state = match mechanism {
            Mechanism::Plain => State::Plain,
            Mechanism::Login => State::Login(LoginExchange::new()),
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => State::Bearer(mechanism),
        };
        let mut server = SaslServer { mechanism, state };
        let step = match initial {
            Some(initial) => server.step(initial)?,
            None => match &server.state {
                State::Login(ex) => SaslStep::Challenge(ex.challenge().unwrap_or_default().to_string()),
                _ => SaslStep::Challenge(String::new()),
            },
        };
        Ok((server, step))
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feed one base64 client line.
    pub fn step(&mut self, response: &[u8]) -> Result<SaslStep, SaslError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Plain => Ok(SaslStep::Done(Credentials::Password(decode_plain(&decode_base64(
                response,
            )?)?))),
            State::Login(mut ex) => match ex.step(response)? {
                LoginStep::Challenge(c) => {
                    self.state = State::Login(ex);
                    Ok(SaslStep::Challenge(c.to_string()))
                }
                LoginStep::Done(creds) => Ok(SaslStep::Done(Credentials::Password(creds))),
            },
            State::Bearer(mech) => {
                let message = decode_base64(response)?;
                let creds = match mech {
                    Mechanism::XOAuth2 => decode_xoauth2(&message)?,
                    _ => decode_oauthbearer(&message)?,
                };
                Ok(SaslStep::Done(creds))
            }
            State::Finished => Err(SaslError::Malformed("exchange already finished")),
        }
    }
}

/// The challenge a bearer mechanism sends when the token is refused, before
/// the protocol's failure reply: RFC 7628 §3.2.2 (the client answers with a
/// lone `%x01`, XOAUTH2 clients with an empty line; either is just read).
pub fn bearer_failure_challenge() -> String {
    encode_base64(br#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#)
}

/// Longest token accepted (ours are about 50 characters; RFC 6750 sets no
/// limit, the whole message is capped at `MAX_CREDENTIAL_LEN`).
const MAX_TOKEN_LEN: usize = 1000;

/// RFC 7628 §3.1: `gs2-header kvsep *kvpair kvsep`, the gs2 header being
/// `n,` or `y,` (no channel binding) and an optional `a=authzid`, then
/// `key=value` pairs separated by `%x01`, of which `auth` carries
/// `Bearer <token>`.
fn decode_oauthbearer(message: &[u8]) -> Result<Credentials, SaslError> {
    let text = utf8_field(message, "OAUTHBEARER message is not UTF-8")?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or(SaslError::Malformed("no kvsep after the gs2 header"))?;
    let mut header = gs2.split(',');
    match header.next() {
        Some("n" | "y") => {}
        Some(p) if p.starts_with("p=") => return Err(SaslError::Malformed("channel binding is not supported")),
        _ => return Err(SaslError::Malformed("bad gs2 header")),
    }
    let user = match header.next() {
        Some("") | None => None,
        Some(a) => Some(
            a.strip_prefix("a=")
                .ok_or(SaslError::Malformed("bad authzid"))?
                .replace("=2C", ",")
                .replace("=3D", "="),
        ),
    };
    if header.next() != Some("") || header.next().is_some() {
        return Err(SaslError::Malformed("bad gs2 header"));
    }
    let token = auth_pair(rest)?;
    Ok(Credentials::Bearer { user, token })
}

/// XOAUTH2: `user=` address `%x01` `auth=Bearer ` token `%x01%x01`.
fn decode_xoauth2(message: &[u8]) -> Result<Credentials, SaslError> {
    let text = utf8_field(message, "XOAUTH2 message is not UTF-8")?;
    let user = text
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("user="))
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    if user.is_none() {
        return Err(SaslError::Malformed("XOAUTH2 without user"));
    }
    let token = auth_pair(&text)?;
    Ok(Credentials::Bearer { user, token })
}

/// The `auth=Bearer <token>` pair of `%x01`-separated key-value pairs.
fn auth_pair(pairs: &str) -> Result<Secret, SaslError> {
    let auth = pairs
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .ok_or(SaslError::Malformed("no auth pair"))?;
    let (scheme, token) = auth
        .split_once(' ')
        .ok_or(SaslError::Malformed("auth pair without a scheme"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(SaslError::Malformed("auth pair is not a bearer token"));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        encode_base64(s).into_bytes()
    }

    fn done(step: SaslStep) -> Credentials {
        match step {
            SaslStep::Done(c) => c,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[test]
    fn oauthbearer_rfc7628_example() {
        // RFC 7628 §4.1.
        let msg = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        let (_, step) = SaslServer::start(Mechanism::OAuthBearer, Some(&b64(msg))).unwrap();
        let Credentials::Bearer { user, token } = done(step) else {
            panic!()
        };
        assert_eq!(user.as_deref(), Some("user@example.com"));
        assert_eq!(token.expose(), "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    }

    #[test]
    fn oauthbearer_without_authzid_and_escapes() {
        let (_, step) =
            SaslServer::start(Mechanism::OAuthBearer, Some(&b64(b"n,,\x01auth=Bearer tok\x01\x01"))).unwrap();
        assert_eq!(
            done(step),
            Credentials::Bearer {
                user: None,
                token: Secret::new("tok")
            }
        );
        let (_, step) = SaslServer::start(
            Mechanism::OAuthBearer,
            Some(&b64(b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01")),
        )
        .unwrap();
        assert_eq!(done(step).user(), Some("a,b=c"));
    }

    #[test]
    fn oauthbearer_rejects_malformed() {
        for bad in [
            &b"p=tls-unique,,\x01auth=Bearer t\x01\x01"[..],
            b"x,,\x01auth=Bearer t\x01\x01",
            b"n,,auth=Bearer t",
            b"n,,\x01auth=Basic dXNlcjpwdw==\x01\x01",
            b"n,,\x01host=x\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,b=x,\x01auth=Bearer t\x01\x01",
        ] {
            let r = SaslServer::start(Mechanism::OAuthBearer, Some(&b64(bad)));
            assert!(
                matches!(r, Err(SaslError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn xoauth2_with_and_without_initial_response() {
        let msg =
            b64(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01");
        let (mut server, step) = SaslServer::start(Mechanism::XOAuth2, None).unwrap();
        assert_eq!(step, SaslStep::Challenge(String::new()));
        let creds = done(server.step(&msg).unwrap());
        assert_eq!(creds.user(), Some("someuser@example.com"));
        assert!(matches!(
            SaslServer::start(Mechanism::XOAuth2, Some(&b64(b"auth=Bearer t\x01\x01"))),
            Err(SaslError::Malformed(_))
        ));
    }

    #[test]
    fn plain_and_login_run_through_the_same_driver() {
        let (_, step) = SaslServer::start(Mechanism::Plain, Some(&b64(b"\0u@x\0pw"))).unwrap();
        assert_eq!(done(step).user(), Some("u@x"));
        let (mut s, step) = SaslServer::start(Mechanism::Login, None).unwrap();
        assert_eq!(step, SaslStep::Challenge(crate::sasl::LOGIN_USERNAME_PROMPT.into()));
        assert_eq!(
            s.step(&b64(b"u@x")).unwrap(),
            SaslStep::Challenge(crate::sasl::LOGIN_PASSWORD_PROMPT.into())
        );
        let Credentials::Password(p) = done(s.step(&b64(b"pw")).unwrap()) else {
            panic!()
        };
        assert_eq!(p.password.expose(), "pw");
        assert!(s.step(&b64(b"again")).is_err());
    }

    #[test]
    fn failure_challenge_is_rfc7628_json() {
        let json = decode_base64(bearer_failure_challenge().as_bytes()).unwrap();
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""status":"invalid_token""#), "{text}");
    }
}
