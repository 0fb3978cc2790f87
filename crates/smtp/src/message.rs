//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), then delivery: local
//! copies, remote recipients and bounces in one store transaction
//! (`Store::accept`) before the reply.

use crate::envelope::Transaction;
use crate::headers::{header_facts, new_id, received, return_path, submission_additions, with_protocol, Trace};
use crate::session::{Flow, ReadError, Reader, Session};
use letterbox_inbound::{Arrival, Delivery, Origin, SmtpClient};
use letterbox_net::LineError;
use letterbox_smtp_proto::{DataError, DataReceiver, DataStep};
use letterbox_store::{OutboundMessage, OverQuota, StoreError};
use std::sync::Arc;

/// Bytes read per step while draining a refused BDAT chunk.
const DRAIN_CHUNK: usize = 64 * 1024;

impl Session {
    /// Common checks before message data; `None` when data may follow.
    fn data_refusal(&self) -> Option<(u16, &'static str, &'static str)> {
        match &self.tx {
            None => Some((503, "5.5.1", "Need MAIL and RCPT first")),
            // RFC 5321 §3.3: no valid recipients → 554 (or 503).
            Some(tx) if tx.rcpt_count == 0 => Some((554, "5.5.1", "No valid recipients")),
            Some(_) => None,
        }
    }

    fn read_failed(&mut self, e: ReadError) -> Flow {
        match e {
            ReadError::Gone => {}
            ReadError::Timeout => self.say(421, "4.4.2", "Timeout during message transfer, closing connection"),
            ReadError::Shutdown => self.say(421, "4.3.2", "Service shutting down"),
        }
        Flow::Close
    }

    /// DATA: 354, then lines until `CRLF.CRLF`.
    pub(crate) async fn data(&mut self, reader: &mut Reader) -> Flow {
        if let Some((c, e, t)) = self.data_refusal() {
            self.say(c, e, t);
            return Flow::Continue;
        }
        if self.tx.as_ref().is_some_and(|t| t.chunks.is_some()) {
            self.say(503, "5.5.1", "DATA cannot follow BDAT");
            return Flow::Continue;
        }
        self.say(354, "2.0.0", "Start mail input; end with <CRLF>.<CRLF>");
        let mut rx = DataReceiver::new(self.ctx.config.max_message_size);
        let mut long_line = false;
        let mut room = None;
        let mut no_room = false;
        loop {
            match self.read_line(reader, self.ctx.config.max_data_line).await {
                Ok(Ok(line)) => {
                    if rx.line(&line.content, line.is_crlf()) == DataStep::Done {
                        break;
                    }
                    if !no_room && !self.ctx.buffers.cover(&mut room, rx.len()) {
                        // Read on to the end (to stay in sync), keeping nothing.
                        no_room = true;
                        rx = DataReceiver::new(0);
                    }
                }
                Ok(Err(_)) => long_line = true,
                Err(e) => return self.read_failed(e),
            }
        }
        let Some(tx) = self.tx.take() else {
            return Flow::Continue;
        };
        self.transactions += 1;
        if no_room {
            self.say(452, "4.3.1", "Insufficient system storage; try again later");
            return Flow::Continue;
        }
        match rx.finish() {
            Err(DataError::TooLarge) => self.say(552, "5.3.4", "Message size exceeds fixed maximum message size"),
            // RFC 5321 §2.3.8: lines end in CRLF only (this also defeats SMTP smuggling).
            Err(DataError::BareLineEnding) => {
                self.say(550, "5.6.0", "Message contains a bare CR or LF; use CRLF line endings")
            }
            Err(DataError::Nul) => self.say(550, "5.6.0", "Message contains a NUL octet; send it with BDAT"),
            Ok(_) if long_line => self.say(
                550,
                "5.6.0",
                format!(
                    "Message has a line longer than {} octets",
                    self.ctx.config.max_data_line.saturating_sub(2)
                ),
            ),
            Ok(raw) => self.finish_message(tx, raw).await,
        }
        drop(room);
        Flow::Continue
    }

