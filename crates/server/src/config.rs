//! `letterbox.toml`: every key optional with a sane default, unknown keys
//! refused, and each validation error naming the key and the problem.

mod delivery;
mod inbound;

pub use delivery::{DeliverySection, DkimSection, DkimSettings};
pub use inbound::InboundSection;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the data directory.
pub const DATA_ENV: &str = "LETTERBOX_DATA";
/// Data directory when nothing else names one.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/letterbox";
/// Data directory of `--dev` when nothing else names one.
pub const DEFAULT_DEV_DATA_DIR: &str = "letterbox-dev-data";

/// The file as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Name this server announces (SMTP greeting, certificate, Received).
    pub hostname: Option<String>,
    /// Where the database and generated keys live.
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub quota: QuotaSection,
    #[serde(default)]
    pub listeners: ListenersSection,
    #[serde(default)]
    pub smtp: SmtpSection,
    #[serde(default)]
    pub pop3: Pop3Section,
    #[serde(default)]
    pub imap: ImapSection,
    #[serde(default)]
    pub delivery: DeliverySection,
    #[serde(default)]
    pub dkim: DkimSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub inbound: InboundSection,
}

/// `[http]`: the JMAP API and web listeners.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The URL clients reach the service at (default `https://HOSTNAME`, with
    /// the https listener's port when it is not 443).
    pub base_url: Option<String>,
    /// Longest API request, seconds (default 120).
    pub request_timeout_secs: Option<u64>,
    /// Longest wait for a request's header, and for the first request of a
    /// connection, seconds (default 30).
    pub header_timeout_secs: Option<u64>,
    /// EventSource connections per account (default 8).
    pub max_event_sources: Option<usize>,
    /// Requests in progress at once from one client address (default 256:
    /// many users may share one address behind carrier-grade NAT).
    pub max_requests_per_ip: Option<usize>,
    /// Browser origins allowed to call the API (CORS), e.g. `["https://webmail.example"]`; `"*"` for any.
    pub cors_origins: Option<Vec<String>>,
    /// `/readyz` reports not ready below this much free disk, MiB (default 100).
    pub ready_min_free_mb: Option<u64>,
    /// Bearer token that lets a non-loopback scraper read `/metrics`
    /// (loopback peers need none).
    pub metrics_token: Option<String>,
}

/// `[pop3]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pop3Section {
    /// Inactivity autologout, seconds (default 600; RFC 1939 §3 asks for at least 600).
    pub idle_timeout_secs: Option<u64>,
    /// Bad commands before disconnect (default 10).
    pub max_errors: Option<u32>,
}

/// `[imap]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    /// Autologout, seconds (default 1800; RFC 9051 §5.4 asks for at least 30 minutes).
    pub idle_timeout_secs: Option<u64>,
    /// Autologout before LOGIN/AUTHENTICATE, seconds (default 60).
    pub preauth_timeout_secs: Option<u64>,
    /// Bad commands before BYE (default 10).
    pub max_errors: Option<u32>,
    /// Largest APPEND literal, bytes (default 64 MiB).
    pub max_literal_size: Option<u64>,
    /// Longest command line between literals, bytes (default 65536).
    pub max_line_length: Option<usize>,
}

/// `[smtp]`: limits of the SMTP server (MX and submission).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// Largest message, bytes (default 50 MiB).
    pub max_message_size: Option<usize>,
    /// Message bytes all SMTP sessions together may hold in memory while
    /// receiving (default 512 MiB); beyond it a message gets 452 4.3.1.
    pub max_buffered_bytes: Option<usize>,
    /// Recipients per message (default 100, RFC 5321 §4.5.3.1.8).
    pub max_recipients: Option<usize>,
    /// Messages per connection (default 100).
    pub max_transactions: Option<u32>,
    /// Bad commands before disconnect (default 10).
    pub max_errors: Option<u32>,
    /// Seconds to wait for a command or data line (default 300, RFC 5321 §4.5.3.2).
    pub command_timeout_secs: Option<u64>,
    /// Longest connection, seconds (default 3600).
    pub session_timeout_secs: Option<u64>,
    /// Longest DATA line including CRLF (default 1000, RFC 5321 §4.5.3.1.6).
    pub max_line_length: Option<usize>,
}

