//! IMAP flags and how they split between an email and a membership.
//!
//! The email holds the keywords (system flags `\Seen`, `\Answered`,
//! `\Flagged`, `\Draft` and custom keywords), shared by every mailbox it is
//! in; `\Deleted` belongs to one membership (RFC 8621 §4.1.1 keeps it out
//! of JMAP, and a message deleted in one mailbox is not deleted elsewhere).

/// IMAP system flags, canonical case (RFC 9051 §2.3.2).
pub const SYSTEM_FLAGS: &[&str] = &["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// The membership flag.
pub const DELETED: &str = "\\Deleted";

/// System flags in canonical case, keywords deduplicated case-insensitively
/// (RFC 9051 §2.3.2: flags are case-insensitive), sorted; `\Recent` dropped.
pub fn normalize_flags<S: AsRef<str>>(flags: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in flags {
        let f = f.as_ref().trim();
        if f.is_empty() || f.eq_ignore_ascii_case("\\Recent") {
            continue;
        }
        let canon = SYSTEM_FLAGS
            .iter()
            .find(|s| s.eq_ignore_ascii_case(f))
            .map(|s| s.to_string())
            .unwrap_or_else(|| f.to_string());
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&canon)) {
            out.push(canon);
        }
    }
    out.sort();
    out
}

/// Split normalised IMAP flags into the email's keywords and the
/// membership's deleted bit.
pub fn split_flags(flags: &[String]) -> (Vec<String>, bool) {
    let deleted = flags.iter().any(|f| f == DELETED);
    (flags.iter().filter(|f| *f != DELETED).cloned().collect(), deleted)
}

/// Keywords as stored: space-separated.
pub fn keywords_to_text(keywords: &[String]) -> String {
    keywords.join(" ")
}

/// The IMAP flags of a membership: the email's stored keywords plus
/// `\Deleted` when set, sorted as [`normalize_flags`] sorts.
pub fn imap_flags(keywords: &str, deleted: bool) -> Vec<String> {
    let mut out: Vec<String> = keywords
        .split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    if deleted {
        let at = out.partition_point(|f| f.as_str() < DELETED);
        out.insert(at, DELETED.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_round_trip() {
        let flags = normalize_flags(&["$label", "\\seen", "\\DELETED", "\\Recent", "$Label"]);
        assert_eq!(flags, vec!["$label", "\\Deleted", "\\Seen"]);
        let (kw, deleted) = split_flags(&flags);
        assert_eq!(
            (kw.clone(), deleted),
            (vec!["$label".to_string(), "\\Seen".to_string()], true)
        );
        assert_eq!(imap_flags(&keywords_to_text(&kw), deleted), flags);
        assert_eq!(imap_flags("", true), vec!["\\Deleted"]);
        assert_eq!(imap_flags("\\Seen", false), vec!["\\Seen"]);
    }
}
