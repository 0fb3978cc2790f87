//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY). Structure
//! items come precomputed from [`letterbox_mail::MessageInfo`]; sections are
//! slices of the raw message. A non-PEEK body fetch sets `\Seen` first and
//! then reports FLAGS with the data.

use std::collections::HashMap;

use letterbox_mail::{binary, section, BinaryError, MessageInfo, SectionKind, SectionSpec};
use letterbox_store::{FlagOp, MessageMeta};

use super::conn::Conn;
use super::{Flow, Session, State};
use crate::proto::response::FetchResponse;
use crate::proto::{format_date_time, push_literal, push_string, FetchAtt, SeqSet};

const SEEN: &str = "\\Seen";

/// Does fetching this item set `\Seen` (RFC 9051 §6.4.5)?
fn sets_seen(att: &FetchAtt) -> bool {
    matches!(
        att,
        FetchAtt::Rfc822
            | FetchAtt::Rfc822Text
            | FetchAtt::Section { peek: false, .. }
            | FetchAtt::Binary { peek: false, .. }
    )
}

fn needs_body(att: &FetchAtt) -> bool {
    matches!(
        att,
        FetchAtt::Rfc822
            | FetchAtt::Rfc822Header
            | FetchAtt::Rfc822Text
            | FetchAtt::Section { .. }
            | FetchAtt::Binary { .. }
            | FetchAtt::BinarySize(_)
    )
}

fn needs_info(att: &FetchAtt) -> bool {
    needs_body(att)
        || matches!(
            att,
            FetchAtt::Envelope | FetchAtt::Body | FetchAtt::BodyStructure | FetchAtt::Preview { .. }
        )
}

fn needs_size_or_date(att: &FetchAtt) -> bool {
    matches!(att, FetchAtt::InternalDate | FetchAtt::Rfc822Size)
}

/// One message to answer for.
struct Target<'a> {
    seq: usize,
    uid: u32,
    flags: &'a [String],
    size: Option<u64>,
    date: Option<i64>,
    /// Structure, when an item needs it.
    info: Option<&'a MessageInfo>,
    /// Raw bytes, when an item needs them.
    raw: Option<&'a [u8]>,
    /// Email and thread id (RFC 8474), when an item needs them.
    ids: Option<(i64, i64)>,
    /// RFC 7162 mod-sequence of `flags`.
    modseq: u64,
}

/// How FETCH responses are shaped for this client.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// UID FETCH: UID in every response (RFC 9051 §6.4.9).
    uid: bool,
    /// CONDSTORE is on: MODSEQ goes with every FLAGS the server adds
    /// unasked (RFC 7162 §3.2.4), and with CHANGEDSINCE.
    condstore: bool,
    /// CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1).
    modseq: bool,
}

/// `<start.len>` of a partial fetch.
/// Most messages one store read brings for a FETCH, and roughly the most
/// body bytes (a single larger message still comes alone).
const FETCH_CHUNK_MESSAGES: usize = 128;
const FETCH_CHUNK_BYTES: u64 = 8 << 20;

fn apply_partial(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        None => data,
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            &data[s..e]
        }
    }
}

