//! SEARCH and UID SEARCH, RFC 9051 §6.4.4. Flags, dates and sizes come
//! from the session's view. Text keys (BODY, TEXT, SUBJECT, FROM, TO, CC,
//! BCC) of three characters or more are answered by the store's full-text
//! index (`Store::search_uids`: decoded text, so base64/QP bodies, charsets
//! and HTML are searched as text; TEXT covers the header as written and the
//! decoded body). Shorter ones fall back to the decoded summary in
//! `MessageInfo` or the raw bytes, as do HEADER and SENT*. Matching is
//! case-insensitive substring matching, as the RFC asks.

use letterbox_mail::MessageInfo;
use letterbox_store::query::MIN_TEXT_CHARS;
use letterbox_store::{Filter, MailboxId, MessageMeta, Result as StoreResult, SharedStore, TextField};
use std::collections::HashMap;
use std::sync::Arc;

use super::conn::Conn;
use super::selected::Selected;
use super::{Flow, Session, State};
use crate::proto::{SearchKey, SearchReturn, SeqSet};

const DAY: i64 = 86_400;

fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(&needle.to_lowercase())
}

fn bytes_contains_ci(hay: &[u8], needle: &str) -> bool {
    needle.is_empty() || contains_ci(&String::from_utf8_lossy(hay), needle)
}

/// What evaluating a key needs from the store (the view has UIDs, flags,
/// sizes and dates).
#[derive(Debug, Default, Clone, Copy)]
struct Needs {
    info: bool,
    raw: bool,
}

impl Needs {
    fn or(self, o: Needs) -> Needs {
        Needs {
            info: self.info || o.info,
            raw: self.raw || o.raw,
        }
    }
}

/// The index field a text key is answered from, when it can be.
fn indexed_field(k: &SearchKey) -> Option<(TextField, &str)> {
    use SearchKey::*;
    let (field, s) = match k {
        Body(s) => (TextField::Body, s),
        Text(s) => (TextField::Any, s),
        Subject(s) => (TextField::Subject, s),
        From(s) => (TextField::From, s),
        To(s) => (TextField::To, s),
        Cc(s) => (TextField::Cc, s),
        Bcc(s) => (TextField::Bcc, s),
        _ => return None,
    };
    (s.chars().count() >= MIN_TEXT_CHARS).then_some((field, s.as_str()))
}

/// UIDs matching each text key the index answered, by key.
type Indexed = HashMap<(TextField, String), Vec<u32>>;

/// RFC 8474 §6: replace EMAILID/THREADID keys by the UIDs they name in
/// this mailbox (ids of another kind, or unknown ones, match nothing).
async fn resolve_object_ids(store: &SharedStore, mailbox: MailboxId, k: &mut SearchKey) -> StoreResult<()> {
    use letterbox_jmap_proto::{Id, IdKind};
    use SearchKey::*;
    let filter = match k {
        Not(k) => return Box::pin(resolve_object_ids(store, mailbox, k)).await,
        Or(a, b) => {
            Box::pin(resolve_object_ids(store, mailbox, a)).await?;
            return Box::pin(resolve_object_ids(store, mailbox, b)).await;
        }
        And(ks) => {
            for k in ks {
                Box::pin(resolve_object_ids(store, mailbox, k)).await?;
            }
            return Ok(());
        }
        EmailId(s) => Id::parse(IdKind::Email, s).map(Filter::IsEmail),
        ThreadId(s) => Id::parse(IdKind::Thread, s).map(Filter::InThread),
        _ => return Ok(()),
    };
    let uids = match filter {
        Some(f) => store.search_uids(mailbox, f).await?,
        None => Vec::new(),
    };
    *k = Uid(crate::proto::SeqSet::from_numbers(&uids));
    Ok(())
}

