//! Credentials the server issues besides the account password: app
//! passwords and OAuth 2.0 grants with their tokens (ARCHITECTURE.md,
//! "Credentials"). The store keeps only SHA-256 digests of the secrets.

use crate::AccountId;

/// An app password, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub id: i64,
    pub name: String,
    /// Unix seconds.
    pub created: i64,
}

/// Most app passwords one account may hold.
pub const MAX_APP_PASSWORDS: usize = 100;
/// Most live OAuth grants (logins of clients) one account may hold; past
/// it the oldest is revoked.
pub const MAX_GRANTS: usize = 200;

/// One client's authorisation to act for an account (RFC 6749 §1.3): what
/// a refresh-token chain and its access tokens belong to, and what
/// revocation removes as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub account_id: AccountId,
    pub client_id: String,
    pub scope: String,
    pub created: i64,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// RFC 6749 §4.1.2 authorization code, exchanged once.
    Code,
    /// RFC 6749 §1.4, presented as a Bearer token (RFC 6750).
    Access,
    /// RFC 6749 §1.5, rotated on every use.
    Refresh,
}

impl TokenKind {
    pub fn as_i64(self) -> i64 {
        match self {
            TokenKind::Code => 0,
            TokenKind::Access => 1,
            TokenKind::Refresh => 2,
        }
    }

    pub fn from_i64(v: i64) -> Option<TokenKind> {
        match v {
            0 => Some(TokenKind::Code),
            1 => Some(TokenKind::Access),
            2 => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// A token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Lower-case hex SHA-256 of the token.
    pub digest: String,
    pub kind: TokenKind,
    /// Unix seconds.
    pub expires: i64,
    /// What the issuer needs back (for a code: redirect URI and PKCE
    /// challenge, as JSON); opaque to the store.
    pub payload: String,
}

/// A stored token with its grant and account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub grant: Grant,
    pub address: String,
    pub kind: TokenKind,
    pub expires: i64,
    pub payload: String,
    /// Already exchanged or rotated: presenting it again means it leaked
    /// (RFC 6749 §4.1.2, §10.4), and the issuer revokes the grant.
    pub used: bool,
}

/// Outcome of [`crate::Store::exchange_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The token was live and unused: it is now used, and the new tokens
    /// belong to its grant.
    Done(TokenRecord),
    /// It had been used before: the grant is revoked, nothing issued.
    Replayed,
    /// No such live token.
    NotFound,
}
