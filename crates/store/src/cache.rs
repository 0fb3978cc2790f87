//! In-memory caches every backend puts in front of its reads: message
//! bodies and parsed structure by email id. Ids are never reused, so an
//! entry never goes stale while the email exists; caches are emptied when
//! mail is deleted for good (a mailbox or account removed), so a body
//! outlives its grace period only for a caller that still holds its id.

use crate::MessageId;
use letterbox_mail::MessageInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed structures kept, so repeated FETCHes skip decoding.
const INFO_ENTRIES: usize = 4096;
/// Bytes of recently read bodies kept: clients fetch the same message
/// several times (structure, then parts, then the whole), and a hit skips
/// the blocking-pool hop and the database read.
const RAW_BYTES: usize = 16 << 20;
/// Bodies larger than this are not cached.
const RAW_MAX_ITEM: usize = 1 << 20;

#[derive(Default)]
struct Bodies {
    map: HashMap<MessageId, Arc<Vec<u8>>>,
    bytes: usize,
}

/// Bodies and structures by email id. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct MessageCache {
    bodies: Arc<Mutex<Bodies>>,
    infos: Arc<Mutex<HashMap<MessageId, Arc<MessageInfo>>>>,
}

impl MessageCache {
    /// A cached body.
    pub fn body(&self, id: MessageId) -> Option<Arc<Vec<u8>>> {
        self.bodies.lock().ok()?.map.get(&id).cloned()
    }

    /// Remember a body just read.
    pub fn put_body(&self, id: MessageId, raw: &Arc<Vec<u8>>) {
        if raw.len() > RAW_MAX_ITEM {
            return;
        }
        if let Ok(mut c) = self.bodies.lock() {
            if c.bytes + raw.len() > RAW_BYTES {
                // Crude but bounded: start over rather than track recency.
                *c = Bodies::default();
            }
            c.bytes += raw.len();
            c.map.insert(id, raw.clone());
        }
    }

    /// A cached structure.
    pub fn info(&self, id: MessageId) -> Option<Arc<MessageInfo>> {
        self.infos.lock().ok()?.get(&id).cloned()
    }

    /// Remember a structure just decoded.
    pub fn put_info(&self, id: MessageId, info: &Arc<MessageInfo>) {
        if let Ok(mut c) = self.infos.lock() {
            if c.len() >= INFO_ENTRIES {
                c.clear();
            }
            c.insert(id, info.clone());
        }
    }

    /// Forget every body (mail was deleted for good).
    pub fn forget_bodies(&self) {
        if let Ok(mut c) = self.bodies.lock() {
            *c = Bodies::default();
        }
    }
}
