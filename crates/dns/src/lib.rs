//! The process's one DNS resolver, shared by outbound routing (MX, RFC
//! 5321 §5.1; null MX, RFC 7505; addresses) and the inbound checks (SPF,
//! DKIM, DMARC and iprev through `mail-auth`, which takes the same hickory
//! resolver; DNSBL/DNSWL lookups, RFC 5782). One resolver means one cache.
//! `server` overrides the system's resolvers (tests run a DNS server on
//! loopback). The [`Dns`] trait lets routing be tested without a resolver.

use async_trait::async_trait;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What a domain's MX records say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// Exchanges with their preference, in DNS order.
    Hosts(Vec<(u16, String)>),
    /// The domain exists but has no MX: the domain itself is the host (§5.1).
    NoMx,
    /// RFC 7505: the domain accepts no mail.
    NullMx,
}

/// A failed lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN or no records of the kind: a later attempt will not help.
    #[error("{0}")]
    NotFound(String),
    /// Timeout, SERVFAIL, network trouble: try later.
    #[error("{0}")]
    Temporary(String),
}

/// The lookups delivery and the inbound checks need.
#[async_trait]
pub trait Dns: Send + Sync {
    /// MX records of `domain`.
    async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError>;
    /// Addresses of `host`, IPv4 first.
    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError>;
    /// TXT records of `name`, each record's strings joined.
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError>;
}

/// The resolver used in production, via hickory. Cheap to clone: clones
/// share the resolver and its cache.
#[derive(Clone)]
pub struct HickoryDns(TokioResolver);

impl HickoryDns {
    /// Ask `server` (UDP, then TCP when truncated), or the servers of
    /// /etc/resolv.conf when `None`.
    pub fn new(server: Option<SocketAddr>) -> Result<HickoryDns, DnsError> {
        resolver(server).map(HickoryDns)
    }

    /// The hickory resolver itself (for `mail-auth`).
    pub fn resolver(&self) -> &TokioResolver {
        &self.0
    }
}

/// A hickory resolver asking `server`, or the system's servers.
fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, DnsError> {
    let err = |e: hickory_resolver::net::NetError| DnsError::Temporary(format!("cannot set up the resolver: {e}"));
    let mut builder = match server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(err)?,
    };
    let opts = builder.options_mut();
    opts.timeout = Duration::from_secs(5);
    opts.attempts = 2;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    builder.build().map_err(err)
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn classify(what: &str, e: hickory_resolver::net::NetError) -> DnsError {
    if e.is_no_records_found() || e.is_nx_domain() {
        DnsError::NotFound(format!("{what}: {e}"))
    } else {
        DnsError::Temporary(format!("{what}: {e}"))
    }
}

#[async_trait]
impl Dns for HickoryDns {
    async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let lookup = match self.0.mx_lookup(fqdn(domain)).await {
            Ok(l) => l,
            // NODATA: the name exists without MX, so it is its own host.
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => return Ok(MxAnswer::NoMx),
            Err(e) => return Err(classify(&format!("MX lookup for {domain}"), e)),
        };
        let hosts: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect();
        Ok(mx_answer(hosts))
    }

    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.0.lookup_ip(fqdn(host)).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) => Err(classify(&format!("address lookup for {host}"), e)),
        }
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .0
            .txt_lookup(fqdn(name))
            .await
            .map_err(|e| classify(&format!("TXT lookup for {name}"), e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }
}

/// The name a DNS list is asked for `ip` under `zone` (RFC 5782 §2.1 for
/// IPv4: octets reversed; §2.4 for IPv6: nibbles reversed).
pub fn dnsxl_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0xf, byte >> 4] {
                    name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    name.push('.');
                }
            }
            name.push_str(zone);
            name
        }
    }
}

/// Interpret MX records: a root exchange means null MX (RFC 7505 §3; any
/// such record counts, since mixing it with real ones is an error the
/// domain owner made on purpose or not, and not sending is the safe side).
pub fn mx_answer(hosts: Vec<(u16, String)>) -> MxAnswer {
    if hosts.is_empty() {
        return MxAnswer::NoMx;
    }
    if hosts.iter().any(|(_, h)| h == "." || h.is_empty()) {
        return MxAnswer::NullMx;
    }
    MxAnswer::Hosts(
        hosts
            .into_iter()
            .map(|(p, h)| (p, h.trim_end_matches('.').to_ascii_lowercase()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_list_names() {
        assert_eq!(
            dnsxl_name("192.0.2.99".parse().unwrap(), "bl.example."),
            "99.2.0.192.bl.example"
        );
        assert_eq!(
            dnsxl_name("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "bl.example"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example"
        );
    }

    #[test]
    fn null_mx_and_names() {
        assert_eq!(mx_answer(vec![(0, ".".into())]), MxAnswer::NullMx);
        assert_eq!(mx_answer(vec![]), MxAnswer::NoMx);
        assert_eq!(
            mx_answer(vec![(10, "MX1.Example.".into())]),
            MxAnswer::Hosts(vec![(10, "mx1.example".into())])
        );
    }
}