    /// BDAT: a chunk of exactly `size` octets; `LAST` ends the message.
    pub(crate) async fn bdat(&mut self, reader: &mut Reader, size: u64, last: bool) -> Flow {
        let max = self.ctx.config.max_message_size as u64;
        let refusal = self.data_refusal();
        let accept = refusal.is_none()
            && self.tx.as_ref().is_some_and(|t| {
                !t.chunks_too_large && t.chunks.as_ref().map_or(0, |c| c.len() as u64).saturating_add(size) <= max
            });
        let accept = accept && {
            let buffers = self.ctx.buffers.clone();
            self.tx.as_mut().is_some_and(|t| {
                let total = t.chunks.as_ref().map_or(0, Vec::len) + size as usize;
                let ok = !t.no_room && buffers.cover(&mut t.room, total);
                if !ok && !t.no_room {
                    t.no_room = true;
                    t.chunks = Some(Vec::new());
                    t.room = None;
                }
                ok
            })
        };
        if accept {
            let Some(tx) = self.tx.as_mut() else {
                return Flow::Continue;
            };
            let mut buf = tx.chunks.take().unwrap_or_default();
            let read = tokio::time::timeout(
                self.ctx.config.command_timeout,
                reader.read_exact_into(size as usize, &mut buf),
            );
            let outcome = tokio::select! {
                r = read => r,
                _ = self.shutdown.wait() => return self.read_failed(ReadError::Shutdown),
            };
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(LineError::Eof | LineError::Io(_) | LineError::TooLong { .. })) => return Flow::Close,
                Err(_) => return self.read_failed(ReadError::Timeout),
            }
            if let Some(tx) = self.tx.as_mut() {
                tx.chunks = Some(buf);
            }
        } else {
            // RFC 3030 §2: a refused chunk is still read, to stay in sync.
            if let Err(e) = self.drain(reader, size).await {
                return self.read_failed(e);
            }
            if let Some((c, e, t)) = refusal {
                self.say(c, e, t);
                return Flow::Continue;
            }
            if let Some(tx) = self.tx.as_mut().filter(|t| !t.no_room) {
                tx.chunks_too_large = true;
                tx.chunks = Some(Vec::new());
            }
        }
        if !last {
            self.say(250, "2.0.0", format!("{size} octets received"));
            return Flow::Continue;
        }
        let Some(mut tx) = self.tx.take() else {
            return Flow::Continue;
        };
        self.transactions += 1;
        if tx.no_room {
            self.say(452, "4.3.1", "Insufficient system storage; try again later");
            return Flow::Continue;
        }
        if tx.chunks_too_large {
            self.say(552, "5.3.4", "Message size exceeds fixed maximum message size");
            return Flow::Continue;
        }
        let mut raw = tx.chunks.take().unwrap_or_default();
        // Issue 18: lines end in CRLF only (RFC 5321 §2.3.8); a bare CR or
        // LF relayed on over DATA is how SMTP smuggling works, so BDAT
        // content gets them made CRLF. BINARYMIME (RFC 3030 §3) content is
        // binary and kept as sent.
        if tx.params.body != letterbox_smtp_proto::BodyType::BinaryMime && has_bare_line_ending(&raw) {
            raw = crlf_only(&raw);
            // The added CRs count: the size limit holds for what is stored.
            if raw.len() > self.ctx.config.max_message_size {
                self.say(552, "5.3.4", "Message size exceeds fixed maximum message size");
                return Flow::Continue;
            }
        }
        self.finish_message(tx, raw).await;
        Flow::Continue
    }

    async fn drain(&mut self, reader: &mut Reader, mut size: u64) -> Result<(), ReadError> {
        let mut scratch = Vec::with_capacity(DRAIN_CHUNK);
        while size > 0 {
            let n = size.min(DRAIN_CHUNK as u64) as usize;
            scratch.clear();
            let limit = self
                .ctx
                .config
                .command_timeout
                .min(self.deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(limit, reader.read_exact_into(n, &mut scratch)).await {
                Ok(Ok(())) => size -= n as u64,
                Ok(Err(_)) => return Err(ReadError::Gone),
                Err(_) => return Err(ReadError::Timeout),
            }
        }
        Ok(())
    }

    /// Add trace headers, check a submission's From:, then commit local
    /// copies, the queue entry for remote recipients and bounces for
    /// recipients over quota in one store transaction, and answer with its
    /// outcome: 250 only once it committed, 452/552 when the quota rule
    /// refuses the message, 451 4.3.0 on any storage failure (nothing kept).
    async fn finish_message(&mut self, mut tx: Transaction, raw: Vec<u8>) {
        let mut prefix = String::new();
        if let Some(user) = self.user.clone().filter(|_| self.role.is_submission()) {
            let facts = header_facts(&raw);
            let own = match self.ctx.store.sender_addresses(user.account_id).await {
                Ok(o) => o,
                Err(e) => return self.store_failed(&e.to_string()),
            };
            if facts.from.is_empty() {
                self.say(550, "5.7.1", "Message has no From: address");
                return;
            }
            if facts.from_fields > 1 {
                // RFC 5322 §3.6: one From: field; readers show different ones.
                self.say(550, "5.7.1", "Message has more than one From: field");
                return;
            }
            if let Some(bad) = facts
                .authors
                .iter()
                .find(|f| !own.iter().any(|o| o.eq_ignore_ascii_case(f)))
            {
                self.say(550, "5.7.1", format!("Author address <{bad}> is not yours"));
                return;
            }
            prefix.push_str(&submission_additions(&facts, &self.ctx.config.hostname));
            if let (Some(signer), Some(from)) = (&self.ctx.signer, facts.from.first()) {
                // RFC 6376: sign as the From: domain, so DMARC alignment holds.
                let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or_default().to_string();
                let mut signed = prefix.clone().into_bytes();
                signed.extend_from_slice(&raw);
                // Hashing the whole message and an RSA signature: CPU work
                // off the async workers (issue 18).
                let (signer, d) = (signer.clone(), domain.clone());
                let result = tokio::task::spawn_blocking(move || signer.sign(&d, &signed))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                match result {
                    Ok(Some(fields)) => prefix.insert_str(0, &fields),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(session = self.info.session_id, domain, error = %e, "DKIM signing failed")
                    }
                }
            }
        }
        let id = new_id();
        let single_rcpt = (tx.rcpt_count == 1).then(|| {
            tx.local_rcpts
                .first()
                .cloned()
                .or_else(|| tx.remote.first().map(|r| r.address.clone()))
                .unwrap_or_default()
        });
        let tls = self.tls.as_ref().map(|t| (t.version.clone(), t.cipher.clone()));
        let trace = Trace {
            helo: self.helo.as_deref().unwrap_or("unknown"),
            peer_ip: self.info.peer.ip().to_string(),
            hostname: &self.ctx.config.hostname,
            with: with_protocol(self.esmtp, tx.params.smtputf8, tls.is_some(), self.user.is_some()),
            id: &id,
            tls,
            user: self.user.as_ref().map(|u| u.address.as_str()),
            for_rcpt: single_rcpt.as_deref(),
        };
        let received_field = received(&trace);
        let mut message = received_field.clone().into_bytes();
        message.extend_from_slice(prefix.as_bytes());
        message.extend_from_slice(&raw);
        let sender = tx.from.as_ref().map(|p| p.address()).unwrap_or_default();
        let intake_sender = sender.clone();
        let origin = if self.role.is_submission() {
            Origin::Submission
        } else {
            let spf = match tx.spf.as_mut() {
                Some(p) => p.get().await,
                None => None,
            };
            let iprev = match self.iprev.as_mut() {
                Some(p) => p.get().await,
                None => None,
            };
            Origin::Smtp(Box::new(SmtpClient {
                ip: self.info.peer.ip(),
                helo: self.helo.clone().unwrap_or_default(),
                mail_from: sender.clone(),
                spf,
                iprev,
            }))
        };
        // What local copies get: the submission's additions (signature,
        // Message-ID) are part of the message; Return-Path and Received are trace.
        let mut local_message = prefix.into_bytes();
        local_message.extend_from_slice(&raw);
        let arrival = Arrival {
            origin,
            message: local_message,
            trace: format!("{}{received_field}", return_path(&sender)),
            targets: letterbox_store::inbox_targets(&tx.accounts),
            local_dsn: tx.local_dsn,
            outbound: OutboundMessage {
                sender,
                recipients: tx.remote,
                raw: message,
                envid: tx.params.envid.clone(),
                // RET=FULL from an unauthenticated sender to a forward
                // would mirror the message to a possibly forged address.
                ret: if tx.unauth_forward {
                    tx.params.ret.map(|_| "HDRS".to_string())
                } else {
                    tx.params.ret.map(|r| r.as_str().to_string())
                },
            },
            over_quota: OverQuota::Bounce,
            submission: None,
        };
        let remote = arrival.outbound.recipients.len();
        // People a user writes to are trusted senders (the spam verdict).
        let correspondents: Option<(letterbox_store::AccountId, Vec<String>)> =
            self.user.as_ref().filter(|_| self.role.is_submission()).map(|u| {
                let mut to = tx.local_rcpts.clone();
                to.extend(arrival.outbound.recipients.iter().map(|r| r.address.clone()));
                (u.account_id, to)
            });
        let after = self
            .ctx
            .after_delivery
            .clone()
            .filter(|_| !arrival.targets.is_empty())
            .map(|h| (h, Arc::new(letterbox_mail::header_section(&raw).to_vec())));
        // RFC 5321 §6.1: the reply follows the one commit of everything the
        // 250 promises (local copies, queue entry, bounces), never precedes it.
        match self.ctx.inbound.deliver(arrival).await {
            Ok(Delivery::Accepted { accepted, junked }) => {
                if !accepted.bounced.is_empty() || !accepted.dropped.is_empty() {
                    tracing::warn!(session = self.info.session_id, peer = %self.info.peer, id = %id,
                        bounced = ?accepted.bounced, dropped = ?accepted.dropped,
                        "recipients over quota at delivery time");
                }
                tracing::info!(session = self.info.session_id, peer = %self.info.peer, id = %id,
                    local = accepted.delivered.len(), junked, remote, bounced = accepted.bounced.len(),
                    queue_id = ?accepted.queue_id, size = raw.len(), "message accepted");
                self.say(250, "2.0.0", format!("OK: queued as {id}"));
                metrics::counter!(letterbox_net::metrics::MESSAGES_ACCEPTED, "protocol" => self.protocol_name())
                    .increment(1);
                if let Some((hook, head)) = after {
                    let accounts = accepted.delivered.iter().map(|d| d.0).collect();
                    hook.delivered(&intake_sender, head, accounts);
                }
                if let Some((account, to)) = correspondents {
                    if let Err(e) = self.ctx.store.note_correspondents(account, &to).await {
                        tracing::warn!(session = self.info.session_id, error = %e, "cannot record correspondents");
                    }
                }
            }
            Ok(Delivery::Refused(r)) => {
                metrics::counter!(letterbox_net::metrics::MESSAGES_REFUSED, "protocol" => self.protocol_name(),
                    "reason" => "policy")
                .increment(1);
                tracing::info!(session = self.info.session_id, peer = %self.info.peer, id = %id,
                    code = r.code, reason = %r.text, "message refused");
                self.say(r.code, r.status, r.text);
            }
            // RFC 3463 §3.3 X.2.2; RFC 5321 §4.2.2: 452 when full for now, 552 for good.
            Err(StoreError::QuotaExceeded { permanent, account }) => {
                metrics::counter!(letterbox_net::metrics::MESSAGES_REFUSED, "protocol" => self.protocol_name(),
                    "reason" => "quota")
                .increment(1);
                tracing::warn!(session = self.info.session_id, peer = %self.info.peer, id = %id, account,
                    permanent, "message refused: over quota at delivery time");
                if permanent {
                    self.say(552, "5.2.2", "Message exceeds the recipient's storage quota");
                } else {
                    self.say(452, "4.2.2", "Mailbox full, try again later");
                }
            }
            Err(e) => self.store_failed(&e.to_string()),
        }
    }

    fn protocol_name(&self) -> &'static str {
        if self.role.is_submission() {
            "submission"
        } else {
            "smtp"
        }
    }

    fn store_failed(&mut self, error: &str) {
        metrics::counter!(letterbox_net::metrics::MESSAGES_REFUSED, "protocol" => self.protocol_name(),
            "reason" => "storage")
        .increment(1);
        tracing::error!(session = self.info.session_id, peer = %self.info.peer, error, "store failure");
        self.say(451, "4.3.0", "Local error in processing, try again later");
    }
}

/// Whether `raw` has a CR not followed by LF, or an LF not preceded by CR.
fn has_bare_line_ending(raw: &[u8]) -> bool {
    raw.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => raw.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || raw[i - 1] != b'\r',
        _ => false,
    })
}

/// `raw` with every bare CR and bare LF made CRLF.
fn crlf_only(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\r' if raw.get(i + 1) != Some(&b'\n') => out.extend_from_slice(b"\r\n"),
            b'\n' if i == 0 || raw[i - 1] != b'\r' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod line_ending_tests {
    #[test]
    fn bare_line_endings_become_crlf() {
        assert_eq!(super::crlf_only(b"a\r.\rb\nc\r\n"), b"a\r\n.\r\nb\r\nc\r\n");
        assert_eq!(super::crlf_only(b"\n\r"), b"\r\n\r\n");
    }

    #[test]
    fn bare_line_endings_are_found() {
        assert!(!super::has_bare_line_ending(b"a\r\nb\r\n"));
        assert!(super::has_bare_line_ending(b"a\r.\r\n"));
        assert!(super::has_bare_line_ending(b"a\n.\n"));
        assert!(super::has_bare_line_ending(b"\nx"));
        assert!(super::has_bare_line_ending(b"x\r"));
    }
}
