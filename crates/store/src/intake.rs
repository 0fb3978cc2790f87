//! The over-quota rule of [`crate::Store::accept`], backend-neutral: given
//! who got a copy and who was over quota inside the delivery transaction,
//! decide whether the transaction commits, and who is bounced or dropped.
//! A backend calls [`decide`] before its commit and rolls back on `Err`.

use crate::{AccountId, OverQuota, Result, StoreError};

/// What else happens once a message is stored for local accounts (the
/// vacation responder; later filters), so the protocol crates that accept
/// mail need not know it. Called after the commit and the client's reply;
/// it must return at once and do its work elsewhere.
pub trait AfterDelivery: Send + Sync {
    /// `sender` is the envelope sender (empty for a null sender),
    /// `message` the message's header section (all a responder reads; the
    /// body can be large), `accounts` those that got a copy.
    fn delivered(&self, sender: &str, message: std::sync::Arc<Vec<u8>>, accounts: Vec<AccountId>);
}

/// A local account over quota inside the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverQuotaAccount {
    /// The account.
    pub account_id: AccountId,
    /// Its address (the bounce's Final-Recipient).
    pub address: String,
    /// The message can never fit (bigger than the whole quota).
    pub permanent: bool,
}

/// What to commit for the accounts over quota.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Accounts to bounce: queue recipients in [`crate::RecipientStatus::Bounce`].
    pub bounce: Vec<OverQuotaAccount>,
    /// Accounts whose failure cannot be reported (null sender, permanent).
    pub drop: Vec<OverQuotaAccount>,
}

/// The reply recorded for a bounced account; its Diagnostic-Code.
/// RFC 3463 §3.3: X.2.2 mailbox full. Permanent: RFC 5321 §6.1 leaves no
/// later chance once the 250 was said.
pub fn bounce_reason(permanent: bool) -> &'static str {
    if permanent {
        "552 5.2.2 message is larger than the mailbox's quota"
    } else {
        "552 5.2.2 mailbox full (over quota at delivery)"
    }
}

/// The rule (ARCHITECTURE.md, "Delivery durability"). `Err` means: roll the
/// whole delivery back and refuse it with this error.
///
/// - no account over quota: commit;
/// - [`OverQuota::Refuse`]: any account over quota refuses the delivery;
/// - [`OverQuota::Bounce`]: refuse when nobody would get the message (no
///   copy stored, no remote recipient) or when the sender is null and a
///   failure is temporary (RFC 5321 §4.5.5: a bounce is never bounced, so
///   the sending server must keep the message); otherwise bounce each
///   account over quota, or, for a null sender and a message that can
///   never fit, drop it for that account.
pub fn decide(
    policy: OverQuota,
    null_sender: bool,
    delivered_any: bool,
    remote_any: bool,
    over: Vec<OverQuotaAccount>,
) -> Result<Decision> {
    let Some(first) = over.first() else {
        return Ok(Decision::default());
    };
    let refuse = |permanent: bool| StoreError::QuotaExceeded {
        account: first.address.clone(),
        permanent,
    };
    let all_permanent = over.iter().all(|o| o.permanent);
    match policy {
        OverQuota::Refuse => Err(refuse(all_permanent)),
        OverQuota::Bounce if !delivered_any && !remote_any => Err(refuse(all_permanent)),
        OverQuota::Bounce if null_sender && !all_permanent => Err(refuse(false)),
        OverQuota::Bounce if null_sender => Ok(Decision {
            bounce: Vec::new(),
            drop: over,
        }),
        OverQuota::Bounce => Ok(Decision {
            bounce: over,
            drop: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(id: AccountId, permanent: bool) -> OverQuotaAccount {
        OverQuotaAccount {
            account_id: id,
            address: format!("u{id}@example.test"),
            permanent,
        }
    }

    fn refused(r: Result<Decision>) -> Option<bool> {
        match r {
            Err(StoreError::QuotaExceeded { permanent, .. }) => Some(permanent),
            _ => None,
        }
    }

    #[test]
    fn nobody_over_quota_commits() {
        assert_eq!(
            decide(OverQuota::Refuse, false, true, false, vec![]).unwrap(),
            Decision::default()
        );
    }

    #[test]
    fn refuse_policy_is_all_or_nothing() {
        assert_eq!(
            refused(decide(OverQuota::Refuse, false, true, true, vec![full(1, false)])),
            Some(false)
        );
        assert_eq!(
            refused(decide(OverQuota::Refuse, false, true, true, vec![full(1, true)])),
            Some(true)
        );
    }

    #[test]
    fn bounce_policy_bounces_when_someone_else_gets_it() {
        let d = decide(OverQuota::Bounce, false, true, false, vec![full(1, false)]).unwrap();
        assert_eq!(d.bounce, vec![full(1, false)]);
        let d = decide(OverQuota::Bounce, false, false, true, vec![full(1, true)]).unwrap();
        assert_eq!(d.bounce, vec![full(1, true)]);
    }

    #[test]
    fn bounce_policy_refuses_when_every_recipient_fails() {
        let both = vec![full(1, false), full(2, true)];
        assert_eq!(
            refused(decide(OverQuota::Bounce, false, false, false, both)),
            Some(false)
        );
        assert_eq!(
            refused(decide(OverQuota::Bounce, false, false, false, vec![full(2, true)])),
            Some(true)
        );
    }

    #[test]
    fn a_null_sender_is_never_bounced() {
        // Temporary: the sending server keeps it (4xx for everyone).
        let r = decide(OverQuota::Bounce, true, true, true, vec![full(1, false), full(2, true)]);
        assert_eq!(refused(r), Some(false));
        // Can never fit: the others get it, that account cannot.
        let d = decide(OverQuota::Bounce, true, true, false, vec![full(2, true)]).unwrap();
        assert!(d.bounce.is_empty());
        assert_eq!(d.drop, vec![full(2, true)]);
    }
}
