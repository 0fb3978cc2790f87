//! `letterbox serve`: open the store, set up TLS and authentication, bind
//! every configured listener, run until SIGINT/SIGTERM, then drain.

use crate::admin::{hash, open_store};
use crate::config::{Config, Service};
use anyhow::{Context, Result};
use async_trait::async_trait;
use letterbox_directory::{AccountLookup, AuthPolicy, Authenticator, LookupError};
use letterbox_net::{ListenerLimits, Shutdown, TlsAcceptor, TlsFiles};
use letterbox_store::{Quota, SharedStore, Store};
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Domain and account `--dev` creates in an empty store.
const DEV_DOMAIN: &str = "example.test";
const DEV_ACCOUNT: &str = "demo@example.test";

/// Everything a protocol session needs from the server, shared by all.
// Some fields are read only by protocols not written yet.
#[derive(Clone)]
pub struct ServerCtx {
    pub tls: TlsAcceptor,
    pub pop3: Arc<letterbox_pop3::Pop3Ctx>,
    pub smtp: Arc<letterbox_smtp::SmtpCtx>,
    pub imap: Arc<letterbox_imap::ImapCtx>,
    pub http: Arc<letterbox_http::Http>,
    /// TLS with ALPN h2 and http/1.1, for the https listener.
    pub https_tls: TlsAcceptor,
}

/// DKIM signing for the SMTP submission path.
struct DkimAdapter(letterbox_mailauth::DkimSigner);

impl letterbox_smtp::MessageSigner for DkimAdapter {
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Option<String>, String> {
        self.0.sign(domain, message)
    }
}

impl letterbox_jmap::MessageSigner for DkimAdapter {
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Option<String>, String> {
        self.0.sign(domain, message)
    }
}

/// Password lookups for the authenticator, served by the store.
struct StoreLookup(SharedStore);

#[async_trait]
impl AccountLookup for StoreLookup {
    async fn password_hash(&self, address: &str) -> Result<Option<(i64, String)>, LookupError> {
        let account = self.0.account(address).await.map_err(LookupError::backend)?;
        Ok(account.map(|a| (a.id, a.password_hash)))
    }

    async fn app_password(&self, account_id: i64, digest: &str) -> Result<bool, LookupError> {
        self.0
            .check_app_password(account_id, digest)
            .await
            .map_err(LookupError::backend)
    }

    async fn access_token(&self, digest: &str) -> Result<Option<(i64, String)>, LookupError> {
        let token = self.0.token(digest).await.map_err(LookupError::backend)?;
        Ok(token
            .filter(|t| t.kind == letterbox_store::TokenKind::Access && !t.used)
            .map(|t| (t.grant.account_id, t.address)))
    }
}

async fn ensure_dev_account(store: &dyn Store, cfg: &Config) -> Result<()> {
    if !store.list_accounts().await?.is_empty() {
        return Ok(());
    }
    if !store.list_domains().await?.iter().any(|d| d.name == DEV_DOMAIN) {
        store.add_domain(DEV_DOMAIN).await?;
        letterbox_mailauth::generate(&cfg.data_dir, DEV_DOMAIN, false)?;
    }
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    store
        .add_account(DEV_ACCOUNT, &hash(password.clone()).await?, Quota::default())
        .await?;
    let port = |s: Service| {
        cfg.listeners
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, a)| a.port().to_string())
            .unwrap_or_else(|| "disabled".into())
    };
    println!("Created the demo account (development mode):");
    println!("  address:  {DEV_ACCOUNT}");
    println!("  password: {password}");
    println!(
        "  IMAP {}:{} (STARTTLS optional), IMAPS port {}; POP3 port {}, POP3S port {};",
        cfg.hostname,
        port(Service::Imap),
        port(Service::Imaps),
        port(Service::Pop3),
        port(Service::Pop3s)
    );
    println!(
        "  SMTP submission port {} (STARTTLS), {} (TLS); inbound SMTP port {}",
        port(Service::Submission),
        port(Service::Submissions),
        port(Service::Smtp)
    );
    println!(
        "  JMAP: http://127.0.0.1:{}/.well-known/jmap (development), https port {}",
        port(Service::Http),
        port(Service::Https)
    );
    println!("  user name: the full address; the certificate is self-signed");
    Ok(())
}

