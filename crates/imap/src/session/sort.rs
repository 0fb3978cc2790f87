//! SORT and UID SORT (RFC 5256 §3, with RFC 5957 DISPLAYFROM/DISPLAYTO and
//! RFC 5267 ESORT), THREAD and UID THREAD (RFC 5256 §3).
//!
//! Key decision: the search runs as for SEARCH; the keys come from the
//! store in one read (`Store::sort_rows`, computed at delivery), so sorting
//! a 100,000-message mailbox needs no message bodies or analyses. Arrival
//! dates and sizes are the view's.

use std::cmp::Ordering;

use letterbox_mail::sort::SortFields;
use letterbox_store::SortRow;

use super::conn::Conn;
use super::search::{esearch_line, has_modseq, matching, result_modseq, Hit};
use super::selected::Selected;
use super::thread::{self, Msg};
use super::{Flow, Session, State};
use crate::proto::{SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm};

/// One message being sorted, with what its criteria compare.
struct Item<'a> {
    hit: Hit,
    arrival: i64,
    size: u64,
    sent: i64,
    keys: SortFields<'a>,
    /// The string criteria's values, i;ascii-casemap'd once (RFC 4790
    /// §9.2), in criteria order.
    folded: Vec<Box<[u8]>>,
}

/// The string a criterion compares, if it is a string one.
fn text<'a>(k: SortKey, f: &SortFields<'a>) -> Option<&'a str> {
    Some(match k {
        SortKey::Subject => f.subject,
        SortKey::From => f.from,
        SortKey::To => f.to,
        SortKey::Cc => f.cc,
        SortKey::DisplayFrom => f.display_from,
        SortKey::DisplayTo => f.display_to,
        SortKey::Arrival | SortKey::Date | SortKey::Size => return None,
    })
}

/// Fold the string criteria of `item` for i;ascii-casemap comparison.
fn fold(item: &mut Item<'_>, criteria: &[SortCriterion]) {
    item.folded = criteria
        .iter()
        .filter_map(|c| text(c.key, &item.keys))
        .map(|t| t.bytes().map(|b| b.to_ascii_uppercase()).collect())
        .collect();
}

fn compare(a: &Item<'_>, b: &Item<'_>, criteria: &[SortCriterion]) -> Ordering {
    let mut s = 0;
    for c in criteria {
        let o = match c.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Date => a.sent.cmp(&b.sent),
            SortKey::Size => a.size.cmp(&b.size),
            _ => {
                s += 1;
                a.folded[s - 1].cmp(&b.folded[s - 1])
            }
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    // §3: the implicit last criterion is the sequence number, never reversed.
    a.hit.seq.cmp(&b.hit.seq)
}

/// A hit with the view's arrival date and size.
type Viewed = (Hit, i64, u64);

fn viewed(sel: &Selected, hits: &[Hit]) -> Vec<Viewed> {
    hits.iter()
        .map(|&hit| {
            let i = (hit.seq - 1) as usize;
            (hit, sel.view.date(i).unwrap_or(0), sel.view.size(i).unwrap_or(0))
        })
        .collect()
}

fn items<'a>(hits: &[Viewed], rows: &'a [SortRow]) -> Vec<Item<'a>> {
    hits.iter()
        .map(|&(hit, arrival, size)| {
            let row = rows.binary_search_by_key(&hit.uid, |r| r.uid).ok().map(|k| &rows[k]);
            Item {
                hit,
                arrival,
                size,
                // RFC 5256 §2.2: no usable Date header means INTERNALDATE.
                sent: row.and_then(|r| r.sent_at).unwrap_or(arrival),
                // A message expunged between the search and the key read
                // (or keys from another build): empty keys.
                keys: row.and_then(|r| SortFields::parse(&r.keys)).unwrap_or_default(),
                folded: Vec::new(),
            }
        })
        .collect()
}

