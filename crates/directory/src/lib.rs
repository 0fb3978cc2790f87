//! Credentials, SASL decoding and login throttling, shared by every protocol.
//!
//! Key design decision: there is exactly one way to check a password, the
//! [`Authenticator`], and SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3
//! USER/PASS/AUTH all go through it. Throttling state is therefore shared:
//! failures on one protocol count against the others, and the rate limit is
//! checked *before* the password, so a guesser who hits the limit learns
//! nothing more, even by trying the right password. The SASL side only
//! decodes client messages into [`sasl::PlainCreds`]; it never verifies.

pub mod auth;
pub mod exchange;
pub mod password;
pub mod sasl;
pub mod secret;

pub use auth::{AccountLookup, AuthError, AuthPolicy, Authenticated, Authenticator, LookupError};
pub use exchange::{bearer_failure_challenge, Credentials, SaslServer, SaslStep};
pub use password::{hash_password, hash_password_with, password_scheme, verify_password, HashParams, PasswordError};
pub use sasl::{decode_plain, decode_plain_b64, LoginExchange, LoginStep, Mechanism, PlainCreds, SaslError, Secret};
pub use secret::{app_password_form, generate_app_password, generate_token, pkce_s256, secret_digest};
