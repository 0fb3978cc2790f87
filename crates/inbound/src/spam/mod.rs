//! Step 4: the spam verdict. Named rules, each with a score (content and
//! header rules in [`rules`], the authentication results, the client's
//! HELO, DNS lists), summed; the total and every rule that fired go in
//! one `X-Spam-Status:` field:
//!
//! ```text
//! X-Spam-Status: Yes, score=7.5 required=6.0
//!     tests=DMARC_FAIL=1.5, HTML_ONLY=1.0, ...
//! ```
//!
//! (`Yes` when the score reaches `required`, the Junk threshold; the first
//! word is what SpamAssassin writes, which Thunderbird and others read.)
//! Defaults are conservative: a real message hidden in Junk costs the user
//! more than a spam in the inbox.

pub mod bayes;
pub mod rules;

use crate::Refusal;
use letterbox_dns::{dnsxl_name, Dns};
use letterbox_mailauth::{AuthReport, Outcome};
use letterbox_store::{AccountId, SharedStore, StoreError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One rule that fired, with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    pub score: f64,
}

impl Hit {
    fn new(name: &str, score: f64) -> Hit {
        Hit {
            name: name.to_string(),
            score,
        }
    }
}

/// Settings of the verdict (`[inbound]` keys).
#[derive(Clone)]
pub struct SpamConfig {
    /// From this score on, mail goes to Junk.
    pub junk_score: f64,
    /// From this score on, mail is refused with `550 5.7.1`.
    pub reject_score: f64,
    /// DNS block lists (RFC 5782) with the score a listing adds.
    pub dnsbl: Vec<(String, f64)>,
    /// DNS allow lists with the (negative) score a listing adds.
    pub dnswl: Vec<(String, f64)>,
    /// Domains whose appearance in a link scores [`rules::URL_BLOCKLISTED`].
    pub url_blocklist: Vec<String>,
    /// The resolver for the DNS lists.
    pub dns: Option<Arc<dyn Dns>>,
    /// Deadline of the DNS list lookups.
    pub dns_timeout: Duration,
    /// Messages of each class a Bayes model needs before it counts.
    pub bayes_min_trained: u64,
}

impl std::fmt::Debug for SpamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpamConfig")
            .field("junk_score", &self.junk_score)
            .field("reject_score", &self.reject_score)
            .field("dnsbl", &self.dnsbl)
            .field("dnswl", &self.dnswl)
            .finish_non_exhaustive()
    }
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            junk_score: 6.0,
            reject_score: 15.0,
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
            url_blocklist: Vec::new(),
            dns: None,
            dns_timeout: Duration::from_secs(5),
            bayes_min_trained: bayes::MIN_TRAINED,
        }
    }
}

/// What the verdict may use besides the message.
#[derive(Debug, Clone)]
pub struct Facts {
    pub auth: Option<AuthReport>,
    /// Client address and HELO name, for mail that came over SMTP.
    pub client: Option<(IpAddr, String)>,
    /// Our own name (a client claiming it in HELO is lying).
    pub hostname: String,
}

/// The verdict on one message: rules that hold for every recipient, and
/// each account's own (its classifier, its lists).
#[derive(Debug, Clone)]
pub struct Verdict {
    shared: Vec<Hit>,
    accounts: Vec<(AccountId, Vec<Hit>)>,
    junk_score: f64,
    reject_score: f64,
}

/// The verdict as one account sees it.
#[derive(Debug, Clone)]
pub struct AccountVerdict {
    pub score: f64,
    pub hits: Vec<Hit>,
    pub required: f64,
    pub junk: bool,
}

impl Verdict {
    /// Score of the rules that hold for every recipient.
    pub fn shared_score(&self) -> f64 {
        total(&self.shared)
    }