/// ESORT ALL (RFC 5267 §3.2): the numbers in sort order, ranges only for
/// ascending runs.
fn ordered_set(numbers: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j].checked_add(1) == Some(numbers[j + 1]) {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}:{}", numbers[i], numbers[j])
        } else {
            numbers[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

impl Session {
    /// The search part shared by SORT and THREAD: charset check, CONDSTORE
    /// enabling, the matching messages and their keys.
    async fn sort_input(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        charset: &str,
        key: &SearchKey,
    ) -> Result<(Vec<Viewed>, std::sync::Arc<Vec<SortRow>>), Flow> {
        if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
            conn.tagged(tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
            return Err(Flow::Continue);
        }
        if has_modseq(key) {
            self.enable_condstore(conn);
        }
        let store = self.ctx.store.clone();
        let State::Selected(_, sel) = &mut self.state else {
            return Err(Flow::Continue);
        };
        let result = async {
            let hits = matching(&store, sel, key).await?;
            let rows = if hits.is_empty() {
                std::sync::Arc::default()
            } else {
                store.sort_rows(sel.mailbox.id).await?
            };
            Ok((viewed(sel, &hits), rows))
        }
        .await;
        result.map_err(|e| self.store_error(conn, tag, &e))
    }

    /// RFC 5256 SORT / UID SORT; RFC 5267 ESORT with `RETURN (...)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sort(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        criteria: &[SortCriterion],
        charset: &str,
        key: &SearchKey,
    ) -> Flow {
        let (hits, rows) = match self.sort_input(conn, tag, charset, key).await {
            Ok(x) => x,
            Err(flow) => return flow,
        };
        // Sorting 100,000 messages is tens of milliseconds of CPU: a
        // blocking thread's, not the async workers' (issue 18).
        let criteria = criteria.to_vec();
        let list: Vec<Hit> = tokio::task::spawn_blocking(move || {
            let mut list = items(&hits, &rows);
            for item in &mut list {
                fold(item, &criteria);
            }
            list.sort_by(|a, b| compare(a, b, &criteria));
            list.iter().map(|i| i.hit).collect()
        })
        .await
        .unwrap_or_default();
        let State::Selected(_, sel) = &mut self.state else {
            return Flow::Continue;
        };
        let numbers: Vec<u32> = list.iter().map(|h| if uid { h.uid } else { h.seq }).collect();
        let modseq = has_modseq(key).then(|| result_modseq(ret.as_ref(), &list)).flatten();
        match ret {
            None => {
                let mut line = String::from("SORT");
                for n in &numbers {
                    line.push(' ');
                    line.push_str(&n.to_string());
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                conn.untagged(&line);
            }
            Some(r) => {
                if r.save {
                    sel.saved = list.iter().map(|h| h.uid).collect();
                    sel.saved.sort_unstable();
                }
                if r.min || r.max || r.all || r.count {
                    let first = numbers.first().copied();
                    let last = numbers.last().copied();
                    let all = (!numbers.is_empty()).then(|| ordered_set(&numbers));
                    conn.untagged(&esearch_line(tag, uid, &r, first, last, all, numbers.len(), modseq));
                }
            }
        }
        conn.tagged(tag, "OK", if uid { "UID SORT completed" } else { "SORT completed" });
        Flow::Continue
    }

    /// RFC 5256 THREAD / UID THREAD.
    pub(super) async fn thread(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        key: &SearchKey,
    ) -> Flow {
        let (hits, rows) = match self.sort_input(conn, tag, charset, key).await {
            Ok(x) => x,
            Err(flow) => return flow,
        };
        // Threading is CPU work over every match: off the async workers.
        let line = tokio::task::spawn_blocking(move || {
            let msgs: Vec<Msg<'_>> = items(&hits, &rows)
                .into_iter()
                .map(|i| Msg {
                    number: if uid { i.hit.uid } else { i.hit.seq },
                    seq: i.hit.seq,
                    sent: i.sent,
                    keys: i.keys,
                })
                .collect();
            let threads = match algorithm {
                ThreadAlgorithm::OrderedSubject => thread::ordered_subject(&msgs),
                ThreadAlgorithm::References => thread::references(&msgs),
            };
            thread::encode(&threads)
        })
        .await
        .unwrap_or_else(|_| "THREAD".to_string());
        conn.untagged(&line);
        conn.tagged(
            tag,
            "OK",
            if uid {
                "UID THREAD completed"
            } else {
                "THREAD completed"
            },
        );
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn esort_ranges_only_ascend() {
        assert_eq!(
            super::ordered_set(&[23765, 23764, 23763, 23761]),
            "23765,23764,23763,23761"
        );
        assert_eq!(super::ordered_set(&[5, 3, 4, 1, 2]), "5,3:4,1:2");
        assert_eq!(super::ordered_set(&[7]), "7");
    }
}