impl Session {
    /// With RFC 7162 CHANGEDSINCE (§3.1.4.1) and VANISHED (§3.2.6).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fetch(
        &mut self,
        conn: &mut Conn,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        atts: &[FetchAtt],
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Flow {
        if vanished && !self.enabled.qresync {
            return self.bad(conn, tag, "VANISHED needs ENABLE QRESYNC");
        }
        if changed_since.is_some() || atts.contains(&FetchAtt::ModSeq) {
            self.enable_condstore(conn);
        }
        let qresync = self.enabled.qresync;
        let State::Selected(_, sel) = &mut self.state else {
            return Flow::Continue;
        };
        let mut idx = match sel.resolve(set, uid) {
            Ok(i) => i,
            Err(text) => return self.bad(conn, tag, &text),
        };
        if let Some(since) = changed_since {
            if vanished {
                if let Err(e) = sel.vanished_earlier(&self.ctx, conn, set, since).await {
                    return self.store_error(conn, tag, &e);
                }
            }
            idx.retain(|&i| sel.view.modseq(i) > since);
        }
        let shape = Shape {
            uid,
            condstore: sel.condstore,
            modseq: changed_since.is_some() && !atts.contains(&FetchAtt::ModSeq),
        };
        let store = self.ctx.store.clone();
        // Set \Seen before answering, so the FLAGS we send are the truth.
        let mut seen_now = Vec::new();
        if !sel.read_only && atts.iter().any(sets_seen) {
            let unseen: Vec<u32> = idx
                .iter()
                .filter(|&&i| !sel.view.has_flag(i, SEEN))
                .map(|&i| sel.view.uid(i))
                .filter(|u| !sel.gone.contains(u))
                .collect();
            if !unseen.is_empty() {
                match store
                    .store_flags(sel.mailbox.id, &unseen, FlagOp::Add, &[SEEN.to_string()])
                    .await
                {
                    Ok(changed) => {
                        sel.apply(conn, &changed);
                        seen_now = unseen;
                    }
                    Err(e) => return self.store_error(conn, tag, &e),
                }
            }
        }
        // The view answers UID, FLAGS, sizes and dates, also for messages
        // expunged elsewhere; bodies and structure come from the store.
        let want_info = atts.iter().any(needs_info);
        let want_size_or_date = atts.iter().any(needs_size_or_date);
        let view_short = want_size_or_date
            && idx
                .iter()
                .any(|&i| sel.view.size(i).is_none() || sel.view.date(i).is_none());
        let want_ids = atts.iter().any(|a| matches!(a, FetchAtt::EmailId | FetchAtt::ThreadId));
        let metas = if want_info || view_short || want_ids {
            let uids: Vec<u32> = idx.iter().map(|&i| sel.view.uid(i)).collect();
            match store.messages_by_uid(sel.mailbox.id, &uids).await {
                Ok(m) => Some(m),
                Err(e) => return self.store_error(conn, tag, &e),
            }
        } else {
            None
        };
        // RFC 2180 §4.1.1: a message another session expunged keeps its
        // body readable for a while, for sessions not yet told.
        let ghosts: Vec<MessageMeta> = match &metas {
            Some(ms) if want_info => {
                let gone: Vec<(usize, u32)> = idx
                    .iter()
                    .map(|&i| (i, sel.view.uid(i)))
                    .filter(|(_, u)| ms.binary_search_by_key(u, |m| m.uid).is_err())
                    .collect();
                if gone.is_empty() {
                    Vec::new()
                } else {
                    let uids: Vec<u32> = gone.iter().map(|g| g.1).collect();
                    match store.expunged_ids(sel.mailbox.id, &uids).await {
                        Ok(ids) => ids
                            .into_iter()
                            .filter_map(|(uid, id)| {
                                // `gone` ascends by UID, as `idx` does.
                                let k = gone.binary_search_by_key(&uid, |g| g.1).ok()?;
                                let i = gone[k].0;
                                Some(MessageMeta {
                                    id,
                                    thread_id: 0,
                                    uid,
                                    modseq: 0,
                                    flags: Vec::new(),
                                    internal_date: sel.view.date(i).unwrap_or(0),
                                    size: sel.view.size(i).unwrap_or(0),
                                })
                            })
                            .collect(),
                        Err(e) => return self.store_error(conn, tag, &e),
                    }
                }
            }
            _ => Vec::new(),
        };
        let mut missing = false;
        let mut unknown_cte = None;
        let find_meta = |uid: u32| {
            metas
                .as_ref()
                .and_then(|ms| ms.binary_search_by_key(&uid, |m| m.uid).ok().map(|k| &ms[k]))
                .or_else(|| ghosts.binary_search_by_key(&uid, |g| g.uid).ok().map(|k| &ghosts[k]))
        };
        let want_body = atts.iter().any(needs_body);
        let mut rest: &[usize] = &idx;
        while !rest.is_empty() {
            // Bodies and structures of a chunk come in one store read; the
            // chunk is bounded in messages and bytes so a FETCH 1:* of a
            // large mailbox never holds it all in memory.
            let mut n = 0;
            let mut bytes = 0u64;
            while n < rest.len() && n < FETCH_CHUNK_MESSAGES && (n == 0 || bytes < FETCH_CHUNK_BYTES) {
                let i = rest[n];
                if want_body {
                    bytes += sel
                        .view
                        .size(i)
                        .or(find_meta(sel.view.uid(i)).map(|m| m.size))
                        .unwrap_or(0);
                }
                n += 1;
            }
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let data = if want_info {
                let ids: Vec<_> = chunk
                    .iter()
                    .filter_map(|&i| find_meta(sel.view.uid(i)).map(|m| m.id))
                    .collect();
                match store.message_data(&ids, true, want_body).await {
                    Ok(d) => d,
                    Err(e) => return self.store_error(conn, tag, &e),
                }
            } else {
                HashMap::new()
            };
            for &i in chunk {
                let uid_i = sel.view.uid(i);
                let meta = find_meta(uid_i);
                let in_view = !want_info
                    && !want_ids
                    && (!want_size_or_date || (sel.view.size(i).is_some() && sel.view.date(i).is_some()));
                let found = meta.and_then(|m| data.get(&m.id));
                if (want_info && found.is_none()) || (meta.is_none() && !in_view) {
                    // Expunged by another session meanwhile.
                    missing = true;
                    continue;
                }
                let flags = sel.shown_flags(i);
                let target = Target {
                    seq: i + 1,
                    uid: uid_i,
                    flags: &flags,
                    size: sel.view.size(i).or(meta.map(|m| m.size)),
                    date: sel.view.date(i).or(meta.map(|m| m.internal_date)),
                    info: found.and_then(|d| d.info.as_deref()),
                    raw: found.and_then(|d| d.raw.as_deref()).map(Vec::as_slice),
                    ids: meta.map(|m| (m.id, m.thread_id)),
                    modseq: sel.view.modseq(i),
                };
                let report_flags = seen_now.binary_search(&uid_i).is_ok() && !atts.contains(&FetchAtt::Flags);
                match fetch_one(&target, shape, atts, report_flags) {
                    Ok(line) => conn.out.extend_from_slice(&line),
                    Err(cte) => unknown_cte = Some(cte),
                }
            }
            // Large fetches go out as they are built.
            if conn.out.len() >= 256 * 1024 && conn.flush().await.is_err() {
                return Flow::Close;
            }
        }
        let State::Selected(_, sel) = &mut self.state else {
            return Flow::Continue;
        };
        // RFC 7162 §3.2.10.2: VANISHED may go out during a UID FETCH.
        if let Err(e) = sel.sync(&self.ctx, conn, uid && qresync).await {
            return self.store_error(conn, tag, &e);
        }
        if let Some(cte) = unknown_cte {
            // RFC 3516 §4.2 / RFC 9051 §6.4.5: BINARY of an encoding we cannot decode.
            conn.tagged(
                tag,
                "NO",
                &format!("[UNKNOWN-CTE] cannot decode content-transfer-encoding {cte}"),
            );
        } else if missing {
            // Dovecot's wording, which IMAP test tools recognise.
            conn.tagged(
                tag,
                "NO",
                "[EXPUNGEISSUED] Some of the requested messages no longer exist",
            );
        } else {
            conn.tagged(tag, "OK", "FETCH completed");
        }
        Flow::Continue
    }
}

