//! RFC 8621 §4.1.1 keywords ↔ the IMAP flags the store keeps.

/// System keywords with an IMAP flag of their own (RFC 8621 §4.1.1).
const SYSTEM: &[(&str, &str)] = &[
    ("$seen", "\\Seen"),
    ("$flagged", "\\Flagged"),
    ("$answered", "\\Answered"),
    ("$draft", "\\Draft"),
];

/// Longest keyword accepted (RFC 8621 §4.1.1 follows IMAP's atom rules;
/// the length bound is ours).
pub const MAX_KEYWORD_BYTES: usize = 255;

/// The JMAP keyword of an IMAP flag, or `None` for `\Deleted`/`\Recent`.
pub fn from_imap(flag: &str) -> Option<String> {
    if let Some((k, _)) = SYSTEM.iter().find(|(_, f)| f.eq_ignore_ascii_case(flag)) {
        return Some((*k).to_string());
    }
    if flag.starts_with('\\') {
        return None;
    }
    Some(flag.to_ascii_lowercase())
}

/// The IMAP flag for a JMAP keyword, or `None` when it is not a valid
/// keyword (RFC 8621 §4.1.1: 1–255 characters of IMAP atom, no `\`).
pub fn to_imap(keyword: &str) -> Option<String> {
    let lower = keyword.to_ascii_lowercase();
    if let Some((_, f)) = SYSTEM.iter().find(|(k, _)| *k == lower) {
        return Some((*f).to_string());
    }
    let valid = !keyword.is_empty()
        && keyword.len() <= MAX_KEYWORD_BYTES
        && keyword
            .bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){]%*\"\\".contains(&b));
    valid.then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_map_both_ways() {
        assert_eq!(from_imap("\\Seen").as_deref(), Some("$seen"));
        assert_eq!(from_imap("\\Deleted"), None);
        assert_eq!(from_imap("$Junk").as_deref(), Some("$junk"));
        assert_eq!(to_imap("$Seen").as_deref(), Some("\\Seen"));
        assert_eq!(to_imap("$junk").as_deref(), Some("$junk"));
        assert_eq!(to_imap("a b"), None);
        assert_eq!(to_imap("\\Deleted"), None);
        assert_eq!(to_imap(""), None);
    }
}
