//! The queue worker: claims due entries, delivers each recipient domain in
//! one SMTP transaction, records outcomes, reschedules, and reports.
//!
//! Order of durable steps per attempt, chosen so a crash loses nothing:
//! 1. a domain's transaction ends → its delivered recipients are recorded
//!    at once (a crash after that does not resend to them);
//! 2. at the end of the attempt, bounces and delay warnings are stored
//!    (delivered locally and queued in one `Store::accept`) *before* the
//!    failures that caused them are recorded, so a crash in between can
//!    duplicate a report but never lose one; a bounce that cannot be stored
//!    yet (the sender's mailbox is full) leaves its recipients in `bounce`,
//!    owed, and the next attempt reports them again (recipients over quota
//!    at intake start there too);
//! 3. `finish_attempt` records the rest and schedules the next attempt.
//!
//! A crash during a transaction leaves its recipients pending: they are
//! sent again after the restart (at most one duplicate, RFC 5321 §6.1 accepts that).

use crate::client::{Client, ClientError, Envelope, RcptResult, RcptSpec, Tls};
use crate::config::{DeliveryConfig, HostPort, SmarthostTls};
use crate::dns::{Dns, DnsError, MxAnswer};
use crate::dsn::{build_report, Action, Original, ReportRecipient};
use letterbox_net::Shutdown;
use letterbox_store::{
    AttemptEnd, ChangeKind, OutboundRecipient, QueueEntry, QueueRecipient, Recipient, RecipientOutcome,
    RecipientStatus, SharedStore,
};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

use letterbox_store::unix_now as now;

/// How a host is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HopKind {
    /// An MX, an implicit MX or a static route: opportunistic TLS.
    Mx,
    /// The configured relay: its TLS mode and AUTH.
    Smarthost,
}

#[derive(Debug, Clone)]
struct Hop {
    host: String,
    port: u16,
    kind: HopKind,
}

/// Where a domain's mail goes.
enum Route {
    Hops(Vec<Hop>),
    /// Give up on every recipient with this reason.
    Fail(String),
    /// Try again later.
    Defer(String),
}

/// One recipient's fate in this attempt.
#[derive(Debug, Clone)]
struct Fate {
    address: String,
    status: RecipientStatus,
    error: Option<String>,
    remote: Option<String>,
    /// Delivered to a server that does not relay DSN requests.
    relayed_without_dsn: bool,
}

type PoolKey = (String, SocketAddr, bool);

/// The outbound queue's worker. One per node.
pub struct Worker {
    store: SharedStore,
    /// Reports for local senders are delivered through the pipeline.
    inbound: letterbox_inbound::Inbound,
    cfg: DeliveryConfig,
    dns: Arc<dyn Dns>,
    opportunistic: Tls,
    smarthost_tls: Option<Tls>,
    total: Arc<Semaphore>,
    per_domain: Mutex<HashMap<String, Arc<Semaphore>>>,
    pool: Mutex<HashMap<PoolKey, Vec<(Client, Instant)>>>,
    wake: Notify,
    /// Entries being worked on here. A claim of one of them (its lease ran
    /// out during a long attempt) only renews the lease.
    in_flight: Mutex<std::collections::HashSet<i64>>,
}

