//! `[delivery]`, `[delivery.routes]`, `[delivery.smarthost]` and `[dkim]`.

use super::{invalid, ConfigError};
use letterbox_delivery::{DeliveryConfig, HostPort, Smarthost, SmarthostTls};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[delivery]`: the outbound queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// Port of hosts found through MX/A lookups (default 25).
    pub port: Option<u16>,
    /// DNS server `ip:port` (default: /etc/resolv.conf).
    pub dns: Option<String>,
    /// Delays before attempt 2, 3, …, seconds; the last repeats.
    pub retry_schedule_secs: Option<Vec<u64>>,
    /// Give up after this many seconds (default 5 days).
    pub max_age_secs: Option<u64>,
    /// Delay warning after this many seconds; 0 = never (default 4 hours).
    pub warn_after_secs: Option<u64>,
    /// Queue scan interval, seconds (default 5).
    pub poll_secs: Option<u64>,
    /// Deliveries at once (default 32).
    pub concurrency: Option<usize>,
    /// Deliveries at once per destination domain (default 4).
    pub per_domain: Option<usize>,
    /// Seconds to wait for a TCP connection (default 30).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds to wait for a reply (default 300, RFC 5321 §4.5.3.2).
    pub command_timeout_secs: Option<u64>,
    /// Name of this node's queue leases (default: the hostname).
    pub node_id: Option<String>,
    /// Static routes: domain → "host:port" or a list of them.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteValue>,
    pub smarthost: Option<SmarthostSection>,
}

/// One route or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RouteValue {
    One(String),
    Many(Vec<String>),
}

/// `[delivery.smarthost]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmarthostSection {
    /// `host:port` (port default 587).
    pub address: String,
    /// "starttls" (default), "implicit" or "none".
    pub tls: Option<String>,
    /// Verify the relay's certificate (default true).
    pub verify_tls: Option<bool>,
    /// Extra trusted roots (PEM) for the relay.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// `[dkim]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSection {
    /// Selector prefix: keys are published as `<selector>-ed25519` and `<selector>-rsa`.
    pub selector: Option<String>,
    /// Sign mail submitted by local users (default true).
    pub sign: Option<bool>,
}

fn secs(key: &str, v: Option<u64>, default: u64, allow_zero: bool) -> Result<Duration, ConfigError> {
    match v {
        Some(0) if !allow_zero => Err(invalid(key, "must be greater than 0")),
        Some(n) => Ok(Duration::from_secs(n)),
        None => Ok(Duration::from_secs(default)),
    }
}

/// Apply defaults and check `[delivery]`.
pub fn delivery_config(d: &DeliverySection, hostname: &str) -> Result<DeliveryConfig, ConfigError> {
    let mut c = DeliveryConfig::new(hostname);
    if let Some(p) = d.port {
        if p == 0 {
            return Err(invalid("delivery.port", "must be greater than 0"));
        }
        c.port = p;
    }
    if let Some(dns) = &d.dns {
        let addr = dns
            .parse::<SocketAddr>()
            .or_else(|_| dns.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| invalid("delivery.dns", format!("'{dns}' is not an ip or ip:port")))?;
        c.dns_server = Some(addr);
    }
    if let Some(s) = &d.retry_schedule_secs {
        if s.is_empty() || s.contains(&0) {
            return Err(invalid(
                "delivery.retry_schedule_secs",
                "needs at least one delay, each above 0",
            ));
        }
        c.retry_schedule = s.iter().map(|n| Duration::from_secs(*n)).collect();
    }
    c.max_age = secs("delivery.max_age_secs", d.max_age_secs, c.max_age.as_secs(), false)?;
    c.warn_after = match d.warn_after_secs {
        Some(0) => None,
        Some(n) => Some(Duration::from_secs(n)),
        None => c.warn_after,
    };
    c.poll = secs("delivery.poll_secs", d.poll_secs, c.poll.as_secs(), false)?;
    c.timeouts.connect = secs(
        "delivery.connect_timeout_secs",
        d.connect_timeout_secs,
        c.timeouts.connect.as_secs(),
        false,
    )?;
    c.timeouts.command = secs(
        "delivery.command_timeout_secs",
        d.command_timeout_secs,
        c.timeouts.command.as_secs(),
        false,
    )?;
    if let Some(n) = d.concurrency {
        if n == 0 {
            return Err(invalid("delivery.concurrency", "must be greater than 0"));
        }
        c.max_concurrent = n;
    }
    if let Some(n) = d.per_domain {
        if n == 0 {
            return Err(invalid("delivery.per_domain", "must be greater than 0"));
        }
        c.max_per_domain = n;
    }
    if let Some(n) = &d.node_id {
        if n.trim().is_empty() {
            return Err(invalid("delivery.node_id", "must not be empty"));
        }
        c.node_id = n.trim().to_string();
    }
    for (domain, v) in &d.routes {
        let key = format!("delivery.routes.\"{domain}\"");
        let list = match v {
            RouteValue::One(s) => vec![s.clone()],
            RouteValue::Many(l) => l.clone(),
        };
        if list.is_empty() {
            return Err(invalid(&key, "needs at least one host"));
        }
        let hops = list
            .iter()
            .map(|s| HostPort::parse(s, c.port).ok_or_else(|| invalid(&key, format!("'{s}' is not host or host:port"))))
            .collect::<Result<Vec<_>, _>>()?;
        c.routes.insert(domain.trim().to_ascii_lowercase(), hops);
    }
    if let Some(s) = &d.smarthost {
        let hp = HostPort::parse(&s.address, 587).ok_or_else(|| {
            invalid(
                "delivery.smarthost.address",
                format!("'{}' is not host:port", s.address),
            )
        })?;
        let tls = match s.tls.as_deref().unwrap_or("starttls") {
            "starttls" => SmarthostTls::StartTls,
            "implicit" => SmarthostTls::Implicit,
            "none" => SmarthostTls::None,
            other => {
                return Err(invalid(
                    "delivery.smarthost.tls",
                    format!("'{other}' is not one of starttls, implicit, none"),
                ))
            }
        };
        let credentials = match (&s.username, &s.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "delivery.smarthost.username",
                    "username and password go together",
                ))
            }
        };
        c.smarthost = Some(Smarthost {
            host: hp.host,
            port: hp.port,
            tls,
            verify: s.verify_tls.unwrap_or(true),
            ca_file: s.ca_file.clone(),
            credentials,
        });
    }
    Ok(c)
}

/// Checked `[dkim]` settings.
#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub selector: String,
    pub sign: bool,
}

/// Apply defaults and check `[dkim]`.
pub fn dkim_settings(d: &DkimSection) -> Result<DkimSettings, ConfigError> {
    let selector = d.selector.clone().unwrap_or_else(|| "lb".to_string());
    let ok = !selector.is_empty()
        && selector.len() <= 50
        && selector
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !ok {
        return Err(invalid("dkim.selector", format!("'{selector}' is not a DNS label")));
    }
    Ok(DkimSettings {
        selector,
        sign: d.sign.unwrap_or(true),
    })
}