/// Build `* n FETCH (...)` for one message; fails with the encoding's
/// name when a BINARY item asks for one we cannot decode.
fn fetch_one(t: &Target<'_>, shape: Shape, atts: &[FetchAtt], report_flags: bool) -> Result<Vec<u8>, String> {
    let info = t.info;
    let raw_bytes: &[u8] = t.raw.unwrap_or_default();
    let mut line = FetchResponse::new(t.seq);
    // RFC 9051 §6.4.9: UID FETCH always returns UID; RFC 7162 §3.2.4: so
    // does a \Seen this FETCH set, for a CONDSTORE client.
    let unasked_uid = shape.uid || (report_flags && shape.condstore);
    if unasked_uid && !atts.contains(&FetchAtt::Uid) {
        line.uid(t.uid);
    }
    if shape.modseq || (report_flags && shape.condstore && !atts.contains(&FetchAtt::ModSeq)) {
        line.modseq(t.modseq);
    }
    for att in atts {
        let mut it = Vec::new();
        match att {
            FetchAtt::ModSeq => {
                line.modseq(t.modseq);
                continue;
            }
            // RFC 8970 §3: computed at delivery, so LAZY never waits either.
            FetchAtt::Preview { .. } => {
                let Some(info) = info else { continue };
                it.extend_from_slice(b"PREVIEW ");
                push_string(&mut it, info.preview.as_bytes());
            }
            // RFC 8474 §5.1–5.2 (a message expunged elsewhere has no thread any more).
            FetchAtt::EmailId => match t.ids {
                Some((e, _)) => it.extend_from_slice(
                    format!("EMAILID ({})", super::object_id(letterbox_jmap_proto::IdKind::Email, e)).as_bytes(),
                ),
                None => it.extend_from_slice(b"EMAILID NIL"),
            },
            FetchAtt::ThreadId => match t.ids {
                Some((_, th)) if th > 0 => it.extend_from_slice(
                    format!(
                        "THREADID ({})",
                        super::object_id(letterbox_jmap_proto::IdKind::Thread, th)
                    )
                    .as_bytes(),
                ),
                _ => it.extend_from_slice(b"THREADID NIL"),
            },
            FetchAtt::Uid => {
                line.uid(t.uid);
                continue;
            }
            FetchAtt::Flags => {
                line.flags(t.flags);
                continue;
            }
            FetchAtt::InternalDate => {
                let Some(date) = t.date else { continue };
                it.extend_from_slice(b"INTERNALDATE ");
                it.extend_from_slice(format_date_time(date).as_bytes());
            }
            FetchAtt::Rfc822Size => {
                let Some(size) = t.size else { continue };
                it.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes())
            }
            FetchAtt::Envelope | FetchAtt::Body | FetchAtt::BodyStructure => {
                let Some(info) = info else { continue };
                let (name, value) = match att {
                    FetchAtt::Envelope => ("ENVELOPE ", &info.envelope),
                    FetchAtt::Body => ("BODY ", &info.body),
                    _ => ("BODYSTRUCTURE ", &info.bodystructure),
                };
                it.extend_from_slice(name.as_bytes());
                it.extend_from_slice(value);
            }
            FetchAtt::Rfc822 | FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
                let Some(info) = info else { continue };
                let (name, kind) = match att {
                    FetchAtt::Rfc822 => ("RFC822 ", SectionKind::Full),
                    FetchAtt::Rfc822Header => ("RFC822.HEADER ", SectionKind::Header),
                    _ => ("RFC822.TEXT ", SectionKind::Text),
                };
                let spec = SectionSpec { part: Vec::new(), kind };
                it.extend_from_slice(name.as_bytes());
                push_content(&mut it, &section(raw_bytes, info, &spec).unwrap_or_default());
            }
            FetchAtt::Section {
                text, spec, partial, ..
            } => {
                let Some(info) = info else { continue };
                // A part that does not exist is empty (as Dovecot answers).
                let data = section(raw_bytes, info, spec).unwrap_or_default();
                it.extend_from_slice(format!("BODY[{text}]").as_bytes());
                if let Some((start, _)) = partial {
                    it.extend_from_slice(format!("<{start}>").as_bytes());
                }
                it.push(b' ');
                push_content(&mut it, apply_partial(&data, *partial));
            }
            FetchAtt::Binary { part, partial, .. } => {
                let Some(info) = info else { continue };
                let data = binary_or_err(raw_bytes, info, part)?;
                it.extend_from_slice(format!("BINARY[{}]", dotted(part)).as_bytes());
                if let Some((start, _)) = partial {
                    it.extend_from_slice(format!("<{start}>").as_bytes());
                }
                it.push(b' ');
                push_content(&mut it, apply_partial(&data, *partial));
            }
            FetchAtt::BinarySize(part) => {
                let Some(info) = info else { continue };
                let data = binary_or_err(raw_bytes, info, part)?;
                it.extend_from_slice(format!("BINARY.SIZE[{}] {}", dotted(part), data.len()).as_bytes());
            }
        }
        line.item().extend_from_slice(&it);
    }
    if report_flags {
        line.flags(t.flags);
    }
    Ok(line.finish())
}

