//! SASL (RFC 4422) message decoding for the PLAIN, LOGIN, OAUTHBEARER
//! (RFC 7628) and XOAUTH2 mechanisms, and [`SaslServer`], the one exchange
//! driver every protocol runs.
//!
//! Transport framing (SMTP `334`, IMAP `+`, POP3 `+`) is the protocol's job;
//! this module turns the base64 client lines into credentials and never
//! verifies anything itself.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Longest authzid, authcid or password we accept in bytes. RFC 4616 §2 asks
/// for at least 255; more than this is abuse, not a login.
pub const MAX_CREDENTIAL_LEN: usize = 1024;

/// Base64 of "Username:", the first LOGIN challenge.
pub const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
/// Base64 of "Password:", the second LOGIN challenge.
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("unsupported SASL mechanism {0:?}")]
    UnsupportedMechanism(String),
    /// The client sent `*` (RFC 4954 §4, RFC 9051 §6.2.2, RFC 5034 §4).
    #[error("authentication cancelled by client")]
    Cancelled,
    #[error("invalid base64 in SASL response")]
    Base64,
    #[error("malformed SASL message: {0}")]
    Malformed(&'static str),
    /// Proxy authentication (authzid different from authcid) is not offered.
    #[error("authorization identity differs from authentication identity")]
    AuthzidMismatch,
}

/// Supported mechanisms (RFC 4422 §3.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The non-standard but ubiquitous LOGIN (draft-murchison-sasl-login).
    Login,
    /// RFC 7628: an OAuth 2.0 bearer token.
    OAuthBearer,
    /// Google's pre-standard bearer mechanism, still what many clients send.
    XOAuth2,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
    ];

    /// The names for a capability listing, space-separated.
    pub fn listing() -> String {
        Self::ALL.map(Mechanism::name).join(" ")
    }

    /// Whether a failure is reported with an error challenge first
    /// (RFC 7628 §3.2.2; XOAUTH2 does the same).
    pub fn is_bearer(self) -> bool {
        matches!(self, Mechanism::OAuthBearer | Mechanism::XOAuth2)
    }

    /// Case-insensitive lookup (RFC 4422 §3.1: names are case-insensitive
    /// in protocol use).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Self::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Canonical upper-case name, for EHLO/CAPABILITY/CAPA listings.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }
}

