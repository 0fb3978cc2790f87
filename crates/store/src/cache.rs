//! In-memory caches every backend puts in front of its reads: message
//! bodies and parsed structure by email id. Ids are never reused, so an
//! entry never goes stale while the email exists; caches are emptied when
//! mail is deleted for good (a mailbox or account removed), so a body
//! outlives its grace period only for a caller that still holds its id.

use crate::MessageId;
use letterbox_mail::MessageInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed structures kept, so repeated FETCHes skip decoding (weight 1
/// each).
const INFO_ENTRIES: usize = 8192;
/// Bytes of recently read bodies kept: clients fetch the same message
/// several times (structure, then parts, then the whole), and a hit skips
/// the blocking-pool hop and the database read.
const RAW_BYTES: usize = 64 << 20;
/// Bodies larger than this are not cached.
const RAW_MAX_ITEM: usize = 1 << 20;

/// A map bounded by total weight that keeps what was used recently: two
/// generations, the current one taking new and re-used entries; when it
/// holds half the budget the older one is dropped. An entry used at least
/// once per half-budget of traffic stays (an approximate LRU without
/// per-entry bookkeeping), and memory stays below the budget.
struct Generations<V> {
    current: HashMap<MessageId, (V, usize)>,
    older: HashMap<MessageId, (V, usize)>,
    weight: usize,
    budget: usize,
}

impl<V: Clone> Generations<V> {
    fn new(budget: usize) -> Self {
        Generations {
            current: HashMap::new(),
            older: HashMap::new(),
            weight: 0,
            budget,
        }
    }

    fn get(&mut self, id: MessageId) -> Option<V> {
        if let Some((v, _)) = self.current.get(&id) {
            return Some(v.clone());
        }
        let (v, w) = self.older.remove(&id)?;
        self.insert(id, v.clone(), w);
        Some(v)
    }

    fn insert(&mut self, id: MessageId, v: V, w: usize) {
        if self.weight + w > self.budget / 2 {
            self.older = std::mem::take(&mut self.current);
            self.weight = 0;
        }
        self.older.remove(&id);
        if let Some((_, old)) = self.current.insert(id, (v, w)) {
            self.weight -= old;
        }
        self.weight += w;
    }

    fn clear(&mut self) {
        self.current.clear();
        self.older.clear();
        self.weight = 0;
    }
}

/// Bodies and structures by email id. Cheap to clone (shared).
#[derive(Clone)]
pub struct MessageCache {
    bodies: Arc<Mutex<Generations<Arc<Vec<u8>>>>>,
    infos: Arc<Mutex<Generations<Arc<MessageInfo>>>>,
}

impl Default for MessageCache {
    fn default() -> Self {
        MessageCache {
            bodies: Arc::new(Mutex::new(Generations::new(RAW_BYTES))),
            infos: Arc::new(Mutex::new(Generations::new(INFO_ENTRIES))),
        }
    }
}

impl MessageCache {
    /// A cached body.
    pub fn body(&self, id: MessageId) -> Option<Arc<Vec<u8>>> {
        self.bodies.lock().ok()?.get(id)
    }

    /// Remember a body just read.
    pub fn put_body(&self, id: MessageId, raw: &Arc<Vec<u8>>) {
        if raw.len() > RAW_MAX_ITEM {
            return;
        }
        if let Ok(mut c) = self.bodies.lock() {
            c.insert(id, raw.clone(), raw.len().max(1));
        }
    }

    /// A cached structure.
    pub fn info(&self, id: MessageId) -> Option<Arc<MessageInfo>> {
        self.infos.lock().ok()?.get(id)
    }

    /// Remember a structure just decoded.
    pub fn put_info(&self, id: MessageId, info: &Arc<MessageInfo>) {
        if let Ok(mut c) = self.infos.lock() {
            c.insert(id, info.clone(), 1);
        }
    }

    /// Forget every body (mail was deleted for good).
    pub fn forget_bodies(&self) {
        if let Ok(mut c) = self.bodies.lock() {
            c.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recently_used_entries_survive_and_weight_stays_bounded() {
        let mut g: Generations<u32> = Generations::new(10);
        for id in 0..5 {
            g.insert(id, id as u32, 1);
        }
        // Half the budget is full: the next insert starts a generation.
        g.insert(5, 5, 1);
        // 0 was used again, so it moves into the current generation...
        assert_eq!(g.get(0), Some(0));
        for id in 6..9 {
            g.insert(id, id as u32, 1);
        }
        // ...and survives the next turn, while 1..=4 (not used) are gone.
        g.insert(9, 9, 1);
        assert_eq!(g.get(0), Some(0));
        assert_eq!(g.get(1), None);
        assert_eq!(g.get(4), None);
        assert!(g.current.len() + g.older.len() <= 10);
        // Re-inserting an id does not count it twice.
        g.insert(9, 9, 1);
        assert!(g.weight <= 5);
        g.clear();
        assert_eq!(g.get(0), None);
    }
}