/// `[tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain; with `key`. Absent: self-signed in the data dir.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Allow LOGIN/USER/PASS/AUTH without TLS (only sensible on loopback).
    pub allow_plaintext: Option<bool>,
    /// Delay before answering a failed login, milliseconds.
    pub failure_delay_ms: Option<u64>,
    /// Failures from one IP within the window before logins are refused.
    pub max_failures_per_ip: Option<u32>,
    /// Failures against one account within the window before it is locked.
    pub max_failures_per_account: Option<u32>,
    /// Window for counting failures, seconds.
    pub window_secs: Option<u64>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Concurrent connections per listener.
    pub max_connections: Option<usize>,
    /// Concurrent connections per client IP per listener.
    pub max_connections_per_ip: Option<usize>,
    /// Seconds sessions get to finish after SIGTERM.
    pub shutdown_grace_secs: Option<u64>,
}

/// `[quota]`: defaults for new accounts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSection {
    /// Storage per account in bytes (0 = unlimited).
    pub default_bytes: Option<u64>,
    /// Messages per account (0 = unlimited).
    pub default_messages: Option<u64>,
}

/// `[listeners]`: `"address:port"`, or `""` to disable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenersSection {
    pub smtp: Option<String>,
    pub submission: Option<String>,
    pub submissions: Option<String>,
    pub imap: Option<String>,
    pub imaps: Option<String>,
    pub pop3: Option<String>,
    pub pop3s: Option<String>,
    pub http: Option<String>,
    pub https: Option<String>,
}

/// A listener kind and its wire security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Submission,
    Submissions,
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    Http,
    Https,
}

impl Service {
    pub const ALL: [Service; 9] = [
        Service::Smtp,
        Service::Submission,
        Service::Submissions,
        Service::Imap,
        Service::Imaps,
        Service::Pop3,
        Service::Pop3s,
        Service::Http,
        Service::Https,
    ];

    /// Name used in the config file and logs.
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Http => "http",
            Service::Https => "https",
        }
    }

    /// Standard port (production default).
    pub fn standard_port(self) -> u16 {
        match self {
            Service::Smtp => 25,
            Service::Submission => 587,
            Service::Submissions => 465,
            Service::Imap => 143,
            Service::Imaps => 993,
            Service::Pop3 => 110,
            Service::Pop3s => 995,
            Service::Http => 80,
            Service::Https => 443,
        }
    }

    /// Port used by `--dev`.
    pub fn dev_port(self) -> u16 {
        match self {
            Service::Smtp => 2525,
            Service::Submission => 2587,
            Service::Submissions => 2465,
            Service::Imap => 2143,
            Service::Imaps => 2993,
            Service::Pop3 => 2110,
            Service::Pop3s => 2995,
            Service::Http => 8080,
            Service::Https => 8443,
        }
    }

    /// Whether the port speaks TLS from the first byte (RFC 8314 §3).
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            Service::Submissions | Service::Imaps | Service::Pop3s | Service::Https
        )
    }

    fn configured(self, l: &ListenersSection) -> Option<&String> {
        match self {
            Service::Smtp => l.smtp.as_ref(),
            Service::Submission => l.submission.as_ref(),
            Service::Submissions => l.submissions.as_ref(),
            Service::Imap => l.imap.as_ref(),
            Service::Imaps => l.imaps.as_ref(),
            Service::Pop3 => l.pop3.as_ref(),
            Service::Pop3s => l.pop3s.as_ref(),
            Service::Http => l.http.as_ref(),
            Service::Https => l.https.as_ref(),
        }
    }
}

/// Validated, defaulted configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    pub data_dir: PathBuf,
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub auth_failure_delay: Duration,
    pub max_failures_per_ip: u32,
    pub max_failures_per_account: u32,
    pub auth_window: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub shutdown_grace: Duration,
    pub default_quota_bytes: u64,
    pub default_quota_messages: u64,
    /// Enabled listeners.
    pub listeners: Vec<(Service, SocketAddr)>,
    pub dev: bool,
    /// SMTP server settings.
    pub smtp: letterbox_smtp::SmtpConfig,
    /// POP3 server settings.
    pub pop3: letterbox_pop3::Pop3Config,
    /// IMAP server settings.
    pub imap: letterbox_imap::ImapConfig,
    /// Outbound queue settings.
    pub delivery: letterbox_delivery::DeliveryConfig,
    /// DKIM signing settings.
    pub dkim: DkimSettings,
    /// HTTP and JMAP settings.
    pub http: HttpSettings,
    /// Checks and verdicts of arriving mail.
    pub inbound: letterbox_inbound::InboundConfig,
}