impl Worker {
    /// `smarthost_tls` must be given when the config names a TLS smarthost.
    pub fn new(
        store: SharedStore,
        cfg: DeliveryConfig,
        dns: Arc<dyn Dns>,
        opportunistic: Tls,
        smarthost_tls: Option<Tls>,
        inbound: letterbox_inbound::Inbound,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            inbound,
            total: Arc::new(Semaphore::new(cfg.max_concurrent.max(1))),
            store,
            cfg,
            dns,
            opportunistic,
            smarthost_tls,
            per_domain: Mutex::new(HashMap::new()),
            pool: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            in_flight: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Run until `shutdown`. Deliveries in flight are abandoned at shutdown;
    /// their recipients stay pending and this node takes them up again at
    /// its next start.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        match self.store.release_leases(&self.cfg.node_id).await {
            Ok(n) if n > 0 => tracing::info!(entries = n, "resuming queue entries a previous run left"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot release old queue leases"),
        }
        let mut events = self.store.subscribe();
        let mut tasks = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(self.cfg.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claim = true;
        loop {
            if shutdown.is_triggered() {
                break;
            }
            if claim {
                self.claim_and_spawn(&mut tasks).await;
                self.prune_pool();
            }
            claim = true;
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
                ev = events.recv() => match ev {
                    // Mailbox changes are not our business.
                    Ok(e) if !matches!(e.kind, ChangeKind::Queued | ChangeKind::External) => claim = false,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => {}
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.wait() => break,
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }

    async fn claim_and_spawn(self: &Arc<Self>, tasks: &mut tokio::task::JoinSet<()>) {
        let free = self.total.available_permits();
        if free == 0 {
            return;
        }
        let lease = self.cfg.lease.as_secs() as i64;
        let entries = match self.store.claim_queue(&self.cfg.node_id, now(), lease, free).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the queue");
                return;
            }
        };
        for entry in entries {
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(entry.id)
            {
                continue;
            }
            let Ok(permit) = self.total.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            tasks.spawn(async move {
                let id = entry.id;
                if let Err(e) = me.attempt(entry).await {
                    tracing::error!(queue_id = id, error = %e, "delivery attempt failed to complete");
                }
                me.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                drop(permit);
                me.wake.notify_one();
            });
        }
    }

    /// One attempt at every pending recipient of `entry`.
    async fn attempt(&self, entry: QueueEntry) -> Result<(), letterbox_store::StoreError> {
        let raw = self.store.queue_raw(entry.id).await?;
        let mut by_domain: BTreeMap<String, Vec<&QueueRecipient>> = BTreeMap::new();
        for r in entry.recipients.iter().filter(|r| r.status == RecipientStatus::Pending) {
            let domain = r
                .address
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or("")
                .to_ascii_lowercase();
            by_domain.entry(domain).or_default().push(r);
        }
        let mut fates: Vec<Fate> = Vec::new();
        for (domain, rcpts) in by_domain {
            let limit = self.domain_semaphore(&domain);
            let _permit = limit.acquire_owned().await;
            let done = self.deliver_domain(&entry, &raw, &domain, &rcpts).await;
            let delivered: Vec<RecipientOutcome> = done
                .iter()
                .filter(|f| f.status == RecipientStatus::Delivered)
                .map(outcome)
                .collect();
            if !delivered.is_empty() {
                self.store.record_outcomes(entry.id, delivered).await?;
            }
            fates.extend(done);
        }
        // Failed before this attempt, report still owed (a local mailbox
        // over quota at intake, or a report that could not be stored yet):
        // RFC 5321 §6.1, reported now like this attempt's failures.
        fates.extend(
            entry
                .recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Bounce)
                .map(|r| Fate {
                    address: r.address.clone(),
                    status: RecipientStatus::Failed,
                    error: r.last_error.clone(),
                    remote: r.remote_mta.clone(),
                    relayed_without_dsn: false,
                }),
        );
        self.end_attempt(&entry, &raw, fates).await
    }

