//! DMARC aggregate reports (RFC 7489 §7.2): every checked message's result
//! is kept (`Store::record_dmarc`); once a day the results of each domain
//! that asks (`rua`) are sent to it as one report, and kept results are
//! forgotten after a week whether reported or not. Sending is off by
//! default (`[inbound] dmarc_reports`).

use crate::{Arrival, Delivery, Inbound};
use letterbox_mailauth::dmarc_report::{build_report, Disposition};
use letterbox_mailauth::AuthReport;
use letterbox_store::{DmarcRecord, OutboundRecipient, Recipient, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;

/// Results older than this are dropped unreported.
const KEEP_SECS: i64 = 7 * 24 * 3600;
/// Rows read per report run.
const MAX_ROWS: usize = 200_000;

impl Inbound {
    /// Keep `auth`'s DMARC result with what was done to the message, off
    /// the reply's path: a report row is not worth a wait for a commit (and
    /// one lost in a crash costs a line of a report).
    pub(crate) fn record_dmarc(&self, auth: &AuthReport, done: Disposition) {
        let Some(facts) = &auth.dmarc_facts else { return };
        let (policy, record) = facts.to_json(done);
        let row = DmarcRecord {
            id: 0,
            domain: facts.domain.clone(),
            received_at: letterbox_store::unix_now(),
            policy,
            record,
            rua: facts.rua.clone(),
        };
        let store = self.inner.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_dmarc(row).await {
                tracing::warn!(error = %e, "cannot record a DMARC result");
            }
        });
    }

    /// Send the reports of everything recorded before `until` (when
    /// `send`), and forget what was reported or is too old. Returns the
    /// number of reports sent.
    pub async fn send_dmarc_reports(&self, until: i64, send: bool) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let rows = store.dmarc_records(until, MAX_ROWS).await?;
        let mut by_domain: BTreeMap<String, Vec<DmarcRecord>> = BTreeMap::new();
        for r in rows {
            by_domain.entry(r.domain.clone()).or_default().push(r);
        }
        let mut sent = 0;
        let mut done: Vec<i64> = Vec::new();
        for (domain, rows) in by_domain {
            let mut rua: Vec<String> = rows.iter().flat_map(|r| r.rua.iter().cloned()).collect();
            rua.sort();
            rua.dedup();
            let old = rows.iter().all(|r| r.received_at < until - KEEP_SECS);
            if !send || rua.is_empty() || old {
                done.extend(rows.iter().map(|r| r.id));
                continue;
            }
            let Some(verifier) = &self.inner.verifier else { continue };
            // A DNS error: try again at the next run.
            let Some(allowed) = verifier.report_addresses(&domain, &rua).await else {
                continue;
            };
            if !allowed.is_empty() {
                let begin = rows.iter().map(|r| r.received_at).min().unwrap_or(until);
                let report_id = format!("{}.{}.{}", domain, begin, until);
                let pairs: Vec<(String, String)> = rows.iter().map(|r| (r.policy.clone(), r.record.clone())).collect();
                let from = self.inner.config.dmarc_report_from.clone();
                if let Some(raw) = build_report(
                    &self.inner.hostname,
                    &from,
                    &allowed,
                    &domain,
                    &report_id,
                    (begin, until),
                    &pairs,
                ) {
                    match self.deliver_report(raw, &allowed).await {
                        Ok(()) => sent += 1,
                        Err(e) => {
                            tracing::warn!(domain, error = %e, "DMARC report not sent; kept for the next run");
                            continue;
                        }
                    }
                }
            }
            done.extend(rows.iter().map(|r| r.id));
        }
        store.delete_dmarc_records(&done).await?;
        Ok(sent)
    }

    /// A report goes to local `rua` addresses directly and to the rest
    /// through the queue, from the null sender (no bounce loops).
    async fn deliver_report(&self, raw: Vec<u8>, to: &[String]) -> Result<(), StoreError> {
        let mut accounts = Vec::new();
        let mut remote = Vec::new();
        for a in to {
            match self.inner.store.resolve_recipient(a).await? {
                Recipient::Local(r) => accounts.extend(r.accounts),
                Recipient::NotLocal => remote.push(OutboundRecipient::plain(a.clone())),
                Recipient::Unknown => {}
            }
        }
        let arrival = Arrival::from_null_sender(raw, &accounts, remote);
        match self.deliver(arrival).await? {
            Delivery::Accepted { .. } => Ok(()),
            Delivery::Refused(r) => Err(StoreError::Invalid(r.text)),
        }
    }
}

/// Send yesterday's reports once a day (a little after midnight UTC), or
/// only forget old results when sending is off, until `stop`.
pub async fn run_reporter(inbound: Inbound, send: bool, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let now = letterbox_store::unix_now();
        let next = (now / 86_400 + 1) * 86_400 + 300;
        let wait = Duration::from_secs((next - now).max(1) as u64);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let until = next - 300;
        match inbound.send_dmarc_reports(until, send).await {
            Ok(n) => tracing::info!(reports = n, "DMARC aggregate reports sent"),
            Err(e) => tracing::warn!(error = %e, "DMARC reports failed"),
        }
    }
}