/// Validated `[http]`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where the service is reached (configured, or derived from hostname and port).
    pub base_url: String,
    /// Whether `base_url` was configured.
    pub base_url_configured: bool,
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_event_sources: usize,
    pub max_requests_per_ip: usize,
    pub cors_origins: Vec<String>,
    pub ready_min_free_bytes: u64,
    pub metrics_token: Option<String>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// Where the settings come from besides the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data`
    pub data_dir: Option<PathBuf>,
    /// `LETTERBOX_DATA`
    pub data_env: Option<PathBuf>,
    /// `--dev`
    pub dev: bool,
}

/// Read and validate `path` (absent file = all defaults when `required` is false).
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let file = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?;
            parse(&text, &p.display().to_string())?
        }
        None => FileConfig::default(),
    };
    validate(file, overrides)
}

/// Parse TOML text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn system_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Default of `limits.max_connections_per_ip` (see [`validate`]).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u64 = 500;

/// Apply defaults and check every value.
pub fn validate(f: FileConfig, o: &Overrides) -> Result<Config, ConfigError> {
    let hostname = match f.hostname {
        Some(h) => {
            letterbox_store::normalize_domain(&h).map_err(|e| invalid("hostname", e.to_string()))?;
            h.to_lowercase()
        }
        None if o.dev => "localhost".to_string(),
        None => system_hostname(),
    };
    let data_dir = o
        .data_dir
        .clone()
        .or_else(|| o.data_env.clone())
        .or(f.data_dir)
        .unwrap_or_else(|| PathBuf::from(if o.dev { DEFAULT_DEV_DATA_DIR } else { DEFAULT_DATA_DIR }));
    if data_dir.as_os_str().is_empty() {
        return Err(invalid("data_dir", "must not be empty"));
    }
    let tls_files = match (f.tls.cert, f.tls.key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => return Err(invalid("tls.key", "missing: tls.cert is set, so tls.key must be too")),
        (None, Some(_)) => return Err(invalid("tls.cert", "missing: tls.key is set, so tls.cert must be too")),
    };
    let positive = |key: &str, v: Option<u64>, default: u64| -> Result<u64, ConfigError> {
        match v {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    let max_failures_per_ip = positive(
        "auth.max_failures_per_ip",
        f.auth.max_failures_per_ip.map(u64::from),
        10,
    )? as u32;
    let max_failures_per_account = positive(
        "auth.max_failures_per_account",
        f.auth.max_failures_per_account.map(u64::from),
        5,
    )? as u32;
    let auth_window = Duration::from_secs(positive("auth.window_secs", f.auth.window_secs, 900)?);
    let failure_delay_ms = f.auth.failure_delay_ms.unwrap_or(if o.dev { 500 } else { 2000 });
    if failure_delay_ms > 60_000 {
        return Err(invalid("auth.failure_delay_ms", "must be at most 60000"));
    }
    let max_connections = positive(
        "limits.max_connections",
        f.limits.max_connections.map(|v| v as u64),
        1000,
    )? as usize;
    // Carrier-grade NAT (RFC 6888) puts tens to hundreds of subscribers
    // behind one public IPv4 address, each with several IMAP connections
    // (one IDLE per watched folder; Thunderbird opens up to 5 per account).
    // 500 lets about 100 such users share an address while one address
    // still cannot take more than half of a default listener. Unset, it
    // never exceeds `max_connections`.
    let max_connections_per_ip = positive(
        "limits.max_connections_per_ip",
        f.limits.max_connections_per_ip.map(|v| v as u64),
        DEFAULT_MAX_CONNECTIONS_PER_IP.min(max_connections as u64),
    )? as usize;
    if max_connections_per_ip > max_connections {
        return Err(invalid(
            "limits.max_connections_per_ip",
            format!("{max_connections_per_ip} is more than limits.max_connections ({max_connections})"),
        ));
    }
    let shutdown_grace = Duration::from_secs(f.limits.shutdown_grace_secs.unwrap_or(10));
    let mut listeners = Vec::new();
    for s in Service::ALL {
        let key = format!("listeners.{}", s.name());
        let addr = match s.configured(&f.listeners) {
            Some(v) if v.trim().is_empty() => continue,
            Some(v) => v.trim().parse::<SocketAddr>().map_err(|_| {
                invalid(
                    &key,
                    format!("'{v}' is not an address:port such as 0.0.0.0:{}", s.standard_port()),
                )
            })?,
            None if o.dev => SocketAddr::from(([127, 0, 0, 1], s.dev_port())),
            None => SocketAddr::from(([0, 0, 0, 0], s.standard_port())),
        };
        if let Some((other, _)) = listeners.iter().find(|(_, a)| *a == addr) {
            let other: &Service = other;
            return Err(invalid(
                &key,
                format!("{addr} is already used by listeners.{}", other.name()),
            ));
        }
        listeners.push((s, addr));
    }
    let allow_plaintext_auth = f.auth.allow_plaintext.unwrap_or(o.dev);
    let smtp = smtp_config(&f.smtp, &hostname, allow_plaintext_auth)?;
    let pop3_defaults = letterbox_pop3::Pop3Config::default();
    let pop3 = letterbox_pop3::Pop3Config {
        hostname: hostname.clone(),
        allow_plaintext_auth,
        idle_timeout: match f.pop3.idle_timeout_secs {
            Some(0) => return Err(invalid("pop3.idle_timeout_secs", "must be greater than 0")),
            Some(n) => Duration::from_secs(n),
            None => pop3_defaults.idle_timeout,
        },
        max_errors: match f.pop3.max_errors {
            Some(0) => return Err(invalid("pop3.max_errors", "must be greater than 0")),
            Some(n) => n,
            None => pop3_defaults.max_errors,
        },
        ..pop3_defaults
    };
    let imap_defaults = letterbox_imap::ImapConfig::default();
    let imap = letterbox_imap::ImapConfig {
        hostname: hostname.clone(),
        allow_plaintext_auth,
        idle_timeout: match f.imap.idle_timeout_secs {
            Some(0) => return Err(invalid("imap.idle_timeout_secs", "must be greater than 0")),
            Some(n) => Duration::from_secs(n),
            None => imap_defaults.idle_timeout,
        },
        preauth_timeout: match f.imap.preauth_timeout_secs {
            Some(0) => return Err(invalid("imap.preauth_timeout_secs", "must be greater than 0")),
            Some(n) => Duration::from_secs(n),
            None => imap_defaults.preauth_timeout,
        },
        max_errors: match f.imap.max_errors {
            Some(0) => return Err(invalid("imap.max_errors", "must be greater than 0")),
            Some(n) => n,
            None => imap_defaults.max_errors,
        },
        max_literal: match f.imap.max_literal_size {
            Some(n) if n < 1024 => return Err(invalid("imap.max_literal_size", "must be at least 1024")),
            Some(n) => n,
            None => imap_defaults.max_literal,
        },
        max_line: match f.imap.max_line_length {
            Some(n) if n < 1024 => return Err(invalid("imap.max_line_length", "must be at least 1024")),
            Some(n) => n,
            None => imap_defaults.max_line,
        },
        ..imap_defaults
    };
    let delivery = delivery::delivery_config(&f.delivery, &hostname)?;
    let dkim = delivery::dkim_settings(&f.dkim)?;
    let inbound = inbound::inbound_config(&f.inbound, o.dev, &hostname)?;
    let base_url = match &f.http.base_url {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => u.trim_end_matches('/').to_string(),
        Some(_) => return Err(invalid("http.base_url", "must start with https:// (or http://)")),
        None => match listeners.iter().find(|(s, _)| *s == Service::Https) {
            Some((_, a)) if a.port() != 443 => format!("https://{hostname}:{}", a.port()),
            _ => format!("https://{hostname}"),
        },
    };
    if let Some(bad) = f
        .http
        .cors_origins
        .iter()
        .flatten()
        .find(|o| *o != "*" && !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/'))
    {
        return Err(invalid(
            "http.cors_origins",
            format!("'{bad}' is not an origin such as https://app.example.com (or \"*\")"),
        ));
    }
    let http = HttpSettings {
        base_url,
        base_url_configured: f.http.base_url.is_some(),
        request_timeout: Duration::from_secs(match f.http.request_timeout_secs {
            Some(0) => return Err(invalid("http.request_timeout_secs", "must be greater than 0")),
            Some(n) => n,
            None => 120,
        }),
        header_timeout: Duration::from_secs(match f.http.header_timeout_secs {
            Some(0) => return Err(invalid("http.header_timeout_secs", "must be greater than 0")),
            Some(n) => n,
            None => 30,
        }),
        cors_origins: f.http.cors_origins.clone().unwrap_or_default(),
        ready_min_free_bytes: f.http.ready_min_free_mb.unwrap_or(100) << 20,
        metrics_token: match &f.http.metrics_token {
            Some(t) if t.len() < 16 => return Err(invalid("http.metrics_token", "use at least 16 characters")),
            t => t.clone(),
        },
        max_event_sources: match f.http.max_event_sources {
            Some(0) => return Err(invalid("http.max_event_sources", "must be greater than 0")),
            Some(n) => n,
            None => 8,
        },
        max_requests_per_ip: match f.http.max_requests_per_ip {
            Some(0) => return Err(invalid("http.max_requests_per_ip", "must be greater than 0")),
            Some(n) => n,
            None => 256,
        },
    };
    Ok(Config {
        inbound,
        http,
        smtp,
        pop3,
        imap,
        delivery,
        dkim,
        hostname,
        data_dir,
        tls_files,
        auth_failure_delay: Duration::from_millis(failure_delay_ms),
        max_failures_per_ip,
        max_failures_per_account,
        auth_window,
        max_connections,
        max_connections_per_ip,
        shutdown_grace,
        default_quota_bytes: f.quota.default_bytes.unwrap_or(0),
        default_quota_messages: f.quota.default_messages.unwrap_or(0),
        listeners,
        dev: o.dev,
    })
}

fn smtp_config(
    s: &SmtpSection,
    hostname: &str,
    allow_plaintext_auth: bool,
) -> Result<letterbox_smtp::SmtpConfig, ConfigError> {
    let d = letterbox_smtp::SmtpConfig::default();
    let nonzero = |key: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(invalid(key, "must be greater than 0")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let max_recipients = nonzero(
        "smtp.max_recipients",
        s.max_recipients.map(|v| v as u64),
        d.max_recipients as u64,
    )?;
    let max_line = nonzero(
        "smtp.max_line_length",
        s.max_line_length.map(|v| v as u64),
        d.max_data_line as u64,
    )?;
    if max_line < 80 {
        return Err(invalid("smtp.max_line_length", "must be at least 80"));
    }
    Ok(letterbox_smtp::SmtpConfig {
        hostname: hostname.to_string(),
        max_message_size: nonzero(
            "smtp.max_message_size",
            s.max_message_size.map(|v| v as u64),
            d.max_message_size as u64,
        )? as usize,
        max_buffered_bytes: nonzero(
            "smtp.max_buffered_bytes",
            s.max_buffered_bytes.map(|v| v as u64),
            d.max_buffered_bytes as u64,
        )? as usize,
        max_recipients: max_recipients as usize,
        max_transactions: nonzero(
            "smtp.max_transactions",
            s.max_transactions.map(u64::from),
            d.max_transactions.into(),
        )? as u32,
        max_errors: nonzero("smtp.max_errors", s.max_errors.map(u64::from), d.max_errors.into())? as u32,
        command_timeout: Duration::from_secs(nonzero(
            "smtp.command_timeout_secs",
            s.command_timeout_secs,
            d.command_timeout.as_secs(),
        )?),
        session_timeout: Duration::from_secs(nonzero(
            "smtp.session_timeout_secs",
            s.session_timeout_secs,
            d.session_timeout.as_secs(),
        )?),
        max_data_line: max_line as usize,
        allow_plaintext_auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigError> {
        validate(parse(text, "test.toml")?, &Overrides::default())
    }

    #[test]
    fn empty_file_gives_standard_ports() {
        let c = check("").unwrap();
        let imap = c.listeners.iter().find(|(s, _)| *s == Service::Imap).unwrap();
        assert_eq!(imap.1.port(), 143);
        assert_eq!(c.listeners.len(), Service::ALL.len());
        assert!(!c.imap.allow_plaintext_auth && !c.smtp.allow_plaintext_auth);
    }

    #[test]
    fn dev_uses_loopback_high_ports_and_plaintext() {
        let c = validate(
            FileConfig::default(),
            &Overrides {
                dev: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(c.listeners.iter().all(|(_, a)| a.ip().is_loopback() && a.port() > 1024));
        assert!(c.imap.allow_plaintext_auth && c.pop3.allow_plaintext_auth);
    }

    #[test]
    fn per_ip_connection_default_suits_carrier_grade_nat() {
        let c = check("").unwrap();
        assert_eq!((c.max_connections, c.max_connections_per_ip), (1000, 500));
        // Unset, it follows a lower total instead of failing validation.
        let c = check("[limits]\nmax_connections = 100").unwrap();
        assert_eq!(c.max_connections_per_ip, 100);
        let e = check("[limits]\nmax_connections = 100\nmax_connections_per_ip = 101")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("limits.max_connections_per_ip:"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = check("[listeners]\nimap = \"nonsense\"").unwrap_err().to_string();
        assert!(e.starts_with("listeners.imap:"), "{e}");
        let e = check("[tls]\ncert = \"a.pem\"").unwrap_err().to_string();
        assert!(e.starts_with("tls.key:"), "{e}");
        let e = check("[auth]\nmax_failures_per_ip = 0").unwrap_err().to_string();
        assert!(e.starts_with("auth.max_failures_per_ip:"), "{e}");
        let e = check("[limits]\nmax_conections = 3").unwrap_err().to_string();
        assert!(e.contains("max_conections"), "{e}");
        let e = check("[listeners]\nimap = \"127.0.0.1:1\"\npop3 = \"127.0.0.1:1\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("listeners.pop3:"), "{e}");
    }

    #[test]
    fn delivery_section() {
        let c = check(
            "[delivery]\nport = 2525\nretry_schedule_secs = [1, 2]\nwarn_after_secs = 0\n\
             [delivery.routes]\n\"B.test\" = \"127.0.0.1:2626\"\n\"c.test\" = [\"mx1.c.test\", \"[::1]:26\"]\n\
             [delivery.smarthost]\naddress = \"relay.test\"\ntls = \"none\"\n",
        )
        .unwrap();
        let d = &c.delivery;
        assert_eq!(d.port, 2525);
        assert_eq!(d.warn_after, None);
        assert_eq!(d.retry_delay(5), Duration::from_secs(2));
        assert_eq!(d.routes["b.test"][0].port, 2626);
        assert_eq!(d.routes["c.test"][0].port, 2525);
        assert_eq!(d.routes["c.test"][1].host, "::1");
        let s = d.smarthost.as_ref().unwrap();
        assert_eq!((s.host.as_str(), s.port), ("relay.test", 587));
        let e = check("[delivery.smarthost]\naddress = \"r:1\"\ntls = \"maybe\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("delivery.smarthost.tls:"), "{e}");
        let e = check("[delivery]\nretry_schedule_secs = []").unwrap_err().to_string();
        assert!(e.starts_with("delivery.retry_schedule_secs:"), "{e}");
        let e = check("[dkim]\nselector = \"a b\"").unwrap_err().to_string();
        assert!(e.starts_with("dkim.selector:"), "{e}");
    }

    #[test]
    fn empty_listener_disables_it() {
        let c = check("[listeners]\nhttp = \"\"").unwrap();
        assert!(!c.listeners.iter().any(|(s, _)| *s == Service::Http));
    }

    #[test]
    fn data_dir_precedence() {
        let f = parse("data_dir = \"/from/file\"", "t").unwrap();
        let o = Overrides {
            data_env: Some("/from/env".into()),
            ..Default::default()
        };
        assert_eq!(validate(f, &o).unwrap().data_dir, PathBuf::from("/from/env"));
    }
}