/// What autoconfiguration tells mail clients: this server's listeners.
fn client_settings(cfg: &Config) -> letterbox_http::autoconfig::ClientSettings {
    let port = |s: Service| cfg.listeners.iter().find(|(x, _)| *x == s).map(|(_, a)| a.port());
    letterbox_http::autoconfig::ClientSettings {
        hostname: cfg.hostname.clone(),
        imaps: port(Service::Imaps),
        imap: port(Service::Imap),
        pop3s: port(Service::Pop3s),
        pop3: port(Service::Pop3),
        submissions: port(Service::Submissions),
        submission: port(Service::Submission),
    }
}

/// Run the server until a termination signal.
pub async fn run(cfg: Config) -> Result<()> {
    letterbox_net::install_crypto_provider();
    tune_allocator();
    let store: SharedStore = Arc::new(open_store(&cfg)?);
    // Issue 18: a store that cannot commit (read-only data directory, full
    // disk) would answer 451 to everything forever; say so and stop.
    if let Err(e) = store.health().await {
        anyhow::bail!(
            "the data directory {} is not writable: {e}; fix its permissions or free space",
            cfg.data_dir.display()
        );
    }
    tracing::info!(data_dir = %cfg.data_dir.display(), hostname = %cfg.hostname, "letterbox starting");
    println!("letterbox: data directory {}", cfg.data_dir.display());
    if cfg.dev {
        ensure_dev_account(store.as_ref(), &cfg).await?;
    }
    let files = cfg.tls_files.as_ref().map(|(cert, key)| TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    });
    let tls_config =
        letterbox_net::load_or_generate(&cfg.hostname, files.as_ref(), &cfg.data_dir).context("TLS set-up failed")?;
    let auth = Authenticator::new(
        Arc::new(StoreLookup(store.clone())),
        AuthPolicy {
            failure_delay: cfg.auth_failure_delay,
            max_failures_per_ip: cfg.max_failures_per_ip,
            max_failures_per_account: cfg.max_failures_per_account,
            window: cfg.auth_window,
        },
    );
    let mut alpn = (*tls_config).clone();
    alpn.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let https_tls = TlsAcceptor::from(Arc::new(alpn));
    let tls = TlsAcceptor::from(tls_config);
    let dkim = cfg.dkim.sign.then(|| {
        Arc::new(DkimAdapter(letterbox_mailauth::DkimSigner::new(
            cfg.data_dir.clone(),
            letterbox_mailauth::Selectors::from_prefix(&cfg.dkim.selector),
        )))
    });
    let pop3 = Arc::new(letterbox_pop3::Pop3Ctx::new(
        store.clone(),
        auth.clone(),
        tls.clone(),
        cfg.pop3.clone(),
    ));
    // Web Push for JMAP PushSubscriptions; plain-http loopback endpoints
    // only in development.
    let webpush = letterbox_http::webpush::WebPush::new(store.clone(), &cfg.data_dir, &cfg.hostname, cfg.dev)
        .context("Web Push set-up failed")?;
    webpush.spawn();
    // One resolver (and cache) for routing and the inbound checks.
    let dns = letterbox_dns::HickoryDns::new(cfg.delivery.dns_server).context("DNS resolver set-up failed")?;
    let inbound = inbound_pipeline(&cfg, store.clone(), &dns);
    let vacation: Arc<dyn letterbox_store::AfterDelivery> =
        letterbox_delivery::vacation::Responder::new(store.clone(), inbound.clone(), cfg.hostname.clone());
    let smtp = Arc::new(letterbox_smtp::SmtpCtx {
        inbound: inbound.clone(),
        store: store.clone(),
        auth: auth.clone(),
        tls: tls.clone(),
        config: cfg.smtp.clone(),
        signer: dkim.clone().map(|d| d as Arc<dyn letterbox_smtp::MessageSigner>),
        after_delivery: Some(vacation.clone()),
        buffers: letterbox_smtp::MessageBuffers::new(cfg.smtp.max_buffered_bytes),
    });
    let imap = Arc::new(letterbox_imap::ImapCtx {
        store: store.clone(),
        auth: auth.clone(),
        tls: tls.clone(),
        config: cfg.imap.clone(),
    });
    let jmap = Arc::new(
        letterbox_jmap::Jmap::new(
            store.clone(),
            inbound.clone(),
            letterbox_jmap::JmapConfig::new(cfg.http.base_url.clone(), cfg.hostname.clone()),
            dkim.map(|d| d as Arc<dyn letterbox_jmap::MessageSigner>),
        )
        .with_after_delivery(vacation)
        .with_pusher(
            Arc::new(letterbox_http::webpush::PushHandle(webpush.clone())),
            webpush.public_key(),
        ),
    );
    let releaser_jmap = jmap.clone();
    let http = letterbox_http::Http::new(
        jmap,
        auth.clone(),
        letterbox_http::HttpConfig {
            api_on_plain: cfg.dev,
            https_base: cfg.http.base_url.clone(),
            base_url: cfg.http.base_url_configured.then(|| cfg.http.base_url.clone()),
            request_timeout: cfg.http.request_timeout,
            header_timeout: cfg.http.header_timeout,
            max_event_sources: cfg.http.max_event_sources,
            max_requests_per_ip: cfg.http.max_requests_per_ip,
            clients: client_settings(&cfg),
            cors_origins: cfg.http.cors_origins.clone(),
            ready_min_free_bytes: cfg.http.ready_min_free_bytes,
            metrics: metrics_render(),
            metrics_token: cfg.http.metrics_token.clone(),
            // Development: edit the webmail's files without rebuilding.
            webmail_dir: std::env::var_os("LETTERBOX_WEBMAIL_DIR")
                .filter(|_| cfg.dev)
                .map(std::path::PathBuf::from),
        },
    );
    let ctx = ServerCtx {
        tls,
        pop3,
        smtp,
        imap,
        http,
        https_tls,
    };
    let shutdown = Shutdown::new(cfg.shutdown_grace);
    let mut tasks = JoinSet::new();
    let worker = delivery_worker(&cfg, store.clone(), dns.clone(), inbound.clone())?;
    let queue_task = tokio::spawn(worker.run(shutdown.clone()));
    let sd = shutdown.clone();
    let release_task = tokio::spawn(letterbox_jmap::run_releaser(
        releaser_jmap,
        async move { sd.wait().await },
    ));
    let sd = shutdown.clone();
    let reporter_task = tokio::spawn(letterbox_inbound::dmarc::run_reporter(
        inbound.clone(),
        cfg.inbound.dmarc_reports,
        async move { sd.wait().await },
    ));
    let sd = shutdown.clone();
    let trainer_task = tokio::spawn(letterbox_inbound::spam::run_trainer(store.clone(), async move {
        sd.wait().await
    }));
    for (service, addr) in &cfg.listeners {
        let Some(protocol) = crate::protocols::for_service(*service) else {
            tracing::warn!(listener = service.name(), "not implemented yet; listener not started");
            continue;
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (listeners.{})", service.name()))?;
        let local = listener.local_addr().unwrap_or(*addr);
        let tls_note = if *service == Service::Http {
            if cfg.dev {
                "plain HTTP, API served (development)"
            } else {
                "plain HTTP, redirects to HTTPS"
            }
        } else if service.implicit_tls() {
            "implicit TLS"
        } else {
            "plain, STARTTLS"
        };
        tracing::info!(listener = service.name(), address = %local, "ready ({tls_note})");
        println!("letterbox: {} listening on {local} ({tls_note})", service.name());
        let limits = ListenerLimits {
            max_connections: cfg.max_connections,
            max_per_ip: cfg.max_connections_per_ip,
            refuse_line: protocol.refuse_line,
        };
        let implicit = match service {
            Service::Https => Some(ctx.https_tls.clone()),
            s if s.implicit_tls() => Some(ctx.tls.clone()),
            _ => None,
        };
        let handler_ctx = ctx.clone();
        let handler = protocol.handler;
        let svc = *service;
        tasks.spawn(letterbox_net::serve(
            listener,
            service.name(),
            limits,
            implicit,
            move |stream, info, sd| handler(handler_ctx.clone(), svc, stream, info, sd),
            shutdown.clone(),
        ));
    }
    println!("letterbox: ready");
    wait_for_signal().await;
    tracing::info!(
        "shutting down: no new connections, sessions get {:?}",
        cfg.shutdown_grace
    );
    shutdown.trigger();
    while tasks.join_next().await.is_some() {}
    let _ = queue_task.await;
    let _ = release_task.await;
    let _ = trainer_task.await;
    let _ = reporter_task.await;
    // Sessions are gone; flush the writer so the database closes cleanly.
    store.close();
    tracing::info!("stopped");
    Ok(())
}

