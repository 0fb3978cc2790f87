//! Threading decisions that every backend shares: which ids an email is
//! known by, and the subject test that keeps a new topic out of an old
//! thread. Backends only look the ids up (ARCHITECTURE.md, "Threads at
//! delivery").

use letterbox_mail::MessageInfo;

/// What threading needs to know of one email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadKeys {
    /// Its own Message-ID, if it has one.
    pub own: Option<String>,
    /// Ids it names as ancestors: In-Reply-To first (the direct parent),
    /// then References from the newest back.
    pub ancestors: Vec<String>,
    /// Base subject (see [`base_subject`]).
    pub subject: String,
}

/// Longest message id used as a lookup key, in bytes.
const MAX_ID_LEN: usize = 512;

fn key(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= MAX_ID_LEN).then(|| id.to_string())
}

impl ThreadKeys {
    /// Keys of an analysed message.
    pub fn of(info: &MessageInfo) -> ThreadKeys {
        let own = key(&info.message_id);
        let mut ancestors: Vec<String> = Vec::new();
        let named = info.in_reply_to.iter().chain(info.references.iter().rev());
        for id in named.filter_map(|s| key(s)) {
            if Some(&id) != own.as_ref() && !ancestors.contains(&id) {
                ancestors.push(id);
            }
        }
        ThreadKeys {
            own,
            ancestors,
            subject: base_subject(&info.subject),
        }
    }

    /// Every id to record for this email: its own, then its ancestors.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.own.iter().chain(self.ancestors.iter())
    }
}

/// The base subject of RFC 5256 §2.1, simplified the way mail clients
/// group conversations: whitespace collapsed, lower-cased, and leading
/// `Re:`, `Fwd:`, `Fw:` (with an optional `[n]` count, as `Re[2]:`) and
/// `[list-tag]` prefixes plus a trailing `(fwd)` removed, repeatedly.
pub fn base_subject(subject: &str) -> String {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    loop {
        let before = s.len();
        if let Some(rest) = s.strip_suffix("(fwd)") {
            s = rest.trim_end().to_string();
        }
        if let Some(rest) = strip_reply_prefix(&s) {
            s = rest.trim_start().to_string();
        } else if s.starts_with('[') {
            // A list tag, unless the tag is the whole subject.
            if let Some(end) = s.find(']') {
                let rest = s[end + 1..].trim_start();
                if !rest.is_empty() {
                    s = rest.to_string();
                }
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

fn strip_reply_prefix(s: &str) -> Option<&str> {
    for p in ["re", "fwd", "fw", "aw", "sv", "wg"] {
        let Some(rest) = s.strip_prefix(p) else { continue };
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(r) => match r.find(']') {
                Some(end) if r[..end].chars().all(|c| c.is_ascii_digit()) => r[end + 1..].trim_start(),
                _ => continue,
            },
            None => rest,
        };
        if let Some(rest) = rest.strip_prefix(':') {
            return Some(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        assert_eq!(base_subject("Lunch plans"), "lunch plans");
        assert_eq!(base_subject("Re: Lunch  plans"), "lunch plans");
        assert_eq!(base_subject("RE: re: Fwd: Lunch plans"), "lunch plans");
        assert_eq!(base_subject("Re[2]: Lunch plans"), "lunch plans");
        assert_eq!(base_subject("[dev-list] Re: Lunch plans"), "lunch plans");
        assert_eq!(base_subject("Re: [dev-list] Lunch plans (fwd)"), "lunch plans");
        assert_eq!(base_subject("AW: Lunch plans"), "lunch plans");
        assert_eq!(base_subject("[only a tag]"), "[only a tag]");
        assert_eq!(base_subject("Reply needed"), "reply needed");
        assert_eq!(base_subject("Re:"), "");
        assert_eq!(base_subject(""), "");
    }

    #[test]
    fn keys_put_the_parent_first() {
        let mut info = letterbox_mail::analyze(b"Subject: Re: x\r\n\r\n");
        info.message_id = "m@x".into();
        info.in_reply_to = vec!["p@x".into()];
        info.references = vec!["<r@x>".into(), "p@x".into(), "m@x".into()];
        let k = ThreadKeys::of(&info);
        assert_eq!(k.own.as_deref(), Some("m@x"));
        assert_eq!(k.ancestors, vec!["p@x", "r@x"]);
        assert_eq!(k.subject, "x");
        assert_eq!(k.all().count(), 3);
    }
}
