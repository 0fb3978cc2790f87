//! The HTTP edge of Letterbox: JMAP (RFC 8620 §2–§7 over HTTP), uploads,
//! downloads and EventSource push, on axum/hyper over the connections that
//! `letterbox_net::serve` accepts (so HTTP shares the connection caps,
//! per-IP limits and graceful drain of every other listener).
//!
//! On a plain (`http`) listener only redirects to HTTPS are served unless
//! the server runs with `--dev`, where the API is served on loopback too.

mod account;
mod auth;
pub mod autoconfig;
mod conn;
mod events;
mod oauth;
mod routes;
mod stream_conn;
mod webmail;
pub mod webpush;
mod ws;

pub use auth::AuthCache;
pub use conn::session;

use letterbox_directory::Authenticator;
use letterbox_jmap::Jmap;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the HTTP listeners.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Serve the API on plain HTTP too (development on loopback).
    pub api_on_plain: bool,
    /// Where plain-HTTP requests are redirected: `https://HOST[:PORT]`.
    pub https_base: String,
    /// The configured public URL; the Session's URLs follow the request when unset.
    pub base_url: Option<String>,
    /// Longest wait for a request's header.
    pub header_timeout: Duration,
    /// Longest time one API request may take, body included.
    pub request_timeout: Duration,
    /// EventSource connections per account at once.
    pub max_event_sources: usize,
    /// Requests in progress at once per client address (push streams
    /// excepted: they have their per-account limit).
    pub max_requests_per_ip: usize,
    /// Where mail clients find the protocols (autoconfiguration).
    pub clients: autoconfig::ClientSettings,
    /// Origins allowed to call the API from a browser (CORS); `*` for any.
    pub cors_origins: Vec<String>,
    /// `/readyz` fails when the store's file system has less free space.
    pub ready_min_free_bytes: u64,
    /// Renders the Prometheus exposition for `/metrics`, when installed.
    pub metrics: Option<MetricsRender>,
    /// Bearer token that opens `/metrics` to other than loopback peers.
    pub metrics_token: Option<String>,
    /// Serve the webmail's files from this directory instead of the
    /// embedded ones (development only).
    pub webmail_dir: Option<std::path::PathBuf>,
}

/// The exporter's render function (the binary installs the recorder).
#[derive(Clone)]
pub struct MetricsRender(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MetricsRender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRender")
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            api_on_plain: false,
            https_base: "https://localhost".into(),
            base_url: None,
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_event_sources: 8,
            max_requests_per_ip: 256,
            clients: autoconfig::ClientSettings::default(),
            cors_origins: Vec::new(),
            ready_min_free_bytes: 100 << 20,
            metrics: None,
            metrics_token: None,
            webmail_dir: None,
        }
    }
}

/// Everything the HTTP handlers share.
pub struct HttpCtx {
    pub jmap: Arc<Jmap>,
    pub auth: Authenticator,
    pub config: HttpConfig,
    pub(crate) cache: AuthCache,
    pub(crate) limits: auth::AccountLimits,
    pub(crate) webmail: letterbox_webmail::Webmail,
    pub(crate) hub: Arc<events::StateHub>,
}

/// The HTTP service: the routers for TLS and plain connections.
pub struct Http {
    pub ctx: Arc<HttpCtx>,
    pub(crate) api: axum::Router,
    pub(crate) plain: axum::Router,
}

impl Http {
    pub fn new(jmap: Arc<Jmap>, auth: Authenticator, config: HttpConfig) -> Arc<Http> {
        let webmail = match &config.webmail_dir {
            Some(dir) => letterbox_webmail::Webmail::from_dir(dir),
            None => letterbox_webmail::Webmail::embedded(),
        };
        let hub = events::StateHub::new(jmap.store().clone());
        let ctx = Arc::new(HttpCtx {
            hub,
            jmap,
            auth,
            webmail,
            config,
            cache: AuthCache::default(),
            limits: auth::AccountLimits::default(),
        });
        let api = routes::api_router(ctx.clone());
        let plain = if ctx.config.api_on_plain {
            api.clone()
        } else {
            routes::redirect_router(ctx.clone())
        };
        Arc::new(Http { ctx, api, plain })
    }
}
