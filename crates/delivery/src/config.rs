//! Settings of the outbound queue, filled from `[delivery]` in the server's
//! config file.

use crate::client::Timeouts;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Wire security towards a smarthost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmarthostTls {
    /// STARTTLS, required and verified.
    StartTls,
    /// TLS from the first byte (RFC 8314), verified.
    Implicit,
    /// Plaintext (a relay on a trusted network only).
    None,
}

/// One relay that takes all outbound mail.
#[derive(Debug, Clone)]
pub struct Smarthost {
    /// `host:port` as written.
    pub host: String,
    pub port: u16,
    pub tls: SmarthostTls,
    /// Verify the relay's certificate (against the system roots and `ca_file`).
    pub verify: bool,
    /// Extra PEM roots for the relay's certificate.
    pub ca_file: Option<PathBuf>,
    /// AUTH PLAIN credentials.
    pub credentials: Option<(String, String)>,
}

/// A host to connect to, from a static route: a name resolved through DNS
/// (or an IP literal) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parse `host:port`, `[v6]:port` or a bare host with `default_port`.
    pub fn parse(s: &str, default_port: u16) -> Option<HostPort> {
        let s = s.trim();
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Some(HostPort {
                host: sa.ip().to_string(),
                port: sa.port(),
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p.parse().ok()?),
            _ => (s, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty() && port != 0).then(|| HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// Everything the queue worker needs to know.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Name in EHLO, Reporting-MTA and bounce From:.
    pub hostname: String,
    /// Identifies this node's leases on a shared queue.
    pub node_id: String,
    /// Port for hosts found through MX/A lookups (25 but for tests).
    pub port: u16,
    /// DNS server to ask instead of the system's.
    pub dns_server: Option<SocketAddr>,
    /// Static routes: domain → hosts tried in order, bypassing DNS for the domain.
    pub routes: HashMap<String, Vec<HostPort>>,
    pub smarthost: Option<Smarthost>,
    /// Delays before attempt 2, 3, …; the last repeats.
    pub retry_schedule: Vec<Duration>,
    /// Give up after this age.
    pub max_age: Duration,
    /// Delay-warning DSN after this age; `None` never.
    pub warn_after: Option<Duration>,
    /// How often the queue is scanned when nothing wakes the worker.
    pub poll: Duration,
    /// How long a claimed entry stays reserved for this worker.
    pub lease: Duration,
    /// Deliveries at once, in all.
    pub max_concurrent: usize,
    /// Deliveries at once to one destination domain.
    pub max_per_domain: usize,
    /// How long an idle connection is kept for reuse.
    pub idle_connection: Duration,
    pub timeouts: Timeouts,
}

impl DeliveryConfig {
    /// Defaults for `hostname`.
    pub fn new(hostname: &str) -> DeliveryConfig {
        DeliveryConfig {
            hostname: hostname.to_string(),
            node_id: hostname.to_string(),
            port: 25,
            dns_server: None,
            routes: HashMap::new(),
            smarthost: None,
            retry_schedule: [60, 300, 900, 1800, 3600, 7200, 14400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_age: Duration::from_secs(5 * 24 * 3600),
            warn_after: Some(Duration::from_secs(4 * 3600)),
            poll: Duration::from_secs(5),
            lease: Duration::from_secs(1800),
            max_concurrent: 32,
            max_per_domain: 4,
            idle_connection: Duration::from_secs(30),
            timeouts: Timeouts::default(),
        }
    }

    /// Delay after the `attempts`-th failed attempt (1-based), before jitter.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.retry_schedule.len().saturating_sub(1));
        self.retry_schedule.get(i).copied().unwrap_or(Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let hp = |h: &str, p| {
            Some(HostPort {
                host: h.into(),
                port: p,
            })
        };
        assert_eq!(HostPort::parse("127.0.0.1:2525", 25), hp("127.0.0.1", 2525));
        assert_eq!(HostPort::parse("[::1]:26", 25), hp("::1", 26));
        assert_eq!(HostPort::parse("MX.Example.com", 25), hp("mx.example.com", 25));
        assert_eq!(HostPort::parse("relay.test:587", 25), hp("relay.test", 587));
        assert_eq!(HostPort::parse("relay.test:x", 25), None);
        assert_eq!(HostPort::parse(":25", 25), None);
    }

    #[test]
    fn schedule_repeats_last_step() {
        let mut c = DeliveryConfig::new("h");
        c.retry_schedule = vec![Duration::from_secs(1), Duration::from_secs(5)];
        assert_eq!(c.retry_delay(1), Duration::from_secs(1));
        assert_eq!(c.retry_delay(2), Duration::from_secs(5));
        assert_eq!(c.retry_delay(9), Duration::from_secs(5));
    }
}
