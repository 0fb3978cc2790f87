//! The one pipeline every local delivery goes through (ARCHITECTURE.md,
//! "Inbound trust"): trace fields → authentication results → policy →
//! spam verdict → (later: Sieve) → store. SMTP (port 25 and submission),
//! the queue worker's reports and `letterbox deliver` hand it an
//! [`Arrival`]; it answers with what was stored or why it was refused, and
//! nothing is stored unless everything the answer promises committed.

pub mod dmarc;
pub mod fields;
mod policy;
pub mod reputation;
pub mod spam;

pub use policy::{DmarcRejectAction, PolicyConfig};
pub use reputation::ReputationConfig;
pub use spam::{SpamConfig, Verdict};

use ipnet::IpNet;
use letterbox_mailauth::{AuthReport, Client, Iprev, SpfCheck, Verifier};
use letterbox_store::{
    Accepted, DeliveryTarget, LocalCopy, LocalDsn, NewMessage, OutboundMessage, OverQuota, SharedStore, SpecialUse,
    StoreError,
};
use std::net::IpAddr;
use std::sync::Arc;

/// Settings of the pipeline (`[inbound]`).
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Check SPF/DKIM/ARC/DMARC/iprev of mail from outside.
    pub checks: bool,
    /// Clients whose mail is not checked (RFC 8601 `none`): local relays.
    pub trusted_networks: Vec<IpNet>,
    pub policy: PolicyConfig,
    pub spam: SpamConfig,
    /// Deadline of each group of authentication lookups.
    pub dns_timeout: std::time::Duration,
    /// Early talkers, rate limits, greylisting.
    pub reputation: ReputationConfig,
    /// Send daily DMARC aggregate reports to domains that ask.
    pub dmarc_reports: bool,
    /// The From: of those reports.
    pub dmarc_report_from: String,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            checks: true,
            trusted_networks: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            policy: PolicyConfig::default(),
            spam: SpamConfig::default(),
            dns_timeout: std::time::Duration::from_secs(10),
            reputation: ReputationConfig::default(),
            dmarc_reports: false,
            dmarc_report_from: "postmaster@localhost".into(),
        }
    }
}

/// Where a message comes from; decides which checks apply.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Over SMTP from an unauthenticated client.
    Smtp(Box<SmtpClient>),
    /// From an authenticated user (submission): never checked.
    Submission,
    /// Made by this server (delivery reports, `letterbox deliver`).
    Local,
}

/// What an SMTP transaction knows of its client.
#[derive(Debug, Clone)]
pub struct SmtpClient {
    pub ip: IpAddr,
    pub helo: String,
    /// Envelope sender, empty for the null sender.
    pub mail_from: String,
    /// SPF of this transaction, `None` when the client is not checked.
    pub spf: Option<SpfCheck>,
    /// iprev of the connection, `None` when not checked.
    pub iprev: Option<Iprev>,
}

/// One message on its way to local mailboxes (and the queue).
#[derive(Debug, Clone)]
pub struct Arrival {
    pub origin: Origin,
    /// The message as received, without our trace fields.
    pub message: Vec<u8>,
    /// Fields to put on top of local copies: `Return-Path:`, `Received:`.
    pub trace: String,
    /// The mailboxes it goes to unless a verdict moves it.
    pub targets: Vec<DeliveryTarget>,
    pub local_dsn: Vec<LocalDsn>,
    /// Remote recipients and forwards, as the caller built them.
    pub outbound: OutboundMessage,
    pub over_quota: OverQuota,
    /// The pending JMAP submission this sends (released in the same commit).
    pub submission: Option<letterbox_store::SubmissionRelease>,
}

impl Arrival {
    /// A message this server writes (delivery reports, vacation replies,
    /// DMARC reports) from the null sender (RFC 5321 §4.5.5: nothing
    /// answers it), to local `accounts` and `remote` recipients.
    pub fn from_null_sender(
        raw: Vec<u8>,
        accounts: &[letterbox_store::AccountId],
        remote: Vec<letterbox_store::OutboundRecipient>,
    ) -> Arrival {
        Arrival {
            origin: Origin::Local,
            message: raw.clone(),
            trace: "Return-Path: <>\r\n".into(),
            targets: letterbox_store::inbox_targets(accounts),
            local_dsn: Vec::new(),
            outbound: OutboundMessage {
                sender: String::new(),
                recipients: remote,
                raw,
                envid: None,
                ret: None,
            },
            over_quota: OverQuota::Bounce,
            submission: None,
        }
    }
}

