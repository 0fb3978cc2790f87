//! Plain data types that cross the storage interface. Nothing here is
//! backend-specific: the embedded and PostgreSQL backends share them.

use serde::{Deserialize, Serialize};

pub use letterbox_mail::mailbox::{FlagOp, SpecialUse, HIERARCHY_DELIMITER};

/// Database identity of an account; stable for the account's lifetime.
pub type AccountId = i64;
/// Database identity of a mailbox; a re-created mailbox gets a new id.
pub type MailboxId = i64;
/// Global, never-reused identity of one stored message copy. POP3 UIDL
/// values derive from it, so it must never be reused (RFC 1939 §7).
pub type MessageId = i64;

/// Identity of an email: one message an account holds, in however many
/// mailboxes (RFC 8474 EMAILID). The same value as [`MessageId`].
pub type EmailId = MessageId;
/// Identity of a thread (RFC 8474 THREADID); never reused.
pub type ThreadId = i64;

/// A domain this server receives mail for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Lower-case domain name.
    pub name: String,
    /// Unix seconds of creation.
    pub created: i64,
}

/// Storage and message-count limits; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Maximum total RFC822.SIZE of all messages, in bytes.
    pub bytes: u64,
    /// Maximum number of messages.
    pub messages: u64,
}

/// What an account currently uses against its [`Quota`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Sum of message sizes in bytes.
    pub bytes: u64,
    /// Number of messages.
    pub messages: u64,
}

/// A mail account (one login, one set of mailboxes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Database identity.
    pub id: AccountId,
    /// Full lower-case address, also the login name.
    pub address: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Limits.
    pub quota: Quota,
    /// Current usage.
    pub usage: Usage,
}

/// An alias: mail to `source` goes to every address in `targets`.
/// `source` of the form `@domain` is a catch-all for that domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// Lower-case address or `@domain`.
    pub source: String,
    /// Destination addresses (local accounts or remote addresses).
    pub targets: Vec<String>,
}

/// Where mail for an envelope recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    /// Local accounts that receive a copy (deduplicated).
    pub accounts: Vec<AccountId>,
    /// Remote addresses the message must be forwarded to.
    pub external: Vec<String>,
}

/// Outcome of looking up an envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The domain is not one of ours.
    NotLocal,
    /// Our domain, but no account, alias or catch-all matches.
    Unknown,
    /// Deliverable.
    Local(Resolution),
}

/// The mailboxes every new account starts with.
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// A mailbox and the counters IMAP reports for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// Database identity.
    pub id: MailboxId,
    /// Owner.
    pub account_id: AccountId,
    /// Full hierarchical name, `/`-separated; `INBOX` is always upper case.
    pub name: String,
    /// RFC 9051 §2.3.1.1: changes whenever UIDs could be reused.
    pub uid_validity: u32,
    /// The UID the next message will get.
    pub uid_next: u32,
    /// RFC 7162 HIGHESTMODSEQ: bumped by every change in the mailbox.
    pub highest_modseq: u64,
    /// Whether the user subscribed to it.
    pub subscribed: bool,
    /// RFC 6154 attribute.
    pub special_use: Option<SpecialUse>,
    /// Number of messages.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Sum of message sizes.
    pub size: u64,
    /// RFC 3501 §2.3.2: messages from this UID on are \Recent (no session
    /// has claimed them yet).
    pub first_recent_uid: u32,
}

/// What [`crate::Store::message_data`] read of one message.
#[derive(Debug, Clone, Default)]
pub struct MessageData {
    pub info: Option<std::sync::Arc<letterbox_mail::MessageInfo>>,
    pub raw: Option<std::sync::Arc<Vec<u8>>>,
}

/// One message in one mailbox: what an IMAP or POP3 session needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// The email's identity (POP3 UIDL source; the same in every mailbox
    /// holding the email).
    pub id: MessageId,
    /// The email's thread.
    pub thread_id: ThreadId,
    /// UID within the mailbox.
    pub uid: u32,
    /// Last modification sequence.
    pub modseq: u64,
    /// System flags (`\Seen`…) and keywords, deduplicated and sorted.
    pub flags: Vec<String>,
    /// INTERNALDATE as unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE in bytes.
    pub size: u64,
}

/// An email as its account sees it (the store side of a JMAP Email).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMeta {
    /// Identity.
    pub id: EmailId,
    /// Thread.
    pub thread_id: ThreadId,
    /// Content address of the body (see [`blob_id`]).
    pub blob_id: String,
    /// Mailboxes it is in, not counting memberships marked `\Deleted`
    /// (RFC 8621 §4.1.1), ascending.
    pub mailboxes: Vec<MailboxId>,
    /// Keywords in IMAP form (`\Seen`, `$label`), sorted.
    pub keywords: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// When it arrived (unix seconds; IMAP INTERNALDATE).
    pub received_at: i64,
    /// Its Date: header (unix seconds), when parseable.
    pub sent_at: Option<i64>,
}

