//! Mailbox-level model shared by the store and the protocol codecs: names,
//! special-use attributes and flag operations. Pure data, no I/O.

use serde::{Deserialize, Serialize};

/// Hierarchy separator of mailbox names (RFC 9051 §5.1).
pub const HIERARCHY_DELIMITER: char = '/';

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// The attribute as written on the wire, RFC 6154 §2.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parse the wire form, case-insensitively.
    pub fn parse(s: &str) -> Option<SpecialUse> {
        [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ]
        .into_iter()
        .find(|u| u.as_str().eq_ignore_ascii_case(s))
    }
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// Canonical mailbox name: `INBOX` in any case becomes `INBOX` (RFC 9051 §5.1).
pub fn normalize_mailbox(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else if let (Some(head), Some(rest)) = (name.get(..5), name.get(5..)) {
        if head.eq_ignore_ascii_case("INBOX") && rest.starts_with(HIERARCHY_DELIMITER) {
            format!("INBOX{rest}")
        } else {
            name.to_string()
        }
    } else {
        name.to_string()
    }
}