/// A message refused before anything was stored: the SMTP reply to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub status: &'static str,
    pub text: String,
}

/// What became of an [`Arrival`].
#[derive(Debug)]
pub enum Delivery {
    /// Committed; the caller may now say so.
    Accepted {
        accepted: Accepted,
        /// Accounts whose copy went to Junk.
        junked: usize,
    },
    /// Nothing stored.
    Refused(Refusal),
}

/// The pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Inbound {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    hostname: String,
    verifier: Option<Verifier>,
    reputation: reputation::Reputation,
    config: InboundConfig,
}

impl Inbound {
    /// `verifier` is `None` when no checks are wanted (tests of other parts).
    pub fn new(store: SharedStore, hostname: &str, verifier: Option<Verifier>, config: InboundConfig) -> Inbound {
        Inbound {
            inner: Arc::new(Inner {
                store,
                hostname: hostname.to_string(),
                verifier: verifier.filter(|_| config.checks),
                reputation: reputation::Reputation::new(config.reputation.clone()),
                config,
            }),
        }
    }

    /// Whether mail from `ip` gets the authentication checks.
    pub fn checks(&self, ip: IpAddr) -> bool {
        self.inner.verifier.is_some() && !self.is_trusted(ip)
    }

    /// Whether `ip` is in `trusted_networks` (local relays).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.inner.config.trusted_networks.iter().any(|n| n.contains(&ip))
    }

    /// How long to wait before greeting `ip` (early-talker test); zero
    /// for trusted networks.
    pub fn greet_pause(&self, ip: IpAddr) -> std::time::Duration {
        if self.is_trusted(ip) {
            std::time::Duration::ZERO
        } else {
            self.inner.config.reputation.greet_pause
        }
    }

    /// A refusal of MAIL FROM from `ip` (rate limits), if any.
    pub fn check_mail_from(&self, ip: IpAddr, sender: &str) -> Option<Refusal> {
        if self.is_trusted(ip) {
            return None;
        }
        self.inner.reputation.mail_from(ip, sender, std::time::Instant::now())
    }

    /// A refusal of RCPT from `ip` (greylisting), if any.
    pub fn check_rcpt(&self, ip: IpAddr, sender: &str, rcpt: &str) -> Option<Refusal> {
        if self.is_trusted(ip) {
            return None;
        }
        self.inner.reputation.rcpt(ip, sender, rcpt, std::time::Instant::now())
    }

    /// SPF of a transaction (started when MAIL FROM arrives).
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> Option<SpfCheck> {
        match &self.inner.verifier {
            Some(v) if self.checks(ip) => Some(v.spf(ip, helo, mail_from).await),
            _ => None,
        }
    }

    /// iprev of a connection (started when it opens).
    pub async fn iprev(&self, ip: IpAddr) -> Option<Iprev> {
        match &self.inner.verifier {
            Some(v) if self.checks(ip) => Some(v.iprev(ip).await),
            _ => None,
        }
    }

    /// Run the pipeline and store the message.
    pub async fn deliver(&self, a: Arrival) -> Result<Delivery, StoreError> {
        let inner = &self.inner;
        // Step 2: authentication results (step 1, the trace, is `a.trace`).
        let auth = self.authenticate(&a).await;
        let outside = matches!(a.origin, Origin::Smtp(_));
        // Fields from outside that would speak in our name go.
        // Shared with the spam analysis on its blocking thread, not copied.
        let message = Arc::new(match outside {
            true => fields::remove_ours(&a.message, &inner.hostname).unwrap_or(a.message),
            false => a.message,
        });
        // Our own reports and the administrator's `deliver` carry no
        // verdict; everything else says what was (not) checked.
        let auth_field = match (&auth, &a.origin) {
            (Some(r), _) => r.header.clone(),
            (None, Origin::Local) => String::new(),
            (None, _) => letterbox_mailauth::verify::not_checked(&inner.hostname),
        };
        // Step 3: policy.
        // (Only a message that did not pass DMARC can be a forgery.)
        let own_from = match &auth {
            Some(r) if !r.from_domain.is_empty() && r.dmarc != letterbox_mailauth::Outcome::Pass => {
                let domains = inner.store.list_domains().await?;
                domains.iter().any(|d| d.name.eq_ignore_ascii_case(&r.from_domain))
            }
            _ => false,
        };
        let decision = policy::decide(&inner.config.policy, auth.as_ref(), own_from);
        if let policy::Decision::Refuse(r) = decision {
            if let Some(a) = &auth {
                self.record_dmarc(a, letterbox_mailauth::dmarc_report::Disposition::Reject);
            }
            return Ok(Delivery::Refused(r));
        }
        // Step 4: the spam verdict (content rules and the sender's facts).
        let accounts = distinct_accounts(&a.targets);
        let verdict = if matches!(a.origin, Origin::Submission | Origin::Local) {
            None
        } else {
            let facts = spam::Facts {
                auth: auth.clone(),
                // A trusted relay's address and HELO say nothing of the sender.
                client: match &a.origin {
                    Origin::Smtp(c) if !self.is_trusted(c.ip) => Some((c.ip, c.helo.clone())),
                    _ => None,
                },
                hostname: inner.hostname.clone(),
            };
            Some(
                spam::judge(
                    inner.store.clone(),
                    &inner.config.spam,
                    message.clone(),
                    facts,
                    &accounts,
                )
                .await?,
            )
        };
        if let Some(v) = &verdict {
            if let Some(r) = v.refusal() {
                return Ok(Delivery::Refused(r));
            }
        }
        // Step 6: store. Accounts with the same verdict share one copy.
        let now = letterbox_store::unix_now();
        let mut copies: Vec<(String, bool, Vec<DeliveryTarget>)> = Vec::new();
        let mut junked = 0;
        for account in &accounts {
            let (field, junk) = match &verdict {
                Some(v) => {
                    let per = v.for_account(*account);
                    (per.header(), per.junk || decision == policy::Decision::Junk)
                }
                None => (String::new(), false),
            };
            junked += usize::from(junk);
            let targets = a.targets.iter().filter(|t| t.account_id == *account).map(|t| {
                let mut t = t.clone();
                if junk {
                    t.special_use = Some(SpecialUse::Junk);
                    t.mailbox = "Junk".into();
                }
                t
            });
            match copies.iter_mut().find(|(f, j, _)| *f == field && *j == junk) {
                Some((_, _, ts)) => ts.extend(targets),
                None => copies.push((field, junk, targets.collect())),
            }
        }
        let locals = copies
            .into_iter()
            .map(|(spam_field, _, targets)| {
                let mut raw = Vec::with_capacity(a.trace.len() + auth_field.len() + spam_field.len() + message.len());
                raw.extend_from_slice(a.trace.as_bytes());
                raw.extend_from_slice(auth_field.as_bytes());
                raw.extend_from_slice(spam_field.as_bytes());
                raw.extend_from_slice(&message);
                LocalCopy {
                    message: NewMessage {
                        raw,
                        flags: Vec::new(),
                        internal_date: now,
                    },
                    targets,
                }
            })
            .collect();
        if let Some(a) = &auth {
            use letterbox_mailauth::dmarc_report::Disposition;
            let done = if decision == policy::Decision::Junk {
                Disposition::Quarantine
            } else {
                Disposition::None
            };
            self.record_dmarc(a, done);
        }
        let accepted = inner
            .store
            .accept(letterbox_store::Intake {
                locals,
                local_dsn: a.local_dsn,
                outbound: a.outbound,
                over_quota: a.over_quota,
                submission: a.submission,
            })
            .await?;
        Ok(Delivery::Accepted { accepted, junked })
    }

    /// Step 2: SPF (already known), iprev, DKIM, ARC, DMARC of mail from outside.
    async fn authenticate(&self, a: &Arrival) -> Option<AuthReport> {
        let Origin::Smtp(c) = &a.origin else { return None };
        let verifier = self.inner.verifier.as_ref()?;
        if !self.checks(c.ip) {
            return None;
        }
        let spf = match &c.spf {
            Some(s) => s.clone(),
            None => verifier.spf(c.ip, &c.helo, &c.mail_from).await,
        };
        let iprev = match &c.iprev {
            Some(i) => i.clone(),
            None => verifier.iprev(c.ip).await,
        };
        let client = Client {
            ip: c.ip,
            helo: &c.helo,
            mail_from: &c.mail_from,
        };
        Some(verifier.verify(&client, &a.message, &spf, &iprev).await)
    }
}

fn distinct_accounts(targets: &[DeliveryTarget]) -> Vec<letterbox_store::AccountId> {
    let mut accounts: Vec<_> = Vec::new();
    for t in targets {
        if !accounts.contains(&t.account_id) {
            accounts.push(t.account_id);
        }
    }
    accounts
}