/// The blob id of a stored body: `G` and the hex SHA-256 of its bytes.
pub fn blob_id(hash: &str) -> String {
    format!("G{hash}")
}

/// A message to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Exact bytes, CRLF line ends.
    pub raw: Vec<u8>,
    /// Initial flags.
    pub flags: Vec<String>,
    /// INTERNALDATE (unix seconds).
    pub internal_date: i64,
}

/// One mailbox that receives a copy in [`crate::Store::deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    /// Receiving account.
    pub account_id: AccountId,
    /// Mailbox name; a missing mailbox falls back to INBOX.
    pub mailbox: String,
    /// When set, the account's mailbox with this special use comes first
    /// (mail judged spam goes to `\Junk` whatever the user named it).
    pub special_use: Option<SpecialUse>,
    /// Initial flags.
    pub flags: Vec<String>,
}

/// Result of a delivery: who got the message and who was over quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// (account, mailbox, uid) of every stored copy.
    pub delivered: Vec<(AccountId, MailboxId, u32)>,
    /// Accounts refused for quota, with `permanent` = the message can never fit.
    pub over_quota: Vec<(AccountId, bool)>,
}

/// Outcome of an APPEND (RFC 4315 APPENDUID data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// UIDVALIDITY of the target mailbox.
    pub uid_validity: u32,
    /// UID the message got.
    pub uid: u32,
    /// Global message id.
    pub id: MessageId,
}

/// Outcome of COPY/MOVE (RFC 4315 COPYUID data).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copied {
    /// UIDVALIDITY of the destination.
    pub uid_validity: u32,
    /// (source UID, destination UID) pairs, in source UID order.
    pub uids: Vec<(u32, u32)>,
}

/// What IMAP SORT and THREAD need of one message (RFC 5256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRow {
    pub uid: u32,
    /// The Date: header (unix seconds), when it parsed.
    pub sent_at: Option<i64>,
    /// [`letterbox_mail::sort::SortKeys`], encoded (read them in place
    /// with `SortFields::parse`).
    pub keys: String,
}

/// What a conditional STORE did (RFC 7162 §3.1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionalStore {
    /// Messages whose flags changed, with their new state.
    pub changed: Vec<MessageMeta>,
    /// UIDs that failed the UNCHANGEDSINCE test, in the order asked.
    pub modified: Vec<u32>,
}

/// Messages whose state changed after a given modseq, and UIDs expunged since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Present messages with modseq greater than the one asked for, by UID.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged with a modseq greater than the one asked for, ascending.
    pub expunged: Vec<u32>,
    /// The mailbox's current HIGHESTMODSEQ.
    pub highest_modseq: u64,
}

/// What changed, sent to every watcher after the change is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Account whose data changed.
    pub account_id: AccountId,
    /// The mailbox concerned, when the change is about one.
    pub mailbox_id: Option<MailboxId>,
    /// Kind of change.
    pub kind: ChangeKind,
}

/// Kinds of [`ChangeEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// New messages were added.
    Added,
    /// Flags changed.
    Flags,
    /// Messages were expunged.
    Expunged,
    /// The mailbox list changed (create, delete, rename, subscribe).
    Mailboxes,
    /// The account itself was removed.
    AccountRemoved,
    /// An account setting changed (the vacation responder).
    Settings,
    /// A message was added to the outbound queue (account id 0).
    Queued,
    /// Another process changed the database (account id 0): anything may
    /// have changed, so watchers look again.
    External,
}

/// One recipient of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecipient {
    /// Remote address.
    pub address: String,
    /// RFC 3461 NOTIFY as given (e.g. `SUCCESS,FAILURE`), if any.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT (`addr-type;xtext`), if any.
    pub orcpt: Option<String>,
}

impl OutboundRecipient {
    /// A recipient without DSN parameters (forwards, CLI deliveries).
    pub fn plain(address: String) -> Self {
        OutboundRecipient {
            address,
            notify: None,
            orcpt: None,
        }
    }
}

/// A message accepted for delivery to remote recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// Envelope sender; empty for the null reverse-path.
    pub sender: String,
    /// Remote recipients.
    pub recipients: Vec<OutboundRecipient>,
    /// Message bytes as they will be sent.
    pub raw: Vec<u8>,
    /// RFC 3461 ENVID, if given.
    pub envid: Option<String>,
    /// RFC 3461 RET (`FULL` or `HDRS`), if given.
    pub ret: Option<String>,
}