/// Ask the index for every text key it can answer.
async fn index_lookups(store: &SharedStore, mailbox: MailboxId, k: &SearchKey, out: &mut Indexed) -> StoreResult<()> {
    use SearchKey::*;
    match k {
        Not(k) => Box::pin(index_lookups(store, mailbox, k, out)).await,
        Or(a, b) => {
            Box::pin(index_lookups(store, mailbox, a, out)).await?;
            Box::pin(index_lookups(store, mailbox, b, out)).await
        }
        And(ks) => {
            for k in ks {
                Box::pin(index_lookups(store, mailbox, k, out)).await?;
            }
            Ok(())
        }
        _ => {
            if let Some((field, s)) = indexed_field(k) {
                let key = (field, s.to_string());
                if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(key) {
                    let uids = store
                        .search_uids(mailbox, Filter::Contains(field, s.to_string()))
                        .await?;
                    slot.insert(uids);
                }
            }
            Ok(())
        }
    }
}

/// RFC 7162 §3.1.5: a MODSEQ key enables CONDSTORE and adds the highest
/// mod-sequence of the results to the response.
pub(super) fn has_modseq(k: &SearchKey) -> bool {
    use SearchKey::*;
    match k {
        ModSeq(_) => true,
        Not(k) => has_modseq(k),
        Or(a, b) => has_modseq(a) || has_modseq(b),
        And(ks) => ks.iter().any(has_modseq),
        _ => false,
    }
}

fn has_object_ids(k: &SearchKey) -> bool {
    use SearchKey::*;
    match k {
        EmailId(_) | ThreadId(_) => true,
        Not(k) => has_object_ids(k),
        Or(a, b) => has_object_ids(a) || has_object_ids(b),
        And(ks) => ks.iter().any(has_object_ids),
        _ => false,
    }
}

fn needs(k: &SearchKey) -> Needs {
    use SearchKey::*;
    if indexed_field(k).is_some() {
        return Needs::default();
    }
    let (info, raw) = match k {
        Bcc(_) | Cc(_) | From(_) | To(_) | Subject(_) | SentBefore(_) | SentOn(_) | SentSince(_) => (true, false),
        Body(_) | Text(_) | Header(..) => (false, true),
        Not(k) => return needs(k),
        Or(a, b) => return needs(a).or(needs(b)),
        And(ks) => return ks.iter().map(needs).fold(Needs::default(), Needs::or),
        _ => (false, false),
    };
    Needs { info, raw }
}

/// RFC 9051 §6.4.4 HEADER: fields named `name` whose (unfolded) value
/// contains `value`; an empty value matches any such field.
fn header_matches(raw: &[u8], name: &str, value: &str) -> bool {
    let text = String::from_utf8_lossy(letterbox_mail::header_section(raw));
    let mut fields: Vec<String> = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push_str(line);
            }
        } else if !line.is_empty() {
            fields.push(line.to_string());
        }
    }
    fields.iter().any(|f| {
        f.split_once(':')
            .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case(name) && contains_ci(v, value))
    })
}

struct Msg<'a> {
    uid: u32,
    flags: Vec<std::borrow::Cow<'a, str>>,
    size: Option<u64>,
    date: Option<i64>,
    /// \Recent to this session.
    recent: bool,
    seq: u32,
    max_seq: u32,
    max_uid: u32,
    /// RFC 7162 mod-sequence (the view's).
    modseq: u64,
    info: Option<Arc<MessageInfo>>,
    raw: Option<Arc<Vec<u8>>>,
}

