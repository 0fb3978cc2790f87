//! The selected mailbox as the client knows it. IDLE clients keep a mailbox
//! selected for hours, thousands at a time, so this is kept small: 16 bytes
//! per message (UID, an index into this session's table of distinct flag
//! lists, of which a mailbox has few, RFC822.SIZE and INTERNALDATE). Those
//! last two are kept because they must still be answerable for a message
//! another session expunged before this one was told; bodies and structure
//! are read from the store when a command needs them.

use std::collections::HashMap;
use std::sync::Arc;

use letterbox_store::MessageMeta;

#[derive(Debug, Clone, Copy)]
struct Slot {
    uid: u32,
    flags: u32,
    /// RFC822.SIZE, or [`UNKNOWN`] if it does not fit.
    size: u32,
    /// INTERNALDATE in unix seconds, or [`UNKNOWN`] if outside 1970..2106.
    date: u32,
}

/// A size or date the slot cannot hold; the store has it.
const UNKNOWN: u32 = u32::MAX;

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
        }
    }
}

/// Messages by ascending UID; sequence number = index + 1.
#[derive(Debug, Default)]
pub struct View {
    slots: Vec<Slot>,
    /// Interned flag lists (normalised and sorted by the store).
    sets: Vec<Arc<[String]>>,
    ids: HashMap<Arc<[String]>, u32>,
}

/// Below this many interned lists the table is never compacted.
const MIN_SETS_BEFORE_GC: usize = 64;

impl View {
    /// From messages in ascending UID order.
    pub fn new<'a>(msgs: impl IntoIterator<Item = &'a MessageMeta>) -> Self {
        let mut v = View::default();
        for m in msgs {
            let id = v.intern(&m.flags);
            v.slots.push(Slot::new(m, id));
        }
        v.slots.shrink_to_fit();
        v
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// UID of the message at index `i` (panics past the end, like indexing).
    pub fn uid(&self, i: usize) -> u32 {
        self.slots[i].uid
    }

    pub fn flags(&self, i: usize) -> &[String] {
        &self.sets[self.slots[i].flags as usize]
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

    pub fn has_flag(&self, i: usize, flag: &str) -> bool {
        self.flags(i).iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    pub fn last_uid(&self) -> Option<u32> {
        self.slots.last().map(|s| s.uid)
    }

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

    /// Replace the flags at `i`; true when they differ from before.
    pub fn set_flags(&mut self, i: usize, flags: &[String]) -> bool {
        if *self.flags(i) == *flags {
            return false;
        }
        let id = self.intern(flags);
        self.slots[i].flags = id;
        self.maybe_compact();
        true
    }

    /// Add a message above every known UID.
    pub fn push(&mut self, m: &MessageMeta) {
        debug_assert!(self.last_uid().is_none_or(|u| u < m.uid));
        let id = self.intern(&m.flags);
        self.slots.push(Slot::new(m, id));
    }

    pub fn remove(&mut self, i: usize) {
        self.slots.remove(i);
        if self.slots.capacity() > 2 * self.slots.len() + 16 {
            self.slots.shrink_to_fit();
        }
    }

    /// Every flag and keyword in use.
    pub fn flag_lists(&self) -> impl Iterator<Item = &[String]> {
        self.sets.iter().map(|s| &**s)
    }

    fn intern(&mut self, flags: &[String]) -> u32 {
        if let Some(&id) = self.ids.get(flags) {
            return id;
        }
        let set: Arc<[String]> = flags.into();
        // More lists than u32 can count cannot exist: each needs a message.
        let id = u32::try_from(self.sets.len()).unwrap_or(u32::MAX);
        self.sets.push(Arc::clone(&set));
        self.ids.insert(set, id);
        id
    }

    /// Flag changes leave unused lists behind; drop them once they dominate,
    /// so a long session on a busy mailbox stays bounded.
    fn maybe_compact(&mut self) {
        if self.sets.len() < MIN_SETS_BEFORE_GC || self.sets.len() < 2 * self.slots.len() {
            return;
        }
        let old = std::mem::take(&mut self.sets);
        self.ids.clear();
        let mut remap: Vec<Option<u32>> = vec![None; old.len()];
        for i in 0..self.slots.len() {
            let o = self.slots[i].flags as usize;
            let id = match remap[o] {
                Some(id) => id,
                None => {
                    let id = self.intern(&old[o]);
                    remap[o] = Some(id);
                    id
                }
            };
            self.slots[i].flags = id;
        }
        self.sets.shrink_to_fit();
        self.ids.shrink_to_fit();
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
            uid,
            modseq: 1,
            flags: f(flags),
            internal_date: 1_700_000_000 + i64::from(uid),
            size: 100 + u64::from(uid),
        }
    }

    #[test]
    fn interns_equal_flag_lists_once() {
        let v = View::new(&[m(1, &["\\Seen"]), m(2, &[]), m(5, &["\\Seen"])]);
        assert_eq!(v.len(), 3);
        assert_eq!(v.flag_lists().count(), 2);
        assert_eq!(v.flags(2), &f(&["\\Seen"])[..]);
        assert_eq!(v.index_of_uid(5), Some(2));
        assert_eq!(v.index_of_uid(3), None);
        assert_eq!(v.search_uid(3), Err(2));
        assert!(v.has_flag(0, "\\SEEN"));
        assert_eq!((v.size(2), v.date(2)), (Some(105), Some(1_700_000_005)));
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
    fn set_flags_reports_changes_and_compacts() {
        let none = f(&[]);
        let mut v = View::new(&[m(1, &[]), m(2, &[]), m(3, &[])]);
        assert!(!v.set_flags(0, &none));
        // Churn through many distinct keywords on one message.
        for k in 0..1000 {
            assert!(v.set_flags(1, &f(&[&format!("k{k}")])));
        }
        assert!(v.flag_lists().count() < MIN_SETS_BEFORE_GC + 1);
        assert_eq!(v.flags(1), &f(&["k999"])[..]);
        assert_eq!(v.flags(0), &none[..]);
        assert_eq!(v.flags(2), &none[..]);
        v.remove(1);
        assert_eq!(v.uids().collect::<Vec<_>>(), vec![1, 3]);
        v.push(&m(7, &["\\Draft"]));
        assert_eq!(v.last_uid(), Some(7));
        assert_eq!(v.flags(2), &f(&["\\Draft"])[..]);
    }
}
