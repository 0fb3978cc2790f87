//! `[inbound]`: the checks and verdicts of mail that arrives (README,
//! "Inbound trust").

use super::{invalid, ConfigError};
use letterbox_inbound::{DmarcRejectAction, InboundConfig, PolicyConfig, SpamConfig};
use serde::Deserialize;
use std::time::Duration;

/// `[inbound]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundSection {
    /// SPF/DKIM/ARC/DMARC/iprev checks of mail from outside (default true).
    pub checks: Option<bool>,
    /// Networks whose mail is not checked (default loopback).
    pub trusted_networks: Option<Vec<String>>,
    /// "reject" (default) or "quarantine": what a DMARC p=reject failure does.
    pub dmarc_reject: Option<String>,
    /// Unauthenticated mail from outside in one of our domains' names is a
    /// DMARC reject (default true).
    pub reject_forged_own_domain: Option<bool>,
    /// ARC sealers trusted to vouch for DMARC (mailing lists, forwarders).
    pub trusted_arc_sealers: Option<Vec<String>>,
    /// Score from which mail goes to Junk (default 6).
    pub junk_score: Option<f64>,
    /// Score from which mail is refused (default 15).
    pub reject_score: Option<f64>,
    /// DNS block lists, "zone" or "zone=score" (default zen.spamhaus.org=4;
    /// none with --dev).
    pub dnsbl: Option<Vec<String>>,
    /// DNS allow lists, "zone" or "zone=score" (default list.dnswl.org=-2;
    /// none with --dev).
    pub dnswl: Option<Vec<String>>,
    /// Domains that make a link suspicious.
    pub url_blocklist: Option<Vec<String>>,
    /// Deadline of each group of DNS lookups, seconds (default 10).
    pub dns_timeout_secs: Option<u64>,
    /// Messages of each class a Bayes model must have learnt before its
    /// verdict counts (default 10).
    pub bayes_min_trained: Option<u64>,
    /// Pause before the greeting on port 25, milliseconds; clients that
    /// talk first are refused (default 500; 0 with --dev).
    pub greet_pause_ms: Option<u64>,
    /// Messages per client address (IPv6 /64) per hour (default 1000; 0 = no limit).
    pub max_messages_per_ip_per_hour: Option<u32>,
    /// Messages per envelope sender per hour (default 500; 0 = no limit).
    pub max_messages_per_sender_per_hour: Option<u32>,
    /// Greylisting delay, seconds (default 0: off; 300 is common).
    pub greylist_delay_secs: Option<u64>,
    /// Send daily DMARC aggregate reports to the domains that ask (default false).
    pub dmarc_reports: Option<bool>,
    /// From: of those reports (default postmaster@HOSTNAME).
    pub dmarc_report_from: Option<String>,
}

fn lists(key: &str, v: &Option<Vec<String>>, default: &[&str], score: f64) -> Result<Vec<(String, f64)>, ConfigError> {
    let items: Vec<String> = match v {
        Some(v) => v.clone(),
        None => default.iter().map(|s| s.to_string()).collect(),
    };
    items
        .iter()
        .map(|item| {
            let (zone, s) = match item.split_once('=') {
                Some((z, s)) => (
                    z.trim(),
                    s.trim()
                        .parse::<f64>()
                        .map_err(|_| invalid(key, format!("'{item}': the score after = is not a number")))?,
                ),
                None => (item.trim(), score),
            };
            if zone.is_empty() || !zone.contains('.') {
                return Err(invalid(key, format!("'{item}' is not a DNS zone")));
            }
            Ok((zone.trim_matches('.').to_ascii_lowercase(), s))
        })
        .collect()
}

pub fn inbound_config(s: &InboundSection, dev: bool, hostname: &str) -> Result<InboundConfig, ConfigError> {
    let defaults = InboundConfig::default();
    let trusted_networks = match &s.trusted_networks {
        None => defaults.trusted_networks,
        Some(v) => v
            .iter()
            .map(|n| {
                n.trim()
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| n.trim().parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            "inbound.trusted_networks",
                            format!("'{n}' is not an address or network"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let dmarc_reject = match s.dmarc_reject.as_deref() {
        None | Some("reject") => DmarcRejectAction::Reject,
        Some("quarantine") => DmarcRejectAction::Quarantine,
        Some(other) => {
            return Err(invalid(
                "inbound.dmarc_reject",
                format!("'{other}': use \"reject\" or \"quarantine\""),
            ))
        }
    };
    let junk_score = s.junk_score.unwrap_or(6.0);
    let reject_score = s.reject_score.unwrap_or(15.0);
    if !junk_score.is_finite() || !reject_score.is_finite() || reject_score < junk_score {
        return Err(invalid(
            "inbound.reject_score",
            "must be a number no lower than inbound.junk_score",
        ));
    }
    let dns_timeout = Duration::from_secs(match s.dns_timeout_secs {
        Some(0) => return Err(invalid("inbound.dns_timeout_secs", "must be greater than 0")),
        Some(n) => n,
        None => 10,
    });
    let greet_pause_ms = s.greet_pause_ms.unwrap_or(if dev { 0 } else { 500 });
    if greet_pause_ms > 30_000 {
        return Err(invalid("inbound.greet_pause_ms", "must be at most 30000"));
    }
    let reputation = letterbox_inbound::ReputationConfig {
        greet_pause: Duration::from_millis(greet_pause_ms),
        max_messages_per_ip: s.max_messages_per_ip_per_hour.unwrap_or(if dev { 0 } else { 1000 }),
        max_messages_per_sender: s.max_messages_per_sender_per_hour.unwrap_or(if dev { 0 } else { 500 }),
        greylist: s.greylist_delay_secs.filter(|d| *d > 0).map(Duration::from_secs),
    };
    let dmarc_report_from = match &s.dmarc_report_from {
        Some(a) if a.contains('@') && !a.contains(char::is_whitespace) => a.trim().to_string(),
        Some(a) => return Err(invalid("inbound.dmarc_report_from", format!("'{a}' is not an address"))),
        None => format!("postmaster@{hostname}"),
    };
    Ok(InboundConfig {
        dmarc_reports: s.dmarc_reports.unwrap_or(false),
        dmarc_report_from,
        reputation,
        checks: s.checks.unwrap_or(true),
        trusted_networks,
        policy: PolicyConfig {
            dmarc_reject,
            trusted_arc_sealers: s
                .trusted_arc_sealers
                .iter()
                .flatten()
                .map(|d| d.trim().to_ascii_lowercase())
                .collect(),
            reject_forged_own_domain: s.reject_forged_own_domain.unwrap_or(true),
        },
        spam: SpamConfig {
            junk_score,
            reject_score,
            dnsbl: lists(
                "inbound.dnsbl",
                &s.dnsbl,
                if dev { &[] } else { &["zen.spamhaus.org"] },
                4.0,
            )?,
            dnswl: lists(
                "inbound.dnswl",
                &s.dnswl,
                if dev { &[] } else { &["list.dnswl.org"] },
                -2.0,
            )?,
            url_blocklist: s
                .url_blocklist
                .iter()
                .flatten()
                .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
                .collect(),
            dns: None,
            dns_timeout,
            bayes_min_trained: match s.bayes_min_trained {
                Some(0) => return Err(invalid("inbound.bayes_min_trained", "must be greater than 0")),
                Some(n) => n,
                None => letterbox_inbound::spam::bayes::MIN_TRAINED,
            },
        },
        dns_timeout,
    })
}
