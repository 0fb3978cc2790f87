//! Who really sent an inbound message: SPF (RFC 7208) of the HELO and
//! MAIL FROM identities, iprev (RFC 8601 §3), DKIM (RFC 6376, RFC 8463
//! ed25519), ARC (RFC 8617) and DMARC (RFC 7489, and its successor's
//! policy discovery as `mail-auth` implements it), summed up in one
//! `Authentication-Results:` field (RFC 8601) and a [`AuthReport`] that the
//! delivery pipeline decides on.
//!
//! Limits (issue 15, "bad input"): at most [`MAX_DKIM_SIGNATURES`]
//! signatures and [`MAX_ARC_SETS`] ARC sets are looked at, every DNS step
//! shares one deadline (a timeout is a `temperror`, never a stalled
//! session), and hashing the body happens off the async workers.

use letterbox_dns::HickoryDns;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult,
    IprevOutput, IprevResult, MessageAuthenticator, SpfOutput, SpfResult,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// DKIM signatures verified per message; the rest are ignored (each costs a
/// DNS lookup and, with its own `l=` or canonicalization, a body hash).
pub const MAX_DKIM_SIGNATURES: usize = 10;
/// ARC sets (RFC 8617 §4.2.1 allows 50; real chains have 1–3). A longer
/// chain is treated as broken.
pub const MAX_ARC_SETS: usize = 10;

/// One check's result, in RFC 8601 §2.7 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::SoftFail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
        }
    }
}

/// A domain's DMARC policy for mail that fails (RFC 7489 §6.3 `p`/`sp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    /// No record, or `p=none`.
    None,
    Quarantine,
    Reject,
}

/// The SPF results of one transaction, computed when MAIL FROM arrives.
#[derive(Debug, Clone)]
pub struct SpfCheck {
    helo: SpfOutput,
    /// `None` for the null sender: the HELO identity stands in (RFC 7208 §2.4).
    mail_from: Option<SpfOutput>,
    helo_domain: String,
    sender: String,
}

impl SpfCheck {
    /// The result DMARC aligns: MAIL FROM's, or HELO's for the null sender.
    pub fn result(&self) -> Outcome {
        spf_outcome(self.mail_from.as_ref().unwrap_or(&self.helo).result())
    }

    /// The domain that result is for.
    pub fn domain(&self) -> &str {
        match &self.mail_from {
            Some(_) => self.sender.rsplit_once('@').map_or("", |(_, d)| d),
            None => &self.helo_domain,
        }
    }

    /// A check that could not finish in time.
    pub fn timed_out(helo: &str, sender: &str) -> SpfCheck {
        let out = |d: &str| SpfOutput::new(d.to_string()).with_result(SpfResult::TempError);
        SpfCheck {
            helo: out(helo),
            mail_from: (!sender.is_empty()).then(|| out(sender.rsplit_once('@').map_or("", |(_, d)| d))),
            helo_domain: helo.to_string(),
            sender: sender.to_string(),
        }
    }
}

/// Forward-confirmed reverse DNS of the client (RFC 8601 §3).
#[derive(Debug, Clone)]
pub struct Iprev {
    output: IprevOutput,
}

impl Iprev {
    pub fn result(&self) -> Outcome {
        match self.output.result() {
            IprevResult::Pass => Outcome::Pass,
            IprevResult::Fail(_) => Outcome::Fail,
            IprevResult::TempError(_) => Outcome::TempError,
            IprevResult::PermError(_) => Outcome::PermError,
            IprevResult::None => Outcome::None,
        }
    }

    /// The first name the address maps back to, if it did.
    pub fn name(&self) -> Option<&str> {
        self.output
            .ptr
            .as_ref()
            .and_then(|p| p.first())
            .map(|n| n.trim_end_matches('.'))
    }

    fn timed_out() -> Iprev {
        Iprev {
            output: IprevOutput {
                result: IprevResult::TempError(mail_auth::Error::Dns(mail_auth::DnsError::Resolver("timeout".into()))),
                ptr: None,
            },
        }
    }
}

/// What the message's checks found, for the pipeline's policy and the
/// spam rules.
#[derive(Debug, Clone)]
pub struct AuthReport {
    /// The whole `Authentication-Results:` field, CRLF-terminated.
    pub header: String,
    pub spf: Outcome,
    /// `d=` and result of every signature looked at.
    pub dkim: Vec<(String, Outcome)>,
    pub arc: Outcome,
    /// `d=` of the newest ARC seal, when the chain validated.
    pub arc_sealer: Option<String>,
    /// The newest ARC set's Authentication-Results says `dmarc=pass`.
    pub arc_dmarc_pass: bool,
    pub dmarc: Outcome,
    /// The policy that applies when `dmarc` is not a pass.
    pub dmarc_policy: DmarcPolicy,
    /// The RFC 5322 From: domain (lower case; empty without one).
    pub from_domain: String,
    pub iprev: Outcome,
    /// What an aggregate report on this message says (RFC 7489 §7.2),
    /// when its From: domain publishes a DMARC record.
    pub dmarc_facts: Option<crate::dmarc_report::DmarcFacts>,
}