/// What a local account over quota at the end of DATA does to the whole
/// delivery (ARCHITECTURE.md, "Delivery durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverQuota {
    /// All or nothing: any account over quota refuses the whole delivery
    /// with [`crate::StoreError::QuotaExceeded`], nothing stored or queued
    /// (`letterbox deliver`, whose caller owns the failure).
    Refuse,
    /// RFC 5321 §6.1: accounts over quota are bounced. Each becomes a
    /// [`RecipientStatus::Bounce`] recipient of the delivery's queue entry,
    /// committed with the local copies, and the queue worker sends the
    /// report. Refused (`QuotaExceeded`, nothing kept) instead when no one
    /// else would get the message, or when the sender is null (RFC 5321
    /// §4.5.5: no report is possible) and the failure is temporary, so the
    /// sending server keeps the message. A null-sender message that can
    /// never fit is dropped for that account only, and reported as dropped.
    Bounce,
}

/// Everything one mail transaction makes durable, in one store
/// transaction (RFC 5321 §6.1: the `250` is given only after it commits).
#[derive(Debug, Clone)]
pub struct Intake {
    /// What local accounts store (with its `Return-Path:`): usually one
    /// copy for every receiving account; accounts whose copy differs (a
    /// spam verdict of their own) get their own. An account is in one
    /// copy's targets at most.
    pub locals: Vec<LocalCopy>,
    /// RFC 3461 NOTIFY and ORCPT of the RCPT that named each local account,
    /// for its bounce; accounts not listed have neither.
    pub local_dsn: Vec<LocalDsn>,
    /// Envelope sender, remote recipients (forwards included) and the bytes
    /// as sent on. Its recipients may be empty: the entry is then created
    /// only for bounces. It is also the message a bounce reports on.
    pub outbound: OutboundMessage,
    /// What an account over quota does to the delivery.
    pub over_quota: OverQuota,
    /// The pending JMAP submission this intake sends: it turns final in
    /// the same transaction, or the intake fails with `NotFound`.
    pub submission: Option<crate::SubmissionRelease>,
}

/// One local copy of an [`Intake`] and the mailboxes receiving it; several
/// targets of one account are one email in several mailboxes.
#[derive(Debug, Clone)]
pub struct LocalCopy {
    pub message: NewMessage,
    pub targets: Vec<DeliveryTarget>,
}

impl LocalCopy {
    /// No copy when there are no targets.
    pub fn only(message: NewMessage, targets: Vec<DeliveryTarget>) -> Vec<LocalCopy> {
        if targets.is_empty() {
            Vec::new()
        } else {
            vec![LocalCopy { message, targets }]
        }
    }
}

/// DSN parameters (RFC 3461 §4) of one local account in an [`Intake`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDsn {
    /// The account.
    pub account_id: AccountId,
    /// NOTIFY as given, if any.
    pub notify: Option<String>,
    /// ORCPT as given, if any.
    pub orcpt: Option<String>,
}

/// What an [`Intake`] committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// (account, mailbox, uid) of every stored copy.
    pub delivered: Vec<(AccountId, MailboxId, u32)>,
    /// Accounts over quota that the queue worker will bounce, with
    /// `permanent` = the message can never fit.
    pub bounced: Vec<(AccountId, bool)>,
    /// Accounts over quota for good whose failure cannot be reported (null
    /// sender, RFC 5321 §4.5.5).
    pub dropped: Vec<AccountId>,
    /// The queue entry holding remote recipients and bounces, if any.
    pub queue_id: Option<i64>,
}

/// Where one recipient of a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    /// Not delivered yet; will be tried again.
    Pending,
    /// Accepted by the next hop.
    Delivered,
    /// Given up on; a bounce was sent if asked for.
    Failed,
    /// Given up on, and the bounce is still owed: the worker reports it at
    /// its next attempt on the entry, then marks it failed. A local account
    /// over quota at intake starts here (RFC 5321 §6.1: after a 250,
    /// deliver or bounce), as does a failure whose report could not be
    /// stored yet. Counts as work left, so the entry stays queued.
    Bounce,
}

impl RecipientStatus {
    /// Name stored in the database and shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Pending => "pending",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Failed => "failed",
            RecipientStatus::Bounce => "bounce",
        }
    }

    /// Parse a stored name; anything unknown counts as pending so it is retried, not lost.
    pub fn parse(s: &str) -> RecipientStatus {
        match s {
            "delivered" => RecipientStatus::Delivered,
            "failed" => RecipientStatus::Failed,
            "bounce" => RecipientStatus::Bounce,
            _ => RecipientStatus::Pending,
        }
    }
}