    async fn end_attempt(
        &self,
        entry: &QueueEntry,
        raw: &[u8],
        mut fates: Vec<Fate>,
    ) -> Result<(), letterbox_store::StoreError> {
        let t = now();
        let age = Duration::from_secs((t - entry.created).max(0) as u64);
        let expired = age >= self.cfg.max_age;
        for f in &fates {
            let result = match f.status {
                RecipientStatus::Delivered => "delivered",
                RecipientStatus::Failed => "failed",
                _ if expired => "failed",
                _ => "deferred",
            };
            metrics::counter!(letterbox_net::metrics::OUTBOUND, "result" => result).increment(1);
        }
        for f in fates
            .iter_mut()
            .filter(|f| f.status == RecipientStatus::Pending && expired)
        {
            f.status = RecipientStatus::Failed;
            let last = f.error.take().unwrap_or_else(|| "no answer".into());
            f.error = Some(format!(
                "4.4.7 gave up after {} days; last error: {last}",
                age.as_secs() / 86_400
            ));
        }
        let notify_of = |addr: &str| -> Option<String> {
            entry
                .recipients
                .iter()
                .find(|r| r.address == addr)
                .and_then(|r| r.notify.clone())
        };
        let orcpt_of = |addr: &str| -> Option<String> {
            entry
                .recipients
                .iter()
                .find(|r| r.address == addr)
                .and_then(|r| r.orcpt.clone())
        };
        let mut report: Vec<ReportRecipient> = Vec::new();
        for f in &fates {
            let notify = notify_of(&f.address);
            let action = match f.status {
                RecipientStatus::Failed if wants(notify.as_deref(), "FAILURE", true) => Action::Failed,
                RecipientStatus::Delivered if f.relayed_without_dsn && wants(notify.as_deref(), "SUCCESS", false) => {
                    Action::Relayed
                }
                _ => continue,
            };
            report.push(ReportRecipient {
                address: f.address.clone(),
                orcpt: orcpt_of(&f.address),
                action,
                error: f.error.clone(),
                remote_mta: f.remote.clone(),
            });
        }
        let mut warned = false;
        let warn_due = self.cfg.warn_after.is_some_and(|w| age >= w) && !entry.warned;
        if warn_due {
            for f in fates.iter().filter(|f| f.status == RecipientStatus::Pending) {
                let notify = notify_of(&f.address);
                if wants(notify.as_deref(), "DELAY", true) {
                    report.push(ReportRecipient {
                        address: f.address.clone(),
                        orcpt: orcpt_of(&f.address),
                        action: Action::Delayed,
                        error: f.error.clone(),
                        remote_mta: f.remote.clone(),
                    });
                    warned = true;
                }
            }
        }
        if !report.is_empty() && !entry.sender.is_empty() {
            let until = entry.created + self.cfg.max_age.as_secs() as i64;
            if let Err(e) = self.send_report(entry, raw, &report, until).await {
                let never = matches!(e, letterbox_store::StoreError::QuotaExceeded { permanent: true, .. });
                if expired || never {
                    // Nowhere left to put it: the report has the null sender,
                    // so nothing can be told (RFC 5321 §4.5.5).
                    tracing::warn!(queue_id = entry.id, to = %entry.sender, error = %e,
                        "delivery status notification cannot be stored; dropped");
                } else {
                    // Keep owing it: the failures stay 'bounce' and the next
                    // attempt reports them again; the delay warning waits too.
                    tracing::warn!(queue_id = entry.id, to = %entry.sender, error = %e,
                        "delivery status notification cannot be stored yet; kept for the next attempt");
                    for f in fates.iter_mut().filter(|f| f.status == RecipientStatus::Failed) {
                        if report
                            .iter()
                            .any(|r| r.action == Action::Failed && r.address == f.address)
                        {
                            f.status = RecipientStatus::Bounce;
                        }
                    }
                    warned = false;
                }
            }
        }
        let attempts = entry.attempts + 1;
        let delay = self.cfg.retry_delay(attempts);
        let jitter = rand::thread_rng().gen_range(0.0..0.1) * delay.as_secs_f64();
        // Rounded up, so a whole-second schedule never fires early.
        let now_f = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(t as f64);
        let next_attempt = (now_f + delay.as_secs_f64() + jitter).ceil() as i64;
        let rest: Vec<RecipientOutcome> = fates
            .iter()
            .filter(|f| f.status != RecipientStatus::Delivered)
            .map(outcome)
            .collect();
        let pending = rest
            .iter()
            .filter(|o| matches!(o.status, RecipientStatus::Pending | RecipientStatus::Bounce))
            .count();
        let removed = self
            .store
            .finish_attempt(
                entry.id,
                &self.cfg.node_id,
                AttemptEnd {
                    outcomes: rest,
                    next_attempt,
                    warned: warned || warn_due,
                },
            )
            .await?;
        if removed {
            tracing::info!(queue_id = entry.id, "queue entry done");
        } else {
            tracing::info!(
                queue_id = entry.id,
                pending,
                attempts,
                next_in = next_attempt - t,
                "queue entry deferred"
            );
        }
        Ok(())
    }