impl AuthReport {
    /// Some DKIM signature of exactly `domain` passed.
    pub fn dkim_pass_for(&self, domain: &str) -> bool {
        self.dkim
            .iter()
            .any(|(d, o)| *o == Outcome::Pass && d.eq_ignore_ascii_case(domain))
    }
}

/// The checks, over the process's shared resolver. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    auth: MessageAuthenticator,
    /// The authserv-id (RFC 8601 §2.5) and SPF's `%{r}`.
    hostname: String,
    /// Deadline for each group of lookups.
    timeout: Duration,
}

/// The connection facts a message is checked against.
#[derive(Debug, Clone)]
pub struct Client<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The envelope sender (empty for the null sender).
    pub mail_from: &'a str,
}

impl Verifier {
    pub fn new(dns: &HickoryDns, hostname: &str, timeout: Duration) -> Verifier {
        Verifier {
            inner: Arc::new(Inner {
                auth: MessageAuthenticator(dns.resolver().clone()),
                hostname: hostname.to_string(),
                timeout,
            }),
        }
    }

    /// The authserv-id this verifier writes.
    pub fn hostname(&self) -> &str {
        &self.inner.hostname
    }

    /// RFC 7208 `check_host()` for the HELO identity and, unless the sender
    /// is null, the MAIL FROM identity.
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfCheck {
        let auth = &self.inner.auth;
        let host = self.inner.hostname.as_str();
        let work = async {
            let helo_out = auth.verify_spf(SpfParameters::verify_ehlo(ip, helo, host)).await;
            let from_out = if mail_from.is_empty() {
                None
            } else {
                Some(
                    auth.verify_spf(SpfParameters::verify_mail_from(ip, helo, host, mail_from))
                        .await,
                )
            };
            SpfCheck {
                helo: helo_out,
                mail_from: from_out,
                helo_domain: helo.to_string(),
                sender: mail_from.to_string(),
            }
        };
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .unwrap_or_else(|_| SpfCheck::timed_out(helo, mail_from))
    }

    /// Forward-confirmed reverse DNS of `ip`.
    pub async fn iprev(&self, ip: IpAddr) -> Iprev {
        match tokio::time::timeout(self.inner.timeout, self.inner.auth.verify_iprev(ip)).await {
            Ok(output) => Iprev { output },
            Err(_) => Iprev::timed_out(),
        }
    }

