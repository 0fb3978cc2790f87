//! Letterbox storage: one interface ([`Store`]) that every protocol uses, and
//! its backends.
//!
//! The key decision: protocol code never sees a database. It calls the
//! async, transactional operations of [`Store`] (deliver to N mailboxes, copy,
//! move, expunge are each atomic) and learns of changes through
//! [`Store::subscribe`]. The embedded backend ([`sqlite::SqliteStore`]) keeps
//! metadata and message bodies in one SQLite database in WAL mode, so one
//! fsync per commit makes both durable, and one writer thread batches
//! concurrent writes into shared transactions (group commit). A PostgreSQL
//! backend implements the same trait.
//!
//! Durability: every operation that creates a message, allocates a UID or
//! UIDVALIDITY, or changes the queue or the directory is on disk when it
//! returns. Flag changes, expunges and `\Recent` marks may be made durable
//! a short, backend-defined moment later (SQLite: 100 ms, or with the next
//! durable commit): a crash can undo the last of those, never leave a gap
//! before a durable one, and never lose or duplicate a message or reuse a
//! UID (Dovecot's `mail_fsync=optimized` makes the same trade).

pub mod cache;
pub mod changes;
pub mod credentials;
pub mod error;
pub mod flags;
pub mod intake;
pub mod prepare;
pub mod push;
pub mod query;
pub mod resolve;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod submission;
pub mod thread;
pub mod types;
pub mod vacation;

pub use changes::{ChangeOp, DataType, ObjectChanges};
pub use credentials::{AppPassword, Exchange, Grant, NewToken, TokenKind, TokenRecord};
pub use error::{Result, StoreError};
pub use flags::normalize_flags;
pub use intake::AfterDelivery;
pub use letterbox_mail::mailbox::normalize_mailbox;
pub use push::{NewPushSubscription, PushSubscription, PushUpdate};
pub use query::{Filter, Query, QueryResult, Sort, SortKey, TextField};
pub use submission::{
    Cancel, Delivered, IdentitySettings, NewSubmission, Submission, SubmissionRecipient, SubmissionRelease, UndoStatus,
};
pub use types::*;
pub use vacation::Vacation;

use async_trait::async_trait;
use letterbox_mail::MessageInfo;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Shared handle to a store.
pub type SharedStore = Arc<dyn Store>;

