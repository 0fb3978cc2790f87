//! MAIL and RCPT: the envelope, relay policy and sender ownership.

use crate::session::{Flow, Session};
use crate::Role;
use letterbox_smtp_proto::{MailParams, Path, RcptParams};
use letterbox_store::{AccountId, LocalDsn, OutboundRecipient, Recipient};

/// One mail transaction, from MAIL to the end of data.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// Reverse-path; `None` is `<>`.
    pub from: Option<Path>,
    pub params: MailParams,
    /// Local accounts receiving a copy (deduplicated).
    pub accounts: Vec<AccountId>,
    /// RFC 3461 NOTIFY/ORCPT of the RCPT that first named each local
    /// account, for its bounce if it is over quota at the end of DATA.
    pub local_dsn: Vec<LocalDsn>,
    /// Accepted local recipient addresses as given (for the trace header).
    pub local_rcpts: Vec<String>,
    /// Remote recipients for the outbound queue.
    pub remote: Vec<OutboundRecipient>,
    /// Accepted RCPTs.
    pub rcpt_count: usize,
    /// An unauthenticated sender's mail goes on to a forward: its sender
    /// may be forged, so no success reports and no full content go back.
    pub unauth_forward: bool,
    /// Room taken in the server's message-buffer budget for the chunks.
    pub room: Option<tokio::sync::OwnedSemaphorePermit>,
    /// A BDAT chunk found the budget spent: the message gets 452 4.3.1.
    pub no_room: bool,
    /// BDAT chunks so far (RFC 3030); `None` until the first BDAT.
    pub chunks: Option<Vec<u8>>,
    /// BDAT total went over the size limit; later chunks are drained.
    pub chunks_too_large: bool,
    /// SPF of this transaction, checked while the message arrives.
    pub spf: Option<crate::Pending<letterbox_mailauth::SpfCheck>>,
}

fn notify_text(p: &RcptParams) -> Option<String> {
    p.notify.map(|n| {
        let mut v = Vec::new();
        if n.never {
            v.push("NEVER");
        }
        if n.success {
            v.push("SUCCESS");
        }
        if n.failure {
            v.push("FAILURE");
        }
        if n.delay {
            v.push("DELAY");
        }
        v.join(",")
    })
}

impl Session {
    /// RFC 5321 §4.1.1.2 MAIL.
    pub(crate) async fn mail(&mut self, from: Option<Path>, params: MailParams) -> Flow {
        if self.helo.is_none() {
            self.say(503, "5.5.1", "Send EHLO or HELO first");
            return Flow::Continue;
        }
        if self.tx.is_some() {
            self.say(503, "5.5.1", "Nested MAIL command");
            return Flow::Continue;
        }
        if self.role.is_submission() && self.user.is_none() {
            self.say(530, "5.7.0", "Authentication required");
            return if self.error() {
                self.too_many_errors()
            } else {
                Flow::Continue
            };
        }
        if self.transactions >= self.ctx.config.max_transactions {
            self.say(421, "4.7.0", "Too many messages in this connection; reconnect");
            return Flow::Close;
        }
        if params.requiretls {
            // RFC 8689 is not implemented (the queue does not enforce TLS
            // to the next hop) and REQUIRETLS is not offered: accepting it
            // would promise what we do not keep (issue 18).
            self.say(555, "5.5.4", "REQUIRETLS is not supported");
            return Flow::Continue;
        }
        if params.size.is_some_and(|s| s > self.ctx.config.max_message_size as u64) {
            // RFC 1870 §6.2: a declared size over the fixed maximum is a 552.
            self.say(552, "5.3.4", "Message size exceeds fixed maximum message size");
            return Flow::Continue;
        }
        if let Some(user) = self.user.clone().filter(|_| self.role.is_submission()) {
            let Some(path) = &from else {
                self.say(550, "5.7.1", "Submission needs a sender address you own");
                return Flow::Continue;
            };
            match self.ctx.store.sender_addresses(user.account_id).await {
                Ok(own) if own.iter().any(|a| a.eq_ignore_ascii_case(&path.address())) => {}
                Ok(_) => {
                    self.say(
                        550,
                        "5.7.1",
                        format!("Sender address <{}> is not yours", path.address()),
                    );
                    return Flow::Continue;
                }
                Err(e) => {
                    tracing::error!(session = self.info.session_id, error = %e, "store error in MAIL");
                    self.say(451, "4.3.0", "Temporary failure, try again later");
                    return Flow::Continue;
                }
            }
        }
        if !self.role.is_submission() {
            let sender = from.as_ref().map(|p| p.address()).unwrap_or_default();
            if let Some(r) = self.ctx.inbound.check_mail_from(self.info.peer.ip(), &sender) {
                tracing::info!(session = self.info.session_id, peer = %self.info.peer, sender, "rate limited");
                self.say(r.code, r.status, r.text);
                return Flow::Continue;
            }
        }
        // SPF needs only the client, HELO and MAIL FROM (RFC 7208 §2.2):
        // looked up while the recipients and the message arrive.
        let spf = (!self.role.is_submission() && self.ctx.inbound.checks(self.info.peer.ip())).then(|| {
            let inbound = self.ctx.inbound.clone();
            let (ip, helo) = (self.info.peer.ip(), self.helo.clone().unwrap_or_default());
            let sender = from.as_ref().map(|p| p.address()).unwrap_or_default();
            crate::Pending::spawn(async move { inbound.spf(ip, &helo, &sender).await })
        });
        self.tx = Some(Transaction {
            from,
            params,
            spf,
            ..Default::default()
        });
        self.say(250, "2.1.0", "Sender OK");
        Flow::Continue
    }

