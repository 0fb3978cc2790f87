//! RFC 5256 §3 threading: ORDEREDSUBJECT and REFERENCES, as pure functions
//! over the messages a search matched, and the THREAD response encoding
//! (§4). Subjects compare with i;ascii-casemap; sent dates come from the
//! Date header (UTC) or, failing that, INTERNALDATE (§2.2).

use std::collections::HashMap;

use letterbox_mail::sort::SortFields;

/// One matched message.
#[derive(Debug, Clone)]
pub struct Msg<'a> {
    /// What the response shows: a sequence number or a UID.
    pub number: u32,
    /// Sequence number, the final tie-breaker.
    pub seq: u32,
    /// Sent date (§2.2).
    pub sent: i64,
    pub keys: SortFields<'a>,
}

/// A thread tree node: a message, or a dummy holding children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The message's number; `None` for a dummy.
    pub number: Option<u32>,
    pub children: Vec<Node>,
}

/// i;ascii-casemap key of a subject.
fn casemap(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// ORDEREDSUBJECT: threads of equal base subject, by the sent date of
/// their first message; later messages are children of the first.
pub fn ordered_subject(msgs: &[Msg<'_>]) -> Vec<Node> {
    let mut sorted: Vec<(String, &Msg<'_>)> = msgs.iter().map(|m| (casemap(m.keys.subject), m)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.sent.cmp(&b.1.sent)).then(a.1.seq.cmp(&b.1.seq)));
    let mut threads: Vec<(i64, u32, Node)> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let first = sorted[i].1;
        let children = sorted[i + 1..j]
            .iter()
            .map(|(_, m)| Node {
                number: Some(m.number),
                children: Vec::new(),
            })
            .collect();
        threads.push((
            first.sent,
            first.seq,
            Node {
                number: Some(first.number),
                children,
            },
        ));
        i = j;
    }
    threads.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    threads.into_iter().map(|t| t.2).collect()
}

/// The REFERENCES algorithm's working tree: containers by index.
struct Tree<'m, 'a> {
    /// The message of a container; `None` for a dummy.
    msg: Vec<Option<&'m Msg<'a>>>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl<'m, 'a> Tree<'m, 'a> {
    fn add(&mut self, msg: Option<&'m Msg<'a>>) -> usize {
        self.msg.push(msg);
        self.parent.push(None);
        self.children.push(Vec::new());
        self.msg.len() - 1
    }

    /// Is `a` `b` or below it?
    fn is_descendant(&self, mut a: usize, b: usize) -> bool {
        // Parent links never form a loop, so this ends.
        loop {
            if a == b {
                return true;
            }
            match self.parent[a] {
                Some(p) => a = p,
                None => return false,
            }
        }
    }

    fn unlink(&mut self, c: usize) {
        if let Some(p) = self.parent[c].take() {
            self.children[p].retain(|&x| x != c);
        }
    }

    /// Make `p` the parent of `c` unless that would make a loop.
    fn link(&mut self, p: usize, c: usize) {
        if self.is_descendant(p, c) {
            return;
        }
        self.unlink(c);
        self.parent[c] = Some(p);
        self.children[p].push(c);
    }

    /// Sent date and sequence number a node sorts by: its own, or its
    /// first child's for a dummy (§3 steps 4 and 6).
    fn date_of(&self, c: usize) -> (i64, u32) {
        match self.msg[c] {
            Some(m) => (m.sent, m.seq),
            None => self.children[c].first().map_or((i64::MIN, 0), |&f| self.date_of(f)),
        }
    }

    /// Sort every set of siblings below `list` (children first), then `list`.
    fn sort(&mut self, list: &mut [usize]) {
        for &c in list.iter() {
            let mut kids = std::mem::take(&mut self.children[c]);
            self.sort(&mut kids);
            self.children[c] = kids;
        }
        list.sort_by_key(|&c| self.date_of(c));
    }

    /// Step 3: drop childless dummies, splice other dummies' children into
    /// their level, except into the root when there are several.
    fn prune(&mut self, list: Vec<usize>, root: bool) -> Vec<usize> {
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let kids = std::mem::take(&mut self.children[c]);
            let kids = self.prune(kids, false);
            if self.msg[c].is_none() && (kids.is_empty() || !root || kids.len() == 1) {
                out.extend(kids);
            } else {
                self.children[c] = kids;
                out.push(c);
            }
        }
        out
    }

    /// The base subject a top-level node is grouped by (§3 step 5.B.i).
    fn subject_of(&self, c: usize) -> Option<&'a str> {
        let m = match self.msg[c] {
            Some(m) => m,
            None => self.children[c].first().and_then(|&f| self.msg[f])?,
        };
        Some(m.keys.subject)
    }

    fn node(&self, c: usize) -> Node {
        Node {
            number: self.msg[c].map(|m| m.number),
            children: self.children[c].iter().map(|&k| self.node(k)).collect(),
        }
    }
}

/// REFERENCES (RFC 5256 §3): parent/child links from References or
/// In-Reply-To, then threads merged by base subject.
pub fn references(msgs: &[Msg<'_>]) -> Vec<Node> {
    let mut t = Tree {
        msg: Vec::new(),
        parent: Vec::new(),
        children: Vec::new(),
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut ordered: Vec<&Msg<'_>> = msgs.iter().collect();
    ordered.sort_by_key(|m| m.seq);
    for m in ordered {
        // Step 1.A: this message's container (a dummy a reference made
        // earlier, if any); a missing or repeated Message-ID gets none.
        let id = m.keys.message_id;
        let me = match by_id.get(id) {
            Some(&c) if !id.is_empty() && t.msg[c].is_none() => {
                t.msg[c] = Some(m);
                c
            }
            Some(_) => t.add(Some(m)),
            None => {
                let c = t.add(Some(m));
                if !id.is_empty() {
                    by_id.insert(id, c);
                }
                c
            }
        };
        let mut prev: Option<usize> = None;
        for r in m.keys.references() {
            let c = match by_id.get(r) {
                Some(&c) => c,
                None => {
                    let c = t.add(None);
                    by_id.insert(r, c);
                    c
                }
            };
            if let Some(p) = prev {
                // A container that has a parent keeps it (truncated
                // References headers).
                if t.parent[c].is_none() && c != p {
                    t.link(p, c);
                }
            }
            prev = Some(c);
        }
        // Step 1.B: the last reference is the parent; none means no parent.
        // An existing parent link goes even when the new one would make a
        // loop and is not made (as Dovecot, whose answer imaptest checks).
        t.unlink(me);
        if let Some(p) = prev.filter(|&p| p != me) {
            t.link(p, me);
        }
    }
    // Step 2: the root set.
    let roots: Vec<usize> = (0..t.msg.len()).filter(|&c| t.parent[c].is_none()).collect();
    // Step 3.
    let mut roots = t.prune(roots, true);
    // Step 4 (a dummy sorts by its earliest child, so children first).
    t.sort(&mut roots);
    // Step 5: merge threads of equal base subject.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &c in &roots {
        let Some(subject) = t.subject_of(c).filter(|s| !s.is_empty()) else {
            continue;
        };
        let key = casemap(subject);
        match table.get(&key) {
            None => {
                table.insert(key, c);
            }
            Some(&old) => {
                let old_dummy = t.msg[old].is_none();
                let reply = |x: usize| t.msg[x].is_some_and(|m| m.keys.reply);
                if !old_dummy && (t.msg[c].is_none() || (reply(old) && !reply(c))) {
                    table.insert(key, c);
                }
            }
        }
    }
    let mut top: Vec<usize> = Vec::with_capacity(roots.len());
    let mut gone = vec![false; t.msg.len()];
    for i in 0..roots.len() {
        let c = roots[i];
        if gone[c] {
            continue;
        }
        let Some(subject) = t.subject_of(c).filter(|s| !s.is_empty()) else {
            top.push(c);
            continue;
        };
        let key = casemap(subject);
        let Some(&s) = table.get(&key) else {
            top.push(c);
            continue;
        };
        if s == c {
            top.push(c);
            continue;
        }
        let (c_dummy, s_dummy) = (t.msg[c].is_none(), t.msg[s].is_none());
        let reply = |x: usize| t.msg[x].is_some_and(|m| m.keys.reply);
        if c_dummy && s_dummy {
            for k in std::mem::take(&mut t.children[c]) {
                t.parent[k] = Some(s);
                t.children[s].push(k);
            }
        } else if s_dummy || (reply(c) && !reply(s)) {
            t.parent[c] = Some(s);
            t.children[s].push(c);
        } else {
            let d = t.add(None);
            gone.push(false);
            t.parent[s] = Some(d);
            t.parent[c] = Some(d);
            t.children[d] = vec![s, c];
            table.insert(key, d);
            // The dummy takes the table message's place at the top.
            match top.iter().position(|&x| x == s) {
                Some(at) => top[at] = d,
                None => {
                    // `s` comes later in the root list: it is replaced there.
                    if let Some(at) = roots.iter().position(|&x| x == s) {
                        roots[at] = d;
                    }
                }
            }
        }
        gone[c] = true;
    }
    // Step 6.
    t.sort(&mut top);
    top.iter().map(|&c| t.node(c)).collect()
}

/// RFC 5256 §4 `* THREAD` response (without `* ` and CRLF).
pub fn encode(threads: &[Node]) -> String {
    fn members(n: &Node, out: &mut String) {
        match n.number {
            Some(num) => {
                out.push_str(&num.to_string());
                match n.children.as_slice() {
                    [] => {}
                    [one] => {
                        out.push(' ');
                        members(one, out);
                    }
                    many => {
                        out.push(' ');
                        for c in many {
                            out.push('(');
                            members(c, out);
                            out.push(')');
                        }
                    }
                }
            }
            None => {
                for c in &n.children {
                    out.push('(');
                    members(c, out);
                    out.push(')');
                }
            }
        }
    }
    let mut out = String::from("THREAD");
    if !threads.is_empty() {
        out.push(' ');
    }
    for t in threads {
        out.push('(');
        members(t, &mut out);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoded keys, as the store hands them out.
    fn keys(subject: &str, id: &str, refs: &[&str]) -> String {
        let (subject_base, reply) = letterbox_mail::sort::base_subject(subject);
        letterbox_mail::sort::SortKeys {
            subject: subject_base,
            reply,
            message_id: id.into(),
            references: refs.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
        .encode()
    }

    fn msgs(k: &[String]) -> Vec<Msg<'_>> {
        k.iter()
            .enumerate()
            .map(|(i, keys)| Msg {
                number: i as u32 + 1,
                seq: i as u32 + 1,
                sent: 1000 + i as i64,
                keys: SortFields::parse(keys).unwrap(),
            })
            .collect()
    }

    #[test]
    fn encodes_the_rfc_example() {
        let leaf = |n| Node {
            number: Some(n),
            children: vec![],
        };
        let chain = |a, b: Node| Node {
            number: Some(a),
            children: vec![b],
        };
        let t = vec![
            leaf(2),
            chain(
                3,
                Node {
                    number: Some(6),
                    children: vec![chain(4, leaf(23)), chain(44, chain(7, leaf(96)))],
                },
            ),
            Node {
                number: None,
                children: vec![leaf(3), leaf(5)],
            },
        ];
        assert_eq!(encode(&t), "THREAD (2)(3 6 (4 23)(44 7 96))((3)(5))");
        assert_eq!(encode(&[]), "THREAD");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let k = [
            keys("a", "", &[]),
            keys("b", "", &[]),
            keys("Re: a", "", &[]),
            keys("RE: A", "", &[]),
            keys("Re: b", "", &[]),
        ];
        assert_eq!(encode(&ordered_subject(&msgs(&k))), "THREAD (1 (3)(4))(2 5)");
    }

    #[test]
    fn references_links_replies_and_merges_subjects() {
        let k = [
            keys("hello", "m1", &[]),
            keys("Re: hello", "m2", &["m1"]),
            keys("Re: hello", "m3", &["m1", "m2"]),
            keys("other", "m4", &[]),
            // Parent unknown: a dummy with two children stays at the top.
            keys("Re: lost", "m5", &["gone"]),
            keys("Re: lost", "m6", &["gone"]),
            // No references, same subject as m1's thread: merged in.
            keys("Re: hello", "m7", &[]),
            // Loop attempt: m8 says its parent is m9, m9 says m8.
            keys("x", "m8", &["m9"]),
            keys("y", "m9", &["m8"]),
        ];
        let got = encode(&references(&msgs(&k)));
        // m9 keeps m8 as its child: m8 under m9 would be a loop (step 1.B).
        assert_eq!(got, "THREAD (1 (2 3)(7))(4)((5)(6))(9 8)");
    }

    #[test]
    fn references_of_duplicate_ids_and_missing_ids() {
        let k = [
            keys("s", "dup", &[]),
            keys("t", "dup", &[]),
            keys("Re: s", "", &["dup"]),
        ];
        assert_eq!(encode(&references(&msgs(&k))), "THREAD (1 3)(2)");
    }
}
