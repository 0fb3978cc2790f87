//! The store's query interface (RFC 8621 §4.4 Email/query, and later IMAP
//! SEARCH/SORT): a filter tree, sort keys, a window and thread collapsing,
//! compiled by each backend into its own query language so the work runs
//! where the data is.

use crate::{EmailId, MailboxId, ThreadId};

/// Deepest filter nesting accepted (RFC 8620 §5.5 leaves it to the server).
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most conditions in one filter.
pub const MAX_FILTER_CONDITIONS: usize = 256;
/// Largest window one query returns.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// A condition on emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every condition holds.
    And(Vec<Filter>),
    /// At least one holds.
    Or(Vec<Filter>),
    /// None holds (RFC 8620 §5.5 `NOT` over a list).
    Not(Vec<Filter>),
    /// In this mailbox (not counting memberships marked `\Deleted`).
    InMailbox(MailboxId),
    /// Has this keyword (IMAP form, compared case-insensitively).
    HasKeyword(String),
    /// Arrived before (unix seconds, exclusive).
    Before(i64),
    /// Arrived at or after (unix seconds).
    After(i64),
    /// Size at least.
    MinSize(u64),
    /// Size below.
    MaxSize(u64),
    /// In this thread.
    InThread(ThreadId),
    /// This email (IMAP SEARCH EMAILID, RFC 8474 §6).
    IsEmail(EmailId),
    /// The decoded text of `field` contains this, case-insensitively
    /// (IMAP substring semantics). At least [`MIN_TEXT_CHARS`] characters.
    Contains(TextField, String),
}

/// Shortest text a [`Filter::Contains`] can look for: the index is of
/// character trigrams. Callers scan messages themselves for shorter terms.
pub const MIN_TEXT_CHARS: usize = 3;

/// What part of a message a text condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    /// Any of the fields below (IMAP TEXT, JMAP `text`).
    Any,
    /// Decoded Subject.
    Subject,
    /// Decoded From.
    From,
    /// Decoded To.
    To,
    /// Decoded Cc.
    Cc,
    /// Decoded Bcc.
    Bcc,
    /// Decoded body text (base64/QP and charsets decoded, HTML as text).
    Body,
    /// Attachment file names.
    AttachmentName,
}

impl Filter {
    /// Check the tree is within [`MAX_FILTER_DEPTH`] and
    /// [`MAX_FILTER_CONDITIONS`].
    pub fn check(&self) -> Result<(), String> {
        fn walk(f: &Filter, depth: usize, count: &mut usize) -> Result<(), String> {
            *count += 1;
            if depth > MAX_FILTER_DEPTH {
                return Err(format!("filter nested deeper than {MAX_FILTER_DEPTH}"));
            }
            if *count > MAX_FILTER_CONDITIONS {
                return Err(format!("filter has more than {MAX_FILTER_CONDITIONS} conditions"));
            }
            match f {
                Filter::And(v) | Filter::Or(v) | Filter::Not(v) => v.iter().try_for_each(|c| walk(c, depth + 1, count)),
                Filter::Contains(_, t) if t.chars().count() < MIN_TEXT_CHARS => {
                    Err(format!("text searches need at least {MIN_TEXT_CHARS} characters"))
                }
                _ => Ok(()),
            }
        }
        walk(self, 1, &mut 0)
    }
}

/// What emails are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Arrival (IMAP INTERNALDATE, JMAP receivedAt).
    ReceivedAt,
    /// The Date: header (JMAP sentAt).
    SentAt,
    /// Size in bytes.
    Size,
}

/// One sort criterion; ties fall to the next, and finally to the email id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub key: SortKey,
    /// Smallest first.
    pub ascending: bool,
}

/// A query over one account's emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Which emails; `None` is all.
    pub filter: Option<Filter>,
    /// Order; empty means newest first by arrival.
    pub sort: Vec<Sort>,
    /// Only the first email (in sort order) of each thread counts
    /// (RFC 8621 §4.4.3 `collapseThreads`).
    pub collapse_threads: bool,
    /// Zero-based index of the first id returned.
    pub position: usize,
    /// Most ids returned (at most [`MAX_QUERY_LIMIT`]).
    pub limit: usize,
    /// Count every match for [`QueryResult::total`] (a second pass over
    /// the matches); when false, `total` is 0.
    pub count_total: bool,
}

/// The window of a query's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    /// Ids in order, from `position`.
    pub ids: Vec<EmailId>,
    /// Matches in all (after collapsing threads).
    pub total: usize,
    /// Index of `ids[0]`.
    pub position: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_wide_filters_are_refused() {
        let mut f = Filter::HasKeyword("$x".into());
        for _ in 0..MAX_FILTER_DEPTH - 1 {
            f = Filter::Not(vec![f]);
        }
        assert!(f.check().is_ok());
        assert!(Filter::And(vec![f]).check().is_err());
        let wide = Filter::Or((0..MAX_FILTER_CONDITIONS).map(|i| Filter::MinSize(i as u64)).collect());
        assert!(wide.check().is_err());
    }
}
