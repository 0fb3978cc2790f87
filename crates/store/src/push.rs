//! JMAP push subscriptions (RFC 8620 §7.2): where to POST an account's
//! StateChange objects, with the client's RFC 8291 keys. Kept per account
//! (ARCHITECTURE.md, "Push"): a new password destroys them all.

use crate::AccountId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub id: i64,
    pub account_id: AccountId,
    pub device_client_id: String,
    pub url: String,
    /// RFC 8291 keys, URL-safe base64 as the client gave them.
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    /// The code sent in the PushVerification; pushes wait for it.
    pub verification_code: String,
    pub verified: bool,
    /// Unix seconds.
    pub expires: i64,
    /// Type names; `None` = all.
    pub types: Option<Vec<String>>,
}

/// A subscription as created (id and verification state are the store's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPushSubscription {
    pub device_client_id: String,
    pub url: String,
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    pub verification_code: String,
    pub expires: i64,
    pub types: Option<Vec<String>>,
}

/// A PushSubscription/set update; `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushUpdate {
    pub verified: Option<bool>,
    pub expires: Option<i64>,
    pub types: Option<Option<Vec<String>>>,
}

/// Most subscriptions one account may hold.
pub const MAX_PUSH_SUBSCRIPTIONS: usize = 50;