    /// A refusal when the shared score reaches the reject threshold; only
    /// the shared part counts, so the refusal holds for the whole
    /// transaction (SMTP has one reply to DATA).
    pub fn refusal(&self) -> Option<Refusal> {
        (self.shared_score() >= self.reject_score).then(|| Refusal {
            code: 550,
            status: "5.7.1",
            text: format!(
                "Message refused as spam (score {:.1}: {})",
                self.shared_score(),
                self.shared
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        })
    }

    pub fn for_account(&self, account: AccountId) -> AccountVerdict {
        let mut hits = self.shared.clone();
        if let Some((_, own)) = self.accounts.iter().find(|(a, _)| *a == account) {
            hits.extend(own.iter().cloned());
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.name.cmp(&b.name)));
        let score = total(&hits);
        AccountVerdict {
            score,
            junk: score >= self.junk_score,
            required: self.junk_score,
            hits,
        }
    }
}

fn total(hits: &[Hit]) -> f64 {
    hits.iter().map(|h| h.score).sum()
}

impl AccountVerdict {
    /// The `X-Spam-Status:` field, folded, CRLF-terminated.
    pub fn header(&self) -> String {
        let mut out = format!(
            "X-Spam-Status: {}, score={:.1} required={:.1}\r\n\ttests=",
            if self.junk { "Yes" } else { "No" },
            self.score,
            self.required
        );
        if self.hits.is_empty() {
            out.push_str("NONE");
        }
        let mut line = 7;
        for (i, h) in self.hits.iter().enumerate() {
            let item = format!("{}={:.1}", h.name, h.score);
            if i > 0 {
                out.push(',');
                if line + item.len() + 2 > 76 {
                    out.push_str("\r\n\t");
                    line = 1;
                } else {
                    out.push(' ');
                    line += 2;
                }
            }
            line += item.len();
            out.push_str(&item);
        }
        out.push_str("\r\n");
        out
    }
}

/// Judge `message` for `accounts`. Content analysis and tokenizing run on
/// a blocking thread; DNS list lookups share one deadline.
pub async fn judge(
    store: SharedStore,
    cfg: &SpamConfig,
    message: Arc<Vec<u8>>,
    facts: Facts,
    accounts: &[AccountId],
) -> Result<Verdict, StoreError> {
    let blocklist = cfg.url_blocklist.clone();
    let models: Vec<AccountId> = std::iter::once(0).chain(accounts.iter().copied()).collect();
    // Without a model that has learnt enough there is nothing to tokenize
    // for (a new server, accounts that never trained): one read tells.
    let from = rules::from_header_address(&message);
    let first = store.spam_facts(&models, from.as_deref(), &[]).await?;
    let usable = first
        .iter()
        .any(|f| f.counts.spam_messages >= cfg.bayes_min_trained && f.counts.ham_messages >= cfg.bayes_min_trained);
    let (content, tokens) = tokio::task::spawn_blocking(move || {
        // One parse for every rule and the tokenizer.
        match mail_parser::MessageParser::default().parse(message.as_slice()) {
            Some(msg) => (
                rules::content_of(&msg, &blocklist, now_secs()),
                if usable { bayes::tokens_of(&msg) } else { Vec::new() },
            ),
            None => (rules::content(&message, &blocklist, now_secs()), Vec::new()),
        }
    })
    .await
    .map_err(|e| StoreError::Backend(format!("spam analysis failed: {e}")))?;
    let mut shared = content;
    if let Some(auth) = &facts.auth {
        shared.extend(auth_hits(auth));
    }
    if let Some((ip, helo)) = &facts.client {
        shared.extend(helo_hits(*ip, helo, &facts.hostname));
        shared.extend(dns_list_hits(cfg, *ip).await);
    }
    // The From: address vouches for the sender only when authenticated
    // (DMARC pass), or when nothing was checked (trusted networks): a
    // forged allowlisted address must not get through.
    let authenticated = facts.auth.as_ref().is_none_or(|a| a.dmarc == Outcome::Pass);
    // Lists and correspondents came with the first read; the token counts
    // need a second, only when some model can judge.
    let mut facts_of = first;
    if usable {
        let counts = store.spam_facts(&models, None, &tokens).await?;
        for (f, c) in facts_of.iter_mut().zip(counts) {
            f.counts = c.counts;
        }
    }
    let site_p = facts_of
        .first()
        .and_then(|f| bayes::spam_probability(&f.counts, cfg.bayes_min_trained));
    let mut per_account = Vec::with_capacity(accounts.len());
    for (&account, f) in accounts.iter().zip(facts_of.iter().skip(1)) {
        let mut hits = Vec::new();
        if let Some(entry) = &f.list {
            let who = if entry.account_id == 0 { "SITE" } else { "USER" };
            if !entry.allow {
                hits.push(Hit::new(&format!("{who}_BLOCKLIST"), 20.0));
            } else if authenticated {
                hits.push(Hit::new(&format!("{who}_ALLOWLIST"), -20.0));
            }
        }
        if authenticated && f.correspondent {
            hits.push(Hit::new("TRUSTED_SENDER", -3.0));
        }
        let (p, model) = match bayes::spam_probability(&f.counts, cfg.bayes_min_trained) {
            Some(p) if account != 0 => (Some(p), "BAYES"),
            _ => (site_p, "BAYES_SITE"),
        };
        if let Some((band, score)) = p.and_then(bayes::band) {
            hits.push(Hit::new(&format!("{model}_{band}"), score));
        }
        per_account.push((account, hits));
    }
    Ok(Verdict {
        shared,
        accounts: per_account,
        junk_score: cfg.junk_score,
        reject_score: cfg.reject_score,
    })
}

