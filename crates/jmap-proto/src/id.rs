//! Wire ids (RFC 8620 §1.2): opaque strings of 1–255 characters from the
//! URL-safe base64 alphabet. Letterbox's are a kind letter and a decimal
//! store id (ARCHITECTURE.md, "Wire ids"); a string of the wrong kind or
//! shape simply names no object.

use std::fmt;

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    Account,
    Mailbox,
    Email,
    Thread,
    Identity,
    Submission,
    /// RFC 8620 §7.2 PushSubscription.
    Push,
}

impl IdKind {
    pub fn letter(self) -> char {
        match self {
            IdKind::Account => 'A',
            IdKind::Mailbox => 'M',
            IdKind::Email => 'E',
            IdKind::Thread => 'T',
            IdKind::Identity => 'I',
            IdKind::Submission => 'S',
            IdKind::Push => 'P',
        }
    }
}

/// A typed store id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    pub kind: IdKind,
    pub value: i64,
}

impl Id {
    pub fn new(kind: IdKind, value: i64) -> Self {
        Id { kind, value }
    }

    /// The store id an id of `kind` names, or `None`.
    pub fn parse(kind: IdKind, s: &str) -> Option<i64> {
        let rest = s.strip_prefix(kind.letter())?;
        if rest.is_empty() || rest.len() > 19 || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with('0') {
            return None;
        }
        rest.parse().ok()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.letter(), self.value)
    }
}

/// RFC 8620 §1.2: whether `s` is a syntactically valid Id.
pub fn is_valid(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_kinds() {
        let id = Id::new(IdKind::Email, 57);
        assert_eq!(id.to_string(), "E57");
        assert_eq!(Id::parse(IdKind::Email, "E57"), Some(57));
        assert_eq!(Id::parse(IdKind::Mailbox, "E57"), None);
        for bad in ["E", "E-1", "E01", "E5x", "E99999999999999999999", ""] {
            assert_eq!(Id::parse(IdKind::Email, bad), None, "{bad}");
        }
        assert!(is_valid("E57"));
        assert!(!is_valid("a b"));
        assert!(!is_valid(""));
    }
}