    /// RFC 5321 §4.1.1.3 RCPT.
    pub(crate) async fn rcpt(&mut self, to: Path, params: RcptParams) -> Flow {
        let Some(tx) = &self.tx else {
            self.say(503, "5.5.1", "Need MAIL before RCPT");
            return Flow::Continue;
        };
        if tx.rcpt_count >= self.ctx.config.max_recipients {
            // RFC 5321 §4.5.3.1.10: 452 for too many recipients.
            self.say(452, "4.5.3", "Too many recipients");
            return Flow::Continue;
        }
        if to.is_utf8() && !tx.params.smtputf8 {
            // RFC 6531 §3.5.
            self.say(553, "5.6.7", "UTF-8 address needs MAIL FROM with SMTPUTF8");
            return Flow::Continue;
        }
        let declared = tx.params.size.unwrap_or(0);
        let address = if to.domain.is_empty() {
            self.postmaster().await
        } else {
            to.address()
        };
        let resolved = match self.ctx.store.resolve_recipient(&address).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(session = self.info.session_id, error = %e, "store error in RCPT");
                self.say(451, "4.3.0", "Temporary failure, try again later");
                return Flow::Continue;
            }
        };
        match resolved {
            Recipient::Local(res) => {
                if !self.role.is_submission() {
                    let sender = tx.from.as_ref().map(|p| p.address()).unwrap_or_default();
                    if let Some(r) = self.ctx.inbound.check_rcpt(self.info.peer.ip(), &sender, &address) {
                        self.say(r.code, r.status, r.text);
                        return Flow::Continue;
                    }
                }
                for account in &res.accounts {
                    if let Some((code, enh, text)) = self.quota_problem(*account, declared).await {
                        self.say(code, enh, text);
                        return Flow::Continue;
                    }
                }
                let Some(tx) = self.tx.as_mut() else {
                    return Flow::Continue;
                };
                for a in res.accounts {
                    if !tx.accounts.contains(&a) {
                        tx.accounts.push(a);
                        tx.local_dsn.push(LocalDsn {
                            account_id: a,
                            notify: notify_text(&params),
                            orcpt: params.orcpt.clone(),
                        });
                    }
                }
                // Issue 18 (DSN reflection): mail from anyone on port 25 to
                // an alias that forwards must not make us send a forged
                // sender success reports with the message in them.
                let unauth = self.user.is_none();
                let forward_notify = if unauth {
                    params.notify.map(|mut n| {
                        n.success = false;
                        if !n.failure && !n.delay {
                            n.never = true;
                        }
                        n
                    })
                } else {
                    params.notify
                };
                let forward_params = RcptParams {
                    notify: forward_notify,
                    ..params.clone()
                };
                for ext in res.external {
                    tx.unauth_forward |= unauth;
                    if !tx.remote.iter().any(|r| r.address == ext) {
                        tx.remote.push(OutboundRecipient {
                            address: ext,
                            notify: notify_text(&forward_params),
                            orcpt: params.orcpt.clone(),
                        });
                    }
                }
                tx.local_rcpts.push(address);
                tx.rcpt_count += 1;
                self.say(250, "2.1.5", "Recipient OK");
            }
            Recipient::Unknown => {
                self.say(550, "5.1.1", format!("<{address}>: no such user here"));
                if self.error() {
                    return self.too_many_errors();
                }
            }
            Recipient::NotLocal if self.role == Role::Mx => {
                self.say(550, "5.7.1", "Relaying denied");
            }
            Recipient::NotLocal => {
                let Some(tx) = self.tx.as_mut() else {
                    return Flow::Continue;
                };
                if !tx.remote.iter().any(|r| r.address.eq_ignore_ascii_case(&address)) {
                    tx.remote.push(OutboundRecipient {
                        address,
                        notify: notify_text(&params),
                        orcpt: params.orcpt.clone(),
                    });
                }
                tx.rcpt_count += 1;
                self.say(250, "2.1.5", "Recipient OK");
            }
        }
        Flow::Continue
    }

    /// `<Postmaster>` without a domain (RFC 5321 §4.1.1.3) goes to the
    /// postmaster of the server's own name, or of the first local domain.
    async fn postmaster(&self) -> String {
        let host = &self.ctx.config.hostname;
        if let Ok(domains) = self.ctx.store.list_domains().await {
            if let Some(d) = domains.iter().find(|d| &d.name == host).or(domains.first()) {
                return format!("postmaster@{}", d.name);
            }
        }
        format!("postmaster@{host}")
    }

    /// RFC 5321 §4.2.2 / RFC 3463: 452 4.2.2 when full now, 552 5.2.2 when
    /// the message could never fit.
    async fn quota_problem(&self, account: AccountId, size: u64) -> Option<(u16, &'static str, String)> {
        let a = self.ctx.store.account_by_id(account).await.ok().flatten()?;
        let q = a.quota;
        if q.bytes > 0 && size > q.bytes {
            return Some((552, "5.2.2", "Message exceeds the recipient's storage quota".into()));
        }
        let full_bytes = q.bytes > 0 && a.usage.bytes + size.max(1) > q.bytes;
        let full_count = q.messages > 0 && a.usage.messages + 1 > q.messages;
        (full_bytes || full_count).then(|| (452, "4.2.2", "Mailbox full, try again later".into()))
    }
}