impl FromStr for Mechanism {
    type Err = SaslError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::from_name(s).ok_or_else(|| SaslError::UnsupportedMechanism(s.to_string()))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A password that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The actual value; call only where it is needed (verification).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Decoded credentials, from PLAIN or LOGIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainCreds {
    /// Present only when the client sent one; always equal to `authcid`
    /// (ignoring ASCII case) since proxy authentication is refused.
    pub authzid: Option<String>,
    /// The login name (for us, an email address).
    pub authcid: String,
    pub password: Secret,
}

/// Is this client response the SASL cancel marker `*`?
pub fn is_cancel(response: &[u8]) -> bool {
    trim_line(response) == b"*"
}

/// Decode one base64 client response line. `*` yields
/// [`SaslError::Cancelled`]; `=` (RFC 4954 §4, RFC 9051 §6.2.2: an empty
/// initial response) yields an empty vector. Surrounding whitespace and a
/// trailing CRLF are ignored.
pub fn decode_base64(response: &[u8]) -> Result<Vec<u8>, SaslError> {
    let response = trim_line(response);
    match response {
        b"*" => Err(SaslError::Cancelled),
        b"=" => Ok(Vec::new()),
        _ => STANDARD.decode(response).map_err(|_| SaslError::Base64),
    }
}

/// Base64 for server challenges.
pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

fn trim_line(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Decode a base64 PLAIN message (or `*` to cancel). See [`decode_plain`].
pub fn decode_plain_b64(response: &[u8]) -> Result<PlainCreds, SaslError> {
    decode_plain(&decode_base64(response)?)
}

/// Parse a raw PLAIN message. RFC 4616 §2:
/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd`, authcid and passwd
/// non-empty, no NUL inside a field, all UTF-8.
pub fn decode_plain(message: &[u8]) -> Result<PlainCreds, SaslError> {
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::Malformed("expected exactly two NUL separators"));
    };
    let authzid = utf8_field(authzid, "authorization identity is not UTF-8")?;
    let authcid = utf8_field(authcid, "authentication identity is not UTF-8")?;
    let password = utf8_field(password, "password is not UTF-8")?;
    if authcid.is_empty() {
        return Err(SaslError::Malformed("empty authentication identity"));
    }
    if password.is_empty() {
        return Err(SaslError::Malformed("empty password"));
    }
    let authzid = if authzid.is_empty() {
        None
    } else if authzid.eq_ignore_ascii_case(&authcid) {
        Some(authzid)
    } else {
        return Err(SaslError::AuthzidMismatch);
    };
    Ok(PlainCreds {
        authzid,
        authcid,
        password: Secret(password),
    })
}

pub(crate) fn utf8_field(bytes: &[u8], not_utf8: &'static str) -> Result<String, SaslError> {
    if bytes.len() > MAX_CREDENTIAL_LEN {
        return Err(SaslError::Malformed("credential field too long"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::Malformed(not_utf8))
}

/// Outcome of feeding one client response to a [`LoginExchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// Send this base64 challenge and feed the answer to `step` again.
    Challenge(&'static str),
    /// Both answers received.
    Done(PlainCreds),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LoginState {
    AwaitUsername,
    AwaitPassword { username: String },
    Done,
}

/// Server side of AUTH LOGIN: challenge "Username:", then "Password:".
///
/// ```text
/// let mut ex = LoginExchange::new();
/// send(ex.challenge());               // unless the client sent an initial response
/// loop { match ex.step(&read_line())? {
///     LoginStep::Challenge(c) => send(c),
///     LoginStep::Done(creds) => break creds,
/// } }
/// ```
/// An initial response (`AUTH LOGIN dXNlcg==`) is just the first `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginExchange {
    state: LoginState,
}

impl Default for LoginExchange {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginExchange {
    pub fn new() -> Self {
        LoginExchange {
            state: LoginState::AwaitUsername,
        }
    }

    /// The base64 challenge for the answer expected next (the password
    /// prompt once the username is in). `None` once finished.
    pub fn challenge(&self) -> Option<&'static str> {
        match self.state {
            LoginState::AwaitUsername => Some(LOGIN_USERNAME_PROMPT),
            LoginState::AwaitPassword { .. } => Some(LOGIN_PASSWORD_PROMPT),
            LoginState::Done => None,
        }
    }

    /// Feed one base64 client line. Errors (including `*` →
    /// [`SaslError::Cancelled`]) end the exchange.
    pub fn step(&mut self, response: &[u8]) -> Result<LoginStep, SaslError> {
        let state = std::mem::replace(&mut self.state, LoginState::Done);
        let value = decode_base64(response)?;
        match state {
            LoginState::AwaitUsername => {
                let username = utf8_field(&value, "username is not UTF-8")?;
                if username.is_empty() {
                    return Err(SaslError::Malformed("empty username"));
                }
                self.state = LoginState::AwaitPassword { username };
                Ok(LoginStep::Challenge(LOGIN_PASSWORD_PROMPT))
            }
            LoginState::AwaitPassword { username } => {
                let password = utf8_field(&value, "password is not UTF-8")?;
                if password.is_empty() {
                    return Err(SaslError::Malformed("empty password"));
                }
                Ok(LoginStep::Done(PlainCreds {
                    authzid: None,
                    authcid: username,
                    password: Secret(password),
                }))
            }
            LoginState::Done => Err(SaslError::Malformed("exchange already finished")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        encode_base64(s).into_bytes()
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("LoGiN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
        assert_eq!("xoauth2".parse::<Mechanism>(), Ok(Mechanism::XOAuth2));
        assert_eq!(
            "SCRAM-SHA-1".parse::<Mechanism>(),
            Err(SaslError::UnsupportedMechanism("SCRAM-SHA-1".into()))
        );
        assert_eq!(Mechanism::listing(), "PLAIN LOGIN OAUTHBEARER XOAUTH2");
        assert_eq!(Mechanism::Plain.to_string(), "PLAIN");
    }

    #[test]
    fn prompts_decode_to_their_text() {
        assert_eq!(decode_base64(LOGIN_USERNAME_PROMPT.as_bytes()).unwrap(), b"Username:");
        assert_eq!(decode_base64(LOGIN_PASSWORD_PROMPT.as_bytes()).unwrap(), b"Password:");
    }

    #[test]
    fn plain_without_and_with_authzid() {
        let c = decode_plain(b"\0tim@example.org\0tanstaaftanstaaf").unwrap();
        assert_eq!(c.authzid, None);
        assert_eq!(c.authcid, "tim@example.org");
        assert_eq!(c.password.expose(), "tanstaaftanstaaf");

        let c = decode_plain_b64(&b64(b"Tim@Example.org\0tim@example.org\0pw")).unwrap();
        assert_eq!(c.authzid.as_deref(), Some("Tim@Example.org"));
        // Surrounding whitespace / CRLF from the line are tolerated.
        let mut line = b64(b"\0u\0p");
        line.extend_from_slice(b"\r\n");
        assert_eq!(decode_plain_b64(&line).unwrap().authcid, "u");
    }

    #[test]
    fn plain_rejects_malformed_messages() {
        let malformed = |m: &[u8]| matches!(decode_plain(m), Err(SaslError::Malformed(_)));
        assert!(malformed(b"user password"), "no NUL");
        assert!(malformed(b"\0userpassword"), "one NUL");
        assert!(malformed(b"\0user\0pass\0extra"), "three NULs");
        assert!(malformed(b"\0\0password"), "empty authcid");
        assert!(malformed(b"\0user\0"), "empty password");
        assert!(malformed(b""), "empty message");
        assert!(malformed(b"\0us\xffer\0pw"), "not UTF-8");
        let long = [b"\0u\0".as_slice(), &vec![b'p'; MAX_CREDENTIAL_LEN + 1]].concat();
        assert!(malformed(&long), "too long");
        let max = [b"\0u\0".as_slice(), &vec![b'p'; MAX_CREDENTIAL_LEN]].concat();
        assert!(decode_plain(&max).is_ok());
        assert_eq!(
            decode_plain(b"admin@example.org\0tim@example.org\0pw"),
            Err(SaslError::AuthzidMismatch)
        );
    }

    #[test]
    fn base64_errors_and_markers() {
        assert_eq!(decode_plain_b64(b"not base64!"), Err(SaslError::Base64));
        assert_eq!(decode_plain_b64(b"AGFiYw="), Err(SaslError::Base64), "bad padding");
        assert_eq!(decode_plain_b64(b"*"), Err(SaslError::Cancelled));
        assert_eq!(decode_plain_b64(b"*\r\n"), Err(SaslError::Cancelled));
        assert!(is_cancel(b" *\r\n"));
        assert!(!is_cancel(b"**"));
        assert_eq!(decode_base64(b"=").unwrap(), b"");
        assert!(matches!(decode_plain_b64(b"="), Err(SaslError::Malformed(_))));
    }

    #[test]
    fn login_exchange() {
        let mut ex = LoginExchange::new();
        assert_eq!(ex.challenge(), Some(LOGIN_USERNAME_PROMPT));
        assert_eq!(
            ex.step(&b64(b"tim@example.org")).unwrap(),
            LoginStep::Challenge(LOGIN_PASSWORD_PROMPT)
        );
        assert_eq!(ex.challenge(), Some(LOGIN_PASSWORD_PROMPT));
        let LoginStep::Done(creds) = ex.step(&b64(b"s3cret")).unwrap() else {
            panic!("expected Done");
        };
        assert_eq!(creds.authcid, "tim@example.org");
        assert_eq!(creds.password.expose(), "s3cret");
        assert_eq!(ex.challenge(), None);
        assert!(matches!(ex.step(&b64(b"more")), Err(SaslError::Malformed(_))));
    }

    #[test]
    fn login_exchange_errors_end_it() {
        let mut ex = LoginExchange::new();
        assert_eq!(ex.step(b"*"), Err(SaslError::Cancelled));
        assert_eq!(ex.challenge(), None);

        let mut ex = LoginExchange::new();
        ex.step(&b64(b"u")).unwrap();
        assert_eq!(ex.step(b"%%%"), Err(SaslError::Base64));
        assert!(ex.step(&b64(b"pw")).is_err(), "no retry after an error");

        let mut ex = LoginExchange::new();
        assert!(matches!(ex.step(b"="), Err(SaslError::Malformed(_))));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        let creds = decode_plain(b"\0u\0hunter2").unwrap();
        let shown = format!("{creds:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }
}
