//! The selected mailbox as the client knows it. IDLE clients keep a mailbox
//! selected for hours, thousands at a time, so this is kept small: 24 bytes
//! per message (UID, flags, RFC822.SIZE, INTERNALDATE and MODSEQ) and one copy of
//! each keyword name. Flags are a bitmask: five system flags and up to 26
//! keywords, numbered in this session's keyword table; a message using a
//! keyword numbered higher points into a (rarely used) table of lists
//! instead. Size and date are kept because they must still be answerable
//! for a message another session expunged before this one was told; bodies
//! and structure are read from the store when a command needs them. The
//! MODSEQ is the one of the flags the view holds (RFC 7162): a FETCH MODSEQ
//! never reports a mod-sequence newer than the flags and expunges this
//! session has told the client about.

use letterbox_store::MessageMeta;

use super::selected::SYSTEM_FLAGS;

#[derive(Debug, Clone, Copy)]
struct Slot {
    uid: u32,
    /// [`INLINE`]-style bitmask, or [`WIDE`] plus an index into `View::wide`.
    flags: u32,
    /// RFC822.SIZE, or [`UNKNOWN`] if it does not fit.
    size: u32,
    /// INTERNALDATE in unix seconds, or [`UNKNOWN`] if outside 1970..2106.
    date: u32,
    /// RFC 7162 mod-sequence of the flags in `flags`.
    modseq: u64,
}

/// A size or date the slot cannot hold; the store has it.
const UNKNOWN: u32 = u32::MAX;
/// Bits 0..5 are the system flags, bits 5..31 keywords 0..26.
const INLINE_KEYWORDS: usize = 26;
/// Set when `flags` indexes `View::wide`.
const WIDE: u32 = 1 << 31;

impl Slot {
    fn new(m: &MessageMeta, flags: u32) -> Slot {
        Slot {
            uid: m.uid,
            flags,
            size: u32::try_from(m.size).ok().filter(|&s| s != UNKNOWN).unwrap_or(UNKNOWN),
            date: u32::try_from(m.internal_date)
                .ok()
                .filter(|&d| d != UNKNOWN)
                .unwrap_or(UNKNOWN),
            modseq: m.modseq,
        }
    }
}

/// Messages by ascending UID; sequence number = index + 1.
#[derive(Debug, Default)]
pub struct View {
    slots: Vec<Slot>,
    /// Keyword names; a keyword's number is its index.
    keywords: Vec<Box<str>>,
    /// Flag lists that use a keyword numbered [`INLINE_KEYWORDS`] or more,
    /// as system-flag bits and keyword numbers.
    wide: Vec<(u8, Box<[u32]>)>,
    /// Table size that triggers the next compaction (0: the default).
    compact_at: usize,
}

/// Keyword tables beyond this size are rebuilt from the messages, so
/// keyword churn in a long session stays bounded.
const MIN_COMPACT_AT: usize = 256;

