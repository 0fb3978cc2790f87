//! Store errors. Protocol layers map these to wire replies in one place each.

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object (domain, account, alias, mailbox) exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The named object does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The operation would take the account over its storage or message quota.
    #[error("quota exceeded for {account}")]
    QuotaExceeded {
        /// Address of the account that is full.
        account: String,
        /// True when the message can never fit (bigger than the whole quota).
        permanent: bool,
    },
    /// The request is malformed or not allowed (e.g. deleting INBOX).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (I/O, corruption, lock timeout).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A change state is older than the change log reaches back (RFC 8620
    /// §5.2 `cannotCalculateChanges`), or is not a state of this account.
    #[error("cannot calculate changes from this state")]
    CannotCalculateChanges,
    /// The store has been shut down.
    #[error("store is closed")]
    Closed,
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("encoding: {e}"))
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
