//! Connection-level reputation (issue 15): early talkers, per-IP and
//! per-sender rate limits, and optional greylisting. State is in memory,
//! per node (with several nodes each enforces its own share: a client
//! spreading over N nodes gets up to N times the limit), bounded in size;
//! when a table is full, the check fails open rather than refuse mail.

use crate::Refusal;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Settings (`[inbound]` keys).
#[derive(Debug, Clone)]
pub struct ReputationConfig {
    /// Wait this long before the greeting; a client that talks first is
    /// refused (RFC 5321 §4.3.1: the client waits for the greeting). Zero: off.
    pub greet_pause: Duration,
    /// Messages per client address (IPv6: per /64) per hour; 0: no limit.
    pub max_messages_per_ip: u32,
    /// Messages per envelope sender per hour; 0: no limit.
    pub max_messages_per_sender: u32,
    /// Greylisting delay (first attempt of a new (network, sender,
    /// recipient) is deferred; a retry after the delay passes and lets the
    /// network through for `GREYLIST_PASS`). `None`: off.
    pub greylist: Option<Duration>,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            greet_pause: Duration::ZERO,
            max_messages_per_ip: 0,
            max_messages_per_sender: 0,
            greylist: None,
        }
    }
}

/// Rate-limit window.
const WINDOW: Duration = Duration::from_secs(3600);
/// Entries each table may hold.
const MAX_ENTRIES: usize = 200_000;
/// How long a greylist triplet waits for its retry.
const GREYLIST_RETRY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How long a network that retried is let through without delay.
pub const GREYLIST_PASS: Duration = Duration::from_secs(36 * 24 * 3600);

/// The state of all connections of this node.
#[derive(Debug, Default)]
pub struct Reputation {
    pub config: ReputationConfig,
    per_ip: Mutex<Counter<IpAddr>>,
    per_sender: Mutex<Counter<String>>,
    greylist: Mutex<Greylist>,
}

#[derive(Debug)]
struct Counter<K> {
    counts: HashMap<K, (Instant, u32)>,
}

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Counter { counts: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Counter<K> {
    /// Count one more for `key`; false once the window's limit is passed.
    fn hit(&mut self, key: &K, limit: u32, now: Instant) -> bool {
        if limit == 0 {
            return true;
        }
        if self.counts.len() >= MAX_ENTRIES {
            self.counts.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if self.counts.len() >= MAX_ENTRIES {
                return true;
            }
        }
        let e = self.counts.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 <= limit
    }
}

#[derive(Debug, Default)]
struct Greylist {
    /// (network, sender, recipient) → first attempt.
    triplets: HashMap<(IpAddr, String, String), Instant>,
    /// Networks that retried → until when they pass.
    passed: HashMap<IpAddr, Instant>,
}

/// The address that stands for a client: IPv4 as is, IPv6 by its /64
/// (one host holds a whole /64; per-address state would be trivial to evade).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
    }
}

impl Reputation {
    pub fn new(config: ReputationConfig) -> Reputation {
        Reputation {
            config,
            ..Reputation::default()
        }
    }

    /// RFC 5321 §4.3.1: a client must wait for the greeting.
    pub fn early_talker() -> Refusal {
        Refusal {
            code: 554,
            status: "5.5.0",
            text: "Protocol error: data sent before the greeting".into(),
        }
    }

    /// At MAIL FROM: the per-IP and per-sender limits.
    pub fn mail_from(&self, ip: IpAddr, sender: &str, now: Instant) -> Option<Refusal> {
        let c = &self.config;
        let ip_ok = lock(&self.per_ip).hit(&network(ip), c.max_messages_per_ip, now);
        let sender_ok = sender.is_empty()
            || lock(&self.per_sender).hit(&sender.to_ascii_lowercase(), c.max_messages_per_sender, now);
        (!ip_ok || !sender_ok).then(|| Refusal {
            code: 451,
            status: "4.7.1",
            text: if ip_ok {
                "Too many messages from this sender, try again later".into()
            } else {
                "Too many messages from your address, try again later".into()
            },
        })
    }

    /// At RCPT: greylisting, when on.
    pub fn rcpt(&self, ip: IpAddr, sender: &str, rcpt: &str, now: Instant) -> Option<Refusal> {
        let delay = self.config.greylist?;
        let net = network(ip);
        let mut g = lock(&self.greylist);
        if g.passed.get(&net).is_some_and(|until| *until > now) {
            return None;
        }
        let key = (net, sender.to_ascii_lowercase(), rcpt.to_ascii_lowercase());
        match g.triplets.get(&key).copied() {
            Some(first) if now.duration_since(first) >= delay && now.duration_since(first) < GREYLIST_RETRY_WINDOW => {
                g.triplets.remove(&key);
                g.passed.insert(net, now + GREYLIST_PASS);
                None
            }
            Some(first) if now.duration_since(first) < delay => Some(greylisted()),
            _ => {
                if g.triplets.len() >= MAX_ENTRIES {
                    g.triplets
                        .retain(|_, first| now.duration_since(*first) < GREYLIST_RETRY_WINDOW);
                    g.passed.retain(|_, until| *until > now);
                    if g.triplets.len() >= MAX_ENTRIES {
                        return None;
                    }
                }
                g.triplets.insert(key, now);
                Some(greylisted())
            }
        }
    }
}

fn greylisted() -> Refusal {
    Refusal {
        code: 451,
        status: "4.7.1",
        text: "Greylisted, please try again later".into(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_per_ip_and_sender() {
        let r = Reputation::new(ReputationConfig {
            max_messages_per_ip: 3,
            max_messages_per_sender: 2,
            ..Default::default()
        });
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(r.mail_from(ip, "a@x.test", t).is_none());
        assert!(r.mail_from(ip, "A@x.test", t).is_none());
        assert_eq!(
            r.mail_from(ip, "a@x.test", t).unwrap().code,
            451,
            "third from one sender"
        );
        assert!(r.mail_from(ip, "", t).is_some(), "fourth from one address");
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff".parse().unwrap();
        for _ in 0..3 {
            assert!(r.mail_from(v6a, "", t).is_none());
        }
        assert!(r.mail_from(v6b, "", t).is_some(), "one /64 is one client");
        assert!(r.mail_from(ip, "", t + WINDOW).is_none(), "a new window");
    }

    #[test]
    fn greylisting_defers_then_passes_and_remembers() {
        let r = Reputation::new(ReputationConfig {
            greylist: Some(Duration::from_secs(60)),
            ..Default::default()
        });
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(r.rcpt(ip, "s@x.test", "u@y.test", t).is_some());
        assert!(
            r.rcpt(ip, "s@x.test", "u@y.test", t + Duration::from_secs(10))
                .is_some(),
            "too soon"
        );
        assert!(r
            .rcpt(ip, "s@x.test", "u@y.test", t + Duration::from_secs(61))
            .is_none());
        assert!(
            r.rcpt(ip, "other@x.test", "v@y.test", t + Duration::from_secs(62))
                .is_none(),
            "the network passed"
        );
        let off = Reputation::default();
        assert!(off.rcpt(ip, "s", "u", t).is_none());
    }
}