/// Apply the pending training events (moves into and out of Junk): each
/// message is tokenized on a blocking thread and counted in its
/// account's model and the site-wide one. Returns how many were handled.
pub async fn train_pending(store: &SharedStore) -> Result<usize, StoreError> {
    let events = store.training_events(64).await?;
    for e in &events {
        let raw = match store.raw_message(e.email_id).await {
            Ok(r) => r,
            // Deleted before it could be learnt from: nothing to learn.
            Err(StoreError::NotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        let tokens = tokio::task::spawn_blocking(move || bayes::tokens(&raw))
            .await
            .map_err(|err| StoreError::Backend(format!("tokenizing failed: {err}")))?;
        let changed = store.bayes_train(e.account_id, e.email_id, e.spam, &tokens).await?;
        tracing::debug!(
            account = e.account_id,
            email = e.email_id,
            spam = e.spam,
            changed,
            "trained"
        );
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    store.training_done(&ids).await?;
    Ok(events.len())
}

/// Learn from users' moves until `stop`: after each commit (a move into or
/// out of Junk is one), and every few seconds in case a wake-up was missed.
pub async fn run_trainer(store: SharedStore, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut changes = store.subscribe();
    loop {
        let more = match train_pending(&store).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "spam training failed; retrying");
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = changes.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

fn now_secs() -> i64 {
    letterbox_store::unix_now()
}

/// Rules on the authentication results.
pub fn auth_hits(a: &AuthReport) -> Vec<Hit> {
    let mut hits = Vec::new();
    match a.spf {
        Outcome::Fail => hits.push(Hit::new("SPF_FAIL", 1.5)),
        Outcome::SoftFail => hits.push(Hit::new("SPF_SOFTFAIL", 0.7)),
        Outcome::Pass => hits.push(Hit::new("SPF_PASS", -0.1)),
        _ => {}
    }
    if !a.from_domain.is_empty() && a.dkim_pass_for(&a.from_domain) {
        hits.push(Hit::new("DKIM_VALID_AUTHOR", -0.5));
    } else if a.dkim.iter().any(|(_, o)| *o == Outcome::Fail) {
        hits.push(Hit::new("DKIM_INVALID", 0.5));
    }
    // A failure of a domain with p=quarantine/reject is handled by the
    // policy step; here the failures it lets through.
    if a.dmarc == Outcome::Fail {
        hits.push(Hit::new("DMARC_FAIL", 1.5));
    }
    if a.iprev == Outcome::Fail || a.iprev == Outcome::PermError {
        hits.push(Hit::new("IPREV_FAIL", 1.0));
    }
    hits
}

/// Rules on the HELO/EHLO name (RFC 5321 §4.1.4).
pub fn helo_hits(ip: IpAddr, helo: &str, hostname: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    let helo = helo.trim().trim_end_matches('.');
    if let Some(literal) = helo.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let literal = literal
            .strip_prefix("IPv6:")
            .or_else(|| literal.strip_prefix("ipv6:"))
            .unwrap_or(literal);
        if literal.parse::<IpAddr>().ok() != Some(ip) {
            hits.push(Hit::new("HELO_IP_MISMATCH", 1.0));
        }
    } else if helo.eq_ignore_ascii_case(hostname) {
        hits.push(Hit::new("HELO_IS_OURS", 3.0));
    } else if !helo.contains('.') {
        hits.push(Hit::new("HELO_NO_DOT", 1.0));
    } else if helo.parse::<IpAddr>().is_ok() {
        // An address without the brackets of an address literal.
        hits.push(Hit::new("HELO_BARE_IP", 1.0));
    }
    hits
}

/// DNS block and allow lists (RFC 5782): a listed address answers with an
/// A record in 127.0.0.0/8; 127.255.255.0/24 answers are a list's error
/// codes (refused queries, over quota), not listings.
async fn dns_list_hits(cfg: &SpamConfig, ip: IpAddr) -> Vec<Hit> {
    let Some(dns) = &cfg.dns else { return Vec::new() };
    if cfg.dnsbl.is_empty() && cfg.dnswl.is_empty() {
        return Vec::new();
    }
    let lists: Vec<(&str, f64, &str)> = cfg
        .dnsbl
        .iter()
        .map(|(z, s)| (z.as_str(), *s, "RBL"))
        .chain(cfg.dnswl.iter().map(|(z, s)| (z.as_str(), *s, "DNSWL")))
        .collect();
    let lookups = lists.iter().map(|(zone, score, kind)| {
        let name = dnsxl_name(ip, zone);
        async move {
            let listed = match tokio::time::timeout(cfg.dns_timeout, dns.ips(&name)).await {
                Ok(Ok(ips)) => ips.iter().any(|a| match a {
                    IpAddr::V4(v4) => {
                        let o = v4.octets();
                        o[0] == 127 && !(o[1] == 255 && o[2] == 255)
                    }
                    IpAddr::V6(_) => false,
                }),
                _ => false,
            };
            listed.then(|| Hit {
                name: format!(
                    "{kind}_{}",
                    zone.trim_matches('.').to_ascii_uppercase().replace(['.', '-'], "_")
                ),
                score: *score,
            })
        }
    });
    futures_util::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_rules() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(helo_hits(ip, "[192.0.2.1]", "mx.test").is_empty());
        assert_eq!(helo_hits(ip, "[192.0.2.2]", "mx.test")[0].name, "HELO_IP_MISMATCH");
        assert_eq!(helo_hits(ip, "MX.test", "mx.test")[0].name, "HELO_IS_OURS");
        assert_eq!(helo_hits(ip, "localhost", "mx.test")[0].name, "HELO_NO_DOT");
        assert_eq!(helo_hits(ip, "192.0.2.1", "mx.test")[0].name, "HELO_BARE_IP");
        assert!(helo_hits(ip, "mail.sender.test", "mx.test").is_empty());
    }

    #[test]
    fn header_lists_every_rule() {
        let v = Verdict {
            shared: vec![Hit::new("A_RULE", 1.0), Hit::new("B_RULE", 5.5)],
            accounts: vec![(7, vec![Hit::new("BAYES_99", 3.5)])],
            junk_score: 6.0,
            reject_score: 15.0,
        };
        let a = v.for_account(7);
        assert!(a.junk);
        assert_eq!(
            a.header(),
            "X-Spam-Status: Yes, score=10.0 required=6.0\r\n\ttests=B_RULE=5.5, BAYES_99=3.5, A_RULE=1.0\r\n"
        );
        let b = v.for_account(8);
        assert!(b.junk && b.score == 6.5);
        assert!(v.refusal().is_none());
    }
}
