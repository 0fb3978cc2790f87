//! DMARC aggregate reports (RFC 7489 §7.2; the XML of its successor, as
//! `mail-auth` writes it): what one message contributes ([`DmarcFacts`],
//! stored by the delivery pipeline), the daily report built from them
//! ([`build_report`]), and reading reports others send ([`read_report`]).

use crate::verify::Client;
use mail_auth::report::{ActionDisposition, PolicyPublished, Record, Report, SPFDomainScope};
use mail_auth::{DkimOutput, DmarcOutput, SpfOutput};

/// One message's row of a future report.
#[derive(Debug, Clone)]
pub struct DmarcFacts {
    /// The policy domain (the From: domain whose record applied).
    pub domain: String,
    /// `rua` addresses (mailto: only).
    pub rua: Vec<String>,
    policy: PolicyPublished,
    record: Record,
}

/// What the receiver did (RFC 7489 §7.2 `disposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    None,
    Quarantine,
    Reject,
}

impl DmarcFacts {
    pub(crate) fn new(
        dmarc: &DmarcOutput,
        record: &mail_auth::dmarc::Dmarc,
        dkim: &[DkimOutput<'_>],
        spf: &SpfOutput,
        spf_is_mail_from: bool,
        client: &Client<'_>,
        header_from: &str,
    ) -> DmarcFacts {
        let scope = if spf_is_mail_from {
            SPFDomainScope::MailFrom
        } else {
            SPFDomainScope::Helo
        };
        let envelope_from = client.mail_from.rsplit_once('@').map_or(client.helo, |(_, d)| d);
        DmarcFacts {
            domain: dmarc.domain().to_string(),
            rua: record
                .rua
                .iter()
                .filter_map(|u| {
                    let u = u.uri();
                    let addr = u.strip_prefix("mailto:").unwrap_or(u);
                    addr.contains('@').then(|| addr.to_ascii_lowercase())
                })
                .collect(),
            policy: PolicyPublished::from_record(dmarc.domain(), record),
            record: Record::new()
                .with_source_ip(client.ip)
                .with_header_from(header_from.rsplit_once('@').map_or(header_from, |(_, d)| d))
                .with_envelope_from(envelope_from)
                .with_dkim_output(dkim)
                .with_spf_output(spf, scope)
                .with_dmarc_output(dmarc),
        }
    }

    /// (policy, record) as JSON for storage, with what was done to the message.
    pub fn to_json(&self, done: Disposition) -> (String, String) {
        let record = self.record.clone().with_action_disposition(match done {
            Disposition::None => ActionDisposition::None,
            Disposition::Quarantine => ActionDisposition::Quarantine,
            Disposition::Reject => ActionDisposition::Reject,
        });
        (
            serde_json::to_string(&self.policy).unwrap_or_default(),
            serde_json::to_string(&record).unwrap_or_default(),
        )
    }
}

/// The aggregate report on `domain` for `[begin, end)` (Unix seconds) from
/// stored rows (policy JSON, record JSON): identical records are counted
/// together. The whole message (RFC 5322, the XML gzip-compressed in an
/// attachment) is addressed from `from` to `to`; `None` when no row parses.
pub fn build_report(
    submitter: &str,
    from: &str,
    to: &[String],
    domain: &str,
    report_id: &str,
    (begin, end): (i64, i64),
    rows: &[(String, String)],
) -> Option<Vec<u8>> {
    let mut policy: Option<PolicyPublished> = None;
    let mut records: Vec<(String, Record, u32)> = Vec::new();
    for (p, r) in rows {
        if let Ok(pp) = serde_json::from_str::<PolicyPublished>(p) {
            policy = Some(pp);
        }
        let Ok(rec) = serde_json::from_str::<Record>(r) else {
            continue;
        };
        match records.iter_mut().find(|(k, _, _)| k == r) {
            Some((_, _, n)) => *n += 1,
            None => records.push((r.clone(), rec, 1)),
        }
    }
    let policy = policy?;
    if records.is_empty() {
        return None;
    }
    let mut report = Report::new()
        .with_version(1.0)
        .with_org_name(submitter)
        .with_email(from)
        .with_report_id(report_id)
        .with_domain(domain)
        .with_date_range_begin(begin.max(0) as u64)
        .with_date_range_end(end.max(0) as u64)
        .with_policy_published(policy)
        .with_generator("Letterbox");
    for (_, rec, n) in records {
        report.add_record(rec.with_count(n));
    }
    report
        .to_rfc5322(submitter, ("DMARC reports", from), to.iter().map(String::as_str))
        .ok()
        .map(String::into_bytes)
}

/// A report someone sent us, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedReport {
    pub org: String,
    pub report_id: String,
    pub domain: String,
    pub begin: u64,
    pub end: u64,
    /// (source ip, count, disposition, DKIM result, SPF result, header from)
    pub rows: Vec<(String, u32, String, String, String, String)>,
}

/// Parse an aggregate report message (XML, gzip or zip attachment); `None`
/// when the message is not one. At most `max_size` bytes are uncompressed.
pub fn read_report(raw: &[u8], max_size: usize) -> Option<ReceivedReport> {
    let r = Report::parse_rfc5322(raw, max_size).ok()?;
    Some(ReceivedReport {
        org: r.org_name().to_string(),
        report_id: r.report_id().to_string(),
        domain: r.domain().to_string(),
        begin: r.date_range_begin(),
        end: r.date_range_end(),
        rows: r
            .records()
            .iter()
            .map(|rec| {
                (
                    rec.source_ip().map(|i| i.to_string()).unwrap_or_default(),
                    rec.count(),
                    format!("{:?}", rec.action_disposition()).to_lowercase(),
                    format!("{:?}", rec.dmarc_dkim_result()).to_lowercase(),
                    format!("{:?}", rec.dmarc_spf_result()).to_lowercase(),
                    rec.header_from().to_string(),
                )
            })
            .collect(),
    })
}