    /// Store a report for the entry's sender: locally when the sender is
    /// ours, otherwise queued with the null reverse-path (which is never
    /// bounced, so reports cannot loop).
    async fn send_report(
        &self,
        entry: &QueueEntry,
        raw: &[u8],
        report: &[ReportRecipient],
        until: i64,
    ) -> Result<(), letterbox_store::StoreError> {
        let unique = format!("{}.{}.{}", entry.id, entry.attempts, rand::thread_rng().gen::<u32>());
        let ret_full = entry.ret.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("FULL"));
        let message = build_report(
            &self.cfg.hostname,
            &entry.sender,
            &Original {
                envid: entry.envid.as_deref(),
                arrival: entry.created,
                raw,
                ret_full,
            },
            report,
            now(),
            Some(until),
            &unique,
        );
        tracing::info!(queue_id = entry.id, to = %entry.sender, recipients = report.len(), "sending a delivery status notification");
        let (accounts, external) = match self.store.resolve_recipient(&entry.sender).await? {
            Recipient::Local(res) => (res.accounts, res.external),
            Recipient::NotLocal => (Vec::new(), vec![entry.sender.clone()]),
            Recipient::Unknown => {
                tracing::warn!(queue_id = entry.id, sender = %entry.sender, "no local mailbox for the report; dropped");
                return Ok(());
            }
        };
        // The same rule as mail from outside: local copies and queued copies
        // of the report commit together; with its null sender, a mailbox
        // full for now refuses it (kept for the next attempt) and one it
        // can never fit in drops it for that account (RFC 5321 §4.5.5).
        let delivery = self
            .inbound
            .deliver(letterbox_inbound::Arrival::from_null_sender(
                message,
                &accounts,
                external.into_iter().map(OutboundRecipient::plain).collect(),
            ))
            .await?;
        let accepted = match delivery {
            letterbox_inbound::Delivery::Accepted { accepted, .. } => accepted,
            // Local reports are not judged; nothing refuses them.
            letterbox_inbound::Delivery::Refused(r) => {
                tracing::warn!(queue_id = entry.id, reason = %r.text, "report refused");
                return Ok(());
            }
        };
        if !accepted.dropped.is_empty() {
            tracing::warn!(queue_id = entry.id, sender = %entry.sender, accounts = ?accepted.dropped,
                "report larger than the sender's quota; dropped for those accounts");
        }
        Ok(())
    }

    fn domain_semaphore(&self, domain: &str) -> Arc<Semaphore> {
        let mut map = self.per_domain.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.cfg.max_per_domain.max(1));
        map.entry(domain.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.max_per_domain.max(1))))
            .clone()
    }

    /// Where mail for `domain` goes (RFC 5321 §5.1).
    async fn route(&self, domain: &str) -> Route {
        if let Some(s) = &self.cfg.smarthost {
            return Route::Hops(vec![Hop {
                host: s.host.clone(),
                port: s.port,
                kind: HopKind::Smarthost,
            }]);
        }
        let mx_hop = |hp: &HostPort| Hop {
            host: hp.host.clone(),
            port: hp.port,
            kind: HopKind::Mx,
        };
        if let Some(hops) = self.cfg.routes.get(domain) {
            return Route::Hops(hops.iter().map(mx_hop).collect());
        }
        if domain.starts_with('[') {
            // RFC 5321 §4.1.3 address literal.
            let ip = domain.trim_start_matches('[').trim_end_matches(']');
            let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
            return match ip.parse::<IpAddr>() {
                Ok(ip) => Route::Hops(vec![mx_hop(&HostPort {
                    host: ip.to_string(),
                    port: self.cfg.port,
                })]),
                Err(_) => Route::Fail(format!("5.1.2 bad address literal {domain}")),
            };
        }
        match self.dns.mx(domain).await {
            Ok(MxAnswer::NullMx) => Route::Fail(format!("556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)")),
            Ok(MxAnswer::NoMx) => Route::Hops(vec![Hop {
                host: domain.to_string(),
                port: self.cfg.port,
                kind: HopKind::Mx,
            }]),
            Ok(MxAnswer::Hosts(mut hosts)) => {
                // Equal preferences are tried in random order (§5.1).
                let mut rng = rand::thread_rng();
                hosts.sort_by_key(|(p, _)| (*p, rng.gen::<u32>()));
                Route::Hops(
                    hosts
                        .into_iter()
                        .map(|(_, h)| Hop {
                            host: h,
                            port: self.cfg.port,
                            kind: HopKind::Mx,
                        })
                        .collect(),
                )
            }
            Err(DnsError::NotFound(e)) => Route::Fail(format!("5.1.2 domain {domain} not found: {e}")),
            Err(DnsError::Temporary(e)) => Route::Defer(format!("4.4.3 {e}")),
        }
    }

    async fn deliver_domain(
        &self,
        entry: &QueueEntry,
        raw: &[u8],
        domain: &str,
        rcpts: &[&QueueRecipient],
    ) -> Vec<Fate> {
        let fate = |r: &QueueRecipient, status, error: Option<String>, remote: Option<String>| Fate {
            address: r.address.clone(),
            status,
            error,
            remote,
            relayed_without_dsn: false,
        };
        let hops = match self.route(domain).await {
            Route::Hops(h) => h,
            Route::Fail(e) => {
                return rcpts
                    .iter()
                    .map(|r| fate(r, RecipientStatus::Failed, Some(e.clone()), None))
                    .collect()
            }
            Route::Defer(e) => {
                return rcpts
                    .iter()
                    .map(|r| fate(r, RecipientStatus::Pending, Some(e.clone()), None))
                    .collect()
            }
        };
        let mut remaining: Vec<&QueueRecipient> = rcpts.to_vec();
        let mut fates = Vec::new();
        let mut last_error: HashMap<String, (String, Option<String>)> = HashMap::new();
        let mut general_error = String::from("4.4.1 no host could be reached");
        let needs_smtputf8 = !entry.sender.is_ascii()
            || remaining.iter().any(|r| !r.address.is_ascii())
            || !header_bytes(raw).is_ascii();
        let eight_bit = !raw.is_ascii();
        'hops: for hop in &hops {
            if remaining.is_empty() {
                break;
            }
            let ips = match hop.host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => match self.dns.ips(&hop.host).await {
                    Ok(ips) if !ips.is_empty() => ips,
                    Ok(_) => {
                        general_error = format!("4.4.4 {} has no address", hop.host);
                        continue;
                    }
                    Err(e) => {
                        general_error = format!("4.4.3 {e}");
                        continue;
                    }
                },
            };
            for ip in ips {
                let addr = SocketAddr::new(ip, hop.port);
                let specs: Vec<RcptSpec> = remaining
                    .iter()
                    .map(|r| RcptSpec {
                        address: r.address.clone(),
                        notify: r.notify.clone(),
                        orcpt: r.orcpt.clone(),
                    })
                    .collect();
                let env = Envelope {
                    sender: &entry.sender,
                    recipients: &specs,
                    envid: entry.envid.as_deref(),
                    ret: entry.ret.as_deref(),
                    eight_bit,
                    needs_smtputf8,
                };
                let result = self.transaction(hop, addr, &env, raw).await;
                let (results, dsn) = match result {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::info!(queue_id = entry.id, host = %hop.host, %addr, error = %e, "delivery attempt failed");
                        if let ClientError::Rejected {
                            stage: "MAIL FROM",
                            reply,
                        } = &e
                        {
                            if reply.is_permanent() {
                                for r in remaining.drain(..) {
                                    fates.push(fate(
                                        r,
                                        RecipientStatus::Failed,
                                        Some(reply.to_string()),
                                        Some(hop.host.clone()),
                                    ));
                                }
                                break 'hops;
                            }
                        }
                        general_error = match &e {
                            ClientError::Rejected { reply, .. } => reply.to_string(),
                            other => format!("4.4.1 {}: {other}", hop.host),
                        };
                        continue;
                    }
                };
                let mut still = Vec::new();
                for (r, res) in remaining.drain(..).zip(results) {
                    match res {
                        RcptResult::Delivered(reply) => {
                            tracing::info!(queue_id = entry.id, rcpt = %r.address, host = %hop.host, reply = %reply, "delivered");
                            fates.push(Fate {
                                relayed_without_dsn: !dsn,
                                ..fate(r, RecipientStatus::Delivered, None, Some(hop.host.clone()))
                            });
                        }
                        RcptResult::Refused(reply) if reply.is_permanent() => {
                            tracing::info!(queue_id = entry.id, rcpt = %r.address, host = %hop.host, reply = %reply, "refused");
                            fates.push(fate(
                                r,
                                RecipientStatus::Failed,
                                Some(reply.to_string()),
                                Some(hop.host.clone()),
                            ));
                        }
                        RcptResult::Refused(reply) => {
                            last_error.insert(r.address.clone(), (reply.to_string(), Some(hop.host.clone())));
                            still.push(r);
                        }
                    }
                }
                remaining = still;
                // This host answered; the transient refusals go to the next MX.
                continue 'hops;
            }
        }
        for r in remaining {
            let (error, remote) = last_error
                .remove(&r.address)
                .unwrap_or_else(|| (general_error.clone(), None));
            fates.push(fate(r, RecipientStatus::Pending, Some(error), remote));
        }
        fates
    }

    /// Run one transaction on a pooled or new connection. A pooled
    /// connection that fails is replaced by a fresh one, once.
    async fn transaction(
        &self,
        hop: &Hop,
        addr: SocketAddr,
        env: &Envelope<'_>,
        raw: &[u8],
    ) -> Result<(Vec<RcptResult>, bool), ClientError> {
        let key: PoolKey = (hop.host.clone(), addr, hop.kind == HopKind::Smarthost);
        if let Some(mut c) = self.take_pooled(&key) {
            if c.rset().await.is_ok() {
                if let Ok(results) = c.send(env, raw).await {
                    let dsn = c.caps.dsn;
                    self.put_pooled(key, c);
                    return Ok((results, dsn));
                }
            }
        }
        let mut c = self.open(hop, addr).await?;
        let results = c.send(env, raw).await?;
        let dsn = c.caps.dsn;
        self.put_pooled(key, c);
        Ok((results, dsn))
    }

    /// Connect, EHLO, STARTTLS, AUTH as the hop requires.
    async fn open(&self, hop: &Hop, addr: SocketAddr) -> Result<Client, ClientError> {
        let t = self.cfg.timeouts;
        let name = &self.cfg.hostname;
        if hop.kind == HopKind::Smarthost {
            let Some(s) = &self.cfg.smarthost else {
                return Err(ClientError::Protocol("no smarthost configured".into()));
            };
            let implicit = match s.tls {
                SmarthostTls::Implicit => self.smarthost_tls.as_ref(),
                _ => None,
            };
            let mut c = Client::connect(addr, &hop.host, t, implicit).await?;
            c.ehlo(name).await?;
            if s.tls == SmarthostTls::StartTls {
                if !c.caps.starttls {
                    return Err(ClientError::Protocol(format!("{} does not offer STARTTLS", hop.host)));
                }
                let tls = self
                    .smarthost_tls
                    .as_ref()
                    .ok_or_else(|| ClientError::Protocol("no TLS set-up for the smarthost".into()))?;
                c = c.starttls(tls, name).await?;
            }
            if let Some((user, pass)) = &s.credentials {
                c.auth_plain(user, pass).await?;
            }
            return Ok(c);
        }
        let mut c = Client::connect(addr, &hop.host, t, None).await?;
        c.ehlo(name).await?;
        // TLS policy: opportunistic (RFC 3207 §4.1, RFC 7435). MTA-STS
        // (RFC 8461) and DANE (RFC 7672) would make TLS required and
        // verified here, without plaintext fallback.
        if c.caps.starttls {
            match c.starttls(&self.opportunistic, name).await {
                Ok(tls) => return Ok(tls),
                Err(e) => {
                    tracing::info!(host = %hop.host, %addr, error = %e, "STARTTLS failed; retrying without TLS");
                    let mut plain = Client::connect(addr, &hop.host, t, None).await?;
                    plain.ehlo(name).await?;
                    return Ok(plain);
                }
            }
        }
        Ok(c)
    }

    fn take_pooled(&self, key: &PoolKey) -> Option<Client> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.get_mut(key)?;
        while let Some((c, at)) = list.pop() {
            if at.elapsed() < self.cfg.idle_connection {
                return Some(c);
            }
        }
        None
    }

    fn put_pooled(&self, key: PoolKey, c: Client) {
        if self.cfg.idle_connection.is_zero() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(key).or_default();
        if list.len() < self.cfg.max_per_domain.max(1) {
            list.push((c, Instant::now()));
        }
    }

    /// Close connections idle too long.
    fn prune_pool(&self) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        for list in pool.values_mut() {
            list.retain(|(_, at)| at.elapsed() < self.cfg.idle_connection);
        }
        pool.retain(|_, l| !l.is_empty());
    }
}

fn outcome(f: &Fate) -> RecipientOutcome {
    RecipientOutcome {
        address: f.address.clone(),
        status: f.status,
        error: f.error.clone(),
        remote_mta: f.remote.clone(),
    }
}

/// RFC 3461 §4.1 NOTIFY: whether `what` is asked for; `default` when absent.
fn wants(notify: Option<&str>, what: &str, default: bool) -> bool {
    match notify {
        None => default,
        Some(n) => n.split(',').any(|x| x.trim().eq_ignore_ascii_case(what)),
    }
}

fn header_bytes(raw: &[u8]) -> &[u8] {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &raw[..i],
        None => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_defaults() {
        assert!(wants(None, "FAILURE", true));
        assert!(!wants(None, "SUCCESS", false));
        assert!(!wants(Some("NEVER"), "FAILURE", true));
        assert!(wants(Some("SUCCESS,FAILURE"), "failure", true));
        assert!(!wants(Some("SUCCESS"), "DELAY", true));
    }
}