/// Message content as a literal. RFC 9051 §4.3 allows a NUL only inside a
/// `literal8` (RFC 3516 §4.3), and RFC 3516 §4.3 asks for an ordinary
/// literal when there is none, so the marker depends on the data. Stored
/// messages hold NULs only when they arrived that way outside IMAP (a
/// literal8 APPEND has its binary parts re-encoded as base64): sending them
/// as literal8 keeps every byte, where an ordinary literal would break the
/// protocol.
fn push_content(out: &mut Vec<u8>, data: &[u8]) {
    if data.contains(&0) {
        out.push(b'~');
    }
    push_literal(out, data);
}

fn dotted(part: &[u32]) -> String {
    part.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

/// BINARY content. A part that does not exist, or whose encoding is
/// damaged beyond the decoder's leniency, is empty (as Dovecot answers);
/// an unknown encoding fails the FETCH with UNKNOWN-CTE.
fn binary_or_err(raw: &[u8], info: &MessageInfo, part: &[u32]) -> Result<Vec<u8>, String> {
    match binary(raw, info, part) {
        Ok(d) => Ok(d),
        Err(BinaryError::UnknownCte(cte)) => Err(cte),
        Err(BinaryError::NoSuchPart | BinaryError::Invalid(_)) => Ok(Vec::new()),
    }
}