/// The storage interface. Names and addresses passed in are normalised by the
/// store (domains and addresses lower-cased, `INBOX` case-insensitive).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- domains, accounts, aliases ----

    /// Add a local domain.
    async fn add_domain(&self, name: &str) -> Result<()>;
    /// All local domains, by name.
    async fn list_domains(&self) -> Result<Vec<Domain>>;
    /// Remove a domain; refused while accounts or aliases use it.
    async fn remove_domain(&self, name: &str) -> Result<()>;
    /// Create an account with the default mailboxes (RFC 6154 special-use).
    async fn add_account(&self, address: &str, password_hash: &str, quota: Quota) -> Result<AccountId>;
    /// Replace an account's password hash.
    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()>;
    /// Change an account's quota.
    async fn set_quota(&self, address: &str, quota: Quota) -> Result<()>;
    /// Delete an account with all its mailboxes and messages.
    async fn remove_account(&self, address: &str) -> Result<()>;
    /// All accounts, by address.
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Look up an account by login address.
    async fn account(&self, address: &str) -> Result<Option<Account>>;
    /// Look up an account by id.
    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>>;
    /// Add an alias (`user@domain` or catch-all `@domain`) to one or more targets.
    async fn add_alias(&self, source: &str, targets: &[String]) -> Result<()>;
    /// Remove an alias.
    async fn remove_alias(&self, source: &str) -> Result<()>;
    /// All aliases, by source.
    async fn list_aliases(&self) -> Result<Vec<Alias>>;
    /// Where mail to `address` goes: exact account, then alias, then
    /// `local+tag` sub-address, then catch-all.
    async fn resolve_recipient(&self, address: &str) -> Result<Recipient>;
    /// Addresses an account may use as sender: its own and aliases pointing to it.
    async fn sender_addresses(&self, account: AccountId) -> Result<Vec<String>>;

    // ---- credentials (ARCHITECTURE.md, "Credentials") ----

    /// Store an app password's digest under a name.
    async fn add_app_password(&self, account: AccountId, name: &str, digest: &str) -> Result<AppPassword>;
    async fn app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>>;
    /// Whether it existed.
    async fn remove_app_password(&self, account: AccountId, id: i64) -> Result<bool>;
    /// Whether the digest is one of the account's app passwords.
    async fn check_app_password(&self, account: AccountId, digest: &str) -> Result<bool>;
    /// A new grant holding the given tokens (an authorization code).
    async fn create_grant(
        &self,
        account: AccountId,
        client_id: &str,
        scope: &str,
        tokens: Vec<NewToken>,
    ) -> Result<Grant>;
    /// The live (unexpired) token with this digest, used or not.
    async fn token(&self, digest: &str) -> Result<Option<TokenRecord>>;
    /// Atomically mark a live token of `kind` used and add `tokens` to its
    /// grant; a token used before revokes its grant instead.
    async fn exchange_token(&self, digest: &str, kind: TokenKind, tokens: Vec<NewToken>) -> Result<Exchange>;
    /// Revoke the grant a token belongs to (RFC 7009 §2.1). Whether one was.
    async fn revoke_token(&self, digest: &str) -> Result<bool>;
    async fn grants(&self, account: AccountId) -> Result<Vec<Grant>>;
    /// Whether it existed.
    async fn revoke_grant(&self, account: AccountId, grant: i64) -> Result<bool>;

    // ---- operations ----

    /// Readiness (`/readyz`): a durable write commits, and the space left
    /// where the data lives, when the backend can tell.
    async fn health(&self) -> Result<Health>;

    // ---- push subscriptions (RFC 8620 §7.2) ----

    /// The account's live (unexpired) subscriptions; expired ones are removed.
    async fn push_subscriptions(&self, account: AccountId) -> Result<Vec<PushSubscription>>;
    async fn create_push_subscription(&self, account: AccountId, new: NewPushSubscription) -> Result<PushSubscription>;
    /// Whether it existed.
    async fn update_push_subscription(&self, account: AccountId, id: i64, update: PushUpdate) -> Result<bool>;
    /// Whether it existed.
    async fn remove_push_subscription(&self, account: AccountId, id: i64) -> Result<bool>;

    // ---- vacation responder (RFC 8621 §8, RFC 3834) ----

    /// The account's settings (all off when never set).
    /// Store a pending EmailSubmission (RFC 8621 §7); it is sent by an
    /// [`Intake`] that releases it.
    async fn create_submission(&self, account: AccountId, new: NewSubmission) -> Result<Submission>;
    /// The account's submissions, or those of `ids` that exist.
    async fn submissions(&self, account: AccountId, ids: Option<Vec<i64>>) -> Result<Vec<Submission>>;
    /// Cancel a pending submission.
    async fn cancel_submission(&self, account: AccountId, id: i64) -> Result<Cancel>;
    /// Forget a submission (sending goes on if it was final).
    async fn destroy_submission(&self, account: AccountId, id: i64) -> Result<bool>;
    /// Pending submissions whose send time has come, every account.
    async fn due_submissions(&self, now: i64, limit: usize) -> Result<Vec<Submission>>;
    /// The earliest send time of any pending submission.
    async fn next_submission_due(&self) -> Result<Option<i64>>;
    /// A pending submission that cannot be sent becomes final, failed.
    async fn fail_submission(&self, id: i64, reason: &str) -> Result<()>;
    /// Remove finished submissions created before `before`.
    async fn purge_submissions(&self, before: i64) -> Result<usize>;

    /// The Identity settings of the account's addresses that have any.
    async fn identity_settings(&self, account: AccountId) -> Result<Vec<IdentitySettings>>;
    /// Store one identity's settings; `object_id` names it in the change log.
    async fn set_identity(&self, account: AccountId, object_id: i64, settings: IdentitySettings) -> Result<()>;

    async fn vacation(&self, account: AccountId) -> Result<Vacation>;
    /// Replace them; a new setting answers every sender once again.
    async fn set_vacation(&self, account: AccountId, vacation: Vacation) -> Result<()>;
    /// Atomically: whether `sender` has had no reply within `period` seconds
    /// of `now`, and if so remember one sent now.
    async fn vacation_reply_due(&self, account: AccountId, sender: &str, now: i64, period: i64) -> Result<bool>;

    // ---- mailboxes ----

    /// All mailboxes of an account, by name.
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>>;
    /// One mailbox by name.
    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>>;
    /// One mailbox by id.
    async fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>>;
    /// Create a mailbox (a fresh UIDVALIDITY, never one used before).
    async fn create_mailbox(&self, account: AccountId, name: &str, special_use: Option<SpecialUse>) -> Result<Mailbox>;
    /// Delete a mailbox and its messages (not INBOX).
    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()>;
    /// Rename a mailbox and its children. Renaming INBOX moves its messages
    /// to a new mailbox and leaves INBOX empty (RFC 9051 §6.3.6).
    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    /// IMAP \Recent: raise the mailbox's mark to `up_to` and return the
    /// previous one; the caller's session owns \Recent for UIDs in between.
    async fn claim_recent(&self, mailbox: MailboxId, up_to: u32) -> Result<u32>;
    /// Set the subscription flag. Subscribing to a name without a mailbox is allowed.
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()>;
    /// Names subscribed to, whether or not the mailbox exists.
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>>;

    // ---- messages ----

    /// Store one message in several mailboxes in one transaction. Accounts
    /// over quota are skipped and reported; everything else is durable when
    /// this returns. Mail intake (SMTP, `letterbox deliver`, reports) uses
    /// [`Store::accept`], which also decides what a skipped account means.
    async fn deliver(&self, message: NewMessage, targets: &[DeliveryTarget]) -> Result<DeliveryReport>;
    /// One mail transaction in one store transaction: the local copies, the
    /// queue entry for remote recipients and forwards, and bounces for
    /// accounts over quota (as `intake.over_quota` says). All of it is
    /// durable when this returns `Ok`, none of it when it returns an error,
    /// so a `250` is only ever said for mail that will be delivered or
    /// bounced (RFC 5321 §6.1). Remote addresses must be addresses
    /// (`Invalid` otherwise).
    async fn accept(&self, intake: Intake) -> Result<Accepted>;
    /// Store one message in one mailbox (IMAP APPEND), enforcing quota.
    async fn append(&self, mailbox: MailboxId, message: NewMessage) -> Result<Appended>;
    /// Store several messages in one mailbox, all or none (RFC 3502
    /// MULTIAPPEND); UIDs ascend in the order given.
    async fn append_many(&self, mailbox: MailboxId, messages: Vec<NewMessage>) -> Result<Vec<Appended>>;
    /// Metadata of every message in a mailbox, by UID.
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>>;
    /// Metadata of the messages with these UIDs (ascending, deduplicated),
    /// by UID; UIDs no longer present are left out.
    async fn messages_by_uid(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<MessageMeta>>;
    /// Message ids of expunged messages whose bodies are still readable
    /// (RFC 2180 §4.1.1: for sessions not yet told of the expunge), by UID.
    async fn expunged_ids(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageId)>>;
    /// What changed in a mailbox after `since` (a modseq).
    async fn changes(&self, mailbox: MailboxId, since: u64) -> Result<Changes>;
    /// The raw bytes of a message.
    async fn raw_message(&self, id: MessageId) -> Result<Arc<Vec<u8>>>;
    /// The parsed structure computed at delivery.
    async fn message_info(&self, id: MessageId) -> Result<Arc<MessageInfo>>;
    /// Structures and/or raw bytes of several messages in one read (a FETCH
    /// of a range), by id; ids no longer readable are left out. Callers
    /// bound how much they ask for at once.
    async fn message_data(&self, ids: &[MessageId], info: bool, raw: bool) -> Result<HashMap<MessageId, MessageData>>;
    /// Change flags of the messages with the given UIDs; returns the messages
    /// whose flags changed, with their new state.
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
    ) -> Result<Vec<MessageMeta>>;
    /// RFC 7162 §3.1.3 conditional STORE: like [`Store::store_flags`], but
    /// with `unchanged_since` a message whose modseq is above it is left
    /// alone and its UID reported in `modified`.
    async fn store_flags_if(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<ConditionalStore>;
    /// Sort and thread keys of every message of a mailbox, by UID
    /// (RFC 5256 SORT/THREAD; computed at delivery).
    async fn sort_rows(&self, mailbox: MailboxId) -> Result<Arc<Vec<SortRow>>>;
    /// UIDs expunged from a mailbox at a modseq above `since`, ascending
    /// (RFC 7162 §3.2.5.1, VANISHED (EARLIER)). Expunges are remembered
    /// as long as the mailbox exists.
    async fn expunged_since(&self, mailbox: MailboxId, since: u64) -> Result<Vec<u32>>;
    /// Expunge messages flagged `\Deleted` (only among `uids` when given).
    /// Returns the expunged UIDs, ascending.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[u32]>) -> Result<Vec<u32>>;
    /// Remove the given messages regardless of flags (POP3 UPDATE state).
    async fn delete_messages(&self, mailbox: MailboxId, ids: &[MessageId]) -> Result<Vec<u32>>;
    /// Copy messages to another mailbox of the same account, enforcing quota.
    async fn copy(&self, from: MailboxId, uids: &[u32], to: MailboxId) -> Result<Copied>;
    /// Move messages atomically (RFC 6851): copy, then expunge the sources.
    async fn move_messages(&self, from: MailboxId, uids: &[u32], to: MailboxId) -> Result<Copied>;

    // ---- account-wide view (JMAP) ----

    /// The current state of one data type of an account (RFC 8620 §1.6):
    /// the modseq of its last change.
    async fn state(&self, account: AccountId, data: DataType) -> Result<u64>;
    /// What changed for one data type after state `since`, at most `max`
    /// ids (RFC 8620 §5.2). `CannotCalculateChanges` when `since` is older
    /// than the change log reaches or newer than the account's state.
    async fn object_changes(&self, account: AccountId, data: DataType, since: u64, max: usize)
        -> Result<ObjectChanges>;
    /// Emails of an account by id; ids that do not exist (or belong to
    /// another account, or are only in mailboxes where they are marked
    /// `\Deleted`) are left out.
    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<EmailMeta>>;
    /// Run a query over an account's emails (RFC 8621 §4.4); `Invalid`
    /// for a filter past the limits of [`query`].
    async fn query_emails(&self, account: AccountId, query: Query) -> Result<QueryResult>;
    /// UIDs of the messages of one mailbox matching `filter`, ascending
    /// (IMAP SEARCH pushes the conditions the store can answer down here).
    async fn search_uids(&self, mailbox: MailboxId, filter: Filter) -> Result<Vec<u32>>;
    /// The visible emails of a thread, oldest first (RFC 8621 §3); empty
    /// for a thread that does not exist or is not the account's.
    async fn thread(&self, account: AccountId, thread: ThreadId) -> Result<Vec<EmailId>>;

    /// RFC 8621 §4.6: apply patches in one transaction under one modseq;
    /// each gets its own outcome (a bad patch does not stop the others).
    /// Keyword changes show in every mailbox holding the email; a removed
    /// membership leaves an expunge for IMAP sessions.
    async fn update_emails(&self, account: AccountId, patches: Vec<(EmailId, EmailPatch)>)
        -> Result<Vec<PatchOutcome>>;
    /// Destroy emails (every membership, with expunges); per id, whether it existed.
    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<bool>>;
    /// RFC 8621 §4.8 Email/import and Email/set create: one new email in
    /// these mailboxes (all of this account), durable like `append`.
    async fn import_email(&self, account: AccountId, mailboxes: &[MailboxId], message: NewMessage)
        -> Result<EmailMeta>;
    /// RFC 8621 §2 per-mailbox counts (memberships marked `\Deleted` excluded).
    async fn mailbox_counts(&self, account: AccountId) -> Result<Vec<MailboxCounts>>;
    /// RFC 8620 §6.1: keep bytes for this account for a day (blob id = content hash).
    async fn upload_blob(&self, account: AccountId, data: Vec<u8>) -> Result<UploadedBlob>;
    /// RFC 8620 §6.2: a blob this account may read (one of its emails or its
    /// unexpired upload holds it), never another account's.
    async fn blob(&self, account: AccountId, blob_id: &str) -> Result<Option<std::sync::Arc<Vec<u8>>>>;
    // ---- outbound queue ----

    /// Queue a message for remote delivery, durably.
    async fn enqueue(&self, message: OutboundMessage) -> Result<i64>;
    /// Queued messages, oldest first.
    async fn list_queue(&self) -> Result<Vec<QueueEntry>>;
    /// One queued message.
    async fn queue_entry(&self, id: i64) -> Result<Option<QueueEntry>>;
    /// The bytes of a queued message.
    async fn queue_raw(&self, id: i64) -> Result<Vec<u8>>;
    /// Lease up to `limit` entries due at `now` to `owner` for `lease_secs`.
    async fn claim_queue(&self, owner: &str, now: i64, lease_secs: i64, limit: usize) -> Result<Vec<QueueEntry>>;
    /// Durably record recipient outcomes during an attempt (only pending
    /// recipients change).
    async fn record_outcomes(&self, id: i64, outcomes: Vec<RecipientOutcome>) -> Result<()>;
    /// End an attempt held by `owner`: record the last outcomes, then remove
    /// the entry when nothing is pending (returns true) or reschedule it.
    async fn finish_attempt(&self, id: i64, owner: &str, end: AttemptEnd) -> Result<bool>;
    /// Make one entry (or every entry) due now; returns how many.
    async fn retry_queue(&self, id: Option<i64>) -> Result<usize>;
    /// Remove an entry without delivering it; false if there was none.
    async fn delete_queued(&self, id: i64) -> Result<bool>;
    /// Release every lease `owner` holds (its worker restarted).
    async fn release_leases(&self, owner: &str) -> Result<usize>;

    // ---- notifications ----

    // Spam learning (issue 15; ARCHITECTURE.md, "Inbound trust").
    /// Bayes counts of `account`'s model (0: the site-wide one) for `tokens`.
    async fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<BayesCounts>;
    /// Train `email` as spam or ham in `account`'s model and the site-wide
    /// one (once per class; the other class untrained first). True when
    /// the account's model changed.
    async fn bayes_train(&self, account: AccountId, email: EmailId, spam: bool, tokens: &[u64]) -> Result<bool>;
    /// The oldest training events (recorded by moves into and out of Junk
    /// and by `$Junk`/`$NotJunk`), at most `limit`.
    async fn training_events(&self, limit: usize) -> Result<Vec<TrainingEvent>>;
    /// Forget handled training events.
    async fn training_done(&self, ids: &[i64]) -> Result<()>;
    /// Remember that `account` sent mail to `addresses` (trusted senders).
    async fn note_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()>;
    /// Whether `account` has sent mail to `address`.
    async fn is_correspondent(&self, account: AccountId, address: &str) -> Result<bool>;
    /// Add (`Some(allow)`) or remove (`None`) an allow/block list entry of
    /// `account` (0: site-wide); true when something changed.
    async fn set_spam_list(&self, account: AccountId, entry: &str, allow: Option<bool>) -> Result<bool>;
    /// Allow/block entries of one account, or of all with `None`.
    async fn spam_lists(&self, account: Option<AccountId>) -> Result<Vec<SpamListEntry>>;
    /// The entry deciding for mail from `address` to `account`.
    async fn spam_list_match(&self, account: AccountId, address: &str) -> Result<Option<SpamListEntry>>;
    /// For each of `accounts` (0: the site-wide model), in one read: Bayes
    /// counts of `tokens` and, for sender `from`, the list entry and
    /// whether the account wrote to it.
    async fn spam_facts(&self, accounts: &[AccountId], from: Option<&str>, tokens: &[u64]) -> Result<Vec<SpamFacts>>;
    /// Keep one message's DMARC result for the aggregate report (`id` is
    /// ignored).
    async fn record_dmarc(&self, record: DmarcRecord) -> Result<()>;
    /// DMARC results received before `before`, oldest first, at most `limit`.
    async fn dmarc_records(&self, before: i64, limit: usize) -> Result<Vec<DmarcRecord>>;
    /// Forget reported (or expired) DMARC results.
    async fn delete_dmarc_records(&self, ids: &[i64]) -> Result<()>;

    /// Receive every committed change from now on.
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent>;

    /// Finish queued writes and release the backend; later writes fail.
    fn close(&self);
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One INBOX target per account, no initial flags: how mail arrives.
pub fn inbox_targets(accounts: &[AccountId]) -> Vec<DeliveryTarget> {
    accounts
        .iter()
        .map(|&account_id| DeliveryTarget {
            account_id,
            mailbox: "INBOX".into(),
            special_use: None,
            flags: Vec::new(),
        })
        .collect()
}

/// A spam allow/block list entry: an address or `@domain`, lower case.
pub fn spam_list_entry(entry: &str) -> Result<String> {
    let e = entry.trim().to_lowercase();
    let domain = e.strip_prefix('@').or_else(|| e.rsplit_once('@').map(|(_, d)| d));
    match domain {
        Some(d) if d.contains('.') && e.len() <= 320 && !e.contains(char::is_whitespace) => Ok(e),
        _ => Err(StoreError::Invalid(format!("'{entry}' is not an address or @domain"))),
    }
}

/// Lower-case an address or domain and check its basic shape.
pub fn normalize_address(address: &str) -> Result<String> {
    let a = address.trim().to_lowercase();
    let (local, domain) = a
        .rsplit_once('@')
        .ok_or_else(|| StoreError::Invalid(format!("'{address}' is not an address (no @)")))?;
    if local.is_empty()
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(StoreError::Invalid(format!("'{address}' has an invalid local part")));
    }
    validate_domain(domain)?;
    Ok(a)
}

/// Lower-case a domain name and check it is a plausible DNS name.
pub fn normalize_domain(name: &str) -> Result<String> {
    let d = name.trim().trim_end_matches('.').to_lowercase();
    validate_domain(&d)?;
    Ok(d)
}

fn validate_domain(d: &str) -> Result<()> {
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("'{d}' is not a valid domain name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(normalize_address(" Bob@Example.TEST ").unwrap(), "bob@example.test");
        assert!(normalize_address("bob").is_err());
        assert!(normalize_address("@example.test").is_err());
        assert!(normalize_address("bob@").is_err());
        assert!(normalize_address("bob@exa mple.test").is_err());
        assert!(normalize_address("bob@-bad.test").is_err());
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert_eq!(normalize_mailbox("inbox"), "INBOX");
        assert_eq!(normalize_mailbox("Inbox/Sub"), "INBOX/Sub");
        assert_eq!(normalize_mailbox("Inboxes"), "Inboxes");
    }
}
