//! JMAP EmailSubmission records (RFC 8621 §7). A submission is stored
//! `pending` first, with its send time; it becomes `final` in the same
//! transaction that stores its local copies and queues it
//! ([`crate::Intake::submission`]), so it is sent exactly once however many
//! nodes try, and a `canceled` one is never sent. Each recipient keeps a
//! delivery status that the queue updates as it tries (§7
//! `deliveryStatus`).

use crate::{AccountId, EmailId, ThreadId};
use serde::{Deserialize, Serialize};

/// Most submissions an account may have waiting for their send time.
pub const MAX_PENDING_SUBMISSIONS: usize = 100;
/// Most recipients of one submission (as SMTP's default).
pub const MAX_SUBMISSION_RECIPIENTS: usize = 100;
/// How long finished submissions are kept before they are removed (the
/// messages themselves stay in Sent).
pub const SUBMISSION_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Longest hold (RFC 4865 FUTURERELEASE `HOLDFOR`) accepted: one week.
pub const MAX_HOLD_SECS: i64 = 7 * 24 * 3600;

/// RFC 8621 §7 `undoStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UndoStatus {
    /// Waiting for its send time: may still be canceled.
    Pending,
    /// Handed to delivery: cannot be unsent.
    Final,
    /// Canceled before it was sent.
    Canceled,
}

impl UndoStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoStatus::Pending => "pending",
            UndoStatus::Final => "final",
            UndoStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> UndoStatus {
        match s {
            "pending" => UndoStatus::Pending,
            "canceled" => UndoStatus::Canceled,
            _ => UndoStatus::Final,
        }
    }
}

/// RFC 8621 §7 `DeliveryStatus.delivered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivered {
    /// In our queue, not yet accepted by the next hop.
    Queued,
    /// Delivered (locally, or accepted by the recipient's server).
    Yes,
    /// Failed for good; a bounce went to the sender.
    No,
    /// Not known (e.g. relayed without DSN support).
    Unknown,
}

impl Delivered {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivered::Queued => "queued",
            Delivered::Yes => "yes",
            Delivered::No => "no",
            Delivered::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Delivered {
        match s {
            "queued" => Delivered::Queued,
            "yes" => Delivered::Yes,
            "no" => Delivered::No,
            _ => Delivered::Unknown,
        }
    }
}

/// One recipient's delivery status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRecipient {
    pub address: String,
    pub delivered: Delivered,
    /// The last SMTP reply about it (RFC 8621 §7 `smtpReply`).
    pub smtp_reply: String,
}

/// A submission to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    /// The JMAP Identity id it was sent with.
    pub identity: String,
    pub email_id: EmailId,
    pub thread_id: ThreadId,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients, as the client named them.
    pub rcpt_to: Vec<String>,
    /// The RFC 8621 `Envelope` object as JSON (with parameters), returned by `get`.
    pub envelope: String,
    /// Unix seconds; now for an immediate send.
    pub send_at: i64,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub id: i64,
    pub account: AccountId,
    pub identity: String,
    pub email_id: EmailId,
    pub thread_id: ThreadId,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub envelope: String,
    pub send_at: i64,
    pub undo_status: UndoStatus,
    /// The queue entry its remote recipients went to, while it exists.
    pub queue_id: Option<i64>,
    pub recipients: Vec<SubmissionRecipient>,
    pub created: i64,
}

/// What releasing a pending submission records with an [`crate::Intake`]:
/// it turns `final` in the same transaction, or the intake fails with
/// [`crate::StoreError::NotFound`] (canceled, or released by another node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRelease {
    pub id: i64,
    /// Recipients delivered locally by this intake.
    pub local: Vec<String>,
    /// Recipients handed to the queue.
    pub remote: Vec<String>,
}

/// The answer to a cancel (RFC 8621 §7.5 `undoStatus: canceled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    Canceled,
    /// Already sent (or canceled): `cannotUnsend`.
    NotPending,
    NotFound,
}

/// What a user set on one Identity (RFC 8621 §6), by address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentitySettings {
    /// Lower-case address the identity sends as.
    pub address: String,
    pub name: String,
    /// `EmailAddress[]` as JSON, or none.
    pub reply_to: Option<String>,
    /// `EmailAddress[]` as JSON, or none.
    pub bcc: Option<String>,
    pub text_signature: String,
    pub html_signature: String,
}

/// Longest identity name.
pub const MAX_IDENTITY_NAME: usize = 256;
/// Longest signature, each form.
pub const MAX_SIGNATURE: usize = 64 * 1024;