/// One recipient of a queued message with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecipient {
    /// Remote address.
    pub address: String,
    /// RFC 3461 NOTIFY as given, if any.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT, if any.
    pub orcpt: Option<String>,
    /// Current state.
    pub status: RecipientStatus,
    /// The last failure (an SMTP reply or a local reason), if any.
    pub last_error: Option<String>,
    /// The host that gave the last answer, if one did.
    pub remote_mta: Option<String>,
}

/// A queued outbound message with its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Queue id.
    pub id: i64,
    /// Envelope sender; empty for the null reverse-path.
    pub sender: String,
    /// RFC 3461 ENVID, if given.
    pub envid: Option<String>,
    /// RFC 3461 RET, if given.
    pub ret: Option<String>,
    /// Recipients and their state.
    pub recipients: Vec<QueueRecipient>,
    /// Size in bytes.
    pub size: u64,
    /// Unix seconds it was queued.
    pub created: i64,
    /// Delivery attempts finished so far.
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_attempt: i64,
    /// Whether a delay warning was sent.
    pub warned: bool,
    /// Worker holding the entry, while its lease runs.
    pub lease_owner: Option<String>,
    /// Unix seconds the lease ends.
    pub lease_until: i64,
}

/// The result of trying one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// Recipient address as queued.
    pub address: String,
    /// New state.
    pub status: RecipientStatus,
    /// Reply or reason, for pending and failed recipients.
    pub error: Option<String>,
    /// Host that answered, if any.
    pub remote_mta: Option<String>,
}

/// How a worker ends one attempt on a queue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEnd {
    /// Outcomes not recorded yet.
    pub outcomes: Vec<RecipientOutcome>,
    /// When to try the pending recipients again.
    pub next_attempt: i64,
    /// Set when a delay warning went out with this attempt.
    pub warned: bool,
}

/// RFC 8621 §4.6 Email/set update of one email. Keywords are IMAP-form
/// flags as stored (`\Seen`, `\Flagged`, custom atoms); `\Deleted` is
/// refused (it is per mailbox, not a keyword).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailPatch {
    /// Replace all keywords.
    pub keywords: Option<Vec<String>>,
    pub add_keywords: Vec<String>,
    pub remove_keywords: Vec<String>,
    /// Replace all mailbox memberships (must stay non-empty).
    pub mailboxes: Option<Vec<MailboxId>>,
    pub add_mailboxes: Vec<MailboxId>,
    pub remove_mailboxes: Vec<MailboxId>,
}

/// What became of one [`EmailPatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    Updated,
    NotFound,
    Invalid(String),
}

/// RFC 8621 §2 counts of one mailbox, as JMAP sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCounts {
    pub mailbox: MailboxId,
    pub total_emails: u64,
    pub unread_emails: u64,
    pub total_threads: u64,
    pub unread_threads: u64,
}

/// RFC 8620 §6.1: a stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedBlob {
    pub blob_id: String,
    pub size: u64,
    /// Unix seconds after which it is gone unless an email holds it.
    pub expires: i64,
}

/// What [`crate::Store::health`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Bytes available to the store on its file system, when known.
    pub free_bytes: Option<u64>,
}

/// Bayes counts of one model (issue 15): messages trained each way and,
/// for the tokens asked about that it knows, (token, spam, ham) counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BayesCounts {
    pub spam_messages: u64,
    pub ham_messages: u64,
    pub tokens: Vec<(u64, u32, u32)>,
}

/// A user's move that teaches the classifier: `email` is spam (or ham).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingEvent {
    pub id: i64,
    pub account_id: AccountId,
    pub email_id: EmailId,
    pub spam: bool,
}

/// One allow (`allow`) or block entry: an address or `@domain`; account 0
/// holds the site-wide entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpamListEntry {
    pub account_id: AccountId,
    pub entry: String,
    pub allow: bool,
}

/// One message's DMARC result, kept for the aggregate report on its
/// domain (RFC 7489 §7.2): the published policy and the report record as
/// JSON (their shape belongs to the report writer), the `rua` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    pub id: i64,
    pub domain: String,
    pub received_at: i64,
    pub policy: String,
    pub record: String,
    pub rua: Vec<String>,
}

/// What the spam verdict needs of one account, read at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpamFacts {
    /// The account's Bayes counts for the message's tokens.
    pub counts: BayesCounts,
    /// The allow/block entry deciding for the sender, if any.
    pub list: Option<SpamListEntry>,
    /// The account has written to the sender.
    pub correspondent: bool,
}
