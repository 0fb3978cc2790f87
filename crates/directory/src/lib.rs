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
pub mod password;
pub mod sasl;

pub use auth::{AccountLookup, AuthError, AuthPolicy, Authenticated, Authenticator, LookupError};
pub use password::{hash_password, hash_password_with, password_scheme, verify_password, HashParams, PasswordError};
pub use sasl::{decode_plain, decode_plain_b64, LoginExchange, LoginStep, Mechanism, PlainCreds, SaslError, Secret};
