//! Account-wide change state (RFC 8620 §1.6, §5.2): the types that have
//! one, and how a run of change-log rows becomes a `/changes` answer. The
//! collapsing rules are the same for every backend, so they live here.

use serde::{Deserialize, Serialize};

/// A data type with its own state string (RFC 8620 §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// RFC 8621 §2.
    Mailbox,
    /// RFC 8621 §3.
    Thread,
    /// RFC 8621 §4.
    Email,
    /// RFC 8621 §8: one object per account, id 1.
    VacationResponse,
    /// RFC 8621 §7.
    EmailSubmission,
    /// RFC 8621 §6: object ids are the identity numbers of addresses.
    Identity,
}

impl DataType {
    /// Number stored in the change log.
    pub fn code(self) -> i64 {
        match self {
            DataType::Mailbox => 1,
            DataType::Thread => 2,
            DataType::Email => 3,
            DataType::VacationResponse => 4,
            DataType::EmailSubmission => 5,
            DataType::Identity => 6,
        }
    }
}

/// What happened to one object at one modseq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOp {
    /// It came into existence.
    Created,
    /// A property changed.
    Updated,
    /// It was removed.
    Destroyed,
}

impl ChangeOp {
    /// Number stored in the change log.
    pub fn code(self) -> i64 {
        match self {
            ChangeOp::Created => 1,
            ChangeOp::Updated => 2,
            ChangeOp::Destroyed => 3,
        }
    }

    /// Parse a stored number; unknown values count as updates, the safe
    /// reading (the client refetches the object).
    pub fn from_code(c: i64) -> ChangeOp {
        match c {
            1 => ChangeOp::Created,
            3 => ChangeOp::Destroyed,
            _ => ChangeOp::Updated,
        }
    }
}

/// One change-log row: object `id` had `op` at `modseq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRow {
    /// The account-wide modseq of the change.
    pub modseq: u64,
    /// Object id.
    pub id: i64,
    /// What happened.
    pub op: ChangeOp,
}

/// A `Foo/changes` answer (RFC 8620 §5.2) with states as modseqs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectChanges {
    /// The state asked from.
    pub old_state: u64,
    /// The state this answer brings the client to.
    pub new_state: u64,
    /// More changes follow `new_state`.
    pub has_more: bool,
    /// Ids created since `old_state`, ascending.
    pub created: Vec<i64>,
    /// Ids changed but neither created nor destroyed since, ascending.
    pub updated: Vec<i64>,
    /// Ids destroyed since (and not also created since), ascending.
    pub destroyed: Vec<i64>,
}

/// Collapse the log rows after `since` (ascending by modseq) into a
/// `/changes` answer of at most `max` ids, RFC 8620 §5.2: created and
/// updated is created, updated and destroyed is destroyed, created and
/// destroyed is left out. With more ids than `max`, the answer stops at
/// the last modseq whose rows all fit, so the intermediate state is exact
/// (and an object never appears twice across the pages); `None` when even
/// the first modseq's rows exceed `max` (the caller answers
/// `cannotCalculateChanges`). `current` is the type's state now.
pub fn collapse(since: u64, rows: &[LogRow], max: usize, current: u64) -> Option<ObjectChanges> {
    use std::collections::BTreeMap;
    let mut first: BTreeMap<i64, ChangeOp> = BTreeMap::new();
    let mut last: BTreeMap<i64, ChangeOp> = BTreeMap::new();
    let mut new_state = since;
    let mut has_more = false;
    let mut i = 0;
    while i < rows.len() {
        // All rows of one modseq go in together, or none do.
        let ms = rows[i].modseq;
        let mut j = i;
        let mut fresh = 0;
        while j < rows.len() && rows[j].modseq == ms {
            if !first.contains_key(&rows[j].id) && !rows[i..j].iter().any(|r| r.id == rows[j].id) {
                fresh += 1;
            }
            j += 1;
        }
        if first.len() + fresh > max {
            if first.is_empty() {
                return None;
            }
            has_more = true;
            break;
        }
        for r in &rows[i..j] {
            first.entry(r.id).or_insert(r.op);
            last.insert(r.id, r.op);
        }
        new_state = ms;
        i = j;
    }
    if !has_more {
        new_state = new_state.max(current);
    }
    let mut out = ObjectChanges {
        old_state: since,
        new_state,
        has_more,
        ..ObjectChanges::default()
    };
    for (id, f) in first {
        let l = last.get(&id).copied().unwrap_or(f);
        match (f == ChangeOp::Created, l == ChangeOp::Destroyed) {
            (true, true) => {}
            (true, false) => out.created.push(id),
            (false, true) => out.destroyed.push(id),
            (false, false) => out.updated.push(id),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeOp::*;

    fn row(modseq: u64, id: i64, op: ChangeOp) -> LogRow {
        LogRow { modseq, id, op }
    }

    /// A sequence of states: 2 creates 1 and 2; 3 updates 1; 4 destroys 2
    /// and creates 3; 5 updates 3; 6 destroys 1.
    fn log() -> Vec<LogRow> {
        vec![
            row(2, 1, Created),
            row(2, 2, Created),
            row(3, 1, Updated),
            row(4, 2, Destroyed),
            row(4, 3, Created),
            row(5, 3, Updated),
            row(6, 1, Destroyed),
        ]
    }

    fn since(s: u64) -> ObjectChanges {
        let rows: Vec<LogRow> = log().into_iter().filter(|r| r.modseq > s).collect();
        collapse(s, &rows, 100, 6).unwrap()
    }

    #[test]
    fn every_starting_point() {
        let c = since(1);
        assert_eq!((c.created, c.updated, c.destroyed), (vec![3], vec![], vec![]));
        let c = since(2);
        assert_eq!((c.created, c.updated, c.destroyed), (vec![3], vec![], vec![1, 2]));
        let c = since(3);
        assert_eq!((c.created, c.updated, c.destroyed), (vec![3], vec![], vec![1, 2]));
        let c = since(4);
        assert_eq!((c.created, c.updated, c.destroyed), (vec![], vec![3], vec![1]));
        let c = since(5);
        assert_eq!((c.created, c.updated, c.destroyed), (vec![], vec![], vec![1]));
        let c = since(6);
        assert_eq!((c.created, c.updated, c.destroyed), (vec![], vec![], vec![]));
        assert_eq!((c.new_state, c.has_more), (6, false));
    }

    #[test]
    fn pages_stop_at_a_modseq_boundary() {
        let rows = log();
        let p1 = collapse(1, &rows, 2, 6).unwrap();
        assert_eq!((p1.new_state, p1.has_more), (3, true));
        assert_eq!(p1.created, vec![1, 2]);
        let rest: Vec<LogRow> = rows.iter().copied().filter(|r| r.modseq > 3).collect();
        let p2 = collapse(3, &rest, 2, 6).unwrap();
        assert_eq!((p2.new_state, p2.has_more), (5, true));
        assert_eq!((p2.created, p2.destroyed), (vec![3], vec![2]));
        // A modseq with more ids than fit in one page cannot be split.
        assert!(collapse(1, &rows, 1, 6).is_none());
    }

    #[test]
    fn quiet_types_report_the_current_state() {
        let c = collapse(4, &[], 10, 9).unwrap();
        assert_eq!((c.new_state, c.has_more), (9, false));
    }
}