    /// DKIM, ARC and DMARC of `raw` (as received, without our trace
    /// fields), with the SPF and iprev results of its transaction.
    pub async fn verify(&self, client: &Client<'_>, raw: &[u8], spf: &SpfCheck, iprev: &Iprev) -> AuthReport {
        let (limited, signed) = limit_signatures(raw);
        let raw: &[u8] = limited.as_deref().unwrap_or(raw);
        // Body hashes are computed while parsing (CPU work, off the async
        // workers); without signatures there are none, and moving the
        // worker's tasks away would cost more than the parse.
        let parsed = if signed {
            off_worker(|| AuthenticatedMessage::parse(raw))
        } else {
            AuthenticatedMessage::parse(raw)
        };
        let Some(message) = parsed else {
            return self.unparsable(client, spf, iprev);
        };
        let auth = &self.inner.auth;
        let timeout = self.inner.timeout;
        let dkim: Vec<DkimOutput> = match tokio::time::timeout(timeout, auth.verify_dkim(&message)).await {
            Ok(d) => d,
            Err(_) => message
                .dkim_headers
                .iter()
                .map(|h| DkimOutput::temp_err(dns_timeout()).with_signature(&h.header))
                .collect(),
        };
        let arc: ArcOutput = match tokio::time::timeout(timeout, auth.verify_arc(&message)).await {
            Ok(a) => a,
            Err(_) => ArcOutput::default().with_result(DkimResult::TempError(dns_timeout())),
        };
        let spf_out = spf.mail_from.as_ref().unwrap_or(&spf.helo);
        let from_domain = message
            .from()
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
            .unwrap_or_default();
        let dmarc: DmarcOutput = match tokio::time::timeout(
            timeout,
            auth.verify_dmarc(DmarcParameters::new(&message, &dkim, spf.domain(), spf_out)),
        )
        .await
        {
            Ok(d) => d,
            Err(_) => DmarcOutput::default()
                .with_domain(&from_domain)
                .with_spf_result(DmarcResult::TempError(dns_timeout()))
                .with_dkim_result(DmarcResult::TempError(dns_timeout())),
        };
        let mut ar = AuthenticationResults::new(&self.inner.hostname).with_dkim_results(&dkim, message.from());
        ar = ar.with_spf_ehlo_result(&spf.helo, client.ip, client.helo);
        if let Some(from) = &spf.mail_from {
            ar = ar.with_spf_mailfrom_result(from, client.ip, client.mail_from, client.helo);
        }
        ar = ar
            .with_arc_result(&arc, client.ip)
            .with_dmarc_result(&dmarc)
            .with_iprev_result(&iprev.output, client.ip);
        let arc_outcome = dkim_outcome(arc.result());
        let newest = arc.sets().last();
        let mut header = ar.to_header();
        // RFC 6376 §3.7: a body hash that does not match fails the
        // signature; mail-auth reports it as `neutral`.
        header = header.replace(
            "dkim=neutral (body hash did not verify)",
            "dkim=fail (body hash did not verify)",
        );
        if dkim.is_empty() {
            // RFC 8601 §2.7.1: "none" when the message was not signed.
            let at = "Authentication-Results: ".len() + self.inner.hostname.len();
            if header.is_char_boundary(at) {
                header.insert_str(at, ";\r\n\tdkim=none");
            }
        }
        AuthReport {
            header,
            spf: spf.result(),
            dkim: dkim
                .iter()
                .map(|d| {
                    (
                        d.signature().map(|s| s.d.to_ascii_lowercase()).unwrap_or_default(),
                        dkim_outcome(d.result()),
                    )
                })
                .collect(),
            arc: arc_outcome,
            arc_sealer: newest
                .filter(|_| arc_outcome == Outcome::Pass)
                .map(|s| s.seal.header.d.to_ascii_lowercase()),
            arc_dmarc_pass: newest.is_some_and(|s| says_dmarc_pass(s.results.value)),
            dmarc: dmarc_outcome(&dmarc),
            dmarc_policy: match dmarc.policy() {
                Policy::Reject => DmarcPolicy::Reject,
                Policy::Quarantine => DmarcPolicy::Quarantine,
                Policy::None | Policy::Unspecified => DmarcPolicy::None,
            },
            dmarc_facts: dmarc.dmarc_record().map(|record| {
                crate::dmarc_report::DmarcFacts::new(
                    &dmarc,
                    record,
                    &dkim,
                    spf_out,
                    spf.mail_from.is_some(),
                    client,
                    message.from(),
                )
            }),
            from_domain,
            iprev: iprev.result(),
        }
    }

    /// The `rua` addresses of `domain`'s record that may receive its
    /// reports (RFC 7489 §7.1: a destination outside the domain must
    /// publish `DOMAIN._report._dmarc.DEST`); `None` on a DNS error.
    pub async fn report_addresses(&self, domain: &str, addresses: &[String]) -> Option<Vec<String>> {
        let none: Option<&mail_auth::common::cache::NoCache<Box<str>, mail_auth::Txt>> = None;
        let found = tokio::time::timeout(
            self.inner.timeout,
            self.inner.auth.verify_dmarc_report_address(domain, addresses, none),
        )
        .await
        .ok()??;
        Some(found.into_iter().cloned().collect())
    }

    /// A message whose header cannot be parsed: nothing verifies.
    fn unparsable(&self, client: &Client<'_>, spf: &SpfCheck, iprev: &Iprev) -> AuthReport {
        let mut ar =
            AuthenticationResults::new(&self.inner.hostname).with_spf_ehlo_result(&spf.helo, client.ip, client.helo);
        if let Some(from) = &spf.mail_from {
            ar = ar.with_spf_mailfrom_result(from, client.ip, client.mail_from, client.helo);
        }
        ar = ar.with_iprev_result(&iprev.output, client.ip);
        AuthReport {
            header: ar.to_header(),
            spf: spf.result(),
            dkim: Vec::new(),
            arc: Outcome::None,
            arc_sealer: None,
            arc_dmarc_pass: false,
            dmarc: Outcome::None,
            dmarc_policy: DmarcPolicy::None,
            from_domain: String::new(),
            iprev: iprev.result(),
            dmarc_facts: None,
        }
    }
}

/// `Authentication-Results: HOST; none` (RFC 8601 §2.2): mail that was not
/// checked (submissions, trusted networks, local reports).
pub fn not_checked(hostname: &str) -> String {
    AuthenticationResults::new(hostname).to_header()
}

fn dns_timeout() -> mail_auth::Error {
    mail_auth::Error::Dns(mail_auth::DnsError::Resolver("timeout".into()))
}