/// Allocator tuning for a server holding many idle connections (glibc).
///
/// Allocations of 1 MiB and more come straight from mmap, so they go back
/// to the system when freed: glibc otherwise raises its mmap threshold
/// after the first big free and keeps later ones (Argon2's 19 MiB per
/// login) in per-thread arenas, which grew a server holding thousands of
/// idle connections by hundreds of megabytes. And the arenas are capped at
/// two per core: every thread that ever allocated (blocking-pool threads
/// come and go) would otherwise get one, each keeping its free memory.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(2 * cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator tuning; called before the
        // server spawns its sessions, and any value is valid for these options.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// The local-delivery pipeline with its checks over the shared resolver.
pub fn inbound_pipeline(
    cfg: &Config,
    store: SharedStore,
    dns: &letterbox_dns::HickoryDns,
) -> letterbox_inbound::Inbound {
    let mut config = cfg.inbound.clone();
    config.spam.dns = Some(Arc::new(dns.clone()));
    let verifier = letterbox_mailauth::Verifier::new(dns, &cfg.hostname, config.dns_timeout);
    letterbox_inbound::Inbound::new(store, &cfg.hostname, Some(verifier), config)
}

/// The outbound queue worker with its DNS and TLS set-up.
fn delivery_worker(
    cfg: &Config,
    store: SharedStore,
    dns: letterbox_dns::HickoryDns,
    inbound: letterbox_inbound::Inbound,
) -> Result<Arc<letterbox_delivery::Worker>> {
    use letterbox_delivery::client::Tls;
    let d = &cfg.delivery;
    let opportunistic = Tls::new(letterbox_net::opportunistic_client_config().context("TLS client set-up failed")?);
    let smarthost_tls = match &d.smarthost {
        Some(s) if s.tls != letterbox_delivery::SmarthostTls::None => Some(if s.verify {
            Tls::new(
                letterbox_net::system_client_config(s.ca_file.as_deref())
                    .context("delivery.smarthost: TLS set-up failed")?,
            )
        } else {
            opportunistic.clone()
        }),
        _ => None,
    };
    Ok(letterbox_delivery::Worker::new(
        store,
        d.clone(),
        Arc::new(dns),
        opportunistic,
        smarthost_tls,
        inbound,
    ))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Install the Prometheus recorder once per process (tests start several
/// servers in one process) and return its renderer for `/metrics`.
fn metrics_render() -> Option<letterbox_http::MetricsRender> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        use letterbox_net::metrics as m;
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), m::LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(m::STORE_BATCH.into()), m::BATCH_BUCKETS))
            .map(|b| b.build_recorder());
        match recorder {
            Ok(r) => {
                let handle = r.handle();
                if metrics::set_global_recorder(r).is_err() {
                    return None;
                }
                m::describe();
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
    let handle = handle.clone()?;
    Some(letterbox_http::MetricsRender(Arc::new(move || handle.render())))
}