impl View {
    /// From messages in ascending UID order.
    pub fn new<'a>(msgs: impl IntoIterator<Item = &'a MessageMeta>) -> Self {
        let mut v = View::default();
        for m in msgs {
            let flags = v.encode(&m.flags);
            v.slots.push(Slot::new(m, flags));
        }
        v.slots.shrink_to_fit();
        v.keywords.shrink_to_fit();
        v
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// UID of the message at index `i` (panics past the end, like indexing).
    pub fn uid(&self, i: usize) -> u32 {
        self.slots[i].uid
    }

    /// The flags of message `i`, sorted as the store sorts them.
    pub fn flags(&self, i: usize) -> Vec<&str> {
        let mut out = self.decode(self.slots[i].flags);
        out.sort_unstable();
        out
    }

    /// RFC822.SIZE, when the view holds it.
    pub fn size(&self, i: usize) -> Option<u64> {
        let s = self.slots[i].size;
        (s != UNKNOWN).then_some(u64::from(s))
    }

    /// INTERNALDATE (unix seconds), when the view holds it.
    pub fn date(&self, i: usize) -> Option<i64> {
        let d = self.slots[i].date;
        (d != UNKNOWN).then_some(i64::from(d))
    }

    /// RFC 7162 mod-sequence of message `i`.
    pub fn modseq(&self, i: usize) -> u64 {
        self.slots[i].modseq
    }

    /// Without decoding the list: FETCH and SELECT ask this per message.
    pub fn has_flag(&self, i: usize, flag: &str) -> bool {
        let code = self.slots[i].flags;
        if let Some(bit) = SYSTEM_FLAGS.iter().position(|s| s.eq_ignore_ascii_case(flag)) {
            return match self.wide_list(code) {
                Some((system, _)) => system & (1 << bit) != 0,
                None => code & (1 << bit) != 0,
            };
        }
        let mut numbers = self
            .keywords
            .iter()
            .enumerate()
            .filter(|(_, k)| k.eq_ignore_ascii_case(flag))
            .map(|(n, _)| n as u32);
        match self.wide_list(code) {
            Some((_, list)) => numbers.any(|n| list.contains(&n)),
            None => numbers.any(|n| (n as usize) < INLINE_KEYWORDS && code & (1 << (5 + n)) != 0),
        }
    }

    /// The side-table entry a [`WIDE`] code points to.
    fn wide_list(&self, code: u32) -> Option<(u8, &[u32])> {
        if code & WIDE == 0 {
            return None;
        }
        Some(match self.wide.get((code & !WIDE) as usize) {
            Some((s, n)) => (*s, &n[..]),
            None => (0, &[]),
        })
    }

    pub fn last_uid(&self) -> Option<u32> {
        self.slots.last().map(|s| s.uid)
    }

    #[cfg(test)]
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().map(|s| s.uid)
    }

    pub fn index_of_uid(&self, uid: u32) -> Option<usize> {
        self.slots.binary_search_by_key(&uid, |s| s.uid).ok()
    }

    /// Where `uid` is or would be inserted.
    pub fn search_uid(&self, uid: u32) -> Result<usize, usize> {
        self.slots.binary_search_by_key(&uid, |s| s.uid)
    }

    /// Replace the flags at `i` and their mod-sequence; true when the
    /// flags differ from before.
    pub fn set_flags(&mut self, i: usize, flags: &[String], modseq: u64) -> bool {
        self.slots[i].modseq = modseq;
        let mut old = self.decode(self.slots[i].flags);
        old.sort_unstable();
        let mut new: Vec<&str> = flags.iter().map(String::as_str).collect();
        new.sort_unstable();
        if old == new {
            return false;
        }
        let code = self.encode(flags);
        self.slots[i].flags = code;
        self.maybe_compact();
        true
    }

    /// Add a message above every known UID.
    pub fn push(&mut self, m: &MessageMeta) {
        debug_assert!(self.last_uid().is_none_or(|u| u < m.uid));
        let flags = self.encode(&m.flags);
        self.slots.push(Slot::new(m, flags));
        self.maybe_compact();
    }

    pub fn remove(&mut self, i: usize) {
        self.slots.remove(i);
        if self.slots.capacity() > 2 * self.slots.len() + 16 {
            self.slots.shrink_to_fit();
        }
    }

    /// Every keyword the view has numbered (those in use, and since the
    /// last compaction ones that were).
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(|k| &**k)
    }

    fn keyword_number(&mut self, name: &str) -> u32 {
        match self.keywords.iter().position(|k| &**k == name) {
            Some(n) => n as u32,
            None => {
                self.keywords.push(name.into());
                (self.keywords.len() - 1) as u32
            }
        }
    }

    fn encode(&mut self, flags: &[String]) -> u32 {
        let mut system = 0u8;
        let mut numbers = Vec::new();
        for f in flags {
            match SYSTEM_FLAGS.iter().position(|s| s.eq_ignore_ascii_case(f)) {
                Some(bit) => system |= 1 << bit,
                None => numbers.push(self.keyword_number(f)),
            }
        }
        if numbers.iter().all(|&n| (n as usize) < INLINE_KEYWORDS) {
            return numbers.iter().fold(u32::from(system), |acc, &n| acc | (1 << (5 + n)));
        }
        numbers.sort_unstable();
        let list = (system, numbers.into_boxed_slice());
        let at = match self.wide.iter().position(|w| *w == list) {
            Some(at) => at,
            None => {
                self.wide.push(list);
                self.wide.len() - 1
            }
        };
        WIDE | at as u32
    }

    fn decode(&self, code: u32) -> Vec<&str> {
        let (system, numbers): (u8, Vec<u32>) = match self.wide_list(code) {
            Some((s, n)) => (s, n.to_vec()),
            None => (
                (code & 0x1f) as u8,
                (0..INLINE_KEYWORDS as u32)
                    .filter(|n| code & (1 << (5 + n)) != 0)
                    .collect(),
            ),
        };
        let mut out: Vec<&str> = SYSTEM_FLAGS
            .iter()
            .enumerate()
            .filter(|(bit, _)| system & (1 << bit) != 0)
            .map(|(_, f)| *f)
            .collect();
        out.extend(
            numbers
                .iter()
                .filter_map(|&n| self.keywords.get(n as usize))
                .map(|k| &**k),
        );
        out
    }

    /// Rebuild the keyword tables from the messages once they grew large,
    /// dropping keywords no message carries any more.
    fn maybe_compact(&mut self) {
        let limit = self.compact_at.max(MIN_COMPACT_AT);
        if self.keywords.len() <= limit && self.wide.len() <= limit {
            return;
        }
        let lists: Vec<Vec<String>> = (0..self.slots.len())
            .map(|i| {
                self.decode(self.slots[i].flags)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        self.keywords.clear();
        self.wide.clear();
        for (i, list) in lists.iter().enumerate() {
            self.slots[i].flags = self.encode(list);
        }
        self.keywords.shrink_to_fit();
        self.wide.shrink_to_fit();
        // Tables that are mostly in use are not rebuilt again right away.
        self.compact_at = 2 * self.keywords.len().max(self.wide.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn m(uid: u32, flags: &[&str]) -> MessageMeta {
        MessageMeta {
            id: i64::from(uid),
            thread_id: 1,
            uid,
            modseq: 1,
            flags: f(flags),
            internal_date: 1_700_000_000 + i64::from(uid),
            size: 100 + u64::from(uid),
        }
    }

    #[test]
    fn flags_round_trip_in_store_order() {
        let v = View::new(&[
            m(1, &["$b", "$a", "\\Seen"]),
            m(2, &[]),
            m(5, &["\\Draft", "\\Answered"]),
        ]);
        assert_eq!(v.len(), 3);
        assert_eq!(v.flags(0), vec!["$a", "$b", "\\Seen"]);
        assert_eq!(v.flags(1), Vec::<&str>::new());
        assert_eq!(v.flags(2), vec!["\\Answered", "\\Draft"]);
        assert_eq!(v.keywords().collect::<Vec<_>>(), vec!["$b", "$a"]);
        assert_eq!(v.index_of_uid(5), Some(2));
        assert_eq!(v.index_of_uid(3), None);
        assert_eq!(v.search_uid(3), Err(2));
        assert!(v.has_flag(0, "\\SEEN") && v.has_flag(0, "$A") && !v.has_flag(1, "\\Seen"));
        assert_eq!((v.size(2), v.date(2)), (Some(105), Some(1_700_000_005)));
    }

    #[test]
    fn many_keywords_use_wide_lists() {
        let names: Vec<String> = (0..40).map(|k| format!("k{k:02}")).collect();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut v = View::new(&[m(1, &all), m(2, &all[..3]), m(3, &all[30..])]);
        assert_eq!(v.flags(0), all);
        assert_eq!(v.flags(1), all[..3].to_vec());
        assert_eq!(v.flags(2), all[30..].to_vec());
        assert!(v.set_flags(1, &f(&["k39", "\\Flagged"]), 2));
        assert_eq!(v.flags(1), vec!["\\Flagged", "k39"]);
        assert!(!v.set_flags(1, &f(&["\\Flagged", "k39"]), 3));
        assert!(v.has_flag(1, "\\flagged") && v.has_flag(1, "K39") && !v.has_flag(1, "k00"));
        assert_eq!((v.modseq(0), v.modseq(1)), (1, 3));
        assert!(v.has_flag(0, "k00") && !v.has_flag(0, "\\Seen"));
    }

    #[test]
    fn sizes_and_dates_it_cannot_hold_are_unknown() {
        let mut old = m(1, &[]);
        old.internal_date = -86_400;
        let mut huge = m(2, &[]);
        huge.size = 1 << 33;
        let v = View::new(&[old, huge]);
        assert_eq!((v.size(0), v.date(0)), (Some(101), None));
        assert_eq!((v.size(1), v.date(1)), (None, Some(1_700_000_002)));
    }

    #[test]
    fn set_flags_reports_changes_and_keyword_churn_stays_bounded() {
        let mut v = View::new(&[m(1, &[]), m(2, &[]), m(3, &[])]);
        assert!(!v.set_flags(0, &[], 1));
        // Churn through many distinct keywords on one message.
        for k in 0..5000 {
            assert!(v.set_flags(1, &f(&[&format!("k{k}")]), k + 2));
        }
        assert!(v.keywords().count() <= MIN_COMPACT_AT + 1);
        assert_eq!(v.flags(1), vec!["k4999"]);
        assert!(v.flags(0).is_empty() && v.flags(2).is_empty());
        v.remove(1);
        assert_eq!(v.uids().collect::<Vec<_>>(), vec![1, 3]);
        v.push(&m(7, &["\\Draft"]));
        assert_eq!(v.last_uid(), Some(7));
        assert_eq!(v.flags(2), vec!["\\Draft"]);
    }
}