fn spf_outcome(r: SpfResult) -> Outcome {
    match r {
        SpfResult::Pass => Outcome::Pass,
        SpfResult::Fail => Outcome::Fail,
        SpfResult::SoftFail => Outcome::SoftFail,
        SpfResult::Neutral => Outcome::Neutral,
        SpfResult::TempError => Outcome::TempError,
        SpfResult::PermError => Outcome::PermError,
        SpfResult::None => Outcome::None,
    }
}

fn dkim_outcome(r: &DkimResult) -> Outcome {
    match r {
        DkimResult::Pass => Outcome::Pass,
        DkimResult::Neutral(mail_auth::Error::Dkim(mail_auth::dkim::DkimError::FailedBodyHashMatch)) => Outcome::Fail,
        DkimResult::Neutral(_) => Outcome::Neutral,
        DkimResult::Fail(_) => Outcome::Fail,
        DkimResult::PermError(_) => Outcome::PermError,
        DkimResult::TempError(_) => Outcome::TempError,
        DkimResult::None => Outcome::None,
    }
}

fn dmarc_outcome(d: &DmarcOutput) -> Outcome {
    let (spf, dkim) = (d.spf_result(), d.dkim_result());
    if matches!(spf, DmarcResult::Pass) || matches!(dkim, DmarcResult::Pass) {
        return Outcome::Pass;
    }
    match d.result() {
        DmarcResult::Pass => Outcome::Pass,
        DmarcResult::Fail(_) => Outcome::Fail,
        DmarcResult::TempError(_) => Outcome::TempError,
        DmarcResult::PermError(_) => Outcome::PermError,
        DmarcResult::None if d.dmarc_record().is_some() => Outcome::Fail,
        DmarcResult::None => Outcome::None,
    }
}

/// Whether an ARC-Authentication-Results value reports `dmarc=pass`.
fn says_dmarc_pass(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value).to_ascii_lowercase();
    text.split(';').any(|part| part.trim().starts_with("dmarc=pass"))
}

/// Run CPU-heavy work so the runtime's other tasks are not held up: on a
/// multi-threaded runtime the worker hands its tasks to the others first
/// (`block_in_place`); elsewhere (unit tests) it runs inline.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A copy of `raw` with only the first [`MAX_DKIM_SIGNATURES`]
/// DKIM-Signature fields and, when there are more than [`MAX_ARC_SETS`]
/// sets, no ARC fields (`None` when nothing needs removing), and whether
/// the message carries any DKIM or ARC signature at all.
fn limit_signatures(raw: &[u8]) -> (Option<Vec<u8>>, bool) {
    use letterbox_mail::field_is as is;
    let fields = letterbox_mail::header_fields(raw);
    let dkim = fields.iter().filter(|f| is(f, "DKIM-Signature")).count();
    let arc = fields.iter().filter(|f| is(f, "ARC-Seal")).count();
    let signed = dkim > 0 || fields.iter().any(|f| is(f, "ARC-Message-Signature"));
    if dkim <= MAX_DKIM_SIGNATURES && arc <= MAX_ARC_SETS {
        return (None, signed);
    }
    let mut out = Vec::with_capacity(raw.len());
    let (mut kept, mut end) = (0, 0);
    for f in &fields {
        end += f.len();
        let drop = if is(f, "DKIM-Signature") {
            kept += 1;
            kept > MAX_DKIM_SIGNATURES
        } else {
            arc > MAX_ARC_SETS
                && (is(f, "ARC-Seal") || is(f, "ARC-Message-Signature") || is(f, "ARC-Authentication-Results"))
        };
        if !drop {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(&raw[end..]);
    (Some(out), signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_signatures_are_cut() {
        let mut raw = Vec::new();
        for i in 0..1000 {
            raw.extend_from_slice(format!("DKIM-Signature: v=1; d=x{i}.test;\r\n b=abc\r\n").as_bytes());
        }
        raw.extend_from_slice(b"From: a@b.test\r\n\r\nbody\r\n");
        let (cut, signed) = limit_signatures(&raw);
        assert!(signed);
        let cut = cut.expect("cut");
        let text = String::from_utf8(cut).unwrap();
        assert_eq!(text.matches("DKIM-Signature:").count(), MAX_DKIM_SIGNATURES);
        assert!(text.contains("d=x9.test") && !text.contains("d=x10.test"));
        assert!(text.ends_with("From: a@b.test\r\n\r\nbody\r\n"));
        assert_eq!(limit_signatures(b"DKIM-Signature: a\r\nFrom: x\r\n\r\n"), (None, true));
        assert_eq!(limit_signatures(b"From: x\r\n\r\n"), (None, false));
    }

    #[test]
    fn arc_results_dmarc() {
        assert!(says_dmarc_pass(
            b" i=1; lists.test; spf=pass; dmarc=pass header.from=a.test"
        ));
        assert!(!says_dmarc_pass(b" i=1; lists.test; dmarc=fail header.from=a.test"));
    }
}