fn day(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

/// RFC 9051 §6.4.4: SENTBEFORE/SENTON/SENTSINCE compare the date of the
/// Date header as written, disregarding time and timezone (a message sent
/// at 23:00 -0800 on the 24th is on the 24th, though it is the 25th in UTC).
/// The value comes from the ENVELOPE's first field, which holds the header
/// as written; a date only the full parser understood falls back to its
/// UTC day.
fn sent_day(info: &MessageInfo) -> Option<i64> {
    envelope_date(&info.envelope)
        .and_then(|v| crate::proto::rfc5322_day(&v))
        .or_else(|| info.date.map(day))
}

/// The first element of an ENVELOPE (`date`, an nstring: RFC 9051 §7.5.2),
/// unquoted; `None` for NIL or anything malformed.
fn envelope_date(env: &[u8]) -> Option<Vec<u8>> {
    let rest = env.strip_prefix(b"(")?;
    match rest.first()? {
        b'"' => {
            let mut out = Vec::new();
            let mut it = rest[1..].iter();
            while let Some(&b) = it.next() {
                match b {
                    b'"' => return Some(out),
                    b'\\' => out.push(*it.next()?),
                    _ => out.push(b),
                }
            }
            None
        }
        b'{' => {
            let close = rest.iter().position(|&b| b == b'}')?;
            let n: usize = std::str::from_utf8(&rest[1..close]).ok()?.parse().ok()?;
            let body = rest.get(close + 1..)?.strip_prefix(b"\r\n")?;
            body.get(..n).map(<[u8]>::to_vec)
        }
        _ => None,
    }
}

fn eval(k: &SearchKey, m: &Msg<'_>, ix: &Indexed) -> bool {
    use SearchKey::*;
    if let Some((field, s)) = indexed_field(k) {
        return ix
            .get(&(field, s.to_string()))
            .is_some_and(|uids| uids.binary_search(&m.uid).is_ok());
    }
    let has = |f: &str| m.flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let date = |cmp: fn(i64, i64) -> bool, d: i64| m.date.is_some_and(|x| cmp(day(x), d));
    let size = |cmp: fn(u64, u64) -> bool, n: u64| m.size.is_some_and(|x| cmp(x, n));
    let info = |f: fn(&MessageInfo) -> &str, s: &str| m.info.as_ref().is_some_and(|i| contains_ci(f(i), s));
    let sent = |cmp: fn(i64, i64) -> bool, d: i64| m.info.as_ref().and_then(|i| sent_day(i)).is_some_and(|t| cmp(t, d));
    match k {
        All => true,
        Flag(f) => has(f),
        NoFlag(f) => !has(f),
        New => m.recent && !has("\\Seen"),
        Recent => m.recent,
        Old => !m.recent,
        // Replaced by UID sets before evaluation (resolve_object_ids).
        EmailId(_) | ThreadId(_) => false,
        Bcc(s) => info(|i| &i.bcc, s),
        Cc(s) => info(|i| &i.cc, s),
        From(s) => info(|i| &i.from, s),
        To(s) => info(|i| &i.to, s),
        Subject(s) => info(|i| &i.subject, s),
        Body(s) => m
            .raw
            .as_ref()
            .is_some_and(|r| bytes_contains_ci(&r[letterbox_mail::header_section(r).len()..], s)),
        Text(s) => m.raw.as_ref().is_some_and(|r| bytes_contains_ci(r, s)),
        Header(n, v) => m.raw.as_ref().is_some_and(|r| header_matches(r, n, v)),
        Before(d) => date(|a, b| a < b, *d),
        On(d) => date(|a, b| a == b, *d),
        Since(d) => date(|a, b| a >= b, *d),
        SentBefore(d) => sent(|a, b| a < b, *d),
        SentOn(d) => sent(|a, b| a == b, *d),
        SentSince(d) => sent(|a, b| a >= b, *d),
        Larger(n) => size(|a, b| a > b, *n),
        Smaller(n) => size(|a, b| a < b, *n),
        Uid(set) => set.contains(m.uid, m.max_uid),
        ModSeq(n) => m.modseq >= *n,
        Seq(set) => set.contains(m.seq, m.max_seq),
        Not(k) => !eval(k, m, ix),
        Or(a, b) => eval(a, m, ix) || eval(b, m, ix),
        And(ks) => ks.iter().all(|k| eval(k, m, ix)),
    }
}

async fn load(
    store: &SharedStore,
    meta: &MessageMeta,
    info: bool,
    raw: bool,
) -> StoreResult<(Option<Arc<MessageInfo>>, Option<Arc<Vec<u8>>>)> {
    let i = if info {
        Some(store.message_info(meta.id).await?)
    } else {
        None
    };
    let r = if raw {
        Some(store.raw_message(meta.id).await?)
    } else {
        None
    };
    Ok((i, r))
}

impl Session {
    /// RFC 9051 §6.4.4. Expunges by others stay held back (§7.5.1).
    pub(super) async fn search(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        charset: Option<&str>,
        key: &SearchKey,
    ) -> Flow {
        if charset.is_some() && self.enabled.utf8 {
            // RFC 6855 §3: UTF-8 is the only charset once UTF8=ACCEPT is on.
            return self.bad(conn, tag, "no CHARSET after ENABLE UTF8=ACCEPT");
        }
        if let Some(cs) = charset {
            if !cs.eq_ignore_ascii_case("UTF-8") && !cs.eq_ignore_ascii_case("US-ASCII") {
                if let (Some(r), State::Selected(_, sel)) = (ret, &mut self.state) {
                    // RFC 5182 §2.1: a failed SAVE search empties the result.
                    if r.save {
                        sel.saved.clear();
                    }
                }
                conn.tagged(tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
                return Flow::Continue;
            }
        }
        // RFC 9051 §6.4.4: IMAP4rev2 clients always get ESEARCH.
        let ret = ret.or(self.enabled.rev2.then_some(SearchReturn {
            all: true,
            ..Default::default()
        }));
        let with_modseq = has_modseq(key);
        if with_modseq {
            self.enable_condstore(conn);
        }
        let store = self.ctx.store.clone();
        let State::Selected(_, sel) = &mut self.state else {
            return Flow::Continue;
        };
        let hits = match matching(&store, sel, key).await {
            Ok(h) => h,
            Err(e) => return self.store_error(conn, tag, &e),
        };
        let modseq = with_modseq.then(|| result_modseq(ret.as_ref(), &hits)).flatten();
        let hits: Vec<(u32, u32)> = hits.iter().map(|h| (h.seq, h.uid)).collect();
        let numbers: Vec<u32> = hits.iter().map(|&(seq, u)| if uid { u } else { seq }).collect();
        match ret {
            None => {
                let mut line = String::from("SEARCH");
                for h in numbers {
                    line.push(' ');
                    line.push_str(&h.to_string());
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                conn.untagged(&line);
            }
            Some(r) => {
                if r.save {
                    // RFC 5182 §2.1: with only MIN and/or MAX, only those are saved.
                    sel.saved = if (r.min || r.max) && !(r.all || r.count) {
                        let mut v = Vec::new();
                        if r.min {
                            v.extend(hits.first().map(|h| h.1));
                        }
                        if r.max {
                            v.extend(hits.last().map(|h| h.1));
                        }
                        v
                    } else {
                        hits.iter().map(|h| h.1).collect()
                    };
                }
                // RFC 5182 §2.4: SAVE alone gets no ESEARCH response.
                if r.min || r.max || r.all || r.count {
                    let all = (!numbers.is_empty()).then(|| SeqSet::from_numbers(&numbers).to_text());
                    let line = esearch_line(
                        tag,
                        uid,
                        &r,
                        numbers.first().copied(),
                        numbers.last().copied(),
                        all,
                        numbers.len(),
                        modseq,
                    );
                    conn.untagged(&line);
                }
            }
        }
        conn.tagged(
            tag,
            "OK",
            if uid {
                "UID SEARCH completed"
            } else {
                "SEARCH completed"
            },
        );
        Flow::Continue
    }
}

/// The MODSEQ a SEARCH or SORT response carries for `hits` (in response
/// order): RFC 7162 §3.1.6/§3.1.10, only for a non-empty result, the
/// highest of the messages returned, which with only MIN and/or MAX
/// (RFC 4731 §3.2) are just the first and last.
pub(super) fn result_modseq(ret: Option<&SearchReturn>, hits: &[Hit]) -> Option<u64> {
    let (first, last) = (hits.first()?, hits.last()?);
    Some(match ret {
        Some(r) if !(r.all || r.count) => {
            let lo = if r.min { first.modseq } else { 0 };
            lo.max(if r.max { last.modseq } else { 0 })
        }
        _ => hits.iter().map(|h| h.modseq).max().unwrap_or(0),
    })
}

/// A message a search matched.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hit {
    pub seq: u32,
    pub uid: u32,
    pub modseq: u64,
}

/// The messages of the selected mailbox matching `key`, ascending (SEARCH,
/// and what SORT and THREAD then order).
pub(super) async fn matching(store: &SharedStore, sel: &Selected, key: &SearchKey) -> StoreResult<Vec<Hit>> {
    if *key == SearchKey::All {
        // SORT/THREAD ... ALL, the usual case: no per-message evaluation.
        return Ok((0..sel.view.len())
            .map(|i| Hit {
                seq: i as u32 + 1,
                uid: sel.view.uid(i),
                modseq: sel.view.modseq(i),
            })
            .collect());
    }
    let mut resolved;
    let key = if has_object_ids(key) {
        resolved = key.clone();
        resolve_object_ids(store, sel.mailbox.id, &mut resolved).await?;
        &resolved
    } else {
        key
    };
    let mut indexed = Indexed::new();
    index_lookups(store, sel.mailbox.id, key, &mut indexed).await?;
    let want = needs(key);
    // Message ids for bodies and structure; sizes and dates the view
    // could not hold (rare).
    let view_short = (0..sel.view.len()).any(|i| sel.view.size(i).is_none() || sel.view.date(i).is_none());
    let want_metas = want.info || want.raw || view_short;
    let metas = if want_metas {
        store.messages(sel.mailbox.id).await?
    } else {
        Vec::new()
    };
    let max_seq = u32::try_from(sel.view.len()).unwrap_or(u32::MAX);
    let max_uid = sel.view.last_uid().unwrap_or(0);
    let mut hits = Vec::new();
    let (shared_key, shared_ix) = if want.raw {
        (Arc::new(key.clone()), Arc::new(indexed.clone()))
    } else {
        (Arc::new(SearchKey::All), Arc::new(Indexed::new()))
    };
    for i in 0..sel.view.len() {
        let uid_i = sel.view.uid(i);
        let meta = metas.binary_search_by_key(&uid_i, |m| m.uid).ok().map(|k| &metas[k]);
        if meta.is_none() && (want.info || want.raw) {
            // Expunged meanwhile: its text cannot be searched.
            continue;
        }
        let (info, raw) = match meta {
            Some(meta) if want.info || want.raw => match load(store, meta, want.info, want.raw).await {
                Ok(x) => x,
                // Expunged meanwhile: it cannot match.
                Err(letterbox_store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            },
            _ => (None, None),
        };
        let m = Msg {
            uid: uid_i,
            flags: sel.view.flags(i).into_iter().map(std::borrow::Cow::Borrowed).collect(),
            size: sel.view.size(i).or(meta.map(|m| m.size)),
            date: sel.view.date(i).or(meta.map(|m| m.internal_date)),
            recent: sel.recent.contains(&uid_i),
            seq: i as u32 + 1,
            max_seq,
            max_uid,
            modseq: sel.view.modseq(i),
            info,
            raw,
        };
        let hit = if m.raw.is_some() {
            // Issue 18: scanning message bytes is CPU work of unbounded
            // size: it runs on a blocking thread, never on the async
            // workers other sessions need.
            let owned = Msg {
                flags: m.flags.iter().map(|f| std::borrow::Cow::Owned(f.to_string())).collect(),
                ..m
            };
            let (k, ix) = (shared_key.clone(), shared_ix.clone());
            tokio::task::spawn_blocking(move || eval(&k, &owned, &ix))
                .await
                .unwrap_or(false)
        } else {
            eval(key, &m, &indexed)
        };
        if hit {
            hits.push(Hit {
                seq: i as u32 + 1,
                uid: uid_i,
                modseq: sel.view.modseq(i),
            });
        }
    }
    Ok(hits)
}

/// RFC 4731 §3.1 / RFC 9051 §7.3.4 `ESEARCH` response; `numbers` ascending.
#[cfg(test)]
fn esearch(tag: &str, uid: bool, r: &SearchReturn, numbers: &[u32]) -> String {
    let all = (!numbers.is_empty()).then(|| SeqSet::from_numbers(numbers).to_text());
    esearch_line(
        tag,
        uid,
        r,
        numbers.first().copied(),
        numbers.last().copied(),
        all,
        numbers.len(),
        None,
    )
}

/// An ESEARCH response from its parts (also ESORT's, RFC 5267 §3.1, whose
/// MIN/MAX are the first and last in sort order), with RFC 7162 §3.1.10
/// MODSEQ.
#[allow(clippy::too_many_arguments)]
pub(super) fn esearch_line(
    tag: &str,
    uid: bool,
    r: &SearchReturn,
    min: Option<u32>,
    max: Option<u32>,
    all: Option<String>,
    count: usize,
    modseq: Option<u64>,
) -> String {
    let mut line = format!("ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    if let (true, Some(min)) = (r.min, min) {
        line.push_str(&format!(" MIN {min}"));
    }
    if let (true, Some(max)) = (r.max, max) {
        line.push_str(&format!(" MAX {max}"));
    }
    if let (true, Some(all)) = (r.all, all) {
        line.push_str(&format!(" ALL {all}"));
    }
    if r.count {
        line.push_str(&format!(" COUNT {count}"));
    }
    if let Some(m) = modseq {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_with(envelope: &[u8], date: Option<i64>) -> MessageInfo {
        let mut info = letterbox_mail::analyze(b"\r\n");
        info.envelope = envelope.to_vec();
        info.date = date;
        info
    }

    #[test]
    fn sent_date_is_the_date_as_written() {
        // 2007-03-24 and 2007-03-25, 00:00 UTC.
        let (d24, d25) = (1_174_694_400, 1_174_780_800);
        // 00:00 +0200 on the 25th is the 24th in UTC, but SENTON 25 matches.
        let i = info_with(b"(\"Sun, 25 Mar 2007 00:00:00 +0200\" NIL)", Some(d25 - 7200));
        assert_eq!(sent_day(&i), Some(d25));
        let i = info_with(b"(\"Sat, 24 Mar 2007 23:00:00 -0800\" NIL)", Some(d25 + 7 * 3600));
        assert_eq!(sent_day(&i), Some(d24));
        // Literal form, comments, no day name, obsolete two-digit year.
        let i = info_with(b"({26}\r\n(c) 25 (x) mar 07 1:00 EST NIL)", None);
        assert_eq!(sent_day(&i), Some(d25));
        // Unparseable here: the full parser's UTC day; NIL: nothing.
        let i = info_with(b"(\"garbage\" NIL)", Some(d24 + 3600));
        assert_eq!(sent_day(&i), Some(d24));
        assert_eq!(sent_day(&info_with(b"(NIL NIL)", None)), None);
    }

    #[test]
    fn rfc5322_years() {
        use crate::proto::rfc5322_day;
        assert_eq!(rfc5322_day(b"1 Jan 1970 00:00 +0000"), Some(0));
        assert_eq!(rfc5322_day(b"Thu, 1 Jan 70 00:00 +0000"), Some(0));
        assert_eq!(rfc5322_day(b"1 Jan 070"), Some(0));
        assert_eq!(rfc5322_day(b"1 Jan 00"), rfc5322_day(b"1 Jan 2000"));
        assert_eq!(rfc5322_day(b"32 Jan 2000"), None);
        assert_eq!(rfc5322_day(b"1 Foo 2000"), None);
        assert_eq!(rfc5322_day(b"1 Jan 20000"), None);
    }

    #[test]
    fn esearch_responses() {
        let all = SearchReturn {
            all: true,
            ..Default::default()
        };
        assert_eq!(
            esearch("a1", true, &all, &[1, 2, 3, 7]),
            "ESEARCH (TAG \"a1\") UID ALL 1:3,7"
        );
        assert_eq!(esearch("a1", false, &all, &[]), "ESEARCH (TAG \"a1\")");
        let mmc = SearchReturn {
            min: true,
            max: true,
            count: true,
            ..Default::default()
        };
        assert_eq!(
            esearch("t", false, &mmc, &[4, 9]),
            "ESEARCH (TAG \"t\") MIN 4 MAX 9 COUNT 2"
        );
        assert_eq!(esearch("t", false, &mmc, &[]), "ESEARCH (TAG \"t\") COUNT 0");
    }

    #[test]
    fn header_field_matching_unfolds_and_ignores_case() {
        let raw = b"Subject: hello\r\nX-Tag: one\r\n two\r\n\r\nX-Tag: body\r\n";
        assert!(header_matches(raw, "x-tag", "ONE TWO"));
        assert!(header_matches(raw, "X-TAG", ""));
        assert!(!header_matches(raw, "X-Tag", "body"));
        assert!(!header_matches(raw, "X-Missing", ""));
    }
}
